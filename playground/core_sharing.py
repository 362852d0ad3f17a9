"""While the app answers, a local training run stops; between answers it trains, and the app's cores are shared.

A run already trains at SCHED_IDLE (playground/supervise.py), so the app's threads take a core from it at once.
That is not enough on this two-core machine: with the trainer on both cores, the app's answers took 15-45 % longer
(benchmarks/responsiveness.py with 5 ms client polling, Intel Xeon: text 202 -> 247 ms, translate p95 40 -> 57 ms)
although a stopped trainer cost nothing. The trainer's matrix work shares each core's caches and the virtual
machine's time with the app; kept to the last core, it cost 8-17 % there, and on an AMD EPYC with AVX2 the text
tab's 200 characters still took 2.3x as long (median 592 against 220 ms, 2026-12-08): between the app's
operations the trainer ran on the other core and pushed the GRU's 16 MB of weights out of the shared cache.

So there are two mechanisms, both best effort (a thread that ended meanwhile, or a run we may not change, is
left as it is):

- Pausing: while an answer is being computed (`answering()`, which the tabs and the text scheduler enter), the
  run's process group is stopped (SIGSTOP) and continued (SIGCONT) HOLD_SECONDS after the last answer ended. A
  pause lasts at most LONGEST_PAUSE_SECONDS; then the run trains at least SHORTEST_RUN_SECONDS whatever the app
  does, so a busy app slows a run down but never starves it. Only a run in a process group of its own is paused
  (supervise.launch makes one), never the app's group. If the app dies while the run is stopped, a small watcher
  process started with the run (`python -m playground.core_sharing --continue-when-gone APP GROUP`) continues it;
  an app that starts later and finds the run continues it too. Stopped time is counted (`paused_seconds`) and
  the Training tab shows it.
- Sharing cores: `serving()` (a request takes its model from the Registry; each text round) confines the run's
  threads to one core, and the watcher thread gives the run back its cores after the app has served nothing for
  IDLE_SECONDS.

Runs of a Ray cluster are not touched (they run elsewhere). EAGER_PLAYGROUND_CORE_SHARING chooses: `pause` (the
default: both), `cores` (sharing cores only: the run trains on one core while the app answers), `off` (the run
keeps every core and is never stopped: it trains faster, the app answers slower).

    from playground.core_sharing import CORES
    CORES.adopt(pid)      # a local run started (Jobs does this)
    with CORES.answering():
        ...               # an answer is being computed
    CORES.serving()       # a request is being answered (confines only)
    CORES.release(pid)    # the run ended, or is being cancelled
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

IDLE_SECONDS = 3.0  # after this long without a request the run trains on every core again
HOLD_SECONDS = 0.2  # a paused run continues this long after the last answer ended (bridges a stream's rounds)
LONGEST_PAUSE_SECONDS = 30.0  # then the run trains at least SHORTEST_RUN_SECONDS, however busy the app is
SHORTEST_RUN_SECONDS = 5.0
WATCH_SECONDS = 0.05
MODES = ("pause", "cores", "off")
ROOT = Path(__file__).resolve().parents[1]


def mode() -> str:
    """EAGER_PLAYGROUND_CORE_SHARING: "pause" (default, also for any other value), "cores" or "off"."""
    value = os.environ.get("EAGER_PLAYGROUND_CORE_SHARING", "pause").strip().lower()
    return value if value in MODES else "pause"


class CoreSharing:
    def __init__(self, idle_seconds: float = IDLE_SECONDS, watch_seconds: float = WATCH_SECONDS,
                 hold_seconds: float = HOLD_SECONDS, longest_pause: float = LONGEST_PAUSE_SECONDS,
                 shortest_run: float = SHORTEST_RUN_SECONDS, pausing: bool | None = None):
        self.idle_seconds, self.watch_seconds, self.hold_seconds = idle_seconds, watch_seconds, hold_seconds
        self.longest_pause, self.shortest_run = longest_pause, shortest_run
        self._pausing = pausing  # None: as EAGER_PLAYGROUND_CORE_SHARING says when a pause would begin
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._group: int | None = None  # the run's own process group, which a pause stops (None: never paused)
        self._cores: set[int] = set()  # the run's own cores, given back when the app is idle
        self._confined = False
        self._last = 0.0  # when the app last served a request or ended an answer
        self._answers = 0  # answers being computed now
        self._paused_at: float | None = None
        self._running_until = 0.0  # after a longest pause the run trains until then, whatever the app does
        self._paused_total = 0.0  # seconds the adopted run has been stopped, the current pause not included
        self.confinements = 0  # how often the run was confined, and paused: for tests and the benchmark's report
        self.pauses = 0

    @property
    def pausing(self) -> bool:
        return mode() == "pause" if self._pausing is None else self._pausing

    @property
    def confined(self) -> bool:
        return self._confined

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def paused_seconds(self, pid: int | None) -> float:
        """How long the run `pid` has been stopped for the app's answers so far (0 for any other run)."""
        with self._lock:
            if pid is None or pid != self._pid:
                return 0.0
            return self._paused_total + (time.monotonic() - self._paused_at if self.paused else 0.0)

    def adopt(self, pid: int) -> None:
        """Shares the cores with the run whose trainer is `pid` (a second call for the same pid does nothing)."""
        if mode() == "off":
            _continue(_own_group(pid))  # a run an earlier app process left stopped trains on
            return
        if not hasattr(os, "sched_getaffinity"):
            return
        with self._lock:
            if self._pid == pid:
                return
            try:  # with the app's own: a run an earlier app process left confined gets its cores back too
                cores = os.sched_getaffinity(pid) | os.sched_getaffinity(0)
            except OSError:
                return
            if self.paused:  # another run, still adopted (one trains at a time; best effort all the same)
                self._resume(time.monotonic())
            group = _own_group(pid)
            _continue(group)  # and one it left stopped trains on
            self._pid, self._group, self._cores, self._confined = pid, group, cores, False
            self._paused_at, self._paused_total, self._running_until = None, 0.0, 0.0
            if self.pausing and group is not None:
                _start_waker(group)
            busy = self._answers > 0
            if busy:
                self._pause_if_due(time.monotonic())
        if busy or time.monotonic() - self._last < self.idle_seconds:
            self.serving()
        threading.Thread(target=self._watch, args=(pid,), daemon=True, name=f"core-sharing-{pid}").start()

    def release(self, pid: int | None = None) -> None:
        """Stops sharing with the run `pid` (any run if None): it is continued and gets its cores back if it still
        runs. Called when a run ended, and before a cancel interrupts it."""
        with self._lock:
            if self._pid is None or (pid is not None and pid != self._pid):
                return
            if self.paused:
                self._resume(time.monotonic())
            if self._confined:
                _set_cores(self._pid, self._cores)
            self._pid, self._group, self._confined = None, None, False

    def serving(self) -> None:
        """A request is being answered: the run keeps to one core from now until the app has been idle a while."""
        self._last = time.monotonic()
        if self._confined or self._pid is None:
            return
        with self._lock:
            if self._confined or self._pid is None or len(self._cores) < 2:
                return
            _set_cores(self._pid, {max(self._cores)})
            self._confined = True
            self.confinements += 1

    @contextlib.contextmanager
    def answering(self):
        """While the block runs, an answer is being computed: the run is stopped (unless it has just been stopped
        for LONGEST_PAUSE_SECONDS) and kept to one core."""
        self.serving()
        with self._lock:
            self._answers += 1
            self._pause_if_due(time.monotonic())
        try:
            yield
        finally:
            with self._lock:
                self._answers -= 1
                self._last = time.monotonic()

    def _pause_if_due(self, now: float) -> None:
        """Stops the run if pausing is on and due (called with the lock held)."""
        if not self.pausing or self._group is None or self.paused or now < self._running_until:
            return
        if _signal(self._group, signal.SIGSTOP):
            self._paused_at = now
            self.pauses += 1

    def _resume(self, now: float) -> None:
        """Continues the stopped run (called with the lock held)."""
        _signal(self._group, signal.SIGCONT)
        self._paused_total += now - self._paused_at
        self._paused_at = None

    def _watch(self, pid: int) -> None:
        while True:
            time.sleep(self.watch_seconds)
            with self._lock:
                if self._pid != pid:
                    return
                now = time.monotonic()
                if self.paused:
                    if now - self._paused_at >= self.longest_pause:
                        self._resume(now)
                        self._running_until = now + self.shortest_run
                    elif self._answers == 0 and now - self._last >= self.hold_seconds:
                        self._resume(now)
                elif self._answers:
                    self._pause_if_due(now)  # a run's shortest time to train ended while answers go on
                if self._confined and not self._answers and now - self._last >= self.idle_seconds:
                    _set_cores(pid, self._cores)
                    self._confined = False


