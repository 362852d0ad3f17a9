"""Validation pictures for detector-informed decoding, with their features and the COCO detector's findings.

Detector fusion (`fusion.py`) has a few weights and one threshold; they are chosen on pictures made here, never on
the real-photo evaluation set. Three sets, all drawn on the wallpapers held out from training
(`photos.held_out_background`), cached once (features float16 + detections) in
`~/.cache/eager-playground/captioning/fusion-v1-seed<seed>/<set>/`:

- `photo-val`: the first 400 photo-like validation pictures (`photos.PhotoGenerator(seed).scene("val", i)`),
  41-class objects, photos and emoji, at every scale, damaged as photos are (the ones the checkpoint reports);
- `photo-test`: 200 photo-like *test* pictures, a second held-out set to check the chosen setting on;
- `unknown-val` / `unknown-test`: Tux Paint real-photo stamps of things **no class names** (tools, insects,
  vegetables, flags, planets, lions...), pasted the same way (close-ups, groups, pairs; occlusion, blur, noise,
  JPEG). Stamps whose file name or English description mentions a class word or a near synonym (kitten,
  puppy, mug, tulip, house, present, money...) are left out. The stamps are split in two halves by a hash of
  their path: the threshold is tuned on `unknown-val` and checked on `unknown-test`. A caption of such a picture
  that names any class noun is wrong;
- `known-val` / `known-test`: Tux Paint real-photo stamps of classes the captioner names that no training
  picture uses (`KNOWN_UNSEEN`: coins, flowers, a bull, a ram, a rabbit, fish, balls...; split by stamp like
  the unknown things), a caption is right when it names the stamp's class;
- `composed-val` (300) / `composed-test` (1,000): the composed scenes of the checkpoint's validation and test
  splits (the same 1,000 test scenes of unseen pairs), to check that fusion keeps their BLEU-4 and recall.

    python -m trainers.captioning.fusion_data          # build (or finish) all four sets; ~15 min on 2 shared cores
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np

FUSION_DATA_VERSION = 1
COUNTS = {"photo-val": 400, "photo-test": 200, "unknown-val": 300, "unknown-test": 300, "composed-val": 300,
          "composed-test": 1000, "known-val": 300, "known-test": 300}
UNKNOWN_SPLIT = {"unknown-val": 20, "unknown-test": 21, "known-val": 22, "known-test": 23}  # PhotoGenerator split ids
# Real-photo Tux Paint stamps of classes the captioner names that no training picture uses (the training
# pictures of coins, for one, are emoji only): the captioner has never seen these photos, as with a user's photo.
# Checked by eye to be photos (the drawn hats, cats, bunnies and Santa of the same folders are left out).
KNOWN_UNSEEN: dict[str, tuple[str, ...]] = {
    "fish": ("animals/fish/bluegroper", "animals/fish/dolphinfish", "animals/fish/lionfish"),
    "cow": ("animals/mammals/bovines/bull",), "sheep": ("animals/mammals/bovines/ram",),
    "pig": ("animals/mammals/pig_golden2",), "rabbit": ("animals/mammals/rabbit_little",),
    "apple": ("food/fruit/apple_sierra_beauty",), "orange": ("food/fruit/sliced_orange",),
    "guitar": ("hobbies/music/string/guitar_electric_bass",),
    "flower": ("plants/flowers/flower2", "plants/flowers/flower5", "plants/flowers/iris",
               "plants/flowers/yellow-flower", "plants/flowers/anemone_red", "plants/flowers/red-gazania"),
    "tree": ("seasonal/christmas/Christmas_Tree_photo",),
    "ball": ("sports/cricketball", "sports/football", "sports/australian_rules_football"),
    "coin": ("symbols/money/euro/coins/100", "symbols/money/euro/coins/200", "symbols/money/euro/coins/050",
             "symbols/money/us/coins/025quarter", "symbols/money/us/coins/001penny",
             "symbols/money/canadian/coins/200toonie", "symbols/money/canadian/coins/100loonie"),
    "car": ("vehicles/race/indycar",),
}
# Words that make a stamp too close to a class to count as "unknown" (besides the class nouns and plurals).
NEAR_CLASS_WORDS = (
    "kitten", "puppy", "pony", "donkey", "foal", "lamb", "ram", "calf", "bull", "ox", "cattle", "piglet", "boar",
    "bunny", "hare", "mug", "teacup", "glass", "auto", "lorry", "van", "plant", "rose", "tulip", "daisy", "sunflower",
    "lily", "blossom", "oak", "palm", "birch", "pine", "fir", "spruce", "man", "woman", "boy", "girl", "child",
    "fireman", "astronaut", "people", "ship", "yacht", "plane", "jet", "helicopter", "coin", "money", "dollar",
    "cent", "penny", "present", "house", "church", "castle", "tower", "home", "soccer", "basketball", "football",
    "tennis", "baseball", "goose", "swan", "drake", "mallard", "shark", "teddy", "mandarin", "tangerine",
    "clementine", "cauliflower", "watch", "shuttle", "cap", "helmet", "scooter", "moped", "cattle", "wolf", "lion",
    "tiger", "cheetah", "leopard", "puma", "panther", "lynx", "kid", "baby", "bear", "hut", "cabin", "temple",
    "mosque", "skyscraper", "lighthouse", "windmill", "cake", "cupcake", "bowl", "vase", "pot", "kettle",
    "teapot", "jug", "pitcher", "ornament", "bauble", "present", "parcel", "package", "wrapped", "lemon", "lime",
    "peach", "nectarine", "grapefruit", "tomato", "cherry", "raspberry", "ball", "bead", "egg", "santa", "sedan",
    "police", "daffodil", "dumper", "bow")
SKIP_FOLDERS = ("cartoon", "symbols", "animals/fish", "animals/mammals/cats", "animals/mammals/dogs",
                "animals/mammals/equines", "animals/mammals/bovines", "people", "vehicles/auto", "military",
                "space/apollo_lander", "space/voyager2")


def fusion_root(seed: int = 0, folder: str = "") -> Path:
    from trainers.common import download

    base = Path(folder) if folder else download.cache_dir() / "captioning"
    return base / f"fusion-v{FUSION_DATA_VERSION}-seed{seed}"


def _description(png: Path) -> str:
    text = png.with_suffix(".txt")
    if not text.is_file():
        return ""
    return text.read_text(encoding="utf-8", errors="replace").splitlines()[0] if text.stat().st_size else ""


def unknown_stamps(stamps_root: Path | None = None) -> list[str]:
    """Real-photo Tux Paint stamps (relative path without .png) of things no class names, sorted."""
    from trainers.captioning import photos, scenes

    root = Path(stamps_root or scenes.STAMPS)
    used = {stamp for noun in photos.nouns()
            for stamp in (photos.NEW_CLASSES[noun][1] if noun in photos.NEW_CLASSES else scenes.CLASSES[noun][2])}
    words = set(photos.noun_table()) | set(NEAR_CLASS_WORDS)
    found = []
    for png in sorted(root.rglob("*.png")):
        relative = str(png.relative_to(root).with_suffix(""))
        if relative in used or any(part in relative for part in SKIP_FOLDERS):
            continue
        text = f"{relative.replace('/', ' ').replace('_', ' ').replace('-', ' ')} {_description(png)}".lower()
        tokens = set(re.findall(r"[a-z]+", text))
        if tokens & words or any(token.rstrip("s") in words for token in tokens):
            continue
        found.append(relative)
    return found


def unknown_half(stamp: str) -> str:
    """Which unknown set a stamp belongs to (a hash of its path: about half each)."""
    return "unknown-val" if int(hashlib.sha256(stamp.encode()).hexdigest(), 16) % 2 == 0 else "unknown-test"


class UnknownGenerator:
    """Photo-like pictures of unknown things: photos.PhotoGenerator with the stamps as its "classes"."""

    def __init__(self, stamps: list[str], seed: int = 0, backgrounds=None, truth: dict | None = None):
        from trainers.captioning import photos, scenes

        self.stamps = list(stamps)
        self.truth = dict(truth or {})  # stamp -> the class noun it shows (the known-but-unseen stamps)
        for stamp in self.stamps:  # the generator phrases captions; these are never scored as text
            scenes.EXTRA_PLURALS.setdefault(stamp, stamp)
        self.generator = photos.PhotoGenerator(seed, sprite_source=self._sprites, backgrounds=backgrounds)
        self.generator.nouns = self.stamps
        self.generator.held_out_pairs = set()

    @staticmethod
    def _sprites(stamp: str):
        from trainers.captioning import scenes

        return [scenes._stamp_sprite(stamp)], []

    def scene(self, split: str, index: int):
        from trainers.captioning import photos

        photos.SPLITS.setdefault(split, UNKNOWN_SPLIT[split])
        image, record = self.generator.scene(split, index)
        record["truth"] = sorted({self.truth[group["noun"]] for group in record["groups"]
                                  if self.truth.get(group["noun"])})
        return image, record


def build_set(root: Path, name: str, count: int, generator, captioner, detector, log=print,
              split: str | None = None) -> Path:
    """Draws `count` pictures, caches features (float16), the detector's findings and the records; resumable
    by whole set (a set with a finished manifest is reused)."""
    folder = Path(root) / name
    manifest = folder / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("done") == count:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    features, records = [], []
    for start in range(0, count, 32):
        drawn = [generator.scene(split or name, index) for index in range(start, min(start + 32, count))]
        images = np.stack([image for image, _ in drawn])
        features.append(captioner.encoder.features(images).astype(np.float16))
        for image, record in drawn:
            record["detections"] = detector.detect(image, min_score=0.2)
            records.append(record)
        log(f"{name}: {len(records)}/{count} ({len(records) / (time.monotonic() - started):.1f} pictures/s)")
    np.save(folder / "features.npy", np.concatenate(features))
    (folder / "records.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    manifest.write_text(json.dumps({"version": FUSION_DATA_VERSION, "set": name, "done": count}))
    return folder


def load_set(root: Path, name: str) -> tuple[np.ndarray, list[dict]]:
    folder = Path(root) / name
    features = np.load(folder / "features.npy")
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    return features, records


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default="")
    parser.add_argument("--sets", default=",".join(COUNTS))
    args = parser.parse_args(argv)
    from trainers.captioning import detector as detector_module, photos, scenes
    from trainers.captioning.caption import DEFAULT_CHECKPOINT, Captioner

    captioner = Captioner.load(DEFAULT_CHECKPOINT)
    detector = detector_module.Detector.load()
    if detector is None:
        raise SystemExit(f"error: {detector_module.unavailable()}")
    root = fusion_root(args.seed, args.cache_dir)
    stamps = unknown_stamps()
    halves = {name: [stamp for stamp in stamps if unknown_half(stamp) == name] for name in UNKNOWN_SPLIT}
    print(f"{len(stamps)} unknown stamps: {len(halves['unknown-val'])} val, {len(halves['unknown-test'])} test",
          flush=True)
    (root).mkdir(parents=True, exist_ok=True)
    (root / "unknown_stamps.json").write_text(json.dumps(halves, indent=1))
    log = lambda message: print(message, flush=True)  # noqa: E731
    for name in args.sets.split(","):
        if name.startswith("photo"):
            generator, split = photos.PhotoGenerator(args.seed), name.split("-")[1]
        elif name.startswith("known"):
            noun_of = {stamp: noun for noun, stamps_ in KNOWN_UNSEEN.items() for stamp in stamps_}
            half = [stamp for stamp in sorted(noun_of) if unknown_half(stamp) == ("unknown-val" if name == "known-val"
                                                                                  else "unknown-test")]
            generator, split = UnknownGenerator(half, args.seed, truth=noun_of), name
        elif name.startswith("composed"):
            generator, split = scenes.SceneGenerator(args.seed), name.split("-")[1]
        else:
            generator, split = UnknownGenerator(halves[name], args.seed), name
        build_set(root, name, COUNTS[name], generator, captioner, detector, log=log, split=split)
    print(f"fusion validation sets ready in {root}")


if __name__ == "__main__":
    main()
