"""What several benchmarks share: timing a call, timing arms side by side, a square-matmul peak probe, and a
gradio_client Client that does not rebuild a TLS context for every request.

Import it after TensorFlow's log level is set (the benchmarks set TF_CPP_MIN_LOG_LEVEL first).
"""

from __future__ import annotations

import ssl
import time
from pathlib import Path

# One TLS context for every client. gradio_client opens a new httpx client for each HTTP call, and httpx builds a new
# TLS context for each (loading the CA bundle: 26 ms of CPU on the Intel Xeon here) unless it is given one, even for
# the plain http of 127.0.0.1. At 16 users of benchmarks/serving.py the benchmark's process took 20-144 % of one
# core (13-32 % with one context), on the two cores the app needs; real users' browsers pay for their connections
# on their own machines.
TLS_CONTEXT = ssl.create_default_context()


def app_client(url: str):
    """A gradio_client Client of the app at `url`, with the shared TLS context."""
    from gradio_client import Client

    return Client(url, verbose=False, ssl_verify=TLS_CONTEXT)


def wait_until_warm(log: Path, timeout: float = 600) -> bool:
    """Waits until the app's log says its background warm-up has ended (playground.app.WARM_MESSAGE: every model
    loaded, the detector called once, the text model's batch sizes compiled), so a measured phase does not share
    the CPU with it. False if it did not end within `timeout` seconds."""
    from playground.app import WARM_MESSAGE

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.is_file() and WARM_MESSAGE in log.read_text(errors="replace"):
            return True
        time.sleep(0.5)
    return False


def patch_client_polling(seconds: float) -> None:
    """gradio_client hands a job the messages its SSE reader received by looking at a deque every 50 ms
    (`time.sleep(0.05)` in gradio_client.utils), so every wait it reports is rounded up to 50 ms steps: one user's
    chunks, 45 ms apart, arrived 51 ms apart at the median, and a request's end was seen up to 50 ms late.
    `--client-poll-ms 5` (serving.py, responsiveness.py) shortens the sleeps of that module so the waits measure
    the app, at a price: 16 users' clients looking 200 times a second take CPU from the app on the same two cores
    (Intel Xeon, quiet: 6,800-7,000 chars/s at 16 users against 7,800-7,900 with gradio_client's own 50 ms). A
    browser gets each message as it comes."""
    import gradio_client.utils

    class ShortSleeps:
        def __getattr__(self, name):
            return getattr(time, name)

        @staticmethod
        def sleep(wait: float) -> None:
            time.sleep(min(wait, seconds))

    gradio_client.utils.time = ShortSleeps()


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
