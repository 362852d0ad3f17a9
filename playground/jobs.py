"""Background training runs: start, watch, cancel and promote, each run a separate process.

A run is the trainer's own command line, `python -m trainers.<model>.train --out <runs>/<run_id> ...`, started in a
process group of its own at a lower CPU priority, with its output captured to `<run>/output.log`. Its state
(model, settings, pid, status, times) lives in `<run>/job.json`, so a restarted app finds the runs that are still
going and the ones that ended. Progress is read from the trainer's `progress.jsonl` (see trainers/common/progress.py).

Trainable models are found by convention, not listed here: every `trainers/<name>/train.py` that defines
`TrainConfig`, `SOURCES`, `MAIN_SETTINGS` and `RUN_CHECKPOINT` (the contract in the Training tab issue).

Promoting a run copies its `<run>/checkpoint/` (without the optimizer and resume state) into
`checkpoints/<model>/` with an atomic folder swap; the checkpoint it replaces is kept in
`checkpoints/.previous/<model>/`, and `restore_previous` swaps the two back. The registry notices the new folder
and reloads the model on the next request, so the app never restarts.

Nothing here imports TensorFlow: the app process only reads files and starts processes.

    from playground.jobs import Jobs
    jobs = Jobs()
    run = jobs.start("char_rnn", source="offline", epochs=2, settings={"rnn_units": 256})
    jobs.status(run.run_id)["progress"]; jobs.cancel(run.run_id); jobs.promote(run.run_id)
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import typing
import uuid
from pathlib import Path

from playground.registry import checkpoints_root
from trainers.common import checkpoint as checkpoint_io
from trainers.common.progress import format_seconds, read_events

ROOT = Path(__file__).resolve().parents[1]
TRAINERS = ROOT / "trainers"
DEFAULT_RUNS = ROOT / "runs"
JOB_FILE = "job.json"
OUTPUT_FILE = "output.log"
UPLOADED_TEXT = "uploaded_text.txt"
PREVIOUS_FOLDER = ".previous"
NICE_INCREMENT = 10
CANCEL_GRACE_SECONDS = 5.0
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
RUN_ID_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}-\d{8}-\d{6}(?:-\d{1,3})?")
MODEL_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
# Settings a page or script never sets directly: the jobs code owns the run folder and resuming, the user's file
# arrives as an upload, and the tab's own controls carry source and epochs.
RESERVED = ("out", "resume", "text_file", "source", "epochs", "eager")
RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"
SERVER_RESTART_HINT = "the process ended while the app was not watching"


class JobError(ValueError):
    """A request the jobs system refuses, with a sentence a person understands."""


def runs_root() -> Path:
    return Path(os.environ.get("EAGER_PLAYGROUND_RUNS", DEFAULT_RUNS))


# ----------------------------------------------------------------------------------------------- trainers


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    kind: type
    default: typing.Any
    help: str

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()


@dataclasses.dataclass(frozen=True)
class Trainer:
    """What the Training tab needs to know about one model's trainer."""

    name: str
    module: typing.Any
    sources: tuple[str, ...]
    main_settings: tuple[str, ...]
    run_checkpoint: str
    settings: dict  # every settable TrainConfig field: name -> Setting

    @property
    def accepts_text_file(self) -> bool:
        return "file" in self.sources and "text_file" in {f.name for f in dataclasses.fields(self.module.TrainConfig)}

    def defaults(self) -> dict:
        return {name: setting.default for name, setting in self.settings.items()}


def _field_kind(config_cls, field) -> type:
    kind = typing.get_type_hints(config_cls)[field.name]
    if typing.get_origin(kind) is typing.Union or str(typing.get_origin(kind)) == "types.UnionType":
        kind = [a for a in typing.get_args(kind) if a is not type(None)][0]
    return kind


