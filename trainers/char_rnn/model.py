"""The character-level language model: Embedding -> GRU -> Dense, with the GRU state passed explicitly.

`CharRNN.call(ids, state)` returns `(logits, state)`, so generation can feed one character at a time and carry
the state forward (the 2018 tutorial's model rebuilt its state from zero on every call). Importing this module
does no work; `load(path)` rebuilds a model from a checkpoint folder.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from trainers.common import checkpoint

if TYPE_CHECKING:
    from trainers.char_rnn.data import CharVocabulary


@dataclasses.dataclass
class CharRNNConfig:
    """The model's constructor arguments; saved as config.json beside the weights."""

    vocab_size: int
    embedding_dim: int = 256
    rnn_units: int = 1024


class CharRNN(keras.Model):
    def __init__(self, vocab_size: int, embedding_dim: int = 256, rnn_units: int = 1024,
                 recurrent_initializer: str = "orthogonal", **kwargs):
        super().__init__(**kwargs)
        self.config = CharRNNConfig(vocab_size, embedding_dim, rnn_units)
        self.embedding = layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.gru = layers.GRU(rnn_units, return_sequences=True, return_state=True, name="gru",
                              recurrent_initializer=recurrent_initializer)
        # Logits stay float32 even when the rest runs in bfloat16: softmax and the loss need the range.
        self.logits = layers.Dense(vocab_size, dtype="float32", name="logits")

    def call(self, ids, state=None, training=False):
        # ids: (batch, time) int32; state: (batch, units) or None for zeros.
        embedded = self.embedding(ids, training=training)  # (batch, time, embedding_dim)
        if state is None:
            sequence, state = self.gru(embedded, training=training)
        else:
            sequence, state = self.gru(embedded, initial_state=[state], training=training)
        logits = self.logits(sequence, training=training)  # (batch, time, vocab)
        return logits, state

    def initial_state(self, batch_size: int):
        return tf.zeros((batch_size, self.config.rnn_units), dtype=tf.float32)

    @tf.function(reduce_retracing=True)
    def next_logits(self, ids, state):
        """One compiled step for generation: (batch, time) ids + state -> logits of the last position, state."""
        logits, state = self(ids, state=state, training=False)
        return logits[:, -1, :], state  # (batch, vocab), (batch, units)


def build(config: CharRNNConfig, for_loading: bool = False) -> CharRNN:
    """Creates the model and its variables (a call on a dummy batch), ready for load_weights. `for_loading`: the
    recurrent kernel starts at zeros instead of a random orthogonal matrix, whose QR decomposition took 0.59 s of
    the 1.05 s load of the shipped GRU-1024 (AVX2-only AMD EPYC), before the Text tab's first answer."""
    model = CharRNN(**dataclasses.asdict(config), recurrent_initializer="zeros" if for_loading else "orthogonal")
    model(tf.zeros((1, 2), dtype=tf.int32))
    return model


def count_parameters(model: keras.Model) -> int:
    return int(sum(np.prod(variable.shape) for variable in model.trainable_variables))


def load(path: Path) -> tuple[CharRNN, CharVocabulary]:
    """Rebuilds the model from `path/config.json`, loads its weights and vocabulary."""
    from trainers.char_rnn.data import VOCAB_FILE, CharVocabulary

    path = checkpoint.require_folder(path, (checkpoint.CONFIG_FILE, checkpoint.WEIGHTS_FILE, VOCAB_FILE))
    raw = checkpoint.read_json(path / checkpoint.CONFIG_FILE)
    try:
        config = CharRNNConfig(**raw)
    except TypeError as error:
        raise checkpoint.CheckpointError(f"{path / checkpoint.CONFIG_FILE} is not a char-RNN config: {error}")
    vocabulary = CharVocabulary.load(path / VOCAB_FILE)
    if vocabulary.size != config.vocab_size:
        raise checkpoint.CheckpointError(
            f"{path}: the vocabulary has {vocabulary.size} entries but the model expects {config.vocab_size}")
    model = build(config, for_loading=True)
    checkpoint.load_weights(model, path)
    return model, vocabulary


def write_files(folder: Path, model: CharRNN, vocabulary, metrics: dict | None = None) -> None:
    """The servable files (config.json, model.weights.h5, vocab.json, metrics.json) into an existing folder."""
    from trainers.char_rnn.data import VOCAB_FILE

    checkpoint.write_model(folder, model, dataclasses.asdict(model.config), metrics)
    vocabulary.save(folder / VOCAB_FILE)


def save(path: Path, model: CharRNN, vocabulary, metrics: dict | None = None) -> Path:
    """Writes a complete checkpoint folder atomically."""
    return checkpoint.write_folder(path, lambda folder: write_files(folder, model, vocabulary, metrics))
