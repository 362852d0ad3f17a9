"""What the two attention decoders (translation and captioning) share: the masked loss and accuracy over padded
target sequences, and the teacher-forced training step.

Target id 0 is padding everywhere; padded positions count for neither the loss nor the accuracy.
"""

from __future__ import annotations

import keras
from keras import ops


def masked_loss(targets, logits):
    """Mean cross-entropy over the real (non-padding, id != 0) target positions, in nats per token.

    targets (batch, tgt_len) int, logits (batch, tgt_len, vocab) -> scalar.
    """
    per_token = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)  # (batch, tgt_len)
    mask = ops.cast(ops.not_equal(targets, 0), per_token.dtype)
    return ops.sum(per_token * mask) / ops.maximum(ops.sum(mask), 1.0)


def masked_accuracy(targets, logits):
    """Share of the real target positions whose most likely token is the right one."""
    predicted = ops.cast(ops.argmax(logits, axis=-1), targets.dtype)
    mask = ops.cast(ops.not_equal(targets, 0), "float32")
    hits = ops.cast(ops.equal(predicted, targets), "float32") * mask
    return ops.sum(hits) / ops.maximum(ops.sum(mask), 1.0)


def make_teacher_forced_step(model, optimizer, clip_norm: float, eager: bool):
    """`step(context, decoder_input, decoder_target)` -> {"loss", "accuracy"}: one optimizer update.

    `model(context, decoder_input, training=True)` returns (logits, attention); the decoder reads the true previous
    token at every position (teacher forcing). Gradients are clipped to a global norm of `clip_norm` (0: off).
    Compiled with tf.function unless `eager`.
    """
    import tensorflow as tf

    def train_step(context, decoder_input, decoder_target):
        with tf.GradientTape() as tape:
            logits, _ = model(context, decoder_input, training=True)  # (batch, tgt_len, vocab)
            loss = masked_loss(decoder_target, logits)
        gradients = tape.gradient(loss, model.trainable_variables)
        if clip_norm:
            gradients, _ = tf.clip_by_global_norm(gradients, clip_norm)
        optimizer.apply(gradients, model.trainable_variables)
        return {"loss": loss, "accuracy": masked_accuracy(decoder_target, logits)}

    return train_step if eager else tf.function(train_step)
