"""Detector-informed decoding: the COCO detector's findings steer the captioner's nouns (shallow fusion).

The attention decoder still writes the caption word by word (its per-word attention is unchanged); at every
step a fixed bias is added to the log-probabilities of the class nouns before the search picks a word:

- a noun whose COCO class the detector finds gets `+support_weight * score` (the cat photo: cat 0.91);
- a noun the detector does not support while it is sure of something (its best score `evidence` >= the
  detections' `min_score`) gets `-mapped_weight * evidence` when the noun is one the detector knows (it would
  have seen a motorcycle), `-unmapped_weight * evidence` when the noun has no COCO class (rabbit, guitar...);
- with no detection at all there is no bias: the caption is the decoder's.

Then **abstention**: a class noun of the caption that the detector does not support and to which the decoder
itself gave less than `abstain_below` probability (teacher-forced along the chosen words, without the bias) is
replaced by "thing" / "things" — an honest generic word instead of a confident wrong one. Its attention map
stays. The weights and the threshold are chosen on validation pictures (`tune_fusion.py`, `fusion_data.py`:
photo-like pictures and unknown things on held-out backgrounds), never on the real-photo evaluation set, and
travel with the checkpoint as `fusion.json`.

`NOUN_TO_COCO` maps the captioner's nouns to the detector's labels (only nouns of the vocabulary, only labels
of the detector). Everything here is NumPy on plain inputs; `Captioner.caption(..., detections=...)` uses it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

FUSION_FILE = "fusion.json"
GENERIC = {"singular": "thing", "plural": "things"}

# Captioner noun -> the COCO labels that show it. Owls, ducks and penguins are all "bird" to COCO.
NOUN_TO_COCO: dict[str, tuple[str, ...]] = {
    "person": ("person",), "cat": ("cat",), "dog": ("dog",), "horse": ("horse",), "cow": ("cow",),
    "sheep": ("sheep",), "elephant": ("elephant",), "bear": ("bear",), "zebra": ("zebra",),
    "giraffe": ("giraffe",), "owl": ("bird",), "duck": ("bird",), "penguin": ("bird",), "apple": ("apple",),
    "banana": ("banana",), "orange": ("orange",), "broccoli": ("broccoli",), "carrot": ("carrot",),
    "pizza": ("pizza",), "car": ("car",), "truck": ("truck",), "bus": ("bus",), "motorcycle": ("motorcycle",),
    "airplane": ("airplane",), "boat": ("boat",), "cup": ("cup",), "clock": ("clock",), "ball": ("sports ball",),
}


@dataclasses.dataclass
class FusionConfig:
    """The fusion's weights (log-probability units per unit of detection score) and thresholds."""

    # The shipped setting (checkpoints/captioning/fusion.json, chosen by tune_fusion.py on validation pictures).
    support_weight: float = 0.0
    mapped_weight: float = 4.0
    unmapped_weight: float = 1.0
    min_score: float = 0.3
    abstain_below: float = 0.5  # 0 = never abstain

    @classmethod
    def load(cls, path: Path) -> "FusionConfig":
        stored = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{field.name: stored[field.name] for field in dataclasses.fields(cls) if field.name in stored})


def detected(detections: list, min_score: float) -> dict[str, float]:
    """COCO label -> its best score among the detections scoring at least min_score."""
    best: dict[str, float] = {}
    for item in detections or []:
        score = float(item["score"])
        if score >= min_score:
            best[item["label"]] = max(score, best.get(item["label"], 0.0))
    return best


def noun_support(detections: list, min_score: float) -> dict[str, float]:
    """Captioner noun -> the best score of a detection of its COCO class (only nouns the detector supports)."""
    labels = detected(detections, min_score)
    support = {}
    for noun, coco in NOUN_TO_COCO.items():
        score = max((labels.get(label, 0.0) for label in coco), default=0.0)
        if score > 0:
            support[noun] = score
    return support


def noun_bias(detections: list, config: FusionConfig, nouns: list[str]) -> dict[str, float]:
    """The bias each class noun gets from the detections (nouns not listed get none)."""
    labels = detected(detections, config.min_score)
    if not labels:
        return {}
    evidence = max(labels.values())
    support = noun_support(detections, config.min_score)
    bias = {}
    for noun in nouns:
        if noun in support:
            bias[noun] = config.support_weight * support[noun]
        elif noun in NOUN_TO_COCO:
            bias[noun] = -config.mapped_weight * evidence
        else:
            bias[noun] = -config.unmapped_weight * evidence
    return {noun: value for noun, value in bias.items() if value != 0.0}


def bias_vector(detections: list, config: FusionConfig, words: list[str], noun_of: dict[str, str]) -> np.ndarray:
    """(vocab,) float32: each word's bias (singular and plural share their noun's); zeros without detections."""
    vector = np.zeros(len(words), np.float32)
    bias = noun_bias(detections, config, sorted(set(noun_of.values())))
    for index, word in enumerate(words):
        noun = noun_of.get(word)
        if noun in bias:
            vector[index] = bias[noun]
    return vector


def biased(log_probabilities: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """log-softmax(log_probabilities + bias) over the last axis (bias (vocab,) or (rows, vocab))."""
    shifted = np.asarray(log_probabilities, np.float64) + bias
    top = shifted.max(axis=-1, keepdims=True)
    return shifted - (top + np.log(np.exp(shifted - top).sum(axis=-1, keepdims=True)))


def generic_word(words: list[str], position: int, noun_of: dict[str, str]) -> str:
    """"things" when the noun at `position` is plural (its phrase counts two or three, or the word is a plural
    form), else "thing"."""
    word = words[position]
    if word != noun_of.get(word, word):
        return GENERIC["plural"]
    return GENERIC["plural"] if set(words[max(0, position - 3):position]) & {"two", "three"} else GENERIC["singular"]


def abstain(words: list[str], probabilities: list[float], detections: list, config: FusionConfig,
            noun_of: dict[str, str]) -> tuple[list[str], list[dict]]:
    """Replaces each unsupported class noun the decoder was unsure of (probability < abstain_below) by
    "thing"/"things"; returns (words, [{position, word, probability}] of the replaced ones)."""
    if config.abstain_below <= 0:
        return list(words), []
    support = noun_support(detections, config.min_score)
    out, replaced = [], []
    for position, (word, probability) in enumerate(zip(words, probabilities)):
        noun = noun_of.get(word)
        if noun is not None and noun not in support and probability < config.abstain_below:
            out.append(generic_word(words, position, noun_of))
            replaced.append({"position": position, "word": word, "probability": round(float(probability), 4)})
        else:
            out.append(word)
    return out, replaced
