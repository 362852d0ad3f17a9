"""Pictures of digits with Pillow and NumPy only (no TensorFlow): grids, labelled grids, animated GIFs.

Digits come in as uint8 arrays (n, 28, 28) with 0 = black background, as MNIST draws them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = 24  # the grey between digits: dark, so the black digit backgrounds still read as tiles


def columns_for(count: int) -> int:
    """A near-square grid: the number of columns for `count` digits."""
    return max(1, math.ceil(math.sqrt(count)))


def grid(digits: np.ndarray, columns: int | None = None, scale: int = 2, padding: int = 2) -> Image.Image:
    """The digits (n, 28, 28) uint8 side by side, row by row, as one greyscale image."""
    digits = np.asarray(digits, dtype=np.uint8)
    count, height, width = digits.shape
    columns = columns or columns_for(count)
    rows = max(1, math.ceil(count / columns))
    cell_h, cell_w = height * scale + padding, width * scale + padding
    canvas = np.full((rows * cell_h + padding, columns * cell_w + padding), BACKGROUND, dtype=np.uint8)
    for index, digit in enumerate(digits):
        row, column = divmod(index, columns)
        big = np.kron(digit, np.ones((scale, scale), dtype=np.uint8))  # (28 * scale, 28 * scale)
        top, left = padding + row * cell_h, padding + column * cell_w
        canvas[top:top + height * scale, left:left + width * scale] = big
    return Image.fromarray(canvas, mode="L")


def font(size: int) -> ImageFont.ImageFont:
    for name in ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf", "LiberationSans-Bold.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the small bitmap font
        return ImageFont.load_default()


def confidence_colour(confidence: float) -> tuple[int, int, int]:
    """Green for a sure guess, amber for a hesitant one, red for a guess the classifier barely believes."""
    if confidence >= 0.9:
        return (110, 231, 140)
    if confidence >= 0.6:
        return (250, 204, 21)
    return (248, 113, 113)


def labelled_grid(digits: np.ndarray, guesses: list[int], confidences: list[float], columns: int | None = None,
                  scale: int = 3) -> Image.Image:
    """Each digit with the classifier's guess and confidence written under it (an RGB image)."""
    digits = np.asarray(digits, dtype=np.uint8)
    count = len(digits)
    columns = columns or columns_for(count)
    rows = max(1, math.ceil(count / columns))
    size = 28 * scale
    caption = max(16, size // 4)
    gap = 6
    cell_w, cell_h = size + gap, size + caption + gap
    canvas = Image.new("RGB", (columns * cell_w + gap, rows * cell_h + gap), (17, 24, 39))
    draw = ImageDraw.Draw(canvas)
    text_font = font(max(11, int(caption * 0.72)))
    for index, (digit, guess, confidence) in enumerate(zip(digits, guesses, confidences)):
        row, column = divmod(index, columns)
        left, top = gap + column * cell_w, gap + row * cell_h
        tile = Image.fromarray(np.kron(digit, np.ones((scale, scale), dtype=np.uint8)), mode="L").convert("RGB")
        canvas.paste(tile, (left, top))
        label = f"{guess} · {confidence:.0%}"
        box = draw.textbbox((0, 0), label, font=text_font)
        draw.text((left + (size - (box[2] - box[0])) / 2, top + size + 1), label,
                  fill=confidence_colour(confidence), font=text_font)
    return canvas


def with_header(image: Image.Image, text: str, height: int = 22) -> Image.Image:
    """The image with a line of text above it (e.g. 'epoch 7' on a frame of the training GIF)."""
    framed = Image.new(image.mode, (image.width, image.height + height), BACKGROUND if image.mode == "L" else
                       (BACKGROUND,) * 3)
    framed.paste(image, (0, height))
    draw = ImageDraw.Draw(framed)
    draw.text((6, 3), text, fill=230 if image.mode == "L" else (230, 230, 230), font=font(height - 7))
    return framed


def save_gif(frames: list[Image.Image], path: Path, duration_ms: int = 250, last_frame_ms: int = 1500,
             loop: int = 0, grey_levels: int = 0) -> Path:
    """Writes the frames as an animated GIF (the last one held longer); returns the path.

    `grey_levels` (e.g. 16) rounds greyscale frames to that many evenly spaced levels first: a GIF of many frames
    becomes ~4x smaller, and white-on-black digits look the same.
    """
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    if grey_levels:
        step = 255 / (grey_levels - 1)
        table = [round(round(value / step) * step) for value in range(256)]
        frames = [frame.convert("L").point(table) for frame in frames]
    path = Path(path)
    durations = [duration_ms] * (len(frames) - 1) + [last_frame_ms]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=loop,
                   optimize=False, disposal=1)
    return path


def gif_frame_count(path: Path) -> int:
    with Image.open(path) as image:
        return getattr(image, "n_frames", 1)


def gif_frames(path: Path) -> list[Image.Image]:
    """Every frame of a GIF as a greyscale image (e.g. to continue a run's progress GIF in another run)."""
    from PIL import ImageSequence

    with Image.open(path) as image:
        return [frame.convert("L") for frame in ImageSequence.Iterator(image)]
