"""The Caption tab under hostile or odd input: server paths, concurrent identical requests, every Pillow mode,
EXIF orientation, decompression bombs, bad beam widths and refused uploads. Each test failed before its fix."""

from __future__ import annotations

import os
import struct
import threading
import time
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, screenshot

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


# ---- 1. the endpoint reads only uploads -----------------------------------------------------------------------


def test_caption_endpoint_refuses_server_paths(client, tmp_path):
    import json

    from gradio_client import handle_file
    from PIL import Image

    outside = tmp_path / "secret.png"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(outside)
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    link = in_upload_folder("link.png")
    link.symlink_to(outside)  # inside the upload folder by name, outside it once resolved
    messages = []
    for payload in ({"path": str(outside)}, {"path": str(tmp_path / "missing.png")}, {"path": str(text)},
                    {"path": "/etc/passwd"}, {"path": str(link)}, {"path": str(tmp_path)},
                    {"path": str(upload_folder() / ".." / outside.name)}, {"path": str(upload_folder())},
                    {"path": str(outside), "url": "http://127.0.0.1/secret.png"}):
        with pytest.raises(Exception) as caught:
            client.predict(payload, 1, api_name="/caption")
        messages.append(error_text(caught.value))
    # One sentence for all of them: it tells nothing about which server paths exist, and names none.
    assert len(set(messages)) == 1, messages
    assert OUTSIDE_MESSAGE in messages[0]
    assert_sentence(messages[0])
    with pytest.raises(Exception, match="Upload a picture first"):  # a URL is never fetched or opened
        client.predict({"url": "file:///etc/passwd"}, 1, api_name="/caption")
    with pytest.raises(Exception, match="validation error"):  # a bare string: Gradio's own check refuses it
        client.predict(str(outside), 1, api_name="/caption")
    # A payload that claims to be Gradio's FileData is checked by Gradio itself: still no picture comes back.
    # (gradio_client would upload such a dict from the client's disk, so it is sent as raw JSON.)
    stream = call_raw(client.src, json.dumps({"data": [{"path": str(outside), "meta": {"_type": "gradio.FileData"}},
                                                        1]}))
    assert "event: error" in stream and "event: complete" not in stream, stream
    # Real uploads (handle_file) keep working, the endpoint's name and parameters unchanged.
    assert client.predict(handle_file(str(outside)), 1, api_name="/caption")[0]
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/caption"]
    assert [parameter["parameter_name"] for parameter in api["parameters"]] == ["upload", "beam"]


def test_an_unreadable_upload_names_no_server_path(client, tmp_path):
    import io

    from gradio_client import handle_file
    from PIL import Image

    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    data = io.BytesIO()
    Image.new("RGB", (100, 100), (1, 2, 3)).save(data, "PNG")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(data.getvalue()[:60])
    for path in (text, truncated):
        with pytest.raises(Exception) as caught:
            client.predict(handle_file(str(path)), 1, api_name="/caption")
        message = error_text(caught.value)
        assert message.startswith(f"That file cannot be read as a picture: {path.name} is not a picture"), message
        assert_sentence(message)
        assert "/" not in message.replace("TIFF...", ""), message


# ---- 2. concurrent identical requests -------------------------------------------------------------------------


