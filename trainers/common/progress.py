"""Training progress: a terminal progress bar (tqdm), a JSON-lines log, and TensorBoard summaries.

The JSON-lines log (`progress.jsonl` in the run folder) is what the app's Training tab reads: one object per
line, each with an `event` field:

- `start`: the config, total epochs and steps per epoch;
- `step`: epoch, step (global), the losses, elapsed seconds and ETA seconds (every `log_every` steps);
- `epoch`: the end-of-epoch metrics, e.g. held-out loss;
- `sample`: something the model made at the end of an epoch (text, a path to an image, translations);
- `done` / `error` / `cancelled`: how the run ended.

Reading the log (`read_events`) needs neither TensorFlow nor a running trainer.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

PROGRESS_FILE = "progress.jsonl"


def read_events(run_dir: Path) -> list[dict]:
    """All events logged so far; a half-written last line (the trainer is mid-write) is skipped."""
    path = Path(run_dir) / PROGRESS_FILE
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
    """Logs a run's progress to the terminal, `progress.jsonl` and TensorBoard.

    `elapsed_before` carries the wall time of earlier sessions of a resumed run, so elapsed and ETA stay true.
    """

    def __init__(self, run_dir: Path, epochs: int, steps_per_epoch: int, start_step: int = 0,
                 elapsed_before: float = 0.0, log_every: int = 10, tensorboard: bool = True, stream=None):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = epochs * steps_per_epoch
        self.start_step = start_step
        self.elapsed_before = elapsed_before
        self.log_every = max(1, log_every)
        self.started = time.monotonic()
        self.stream = stream or sys.stdout
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar = None  # the tqdm bar, on a terminal
        self.log_file = open(self.run_dir / PROGRESS_FILE, "a", encoding="utf-8")
        self.writer = None
        if tensorboard:
            import tensorflow as tf  # only trainers write summaries; readers of the log never import TF

            self.writer = tf.summary.create_file_writer(str(self.run_dir / "tensorboard"))

    @property
    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def eta(self, step: int) -> float | None:
        done_here = step - self.start_step
        if done_here <= 0:
            return None
        seconds_per_step = (time.monotonic() - self.started) / done_here
        return max(0.0, (self.total_steps - step) * seconds_per_step)

    def event(self, event: str, **fields) -> None:
        record = {"event": event, "time": time.time(), "elapsed": round(self.elapsed, 2), **fields}
        self.log_file.write(json.dumps(record) + "\n")
        self.log_file.flush()

    def step(self, epoch: int, step: int, **losses: float) -> None:
        """Call after every training step; logs every `log_every` steps and on the last step of an epoch."""
        end_of_epoch = step % self.steps_per_epoch == 0
        if step % self.log_every and not end_of_epoch:
            return
        eta = self.eta(step)
        rounded = {name: round(float(value), 5) for name, value in losses.items()}
        self.event("step", epoch=epoch, step=step, total_steps=self.total_steps, eta=eta and round(eta, 1),
                   **rounded)
        if self.writer is not None:
            import tensorflow as tf

            with self.writer.as_default(step=step):
                for name, value in rounded.items():
                    tf.summary.scalar(f"train/{name}", value)
        self._print_bar(epoch, step, rounded, eta)

    def _print_bar(self, epoch: int, step: int, losses: dict, eta: float | None) -> None:
        """A tqdm bar on a terminal; one plain line per logged step in a log file (the app's run log)."""
        text = " ".join(f"{name} {value:.4f}" for name, value in losses.items())
        if self.interactive:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=self.total_steps, initial=self.start_step, file=self.stream, unit="step",
                                dynamic_ncols=True)
            self.bar.set_description(f"epoch {epoch}/{self.epochs}", refresh=False)
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(step - self.bar.n)
            return
        self.stream.write(f"epoch {epoch}/{self.epochs} step {step}/{self.total_steps} {text} "
                          f"elapsed {format_seconds(self.elapsed)} eta {format_seconds(eta)}\n")
        self.stream.flush()

    def epoch_end(self, epoch: int, step: int, **metrics) -> None:
        self.event("epoch", epoch=epoch, step=step, **metrics)
        if self.writer is not None:
            import tensorflow as tf

            with self.writer.as_default(step=step):
                for name, value in metrics.items():
                    if isinstance(value, (int, float)):
                        tf.summary.scalar(f"epoch/{name}", value)
            self.writer.flush()
        summary = " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
        if self.bar is not None:
            self.bar.write(f"epoch {epoch} done: {summary}", file=self.stream)
        else:
            self.stream.write(f"epoch {epoch} done: {summary}\n")
            self.stream.flush()

    def sample(self, epoch: int, **sample) -> None:
        self.event("sample", epoch=epoch, **sample)
        if self.writer is not None and isinstance(sample.get("text"), str):
            import tensorflow as tf

            with self.writer.as_default(step=epoch):
                tf.summary.text("sample", sample["text"])

    def close(self, event: str = "done", **fields) -> None:
        if self.bar is not None:
            self.bar.close()
        self.event(event, **fields)
        self.log_file.close()
        if self.writer is not None:
            self.writer.close()
