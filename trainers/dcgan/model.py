"""The DCGAN: a generator that turns a latent vector into a 28x28 digit, and a discriminator that scores it.

Both follow the DCGAN paper's guidelines (Radford et al., 2015): no pooling (strided convolutions), batch
normalisation in the generator, LeakyReLU in the discriminator, tanh output. The generator is deliberately
smaller than the TensorFlow tutorial's (it has to train on a shared CPU); its width is a setting. Importing
this module does no work; `load(path)` rebuilds a generator from a checkpoint folder, `save`/`write_files`
write one.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from trainers.common import checkpoint
from trainers.common.hardware import avx512

DISCRIMINATOR_WEIGHTS = "discriminator.weights.h5"
# With weight averaging, model.weights.h5 holds the averaged generator (the one served) and this file holds the
# generator being trained (needed to resume). Without it, model.weights.h5 is the generator being trained.
TRAINING_GENERATOR_WEIGHTS = "generator_training.weights.h5"


@dataclasses.dataclass
class GanConfig:
    """Constructor arguments of both networks; saved as config.json beside the weights."""

    latent_dim: int = 100
    generator_filters: int = 256  # channels of the 7x7 map; the 14x14 map has half as many (the shipped size)
    discriminator_filters: int = 128  # channels of the first strided convolution; the second has twice as many
    kernel_size: int = 4  # divisible by the stride 2, which avoids the checkerboard of transposed convolutions
    dropout: float = 0.3


# Which kernel rows (and columns) feed each output phase of a 4-wide, stride-2 "same" transposed convolution, in the
# order depth_to_space lays the phases out once the output is shifted by one pixel: position q of the input padded
# by one gives output row 2q - 1 (kernel rows 2 and 0 over input rows q - 1 and q) and row 2q (kernel rows 3 and 1).
PHASE_TAPS = ((2, 0), (3, 1))


def upsample_in_phases(layer: layers.Conv2DTranspose, inputs: tf.Tensor) -> tf.Tensor:
    """What `layer` (a 4-wide, stride-2, "same", bias-free transposed convolution) gives for `inputs`, computed as one
    ordinary 2x2 convolution whose channels are each input pixel's four output pixels, then `depth_to_space`.

    Why: oneDNN's AVX2 transposed convolution reached 34-39 GFLOP/s on one core of an AMD EPYC (Zen 3) where this
    ordinary convolution of the same work reached about 61; the shipped generator's 64 digits went from 105.9 to
    73.6 ms there (docs/speed.md). The same sums in another order: outputs agree within float32 rounding."""
    kernel = tf.cast(layer.kernel, inputs.dtype)  # (4, 4, out, in); under mixed precision, the compute dtype
    parts = [tf.gather(tf.gather(kernel, rows, axis=0), columns, axis=1)
             for rows in PHASE_TAPS for columns in PHASE_TAPS]  # 4 x (2, 2, out, in)
    kernel = tf.transpose(tf.concat(parts, axis=2), (0, 1, 3, 2))  # (2, 2, in, 4 * out), phase-major channels
    padded = tf.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]])
    return tf.nn.depth_to_space(tf.nn.conv2d(padded, kernel, 1, "VALID"), 2)[:, 1:-1, 1:-1, :]


class Generator(keras.Model):
    """Latent (batch, latent_dim) -> image (batch, 28, 28, 1) in [-1, 1]."""

    def __init__(self, latent_dim: int = 100, filters: int = 128, kernel_size: int = 5, synchronized: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        # synchronized: batch statistics over the global batch when training on several replicas (tf.distribute),
        # so that a mirrored run normalises as one device would. Not a shape: it is not saved in config.json.
        self.latent_dim = latent_dim
        self.filters = filters
        # Inference runs the upsampling convolutions in phases where that was measured to be faster: CPUs without
        # AVX-512 (upsample_in_phases). Not a shape, not saved; tests set it either way.
        self.phases = not avx512()
        self.project = layers.Dense(7 * 7 * filters, use_bias=False, name="project")
        self.project_norm = layers.BatchNormalization(synchronized=synchronized, name="project_norm")
        self.reshape = layers.Reshape((7, 7, filters))
        self.up1 = layers.Conv2DTranspose(filters // 2, kernel_size, strides=2, padding="same", use_bias=False,
                                          name="up1")
        self.up1_norm = layers.BatchNormalization(synchronized=synchronized, name="up1_norm")
        self.up2 = layers.Conv2DTranspose(filters // 4, kernel_size, strides=2, padding="same", use_bias=False,
                                          name="up2")
        self.up2_norm = layers.BatchNormalization(synchronized=synchronized, name="up2_norm")
        # A last stride-1 convolution to one channel smooths the checkerboard of the upsampling layers.
        self.to_image = layers.Conv2D(1, kernel_size, padding="same", activation="tanh", dtype="float32",
                                      name="to_image")

    def call(self, latent, training=False):
        features = self.project(latent)  # (batch, 7*7*filters)
        features = tf.nn.leaky_relu(self.project_norm(features, training=training), 0.2)
        features = self.reshape(features)  # (batch, 7, 7, filters)
        features = self.upsample(self.up1, features, training)  # (batch, 14, 14, f/2)
        features = tf.nn.leaky_relu(self.up1_norm(features, training=training), 0.2)
        features = self.upsample(self.up2, features, training)  # (batch, 28, 28, f/4)
        features = tf.nn.leaky_relu(self.up2_norm(features, training=training), 0.2)
        return self.to_image(features)  # (batch, 28, 28, 1)

    def upsample(self, layer: layers.Conv2DTranspose, features, training):
        """The layer itself in training (TensorFlow's transposed convolution: its gradients were faster than the
        phase form's, 97 against 181 ms for the 7x7 layer's) and on the first call, which builds it; in inference,
        `upsample_in_phases` where `phases` says so and the layer has its shape."""
        if (training or not self.phases or not layer.built or layer.use_bias or layer.kernel_size != (4, 4)
                or layer.strides != (2, 2) or layer.padding != "same"):
            return layer(features)
        return upsample_in_phases(layer, features)


class Discriminator(keras.Model):
    """Image (batch, 28, 28, 1) -> one logit per image (batch, 1): real is positive."""

    def __init__(self, filters: int = 64, kernel_size: int = 5, dropout: float = 0.3, **kwargs):
        super().__init__(**kwargs)
        self.down1 = layers.Conv2D(filters, kernel_size, strides=2, padding="same", name="down1")
        self.drop1 = layers.Dropout(dropout)
        self.down2 = layers.Conv2D(filters * 2, kernel_size, strides=2, padding="same", name="down2")
        self.drop2 = layers.Dropout(dropout)
        self.flatten = layers.Flatten()
        self.logit = layers.Dense(1, dtype="float32", name="logit")

    def call(self, images, training=False):
        return self.logit(self.flatten(self.features(images, training)))  # (batch, 1)

    def features(self, images, training=False):
        """The last feature map, (batch, 7, 7, 2f): what the logit is read from (trainers.dcgan.distill matches it)."""
        features = self.drop1(tf.nn.leaky_relu(self.down1(images), 0.2), training=training)  # (batch, 14, 14, f)
        return self.drop2(tf.nn.leaky_relu(self.down2(features), 0.2), training=training)


def build(config: GanConfig, synchronized: bool = False) -> tuple[Generator, Discriminator]:
    """Creates both networks and their variables (one call on a dummy batch), ready for load_weights.
    `synchronized`: the generator's batch norm uses the statistics of the global batch (several replicas)."""
    generator = Generator(config.latent_dim, config.generator_filters, config.kernel_size, synchronized,
                          name="generator")
    discriminator = Discriminator(config.discriminator_filters, config.kernel_size, config.dropout,
                                  name="discriminator")
    images = generator(tf.zeros((1, config.latent_dim)))
    discriminator(images)
    return generator, discriminator


