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

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "char_rnn"
GREEDY_BELOW = 1e-4  # temperatures below this are treated as 0: dividing logits by them overflows


@dataclasses.dataclass
class GeneratedChar:
    """One generated character, the probability the model gave it, and its top alternatives there."""

    char: str
    probability: float
    alternatives: list[tuple[str, float]]


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


def choose_next(row, temperature, top_k, top_p, seed):
    """The in-graph twin of `sample_next`: one character id drawn from `row` (vocab,) float32 logits.

    Temperature, then top-k, then nucleus (top-p) filtering as `filter_distribution` does, then a Gumbel-max
    draw with the stateless `seed` (2,) int64; temperature below GREEDY_BELOW is the argmax. Compiles under XLA.
    """
    import tensorflow as tf

    vocab = row.shape[-1]
    scaled = row / tf.maximum(temperature, GREEDY_BELOW)
    ordered, order = tf.math.top_k(scaled, vocab)  # most likely first; ties keep the lower index first
    probabilities = tf.nn.softmax(ordered)
    rank = tf.range(vocab)
    keep = tf.logical_or(top_k <= 0, rank < top_k)
    # Nucleus: the smallest prefix whose mass reaches top_p, i.e. the ranks whose mass *before* them is below.
    keep = tf.logical_and(keep, tf.logical_or(top_p >= 1.0, tf.cumsum(probabilities, exclusive=True) < top_p))
    masked = tf.where(keep, ordered, tf.constant(-np.inf, ordered.dtype))
    # Gumbel-max: argmax(logits + Gumbel noise) is a draw from softmax(logits); it compiles under XLA, where
    # StatelessMultinomial with 64-bit seeds has no kernel.
    uniform = tf.random.stateless_uniform([vocab], seed, minval=np.finfo(np.float32).tiny, maxval=1.0)
    pick = tf.argmax(masked - tf.math.log(-tf.math.log(uniform)), output_type=tf.int32)
    greedy = tf.argmax(row, output_type=tf.int32)
    # tf.gather, not order[pick]: XLA needs a slice's bounds at compile time, so an indexed slice would make
    # every argument a compile-time constant and recompile the loop for each new seed, position or setting.
    return tf.where(temperature < GREEDY_BELOW, greedy, tf.gather(order, pick))


def gru_step(model):
    """The GRU layer's step for one character id, with the embedding folded into the input projection.

    Keras' GRU cell (reset_after=True, implementation 2) computes x @ kernel + input_bias from the embedded
    character; for a character *id* that is row `id` of embedding_matrix @ kernel + input_bias (vocab x 3 units,
    1 MB for the shipped model), so a step reads the recurrent kernel and one table row instead of also
    multiplying by the 256 x 3072 input kernel. The table is computed from the live weights each time
    `gru_step` is called (once per compiled chunk), so a generator follows a model that is still training.
    Same gate order and activations as the cell; the tests check greedy text against the layer step by step.
    """
    import tensorflow as tf

    cell = model.gru.cell
    if not (cell.reset_after and cell.use_bias):
        raise ValueError("gru_step expects a GRU with reset_after=True and biases (Keras' default)")
    kernel = tf.cast(cell.kernel, tf.float32)
    input_bias, recurrent_bias = tf.unstack(tf.cast(cell.bias, tf.float32))
    table = tf.matmul(tf.cast(model.embedding.embeddings, tf.float32), kernel) + input_bias  # (vocab, 3 units)
    recurrent_kernel = tf.cast(cell.recurrent_kernel, tf.float32)

    def step(chosen, state):  # chosen: () int32, state: (1, units) -> new state (1, units)
        x_z, x_r, x_h = tf.split(tf.gather(table, chosen[None]), 3, axis=-1)
        inner = tf.matmul(state, recurrent_kernel) + recurrent_bias
        recurrent_z, recurrent_r, recurrent_h = tf.split(inner, 3, axis=-1)
        z = tf.sigmoid(x_z + recurrent_z)
        r = tf.sigmoid(x_r + recurrent_r)
        candidate = tf.tanh(x_h + r * recurrent_h)
        return z * state + (1 - z) * candidate

    return step


