"""What the page shows about a run, read from the trainer's `progress.jsonl` (see trainers/common/progress.py).

The trainer logs `start`, `step`, `epoch`, `sample`, `error`, `cancelled` and `done` events; this module turns
them into the run's status dict (progress, ETA, the loss series, held-out scores per epoch, the latest samples),
a row of the runs list, one line for people (`describe`), and how a run ended (`outcome`).
"""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

from playground.run_record import CANCELLED, DONE, FAILED, OUTPUT_FILE, RUNNING, Run
from trainers.common.progress import format_seconds, read_events

SERVER_RESTART_HINT = "the process ended while the app was not watching"


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


def signal_message(number: int) -> str:
    """'the trainer was stopped by signal SIGKILL (9)', with a hint for the usual causes."""
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = "an unknown signal"
    hint = {"SIGKILL": " (killed from outside the app, often by the system when memory runs out)",
            "SIGSEGV": " (it crashed)", "SIGABRT": " (it aborted)"}.get(name, "")
    return f"the trainer was stopped by signal {name} ({number}){hint}"


def outcome(run: Run, folder: Path, returncode: int | None) -> tuple[str, str]:
    """(status, message) of a run that has ended, from its exit status (None: unknown, it ended while the app
    was not watching) and the last event in its progress log."""
    events = read_events(folder)
    last = events[-1]["event"] if events else None
    if run.cancel_requested or last == "cancelled":
        return CANCELLED, "cancelled"
    if returncode == 0 or (returncode is None and last == "done"):
        return DONE, "finished"
    if returncode is not None and returncode < 0:  # killed by a signal: that, not the last progress bar, is why
        return FAILED, signal_message(-returncode)
    error = next((e.get("message") for e in reversed(events) if e.get("event") == "error"), None)
    tail = last_lines(folder / OUTPUT_FILE, 1)
    return FAILED, error or tail or (f"the trainer exited with status {returncode}" if returncode is not None
                                     else SERVER_RESTART_HINT)


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


def status_info(run: Run, folder: Path, promotable: bool) -> dict:
    """Everything the page shows about a run: state, progress, losses, metrics and the latest samples."""
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
    return {
        "run_id": run.run_id, "model": run.model, "source": run.source, "settings": run.settings,
        "status": run.status, "message": run.message, "started": run.started, "ended": run.ended,
        "epochs": run.epochs, "epoch": latest.get("epoch", 0), "epochs_done": len(epochs),
        "step": step, "total_steps": total_steps, "fraction": round(min(max(fraction, 0.0), 1.0), 4),
        "eta_seconds": latest.get("eta") if run.status == RUNNING else None,
        "elapsed_seconds": (events[-1].get("elapsed") if events else None),
        "latest_losses": {k: v for k, v in latest.items() if _is_loss(k, v)},
        "losses": losses, "metrics": [_epoch_metrics(e, stepped) for e in epochs],
        "sample": _sample(folder, samples[-1]) if samples else None,
        "promotable": promotable, "promoted": run.promoted,
        "output_tail": last_lines(folder / OUTPUT_FILE, 20) if run.status == FAILED else "",
    }


def summary(run: Run, folder: Path) -> dict:
    """One row of the runs list: the run and its last held-out scores."""
    events = read_events(folder)
    epochs = [e for e in events if e.get("event") == "epoch"]
    stepped = {name for e in events if e.get("event") == "step" for name in e}
    scores = _epoch_metrics(epochs[-1], stepped) if epochs else {}
    return {"run_id": run.run_id, "model": run.model, "status": run.status, "started": run.started,
            "epochs": f"{len(epochs)}/{run.epochs}", "scores": scores, "promoted": run.promoted}


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
