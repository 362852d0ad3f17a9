"""Spanish→English sequence-to-sequence model with Bahdanau attention (Keras 3 model subclassing).

- `Encoder`: Embedding -> bidirectional GRU over the (right-padded, masked) Spanish ids; returns every position's
  output (the attention keys) and a decoder start state made from both directions' final states.
- `BahdanauAttention` (trainers.common.attention): additive attention written out, W1 keys + W2 query -> V.
- `Decoder`: one step at a time, a GRU cell whose input is [embedding of the previous word ; attention context]
  and whose state is the previous hidden state (passed in explicitly: the 2018 tutorial dropped it). The
  attention query is that previous hidden state, as in Bahdanau et al. The output layer sees the new state and
  the context through a small tanh bottleneck, then the target-vocabulary logits (float32 even under bfloat16).

`AttentionSeq2Seq.call(source, decoder_input)` runs teacher forcing over a whole batch and returns logits and the
attention weights; `encode` + `decode_step` are the pieces the search functions in trainers.common.decoding
drive one word at a time (the inference wrapper around it is `trainers.nmt.translate.Translator`). Importing
this module does no work; `load(folder)` rebuilds a model from a servable folder, `save(folder, ...)` writes one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from trainers.common import checkpoint, decoding
from trainers.common.attention import BahdanauAttention

EXAMPLES_FILE = "examples.json"  # held-out test segments with their references, for the app's examples


@dataclasses.dataclass
class Seq2SeqConfig:
    """The model's constructor arguments; saved as config.json beside the weights."""

    source_vocab_size: int
    target_vocab_size: int
    embedding_dim: int = 256
    encoder_units: int = 256  # per direction
    decoder_units: int = 512
    attention_units: int = 256
    dropout: float = 0.2
    max_source_len: int = 24
    max_target_len: int = 26


class Encoder(layers.Layer):
    def __init__(self, vocab_size: int, embedding_dim: int, units: int, decoder_units: int, dropout: float,
                 **kwargs):
        super().__init__(**kwargs)
        self.embedding = layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.dropout = layers.Dropout(dropout)
        self.rnn = layers.Bidirectional(
            layers.GRU(units, return_sequences=True, return_state=True), merge_mode="concat", name="bi_gru")
        self.bridge = layers.Dense(decoder_units, activation="tanh", name="bridge")

    def call(self, source, training=False):
        # source: (batch, src_len) int, 0 = padding at the end.
        mask = ops.not_equal(source, 0)  # (batch, src_len)
        embedded = self.dropout(self.embedding(source), training=training)  # (batch, src_len, embedding_dim)
        keys, forward_state, backward_state = self.rnn(embedded, mask=mask, training=training)
        # keys: (batch, src_len, 2 * units); the states: (batch, units) each.
        state = self.bridge(ops.concatenate([forward_state, backward_state], axis=-1))  # (batch, decoder_units)
        return keys, mask, state


