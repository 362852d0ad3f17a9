"""Bad input from a script gets one clear sentence: the tabs' endpoints, the training settings, cancel and kill.

The endpoint tests call the running app over plain HTTP (`/gradio_api/call/<name>`), because gradio_client's
HTTP library refuses to send NaN or infinity, which a script using the standard json module sends happily.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import urllib.request
from pathlib import Path

import gradio as gr
import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from playground import inputs

RAW_ERRORS = re.compile(r"Traceback|cannot convert|could not convert|NoneType|not supported between|"
                        r"invalid literal|object has no attribute|/tmp/|/home/|/work/")


def call(app_url: str, api_name: str, *arguments) -> tuple[str, object]:
    """("complete", outputs) or ("error", message) of one call of a named endpoint, with JSON as Python writes it
    (NaN and Infinity included)."""
    body = json.dumps({"data": list(arguments)}).encode()
    request = urllib.request.Request(f"{app_url}/gradio_api/call/{api_name}", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{app_url}/gradio_api/call/{api_name}/{event_id}", timeout=300) as response:
        stream = response.read().decode()
    event, data = None, None
    for line in stream.splitlines():
        if line.startswith("event: "):
            event = line[len("event: "):].strip()
        elif line.startswith("data: ") and event in ("complete", "error"):
            data = json.loads(line[len("data: "):])
            if event == "error":
                return "error", data.get("error") if isinstance(data, dict) else data
    return event, data


def refused(app_url, api_name, *arguments) -> str:
    event, message = call(app_url, api_name, *arguments)
    assert event == "error", f"{api_name}{arguments} was not refused: {event} {str(message)[:200]}"
    assert isinstance(message, str) and message, f"{api_name}{arguments}: no sentence, got {message!r}"
    assert not RAW_ERRORS.search(message), f"{api_name}{arguments}: a raw error: {message}"
    assert len(message) < 300 and message[0].isupper() and message.endswith("."), message
    return message


# ---- the shared helper


@pytest.mark.parametrize("value, expected", [
    (float("nan"), "Length must be a whole number, got NaN."),
    (float("inf"), "Length must be a whole number, got infinity."),
    (float("-inf"), "Length must be a whole number, got minus infinity."),
    ("abc", "Length must be a whole number, got 'abc'."),
    (None, "Give a value for the length."),
    (True, "Length must be a whole number, got True."),
    (2.5, "Length must be a whole number, got 2.5."),
    (-3, "Length must be between 10 and 2,000, got -3."),
    (1e300, "Length must be between 10 and 2,000, got 1e+300."),
    ([1, 2], "Length must be a whole number, got [1, 2]."),
    ("x" * 500, "Length must be a whole number, got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…."),
])
def test_whole_number_refuses_with_a_sentence(value, expected):
    with pytest.raises(gr.Error) as caught:
        inputs.whole_number(value, "length", 10, 2000)
    assert caught.value.message == expected


def test_whole_and_real_numbers_accept_what_fits():
    assert inputs.whole_number(400.0, "length", 10, 2000) == 400 and isinstance(
        inputs.whole_number(400.0, "length", 10, 2000), int)
    assert inputs.whole_number(" 12 ", "length", 10, 2000) == 12
    assert inputs.whole_number(None, "seed", 0, 9, default=None) is None
    assert inputs.whole_number("", "seed", 0, 9, default=None) is None
    assert inputs.real_number(0.5, "top-p", 0.05, 1) == 0.5
    assert inputs.real_number(1, "top-p", 0.05, 1) == 1.0
    for value in (float("nan"), float("inf"), "abc", None, False, 1e300, -1):
        with pytest.raises(gr.Error):
            inputs.real_number(value, "top-p", 0.05, 1)


def test_text_none_is_missing_not_too_long():
    with pytest.raises(gr.Error, match="Give the prompt"):
        inputs.text(None, "prompt", 2000)
    with pytest.raises(gr.Error, match="Prompt must be text, got 12."):
        inputs.text(12, "prompt", 2000)
    with pytest.raises(gr.Error, match="at most 2,000 characters, got 2,500"):
        inputs.text("x" * 2500, "prompt", 2000)
    assert inputs.text("", "prompt", 2000) == ""


def test_server_paths_are_taken_out_of_messages():
    message = inputs.without_paths("cannot read /tmp/pytest-of-root/pytest-3/checkpoints0/dcgan/config.json: bad")
    assert message == "cannot read config.json: bad"
    assert inputs.without_paths("between 0 and 5/2, got 1") == "between 0 and 5/2, got 1"


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                 st.text(max_size=30), st.lists(st.integers(), max_size=3)))
def test_fuzzed_numbers_give_a_value_in_range_or_a_sentence(value):
    for check, kind in ((inputs.whole_number, int), (inputs.real_number, float)):
        try:
            number = check(value, "count", 1, 256)
        except gr.Error as error:
            assert error.message.startswith(("Count must be", "Give a value")) and len(error.message) < 120
        else:
            assert isinstance(number, kind) and not isinstance(number, bool) and 1 <= number <= 256
            assert math.isfinite(number)


# ---- the endpoints of the running app

BAD_NUMBERS = [float("nan"), float("inf"), "abc", None, -5, 1e300, True]


@pytest.mark.parametrize("position, name", [(1, "Length"), (3, "Top-k")])
@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_generate_text_refuses_bad_numbers(app_url, position, name, value):
    arguments = ["Ham.", 40, 0.8, 0, 1.0, 1]
    arguments[position] = value
    message = refused(app_url, "generate_text", *arguments)
    assert message.startswith((f"{name} must be", f"Give a value for the {name.lower()}")), message


@pytest.mark.parametrize("position", [2, 4])
def test_generate_text_refuses_bad_real_numbers(app_url, position):
    for value in (float("nan"), "abc", None):
        arguments = ["Ham.", 40, 0.8, 0, 1.0, 1]
        arguments[position] = value
        refused(app_url, "generate_text", *arguments)


def test_generate_text_prompt_none_is_not_too_long(app_url):
    message = refused(app_url, "generate_text", None, 40, 0.8, 0, 1.0, 1)
    assert "2,000" not in message and "prompt" in message.lower()
    assert "Prompt must be text" in refused(app_url, "generate_text", 12345, 40, 0.8, 0, 1.0, 1)


def test_generate_text_still_accepts_floats_for_whole_numbers(app_url):
    event, outputs = call(app_url, "generate_text", "Ham.", 20.0, 0, 0.0, 1.0, 3.0)
    assert event == "complete" and outputs[0].startswith("Ham.") and len(outputs[0]) == 24


@pytest.mark.parametrize("value", BAD_NUMBERS + [2.5])
def test_generate_digits_refuses_bad_counts_and_seeds(app_url, value):
    assert refused(app_url, "generate_digits", 7, value).startswith(("Number of digits", "Give a value"))
    assert refused(app_url, "generate_digits", value, 4).startswith(("Seed must", "Give a value"))


@pytest.mark.parametrize("value", BAD_NUMBERS + [2.5])
def test_latent_walk_refuses_bad_frames(app_url, value):
    assert refused(app_url, "latent_walk", 1, 2, value).startswith(("Number of frames", "Give a value"))


@pytest.mark.parametrize("value", BAD_NUMBERS + [2.5])
def test_translate_refuses_bad_beam_widths(app_url, value):
    message = refused(app_url, "translate", "el señor es mi pastor", "Beam search", value, 0.8, 0)
    assert message.startswith(("Beam width must", "Give a value")), message


def test_translate_refuses_bad_text_decoding_temperature_and_seed(app_url):
    assert "Type a Spanish sentence" in refused(app_url, "translate", None, "Greedy", 3, 0.8, 0)
    assert "Input must be text" in refused(app_url, "translate", 7, "Greedy", 3, 0.8, 0)
    assert "Unknown decoding" in refused(app_url, "translate", "casa", None, 3, 0.8, 0)
    assert "Temperature must" in refused(app_url, "translate", "casa", "Greedy", 3, float("nan"), 0)
    assert "Seed must" in refused(app_url, "translate", "casa", "Greedy", 3, 0.8, float("inf"))


# ---- the Training tab's settings

ONE_MEGABYTE_OF_UNKNOWN_KEYS = {f"unknown_setting_{index:05d}": index for index in range(60_000)}


def test_oversized_settings_are_refused_quickly_and_briefly(tmp_path):
    import time

    from playground.jobs import JobError, Jobs

    jobs = Jobs(runs=tmp_path / "runs", checkpoints=tmp_path / "checkpoints")
    assert len(json.dumps(ONE_MEGABYTE_OF_UNKNOWN_KEYS)) > 1_000_000
    for settings, expected in ((ONE_MEGABYTE_OF_UNKNOWN_KEYS, "settings has 60,000 entries"),
                               ({"rnn_units": "9" * 20_000}, "at most 10,000 are accepted")):
        began = time.perf_counter()
        with pytest.raises(JobError, match=expected) as caught:
            jobs.start("char_rnn", "offline", 1, settings)
        assert time.perf_counter() - began < 1.0
        assert len(str(caught.value)) < 200, str(caught.value)
    assert not (jobs.runs.exists() and any(jobs.runs.iterdir()))


def test_unknown_settings_are_listed_a_few_at_a_time(tmp_path):
    from playground.jobs import JobError, Jobs

    jobs = Jobs(runs=tmp_path / "runs", checkpoints=tmp_path / "checkpoints")
    unknown = {f"nope_{index}": 1 for index in range(60)}
    with pytest.raises(JobError) as caught:
        jobs.start("char_rnn", "offline", 1, unknown)
    message = str(caught.value)
    assert message == "char_rnn has no settings 'nope_0', 'nope_1', 'nope_2', 'nope_3', 'nope_4' and 55 more"
    bad_values = {"rnn_units": "x" * 5000, "batch_size": "y" * 3000, "seq_len": 2.5, "learning_rate": "fast",
                  "embedding_dim": [1], "log_every": None, "steps_per_epoch": "z", "sample_length": False}
    with pytest.raises(JobError) as caught:
        jobs.start("char_rnn", "offline", 1, bad_values)
    message = str(caught.value)
    assert len(message) < 600 and message.endswith("and 2 more problems"), message
    assert "rnn units must be a whole number, got 'xxxxxxxx" in message


def test_start_training_endpoint_refuses_a_megabyte_of_settings_at_once(app_url):
    import time

    refused(app_url, "start_training", "char_rnn", "offline", 1, '{"nope": 1}', None)  # the first call is slower
    began = time.perf_counter()
    message = refused(app_url, "start_training", "char_rnn", "offline", 1, json.dumps(ONE_MEGABYTE_OF_UNKNOWN_KEYS),
                      None)
    elapsed = time.perf_counter() - began
    print(f"1.7 MB of settings refused in {elapsed:.2f} s: {message}")
    # A guard against a hang (parsing every key, one sentence per key), not a speed target: 0.37 s alone on an idle
    # 2-core EPYC, 1.2 s in a full suite with other tests beside it; speed belongs in benchmarks/.
    assert "60,000 entries" in message and len(message) < 200
    assert elapsed < 10.0


def test_fractional_epochs_are_refused_not_rounded(tmp_path):
    from playground.jobs import JobError, Jobs

    jobs = Jobs(runs=tmp_path / "runs", checkpoints=tmp_path / "checkpoints")
    for epochs in (2.5, "2.5", float("nan"), True):
        with pytest.raises(JobError, match="epochs must be a whole number"):
            jobs.start("char_rnn", "offline", epochs, {})
    with pytest.raises(JobError, match="rnn units must be a whole number, got 16.5"):
        jobs.start("char_rnn", "offline", 1, {"rnn_units": 16.5})


def test_the_training_tab_does_not_round_fractional_epochs(app_url):
    with urllib.request.urlopen(f"{app_url}/config", timeout=30) as response:
        config = json.loads(response.read())
    numbers = [c["props"] for c in config["components"] if c.get("type") == "number"]
    epochs = [props for props in numbers if props.get("label") == "Epochs"]
    assert epochs, "the Training tab has an Epochs box"
    assert all(props.get("precision") is None for props in epochs), "Epochs 2.5 would silently train 2"
    assert all(props.get("precision") is None for props in numbers if props.get("label") in ("Rnn units",
                                                                                            "Batch size"))


# ---- cancelling and killing a run

LONG_TINY_RUN = {"rnn_units": 16, "batch_size": 8, "seq_len": 20, "steps_per_epoch": 100000, "embedding_dim": 8,
                 "log_every": 5, "sample_length": 40}


@pytest.fixture
def tiny_jobs(tmp_path):
    from playground.jobs import Jobs
    from tests.test_jobs import write_text

    jobs = Jobs(runs=tmp_path / "runs", checkpoints=tmp_path / "checkpoints")
    yield jobs, write_text(tmp_path / "writing.txt")
    for run in jobs.list_runs():  # nothing of a failed test keeps training
        if run.status == "running" and run.pid:
            import os
            import signal

            try:
                os.killpg(run.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _first_step(jobs, run):
    from tests.test_jobs import wait_for

    wait_for(lambda: jobs.status(run.run_id)["step"] > 0 or jobs.get(run.run_id).status != "running", 600,
             "the run's first logged step")
    assert jobs.get(run.run_id).status == "running", run_view_tail(jobs, run)


def run_view_tail(jobs, run) -> str:
    from playground import run_view

    return run_view.last_lines(jobs.run_dir(run.run_id) / "output.log")


def test_cancel_ends_the_trainer_within_the_grace_without_a_kill(tiny_jobs, monkeypatch):
    import signal
    import time

    from playground import supervise
    from trainers.common.progress import read_events

    jobs, text_file = tiny_jobs
    sent = []
    real_signal_group = supervise._signal_group
    monkeypatch.setattr(supervise, "_signal_group", lambda pgid, number: (sent.append(number),
                                                                           real_signal_group(pgid, number)))
    run = jobs.start("char_rnn", "file", 50, LONG_TINY_RUN, upload=text_file)
    _first_step(jobs, run)
    process = jobs._processes[run.run_id]
    began = time.monotonic()
    cancelled = jobs.cancel(run.run_id)
    elapsed, ended = time.monotonic() - began, time.time()
    events = read_events(jobs.run_dir(run.run_id))
    lag = ended - events[-1]["time"]
    print(f"cancel took {elapsed:.2f} s ({lag:.2f} s after 'cancelled' was written), signals {sent}, "
          f"exit status {process.returncode}")
    assert sent == [signal.SIGINT], f"the trainer had to be killed ({sent}) after {elapsed:.1f} s"
    assert elapsed < supervise.CANCEL_GRACE_SECONDS
    # Once it has written 'cancelled' the trainer leaves at once, without TensorFlow's slow teardown (seconds for
    # a real model, about 1.4 s even for this tiny one).
    assert lag < 1.0, f"the trainer took {lag:.2f} s to exit after writing 'cancelled'"
    assert process.returncode == 130, run_view_tail(jobs, run)
    assert cancelled.status == "cancelled" and cancelled.message == "cancelled"
    assert events[-1]["event"] == "cancelled"
    assert "training cancelled" in run_view_tail(jobs, run)


WRAPPER = r'''
import json, signal, sys, time
if sys.argv[4] == "ignored":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under `nohup ... &`
else:  # blocked, as an earlier test of a suite (or a library's thread) can leave it: exec keeps the mask
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
from pathlib import Path
from playground import supervise
from playground.jobs import Jobs
sent = []
real = supervise._signal_group
supervise._signal_group = lambda pgid, number: (sent.append(int(number)), real(pgid, number))
jobs = Jobs(runs=Path(sys.argv[1]), checkpoints=Path(sys.argv[1]).parent / "checkpoints")
run = jobs.start("char_rnn", "file", 50, json.loads(sys.argv[2]), upload=sys.argv[3])
deadline = time.monotonic() + 600
while time.monotonic() < deadline and jobs.status(run.run_id)["step"] == 0 and jobs.get(run.run_id).status == "running":
    time.sleep(0.25)
process = jobs._processes[run.run_id]
began = time.monotonic()
cancelled = jobs.cancel(run.run_id)
print(json.dumps({"elapsed": time.monotonic() - began, "signals": sent, "returncode": process.returncode,
                  "status": cancelled.status}))
'''


@pytest.mark.parametrize("interrupt", ["ignored", "blocked"])
def test_cancel_works_when_the_app_ignores_or_blocks_sigint(tiny_jobs, tmp_path, interrupt):
    import subprocess
    import sys

    from tests.conftest import ROOT

    jobs, text_file = tiny_jobs
    result = subprocess.run([sys.executable, "-c", WRAPPER, str(jobs.runs), json.dumps(LONG_TINY_RUN), str(text_file),
                             interrupt],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(report)
    assert report["signals"] == [2], f"the trainer ignored the interrupt and was killed: {report}"
    assert report["returncode"] == 130 and report["status"] == "cancelled", report


def test_a_killed_trainer_is_reported_by_its_signal(tiny_jobs):
    import os
    import signal

    from tests.test_jobs import wait_for

    jobs, text_file = tiny_jobs
    run = jobs.start("char_rnn", "file", 50, LONG_TINY_RUN, upload=text_file)
    _first_step(jobs, run)
    os.killpg(run.pid, signal.SIGKILL)  # as the system's out-of-memory killer would
    wait_for(lambda: jobs.get(run.run_id).status != "running", 60, "the killed run to be noticed")
    info = jobs.status(run.run_id)
    assert info["status"] == "failed"
    assert info["message"].startswith("the trainer was stopped by signal SIGKILL (9)"), info["message"]
    assert "Run " in __import__("playground.run_view", fromlist=["describe"]).describe(info)


# ---- the Digits tab's files on disk

def _disk(*folders) -> int:
    return sum(path.stat().st_size for folder in folders if folder.exists() for path in folder.rglob("*")
               if path.is_file())


def test_page_loads_copy_the_progress_gif_once_per_checkpoint_version(tmp_path, monkeypatch):
    import os
    import types

    from gradio.processing_utils import save_file_to_cache

    from playground import digits_tab

    monkeypatch.setattr(digits_tab, "OUTPUT_FOLDER", tmp_path / "digits")
    checkpoint = tmp_path / "checkpoints" / "dcgan"
    checkpoint.mkdir(parents=True)
    gif = checkpoint / "progress.gif"
    gif.write_bytes(os.urandom(1_000_000))
    registry = types.SimpleNamespace(path=lambda name: tmp_path / "checkpoints" / name)
    cache = tmp_path / "gradio-cache"
    folders = (digits_tab.OUTPUT_FOLDER, cache)

    before = _disk(*folders)
    for _ in range(20):  # what 20 page loads do: the tab's load function, then Gradio caches its file
        path = digits_tab.progress_gif(registry)
        save_file_to_cache(path, str(cache))
    copies, ours = _disk(*folders) - before, _disk(digits_tab.OUTPUT_FOLDER)
    print(f"20 page loads: {copies / 1e6:.1f} MB on disk ({ours / 1e6:.1f} MB of the tab's) for a "
          f"{gif.stat().st_size / 1e6:.1f} MB GIF")
    assert ours <= gif.stat().st_size, "the page-load function keeps one copy, whatever the loads"
    assert copies <= 2 * gif.stat().st_size, "one copy of ours and one in Gradio's cache"
    assert len(list(digits_tab.OUTPUT_FOLDER.iterdir())) == 1

    first = digits_tab.progress_gif(registry)
    gif.write_bytes(os.urandom(1_000_000))  # a promoted run: a new checkpoint version
    os.utime(gif, ns=(gif.stat().st_atime_ns, gif.stat().st_mtime_ns + 10**9))
    second = digits_tab.progress_gif(registry)
    assert second != first and open(second, "rb").read() == gif.read_bytes()
    for step in range(2, 8):
        os.utime(gif, ns=(gif.stat().st_atime_ns, gif.stat().st_mtime_ns + step * 10**9))
        digits_tab.progress_gif(registry)
    assert len(list(digits_tab.OUTPUT_FOLDER.glob("*.gif"))) == digits_tab.KEEP_PROGRESS_COPIES
    gif.unlink()
    assert digits_tab.progress_gif(registry) is None


def test_latent_walk_files_are_pruned_by_age(tmp_path, monkeypatch):
    from playground import digits_tab, outputs

    monkeypatch.setattr(outputs, "ROOT", tmp_path)
    monkeypatch.setattr(outputs, "FOLDER", tmp_path / "mine")
    old = [digits_tab._walk_path() for _ in range(30)]
    for path in old:
        path.write_bytes(b"GIF89a" + bytes(1000))
        os.utime(path, (time.time() - 2 * outputs.LIFETIME,) * 2)
    fresh = digits_tab._walk_path()
    assert fresh.name.startswith(digits_tab.WALK_PREFIX) and fresh not in old
    assert not any(path.exists() for path in old)


def test_identical_latent_walks_and_digit_grids_at_the_same_moment_all_succeed(app_url):
    """The soak found it: identical requests shared Gradio's re-encoded cache files and cut each other short."""
    import threading

    from gradio_client import Client

    failures = []

    def user():
        client = Client(app_url, verbose=False)
        for _ in range(3):
            try:
                gif, frames = client.predict(11, 12, 6, api_name="/latent_walk")
                assert Path(gif).stat().st_size > 0 and len(frames) == 6
                grid = client.predict(5, 16, api_name="/generate_digits")[0]
                assert Path(grid).stat().st_size > 0
            except Exception as error:  # noqa: BLE001
                failures.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=user) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert failures == []


