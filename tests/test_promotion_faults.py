"""Promotion under faults: a kill -9 at every step of a checkpoint swap, promoting twice, worse runs, folder modes.

The swap is `trainers.common.checkpoint.write_folder`; a crash is simulated deterministically by the test hook
EAGER_PLAYGROUND_CRASH_AT=<step> (the process SIGKILLs itself right after that step), and without any hook by
strace's syscall fault injection (SIGKILL at the n-th rename, as in the probe). After each crash, recovery (or an
app restart) must leave the served checkpoint whole, byte-identical to the old or the new one, with no leftovers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from playground import promotion
from playground.jobs import JobError, Jobs
from playground.registry import Registry
from playground.run_record import DONE, Run, save_run
from trainers.common import checkpoint as checkpoint_io

ROOT = Path(__file__).resolve().parents[1]
RUN_ID = "char_rnn-20260101-120000"
STEPS = ("written", "journal", "aside", "in_place", "cleaned")
FINISHED = {"written": False, "journal": True, "aside": True, "in_place": True, "cleaned": True}


def files(folder: Path) -> dict[str, bytes]:
    """Every file of a folder, by relative path (hidden ones too: a leftover must show)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def fake_checkpoint(folder: Path, tag: str, heldout: float | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"tag": tag}))
    (folder / "model.weights.h5").write_bytes(tag.encode() * 1000)
    (folder / "vocab.json").write_text(json.dumps({"characters": list(tag)}))
    metrics = {"model": "char_rnn", "tag": tag}
    if heldout is not None:
        metrics["heldout_loss_nats_per_char"] = heldout
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def fake_run(runs: Path, run_id: str, checkpoint: Path, heldout: float | None = None, tag: str = "run") -> Path:
    """A finished run folder whose checkpoint/ is a copy of `checkpoint` (metrics changed so the bytes differ)."""
    folder = runs / run_id
    shutil.copytree(checkpoint, folder / "checkpoint")
    metrics = json.loads((folder / "checkpoint" / "metrics.json").read_text())
    metrics.update({"tag": tag, "epochs": 2})
    if heldout is not None:
        metrics["heldout_loss_nats_per_char"] = heldout
    (folder / "checkpoint" / "metrics.json").write_text(json.dumps(metrics))
    (folder / "checkpoint" / "state.json").write_text("{}")  # resume state: never served
    save_run(folder, Run(run_id, "char_rnn", "file", 2, {}, ["true"], status=DONE, started=time.time(),
                         ended=time.time()))
    return folder


def assert_clean(parent: Path, names: set[str]) -> None:
    assert {item.name for item in parent.iterdir()} == names, f"leftovers in {parent}"


# ---------------------------------------------------------------- defect 4: modes


