"""The Caption tab under hostile or odd input: server paths, concurrent identical requests, every Pillow mode,
EXIF orientation, decompression bombs, bad beam widths and refused uploads. Each test failed before its fix."""

from __future__ import annotations

import struct
import time
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

OUTSIDE_MESSAGE = "That picture is not an upload of this page"


@pytest.fixture(scope="module")
def tiny_captioner(tmp_path_factory):
    from tests.tiny import captioning
    from trainers.captioning.caption import Captioner

    return Captioner.load(captioning.make(tmp_path_factory.mktemp("tiny") / "captioning"))


def upload_folder() -> Path:
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder())


def in_upload_folder(name: str) -> Path:
    """A fresh folder inside Gradio's upload folder (where a real upload lands) for a file called `name`."""
    folder = upload_folder() / f"test-hardening-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    return folder / name


def error_text(error: BaseException) -> str:
    return str(error)


def assert_sentence(message: str) -> None:
    """A human sentence: no traceback, no Python exception name, no server path."""
    assert "Traceback" not in message and "Error:" not in message.replace("gr.Error", ""), message
    assert "/tmp" not in message and str(ROOT) not in message and "/root" not in message, message


# ---- 3. every Pillow mode at >= 896 px, EXIF orientation ------------------------------------------------------


def mode_pictures(folder: Path) -> dict[str, Path]:
    from PIL import Image

    side = (960, 900)  # short side >= 896: load_image shrinks it with Image.reduce
    files = {}
    palette = Image.new("P", side, 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(1, (0, 0, 480, 900))
    files["P"] = folder / "palette.png"
    palette.save(files["P"])
    files["P_transparent"] = folder / "palette_transparent.png"
    palette.save(files["P_transparent"], transparency=0)  # the red half is transparent -> white
    files["1"] = folder / "bilevel.png"
    Image.new("1", side, 1).save(files["1"])
    files["I;16"] = folder / "sixteen.png"
    Image.fromarray(np.full(side[::-1], 32768, np.uint16)).save(files["I;16"])  # half of 65535 -> mid grey
    files["CMYK"] = folder / "cmyk.jpg"
    Image.new("CMYK", side, (0, 255, 255, 0)).save(files["CMYK"])  # red
    files["LA"] = folder / "la.png"
    Image.new("LA", side, (40, 255)).save(files["LA"])
    files["RGBA"] = folder / "rgba.png"
    Image.new("RGBA", side, (0, 0, 0, 0)).save(files["RGBA"])
    files["F"] = folder / "float.tif"
    Image.fromarray(np.full(side[::-1], 0.5, np.float32)).save(files["F"])
    return files


EXPECTED_COLOURS = {"P": None, "P_transparent": None, "1": (255, 255, 255), "I;16": (128, 128, 128),
                    "CMYK": (255, 0, 0), "LA": (40, 40, 40), "RGBA": (255, 255, 255), "F": (128, 128, 128)}


def test_every_mode_at_896_px_and_more(tmp_path, tiny_captioner):
    from PIL import Image

    from playground import caption_tab
    from trainers.captioning.encoder import load_image

    files = mode_pictures(tmp_path)
    with Image.open(files["I;16"]) as image:
        assert image.mode.startswith("I")
    for name, path in files.items():
        pixels = load_image(path)
        assert pixels.shape == (224, 224, 3) and pixels.dtype == np.uint8, name
        expected = EXPECTED_COLOURS[name]
        if expected is not None:
            assert (np.abs(pixels.astype(int) - expected) <= 3).all(), (name, pixels[100, 100])
        result = caption_tab.caption_picture(tiny_captioner, str(path), 2)
        assert result["picture"].shape == (420, 448, 3), name
    palette = load_image(files["P"])
    assert tuple(palette[100, 20]) == (0, 0, 255) and tuple(palette[100, 200]) == (255, 0, 0)
    transparent = load_image(files["P_transparent"])
    assert tuple(transparent[100, 20]) == (0, 0, 255) and tuple(transparent[100, 200]) == (255, 255, 255)


def exif_rotated_jpeg(path: Path) -> Path:
    """Stored 600 wide x 300 high, left half red; EXIF orientation 6: shown rotated 90 degrees clockwise, so the
    person sees a portrait 300 wide x 600 high with the red half on top."""
    from PIL import Image

    stored = Image.new("RGB", (600, 300), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 300, 300))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, exif=exif, quality=95)
    return path


def test_exif_orientation_is_applied(tmp_path, tiny_captioner):
    from trainers.captioning.encoder import load_image

    path = exif_rotated_jpeg(tmp_path / "portrait.jpg")
    pixels = load_image(path).astype(int)
    assert (np.abs(pixels[20, 112] - (255, 0, 0)) < 40).all() and (np.abs(pixels[200, 112] - (0, 0, 255)) < 40).all()


# ---- 4. the pixel limit, by the header ------------------------------------------------------------------------


def flat_png(path: Path, side: int) -> Path:
    """A side x side 1-bit black PNG written row by row (a few tens of KB on disk, no big array in memory)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_a_huge_png_is_refused_by_its_header(tmp_path, tiny_captioner):
    import gradio as gr

    from playground import caption_tab
    from trainers.captioning.encoder import MAX_PIXELS, ImageError, load_image

    path = flat_png(tmp_path / "huge.png", 16900)
    assert path.stat().st_size < 1_000_000
    started = time.monotonic()
    with pytest.raises(ImageError, match="16,900 x 16,900 pixels") as caught:
        load_image(path)
    assert time.monotonic() - started < 2
    assert f"{MAX_PIXELS:,}" in str(caught.value) and "not a picture" not in str(caught.value)
    started = time.monotonic()
    with pytest.raises(gr.Error) as caught:
        caption_tab.caption_picture(tiny_captioner, str(path), 1)
    assert time.monotonic() - started < 2
    assert "too large: 16,900 x 16,900 pixels" in caught.value.message
    assert_sentence(caught.value.message)
    # Beyond twice the limit Pillow itself refuses while opening: the same kind of sentence.
    with pytest.raises(ImageError, match="the picture is too large: 302,760,000 pixels"):
        load_image(flat_png(tmp_path / "huger.png", 17400))


def test_a_huge_jpeg_is_decoded_at_a_reduced_scale(tmp_path):
    from PIL import Image

    from trainers.captioning import encoder

    path = tmp_path / "big.jpg"
    Image.new("RGB", (6000, 4000), (20, 120, 200)).save(path, quality=60)
    opened = encoder.open_picture(path, encoder.IMAGE_SIZE)
    assert max(opened.size) <= 6000 // 4 and opened.mode == "RGB"
