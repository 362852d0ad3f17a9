"""Captioning data: the feature cache, the word vocabulary and the tf.data pipelines.

Running MobileNet is by far the most expensive part of the data, so every image is encoded exactly once: its
7x7x1024 feature map (49 locations) goes into a float16 array on disk (`<cache>/<split>/features.npy`, a NumPy
memory map) beside `scenes.jsonl` (the captions and what was placed) and `manifest.json` (what made the cache:
generator version, seed, counts, encoder fingerprint). A cache is reused when its manifest matches, and an
interrupted build resumes where it stopped. Rebuild with `python -m trainers.captioning.data --source offline`.

Two sources:
- offline: composed scenes from `scenes.SceneGenerator` (train / val / test, the test split holding out pairs of
  classes that never meet in training);
- canonical: MS-COCO 2014 train captions and images, as the TensorFlow tutorial (a subset, split by image).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import socket
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

from trainers.captioning.config import SHIPPED_ENCODER
from trainers.common import checkpoint, download

CACHE_VERSION = 1
VOCAB_FILE = "vocab.json"
PAD, START, END, UNKNOWN = "<pad>", "<start>", "<end>", "<unk>"
DEFAULT_COUNTS = {"train": 4000, "val": 600, "test": 1000}
DEFAULT_PHOTO_COUNTS = {"train": 7000, "val": 400, "test": 400}

COCO_HOST = "images.cocodataset.org"
COCO_ANNOTATIONS_URL = "http://images.cocodataset.org/annotations/annotations_trainval2014.zip"
COCO_IMAGES_URL = "http://images.cocodataset.org/zips/train2014.zip"


def online(host: str = COCO_HOST, port: int = 80, timeout: float = 4.0) -> bool:
    """Whether MS-COCO's server answers (the trainer and `python -m trainers.captioning.data` both ask)."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def tokenize(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class CaptionVocabulary:
    """Words <-> ids; id 0 pads, then <start>, <end>, <unk>, then the training words by frequency."""

    def __init__(self, words: list[str]):
        self.words = list(words)
        self.index = {word: position for position, word in enumerate(self.words)}

    @classmethod
    def from_captions(cls, captions, min_count: int = 1, max_size: int = 5000) -> "CaptionVocabulary":
        counts = Counter(word for caption in captions for word in tokenize(caption))
        common = [word for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
                  if count >= min_count][: max_size - 4]
        return cls([PAD, START, END, UNKNOWN] + common)

    @classmethod
    def load(cls, path: Path) -> "CaptionVocabulary":
        return cls(checkpoint.read_json(path)["words"])

    def save(self, path: Path) -> None:
        checkpoint.write_json(path, {"words": self.words})

    @property
    def size(self) -> int:
        return len(self.words)

    @property
    def start(self) -> int:
        return self.index[START]

    @property
    def end(self) -> int:
        return self.index[END]

    def encode(self, caption: str, max_len: int) -> list[int]:
        """<start> words <end>, cut to max_len ids and padded with 0 to max_len."""
        ids = [self.start] + [self.index.get(word, self.index[UNKNOWN]) for word in tokenize(caption)][: max_len - 2]
        ids.append(self.end)
        return ids + [0] * (max_len - len(ids))

    def decode(self, ids) -> list[str]:
        words = []
        for token in ids:
            token = int(token)
            if token == self.end:
                break
            if token not in (0, self.start):
                words.append(self.words[token])
        return words


def fingerprint(path: Path) -> str:
    """A short sha256 of a file (the encoder weights), recorded in a cache manifest."""
    return download.sha256_of(Path(path))[:16]


def cache_root(source: str, seed: int, folder: str = "") -> Path:
    base = Path(folder) if folder else download.cache_dir() / "captioning"
    return base / (f"scenes-v{CACHE_VERSION}-seed{seed}" if source == "offline" else "coco2014")


def photo_cache_root(seed: int, folder: str = "") -> Path:
    """Where the photo-like pictures' features are cached (beside the composed scenes')."""
    from trainers.captioning import photos

    base = Path(folder) if folder else download.cache_dir() / "captioning"
    return base / f"photos-v{photos.PHOTO_VERSION}-seed{seed}"


