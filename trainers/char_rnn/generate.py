"""Generate text with a trained character model.

    python -m trainers.char_rnn.generate --prompt "ROMEO." --length 300 --temperature 0.8 --top-k 20 \
        --top-p 0.95 --seed 1 [--checkpoint checkpoints/char_rnn]

The same seed gives the same text. Temperature 0 is greedy (always the most likely character). Characters of
the prompt that the model never saw are mapped to the unknown character, and the command says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from trainers.common import decoding

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "char_rnn"
GREEDY_BELOW = 1e-4  # temperatures below this are treated as 0: dividing logits by them overflows


class GeneratedChar:
    """One generated character, the probability the model gave it, and its top alternatives there.

    The alternatives are built when first read (`top=(ids, probabilities, characters)`): a batched round writes
    thousands of characters under the interpreter lock, and the page reads the alternatives of one of them."""

    __slots__ = ("char", "probability", "_alternatives", "_top")

    def __init__(self, char: str, probability: float, alternatives: list[tuple[str, float]] | None = None, *,
                 top: tuple | None = None):
        if (alternatives is None) == (top is None):
            raise ValueError("give either the alternatives or the top ids to build them from")
        self.char, self.probability, self._alternatives, self._top = char, probability, alternatives, top

    @property
    def alternatives(self) -> list[tuple[str, float]]:
        if self._alternatives is None:
            ids, probabilities, characters = self._top
            self._alternatives, self._top = [(characters[i], p) for i, p in zip(ids, probabilities)], None
        return self._alternatives

    def __eq__(self, other) -> bool:
        return (isinstance(other, GeneratedChar) and (self.char, self.probability, self.alternatives)
                == (other.char, other.probability, other.alternatives))

    def __repr__(self) -> str:
        return f"GeneratedChar({self.char!r}, {self.probability!r}, {self.alternatives!r})"

    def __getstate__(self):  # pickled (to and from a Ray replica) with its alternatives built
        return self.char, self.probability, self.alternatives

    def __setstate__(self, state) -> None:
        self.char, self.probability, self._alternatives = state
        self._top = None


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max()
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum()


def filter_distribution(logits: np.ndarray, temperature: float, top_k: int = 0, top_p: float = 1.0) -> np.ndarray:
    """The sampling distribution after temperature, top-k and nucleus (top-p) filtering.

    Returns probabilities over the vocabulary with zeros outside the kept set. Temperature at or near 0 puts
    all the mass on the most likely character.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if temperature < GREEDY_BELOW:
        probabilities = np.zeros_like(logits)
        probabilities[int(np.argmax(logits))] = 1.0
        return probabilities
    probabilities = softmax(logits / temperature)
    order = np.argsort(-probabilities, kind="stable")  # most likely first
    keep = np.ones_like(probabilities, dtype=bool)
    if top_k and top_k < len(probabilities):
        keep[order[top_k:]] = False
    if 0.0 < top_p < 1.0:
        cumulative = np.cumsum(probabilities[order])
        # Keep the smallest prefix whose mass reaches top_p (always at least the most likely character).
        cutoff = int(np.searchsorted(cumulative, top_p)) + 1
        keep[order[cutoff:]] = False
    probabilities = np.where(keep, probabilities, 0.0)
    return probabilities / probabilities.sum()


def sample_next(logits: np.ndarray, temperature: float, top_k: int, top_p: float, rng: np.random.Generator) -> int:
    """One draw from `filter_distribution` (the NumPy reference the compiled sampler is tested against)."""
    probabilities = filter_distribution(logits, temperature, top_k, top_p)
    if temperature < GREEDY_BELOW:
        return int(np.argmax(probabilities))
    return int(rng.choice(len(probabilities), p=probabilities))


CHUNK = 64  # characters per compiled call: a few tens of ms of text at a time, so the page still sees it written
MAX_SEED = 2**63 - 1
# Rows of a compiled chunk call: streams are padded up to one of these sizes, so XLA compiles at most five loops. The
# smallest is decoding.MIN_ROWS (2), not 1: at one row the CPU's matrix product rounds differently (see there). A lone
# stream therefore runs with one padding row, and its text, probabilities and top-5 are bit for bit the ones it gets
# sharing a call with 31 others (this padding is the float product's; the app's float32 generator multiplies in whole
# numbers, exact at any row count: WHOLE_BATCH_SIZES, TextGenerator). Without AVX-512 (decoding.row_multiple) oneDNN's
# product works on tiles of six rows and rounds a tile of one to three left-over rows differently, while four or five
# left over round as a whole tile (measured with every product here, 1-130 rows): the sizes there leave four over, 4 to
# 34 rows. A step's products all have one row per stream, so these sizes suffice (translations and captions, whose
# products also run over a row per source word or picture cell, pad to whole tiles instead: decoding.padded_size). One
# 64-character call of the shipped model there: 25.0 ms at 2 rows, 27.8 at 4, 33.0 at 6.
BATCH_SIZES = ((decoding.MIN_ROWS, 4, 8, 16, 32) if decoding.row_multiple() == 1 else
               tuple(decoding.AVX2_ROW_MULTIPLE * tiles + 4 for tiles in (0, 1, 2, 3, 5)))