def make_chunk_sampler(model, alternatives: int, chunk: int = CHUNK, jit_compile: bool = True):
    """A compiled function that writes `chunk` characters in one call, sampling inside the graph.

    `sample_chunk(logits, state, temperature, top_k, top_p, seed, position)` takes the logits of the next
    character (1, vocab) and the GRU state (1, units) and returns the chosen ids (chunk,), the model's
    probability of each (chunk,), the top `alternatives` ids and probabilities at each position (chunk, k), and
    the logits and state after the chunk. Character i of the text is drawn with the stateless seed
    (seed, position + i), so a text depends only on the seed and the settings, never on how it was chunked.
    Temperature, top-k and top-p filter as `filter_distribution` does; temperature 0 is greedy (argmax).
    One trace serves every call (fixed input signature); the loop runs `gru_step` one character at a time with
    no Python in between, and with `jit_compile` XLA fuses each step's few dozen small ops into a handful.
    """
    import tensorflow as tf

    vocab = model.config.vocab_size
    units = model.config.rnn_units
    shown = min(alternatives, vocab)
    @tf.function(jit_compile=jit_compile, input_signature=[
        tf.TensorSpec([1, vocab], tf.float32), tf.TensorSpec([1, units], tf.float32),
        tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32),
        tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.int64)])
    def sample_chunk(logits, state, temperature, top_k, top_p, seed, position):
        step = gru_step(model)  # inside the graph: the folded table is read from the current weights

        def body(i, logits, state, ids, chosen_probabilities, top_ids, top_probabilities):
            row = logits[0]
            probabilities = tf.nn.softmax(row)  # the model's own belief, before temperature or filtering
            best, best_ids = tf.math.top_k(probabilities, shown)
            chosen = choose_next(row, temperature, top_k, top_p, tf.stack([seed, position + tf.cast(i, tf.int64)]))
            state = step(chosen, state)
            logits = tf.cast(model.logits(state), tf.float32)
            return (i + 1, logits, state, ids.write(i, chosen),
                    chosen_probabilities.write(i, tf.gather(probabilities, chosen)),
                    top_ids.write(i, best_ids), top_probabilities.write(i, best))

        arrays = (tf.TensorArray(tf.int32, chunk), tf.TensorArray(tf.float32, chunk),
                  tf.TensorArray(tf.int32, chunk, element_shape=[shown]),
                  tf.TensorArray(tf.float32, chunk, element_shape=[shown]))
        _, logits, state, *arrays = tf.while_loop(lambda i, *_: i < chunk, body,
                                                  (tf.constant(0), logits, state, *arrays))
        ids, chosen_probabilities, top_ids, top_probabilities = (array.stack() for array in arrays)
        return ids, chosen_probabilities, top_ids, top_probabilities, logits, state

    return sample_chunk


class TextGenerator:
    """Streams characters from a CharRNN: a compiled call writes a chunk of characters, carrying the GRU state.

    With `jit_compile` (the default) XLA compiles the chunk loop once, a few seconds at the first call (the app
    does it while loading); the text for a seed is the same on every call and for every chunk size, but differs
    from the text the same seed gives without XLA (the two draw their random numbers differently).
    """

    def __init__(self, model, vocabulary, alternatives: int = 5, chunk: int = CHUNK, jit_compile: bool = True):
        self.model = model
        self.vocabulary = vocabulary
        self.alternatives = alternatives
        self.chunk = chunk
        self._sample_chunk = make_chunk_sampler(model, alternatives, chunk, jit_compile)

    @classmethod
    def load(cls, path: Path) -> "TextGenerator":
        """The generator of a checkpoint folder (config.json, model.weights.h5, vocab.json)."""
        from trainers.char_rnn.model import load

        return cls(*load(Path(path)))

    def chunks(self, prompt: str, length: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
               seed: int | None = None) -> Iterator[list[GeneratedChar]]:
        """The `length` characters after `prompt`, a compiled chunk at a time (the last one cut to length).

        No seed draws one at random; the same seed and settings always give the same text."""
        import tensorflow as tf

        if seed is None:
            seed = int(np.random.default_rng().integers(0, 2**31))
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
        characters = self.vocabulary.characters
        ids = self.vocabulary.encode(prompt or "\n")[None, :]  # (1, prompt_len)
        logits, state = self.model.next_logits(tf.constant(ids), self.model.initial_state(1))
        # A model built under mixed_bfloat16 (a trainer's per-epoch sample) returns a bfloat16 state; the chunk
        # loop computes in float32 (gru_step casts the weights), as for a float32 model.
        logits, state = tf.cast(logits, tf.float32), tf.cast(state, tf.float32)
        settings = (tf.constant(float(temperature), tf.float32), tf.constant(int(top_k), tf.int32),
                    tf.constant(float(top_p), tf.float32), tf.constant(seed, tf.int64))
        written = 0
        while written < length:
            ids, chosen, top_ids, top_probabilities, logits, state = self._sample_chunk(
                logits, state, *settings, tf.constant(written, tf.int64))
            ids, chosen, top_ids, top_probabilities = (ids.numpy(), chosen.numpy(), top_ids.numpy(),
                                                       top_probabilities.numpy())
            count = min(self.chunk, length - written)
            yield [GeneratedChar(characters[ids[i]], float(chosen[i]),
                                 [(characters[j], float(p)) for j, p in zip(top_ids[i], top_probabilities[i])])
                   for i in range(count)]
            written += count

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
    try:
        generator = TextGenerator.load(Path(args.checkpoint))
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
