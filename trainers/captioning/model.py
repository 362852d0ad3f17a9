"""The captioner: image features -> words, attending over the 49 image locations at every word.

    features (batch, locations, depth) --Dense+ReLU--> keys (batch, locations, embedding_dim)
    hidden_0 = tanh(Dense(mean of keys))            (Show, Attend and Tell's learned initial state)
    for each word t:  context_t, weights_t = BahdanauAttention(hidden_{t-1}, keys)
                      hidden_t = GRUCell([embedding(word_{t-1}), context_t], hidden_{t-1})
                      logits_t = Dense(vocab)(Dense(units)(hidden_t))

The decoder's GRU receives its previous hidden state at every step (the 2018 tutorial restarted it from zeros,
tensorflow/tensorflow#26990). `ShowAttendTell.call` runs teacher forcing over a whole caption; `encode` + `step`
are the one-word-at-a-time pieces that greedy and beam search use. Importing this module does no work;
`load(path)` rebuilds a decoder and its vocabulary from a checkpoint folder, `save`/`write_files` write one (the
inference wrapper with the encoder is `trainers.captioning.caption.Captioner`).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from trainers.common import checkpoint, decoding
from trainers.common.attention import BahdanauAttention

EXAMPLES_FOLDER = "examples"  # held-out pictures the app offers as examples


@dataclasses.dataclass
class ShowAttendTellConfig:
    """The model's constructor arguments; saved as config.json beside the weights."""

    vocab_size: int
    locations: int = 49
    feature_depth: int = 1024
    embedding_dim: int = 256
    units: int = 512
    attention_units: int = 256
    dropout: float = 0.1


class ShowAttendTell(keras.Model):
    def __init__(self, vocab_size: int, locations: int = 49, feature_depth: int = 1024, embedding_dim: int = 256,
                 units: int = 512, attention_units: int = 256, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.config = ShowAttendTellConfig(vocab_size, locations, feature_depth, embedding_dim, units, attention_units,
                                      dropout)
        self.project = layers.Dense(embedding_dim, activation="relu", name="feature_projection")
        self.initial_state = layers.Dense(units, activation="tanh", name="initial_state")
        self.attention = BahdanauAttention(attention_units, name="attention")
        self.embedding = layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.gru_cell = layers.GRUCell(units, name="gru_cell")
        self.dropout = layers.Dropout(dropout)
        self.hidden = layers.Dense(units, name="pre_logits")
        # Logits stay float32 under mixed_bfloat16: the softmax and the loss need the range.
        self.logits = layers.Dense(vocab_size, dtype="float32", name="logits")

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


def build(config: ShowAttendTellConfig) -> ShowAttendTell:
    """A model with its variables created (one call on a dummy batch), ready for load_weights."""
    model = ShowAttendTell(**dataclasses.asdict(config))
    features = np.zeros((1, config.locations, config.feature_depth), np.float32)
    model(features, np.zeros((1, 2), np.int32))
    return model


def count_parameters(model) -> int:
    return int(sum(np.prod(variable.shape) for variable in model.trainable_variables))


def load(path: Path):
    """(decoder, vocabulary) of a checkpoint folder: the model from config.json's `decoder`, its weights, vocab.json."""
    from trainers.captioning.data import VOCAB_FILE, CaptionVocabulary

    path = checkpoint.require_folder(path, (checkpoint.CONFIG_FILE, checkpoint.WEIGHTS_FILE, VOCAB_FILE))
    stored = checkpoint.read_json(path / checkpoint.CONFIG_FILE)
    try:
        config = ShowAttendTellConfig(**stored["decoder"])
    except (KeyError, TypeError) as error:
        raise checkpoint.CheckpointError(f"{path / checkpoint.CONFIG_FILE} is not a captioning config: {error}")
    vocabulary = CaptionVocabulary.load(path / VOCAB_FILE)
    if vocabulary.size != config.vocab_size:
        raise checkpoint.CheckpointError(
            f"{path}: the vocabulary has {vocabulary.size} words but the model expects {config.vocab_size}")
    model = build(config)
    checkpoint.load_weights(model, path)
    return model, vocabulary


def write_files(folder: Path, model: ShowAttendTell, vocabulary, run_config: dict, encoder_weights,
                metrics: dict | None = None, examples: Path | None = None) -> None:
    """The servable files into an existing folder: config.json (`decoder` from the model, then run_config's
    `encoder`, `max_len`, `source`), model.weights.h5, vocab.json, the encoder's weights file (`encoder_weights`:
    a file to copy, or a Keras model to save), the example pictures (a folder to copy) and metrics.json."""
    from trainers.captioning.data import VOCAB_FILE
    from trainers.captioning.encoder import ENCODER_WEIGHTS_FILE

    folder = Path(folder)
    config = {"decoder": dataclasses.asdict(model.config),
              **{key: value for key, value in run_config.items() if key != "decoder"}}
    checkpoint.write_model(folder, model, config, metrics)
    vocabulary.save(folder / VOCAB_FILE)
    target = folder / config["encoder"].get("weights", ENCODER_WEIGHTS_FILE)
    if isinstance(encoder_weights, (str, Path)):
        shutil.copy2(encoder_weights, target)
    else:
        encoder_weights.save_weights(str(target))
    if examples is not None and Path(examples).is_dir():
        shutil.copytree(examples, folder / EXAMPLES_FOLDER)


def save(path: Path, model: ShowAttendTell, vocabulary, run_config: dict, encoder_weights,
         metrics: dict | None = None, examples: Path | None = None) -> Path:
    """Writes a complete checkpoint folder atomically (see `write_files`)."""
    return checkpoint.write_folder(path, lambda folder: write_files(folder, model, vocabulary, run_config,
                                                                    encoder_weights, metrics, examples))


def make_step_function(model: ShowAttendTell):
    """A compiled one-word step for decoding: (keys, projected, tokens, state) -> (log-probs, state, weights)."""

    @tf.function(reduce_retracing=True)
    def step(keys, projected, tokens, state):
        logits, state, weights = model.step(keys, projected, tokens, state)
        return decoding.log_probabilities(logits), state, weights

    return step
