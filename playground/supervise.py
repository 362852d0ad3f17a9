"""The trainer's process: started in a process group of its own at a lower CPU priority, watched, and stopped.

A run is an argument list (never a shell), executed as `chrt --idle 0 nice -n 10 <command>` (SCHED_IDLE: it
runs on what the app leaves idle; both exec, so the pid is the trainer's) with `start_new_session`, so the run's
group outlives an app restart and a cancel reaches the trainer and every process it started (a cancel first moves
the run back to the normal policy, so it gets the CPU to handle the interrupt). Liveness comes from psutil: a
zombie has ended, and a pid reused by another program is not our trainer (its command line must name the run's
folder).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import typing
from pathlib import Path

import psutil

from playground.job_error import JobError

ROOT = Path(__file__).resolve().parents[1]
NICE_INCREMENT = 10
# A cancelled trainer writes `cancelled` within milliseconds and then leaves with os._exit (cli.run_training),
# well within the grace; the grace only has to cover a TensorFlow op that is running when the interrupt comes.
CANCEL_GRACE_SECONDS = 5.0
REAP_SECONDS = 10.0


def launch(command: list[str], output: Path) -> subprocess.Popen:
    """Starts `command` from the repository root in a new process group at SCHED_IDLE and nice +10, its output
    into `output`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    nice, chrt = shutil.which("nice"), shutil.which("chrt")
    # SCHED_IDLE (chrt --idle): the trainer gets a core only when the app's threads leave it; nice +10 alone let
    # a training run double the Digits tab's p95 (benchmarks/responsiveness.py). nice and chrt exec: same pid.
    command = ([chrt, "--idle", "0"] if chrt else []) + ([nice, "-n", str(NICE_INCREMENT)] if nice else []) + \
        list(command)
    with open(output, "ab") as handle:
        try:
            return subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=handle,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_default_interrupt if _interrupt_ignored() else None)
        except OSError as error:
            raise JobError(f"the trainer could not start: {error}") from None


def _interrupt_ignored() -> bool:
    """True when this app runs with SIGINT ignored (`nohup ... &`), which a child would inherit."""
    return signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def _default_interrupt() -> None:
    """In the child, before exec: SIGINT back to its default, so Python turns it into KeyboardInterrupt and
    cancel works from the first moment (the trainer's cli.run_training restores it too, once it has started).
    Only used when the app ignores SIGINT; it calls nothing but signal(2)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def watch(process: subprocess.Popen, on_exit: typing.Callable[[int], None], name: str) -> None:
    """Calls `on_exit(returncode)` from a background thread once `process` has ended (and reaps it)."""
    threading.Thread(target=lambda: on_exit(process.wait()), daemon=True, name=name).start()


def alive(pid: int | None, run_dir: Path) -> bool:
    """True if `pid` is running and is this run's trainer (a reused pid of another program does not count)."""
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:  # a zombie has ended; only its exit status is left
            return False
        command = " ".join(process.cmdline())
    except psutil.NoSuchProcess:  # also psutil.ZombieProcess
        return False
    except psutil.AccessDenied:
        return True  # someone else's process we may not inspect: trust that it exists
    return Path(run_dir).name in command


def group_members(pgid: int) -> list[int]:
    """The pids of the live (not zombie) processes in process group `pgid`."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == pgid:
                members.append(process.pid)
        except (OSError, psutil.Error):  # it ended meanwhile
            continue
    return members


def group_alive(pgid: int, process: subprocess.Popen | None) -> bool:
    """True while any process of the run's group (the trainer or a child it started) is still running."""
    if process is not None and process.poll() is None:
        return True
    return bool(group_members(pgid))


def _wake(pgid: int) -> None:
    """Continues the group if it was stopped (playground/core_sharing.py pauses a run while the app answers) and
    moves its processes from SCHED_IDLE back to the normal policy (still at nice +10), so a trainer on a busy
    machine gets the CPU to handle the interrupt and write 'cancelled' within the grace. Best effort: without the
    permission (an unprivileged user's RLIMIT_NICE) the run stays idle-scheduled."""
    for pid in group_members(pgid):
        try:
            if psutil.Process(pid).status() == psutil.STATUS_STOPPED:
                os.kill(pid, signal.SIGCONT)  # only a stopped one: a running trainer gets no other signal
            if hasattr(os, "sched_setscheduler"):
                os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
        except (OSError, psutil.Error):
            pass


def _signal_group(pgid: int, number: int) -> None:
    try:
        os.killpg(pgid, number)
    except (ProcessLookupError, PermissionError):
        pass


def stop_group(pgid: int, run_dir: Path, process: subprocess.Popen | None = None,
               grace: float = CANCEL_GRACE_SECONDS) -> None:
    """Interrupts the group (the trainer logs 'cancelled' and exits), kills it after `grace` seconds, and waits
    for the trainer to end. `process` is the Popen when this app started the run, else None (found by pid)."""
    _wake(pgid)
    _signal_group(pgid, signal.SIGINT)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and group_alive(pgid, process):
        time.sleep(0.1)
    if group_alive(pgid, process):
        _signal_group(pgid, signal.SIGKILL)
    if process is not None:
        try:
            process.wait(timeout=REAP_SECONDS)
        except subprocess.TimeoutExpired:
            pass
    else:
        deadline = time.monotonic() + REAP_SECONDS
        while time.monotonic() < deadline and alive(pgid, run_dir):
            time.sleep(0.1)
