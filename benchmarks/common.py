"""What several benchmarks share: timing a call, timing arms side by side, and a square-matmul peak probe.

Import it after TensorFlow's log level is set (the benchmarks set TF_CPP_MIN_LOG_LEVEL first).
"""

from __future__ import annotations

import time


def time_calls(function, repeats: int) -> float:
    """Seconds per call of `function()` over `repeats` calls, after two untimed calls (tracing, warm-up)."""
    function()  # trace / warm up
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def alternating_rounds(arms: dict, calls: int, rounds: int) -> dict[str, list[float]]:
    """Seconds per call of every arm in each of `rounds` rounds of `calls` calls, the arms taking turns within a
    round (a noisy machine then slows them alike). `arms` maps a name to a function of no arguments; each is
    called twice untimed first (tracing, warm-up)."""
    for function in arms.values():
        function()
        function()
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(rounds):
        for name, function in arms.items():
            started = time.perf_counter()
            for _ in range(calls):
                function()
            seconds[name].append((time.perf_counter() - started) / calls)
    return seconds


def matmul_peak(dtype, size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a size x size matmul in `dtype` (tf.float32 or tf.bfloat16) under tf.function: the practical
    peak of this machine for that precision, measured now."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal((size, size), dtype=tf.float32), dtype)
    matmul = tf.function(lambda x: tf.reduce_sum(tf.cast(tf.matmul(x, x), tf.float32)))
    seconds = time_calls(lambda: float(matmul(a)), repeats)
    return 2 * size**3 / seconds
