"""Distilling a smaller DCGAN generator (trainers/dcgan/distill.py): it imitates the teacher, the folder it writes
serves and carries on, the teacher is untouched, and bad settings get one sentence."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from tests.test_dcgan import synthetic_split
from tests.tiny import dcgan as tiny
from trainers.common.checkpoint import read_json
from trainers.dcgan.distill import DistillConfig, distill


def files(folder):
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


def pixel_gap(student_folder, teacher_folder, latent) -> float:
    from trainers.dcgan.model import load

    student, _ = load(student_folder)
    teacher, _ = load(teacher_folder)
    return float(np.mean(np.abs(student(latent).numpy() - teacher(latent).numpy())))


def structured_teacher(folder):
    """The tiny checkpoint with its last layer's kernel scaled up: an untrained generator draws nearly flat grey,
    this one draws pictures that differ from one latent vector to another (something to imitate)."""
    from trainers.dcgan.model import load

    folder = tiny.make(folder)
    generator, _ = load(folder)
    generator.to_image.kernel.assign(generator.to_image.kernel * 40.0)
    generator.save_weights(str(folder / "model.weights.h5"))
    return folder


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    teacher = structured_teacher(root / "teacher")
    before = files(teacher)
    config = DistillConfig(teacher=str(teacher), out=str(root / "student"), generator_filters=4, steps=300,
                           batch_size=16, learning_rate=1e-2, eval_every=100, selection_count=100)
    metrics = distill(config, stream=open("/dev/null", "w"), digits=synthetic_split())
    return root, teacher, before, config, metrics


def test_the_student_is_a_servable_folder_of_the_smaller_generator(distilled):
    from trainers.dcgan.generate import DigitGenerator
    from trainers.dcgan.images import gif_frame_count

    root, teacher, _, _, metrics = distilled
    student = root / "student"
    served = DigitGenerator.load(student, "float32")
    assert served.config.generator_filters == 4 and served.config.discriminator_filters == 4
    assert served.generate(3, 5).shape == (5, 28, 28) and served.judge is not None
    assert metrics == read_json(student / "metrics.json")
    for key in ("classifier_confidence", "classifier_fid", "min_class_share", "meets_bar", "evaluated_with"):
        assert key in metrics  # the held-out scores of trainers.dcgan.evaluate
    history = metrics["distilled"]["history"]
    assert [row["step"] for row in history] == [100, 200, 300]
    assert metrics["distilled"]["picked_step"] in (100, 200, 300)
    assert history[0]["loss"] > history[-1]["loss"]
    assert metrics["parameters"]["generator"] < metrics["distilled"]["teacher"]["parameters"]
    assert gif_frame_count(student / "progress.gif") == 3 + 3  # the teacher's 3 epochs, then 3 students


def test_the_student_draws_closer_to_the_teacher_than_before_distillation(distilled, tmp_path):
    """The pixel gap to the teacher's digits on latent vectors the student never trained on, against an untrained
    student of the same shape (the same folder with its first weights)."""
    import keras

    from trainers.dcgan.model import GanConfig, build, save

    root, teacher, _, _, _ = distilled
    keras.utils.set_random_seed(1)
    config = GanConfig(latent_dim=8, generator_filters=4, discriminator_filters=4, kernel_size=3)
    generator, discriminator = build(config)
    untrained = save(tmp_path / "untrained", generator, discriminator, config)
    latent = np.random.default_rng(99).standard_normal((64, 8)).astype(np.float32)
    # Measured: 0.26 against 0.42 (a one-channel 28x28 layer imitating saturated patterns gets only so close).
    assert pixel_gap(root / "student", teacher, latent) < 0.75 * pixel_gap(untrained, teacher, latent)


def test_distilling_leaves_the_teacher_as_it_was_and_the_student_trains_on_adversarially(distilled):
    from trainers.dcgan.train import train
    from trainers.dcgan.config import TrainConfig

    root, teacher, before, _, _ = distilled
    assert files(teacher) == before
    config = TrainConfig(out=str(root / "adversarial"), epochs=4, batch_size=16, steps_per_epoch=2, latent_dim=8,
                         generator_filters=4, discriminator_filters=4, kernel_size=3, init_from=str(root / "student"),
                         eval_count=20, grid_count=4, classifier_epochs=1)
    metrics = train(config, stream=open("/dev/null", "w"), digits=synthetic_split())
    assert metrics["epochs"] == 4  # the teacher's 3 epochs, then one adversarial one from the student


def test_the_discriminator_feature_loss_trains_the_student_too(distilled, tmp_path):
    """--feature-weight adds the teacher's discriminator's feature gap to the pixel loss: the run still lowers its
    loss, says what it trained on, and the student still gets closer to the teacher than an untrained one."""
    root, teacher, _, _, _ = distilled
    config = DistillConfig(teacher=str(teacher), out=str(tmp_path / "student"), generator_filters=4, steps=200,
                           batch_size=16, learning_rate=1e-2, eval_every=100, selection_count=100, feature_weight=1.0)
    metrics = distill(config, stream=open("/dev/null", "w"), digits=synthetic_split())
    history = metrics["distilled"]["history"]
    assert history[0]["loss"] > history[-1]["loss"]
    assert "1.0 x the relative mean absolute difference of the teacher's discriminator's last feature map" \
        in metrics["distilled"]["loss"]
    assert "--feature-weight 1.0" in metrics["distilled"]["command"]


@pytest.mark.parametrize("change, words", [
    ({"generator_filters": 6}, "generator-filters must be a multiple of 4"),
    ({"steps": 0}, "steps must be greater than zero"),
    ({"selection_count": 5}, "selection-count must be between"),
    ({"feature_weight": -1.0}, "feature-weight must be between"),
])
def test_bad_settings_get_one_sentence(change, words):
    assert any(words in problem for problem in dataclasses.replace(DistillConfig(), **change).validate())


def test_the_cli_refuses_to_write_over_the_teacher_in_one_line(tmp_path):
    teacher = tiny.make(tmp_path / "teacher")
    before = files(teacher)
    result = subprocess.run([sys.executable, "-m", "trainers.dcgan.distill", "--teacher", str(teacher), "--out",
                             str(teacher)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: out must not be the teacher's folder")
    assert "Traceback" not in result.stderr and files(teacher) == before


def test_a_missing_teacher_is_one_sentence_and_writes_nothing(tmp_path):
    result = subprocess.run([sys.executable, "-m", "trainers.dcgan.distill", "--teacher", str(tmp_path / "none"),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert not (tmp_path / "out").exists()


def test_a_cancelled_distillation_says_so_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """Ctrl-C (raised here by the student's first score, after 20 steps) ends with status 130 and one line; --out
    is not created, the teacher is untouched."""
    from trainers.dcgan import data, distill as module, quality

    teacher = tiny.make(tmp_path / "teacher")
    before = files(teacher)
    scores = []
    figures = quality.selection_figures

    def interrupted(*args, **kwargs):
        scores.append(1)
        if len(scores) == 2:  # the first scores the teacher, before any step
            raise KeyboardInterrupt
        return figures(*args, **kwargs)

    monkeypatch.setattr(data, "load_digits", lambda *args, **kwargs: synthetic_split())
    monkeypatch.setattr(quality, "selection_figures", interrupted)
    with pytest.raises(SystemExit) as exit_:
        module.main(["--teacher", str(teacher), "--out", str(tmp_path / "out"), "--steps", "40", "--eval-every",
                     "20", "--batch-size", "8", "--generator-filters", "4", "--selection-count", "100"])
    assert exit_.value.code == 130 and len(scores) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: distillation cancelled; nothing was written (--out is as it was)")
    assert not (tmp_path / "out").exists() and files(teacher) == before
