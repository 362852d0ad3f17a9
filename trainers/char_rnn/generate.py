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
    probabilities = filter_distribution(logits, temperature, top_k, top_p)
    if temperature < GREEDY_BELOW:
        return int(np.argmax(probabilities))
    return int(rng.choice(len(probabilities), p=probabilities))


class TextGenerator:
    """Streams characters from a CharRNN, carrying the GRU state from one character to the next."""

    def __init__(self, model, vocabulary, alternatives: int = 5):
        self.model = model
        self.vocabulary = vocabulary
        self.alternatives = alternatives

    @classmethod
    def load(cls, path: Path) -> "TextGenerator":
        """The generator of a checkpoint folder (config.json, model.weights.h5, vocab.json)."""
        from trainers.char_rnn.model import load

        return cls(*load(Path(path)))

    def stream(self, prompt: str, length: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
               seed: int | None = None) -> Iterator[GeneratedChar]:
        import tensorflow as tf

        rng = np.random.default_rng(seed)
        ids = self.vocabulary.encode(prompt or "\n")[None, :]  # (1, prompt_len)
        state = self.model.initial_state(1)
        logits, state = self.model.next_logits(tf.constant(ids), state)
        for _ in range(length):
            row = logits.numpy()[0].astype(np.float64)  # (vocab,)
            chosen = sample_next(row, temperature, top_k, top_p, rng)
            probabilities = softmax(row)  # the model's own belief, before temperature or filtering
            top = np.argsort(-probabilities, kind="stable")[: self.alternatives]
            yield GeneratedChar(self.vocabulary.characters[chosen], float(probabilities[chosen]),
                                [(self.vocabulary.characters[i], float(probabilities[i])) for i in top])
            logits, state = self.model.next_logits(tf.constant([[chosen]], dtype=tf.int32), state)

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
