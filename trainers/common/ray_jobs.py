"""Training runs as Ray Jobs: the same trainer command line, submitted to a Ray cluster's job server.

    python -m trainers.common.ray_jobs --address auto [--workers 2 --cpus-per-worker 1] \\
        -- python -m trainers.char_rnn.train --out /shared/runs/x --epochs 2

submits the command, prints its output as it comes and ends with its exit status; Ctrl-C stops the job (the
trainer keeps its last finished epoch). The Training tab submits the same way (playground/jobs.py with
`--ray-address`). The job runs from this repository's folder on the node Ray picks, so the repository, the Python
environment and the `--out` folder must be at the same paths on every node (shared storage: docs/scale.md).
With `--workers N` (N > 1) the job runs trainers.common.ray_workers, which starts the trainer in N Ray workers
as one MultiWorkerMirroredStrategy run.

A stop sends the job's processes SIGTERM unless the cluster was started with RAY_JOB_STOP_SIGNAL=SIGINT (then the
trainer writes `cancelled` and exits as on Ctrl-C); either way Ray kills what is left after RAY_JOB_STOP_WAIT_TIME_S.

The job server lives in Ray's dashboard process: a cluster started with `--include-dashboard false` has no job
server (Ray 2.60 then loads only its usage-stats module), so the head is started with the dashboard bound to
127.0.0.1 or the cluster's private network. Nothing here imports TensorFlow; Ray is needed
(requirements-scale.txt).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADDRESS_VARIABLE = "EAGER_PLAYGROUND_RAY_ADDRESS"
ENDED = ("SUCCEEDED", "FAILED", "STOPPED")
POLL_SECONDS = 1.0


def address_from_environment() -> str | None:
    """The Ray cluster the app uses, from EAGER_PLAYGROUND_RAY_ADDRESS ('' or unset: none, so its models run in
    its own process and its training runs are local processes)."""
    return os.environ.get(ADDRESS_VARIABLE, "").strip() or None


class ClusterError(RuntimeError):
    """The cluster or its job server cannot be reached or refused a request; the message is a sentence."""


def entrypoint(command: list[str], output: Path | None = None, workers: int = 1,
               cpus_per_worker: float = 1.0) -> str:
    """The job's shell command: from the repository's folder, the trainer (or the multi-worker launcher running
    it), its output appended to `output` (the run folder's log, on shared storage) when given."""
    if workers > 1:
        command = [command[0], "-m", "trainers.common.ray_workers", "--workers", str(workers), "--cpus-per-worker",
                   str(cpus_per_worker), "--", *command]
    line = f"cd {shlex.quote(str(ROOT))} && exec {shlex.join(command)}"
    return f"{line} >> {shlex.quote(str(output))} 2>&1" if output is not None else line


class RayJobs:
    """A Ray cluster's job server, as the calls a training run needs: submit, state, stop and logs."""

    def __init__(self, address: str, workers: int = 1, cpus_per_worker: float = 1.0):
        self.address = address
        self.workers = workers
        self.cpus_per_worker = cpus_per_worker
        self._client = None

    def client(self):
        if self._client is None:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            try:
                from ray.job_submission import JobSubmissionClient

                self._client = JobSubmissionClient(self.address)
            except Exception as error:  # noqa: BLE001 - no Ray, no cluster, no job server: one sentence
                raise ClusterError(f"the Ray cluster's job server at {self.address} cannot be reached "
                                   f"({_first_line(error)})") from None
        return self._client

    def submit(self, command: list[str], output: Path | None = None, name: str | None = None) -> str:
        """Submits the trainer command; returns the job's submission id."""
        env = {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
               "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"), "RAY_USAGE_STATS_ENABLED": "0"}
        # One worker: the trainer is the job's own process and reserves its CPU (so it may run on any node). Several:
        # the launcher only waits, and each worker actor reserves its own.
        cpus = self.cpus_per_worker if self.workers <= 1 else 0
        try:
            return self.client().submit_job(
                entrypoint=entrypoint(command, output, self.workers, self.cpus_per_worker),
                submission_id=name, runtime_env={"env_vars": env}, entrypoint_num_cpus=cpus,
                metadata={"source": "eager-playground"})
        except ClusterError:
            raise
        except Exception as error:  # noqa: BLE001
            raise ClusterError(f"the Ray cluster at {self.address} refused the run ({_first_line(error)})") from None

    def state(self, job: str) -> tuple[str, int | None, str]:
        """(status: PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED; the trainer's exit status when known; Ray's
        message)."""
        try:
            info = self.client().get_job_info(job)
        except ClusterError:
            raise
        except Exception as error:  # noqa: BLE001
            raise ClusterError(f"the Ray cluster at {self.address} cannot say how the run is doing "
                               f"({_first_line(error)})") from None
        status = str(getattr(info.status, "value", info.status))
        code = getattr(info, "driver_exit_code", None)
        if code is None and status == "SUCCEEDED":
            code = 0
        return status, code, info.message or ""

    def stop(self, job: str, wait: float = 30.0) -> str:
        """Stops the job and waits up to `wait` seconds for it to end; returns its last status."""
        try:
            self.client().stop_job(job)
        except ClusterError:
            raise
        except Exception as error:  # noqa: BLE001
            raise ClusterError(f"the Ray cluster at {self.address} cannot stop the run ({_first_line(error)})") \
                from None
        deadline = time.monotonic() + wait
        status = self.state(job)[0]
        while status not in ENDED and time.monotonic() < deadline:
            time.sleep(0.2)
            status = self.state(job)[0]
        return status

    def logs(self, job: str) -> str:
        try:
            return self.client().get_job_logs(job)
        except Exception:  # noqa: BLE001 - the logs are a courtesy; the status says what happened
            return ""


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name}" if __spec__ else None,
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", default=address_from_environment() or "auto",
                        help="the Ray cluster: auto, HOST:PORT or the job server's http://HOST:8265")
    parser.add_argument("--workers", type=int, default=1, help="multi-worker run over this many Ray workers (1)")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs each worker reserves (1)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the trainer's command line")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the trainer's command after --, e.g. -- python -m trainers.char_rnn.train --out runs/x")
    jobs = RayJobs(args.address, args.workers, args.cpus_per_worker)
    try:
        job = jobs.submit(command)
        print(f"submitted Ray job {job}", file=sys.stderr)
        shown = 0
        try:
            while True:
                status, code, message = jobs.state(job)
                text = jobs.logs(job)
                sys.stdout.write(text[shown:])
                sys.stdout.flush()
                shown = len(text)
                if status in ENDED:
                    break
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            print(f"stopping Ray job {job}", file=sys.stderr)
            status, code, message = jobs.stop(job), 130, "stopped"
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    if status != "SUCCEEDED":
        print(f"error: the Ray job {job} ended {status.lower()}: {message}", file=sys.stderr)
    sys.exit(0 if status == "SUCCEEDED" else (code or 1))


if __name__ == "__main__":
    main()
