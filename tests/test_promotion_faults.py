"""Promotion under faults: a kill -9 at every step of a checkpoint swap, promoting twice, worse runs, folder modes.

The swap is `trainers.common.checkpoint.write_folder`; a crash is simulated deterministically by the test hook
EAGER_PLAYGROUND_CRASH_AT=<step> (the process SIGKILLs itself right after that step), and without any hook by
strace's syscall fault injection (SIGKILL at the n-th rename, as in the probe). After each crash, recovery (or an
app restart) must leave the served checkpoint whole, byte-identical to the old or the new one, with no leftovers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from playground import promotion
from playground.jobs import JobError, Jobs
from playground.registry import Registry
from playground.run_record import DONE, Run, save_run
from trainers.common import checkpoint as checkpoint_io

ROOT = Path(__file__).resolve().parents[1]
RUN_ID = "char_rnn-20260101-120000"
STEPS = ("written", "journal", "aside", "in_place", "cleaned")
FINISHED = {"written": False, "journal": True, "aside": True, "in_place": True, "cleaned": True}


def files(folder: Path) -> dict[str, bytes]:
    """Every file of a folder, by relative path (hidden ones too: a leftover must show)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def fake_checkpoint(folder: Path, tag: str, heldout: float | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"tag": tag}))
    (folder / "model.weights.h5").write_bytes(tag.encode() * 1000)
    (folder / "vocab.json").write_text(json.dumps({"characters": list(tag)}))
    metrics = {"model": "char_rnn", "tag": tag}
    if heldout is not None:
        metrics["heldout_loss_nats_per_char"] = heldout
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def fake_run(runs: Path, run_id: str, checkpoint: Path, heldout: float | None = None, tag: str = "run") -> Path:
    """A finished run folder whose checkpoint/ is a copy of `checkpoint` (metrics changed so the bytes differ)."""
    folder = runs / run_id
    shutil.copytree(checkpoint, folder / "checkpoint")
    metrics = json.loads((folder / "checkpoint" / "metrics.json").read_text())
    metrics.update({"tag": tag, "epochs": 2})
    if heldout is not None:
        metrics["heldout_loss_nats_per_char"] = heldout
    (folder / "checkpoint" / "metrics.json").write_text(json.dumps(metrics))
    (folder / "checkpoint" / "state.json").write_text("{}")  # resume state: never served
    save_run(folder, Run(run_id, "char_rnn", "file", 2, {}, ["true"], status=DONE, started=time.time(),
                         ended=time.time()))
    return folder


def assert_clean(parent: Path, names: set[str]) -> None:
    assert {item.name for item in parent.iterdir()} == names, f"leftovers in {parent}"


# ---------------------------------------------------------------- defect 4: modes


