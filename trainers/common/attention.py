"""Bahdanau (additive) attention, shared by the translation and captioning decoders.

    score(query, key_j) = V^T tanh(W1 key_j + W2 query)
    weights = softmax over j (masked positions get -inf)
    context = sum_j weights_j * value_j   (values are the keys here, as in the tutorials)

Bahdanau, Cho and Bengio, "Neural Machine Translation by Jointly Learning to Align and Translate" (2014).
"""

from __future__ import annotations

from keras import layers, ops

from trainers.common.decoding import row_softmax


class BahdanauAttention(layers.Layer):
    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.W1 = layers.Dense(units, name="W1")  # projects the keys (encoder outputs / image locations)
        self.W2 = layers.Dense(units, name="W2")  # projects the query (the decoder's previous hidden state)
        self.V = layers.Dense(1, name="V")
        # The translator's keys carry Keras's padding mask (from its masked encoder); this layer takes the mask as
        # an argument instead and passes none on (`compute_mask`), so Keras need not warn, on every translation,
        # that the layer "will destroy the mask information".
        self.supports_masking = True

    def compute_mask(self, inputs, previous_mask=None):
        return None

    def project_keys(self, keys):
        """W1 keys, (batch, src_len, units): constant over a decoded sequence, so a decoder may compute it once
        and pass it to every step as `projected_keys` instead of recomputing it."""
        return self.W1(keys)

    def call(self, query, keys, mask=None, projected_keys=None):
        # query: (batch, units_q); keys: (batch, src_len, units_k); mask: (batch, src_len) bool or None;
        # projected_keys: project_keys(keys) computed once per sequence, or None to compute it here.
        if projected_keys is None:
            projected_keys = self.W1(keys)  # (batch, src_len, units)
        query_with_time = ops.expand_dims(query, 1)  # (batch, 1, units_q)
        scores = self.V(ops.tanh(projected_keys + self.W2(query_with_time)))  # (batch, src_len, 1)
        scores = ops.squeeze(scores, -1)  # (batch, src_len)
        if mask is not None:
            # A large negative (not -inf) keeps softmax finite if a whole row were masked.
            scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
        # (batch, src_len), sums to 1; a row's weights do not depend on the rows beside it (batched serving)
        weights = row_softmax(ops.cast(scores, "float32"))
        context = ops.sum(ops.expand_dims(ops.cast(weights, keys.dtype), -1) * keys, axis=1)  # (batch, units_k)
        return context, weights

    def get_config(self):
        return {**super().get_config(), "units": self.units}