# With whole numbers (`whole_numbers`) a row's numbers do not depend on the batch: the sizes only bound XLA's compiles.
WHOLE_BATCH_SIZES = (1, 2, 4, 8, 16, 32)


def choose_next(rows, temperature, top_k, top_p, seeds):
    """The in-graph twin of `sample_next`, one character id per row: rows (batch, vocab) float32 logits.

    temperature, top_p (batch,) float32, top_k (batch,) int32 and seeds (batch, 2) int64 are each row's own, so
    streams with different settings share a call. Temperature, then top-k, then nucleus (top-p) filtering as
    `filter_distribution` does, then a Gumbel-max draw with the row's stateless seed; temperature below
    GREEDY_BELOW is the argmax. Every operation works row by row. Compiles under XLA.

    The Gumbel noise is indexed by character id, not by rank, so the filtering (a sort of the vocabulary, a
    softmax and a cumulative sum in rank order, then the kept set mapped back to ids) runs only when a row of the
    call asks for top-k or top-p (`tf.cond`), and a row draws the same character whether or not its neighbours
    filter. Without filtering, a step's sampling is a division, the noise and an argmax: on an AVX2-only AMD EPYC
    (2026-12-08) the filtering took about a sixth of a 4-row step of the shipped model.
    """
    import tensorflow as tf

    vocab = rows.shape[-1]
    scaled = rows / tf.maximum(temperature, GREEDY_BELOW)[:, None]

    def filtered():
        ordered, order = tf.math.top_k(scaled, vocab)  # (batch, vocab), most likely first; ties keep the lower index
        probabilities = decoding.row_softmax(ordered)
        rank = tf.range(vocab)[None, :]
        keep = tf.logical_or(top_k[:, None] <= 0, rank < top_k[:, None])
        # Nucleus: the smallest prefix whose mass reaches top_p, i.e. the ranks whose mass *before* them is below.
        keep = tf.logical_and(keep, tf.logical_or(top_p[:, None] >= 1.0,
                                                  tf.cumsum(probabilities, axis=-1, exclusive=True) < top_p[:, None]))
        # Back to character order: the rank of each id is where it sits in `order`.
        keep = tf.gather(keep, tf.argsort(order, axis=-1, stable=True), batch_dims=1)
        return tf.where(keep, scaled, tf.constant(-np.inf, scaled.dtype))

    filtering = tf.reduce_any(tf.logical_or(top_k > 0, top_p < 1.0))
    masked = tf.cond(filtering, filtered, lambda: scaled)
    # Gumbel-max: argmax(logits + Gumbel noise) is a draw from softmax(logits); it compiles under XLA, where
    # StatelessMultinomial with 64-bit seeds has no kernel. Each row draws with its own seed (a stateless op takes
    # one seed, hence the map), so a row's numbers are those it would draw alone.
    uniform = tf.map_fn(lambda seed: tf.random.stateless_uniform([vocab], seed, minval=np.finfo(np.float32).tiny,
                                                                 maxval=1.0),
                        seeds, fn_output_signature=tf.TensorSpec([vocab], tf.float32))  # (batch, vocab)
    pick = tf.argmax(masked - tf.math.log(-tf.math.log(uniform)), axis=-1, output_type=tf.int32)  # (batch,)
    greedy = tf.argmax(rows, axis=-1, output_type=tf.int32)
    return tf.where(temperature < GREEDY_BELOW, greedy, pick)


# Characters written per iteration of the chunk loop's tf.while_loop (for chunk sizes it divides): each iteration
# costs the executor a few dozen control operations besides the step's own.
UNROLLED = 2
BLOCKS_PER_CORE_AVX2 = 8  # KernelLayout's blocks per core on a CPU without AVX-512 (measured there: see below)
MAX_PARTS = 16


