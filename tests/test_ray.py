"""The app on a real Ray cluster, started here on 127.0.0.1 with 2 CPUs (docs/scale.md).

One cluster for the module (`ray start --head --block`, its own process group): the four endpoints answered by
Ray Serve deployments equal the in-process app's; a tiny run submitted as a Ray Job reports progress, promotes,
and the deployment serves the promoted checkpoint without a restart; a cancelled job ends cancelled and a crashing
one failed with its last lines, the served checkpoint untouched; a two-worker MultiWorkerMirroredStrategy run
over two Ray workers completes; and a cluster that cannot be reached, or dies, costs a request one sentence.

The head runs Ray's dashboard process bound to 127.0.0.1 because the job server lives in it (with
`--include-dashboard false` Ray 2.60 starts that process with only its usage-stats module, and job submission is
refused). RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps every Ray process on 127.0.0.1 (otherwise Ray replaces a
127.0.0.1 node address with the machine's own address), and usage statistics are off: no traffic leaves loopback.

Marked `ray`; skipped when Ray is not installed (requirements-scale.txt).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

# Before Ray is imported: it reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER once, and with it unset it turns 127.0.0.1 into
# the machine's own address whenever this process names the cluster.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
pytest.importorskip("ray.serve", reason="Ray is not installed (pip install -r requirements-scale.txt)")

from tests.conftest import ROOT, free_port, start_app, stop_app  # noqa: E402
from tests.test_jobs import TINY, digest, wait_for, write_text  # noqa: E402

pytestmark = pytest.mark.ray

# Token authentication off: Ray 2.60 turns it on for a new cluster whenever ~/.ray/auth_token exists (any earlier
# local ray.init writes one), and this cluster is loopback-only and lives for one module.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
           # A stop interrupts the trainer (it writes `cancelled`), as the Training tab's local cancel does.
           "RAY_JOB_STOP_SIGNAL": "SIGINT", "RAY_JOB_STOP_WAIT_TIME_S": "15"}
# Four replicas at 0.25 CPU leave one CPU of two for a training job (one worker at 1, or two at 0.5).
APP_ENV = {**RAY_ENV, "EAGER_PLAYGROUND_REPLICA_CPUS": "0.25"}


class LocalCluster:
    """`ray start --head --block` on 127.0.0.1 in a process group of its own; `stop()` ends every process of it."""

    def __init__(self, folder: Path):
        from ray.job_submission import JobSubmissionClient

        self.port, self.dashboard_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.job_server = f"http://127.0.0.1:{self.dashboard_port}"
        self.log = open(folder / "ray-start.log", "w")
        command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
                   "--node-ip-address", "127.0.0.1", "--port", str(self.port), "--num-cpus", "2",
                   "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
                   "--dashboard-port", str(self.dashboard_port), "--disable-usage-stats"]
        self.process = subprocess.Popen(command, env={**os.environ, **RAY_ENV}, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start exited: {(folder / 'ray-start.log').read_text()[-2000:]}")
            try:  # the job server answers once the head is fully up (the client checks its version)
                JobSubmissionClient(self.job_server)
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(1)
        self.stop()
        raise RuntimeError("the Ray head did not start in 180 s")

    def members(self) -> list:
        """Every process of this cluster: `ray start`'s group, whatever names this cluster's GCS address, and their
        descendants (the raylet's workers and replicas run in sessions of their own)."""
        import psutil

        found = {}
        for process in psutil.process_iter(["pid", "cmdline"]):
            try:
                if os.getpgid(process.pid) == self.process.pid or \
                        self.address in " ".join(process.info["cmdline"] or []):
                    found[process.pid] = process
                    found.update((child.pid, child) for child in process.children(recursive=True))
            except (OSError, psutil.Error):
                continue
        return list(found.values())

    def stop(self) -> None:
        """Kills every process of the cluster at once, as a machine that dies would (a graceful `ray stop` drains
        for up to 30 s, and nothing here needs to outlive the module)."""
        import psutil

        members = self.members()
        for process in members:
            try:
                process.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(members, timeout=30)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    saved = {name: os.environ.get(name) for name in RAY_ENV}
    os.environ.update(RAY_ENV)  # this process submits jobs and asks the cluster: the same settings
    local = LocalCluster(tmp_path_factory.mktemp("ray"))
    yield local
    local.stop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def ray_checkpoints(tiny_checkpoints, tmp_path_factory) -> Path:
    """A copy of the tiny checkpoints for the Ray app: the job tests promote into it."""
    target = tmp_path_factory.mktemp("ray-served") / "checkpoints"
    shutil.copytree(tiny_checkpoints, target)
    return target


@pytest.fixture(scope="module")
def ray_app(cluster, ray_checkpoints, tmp_path_factory):
    """The playground as the ingress of the cluster (it deploys the four models itself on first use)."""
    process, url = start_app(ray_checkpoints, tmp_path_factory.mktemp("ray-app") / "app.log",
                             extra_env={**APP_ENV, "EAGER_PLAYGROUND_RAY_ADDRESS": cluster.address})
    yield process, url
    stop_app(process)


@pytest.fixture(scope="module")
def ray_client(ray_app):
    from gradio_client import Client

    return Client(ray_app[1], verbose=False)


def close(first, second, path="") -> None:
    """Equal, floats to 1e-5 relative: a replica runs TensorFlow on fewer threads than the app, which may change
    the order of a sum, never a word."""
    if isinstance(first, float) or isinstance(second, float):
        assert math.isclose(first, second, rel_tol=1e-5, abs_tol=1e-6), f"{path}: {first} != {second}"
    elif isinstance(first, dict) and isinstance(second, dict):
        assert first.keys() == second.keys(), path
        for key in first:
            close(first[key], second[key], f"{path}.{key}")
    elif isinstance(first, (list, tuple)) and isinstance(second, (list, tuple)):
        assert len(first) == len(second), f"{path}: {len(first)} != {len(second)} items"
        for index, (a, b) in enumerate(zip(first, second)):
            close(a, b, f"{path}[{index}]")
    else:
        assert first == second, f"{path}: {first!r} != {second!r}"


def pixels(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def test_the_four_endpoints_answer_as_the_in_process_app(client, ray_client, tmp_path):
    """`client` is the in-process app on the same tiny checkpoints (tests/conftest.py)."""
    began = time.monotonic()
    text = ("To be, or not", 40, 0.8, 5, 0.95, 123)
    remote = ray_client.predict(*text, api_name="/generate_text")  # the first request waits for the deployment
    first_answer = time.monotonic() - began
    local = client.predict(*text, api_name="/generate_text")
    assert remote[0] == local[0] and len(remote[0]) == len("To be, or not") + 40
    close(remote[1], local[1], "confidence")
    close(remote[3], local[3], "alternatives")

    remote, local = (c.predict(7, 16, api_name="/generate_digits") for c in (ray_client, client))
    assert np.array_equal(pixels(remote[0]), pixels(local[0]))
    close(remote[1], local[1], "shares")
    assert remote[2] == local[2]

    for decoding in ("Greedy", "Beam search"):
        remote, local = (c.predict("No se pudo abrir el archivo.", decoding, 3, 0.8, 0, api_name="/translate")
                         for c in (ray_client, client))
        assert remote[0] == local[0]
        close(remote[3], local[3], f"translate {decoding}")

    from gradio_client import handle_file
    from PIL import Image

    picture = tmp_path / "picture.png"
    colours = np.zeros((64, 64, 3), np.uint8)
    colours[16:48, 16:48] = (200, 40, 40)
    Image.fromarray(colours).save(picture)
    remote, local = (c.predict(handle_file(str(picture)), 2, api_name="/caption") for c in (ray_client, client))
    assert remote[0] == local[0]
    close(remote[4], local[4], "caption details")
    assert remote[6] == local[6]
    print(f"first answer through Ray (deploying four replicas) {first_answer:.1f} s; "
          f"all four endpoints {time.monotonic() - began:.1f} s")


@pytest.fixture(scope="module")
def ray_jobs(cluster, ray_checkpoints, tmp_path_factory):
    from playground.jobs import Jobs
    from trainers.common.ray_jobs import RayJobs

    return Jobs(runs=tmp_path_factory.mktemp("ray-runs") / "runs", checkpoints=ray_checkpoints,
                cluster=RayJobs(cluster.job_server))


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    return write_text(tmp_path_factory.mktemp("ray-text") / "my writing.txt")


def test_a_ray_job_reports_progress_and_its_promoted_checkpoint_is_served(ray_jobs, ray_checkpoints, ray_client,
                                                                         text_file):
    began = time.monotonic()
    run = ray_jobs.start("char_rnn", "file", 2, TINY, upload=text_file)
    assert run.ray_job and run.status == "running"
    fractions = []
    wait_for(lambda: fractions.append(ray_jobs.status(run.run_id)["fraction"]) or
             ray_jobs.get(run.run_id).status != "running", 600, "the Ray Job to finish")
    info = ray_jobs.status(run.run_id)
    assert info["status"] == "done", info["message"] + "\n" + info.get("output_tail", "")
    assert info["epochs_done"] == 2 and info["step"] == info["total_steps"] == 10 and info["fraction"] == 1.0
    assert any(0 < fraction < 1 for fraction in fractions), f"no progress seen while it ran: {fractions}"
    assert ray_jobs.cluster.state(run.ray_job)[0] == "SUCCEEDED"
    trained = time.monotonic() - began

    before = ray_client.predict("To be", 30, 0.0, 0, 1.0, 1, api_name="/generate_text")[0]
    assert ray_jobs.promote(run.run_id) == ray_checkpoints / "char_rnn"
    after = ray_client.predict("To be", 30, 0.0, 0, 1.0, 1, api_name="/generate_text")[0]
    from trainers.char_rnn.generate import TextGenerator

    expected = "To be" + TextGenerator.load(ray_checkpoints / "char_rnn").generate("To be", 30, temperature=0.0,
                                                                                     seed=1)
    assert after == expected and after != before, "the replica must serve the promoted checkpoint at once"
    print(f"tiny Ray Job: submitted to done {trained:.1f} s")


def test_a_cancelled_ray_job_ends_cancelled_a_killed_or_crashing_one_failed(ray_jobs, ray_checkpoints, text_file):
    served = digest(ray_checkpoints / "char_rnn")
    long = {**TINY, "steps_per_epoch": 100000, "log_every": 5}
    run = ray_jobs.start("char_rnn", "file", 50, long, upload=text_file)
    wait_for(lambda: ray_jobs.status(run.run_id)["step"] > 0, 600, "the job's first logged step")
    began = time.monotonic()
    cancelled = ray_jobs.cancel(run.run_id)
    took = time.monotonic() - began
    assert cancelled.status == "cancelled" and took < 30, (cancelled.status, took)
    assert ray_jobs.cluster.state(run.ray_job)[0] == "STOPPED"
    events = [json.loads(line) for line in (ray_jobs.run_dir(run.run_id) / "progress.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "cancelled", "the trainer was interrupted (RAY_JOB_STOP_SIGNAL=SIGINT)"
    assert digest(ray_checkpoints / "char_rnn") == served

    # A job whose trainer is killed (out of memory, a node lost) shows failed, with how it ended.
    import psutil

    killed = ray_jobs.start("char_rnn", "file", 50, long, upload=text_file)
    wait_for(lambda: ray_jobs.status(killed.run_id)["step"] > 0, 600, "the job's first logged step")
    folder = str(ray_jobs.run_dir(killed.run_id))
    trainers = [process for process in psutil.process_iter(["cmdline"])
                if "trainers.char_rnn.train" in (process.info["cmdline"] or []) and folder in
                " ".join(process.info["cmdline"])]
    assert len(trainers) == 1
    trainers[0].kill()
    wait_for(lambda: ray_jobs.get(killed.run_id).status != "running", 120, "the killed job to be seen ended")
    info = ray_jobs.status(killed.run_id)
    assert info["status"] == "failed" and "SIGKILL" in info["message"], info["message"]
    assert info["output_tail"].strip()  # the last lines the trainer wrote (TensorFlow's, before its first epoch)
    assert ray_jobs.cluster.state(killed.ray_job)[0] == "FAILED"

    crash = ray_jobs.start("char_rnn", "file", 1, {**TINY, "batch_size": 4096, "seq_len": 1000}, upload=text_file)
    wait_for(lambda: ray_jobs.get(crash.run_id).status != "running", 600, "the job to crash")
    info = ray_jobs.status(crash.run_id)
    assert info["status"] == "failed" and info["message"].startswith("error: the ")
    assert info["message"] in info["output_tail"].splitlines()
    assert ray_jobs.cluster.state(crash.ray_job)[0] == "FAILED"
    assert digest(ray_checkpoints / "char_rnn") == served
    print(f"cancel of a Ray Job took {took:.1f} s")


def test_a_two_worker_run_over_ray_workers_completes(cluster, ray_checkpoints, text_file, tmp_path):
    from playground.jobs import Jobs
    from trainers.common.ray_jobs import RayJobs

    jobs = Jobs(runs=tmp_path / "runs", checkpoints=ray_checkpoints,
                cluster=RayJobs(cluster.job_server, workers=2, cpus_per_worker=0.5))
    began = time.monotonic()
    run = jobs.start("char_rnn", "file", 2, TINY, upload=text_file)
    wait_for(lambda: jobs.get(run.run_id).status != "running", 600, "the two-worker run to finish")
    info = jobs.status(run.run_id)
    assert info["status"] == "done", info["message"] + "\n" + info.get("output_tail", "")
    folder = jobs.run_dir(run.run_id)
    events = [json.loads(line) for line in (folder / "progress.jsonl").read_text().splitlines()]
    assert [e["replicas"] for e in events if e["event"] == "start"] == [2]  # one chief, two replicas in sync
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2]
    output = (folder / "output.log").read_text()
    assert "multi-worker run: 2 workers at 127.0.0.1:" in output and "[worker 1]" in output
    assert info["promotable"]
    print(f"two-worker run over Ray: {time.monotonic() - began:.1f} s")


def test_an_unreachable_cluster_is_one_sentence_per_request(ray_checkpoints):
    import gradio as gr

    from playground.remote_models import RayRegistry

    registry = RayRegistry(ray_checkpoints, address=f"127.0.0.1:{free_port()}")
    for _ in range(2):
        began = time.monotonic()
        with pytest.raises(gr.Error, match="is not answering, so the translation model cannot run right now"):
            registry.get("nmt").translate("hola")
        assert time.monotonic() - began < 10


def test_a_cluster_that_dies_is_one_sentence_and_the_app_keeps_serving(cluster, ray_app, ray_client):
    """Last: it stops the module's cluster."""
    from gradio_client.exceptions import AppError

    assert ray_client.predict("hola", "Greedy", 1, 0.8, 0, api_name="/translate")[0]
    cluster.stop()
    for _ in range(2):
        began = time.monotonic()
        with pytest.raises(AppError) as caught:
            ray_client.predict("hola", "Greedy", 1, 0.8, 0, api_name="/translate")
        assert "is not answering, so the translation model cannot run right now" in str(caught.value)
        assert "Traceback" not in str(caught.value) and time.monotonic() - began < 15
    time.sleep(65)  # a Ray driver ends its own process 60 s after its cluster is gone, unless told to wait
    assert ray_app[0].poll() is None, "the app must outlive its cluster"
    with pytest.raises(AppError, match="is not answering"):
        ray_client.predict("Hola", "Greedy", 1, 0.8, 0, api_name="/translate")