def count_parameters(model: keras.Model) -> int:
    return int(sum(np.prod(variable.shape) for variable in model.trainable_variables))


def latent_vectors(seed: int, count: int, latent_dim: int) -> np.ndarray:
    """`count` standard-normal latent vectors (count, latent_dim) float32; the same seed gives the same ones."""
    return np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)


def read_config(path: Path) -> GanConfig:
    raw = checkpoint.read_json(Path(path) / checkpoint.CONFIG_FILE)
    try:
        return GanConfig(**raw)
    except TypeError as error:
        raise checkpoint.CheckpointError(f"{Path(path) / checkpoint.CONFIG_FILE} is not a DCGAN config: {error}")


def load(path: Path, precision: str = "float32") -> tuple[Generator, GanConfig]:
    """Rebuilds the generator from `path/config.json` and loads `model.weights.h5` (the served generator).

    `precision` is a Keras policy or "auto" (trainers.common.hardware.resolve_precision): under mixed_bfloat16 the
    layers compute in bfloat16 from the same float32 weights (variables stay float32), so a checkpoint trained in
    either precision serves in either. The policy is set only while the networks are built (Keras keeps it per
    thread), so loading does not change the precision of anything else."""
    from trainers.common.hardware import resolve_precision

    path = checkpoint.require_folder(path)
    config = read_config(path)
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(resolve_precision(precision))
    try:
        generator, _ = build(config)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    checkpoint.load_weights(generator, path)
    return generator, config