class Decoder(layers.Layer):
    def __init__(self, vocab_size: int, embedding_dim: int, units: int, attention_units: int, dropout: float,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.embedding = layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.attention = BahdanauAttention(attention_units, name="attention")
        self.cell = layers.GRUCell(units, name="gru_cell")
        self.bottleneck = layers.Dense(embedding_dim, activation="tanh", name="bottleneck")
        self.dropout = layers.Dropout(dropout)
        self.logits = layers.Dense(vocab_size, dtype="float32", name="logits")

    def step(self, tokens, state, keys, mask, projected_keys, training=False):
        """One word: tokens (batch,), previous state (batch, units) -> logits, new state, weights, output."""
        embedded = self.embedding(tokens)  # (batch, embedding_dim)
        context, weights = self.attention(state, keys, mask=mask, projected_keys=projected_keys)
        # context: (batch, 2 * encoder_units); weights: (batch, src_len) float32, summing to 1 over real tokens.
        cell_input = ops.concatenate([self.dropout(embedded, training=training), context], axis=-1)
        output, new_state = self.cell(cell_input, state, training=training)  # (batch, units) twice
        new_state = new_state[0] if isinstance(new_state, (list, tuple)) else new_state
        hidden = self.bottleneck(ops.concatenate([output, context], axis=-1))  # (batch, embedding_dim)
        return hidden, new_state, weights

    def project(self, hidden, training=False):
        return self.logits(self.dropout(hidden, training=training))  # (..., vocab) float32


class AttentionSeq2Seq(keras.Model):
    def __init__(self, source_vocab_size: int, target_vocab_size: int, embedding_dim: int = 256,
                 encoder_units: int = 256, decoder_units: int = 512, attention_units: int = 256,
                 dropout: float = 0.2, max_source_len: int = 24, max_target_len: int = 26, **kwargs):
        super().__init__(**kwargs)
        self.config = Seq2SeqConfig(source_vocab_size, target_vocab_size, embedding_dim, encoder_units,
                                    decoder_units, attention_units, dropout, max_source_len, max_target_len)
        self.encoder = Encoder(source_vocab_size, embedding_dim, encoder_units, decoder_units, dropout,
                               name="encoder")
        self.decoder = Decoder(target_vocab_size, embedding_dim, decoder_units, attention_units, dropout,
                               name="decoder")

    def build(self, *shapes, **named_shapes):
        """Nothing to do: the encoder and decoder build their weights on the first call (`build` below calls the
        model on a dummy batch). Without it Keras warned, on every load, that the model has "unbuilt state"."""

    def encode(self, source, training=False):
        """source (batch, src_len) -> keys, mask, start state, projected keys (the decoder's constant inputs)."""
        keys, mask, state = self.encoder(source, training=training)
        return keys, mask, state, self.decoder.attention.project_keys(keys)

    def call(self, source, decoder_input, training=False):
        """Teacher forcing: decoder_input (batch, tgt_len) -> logits (batch, tgt_len, vocab), attention.

        The loop is a Python loop over the (static) target length, so under tf.function it is unrolled once
        per padded length; the batches are bucketed to a few lengths to keep the traces few.
        """
        keys, mask, state, projected_keys = self.encode(source, training=training)
        hidden_states, attention = [], []
        for position in range(decoder_input.shape[1]):
            hidden, state, weights = self.decoder.step(decoder_input[:, position], state, keys, mask,
                                                       projected_keys, training=training)
            hidden_states.append(hidden)
            attention.append(weights)
        hidden = ops.stack(hidden_states, axis=1)  # (batch, tgt_len, embedding_dim)
        logits = self.decoder.project(hidden, training=training)  # (batch, tgt_len, vocab): one big matmul
        return logits, ops.stack(attention, axis=1)  # attention: (batch, tgt_len, src_len)

    def decode_step(self, tokens, state, keys, mask, projected_keys):
        """Inference step: -> log-probabilities (batch, vocab), new state, attention weights (batch, src_len)."""
        hidden, state, weights = self.decoder.step(tokens, state, keys, mask, projected_keys, training=False)
        logits = self.decoder.project(hidden, training=False)
        return decoding.log_probabilities(logits), state, weights


def build(config: Seq2SeqConfig) -> AttentionSeq2Seq:
    """Creates the model and its variables (a call on a dummy batch), ready for load_weights."""
    model = AttentionSeq2Seq(**dataclasses.asdict(config))
    model(np.ones((1, 3), np.int32), np.ones((1, 2), np.int32))
    return model


def count_parameters(model: keras.Model) -> int:
    return int(sum(np.prod(variable.shape) for variable in model.trainable_variables))


def load(path: Path):
    """Rebuilds the model from `path/config.json`; returns (model, subword tokenizer)."""
    from trainers.nmt.data import VOCAB_FILE
    from trainers.nmt.subword import SubwordTokenizer

    path = checkpoint.require_folder(path, (checkpoint.CONFIG_FILE, checkpoint.WEIGHTS_FILE, VOCAB_FILE))
    raw = checkpoint.read_json(path / checkpoint.CONFIG_FILE)
    try:
        config = Seq2SeqConfig(**raw)
    except TypeError as error:
        raise checkpoint.CheckpointError(f"{path / checkpoint.CONFIG_FILE} is not a translation config: {error}")
    try:
        tokenizer = SubwordTokenizer.load(path / VOCAB_FILE)
    except (OSError, RuntimeError, ValueError) as error:
        raise checkpoint.CheckpointError(f"{path / VOCAB_FILE} cannot be read: {error}") from None
    if (tokenizer.size, tokenizer.size) != (config.source_vocab_size, config.target_vocab_size):
        raise checkpoint.CheckpointError(
            f"{path}: the subword model ({tokenizer.size} pieces) does not match the model "
            f"({config.source_vocab_size}, {config.target_vocab_size})")
    model = build(config)
    checkpoint.load_weights(model, path)
    return model, tokenizer


def write_files(folder: Path, model: AttentionSeq2Seq, tokenizer, metrics: dict | None = None,
                casing: dict | None = None, examples: list | None = None) -> None:
    """The servable files into an existing folder: config.json, model.weights.h5, subword.model, metrics.json, and
    casing.json (how names are written) and examples.json (the tab's held-out examples) when given."""
    from trainers.nmt.data import CASING_FILE, VOCAB_FILE

    checkpoint.write_model(folder, model, dataclasses.asdict(model.config), metrics)
    tokenizer.save(Path(folder) / VOCAB_FILE)
    if casing is not None:
        checkpoint.write_json(Path(folder) / CASING_FILE, casing)
    if examples is not None:
        checkpoint.write_json(Path(folder) / EXAMPLES_FILE, examples)


def save(path: Path, model: AttentionSeq2Seq, tokenizer, metrics: dict | None = None,
         casing: dict | None = None, examples: list | None = None) -> Path:
    """Writes a complete servable folder atomically (see write_files)."""
    return checkpoint.write_folder(path, lambda folder: write_files(folder, model, tokenizer, metrics, casing,
                                                                    examples))
