"""Captioning: encoder conversion, scene generator, feature cache, model, decoding, odd inputs, CLI and the tab."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, screenshot

SHIPPED_ENCODER = ROOT / "checkpoints" / "captioning" / "encoder.weights.h5"


def grace_hopper() -> Path:
    """A real photo that matplotlib (a runtime dependency) ships: Grace Hopper in uniform."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    from tests.tiny import captioning

    return captioning.make(tmp_path_factory.mktemp("tiny") / "captioning")


@pytest.fixture(scope="module")
def tiny_captioner(tiny_folder):
    from trainers.captioning.caption import Captioner

    return Captioner.load(tiny_folder)


# ---- the converted encoder -----------------------------------------------------------------------------------


def test_converted_mobilenet_recognises_a_real_photo():
    from trainers.captioning import encoder

    model = encoder.from_weights(SHIPPED_ENCODER, with_head=True)
    top = model.classify(encoder.load_image(grace_hopper()), top=5)
    classes = [index for index, _ in top]
    # ImageNet 652 = military uniform, 457 = bow tie, 834 = suit, 439 = bearskin: what MobileNet sees in her.
    assert classes[0] == 652 and top[0][1] > 0.5, top
    assert 457 in classes[:3] and 834 in classes, top
    features = model.features(encoder.load_image(grace_hopper())[None])
    assert features.shape == (1, 49, 1024) and features.min() >= 0  # ReLU6 outputs over the 7x7 locations


# ---- scenes ---------------------------------------------------------------------------------------------------


def _generators():
    from trainers.captioning import scenes

    kinds = [("synthetic", scenes.synthetic_sprites)]
    if not scenes.sources_available():
        kinds.append(("packaged", None))
    return kinds


@pytest.mark.parametrize("kind,source", _generators())
def test_scene_generator_is_deterministic(kind, source):
    from trainers.captioning.scenes import SceneGenerator

    first, second = SceneGenerator(3, source), SceneGenerator(3, source)
    for split, index in (("train", 0), ("train", 17), ("test", 5)):
        image_a, scene_a = first.scene(split, index)
        image_b, scene_b = second.scene(split, index)
        assert np.array_equal(image_a, image_b) and scene_a == scene_b
    assert not np.array_equal(first.scene("train", 1)[0], first.scene("train", 2)[0])
    assert SceneGenerator(4, source).scene("train", 0)[1] != first.scene("train", 0)[1] or \
        not np.array_equal(SceneGenerator(4, source).scene("train", 0)[0], first.scene("train", 0)[0])


def _centre(boxes):
    boxes = np.asarray(boxes, np.float32)
    return (boxes[:, 0] + boxes[:, 2]).mean() / 2, (boxes[:, 1] + boxes[:, 3]).mean() / 2


def test_captions_agree_with_what_was_placed():
    from trainers.captioning import scenes

    generator = scenes.SceneGenerator(0, scenes.synthetic_sprites)
    for split in ("train", "test"):
        for index in range(40):
            image, scene = generator.scene(split, index)
            assert image.shape == (224, 224, 3) and image.dtype == np.uint8
            groups = scene["groups"]
            assert len(scene["captions"]) == 4 and len(set(scene["captions"])) == 4  # several phrasings
            for group in groups:
                count = len(group["boxes"])
                assert group["count"] == count and 1 <= count <= 3
                noun = group["noun"] if count == 1 else scenes.CLASSES[group["noun"]][0]
                phrase = " ".join(filter(None, [scenes.COUNT_WORDS[count], group["size"], group["colour"], noun]))
                assert all(phrase in caption for caption in scene["captions"]), (phrase, scene["captions"])
                assert (group["colour"] is not None) == scenes.CLASSES[group["noun"]][1]
                low, high = scenes.SIZES[group["size"]]
                assert all(low <= box[2] - box[0] <= high for box in group["boxes"])
                # Something was drawn at each placed object: its box differs from a plain background.
                for x0, y0, x1, y1 in group["boxes"]:
                    patch = image[y0:y1, x0:x1].astype(np.float32)
                    assert patch.std() > 5
            if len(groups) == 2:
                (ax, ay), (bx, by) = _centre(groups[0]["boxes"]), _centre(groups[1]["boxes"])
                expected = {"left": ax < bx, "right": ax > bx, "above": ay < by, "below": ay > by}
                assert expected[scene["relation"]], scene
                words = scenes.RELATIONS[scene["relation"]][0]
                assert f" {words} " in scene["captions"][0]


