"""A local training run is stopped while the app computes an answer and keeps to one core while the app answers
requests; it trains again after the answers and gets its cores back once the app is idle
(playground/core_sharing.py). Real processes stand in for the trainer (and, once, for the app)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from playground.core_sharing import CoreSharing, state_of, threads_of

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


# ---- pausing: the run's own process group is stopped while the app computes an answer

COUNTING = """
print("ready", flush=True)
count = 0
while True:
    count += 1
"""


@pytest.fixture
def own_group_trainer():
    """A busy process in a process group of its own, as supervise.launch starts a trainer."""
    # SIGINT back to its default in the child, as supervise.launch does: a suite run in the background of a
    # non-interactive shell ignores SIGINT, and the child would inherit that (then a cancel has to kill it).
    process = subprocess.Popen([sys.executable, "-c", COUNTING], stdout=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert process.stdout.readline().strip() == "ready"
    yield process
    try:
        os.killpg(process.pid, 9)
    except ProcessLookupError:  # ended by the test
        pass
    process.wait()


def test_an_answer_stops_the_run_and_it_trains_again_after(own_group_trainer):
    pid = own_group_trainer.pid
    sharing = CoreSharing(idle_seconds=0.5, watch_seconds=0.02, hold_seconds=0.1, pausing=True)
    sharing.adopt(pid)
    assert state_of(pid) != "T" and sharing.paused_seconds(pid) == 0
    with sharing.answering():
        assert wait_for(lambda: state_of(pid) == "T"), "the run must be stopped while an answer is computed"
        assert sharing.paused and sharing.confined and cores_of(pid) == [{max(CORES)}] * len(threads_of(pid))
        with sharing.answering():  # a second answer at the same time: one pause
            time.sleep(0.3)
        time.sleep(0.3)  # the other answer still runs: the hold does not end the pause
        assert state_of(pid) == "T"
    assert wait_for(lambda: state_of(pid) != "T"), "after the answers (and the hold) the run trains again"
    assert sharing.pauses == 1 and 0.5 < sharing.paused_seconds(pid) < 5
    assert sharing.paused_seconds(os.getpid()) == 0, "another run has not been paused"
    assert wait_for(lambda: not sharing.confined), "idle: the run gets its cores back"

    sharing.serving()  # a request that takes a model without computing an answer (only confines)
    time.sleep(0.2)
    assert state_of(pid) != "T" and sharing.pauses == 1


def test_a_long_stop_gives_the_run_its_time_to_train(own_group_trainer):
    pid = own_group_trainer.pid
    sharing = CoreSharing(watch_seconds=0.02, hold_seconds=0.1, longest_pause=0.4, shortest_run=0.6, pausing=True)
    sharing.adopt(pid)
    states = []
    with sharing.answering():  # an answer that takes longer than the longest stop
        began = time.monotonic()
        while time.monotonic() - began < 1.6:
            states.append((time.monotonic() - began, state_of(pid)))
            time.sleep(0.02)
    stopped = [at for at, state in states if state == "T"]
    running = [at for at, state in states if state != "T" and 0.5 < at < 0.9]
    assert stopped and stopped[0] < 0.1, "stopped at once"
    assert len(running) > 10, "after the longest stop the run trains, although the answer goes on"
    assert any(state == "T" for at, state in states if at > 1.2), "and is stopped again after its time to train"
    assert sharing.pauses == 2


def test_release_and_cancel_continue_a_stopped_run(own_group_trainer):
    pid = own_group_trainer.pid
    sharing = CoreSharing(watch_seconds=0.02, hold_seconds=0.1, pausing=True)
    sharing.adopt(pid)
    with sharing.answering():
        assert wait_for(lambda: state_of(pid) == "T")
        sharing.release(pid)  # as Jobs.cancel does before it interrupts the run
        assert wait_for(lambda: state_of(pid) != "T"), "a released run is continued at once"
        with sharing.answering():
            time.sleep(0.1)
            assert state_of(pid) != "T", "and never stopped again"
    assert not sharing.paused


def test_a_run_in_the_apps_own_process_group_is_never_stopped(trainer):
    """The stand-in `trainer` shares this process's group: stopping the group would stop the app itself."""
    sharing = CoreSharing(watch_seconds=0.02, pausing=True)
    sharing.adopt(trainer.pid)
    with sharing.answering():
        time.sleep(0.1)
        assert state_of(trainer.pid) != "T" and not sharing.paused
    assert sharing.confinements == 1, "it still shares the cores"


@pytest.mark.parametrize("setting", ["cores", "off"])
def test_the_setting_turns_stops_off(own_group_trainer, monkeypatch, setting):
    monkeypatch.setenv("EAGER_PLAYGROUND_CORE_SHARING", setting)
    pid = own_group_trainer.pid
    os.kill(pid, 19)  # SIGSTOP: as an earlier app process may have left it
    assert wait_for(lambda: state_of(pid) == "T")
    sharing = CoreSharing(watch_seconds=0.02)
    sharing.adopt(pid)
    assert wait_for(lambda: state_of(pid) != "T"), "a run found stopped is continued in every setting"
    with sharing.answering():
        time.sleep(0.1)
        assert state_of(pid) != "T" and sharing.pauses == 0
    assert sharing.confinements == (1 if setting == "cores" else 0)


APP = """
import os, signal, sys, time
from playground.core_sharing import CoreSharing
sharing = CoreSharing(pausing=True)
sharing.adopt(int(sys.argv[1]))
answer = sharing.answering()
answer.__enter__()  # an answer is being computed when the app is killed
print("paused", flush=True)
time.sleep(60)
"""


def test_a_run_stopped_by_an_app_that_died_is_continued(own_group_trainer):
    """The app is killed in the middle of an answer: its waker process continues the run within a second."""
    pid = own_group_trainer.pid
    app = subprocess.Popen([sys.executable, "-c", APP, str(pid)], stdout=subprocess.PIPE, text=True,
                           cwd=Path(__file__).resolve().parents[1])
    try:
        assert app.stdout.readline().strip() == "paused"
        assert wait_for(lambda: state_of(pid) == "T")
        time.sleep(1.0)
        assert state_of(pid) == "T", "stopped while the app lives"
        app.kill()  # not reaped yet: a zombie, which counts as gone
        assert wait_for(lambda: state_of(pid) != "T", timeout=5), "the waker must continue the run"
    finally:
        app.kill()
        app.wait()


def test_a_cancel_continues_a_run_that_was_left_stopped(own_group_trainer, tmp_path):
    """supervise.stop_group interrupts the group; a stopped trainer would only see the interrupt when continued,
    so it is continued first (and only then: a running one gets the interrupt alone)."""
    from playground import supervise

    pid = own_group_trainer.pid
    os.kill(pid, 19)  # SIGSTOP, as an app that died mid-answer may leave it (its waker aside)
    assert wait_for(lambda: state_of(pid) == "T")
    began = time.monotonic()
    supervise.stop_group(pid, tmp_path, own_group_trainer, grace=10)
    assert own_group_trainer.returncode == -2, "ended by the interrupt, not killed after the grace"
    assert time.monotonic() - began < 10
