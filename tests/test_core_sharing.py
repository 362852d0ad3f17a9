"""A local training run keeps to one core while the app answers requests, and gets its cores back once the app
is idle (playground/core_sharing.py). A real process with several threads stands in for the trainer."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from playground.core_sharing import CoreSharing, threads_of

CORES = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
pytestmark = pytest.mark.skipif(len(CORES) < 2, reason="sharing cores needs at least two of them")

THREADED = """
import threading, time, sys
for _ in range(3):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print("ready", flush=True)
sys.stdin.readline()  # a new thread on request, started by the main thread
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print("started", flush=True)
time.sleep(60)
"""


def cores_of(pid: int) -> list[set[int]]:
    return [os.sched_getaffinity(thread) for thread in threads_of(pid)]


def wait_for(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def trainer():
    process = subprocess.Popen([sys.executable, "-c", THREADED], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline().strip() == "ready"
    yield process
    process.kill()
    process.wait()


def test_a_request_confines_the_run_and_idleness_gives_its_cores_back(trainer):
    sharing = CoreSharing(idle_seconds=0.5, watch_seconds=0.05)
    sharing.adopt(trainer.pid)
    assert len(threads_of(trainer.pid)) == 4
    assert cores_of(trainer.pid) == [CORES] * 4 and not sharing.confined

    sharing.serving()
    assert sharing.confined and sharing.confinements == 1
    assert cores_of(trainer.pid) == [{max(CORES)}] * 4, "every thread keeps to the last core"
    trainer.stdin.write("\n")
    trainer.stdin.flush()
    assert trainer.stdout.readline().strip() == "started"
    assert cores_of(trainer.pid) == [{max(CORES)}] * 5, "a thread started meanwhile inherits the one core"

    for _ in range(5):  # requests keep coming: the run stays confined, without confining it again
        time.sleep(0.2)
        sharing.serving()
    assert sharing.confined and sharing.confinements == 1
    assert wait_for(lambda: not sharing.confined), "the app has been idle: the run must get its cores back"
    assert cores_of(trainer.pid) == [CORES] * 5

    sharing.serving()  # busy again
    assert sharing.confinements == 2 and cores_of(trainer.pid) == [{max(CORES)}] * 5
    sharing.release(trainer.pid)
    assert cores_of(trainer.pid) == [CORES] * 5 and not sharing.confined, "an ended share gives the cores back"
    sharing.serving()
    assert cores_of(trainer.pid) == [CORES] * 5, "no run adopted: a request changes nothing"


def test_a_run_started_while_the_app_is_busy_is_confined_at_once(trainer):
    sharing = CoreSharing(idle_seconds=5, watch_seconds=0.05)
    sharing.serving()
    sharing.adopt(trainer.pid)
    assert sharing.confined and cores_of(trainer.pid) == [{max(CORES)}] * 4
    sharing.adopt(trainer.pid)  # adopting the same run again (a page refresh of the Training tab) changes nothing
    assert sharing.confinements == 1
    sharing.release(os.getpid())  # another pid: not this run
    assert sharing.confined
    sharing.release()
    assert cores_of(trainer.pid) == [CORES] * 4


def test_a_run_an_earlier_app_left_confined_gets_its_cores_back(trainer):
    for thread in threads_of(trainer.pid):  # the app that confined it was killed before it could give them back
        os.sched_setaffinity(thread, {min(CORES)})
    sharing = CoreSharing(idle_seconds=0.2, watch_seconds=0.05)
    sharing.adopt(trainer.pid)  # the restarted app finds the run
    sharing.serving()
    assert cores_of(trainer.pid) == [{max(CORES)}] * 4
    assert wait_for(lambda: not sharing.confined)
    assert cores_of(trainer.pid) == [CORES] * 4


def test_a_run_that_ended_is_let_go_quietly(trainer):
    sharing = CoreSharing(idle_seconds=0.2, watch_seconds=0.05)
    sharing.adopt(trainer.pid)
    trainer.kill()
    trainer.wait()
    sharing.serving()  # its threads are gone: nothing to change, nothing raised
    assert wait_for(lambda: not sharing.confined)
    sharing.release(trainer.pid)