def load_trainer(name: str) -> Trainer | None:
    """The trainer of `name` if its train.py follows the contract; None otherwise (or while it cannot import)."""
    if not MODEL_NAME_PATTERN.fullmatch(name) or not (TRAINERS / name / "train.py").is_file():
        return None
    try:
        module = importlib.import_module(f"trainers.{name}.train")
    except Exception:  # a trainer that is being written may not import yet; it simply is not offered
        return None
    needed = ("TrainConfig", "SOURCES", "MAIN_SETTINGS", "RUN_CHECKPOINT")
    if not all(hasattr(module, attribute) for attribute in needed) or not dataclasses.is_dataclass(module.TrainConfig):
        return None
    settings = {}
    for field in dataclasses.fields(module.TrainConfig):
        if field.name in RESERVED:
            continue
        kind = _field_kind(module.TrainConfig, field)
        # Only numbers and switches may be set freely; a text setting (often a path) only if the trainer lists it.
        if kind in (int, float, bool) or (kind is str and field.name in module.MAIN_SETTINGS):
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            settings[field.name] = Setting(field.name, kind, default, field.metadata.get("help", ""))
    main = tuple(name for name in module.MAIN_SETTINGS if name in settings)
    return Trainer(name, module, tuple(module.SOURCES), main, module.RUN_CHECKPOINT, settings)


def discover_trainers() -> dict[str, Trainer]:
    """Every trainer under trainers/ that follows the Training tab contract, by model name."""
    found = {}
    for folder in sorted(TRAINERS.iterdir()):
        if folder.is_dir() and folder.name != "common":
            trainer = load_trainer(folder.name)
            if trainer is not None:
                found[trainer.name] = trainer
    return found


def _convert(setting: Setting, value) -> typing.Any:
    """The value as the setting's type, or JobError with a sentence."""
    name = setting.name.replace("_", " ")
    if setting.kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            return value.strip().lower() in ("true", "yes", "1", "on")
        raise JobError(f"{name} must be true or false, got {value!r}")
    if setting.kind in (int, float):
        number = value
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            kind = "a whole number" if setting.kind is int else "a number"
            raise JobError(f"{name} must be {kind}, got {value!r}")
        if setting.kind is int:
            if float(number) != int(number):
                raise JobError(f"{name} must be a whole number, got {value!r}")
            return int(number)
        return float(number)
    if setting.kind is str:
        if not isinstance(value, str):
            raise JobError(f"{name} must be text, got {value!r}")
        if len(value) > 1000:
            raise JobError(f"{name} must be at most 1,000 characters")
        return value
    raise JobError(f"{name} cannot be set from the page")


# ----------------------------------------------------------------------------------------------- runs


@dataclasses.dataclass
class Run:
    """One run's record, as stored in `<run>/job.json`."""

    run_id: str
    model: str
    source: str
    epochs: int
    settings: dict
    command: list
    pid: int | None = None
    status: str = RUNNING
    started: float = 0.0
    ended: float | None = None
    returncode: int | None = None
    message: str = ""
    cancel_requested: bool = False
    promoted: float | None = None
    upload_name: str = ""

    @classmethod
    def from_dict(cls, data: dict) -> "Run":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def _alive(pid: int | None, run_dir: Path) -> bool:
    """True if `pid` is running and is this run's trainer (a reused pid of another program does not count)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":  # a zombie has ended; only its exit status is left
            return False
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True  # no /proc: trust the signal check
    return str(run_dir.name) in command


def group_members(pgid: int) -> list[int]:
    """The pids of the live (not zombie) processes in process group `pgid`, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
                members.append(int(entry.name))
    return members


