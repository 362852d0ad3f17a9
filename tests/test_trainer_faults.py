"""A trainer killed with SIGKILL mid-epoch: its last epoch's servable folder is whole, the same command resumes
from it to the end, and nothing else is left behind (no half-written folder, nothing in checkpoints/)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.test_jobs import digest, write_text

ROOT = Path(__file__).resolve().parents[1]


def train_command(text: Path, out: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "trainers.char_rnn.train", "--source", "file", "--text-file", str(text),
            "--out", str(out), "--epochs", str(epochs), "--rnn-units", "16", "--embedding-dim", "8",
            "--batch-size", "8", "--seq-len", "20", "--steps-per-epoch", "400", "--log-every", "5",
            "--sample-length", "20", "--precision", "float32"]


def step_events(out: Path) -> list[dict]:
    path = out / "progress.jsonl"
    if not path.exists():
        return []
    return [event for event in map(json.loads, path.read_text().splitlines()[:-1]) if event["event"] == "step"]


def test_sigkill_mid_epoch_keeps_the_last_epoch_and_the_same_command_resumes(tmp_path):
    from trainers.char_rnn.generate import TextGenerator

    text, out = write_text(tmp_path / "writing.txt", characters=20000), tmp_path / "run"
    served = digest(ROOT / "checkpoints" / "char_rnn") if (ROOT / "checkpoints" / "char_rnn").is_dir() else None
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    trainer = subprocess.Popen(train_command(text, out, 3), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 600
    while not any(event["epoch"] == 2 and event["step"] >= 450 for event in step_events(out)):
        assert trainer.poll() is None, trainer.stderr.read()[-2000:]
        assert time.monotonic() < deadline, "the tiny run did not reach epoch 2 in 10 minutes"
        time.sleep(0.2)
    os.killpg(trainer.pid, signal.SIGKILL)  # mid-epoch 2, as the out-of-memory killer would
    trainer.wait(30)

    state = json.loads((out / "resume" / "state.json").read_text())
    assert state["epoch"] == 1 and state["step"] == 400
    model = TextGenerator.load(out / "checkpoint")  # the servable folder of epoch 1 is whole
    assert json.loads((out / "checkpoint" / "metrics.json").read_text())["epochs"] == 1
    assert model.generate("To", 5, temperature=0)
    assert not [path.name for path in out.iterdir() if path.name.startswith(".")], "a half-written folder is left"

    finished = subprocess.run(train_command(text, out, 3), cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=900)
    assert finished.returncode == 0, finished.stderr[-2000:]
    metrics = json.loads((out / "checkpoint" / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["steps"] == 1200
    assert [entry["epoch"] for entry in metrics["history"]] == [1, 2, 3]
    starts = [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()
              if '"event": "start"' in line]
    assert [event["resumed_from_epoch"] for event in starts] == [0, 1]
    if served is not None:
        assert digest(ROOT / "checkpoints" / "char_rnn") == served, "a training run never touches checkpoints/"
