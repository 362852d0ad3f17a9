"""What CPU this is, and which precision it computes fastest (no TensorFlow import).

Machines of this project's kind differ: some are Intel Xeon with AVX-512 and AMX-bf16, where bfloat16 matmuls
run natively and are several times faster than float32; some are AMD EPYC with AVX2 only, where TensorFlow
emulates bfloat16 and a `mixed_bfloat16` step is *slower* than float32 (7x for the DCGAN). `native_bfloat16()`
reads the CPU flags and, where they promise native bfloat16, confirms it with a short matmul probe
(`bfloat16_speedup`); `resolve_precision("auto")` turns that into the Keras policy a trainer or a server uses.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # either means the CPU multiplies bfloat16 natively
PRECISIONS = ("auto", "float32", "mixed_bfloat16")
PROBE_SIZE = 512  # the probe's square matmul: a few ms in float32 on one thread, so the probe costs tens of ms
PROBE_MARGIN = 1.2  # bfloat16 must multiply at least this much faster than float32 to count as native


@functools.lru_cache(maxsize=1)
def cpu_info() -> tuple[str, frozenset[str]]:
    """(model name, flags) of the first CPU in /proc/cpuinfo; ("unknown", {}) where there is none."""
    name, flags = "unknown", frozenset()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return name, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and name == "unknown":
            name = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
        if name != "unknown" and flags:
            break
    return name, flags


def avx512() -> bool:
    """True where the CPU has AVX-512 (avx512f). Without it, oneDNN runs its AVX2 kernels, which tile a matrix
    product's rows differently (trainers.common.decoding.row_multiple) and run the text step's product faster in
    narrower blocks (trainers.char_rnn.generate.KernelLayout)."""
    return "avx512f" in cpu_info()[1]


def bfloat16_flags() -> bool:
    """True where the CPU's flags promise native bfloat16 (AMX-bf16 or AVX512-BF16)."""
    return any(flag in cpu_info()[1] for flag in BF16_FLAGS)


@functools.lru_cache(maxsize=1)
def bfloat16_speedup() -> float:
    """How many times faster TensorFlow multiplies two PROBE_SIZE-square matrices in bfloat16 than in float32 in
    this process (best of 5 timed products each, after one untimed): above 1 where bfloat16 is faster.

    It imports TensorFlow and runs ops, which fixes the process's thread pools and devices: call it only once
    the process has set them (`trainers.common.threads.use_serving_threads`, `run.make_strategy`). Measured once
    per process."""
    import time

    import tensorflow as tf

    seconds = {}
    for dtype in (tf.float32, tf.bfloat16):
        left, right = (tf.cast(tf.random.stateless_uniform([PROBE_SIZE, PROBE_SIZE], [0, seed]), dtype)
                       for seed in (1, 2))
        tf.matmul(left, right).numpy()  # the first call creates oneDNN's kernel for the shape
        times = []
        for _ in range(5):
            start = time.perf_counter()
            tf.matmul(left, right).numpy()
            times.append(time.perf_counter() - start)
        seconds[dtype] = min(times)
    return seconds[tf.float32] / seconds[tf.bfloat16]


def native_bfloat16() -> bool:
    """True where the CPU computes bfloat16 natively: its flags say AMX-bf16 or AVX512-BF16 *and* the matmul probe
    finds bfloat16 at least PROBE_MARGIN times faster than float32 (a virtual machine can show a flag that the
    host does not honour at full speed). Without the flags no probe runs. EAGER_PLAYGROUND_NATIVE_BF16=0/1
    overrides both."""
    forced = os.environ.get("EAGER_PLAYGROUND_NATIVE_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    return bfloat16_flags() and bfloat16_speedup() >= PROBE_MARGIN


def resolve_precision(precision: str) -> str:
    """The Keras policy for a precision setting: "auto" is mixed_bfloat16 on native-bf16 CPUs, else float32."""
    if precision == "auto":
        return "mixed_bfloat16" if native_bfloat16() else "float32"
    return precision


def describe_cpu(probe: bool = False) -> str:
    """One line for benchmark output: the CPU model, its vector/matrix flags and the core count, and whether they
    promise native bfloat16; with `probe`, also the matmul probe's answer (which runs TensorFlow ops: see
    `bfloat16_speedup`)."""
    name, flags = cpu_info()
    shown = [flag for flag in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if flag in flags]
    line = (f"CPU: {name}, {os.cpu_count()} cores, flags {' '.join(shown) or 'none of avx2/avx512/amx'}; "
            f"native bfloat16 by its flags: {'yes' if bfloat16_flags() else 'no'}")
    if probe and bfloat16_flags():
        line += f" (matmul probe: bfloat16 {bfloat16_speedup():.2f}x float32's speed)"
    return line
