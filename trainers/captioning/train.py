"""Train the attention captioner on cached image features.

    python -m trainers.captioning.train                        # offline composed scenes, the shipped configuration
    python -m trainers.captioning.train --source canonical     # MS-COCO 2014 (falls back to offline without internet)
    python -m trainers.captioning.train --epochs 2 --train-images 2000 --out runs/quick

The first run builds the feature cache (MobileNet over every picture, once; see data.py). Every epoch ends with
held-out scores — BLEU-4 against all reference phrasings, object recall (the share of placed objects the caption
names) and object precision (the share of named objects that are there) — on the validation split and on the
test split of unseen object pairs, a few sample captions, the servable checkpoint `<out>/checkpoint` (encoder,
decoder, vocabulary, example pictures) and the resume state `<out>/resume`; running the same command again
resumes. The served model is the last epoch's; the test split is reported, never used to choose anything.
The run itself (resume, --init-from, --strategy, progress) is `trainers.common.run`; this file is only what is
the captioner's own. `--eager` runs the training step without tf.function, for debugging.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from trainers.captioning import data, encoder as encoder_module, novelty, photos, scenes
from trainers.captioning.caption import Captioner
from trainers.captioning.config import MAIN_SETTINGS, RUN_CHECKPOINT, SOURCES, TrainConfig  # noqa: F401
from trainers.captioning.model import (EXAMPLES_FOLDER, ShowAttendTellConfig, build, count_parameters,
                                       write_files)
from trainers.common import checkpoint, cli, run, seq2seq

ENCODER_NAME = "ImageNet MobileNet v1 1.0/224, conv_pw_13_relu (7x7x1024)"


def make_train_step(model, optimizer, clip_norm: float, eager: bool):
    """`step(context, decoder_input, decoder_target)`: one teacher-forced update (see trainers.common.seq2seq)."""
    return seq2seq.make_teacher_forced_step(model, optimizer, clip_norm, eager)


def object_scores(words_per_image: list[list[str]], records: list[dict]) -> tuple[float, float]:
    """(object recall, object precision) over a split: which placed classes the captions name, and vice versa."""
    noun_of = photos.noun_table()  # the composed scenes' 24 classes and the photo-like pictures' new ones
    placed_total = named_total = found = correct = 0
    for words, record in zip(words_per_image, records):
        placed = {group["noun"] for group in record.get("groups", [])}
        if not placed:
            continue
        named = {noun_of[word] for word in words if word in noun_of}
        placed_total += len(placed)
        named_total += len(named)
        found += len(placed & named)
        correct += len(named & placed)
    recall = found / placed_total if placed_total else float("nan")
    precision = correct / named_total if named_total else 0.0
    return recall, precision


def evaluate(captioner, features, records, batch_size: int = 128) -> dict:
    """Greedy captions for a whole split, scored against every reference phrasing."""
    import sacrebleu

    hypotheses = []
    for start in range(0, len(features), batch_size):
        chunk = np.asarray(features[start:start + batch_size], np.float32)
        for ids, _ in captioner.greedy_ids(chunk):
            hypotheses.append(captioner.vocabulary.decode(ids))
    references_per_image = max(len(record["captions"]) for record in records)
    streams = [[record["captions"][min(k, len(record["captions"]) - 1)] for record in records]
               for k in range(references_per_image)]
    bleu = sacrebleu.corpus_bleu([" ".join(words) for words in hypotheses], streams)
    recall, precision = object_scores(hypotheses, records)
    exact = float(np.mean([" ".join(words) in record["captions"] for words, record in zip(hypotheses, records)]))
    return {"bleu4": round(bleu.score, 2), "object_recall": round(recall, 4), "object_precision": round(precision, 4),
            "exact_match": round(exact, 4), "captions": [" ".join(words) for words in hypotheses]}


def learning_rate_schedule(config: TrainConfig, total_steps: int):
    warmup = min(200, max(total_steps // 20, 1))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * 0.1, decay_steps=max(total_steps - warmup, 1),
        alpha=config.min_lr_fraction, warmup_target=config.learning_rate, warmup_steps=warmup)


def write_examples(folder: Path, config: TrainConfig, count: int = 8, sprite_source=None,
                   photo_count: int = 4) -> list[str]:
    """Saves a few held-out test pictures (JPEG) into `folder/examples` (atomically), for the app's examples:
    composed test scenes (`test_*.jpg`) and photo-like test pictures on held-out backgrounds (`photo_test_*.jpg`)."""
    from PIL import Image

    generator = scenes.SceneGenerator(config.seed, sprite_source)
    names = [f"test_{index:05d}.jpg" for index in range(count)]
    photo_count = photo_count if config.photo_test_images else 0
    synthetic = sprite_source is not None
    photo_generator = photos.PhotoGenerator(config.seed, photos.synthetic_photo_sprites if synthetic else None,
                                            backgrounds=[] if synthetic else None) if photo_count else None

    def write(target: Path) -> None:
        for index, name in enumerate(names):
            image, _ = generator.scene("test", index)
            Image.fromarray(image).save(target / name, quality=92)
        for index in range(photo_count):
            image, _ = photo_generator.scene("test", index)
            Image.fromarray(image).save(target / f"photo_test_{index:05d}.jpg", quality=92)

    checkpoint.write_folder(Path(folder) / EXAMPLES_FOLDER, write)
    return names


class CaptioningRecipe(run.Recipe):
    name = "captioning"
    loss_names = ("loss", "accuracy")
    sprite_source = None  # scenes.SceneGenerator's pictures: None for the packaged photos and emoji
    # photos.PhotoGenerator's pictures and backgrounds: None for the packaged ones; with a test's sprite_source
    # (drawn shapes) the photo-like pictures use drawn shapes and drawn backgrounds too.
    photo_sprite_source = None
    photo_backgrounds = None

    # ---- data

    def offline_encoder(self):
        """(encoder, its weights file, its config.json spec) of the offline source: the converted MobileNet."""
        path = Path(self.config.encoder_weights)
        encoder = encoder_module.from_weights(path)
        return encoder, path, encoder_module.spec_for(encoder, "mobilenet_v1")

    def _features_root(self) -> Path:
        """Builds (or reuses) the feature cache; sets the encoder, its weights and the effective source."""
        config = self.config
        self.source = config.source
        if self.source == "canonical":
            encoder = encoder_module.canonical() if data.online() else None
            root = data.build_coco(config.train_images + config.test_images, encoder, "keras-imagenet",
                                   config.cache_dir, log=self.log) if encoder is not None else None
            if root is not None:
                self.encoder, self.encoder_weights = encoder, encoder.classifier  # saved into each servable folder
                self.encoder_spec = encoder_module.spec_for(encoder, "mobilenet_v1")
                return root
            self.log("No internet for MS-COCO or the ImageNet weights; training on the offline composed scenes.")
            self.source = "offline"
        if self.sprite_source is None:
            problems = scenes.sources_available()
            if problems:
                raise ValueError(problems[0])
        self.encoder, self.encoder_weights, self.encoder_spec = self.offline_encoder()
        counts = {"train": config.train_images, "val": config.val_images, "test": config.test_images}
        identity = data.fingerprint(self.encoder_weights)
        if config.photo_train_images or config.photo_val_images or config.photo_test_images:
            photo_counts = {"train": config.photo_train_images, "val": config.photo_val_images,
                            "test": config.photo_test_images}
            synthetic = self.sprite_source is not None and self.photo_sprite_source is None
            self.photo_root = data.build_photos(
                photo_counts, config.seed, self.encoder, identity, config.cache_dir, log=self.log,
                sprite_source=photos.synthetic_photo_sprites if synthetic else self.photo_sprite_source,
                backgrounds=[] if synthetic else self.photo_backgrounds)
        return data.build_offline(counts, config.seed, self.encoder, identity, config.cache_dir, log=self.log,
                                  sprite_source=self.sprite_source)

    def prepare(self, start: Path | None) -> None:
        config = self.config
        self.photo_root = None
        root = self._features_root()
        offline = self.source == "offline"
        limits = {"train": config.train_images, "val": config.val_images, "test": config.test_images} \
            if offline else {}
        self.train_features, self.train_records = data.load_split(root, "train", limits.get("train"))
        self.test_features, self.test_records = data.load_split(root, "test", limits.get("test"))
        self.val_features, self.val_records = data.load_split(root, "val", limits.get("val")) \
            if (root / "val" / "manifest.json").exists() else (self.test_features, self.test_records)
        # The photo-like pictures: their training split joins the composed scenes' (in memory, float16); their
        # validation and test splits (held-out backgrounds) are scored on their own.
        self.photo_splits = {}
        if offline and self.photo_root is not None:
            for split, count in (("train", config.photo_train_images), ("val", config.photo_val_images),
                                 ("test", config.photo_test_images)):
                if count:
                    self.photo_splits[split] = data.load_split(self.photo_root, split, count)
        if "train" in self.photo_splits:
            photo_features, photo_records = self.photo_splits["train"]
            self.train_features = np.concatenate([np.asarray(self.train_features), np.asarray(photo_features)])
            self.train_records = list(self.train_records) + list(photo_records)
        # How far a picture's features may lie from the training pictures' before the tab says it is unlike them.
        held_out = [self.val_features] + [self.photo_splits["val"][0]] * ("val" in self.photo_splits)
        self.novelty = novelty.NoveltyIndex.fit(self.train_features, held_out, seed=config.seed) if offline else None
        self.photo_scores = {}
        self.vocabulary = (data.CaptionVocabulary.load(start / data.VOCAB_FILE) if start is not None else
                           data.CaptionVocabulary.from_captions(caption for record in self.train_records
                                                         for caption in record["captions"]))
        self.train_ids = data.encode_captions(self.train_records, self.vocabulary, config.max_len + 1)
        batches_per_pass = len(self.train_records) // config.batch_size
        if batches_per_pass == 0:
            raise ValueError(f"{len(self.train_records)} training pictures are fewer than one batch of "
                             f"{config.batch_size}; lower --batch-size")
        self.steps_per_epoch = config.steps_per_epoch or batches_per_pass
        photo_counts = {split: len(records) for split, (_, records) in self.photo_splits.items()}
        composed_train = len(self.train_records) - photo_counts.get("train", 0)
        self.description = (
            f"composed scenes (seed {config.seed}): {composed_train} train / {len(self.val_records)} val / "
            f"{len(self.test_records)} test pictures, test = unseen object pairs" + (
                f"; photo-like pictures (cut-outs on photographic backgrounds, seed {config.seed}): "
                f"{photo_counts.get('train', 0)} train / {photo_counts.get('val', 0)} val / "
                f"{photo_counts.get('test', 0)} test, val and test on held-out backgrounds" if photo_counts else "")
            if offline else f"MS-COCO 2014: {len(self.train_records)} train / {len(self.test_records)} held-out images")
        self.examples = Path(config.out) / EXAMPLES_FOLDER
        if offline and not self.examples.is_dir():
            write_examples(Path(config.out), config, sprite_source=self.sprite_source)

    def dataset(self, epoch: int) -> tf.data.Dataset:
        batches = data.caption_dataset(self.train_features, self.train_ids, self.config.batch_size,
                                       seed=run.epoch_seed(self.config, epoch))
        return run.take_steps(batches, self.steps_per_epoch)

    # ---- networks

    def decoder_config(self) -> ShowAttendTellConfig:
        config = self.config
        return ShowAttendTellConfig(vocab_size=self.vocabulary.size, locations=self.encoder.locations,
                                    feature_depth=self.encoder.depth, embedding_dim=config.embedding_dim,
                                    units=config.units, attention_units=config.attention_units,
                                    dropout=config.dropout)

    def model_config(self) -> dict:
        """config.json of the servable folder: the decoder, the encoder it reads, the caption length, the data."""
        return {"decoder": dataclasses.asdict(self.decoder_config()), "encoder": self.encoder_spec,
                "max_len": self.config.max_len, "source": self.source}

    def build(self) -> None:
        self.model = build(self.decoder_config())
        schedule = learning_rate_schedule(self.config, self.steps_per_epoch * self.config.epochs)
        self.optimizer = keras.optimizers.Adam(schedule)
        self.optimizer.build(self.model.trainable_variables)
        self.captioner = Captioner(self.encoder, self.model, self.vocabulary, self.config.max_len)

    def trackables(self) -> dict:
        return {"model": self.model, "optimizer": self.optimizer}

    def load_servable(self, folder: Path) -> None:
        checkpoint.load_weights(self.model, folder)

    def start_event(self) -> dict:
        return {"data": self.description, "parameters": count_parameters(self.model)}

    # ---- the step and the epoch

    def train_step(self, batch) -> dict:
        features, ids = batch
        # Teacher forcing: the decoder reads each true word and predicts the next one.
        return seq2seq.teacher_forced_update(self.model, self.optimizer, features, ids[:, :-1], ids[:, 1:],
                                             self.config.clip_norm)

    def end_epoch(self, epoch: int, losses: dict) -> tuple[dict, dict]:
        self.validation = evaluate(self.captioner, self.val_features, self.val_records)
        self.test = evaluate(self.captioner, self.test_features, self.test_records)
        self.photo_scores = {split: evaluate(self.captioner, *self.photo_splits[split])
                             for split in ("val", "test") if split in self.photo_splits}
        metrics = {"train_loss": losses["loss"], "train_accuracy": losses["accuracy"],
                   **{f"val_{k}": v for k, v in self.validation.items() if k != "captions"},
                   **{f"test_{k}": v for k, v in self.test.items() if k != "captions"},
                   **{f"photo_{split}_{k}": v for split, scores in self.photo_scores.items()
                      for k, v in scores.items() if k != "captions"},
                   "learning_rate": float(self.optimizer.learning_rate)}
        shown = range(min(6, len(self.test_records)))
        rows = [[f"test_{index:05d}", self.test["captions"][index]] for index in shown]
        images = [{"path": f"{EXAMPLES_FOLDER}/test_{index:05d}.jpg", "caption": self.test["captions"][index]}
                  for index in shown if (self.examples / f"test_{index:05d}.jpg").exists()]
        return metrics, {"rows": rows, "images": images}

    def summary_metrics(self, state: run.RunState, metrics: dict) -> dict:
        test, validation = self.test, self.validation
        return {
            "model": "captioning",
            "split": "test (held-out scenes whose object pairs never appear together in training)"
            if self.source == "offline" else "held-out images",
            "bleu4": test["bleu4"], "object_recall": test["object_recall"],
            "object_precision": test["object_precision"], "exact_match": test["exact_match"],
            "val_bleu4": validation["bleu4"], "val_object_recall": validation["object_recall"],
            "val_object_precision": validation["object_precision"],
            **{f"photo_{split}_{key}": scores[key] for split, scores in self.photo_scores.items()
               for key in ("bleu4", "object_recall", "object_precision", "exact_match")},
            "decoding": "greedy",
            "data": self.description, "source": self.source,
            "encoder": ENCODER_NAME,
            "epochs": state.epoch, "steps": state.step, "steps_per_epoch": self.steps_per_epoch,
            "batch_size": self.config.batch_size, "parameters": count_parameters(self.model),
            "precision": self.config.precision,
            "wall_time_seconds": round(state.elapsed_seconds, 1),
            "history": state.history,
        }

    def write_servable(self, folder: Path, metrics: dict) -> None:
        write_files(folder, self.model, self.vocabulary, self.model_config(), self.encoder_weights, metrics,
                    examples=self.examples)
        if self.novelty is not None:
            self.novelty.save(Path(folder) / novelty.NOVELTY_FILE)
        if self.encoder_spec.get("kind") == "mobilenet_v1" and encoder_module.IMAGENET_LABELS.is_file():
            shutil.copy2(encoder_module.IMAGENET_LABELS, Path(folder) / encoder_module.LABELS_FILE)


def train(config: TrainConfig, stream=None) -> dict:
    """Runs (or resumes) a training run and returns its final metrics."""
    return run.fit(CaptioningRecipe(config, stream))


def summary(metrics: dict, config: TrainConfig) -> str:
    return (f"held-out BLEU-4 {metrics.get('bleu4')}, object recall {metrics.get('object_recall')}; "
            f"checkpoint in {Path(config.out) / RUN_CHECKPOINT}")


def main(argv=None) -> None:
    cli.run_training(__doc__, TrainConfig, train, summary, argv, errors=(OSError,))


if __name__ == "__main__":
    main()
