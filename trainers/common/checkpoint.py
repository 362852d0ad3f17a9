"""Checkpoint folders, written atomically.

A checkpoint is a folder: `config.json` (the model's constructor arguments), `model.weights.h5`, the
vocabulary or other small files the model needs, and `metrics.json`. A training run keeps what it needs to resume
(optimizer moments, step, random state) apart, in `<out>/resume/` (see trainers.common.run).

`write_folder` builds the new folder beside the old one under a temporary name and renames it into place, so a
crash or exception mid-save leaves the previous checkpoint intact and never a half-written one. Loading a
missing or damaged checkpoint raises `CheckpointError` naming the path.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Callable



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


def write_folder(path: Path, write: Callable[[Path], None]) -> Path:
    """Calls `write(temporary_folder)` and then swaps the finished folder into `path`.

    If `write` raises, the temporary folder is removed and `path` is left exactly as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        write(temporary)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if path.exists():
        previous = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(path, previous)
        os.rename(temporary, path)
        shutil.rmtree(previous, ignore_errors=True)
    else:
        os.rename(temporary, path)
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