@pytest.mark.parametrize("tab_name, getter", [("text_tab", "_generator"), ("digits_tab", "_model"),
                                              ("translate_tab", "_translator")])
def test_a_damaged_checkpoint_is_reported_without_server_paths(tmp_path, tab_name, getter):
    import importlib

    from playground.registry import Registry

    tab = importlib.import_module(f"playground.{tab_name}")
    importlib.import_module(f"tests.tiny.{tab.MODEL}").make(tmp_path / tab.MODEL)
    for weights in (tmp_path / tab.MODEL).glob("*.weights.h5"):
        weights.write_bytes(b"broken")
    with pytest.raises(gr.Error, match="cannot be loaded") as caught:
        getattr(tab, getter)(Registry(tmp_path))
    assert str(tmp_path) not in caught.value.message and "/tmp" not in caught.value.message, caught.value.message


ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                      st.lists(st.integers(), max_size=2), st.sampled_from([0, 1, 2, 3, 16, 255, 256, 257]))


@hypothesis_settings(max_examples=40, deadline=None)
@given(seed=ANY_VALUE, count=ANY_VALUE, frames=ANY_VALUE, beam=ANY_VALUE, length=ANY_VALUE)
def test_fuzzed_endpoint_parameters_get_a_result_or_a_sentence(app_url, seed, count, frames, beam, length):
    for api_name, arguments in (("generate_digits", (seed, count)), ("latent_walk", (seed, 1, frames)),
                                ("translate", ("el señor", "Beam search", beam, 0.8, seed)),
                                ("generate_text", ("Ham.", length, 0.8, 0, 1.0, seed))):
        if api_name == "generate_text" and isinstance(length, (int, float)) and not isinstance(length, bool) \
                and 10 <= length <= 2000:
            arguments = ("Ham.", 10, 0.8, 0, 1.0, seed)  # a valid length: keep the fuzzing quick
        event, outputs = call(app_url, api_name, *arguments)
        if event == "error":
            assert isinstance(outputs, str) and not RAW_ERRORS.search(outputs), (api_name, arguments, outputs)
            assert outputs[0].isupper() and outputs.endswith("."), (api_name, arguments, outputs)
        else:
            assert event == "complete", (api_name, arguments, event, outputs)
