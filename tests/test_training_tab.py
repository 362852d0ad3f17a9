"""The Training tab in a running app: its API endpoints and a tiny run started, watched and promoted from the page.

The app here has its own temporary runs folder and its own copy of the tiny checkpoints, so promoting changes
nothing outside the test.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import make_tiny_checkpoints, screenshot, start_app, stop_app
from tests.test_jobs import digest, wait_for, write_text
from tests.test_no_external_requests import record_external_requests

PAGE_SETTINGS = {"Epochs": "2", "Rnn units": "16", "Batch size": "8", "Seq len": "20"}
# 2 x 200 tiny steps last several of the tab's 2-second refreshes even on an idle machine, so the plot is seen mid-run.
# float32 as in the quick look the form starts with (this replaces its More settings).
MORE_SETTINGS = {"steps_per_epoch": 200, "embedding_dim": 8, "log_every": 2, "sample_length": 80,
                 "precision": "float32"}


@pytest.fixture(scope="module")
def training_app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("training_app")
    checkpoints = make_tiny_checkpoints(folder / "checkpoints")
    runs = folder / "runs"
    process, url = start_app(checkpoints, folder / "app.log", extra_env={"EAGER_PLAYGROUND_RUNS": str(runs)})
    yield {"url": url, "checkpoints": checkpoints, "runs": runs, "text": write_text(folder / "my_writing.txt")}
    stop_app(process)
    # A run still going when the app stops is its own process group: stop it too.
    import os
    import signal

    for job in runs.glob("*/job.json"):
        record = json.loads(job.read_text())
        if record.get("status") == "running" and record.get("pid"):
            try:
                os.killpg(record["pid"], signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture(scope="module")
def training_client(training_app):
    from gradio_client import Client

    return Client(training_app["url"], verbose=False)


def test_api_refuses_bad_requests_with_sentences(training_client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Rnn units must be a whole number, got 'lots'"):
        training_client.predict("char_rnn", "offline", 1, '{"rnn_units": "lots"}', None, api_name="/start_training")
    with pytest.raises(AppError, match="Settings must be a JSON object"):
        training_client.predict("char_rnn", "offline", 1, "{rnn_units: 3", None, api_name="/start_training")
    with pytest.raises(AppError, match="Choose a UTF-8 text file"):
        training_client.predict("char_rnn", "file", 1, "{}", None, api_name="/start_training")
    for endpoint in ("/training_status", "/cancel_training", "/promote_run"):
        with pytest.raises(AppError, match="is not a run id"):
            training_client.predict("../../checkpoints", api_name=endpoint)
    with pytest.raises(AppError, match="no previous char_rnn checkpoint"):
        training_client.predict("char_rnn", api_name="/restore_previous")
    details = training_client.predict("", api_name="/training_status")[0]
    assert details["status"] == "none"


def test_the_form_starts_with_the_quick_look_and_presets_fill_it(browser, training_app):
    """The page as a user finds it: the quick look chosen, its estimate beside Start; the shipped configuration
    fills in the TrainConfig defaults; editing a field makes the preset "custom"."""
    from trainers.char_rnn.config import PRESETS, TrainConfig

    quick = PRESETS["quick look"].settings
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(training_app["url"])
        page.wait_for_selector("text=Eager Playground", timeout=60000)
        page.get_by_role("tab", name="Training").click()
        preset = page.locator("#training-preset")
        estimate = page.locator("#training-estimate")
        wait_for(lambda: preset.get_by_label("quick look").is_checked(), 30, "the quick look to be chosen")
        assert page.get_by_label("Epochs", exact=True).input_value() == str(quick["epochs"])
        assert page.get_by_label("Rnn units", exact=True).input_value() == str(quick["rnn_units"])
        page.get_by_text("More settings", exact=True).click()
        assert json.loads(page.get_by_label("More settings (JSON)").input_value())["steps_per_epoch"] == \
            quick["steps_per_epoch"]
        assert "Estimated duration" in estimate.inner_text() and "s/step" in estimate.inner_text()
        screenshot(page, "training_tab_quick_look")

        preset.get_by_label("shipped configuration").check()
        defaults = TrainConfig()
        wait_for(lambda: page.get_by_label("Epochs", exact=True).input_value() == str(defaults.epochs), 30,
                 "the shipped configuration to fill the form")
        assert page.get_by_label("Rnn units", exact=True).input_value() == str(defaults.rnn_units)
        assert page.get_by_label("More settings (JSON)").input_value() == ""
        wait_for(lambda: "quick look" not in estimate.inner_text(), 30, "the estimate to follow the preset")

        preset.get_by_label("quick look").check()
        wait_for(lambda: page.get_by_label("Epochs", exact=True).input_value() == str(quick["epochs"]), 30,
                 "the quick look to fill the form again")
        page.get_by_label("Epochs", exact=True).fill(str(2 * quick["epochs"]))
        page.get_by_label("Epochs", exact=True).press("Tab")
        wait_for(lambda: preset.get_by_label("custom").is_checked(), 30, "an edited form to show as custom")
        wait_for(lambda: f"{2 * quick['epochs']} ×" in estimate.inner_text(), 30, "the estimate for 12 epochs")
        screenshot(page, "training_tab_custom")
    finally:
        context.close()


def _plot_image(page) -> str:
    """The loss plot's current image (a data URL or a file URL), or '' while there is none."""
    images = page.locator("#training-loss-plot img")
    return images.first.get_attribute("src") or "" if images.count() else ""


