"""The shipped checkpoints give the outputs they gave before the training-core refactor.

tests/golden/outputs.json was recorded by `python -m tests.golden.record` on commit 733ce63 (before any refactor),
through each tab's `load(path)`: generated text for three seeds and settings (greedy and sampled), digit grids for
two seeds, greedy and beam-3 translations, greedy and beam-3 captions. Strings must be equal. Digits are compared
by the mean of each uint8 image within 0.01 grey levels (1/100 of one level: float32 rounding may flip the odd
pixel between builds of oneDNN, a different generator moves means by whole levels).

The translations and captions were re-recorded for the subword translator and the photo-trained captioner (issue 13), and the translations again when the translator trained on to epoch 15. The two *sampled* text entries were re-recorded when sampling moved into the compiled chunk loop (issue 14: a
Gumbel-max draw with stateless seeds instead of NumPy's generator, so a seed now names another text); the greedy
entry did not change. They were re-recorded again when the app's chunk loop left XLA for batching many users (issue
15: XLA and TensorFlow's own kernels draw stateless random numbers differently); the greedy entry again did not
change. All three were re-recorded when the app's float32 text moved to a product in whole numbers and the sampler's
noise to an index by character (issue 14, 2026-12-08): the greedy text parts from the float product's at a near-tie
after 150 characters (tests/test_precision.py holds the two within a tolerance).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.golden import record

GOLDEN = json.loads((Path(__file__).parent / "golden" / "outputs.json").read_text(encoding="utf-8"))
FOLDERS = {"text": "char_rnn", "digits": "dcgan", "translate": "nmt", "caption": "captioning"}


@pytest.mark.parametrize("name", list(GOLDEN))
def test_shipped_outputs_are_unchanged(name, monkeypatch):
    # The digits and texts were recorded in float32; the tabs draw and write in bfloat16 on CPUs that compute it natively
    # (tests/test_precision.py holds that path to a tolerance), so the float32 path is compared here.
    monkeypatch.setenv("EAGER_PLAYGROUND_NATIVE_BF16", "0")
    if not (record.CHECKPOINTS / FOLDERS[name] / "config.json").is_file():
        pytest.skip(f"checkpoints/{FOLDERS[name]} is not shipped")
    current = record.record({name: record.tab_loaders()[name]})[name]
    if name == "digits":
        for now, then in zip(current, GOLDEN[name], strict=True):
            assert now["seed"] == then["seed"]
            assert now["image_means"] == pytest.approx(then["image_means"], abs=0.01)
    else:
        assert current == GOLDEN[name]