def _own_group(pid: int) -> int | None:
    """The process group a pause may stop: the run's own (its trainer leads it), never the app's. None if not."""
    try:
        group = os.getpgid(pid)
    except OSError:
        return None
    return group if group == pid and group != os.getpgrp() else None


def _signal(group: int | None, number: int) -> bool:
    if group is None:
        return False
    try:
        os.killpg(group, number)
        return True
    except OSError:  # ended meanwhile, or not ours to signal
        return False


def _continue(group: int | None) -> None:
    _signal(group, signal.SIGCONT)


def _start_waker(group: int) -> None:
    """A small process that continues the run's group if this app ends while the run is stopped (a killed app
    cannot send SIGCONT itself). It leaves once the run or the app has ended; a thread reaps it."""
    try:
        waker = subprocess.Popen([sys.executable, "-m", "playground.core_sharing", "--continue-when-gone",
                                  str(os.getpid()), str(group)], cwd=ROOT, start_new_session=True,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return
    threading.Thread(target=waker.wait, daemon=True, name=f"core-sharing-waker-{group}").start()


def state_of(pid: int) -> str:
    """The process's state letter in /proc: R, S, D, T (stopped), Z (ended, not yet reaped)...; "" once gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _running(pid: int) -> bool:
    """True while `pid` runs (a zombie, which has ended but not yet been reaped, does not count)."""
    return state_of(pid) not in ("", "Z", "X")


def continue_when_gone(app: int, group: int, poll_seconds: float = 0.5) -> None:
    """Waits while the app `app` and the run leading `group` both run; when the app is gone first, continues the
    run's group (a stopped run of a dead app would otherwise wait for ever)."""
    while _running(app) and _running(group):
        time.sleep(poll_seconds)
    _continue(group)


def threads_of(pid: int) -> list[int]:
    """The thread ids of process `pid` ([] once it has ended)."""
    try:
        return [int(name) for name in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def _set_cores(pid: int, cores: set[int]) -> None:
    """Every thread of `pid` to `cores`. A thread started later inherits the setting of the thread starting it; one
    started while this runs is caught by the next pass."""
    done: set[int] = set()
    for _ in range(3):
        threads = set(threads_of(pid)) - done
        if not threads:
            return
        for thread in threads:
            try:
                os.sched_setaffinity(thread, cores)
            except OSError:  # ended meanwhile, or not ours to change
                pass
        done |= threads




CORES = CoreSharing()  # the app's one instance: Jobs adopts its local runs, the Registry and the text scheduler serve
atexit.register(CORES.release)  # an app that exits normally leaves its run training on every core

if __name__ == "__main__":  # the waker: python -m playground.core_sharing --continue-when-gone APP GROUP
    if len(sys.argv) != 4 or sys.argv[1] != "--continue-when-gone":
        sys.exit("usage: python -m playground.core_sharing --continue-when-gone APP_PID RUN_GROUP")
    continue_when_gone(int(sys.argv[2]), int(sys.argv[3]))