def test_train_watch_and_promote_from_the_page(browser, training_app, training_client):
    served = training_app["checkpoints"] / "char_rnn"
    before = digest(served)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    external = record_external_requests(page)  # the whole run, plots and samples included, stays on the app
    try:
        page.goto(training_app["url"])
        page.wait_for_selector("text=Eager Playground", timeout=60000)
        page.get_by_role("tab", name="Training").click()
        page.get_by_label("file (your own writing)").check()
        page.locator("#training-text-file input[type=file]").set_input_files(str(training_app["text"]))
        # The file shows as its name and its extension in separate elements ("my_writing" / ".txt").
        wait_for(lambda: "my_writing.txt" in "".join(page.locator("#training-text-file").inner_text().split()),
                 60, "the uploaded file to show in the Training tab")
        for label, value in PAGE_SETTINGS.items():
            page.get_by_label(label, exact=True).fill(value)
        page.get_by_text("More settings", exact=True).click()
        page.get_by_label("More settings (JSON)").fill(json.dumps(MORE_SETTINGS))
        page.get_by_role("button", name="Start training").click()
        page.wait_for_selector(".ep-progress[data-status=running]", timeout=120000)
        run_id = page.locator(".ep-progress-head b").inner_text()
        assert run_id.startswith("char_rnn-")

        # The loss plot redraws as soon as the first steps are logged, and again as more arrive.
        empty = _plot_image(page)
        wait_for(lambda: page.evaluate("document.querySelector('.ep-progress-text').innerText").find("step") >= 0,
                 600, "the first logged steps")
        wait_for(lambda: _plot_image(page) not in ("", empty), 60, "the loss plot to draw the first steps")
        first = _plot_image(page)
        screenshot(page, "training_tab_live")
        # Meanwhile the other tabs keep working: the text tab answers during the run.
        text = training_client.predict("Ham.", 30, 0, 0, 1.0, 1, api_name="/generate_text")[0]
        assert text.startswith("Ham.") and len(text) == 34
        page.wait_for_selector(".ep-progress[data-status=done]", timeout=600000)
        wait_for(lambda: _plot_image(page) not in ("", first), 60, "the loss plot to redraw")
        assert page.locator("#training-sample-text textarea").input_value().strip()
        screenshot(page, "training_tab_finished")

        page.get_by_role("button", name="Promote to its tab").click()
        page.wait_for_selector("#training-message >> text=now serves the char_rnn tab", timeout=120000)
        run_checkpoint = training_app["runs"] / run_id / "checkpoint"
        for name in ("config.json", "model.weights.h5", "vocab.json"):
            assert (served / name).read_bytes() == (run_checkpoint / name).read_bytes(), name
        assert digest(training_app["checkpoints"] / ".previous" / "char_rnn") == before
        wait_for(lambda: run_id in page.locator("#training-runs").inner_text()
                 and "done" in page.locator("#training-runs").inner_text(), 15, "the runs list to show the run")
        screenshot(page, "training_tab_promoted")
    finally:
        context.close()
    assert external == [], f"the page asked other hosts: {sorted(set(external))[:10]}"

    # The promoted model serves the text tab without a restart: its vocabulary is the uploaded text's, so
    # characters the tiny shipped model knew but the upload lacks are now unknown.
    details = training_client.predict(run_id, api_name="/training_status")[0]
    assert details["status"] == "done" and details["promoted"] and len(details["metrics"]) == 2
    vocabulary = json.loads((served / "vocab.json").read_text())["characters"]
    text = training_client.predict("to be", 40, 0, 0, 1.0, 1, api_name="/generate_text")[0]
    assert all(character in vocabulary for character in text)
    assert "H" not in vocabulary  # the tiny shipped vocabulary had it; the promoted one must not

    message = training_client.predict("char_rnn", api_name="/restore_previous")
    assert "previous char_rnn checkpoint is served again" in message
    assert digest(served) == before


