"""Shared fixtures: quiet TensorFlow, tiny checkpoints, a running app, and headless Chromium.

Tiny checkpoints are made by the modules in `tests/tiny/` (one per model, each with `make(folder)`), so the
app tests never depend on the shipped weights or on training. Browser tests skip when no Chromium is found,
unless EAGER_PLAYGROUND_REQUIRE_BROWSER=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """The test process runs its TensorFlow ops as the app does, one thread per op (trainers.common.threads),
    set before any test runs one: on an AVX2-only CPU the matrix products round a few rows differently with
    TensorFlow's default threads (they split a small product's sums between the threads), and the tests that
    compare batched with lone answers check the app's arithmetic."""
    from trainers.common.threads import use_serving_threads

    use_serving_threads()


ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_tiny_checkpoints(root: Path) -> Path:
    """Writes one tiny checkpoint per model module in tests/tiny into `root`."""
    import tests.tiny as tiny

    for info in pkgutil.iter_modules(tiny.__path__):
        module = importlib.import_module(f"tests.tiny.{info.name}")
        module.make(root / module.MODEL)
    return root


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> Path:
    return make_tiny_checkpoints(tmp_path_factory.mktemp("checkpoints"))


def start_app(checkpoints: Path, log_path: Path, extra_env: dict | None = None,
              args: tuple = ()) -> tuple[subprocess.Popen, str]:
    port = free_port()
    # Runs go to a folder of the test's own, so an app under test never lists or writes the repo's runs/.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EAGER_PLAYGROUND_RUNS": str(log_path.parent / "runs"),
           **(extra_env or {})}
    log = open(log_path, "w")
    process = subprocess.Popen([sys.executable, "-m", "playground", "--port", str(port), "--checkpoints",
                                str(checkpoints), *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited: {log_path.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"the app did not answer in 120 s: {log_path.read_text()[-2000:]}")


def stop_app(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)


@pytest.fixture(scope="session")
def app_url(tiny_checkpoints, tmp_path_factory):
    """The playground running on tiny checkpoints (or the shipped ones with EAGER_PLAYGROUND_TEST_CHECKPOINTS=shipped)."""
    checkpoints = ROOT / "checkpoints" if os.environ.get("EAGER_PLAYGROUND_TEST_CHECKPOINTS") == "shipped" \
        else tiny_checkpoints
    process, url = start_app(checkpoints, tmp_path_factory.mktemp("app") / "app.log")
    yield url
    stop_app(process)


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def browser():
    executable = chromium_path()
    if executable is None:
        if os.environ.get("EAGER_PLAYGROUND_REQUIRE_BROWSER") == "1":
            pytest.fail("no Chromium found, and EAGER_PLAYGROUND_REQUIRE_BROWSER=1 requires the browser tests")
        pytest.skip("no Chromium found (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(app_url)
    page.wait_for_selector("text=Eager Playground", timeout=60000)
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    """Saves a full-page screenshot in tests/artifacts (and in $EAGER_PLAYGROUND_SCREENSHOTS if set)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("EAGER_PLAYGROUND_SCREENSHOTS"):
        folder = Path(os.environ["EAGER_PLAYGROUND_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.name)
    return path
