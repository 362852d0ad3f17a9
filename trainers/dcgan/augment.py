"""Differentiable augmentation for the discriminator (DiffAugment, Zhao et al. 2020).

A GAN trained on few images (here 9,000 digits) lets its discriminator memorise them; its verdicts then stop
guiding the generator. DiffAugment shows the discriminator every image, real and generated, randomly
shifted and with a square cut out. The same random transforms apply to both kinds of image and are
differentiable, so the generator gets gradients through them and is not taught to draw shifted or cut digits.

    augment = make_augment("translation,cutout", rng)
    logits = discriminator(augment(images), training=True)
"""

from __future__ import annotations

POLICIES = ("translation", "cutout")
BACKGROUND = -1.0  # the pixel value of an empty MNIST background in [-1, 1]


def parse_policy(policy: str) -> list[str]:
    """'translation,cutout' -> ['translation', 'cutout']; raises ValueError on an unknown name."""
    names = [name.strip() for name in policy.split(",") if name.strip()]
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(unknown)}; choose from {', '.join(POLICIES)}")
    return names


def translate(images, rng, shift: int):
    """Each image moved by its own random whole-pixel offset in [-shift, shift] on both axes; the uncovered
    border is background. images: (batch, height, width, channels)."""
    import tensorflow as tf

    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    offset_y = rng.uniform((batch, 1), -shift, shift + 1, dtype=tf.int32)
    offset_x = rng.uniform((batch, 1), -shift, shift + 1, dtype=tf.int32)
    padded = tf.pad(images, [[0, 0], [shift, shift], [shift, shift], [0, 0]], constant_values=BACKGROUND)
    rows = tf.range(height)[None, :] + shift + offset_y  # (batch, height): the padded rows each image keeps
    columns = tf.range(width)[None, :] + shift + offset_x  # (batch, width)
    shifted = tf.gather(padded, rows, axis=1, batch_dims=1)  # (batch, height, width + 2 shift, channels)
    return tf.gather(shifted, columns, axis=2, batch_dims=1)  # (batch, height, width, channels)


def cutout(images, rng, size: int):
    """Each image with a size x size square, at a random place (it may overhang the edge), set to background."""
    import tensorflow as tf

    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    centre_y = rng.uniform((batch, 1, 1), 0, height, dtype=tf.int32)
    centre_x = rng.uniform((batch, 1, 1), 0, width, dtype=tf.int32)
    rows = tf.range(height)[None, :, None] - centre_y + size // 2  # (batch, height, 1): 0..size-1 inside the hole
    columns = tf.range(width)[None, None, :] - centre_x + size // 2  # (batch, 1, width)
    inside_y = tf.logical_and(rows >= 0, rows < size)
    inside_x = tf.logical_and(columns >= 0, columns < size)
    hole = tf.cast(tf.logical_and(inside_y, inside_x), images.dtype)[..., None]  # (batch, height, width, 1)
    return images * (1.0 - hole) + BACKGROUND * hole


def make_augment(policy: str, rng, shift: int = 2, cut: int = 8):
    """A function images -> augmented images for the policy ('' gives the identity). `rng`: a
    tf.random.Generator, so that a run's augmentations are repeatable."""
    names = parse_policy(policy)

    def augment(images):
        for name in names:
            images = translate(images, rng, shift) if name == "translation" else cutout(images, rng, cut)
        return images

    return augment
