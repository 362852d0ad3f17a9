"""Digits follow the hardware's precision (issue 14): bfloat16 where the CPU computes it natively, float32
elsewhere, from the same float32 checkpoint, and the two agree within a stated tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from tests.golden import record

SHIPPED = record.CHECKPOINTS / "dcgan"


def test_auto_follows_the_cpu_flags(monkeypatch, tmp_path):
    from tests.tiny import dcgan as tiny
    from trainers.dcgan.generate import DigitGenerator

    checkpoint = tiny.make(tmp_path / "dcgan")
    monkeypatch.setenv("EAGER_PLAYGROUND_NATIVE_BF16", "1")
    assert DigitGenerator.load(checkpoint).precision == "mixed_bfloat16"
    monkeypatch.setenv("EAGER_PLAYGROUND_NATIVE_BF16", "0")
    assert DigitGenerator.load(checkpoint).precision == "float32"
    assert DigitGenerator.load(checkpoint, "mixed_bfloat16").precision == "mixed_bfloat16"


def test_loading_in_bfloat16_leaves_the_global_policy_alone(tmp_path):
    import keras

    from tests.tiny import dcgan as tiny
    from trainers.dcgan.generate import DigitGenerator

    before = keras.mixed_precision.global_policy().name
    DigitGenerator.load(tiny.make(tmp_path / "dcgan"), "mixed_bfloat16")
    assert keras.mixed_precision.global_policy().name == before


@pytest.mark.skipif(not (SHIPPED / "config.json").is_file(), reason="checkpoints/dcgan is not shipped")
def test_shipped_digits_in_bfloat16_match_float32_within_the_tolerance():
    from trainers.dcgan.generate import DigitGenerator
    from trainers.dcgan.model import latent_vectors

    float32 = DigitGenerator.load(SHIPPED, "float32")
    bfloat16 = DigitGenerator.load(SHIPPED, "mixed_bfloat16")
    latent = latent_vectors(1234, 200, float32.config.latent_dim)
    exact, rounded = float32.judged(latent), bfloat16.judged(latent)
    assert rounded.digits.dtype == np.uint8 and rounded.digits.shape == exact.digits.shape
    difference = np.abs(exact.digits.astype(int) - rounded.digits.astype(int))
    assert 0 < difference.max() <= 16  # bfloat16 does change pixels, by a few grey levels at most
    assert difference.mean() < 0.5
    agreement = np.mean(np.asarray(exact.guesses) == np.asarray(rounded.guesses))
    assert agreement >= 0.98
    assert np.mean(rounded.confidences) == pytest.approx(np.mean(exact.confidences), abs=0.005)
    again = bfloat16.judged(latent)
    assert np.array_equal(again.digits, rounded.digits)  # the same seed, the same digits on one machine
