"""Checkpoint folders, written atomically.

A checkpoint is a folder: `config.json` (the model's constructor arguments), `model.weights.h5`, the
vocabulary or other small files the model needs, and `metrics.json`. A training run keeps what it needs to resume
(optimizer moments, step, random state) apart, in `<out>/resume/` (see trainers.common.run).

`write_folder` builds the new folder beside the old one as `.<name>.new`, writes a journal `.<name>.swap.json`
once it is complete, and then renames: `<name>` -> `.<name>.old`, `.<name>.new` -> `<name>`; then it removes the
old folder and the journal. A crash (even `kill -9`) at any point leaves a state `recover` can always settle:
with the journal the new folder is complete, so the swap is finished; without it the new folder may be partial, so
it is removed and the old folder (if the target is missing) is moved back. `recover(parent)` does this for every
folder of `parent` (the app runs it at start, before every promote/restore, and the registry before loading), and
removes the leftovers of the earlier scheme (`.<name>.tmp-*`, `.<name>.old-*`). Folders are made with mode 0777
less the umask (0755 usually) and files keep the writer's mode (0644 usually). Loading a missing or damaged
checkpoint raises `CheckpointError` naming the path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import uuid
from pathlib import Path
from typing import Callable

NEW_SUFFIX, OLD_SUFFIX, JOURNAL_SUFFIX, PART_SUFFIX = ".new", ".old", ".swap.json", ".part"
# The earlier scheme's leftovers (tempfile.mkdtemp and a random old name), still recognised by `recover`.
LEGACY = re.compile(r"\.(?P<name>.+)\.(?P<kind>tmp|old)-[A-Za-z0-9_]+")
# Tests only: SIGKILL this process right after the named step of a swap (see tests/test_promotion_faults.py).
CRASH_ENV = "EAGER_PLAYGROUND_CRASH_AT"
STEPS = ("written", "journal", "aside", "in_place", "cleaned")
_locks: dict[str, threading.RLock] = {}
_locks_guard = threading.Lock()


CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METRICS_FILE = "metrics.json"
STATE_FILE = "state.json"  # the run core's resume state (<out>/resume/state.json)
OPTIMIZER_FILE = "optimizer.npz"  # resume state of the trainers before the run core: only recognised, to refuse it


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing or cannot be read."""


def write_json(path: Path, data) -> None:
    """Writes JSON through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def read_json(path: Path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path} cannot be read: {error}") from None


def _lock(path: Path) -> threading.RLock:
    """One lock per folder, so recovery never touches a swap this process is making."""
    key = os.path.abspath(path)
    with _locks_guard:
        return _locks.setdefault(key, threading.RLock())


def _crash_point(step: str) -> None:
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _sidecars(path: Path) -> tuple[Path, Path, Path]:
    """(new, old, journal) beside `path`: `.<name>.new`, `.<name>.old`, `.<name>.swap.json`."""
    return (path.with_name(f".{path.name}{NEW_SUFFIX}"), path.with_name(f".{path.name}{OLD_SUFFIX}"),
            path.with_name(f".{path.name}{JOURNAL_SUFFIX}"))


def _partial_journal(journal: Path) -> Path:
    return journal.with_name(journal.name + PART_SUFFIX)


def _write_journal(journal: Path, data: dict) -> None:
    """The journal appears whole or not at all: written under a fixed name, flushed, then renamed."""
    part = _partial_journal(journal)
    with open(part, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(part, journal)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def umask() -> int:
    """The process's umask, read without changing it (Linux), else by setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _settle_tree(folder: Path) -> None:
    """Gives the new folder's folders mode 0777 and its files 0666, less the umask (0755 and 0644 usually), and
    flushes the files, so a journal never vouches for data still only in memory."""
    mask = umask()
    os.chmod(folder, 0o777 & ~mask)
    for item in sorted(folder.rglob("*")):
        if item.is_symlink():
            continue
        if item.is_dir():
            os.chmod(item, 0o777 & ~mask)
        elif item.is_file():
            os.chmod(item, 0o666 & ~mask)
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def recover_folder(path: Path) -> str | None:
    """Finishes or rolls back an interrupted swap of `path`; returns what it did ('finished', 'rolled back',
    'cleaned') or None when there was nothing to do."""
    path = Path(path)
    new, old, journal = _sidecars(path)

    def legacy_leftovers():
        return [item for item in (path.parent.iterdir() if path.parent.is_dir() else ())
                if (match := LEGACY.fullmatch(item.name)) and match["name"] == path.name]

    part = _partial_journal(journal)

    def leftovers(legacy):
        return new.exists() or old.exists() or journal.exists() or part.exists() or legacy

    if not leftovers(legacy_leftovers()):
        return None
    with _lock(path):  # a swap this process is making finishes first; then there may be nothing left to do
        legacy = legacy_leftovers()
        if not leftovers(legacy):
            return None
        done = "cleaned"
        if part.exists():
            part.unlink()  # a journal cut short: as if never written
        if journal.is_file():  # the new folder was complete before the first rename: finish the swap
            if new.is_dir():
                if path.exists() and not old.exists():
                    os.rename(path, old)
                elif path.exists():
                    _remove(path)  # cannot happen with one writer; the old folder is kept instead
                os.rename(new, path)
            elif old.is_dir() and not path.exists():
                os.rename(old, path)  # cannot happen with one writer (the new one vanished): keep the old one
            done = "finished"
        else:  # the new folder may be partial: drop it, and put the old one back if the target is gone
            if new.exists():
                _remove(new)
            if old.is_dir() and not path.exists():
                os.rename(old, path)
                done = "rolled back"
        for kind in ("old", "tmp"):  # the earlier scheme: only an old folder is known to be complete
            for item in sorted((i for i in legacy if LEGACY.fullmatch(i.name)["kind"] == kind),
                               key=lambda i: i.stat().st_mtime, reverse=True):
                if kind == "old" and item.is_dir() and not path.exists():
                    os.rename(item, path)
                    done = "rolled back"
                else:
                    _remove(item)
        if old.exists():
            _remove(old)
        if journal.exists():
            journal.unlink()
        _fsync_dir(path.parent)
        return done


