"""Captioning on real photos: the photo-like picture generator, the COCO detector wrapper, the novelty index, the
real-photo evaluation (manifest and scores on tiny sets) and the tab's notes."""

from __future__ import annotations

import json

import numpy as np
import pytest


# ---- photo-like pictures ----------------------------------------------------------------------------------------


def _generator(seed=0):
    from trainers.captioning import photos

    return photos.PhotoGenerator(seed, photos.synthetic_photo_sprites, backgrounds=[])


def test_photo_generator_is_deterministic_and_captions_what_it_placed():
    from trainers.captioning import photos, scenes

    first, second = _generator(), _generator()
    styles = set()
    table = photos.noun_table()
    for split in ("train", "val"):
        for index in range(40):
            image_a, record_a = first.scene(split, index)
            image_b, record_b = second.scene(split, index)
            assert np.array_equal(image_a, image_b) and record_a == record_b
            assert image_a.shape == (224, 224, 3) and image_a.dtype == np.uint8
            styles.add(record_a["style"])
            captions = record_a["captions"]
            assert len(captions) == 4 and len(set(captions)) == 4
            named = {table[word] for word in captions[0].split() if word in table}
            assert named == {group["noun"] for group in record_a["groups"]}, record_a
            for group in record_a["groups"]:
                assert group["colour"] is None and group["count"] == len(group["boxes"]) >= 1
            if record_a["style"] == "close-up":  # fills the frame
                x0, y0, x1, y1 = record_a["groups"][0]["boxes"][0]
                assert max(x1 - x0, y1 - y0) >= 0.8 * 224 and record_a["groups"][0]["size"] == "big"
            if record_a["relation"]:
                words = scenes.RELATIONS[record_a["relation"]][0]
                assert f" {words} " in captions[0]
    assert styles == {"close-up", "single", "pair"}
    assert not np.array_equal(first.scene("train", 1)[0], first.scene("train", 2)[0])


def test_photo_pairs_keep_the_composed_test_pairs_unseen():
    from trainers.captioning import scenes

    generator = _generator()
    held_out = scenes.held_out_pairs(0)
    for index in range(200):
        _, record = generator.scene("train", index)
        nouns = frozenset(group["noun"] for group in record["groups"])
        assert len(nouns) < 2 or nouns not in held_out


def test_backgrounds_are_split_into_training_and_held_out(tmp_path):
    from PIL import Image

    from trainers.captioning import photos

    files = []
    for index in range(12):
        path = tmp_path / f"background{index}.jpg"
        Image.fromarray(np.full((300, 400, 3), 20 * index, np.uint8)).save(path)
        files.append(path)
    generator = photos.PhotoGenerator(0, photos.synthetic_photo_sprites, backgrounds=files)
    assert generator.heldout_backgrounds and generator.train_backgrounds
    assert not set(generator.heldout_backgrounds) & set(generator.train_backgrounds)
    assert all(photos.held_out_background(path) for path in generator.heldout_backgrounds) or \
        len(generator.heldout_backgrounds) == 1
    image, _ = generator.scene("val", 3)
    assert image.shape == (224, 224, 3)


def test_every_class_has_pictures_in_the_packages():
    from trainers.captioning import photos, scenes

    if scenes.sources_available():
        pytest.skip("the picture packages are not installed")
    for noun in photos.nouns():
        stamps, emoji = photos.photo_sprites(noun)
        assert stamps or emoji, noun
    assert photos.background_files(), "no photographic backgrounds (apt-get install mate-backgrounds)"


def test_novelty_index_flags_features_far_from_training(tmp_path):
    from trainers.captioning import novelty

    rng = np.random.default_rng(0)
    centres = rng.random((4, 32)).astype(np.float32) * 5
    train = np.stack([centres[i % 4] + rng.normal(0, 0.2, (49, 32)) for i in range(200)]).astype(np.float32)
    val = np.stack([centres[i % 4] + rng.normal(0, 0.2, (49, 32)) for i in range(50)]).astype(np.float32)
    index = novelty.NoveltyIndex.fit(np.abs(train), [np.abs(val)], clusters=8)
    assert 0 <= index.threshold < 0.2
    near = index.judge(np.abs(val[0]))
    far_features = np.zeros((49, 32), np.float32)
    far_features[:, 0] = 1.0  # points along one axis: unlike any training picture
    far = index.judge(far_features)
    assert not near["unfamiliar"] and far["unfamiliar"] and far["distance"] > near["distance"]
    index.save(tmp_path / novelty.NOVELTY_FILE)
    loaded = novelty.NoveltyIndex.load(tmp_path / novelty.NOVELTY_FILE)
    assert loaded.judge(far_features)["unfamiliar"] and abs(loaded.threshold - index.threshold) < 1e-6
    assert novelty.NoveltyIndex.load(tmp_path / "missing.npz") is None


# ---- the COCO detector --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def coco_detector():
    from trainers.captioning import detector

    if detector.unavailable():
        pytest.skip(detector.unavailable())
    return detector.Detector.load()


def test_detector_on_a_tiny_image(coco_detector):
    from trainers.captioning import detector

    flat = np.full((8, 12, 3), 127, np.uint8)
    found = coco_detector.detect(flat)
    assert found == []  # a grey square holds nothing
    drawn = detector.draw(flat, [{"label": "cat", "score": 0.9, "box": [1, 1, 6, 6]}])
    assert drawn.shape == flat.shape and not np.array_equal(drawn, flat)
    with pytest.raises(ValueError, match="RGB picture"):
        coco_detector.detect(np.zeros((8, 8), np.uint8))