def test_concurrent_identical_captions_all_succeed(app_url, tmp_path):
    from gradio_client import Client, handle_file
    from PIL import Image

    picture = tmp_path / "same.png"
    Image.fromarray(np.random.default_rng(7).integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(picture)
    clients = 8
    rounds = 3
    results, failures = [], []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def worker(index):
        client = Client(app_url, verbose=False, download_files=str(tmp_path / f"client{index}"))
        start.wait()
        for _ in range(rounds):
            try:
                caption, _, focus, gallery, details, _, _ = client.predict(handle_file(str(picture)), 2,
                                                                     api_name="/caption")
                files = [focus] + [item["image"] for item in gallery]
                for path in files:
                    with Image.open(path) as image:
                        image.load()
                with lock:
                    results.append((caption, len(files)))
            except Exception as error:  # noqa: BLE001 - counted and reported
                with lock:
                    failures.append(repr(error))

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures
    assert len(results) == clients * rounds and len(set(results)) == 1, results


def test_each_response_gets_its_own_image_files(tmp_path, monkeypatch):
    from playground import caption_tab, outputs

    monkeypatch.setattr(outputs, "ROOT", tmp_path)
    monkeypatch.setattr(outputs, "FOLDER", tmp_path / "out")
    stale = tmp_path / "12345"  # the folder of an app process killed earlier
    stale.mkdir()
    (stale / "old.webp").write_bytes(b"x")
    os.utime(stale / "old.webp", (time.time() - 2 * outputs.LIFETIME,) * 2)
    picture = np.full((20, 30, 3), 90, np.uint8)
    first, second = caption_tab.image_file(picture), caption_tab.image_file(picture)
    assert first != second and Path(first).read_bytes() == Path(second).read_bytes()
    assert not [path for path in (tmp_path / "out").iterdir() if path.name.startswith(".")]  # no staging left
    assert not stale.exists()


def test_concurrent_prunes_of_vanishing_folders_raise_nothing(tmp_path, monkeypatch):
    """The soak found it: one thread's prune removed an earlier process's folder while another listed it."""
    import threading

    from playground import outputs

    monkeypatch.setattr(outputs, "ROOT", tmp_path)
    monkeypatch.setattr(outputs, "FOLDER", tmp_path / "mine")
    errors = []

    def churn(index):
        try:
            for round_number in range(30):
                staging = tmp_path.parent / f"{tmp_path.name}-staging-{index}-{round_number}"
                staging.mkdir()
                (staging / "a.webp").write_bytes(b"x")
                os.utime(staging / "a.webp", (time.time() - 2 * outputs.LIFETIME,) * 2)
                staging.rename(tmp_path / f"{index}-{round_number}")  # an earlier process's folder appears
                outputs.picture_file(np.zeros((4, 4, 3), np.uint8))
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=churn, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(list((tmp_path / "mine").glob("*.webp"))) == 6 * 30


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
    from playground import caption_tab
    from trainers.captioning.encoder import load_image

    path = exif_rotated_jpeg(tmp_path / "portrait.jpg")
    pixels = load_image(path).astype(int)
    assert (np.abs(pixels[20, 112] - (255, 0, 0)) < 40).all() and (np.abs(pixels[200, 112] - (0, 0, 255)) < 40).all()
    picture = caption_tab.caption_picture(tiny_captioner, str(path), 1)["picture"]
    assert picture.shape == (448, 224, 3)  # portrait, as the person sees it


def test_exif_orientation_in_the_attention_overlay(client, tmp_path):
    from gradio_client import handle_file
    from PIL import Image

    path = exif_rotated_jpeg(tmp_path / "portrait.jpg")
    _, _, focus, gallery, _, _, _ = client.predict(handle_file(str(path)), 1, api_name="/caption")
    with Image.open(focus) as image:
        assert image.height > image.width, image.size
    for item in gallery:
        with Image.open(item["image"]) as image:
            assert image.size == (224, 448)


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
    assert caught.value.message == ("The picture is too large: 16,900 x 16,900 pixels, more than the 144,000,000 "
                                    "pixels (12,000 x 12,000) this page reads.")
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


# ---- 5. the beam width ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("beam", [float("nan"), float("inf"), -float("inf"), "abc", None, 0, 11, 2.5, "", [3], True])
def test_bad_beam_widths_get_a_sentence(beam, tiny_captioner):
    import gradio as gr

    from playground import caption_tab

    with pytest.raises(gr.Error) as caught:
        caption_tab.caption_picture(tiny_captioner, np.zeros((32, 32, 3), np.uint8), beam)
    assert caught.value.message == "The beam width must be a whole number between 1 and 10."


@pytest.mark.parametrize("beam", [1, 3.0, "4", 10])
def test_good_beam_widths(beam, tiny_captioner):
    from playground import caption_tab

    assert caption_tab.caption_picture(tiny_captioner, np.zeros((32, 32, 3), np.uint8), beam)["words"] is not None


def call_raw(app_url: str, body: str) -> str:
    """POSTs a JSON body as written (NaN and Infinity included, which gradio_client cannot send) to /caption and
    returns the event stream of the result."""
    import httpx

    with httpx.Client(base_url=app_url, timeout=60) as http:
        started = http.post("/gradio_api/call/caption", content=body, headers={"content-type": "application/json"})
        started.raise_for_status()
        return http.get(f"/gradio_api/call/caption/{started.json()['event_id']}").text


def test_bad_beam_through_the_api(client, app_url, tmp_path):
    import json

    from gradio_client import handle_file
    from PIL import Image

    picture = tmp_path / "ok.png"
    Image.new("RGB", (40, 40), (1, 2, 3)).save(picture)
    for beam in ("abc", None, 0, 2.5):
        with pytest.raises(Exception) as caught:
            client.predict(handle_file(str(picture)), beam, api_name="/caption")
        assert "The beam width must be a whole number between 1 and 10." in str(caught.value), caught.value
    # NaN and infinities: a raw JSON body (the upload itself is a real one, made by the client).
    upload = client.predict(handle_file(str(picture)), 1, api_name="/caption")[2]  # any file the app serves
    with httpx_upload(app_url, picture) as uploaded:
        for beam in ("NaN", "Infinity", "-Infinity"):
            body = '{"data": [%s, %s]}' % (json.dumps(uploaded), beam)
            stream = call_raw(app_url, body)
            assert "event: error" in stream and "The beam width must be a whole number between 1 and 10." \
                in stream, stream
    assert upload


class httpx_upload:
    """Uploads a file through Gradio's /upload route, as the browser does; yields its FileData payload."""

    def __init__(self, app_url: str, path: Path):
        self.app_url, self.path = app_url, path

    def __enter__(self) -> dict:
        import httpx

        with open(self.path, "rb") as handle:
            response = httpx.post(f"{self.app_url}/gradio_api/upload", files={"files": (self.path.name, handle)},
                                  timeout=60)
        response.raise_for_status()
        return {"path": response.json()[0], "orig_name": self.path.name, "meta": {"_type": "gradio.FileData"}}

    def __exit__(self, *exc) -> None:
        return None


# ---- 6. uploads that never arrived, or are too big ------------------------------------------------------------


def test_missing_or_too_big_upload_gets_a_sentence(tiny_captioner, monkeypatch):
    import gradio as gr

    from playground import caption_tab

    with pytest.raises(gr.Error, match="Upload a picture first"):
        caption_tab.checked_upload(None, [])
    with pytest.raises(gr.Error, match="Upload a picture first"):
        caption_tab.checked_upload({"path": None}, [])
    big = in_upload_folder("big.png")
    with open(big, "wb") as handle:  # sparse: costs no disk
        handle.truncate(caption_tab.MAX_PICTURE_BYTES + 1)
    with pytest.raises(gr.Error) as caught:
        caption_tab.checked_upload({"path": str(big)}, [])
    assert "larger than" in caught.value.message and "MB" in caught.value.message
    assert_sentence(caught.value.message)
    big.unlink()
    big.parent.rmdir()


LAUNCH_WITH_CAP = """
import sys
from playground.app import THEME, build_app, page_css
build_app().queue().launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), theme=THEME, css=page_css(),
                           show_error=True, max_file_size="1mb")
"""


@pytest.fixture(scope="module")
def capped_app(tiny_checkpoints, tmp_path_factory):
    """The playground on tiny checkpoints, launched with max_file_size="1mb" (as the lead's __main__ will)."""
    import subprocess
    import sys
    import urllib.request

    from tests.conftest import free_port, stop_app

    port, folder = free_port(), tmp_path_factory.mktemp("capped")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EAGER_PLAYGROUND_CHECKPOINTS": str(tiny_checkpoints),
           "EAGER_PLAYGROUND_RUNS": str(folder / "runs")}
    log = open(folder / "app.log", "w")
    process = subprocess.Popen([sys.executable, "-c", LAUNCH_WITH_CAP, str(port)], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None and time.monotonic() < deadline, (folder / "app.log").read_text()[-2000:]
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    yield url
    stop_app(process)


def noisy_png(path: Path, side: int = 800) -> Path:
    from PIL import Image

    Image.fromarray(np.random.default_rng(1).integers(0, 255, (side, side, 3), dtype=np.uint8)).save(path)
    return path


def test_an_upload_refused_for_its_size_gets_a_sentence(capped_app, browser, tmp_path):
    from gradio_client import Client, handle_file

    big = noisy_png(tmp_path / "big.png")  # ~1.9 MB of noise, over the 1 MB cap
    assert big.stat().st_size > 2**20
    with pytest.raises(Exception) as caught:
        Client(capped_app, verbose=False).predict(handle_file(str(big)), 1, api_name="/caption")
    assert "Traceback" not in str(caught.value)
    assert "exceeds the maximum file size" in str(caught.value)  # gradio_client refuses before sending
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(capped_app)
        page.wait_for_selector("text=Eager Playground", timeout=60000)
        page.get_by_role("tab", name="Caption").click()
        page.locator("#caption-upload input[type=file]").set_input_files(str(big))
        page.wait_for_timeout(1500)
        page.locator("#caption-run").click()
        page.wait_for_selector("text=exceed the maximum allowed size", timeout=30000)  # Gradio's own toast
        page.wait_for_selector("text=Upload a picture first", timeout=30000)
        assert page.locator("text=Traceback").count() == 0
        screenshot(page, "caption_tab_upload_too_big")
    finally:
        context.close()
