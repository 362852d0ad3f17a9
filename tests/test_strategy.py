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
# The two runs see the same batches (and, for the GAN, the same latent vectors), split in two; they differ only in
# float rounding. Measured: every logged loss equal to the 5 digits progress.jsonl keeps, for all four tiny models,
# after 6 steps. A wrong gradient scale (summing instead of averaging over replicas, clipping per replica) or
# Keras' row-by-row Adam update of sparse embedding gradients (which run.apply_gradients avoids by making them
# dense; it moved the one-device losses ~1e-3 away from the mirrored ones) shows as 1e-3 or more.
RELATIVE_TOLERANCE = 1e-4


def python(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})


@pytest.mark.parametrize("model", ["char_rnn", "dcgan", "nmt", "captioning"])
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


def test_apply_gradients_updates_a_token_seen_twice_once_with_its_whole_gradient():
    """Keras' Adam updates tf.IndexedSlices row by row: a token seen twice in a batch would get two half-updates
    of its moments. run.apply_gradients makes embedding gradients dense, so Adam sees the summed gradient."""
    import keras
    import numpy as np
    import tensorflow as tf

    from trainers.common import run

    def train(apply):
        table = keras.Variable(np.ones((4, 2), np.float32))
        optimizer = keras.optimizers.Adam(0.1)
        optimizer.build([table])
        for _ in range(3):
            with tf.GradientTape() as tape:
                rows = tf.gather(table, [1, 1, 2])  # token 1 twice, token 2 once
                loss = tf.reduce_sum(rows * [[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
            gradient = tape.gradient(loss, [table])
            assert isinstance(gradient[0], tf.IndexedSlices)
            apply(optimizer, gradient, [table])
        return table.numpy()

    ours = train(lambda optimizer, gradients, variables: run.apply_gradients(optimizer, gradients, variables))
    dense = train(lambda optimizer, gradients, variables: optimizer.apply(
        [tf.convert_to_tensor(gradient) for gradient in gradients], variables))
    np.testing.assert_allclose(ours, dense, rtol=1e-6)
    # Three Adam steps of a constant gradient move each touched weight by ~3 x the learning rate.
    np.testing.assert_allclose(ours[1:3], 0.7, atol=1e-3)
    np.testing.assert_array_equal(ours[[0, 3]], 1.0)