def recover(parent: Path) -> dict[str, str]:
    """Settles every interrupted swap among `parent`'s folders: {folder name: what was done}."""
    parent = Path(parent)
    if not parent.is_dir():
        return {}
    names = set()
    for item in parent.iterdir():
        if item.name.endswith((JOURNAL_SUFFIX, JOURNAL_SUFFIX + PART_SUFFIX)) and item.name.startswith("."):
            names.add(item.name[1:].split(JOURNAL_SUFFIX)[0])
        elif item.name.endswith((NEW_SUFFIX, OLD_SUFFIX)) and item.name.startswith("."):
            names.add(item.name[1:].rsplit(".", 1)[0])
        elif match := LEGACY.fullmatch(item.name):
            names.add(match["name"])
    results = {}
    for name in sorted(names):
        if name and "/" not in name:
            done = recover_folder(parent / name)
            if done:
                results[name] = done
    return results


def write_folder(path: Path, write: Callable[[Path], None]) -> Path:
    """Calls `write(new_folder)` and then swaps the finished folder into `path` (recoverably: see the module).

    If `write` raises, the new folder is removed and `path` is left exactly as it was. The folder is created
    with mode 0777 less the umask, like `mkdir` (not 0700 as `tempfile.mkdtemp` would).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new, old, journal = _sidecars(path)
    with _lock(path):
        recover_folder(path)
        os.mkdir(new)
        try:
            write(new)
            _settle_tree(new)
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
        _crash_point("written")
        _write_journal(journal, {"folder": path.name, "new": new.name, "old": old.name})
        _fsync_dir(path.parent)
        _crash_point("journal")
        if path.exists():
            os.rename(path, old)
            _crash_point("aside")
        os.rename(new, path)
        _fsync_dir(path.parent)
        _crash_point("in_place")
        if old.exists():
            shutil.rmtree(old)
        journal.unlink()
        _crash_point("cleaned")
    return path


def copy_into(source: Path, destination: Path, names: list[str] | None = None) -> None:
    """Copies files (all, or `names`) of one folder into another, e.g. while writing a new checkpoint."""
    for item in Path(source).iterdir():
        if item.is_file() and (names is None or item.name in names):
            shutil.copy2(item, Path(destination) / item.name)


def require_folder(path: Path, files: tuple[str, ...] = (CONFIG_FILE, WEIGHTS_FILE)) -> Path:
    """Checks that `path` is a checkpoint folder holding `files`; raises CheckpointError naming what is missing."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"no checkpoint at {path}: the folder does not exist")
    missing = [name for name in files if not (path / name).is_file()]
    if missing:
        raise CheckpointError(f"the checkpoint at {path} is incomplete: {', '.join(missing)} missing")
    return path


def load_weights(model, path: Path) -> None:
    """Loads `model.weights.h5` into a built model, turning any failure into a CheckpointError."""
    weights = Path(path) / WEIGHTS_FILE
    try:
        model.load_weights(str(weights))
    except Exception as error:  # h5py and Keras raise many kinds; the user needs one clear sentence.
        raise CheckpointError(f"the weights in {weights} cannot be loaded: {error}") from None


def write_model(folder: Path, model, config: dict, metrics: dict | None = None,
                weights_file: str = WEIGHTS_FILE) -> None:
    """The files every servable folder has: `config.json` (constructor arguments), the weights, `metrics.json`.

    Writes into an existing folder; callers wrap it in `write_folder` so that the folder appears whole or not at all.
    """
    folder = Path(folder)
    write_json(folder / CONFIG_FILE, config)
    model.save_weights(str(folder / weights_file))
    if metrics is not None:
        write_json(folder / METRICS_FILE, metrics)
