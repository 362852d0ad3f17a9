"""The app's outer shell: a login that leaks nothing and slows guessing, bounded uploads, a swept cache, capped
malloc arenas."""

from __future__ import annotations

import http.cookiejar
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import start_app, stop_app

USER, PASSWORD = "teacher", "correct horse"


@pytest.fixture(scope="module")
def auth_app(tiny_checkpoints, tmp_path_factory):
    process, url = start_app(tiny_checkpoints, tmp_path_factory.mktemp("auth-app") / "app.log",
                             args=("--auth", f"{USER}:{PASSWORD}"))
    yield url
    stop_app(process)


def login(opener, url: str, password: str) -> int:
    data = urllib.parse.urlencode({"username": USER, "password": password}).encode()
    try:
        return opener.open(f"{url}/login", data=data, timeout=60).status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_login_page_carries_no_api_description_and_the_app_does_after_login(auth_app):
    before = urllib.request.urlopen(auth_app, timeout=30).read().decode()
    assert "auth_required" in before
    for endpoint in ("generate_text", "start_training", "promote_run", "caption", "translate"):
        assert endpoint not in before, endpoint
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{auth_app}/gradio_api/info", timeout=30)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    assert login(opener, auth_app, PASSWORD) == 200
    after = opener.open(auth_app, timeout=30).read().decode()
    assert "generate_text" in after and "start_training" in after


def test_wrong_passwords_are_throttled_and_the_right_one_still_gets_in(auth_app):
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    started = time.monotonic()
    codes = [login(opener, auth_app, f"guess {index}") for index in range(3)]
    guessing = time.monotonic() - started
    assert codes == [400, 400, 400]
    # The second guess waits 0.5 s and the third 1 s: 3 guesses take at least 1.5 s (without throttling: ~20 ms).
    assert guessing >= 1.5, guessing
    started = time.monotonic()
    assert login(opener, auth_app, PASSWORD) == 200
    assert time.monotonic() - started >= 2.0  # after 3 failures the next attempt waits 2 s, then succeeds


def test_throttle_doubles_up_to_its_cap_and_resets_on_success():
    import asyncio
    import concurrent.futures
    import inspect

    from playground.auth import MAX_DELAY, ThrottledLogin

    gate = ThrottledLogin("a", "b")
    delays = []
    for _ in range(7):
        delays.append(gate.delay())
        gate.failures += 1
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, MAX_DELAY, MAX_DELAY]
    gate.failures = 0
    assert inspect.iscoroutinefunction(gate.check)  # what Gradio tests before it awaits the answer

    def attempt(user, password):  # in a thread of its own: a browser test may leave an event loop in this one
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, gate.check(user, password)).result()

    assert attempt("a", "b") is True
    assert attempt("a", "x") is False and gate.failures == 1
    assert attempt("A", "b") is False  # user names are compared exactly, too


def test_uploads_over_the_limit_are_refused(app_url, tmp_path):
    from gradio_client import Client, handle_file

    from playground.__main__ import MAX_UPLOAD

    assert MAX_UPLOAD == "50mb"
    big = tmp_path / "big.png"
    with open(big, "wb") as handle:
        handle.truncate(51 * 1024 * 1024)
    client = Client(app_url, verbose=False)
    with pytest.raises(Exception, match="(?i)size|large|exceed"):
        client.predict(handle_file(str(big)), 1, api_name="/caption")


ARENA_PROBE = """
import ctypes, sys, threading
if sys.argv[1] == "capped":
    from playground.__main__ import limit_malloc_arenas
    assert limit_malloc_arenas()
barrier = threading.Barrier(8)
def work():  # 8 threads allocate at the same moment: glibc would give most of them an arena of its own
    barrier.wait()
    keep = [bytearray(200_000) for _ in range(50)]
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
[thread.start() for thread in threads]
[thread.join() for thread in threads]
ctypes.CDLL("libc.so.6").malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas")
def test_the_app_caps_malloc_arenas_so_threads_do_not_each_keep_their_own_memory():
    import subprocess

    env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    counts = {}
    for mode in ("capped", "free"):
        done = subprocess.run([sys.executable, "-c", ARENA_PROBE, mode], env=env, capture_output=True, text=True,
                              timeout=120, check=True)
        counts[mode] = sum(line.startswith("Arena") for line in done.stderr.splitlines())
    assert counts["capped"] <= 2 < counts["free"], counts
