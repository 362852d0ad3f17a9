"""Photo-like training pictures: real-photo cut-outs on photographic backgrounds, at every scale.

The composed scenes (`scenes.py`) sit on drawn gradients, so a real photo looks like nothing the captioner saw.
These pictures come closer to photos, from what Debian packages bundle:

- objects: Tux Paint's real-photo stamps (`tuxpaint-stamps-default`, GPL-2: photos with a transparent
  background, outside its cartoon and symbol folders) and Noto colour emoji (`fonts-noto-color-emoji`,
  Apache-2.0) for the classes that have no photo (cat, motorcycle, clock...), including a **person** class;
- backgrounds: random crops of photographic wallpapers (`mate-backgrounds` nature photos and
  `plasma-workspace-wallpapers`, GPL-2+; see BACKGROUND_LICENCES), one in five held out: the
  validation and test pictures use only held-out backgrounds;
- every scale, from a small object in a landscape to a **close-up that fills (and overflows) the frame**, and
  the damage real photos have: another picture covering part of the object, blur, lighting and colour casts,
  sensor noise and JPEG compression.

Captions use the composed scenes' phrasings and words (count, size, noun; two groups get a relation), without
colour words since the photos are not tinted: "a big cat", "there is a big cup", "a picture of two small
horses and a big tree". `PhotoGenerator(seed).scene(split, index)` is a pure function of (seed, split, index).

    python -m trainers.captioning.photos --out /tmp/photos --count 12    # write a few to look at
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from trainers.captioning import scenes

CANVAS = scenes.CANVAS
PHOTO_VERSION = 1
SPLITS = {"train": 10, "val": 11, "test": 12}
BACKGROUND_FOLDERS = (Path("/usr/share/backgrounds/mate/nature"), Path("/usr/share/wallpapers"))
# Wallpapers whose subject is itself an object the captioner names (flowers, a ladybird...): not backgrounds.
EXCLUDED_BACKGROUNDS = ("FreshFlower", "YellowFlower", "LadyBird", "TwoWings", "Elephants", "Kokkini", "Flow",
                        "Patak", "ColorfulCups", "FlyingKonqui", "Bubbles", "Kite", "Cascade", "Shell", "Path", "Opal", "Volna", "Honeywave")
BACKGROUND_LICENCES = {"/usr/share/backgrounds/mate": "mate-backgrounds, GPL-2+",
                       "/usr/share/wallpapers": "plasma-workspace-wallpapers, GPL-2+ (KDE Visual Design Group)"}

# New classes (besides the 24 of the composed scenes): noun -> (plural, Tux Paint photo stamps, emoji). Each is a
# word the pictures can teach; most are COCO classes the detector also finds (person, cup, motorcycle...).
NEW_CLASSES: dict[str, tuple[str, tuple[str, ...], tuple[int, ...]]] = {
    "person": ("people", ("people/fireman200b", "people/fireman240a", "space/spacewalk"),
               (0x1F9D1, 0x1F469, 0x1F468, 0x1F467, 0x1F466, 0x1F474, 0x1F475, 0x1F9CD, 0x1F6B6, 0x1F46E,
                0x1F477, 0x1F482)),
    "cup": ("cups", ("household/dishes/mug",), (0x2615, 0x1F375)),
    "motorcycle": ("motorcycles", (), (0x1F3CD, 0x1F6F5)),
    "rocket": ("rockets", (), (0x1F680,)),
    "clock": ("clocks", (), (0x23F0, 0x1F570)),
    "coin": ("coins", (), (0x1FA99,)),
    "gift": ("gifts", (), (0x1F381,)),
    "bear": ("bears", ("animals/mammals/bears/bear", "animals/mammals/bears/european-bear"), (0x1F43B,)),
    "airplane": ("airplanes", ("vehicles/flight/planes/747",), (0x2708,)),
    "boat": ("boats", ("vehicles/ship/chineseJunk", "vehicles/ship/walnutBoat"), (0x26F5, 0x1F6A4)),
    "zebra": ("zebras", ("animals/mammals/equines/zebra",), (0x1F993,)),
    "giraffe": ("giraffes", ("animals/mammals/giraffe",), (0x1F992,)),
    "orange": ("oranges", ("food/fruit/orange", "food/fruit/orange_seville", "food/fruit/mandarine"), (0x1F34A,)),
    "broccoli": ("broccoli", ("food/vegetables/broccoli",), (0x1F966,)),
    "carrot": ("carrots", ("food/vegetables/carrot",), (0x1F955,)),
    "pizza": ("pizzas", ("food/pizza",), (0x1F355,)),
    "building": ("buildings", (), (0x1F3E0, 0x1F3EF, 0x1F3DB, 0x26EA, 0x1F3E1)),
}
scenes.EXTRA_PLURALS.update({noun: plural_ for noun, (plural_, *_rest) in NEW_CLASSES.items()})
STYLES = (("close-up", 0.35), ("single", 0.35), ("pair", 0.30))
STAMP_SHARE = 0.7  # of a class that has both, the share of its pictures drawn from real photos


def plural(noun: str) -> str:
    return NEW_CLASSES[noun][0] if noun in NEW_CLASSES else scenes.CLASSES[noun][0]


def nouns() -> list[str]:
    return sorted(set(scenes.CLASSES) | set(NEW_CLASSES))


def noun_table() -> dict[str, str]:
    """Every word naming a class (singular and plural) -> its noun: what object precision and recall count."""
    table = {}
    for noun in nouns():
        table[noun] = noun
        table[plural(noun)] = noun
    return table


def photo_sprites(noun: str) -> tuple[list, list]:
    """(real-photo stamps, emoji) of a class: photos are drawn more often than emoji (STAMP_SHARE)."""
    _, stamps, emoji = NEW_CLASSES[noun] if noun in NEW_CLASSES else (None, *scenes.CLASSES[noun][2:])
    found = [scenes._stamp_sprite(stamp) for stamp in stamps if (scenes.STAMPS / f"{stamp}.png").is_file()]
    return found, [scenes._emoji_sprite(code) for code in emoji]


def synthetic_photo_sprites(noun: str) -> list:
    """Drawn shapes for every class (tests on machines without the picture packages)."""
    from PIL import Image, ImageDraw

    position = nouns().index(noun)
    shade = (30 + 5 * position, 220 - 4 * position, 60 + 3 * position, 255)
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    [draw.ellipse, draw.rectangle][position % 2]([4 + position % 7, 4, 60, 60 - position % 5], fill=shade)
    return [image]


def background_files() -> list[Path]:
    found = []
    for folder in BACKGROUND_FOLDERS:
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() in (".jpg", ".jpeg", ".png") and path.is_file() and \
                        not any(word.lower() in str(path).lower() for word in EXCLUDED_BACKGROUNDS) and \
                        "screenshot" not in path.name.lower() and "contents/images_dark" not in str(path):
                    found.append(path)
    # One picture per wallpaper (plasma ships each one at several resolutions): the first file in name order.
    by_name: dict[str, Path] = {}
    for path in found:
        key = str(path.parent.parent) if path.parent.name == "images" else str(path.with_suffix(""))
        by_name.setdefault(key, path)
    return sorted(by_name.values())


def held_out_background(path: Path) -> bool:
    """One background in five (by a hash of its name) is kept for the validation and test pictures."""
    return int(hashlib.sha256(str(path).encode()).hexdigest(), 16) % 5 == 0


@lru_cache(maxsize=None)
def _background_image(path: str):
    from PIL import Image

    image = Image.open(path)
    image.draft("RGB", (900, 900))
    image = image.convert("RGB")
    image.thumbnail((900, 900), Image.BILINEAR)
    return image


def _drawn_background(rng):
    return scenes._background(rng)


class PhotoGenerator:
    """Photo-like pictures as a pure function of (seed, split, index).

    `sprite_source(noun)` gives a class's pictures, `backgrounds` the photographic background files (tests pass
    drawn ones); with no background file at all, drawn gradients stand in.
    """

    def __init__(self, seed: int = 0, sprite_source=None, backgrounds=None):
        self.seed = seed
        self.sprite_source = sprite_source or photo_sprites
        files = background_files() if backgrounds is None else list(backgrounds)
        self.train_backgrounds = [path for path in files if not held_out_background(path)]
        self.heldout_backgrounds = [path for path in files if held_out_background(path)]
        if files and not self.heldout_backgrounds:
            self.heldout_backgrounds = files[-1:]
            self.train_backgrounds = files[:-1] or files
        self.nouns = nouns()
        self.held_out_pairs = scenes.held_out_pairs(seed)

    def _background(self, rng, split: str):
        from PIL import Image

        pool = self.train_backgrounds if split == "train" else self.heldout_backgrounds
        if not pool or rng.random() < 0.15:
            return _drawn_background(rng)
        source = _background_image(str(pool[int(rng.integers(len(pool)))]))
        side = int(rng.integers(CANVAS, max(CANVAS + 1, min(source.size))))
        x0 = int(rng.integers(0, source.width - side + 1))
        y0 = int(rng.integers(0, source.height - side + 1))
        crop = source.crop((x0, y0, x0 + side, y0 + side)).resize((CANVAS, CANVAS), Image.BILINEAR)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        return crop

    def _pair(self, rng) -> tuple[str, str]:
        while True:
            a, b = rng.choice(self.nouns, size=2, replace=False)
            if frozenset((str(a), str(b))) not in self.held_out_pairs:
                return str(a), str(b)

    def _place(self, rng, image, noun: str, extent: int, centre) -> list:
        from PIL import Image

        options = self.sprite_source(noun)
        photos_, emoji = options if isinstance(options, tuple) else (list(options), [])
        pool = photos_ if photos_ and (not emoji or rng.random() < STAMP_SHARE) else emoji
        sprite = pool[int(rng.integers(len(pool)))]
        if rng.random() < 0.5:
            sprite = sprite.transpose(Image.FLIP_LEFT_RIGHT)
        if rng.random() < 0.3:
            sprite = sprite.rotate(float(rng.uniform(-20, 20)), resample=Image.BICUBIC, expand=True)
        scale = extent / max(sprite.size)
        sprite = sprite.resize((max(1, round(sprite.width * scale)), max(1, round(sprite.height * scale))),
                               Image.LANCZOS)
        x = int(centre[0] - sprite.width / 2)
        y = int(centre[1] - sprite.height / 2)
        image.paste(sprite, (x, y), sprite)
        return [max(0, x), max(0, y), min(CANVAS, x + sprite.width), min(CANVAS, y + sprite.height)]

    def _occlude(self, rng, image, box, split: str) -> None:
        """Covers up to a third of an object with a patch of another background (a thing in front of it)."""
        patch_source = self._background(rng, split)
        width, height = box[2] - box[0], box[3] - box[1]
        patch_w = int(width * rng.uniform(0.2, 0.55))
        patch_h = int(height * rng.uniform(0.2, 0.6))
        if patch_w < 4 or patch_h < 4:
            return
        side = int(rng.integers(4))
        x = box[0] if side == 0 else box[2] - patch_w if side == 1 else int(rng.integers(box[0], box[2] - patch_w + 1))
        y = box[1] if side == 2 else box[3] - patch_h if side == 3 else int(rng.integers(box[1], box[3] - patch_h + 1))
        image.paste(patch_source.crop((0, 0, patch_w, patch_h)), (x, y))

    def _damage(self, rng, image):
        from PIL import Image, ImageEnhance, ImageFilter

        image = ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.6, 1.35)))
        image = ImageEnhance.Contrast(image).enhance(float(rng.uniform(0.7, 1.3)))
        image = ImageEnhance.Color(image).enhance(float(rng.uniform(0.5, 1.4)))
        pixels = np.asarray(image, np.float32) * rng.uniform(0.85, 1.15, 3)  # a colour cast
        if rng.random() < 0.35:
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(
                ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.2))))
            pixels = np.asarray(image, np.float32)
        pixels = pixels + rng.normal(0, rng.uniform(0, 8), pixels.shape)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        if rng.random() < 0.6:
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=int(rng.integers(15, 90)))
            image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
        return image

    def scene(self, split: str, index: int):
        """(image (224, 224, 3) uint8, record with style, groups, relation and captions)."""
        rng = np.random.default_rng([self.seed, SPLITS[split], index, PHOTO_VERSION])
        roll = rng.random()
        style = "close-up" if roll < STYLES[0][1] else "single" if roll < STYLES[0][1] + STYLES[1][1] else "pair"
        image = self._background(rng, split)
        groups, relation = [], None
        if style == "close-up":
            noun = str(rng.choice(self.nouns))
            extent = int(CANVAS * rng.uniform(0.85, 1.6))  # fills the frame, often overflowing it
            centre = (CANVAS / 2 + rng.uniform(-30, 30), CANVAS / 2 + rng.uniform(-30, 30))
            box = self._place(rng, image, noun, extent, centre)
            groups.append(scenes.Group(noun, 1, "big", None, [box]))
        elif style == "single":
            noun = str(rng.choice(self.nouns))
            size = str(rng.choice(["small", "big"]))
            count = int(rng.integers(1, 3 if size == "big" else 4))
            low, high = (40, 70) if size == "small" else (90, 170)
            boxes = []
            for _ in range(count):
                extent = int(rng.integers(low, high + 1)) // (1 if count == 1 else 2 if size == "big" else 1)
                extent = max(extent, 40 if size == "small" else 78)
                for _attempt in range(40):
                    centre = (rng.uniform(extent / 2, CANVAS - extent / 2), rng.uniform(extent / 2, CANVAS - extent / 2))
                    box = [centre[0] - extent / 2, centre[1] - extent / 2, centre[0] + extent / 2, centre[1] + extent / 2]
                    if not scenes._overlaps(box, boxes, slack=extent // 6):
                        boxes.append(box)
                        break
            boxes = [self._place(rng, image, noun, int(box[2] - box[0]), ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2))
                     for box in boxes]
            groups.append(scenes.Group(noun, len(boxes), size, None, boxes))
        else:
            a, b = self._pair(rng)
            relation = str(rng.choice(list(scenes.RELATIONS)))
            half = CANVAS // 2
            horizontal = relation in ("left", "right")
            for position, noun in enumerate((a, b)):
                size = str(rng.choice(["small", "big"]))
                extent = int(rng.integers(40, 62)) if size == "small" else int(rng.integers(80, 104))
                first = (position == 0) == (relation in ("left", "above"))
                along = rng.uniform(extent / 2 + 2, half - extent / 2 - 2) + (0 if first else half)
                across = rng.uniform(extent / 2 + 2, CANVAS - extent / 2 - 2)
                centre = (along, across) if horizontal else (across, along)
                box = self._place(rng, image, noun, extent, centre)
                groups.append(scenes.Group(noun, 1, size, None, [box]))
        if style != "pair" and rng.random() < 0.3:
            self._occlude(rng, image, [int(v) for v in groups[0].boxes[0]], split)
        image = self._damage(rng, image)
        for group in groups:
            group.boxes = [[int(v) for v in box] for box in group.boxes]
        captions = scenes.captions(groups, relation)
        record = {"split": split, "index": index, "style": style, "relation": relation,
                  "groups": [dataclasses.asdict(group) for group in groups], "captions": captions}
        return np.asarray(image, dtype=np.uint8), record


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write a few photo-like training pictures to look at.")
    parser.add_argument("--out", default="runs/captioning/photo_samples")
    parser.add_argument("--split", default="train", choices=sorted(SPLITS))
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from PIL import Image

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    generator = PhotoGenerator(args.seed)
    print(f"{len(generator.train_backgrounds)} training backgrounds, {len(generator.heldout_backgrounds)} held out")
    records = []
    for index in range(args.count):
        image, record = generator.scene(args.split, index)
        Image.fromarray(image).save(out / f"{args.split}_{index:05d}.jpg", quality=92)
        records.append(record)
        print(f"{args.split}_{index:05d}.jpg ({record['style']}): {record['captions'][0]}")
    (out / "photos.json").write_text(json.dumps(records))


if __name__ == "__main__":
    main()
