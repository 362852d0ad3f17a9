"""tf.distribute through the run core: MirroredStrategy over two logical CPUs trains like one device, and two
real worker processes (MultiWorkerMirroredStrategy, TF_CONFIG on localhost) train one tiny model whose chief's
checkpoint serves."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The two runs see the same batches; they differ only in float rounding (each replica's GRU runs on half the
# batch, and Adam divides by the square root of tiny second moments in the first steps), measured ~1e-3 relative
# after 6 steps on a tiny char-RNN; a tiny GAN (latent vectors split with the images, synchronized batch norm)
# matched to the 5 digits progress.jsonl keeps. A wrong gradient scale (summing instead of averaging over replicas, or
# clipping per replica) moves the losses by ~1e-2 or more.
RELATIVE_TOLERANCE = 3e-3


def python(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})


@pytest.mark.parametrize("model", ["char_rnn", "dcgan", "captioning"])
def test_mirrored_over_two_cpus_matches_one_device(model, tmp_path):
    result = python("-m", "tests.distributed.compare", model, str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["replicas"] == [2] and figures["devices"] == 2
    default, mirrored = figures["default"], figures["mirrored"]
    assert len(default) == len(mirrored) >= 4
    assert default[0] == mirrored[0]  # the first loss is computed before any update: the same batch, split
    for one, two in zip(default, mirrored):
        for name in one:
            assert two[name] == pytest.approx(one[name], rel=RELATIVE_TOLERANCE), (name, default, mirrored)
    if "loss" in default[0]:  # a GAN's two losses need not fall in 6 steps; a language model's must
        assert default[-1]["loss"] < default[0]["loss"]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for probe in sockets:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in sockets]
    for probe in sockets:
        probe.close()
    return ports


def test_two_worker_processes_train_and_the_chief_checkpoint_serves(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text(("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n") * 40,
                    encoding="utf-8")
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        command = [sys.executable, "-m", "trainers.char_rnn.train", "--strategy", "multi-worker", "--source", "file",
                   "--text-file", str(text), "--out", str(tmp_path / "run"), "--epochs", "2", "--batch-size", "8",
                   "--seq-len", "20", "--embedding-dim", "8", "--rnn-units", "16", "--steps-per-epoch", "3",
                   "--sample-length", "10", "--precision", "float32"]
        workers.append(subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2"}))
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (_, error) in zip(workers, outputs):
        assert worker.returncode == 0, error[-3000:]
    events = [json.loads(line) for line in (tmp_path / "run" / "progress.jsonl").read_text().splitlines()]
    assert [e["replicas"] for e in events if e["event"] == "start"] == [2]  # only the chief logs
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2]
    from trainers.char_rnn.generate import TextGenerator

    generated = TextGenerator.load(tmp_path / "run" / "checkpoint").generate("To be", 20, temperature=0, seed=0)
    assert len(generated) == 20


def test_multi_worker_without_tf_config_is_one_sentence(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    result = subprocess.run([sys.executable, "-m", "trainers.char_rnn.train", "--strategy", "multi-worker",
                             "--out", str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode != 0
    assert "needs TF_CONFIG" in result.stderr and "Traceback" not in result.stderr
