"""The Caption tab: upload a picture, get a caption, and see where the model looked for every word.

The handler takes Gradio's raw upload (`preprocess=False`, so no Pillow work happens before our checks) and
opens it with `trainers.captioning.encoder.load_image`, so any picture Pillow reads works (every mode, EXIF
orientation, tiny or huge) and anything else gets a sentence instead of a stack trace. Because the payload is raw,
`checked_upload` accepts only files inside Gradio's upload folder (symlinks resolved) or the checkpoint's examples,
with one sentence for every other path, existing or not. The attention of each word (7x7 over the image) is drawn
as a heat map over the picture: pick one word, or see them all in the gallery. Every picture of a response is
written to a file of its own (atomically) and returned by path: identical requests at the same moment never
rewrite a file another response is still sending. API endpoint: `caption` (parameters `upload`, `beam`).

Beside the caption the tab shows what a COCO object detector (SSD-MobileNet-v2, `trainers/captioning/detector.py`,
installed from PyPI by requirements.txt) finds — boxes with labels and scores drawn on the picture — and the
encoder's own ImageNet top-3, so a person can compare; and a short note when the picture's features lie farther
from the training pictures' than 99 % of the held-out validation pictures do (`trainers/captioning/novelty.py`).
The detector runs first and its findings steer the caption's nouns (`trainers/captioning/fusion.py`: nouns it does
not see while it is sure of something get a penalty — detected classes could get a bonus, but the weights chosen on
validation give none — and an unsure noun nothing supports becomes "thing"); the notes say which.
Without the detector package the caption is still given (the decoder's alone), with one sentence saying the
detector is missing.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import gradio as gr
import numpy as np

from playground import inputs, model_calls, outputs
from playground.core_sharing import CORES
from playground.batching import REQUESTS

LOG = logging.getLogger(__name__)
MODEL = "captioning"
TITLE = "Caption"
DISPLAY_SIDE = 448  # the longer side of the pictures shown with attention, and given to the detector
MAX_BEAM = 10
MAX_PICTURE_BYTES = 50 * 2**20
BEAM_MESSAGE = f"The beam width must be a whole number between 1 and {MAX_BEAM}."
NO_UPLOAD_MESSAGE = "Upload a picture first (PNG, JPEG, GIF, WebP, BMP or TIFF)."
# Pictures captioned at once (Gradio's concurrency_limit): each is read by the encoder in its own thread, and greedy
# captions are decoded together (playground/batching.py). The encoder and the drawing are the bulk of the work, and
# two cores run them, so a few at once is enough.
CONCURRENT_REQUESTS = 8
NOT_AN_UPLOAD_MESSAGE = ("That picture is not an upload of this page (or it has expired); upload the picture "
                         "again.")


_DETECTOR = {"loaded": False, "detector": None, "reason": None}
_DETECTOR_LOCK = threading.Lock()


def detector():
    """(the COCO detector or None, a sentence when it is unavailable), loaded once for the whole app."""
    with _DETECTOR_LOCK:
        if not _DETECTOR["loaded"]:
            from trainers.captioning import detector as detector_module

            reason = detector_module.unavailable()
            if reason is None:
                try:
                    _DETECTOR["detector"] = detector_module.Detector.load()
                except Exception:  # noqa: BLE001 - a broken install: the caption alone, and the log says why
                    LOG.exception("the COCO detector could not be loaded")
                    reason = "The object detector could not be loaded, so only the caption is shown."
            _DETECTOR.update(loaded=True, reason=reason)
        return _DETECTOR["detector"], _DETECTOR["reason"]


def detect(picture: np.ndarray) -> tuple[list, str | None]:
    """What the detector finds in the shown picture ([] and a sentence when it is unavailable)."""
    model, reason = detector()
    if model is None:
        return [], reason
    try:
        return model.detect(picture), None
    except Exception:  # noqa: BLE001 - the caption still stands
        LOG.exception("detection failed")
        return [], "The object detector failed on this picture, so only the caption is shown."


def notes(result: dict, detections: list, detector_reason: str | None) -> str:
    """The short text under the caption: detector findings, ImageNet top-3, and the unfamiliar-picture note."""
    lines = []
    familiarity = result.get("novelty")
    if familiarity and familiarity.get("unfamiliar"):
        lines.append(f"**This picture is unlike the pictures the captioner was trained on** (distance of its "
                     f"features to the training pictures' {familiarity['distance']:.2f}; 99 % of held-out "
                     f"validation pictures are within {familiarity['threshold']:.2f}), so the caption is a guess.")
    if detector_reason:
        lines.append(detector_reason)
    elif detections:
        lines.append("**The COCO detector sees:** " + ", ".join(f"{item['label']} {item['score']:.2f}"
                                                               for item in detections) + ".")
    else:
        lines.append("**The COCO detector finds nothing it knows here** (no object scored 0.40 or more), so "
                     "nothing steered the caption's nouns.")
    fused = result.get("fusion") or {}
    if fused.get("support"):
        lines.append("**The detector backs:** " + ", ".join(
            f"{noun} ({score:.2f})" for noun, score in sorted(fused["support"].items(), key=lambda item: -item[1]))
                     + "; the caption's other nouns were held back by its findings.")
    if fused.get("abstained"):
        lines.append("**Unsure, so not named:** the captioner's guess " + ", ".join(
            f"\u201c{item['word']}\u201d ({item['probability']:.2f})" for item in fused["abstained"])
                     + " had nothing from the detector to back it, so the caption says \u201cthing\u201d instead.")
    if result.get("imagenet_top3"):
        lines.append("**The encoder's ImageNet top-3:** " + ", ".join(
            f"{item['label']} {item['probability']:.2f}" for item in result["imagenet_top3"]) + ".")
    return "\n\n".join(lines)


def load(path):
    return model_calls.load(MODEL, path)


def warm_up(registry) -> None:
    captioner = registry.get(MODEL, load)
    captioner.caption(np.full((32, 32, 3), 128, np.uint8), beam=1)  # traces the encoder and the decoder step


def warm_up_after(registry) -> None:
    """The detector, loaded and called once after the other models have warmed up (playground/app.py says why not
    beside them): reading the 70 MB graph into its session and the first call take about 1.6 s on a 2-core AMD EPYC
    (4.3 s before its session ran without Grappler's rewrites). A no-op when it is not installed."""
    detect(np.full((32, 32, 3), 128, np.uint8))


def _captioner(registry):
    from trainers.common.checkpoint import CheckpointError

    try:
        return registry.get(MODEL, load)
    except CheckpointError as error:
        raise gr.Error(f"The captioning model cannot be loaded: {inputs.without_paths(error)}") from None


def _upload_path(upload) -> str | None:
    """The file path inside Gradio's raw upload payload (a FileData dict, a path string, or None). Never a URL."""
    if upload is None:
        return None
    if isinstance(upload, dict):
        path = upload.get("path")
        return path if isinstance(path, str) and path else None
    if isinstance(upload, (str, Path)):
        return str(upload) or None
    path = getattr(upload, "path", None)
    return path if isinstance(path, str) and path else None


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def checked_upload(upload, extra_roots=()) -> str:
    """The resolved path of an uploaded picture, or gr.Error with a sentence.

    Only files inside Gradio's upload folder (where every real upload lands) or one of `extra_roots` (the
    checkpoint's example pictures) are read; symlinks are resolved first. Every other path gets the same
    sentence whether it exists or not, so the endpoint tells nothing about the server's files.
    """
    from gradio.utils import get_upload_folder

    raw = _upload_path(upload)
    if raw is None:
        raise gr.Error(NO_UPLOAD_MESSAGE)
    roots = [Path(get_upload_folder()), *map(Path, extra_roots)]
    try:
        path = Path(raw).resolve()
        allowed = any(_inside(path, root.resolve()) for root in roots) and path.is_file()
        size = path.stat().st_size if allowed else 0
    except (OSError, RuntimeError, ValueError):  # a loop of symlinks, a NUL byte, a name too long...
        allowed = False
    if not allowed:
        raise gr.Error(NOT_AN_UPLOAD_MESSAGE)
    if size > MAX_PICTURE_BYTES:
        raise gr.Error(f"That file is larger than {MAX_PICTURE_BYTES // 2**20} MB ({size / 2**20:,.0f} MB); "
                       f"upload a smaller picture.")
    return str(path)


def parse_beam(beam) -> int:
    """The beam width as an int from 1 to MAX_BEAM (a slider's number, or "3" from an API client), or gr.Error
    with the tab's one sentence (the check itself is inputs.whole_number's)."""
    if isinstance(beam, (np.integer, np.floating)):
        beam = beam.item()
    try:
        return inputs.whole_number(beam, "beam width", 1, MAX_BEAM)
    except gr.Error:
        raise gr.Error(BEAM_MESSAGE) from None


def image_file(picture: np.ndarray) -> str:
    """A response's picture as a file of its own (see playground/outputs.py: identical responses must not share one)."""
    return outputs.picture_file(picture)


def display_picture(source) -> np.ndarray:
    """The upload as RGB for display, upright (EXIF), its longer side at most DISPLAY_SIDE (aspect kept,
    transparency on white)."""
    from PIL import Image

    from trainers.captioning.encoder import open_picture

    image = open_picture(source, size=DISPLAY_SIDE)  # validates, normalises modes, shrinks huge pictures cheaply
    width, height = image.size
    scale = DISPLAY_SIDE / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if min(size) < 16:  # a 1x1 or 1000x3 picture: show it as a square, it is what the model saw
        size = (DISPLAY_SIDE, DISPLAY_SIDE)
    return np.asarray(image.resize(size, Image.BILINEAR), dtype=np.uint8)


def overlay(picture: np.ndarray, grid, strength: float = 0.6) -> np.ndarray:
    """The picture with a heat map of one word's attention grid (rows x cols, sums to 1), smoothly upsampled."""
    from matplotlib import colormaps
    from PIL import Image

    weights = np.asarray(grid, np.float32)
    weights = weights / max(float(weights.max()), 1e-8)  # the strongest location is fully lit
    height, width = picture.shape[:2]
    heat = np.asarray(Image.fromarray((weights * 255).astype(np.uint8)).resize((width, height), Image.BICUBIC),
                      np.float32) / 255.0  # (height, width) in [0, 1]
    colours = colormaps["inferno"](heat)[..., :3] * 255.0
    dimmed = picture.astype(np.float32) * (0.35 + 0.65 * heat[..., None])  # what was not looked at fades
    mixed = dimmed * (1 - strength * 0.5) + colours * (strength * 0.5)
    return np.clip(mixed, 0, 255).astype(np.uint8)


def word_choices(words: list[str]) -> list[tuple[str, int]]:
    return [(f"{position + 1}. {word}", position) for position, word in enumerate(words)]


def caption_picture(captioner, source, beam, detect_objects=None) -> dict:
    """Caption an upload. `detect_objects(picture) -> (detections, reason)` (the tab passes `detect`) runs the COCO
    detector on the shown picture first; its findings steer the caption's nouns (trainers/captioning/fusion.py).
    Without it, or when the detector is unavailable, the caption is the decoder's alone."""
    from trainers.captioning.encoder import ImageError, ImageTooLarge

    if source is None:
        raise gr.Error(NO_UPLOAD_MESSAGE)
    beam = parse_beam(beam)
    found, reason = [], None
    try:
        # The encoder reads each picture in its request's own thread, and the detector looks at it; greedy
        # captions (beam 1) of all users arriving within a few milliseconds are then decoded in one batch (the
        # same caption as alone, see Captioner.caption_features_many); wider beams search here, one picture alone.
        # A model served elsewhere (a Ray replica, playground/remote_models.py) reads and decodes the picture there.
        local = hasattr(captioner, "read")
        read = captioner.read(source) if local else {}
        features = read.pop("features", None)
        picture = display_picture(source)
        if detect_objects is not None:
            found, reason = detect_objects(picture)
        steer = detect_objects is not None and reason is None
        detections = found if steer else None
        if not local:
            result = captioner.caption(source, beam=beam, detections=detections)
        else:
            captioned = REQUESTS.call(captioner.greedy_many, (features, detections)) if beam == 1 \
                else captioner.caption_features(features, beam, detections)
            result = {**captioned, **read}
    except ImageTooLarge as error:
        raise gr.Error(f"{str(error)[:1].upper()}{str(error)[1:]}.") from None
    except ImageError as error:
        if isinstance(source, (str, Path)) and not Path(source).is_file():  # deleted meanwhile: no path in words
            raise gr.Error(NOT_AN_UPLOAD_MESSAGE) from None
        raise gr.Error(f"That file cannot be read as a picture: {error}.") from None
    except MemoryError:
        raise gr.Error("That picture needs more memory than the server has free; try a smaller one.") from None
    return {"words": result["words"], "caption": result["caption"], "attention": result["attention"],
            "picture": picture, "score": result["score"], "imagenet_top3": result.get("imagenet_top3", []),
            "novelty": result.get("novelty"), "detections": found, "detector_reason": reason,
            "fusion": result.get("fusion")}


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def intro(metrics: dict) -> str:
    """The tab's opening text: what the model is and what it was trained on, with the shipped figures."""
    text = ("A GRU decoder writes the caption one word at a time; before each word, Bahdanau attention weighs the "
            "7x7 locations of the picture's ImageNet MobileNet features (the heat map). It was trained on composed "
            "scenes and on photo-like pictures: real-photo cut-outs and emoji of 41 kinds of thing (animals, a "
            "person, fruit, vehicles, cups, clocks, buildings...) at every size, close-ups included, on photographic "
            "backgrounds. It knows only those words. A COCO object detector looks at the picture first and its "
            "findings steer the caption's nouns; a noun the captioner is unsure of and the detector does not back "
            "becomes \u201cthing\u201d rather than a confident wrong word.")
    if metrics.get("bleu4") is not None:
        text += (f" Held-out composed scenes: BLEU-4 {metrics['bleu4']}, object recall "
                 f"{metrics.get('object_recall')}.")
    real = metrics.get("real_photos") or {}
    if real.get("photos"):
        text += (f" Real photos shipped with Python packages: the main object named in {real['main_object_named']} "
                 f"of {real['photos']} (beam 3), object precision {real['object_precision']:.2f}.")
        scored = real.get("photos_scored") or []
        named = [row["title"] for row in scored if row["main_named"]]
        missed = [f"{row['title']} \u2192 \u201c{row['caption']}\u201d" for row in scored if not row["main_named"]]
        if named:
            text += f" It names the main object in {_listed(named)}"
            text += f"; not in {_listed(missed)}." if missed else "."
        text += " The detector's boxes and the ImageNet top-3 are shown below."
    return text


def build(registry) -> None:
    examples_folder = registry.path(MODEL) / "examples"

    def caption(upload, beam, progress=gr.Progress()):
        try:
            with CORES.answering():  # a local training run is stopped meanwhile (playground/core_sharing.py)
                return _caption(upload, beam, progress)
        except gr.Error:
            raise
        except Exception:  # noqa: BLE001 - the details go to the server log, a sentence to the person
            LOG.exception("captioning failed")
            raise gr.Error("Something went wrong while captioning this picture; try another one.") from None

    def _caption(upload, beam, progress):
        beam = parse_beam(beam)
        source = checked_upload(upload, [examples_folder])
        progress(0.1, desc="Loading the captioner")
        captioner = _captioner(registry)
        progress(0.4, desc="Detecting objects and captioning")
        result = caption_picture(captioner, source, beam, detect)
        words, picture = result["words"], result["picture"]
        found, reason = result["detections"], result["detector_reason"]
        if not words:
            gr.Warning("The model ended the caption at once: it saw nothing it knows in this picture.")
        progress(0.8, desc="Drawing")
        from trainers.captioning.detector import draw

        boxes = image_file(draw(picture, found) if found else picture)
        gallery = [(image_file(overlay(picture, grid)), f"{position + 1}. {word}")
                   for position, (word, grid) in enumerate(zip(words, result["attention"]))]
        first = image_file(overlay(picture, result["attention"][0]) if words else picture)
        details = {"caption": result["caption"], "words": words, "beam": beam,
                   "log_probability": result["score"], "grid": [len(result["attention"][0]),
                                                                len(result["attention"][0][0])] if words else [],
                   "attention": result["attention"], "detections": found, "detector": reason or "ok",
                   "imagenet_top3": result["imagenet_top3"], "novelty": result["novelty"],
                   "fusion": result["fusion"]}
        state = {"words": words, "attention": result["attention"], "picture": picture}
        return (result["caption"] or "(empty caption)", gr.Radio(choices=word_choices(words), value=0 if words
                                                                  else None), first, gallery, details, state,
                boxes, notes(result, found, reason))

    def pick_word(state, position):
        if not state or position is None or not state["words"]:
            return None
        position = min(max(int(position), 0), len(state["words"]) - 1)
        return image_file(overlay(state["picture"], state["attention"][position]))

    gr.Markdown(intro(registry.metrics(MODEL)), elem_classes="ep-note")
    with gr.Row():
        with gr.Column(scale=2):
            upload = gr.Image(label="Picture", type="filepath", sources=["upload", "clipboard"], height=340,
                              elem_id="caption-upload")
            beam = gr.Slider(1, 10, value=3, step=1, label="Beam width (1 = greedy)")
            run = gr.Button("Caption", variant="primary", elem_id="caption-run")
        with gr.Column(scale=3):
            caption_text = gr.Textbox(label="Caption", elem_id="caption-text", interactive=False,
                                      buttons=["copy"])
            seen = gr.Markdown(elem_id="caption-notes")
            word = gr.Radio(label="Where did it look for…", choices=[], elem_id="caption-words")
            focus = gr.Image(label="Attention for the chosen word", height=340, interactive=False,
                             elem_id="caption-focus")
    boxes = gr.Image(label="What the COCO object detector sees (its findings steer the caption's nouns)",
                     height=340, interactive=False, elem_id="caption-detections")
    gallery = gr.Gallery(label="Attention for every word", columns=8, height=300, object_fit="contain",
                         preview=False, allow_preview=True, elem_id="caption-gallery")
    with gr.Accordion("Words and attention weights (JSON)", open=False):
        details = gr.JSON(label="Result")
    state = gr.State(None)
    examples = sorted(examples_folder.glob("*.jpg"))[:8]
    if examples:
        gr.Examples([[str(path)] for path in examples], [upload], label="Held-out pictures (never seen in training): photo-like on held-out backgrounds, and composed scenes",
                    elem_id="caption-examples")

    run.click(caption, [upload, beam], [caption_text, word, focus, gallery, details, state, boxes, seen],
              api_name="caption", preprocess=False, concurrency_limit=CONCURRENT_REQUESTS)
    word.change(pick_word, [state, word], focus, api_name=False)
