"""Precision follows the hardware: `--precision auto` is bfloat16 only where the CPU computes it natively."""

from __future__ import annotations

import pytest

from trainers.common import hardware
from trainers.common.config import RunConfig


@pytest.mark.parametrize("flags, expected", [("fpu avx2 fma", "float32"),
                                             ("avx2 avx512f avx512_bf16", "mixed_bfloat16"),
                                             ("avx2 avx512f amx_bf16 amx_tile", "mixed_bfloat16")])
def test_auto_is_bfloat16_only_with_native_bf16_flags(monkeypatch, flags, expected):
    monkeypatch.delenv("EAGER_PLAYGROUND_NATIVE_BF16", raising=False)
    monkeypatch.setattr(hardware, "cpu_info", lambda: ("Some CPU", frozenset(flags.split())))
    monkeypatch.setattr(hardware, "bfloat16_speedup", lambda: 3.0)  # the probe confirms what the flags say
    assert hardware.resolve_precision("auto") == expected
    assert hardware.resolve_precision("float32") == "float32"  # an explicit choice is kept
    assert hardware.resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    assert "Some CPU" in hardware.describe_cpu()


def test_the_matmul_probe_must_confirm_the_flags(monkeypatch):
    monkeypatch.delenv("EAGER_PLAYGROUND_NATIVE_BF16", raising=False)
    monkeypatch.setattr(hardware, "cpu_info", lambda: ("Some CPU", frozenset({"avx2", "avx512_bf16"})))
    monkeypatch.setattr(hardware, "bfloat16_speedup", lambda: 0.9)  # flags shown, bfloat16 slower: not native
    assert hardware.resolve_precision("auto") == "float32"
    monkeypatch.setattr(hardware, "bfloat16_speedup", lambda: hardware.PROBE_MARGIN * 0.99)
    assert hardware.resolve_precision("auto") == "float32"
    monkeypatch.setattr(hardware, "bfloat16_speedup", lambda: hardware.PROBE_MARGIN)
    assert hardware.resolve_precision("auto") == "mixed_bfloat16"
    assert "matmul probe: bfloat16 1.20x" in hardware.describe_cpu(probe=True)


def test_no_probe_runs_without_the_flags(monkeypatch):
    def fail():
        raise AssertionError("the probe ran on a CPU whose flags promise no bfloat16")

    monkeypatch.delenv("EAGER_PLAYGROUND_NATIVE_BF16", raising=False)
    monkeypatch.setattr(hardware, "cpu_info", lambda: ("Some CPU", frozenset({"avx2", "fma"})))
    monkeypatch.setattr(hardware, "bfloat16_speedup", fail)
    assert hardware.resolve_precision("auto") == "float32"
    assert "native bfloat16 by its flags: no" in hardware.describe_cpu(probe=True)


def test_the_real_probe_times_both_precisions():
    hardware.bfloat16_speedup.cache_clear()
    speedup = hardware.bfloat16_speedup()
    assert 0.01 < speedup < 100, speedup  # a ratio of two measured times, whichever precision wins here
    assert hardware.bfloat16_speedup() == speedup  # measured once per process


def test_the_environment_can_force_either_answer(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_info", lambda: ("Some CPU", frozenset({"avx2"})))
    monkeypatch.setenv("EAGER_PLAYGROUND_NATIVE_BF16", "1")
    assert hardware.resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setenv("EAGER_PLAYGROUND_NATIVE_BF16", "0")
    assert hardware.resolve_precision("auto") == "float32"


def test_this_machine_is_read_and_auto_is_every_trainers_default():
    name, flags = hardware.cpu_info()
    assert name and isinstance(flags, frozenset)
    assert RunConfig().precision == "auto"
    assert RunConfig(precision="fp8").validate() == ["precision must be auto, float32 or mixed_bfloat16, got 'fp8'"]
    from playground.trainer_catalog import discover_trainers

    for model, trainer in discover_trainers().items():
        if model in ("char_rnn", "dcgan"):
            assert trainer.module.TrainConfig().precision == "auto", model