def test_test_split_holds_out_unseen_object_pairs():
    from trainers.captioning import scenes

    generator = scenes.SceneGenerator(0, scenes.synthetic_sprites)
    held_out = generator.held_out
    assert 10 <= len(held_out) <= 60
    for index in range(150):
        _, scene = generator.scene("train", index)
        nouns = frozenset(group["noun"] for group in scene["groups"])
        assert len(nouns) < 2 or nouns not in held_out
    for index in range(30):
        _, scene = generator.scene("test", index)
        assert frozenset(group["noun"] for group in scene["groups"]) in held_out


# ---- feature cache --------------------------------------------------------------------------------------------


class CountingEncoder:
    """Wraps an encoder and counts the images it encodes."""

    def __init__(self, inner):
        self.inner, self.encoded = inner, 0
        self.locations, self.depth = inner.locations, inner.depth

    def features(self, images, batch_size=32):
        self.encoded += len(images)
        return self.inner.features(images, batch_size)


def test_feature_cache_is_computed_once_and_resumed(tmp_path):
    from trainers.captioning import data, encoder as encoder_module, scenes

    counting = CountingEncoder(encoder_module.tiny_random(depth=8))
    build = lambda count: data.build_scene_split(tmp_path, "val", count, 0, counting, "tiny", batch_size=4,  # noqa
                                                 log=lambda _: None, sprite_source=scenes.synthetic_sprites)
    build(10)
    assert counting.encoded == 10
    features, records = data.load_split(tmp_path, "val")
    first = np.array(features)
    build(10)
    build(6)  # a smaller count is served by the same cache
    assert counting.encoded == 10
    # An interrupted build (only 4 done) resumes and encodes just the rest, with the same result.
    manifest = json.loads((tmp_path / "val" / "manifest.json").read_text())
    (tmp_path / "val" / "manifest.json").write_text(json.dumps({**manifest, "done": 4}))
    build(10)
    assert counting.encoded == 16
    again, records_again = data.load_split(tmp_path, "val")
    np.testing.assert_array_equal(np.array(again), first)
    assert records_again == records and len(records) == 10 and features.shape == (10, 49, 8)
    # Another encoder fingerprint invalidates the cache.
    data.build_scene_split(tmp_path, "val", 10, 0, counting, "another", batch_size=5, log=lambda _: None,
                           sprite_source=scenes.synthetic_sprites)
    assert counting.encoded == 26


def test_the_photo_cache_is_rebuilt_when_the_backgrounds_change(tmp_path):
    """A cache of photo-like pictures drawn on gradients (no wallpaper package installed) is not served once
    background files exist: the manifest names the background files."""
    from PIL import Image

    from trainers.captioning import data, encoder as encoder_module, photos

    counting = CountingEncoder(encoder_module.tiny_random(depth=8))
    walls = []
    for index, colour in enumerate([(40, 90, 30), (120, 150, 200)]):
        walls.append(tmp_path / f"wall{index}.jpg")
        Image.new("RGB", (300, 300), colour).save(walls[-1])

    def build(backgrounds):
        return data.build_photos({"val": 4}, 0, counting, "tiny", str(tmp_path / "cache"), log=lambda _: None,
                                 sprite_source=photos.synthetic_photo_sprites, backgrounds=backgrounds)

    root = build([])
    assert counting.encoded == 4 and "backgrounds-gradients" in (root / "val" / "manifest.json").read_text()
    build([])
    assert counting.encoded == 4, "the same (no) backgrounds: the cache serves"
    build(walls)
    assert counting.encoded == 8, "background files appeared: the pictures are drawn again"
    build(walls)
    assert counting.encoded == 8


# ---- model and decoding ---------------------------------------------------------------------------------------


def test_attention_weights_sum_to_one_over_locations(tiny_captioner):
    features = np.random.default_rng(0).random((3, 49, 16)).astype(np.float32)
    ids = np.array([[1, 5, 6, 7], [1, 8, 2, 0], [1, 2, 0, 0]], np.int32)
    logits, attention = tiny_captioner.model(features, ids)
    assert tuple(logits.shape) == (3, 4, tiny_captioner.vocabulary.size)
    attention = np.asarray(attention)
    assert attention.shape == (3, 4, 49) and (attention >= 0).all()
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-5)
    result = tiny_captioner.caption(np.zeros((40, 30, 3), np.uint8), beam=2)
    assert len(result["attention"]) == len(result["words"])
    for grid in result["attention"]:
        assert np.asarray(grid).shape == (7, 7) and abs(np.sum(grid) - 1) < 1e-4


