"""Caption a picture: the caption, and for every word the attention over the image's 7x7 locations.

    python -m trainers.captioning.caption photo.jpg                 # greedy caption
    python -m trainers.captioning.caption photo.jpg --beam 3 --json # words + per-word attention maps as JSON

`Captioner.load(folder)` reads a checkpoint folder (encoder + decoder + vocabulary) and exposes plain-Python
inference: `caption(image, beam)` returns a dict with `caption`, `words`, `attention` (one grid of floats per
word, summing to 1) and `score`. The app's Caption tab uses the same object. Beam search comes from the shared
`trainers.common.decoding` (the translator uses it too); beam width 1 is greedy search.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "captioning"
MIN_ROWS = 2  # greedy captions decode at least two rows (see Captioner.caption_features_many)
BEAM_ALPHA = 1.0  # beam search's length normalisation (decoding.beam_search's default), also for beam 1


class Captioner:
    """A loaded captioner: encoder, decoder (`model.ShowAttendTell`) and vocabulary, NumPy/Python in and out."""

    def __init__(self, encoder, model, vocabulary, max_len: int, metrics: dict | None = None, labels=None,
                 novelty=None):
        from trainers.captioning.model import make_step_function

        self.labels = list(labels or [])  # ImageNet class names, when the encoder's head was loaded
        self.novelty = novelty  # novelty.NoveltyIndex of the training pictures, or None
        self.encoder = encoder
        self.model = model
        self.vocabulary = vocabulary
        self.max_len = max_len
        self.metrics = metrics or {}
        self._step = make_step_function(model)
        side = int(round(np.sqrt(encoder.locations)))
        self.grid = (side, encoder.locations // side)

    @classmethod
    def load(cls, folder: Path) -> "Captioner":
        """The captioner of a checkpoint folder: its encoder (weights file and spec), decoder and vocabulary."""
        from trainers.captioning import data, encoder as encoder_module, model as model_module
        from trainers.common import checkpoint

        folder = checkpoint.require_folder(Path(folder), (checkpoint.CONFIG_FILE, checkpoint.WEIGHTS_FILE,
                                                          data.VOCAB_FILE))
        config = checkpoint.read_json(folder / checkpoint.CONFIG_FILE)
        from trainers.captioning import novelty as novelty_module

        labels = encoder_module.imagenet_labels(folder)
        try:
            with_head = bool(labels) and config["encoder"].get("kind") == "mobilenet_v1"
            encoder = encoder_module.load_from_folder(folder, config["encoder"], with_head=with_head)
        except (KeyError, ValueError, FileNotFoundError, OSError) as error:
            raise checkpoint.CheckpointError(f"the encoder of {folder} cannot be loaded: {error}") from None
        model, vocabulary = model_module.load(folder)
        metrics = checkpoint.read_json(folder / checkpoint.METRICS_FILE) \
            if (folder / checkpoint.METRICS_FILE).exists() else {}
        try:
            novelty = novelty_module.NoveltyIndex.load(folder / novelty_module.NOVELTY_FILE)
        except (OSError, KeyError, ValueError) as error:
            raise checkpoint.CheckpointError(f"{folder / novelty_module.NOVELTY_FILE} cannot be read: {error}")
        return cls(encoder, model, vocabulary, int(config.get("max_len", 24)), metrics,
                   labels=labels if encoder.classifier is not None else [], novelty=novelty)

    # ---- decoding over cached features (the search itself is the shared trainers.common.decoding) ----

    def _step_fn(self, tokens, state):
        """decoding's step function: state = (keys, projected keys, hidden), each with rows first."""
        import tensorflow as tf

        keys, projected, hidden = state
        log_probabilities, hidden, weights = self._step(keys, projected, tf.convert_to_tensor(tokens, tf.int32),
                                                        hidden)
        return log_probabilities, (keys, projected, hidden), weights

    def _initial(self, features):
        import tensorflow as tf

        return self.model.encode(tf.convert_to_tensor(np.asarray(features, np.float32)))  # (keys, projected, hidden)

    def greedy_ids(self, features: np.ndarray, max_len: int | None = None):
        """Batched greedy search: features (batch, locations, depth) -> [(ids, attention (words, locations))]."""
        from trainers.common import decoding

        hypotheses = decoding.greedy(self._step_fn, self._initial(features), self.vocabulary.start,
                                     self.vocabulary.end, max_len or self.max_len, rows=len(features))
        return [(hypothesis.ids, hypothesis.attention) for hypothesis in hypotheses]

    def beam_ids(self, features: np.ndarray, beam: int, max_len: int | None = None):
        """Beam search for one image (features (locations, depth)): -> (ids, attention, score)."""
        from trainers.common import decoding

        result = decoding.beam_search(self._step_fn, self._initial(features[None]), self.vocabulary.start,
                                      self.vocabulary.end, beam_width=beam, max_len=max_len or self.max_len)
        return result.ids, result.attention, result.score

    # ---- images ----

    def caption_features(self, features: np.ndarray, beam: int = 1) -> dict:
        """The caption of one picture's features (locations, depth); beam 1 is `caption_features_many`'s greedy
        search, wider beams a beam search of this picture alone."""
        if int(beam) <= 1:
            return self.caption_features_many([features])[0]
        ids, attention, score = self.beam_ids(features, int(beam))
        return self._caption_result(ids, attention, score)

    def caption_features_many(self, features: list[np.ndarray]) -> list[dict]:
        """Greedy captions (beam 1) of many pictures' features in one batch, each the same as alone.

        At least MIN_ROWS rows are decoded (a lone picture with a copy of itself): at one row the CPU's matrix
        products round differently, while from two rows on a row's numbers do not depend on the other rows, so a
        picture's words, attention and score are the same in any batch (tests/test_batching.py). The score is
        beam search's at width 1 (log-probability over the length with the end token), which greedy search equals.
        """
        from trainers.common import decoding

        rows = list(features) + list(features[:1]) * (MIN_ROWS - len(features))
        hypotheses = decoding.greedy(self._step_fn, self._initial(np.stack(rows)), self.vocabulary.start,
                                     self.vocabulary.end, self.max_len, rows=len(rows))
        return [self._caption_result(hypothesis.ids, hypothesis.attention, decoding.length_normalised(
                    hypothesis.log_prob, len(hypothesis.ids) + hypothesis.finished, BEAM_ALPHA))
                for hypothesis in hypotheses[: len(features)]]

    def _caption_result(self, ids, attention, score: float) -> dict:
        words = self.vocabulary.decode(ids)
        attention = np.asarray(attention, np.float32)[: len(words)]
        return {"caption": " ".join(words), "words": words, "score": score, "grid": list(self.grid),
                "attention": [row.reshape(self.grid).tolist() for row in attention]}

    def read(self, image) -> dict:
        """What the encoder makes of a picture, one picture at a time: {features (locations, depth), image (the
        224 x 224 pixels), imagenet_top3, novelty}. Raises encoder.ImageError for a non-image."""
        from trainers.captioning import encoder as encoder_module

        pixels = encoder_module.load_image(image)
        if self.labels and self.encoder.classifier is not None:
            features, tops = self.encoder.features_and_classes(pixels[None], top=3)
            features = features[0]
            imagenet = [{"label": self.labels[index] if index < len(self.labels) else str(index),
                         "probability": round(probability, 4)} for index, probability in tops[0]]
        else:
            features, imagenet = self.encoder.features(pixels[None])[0], []
        familiarity = self.novelty.judge(features) if self.novelty is not None else None
        return {"features": features, "image": pixels, "imagenet_top3": imagenet, "novelty": familiarity}

    def caption(self, image, beam: int = 1) -> dict:
        """Any image (path, bytes, PIL image, array) -> caption dict; raises encoder.ImageError for a non-image."""
        picture = self.read(image)
        return {**self.caption_features(picture.pop("features"), beam), **picture}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Caption a picture with the shipped (or another) checkpoint.")
    parser.add_argument("image", help="a picture file (PNG, JPEG, GIF, WebP...)")
    parser.add_argument("--beam", type=int, default=1, help="beam width (1 = greedy)")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--json", action="store_true", help="print words and per-word attention maps as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.beam <= 20:
        print(f"error: --beam must be between 1 and 20, got {args.beam}", file=sys.stderr)
        raise SystemExit(2)
    from trainers.captioning.encoder import ImageError, load_image
    from trainers.common.checkpoint import CheckpointError

    try:
        load_image(args.image)
        captioner = Captioner.load(Path(args.checkpoint))
        result = captioner.caption(args.image, beam=args.beam)
    except (ImageError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1)
    result.pop("image")
    if args.json:
        print(json.dumps({**result, "attention": [[[round(v, 5) for v in row] for row in grid]
                                                  for grid in result["attention"]]}))
    else:
        print(result["caption"])


if __name__ == "__main__":
    main()
