"""A small convolutional digit classifier: the judge of the GAN's digits.

It is trained only on the real digits the GAN trains on (never on the 1,000 held-out ones) and must reach at
least 98% accuracy on the held-out digits before its opinion of generated digits means anything. Its
penultimate layer (128 features) is the feature space of the Fréchet distance in `quality.py`.

    python -m trainers.dcgan.classifier --out runs/dcgan/classifier [--source offline] [--epochs 8]

The classifier lives in two files that sit beside the GAN's weights in a checkpoint folder:
`classifier.json` (its constructor arguments and held-out accuracy) and `classifier.weights.h5`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from trainers.common import checkpoint
from trainers.common.threads import parallel_batches

CLASSIFIER_CONFIG = "classifier.json"
CLASSIFIER_WEIGHTS = "classifier.weights.h5"
REQUIRED_ACCURACY = 0.98


@dataclasses.dataclass
class ClassifierConfig:
    filters: int = 32
    features: int = 128
    dropout: float = 0.3


class DigitClassifier(keras.Model):
    """Image (batch, 28, 28, 1) in [-1, 1] -> (logits (batch, 10), features (batch, features))."""

    def __init__(self, filters: int = 32, features: int = 128, dropout: float = 0.3, **kwargs):
        super().__init__(**kwargs)
        self.conv1a = layers.Conv2D(filters, 3, padding="same", activation="relu", name="conv1a")
        self.conv1b = layers.Conv2D(filters, 3, padding="same", activation="relu", name="conv1b")
        self.pool1 = layers.MaxPooling2D()
        self.conv2a = layers.Conv2D(filters * 2, 3, padding="same", activation="relu", name="conv2a")
        self.conv2b = layers.Conv2D(filters * 2, 3, padding="same", activation="relu", name="conv2b")
        self.pool2 = layers.MaxPooling2D()
        self.flatten = layers.Flatten()
        self.hidden = layers.Dense(features, activation="relu", name="features")
        self.drop = layers.Dropout(dropout)
        self.logits = layers.Dense(10, name="logits")

    def call(self, images, training=False):
        x = self.pool1(self.conv1b(self.conv1a(images)))  # (batch, 14, 14, filters)
        x = self.pool2(self.conv2b(self.conv2a(x)))  # (batch, 7, 7, 2 * filters)
        features = self.hidden(self.flatten(x))  # (batch, features)
        return self.logits(self.drop(features, training=training)), features


def make_classifier(config: ClassifierConfig) -> DigitClassifier:
    """Creates the classifier and its variables (one call on a dummy batch), ready for load_weights."""
    model = DigitClassifier(config.filters, config.features, config.dropout, name="digit_classifier")
    model(tf.zeros((1, 28, 28, 1)))
    return model


class DigitJudge:
    """Plain-Python inference over the classifier: guesses, confidences and features for NumPy images."""

    def __init__(self, model, config: ClassifierConfig, accuracy: float | None = None):
        self.model = model
        self.config = config
        self.accuracy = accuracy
        self._run = parallel_batches(lambda images: model(images, training=False))  # trainers.common.threads

    def outputs(self, images, batch_size: int = 500):
        """(probabilities (n, 10), features (n, features)) as NumPy arrays, for images (n, 28, 28, 1) in [-1, 1]."""
        probabilities, features = [], []
        for start in range(0, len(images), batch_size):
            logits, feature = self._run(tf.constant(images[start:start + batch_size], dtype=tf.float32))
            probabilities.append(tf.nn.softmax(logits).numpy())
            features.append(feature.numpy())
        if not probabilities:
            return np.zeros((0, 10), np.float32), np.zeros((0, self.config.features), np.float32)
        return np.concatenate(probabilities), np.concatenate(features)

    def classify(self, images) -> tuple[list[int], list[float]]:
        """The guessed digit and the classifier's confidence in it, for each image."""
        probabilities, _ = self.outputs(images)
        guesses = probabilities.argmax(axis=1)
        return [int(g) for g in guesses], [float(p[g]) for p, g in zip(probabilities, guesses)]