def last_lines(path: Path, count: int = 20) -> str:
    """The last `count` lines of a (possibly large) text file."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16384))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line.rstrip("\r") for line in tail.replace("\r", "\n").splitlines() if line.strip()]
    return "\n".join(lines[-count:])


class Jobs:
    """The runs folder: starts, watches, cancels and promotes training runs. One run trains at a time."""

    def __init__(self, runs: Path | None = None, checkpoints: Path | None = None, python: str | None = None):
        self.runs = Path(runs) if runs is not None else runs_root()
        self.checkpoints = Path(checkpoints) if checkpoints is not None else checkpoints_root()
        self.python = python or sys.executable
        self._lock = threading.RLock()
        self._processes: dict[str, subprocess.Popen] = {}

    # ---- paths and records

    def run_dir(self, run_id) -> Path:
        """The folder of `run_id`, refusing anything that is not a run id made here (so no path can escape)."""
        if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
            raise JobError(f"{str(run_id)[:80]!r} is not a run id; run ids look like char_rnn-20260101-120000")
        folder = (self.runs / run_id).resolve()
        if folder.parent != self.runs.resolve():
            raise JobError(f"{run_id!r} is not a run id")
        return folder

    def get(self, run_id) -> Run:
        """The run's record, refreshed: a run whose process has ended is marked done, failed or cancelled."""
        folder = self.run_dir(run_id)
        try:
            run = Run.from_dict(json.loads((folder / JOB_FILE).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise JobError(f"there is no run {run_id!r}") from None
        except (OSError, ValueError, TypeError) as error:
            raise JobError(f"the record of run {run_id} cannot be read: {error}") from None
        if run.status == RUNNING and run_id not in self._processes and not _alive(run.pid, folder):
            with self._lock:
                self._finish(run, returncode=None)
        return run

    def exists(self, run_id) -> bool:
        """Whether the run has a record (it may have been deleted); JobError for anything that is not a run id."""
        return (self.run_dir(run_id) / JOB_FILE).is_file()

    def _save(self, run: Run) -> None:
        checkpoint_io.write_json(self.run_dir(run.run_id) / JOB_FILE, dataclasses.asdict(run))

    def list_runs(self) -> list[Run]:
        """Every run in the runs folder, newest first (folders without a job record, e.g. CLI runs, are skipped)."""
        runs = []
        if self.runs.is_dir():
            for folder in self.runs.iterdir():
                if RUN_ID_PATTERN.fullmatch(folder.name) and (folder / JOB_FILE).is_file():
                    try:
                        runs.append(self.get(folder.name))
                    except JobError:
                        continue
        return sorted(runs, key=lambda run: run.started, reverse=True)

    def active(self) -> Run | None:
        return next((run for run in self.list_runs() if run.status == RUNNING), None)

    # ---- starting

    def check(self, model, source, epochs, settings: dict | None = None, upload: str | Path | None = None):
        """(trainer, config values) for a request, or JobError listing every problem in sentences."""
        trainers = discover_trainers()
        if model not in trainers:
            offered = ", ".join(trainers) or "none"
            raise JobError(f"there is no trainable model {str(model)[:60]!r}; the models are: {offered}")
        trainer = trainers[model]
        if source not in trainer.sources:
            raise JobError(f"{model} can train on {', '.join(trainer.sources)}, not {str(source)[:60]!r}")
        epochs = _convert(Setting("epochs", int, 1, ""), epochs)
        if not isinstance(settings, dict):
            raise JobError("settings must be a JSON object of name: value pairs")
        values, problems = {}, []
        for name, value in settings.items():
            if name not in trainer.settings:
                hint = " (it is set by the page itself)" if name in RESERVED else ""
                problems.append(f"{model} has no setting {str(name)[:60]!r}{hint}")
                continue
            try:
                values[name] = _convert(trainer.settings[name], value)
            except JobError as error:
                problems.append(str(error))
        if problems:
            raise JobError("; ".join(problems))
        fields = {"source": source, "epochs": epochs, "out": str(self.runs / "check"), **values}
        if source == "file":
            if upload is None:
                raise JobError("choose a UTF-8 text file to train on (the 'file' source)")
            fields["text_file"] = str(self._check_upload(Path(upload)))
        config = trainer.module.TrainConfig(**fields)
        problems = config.validate()
        if problems:
            raise JobError("; ".join(problems))
        return trainer, {"source": source, "epochs": epochs, **values}

    @staticmethod
    def _check_upload(path: Path) -> Path:
        if not path.is_file():
            raise JobError("the uploaded file cannot be found; upload it again")
        if path.stat().st_size > MAX_UPLOAD_BYTES:
            raise JobError(f"the text file is larger than {MAX_UPLOAD_BYTES // 2**20} MB; use a smaller one")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            raise JobError(f"{path.name} is not UTF-8 text (byte {error.start} cannot be decoded); save it as "
                           f"UTF-8 and upload it again") from None
        if len(text) < 2000:
            raise JobError(f"{path.name} has only {len(text)} characters; give at least 2,000 to train on")
        return path

    def _new_run_id(self, model: str) -> str:
        stamp = f"{model}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        run_id, suffix = stamp, 1
        while (self.runs / run_id).exists():
            suffix += 1
            run_id = f"{stamp}-{suffix}"
        return run_id

    def start(self, model, source="offline", epochs=1, settings: dict | None = None,
              upload: str | Path | None = None) -> Run:
        """Validates the request and starts the run in the background; refuses while another run trains."""
        settings = {} if settings is None else settings
        trainer, values = self.check(model, source, epochs, settings, upload)
        with self._lock:
            running = self.active()
            if running is not None:
                raise JobError(f"run {running.run_id} ({running.model}) is still training and only one run trains "
                               f"at a time (runs are not queued); cancel it or wait until it finishes")
            run_id = self._new_run_id(trainer.name)
            folder = self.run_dir(run_id)
            folder.mkdir(parents=True)
            arguments = dict(values)
            upload_name = ""
            if source == "file":
                upload_name = Path(upload).name
                copy = folder / _text_copy_name(upload_name)  # named after the upload: metrics.json shows it
                shutil.copyfile(upload, copy)
                arguments["text_file"] = str(copy)
            command = [self.python, "-m", f"trainers.{trainer.name}.train", "--out", str(folder)]
            for name, value in arguments.items():
                flag = "--" + name.replace("_", "-")
                command += [flag, ("true" if value else "false") if isinstance(value, bool) else str(value)]
            run = Run(run_id, trainer.name, source, values["epochs"],
                      {k: v for k, v in values.items() if k not in ("source", "epochs")}, command,
                      started=time.time(), upload_name=upload_name)
            self._save(run)
            self._launch(run, folder)
            return run

    def _launch(self, run: Run, folder: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        nice = shutil.which("nice")
        command = ([nice, "-n", str(NICE_INCREMENT)] if nice else []) + run.command  # nice execs: same pid
        with open(folder / OUTPUT_FILE, "ab") as output:
            try:
                process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=output,
                                           stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as error:
                run.status, run.ended, run.message = FAILED, time.time(), f"the trainer could not start: {error}"
                self._save(run)
                raise JobError(run.message) from None
        run.pid = process.pid
        self._processes[run.run_id] = process
        self._save(run)
        threading.Thread(target=self._watch, args=(run.run_id, process), daemon=True,
                         name=f"watch-{run.run_id}").start()

    def _watch(self, run_id: str, process: subprocess.Popen) -> None:
        returncode = process.wait()
        with self._lock:
            self._processes.pop(run_id, None)
            try:
                run = Run.from_dict(json.loads((self.run_dir(run_id) / JOB_FILE).read_text(encoding="utf-8")))
            except (OSError, ValueError):
                return
            if run.status == RUNNING:
                self._finish(run, returncode)

    def _finish(self, run: Run, returncode: int | None) -> None:
        """Records how a run ended, from its exit status and the last event in its progress log."""
        folder = self.run_dir(run.run_id)
        events = read_events(folder)
        last = events[-1]["event"] if events else None
        if run.cancel_requested or last == "cancelled":
            run.status, run.message = CANCELLED, "cancelled"
        elif returncode == 0 or (returncode is None and last == "done"):
            run.status, run.message = DONE, "finished"
        else:
            run.status = FAILED
            error = next((e.get("message") for e in reversed(events) if e.get("event") == "error"), None)
            tail = last_lines(folder / OUTPUT_FILE, 1)
            run.message = error or tail or (f"the trainer exited with status {returncode}" if returncode is not None
                                            else SERVER_RESTART_HINT)
        run.returncode = returncode
        run.ended = run.ended or time.time()
        self._save(run)

    # ---- cancelling

    def cancel(self, run_id) -> Run:
        """Stops the run's whole process group: an interrupt first (the trainer logs 'cancelled'), then a kill."""
        with self._lock:
            run = self.get(run_id)
            if run.status != RUNNING:
                raise JobError(f"run {run_id} is not training (it is {run.status}); there is nothing to cancel")
            run.cancel_requested = True
            self._save(run)
        process = self._processes.get(run.run_id)
        folder = self.run_dir(run.run_id)
        try:
            os.killpg(run.pid, signal.SIGINT)
        except (ProcessLookupError, PermissionError):
            pass
        deadline = time.monotonic() + CANCEL_GRACE_SECONDS
        while time.monotonic() < deadline and self._group_alive(run.pid, folder, process):
            time.sleep(0.1)
        if self._group_alive(run.pid, folder, process):
            try:
                os.killpg(run.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if process is not None:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        else:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(run.pid, folder):
                time.sleep(0.1)
        with self._lock:
            run = self.get(run.run_id)
            if run.status == RUNNING:
                self._finish(run, returncode=None)
                run = self.get(run.run_id)
        return run

    @staticmethod
    def _group_alive(pgid: int, folder: Path, process) -> bool:
        """True while any process of the run's group (the trainer or a child it started) is still running."""
        if process is not None and process.poll() is None:
            return True
        if Path("/proc").is_dir():
            return bool(group_members(pgid))
        try:
            os.killpg(pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    # ---- watching

    def status(self, run_id) -> dict:
        """Everything the page shows about a run: state, progress, losses, metrics and the latest samples."""
        run = self.get(run_id)
        folder = self.run_dir(run.run_id)
        events = read_events(folder)
        start = next((e for e in reversed(events) if e.get("event") == "start"), {})
        steps = [e for e in events if e.get("event") == "step"]
        epochs = [e for e in events if e.get("event") == "epoch"]
        samples = [e for e in events if e.get("event") == "sample"]
        latest = steps[-1] if steps else {}
        total_steps = latest.get("total_steps") or start.get("total_steps") or 0
        step = latest.get("step", 0)
        losses = [{"step": e["step"], "series": name, "value": float(value)}
                  for e in steps for name, value in e.items() if _is_loss(name, value)]
        # An epoch metric named like a logged step loss (a GAN's d_loss) is a training average, not held out.
        stepped = {name for e in steps for name in e}
        losses += [{"step": e["step"], "series": name, "value": float(value)}
                   for e in epochs for name, value in e.items()
                   if _is_heldout_loss(name, value) and name not in stepped]
        fraction = 1.0 if run.status == DONE else (step / total_steps if total_steps else 0.0)
        info = {
            "run_id": run.run_id, "model": run.model, "source": run.source, "settings": run.settings,
            "status": run.status, "message": run.message, "started": run.started, "ended": run.ended,
            "epochs": run.epochs, "epoch": latest.get("epoch", 0), "epochs_done": len(epochs),
            "step": step, "total_steps": total_steps, "fraction": round(min(max(fraction, 0.0), 1.0), 4),
            "eta_seconds": latest.get("eta") if run.status == RUNNING else None,
            "elapsed_seconds": (events[-1].get("elapsed") if events else None),
            "latest_losses": {k: v for k, v in latest.items() if _is_loss(k, v)},
            "losses": losses, "metrics": [_epoch_metrics(e, stepped) for e in epochs],
            "sample": _sample(folder, samples[-1]) if samples else None,
            "promotable": self._promotable(run, folder) is None, "promoted": run.promoted,
            "output_tail": last_lines(folder / OUTPUT_FILE, 20) if run.status == FAILED else "",
        }
        return info

    def summary(self, run: Run) -> dict:
        """One row of the runs list: the run and its last held-out scores."""
        events = read_events(self.run_dir(run.run_id))
        epochs = [e for e in events if e.get("event") == "epoch"]
        stepped = {name for e in events if e.get("event") == "step" for name in e}
        scores = _epoch_metrics(epochs[-1], stepped) if epochs else {}
        return {"run_id": run.run_id, "model": run.model, "status": run.status, "started": run.started,
                "epochs": f"{len(epochs)}/{run.epochs}", "scores": scores, "promoted": run.promoted}

    # ---- promotion

    def _promotable(self, run: Run, folder: Path) -> str | None:
        """None if the run can be promoted, else the reason why not."""
        if run.status == RUNNING:
            return f"run {run.run_id} is still training; wait until it finishes (or cancel it) before promoting"
        if run.status == FAILED:
            return f"run {run.run_id} failed, so there is nothing to promote"
        trainer = load_trainer(run.model)
        name = trainer.run_checkpoint if trainer else "checkpoint"
        if not ((folder / name / checkpoint_io.CONFIG_FILE).is_file()
                and any(folder.joinpath(name).glob("*.weights.h5"))):
            return f"run {run.run_id} has no finished epoch to promote"
        return None

    def delete(self, run_id) -> Run:
        """Removes a finished, failed or cancelled run's folder. A running run must be cancelled first; a promoted
        run's checkpoint stays served (promotion copied it)."""
        with self._lock:
            run = self.get(run_id)
            if run.status == RUNNING:
                raise JobError(f"run {run_id} is still training; cancel it before deleting it")
            folder = self.run_dir(run.run_id)
            graveyard = folder.with_name(f".{folder.name}.deleting-{uuid.uuid4().hex[:8]}")
            folder.rename(graveyard)  # atomic: the run disappears from the list at once, even if removal is slow
            shutil.rmtree(graveyard, ignore_errors=True)
            return run

    def previous_dir(self, model: str) -> Path:
        return self.checkpoints / PREVIOUS_FOLDER / model

    def promote(self, run_id) -> Path:
        """Makes the run's checkpoint the served one (atomic swap); the replaced checkpoint is kept as previous."""
        with self._lock:
            run = self.get(run_id)
            folder = self.run_dir(run.run_id)
            reason = self._promotable(run, folder)
            if reason:
                raise JobError(reason)
            trainer = load_trainer(run.model)
            source = folder / (trainer.run_checkpoint if trainer else "checkpoint")
            target = self.checkpoints / run.model
            if (target / checkpoint_io.CONFIG_FILE).is_file():
                checkpoint_io.write_folder(self.previous_dir(run.model), lambda temporary: _copy_tree(target, temporary))
            skip = {checkpoint_io.OPTIMIZER_FILE, checkpoint_io.STATE_FILE}
            checkpoint_io.write_folder(target, lambda temporary: _copy_tree(source, temporary, skip))
            run.promoted = time.time()
            self._save(run)
            return target

    def restore_previous(self, model) -> Path:
        """Swaps the served checkpoint with the one it replaced (doing it twice gives back the first)."""
        if not isinstance(model, str) or not MODEL_NAME_PATTERN.fullmatch(model):
            raise JobError(f"{str(model)[:60]!r} is not a model name")
        with self._lock:
            previous, current = self.previous_dir(model), self.checkpoints / model
            if not (previous / checkpoint_io.CONFIG_FILE).is_file():
                raise JobError(f"there is no previous {model} checkpoint to restore; one is kept when a run is promoted")
            holding = self.checkpoints / PREVIOUS_FOLDER / f".{model}.swap-{uuid.uuid4().hex[:8]}"
            if current.is_dir():
                _copy_tree(current, holding)
            try:
                checkpoint_io.write_folder(current, lambda temporary: _copy_tree(previous, temporary))
                if holding.exists():
                    checkpoint_io.write_folder(previous, lambda temporary: _copy_tree(holding, temporary))
                else:
                    shutil.rmtree(previous, ignore_errors=True)
            finally:
                shutil.rmtree(holding, ignore_errors=True)
            return current

    def has_previous(self, model: str) -> bool:
        return (self.previous_dir(model) / checkpoint_io.CONFIG_FILE).is_file()


def _text_copy_name(name: str) -> str:
    """A safe file name for the run's copy of an upload, e.g. 'My Sonnets (v2).txt' -> 'My_Sonnets_v2.txt'."""
    stem = re.sub(r"[^\w.-]+", "_", Path(name).stem).strip("._")[:60]
    return f"{stem}.txt" if stem and stem not in {"job", "output", "train_config"} else UPLOADED_TEXT


def _copy_tree(source: Path, destination: Path, skip: set | frozenset = frozenset()) -> None:
    """Copies a checkpoint folder's files and subfolders (examples, images) into `destination`."""
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    for item in Path(source).iterdir():
        if item.name in skip or item.name.startswith("."):
            continue
        if item.is_dir():
            shutil.copytree(item, destination / item.name)
        else:
            shutil.copy2(item, destination / item.name)


def _is_loss(name: str, value) -> bool:
    return "loss" in name and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_heldout_loss(name: str, value) -> bool:
    return _is_loss(name, value) and not name.startswith("train") and "bits" not in name


def _epoch_metrics(event: dict, stepped: set = frozenset()) -> dict:
    """The held-out scores of an epoch event: not training losses (named train_* or like a logged step loss)."""
    skip = {"event", "time", "elapsed", "step", "epoch", "learning_rate", *stepped}
    return {"epoch": event.get("epoch"), **{k: round(v, 4) for k, v in event.items()
                                            if k not in skip and not k.startswith("train")
                                            and isinstance(v, (int, float)) and not isinstance(v, bool)}}


def _inside(folder: Path, relative) -> str | None:
    """The absolute path of a sample file named relative to the run folder, if it exists inside it."""
    if not isinstance(relative, str) or not relative:
        return None
    for base in (folder, folder / "checkpoint"):
        path = (base / relative).resolve()
        if path.is_file() and folder.resolve() in path.parents:
            return str(path)
    return None


def _sample(folder: Path, event: dict) -> dict:
    """The latest sample event with its file paths made absolute (and kept inside the run folder)."""
    sample = {"epoch": event.get("epoch")}
    if isinstance(event.get("text"), str):
        sample["text"] = event["text"]
    if event.get("image"):
        path = _inside(folder, event["image"])
        if path:
            sample["image"] = path
    if isinstance(event.get("rows"), list):
        sample["rows"] = [[str(cell) for cell in row[:2]] for row in event["rows"] if isinstance(row, (list, tuple))]
    if isinstance(event.get("images"), list):
        images = []
        for item in event["images"]:
            if isinstance(item, dict):
                path = _inside(folder, item.get("path"))
                if path:
                    images.append({"path": path, "caption": str(item.get("caption", ""))})
        sample["images"] = images
    return sample


def describe(info: dict) -> str:
    """One line for people: where the run is and how long it has left."""
    status = info["status"]
    if status == RUNNING:
        if not info["total_steps"]:
            return f"Run {info['run_id']} is starting (loading data and building the model)…"
        losses = ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in info["latest_losses"].items())
        return (f"Run {info['run_id']}: epoch {info['epoch']}/{info['epochs']}, step {info['step']}/"
                f"{info['total_steps']}{', ' + losses if losses else ''}; about "
                f"{format_seconds(info['eta_seconds'])} left.")
    if status == DONE:
        return f"Run {info['run_id']} finished {info['epochs_done']} epochs" + (
            " and is promoted." if info["promoted"] else "; promote it to serve it in its tab.")
    if status == CANCELLED:
        return f"Run {info['run_id']} was cancelled after {info['epochs_done']} finished epochs."
    return f"Run {info['run_id']} failed: {info['message']}"
