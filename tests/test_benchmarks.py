"""The training-step benchmark: its FLOP counts (by hand and against tf.profiler) and a smoke run of the script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import flops

ROOT = Path(__file__).resolve().parents[1]


def test_layer_counts_by_hand():
    assert flops.dense_forward(3, 5, 7) == 2 * 3 * 5 * 7
    # a GRU step: 3 gates of the input (4 -> 3*2) and of the state (2 -> 3*2), for 5 rows
    assert flops.gru_forward(5, 4, 2) == 2 * 5 * (4 * 6 + 2 * 6)
    # 2 images, 5x5 output, 8 filters of 3x3x4
    assert flops.conv_forward(2, 5, 5, 4, 8, 3) == 2 * 2 * 25 * 8 * 36
    # 2 images of 5x5x4, each pixel scattered through 3x3x8
    assert flops.conv_transpose_forward(2, 5, 5, 4, 8, 3) == 2 * 2 * 25 * 4 * 72
    # attention over 6 locations of depth 10, 4 units, a query of 3: W2 3x4, V 4x1 per location, context 6x10
    assert flops.bahdanau_forward(2, 6, 10, 4, 3, project_keys=False) == 2 * 2 * (3 * 4 + 6 * 4 + 6 * 10)
    assert flops.bahdanau_forward(2, 6, 10, 4, 3, project_keys=True) == 2 * 2 * (3 * 4 + 6 * 4 + 6 * 10 + 6 * 10 * 4)


def test_model_counts_by_hand():
    # char-RNN, batch 2 x 3 characters, embedding 4, 5 units, 6 characters: 3 x forward
    assert flops.char_rnn_step(2, 3, 4, 5, 6) == 3 * 2 * 6 * (4 * 15 + 5 * 15 + 5 * 6)
    # the tutorial-size char-RNN: 153.6 GFLOP per step of 64 x 100 characters
    assert flops.char_rnn_step(64, 100, 256, 1024, 65) == pytest.approx(3 * 2 * 6400 * (256 * 3072 + 1024 * 3072
                                                                                     + 1024 * 65))
    # translation tutorial, batch 1, 2 source words, 3 target words (2 decoder steps), embedding 1, 2 units, 3 words
    encoder = 2 * (1 * 6 + 2 * 6)
    step = (2 * 2 + 2 * 2 + 2 * 2 * 2 + 2 * 2) + (3 * 6 + 2 * 6) + 2 * 3  # attention, GRU on [context; word], fc
    assert flops.nmt_tutorial_step(1, 2, 3, 1, 2, 3) == 3 * 2 * (encoder + 2 * step)
    # the project's translation model, batch 1, 2 pieces each side, embedding 1, 1 unit per direction (keys 2),
    # decoder 2 units, attention 1, 3 pieces
    encoder = 2 * 2 * (1 * 3 + 1 * 3) + 2 * 2 + 2 * 2 * 1  # both directions, bridge, W1 keys
    step = (2 * 1 + 2 * 1 + 2 * 2) + (3 * 6 + 2 * 6) + 4 * 1  # attention, GRU cell on [word; context], bottleneck
    assert flops.nmt_project_step(1, 2, 2, 1, 1, 2, 1, 3) == 3 * 2 * (encoder + 2 * step + 2 * 1 * 3)
    # captioning tutorial, batch 1, 2 tokens (1 decoder step), 2 locations x 3, embedding 1, 2 units, 4 words
    encoder = 2 * 3 * 1
    step = (2 * 2 + 2 * 2 + 2 * 1 + 2 * 1 * 2) + (2 * 6 + 2 * 6) + 2 * 2 + 2 * 4
    assert flops.captioning_tutorial_step(1, 2, 2, 3, 1, 2, 4) == 3 * 2 * (encoder + step)
    # the project's captioner, batch 1, 1 word, 2 locations x 3, embedding 1, 2 units, attention 1, 4 words
    encoder = 2 * 3 * 1 + 2 * 1 * 1 + 1 * 2
    step = (2 * 1 + 2 * 1 + 2 * 1) + (2 * 6 + 2 * 6) + 2 * 2 + 2 * 4
    assert flops.captioning_project_step(1, 1, 2, 3, 1, 2, 1, 4) == 3 * 2 * (encoder + step)
    # one GAN step: the generator once, the discriminator twice, each 3 x forward
    assert flops.dcgan_step(10.0, 1.0) == 3 * 12.0


def profiled_matmul_flops(network, input_shape) -> int:
    """tf.profiler's float-operation statistics (the registry `tf.compat.v1.profiler` sums) of the network's matmuls
    and convolutions, on a frozen forward graph."""
    import tensorflow as tf
    from tensorflow.python.framework import ops
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    concrete = tf.function(lambda x: network(x, training=False)).get_concrete_function(
        tf.TensorSpec(input_shape, tf.float32))
    graph = convert_variables_to_constants_v2(concrete).graph
    counted = ("MatMul", "Conv2D", "Conv2DBackpropInput")  # what benchmarks/flops.py counts (no biases, no norms)
    found = [op for op in graph.get_operations() if op.type in counted]
    assert found
    return sum(ops.get_stats_for_node_def(graph, op.node_def, "flops").value for op in found)


def test_dcgan_counts_match_tf_profiler():
    import keras

    from benchmarks.training_steps import tutorial_discriminator, tutorial_generator
    from trainers.dcgan.model import GanConfig, build

    keras.mixed_precision.set_global_policy("float32")
    batch = 2
    assert profiled_matmul_flops(tutorial_generator(), (batch, 100)) == \
        flops.dcgan_tutorial_generator_forward(batch)
    assert profiled_matmul_flops(tutorial_discriminator(), (batch, 28, 28, 1)) == \
        flops.dcgan_tutorial_discriminator_forward(batch)
    config = GanConfig(latent_dim=10, generator_filters=16, discriminator_filters=8, kernel_size=4)
    generator, discriminator = build(config)
    generator.phases = False  # the transposed convolutions the training step runs (what flops.py counts)
    assert profiled_matmul_flops(generator, (batch, 10)) == flops.dcgan_project_generator_forward(batch, 10, 16, 4)
    assert profiled_matmul_flops(discriminator, (batch, 28, 28, 1)) == \
        flops.dcgan_project_discriminator_forward(batch, 8, 4)


def test_quick_run_of_the_script():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "training_steps.py"), "--quick", "--steps",
                             "1", "--rounds", "1", "--models", "char_rnn"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "CPU: " in out and "native bfloat16" in out  # the machine it ran on
    assert "tutorial (2021 text_generation)" in out and "project (" in out
    assert "examples/s" in out and "FLOP/s" in out and "matmul peak" in out
    assert "goal >= 2x" in out and "goal >= 50%" in out
