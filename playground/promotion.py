"""Promoting a run's checkpoint into the served checkpoints, and restoring the one it replaced.

Promoting copies `<run>/<RUN_CHECKPOINT>/` (without the optimizer and resume state) into `checkpoints/<model>/`
with an atomic folder swap (trainers.common.checkpoint.write_folder); the checkpoint it replaces is kept in
`checkpoints/.previous/<model>/`, and `restore_previous` swaps the two back. The registry notices the new folder
and reloads the model on the next request, so the app never restarts. Callers hold the jobs lock.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from playground.job_error import JobError
from playground.run_record import FAILED, RUNNING, Run
from playground.trainer_catalog import MODEL_NAME_PATTERN, load_trainer
from trainers.common import checkpoint as checkpoint_io

PREVIOUS_FOLDER = ".previous"
NOT_SERVED = (checkpoint_io.OPTIMIZER_FILE, checkpoint_io.STATE_FILE)  # resume state stays with the run


def copy_tree(source: Path, destination: Path, skip: tuple[str, ...] = ()) -> None:
    """Copies a checkpoint folder's files and subfolders (examples, images) into `destination`, leaving out
    hidden files (a swap in progress) and the names in `skip`."""
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns(".*", *skip), dirs_exist_ok=True)


def previous_dir(checkpoints: Path, model: str) -> Path:
    return Path(checkpoints) / PREVIOUS_FOLDER / model


def has_previous(checkpoints: Path, model: str) -> bool:
    return (previous_dir(checkpoints, model) / checkpoint_io.CONFIG_FILE).is_file()


def _run_checkpoint(run: Run, folder: Path) -> Path:
    trainer = load_trainer(run.model)
    return folder / (trainer.run_checkpoint if trainer else "checkpoint")


def not_promotable(run: Run, folder: Path) -> str | None:
    """None if the run can be promoted, else the reason why not."""
    if run.status == RUNNING:
        return f"run {run.run_id} is still training; wait until it finishes (or cancel it) before promoting"
    if run.status == FAILED:
        return f"run {run.run_id} failed, so there is nothing to promote"
    source = _run_checkpoint(run, folder)
    if not ((source / checkpoint_io.CONFIG_FILE).is_file() and any(source.glob("*.weights.h5"))):
        return f"run {run.run_id} has no finished epoch to promote"
    return None


def promote(run: Run, folder: Path, checkpoints: Path) -> Path:
    """Makes the run's checkpoint the served one (atomic swap); the replaced checkpoint is kept as previous."""
    reason = not_promotable(run, folder)
    if reason:
        raise JobError(reason)
    source, target = _run_checkpoint(run, folder), Path(checkpoints) / run.model
    if (target / checkpoint_io.CONFIG_FILE).is_file():
        checkpoint_io.write_folder(previous_dir(checkpoints, run.model),
                                   lambda temporary: copy_tree(target, temporary))
    checkpoint_io.write_folder(target, lambda temporary: copy_tree(source, temporary, NOT_SERVED))
    return target


def restore_previous(checkpoints: Path, model) -> Path:
    """Swaps the served checkpoint with the one it replaced (doing it twice gives back the first)."""
    if not isinstance(model, str) or not MODEL_NAME_PATTERN.fullmatch(model):
        raise JobError(f"{str(model)[:60]!r} is not a model name")
    checkpoints = Path(checkpoints)
    previous, current = previous_dir(checkpoints, model), checkpoints / model
    if not (previous / checkpoint_io.CONFIG_FILE).is_file():
        raise JobError(f"there is no previous {model} checkpoint to restore; one is kept when a run is promoted")
    holding = checkpoints / PREVIOUS_FOLDER / f".{model}.swap-{uuid.uuid4().hex[:8]}"
    if current.is_dir():
        copy_tree(current, holding)
    try:
        checkpoint_io.write_folder(current, lambda temporary: copy_tree(previous, temporary))
        if holding.exists():
            checkpoint_io.write_folder(previous, lambda temporary: copy_tree(holding, temporary))
        else:
            shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(holding, ignore_errors=True)
    return current