def test_cancel_from_the_api_leaves_the_served_model(training_app, training_client):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    served = digest(training_app["checkpoints"] / "char_rnn")
    settings = json.dumps({"rnn_units": 16, "batch_size": 8, "seq_len": 20, "steps_per_epoch": 100000,
                           "embedding_dim": 8, "log_every": 5})
    run_id, _ = training_client.predict("char_rnn", "file", 20, settings, handle_file(str(training_app["text"])),
                                        api_name="/start_training")
    wait_for(lambda: training_client.predict(run_id, api_name="/training_status")[0]["step"] > 0, 600,
             "the first logged step")
    with pytest.raises(AppError, match="only one run trains at a time"):
        training_client.predict("char_rnn", "offline", 1, "{}", None, api_name="/start_training")
    began = time.monotonic()
    message = training_client.predict(run_id, api_name="/cancel_training")
    assert time.monotonic() - began < 20 and "cancelled" in message
    details = training_client.predict(run_id, api_name="/training_status")[0]
    assert details["status"] == "cancelled"
    pid = json.loads((training_app["runs"] / run_id / "job.json").read_text())["pid"]
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 15, "the trainer process to be gone")
    assert digest(training_app["checkpoints"] / "char_rnn") == served
    run_id_again, message = training_client.predict(run_id, api_name="/delete_run")
    assert run_id_again is None and "deleted" in message and not (training_app["runs"] / run_id).exists()
    # A page still showing the deleted run follows the latest run instead of failing on every refresh.
    assert training_client.predict(run_id, api_name="/training_status")[0].get("run_id") != run_id
    with pytest.raises(AppError, match="There is no run"):
        training_client.predict(run_id, api_name="/delete_run")


def test_the_progress_line_says_how_long_the_app_stopped_the_run():
    """playground/core_sharing.py stops a local run while the app answers; the page says for how long."""
    from playground.training_tab import progress_html

    info = {"run_id": "char_rnn-1", "status": "running", "fraction": 0.25, "epoch": 1, "epochs": 2, "step": 50,
            "total_steps": 200, "eta_seconds": 150, "elapsed_seconds": 50, "paused_seconds": 42.4}
    assert "step 50/200 · ETA 2:30 · elapsed 0:50 · paused 0:42 while the app answered" in progress_html(info)
    for unpaused in (0.0, 0.4):  # under a second is not worth a word
        assert "paused" not in progress_html({**info, "paused_seconds": unpaused})
    assert "paused" not in progress_html({k: v for k, v in info.items() if k != "paused_seconds"})