def load_networks(path: Path, generator: Generator | None, discriminator: Discriminator,
                  average: Generator | None = None) -> None:
    """Fills built networks from a servable folder, for --init-from: the trained generator
    (generator_training.weights.h5, or model.weights.h5 without one; skipped if None), the discriminator, and the
    served weights into `average` (trainers.dcgan.distill's teacher)."""
    path = checkpoint.require_folder(path, (checkpoint.CONFIG_FILE, checkpoint.WEIGHTS_FILE, DISCRIMINATOR_WEIGHTS))
    training_weights = path / TRAINING_GENERATOR_WEIGHTS
    pairs = [(discriminator, path / DISCRIMINATOR_WEIGHTS)]
    if generator is not None:
        pairs.append((generator, training_weights if training_weights.is_file() else path / checkpoint.WEIGHTS_FILE))
    if average is not None:
        pairs.append((average, path / checkpoint.WEIGHTS_FILE))
    for model, weights in pairs:
        try:
            model.load_weights(str(weights))
        except Exception as error:
            raise checkpoint.CheckpointError(f"the weights in {weights} cannot be loaded: {error}") from None


def write_files(folder: Path, generator: Generator, discriminator: Discriminator, config: GanConfig,
                classifier_folder: Path | None = None, progress_gif: Path | None = None, metrics: dict | None = None,
                average: Generator | None = None) -> None:
    """The servable files into an existing folder: config.json, model.weights.h5 (the served generator: the
    `average` if there is one, and then the trained generator as generator_training.weights.h5),
    discriminator.weights.h5, the classifier's two files, progress.gif, metrics.json."""
    from trainers.dcgan.classifier import CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS
    from trainers.dcgan.generate import PROGRESS_GIF

    folder = Path(folder)
    checkpoint.write_model(folder, average if average is not None else generator, dataclasses.asdict(config))
    if average is not None:
        generator.save_weights(str(folder / TRAINING_GENERATOR_WEIGHTS))
    discriminator.save_weights(str(folder / DISCRIMINATOR_WEIGHTS))
    if classifier_folder is not None:
        checkpoint.copy_into(classifier_folder, folder, [CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS])
    if progress_gif is not None:
        shutil.copy2(progress_gif, folder / PROGRESS_GIF)
    if metrics is not None:
        checkpoint.write_json(folder / checkpoint.METRICS_FILE, metrics)


def save(path: Path, generator: Generator, discriminator: Discriminator, config: GanConfig, **files) -> Path:
    """Writes a complete, servable checkpoint folder atomically (`files`: the keywords of `write_files`)."""
    return checkpoint.write_folder(path, lambda folder: write_files(folder, generator, discriminator, config,
                                                                    **files))


def make_average_update(average: Generator, generator: Generator, decay: float, eager: bool = False):
    """`update(step)` moves the averaged generator towards the trained one (an exponential moving average).

    Averaging the generator's weights over the last ~1/(1 - decay) steps smooths out the oscillation of
    adversarial training and gives cleaner digits (Yazici et al., 2019). The decay ramps up from 0 so that an
    early average is not dominated by the random initialisation. Batch-norm statistics are copied, not averaged.
    """
    pairs = list(zip(average.trainable_variables, generator.trainable_variables))
    statistics = list(zip(average.non_trainable_variables, generator.non_trainable_variables))

    def update(step):
        step = tf.cast(step, tf.float32)
        rate = tf.minimum(decay, (1.0 + step) / (10.0 + step))
        for averaged, current in pairs:
            averaged.assign(rate * averaged + (1.0 - rate) * tf.cast(current, averaged.dtype))
        for averaged, current in statistics:
            averaged.assign(tf.cast(current, averaged.dtype))

    return update if eager else tf.function(update)
