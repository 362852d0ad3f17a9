"""What CPU this is, and which precision it computes fastest (no TensorFlow import).

Machines of this project's kind differ: some are Intel Xeon with AVX-512 and AMX-bf16, where bfloat16 matmuls
run natively and are several times faster than float32; some are AMD EPYC with AVX2 only, where TensorFlow
emulates bfloat16 and a `mixed_bfloat16` step is *slower* than float32 (7x for the DCGAN). `native_bfloat16()`
reads the CPU flags; `resolve_precision("auto")` turns that into the Keras policy a trainer or a server uses.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # either means the CPU multiplies bfloat16 natively
PRECISIONS = ("auto", "float32", "mixed_bfloat16")


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


def native_bfloat16() -> bool:
    """True where the CPU has AMX-bf16 or AVX512-BF16 (env EAGER_PLAYGROUND_NATIVE_BF16=0/1 overrides)."""
    forced = os.environ.get("EAGER_PLAYGROUND_NATIVE_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    return any(flag in cpu_info()[1] for flag in BF16_FLAGS)


def resolve_precision(precision: str) -> str:
    """The Keras policy for a precision setting: "auto" is mixed_bfloat16 on native-bf16 CPUs, else float32."""
    if precision == "auto":
        return "mixed_bfloat16" if native_bfloat16() else "float32"
    return precision


def describe_cpu() -> str:
    """One line for benchmark output: the CPU model, its vector/matrix flags and the core count."""
    name, flags = cpu_info()
    shown = [flag for flag in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if flag in flags]
    return (f"CPU: {name}, {os.cpu_count()} cores, flags {' '.join(shown) or 'none of avx2/avx512/amx'}; "
            f"native bfloat16: {'yes' if native_bfloat16() else 'no'}")
