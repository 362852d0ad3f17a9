"""The shipped text checkpoint: it loads, meets its bar on held-out works, and writes Shakespeare-like text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "char_rnn"


@pytest.fixture(scope="module")
def metrics():
    return json.loads((CHECKPOINT / "metrics.json").read_text())


def test_metrics_meet_the_bar_on_held_out_works(metrics):
    assert metrics["heldout_loss_nats_per_char"] <= 1.50
    assert metrics["data"]["heldout_works"] == ["hamlet_gut.txt", "twelfth_night_gut.txt"]
    assert metrics["data"]["heldout_share"] >= 0.05
    assert metrics["epochs"] == metrics["history"][-1]["epoch"]
    assert metrics["history"][-1]["heldout_loss_nats_per_char"] == pytest.approx(
        metrics["heldout_loss_nats_per_char"], abs=1e-4)


def test_files_are_small_and_servable():
    size = sum(item.stat().st_size for item in CHECKPOINT.iterdir())
    assert size < 25 * 2**20
    assert not (CHECKPOINT / "optimizer.npz").exists()


def test_shipped_model_writes_plausible_text():
    from trainers.char_rnn.generate import TextGenerator
    from trainers.char_rnn.model import load

    model, vocabulary = load(CHECKPOINT)
    text = TextGenerator(model, vocabulary).generate("Ham.\nTo be, or not to be", 400, temperature=0.5, seed=0)
    words = [word.strip(".,;:!?'\"-").lower() for word in text.split()]
    common = {"the", "and", "to", "of", "i", "a", "my", "you", "that", "is", "in", "not", "with", "me", "it"}
    assert sum(word in common for word in words) >= 0.15 * len(words), text
