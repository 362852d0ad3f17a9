"""Background training jobs (playground/jobs.py and its modules): real, tiny char-RNN runs in a temporary runs folder.

Each run is the trainer's own CLI in a subprocess, so these tests cover the whole path: validation, the process
group, progress.jsonl, cancel, crash reports, promotion into a temporary copy of the checkpoints, and an app
restart (a new Jobs object) finding the runs again. The shipped checkpoints are never touched.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from pathlib import Path

import psutil
import pytest

from playground import run_view, supervise, trainer_catalog
from playground.core_sharing import CORES, state_of, threads_of
from playground.jobs import JobError, Jobs, describe, discover_trainers
from playground.registry import Registry
from tests.conftest import make_tiny_checkpoints

TINY = {"rnn_units": 16, "batch_size": 8, "seq_len": 20, "steps_per_epoch": 5, "embedding_dim": 8,
        "log_every": 1, "sample_length": 40}
WORDS = ("to be or not that is the question whether tis nobler in the mind to suffer the slings and arrows of "
         "outrageous fortune or to take arms against a sea of troubles").split()


def write_text(path: Path, characters: int = 4000, seed: int = 0) -> Path:
    generator = random.Random(seed)
    lines = []
    while sum(len(line) + 1 for line in lines) < characters:
        lines.append(" ".join(generator.choice(WORDS) for _ in range(9)))
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def digest(folder: Path) -> str:
    """A hash of every file in a checkpoint folder (names and bytes)."""
    hasher = hashlib.sha256()
    for item in sorted(Path(folder).iterdir()):
        if item.is_file():
            hasher.update(item.name.encode())
            hasher.update(item.read_bytes())
    return hasher.hexdigest()


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    return make_tiny_checkpoints(tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    return write_text(tmp_path_factory.mktemp("text") / "my writing.txt")


@pytest.fixture
def jobs(tmp_path, checkpoints) -> Jobs:
    return Jobs(runs=tmp_path / "runs", checkpoints=checkpoints)


def test_trainers_are_discovered_by_convention():
    trainers = discover_trainers()
    assert "char_rnn" in trainers
    char_rnn = trainers["char_rnn"]
    assert char_rnn.sources == ("offline", "canonical", "file") and char_rnn.accepts_text_file
    assert char_rnn.main_settings == ("rnn_units", "batch_size", "seq_len", "learning_rate")
    # The run folder, resuming and the text file belong to the jobs code: never settable from a request.
    assert not {"out", "resume", "text_file", "source", "epochs"} & set(char_rnn.settings)
    for trainer in trainers.values():  # every trainer that plugs in must fit the tab
        assert isinstance(trainer.module.TrainConfig().validate(), list), trainer.name
        assert set(trainer.module.MAIN_SETTINGS) <= set(trainer.settings), f"{trainer.name}: unknown main settings"
        assert 1 <= len(trainer.main_settings) <= 6 and trainer.sources and trainer.run_checkpoint
    assert trainer_catalog.load_trainer("common") is None and trainer_catalog.load_trainer("../etc") is None


def test_discovery_needs_the_tensorflow_free_config_module(tmp_path, monkeypatch):
    """A trainer folder is offered only with both train.py (the command) and config.py (the contract)."""
    for name, files in (("new_model", ("train.py", "config.py")), ("no_config", ("train.py",)),
                        ("no_train", ("config.py",))):
        (tmp_path / name).mkdir()
        for file in files:
            (tmp_path / name / file).write_text("")
    monkeypatch.setattr(trainer_catalog, "TRAINERS", tmp_path)
    assert trainer_catalog.contract_module_name("new_model") == "trainers.new_model.config"
    assert trainer_catalog.load_trainer("no_config") is None and trainer_catalog.load_trainer("no_train") is None


def test_discovery_and_the_jobs_code_never_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys; from playground.jobs import Jobs, discover_trainers; found = discover_trainers(); "
            "assert 'char_rnn' in found, found; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", "discovering trainers must not import TensorFlow or Keras"


def test_liveness_ignores_zombies_and_reused_pids(tmp_path):
    import subprocess
    import sys

    run_dir = tmp_path / "char_rnn-20260101-120000"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(run_dir)])
    try:
        assert supervise.alive(child.pid, run_dir)
        assert not supervise.alive(child.pid, tmp_path / "char_rnn-20260101-120001"), "another program's pid"
        assert not supervise.alive(None, run_dir)
        child.kill()
        wait_for(lambda: child.pid not in supervise.group_members(os.getpgid(0)), 15, "the child to end")
        assert psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, "ended but not yet reaped"
        assert not supervise.alive(child.pid, run_dir), "a zombie has ended"
    finally:
        child.kill()
        child.wait()
    assert not supervise.alive(child.pid, run_dir)


@pytest.mark.parametrize("request_, expected", [
    (dict(model="nope"), "no trainable model 'nope'"),
    (dict(model="char_rnn", source="web"), "char_rnn can train on offline, canonical, file"),
    (dict(epochs=0), "epochs must be between 1 and 1000"),
    (dict(epochs=2.5), "epochs must be a whole number"),
    (dict(settings={"rnn_units": "lots"}), "rnn units must be a whole number"),
    (dict(settings={"rnn_units": 16.5}), "rnn units must be a whole number"),
    (dict(settings={"rnn_units": True}), "rnn units must be a whole number"),
    (dict(settings={"learning_rate": 5.0}), "learning-rate must be between"),
    (dict(settings={"rnn_units": -3}), "rnn-units must be greater than zero"),
    (dict(settings={"dropout_rate": 0.1}), "char_rnn has no setting 'dropout_rate'"),
    (dict(settings={"out": "/etc"}), "set by the page itself"),
    (dict(settings={"text_file": "/etc/passwd"}), "set by the page itself"),
    (dict(settings=["rnn_units", 4]), "settings must be a JSON object"),
    (dict(source="file"), "choose a UTF-8 text file"),
])
def test_bad_settings_are_refused_with_a_sentence(jobs, request_, expected):
    arguments = {"model": "char_rnn", "source": "offline", "epochs": 1, "settings": {}, **request_}
    with pytest.raises(JobError, match=expected.replace("(", r"\(")):
        jobs.start(**arguments)
    assert not (jobs.runs.exists() and any(jobs.runs.iterdir())), "a refused request must not create a run"


def test_uploads_must_be_long_utf8_text(jobs, tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(("Señor " * 500).encode("latin-1"))
    with pytest.raises(JobError, match="latin1.txt is not UTF-8 text"):
        jobs.start("char_rnn", "file", 1, TINY, upload=latin1)
    short = write_text(tmp_path / "short.txt", characters=300)
    with pytest.raises(JobError, match="short.txt has only"):
        jobs.start("char_rnn", "file", 1, TINY, upload=short)


@pytest.mark.parametrize("run_id", ["../runs", "..", "/etc/passwd", "char_rnn-20260101-120000/../../x",
                                    "char_rnn-20260101-120000/", "CHAR_RNN-20260101-120000", "", None, 7,
                                    "char_rnn-2026-01-01", "a" * 300])
def test_path_like_run_ids_are_refused(jobs, run_id):
    for action in (jobs.get, jobs.status, jobs.cancel, jobs.promote, jobs.run_dir):
        with pytest.raises(JobError, match="is not a run id"):
            action(run_id)
    with pytest.raises(JobError, match="there is no run"):
        jobs.status("char_rnn-20260101-120000")
    with pytest.raises(JobError, match="is not a model name"):
        jobs.restore_previous("../char_rnn")


def test_tiny_run_finishes_promotes_and_restores(jobs, checkpoints, text_file):
    served = checkpoints / "char_rnn"
    before = digest(served)
    registry = Registry(checkpoints)
    loads = []
    registry.get("char_rnn", lambda path: loads.append(path) or len(loads))

    run = jobs.start("char_rnn", "file", 2, TINY, upload=text_file)
    assert run.status == "running" and (jobs.run_dir(run.run_id) / "my_writing.txt").is_file()
    assert "--text-file" in run.command and str(text_file) not in run.command  # trains on its own copy
    wait_for(lambda: jobs.get(run.run_id).status != "running", 600, "the tiny run to finish")  # ~30 s when idle
    info = jobs.status(run.run_id)
    assert info["status"] == "done", info["message"] + "\n" + run_view.last_lines(
        jobs.run_dir(run.run_id) / "output.log")
    assert info["epochs_done"] == 2 and info["step"] == info["total_steps"] == 10 and info["fraction"] == 1.0
    assert [point["step"] for point in info["losses"] if point["series"] == "loss"] == list(range(1, 11))
    assert [m["epoch"] for m in info["metrics"]] == [1, 2]
    assert all(0 < m["heldout_loss_nats_per_char"] < 10 for m in info["metrics"])
    assert isinstance(info["sample"]["text"], str) and len(info["sample"]["text"]) > 20
    assert info["promotable"] and info["settings"]["rnn_units"] == 16

    target = jobs.promote(run.run_id)
    assert target == served
    run_checkpoint = jobs.run_dir(run.run_id) / "checkpoint"
    assert not (served / "optimizer.npz").exists() and not (served / "state.json").exists()
    for name in ("config.json", "model.weights.h5", "vocab.json", "metrics.json"):
        assert (served / name).read_bytes() == (run_checkpoint / name).read_bytes(), name
    assert digest(jobs.previous_dir("char_rnn")) == before  # the replaced checkpoint is kept
    registry.get("char_rnn", lambda path: loads.append(path) or len(loads))
    assert len(loads) == 2, "the registry must reload a promoted checkpoint without a restart"
    assert jobs.get(run.run_id).promoted

    # A restarted app (a new Jobs object) finds the finished run and its metrics.
    again = Jobs(runs=jobs.runs, checkpoints=checkpoints)
    assert [r.run_id for r in again.list_runs()] == [run.run_id]
    assert again.status(run.run_id)["metrics"] == info["metrics"]

    promoted = digest(served)
    jobs.restore_previous("char_rnn")
    assert digest(served) == before
    jobs.restore_previous("char_rnn")  # restoring twice gives the promoted one back
    assert digest(served) == promoted
    jobs.restore_previous("char_rnn")
    assert digest(served) == before
    jobs.restore_previous("char_rnn")
    jobs.delete(run.run_id)  # deleting a promoted run leaves the checkpoint it promoted served
    assert digest(served) == promoted and not jobs.run_dir(run.run_id).exists()


def test_restart_finds_a_running_run_and_cancel_stops_its_process_group(jobs, checkpoints, text_file):
    served = digest(checkpoints / "char_rnn")
    long = {**TINY, "steps_per_epoch": 100000, "log_every": 5}
    run = jobs.start("char_rnn", "file", 50, long, upload=text_file)
    wait_for(lambda: jobs.status(run.run_id)["step"] > 0, 600, "the run's first logged step")

    with pytest.raises(JobError, match="only one run trains at a time"):
        jobs.start("char_rnn", "offline", 1, TINY)

    # While the app answers a request (a tab takes its model from the Registry), the run keeps to one core
    # (playground/core_sharing.py); with a single core there is nothing to share.
    cores = os.sched_getaffinity(0)
    Registry(checkpoints).get("char_rnn", lambda path: "a model")
    expected = {max(cores)} if len(cores) > 1 else cores
    assert {frozenset(os.sched_getaffinity(t)) for t in threads_of(run.pid)} == {frozenset(expected)}
    # While the app computes an answer the run is stopped, and it trains again once the answer is given.
    with CORES.answering():
        wait_for(lambda: state_of(run.pid) == "T", 10, "the run to be stopped during an answer")
    wait_for(lambda: state_of(run.pid) != "T", 10, "the run to train again after the answer")
    assert jobs.status(run.run_id)["paused_seconds"] > 0, "the page says how long the run was stopped"

    restarted = Jobs(runs=jobs.runs, checkpoints=checkpoints)  # the app restarted mid-run
    found = restarted.get(run.run_id)
    assert found.status == "running" and found.pid == run.pid
    assert restarted.active().run_id == run.run_id
    with pytest.raises(JobError, match="still training"):
        restarted.promote(run.run_id)
    with pytest.raises(JobError, match="cancel it before deleting"):
        restarted.delete(run.run_id)

    began = time.monotonic()
    with CORES.answering():  # cancelled in the middle of an answer, when the run is stopped: it is continued
        wait_for(lambda: state_of(run.pid) == "T", 10, "the run to be stopped during an answer")
        cancelled = restarted.cancel(run.run_id)  # this Jobs object never started the process: it uses the pid
    assert time.monotonic() - began < 15, "cancel must be prompt"
    assert cancelled.status == "cancelled"
    assert supervise.group_members(run.pid) == [], "every process of the run's group must have ended"
    wait_for(lambda: not Path(f"/proc/{run.pid}").exists(), 15, "the ended trainer to be reaped")
    assert digest(checkpoints / "char_rnn") == served, "cancelling must leave the served checkpoint untouched"
    wait_for(lambda: jobs.get(run.run_id).status == "cancelled", 15, "the first Jobs object to see the cancel")
    assert not CORES.confined, "an ended run is no longer shared with"
    with pytest.raises(JobError, match="not training"):
        jobs.cancel(run.run_id)
    jobs.delete(run.run_id)
    assert not jobs.run_dir(run.run_id).exists() and run.run_id not in [r.run_id for r in jobs.list_runs()]
    assert not [p for p in jobs.runs.iterdir() if run.run_id in p.name], "nothing of the deleted run is left"
    with pytest.raises(JobError, match="there is no run"):
        jobs.delete(run.run_id)


def test_a_crashing_run_reports_its_last_lines(jobs, text_file):
    # Valid settings that the trainer can only refuse once it has the data: batches bigger than the text.
    run = jobs.start("char_rnn", "file", 1, {**TINY, "batch_size": 4096, "seq_len": 1000}, upload=text_file)
    wait_for(lambda: jobs.get(run.run_id).status != "running", 600, "the run to crash")
    info = jobs.status(run.run_id)
    assert info["status"] == "failed"
    # The trainer's own one-line error is the message, and it is among the last lines of output shown.
    assert info["message"].startswith("error: the ") and "text" in info["message"]
    assert info["message"] in info["output_tail"].splitlines()
    assert not info["promotable"]
    with pytest.raises(JobError, match="failed, so there is nothing to promote"):
        jobs.promote(run.run_id)
    assert "failed" in describe(info)
