"""Detector-informed decoding (trainers/captioning/fusion.py): the mapping table, the bias, abstention, and the
captioner with fake detections. Tiny and offline: fake detections, the tiny random checkpoint of tests/tiny."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from trainers.captioning import fusion


def test_mapping_covers_only_vocabulary_nouns_and_detector_labels():
    from trainers.captioning import photos
    from trainers.captioning.detector import COCO_LABELS

    assert set(fusion.NOUN_TO_COCO) <= set(photos.nouns())
    assert {label for labels in fusion.NOUN_TO_COCO.values() for label in labels} <= set(COCO_LABELS.values())
    # Nouns COCO has no class for are left out rather than mapped to a near miss.
    assert not {"rabbit", "guitar", "fish", "rocket", "coin", "gift", "hat"} & set(fusion.NOUN_TO_COCO)


def test_mapping_nouns_are_in_the_shipped_vocabulary():
    from pathlib import Path

    vocab = Path(__file__).resolve().parents[1] / "checkpoints" / "captioning" / "vocab.json"
    if not vocab.is_file():
        pytest.skip("no shipped captioning checkpoint")
    words = set(json.loads(vocab.read_text())["words"])
    assert set(fusion.NOUN_TO_COCO) <= words


def test_bias_rewards_the_detected_noun_and_penalises_the_others():
    config = fusion.FusionConfig(support_weight=2.0, mapped_weight=3.0, unmapped_weight=1.0, min_score=0.4)
    detections = [{"label": "cat", "score": 0.9}, {"label": "bowl", "score": 0.3}]
    bias = fusion.noun_bias(detections, config, ["cat", "rabbit", "motorcycle"])
    assert bias["cat"] == pytest.approx(1.8)
    assert bias["motorcycle"] == pytest.approx(-2.7)  # the detector knows motorcycles and saw none
    assert bias["rabbit"] == pytest.approx(-0.9)  # COCO has no rabbit: the weaker penalty
    assert fusion.noun_bias([], config, ["cat"]) == {}
    assert fusion.noun_bias([{"label": "cat", "score": 0.35}], config, ["cat"]) == {}  # below min_score
    # Owls, ducks and penguins are all supported by a COCO "bird".
    assert set(fusion.noun_support([{"label": "bird", "score": 0.7}], 0.4)) == {"owl", "duck", "penguin"}


def test_bias_vector_gives_singular_and_plural_the_same_bias_and_stays_a_distribution():
    words = ["<pad>", "a", "cat", "cats", "dog"]
    noun_of = {"cat": "cat", "cats": "cat", "dog": "dog"}
    vector = fusion.bias_vector([{"label": "cat", "score": 1.0}], fusion.FusionConfig(support_weight=2.0), words,
                                noun_of)
    assert vector[2] == vector[3] > 0 > vector[4] and vector[0] == vector[1] == 0
    log_probabilities = np.log(np.full((2, 5), 0.2))
    fused = fusion.biased(log_probabilities, vector)
    assert np.allclose(np.exp(fused).sum(axis=-1), 1.0)
    assert np.exp(fused)[0, 2] > 0.2 > np.exp(fused)[0, 4]


def test_abstention_replaces_only_unsure_unsupported_nouns():
    noun_of = {"rabbit": "rabbit", "cat": "cat", "cats": "cat", "sheep": "sheep"}
    config = fusion.FusionConfig(abstain_below=0.5)
    words = ["a", "big", "rabbit", "and", "two", "small", "cats"]
    probabilities = [0.9, 0.8, 0.3, 0.9, 0.7, 0.6, 0.2]
    out, replaced = fusion.abstain(words, probabilities, [], config, noun_of)
    assert out == ["a", "big", "thing", "and", "two", "small", "things"]
    assert [item["word"] for item in replaced] == ["rabbit", "cats"]
    # A noun the detector supports is kept however unsure the decoder was; a sure one is kept anyway.
    out, _ = fusion.abstain(words, probabilities, [{"label": "cat", "score": 0.8}], config, noun_of)
    assert out[-1] == "cats" and out[2] == "thing"
    out, _ = fusion.abstain(["two", "small", "sheep"], [0.9, 0.9, 0.1], [], config, noun_of)
    assert out[-1] == "things"  # "sheep" is its own plural: the count says it is plural
    # abstain_below 0 turns abstention off.
    assert fusion.abstain(words, probabilities, [], dataclasses.replace(config, abstain_below=0.0), noun_of)[0] == words


def test_code_defaults_are_the_shipped_fusion_setting():
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "checkpoints" / "captioning" / fusion.FUSION_FILE
    if not shipped.is_file():
        pytest.skip("no shipped captioning checkpoint")
    assert fusion.FusionConfig.load(shipped) == fusion.FusionConfig()


def test_fusion_config_reads_the_checkpoint_file(tmp_path):
    (tmp_path / fusion.FUSION_FILE).write_text(json.dumps({"support_weight": 1.5, "abstain_below": 0.4,
                                                           "validation": {"ignored": True}}))
    config = fusion.FusionConfig.load(tmp_path / fusion.FUSION_FILE)
    assert config.support_weight == 1.5 and config.abstain_below == 0.4
    assert config.mapped_weight == fusion.FusionConfig().mapped_weight


@pytest.fixture(scope="module")
def tiny_captioner(tmp_path_factory):
    from tests.tiny import captioning
    from trainers.captioning.caption import Captioner

    return Captioner.load(captioning.make(tmp_path_factory.mktemp("tiny") / "captioning"))


def class_nouns(captioner, words):
    return {captioner.noun_of[word] for word in words if word in captioner.noun_of}


def test_fake_detections_change_the_captions_noun(tiny_captioner):
    picture = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    plain = tiny_captioner.caption(picture, beam=2)
    assert tiny_captioner.caption(picture, beam=2, detections=None)["caption"] == plain["caption"]
    assert "fusion" not in plain
    tiny_captioner.fusion = fusion.FusionConfig(support_weight=50.0, mapped_weight=50.0, unmapped_weight=50.0)
    try:
        for label, noun in (("cat", "cat"), ("dog", "dog")):
            for beam in (1, 2):
                result = tiny_captioner.caption(picture, beam=beam, detections=[{"label": label, "score": 0.9}])
                assert class_nouns(tiny_captioner, result["words"]) == {noun}, result["caption"]
                assert len(result["attention"]) == len(result["words"])  # every word keeps its attention map
                assert result["fusion"]["support"] == {noun: 0.9}
        # With nothing detected there is no bias: the decoder's own caption.
        assert tiny_captioner.caption(picture, beam=2, detections=[])["caption"] == plain["caption"]
    finally:
        tiny_captioner.fusion = fusion.FusionConfig()


def test_abstention_on_the_tiny_captioner(tiny_captioner):
    picture = np.random.default_rng(2).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    tiny_captioner.fusion = fusion.FusionConfig(support_weight=50.0, mapped_weight=0.0, unmapped_weight=0.0,
                                                abstain_below=1.01)  # every unsupported noun is unsure
    try:
        result = tiny_captioner.caption(picture, beam=1, detections=[{"label": "cat", "score": 0.9}])
        assert class_nouns(tiny_captioner, result["words"]) <= {"cat"}  # supported: kept
        result = tiny_captioner.caption(picture, beam=1, detections=[])
        assert not class_nouns(tiny_captioner, result["words"])
        replaced = result["fusion"]["abstained"]
        assert [result["words"][item["position"]] for item in replaced] == \
            [fusion.generic_word([*result["words"][:item["position"]], item["word"]], item["position"],
                                 tiny_captioner.noun_of) for item in replaced]
        assert all(0 <= item["probability"] <= 1 for item in replaced)
    finally:
        tiny_captioner.fusion = fusion.FusionConfig()


def test_word_probabilities_match_the_greedy_steps(tiny_captioner):
    features = np.random.default_rng(3).normal(size=(2, tiny_captioner.encoder.locations,
                                                      tiny_captioner.encoder.depth)).astype(np.float32)
    decoded = tiny_captioner.greedy_ids(features)
    probabilities = tiny_captioner.word_probabilities(features, [ids for ids, _ in decoded])
    for (ids, _), row in zip(decoded, probabilities):
        assert len(row) == len(ids) and all(0 < value <= 1 for value in row)
    # Greedy picks the argmax, so every chosen word has at least 1/vocab of the probability.
    assert all(value >= 1 / tiny_captioner.vocabulary.size for row in probabilities for value in row)


def test_tab_captions_with_and_without_the_detector(tiny_captioner):
    from playground import caption_tab

    picture = np.random.default_rng(4).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    tiny_captioner.fusion = fusion.FusionConfig(support_weight=50.0, mapped_weight=50.0, unmapped_weight=50.0)
    try:
        seen = caption_tab.caption_picture(tiny_captioner, picture, 2,
                                           lambda shown: ([{"label": "dog", "score": 0.8, "box": [0, 0, 9, 9]}], None))
        assert class_nouns(tiny_captioner, seen["words"]) == {"dog"} and seen["fusion"]["support"] == {"dog": 0.8}
        assert "The detector backs:** dog (0.80)" in caption_tab.notes(seen, seen["detections"], None)
        # Detector not installed: the caption is the decoder's alone, as before fusion.
        missing = caption_tab.caption_picture(tiny_captioner, picture, 2,
                                              lambda shown: ([], "The object detector is not installed."))
        assert missing["caption"] == tiny_captioner.caption(picture, beam=2)["caption"] and missing["fusion"] is None
    finally:
        tiny_captioner.fusion = fusion.FusionConfig()