def _manifest(split: str, count: int, seed: int, encoder_id: str, generator_version=None) -> dict:
    from trainers.captioning import scenes

    return {"cache_version": CACHE_VERSION, "split": split,
            "generator_version": scenes.GENERATOR_VERSION if generator_version is None else generator_version,
            "count": count, "seed": seed, "encoder": encoder_id}


def build_scene_split(folder: Path, split: str, count: int, seed: int, encoder, encoder_id: str,
                      batch_size: int = 64, log=print, sprite_source=None, generator=None,
                      generator_version=None) -> Path:
    """Draws `count` scenes of `split` and caches their features; resumes or reuses a matching cache.

    `generator` (anything with `.scene(split, index)`) defaults to the composed scenes' SceneGenerator; the
    photo-like pictures pass a photos.PhotoGenerator and their own `generator_version`."""
    from trainers.captioning import scenes

    folder = Path(folder) / split
    folder.mkdir(parents=True, exist_ok=True)
    wanted = _manifest(split, count, seed, encoder_id, generator_version)
    manifest_path = folder / "manifest.json"
    features_path = folder / "features.npy"
    done = 0
    if manifest_path.exists() and features_path.exists():
        stored = json.loads(manifest_path.read_text())
        same = all(stored.get(key) == value for key, value in wanted.items() if key != "count")
        if same and stored.get("count", 0) >= count:
            # A larger cache of the same scenes serves any smaller count (scene i never depends on the count).
            done = int(stored.get("done", 0))
            if done >= count:
                return folder
            wanted["count"] = stored["count"]
            log(f"{split}: resuming the feature cache at {done}/{count}")
    if done == 0:
        features = np.lib.format.open_memmap(features_path, mode="w+", dtype=np.float16,
                                             shape=(count, encoder.locations, encoder.depth))
        (folder / "scenes.jsonl").write_text("")
    else:
        features = np.lib.format.open_memmap(features_path, mode="r+")
    generator = generator or scenes.SceneGenerator(seed, sprite_source)
    started = time.monotonic()
    with open(folder / "scenes.jsonl", "r+", encoding="utf-8") as records:
        # Keep exactly `done` lines (a crash may have left a few more than were encoded).
        lines = records.read().splitlines()[:done]
        records.seek(0)
        records.truncate()
        records.write("".join(line + "\n" for line in lines))
        for start in range(done, count, batch_size):
            stop = min(start + batch_size, count)
            drawn = [generator.scene(split, index) for index in range(start, stop)]
            features[start:stop] = encoder.features(np.stack([image for image, _ in drawn]), batch_size=batch_size)
            features.flush()
            records.write("".join(json.dumps(scene) + "\n" for _, scene in drawn))
            records.flush()
            checkpoint.write_json(manifest_path, {**wanted, "done": stop})
            rate = (stop - done) / max(time.monotonic() - started, 1e-6)
            if (start // batch_size) % 20 == 0 or stop == count:
                log(f"{split}: {stop}/{count} scenes encoded ({rate:.1f} images/s)")
    return folder


def build_offline(counts: dict, seed: int, encoder, encoder_id: str, folder: str = "", log=print,
                  sprite_source=None) -> Path:
    """Caches the features of the test, val and train scenes; `sprite_source` as in scenes.SceneGenerator."""
    root = cache_root("offline", seed, folder)
    for split in ("test", "val", "train"):
        build_scene_split(root, split, counts[split], seed, encoder, encoder_id, log=log, sprite_source=sprite_source)
    return root


def build_photos(counts: dict, seed: int, encoder, encoder_id: str, folder: str = "", log=print,
                 sprite_source=None, backgrounds=None) -> Path:
    """Caches the features of the photo-like pictures (photos.PhotoGenerator): test, val, then train."""
    from trainers.captioning import photos

    root = photo_cache_root(seed, folder)
    generator = photos.PhotoGenerator(seed, sprite_source, backgrounds)
    # The background files are part of what made the pictures: a cache drawn on gradients (before the wallpaper
    # packages were installed) is rebuilt once they are, instead of serving the gradients on.
    files = sorted(str(path) for path in generator.train_backgrounds + generator.heldout_backgrounds)
    drawn_on = hashlib.sha256("\n".join(files).encode()).hexdigest()[:12] if files else "gradients"
    for split in ("test", "val", "train"):
        if counts.get(split):
            build_scene_split(root, split, counts[split], seed, encoder, encoder_id, log=log, generator=generator,
                              generator_version=f"photos-{photos.PHOTO_VERSION}-backgrounds-{drawn_on}")
    return root


def load_split(root: Path, split: str, count: int | None = None) -> tuple[np.ndarray, list[dict]]:
    """(features (count, locations, depth) float16, memory-mapped; scene records): the first `count` (or all)."""
    folder = Path(root) / split
    manifest = json.loads((folder / "manifest.json").read_text())
    count = manifest["count"] if count is None else count
    if manifest.get("done", 0) < count:
        raise RuntimeError(f"the feature cache in {folder} is incomplete ({manifest.get('done', 0)}/"
                           f"{count}); run python -m trainers.captioning.data to finish it")
    features = np.load(folder / "features.npy", mmap_mode="r")[:count]
    records = [json.loads(line) for line in (folder / "scenes.jsonl").read_text().splitlines()[:count]]
    return features, records


def encode_captions(records: list[dict], vocabulary: CaptionVocabulary, max_len: int) -> np.ndarray:
    """(images, captions per image, max_len) int32; images with fewer captions repeat their last one."""
    per_image = max(len(record["captions"]) for record in records)
    ids = np.zeros((len(records), per_image, max_len), np.int32)
    for row, record in enumerate(records):
        for column in range(per_image):
            caption = record["captions"][min(column, len(record["captions"]) - 1)]
            ids[row, column] = vocabulary.encode(caption, max_len)
    return ids


def caption_dataset(features: np.ndarray, caption_ids: np.ndarray, batch_size: int, seed: int = 0,
                    shuffle: bool = True, drop_remainder: bool = True):
    """A tf.data.Dataset of (features float32 (batch, locations, depth), ids int32 (batch, max_len)).

    Each pass takes every image once with one of its captions drawn at random, so over the epochs the model
    sees all the phrasings. Features stay float16 in memory and are cast in the pipeline.
    """
    import tensorflow as tf

    count = len(features)
    locations, depth = features.shape[1:]
    max_len = caption_ids.shape[-1]
    epoch_counter = [0]

    def batches():
        rng = np.random.default_rng([seed, epoch_counter[0]])
        epoch_counter[0] += 1
        order = rng.permutation(count) if shuffle else np.arange(count)
        choice = rng.integers(0, caption_ids.shape[1], count)
        limit = count - count % batch_size if drop_remainder else count
        for start in range(0, limit, batch_size):
            rows = np.sort(order[start:start + batch_size])  # sorted rows read a memory map faster
            yield np.asarray(features[rows]), caption_ids[rows, choice[rows]]

    signature = (tf.TensorSpec((None, locations, depth), tf.float16), tf.TensorSpec((None, max_len), tf.int32))
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    return dataset.map(lambda x, y: (tf.cast(x, tf.float32), y)).prefetch(2)


# ---- canonical: MS-COCO 2014 -------------------------------------------------------------------------------


def build_coco(count: int, encoder, encoder_id: str, folder: str = "", heldout_share: float = 0.1,
               log=print) -> Path | None:
    """Downloads COCO 2014 captions and images (13 GB), encodes the first `count` images; None when offline."""
    from trainers.captioning import encoder as encoder_module

    annotations = download.fetch_or_none(COCO_ANNOTATIONS_URL, None, "COCO 2014 captions", "composed scenes")
    if annotations is None:
        return None
    images_zip = download.fetch_or_none(COCO_IMAGES_URL, None, "COCO 2014 images", "composed scenes")
    if images_zip is None:
        return None
    root = cache_root("canonical", 0, folder)
    with zipfile.ZipFile(annotations) as archive:
        data = json.loads(archive.read("annotations/captions_train2014.json"))
    by_image: dict[int, list[str]] = {}
    for annotation in data["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation["caption"].strip())
    names = {image["id"]: image["file_name"] for image in data["images"]}
    chosen = sorted(by_image)[:count]
    cut = int(len(chosen) * (1 - heldout_share))
    with zipfile.ZipFile(images_zip) as archive:
        for split, ids in (("train", chosen[:cut]), ("test", chosen[cut:])):
            folder_split = root / split
            folder_split.mkdir(parents=True, exist_ok=True)
            wanted = {"cache_version": CACHE_VERSION, "split": split, "count": len(ids), "source": "coco2014",
                      "encoder": encoder_id}
            manifest_path = folder_split / "manifest.json"
            if manifest_path.exists() and json.loads(manifest_path.read_text()).get("done") == len(ids):
                continue
            features = np.lib.format.open_memmap(folder_split / "features.npy", mode="w+", dtype=np.float16,
                                                 shape=(len(ids), encoder.locations, encoder.depth))
            with open(folder_split / "scenes.jsonl", "w", encoding="utf-8") as records:
                for start in range(0, len(ids), 64):
                    batch = ids[start:start + 64]
                    pictures = [encoder_module.load_image(archive.read(f"train2014/{names[i]}")) for i in batch]
                    features[start:start + len(batch)] = encoder.features(np.stack(pictures))
                    for image_id in batch:
                        records.write(json.dumps({"split": split, "image_id": image_id, "groups": [],
                                                  "captions": by_image[image_id][:5]}) + "\n")
                    log(f"coco {split}: {start + len(batch)}/{len(ids)} images encoded")
            features.flush()
            checkpoint.write_json(manifest_path, {**wanted, "done": len(ids)})
    (root / "val").mkdir(exist_ok=True)
    return root


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Build (or finish) the captioning feature cache.")
    parser.add_argument("--source", default="offline", choices=("offline", "canonical"))
    parser.add_argument("--train", type=int, default=DEFAULT_COUNTS["train"])
    parser.add_argument("--val", type=int, default=DEFAULT_COUNTS["val"])
    parser.add_argument("--test", type=int, default=DEFAULT_COUNTS["test"])
    parser.add_argument("--photo-train", type=int, default=DEFAULT_PHOTO_COUNTS["train"])
    parser.add_argument("--photo-val", type=int, default=DEFAULT_PHOTO_COUNTS["val"])
    parser.add_argument("--photo-test", type=int, default=DEFAULT_PHOTO_COUNTS["test"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default="")
    parser.add_argument("--encoder-weights", default=str(SHIPPED_ENCODER))
    args = parser.parse_args(argv)
    from trainers.captioning import encoder as encoder_module
    from trainers.captioning import scenes

    problems = scenes.sources_available()
    if args.source == "offline" and problems:
        raise SystemExit(f"error: {problems[0]}")
    if not Path(args.encoder_weights).is_file():
        raise SystemExit(f"error: no encoder weights at {args.encoder_weights}")
    encoder = encoder_module.from_weights(Path(args.encoder_weights))
    encoder_id = fingerprint(Path(args.encoder_weights))
    log = lambda message: print(message, flush=True)  # noqa: E731
    if args.source == "canonical":
        if not online():
            print("error: MS-COCO (images.cocodataset.org) is not reachable; use --source offline", file=sys.stderr)
            raise SystemExit(1)
        root = build_coco(args.train + args.test, encoder_module.canonical(), "keras-imagenet",
                          args.cache_dir, log=log)
        if root is None:
            print("COCO is not reachable; use --source offline", file=sys.stderr)
            raise SystemExit(1)
    else:
        photo_counts = {"train": args.photo_train, "val": args.photo_val, "test": args.photo_test}
        photo_root = build_photos(photo_counts, args.seed, encoder, encoder_id, args.cache_dir, log=log)
        print(f"photo-like feature cache ready in {photo_root}")
        counts = {"train": args.train, "val": args.val, "test": args.test}
        root = build_offline(counts, args.seed, encoder, encoder_id, args.cache_dir, log=log)
    print(f"feature cache ready in {root}")


if __name__ == "__main__":
    main()
