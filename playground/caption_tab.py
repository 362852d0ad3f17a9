"""The Caption tab: upload a picture, get a caption, and see where the model looked for every word.

The handler takes Gradio's raw upload (`preprocess=False`) and opens it with `trainers.captioning.encoder
.load_image`, so any picture Pillow reads works (RGBA, greyscale, palette, tiny or huge) and anything else gets a
sentence instead of a stack trace. The attention of each word (7x7 over the image) is drawn as a heat map over
the picture: pick one word, or see them all in the gallery. API endpoint: `caption`.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np

MODEL = "captioning"
TITLE = "Caption"
DISPLAY_SIDE = 448  # the longer side of the pictures shown with attention


def load(path):
    from trainers.captioning.caption import Captioner

    return Captioner.load(Path(path))


def warm_up(registry) -> None:
    captioner = registry.get(MODEL, load)
    captioner.caption(np.full((32, 32, 3), 128, np.uint8), beam=1)  # traces the encoder and the decoder step


def _captioner(registry):
    from trainers.common.checkpoint import CheckpointError

    try:
        return registry.get(MODEL, load)
    except CheckpointError as error:
        raise gr.Error(f"The captioning model cannot be loaded: {error}") from None


def _upload_path(upload) -> str | None:
    """The file path inside Gradio's raw upload payload (a FileData dict, a path string, or None)."""
    if upload is None:
        return None
    if isinstance(upload, dict):
        return upload.get("path") or upload.get("url")
    if isinstance(upload, (str, Path)):
        return str(upload)
    return getattr(upload, "path", None)


def display_picture(source) -> np.ndarray:
    """The upload as RGB for display, its longer side at most DISPLAY_SIDE (aspect kept, transparency on white)."""
    from PIL import Image

    from trainers.captioning.encoder import load_image

    square = load_image(source, size=DISPLAY_SIDE)  # validates and normalises modes; squashed to a square
    try:
        with Image.open(source) as original:
            width, height = original.size
    except Exception:
        return square
    scale = DISPLAY_SIDE / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if min(size) < 16:  # a 1x1 or 1000x3 picture: show it as a square, it is what the model saw
        return square
    return np.asarray(Image.fromarray(square).resize(size, Image.BILINEAR))


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


def caption_picture(captioner, source, beam: int) -> dict:
    from trainers.captioning.encoder import ImageError

    if source is None:
        raise gr.Error("Upload a picture first (PNG, JPEG, GIF, WebP, BMP or TIFF).")
    if not 1 <= int(beam) <= 10:
        raise gr.Error(f"The beam width must be between 1 and 10, got {beam}.")
    try:
        result = captioner.caption(source, beam=int(beam))
        picture = display_picture(source)
    except ImageError as error:
        raise gr.Error(f"That file cannot be read as a picture: {error}.") from None
    return {"words": result["words"], "caption": result["caption"], "attention": result["attention"],
            "picture": picture, "score": result["score"]}


def build(registry) -> None:
    def caption(upload, beam, progress=gr.Progress()):
        source = _upload_path(upload)
        progress(0.1, desc="Loading the captioner")
        captioner = _captioner(registry)
        progress(0.4, desc="Captioning")
        result = caption_picture(captioner, source, beam)
        words, picture = result["words"], result["picture"]
        if not words:
            gr.Warning("The model ended the caption at once: it saw nothing it knows in this picture.")
        gallery = [(overlay(picture, grid), f"{position + 1}. {word}")
                   for position, (word, grid) in enumerate(zip(words, result["attention"]))]
        first = overlay(picture, result["attention"][0]) if words else picture
        details = {"caption": result["caption"], "words": words, "beam": int(beam),
                   "log_probability": result["score"], "grid": [len(result["attention"][0]),
                                                                len(result["attention"][0][0])] if words else [],
                   "attention": result["attention"]}
        state = {"words": words, "attention": result["attention"], "picture": picture}
        return (result["caption"] or "(empty caption)", gr.Radio(choices=word_choices(words), value=0 if words
                                                                  else None), first, gallery, details, state)

    def pick_word(state, position):
        if not state or position is None or not state["words"]:
            return None
        position = min(max(int(position), 0), len(state["words"]) - 1)
        return overlay(state["picture"], state["attention"][position])

    metrics = registry.metrics(MODEL)
    scores = ""
    if metrics.get("bleu4") is not None:
        scores = (f" On held-out scenes of object pairs it never saw together: BLEU-4 {metrics['bleu4']}, "
                  f"object recall {metrics.get('object_recall')}, precision {metrics.get('object_precision')}.")
    gr.Markdown("A GRU decoder writes the caption one word at a time; before each word, Bahdanau attention weighs "
                "the 7x7 locations of the picture's MobileNet features. The heat map shows those weights. The "
                "model was trained on composed scenes of animals, fruit, vehicles and things (photos and emoji), "
                "so it describes every picture in those words." + scores, elem_classes="ep-note")
    with gr.Row():
        with gr.Column(scale=2):
            upload = gr.Image(label="Picture", type="filepath", sources=["upload", "clipboard"], height=340,
                              elem_id="caption-upload")
            beam = gr.Slider(1, 10, value=3, step=1, label="Beam width (1 = greedy)")
            run = gr.Button("Caption", variant="primary", elem_id="caption-run")
        with gr.Column(scale=3):
            caption_text = gr.Textbox(label="Caption", elem_id="caption-text", interactive=False,
                                      buttons=["copy"])
            word = gr.Radio(label="Where did it look for…", choices=[], elem_id="caption-words")
            focus = gr.Image(label="Attention for the chosen word", height=340, interactive=False,
                             elem_id="caption-focus")
    gallery = gr.Gallery(label="Attention for every word", columns=8, height=300, object_fit="contain",
                         preview=False, allow_preview=True, elem_id="caption-gallery")
    with gr.Accordion("Words and attention weights (JSON)", open=False):
        details = gr.JSON(label="Result")
    state = gr.State(None)
    examples = sorted((registry.path(MODEL) / "examples").glob("*.jpg"))[:8]
    if examples:
        gr.Examples([[str(path)] for path in examples], [upload], label="Held-out scenes (never seen in training)",
                    elem_id="caption-examples")

    run.click(caption, [upload, beam], [caption_text, word, focus, gallery, details, state], api_name="caption",
              preprocess=False)
    word.change(pick_word, [state, word], focus, api_name=False)
