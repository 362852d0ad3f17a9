"""Background training runs: start, watch, cancel and promote, each run a separate process. One run at a time.

`Jobs` is the one object the Training tab (and a script) uses; each concern lives in its own module:

    trainer_catalog  which models train from the page, their settings and types, the trainer's command line
    uploads          the user's own writing: checked, and copied into the run folder
    run_record       run ids, the run folder and its `job.json`
    supervise        the trainer's process group at nice +10: launch, liveness (psutil), cancel and kill
    run_view         progress.jsonl turned into status, losses, samples and sentences for people
    promotion        promote a run's checkpoint into the served ones; restore the replaced one

With a Ray cluster (EAGER_PLAYGROUND_RAY_ADDRESS, `python -m playground --ray-address`), a run is the same command
line submitted as a Ray Job instead (trainers/common/ray_jobs.py): its progress and output files are written into
the run folder on storage the nodes share, a cancel stops the job, and a job that fails or is killed shows failed
with its last lines, as a local run does. EAGER_PLAYGROUND_RAY_WORKERS=N (N > 1) makes each run a multi-worker
run over N Ray workers (trainers/common/ray_workers.py), each reserving EAGER_PLAYGROUND_RAY_CPUS_PER_WORKER CPUs.

Nothing here imports TensorFlow: the app process only reads files and starts processes (or submits jobs).

    from playground.jobs import Jobs
    jobs = Jobs()
    run = jobs.start("char_rnn", source="offline", epochs=2, settings={"rnn_units": 256})
    jobs.status(run.run_id)["fraction"]; jobs.cancel(run.run_id); jobs.promote(run.run_id)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from playground import promotion, run_view, supervise, trainer_catalog, uploads
from playground.core_sharing import CORES
from playground.job_error import JobError
from playground.registry import checkpoints_root
from playground.run_record import (CANCELLED, DONE, FAILED, JOB_FILE, OUTPUT_FILE, RUNNING, Run, is_run_folder,
                                   new_run_id, read_run, run_folder, runs_root, save_run)
from playground.run_view import describe
from playground.trainer_catalog import discover_trainers
from trainers.common.ray_jobs import ClusterError, RayJobs, address_from_environment

RAY_POLL_SECONDS = 1.0
RAY_STOP_WAIT_SECONDS = 30.0  # Ray's own SIGKILL comes RAY_JOB_STOP_WAIT_TIME_S (3 s by default) after the stop

__all__ = ["Jobs", "JobError", "Run", "RUNNING", "DONE", "FAILED", "CANCELLED", "describe", "discover_trainers",
           "runs_root"]


class Jobs:
    """The runs folder: starts, watches, cancels and promotes training runs. One run trains at a time."""

    def __init__(self, runs: Path | None = None, checkpoints: Path | None = None, python: str | None = None,
                 cluster: RayJobs | None = None):
        self.runs = Path(runs) if runs is not None else runs_root()
        self.checkpoints = Path(checkpoints) if checkpoints is not None else checkpoints_root()
        self.python = python or sys.executable
        self.cluster = cluster if cluster is not None else cluster_from_environment()
        self._lock = threading.RLock()
        # The runs this object started and still watches: their Popen, or None for a Ray Job.
        self._processes: dict[str, subprocess.Popen | None] = {}

    # ---- records

    def run_dir(self, run_id) -> Path:
        """The folder of `run_id`, refusing anything that is not a run id made here (so no path can escape)."""
        return run_folder(self.runs, run_id)

    def get(self, run_id) -> Run:
        """The run's record, refreshed: a run whose process has ended is marked done, failed or cancelled."""
        folder = self.run_dir(run_id)
        run = read_run(folder)
        if run.status == RUNNING and run_id not in self._processes:
            if run.ray_job:
                ended, returncode = self._job_ended(run)
            else:
                ended, returncode = not supervise.alive(run.pid, folder), None
                if not ended and not run.cancel_requested:  # a run this app did not start (before a restart)
                    CORES.adopt(run.pid)  # is paused for answers and shares the cores too (not while cancelled)
            if ended:
                # Again under the lock: `start` holds it from the first save of a run until its process is
                # watched, and a page's poll in between read a record without a pid (the run was marked failed,
                # "ended while the app was not watching", while it trained on: test_training_tab, under load).
                with self._lock:
                    run = read_run(folder)
                    if run.status == RUNNING and run_id not in self._processes:
                        self._finish(run, returncode)
                if run.pid:
                    CORES.release(run.pid)
        return run

    def exists(self, run_id) -> bool:
        """Whether the run has a record (it may have been deleted); JobError for anything that is not a run id."""
        return (self.run_dir(run_id) / JOB_FILE).is_file()

    def _save(self, run: Run) -> None:
        save_run(self.run_dir(run.run_id), run)

    def list_runs(self) -> list[Run]:
        """Every run in the runs folder, newest first (folders without a job record, e.g. CLI runs, are skipped)."""
        runs = []
        if self.runs.is_dir():
            for folder in self.runs.iterdir():
                if is_run_folder(folder):
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
        trainer, values = trainer_catalog.check_request(model, source, epochs, settings)
        fields = {**values, "out": str(self.runs / "check")}
        if source == "file":
            if upload is None:
                raise JobError("choose a UTF-8 text file to train on (the 'file' source)")
            fields["text_file"] = str(uploads.check_upload(Path(upload)))
        trainer_catalog.validate(trainer, fields)
        return trainer, values

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
            run_id = new_run_id(self.runs, trainer.name)
            folder = self.run_dir(run_id)
            folder.mkdir(parents=True)
            arguments, upload_name = dict(values), ""
            if source == "file":
                upload_name = Path(upload).name
                copy = folder / uploads.text_copy_name(upload_name)  # named after the upload: metrics.json shows it
                shutil.copyfile(upload, copy)
                arguments["text_file"] = str(copy)
            run = Run(run_id, trainer.name, source, values["epochs"],
                      {k: v for k, v in values.items() if k not in ("source", "epochs")},
                      trainer.command(self.python, folder, arguments), started=time.time(), upload_name=upload_name)
            self._save(run)
            self._launch(run, folder)
            return run

    def _launch(self, run: Run, folder: Path) -> None:
        if self.cluster is not None:
            self._submit(run, folder)
            return
        try:
            process = supervise.launch(run.command, folder / OUTPUT_FILE)
        except JobError as error:
            run.status, run.ended, run.message = FAILED, time.time(), str(error)
            self._save(run)
            raise
        run.pid = process.pid
        self._processes[run.run_id] = process
        self._save(run)
        CORES.adopt(process.pid)  # while the app answers, the run is stopped or keeps to one core (core_sharing)

        def ended(returncode: int) -> None:
            CORES.release(process.pid)
            self._ended(run.run_id, returncode)

        supervise.watch(process, ended, f"watch-{run.run_id}")

    # ---- Ray Jobs

    def _submit(self, run: Run, folder: Path) -> None:
        """Submits the run's command as a Ray Job (its output appended to the run folder's log) and watches it."""
        try:
            run.ray_job = self.cluster.submit(run.command, folder / OUTPUT_FILE,
                                              name=f"{run.run_id}-{uuid.uuid4().hex[:6]}")
        except ClusterError as error:
            run.status, run.ended, run.message = FAILED, time.time(), str(error)
            self._save(run)
            raise JobError(str(error)) from None
        self._processes[run.run_id] = None
        self._save(run)
        threading.Thread(target=self._watch_job, args=(run.run_id, run.ray_job), daemon=True,
                         name=f"watch-{run.run_id}").start()

    def _cluster(self) -> RayJobs:
        """The cluster of a Ray run; an app restarted without an address asks the local one (`auto`)."""
        if self.cluster is None:
            self.cluster = RayJobs(address_from_environment() or "auto")
        return self.cluster

    def _watch_job(self, run_id: str, job: str) -> None:
        """Polls the Ray Job until it has ended, then records how (a cluster that stops answering is asked again:
        the run's record stays running, and a cancel says the cluster cannot be reached)."""
        while True:
            time.sleep(RAY_POLL_SECONDS)
            try:
                run = read_run(self.run_dir(run_id))
            except JobError:  # deleted meanwhile
                self._processes.pop(run_id, None)
                return
            if run.status != RUNNING:
                self._processes.pop(run_id, None)
                return
            ended, returncode = self._job_ended(run)
            if ended:
                self._ended(run_id, returncode)
                return

    def _job_ended(self, run: Run) -> tuple[bool, int | None]:
        """(whether the run's Ray Job has ended, the exit status to record). A job that failed before the trainer
        wrote anything leaves Ray's log and message in the run's output, so the page shows why."""
        try:
            status, code, message = self._cluster().state(run.ray_job)
        except ClusterError:
            return False, None
        if status not in ("SUCCEEDED", "FAILED", "STOPPED"):
            return False, None
        output = self.run_dir(run.run_id) / OUTPUT_FILE
        if status == "FAILED" and (not output.is_file() or output.stat().st_size == 0):
            with open(output, "a", encoding="utf-8") as handle:
                handle.write(self.cluster.logs(run.ray_job)[-4000:] + (f"\n{message}\n" if message else ""))
        if status == "SUCCEEDED":
            return True, 0
        if status == "STOPPED":  # stopped from the page (a cancel) or on the cluster (`ray job stop`)
            return True, None if run.cancel_requested else -signal.SIGTERM
        return True, code if code not in (None, 0) else 1

    def _ended(self, run_id: str, returncode: int) -> None:
        """Called by the watcher once the trainer this object started has exited."""
        with self._lock:
            self._processes.pop(run_id, None)
            try:
                run = read_run(self.run_dir(run_id))
            except JobError:  # deleted meanwhile
                return
            if run.status == RUNNING:
                self._finish(run, returncode)

    def _finish(self, run: Run, returncode: int | None) -> None:
        """Records how a run ended, from its exit status and the last event in its progress log."""
        run.status, run.message = run_view.outcome(run, self.run_dir(run.run_id), returncode)
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
        if run.ray_job:
            return self._cancel_job(run)
        CORES.release(run.pid)  # continued and never paused again: it must handle the interrupt at once
        supervise.stop_group(run.pid, self.run_dir(run.run_id), self._processes.get(run.run_id))
        return self._settle_cancelled(run)

    def _cancel_job(self, run: Run) -> Run:
        """Stops the run's Ray Job and waits for it to end (the trainer writes `cancelled` when the cluster stops
        jobs with SIGINT; either way the run is recorded cancelled)."""
        try:
            self._cluster().stop(run.ray_job, wait=RAY_STOP_WAIT_SECONDS)
        except ClusterError as error:
            raise JobError(f"{error}; the run may still be training there") from None
        return self._settle_cancelled(run)

    def _settle_cancelled(self, run: Run) -> Run:
        """After its processes were stopped: a run that no watcher has finished yet is recorded as ended now."""
        with self._lock:
            run = self.get(run.run_id)
            if run.status == RUNNING:
                self._finish(run, returncode=None)
                run = self.get(run.run_id)
        return run

    # ---- watching

    def status(self, run_id) -> dict:
        """Everything the page shows about a run: state, progress, losses, metrics and the latest samples."""
        run = self.get(run_id)
        folder = self.run_dir(run.run_id)
        reason = promotion.not_promotable(run, folder, self.checkpoints)
        info = run_view.status_info(run, folder, reason is None)
        info["served"] = promotion.is_served(run, folder, self.checkpoints)  # promoting it again is refused
        info["not_promotable"] = reason
        # How long the app stopped the run to answer requests (playground/core_sharing.py); the page says so.
        info["paused_seconds"] = round(CORES.paused_seconds(run.pid), 1) if run.status == RUNNING else 0.0
        # The run's held-out score beside the served checkpoint's; a worse run needs a confirmation to promote.
        info["comparison"] = promotion.compare(run, folder, self.checkpoints) if reason is None else None
        return info

    def summary(self, run: Run) -> dict:
        """One row of the runs list: the run and its last held-out scores."""
        return run_view.summary(run, self.run_dir(run.run_id))

    # ---- deleting and promoting

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
        return promotion.previous_dir(self.checkpoints, model)

    def has_previous(self, model: str) -> bool:
        return promotion.has_previous(self.checkpoints, model)

    def recover(self) -> dict[str, str]:
        """Finishes or rolls back a checkpoint swap a crash interrupted (the app does this when it starts)."""
        with self._lock:
            return promotion.recover(self.checkpoints)

    def promote(self, run_id, worse_ok: bool = False) -> Path:
        """Makes the run's checkpoint the served one (atomic swap); the replaced checkpoint is kept as previous.

        Refused for the run already served, and for a run scoring worse than the served checkpoint on the model's
        held-out metric unless `worse_ok`."""
        with self._lock:
            run = self.get(run_id)
            target = promotion.promote(run, self.run_dir(run.run_id), self.checkpoints, worse_ok=worse_ok)
            run.promoted = time.time()
            self._save(run)
            return target

    def restore_previous(self, model) -> Path:
        """Swaps the served checkpoint with the one it replaced (doing it twice gives back the first)."""
        with self._lock:
            return promotion.restore_previous(self.checkpoints, model)


def cluster_from_environment() -> RayJobs | None:
    """The Ray cluster runs are submitted to (EAGER_PLAYGROUND_RAY_ADDRESS), or None: runs are local processes."""
    address = address_from_environment()
    if address is None:
        return None
    try:
        workers = int(os.environ.get("EAGER_PLAYGROUND_RAY_WORKERS", "1"))
        cpus = float(os.environ.get("EAGER_PLAYGROUND_RAY_CPUS_PER_WORKER", "1"))
    except ValueError:
        workers, cpus = 1, 1.0
    return RayJobs(address, workers=max(1, workers), cpus_per_worker=cpus)