@dataclasses.dataclass(frozen=True)
class KernelLayout:
    """How `gru_step` multiplies the state by the GRU's recurrent kernel, the one large product of a step.

    - `transposed`: kernel^T (3 units, units) @ state^T instead of state @ kernel. oneDNN's AMX product wants its
      right-hand operand in a packed layout and packs a plain one on every call: for state (rows, 1024) @ kernel
      (1024, 3072) in bfloat16 that is the whole 6 MB kernel, every step. Turned around, the kernel is the left
      operand, read as it is, and only the few state columns are packed.
    - `parts`: the kernel cut into this many blocks of output columns, multiplied side by side on the inter-op
      threads: one per core where each op runs on one thread (`trainers.common.threads.serving_parts`), and
      BLOCKS_PER_CORE_AVX2 times that on a CPU without AVX-512.

    Measured on an Intel Xeon with AMX (2 cores, one thread per op, a 64-step loop of the product and a tanh,
    2026-12-07): bfloat16 at 2 rows 494 us a step plain, 317 turned, 229 turned in 2 parts; at 16 rows 555, 344,
    259. Float32 at 2 rows 498 plain, 314 in 2 parts; at 16 rows 930, 525; turning a float32 product around gained
    nothing (477 us in 2 parts at 2 rows). Every layout gave bit for bit the same result at 1-32 rows there (the
    sums run in the same order); tests/test_char_rnn.py checks the layouts agree.

    On an AVX2-only AMD EPYC (2 cores, float32, one thread per op, 2026-12-07), narrower blocks are faster: one
    64-character chunk call at 2 rows took 37.0 ms in 2 blocks, 31.1 in 4, 30.2 in 8, 25.8 in 16 (22.0-26.3 in
    16-48 in a second run, 16 the fastest), at 16 rows 91.3 / 72.1 / 69.1 / 66.6 ms, at 32 rows 169 / 139 / 123 /
    118 ms; with TensorFlow's default threads 8 blocks against 1: 28.8 / 43.1 ms at 2 rows, 97.7 / 109 at 16.
    The text, probabilities and states were bit for bit the same in 1, 2, 4, 8 and 16 blocks at 2-32 rows.
    """

    transposed: bool = False
    parts: int = 1

    @classmethod
    def for_this_process(cls, matmul_dtype: str) -> "KernelLayout":
        """Turned around for bfloat16 on a CPU with AMX (without AMX it was not measured); in one part per core
        where each op runs on one thread, else whole; on a CPU without AVX-512, BLOCKS_PER_CORE_AVX2 times as many
        (at most MAX_PARTS)."""
        from trainers.common.hardware import avx512, cpu_info
        from trainers.common.threads import serving_parts

        per_core = 1 if avx512() else BLOCKS_PER_CORE_AVX2
        return cls(transposed=matmul_dtype == "bfloat16" and "amx_bf16" in cpu_info()[1],
                   parts=max(1, min(serving_parts() * per_core, MAX_PARTS)))

    def cut(self, kernel) -> tuple:
        """The kernel (units, 3 units) as this layout multiplies it: a tuple of `parts` blocks."""
        import tensorflow as tf

        outputs = kernel.shape[-1]
        sizes = [outputs // self.parts + (1 if part < outputs % self.parts else 0) for part in range(self.parts)]
        if self.transposed:
            return tuple(tf.split(tf.transpose(kernel), sizes, axis=0))
        return tuple(tf.split(kernel, sizes, axis=1))

    def multiply(self, state, blocks):
        """state (batch, units) @ kernel, from `cut`'s blocks: (batch, 3 units)."""
        import tensorflow as tf

        if self.transposed:
            return tf.transpose(tf.concat([tf.matmul(block, state, transpose_b=True) for block in blocks], axis=0))
        return tf.concat([tf.matmul(state, block) for block in blocks], axis=1)


WHOLE_LEVELS = 511  # the largest whole number a kernel column is scaled to in the "whole" product (below)
EXACT_SUM = 2**24 - 1  # every whole number up to this is a float32, and so is every sum of them that stays below


def whole_numbers(kernel):
    """(kernel as whole numbers, float32; each column's scale divided by the input's; the input's scale) for
    `whole_product`.

    Each column of the kernel is scaled so that its largest weight is WHOLE_LEVELS and rounded; the input (a GRU
    state, every value in (-1, 1)) is scaled by the largest S with S * (the largest column's sum of |whole weights|)
    <= EXACT_SUM and rounded. Then every product, and every partial sum in whatever order a matrix kernel adds them
    up, is a whole number below 2^24: exact in float32. A row's result is the same bits alone (a matrix-vector
    kernel), in a tile of six rows (oneDNN's AVX2 product) or in any other batch, which the float product does
    not guarantee (decoding.MIN_ROWS, BATCH_SIZES)."""
    import tensorflow as tf

    kernel = tf.cast(kernel, tf.float32)
    column = tf.reduce_max(tf.abs(kernel), axis=0) / WHOLE_LEVELS
    column = tf.where(column > 0, column, tf.ones_like(column))
    whole = tf.round(kernel / column)
    input_scale = tf.floor(EXACT_SUM / tf.maximum(tf.reduce_max(tf.reduce_sum(tf.abs(whole), axis=0)), 1.0))
    return whole, column / input_scale, input_scale


def whole_product(state, whole, scale, input_scale, multiply=None):
    """state (batch, inputs) @ kernel from `whole_numbers`: the state rounded to whole numbers, an exact product,
    then each column scaled back. `multiply(x, whole)` is the product (a KernelLayout's, or tf.matmul)."""
    import tensorflow as tf

    return (multiply or tf.matmul)(tf.round(state * input_scale), whole) * scale


def folded_weights(model, matmul_dtype="float32", layout: KernelLayout = KernelLayout()):
    """(table, recurrent kernel in `matmul_dtype` cut as `layout` multiplies it, recurrent bias, whole) of the
    model's GRU, as `gru_step` uses them: the embedding folded into the input projection, (vocab, 3 units) float32.
    For `matmul_dtype="whole"` the kernel is `whole_numbers`' and `whole` is (its column scales, the state's scale,
    the output layer's `whole_numbers`); else None."""
    import tensorflow as tf

    cell = model.gru.cell
    if not (cell.reset_after and cell.use_bias):
        raise ValueError("gru_step expects a GRU with reset_after=True and biases (Keras' default)")
    kernel = tf.cast(cell.kernel, tf.float32)
    input_bias, recurrent_bias = tf.unstack(tf.cast(cell.bias, tf.float32))
    table = tf.matmul(tf.cast(model.embedding.embeddings, tf.float32), kernel) + input_bias  # (vocab, 3 units)
    if matmul_dtype == "whole":
        recurrent, scale, input_scale = whole_numbers(cell.recurrent_kernel)
        return table, layout.cut(recurrent), recurrent_bias, (scale, input_scale, whole_numbers(model.logits.kernel))
    return table, layout.cut(tf.cast(cell.recurrent_kernel, matmul_dtype)), recurrent_bias, None


def gru_step(model, matmul_dtype="float32", weights=None, layout: KernelLayout = KernelLayout()):
    """The GRU layer's step for a batch of character ids, with the embedding folded into the input projection.

    Keras' GRU cell (reset_after=True, implementation 2) computes x @ kernel + input_bias from the embedded
    character; for a character *id* that is row `id` of embedding_matrix @ kernel + input_bias (vocab x 3 units,
    1 MB for the shipped model), so a step reads the recurrent kernel and one table row instead of also
    multiplying by the 256 x 3072 input kernel. The table is computed from the live weights each time
    `gru_step` is called (once per compiled chunk), so a generator follows a model that is still training.
    Same gate order and activations as the cell; the tests check greedy text against the layer step by step.

    `matmul_dtype="bfloat16"` multiplies the state by a bfloat16 copy of the recurrent kernel (the one large
    product of a step) and keeps everything else in float32: the gates, the state, the logits. "whole" multiplies
    in whole numbers (`whole_numbers`): exact, so a row's numbers never depend on the batch. `weights` are
    `folded_weights` computed once with the same `layout` (a served model's weights do not change), else they are
    computed here. `layout` says how the product runs (`KernelLayout`).
    """
    import tensorflow as tf

    table, blocks, recurrent_bias, whole = (weights if weights is not None
                                            else folded_weights(model, matmul_dtype, layout))

    def step(chosen, state):  # chosen: (batch,) int32, state: (batch, units) -> new state (batch, units)
        x_z, x_r, x_h = tf.split(tf.gather(table, chosen), 3, axis=-1)
        if whole is not None:
            inner = whole_product(state, blocks, whole[0], whole[1], layout.multiply) + recurrent_bias
        else:
            inner = tf.cast(layout.multiply(tf.cast(state, matmul_dtype), blocks), tf.float32) + recurrent_bias
        recurrent_z, recurrent_r, recurrent_h = tf.split(inner, 3, axis=-1)
        z = tf.sigmoid(x_z + recurrent_z)
        r = tf.sigmoid(x_r + recurrent_r)
        candidate = tf.tanh(x_h + r * recurrent_h)
        return z * state + (1 - z) * candidate

    return step


def step_logits(model, weights):
    """The output layer for `gru_step`'s state, from `folded_weights`: the model's own Dense, or for "whole" weights
    its exact product."""
    whole = weights[3]
    if whole is None:
        return lambda state: model.logits(state)
    kernel, scale, input_scale = whole[2]
    return lambda state: whole_product(state, kernel, scale, input_scale) + model.logits.bias


def make_chunk_sampler(model, alternatives: int, chunk: int = CHUNK, jit_compile: bool = True,
                       matmul_dtype: str = "float32", frozen: bool = False, layout: KernelLayout | None = None):
    """A compiled function that writes `chunk` characters for every row of a batch in one call.

    `sample_chunk(logits, state, temperature, top_k, top_p, seed, position, forced, forced_count)` takes each row's
    logits of the next character (batch, vocab), GRU state (batch, units) and sampling settings (batch,) and
    returns the chosen ids (batch, chunk), the model's probability of each (batch, chunk), the top `alternatives`
    ids and probabilities at each position (batch, chunk, k), and the logits and state after the chunk.

    The first `forced_count` (batch,) steps of a row take their characters from `forced` (batch, chunk) instead of
    drawing them: that is how a prompt is read, in the same call as the other rows' text (its positions' outputs
    are not characters written). Drawn character j of a row (j from 0 after the forced ones) uses the stateless
    seed (seed, position + j), so a text depends only on its seed and settings, never on how it was chunked or on
    the rows beside it. Temperature, top-k and top-p filter as `filter_distribution` does;
    temperature 0 is greedy (argmax). One trace serves every call; XLA compiles once per batch size (hence
    BATCH_SIZES). `matmul_dtype` is gru_step's. The loop runs `gru_step` one character at a time with no Python
    in between, and with `jit_compile` XLA fuses each step's few dozen small ops into a handful.

    `frozen` folds the weights once, here, for a model whose weights will not change (the app's, `load`): each
    call then reads the same tensors. Folded in each call (a model still training: the trainer's sampler), a call
    also casts a fresh 6 MB bfloat16 copy of the recurrent kernel (1.65 ms) and computes the table (1.2 ms). One
    stream of 3,000 characters alone (Intel Xeon with AMX, bfloat16, side by side, best of 4): 1,486 chars/s live,
    1,626 frozen. The same text either way (tests/test_threads.py).

    `layout` is gru_step's; None (the default) is `KernelLayout.for_this_process`, decided when the sampler is made.
    """
    import tensorflow as tf

    layout = KernelLayout.for_this_process(matmul_dtype) if layout is None else layout
    weights = folded_weights(model, matmul_dtype, layout) if frozen else None
    vocab = model.config.vocab_size
    units = model.config.rnn_units
    shown = min(alternatives, vocab)
    unrolled = UNROLLED if chunk % UNROLLED == 0 else 1
    row = tf.TensorSpec([None], tf.float32)

    @tf.function(jit_compile=jit_compile, input_signature=[
        tf.TensorSpec([None, vocab], tf.float32), tf.TensorSpec([None, units], tf.float32), row,
        tf.TensorSpec([None], tf.int32), row, tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.int64),
        tf.TensorSpec([None, chunk], tf.int32), tf.TensorSpec([None], tf.int32)])
    def sample_chunk(logits, state, temperature, top_k, top_p, seed, position, forced, forced_count):
        folded = weights if weights is not None else folded_weights(model, matmul_dtype, layout)  # live weights
        step, logits_of = gru_step(model, matmul_dtype, folded, layout), step_logits(model, folded)

        def write_one(i, logits, state):
            probabilities = decoding.row_softmax(logits)  # (batch, vocab): the model's belief, before any filter
            best, best_ids = tf.math.top_k(probabilities, shown)  # (batch, shown)
            seeds = tf.stack([seed, position + tf.cast(i - forced_count, tf.int64)], axis=1)  # (batch, 2)
            drawn = choose_next(logits, temperature, top_k, top_p, seeds)  # (batch,)
            chosen = tf.where(i < forced_count, tf.gather(forced, i, axis=1), drawn)
            state = step(chosen, state)
            # A position's outputs, packed: [chosen id, top ids] and [its probability, top probabilities].
            ids = tf.concat([chosen[:, None], best_ids], axis=1)
            odds = tf.concat([tf.gather(probabilities, chosen[:, None], batch_dims=1), best], axis=1)
            return tf.cast(logits_of(state), tf.float32), state, ids, odds

        def body(i, logits, state, ids, odds):
            for offset in range(unrolled):  # a loop iteration costs a few dozen control ops: fewer, longer ones
                logits, state, step_ids, step_odds = write_one(i + offset, logits, state)
                ids, odds = ids.write(i + offset, step_ids), odds.write(i + offset, step_odds)
            return i + unrolled, logits, state, ids, odds

        arrays = (tf.TensorArray(tf.int32, chunk, element_shape=[None, shown + 1]),
                  tf.TensorArray(tf.float32, chunk, element_shape=[None, shown + 1]))
        _, logits, state, ids, odds = tf.while_loop(lambda i, *_: i < chunk, body,
                                                    (tf.constant(0), logits, state, *arrays))
        ids, odds = (tf.transpose(array.stack(), [1, 0, 2]) for array in (ids, odds))  # (batch, chunk, 1 + shown)
        return ids[..., 0], odds[..., 0], ids[..., 1:], odds[..., 1:], logits, state

    return sample_chunk


