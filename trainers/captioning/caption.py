"""Caption a picture: the caption, and for every word the attention over the image's 7x7 locations.

    python -m trainers.captioning.caption photo.jpg                 # greedy caption
    python -m trainers.captioning.caption photo.jpg --beam 3 --json # words + per-word attention maps as JSON
    python -m trainers.captioning.caption photo.jpg --detector      # the COCO detector steers the nouns (fusion.py)

`Captioner.load(folder)` reads a checkpoint folder (encoder + decoder + vocabulary) and exposes plain-Python
inference: `caption(image, beam)` returns a dict with `caption`, `words`, `attention` (one grid of floats per
word, summing to 1) and `score`. The app's Caption tab uses the same object. Beam search comes from the shared
`trainers.common.decoding` (the translator uses it too); beam width 1 is greedy search.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "captioning"
BEAM_ALPHA = 1.0  # beam search's length normalisation (decoding.beam_search's default), also for beam 1


class Captioner:
    """A loaded captioner: encoder, decoder (`model.ShowAttendTell`) and vocabulary, NumPy/Python in and out."""

    def __init__(self, encoder, model, vocabulary, max_len: int, metrics: dict | None = None, labels=None,
                 novelty=None, fusion_config=None):
        from trainers.captioning import fusion, photos
        from trainers.captioning.model import make_step_function

        self.fusion = fusion_config or fusion.FusionConfig()  # how detections steer the nouns (fusion.py)
        self.noun_of = {word: noun for word, noun in photos.noun_table().items() if word in vocabulary.index}

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
        from trainers.captioning import fusion

        fusion_path = folder / fusion.FUSION_FILE
        try:
            fusion_config = fusion.FusionConfig.load(fusion_path) if fusion_path.is_file() else None
        except (OSError, ValueError, TypeError) as error:
            raise checkpoint.CheckpointError(f"{fusion_path} cannot be read: {error}") from None
        return cls(encoder, model, vocabulary, int(config.get("max_len", 24)), metrics,
                   labels=labels if encoder.classifier is not None else [], novelty=novelty,
                   fusion_config=fusion_config)

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

    def _biased_step_fn(self, bias):
        """The step function with `bias` ((vocab,) or (rows, vocab)) added to every step's log-probabilities."""
        if bias is None:
            return self._step_fn
        from trainers.captioning import fusion

        def step(tokens, state):
            log_probabilities, state, weights = self._step_fn(tokens, state)
            return fusion.biased(log_probabilities.numpy(), bias), state, weights

        return step

    def greedy_ids(self, features: np.ndarray, max_len: int | None = None, bias: np.ndarray | None = None):
        """Batched greedy search: features (batch, locations, depth) -> [(ids, attention (words, locations))];
        `bias` (batch, vocab) is added to each row's log-probabilities at every step (detector fusion)."""
        from trainers.common import decoding

        hypotheses = decoding.greedy(self._biased_step_fn(bias), self._initial(features), self.vocabulary.start,
                                     self.vocabulary.end, max_len or self.max_len, rows=len(features))
        return [(hypothesis.ids, hypothesis.attention) for hypothesis in hypotheses]

    def beam_ids(self, features: np.ndarray, beam: int, max_len: int | None = None, bias: np.ndarray | None = None):
        """Beam search for one image (features (locations, depth)): -> (ids, attention, score); `bias` (vocab,)
        is added to the log-probabilities at every step (detector fusion)."""
        from trainers.common import decoding

        result = decoding.beam_search(self._biased_step_fn(bias), self._initial(features[None]),
                                      self.vocabulary.start, self.vocabulary.end, beam_width=beam,
                                      max_len=max_len or self.max_len)
        return result.ids, result.attention, result.score

    def word_probabilities(self, features: np.ndarray, id_lists: list[list[int]]) -> list[list[float]]:
        """The decoder's own probability (no fusion bias) of each chosen word given the words before it:
        features (batch, locations, depth), one id list per row (teacher forcing, one batched pass)."""
        longest = max((len(ids) for ids in id_lists), default=0)
        if longest == 0:
            return [[] for _ in id_lists]
        inputs = np.zeros((len(id_lists), longest), np.int32)
        for row, ids in enumerate(id_lists):
            inputs[row, 0] = self.vocabulary.start
            inputs[row, 1:len(ids)] = ids[:-1]
        logits, _ = self.model(np.asarray(features, np.float32), inputs)
        logits = np.asarray(logits, np.float64)  # (batch, longest, vocab)
        exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probabilities = exponentials / exponentials.sum(axis=-1, keepdims=True)
        return [[float(probabilities[row, position, token]) for position, token in enumerate(ids)]
                for row, ids in enumerate(id_lists)]

    def fuse(self, ids: list[int], features: np.ndarray, detections: list) -> tuple[list[str], list[dict]]:
        """The words of `ids` after abstention (fusion.abstain), and the replaced nouns."""
        from trainers.captioning import fusion

        words = self.vocabulary.decode(ids)
        probabilities = self.word_probabilities(features[None], [ids[: len(words)]])[0]
        return fusion.abstain(words, probabilities, detections, self.fusion, self.noun_of)

    # ---- images ----

    def caption_features(self, features: np.ndarray, beam: int = 1, detections: list | None = None) -> dict:
        """Caption one picture's features (locations, depth). With `detections` (the COCO detector's
        [{label, score}], [] when it found nothing) the nouns are steered by them and unsure unsupported nouns
        become "thing" (fusion.py); with None the caption is the decoder's alone. `fusion` in the result says
        what the detections did. Beam 1 is `caption_features_many`'s greedy search (the same caption alone as
        in a batch), wider beams a beam search of this picture alone."""
        from trainers.captioning import fusion

        if int(beam) <= 1:
            return self.caption_features_many([features], [detections])[0]
        bias = None
        if detections is not None:
            bias = fusion.bias_vector(detections, self.fusion, self.vocabulary.words, self.noun_of)
        ids, attention, score = self.beam_ids(features, int(beam), bias=bias)
        return self._caption_result(ids, attention, score, features, detections)

    def caption_features_many(self, features: list[np.ndarray], detections: list | None = None) -> list[dict]:
        """Greedy captions (beam 1) of many pictures' features in one batch, each the same as alone.

        `detections`: one entry per picture (a detection list to steer its nouns, or None for the decoder alone).
        At least decoding.MIN_ROWS rows are decoded (a lone picture with a copy of itself): at one row the CPU's
        matrix products round differently, while from two rows on a row's numbers do not depend on the other rows, so a
        picture's words, attention and score are the same in any batch (tests/test_batching.py). Steered and
        unsteered pictures are decoded in separate batches: the fusion re-normalises every step's
        log-probabilities, which would move an unsteered picture's score by a rounding. The score is beam
        search's at width 1 (log-probability over the length with the end token), which greedy search equals.
        """
        from trainers.captioning import fusion
        from trainers.common import decoding

        detections = list(detections) if detections is not None else [None] * len(features)
        results: list = [None] * len(features)
        for steered in (False, True):
            indices = [i for i, found in enumerate(detections) if (found is not None) == steered]
            if not indices:
                continue
            indices_padded = decoding.padded_rows(indices)
            bias = None
            if steered:
                bias = np.stack([fusion.bias_vector(detections[i], self.fusion, self.vocabulary.words, self.noun_of)
                                 for i in indices_padded])
            hypotheses = decoding.greedy(self._biased_step_fn(bias),
                                         self._initial(np.stack([features[i] for i in indices_padded])),
                                         self.vocabulary.start, self.vocabulary.end, self.max_len,
                                         rows=len(indices_padded))
            for index, hypothesis in zip(indices, hypotheses):
                score = decoding.length_normalised(hypothesis.log_prob, len(hypothesis.ids) + hypothesis.finished,
                                                   BEAM_ALPHA)
                results[index] = self._caption_result(hypothesis.ids, hypothesis.attention, score, features[index],
                                                       detections[index])
        return results

    def greedy_many(self, pictures: list[tuple]) -> list[dict]:
        """`caption_features_many` for (features, detections) pairs: the form the app's request batcher hands over
        (one item per request; requests for the same method of the same model share a call)."""
        features, detections = zip(*pictures)
        return self.caption_features_many(list(features), list(detections))

    def _caption_result(self, ids, attention, score: float, features: np.ndarray, detections: list | None) -> dict:
        from trainers.captioning import fusion

        words = self.vocabulary.decode(ids)
        result = {}
        if detections is not None:
            words, replaced = self.fuse(ids, features, detections)
            result["fusion"] = {"support": fusion.noun_support(detections, self.fusion.min_score),
                                "bias": fusion.noun_bias(detections, self.fusion,
                                                         sorted(set(self.noun_of.values()))),
                                "abstained": replaced, "config": dataclasses.asdict(self.fusion)}
        attention = np.asarray(attention, np.float32)[: len(words)]
        return {"caption": " ".join(words), "words": words, "score": score, "grid": list(self.grid),
                "attention": [row.reshape(self.grid).tolist() for row in attention], **result}

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

    def caption(self, image, beam: int = 1, detections: list | None = None) -> dict:
        """Any image (path, bytes, PIL image, array) -> caption dict; raises encoder.ImageError for a non-image.
        `detections`: see caption_features (None: the decoder alone, as before fusion existed)."""
        picture = self.read(image)
        return {**self.caption_features(picture.pop("features"), beam, detections), **picture}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Caption a picture with the shipped (or another) checkpoint.")
    parser.add_argument("image", help="a picture file (PNG, JPEG, GIF, WebP...)")
    parser.add_argument("--beam", type=int, default=1, help="beam width (1 = greedy)")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--json", action="store_true", help="print words and per-word attention maps as JSON")
    parser.add_argument("--detector", action="store_true",
                        help="let the COCO detector's findings steer the nouns, as the Caption tab does")
    args = parser.parse_args(argv)
    if not 1 <= args.beam <= 20:
        print(f"error: --beam must be between 1 and 20, got {args.beam}", file=sys.stderr)
        raise SystemExit(2)
    from trainers.captioning.encoder import ImageError, load_image
    from trainers.common.checkpoint import CheckpointError
    from trainers.common.threads import use_serving_threads

    try:
        load_image(args.image)  # a file that is no picture is refused before TensorFlow is imported
        use_serving_threads()  # one thread per op, as the app: the same picture gives the app's caption
        captioner = Captioner.load(Path(args.checkpoint))
        detections = None
        if args.detector:
            from trainers.captioning import detector as detector_module
            from trainers.captioning.encoder import open_picture

            model = detector_module.Detector.load()
            if model is None:
                print(f"note: {detector_module.unavailable()}", file=sys.stderr)
            else:
                detections = model.detect(np.asarray(open_picture(args.image, size=640)))
        result = captioner.caption(args.image, beam=args.beam, detections=detections)
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
