"""The offline captioning data: composed scenes of real pictures, captioned from what was placed where.

No captioning data set can be downloaded here, so scenes are composed from pictures that Debian packages bundle:
photos of animals, fruit, vehicles, plants and things from Tux Paint's stamps (`tuxpaint-stamps-default`, GPL-2,
photos with transparent backgrounds) and Noto colour emoji (`fonts-noto-color-emoji`, Apache-2.0) for the same
object classes. A scene holds one or two groups of objects (one class, 1-3 copies, one size, and a colour for
classes whose colour varies) on a varied background; two groups stand left/right of or above/below each other.
Captions are generated from the placement in several phrasings:

    "two small red cars to the left of a big dog"     "a big dog is to the right of two small red cars"
    "there are two small red cars left of a big dog"  "a picture of two small red cars and a big dog"

`SceneGenerator(seed).scene(split, index)` is a pure function of (seed, split, index): the same call always draws
the same picture. The held-out split uses only pairs of classes that never meet in a training scene (drawn from
the seed), so its scores measure captions of unseen object combinations.

    python -m trainers.captioning.scenes --out /tmp/scenes --count 12    # write a few scenes to look at
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np

CANVAS = 224
STAMPS = Path("/usr/share/tuxpaint/stamps")
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
GENERATOR_VERSION = 1
SPLITS = {"train": 0, "val": 1, "test": 2}

# class noun -> (plural, colourable, Tux Paint stamps (relative to STAMPS, without .png), emoji code points)
CLASSES: dict[str, tuple[str, bool, tuple[str, ...], tuple[int, ...]]] = {
    "dog": ("dogs", False, ("animals/mammals/dogs/dog", "animals/mammals/dogs/dingo"), (0x1F415, 0x1F436)),
    "cat": ("cats", False, (), (0x1F408, 0x1F431)),
    "horse": ("horses", False, ("animals/mammals/equines/horse",), (0x1F40E, 0x1F434)),
    "cow": ("cows", False, ("animals/mammals/bovines/cow", "animals/mammals/bovines/cow_white"), (0x1F404, 0x1F42E)),
    "pig": ("pigs", False, ("animals/mammals/pig", "animals/mammals/pig_golden"), (0x1F416, 0x1F437)),
    "sheep": ("sheep", False, ("animals/mammals/bovines/sheep", "animals/mammals/bovines/sheep_lamb"), (0x1F411,)),
    "elephant": ("elephants", False, ("animals/mammals/elephant",), (0x1F418,)),
    "owl": ("owls", False, ("animals/birds/owl",), (0x1F989,)),
    "duck": ("ducks", False, ("animals/birds/duck", "animals/birds/drake"), (0x1F986,)),
    "penguin": ("penguins", False, ("animals/birds/penguin", "animals/birds/little-penguin",
                                    "animals/birds/magellanic_penguin"), (0x1F427,)),
    "fish": ("fish", False, ("animals/fish/stripedfish", "animals/fish/coraltrout", "animals/fish/moonwrasse",
                             "animals/fish/butterflyfish", "animals/fish/clownfish"), (0x1F41F, 0x1F420)),
    "rabbit": ("rabbits", False, ("animals/mammals/rodents/rabbit", "animals/mammals/rodents/rabbit-2"),
               (0x1F407, 0x1F430)),
    "apple": ("apples", False, ("food/fruit/apple_red", "food/fruit/apple_green", "food/fruit/apple_fuji",
                                "food/fruit/apple_granny_smith"), (0x1F34E, 0x1F34F)),
    "banana": ("bananas", False, ("food/fruit/banana",), (0x1F34C,)),
    "strawberry": ("strawberries", False, ("food/fruit/strawberry", "food/fruit/Strawberry2"), (0x1F353,)),
    "car": ("cars", True, ("vehicles/auto/sedan", "vehicles/auto/beetle", "vehicles/auto/sportscar2"), (0x1F697,)),
    "truck": ("trucks", True, ("vehicles/auto/truck", "vehicles/emergency/firetruck", "vehicles/garbagetruck"),
              (0x1F69A,)),
    "bus": ("buses", True, ("vehicles/masstransit/green_korean_bus",), (0x1F68C,)),
    "tree": ("trees", False, ("plants/trees/tree336", "plants/trees/birch", "plants/trees/holm_oak",
                              "plants/trees/liberia-palm"), (0x1F333, 0x1F332)),
    "flower": ("flowers", True, ("plants/flowers/rose", "plants/flowers/daffodil", "plants/flowers/flower1",
                                 "plants/flowers/flower3", "plants/flowers/marigold"), (0x1F337, 0x1F33B)),
    "ball": ("balls", True, ("sports/basketball", "sports/soccer", "sports/tennis_ball"), (0x26BD, 0x1F3C0)),
    "guitar": ("guitars", False, ("hobbies/music/string/guitar_classical", "hobbies/music/string/guitar2",
                                  "hobbies/music/string/guitar_electric"), (0x1F3B8,)),
    "hat": ("hats", True, ("clothes/hats/tophat", "clothes/hats/green_fedora", "clothes/hats/blue_fedora",
                           "clothes/hats/sombrero"), (0x1F3A9,)),
    "balloon": ("balloons", True, ("vehicles/flight/balloon360",), (0x1F388,)),
}
COLOURS = {"red": (220, 30, 30), "yellow": (245, 215, 20), "green": (40, 170, 50), "blue": (35, 80, 225),
           "purple": (140, 50, 190), "pink": (250, 120, 190)}
SIZES = {"small": (40, 54), "big": (78, 94)}  # the longer side of each object, in pixels on the 224 canvas
COUNT_WORDS = {1: "a", 2: "two", 3: "three"}
RELATIONS = {"left": ("to the left of", "right"), "right": ("to the right of", "left"),
             "above": ("above", "below"), "below": ("below", "above")}
HELD_OUT_PAIR_SHARE = 0.12
# Plurals of classes defined elsewhere (photos.NEW_CLASSES registers its own), so `captions` phrases them too.
EXTRA_PLURALS: dict[str, str] = {}


@dataclasses.dataclass
class Group:
    noun: str
    count: int
    size: str
    colour: str | None
    boxes: list  # [x0, y0, x1, y1] per object

    def phrase(self) -> str:
        words = [COUNT_WORDS[self.count], self.size]
        if self.colour:
            words.append(self.colour)
        plural = CLASSES[self.noun][0] if self.noun in CLASSES else EXTRA_PLURALS[self.noun]
        words.append(self.noun if self.count == 1 else plural)
        return " ".join(words)

    def verb(self) -> str:
        return "is" if self.count == 1 else "are"


def captions(groups: list[Group], relation: str | None) -> list[str]:
    """Every phrasing of a scene (the references for BLEU); training samples among them."""
    if len(groups) == 1:
        a = groups[0]
        return [a.phrase(), f"there {a.verb()} {a.phrase()}", f"a picture of {a.phrase()}",
                f"{a.phrase()} on a background"]
    a, b = groups
    words, inverse = RELATIONS[relation]
    short = words.replace("to the ", "")
    return [f"{a.phrase()} {words} {b.phrase()}", f"{b.phrase()} {b.verb()} {RELATIONS[inverse][0]} {a.phrase()}", f"there {a.verb()} {a.phrase()} {short} {b.phrase()}",
            f"a picture of {a.phrase()} and {b.phrase()}"]


def held_out_pairs(seed: int) -> set[frozenset]:
    """The class pairs reserved for the test split (never together in a training scene)."""
    pairs = sorted(itertools.combinations(sorted(CLASSES), 2))
    rng = np.random.default_rng([seed, 7919])
    chosen = rng.choice(len(pairs), size=int(round(len(pairs) * HELD_OUT_PAIR_SHARE)), replace=False)
    return {frozenset(pairs[index]) for index in sorted(chosen)}


def sources_available() -> list[str]:
    """Problems with the installed picture packages, as sentences (empty when everything is there)."""
    problems = []
    if not EMOJI_FONT.is_file():
        problems.append(f"{EMOJI_FONT} is missing: apt-get install fonts-noto-color-emoji")
    if not STAMPS.is_dir():
        problems.append(f"{STAMPS} is missing: apt-get install tuxpaint-stamps-default")
    return problems


@lru_cache(maxsize=None)
def _emoji_sprite(code_point: int):
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(EMOJI_FONT), 109)  # the bitmap font exists at this one size
    canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((10, 10), chr(code_point), font=font, embedded_color=True)
    return canvas.crop(canvas.getbbox())


@lru_cache(maxsize=None)
def _stamp_sprite(relative: str):
    from PIL import Image

    image = Image.open(STAMPS / f"{relative}.png").convert("RGBA")
    image = image.crop(image.getchannel("A").point(lambda a: 255 if a > 16 else 0).getbbox())
    image.thumbnail((160, 160), Image.LANCZOS)
    return image


def sprites(noun: str) -> list:
    _, _, stamps, emoji = CLASSES[noun]
    found = [_stamp_sprite(stamp) for stamp in stamps if (STAMPS / f"{stamp}.png").is_file()]
    return found + [_emoji_sprite(code) for code in emoji]


def check_classes() -> list[str]:
    """Problems with the class table (a missing stamp, a wrong code point), as sentences."""
    problems = []
    for noun, (_, _, stamps, emoji) in CLASSES.items():
        for stamp in stamps:
            if not (STAMPS / f"{stamp}.png").is_file():
                problems.append(f"{noun}: stamp {stamp}.png is missing")
        for code in emoji:
            if not unicodedata.name(chr(code), ""):
                problems.append(f"{noun}: U+{code:X} is not a named character")
    return problems


def _tint(sprite, colour):
    """Recolours a picture, keeping its shading: luminance times the colour, alpha kept."""
    from PIL import Image

    array = np.asarray(sprite, dtype=np.float32)
    luminance = array[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)  # (height, width)
    # Stretch the shading to the full range so dark pictures still show a bright, readable colour.
    visible = luminance[array[..., 3] > 16]
    low, high = (np.percentile(visible, [5, 95]) if visible.size else (0.0, 255.0))
    shading = np.clip((luminance - low) / max(high - low, 1.0), 0, 1)[..., None]
    tinted = np.clip(np.array(colour, np.float32) * (0.5 + 0.65 * shading), 0, 255)
    return Image.fromarray(np.concatenate([tinted, array[..., 3:]], axis=-1).astype(np.uint8), "RGBA")


def _background(rng: np.random.Generator):
    from PIL import Image, ImageDraw, ImageFilter

    style = rng.integers(3)
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    if style == 0:  # sky over ground
        top = np.array([rng.integers(90, 200), rng.integers(150, 230), rng.integers(200, 256)])
        bottom = np.array([rng.integers(60, 140), rng.integers(110, 190), rng.integers(40, 100)])
    elif style == 1:  # a pale room wall
        top = rng.integers(170, 250, 3)
        bottom = np.clip(top - rng.integers(10, 60, 3), 0, 255)
    ramp = np.linspace(0.0, 1.0, CANVAS, dtype=np.float32)[:, None, None]
    if style == 0:
        horizon = rng.uniform(0.45, 0.75)
        ramp = 1 / (1 + np.exp(-(ramp - horizon) * 30))
    pixels = top[None, None, :] * (1 - ramp) + bottom[None, None, :] * ramp  # (224, 1, 3)
    pixels = np.broadcast_to(pixels, (CANVAS, CANVAS, 3)).copy()
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(0, 6))):  # soft blobs: clouds, bushes, shadows
        x, y, radius = rng.integers(0, CANVAS), rng.integers(0, CANVAS), rng.integers(10, 60)
        shade = tuple(int(v) for v in np.clip(pixels[y, x] + rng.integers(-50, 50, 3), 0, 255))
        draw.ellipse([x - radius, y - radius // 2, x + radius, y + radius // 2], fill=shade)
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(2, 6))))
    noise = rng.normal(0, rng.uniform(2, 9), (CANVAS, CANVAS, 3))
    return Image.fromarray(np.clip(np.asarray(image, np.float32) + noise, 0, 255).astype(np.uint8), "RGB")


def _overlaps(box, boxes, slack=4) -> bool:
    return any(box[0] < other[2] - slack and other[0] < box[2] - slack and box[1] < other[3] - slack
               and other[1] < box[3] - slack for other in boxes)


def synthetic_sprites(noun: str) -> list:
    """Plain drawn shapes standing in for the packaged pictures (for tests on machines without the packages)."""
    from PIL import Image, ImageDraw

    position = sorted(CLASSES).index(noun)
    shade = (40 + 9 * position, 200 - 7 * position, 90 + 5 * position, 255)
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if position % 3 == 0:
        draw.ellipse([4, 4, 60, 60], fill=shade)
    elif position % 3 == 1:
        draw.rectangle([8, 8, 56, 56], fill=shade)
    else:
        draw.polygon([(32, 2), (62, 62), (2, 62)], fill=shade)
    return [image]


class SceneGenerator:
    """Draws scenes as a pure function of (seed, split, index).

    `sprite_source(noun)` returns the candidate pictures of a class; by default the packaged photos and emoji.
    """

    def __init__(self, seed: int = 0, sprite_source=None):
        self.seed = seed
        self.held_out = held_out_pairs(seed)
        self.nouns = sorted(CLASSES)
        self.sprite_source = sprite_source or sprites

    def _pair(self, rng, held_out: bool) -> tuple[str, str]:
        while True:
            a, b = rng.choice(self.nouns, size=2, replace=False)
            if (frozenset((a, b)) in self.held_out) == held_out:
                return str(a), str(b)

    def _group(self, rng, noun: str, region, placed: list) -> Group:
        size = str(rng.choice(list(SIZES)))
        count = int(rng.integers(1, 3 if size == "big" else 4))
        colour = str(rng.choice(list(COLOURS))) if CLASSES[noun][1] else None
        low, high = SIZES[size]
        boxes = []
        for _ in range(count):
            extent = int(rng.integers(low, high + 1))
            for _attempt in range(60):
                x0 = int(rng.integers(region[0], max(region[0] + 1, region[2] - extent)))
                y0 = int(rng.integers(region[1], max(region[1] + 1, region[3] - extent)))
                box = [x0, y0, x0 + extent, y0 + extent]
                if not _overlaps(box, placed + boxes):
                    boxes.append(box)
                    break
            # An object that finds no free spot is left out, and the count (and caption) says so.
        return Group(noun, len(boxes), size, colour, boxes)

    def scene(self, split: str, index: int):
        """(image as (224, 224, 3) uint8, scene dict with groups, relation and captions)."""
        from PIL import Image

        rng = np.random.default_rng([self.seed, SPLITS[split], index, GENERATOR_VERSION])
        two_groups = split != "train" or rng.random() < 0.75
        margin = 4
        if two_groups:
            a, b = self._pair(rng, held_out=split == "test")
            relation = str(rng.choice(list(RELATIONS)))
            half = CANVAS // 2
            regions = {"left": ([margin, margin, half - 2, CANVAS - margin], [half + 2, margin, CANVAS - margin,
                                                                                CANVAS - margin]),
                       "above": ([margin, margin, CANVAS - margin, half - 2], [margin, half + 2, CANVAS - margin,
                                                                                CANVAS - margin])}
            key = "left" if relation in ("left", "right") else "above"
            first, second = regions[key] if relation in ("left", "above") else regions[key][::-1]
            group_a = self._group(rng, a, first, [])
            group_b = self._group(rng, b, second, group_a.boxes)
            groups = [group_a, group_b]
        else:
            relation = None
            groups = [self._group(rng, str(rng.choice(self.nouns)), [margin, margin, CANVAS - margin,
                                                                     CANVAS - margin], [])]
        image = _background(rng)
        for group in groups:
            options = self.sprite_source(group.noun)
            for box in group.boxes:
                sprite = options[int(rng.integers(len(options)))]
                if group.colour:
                    sprite = _tint(sprite, COLOURS[group.colour])
                if rng.random() < 0.5:
                    sprite = sprite.transpose(Image.FLIP_LEFT_RIGHT)
                extent = box[2] - box[0]
                scale = extent / max(sprite.size)
                sprite = sprite.resize((max(1, round(sprite.width * scale)), max(1, round(sprite.height * scale))),
                                       Image.LANCZOS)
                # Centre the sprite in its square box, resting on the box's bottom edge.
                x = box[0] + (extent - sprite.width) // 2
                y = box[1] + (extent - sprite.height)
                image.paste(sprite, (x, y), sprite)
        scene = {"split": split, "index": index, "relation": relation,
                 "groups": [dataclasses.asdict(group) for group in groups], "captions": captions(groups, relation)}
        return np.asarray(image, dtype=np.uint8), scene


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write a few composed scenes (PNG + captions) to look at.")
    parser.add_argument("--out", default="runs/captioning/scene_samples")
    parser.add_argument("--split", default="train", choices=sorted(SPLITS))
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    problems = sources_available() + check_classes()
    if problems:
        raise SystemExit(f"error: {problems[0]}")
    from PIL import Image

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    generator = SceneGenerator(args.seed)
    for index in range(args.count):
        image, scene = generator.scene(args.split, index)
        Image.fromarray(image).save(out / f"{args.split}_{index:05d}.png")
        print(f"{args.split}_{index:05d}.png: " + " | ".join(scene["captions"]))
    (out / "scenes.json").write_text(json.dumps([generator.scene(args.split, i)[1] for i in range(args.count)]))


if __name__ == "__main__":
    main()