@pytest.mark.parametrize("mask, folder_mode, file_mode", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_written_folders_get_mode_0755_less_the_umask(tmp_path, mask, folder_mode, file_mode):
    code = ("import os, sys; from pathlib import Path; from trainers.common import checkpoint as c\n"
            "def write(t):\n    (t / 'a.json').write_text('{}'); (t / 'sub').mkdir(); (t / 'sub' / 'b').write_text('b')\n"
            f"os.umask({mask}); c.write_folder(Path(sys.argv[1]), write)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "model")], check=True, cwd=ROOT)
    assert (tmp_path / "model").stat().st_mode & 0o777 == folder_mode
    assert (tmp_path / "model" / "sub").stat().st_mode & 0o777 == folder_mode
    assert (tmp_path / "model" / "a.json").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "model" / "sub" / "b").stat().st_mode & 0o777 == file_mode


def test_promoted_folder_is_0755(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    fake_checkpoint(checkpoints / "char_rnn", "shipped")
    run = fake_run(tmp_path / "runs", RUN_ID, fake_checkpoint(tmp_path / "source", "new"))
    (run / "checkpoint").chmod(0o700)  # as the trainer's own write_folder (tempfile.mkdtemp) used to leave it
    old_mask = os.umask(0o022)
    try:
        Jobs(runs=tmp_path / "runs", checkpoints=checkpoints).promote(RUN_ID)
    finally:
        os.umask(old_mask)
    for folder in (checkpoints / "char_rnn", checkpoints / ".previous" / "char_rnn"):
        assert folder.stat().st_mode & 0o777 == 0o755
        assert all(item.stat().st_mode & 0o777 == 0o644 for item in folder.iterdir())


# ---------------------------------------------------------------- defect 1: crash-safe swap


SWAP = ("import sys, json; from pathlib import Path; from trainers.common import checkpoint as c\n"
        "def write(t):\n"
        "    (t / 'config.json').write_text(json.dumps({'tag': 'new'}))\n"
        "    (t / 'model.weights.h5').write_bytes(b'new' * 1000)\n"
        "c.write_folder(Path(sys.argv[1]), write)\n")


@pytest.mark.parametrize("step", STEPS)
def test_kill_9_at_each_step_of_a_swap_is_recovered(tmp_path, step):
    target = fake_checkpoint(tmp_path / "char_rnn", "old")
    old = files(target)
    result = subprocess.run([sys.executable, "-c", SWAP, str(target)], cwd=ROOT,
                            env={**os.environ, checkpoint_io.CRASH_ENV: step})
    assert result.returncode == -9, "the swap must have been killed"
    checkpoint_io.recover(tmp_path)
    served = files(target)
    if FINISHED[step]:
        assert served == {"config.json": b'{"tag": "new"}', "model.weights.h5": b"new" * 1000}
    else:
        assert served == old
    assert_clean(tmp_path, {"char_rnn"})


def test_kill_9_while_writing_the_new_folder_keeps_the_old(tmp_path):
    target = fake_checkpoint(tmp_path / "char_rnn", "old")
    old = files(target)
    code = SWAP.replace("(t / 'model.weights.h5')", "__import__('os').kill(__import__('os').getpid(), 9); "
                                                    "(t / 'model.weights.h5')")
    assert subprocess.run([sys.executable, "-c", code, str(target)], cwd=ROOT).returncode == -9
    assert (tmp_path / ".char_rnn.new").is_dir()  # a partial new folder
    assert Registry(tmp_path).exists("char_rnn")
    checkpoint_io.recover(tmp_path)
    assert files(target) == old
    assert_clean(tmp_path, {"char_rnn"})


def test_the_registry_recovers_a_missing_checkpoint_before_loading(tmp_path):
    target = fake_checkpoint(tmp_path / "char_rnn", "old")
    assert subprocess.run([sys.executable, "-c", SWAP, str(target)], cwd=ROOT,
                          env={**os.environ, checkpoint_io.CRASH_ENV: "aside"}).returncode == -9
    assert not target.exists()  # exactly the probe's state: the target renamed aside, the new one not yet in place
    registry = Registry(tmp_path)
    assert registry.exists("char_rnn")
    assert registry.get("char_rnn", lambda path: json.loads((path / "config.json").read_text())) == {"tag": "new"}
    assert_clean(tmp_path, {"char_rnn"})


def test_leftovers_of_the_earlier_scheme_are_rolled_back(tmp_path):
    """The probe's state: `.char_rnn.old-*` (whole) and `.char_rnn.tmp-*` (unknown), no `char_rnn`."""
    fake_checkpoint(tmp_path / ".char_rnn.old-1a2b3c4d", "old")
    fake_checkpoint(tmp_path / ".char_rnn.tmp-x9y8z7", "half")
    (tmp_path / ".char_rnn.tmp-x9y8z7" / "model.weights.h5").unlink()
    assert checkpoint_io.recover(tmp_path) == {"char_rnn": "rolled back"}
    assert json.loads((tmp_path / "char_rnn" / "config.json").read_text()) == {"tag": "old"}
    assert_clean(tmp_path, {"char_rnn"})


PROMOTE = ("import sys; from pathlib import Path; from playground.jobs import Jobs\n"
           "Jobs(runs=Path(sys.argv[1]), checkpoints=Path(sys.argv[2])).promote(sys.argv[3])\n")


def test_kill_9_at_every_rename_of_a_promote_with_strace(tmp_path):
    """No hook: strace kills the promoting process at its n-th rename (as in the probe), for every n."""
    if not shutil.which("strace"):
        pytest.skip("no strace (.ci/run installs it)")
    probe = subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null", "true"], capture_output=True, text=True)
    if probe.returncode != 0:  # e.g. a container that forbids ptrace
        pytest.skip(f"strace cannot trace here: {probe.stderr.strip()[:200]}")
    source = fake_checkpoint(tmp_path / "source", "new")
    checked = 0
    for when in range(1, 12):
        case = tmp_path / f"case{when}"
        checkpoints, runs = case / "checkpoints", case / "runs"
        shipped = files(fake_checkpoint(checkpoints / "char_rnn", "shipped"))
        fake_run(runs, RUN_ID, source)
        new = {name: data for name, data in files(runs / RUN_ID / "checkpoint").items() if name != "state.json"}
        result = subprocess.run(
            ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=rename,renameat,renameat2", "-e",
             f"inject=rename,renameat,renameat2:signal=SIGKILL:when={when}", sys.executable, "-c", PROMOTE,
             str(runs), str(checkpoints), RUN_ID], cwd=ROOT, capture_output=True, text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        if result.returncode == 0:  # fewer renames than `when`: the promote finished
            assert files(checkpoints / "char_rnn") == new
            break
        assert result.returncode in (-9, 137), result.stderr
        promotion.recover(checkpoints)  # what the app does when it starts
        served = files(checkpoints / "char_rnn")
        assert served in (shipped, new), f"kill at rename {when}: the served checkpoint is neither old nor new"
        assert_clean(checkpoints, {"char_rnn", ".previous"} if (checkpoints / ".previous").exists() else {"char_rnn"})
        if (checkpoints / ".previous").exists():
            assert_clean(checkpoints / ".previous", {"char_rnn"} if (checkpoints / ".previous" / "char_rnn").exists()
                         else set())
        # And the promote can be done again after recovery (or is refused as already served).
        jobs = Jobs(runs=runs, checkpoints=checkpoints)
        if served == shipped:
            jobs.promote(RUN_ID)
        assert files(checkpoints / "char_rnn") == new
        assert files(checkpoints / ".previous" / "char_rnn") == shipped
        checked += 1
    assert checked >= 3, "a promote renames at least three times (journal, aside, in place)"


def test_gitignore_covers_swap_leftovers():
    for name in (".char_rnn.old", ".char_rnn.new", ".char_rnn.swap.json", ".char_rnn.swap.json.part",
                 ".char_rnn.old-1a2b3c4d", ".char_rnn.tmp-abc", ".previous/char_rnn"):
        result = subprocess.run(["git", "check-ignore", "-q", f"checkpoints/{name}"], cwd=ROOT)
        assert result.returncode == 0, f"checkpoints/{name} is not ignored by git"


# ---------------------------------------------------------------- defect 2: promoting twice


def test_promoting_the_served_run_again_is_refused_and_keeps_the_shipped_previous(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    shipped = files(fake_checkpoint(checkpoints / "char_rnn", "shipped"))
    fake_run(tmp_path / "runs", RUN_ID, fake_checkpoint(tmp_path / "source", "new"))
    jobs = Jobs(runs=tmp_path / "runs", checkpoints=checkpoints)
    assert jobs.status(RUN_ID)["promotable"]
    jobs.promote(RUN_ID)
    promoted = files(checkpoints / "char_rnn")
    info = jobs.status(RUN_ID)
    assert not info["promotable"] and info["served"] and "already the served" in info["not_promotable"]
    with pytest.raises(JobError, match="already the served char_rnn checkpoint"):
        jobs.promote(RUN_ID)  # a double click
    assert files(checkpoints / ".previous" / "char_rnn") == shipped
    jobs.restore_previous("char_rnn")
    assert files(checkpoints / "char_rnn") == shipped
    assert jobs.status(RUN_ID)["promotable"]  # something changed: the run can be promoted again
    jobs.restore_previous("char_rnn")
    assert files(checkpoints / "char_rnn") == promoted
    assert_clean(checkpoints / ".previous", {"char_rnn"})


def test_previous_is_only_rewritten_when_the_served_checkpoint_differs(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    fake_checkpoint(checkpoints / "char_rnn", "shipped")
    shutil.copytree(checkpoints / "char_rnn", checkpoints / ".previous" / "char_rnn")
    inode = (checkpoints / ".previous" / "char_rnn").stat().st_ino
    fake_run(tmp_path / "runs", RUN_ID, fake_checkpoint(tmp_path / "source", "new"))
    Jobs(runs=tmp_path / "runs", checkpoints=checkpoints).promote(RUN_ID)
    assert (checkpoints / ".previous" / "char_rnn").stat().st_ino == inode


# ---------------------------------------------------------------- defect 3: a worse run


def test_a_worse_run_needs_a_confirmation(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    shipped = files(fake_checkpoint(checkpoints / "char_rnn", "shipped", heldout=1.4269))
    fake_run(tmp_path / "runs", RUN_ID, fake_checkpoint(tmp_path / "source", "new"), heldout=2.45)
    jobs = Jobs(runs=tmp_path / "runs", checkpoints=checkpoints)
    comparison = jobs.status(RUN_ID)["comparison"]
    assert comparison["worse"] and comparison["sentence"] == (
        "This run's held-out loss 2.45 is worse than the served 1.427 (lower is better); promote anyway?")
    with pytest.raises(JobError, match=r"held-out loss 2.45 is worse than the served char_rnn checkpoint's 1.427 "
                                       r"\(lower is better\), so it was not promoted; to promote it anyway, press "
                                       r"'Promote anyway'.*/promote_run_anyway"):
        jobs.promote(RUN_ID)
    assert files(checkpoints / "char_rnn") == shipped
    jobs.promote(RUN_ID, worse_ok=True)
    assert json.loads((checkpoints / "char_rnn" / "metrics.json").read_text())["heldout_loss_nats_per_char"] == 2.45


@pytest.mark.parametrize("model, key, served, run, worse", [
    ("char_rnn", "heldout_loss_nats_per_char", 1.43, 1.40, False),
    ("nmt", "validation_bleu_greedy", 19.29, 12.0, True),
    ("nmt", "validation_bleu_greedy", 19.29, 20.0, False),
    ("captioning", "bleu4", 71.3, 60.0, True),
    ("dcgan", "classifier_fid", 21.677, 30.0, True),
    ("dcgan", "classifier_fid", 21.677, 20.0, False),
])
def test_each_model_is_judged_on_its_own_heldout_metric(tmp_path, model, key, served, run, worse):
    run_folder = tmp_path / "run"
    for folder, value in ((tmp_path / "checkpoints" / model, served), (run_folder / "checkpoint", run)):
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({key: value}))
    record = Run(f"{model}-20260101-120000", model, "offline", 1, {}, [], status=DONE)
    assert promotion.compare(record, run_folder, tmp_path / "checkpoints")["worse"] is worse


def test_the_shipped_metrics_have_the_keys_promotion_compares():
    for model in ("char_rnn", "nmt", "captioning", "dcgan"):
        key, _, _ = promotion.heldout_metric(model)
        metrics = json.loads((ROOT / "checkpoints" / model / "metrics.json").read_text())
        assert isinstance(metrics.get(key), (int, float)), f"{model}: {key} missing from metrics.json"


# ---------------------------------------------------------------- the app: kill -9 mid-promote, restart, tabs


def test_every_tab_is_built_and_a_missing_checkpoint_hides_its_tab(tmp_path):
    """Every tab and endpoint exists even without its checkpoint (so it can appear later without a restart)."""
    from playground.app import build_app

    demo = build_app(Registry(tmp_path), warm=False)
    config = demo.get_config_file()
    tabs = {c["props"].get("label"): c["props"].get("visible") for c in config["components"]
            if c.get("type") == "tabitem"}
    assert tabs == {"Text": False, "Digits": False, "Translate": False, "Caption": False, "Training": True}
    names = {dependency.get("api_name") for dependency in config["dependencies"]}
    assert {"generate_text", "generate_digits", "translate", "caption", "promote_run", "promote_run_anyway",
            "restore_previous", "training_status"} <= names
    markdown = " ".join(str(c.get("props", {}).get("value")) for c in config["components"])
    assert "no checkpoint in" in markdown and "trainers.char_rnn.train" in markdown


def _shown_tabs(page) -> list[str]:
    page.wait_for_selector("role=tab[name='Training']", timeout=60000)
    return [tab.inner_text().strip() for tab in page.get_by_role("tab").all() if tab.is_visible()]


def _wait_for_tab(page, name: str, shown: bool) -> None:
    """The page load's event shows or hides the tab a moment after the page appears."""
    from tests.test_jobs import wait_for

    wait_for(lambda: (name in _shown_tabs(page)) == shown, 30, f"the {name} tab to be {'shown' if shown else 'hidden'}")


def test_app_killed_mid_promote_recovers_on_restart_and_tabs_follow_the_checkpoint(tmp_path, browser):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from tests.conftest import start_app, stop_app
    from tests.tiny import char_rnn as tiny_char_rnn
    from tests.tiny import dcgan as tiny_dcgan

    checkpoints, runs = tmp_path / "checkpoints", tmp_path / "runs"
    tiny_char_rnn.make(checkpoints / "char_rnn")
    tiny_dcgan.make(tmp_path / "dcgan_later")  # appears only once the app runs
    metrics = json.loads((checkpoints / "char_rnn" / "metrics.json").read_text())
    (checkpoints / "char_rnn" / "metrics.json").write_text(json.dumps({**metrics, "heldout_loss_nats_per_char": 1.4269}))
    shipped = files(checkpoints / "char_rnn")
    fake_run(runs, RUN_ID, checkpoints / "char_rnn", heldout=1.40, tag="better")
    worse_id = "char_rnn-20260101-130000"
    fake_run(runs, worse_id, checkpoints / "char_rnn", heldout=2.45, tag="worse")
    promoted = {n: d for n, d in files(runs / RUN_ID / "checkpoint").items() if n != "state.json"}
    environment = {"EAGER_PLAYGROUND_RUNS": str(runs)}

    # 1. kill -9 between the two renames of promote_run: the probe's state, no checkpoints/char_rnn at all.
    process, url = start_app(checkpoints, tmp_path / "app1.log", {**environment, checkpoint_io.CRASH_ENV: "aside"})
    try:
        with pytest.raises(Exception):
            Client(url, verbose=False).predict(RUN_ID, api_name="/promote_run")
        process.wait(timeout=60)
        assert process.returncode == -9
        assert not (checkpoints / "char_rnn").exists()
    finally:
        stop_app(process)

    # 2. A restart finishes the swap: the run's checkpoint, byte for byte, nothing left over; the Text tab answers.
    began = time.monotonic()
    process, url = start_app(checkpoints, tmp_path / "app2.log", environment)
    try:
        print(f"restart to first answer: {time.monotonic() - began:.1f} s")
        assert files(checkpoints / "char_rnn") == promoted
        assert files(checkpoints / ".previous" / "char_rnn") == shipped
        assert_clean(checkpoints, {"char_rnn", ".previous"})
        assert_clean(checkpoints / ".previous", {"char_rnn"})
        print(f"after the restart: {sorted(p.name for p in checkpoints.iterdir())}")
        client = Client(url, verbose=False)
        assert client.predict("Ham.", 30, 0, 0, 1.0, 1, api_name="/generate_text")[0].startswith("Ham.")

        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        try:
            page.goto(url)
            _wait_for_tab(page, "Text", True)
            assert "Digits" not in _shown_tabs(page)
            # 3a. A checkpoint that was missing when the app started appears: its tab shows on the next page load.
            (tmp_path / "dcgan_later").rename(checkpoints / "dcgan")
            page.reload()
            _wait_for_tab(page, "Digits", True)
            assert client.predict(1, 4, api_name="/generate_digits") is not None
            # 3. The checkpoint disappears (moved away): the next page load hides its tab, the endpoint says why.
            (checkpoints / "char_rnn").rename(tmp_path / "away")
            page.reload()
            _wait_for_tab(page, "Text", False)
            page.wait_for_selector("text=no checkpoint in", timeout=30000)
            with pytest.raises(AppError, match="The text model cannot be loaded"):
                client.predict("Ham.", 30, 0, 0, 1.0, 1, api_name="/generate_text")
            # 4. Restore brings the kept checkpoint back: the tab is back on the next load, without a restart.
            assert "served again" in client.predict("char_rnn", api_name="/restore_previous")
            assert files(checkpoints / "char_rnn") == shipped
            page.reload()
            _wait_for_tab(page, "Text", True)
            assert client.predict("Ham.", 30, 0, 0, 1.0, 1, api_name="/generate_text")[0].startswith("Ham.")

            # 5. A worse run: the page says so beside the button and asks for a confirmation.
            page.get_by_role("tab", name="Training").click()
            page.locator("#training-runs span", has_text=worse_id).first.click()
            note = page.locator("#training-promote-note")
            note.get_by_text("is worse than the served").wait_for(timeout=60000)
            assert note.inner_text().strip() == ("This run's held-out loss 2.45 is worse than the served 1.427 "
                                                 "(lower is better); promote anyway?")
            page.get_by_role("button", name="Promote to its tab").click()
            page.get_by_text("so it was not promoted").first.wait_for(timeout=30000)
            assert files(checkpoints / "char_rnn") == shipped
            with pytest.raises(AppError, match="Promote anyway"):
                client.predict(worse_id, api_name="/promote_run")
            page.get_by_role("button", name="Promote anyway").click()
            page.wait_for_selector("#training-message >> text=now serves the char_rnn tab", timeout=60000)
            # 6. Promoted: the button is off (a double click cannot overwrite .previous), the API refuses too.
            from playwright.sync_api import expect

            expect(page.get_by_role("button", name="Promote to its tab")).to_be_disabled(timeout=15000)
            with pytest.raises(AppError, match="already the served char_rnn checkpoint"):
                client.predict(worse_id, api_name="/promote_run")
            assert files(checkpoints / ".previous" / "char_rnn") == shipped
        finally:
            context.close()
    finally:
        stop_app(process)
