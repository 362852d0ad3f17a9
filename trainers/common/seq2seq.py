"""What the two attention decoders (translation and captioning) share: the masked loss and accuracy over padded
target sequences, and the teacher-forced training step.

Target id 0 is padding everywhere; padded positions count for neither the loss nor the accuracy.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from trainers.common import run


def masked_sums(targets, logits):
    """(sum of the cross-entropies at real target positions, in nats; number of real positions; correct ones).

    targets (batch, tgt_len) int, logits (batch, tgt_len, vocab). Sums, not means, so that a distributed step
    can divide by the global number of tokens (`run.global_mean`).
    """
    per_token = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)  # (batch, tgt_len)
    mask = ops.cast(ops.not_equal(targets, 0), "float32")
    predicted = ops.cast(ops.argmax(logits, axis=-1), targets.dtype)
    hits = ops.cast(ops.equal(predicted, targets), "float32") * mask
    return ops.sum(ops.cast(per_token, "float32") * mask), ops.sum(mask), ops.sum(hits)


def masked_loss(targets, logits):
    """Mean cross-entropy over the real (non-padding, id != 0) target positions, in nats per token."""
    total, count, _ = masked_sums(targets, logits)
    return total / ops.maximum(count, 1.0)


def masked_accuracy(targets, logits):
    """Share of the real target positions whose most likely token is the right one."""
    _, count, hits = masked_sums(targets, logits)
    return hits / ops.maximum(count, 1.0)


def teacher_forced_update(model, optimizer, context, decoder_input, decoder_target, clip_norm: float) -> dict:
    """One optimizer update on a (replica's share of a) batch; returns {"loss", "accuracy"}.

    `model(context, decoder_input, training=True)` returns (logits, attention); the decoder reads the true previous
    token at every position (teacher forcing). Gradients are clipped to a global norm of `clip_norm` (0: off).
    """
    with tf.GradientTape() as tape:
        logits, _ = model(context, decoder_input, training=True)  # (batch, tgt_len, vocab)
        total, count, hits = masked_sums(decoder_target, logits)
        loss = run.global_mean(total, count)
    gradients = tape.gradient(loss, model.trainable_variables)
    run.apply_gradients(optimizer, gradients, model.trainable_variables, clip_norm)
    return {"loss": loss, "accuracy": run.global_mean(hits, count)}


def make_teacher_forced_step(model, optimizer, clip_norm: float, eager: bool):
    """`step(context, decoder_input, decoder_target)` outside a run (tests, benchmarks); tf.function unless `eager`."""
    def train_step(context, decoder_input, decoder_target):
        return teacher_forced_update(model, optimizer, context, decoder_input, decoder_target, clip_norm)

    return train_step if eager else tf.function(train_step)
