"""Promoting a run's checkpoint into the served checkpoints, and restoring the one it replaced.

Promoting copies `<run>/<RUN_CHECKPOINT>/` (without the optimizer and resume state) into `checkpoints/<model>/`
with an atomic folder swap (trainers.common.checkpoint.write_folder); the checkpoint it replaces is kept in
`checkpoints/.previous/<model>/`, and `restore_previous` swaps the two back. The registry notices the new folder
and reloads the model on the next request, so the app never restarts. Callers hold the jobs lock.

Before each promote or restore, `recover` settles a swap a crash interrupted (checkpoint.recover). A run whose
checkpoint is already the served one is not promoted again (that would overwrite the kept previous checkpoint
with the run itself), and `.previous` is only rewritten when the served checkpoint differs from it. A run that
scores worse than the served checkpoint on the model's held-out metric (its config.py's `PROMOTION_METRIC`) is promoted only when
the caller confirms (`worse_ok`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path

from playground.job_error import JobError
from playground.run_record import FAILED, RUNNING, Run
from playground.trainer_catalog import MODEL_NAME_PATTERN, load_trainer
from trainers.common import checkpoint as checkpoint_io

PREVIOUS_FOLDER = ".previous"
NOT_SERVED = (checkpoint_io.OPTIMIZER_FILE, checkpoint_io.STATE_FILE)  # resume state stays with the run
HOLDING = ".{model}.holding"  # restore's copy of the served checkpoint, in .previous/ (removed by recover)
LOWER, HIGHER = "lower", "higher"
_hashes: dict[tuple, str] = {}  # (path, inode, size, mtime) -> sha256, so the page's refresh does not rehash
_hashes_guard = threading.Lock()


def recover(checkpoints: Path) -> dict[str, str]:
    """Finishes or rolls back any swap a crash interrupted, in the served and the previous checkpoints."""
    checkpoints = Path(checkpoints)
    done = checkpoint_io.recover(checkpoints)
    previous = checkpoints / PREVIOUS_FOLDER
    for item in previous.glob(".*.holding") if previous.is_dir() else ():
        shutil.rmtree(item, ignore_errors=True)
    done.update({f"{PREVIOUS_FOLDER}/{name}": what for name, what in checkpoint_io.recover(previous).items()})
    return done


def _file_hash(path: Path) -> str:
    info = path.stat()
    key = (str(path), info.st_ino, info.st_size, info.st_mtime_ns)
    with _hashes_guard:
        if key in _hashes:
            return _hashes[key]
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    with _hashes_guard:
        if len(_hashes) > 512:
            _hashes.clear()
        _hashes[key] = hasher.hexdigest()
    return _hashes[key]


def tree_digest(folder: Path, skip: tuple[str, ...] = NOT_SERVED) -> str | None:
    """A hash of a checkpoint folder as it is served (names and bytes; hidden files and `skip` left out), or None
    when there is no folder."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    hasher = hashlib.sha256()
    try:
        for item in sorted(folder.rglob("*")):
            relative = item.relative_to(folder)
            if item.is_file() and not any(part.startswith(".") for part in relative.parts) \
                    and relative.name not in skip:
                hasher.update(relative.as_posix().encode() + b"\0" + _file_hash(item).encode())
    except FileNotFoundError:  # swapped meanwhile
        return None
    return hasher.hexdigest()


def is_served(run: Run, folder: Path, checkpoints: Path) -> bool:
    """Whether the run's checkpoint is, byte for byte, the one its model serves."""
    run_digest = tree_digest(_run_checkpoint(run, folder))
    return run_digest is not None and run_digest == tree_digest(Path(checkpoints) / run.model)


