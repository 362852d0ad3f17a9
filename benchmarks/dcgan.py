"""DCGAN speed: one adversarial training step eagerly, under tf.function, with XLA, in mixed bfloat16, and in
bfloat16 with the discriminator's translation augmentation; and digits per second of generation. All measured
in one run on the same machine, printed side by side.

    python -m benchmarks.dcgan [--batch-size 64] [--repeats 10]

The model is the shipped configuration (trainers/dcgan defaults). Timings are medians of `--repeats` calls
after two warm-up calls (tracing and compiling are not counted).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def median_seconds(function, repeats: int) -> float:
    function()
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def step_time(mode: str, batch_size: int, repeats: int) -> float:
    import keras
    import numpy as np
    import tensorflow as tf

    from trainers.dcgan.model import build
    from trainers.dcgan.train import TrainConfig, make_train_step

    defaults = TrainConfig()
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if "bf16" in mode else "float32")
    try:
        generator, discriminator = build(defaults.model_config())
    finally:
        keras.mixed_precision.set_global_policy("float32")
    optimizers = [keras.optimizers.Adam(defaults.learning_rate, beta_1=defaults.beta_1) for _ in range(2)]
    step = make_train_step(generator, discriminator, *optimizers, defaults.latent_dim, defaults.label_smoothing,
                           eager=True, augment_policy="translation" if "augment" in mode else "")
    if mode != "eager":
        step = tf.function(step, jit_compile="xla" in mode)
    real = tf.constant(np.random.default_rng(0).uniform(-1, 1, (batch_size, 28, 28, 1)).astype(np.float32))
    return median_seconds(lambda: float(step(real)["d_loss"]), repeats)


def generation_rate(mode: str, count: int, repeats: int) -> float:
    import numpy as np
    import tensorflow as tf

    from trainers.dcgan.model import build, latent_vectors
    from trainers.dcgan.train import TrainConfig

    generator, _ = build(TrainConfig().model_config())
    latent = tf.constant(latent_vectors(0, count, 100))
    run = (lambda: generator(latent, training=False)) if mode == "eager" else \
        tf.function(lambda: generator(latent, training=False))
    seconds = median_seconds(lambda: np.asarray(run()), repeats)
    return count / seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="DCGAN step time and generation speed")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--count", type=int, default=256, help="digits per generation call")
    args = parser.parse_args(argv)
    modes = ["eager", "tf.function", "tf.function+xla", "tf.function+bf16", "tf.function+bf16+augment"]
    times = {}
    for mode in modes:
        try:
            times[mode] = step_time(mode, args.batch_size, args.repeats)
        except Exception as error:  # e.g. XLA unavailable on this build: say so and keep going
            print(f"{mode}: failed ({type(error).__name__}: {str(error).splitlines()[0][:120]})")
    base = times.get("eager")
    print(f"\nTraining step, batch {args.batch_size} (median of {args.repeats}):")
    print(f"{'mode':<26}{'s/step':>10}{'images/s':>12}{'vs eager':>10}")
    for mode, seconds in times.items():
        ratio = f"{base / seconds:.2f}x" if base else "-"
        print(f"{mode:<26}{seconds:>10.4f}{args.batch_size / seconds:>12.0f}{ratio:>10}")
    rates = {mode: generation_rate(mode, args.count, args.repeats) for mode in ("eager", "tf.function")}
    print(f"\nGeneration, {args.count} digits per call (float32, as the app serves it):")
    for mode, rate in rates.items():
        print(f"{mode:<26}{rate:>10.0f} digits/s{rate / rates['eager']:>10.2f}x")


if __name__ == "__main__":
    main()