def test_detector_finds_the_person_in_a_real_photo(coco_detector):
    import matplotlib

    from trainers.captioning.encoder import open_picture

    path = f"{matplotlib.get_data_path()}/sample_data/grace_hopper.jpg"
    found = coco_detector.detect(np.asarray(open_picture(path, size=640)))
    assert found and found[0]["label"] == "person" and found[0]["score"] > 0.7
    x0, y0, x1, y1 = found[0]["box"]
    assert 0 <= x0 < x1 and 0 <= y0 < y1


def test_detector_session_finds_what_the_graph_as_a_function_finds(coco_detector):
    """The detector runs its frozen graph in a session without Grappler's rewrites (a first call 4x faster): the
    same boxes, scores and classes as the graph imported into a TF 2 function, with TensorFlow's defaults."""
    import matplotlib
    import tensorflow as tf

    from trainers.captioning import detector
    from trainers.captioning.encoder import open_picture

    picture = np.asarray(open_picture(f"{matplotlib.get_data_path()}/sample_data/grace_hopper.jpg", size=448))
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(coco_detector.path.read_bytes())
    function = tf.compat.v1.wrap_function(
        lambda image: tf.compat.v1.import_graph_def(graph_def, name="", input_map={"image_tensor:0": image},
                                                    return_elements=list(detector.OUTPUTS)),
        [tf.TensorSpec((1, None, None, 3), tf.uint8)])
    expected = [value.numpy() for value in function(tf.constant(picture[None]))]
    found = coco_detector._session.run(coco_detector._outputs, {coco_detector._image: picture[None]})
    assert int(found[3][0]) == int(expected[3][0]) >= 1
    np.testing.assert_array_equal(found[2], expected[2])  # the same classes in the same order
    np.testing.assert_allclose(found[1], expected[1], atol=1e-5)
    np.testing.assert_allclose(found[0], expected[0], atol=1e-5)


def test_detector_absent_gives_a_sentence(monkeypatch):
    from trainers.captioning import detector

    monkeypatch.setattr(detector, "graph_path", lambda: None)
    assert "not installed" in detector.unavailable() and detector.Detector.load() is None


# ---- the real-photo evaluation --------------------------------------------------------------------------------------


def test_real_photo_manifest_reads_installed_packages():
    from trainers.captioning import photos, realphotos

    entries = realphotos.load_manifest()
    assert 12 <= len(entries) <= 20
    nouns = set(photos.nouns())
    for entry in entries:
        assert entry["main"] and set(entry["main"]) <= nouns and set(entry["also"]) <= nouns, entry
    matplotlib_photos = [entry for entry in entries if entry["package"] == "matplotlib"]
    assert matplotlib_photos and all(entry["file"] for entry in matplotlib_photos)  # a runtime dependency


def test_real_photo_scores_on_a_tiny_set():
    from trainers.captioning import realphotos

    rows = [{"main": ["cat"], "also": [], "words": "a big cat".split()},
            {"main": ["cup"], "also": ["tree"], "words": "a big tree above two small dogs".split()},
            {"main": ["person"], "also": [], "words": "there are two big people".split()},
            {"main": ["gift"], "also": [], "words": []}]
    scores = realphotos.score(rows)
    assert scores["main_object_named"] == 2 and scores["main_object_named_rate"] == 0.5
    # Named: cat (right), tree (there), dog (not there), person (right): 3 of 4.
    assert scores["objects_named"] == 4 and scores["objects_right"] == 3 and scores["object_precision"] == 0.75


def test_real_photo_evaluation_runs_on_a_tiny_checkpoint(tmp_path):
    from tests.tiny import captioning as tiny
    from trainers.captioning import realphotos
    from trainers.captioning.caption import Captioner

    captioner = Captioner.load(tiny.make(tmp_path / "captioning"))
    entries = [entry for entry in realphotos.load_manifest() if entry["package"] == "matplotlib"]
    results = realphotos.evaluate(captioner, entries, beam=1)
    assert results["photos"] == len(entries) and len(results["rows"]) == len(entries)
    assert 0 <= results["main_object_named_rate"] <= 1
    json.dumps(results)  # plain Python all the way
    # --write records them beside the checkpoint's scores, per photo with its title, for the tab to quote.
    folder = tmp_path / "captioning"
    assert realphotos.write_metrics(folder, results) == "real_photos_beam1"
    written = json.loads((folder / "metrics.json").read_text())["real_photos_beam1"]
    assert written["photos"] == len(entries) and "rows" not in written
    assert [row["title"] for row in written["photos_scored"]] == [entry["title"] for entry in entries]
    assert [row["caption"] for row in written["photos_scored"]] == [row["caption"] for row in results["rows"]]


# ---- the tab's notes ------------------------------------------------------------------------------------------


def test_tab_notes_say_what_was_found_and_when_a_picture_is_unfamiliar():
    from playground import caption_tab

    result = {"imagenet_top3": [{"label": "tabby", "probability": 0.5}],
              "novelty": {"distance": 0.4, "threshold": 0.2, "unfamiliar": True}}
    text = caption_tab.notes(result, [], None)
    assert "finds nothing" in text and "unlike the pictures" in text and "tabby 0.50" in text
    familiar = {**result, "novelty": {"distance": 0.1, "threshold": 0.2, "unfamiliar": False}}
    text = caption_tab.notes(familiar, [{"label": "cat", "score": 0.91, "box": [0, 0, 1, 1]}], None)
    assert "cat 0.91" in text and "unlike" not in text
    assert "not installed" in caption_tab.notes(familiar, [], "The object detector is not installed (pip ...).")