def test_beam_width_one_equals_greedy(tiny_captioner):
    features = np.random.default_rng(1).random((4, 49, 16)).astype(np.float32) * 3
    greedy = tiny_captioner.greedy_ids(features)
    for row in range(4):
        ids, attention, _ = tiny_captioner.beam_ids(features[row], beam=1)
        assert ids == greedy[row][0]
        np.testing.assert_allclose(attention, greedy[row][1], atol=1e-6)


def test_checkpoint_round_trip_and_training_lowers_the_loss(tiny_folder, tiny_captioner, tmp_path):
    import keras

    from trainers.captioning import data
    from trainers.captioning.caption import Captioner
    from trainers.captioning.model import save
    from trainers.captioning.train import make_train_step
    from trainers.common import checkpoint
    from trainers.common.seq2seq import masked_loss

    features = np.random.default_rng(2).normal(0, 2, (4, 49, 16)).astype(np.float32)
    captions = ["a big red car to the left of two small dogs", "a small cat above a big tree",
                "there is a big blue ball", "a picture of three small apples"]
    ids = np.array([tiny_captioner.vocabulary.encode(caption, 14) for caption in captions], np.int32)
    model = tiny_captioner.model
    before = float(masked_loss(ids[:, 1:], model(features, ids[:, :-1])[0]))
    step = make_train_step(model, keras.optimizers.Adam(1e-2), clip_norm=5.0, eager=False)
    for _ in range(150):
        step(features, ids[:, :-1], ids[:, 1:])
    after = float(masked_loss(ids[:, 1:], model(features, ids[:, :-1])[0]))
    assert after < before * 0.5, (before, after)
    # Memorised: greedy decoding reproduces the training captions.
    decoded = [" ".join(tiny_captioner.vocabulary.decode(row))
               for row, _ in tiny_captioner.greedy_ids(features, max_len=14)]
    assert decoded == captions
    # Save -> load gives identical outputs.
    config = checkpoint.read_json(tiny_folder / "config.json")
    saved = save(tmp_path / "saved", model, tiny_captioner.vocabulary, config, tiny_folder / "encoder.weights.h5",
                 metrics={"model": "captioning"})
    assert sorted(path.name for path in saved.iterdir()) == ["config.json", "encoder.weights.h5", "metrics.json",
                                                              "model.weights.h5", "vocab.json"]
    assert checkpoint.read_json(saved / "config.json") == config
    loaded = Captioner.load(saved)
    np.testing.assert_allclose(np.asarray(loaded.model(features, ids[:, :-1])[0]),
                               np.asarray(model(features, ids[:, :-1])[0]), atol=1e-5)
    from trainers.captioning.encoder import load_image

    picture = load_image(np.random.default_rng(3).integers(0, 255, (64, 80, 3), dtype=np.uint8))
    np.testing.assert_allclose(loaded.encoder.features(picture[None]), tiny_captioner.encoder.features(picture[None]))
    assert data.CaptionVocabulary.load(saved / "vocab.json").words == tiny_captioner.vocabulary.words


# ---- odd inputs -----------------------------------------------------------------------------------------------


