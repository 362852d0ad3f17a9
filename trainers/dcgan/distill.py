"""Distil a smaller generator from a trained DCGAN: the student learns to draw the teacher's digit for each latent
vector, so the app draws the same kind of digits for a fraction of the work.

    python -m trainers.dcgan.distill --teacher checkpoints/dcgan --out runs/dcgan_distilled --generator-filters 128

Why: the full-width generator's 64 digits are 6.9 GFLOP (104 ms on an AVX2-only AMD EPYC); a half-width one's are
1.7 GFLOP (25 ms). Trained adversarially from nothing, the half-width DCGAN follows the full one's slow path (about
160 epochs, hours on this CPU, to reach the quality bar); imitating the trained full-width generator takes minutes
(knowledge distillation of a GAN's generator, Aguinaldo et al. 2019, "Compressing GANs using Knowledge
Distillation").

Each step draws fresh latent vectors (a stateless seed per step), the teacher draws its digits (inference mode) and
the student, in training mode, is fitted to them with GradientTape on the mean absolute pixel difference. No digit
of the data set is trained on. Every `--eval-every` steps the student is scored as trainers.dcgan.select scores
epochs (generated digits of the selection seed against training digits, judged by the teacher's classifier: no
held-out digit), and the best student is kept. The output is a servable DCGAN folder: the student as
model.weights.h5, the teacher's discriminator (so that `trainers.dcgan.train --init-from` can go on adversarially) and
judging classifier, the teacher's progress GIF followed by the student's frames, and metrics.json, whose held-out
scores come from `trainers.dcgan.evaluate` on the finished folder. The folder is written at the end in one atomic
swap: a run stopped early leaves `--out` as it was.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

from trainers.common.config import flag, in_range, one_of, positive
from trainers.dcgan.config import SOURCES

DISTILL_SEED = 7  # the latent vectors of the progress frames


@dataclasses.dataclass
class DistillConfig:
    teacher: str = dataclasses.field(default="checkpoints/dcgan", metadata={
        "help": "the trained DCGAN checkpoint folder to imitate"})
    out: str = dataclasses.field(default="runs/dcgan_distilled", metadata={"help": "the servable folder to write"})
    generator_filters: int = dataclasses.field(default=128, metadata={
        "help": "channels of the student generator's 7x7 map (the teacher's config.json gives its own)"})
    steps: int = 4000
    batch_size: int = 64
    feature_weight: float = dataclasses.field(default=0.0, metadata={
        "help": "weight of a second loss: the mean absolute difference of the teacher's discriminator's last "
                "feature map for the student's and the teacher's digits, relative to the map's mean size"})
    learning_rate: float = dataclasses.field(default=1e-3, metadata={
        "help": "Adam learning rate, decayed along a cosine to 2 %% of it by the last step"})
    eval_every: int = dataclasses.field(default=500, metadata={
        "help": "score the student on the selection digits every this many steps (and after the last)"})
    selection_count: int = dataclasses.field(default=2000, metadata={
        "help": "generated digits each selection score is taken on"})
    source: str = dataclasses.field(default="offline", metadata={
        "help": "offline or canonical: the digits the selection and the held-out scores compare with (the "
                "teacher's; see its metrics.json)"})
    seed: int = 0

    def validate(self) -> list[str]:
        problems = []
        for name in ("generator_filters", "steps", "batch_size", "eval_every", "learning_rate"):
            problems += positive(flag(name), getattr(self, name))
        if self.generator_filters % 4:
            problems.append(f"generator-filters must be a multiple of 4, got {self.generator_filters}")
        problems += in_range("batch-size", self.batch_size, 1, 4096)
        problems += in_range("learning-rate", self.learning_rate, 1e-6, 1.0)
        problems += in_range("feature-weight", self.feature_weight, 0.0, 100.0)
        problems += in_range("selection-count", self.selection_count, 100, 50000)
        problems += one_of("source", self.source, SOURCES)
        if Path(self.out).resolve() == Path(self.teacher).resolve():
            problems.append("out must not be the teacher's folder: write the student elsewhere, then promote it")
        return problems


def distill(config: DistillConfig, stream=sys.stdout, digits=None) -> dict:
    """Trains the student, writes the servable folder `config.out` and returns its metrics."""
    import keras
    import numpy as np
    import tensorflow as tf

    from trainers.common import checkpoint
    from trainers.dcgan import data, images, quality
    from trainers.dcgan.classifier import load_classifier
    from trainers.dcgan.evaluate import evaluate
    from trainers.dcgan.generate import PROGRESS_GIF
    from trainers.dcgan.model import (DISCRIMINATOR_WEIGHTS, build, count_parameters, latent_vectors,
                                       load_networks, read_config, write_files)
    from trainers.dcgan.train import PROGRESS_GREY_LEVELS, draw

    started = time.monotonic()
    teacher_folder = checkpoint.require_folder(Path(config.teacher), (checkpoint.CONFIG_FILE, checkpoint.WEIGHTS_FILE,
                                                                       DISCRIMINATOR_WEIGHTS))
    teacher_config = read_config(teacher_folder)
    teacher, discriminator = build(teacher_config)
    load_networks(teacher_folder, None, discriminator, average=teacher)  # the teacher is the served generator
    student_config = dataclasses.replace(teacher_config, generator_filters=config.generator_filters)
    student, _ = build(student_config)
    judge = load_classifier(teacher_folder)
    digits = digits or data.load_digits(config.source, seed=0)
    reference = quality.selection_reference(digits.train_images, digits.train_labels, seed=0)
    selection_latent = latent_vectors(quality.SELECTION_SEED, config.selection_count, teacher_config.latent_dim)
    frame_latent = latent_vectors(DISTILL_SEED, 64, teacher_config.latent_dim)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, config.steps, alpha=0.02)
    optimizer = keras.optimizers.Adam(schedule)
    shape = (config.batch_size, teacher_config.latent_dim)

    @tf.function
    def step(index):
        latent = tf.random.stateless_normal(shape, tf.stack([tf.constant(config.seed, tf.int64), index]))
        target = teacher(latent, training=False)
        wanted = discriminator.features(target) if config.feature_weight else None  # outside the tape: no gradient
        with tf.GradientTape() as tape:
            drawn = student(latent, training=True)
            loss = tf.reduce_mean(tf.abs(drawn - target))
            if config.feature_weight:
                gap = tf.reduce_mean(tf.abs(discriminator.features(drawn) - wanted)) / tf.reduce_mean(tf.abs(wanted))
                loss += config.feature_weight * gap
        optimizer.apply_gradients(zip(tape.gradient(loss, student.trainable_variables), student.trainable_variables))
        return loss

    def score(at: int) -> dict:
        figures = quality.selection_figures(draw(student, selection_latent), judge, reference)
        return {"step": at, "loss": round(float(np.mean(losses[-config.eval_every:])), 5), **figures,
                "seconds": round(time.monotonic() - started, 1)}

    teacher_scores = quality.selection_figures(draw(teacher, selection_latent), judge, reference)
    print(f"teacher ({teacher_config.generator_filters} filters, {count_parameters(teacher):,} parameters): "
          f"{json.dumps(teacher_scores)}", file=stream, flush=True)
    losses, history, frames, best = [], [], [], None
    for index in range(config.steps):
        losses.append(float(step(tf.constant(index, tf.int64))))
        at = index + 1
        if at % config.eval_every and at != config.steps:
            continue
        row = score(at)
        history.append(row)
        print(json.dumps(row), file=stream, flush=True)
        frames.append(images.with_header(images.grid(data.to_uint8(draw(student, frame_latent))),
                                         f"distilled, step {at}"))
        if best is None or quality.selection_score(row) > quality.selection_score(best[0]):
            best = (row, student.get_weights())
    picked, weights = best
    student.set_weights(weights)
    earlier = images.gif_frames(teacher_folder / PROGRESS_GIF) if (teacher_folder / PROGRESS_GIF).is_file() else []
    teacher_metrics = checkpoint.read_json(teacher_folder / checkpoint.METRICS_FILE) \
        if (teacher_folder / checkpoint.METRICS_FILE).is_file() else {}
    metrics = {
        **{key: teacher_metrics[key] for key in ("data", "epochs", "steps", "steps_per_epoch", "history", "bar")
           if key in teacher_metrics},
        "model": "dcgan",
        "parameters": {"generator": count_parameters(student), "discriminator": count_parameters(discriminator)},
        "served_generator": f"a {config.generator_filters}-filter generator distilled from the "
                            f"{teacher_config.generator_filters}-filter one below (the discriminator is the "
                            "teacher's)",
        "distilled": {
            "command": "python -m trainers.dcgan.distill " + " ".join(
                f"--{name.replace('_', '-')} {value}" for name, value in dataclasses.asdict(config).items()),
            "teacher": {"folder": str(config.teacher), "generator_filters": teacher_config.generator_filters,
                        "parameters": count_parameters(teacher), "selection_figures": teacher_scores,
                        **{key: teacher_metrics[key] for key in (
                            "classifier_confidence", "classifier_fid", "epochs", "wall_time_seconds",
                            "training_schedule", "picked") if key in teacher_metrics}},
            "loss": "mean absolute pixel difference to the teacher's digit for the same latent vector (pixels in "
                    "[-1, 1])" + (f", plus {config.feature_weight} x the relative mean absolute difference of the "
                                  "teacher's discriminator's last feature map" if config.feature_weight else "")
                    + "; fresh latent vectors every step; no digit of the data set is trained on",
            "steps": config.steps, "batch_size": config.batch_size, "learning_rate": config.learning_rate,
            "schedule": "cosine decay to 2 % of the learning rate", "picked_step": picked["step"],
            "picked": f"the best of {len(history)} scored students: {config.selection_count} generated digits "
                      f"(latent seed {quality.SELECTION_SEED}) against {quality.SELECTION_REFERENCE} training "
                      "digits, meeting the bar first, then the lowest Fréchet distance; no held-out digit is used",
            "history": history,
            "wall_time_seconds": round(time.monotonic() - started, 1),
        },
        "wall_time_seconds": round(teacher_metrics.get("wall_time_seconds", 0.0) + time.monotonic() - started, 1),
        "progress_gif": f"the teacher's training ({len(earlier)} frames), then the student every "
                        f"{config.eval_every} steps of distillation ({len(frames)} frames)",
    }

    def write(folder: Path) -> None:
        write_files(folder, student, discriminator, student_config, classifier_folder=teacher_folder,
                    metrics=metrics)
        images.save_gif(earlier + frames, folder / PROGRESS_GIF, grey_levels=PROGRESS_GREY_LEVELS)
        evaluate(folder, config.source, digits=digits)  # the held-out scores, as the served float32 generator draws

    out = checkpoint.write_folder(Path(config.out), write)
    return checkpoint.read_json(out / checkpoint.METRICS_FILE)


def summary(metrics: dict, config: DistillConfig) -> str:
    return (f"wrote {config.out}: held-out classifier confidence {metrics['classifier_confidence']:.4f}, classifier "
            f"FID {metrics['classifier_fid']} (the bar {'is' if metrics['meets_bar'] else 'is NOT'} met); "
            f"student step {metrics['distilled']['picked_step']} of {config.steps}")


def main(argv=None) -> None:
    from trainers.common import cli

    cli.run_training(__doc__, DistillConfig, distill, summary, argv,
                     cancelled="distillation cancelled; nothing was written (--out is as it was)")


if __name__ == "__main__":
    main()
