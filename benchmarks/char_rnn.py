"""Char-RNN speed, measured side by side in one run.

    python benchmarks/char_rnn.py [--units 1024 --batch 256 --seq-len 100 --steps 5]

Prints training steps/s for eager, tf.function (float32), tf.function + mixed_bfloat16 and tf.function + XLA,
as ratios to eager; generation characters/s with the one-step compiled method; and the achieved FLOP/s of the
fastest training step as a fraction of a square-matmul peak measured in the same run (float32 and bfloat16).
Random weights and random ids: the speed does not depend on what the model has learned.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import matmul_peak, time_calls  # noqa: E402
from benchmarks.flops import char_rnn_step  # noqa: E402
from trainers.char_rnn.data import CharVocabulary  # noqa: E402
from trainers.char_rnn.generate import TextGenerator  # noqa: E402
from trainers.char_rnn.model import CharRNNConfig, build  # noqa: E402
from trainers.char_rnn.train import make_train_step  # noqa: E402

VOCAB = 85


def train_seconds(args, policy: str, eager: bool, jit: bool) -> float:
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = build(CharRNNConfig(VOCAB, args.embedding, args.units))
    optimizer = keras.optimizers.Adam(1e-3)
    step = make_train_step(model, optimizer, clip_norm=1.0, eager=True)
    if not eager:
        step = tf.function(step, jit_compile=jit)
    ids = tf.random.uniform((args.batch, args.seq_len + 1), 0, VOCAB, dtype=tf.int32)
    inputs, targets = ids[:, :-1], ids[:, 1:]
    seconds = time_calls(lambda: float(step(inputs, targets)["loss"]), args.steps)
    keras.mixed_precision.set_global_policy("float32")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=1024)
    parser.add_argument("--embedding", type=int, default=256)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--chars", type=int, default=500, help="characters to generate")
    parser.add_argument("--skip-xla", action="store_true", help="XLA compiles the GRU loop slowly on CPU")
    args = parser.parse_args()

    print(f"GRU {args.units}, embedding {args.embedding}, batch {args.batch} x {args.seq_len}, "
          f"{args.steps} timed steps each, TF {tf.__version__}, {os.cpu_count()} CPUs")
    modes = [("eager float32", "float32", True, False), ("tf.function float32", "float32", False, False),
             ("tf.function mixed_bfloat16", "mixed_bfloat16", False, False)]
    if not args.skip_xla:
        modes.append(("tf.function + XLA float32", "float32", False, True))
    results = {name: train_seconds(args, policy, eager, jit) for name, policy, eager, jit in modes}
    eager_seconds = results["eager float32"]
    flops = char_rnn_step(args.batch, args.seq_len, args.embedding, args.units, VOCAB)
    print(f"\n{'training step':32s} {'s/step':>8s} {'steps/s':>8s} {'chars/s':>9s} {'vs eager':>9s}")
    for name, seconds in results.items():
        print(f"{name:32s} {seconds:8.3f} {1 / seconds:8.3f} {args.batch * args.seq_len / seconds:9.0f} "
              f"{eager_seconds / seconds:8.2f}x")

    peak32, peak16 = matmul_peak(tf.float32), matmul_peak(tf.bfloat16)
    print(f"\nmatmul peak (2048^2, this run): float32 {peak32 / 1e9:.0f} GFLOP/s, bfloat16 {peak16 / 1e9:.0f} GFLOP/s")
    for name, seconds in results.items():
        peak = peak16 if "bfloat16" in name else peak32
        achieved = flops / seconds
        print(f"{name:32s} achieved {achieved / 1e9:6.1f} GFLOP/s = {achieved / peak:5.1%} of the "
              f"{'bfloat16' if 'bfloat16' in name else 'float32'} matmul peak")

    keras.utils.set_random_seed(0)
    vocabulary = CharVocabulary([chr(32 + i) for i in range(VOCAB - 1)])
    generator = TextGenerator(build(CharRNNConfig(vocabulary.size, args.embedding, args.units)), vocabulary)
    generator.generate("a", 20, temperature=0.8, seed=0)  # trace
    started = time.perf_counter()
    generator.generate("a", args.chars, temperature=0.8, seed=0)
    per_second = args.chars / (time.perf_counter() - started)
    print(f"\ngeneration (batch 1, one compiled step per character): {per_second:.0f} characters/s")


if __name__ == "__main__":
    main()