def _read_metrics(folder: Path) -> dict:
    try:
        data = json.loads((Path(folder) / checkpoint_io.METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def heldout_metric(model: str) -> tuple[str, str, str] | None:
    """(metrics.json key, LOWER or HIGHER, label) from the trainer's config.py `PROMOTION_METRIC`, or None."""
    trainer = load_trainer(model)
    own = getattr(getattr(trainer, "module", None), "PROMOTION_METRIC", None)
    return tuple(own) if own else None


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def compare(run: Run, folder: Path, checkpoints: Path) -> dict | None:
    """The run's held-out score beside the served checkpoint's: {metric, label, better, run, served, worse,
    sentence}, or None when either has no such score (then there is nothing to confirm)."""
    metric = heldout_metric(run.model)
    if not metric:
        return None
    key, better, label = metric
    mine = _number(_read_metrics(_run_checkpoint(run, folder)).get(key))
    served = _number(_read_metrics(Path(checkpoints) / run.model).get(key))
    if mine is None or served is None:
        return None
    worse = mine > served if better == LOWER else mine < served
    sentence = (f"This run's {label} {mine:.4g} is {'worse' if worse else 'no worse'} than the served "
                f"{served:.4g} ({better} is better)")
    return {"metric": key, "label": label, "better": better, "run": mine, "served": served, "worse": worse,
            "sentence": sentence + ("; promote anyway?" if worse else ".")}


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


def not_promotable(run: Run, folder: Path, checkpoints: Path | None = None) -> str | None:
    """None if the run can be promoted, else the reason why not (with `checkpoints`: also when it is already the
    served checkpoint)."""
    if run.status == RUNNING:
        return f"run {run.run_id} is still training; wait until it finishes (or cancel it) before promoting"
    if run.status == FAILED:
        return f"run {run.run_id} failed, so there is nothing to promote"
    source = _run_checkpoint(run, folder)
    if not ((source / checkpoint_io.CONFIG_FILE).is_file() and any(source.glob("*.weights.h5"))):
        return f"run {run.run_id} has no finished epoch to promote"
    if checkpoints is not None and is_served(run, folder, checkpoints):
        return (f"run {run.run_id} is already the served {run.model} checkpoint; promoting it again would change "
                f"nothing but the kept previous checkpoint, so it is not done")
    return None


def promote(run: Run, folder: Path, checkpoints: Path, worse_ok: bool = False) -> Path:
    """Makes the run's checkpoint the served one (atomic swap); the replaced checkpoint is kept as previous.

    Refuses a run that is already served, and one that scores worse than the served checkpoint unless
    `worse_ok`."""
    checkpoints = Path(checkpoints)
    recover(checkpoints)
    reason = not_promotable(run, folder, checkpoints)
    if reason:
        raise JobError(reason)
    comparison = compare(run, folder, checkpoints)
    if comparison and comparison["worse"] and not worse_ok:
        raise JobError(f"run {run.run_id}'s {comparison['label']} {comparison['run']:.4g} is worse than the served "
                       f"{run.model} checkpoint's {comparison['served']:.4g} ({comparison['better']} is better), so "
                       f"it was not promoted; to promote it anyway, press 'Promote anyway' beside the Promote "
                       f"button in the Training tab (from a script: the /promote_run_anyway endpoint, same run id)")
    source, target = _run_checkpoint(run, folder), checkpoints / run.model
    previous = previous_dir(checkpoints, run.model)
    if (target / checkpoint_io.CONFIG_FILE).is_file() and tree_digest(target, ()) != tree_digest(previous, ()):
        checkpoint_io.write_folder(previous, lambda temporary: copy_tree(target, temporary))
    checkpoint_io.write_folder(target, lambda temporary: copy_tree(source, temporary, NOT_SERVED))
    return target


def restore_previous(checkpoints: Path, model) -> Path:
    """Swaps the served checkpoint with the one it replaced (doing it twice gives back the first).

    Each of the two folder writes is a recoverable swap. A crash between them leaves the restored checkpoint both
    served and previous (the served one is always whole; the one it replaced is still in its run folder)."""
    if not isinstance(model, str) or not MODEL_NAME_PATTERN.fullmatch(model):
        raise JobError(f"{str(model)[:60]!r} is not a model name")
    checkpoints = Path(checkpoints)
    recover(checkpoints)
    previous, current = previous_dir(checkpoints, model), checkpoints / model
    if not (previous / checkpoint_io.CONFIG_FILE).is_file():
        raise JobError(f"there is no previous {model} checkpoint to restore; one is kept when a run is promoted")
    holding = checkpoints / PREVIOUS_FOLDER / HOLDING.format(model=model)
    shutil.rmtree(holding, ignore_errors=True)
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
