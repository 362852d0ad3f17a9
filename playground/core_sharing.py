"""While the app answers requests, a local training run keeps to one core; once the app is idle it gets them all.

A run already trains at SCHED_IDLE (playground/supervise.py), so the app's threads take a core from it at once.
That is not enough on this two-core machine: with the trainer on both cores, the app's answers took 15-45 % longer
(benchmarks/responsiveness.py with 5 ms client polling, Intel Xeon: text 202 -> 247 ms, translate p95 40 -> 57 ms)
although a stopped trainer cost nothing. The trainer's matrix work shares each core's caches and the virtual
machine's time with the app; kept to the last core, it cost 8-17 %.

So `serving()` (called by the Registry when a request takes its model, and by the text scheduler every round)
confines the run's threads to one core, and a watcher thread gives the run back its cores after the app has
served nothing for IDLE_SECONDS. Runs of a Ray cluster are not touched (they run elsewhere). Everything here is
best effort: a thread that ended meanwhile, or a run we may not change, is left as it is.
EAGER_PLAYGROUND_CORE_SHARING=off lets a run keep every core even while the app answers (it trains faster, the
app answers slower).

    from playground.core_sharing import CORES
    CORES.adopt(pid)      # a local run started (Jobs does this)
    CORES.serving()       # a request is being answered
    CORES.release(pid)    # the run ended
"""

from __future__ import annotations

import os
import threading
import time

IDLE_SECONDS = 3.0  # after this long without a request the run trains on every core again
WATCH_SECONDS = 0.25


class CoreSharing:
    def __init__(self, idle_seconds: float = IDLE_SECONDS, watch_seconds: float = WATCH_SECONDS):
        self.idle_seconds, self.watch_seconds = idle_seconds, watch_seconds
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._cores: set[int] = set()  # the run's own cores, given back when the app is idle
        self._confined = False
        self._last = 0.0
        self.confinements = 0  # how often the run was confined: for tests and the benchmark's report

    @property
    def confined(self) -> bool:
        return self._confined

    def adopt(self, pid: int) -> None:
        """Shares the cores with the run whose trainer is `pid` (a second call for the same pid does nothing)."""
        if not hasattr(os, "sched_getaffinity") or os.environ.get("EAGER_PLAYGROUND_CORE_SHARING") == "off":
            return
        with self._lock:
            if self._pid == pid:
                return
            try:  # with the app's own: a run an earlier app process left confined gets its cores back too
                cores = os.sched_getaffinity(pid) | os.sched_getaffinity(0)
            except OSError:
                return
            self._pid, self._cores, self._confined = pid, cores, False
        if time.monotonic() - self._last < self.idle_seconds:
            self.serving()
        threading.Thread(target=self._watch, args=(pid,), daemon=True, name=f"core-sharing-{pid}").start()

    def release(self, pid: int | None = None) -> None:
        """Stops sharing with the run `pid` (any run if None); its cores are given back if it still runs."""
        with self._lock:
            if self._pid is None or (pid is not None and pid != self._pid):
                return
            if self._confined:
                _set_cores(self._pid, self._cores)
            self._pid, self._confined = None, False

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

    def _watch(self, pid: int) -> None:
        while True:
            time.sleep(self.watch_seconds)
            with self._lock:
                if self._pid != pid:
                    return
                if self._confined and time.monotonic() - self._last >= self.idle_seconds:
                    _set_cores(pid, self._cores)
                    self._confined = False


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
