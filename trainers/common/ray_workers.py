"""A multi-worker training run across Ray workers: N actors, one TF_CONFIG, the same trainer command in each.

    python -m trainers.common.ray_workers --workers 2 [--cpus-per-worker 1] [--address auto] \\
        -- python -m trainers.char_rnn.train --out runs/x --epochs 2 ...

Each of the N actors (one CPU share each, spread over the nodes) reports its node's address and a free port; the
launcher builds the cluster spec from them and starts the trainer command with `--strategy multi-worker` in every
actor, with `TF_CONFIG` naming that actor's task (worker 0 is the chief: it alone writes progress and checkpoints,
trainers/common/run.py). The trainers' output is printed here, the chief's as it is and the others' prefixed
with `[worker i]`, so a Ray Job that runs this launcher shows one log. `--out` must be on storage every node sees.

The launcher exits with the first non-zero status of a worker (after stopping the others) or 0. An interrupt
(the Ray Job being stopped, or Ctrl-C) interrupts every worker's trainer, which writes `cancelled` and exits.
A port is chosen by binding to port 0 and closing the socket before TensorFlow binds it: another process could take
it in between (rare; the run then fails and says so, and can be resumed).

Ray is needed (requirements-scale.txt). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STOP_GRACE_SECONDS = 10.0


class TrainerProcess:
    """A Ray actor that runs one worker's trainer as a subprocess (so its TensorFlow is a fresh process with its
    own TF_CONFIG) and hands back its output line by line."""

    def address(self) -> str:
        """This node's address and a port free on it now, for the cluster spec."""
        import socket

        import ray

        host = ray.util.get_node_ip_address()
        with socket.socket() as probe:
            probe.bind((host, 0))
            return f"{host}:{probe.getsockname()[1]}"

    def start(self, command: list[str], tf_config: str) -> int:
        env = {**os.environ, "TF_CONFIG": tf_config, "PYTHONUNBUFFERED": "1",
               "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.lines: list[str] = []
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                        preexec_fn=_die_with_parent)
        threading.Thread(target=self._read, daemon=True).start()
        return self.process.pid

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def poll(self) -> tuple[list[str], int | None]:
        """(the output lines since the last poll, the exit status or None while it runs)."""
        returncode = self.process.poll()
        if returncode is not None:
            time.sleep(0.2)  # the reader thread drains the pipe's last lines
        lines, self.lines = self.lines, []
        return lines, returncode

    def interrupt(self) -> None:
        """SIGINT to the trainer's group: it writes `cancelled` and exits (cli.run_training)."""
        try:
            os.killpg(self.process.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _die_with_parent() -> None:
    """In the trainer, before exec: a SIGKILL when the actor's process ends (Linux prctl PR_SET_PDEATHSIG), so a
    killed actor leaves no trainer behind; and SIGINT unblocked (Ray blocks it in its workers)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)
    except OSError:
        pass
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def tf_configs(addresses: list[str]) -> list[str]:
    """One TF_CONFIG per worker: the same cluster of `addresses`, each its own task index (0 is the chief)."""
    cluster = {"worker": list(addresses)}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            for index in range(len(addresses))]


def with_strategy(command: list[str]) -> list[str]:
    """The command with `--strategy multi-worker` last (argparse keeps the last value of a repeated flag)."""
    return [*command, "--strategy", "multi-worker"]


def run(command: list[str], workers: int, cpus_per_worker: float = 1.0, address: str | None = None,
        out=sys.stdout) -> int:
    """Runs `command` as a `workers`-worker MultiWorkerMirroredStrategy run on Ray; returns the exit status."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or "auto", log_to_driver=False)
    actor_class = ray.remote(num_cpus=cpus_per_worker, max_restarts=0)(TrainerProcess)
    # SPREAD: one worker per node where there are several nodes (on one node they share it).
    actors = [actor_class.options(scheduling_strategy="SPREAD").remote() for _ in range(workers)]
    addresses = ray.get([actor.address.remote() for actor in actors])
    print(f"multi-worker run: {workers} workers at {', '.join(addresses)}", file=out, flush=True)
    ray.get([actor.start.remote(with_strategy(command), config)
             for actor, config in zip(actors, tf_configs(addresses))])
    status: list[int | None] = [None] * workers
    try:
        while any(code is None for code in status):
            for index, (lines, code) in enumerate(ray.get([actor.poll.remote() for actor in actors])):
                for line in lines:
                    out.write(line if index == 0 else f"[worker {index}] {line}")
                if code is not None and status[index] is None:
                    status[index] = code
                    if code != 0:  # one worker failed: the others would wait for it in a collective forever
                        _stop(actors, status)
            out.flush()
            time.sleep(0.5)
    except KeyboardInterrupt:
        _stop(actors, status)
        raise
    failed = [code for code in status if code]
    return failed[0] if failed else 0


def _stop(actors, status) -> None:
    """Interrupts the workers still running, then kills what is left after STOP_GRACE_SECONDS."""
    import ray

    running = [actor for actor, code in zip(actors, status) if code is None]
    ray.get([actor.interrupt.remote() for actor in running])
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while running and time.monotonic() < deadline:
        time.sleep(0.5)
        running = [actor for actor in running if ray.get(actor.poll.remote())[1] is None]
    for actor in running:
        ray.get(actor.kill.remote())
    for index, code in enumerate(status):
        if code is None:
            status[index] = 130


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name}" if __spec__ else None,
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs each worker reserves (1)")
    parser.add_argument("--address", default=None, help="the Ray cluster (default: RAY_ADDRESS, else auto)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the trainer's command line")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the trainer's command after --, e.g. -- python -m trainers.char_rnn.train --out runs/x")
    if not 1 <= args.workers <= 64:
        parser.error(f"--workers must be between 1 and 64, got {args.workers}")
    try:
        status = run(command, args.workers, args.cpus_per_worker, args.address)
    except KeyboardInterrupt:
        print("error: training cancelled; the last finished epoch is saved in the run folder", file=sys.stderr)
        os._exit(130)
    except ConnectionError as error:
        print(f"error: the Ray cluster cannot be reached: {error}", file=sys.stderr)
        sys.exit(1)
    sys.stdout.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