@dataclasses.dataclass
class TextStream:
    """One text being written: the model's logits for its next character, its GRU state, how far it is, its own
    sampling settings, and the ids of its prompt not read yet. Plain NumPy and numbers, so a batcher anywhere (a
    thread of the app, a Ray Serve replica) can hold many and advance them together with `TextGenerator.advance`."""

    logits: np.ndarray  # (vocab,) float32
    state: np.ndarray  # (units,) float32
    length: int
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    written: int = 0
    pending: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int32))  # prompt ids to read

    @property
    def finished(self) -> bool:
        return self.written >= self.length


class TextGenerator:
    """Streams characters from a CharRNN: a compiled call writes a chunk of characters, carrying the GRU state.

    `start` reads a prompt into a `TextStream`; `advance(streams)` writes the next chunk of every stream in one
    compiled call (the app's batcher advances all of its users together this way); `chunks` is one stream alone,
    through the same call. The text for a seed is the same on every call, for every chunk size and batch.

    The loop runs as a TensorFlow graph without XLA by default (`jit_compile=False`), since the app batches users:
    XLA fuses a step's small ops, which makes one stream about 16 % faster (docs/speed.md), but its CPU matrix
    product stops scaling at a few rows (a 32-row chunk took as long per character as 4 rows) where oneDNN's keeps
    going (in-process, 16 streams wrote 11x the characters per second of one). The same seed gives another text
    with XLA (the two draw their random numbers differently).

    `precision` "mixed_bfloat16" multiplies by the recurrent kernel in bfloat16 (`gru_step`); "float32" (the
    default here) does not; `load` defaults to "auto", which follows the CPU (trainers.common.hardware).

    `whole_numbers` (float32 only; `load`'s default there) multiplies in whole numbers (`whole_numbers`): a row's
    numbers are then exact, the same alone as in any batch, so a lone stream runs at one row (a matrix-vector
    product) instead of being padded to BATCH_SIZES' smallest (4 rows without AVX-512, 2 with it), and no batch
    is padded at all without XLA. The weights are rounded to 511 steps a column and the state to about 1/114: on
    the shipped model, teacher-forced over 3,000 held-out characters, probabilities moved by at most 0.012 from
    float32's, the likeliest character agreed at 99.8 % of positions, and the text's bits per character were the
    same to 3 decimals (1.9227 against 1.9224; tests/test_precision.py holds a tolerance).
    """

    def __init__(self, model, vocabulary, alternatives: int = 5, chunk: int = CHUNK, jit_compile: bool = False,
                 precision: str = "float32", frozen: bool = False, whole_numbers: bool = False):
        from trainers.common.hardware import resolve_precision

        self.model = model
        self.vocabulary = vocabulary
        self.alternatives = alternatives
        self.chunk = chunk
        self.jit_compile = jit_compile
        self.precision = resolve_precision(precision)
        self.whole_numbers = whole_numbers and self.precision == "float32"
        self.matmul_dtype = ("bfloat16" if self.precision == "mixed_bfloat16" else
                             "whole" if self.whole_numbers else "float32")  # gru_step's
        self.batch_sizes = WHOLE_BATCH_SIZES if self.whole_numbers else BATCH_SIZES
        self._sample_chunk = make_chunk_sampler(model, alternatives, chunk, jit_compile, self.matmul_dtype, frozen)
        self.compiled_sizes: set[int] = set()  # batch sizes ready to call (XLA compiles each; a graph serves all)

    @classmethod
    def load(cls, path: Path, precision: str = "auto") -> "TextGenerator":
        """The generator of a checkpoint folder (config.json, model.weights.h5, vocab.json).

        `precision="auto"` multiplies by the GRU's recurrent kernel in bfloat16 where the CPU computes it natively
        (AMX / AVX512-BF16) and in float32 elsewhere, as the digits do. On an Intel Xeon with AMX (quiet,
        in-process, one chunk call), 16 streams wrote 1.34-1.46x the characters per second of float32 and 32
        streams 1.58x; one stream gains nothing (two rows: the product costs the same in either precision there).
        Teacher-forced over 2,000 characters, the probabilities moved by at most 0.0072 and the likeliest character
        agreed at 99.95 % of positions (tests/test_precision.py holds a tolerance). The prompt is read in the same
        precision (by the chunk loop), so greedy texts of the two part at near-ties (after "ROMEO:\n", 'o' 0.1812
        against 'E' 0.1804). The same seed gives the same text on one machine; the golden test and the SavedModel
        export use float32.
        """
        from trainers.char_rnn.model import load

        # A loaded model does not train (frozen); float32 multiplies in whole numbers (see the class).
        return cls(*load(Path(path)), precision=precision, frozen=True, whole_numbers=True)

    def start(self, prompt: str, length: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
              seed: int | None = None) -> TextStream:
        """A stream of `length` characters after `prompt`, nothing computed yet. The chunk calls read the prompt
        first, its characters forced instead of drawn, in the same call as the other streams' text: a prompt costs
        a batch what one more row's characters do, not a call of its own (a lone 23-character read took 14 ms, and
        186 ms at the median beside 16 users' calls, each request's first chunk waiting for it). A row's
        arithmetic never depends on its neighbours, so neither does where a stream starts. No seed draws one at
        random."""
        if seed is None:
            seed = int(np.random.default_rng().integers(0, 2**31))
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
        config = self.model.config
        # The logits are not read before the prompt's first character, which is forced; the state starts at zero.
        return TextStream(np.zeros(config.vocab_size, np.float32), np.zeros(config.rnn_units, np.float32), int(length),
                          float(temperature), int(top_k), float(top_p), int(seed),
                          pending=np.asarray(self.vocabulary.encode(prompt or "\n"), np.int32))

    def batch_size_for(self, rows: int) -> int:
        """How many streams to give `advance` at once when `rows` are waiting: the padded size they need if it
        has been compiled, else the largest compiled size (a batcher then makes several calls rather than stall
        every user while XLA compiles; `compile_batch_sizes` compiles the rest)."""
        wanted = self._padded_size(rows)
        if not self.jit_compile:  # one graph serves every size
            return wanted
        ready = [size for size in self.compiled_sizes if size <= wanted]
        return wanted if wanted in self.compiled_sizes or not ready else max(ready)

    def _padded_size(self, rows: int) -> int:
        """The rows of a call for `rows` streams: one of `batch_sizes` (at most the last), or with whole numbers
        and no XLA the streams themselves (a row's numbers do not depend on the others there)."""
        if self.whole_numbers and not self.jit_compile:
            return max(1, min(rows, self.batch_sizes[-1]))
        return next((size for size in self.batch_sizes if size >= rows), self.batch_sizes[-1])

    def compile_batch_sizes(self, sizes=None) -> None:
        """Compiles the chunk call for each batch size not ready yet (the app does it in the background; without
        XLA the first call traced the graph for every size)."""
        blank = self.start("\n", 1, temperature=0.0, seed=0)
        for size in sizes or self.batch_sizes:
            if size not in self.compiled_sizes:
                self.advance([dataclasses.replace(blank) for _ in range(size)])

    def advance(self, streams: list[TextStream]) -> list[list[GeneratedChar]]:
        """The next chunk of every stream (cut to what each still has to write), written in one compiled call per
        `batch_sizes[-1]` streams; each stream's logits, state, unread prompt and count move on in place. A stream
        still reading its prompt writes fewer characters (none while a whole chunk of prompt is read), a finished
        one an empty chunk. Each stream's characters, probabilities and alternatives are the same whatever the other
        streams are (BATCH_SIZES and `whole_numbers` say why)."""
        chunks = []
        for first in range(0, len(streams), self.batch_sizes[-1]):
            chunks += self._advance_together(streams[first: first + self.batch_sizes[-1]])
        return chunks

    def _advance_together(self, streams: list[TextStream]) -> list[list[GeneratedChar]]:
        import tensorflow as tf

        size = self._padded_size(len(streams))
        rows = decoding.padded_rows(streams, size)  # padding rows repeat the first: their output is dropped

        def column(values, dtype):
            return tf.constant(np.asarray(values, dtype))

        forced, forced_count = np.zeros((size, self.chunk), np.int32), np.zeros(size, np.int32)
        for row, stream in enumerate(rows):
            prompt = stream.pending[:self.chunk]
            forced[row, :len(prompt)], forced_count[row] = prompt, len(prompt)

        outputs = self._sample_chunk(
            column([stream.logits for stream in rows], np.float32), column([stream.state for stream in rows], np.float32),
            column([stream.temperature for stream in rows], np.float32), column([stream.top_k for stream in rows], np.int32),
            column([stream.top_p for stream in rows], np.float32), column([stream.seed for stream in rows], np.int64),
            column([stream.written for stream in rows], np.int64), tf.constant(forced), tf.constant(forced_count))
        logits, state = outputs[4].numpy(), outputs[5].numpy()
        # Python lists once (tolist gives the same floats as float() of each element, several times faster): with
        # 32 users this loop builds 2,048 characters and 10,240 alternatives per round, under the interpreter lock.
        ids, chosen, top_ids, top_probabilities = (output.numpy().tolist() for output in outputs[:4])
        self.compiled_sizes.update([size] if self.jit_compile else self.batch_sizes)
        characters = self.vocabulary.characters
        chunks = []
        for row, stream in enumerate(streams):
            read = int(forced_count[row])  # prompt characters this call read: their outputs are not text
            count = max(0, min(self.chunk - read, stream.length - stream.written))
            written = slice(read, read + count)
            chunks.append([GeneratedChar(characters[i], p, top=(top, top_p, characters)) for i, p, top, top_p
                           in zip(ids[row][written], chosen[row][written], top_ids[row][written],
                                  top_probabilities[row][written])])
            if read or count:
                stream.logits, stream.state, stream.written = logits[row], state[row], stream.written + count
                stream.pending = stream.pending[read:]
        return chunks

    def chunks(self, prompt: str, length: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
               seed: int | None = None) -> Iterator[list[GeneratedChar]]:
        """The `length` characters after `prompt`, a compiled chunk at a time (the last one cut to length): one
        stream advanced alone, through the same call a batch of streams takes.

        No seed draws one at random; the same seed and settings always give the same text."""
        stream = self.start(prompt, length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        while not stream.finished:
            chunk = self.advance([stream])[0]
            if chunk:  # not a call that only read the prompt
                yield chunk

    def stream(self, prompt: str, length: int, **sampling) -> Iterator[GeneratedChar]:
        for chunk in self.chunks(prompt, length, **sampling):
            yield from chunk

    def generate(self, prompt: str, length: int, **sampling) -> str:
        return "".join(step.char for step in self.stream(prompt, length, **sampling))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Generate text with the character-level GRU.")
    parser.add_argument("--prompt", default="\n", help="text to start from (default: a new line)")
    parser.add_argument("--length", type=int, default=300, help="characters to generate (1-10000)")
    parser.add_argument("--temperature", type=float, default=0.8, help="0 is greedy; higher is wilder (0-5)")
    parser.add_argument("--top-k", type=int, default=0, help="sample only among the k likeliest (0: all)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass in (0, 1] (1: off)")
    parser.add_argument("--seed", type=int, default=None, help="random seed; the same seed gives the same text")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="checkpoint folder")
    parser.add_argument("--precision", choices=("auto", "float32", "mixed_bfloat16"), default="auto",
                        help="the recurrent product in bfloat16 where the CPU computes it natively (auto), or not")
    return parser