@pytest.mark.parametrize("mask, folder_mode, file_mode", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_written_folders_get_mode_0755_less_the_umask(tmp_path, mask, folder_mode, file_mode):
    code = ("import os, sys; from pathlib import Path; from trainers.common import checkpoint as c\n"
            "def write(t):\n    (t / 'a.json').write_text('{}'); (t / 'sub').mkdir(); (t / 'sub' / 'b').write_text('b')\n"
            f"os.umask({mask}); c.write_folder(Path(sys.argv[1]), write)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "model")], check=True, cwd=ROOT)
    assert (tmp_path / "model").stat().st_mode & 0o777 == folder_mode
    assert (tmp_path / "model" / "sub").stat().st_mode & 0o777 == folder_mode
    assert (tmp_path / "model" / "a.json").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "model" / "sub" / "b").stat().st_mode & 0o777 == file_mode


# ---------------------------------------------------------------- defect 1: crash-safe swap


SWAP = ("import sys, json; from pathlib import Path; from trainers.common import checkpoint as c\n"
        "def write(t):\n"
        "    (t / 'config.json').write_text(json.dumps({'tag': 'new'}))\n"
        "    (t / 'model.weights.h5').write_bytes(b'new' * 1000)\n"
        "c.write_folder(Path(sys.argv[1]), write)\n")


@pytest.mark.parametrize("step", STEPS)
def test_kill_9_at_each_step_of_a_swap_is_recovered(tmp_path, step):
    target = fake_checkpoint(tmp_path / "char_rnn", "old")
    old = files(target)
    result = subprocess.run([sys.executable, "-c", SWAP, str(target)], cwd=ROOT,
                            env={**os.environ, checkpoint_io.CRASH_ENV: step})
    assert result.returncode == -9, "the swap must have been killed"
    checkpoint_io.recover(tmp_path)
    served = files(target)
    if FINISHED[step]:
        assert served == {"config.json": b'{"tag": "new"}', "model.weights.h5": b"new" * 1000}
    else:
        assert served == old
    assert_clean(tmp_path, {"char_rnn"})


def test_kill_9_while_writing_the_new_folder_keeps_the_old(tmp_path):
    target = fake_checkpoint(tmp_path / "char_rnn", "old")
    old = files(target)
    code = SWAP.replace("(t / 'model.weights.h5')", "__import__('os').kill(__import__('os').getpid(), 9); "
                                                    "(t / 'model.weights.h5')")
    assert subprocess.run([sys.executable, "-c", code, str(target)], cwd=ROOT).returncode == -9
    assert (tmp_path / ".char_rnn.new").is_dir()  # a partial new folder
    assert Registry(tmp_path).exists("char_rnn")
    checkpoint_io.recover(tmp_path)
    assert files(target) == old
    assert_clean(tmp_path, {"char_rnn"})


def test_the_registry_recovers_a_missing_checkpoint_before_loading(tmp_path):
    target = fake_checkpoint(tmp_path / "char_rnn", "old")
    assert subprocess.run([sys.executable, "-c", SWAP, str(target)], cwd=ROOT,
                          env={**os.environ, checkpoint_io.CRASH_ENV: "aside"}).returncode == -9
    assert not target.exists()  # exactly the probe's state: the target renamed aside, the new one not yet in place
    registry = Registry(tmp_path)
    assert registry.exists("char_rnn")
    assert registry.get("char_rnn", lambda path: json.loads((path / "config.json").read_text())) == {"tag": "new"}
    assert_clean(tmp_path, {"char_rnn"})


def test_leftovers_of_the_earlier_scheme_are_rolled_back(tmp_path):
    """The probe's state: `.char_rnn.old-*` (whole) and `.char_rnn.tmp-*` (unknown), no `char_rnn`."""
    fake_checkpoint(tmp_path / ".char_rnn.old-1a2b3c4d", "old")
    fake_checkpoint(tmp_path / ".char_rnn.tmp-x9y8z7", "half")
    (tmp_path / ".char_rnn.tmp-x9y8z7" / "model.weights.h5").unlink()
    assert checkpoint_io.recover(tmp_path) == {"char_rnn": "rolled back"}
    assert json.loads((tmp_path / "char_rnn" / "config.json").read_text()) == {"tag": "old"}
    assert_clean(tmp_path, {"char_rnn"})


def test_gitignore_covers_swap_leftovers():
    for name in (".char_rnn.old", ".char_rnn.new", ".char_rnn.swap.json", ".char_rnn.swap.json.part",
                 ".char_rnn.old-1a2b3c4d", ".char_rnn.tmp-abc", ".previous/char_rnn"):
        result = subprocess.run(["git", "check-ignore", "-q", f"checkpoints/{name}"], cwd=ROOT)
        assert result.returncode == 0, f"checkpoints/{name} is not ignored by git"


# ---------------------------------------------------------------- defect 2: promoting twice


# ---------------------------------------------------------------- defect 3: a worse run


# ---------------------------------------------------------------- the app: kill -9 mid-promote, restart, tabs


