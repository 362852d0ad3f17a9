"""The captioner: image features -> words, attending over the 49 image locations at every word.

    features (batch, locations, depth) --Dense+ReLU--> keys (batch, locations, embedding_dim)
    hidden_0 = tanh(Dense(mean of keys))            (Show, Attend and Tell's learned initial state)
    for each word t:  context_t, weights_t = BahdanauAttention(hidden_{t-1}, keys)
                      hidden_t = GRUCell([embedding(word_{t-1}), context_t], hidden_{t-1})
                      logits_t = Dense(vocab)(Dense(units)(hidden_t))

The decoder's GRU receives its previous hidden state at every step (the 2018 tutorial restarted it from zeros,
tensorflow/tensorflow#26990). `Captioner.call` runs teacher forcing over a whole caption; `encode` + `step` are
the one-word-at-a-time pieces that greedy and beam search use. Importing this module does no work;
`load_captioner(path)` rebuilds a model from a checkpoint folder.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from trainers.common import checkpoint
from trainers.common.attention import BahdanauAttention


@dataclasses.dataclass
class CaptionerConfig:
    """The model's constructor arguments; saved as config.json beside the weights."""

    vocab_size: int
    locations: int = 49
    feature_depth: int = 1024
    embedding_dim: int = 256
    units: int = 512
    attention_units: int = 256
    dropout: float = 0.1


class Captioner(keras.Model):
    def __init__(self, vocab_size: int, locations: int = 49, feature_depth: int = 1024, embedding_dim: int = 256,
                 units: int = 512, attention_units: int = 256, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.config = CaptionerConfig(vocab_size, locations, feature_depth, embedding_dim, units, attention_units,
                                      dropout)
        self.project = layers.Dense(embedding_dim, activation="relu", name="feature_projection")
        self.initial_state = layers.Dense(units, activation="tanh", name="initial_state")
        self.attention = BahdanauAttention(attention_units, name="attention")
        self.embedding = layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.gru_cell = layers.GRUCell(units, name="gru_cell")
        self.dropout = layers.Dropout(dropout)
        self.hidden = layers.Dense(units, name="pre_logits")
        self.logits = layers.Dense(vocab_size, name="logits")

    def encode(self, features, training=False):
        """features (batch, locations, depth) -> keys (batch, locations, embedding_dim), the attention's projection
        of the keys (batch, locations, attention_units; computed once per picture, not once per word), and the
        initial state (batch, units)."""
        keys = self.project(features, training=training)
        keys = self.dropout(keys, training=training)
        projected = self.attention.project_keys(keys)
        state = self.initial_state(ops.mean(keys, axis=1))
        return keys, projected, state

    def step(self, keys, projected, token, state, training=False):
        """One word: token (batch,) int, state (batch, units) -> logits (batch, vocab), state, weights (batch, loc)."""
        context, weights = self.attention(state, keys, projected_keys=projected)  # (batch, dim), (batch, loc)
        embedded = self.embedding(token)  # (batch, embedding_dim)
        inputs = ops.concatenate([embedded, context], axis=-1)  # (batch, 2 * embedding_dim)
        output, new_state = self.gru_cell(inputs, [state], training=training)
        new_state = new_state[0] if isinstance(new_state, (list, tuple)) else new_state
        hidden = self.hidden(self.dropout(output, training=training))  # (batch, units)
        return self.logits(self.dropout(hidden, training=training)), new_state, weights

    def call(self, features, ids, training=False):
        """Teacher forcing: ids (batch, tgt_len) are the inputs; -> logits (batch, tgt_len, vocab), attention."""
        keys, projected, state = self.encode(features, training=training)
        all_logits, all_weights = [], []
        for position in range(ids.shape[1]):  # unrolled: captions are short (at most 16 words)
            logits, state, weights = self.step(keys, projected, ids[:, position], state, training=training)
            all_logits.append(logits)
            all_weights.append(weights)
        return ops.stack(all_logits, axis=1), ops.stack(all_weights, axis=1)

    def get_config(self):
        return dataclasses.asdict(self.config)


def build(config: CaptionerConfig) -> Captioner:
    """A model with its variables created (one call on a dummy batch), ready for load_weights."""
    model = Captioner(**dataclasses.asdict(config))
    features = np.zeros((1, config.locations, config.feature_depth), np.float32)
    model(features, np.zeros((1, 2), np.int32))
    return model


def count_parameters(model) -> int:
    return int(sum(np.prod(variable.shape) for variable in model.trainable_variables))


def load_captioner(path: Path) -> Captioner:
    path = checkpoint.require_folder(path)
    stored = checkpoint.read_json(path / checkpoint.CONFIG_FILE)
    try:
        config = CaptionerConfig(**stored["decoder"])
    except (KeyError, TypeError) as error:
        raise checkpoint.CheckpointError(f"{path / checkpoint.CONFIG_FILE} is not a captioning config: {error}")
    model = build(config)
    checkpoint.load_weights(model, path)
    return model


def make_step_function(model: Captioner):
    """A compiled one-word step for decoding: (keys, projected, tokens, state) -> (log-probs, state, weights)."""

    @tf.function(reduce_retracing=True)
    def step(keys, projected, tokens, state):
        logits, state, weights = model.step(keys, projected, tokens, state)
        return tf.nn.log_softmax(logits, axis=-1), state, weights

    return step