def check_sampling(length: int, temperature: float, top_k: int, top_p: float) -> list[str]:
    """Problems with generation settings, as sentences (shared by the CLI and the app)."""
    problems = []
    if not 1 <= length <= 10000:
        problems.append(f"length must be between 1 and 10000 characters, got {length}")
    if not 0 <= temperature <= 5:
        problems.append(f"temperature must be between 0 and 5, got {temperature}")
    if top_k < 0:
        problems.append(f"top-k must be 0 (off) or a positive number, got {top_k}")
    if not 0 < top_p <= 1:
        problems.append(f"top-p must be greater than 0 and at most 1, got {top_p}")
    return problems


def main(argv=None) -> None:
    from trainers.common.checkpoint import CheckpointError
    from trainers.common.cli import fail

    args = build_parser().parse_args(argv)
    problems = check_sampling(args.length, args.temperature, args.top_k, args.top_p)
    if problems:
        fail("; ".join(problems))
    from trainers.common.threads import use_serving_threads

    use_serving_threads()  # one thread per op, as the app: the same seed gives the app's answer

    try:
        generator = TextGenerator.load(Path(args.checkpoint), args.precision)
    except CheckpointError as error:
        fail(str(error))
    vocabulary = generator.vocabulary
    unknown = vocabulary.unknown_characters(args.prompt)
    if unknown:
        print(f"note: the model has never seen {''.join(unknown)!r}; those characters are read as unknown.",
              file=sys.stderr)
    sys.stdout.write(args.prompt)
    for step in generator.stream(args.prompt, args.length, temperature=args.temperature, top_k=args.top_k,
                                 top_p=args.top_p, seed=args.seed):
        sys.stdout.write(step.char)
        sys.stdout.flush()
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
