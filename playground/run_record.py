"""A run's record: its folder under the runs folder, its id, and `<run>/job.json`.

The record holds what the app must remember about a run across restarts: model, settings, the command line, the
trainer's pid, status and times. Run ids look like `char_rnn-20260101-120000` (a suffix `-2` when two start in
the same second) and nothing else is accepted, so no request can name a path outside the runs folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from pathlib import Path

from playground.job_error import JobError
from trainers.common import checkpoint as checkpoint_io

DEFAULT_RUNS = Path(__file__).resolve().parents[1] / "runs"
JOB_FILE = "job.json"
OUTPUT_FILE = "output.log"
RUN_ID_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}-\d{8}-\d{6}(?:-\d{1,3})?")
RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"


def runs_root() -> Path:
    return Path(os.environ.get("EAGER_PLAYGROUND_RUNS", DEFAULT_RUNS))


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
    ray_job: str = ""  # the Ray Job's submission id when the run trains on a Ray cluster (playground/jobs.py)

    @classmethod
    def from_dict(cls, data: dict) -> "Run":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def run_folder(runs: Path, run_id) -> Path:
    """The folder of `run_id` in `runs`, refusing anything that is not a run id made here (so no path can escape)."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise JobError(f"{str(run_id)[:80]!r} is not a run id; run ids look like char_rnn-20260101-120000")
    folder = (Path(runs) / run_id).resolve()
    if folder.parent != Path(runs).resolve():
        raise JobError(f"{run_id!r} is not a run id")
    return folder


def is_run_folder(folder: Path) -> bool:
    """Whether a folder of the runs folder is a run made here (CLI runs without a job record are not)."""
    return bool(RUN_ID_PATTERN.fullmatch(folder.name)) and (folder / JOB_FILE).is_file()


def read_run(folder: Path) -> Run:
    """The record stored in `folder`, or JobError saying why it cannot be had."""
    try:
        return Run.from_dict(json.loads((folder / JOB_FILE).read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise JobError(f"there is no run {folder.name!r}") from None
    except (OSError, ValueError, TypeError) as error:
        raise JobError(f"the record of run {folder.name} cannot be read: {error}") from None


def save_run(folder: Path, run: Run) -> None:
    checkpoint_io.write_json(folder / JOB_FILE, dataclasses.asdict(run))


def new_run_id(runs: Path, model: str) -> str:
    """`<model>-<UTC date>-<UTC time>`, with a suffix if a run of the same second exists."""
    stamp = f"{model}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    run_id, suffix = stamp, 1
    while (Path(runs) / run_id).exists():
        suffix += 1
        run_id = f"{stamp}-{suffix}"
    return run_id
