"""Model-agnostic decoding for attention decoders: greedy, temperature sampling and beam search.

Every function drives a *step function* and knows nothing about the model behind it:

    step_fn(tokens, state) -> (log_probabilities, new_state, attention_weights)

- `tokens`: int array (rows,), the previous output token of each row (hypothesis);
- `state`: whatever the decoder carries between steps, with rows on the first axis: a tensor, a NumPy array,
  or a (nested) tuple / list / dict of them (e.g. a GRU state plus the encoder outputs);
- `log_probabilities`: (rows, vocab) log-softmax of the next token; `attention_weights`: (rows, src_len).

Tensors or NumPy arrays both work: the search logic runs in NumPy, and states are reordered with `tf.gather`
when they are tensors (so they can stay on the device), with `np.take` otherwise. Every search returns, for each
chosen output, its token ids (without the end token), its attention matrix (one row of weights per output
token) and its score, so a UI can draw what each word looked at. Beam search keeps finished hypotheses in the
beam at a fixed score and ranks the final beams by log-probability / length**alpha (alpha = 0 is no length
normalisation); width 1 gives exactly the greedy output.

    python -c "from trainers.common import decoding; help(decoding)"
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

StepFn = Callable[[Any, Any], tuple]

# Batched inference decodes at least MIN_ROWS rows: at one row the CPU's matrix products take a matrix-vector
# kernel that rounds differently from the matrix-matrix kernel used at two rows and more, while from two rows on a
# row's numbers do not depend on the batch size, its place or the other rows (oneDNN and XLA on CPUs with AVX-512;
# tests/test_batching.py checks it). So a lone request runs with a copy of itself.
MIN_ROWS = 2
# Without AVX-512, oneDNN's AVX2 matrix product (the sgemm TensorFlow calls, one thread per op) works on the rows
# in tiles of six and adds up a tile of one, two or three left-over rows in another order: on an AVX2-only AMD EPYC
# (2026-12-07), in products of 24-2048 inputs by 65-8000 outputs at 1-130 rows, a row's numbers matched those of
# the 130-row product unless it fell in such a tile (rows 6-7 of an 8-row product differed, every row of a 10-row
# one matched). There batches are padded to a multiple of AVX2_ROW_MULTIPLE rows, which is full tiles only, so a
# row is computed alike wherever it sits and whatever shares its call.
AVX2_ROW_MULTIPLE = 6


def row_multiple() -> int:
    """The multiple of rows a batched call is padded to on this CPU: AVX2_ROW_MULTIPLE without AVX-512, else 1."""
    from trainers.common.hardware import avx512

    return 1 if avx512() else AVX2_ROW_MULTIPLE


def padded_size(rows: int) -> int:
    """The rows a batch of `rows` items is decoded in: at least MIN_ROWS, and a multiple of `row_multiple()`."""
    multiple = row_multiple()
    return max(MIN_ROWS, -(-rows // multiple) * multiple)


# The rows' last axis is padded to a multiple of this many floats (the widest vector of these CPUs, AVX-512's 16)
# before an exp or a log, so every element of a row goes through the vectorised function (row_softmax says why).
VECTOR_FLOATS = 16


def _padded_last_axis(x, value: float):
    """x with its last axis padded by `value` up to a multiple of VECTOR_FLOATS."""
    import tensorflow as tf

    width = x.shape[-1]
    if width is not None and width % VECTOR_FLOATS == 0:
        return x
    # A width known only when the graph runs (a source length) gets its padding then, possibly none.
    extra = -width % VECTOR_FLOATS if width is not None else -tf.shape(x)[-1] % VECTOR_FLOATS
    return tf.concat([x, tf.fill(tf.concat([tf.shape(x)[:-1], [extra]], 0), tf.constant(value, x.dtype))], -1)


def _shifted_rows(logits):
    """(the last axis' width, logits padded by `_padded_last_axis` with -inf minus each row's maximum): the start of
    `row_softmax` and `log_probabilities`."""
    import tensorflow as tf

    width = logits.shape[-1] if logits.shape[-1] is not None else tf.shape(logits)[-1]
    padded = _padded_last_axis(logits, -np.inf)
    return width, padded - tf.reduce_max(padded, axis=-1, keepdims=True)


def row_softmax(logits):
    """Softmax over the last axis in which a row's numbers never depend on the other rows or on how many there are.

    Not tf.nn.softmax (nor keras.ops.softmax, which calls it): on an AVX2-only AMD EPYC (2026-12-07, one thread per
    op) oneDNN's softmax gave a row other bits at every batch size that is not a multiple of 8, for 5 to 8,000
    classes. Nor a plain exp(x - max) / sum: TensorFlow's exp runs over the whole tensor in vectors and computes a
    leftover tail of it with the scalar exp, which rounds differently, so the last row's last numbers depended on
    the row count. Here the last axis is padded with -inf to a multiple of VECTOR_FLOATS first (the padding's exp
    is 0), so every element is in a vector: the same bits at 1-72 rows, at any place in the batch, for 5, 17, 18,
    49, 65, 108 and 8,000 classes on that CPU. The result's last axis is the input's."""
    import tensorflow as tf

    width, shifted = _shifted_rows(logits)
    exponentials = tf.exp(shifted)
    return (exponentials / tf.reduce_sum(exponentials, axis=-1, keepdims=True))[..., :width]


def log_probabilities(logits):
    """Log-softmax over the last axis, (x - max) - log(sum(exp(x - max))), for a decoder step's output, with a row's
    numbers independent of the other rows (`row_softmax`; the sums' log is taken over a row of VECTOR_FLOATS copies
    for the same reason).

    Not tf.nn.log_softmax: its CPU kernel rounds a row differently when the batch has 8 rows or more, and a sentence
    or a picture must get the same words and scores whatever it is batched with (tests/test_batching.py)."""
    import tensorflow as tf

    width, shifted = _shifted_rows(logits)
    sums = tf.reduce_sum(tf.exp(shifted), axis=-1, keepdims=True)
    logs = tf.math.log(tf.broadcast_to(sums, tf.concat([tf.shape(sums)[:-1], [VECTOR_FLOATS]], 0)))[..., :1]
    return (shifted - logs)[..., :width]


def padded_rows(items: list, rows: int | None = None) -> list:
    """`items` padded to `rows` (by default `padded_size(len(items))`) by repeating the first (the padding rows'
    outputs are dropped by the caller)."""
    rows = padded_size(len(items)) if rows is None else rows
    return list(items) + list(items[:1]) * (rows - len(items))


@dataclasses.dataclass
class Hypothesis:
    """One decoded output: ids (end token excluded), attention (len(ids), src_len), scores."""

    ids: list[int]
    attention: np.ndarray
    log_prob: float
    score: float  # log_prob normalised by length (equal to log_prob for greedy and sampling)
    finished: bool = True  # False when max_len was reached before the end token


@dataclasses.dataclass
class BeamResult:
    """The best hypothesis of a beam search, plus the whole n-best list sorted best first.

    Unpacks as `ids, attention, score = beam_search(...)` for callers that only want the best one.
    """

    hypotheses: list[Hypothesis]

    @property
    def best(self) -> Hypothesis:
        return self.hypotheses[0]

    @property
    def ids(self) -> list[int]:
        return self.best.ids

    @property
    def attention(self) -> np.ndarray:
        return self.best.attention

    @property
    def score(self) -> float:
        return self.best.score

    def __iter__(self):
        return iter((self.ids, self.attention, self.score))


def map_state(function, state):
    """Applies `function` to every array in a (nested) tuple / list / dict state."""
    if isinstance(state, dict):
        return {key: map_state(function, value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(map_state(function, value) for value in state)
    return function(state)


def reorder_state(state, indices: np.ndarray):
    """Picks rows `indices` (with repeats) of every array in `state`; tensors stay tensors."""
    indices = np.asarray(indices, dtype=np.int64)

    def take(array):
        if array is None:
            return None
        if hasattr(array, "numpy") and not isinstance(array, np.ndarray):
            import tensorflow as tf

            return tf.gather(array, indices, axis=0)
        return np.take(np.asarray(array), indices, axis=0)

    return map_state(take, state)


def _as_numpy(value) -> np.ndarray:
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def length_normalised(log_prob: float, length: int, alpha: float) -> float:
    """log_prob / length**alpha; the end token counts as one output so empty outputs are not favoured."""
    return float(log_prob) / (max(int(length), 1) ** alpha) if alpha else float(log_prob)


def _check(max_len: int, beam_width: int = 1) -> None:
    if int(max_len) < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    if int(beam_width) < 1:
        raise ValueError(f"the beam width must be at least 1, got {beam_width}")


def _row_decode(step_fn: StepFn, state, start_id: int, end_id: int, max_len: int, rows: int,
                choose: Callable[[np.ndarray], np.ndarray], max_lens=None) -> list[Hypothesis]:
    """Shared loop of greedy and sampling: every row picks its next token with `choose(log_probs)`.

    `max_lens` (one per row) caps each row at its own length, as if it were decoded alone with that max_len:
    rows of different requests then share the steps without one's cap changing another's output."""
    caps = np.full(rows, int(max_len), np.int64) if max_lens is None else np.asarray(max_lens, np.int64)
    _check(int(caps.min()))
    tokens = np.full(rows, start_id, dtype=np.int32)
    outputs, weights_history, log_probs = [], [], np.zeros(rows, np.float64)
    finished = np.zeros(rows, bool)
    lengths = np.zeros(rows, np.int64)
    for position in range(int(caps.max())):
        step_log_probs, state, weights = step_fn(tokens, state)
        step_log_probs = _as_numpy(step_log_probs).astype(np.float64)  # (rows, vocab)
        chosen = choose(step_log_probs).astype(np.int32)  # (rows,)
        chosen_log_probs = step_log_probs[np.arange(rows), chosen]
        writing = ~finished & (position < caps)
        log_probs += np.where(writing, chosen_log_probs, 0.0)
        lengths += writing  # the end token counts too, as in beam search
        outputs.append(np.where(finished, end_id, chosen))
        weights_history.append(_as_numpy(weights).astype(np.float32))  # (rows, src_len)
        finished |= chosen == end_id
        if (finished | (position + 1 >= caps)).all():
            break
        tokens = chosen
    ids = np.stack(outputs, axis=1)  # (rows, steps)
    attention = np.stack(weights_history, axis=1)  # (rows, steps, src_len)
    results = []
    for row in range(rows):
        row_ids = ids[row, : caps[row]].tolist()
        done = end_id in row_ids
        length = row_ids.index(end_id) if done else len(row_ids)
        results.append(Hypothesis(ids=row_ids[:length], attention=attention[row, :length], log_prob=float(log_probs[row]),
                                  score=float(log_probs[row]), finished=done))
    return results


def greedy(step_fn: StepFn, state, start_id: int, end_id: int, max_len: int, rows: int = 1,
           max_lens=None) -> list[Hypothesis]:
    """Batched greedy search: `rows` outputs, one per row of `state`, each the argmax at every step (each row
    stopping at its own entry of `max_lens` when given, else at max_len)."""
    return _row_decode(step_fn, state, start_id, end_id, max_len, rows, lambda lp: np.argmax(lp, axis=-1), max_lens)


def sample(step_fn: StepFn, state, start_id: int, end_id: int, max_len: int, rows: int = 1,
           temperature: float = 1.0, seed: int | None = None) -> list[Hypothesis]:
    """Batched sampling from softmax(log_probs / temperature); temperature 0 is greedy."""
    if temperature < 0:
        raise ValueError(f"the temperature must be zero or more, got {temperature}")
    if temperature == 0:
        return greedy(step_fn, state, start_id, end_id, max_len, rows)
    generator = np.random.default_rng(seed)

    def choose(log_probs: np.ndarray) -> np.ndarray:
        scaled = log_probs / temperature
        scaled -= scaled.max(axis=-1, keepdims=True)
        probabilities = np.exp(scaled)
        probabilities /= probabilities.sum(axis=-1, keepdims=True)
        cumulative = probabilities.cumsum(axis=-1)
        draws = generator.random((len(log_probs), 1)) * cumulative[:, -1:]
        return np.minimum((cumulative < draws).sum(axis=-1), log_probs.shape[-1] - 1)

    return _row_decode(step_fn, state, start_id, end_id, max_len, rows, choose)


def beam_search(step_fn: StepFn, state, start_id: int, end_id: int, beam_width: int = 4, max_len: int = 30,
                alpha: float = 1.0, n_best: int | None = None) -> BeamResult:
    """Beam search for ONE input (`state` has one row); returns the n-best list, best first.

    At each step every live beam is extended by every token and the `beam_width` best sums of log-probabilities
    survive. A beam that has emitted the end token is finished: it stays in the beam with its score frozen (it
    can only be "extended" by a free end token). The search stops when every beam is finished or at max_len;
    the beams are then ranked by log_prob / length**alpha. With width 1 the search is exactly greedy.
    """
    _check(max_len, beam_width)
    beam_width = int(beam_width)
    tokens = np.array([start_id], np.int32)
    beam_log_probs = np.zeros(1, np.float64)  # (beams,)
    finished = np.zeros(1, bool)
    lengths = np.zeros(1, np.int64)
    histories: list[list[int]] = [[]]
    attentions: list[list[np.ndarray]] = [[]]
    for _ in range(int(max_len)):
        step_log_probs, state, weights = step_fn(tokens, state)
        step_log_probs = _as_numpy(step_log_probs).astype(np.float64)  # (beams, vocab)
        weights = _as_numpy(weights).astype(np.float32)  # (beams, src_len)
        vocab = step_log_probs.shape[-1]
        # A finished beam continues only with the end token at no cost, so it keeps its score.
        step_log_probs[finished] = -np.inf
        step_log_probs[finished, end_id] = 0.0
        candidates = (beam_log_probs[:, None] + step_log_probs).reshape(-1)  # (beams * vocab,)
        keep = min(beam_width, int(np.isfinite(candidates).sum()))
        # Stable sort (ties go to the earlier beam, then the lower id): width 1 then matches argmax exactly.
        order = np.argsort(-candidates, kind="stable")[:keep]
        parents, chosen = order // vocab, order % vocab
        beam_log_probs = candidates[order]
        was_finished = finished[parents]
        lengths = lengths[parents] + (~was_finished)
        histories = [histories[p] + ([] if was_finished[i] else [int(chosen[i])]) for i, p in enumerate(parents)]
        attentions = [attentions[p] + ([] if was_finished[i] else [weights[p]]) for i, p in enumerate(parents)]
        finished = was_finished | (chosen == end_id)
        if finished.all():
            break
        state = reorder_state(state, parents)
        tokens = chosen.astype(np.int32)
    hypotheses = []
    src_len = weights.shape[-1]
    for index in range(len(histories)):
        ids = histories[index]
        done = bool(finished[index])
        if done and ids and ids[-1] == end_id:
            ids = ids[:-1]
        rows = attentions[index][: len(ids)]
        attention = np.stack(rows) if rows else np.zeros((0, src_len), np.float32)
        hypotheses.append(Hypothesis(ids=ids, attention=attention, log_prob=float(beam_log_probs[index]),
                                     score=length_normalised(beam_log_probs[index], lengths[index], alpha),
                                     finished=done))
    hypotheses.sort(key=lambda hypothesis: -hypothesis.score)
    return BeamResult(hypotheses[: n_best or len(hypotheses)])