def odd_files(folder: Path) -> dict[str, Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    files = {}
    rgba = Image.fromarray(rng.integers(0, 255, (60, 90, 4), dtype=np.uint8), "RGBA")
    files["rgba"] = folder / "rgba.png"
    rgba.save(files["rgba"])
    files["grey"] = folder / "grey.png"
    Image.fromarray(rng.integers(0, 255, (50, 50), dtype=np.uint8), "L").save(files["grey"])
    files["tiny"] = folder / "one_pixel.gif"
    Image.new("P", (1, 1), 3).save(files["tiny"])
    files["huge"] = folder / "huge.jpg"
    Image.new("RGB", (8000, 8000), (30, 140, 60)).save(files["huge"], quality=70)
    files["text"] = folder / "notes.png"
    files["text"].write_text("this is not a picture\n")
    files["empty"] = folder / "empty.jpg"
    files["empty"].write_bytes(b"")
    return files


def test_odd_image_inputs(tmp_path, tiny_captioner):
    import time

    from trainers.captioning.encoder import ImageError, load_image

    files = odd_files(tmp_path)
    for name in ("rgba", "grey", "tiny", "huge"):
        started = time.monotonic()
        pixels = load_image(files[name])
        assert pixels.shape == (224, 224, 3) and pixels.dtype == np.uint8, name
        assert time.monotonic() - started < 5, name
        assert tiny_captioner.caption(files[name])["words"] is not None
    huge = load_image(files["huge"]).astype(int)  # a flat JPEG: its colour survives, within JPEG rounding
    assert (np.abs(huge - np.array([30, 140, 60])) <= 8).all(axis=-1).mean() > 0.95
    transparent = np.zeros((10, 10, 4), np.uint8)
    assert (load_image(transparent) == 255).all()  # fully transparent is white
    for name in ("text", "empty"):
        with pytest.raises(ImageError, match="is not a picture that can be read"):
            load_image(files[name])
    with pytest.raises(ImageError, match="there is no file"):
        load_image(tmp_path / "missing.png")


# ---- command lines --------------------------------------------------------------------------------------------


def run(args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          **kwargs)


def test_caption_cli(tiny_folder, tmp_path):
    files = odd_files(tmp_path)
    result = run(["-m", "trainers.captioning.caption", str(files["rgba"]), "--beam", "2", "--json",
                  "--checkpoint", str(tiny_folder)])
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["caption"] == " ".join(output["words"]) and len(output["attention"]) == len(output["words"])
    bad = run(["-m", "trainers.captioning.caption", str(files["text"]), "--checkpoint", str(tiny_folder)])
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "notes.png is not a picture" in bad.stderr
    beam = run(["-m", "trainers.captioning.caption", str(files["rgba"]), "--beam", "0"])
    assert beam.returncode == 2 and "--beam must be between 1 and 20" in beam.stderr


def test_train_cli_rejects_bad_settings():
    result = run(["-m", "trainers.captioning.train", "--epochs", "0", "--batch-size", "-3"])
    assert result.returncode == 2
    # One line of error, the last one, no traceback (TensorFlow's own import log lines may come before it).
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and sum(line.startswith("error") for line in lines) == 1
    assert "Traceback" not in result.stderr
    assert "epochs must be greater than zero" in result.stderr and "batch-size" in result.stderr
    from trainers.captioning import config

    assert set(config.SOURCES) == {"offline", "canonical"} and config.RUN_CHECKPOINT == "checkpoint"
    assert all(hasattr(config.TrainConfig(), name) for name in config.MAIN_SETTINGS)
    defaults = config.TrainConfig()
    assert (defaults.epochs, defaults.train_images, defaults.batch_size, defaults.learning_rate,
            defaults.precision) == (9, 4000, 64, 2e-3, "float32")
    assert (defaults.photo_train_images, defaults.photo_val_images, defaults.photo_test_images) == (7000, 400, 400)
    assert Path(defaults.encoder_weights) == SHIPPED_ENCODER and defaults.validate() == []
    assert any("dropout" in problem for problem in config.TrainConfig(dropout=2.0).validate())
    assert any("strategy" in problem for problem in config.TrainConfig(strategy="everywhere").validate())
    # The app imports the settings to build its form: no TensorFlow.
    check = run(["-c", "import sys, trainers.captioning.config; assert 'tensorflow' not in sys.modules"])
    assert check.returncode == 0, check.stderr


# ---- a training run on the run core (tiny: a random CNN encoder, synthetic sprites) ---------------------------


def tiny_run_config(tmp_path, out: str, **changes):
    from trainers.captioning.config import TrainConfig

    settings = dict(out=str(tmp_path / out), cache_dir=str(tmp_path / "cache"), epochs=2, train_images=16,
                    val_images=4, test_images=4, photo_train_images=8, photo_val_images=4, photo_test_images=4,
                    batch_size=8, embedding_dim=8, units=16, attention_units=8,
                    steps_per_epoch=3, log_every=1, learning_rate=1e-2)
    return TrainConfig(**{**settings, **changes})


def tiny_recipe(config):
    """The captioning recipe with a tiny random encoder and synthetic sprites (no MobileNet, no picture packages)."""
    import io

    from trainers.captioning import encoder as encoder_module, scenes
    from trainers.captioning.train import CaptioningRecipe

    class TinyRecipe(CaptioningRecipe):
        sprite_source = staticmethod(scenes.synthetic_sprites)

        def offline_encoder(self):
            encoder = encoder_module.tiny_random(seed=0, depth=8)
            path = Path(self.config.cache_dir) / encoder_module.ENCODER_WEIGHTS_FILE
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                encoder.feature_model.save_weights(str(path))
            return encoder, path, encoder_module.spec_for(encoder, "tiny_random", seed=0)

    return TinyRecipe(config, io.StringIO())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Two epochs of a tiny run, then the same run resumed for a third."""
    from trainers.common import run

    folder = tmp_path_factory.mktemp("captioning-run")
    run.fit(tiny_recipe(tiny_run_config(folder, "out")))
    recipe = tiny_recipe(tiny_run_config(folder, "out", epochs=3))
    metrics = run.fit(recipe)
    return folder, recipe, metrics


def test_training_run_resumes_and_serves_the_last_epoch(tiny_run):
    from trainers.captioning.caption import Captioner
    from trainers.captioning.train import evaluate
    from trainers.common.progress import read_events

    folder, recipe, metrics = tiny_run
    out = folder / "out"
    events = read_events(out)
    assert [e["resumed_from_epoch"] for e in events if e["event"] == "start"] == [0, 2]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert all(0 <= e["train_accuracy"] <= 1 and np.isfinite(e["train_loss"]) and "val_bleu4" in e
               and "test_object_recall" in e for e in epochs)
    samples = [e for e in events if e["event"] == "sample"]
    assert len(samples) == 3 and all(len(e["rows"]) == 4 and e["images"] for e in samples)
    # The resume state lives in <out>/resume; the servable folder holds only what the app loads.
    state = json.loads((out / "resume" / "state.json").read_text())
    assert state["epoch"] == 3 and state["step"] == 9 and len(state["history"]) == 3
    servable = out / "checkpoint"
    assert sorted(path.name for path in servable.iterdir()) == ["config.json", "encoder.weights.h5", "examples",
                                                                "metrics.json", "model.weights.h5", "novelty.npz",
                                                                "vocab.json"]
    # The photo-like pictures joined the training split and were scored on their own held-out splits.
    assert len(recipe.train_records) == 16 + 8 and "photo_val_bleu4" in epochs[-1]
    assert "photo_test_object_recall" in metrics and "photo-like pictures" in metrics["data"]
    assert len(list((servable / "examples").glob("photo_test_*.jpg"))) == 4
    assert len(list((servable / "examples").glob("test_*.jpg"))) == 8
    stored = json.loads((servable / "config.json").read_text())
    assert stored == recipe.model_config() and stored["max_len"] == 16 and stored["source"] == "offline"
    assert metrics == json.loads((servable / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["steps"] == 9
    assert [row["epoch"] for row in metrics["history"]] == [1, 2, 3]
    assert metrics["bleu4"] == epochs[-1]["test_bleu4"] and metrics["val_bleu4"] == epochs[-1]["val_bleu4"]
    # What is served is the last epoch's model: it captions the test split exactly as the run scored it.
    served = Captioner.load(servable)
    assert evaluate(served, recipe.test_features, recipe.test_records)["captions"] == recipe.test["captions"]
    assert served.novelty is not None and served.novelty.centroids.shape[1] == 8


def test_init_from_a_servable_folder_continues_its_epochs(tiny_run):
    from trainers.common import run
    from trainers.common.progress import read_events

    folder, _, _ = tiny_run
    servable = folder / "out" / "checkpoint"
    with pytest.raises(run.RunError, match="another shape"):
        run.fit(tiny_recipe(tiny_run_config(folder, "wider", epochs=4, units=32, init_from=str(servable))))
    with pytest.raises(run.RunError, match="already trained 3 epochs"):
        run.fit(tiny_recipe(tiny_run_config(folder, "again", epochs=3, init_from=str(servable))))
    metrics = run.fit(tiny_recipe(tiny_run_config(folder, "further", epochs=4, init_from=str(servable))))
    assert metrics["epochs"] == 4 and metrics["steps"] == 12
    starts = [e for e in read_events(folder / "further") if e["event"] == "start"]
    assert [e["resumed_from_epoch"] for e in starts] == [3]
    assert json.loads((folder / "further" / "checkpoint" / "vocab.json").read_text()) == \
        json.loads((servable / "vocab.json").read_text())


# ---- the app --------------------------------------------------------------------------------------------------


def test_caption_endpoint(client, tmp_path):
    from gradio_client import handle_file

    files = odd_files(tmp_path)
    caption, words, focus, gallery, details, boxes, notes = client.predict(handle_file(str(files["rgba"])), 2,
                                                                           api_name="/caption")
    # New outputs: the picture with the detector's boxes, and the notes (detector, ImageNet top-3, novelty).
    assert Path(boxes).is_file() and "detector" in notes
    assert isinstance(details["detections"], list) and details["detector"]
    # A picture the detector finds nothing in is still captioned, and the notes say so.
    from PIL import Image

    from trainers.captioning import detector

    flat = tmp_path / "flat.png"
    Image.new("RGB", (64, 48), (128, 128, 128)).save(flat)
    nothing = client.predict(handle_file(str(flat)), 1, api_name="/caption")
    assert nothing[0] and nothing[4]["detections"] == []
    assert ("finds nothing" in nothing[6]) if detector.unavailable() is None else ("not installed" in nothing[6])
    assert caption == details["caption"] and details["words"] and caption == " ".join(details["words"])
    assert len(gallery) == len(details["words"]) and Path(focus).is_file()
    assert np.asarray(details["attention"]).shape == (len(details["words"]), 7, 7)
    for name in ("grey", "tiny", "huge"):
        assert client.predict(handle_file(str(files[name])), 1, api_name="/caption")[0]
    with pytest.raises(Exception, match="cannot be read as a picture"):
        client.predict(handle_file(str(files["text"])), 1, api_name="/caption")


def test_caption_tab_in_the_browser(page, tmp_path):
    from PIL import Image

    picture = tmp_path / "upload.png"
    Image.fromarray(np.random.default_rng(5).integers(0, 255, (120, 180, 4), dtype=np.uint8), "RGBA").save(picture)
    page.get_by_role("tab", name="Caption").click()
    page.locator("#caption-upload input[type=file]").set_input_files(str(picture))
    page.wait_for_timeout(1000)
    page.locator("#caption-run").click()
    page.wait_for_selector("#caption-gallery img", timeout=60000)
    caption = page.locator("#caption-text textarea").input_value()
    assert caption and caption != "(empty caption)"
    words = page.locator("#caption-words label")
    assert words.count() == len(caption.split())
    words.nth(words.count() - 1).click()
    page.wait_for_timeout(800)
    assert page.locator("#caption-focus img").count() == 1
    assert page.locator("#caption-detections img").count() == 1
    assert "detector" in page.locator("#caption-notes").inner_text()
    screenshot(page, "caption_tab")
    # A held-out example picture, one click away.
    page.locator("#caption-examples button").first.click()
    page.wait_for_timeout(1500)
    page.locator("#caption-run").click()
    page.wait_for_timeout(1000)
    page.wait_for_selector("#caption-gallery img", timeout=60000)
    screenshot(page, "caption_tab_example")
    # A text file renamed .png gets a sentence, not a stack trace.
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    clear = page.locator("#caption-upload button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.locator("#caption-upload input[type=file]").set_input_files(str(bad))
    page.wait_for_timeout(1000)
    page.locator("#caption-run").click()
    page.wait_for_selector("text=cannot be read as a picture", timeout=30000)
    screenshot(page, "caption_tab_bad_file")


def test_fit_takes_every_epoch_without_tf_data_autotuning(tmp_path, monkeypatch):
    """run.fit iterates run.epoch_dataset(recipe, epoch): with autotuning on, destroying an epoch's iterator waited
    7-21 s for a tf.data thread at some epoch starts (the translator's, the captioner's and the DCGAN's quick looks)."""
    from trainers.common import run

    seen = []
    original = run.epoch_dataset

    def recording(recipe, epoch):
        dataset = original(recipe, epoch)
        seen.append((epoch, dataset.options().autotune.enabled))
        return dataset

    monkeypatch.setattr(run, "epoch_dataset", recording)
    run.fit(tiny_recipe(tiny_run_config(tmp_path, "out")))
    assert seen == [(1, False), (2, False)]