def accuracy(judge: DigitJudge, images, labels) -> float:
    probabilities, _ = judge.outputs(images)
    return float(np.mean(probabilities.argmax(axis=1) == labels))


def train_classifier(train_images, train_labels, heldout_images, heldout_labels, epochs: int = 8,
                     batch_size: int = 128, learning_rate: float = 2e-3, seed: int = 0,
                     config: ClassifierConfig | None = None, stream=None, eager: bool = False) -> DigitJudge:
    """Trains the classifier with a GradientTape loop (shifted digits as augmentation); returns its judge."""
    from trainers.dcgan.data import labelled_dataset

    stream = stream or sys.stdout
    keras.utils.set_random_seed(seed)
    config = config or ClassifierConfig()
    model = make_classifier(config)
    steps = epochs * -(-len(train_labels) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(steps, 1), alpha=0.02)
    optimizer = keras.optimizers.Adam(schedule)
    dataset = labelled_dataset(train_images, train_labels, batch_size, seed=seed, augment=True)

    def train_step(images, labels):
        with tf.GradientTape() as tape:
            logits, _ = model(images, training=True)  # (batch, 10)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(gradients, model.trainable_variables)
        return loss

    step_function = train_step if eager else tf.function(train_step)
    judge = DigitJudge(model, config)
    started = time.monotonic()
    for epoch in range(1, epochs + 1):
        losses = [float(step_function(images, labels)) for images, labels in dataset]
        held = accuracy(judge, heldout_images, heldout_labels)
        stream.write(f"classifier epoch {epoch}/{epochs}: loss {sum(losses) / len(losses):.4f}, held-out accuracy "
                     f"{held:.4f} ({time.monotonic() - started:.0f} s)\n")
        stream.flush()
    judge.accuracy = held
    return judge


def save_classifier(folder: Path, judge: DigitJudge, extra: dict | None = None) -> None:
    """Writes classifier.json and classifier.weights.h5 into `folder` (an existing folder)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    judge.model.save_weights(str(folder / CLASSIFIER_WEIGHTS))
    checkpoint.write_json(folder / CLASSIFIER_CONFIG, {"config": dataclasses.asdict(judge.config),
                                                      "heldout_accuracy": judge.accuracy, **(extra or {})})


def load_classifier(folder: Path) -> DigitJudge:
    folder = checkpoint.require_folder(folder, (CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS))
    raw = checkpoint.read_json(folder / CLASSIFIER_CONFIG)
    try:
        config = ClassifierConfig(**raw["config"])
    except (KeyError, TypeError) as error:
        raise checkpoint.CheckpointError(f"{folder / CLASSIFIER_CONFIG} is not a classifier config: {error}")
    model = make_classifier(config)
    try:
        model.load_weights(str(folder / CLASSIFIER_WEIGHTS))
    except Exception as error:
        raise checkpoint.CheckpointError(f"the weights in {folder / CLASSIFIER_WEIGHTS} cannot be loaded: {error}")
    return DigitJudge(model, config, raw.get("heldout_accuracy"))


def main(argv=None) -> None:
    from trainers.common import cli
    from trainers.dcgan.data import load_digits

    parser = argparse.ArgumentParser(description="Train the digit classifier that judges the GAN.")
    parser.add_argument("--out", default="runs/dcgan/classifier", help="folder for the classifier files")
    parser.add_argument("--source", default="offline", help="offline or canonical")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 1 <= args.epochs <= 200:
        cli.fail(f"epochs must be between 1 and 200, got {args.epochs}")
    try:
        digits = load_digits(args.source, seed=args.seed)
    except (ValueError, RuntimeError) as error:
        cli.fail(str(error), status=1)
    judge = train_classifier(digits.train_images, digits.train_labels, digits.heldout_images,
                             digits.heldout_labels, epochs=args.epochs, seed=args.seed)
    save_classifier(Path(args.out), judge, {"data": digits.description, "epochs": args.epochs})
    verdict = "meets" if judge.accuracy >= REQUIRED_ACCURACY else "is BELOW"
    print(f"held-out accuracy {judge.accuracy:.4f} ({verdict} the {REQUIRED_ACCURACY:.0%} bar); saved in {args.out}")


if __name__ == "__main__":
    main()
