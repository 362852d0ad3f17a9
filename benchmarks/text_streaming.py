"""Text streaming speed at batch 1, measured side by side in one run with the shipped weights.

    python benchmarks/text_streaming.py [--checkpoint checkpoints/char_rnn] [--chars 3000] [--rounds 3]
    python benchmarks/text_streaming.py --default-threads   # every arm with TensorFlow's default threads

Every arm runs with the app's threads (one thread per op, `trainers.common.threads`) unless `--default-threads`:
the app's loop multiplies by the GRU kernel in one block per core only with them (`KernelLayout`).

Arms, each writing the same number of characters after the same prompt at temperature 0.8:
- **OneStep (tutorial)**: the 2021 TensorFlow tutorial's `OneStep` model -- one `tf.function` call per character
  that looks the characters up with `StringLookup`, runs the model, samples with `tf.random.categorical` inside
  the graph and returns the character; the Python loop carries the state. No confidence, no alternatives.
- **per-character Python loop**: the project's generator before chunking (one compiled model call per
  character, then `.numpy()`, a NumPy softmax, argsort and sampling in Python), with confidence and top-5.
- **chunked**: `TextGenerator`, a compiled `tf.while_loop` writing CHUNK characters per call with sampling,
  confidence and top-5 in the graph, the embedding folded into the GRU's input projection; without XLA (what the
  app runs since it batches users: benchmarks/serving.py) as `TextGenerator.load` builds it for this CPU: a
  bfloat16 recurrent product where bfloat16 is native, else float32 in whole numbers (exact, so a lone stream
  runs at one row); then the same loop with the float product (a lone stream padded to BATCH_SIZES' smallest,
  the app's loop before 2026-12-08), and with XLA (`jit_compile`, float32).
Rounds alternate between the arms so a noisy machine slows them alike; the best round of each is reported, and
every ratio is to the OneStep arm of the same run. Prints the CPU it ran on.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from trainers.common.hardware import describe_cpu  # noqa: E402
from trainers.char_rnn.generate import TextGenerator, filter_distribution, softmax  # noqa: E402

PROMPT = "ROMEO:"


class OneStep(tf.keras.Model):
    """The 2021 tutorial's single-step sampler, on this project's model (which takes and returns its state)."""

    def __init__(self, model, characters: list[str], temperature: float = 1.0):
        super().__init__()
        self.model = model
        self.temperature = temperature
        self.ids_from_chars = tf.keras.layers.StringLookup(vocabulary=characters, num_oov_indices=0)
        self.chars_from_ids = tf.keras.layers.StringLookup(vocabulary=characters, invert=True, num_oov_indices=0)

    @tf.function
    def generate_one_step(self, inputs, states):
        input_chars = tf.strings.unicode_split(inputs, "UTF-8")
        input_ids = tf.cast(self.ids_from_chars(input_chars).to_tensor(), tf.int32)
        predicted_logits, states = self.model(input_ids, state=states, training=False)
        predicted_logits = predicted_logits[:, -1, :] / self.temperature
        predicted_ids = tf.squeeze(tf.random.categorical(predicted_logits, num_samples=1), axis=-1)
        return self.chars_from_ids(predicted_ids), states

    def generate(self, prompt: str, length: int) -> str:
        states = self.model.initial_state(1)
        next_char = tf.constant([prompt])
        result = []
        for _ in range(length):
            next_char, states = self.generate_one_step(next_char, states)
            result.append(next_char)
        return tf.strings.join(result)[0].numpy().decode("utf-8")


def python_loop(generator: TextGenerator, prompt: str, length: int, temperature: float, seed: int) -> str:
    """The project's generator before chunking: one compiled model call per character, sampling in NumPy."""
    model, characters = generator.model, generator.vocabulary.characters
    rng = np.random.default_rng(seed)
    logits, state = model.next_logits(tf.constant(generator.vocabulary.encode(prompt)[None, :]),
                                      model.initial_state(1))
    text = []
    for _ in range(length):
        row = logits.numpy()[0].astype(np.float64)
        chosen = int(rng.choice(len(row), p=filter_distribution(row, temperature)))
        probabilities = softmax(row)
        top = np.argsort(-probabilities, kind="stable")[:5]
        text.append((characters[chosen], float(probabilities[chosen]),
                     [(characters[i], float(probabilities[i])) for i in top]))
        logits, state = model.next_logits(tf.constant([[chosen]], dtype=tf.int32), state)
    return "".join(step[0] for step in text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(Path(__file__).resolve().parents[1] / "checkpoints" / "char_rnn"))
    parser.add_argument("--chars", type=int, default=3000, help="characters per round for the fast arms")
    parser.add_argument("--slow-chars", type=int, default=400, help="characters per round for the per-character arms")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serving-threads", action="store_true",
                        help="every arm with one thread per op, as the app runs its models (trainers.common.threads); "
                             "the default since 2026-12-07 (the flag is kept for older command lines)")
    parser.add_argument("--default-threads", action="store_true",
                        help="every arm with TensorFlow's default threads, as a tutorial runs (not how the app runs)")
    args = parser.parse_args()
    serving_threads = not args.default_threads  # --serving-threads names the default
    if serving_threads:
        from trainers.common.threads import use_serving_threads

        use_serving_threads()

    print(describe_cpu())
    print(f"TF {tf.__version__}, {os.cpu_count()} CPUs, checkpoint {args.checkpoint}, temperature 0.8, batch 1, "
          f"{'one thread per op (the app)' if serving_threads else 'default threads'}")
    generator = TextGenerator.load(Path(args.checkpoint))  # the app's: precision "auto"
    xla = TextGenerator(generator.model, generator.vocabulary, jit_compile=True)
    float_product = TextGenerator(generator.model, generator.vocabulary, frozen=True)
    who = "the app" if serving_threads else "the app's loop"
    product = {"whole": "whole numbers, 1 row", "bfloat16": "bfloat16"}.get(generator.matmul_dtype, "float32")
    the_app = f"chunked, no XLA ({who}, {product})"
    baseline = OneStep(generator.model, generator.vocabulary.characters, temperature=0.8)
    arms = {
        "OneStep (tutorial, no confidence)": (args.slow_chars, lambda n, seed: baseline.generate(PROMPT, n)),
        "per-character Python loop": (args.slow_chars, lambda n, seed: python_loop(generator, PROMPT, n, 0.8, seed)),
        the_app: (args.chars, lambda n, seed: generator.generate(
            PROMPT, n, temperature=0.8, seed=seed)),
        f"chunked, float product ({float_product.batch_sizes[0]} rows)": (
            args.chars, lambda n, seed: float_product.generate(PROMPT, n, temperature=0.8, seed=seed)),
        "chunked + XLA (float32)": (args.chars, lambda n, seed: xla.generate(PROMPT, n, temperature=0.8, seed=seed)),
    }
    for _, run in arms.values():
        run(60, 0)  # trace and warm up
    best = {name: 0.0 for name in arms}
    for round_ in range(1, args.rounds + 1):  # a new seed every round: nothing is served from a compile cache
        for name, (length, run) in arms.items():
            started = time.perf_counter()
            run(length, round_)
            best[name] = max(best[name], length / (time.perf_counter() - started))
    reference = best["OneStep (tutorial, no confidence)"]
    print(f"\n{'arm (best of ' + str(args.rounds) + ' rounds)':50s} {'chars/s':>9s} {'vs OneStep':>11s}")
    for name, per_second in best.items():
        print(f"{name:50s} {per_second:9.0f} {per_second / reference:10.2f}x")
    app = best[the_app]
    print(f"\ngoal: >= 2000 chars/s and >= 3x OneStep: {app:.0f} chars/s, {app / reference:.1f}x -> "
          f"{'met' if app >= 2000 and app >= 3 * reference else 'NOT met'}")


if __name__ == "__main__":
    main()
