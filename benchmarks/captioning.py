"""Captioning throughput, measured side by side in one run.

    python -m benchmarks.captioning [--checkpoint checkpoints/captioning] [--batch 64] [--steps 10]

Prints: MobileNet feature extraction (images/s) at batch 1 and batch 32; the decoder's training step eager vs
tf.function (steps/s and the ratio); captions/s for batched greedy over cached features, greedy for one picture
end to end, and beam search (width 3) for one picture end to end.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def timed(function, repeats: int) -> float:
    """Seconds per call, after one warm-up call (tracing, caches)."""
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(Path(__file__).resolve().parents[1] / "checkpoints" / "captioning"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)

    import keras

    from trainers.captioning.caption import Captioner
    from trainers.captioning.model import build
    from trainers.captioning.train import make_train_step

    captioner = Captioner.load(Path(args.checkpoint))
    rng = np.random.default_rng(0)
    pictures = rng.integers(0, 255, (32, 224, 224, 3), dtype=np.uint8)
    one = timed(lambda: captioner.encoder.features(pictures[:1]), 10)
    many = timed(lambda: captioner.encoder.features(pictures, batch_size=32), 3)
    print(f"feature extraction: {1 / one:7.1f} images/s at batch 1, {32 / many:7.1f} images/s at batch 32 "
          f"(x{(32 / many) / (1 / one):.1f})")

    config = captioner.model.config
    features = rng.random((args.batch, config.locations, config.feature_depth)).astype(np.float32)
    ids = rng.integers(3, config.vocab_size, (args.batch, captioner.max_len + 1)).astype(np.int32)
    ids[:, 0] = captioner.vocabulary.start
    rates = {}
    for eager in (True, False):
        model = build(config)
        step = make_train_step(model, keras.optimizers.Adam(1e-3), clip_norm=5.0, eager=eager)
        repeats = args.steps if not eager else max(2, args.steps // 3)
        rates[eager] = 1 / timed(lambda: step(features, ids[:, :-1], ids[:, 1:]), repeats)
    print(f"decoder train step (batch {args.batch}, {captioner.max_len} words): eager {rates[True]:.2f} steps/s, "
          f"tf.function {rates[False]:.2f} steps/s (x{rates[False] / rates[True]:.1f})")

    cached = features[:64]
    batched = timed(lambda: captioner.greedy_ids(cached), 3)
    single = timed(lambda: captioner.caption(pictures[0], beam=1), 5)
    beam = timed(lambda: captioner.caption(pictures[0], beam=3), 5)
    print(f"captions: {64 / batched:7.1f}/s batched greedy on cached features, {1 / single:5.1f}/s greedy end to "
          f"end, {1 / beam:5.1f}/s beam 3 end to end (beam/greedy time x{beam / single:.1f})")


if __name__ == "__main__":
    main()
