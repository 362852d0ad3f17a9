"""The Digits tab: digits from noise, judged by a classifier; a walk through latent space; how training got there.

A seed picks the latent vectors, so the same seed always draws the same digits. Each digit is labelled with
the guess of the small classifier shipped beside the generator and its confidence (green: at least 90%). The
latent walk slerps between the first latent vector of two seeds and shows it as an animated GIF and as frames.
The training-progress GIF and the scores come from the checkpoint in use (re-read on every page load, so a
promoted run shows up without a restart). API endpoint: `generate_digits`.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
import uuid
from pathlib import Path

import gradio as gr

from playground import inputs, model_calls, outputs
from playground.core_sharing import CORES
from trainers.dcgan.generate import MAX_COUNT, MAX_FRAMES, check_request, check_walk

MODEL = "dcgan"
TITLE = "Digits"
OUTPUT_FOLDER = Path(tempfile.gettempdir()) / "eager-playground-digits"
PROGRESS_PREFIX, KEEP_PROGRESS_COPIES = "progress-", 4  # one per checkpoint version (several apps may share /tmp)
WALK_PREFIX = "walk-"
MAX_SEED = 2**32 - 1
EXAMPLES = [[7, 64], [2024, 36], [31337, 100], [1, 16]]


def load(path):
    return model_calls.load(MODEL, path)


def warm_up(registry) -> None:
    model = registry.get(MODEL, load)
    model.generate_judged(0, 2)  # traces the generator and the classifier once


def _model(registry):
    from trainers.common.checkpoint import CheckpointError

    try:
        return registry.get(MODEL, load)
    except CheckpointError as error:
        raise gr.Error(f"The digit generator cannot be loaded: {inputs.without_paths(error)}") from None


def _output_folder() -> Path:
    OUTPUT_FOLDER.mkdir(parents=True, exist_ok=True)
    return OUTPUT_FOLDER


def _walk_path() -> Path:
    """A new file for a latent-walk GIF (playground/outputs.py: each response its own, old ones pruned by age)."""
    return outputs.new_path(".gif", WALK_PREFIX)


def summary(guesses: list[int], confidences: list[float]) -> str:
    if not guesses or guesses[0] < 0:
        return "This checkpoint has no classifier, so the digits are not labelled."
    count = len(guesses)
    sure = sum(confidence >= 0.9 for confidence in confidences)
    unsure = sum(confidence < 0.6 for confidence in confidences)
    mean = sum(confidences) / count
    kinds = len(set(guesses))
    return (f"**{count} digits**, {kinds} different kinds. The classifier's mean confidence is **{mean:.0%}**; "
            f"{sure} digits are clear (≥ 90%), {unsure} are ambiguous (< 60%, red).")


def class_shares(guesses: list[int]) -> dict:
    if not guesses or guesses[0] < 0:
        return {}
    return {str(digit): guesses.count(digit) / len(guesses) for digit in range(10)}


def scores_markdown(metrics: dict) -> str:
    """What the checkpoint in use was trained on and how its digits score, from its metrics.json."""
    if "classifier_confidence" not in metrics:
        return "This checkpoint has no scores yet."
    shares = metrics.get("class_shares", {})
    share_text = " · ".join(f"{digit}: {share:.1%}" for digit, share in shares.items())
    data = metrics.get("data", {})
    minutes = metrics.get("wall_time_seconds", 0) / 60
    verdict = "meets" if metrics.get("meets_bar") else "does **not** meet"
    return (
        f"**Scores of the checkpoint in use** ({metrics.get('epochs')} epochs, {minutes:.0f} min of CPU training "
        f"on {_count(data.get('train_digits'))} digits; source: `{data.get('source', '?')}`), measured on "
        f"{_count(metrics.get('generated_digits'))} generated digits against {_count(data.get('heldout_digits'))} "
        f"held-out real ones.{_served_text(metrics)}\n\n"
        f"| classifier confidence | smallest class share | classifier FID | real-vs-real floor | classifier accuracy on real held-out digits |\n"
        f"|---|---|---|---|---|\n"
        f"| {metrics['classifier_confidence']:.3f} | {metrics.get('min_class_share', 0):.1%} | "
        f"{metrics.get('classifier_fid')} | {metrics.get('classifier_fid_floor')} | "
        f"{metrics.get('classifier_heldout_accuracy', 0):.1%} |\n\n"
        f"Class shares: {share_text}. On these {_count(metrics.get('generated_digits'))} digits the checkpoint "
        f"{verdict} the bar (confidence ≥ 0.90, every class ≥ 4%).{_large_sample_text(metrics)} "
        f"FID here is the Fréchet distance in the classifier's 128 penultimate features; the floor is the "
        f"distance between two halves of the real digits.")


def _count(value) -> str:
    """10000 -> '10,000'; anything not a number as it is ('?' when missing)."""
    return f"{value:,}" if isinstance(value, int) else str(value if value is not None else "?")


def _served_text(metrics: dict) -> str:
    """Which generator draws the digits, when metrics.json says (e.g. a smaller one distilled from the trained one)."""
    served, parameters = metrics.get("served_generator"), metrics.get("parameters", {}).get("generator")
    if not isinstance(served, str):
        return ""
    size = f" ({parameters:,} parameters)" if isinstance(parameters, int) else ""
    return f" The generator in use{size}: {served}."


def _large_sample_text(metrics: dict) -> str:
    large = metrics.get("large_sample")
    if not large:
        return ""
    return (f" On {large['generated_digits']:,} digits (a steadier estimate) the mean confidence is "
            f"**{large['classifier_confidence']:.3f} ± {large['confidence_standard_error']:.3f}** and the smallest "
            f"class share {large['min_class_share']:.1%}.")


def progress_gif(registry) -> str | None:
    """One copy of the checkpoint's training GIF per checkpoint version (named by the file's path, size and mtime).

    A copy, so a checkpoint swapped mid-request cannot break it; one per version, so a page load does not copy
    5.7 MB again (and Gradio, which caches a file by its content and name, keeps one copy of it too). Copies of
    older versions beyond the newest few are removed.
    """
    source = registry.path(MODEL) / "progress.gif"
    try:
        stat = source.stat()
    except OSError:
        return None
    key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = _output_folder() / f"{PROGRESS_PREFIX}{key}.gif"
    if not target.is_file():
        staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
        try:
            shutil.copy2(source, staging)
            os.replace(staging, target)  # atomic: a concurrent page load never sees half a GIF
        except OSError:
            staging.unlink(missing_ok=True)
            return None
    _prune(PROGRESS_PREFIX, KEEP_PROGRESS_COPIES, keep=target)
    return str(target)


def _prune(prefix: str, count: int, keep: Path | None = None) -> None:
    """Removes all but the newest `count` files named `prefix*.gif` in the output folder (never `keep`)."""
    try:
        files = sorted(OUTPUT_FOLDER.glob(f"{prefix}*.gif"), key=lambda path: path.stat().st_mtime, reverse=True)
    except OSError:  # a file vanished while sorting (another process pruned it)
        return
    for path in files[count:]:
        if path != keep:
            path.unlink(missing_ok=True)


def build(registry) -> list:
    from trainers.dcgan import images
    from trainers.dcgan.generate import walk_gif

    def generate_digits(seed, count, progress=gr.Progress()):
        # Unprocessed inputs (preprocess=False): every value is checked here, with a sentence for a bad one.
        seed = inputs.whole_number(seed, "seed", 0, MAX_SEED)
        count = inputs.whole_number(count, "number of digits", 1, MAX_COUNT)
        problems = check_request(seed, count)
        if problems:
            raise gr.Error("; ".join(problems).capitalize() + ".")
        progress(0.1, desc="Loading the generator")
        with CORES.answering():  # a local training run is stopped meanwhile (playground/core_sharing.py)
            model = _model(registry)
            progress(0.5, desc=f"Drawing and judging {count} digits")
            judged = model.generate_judged(seed, count)
            picture = outputs.picture_file(images.labelled_grid(judged.digits, judged.guesses, judged.confidences),
                                           ".png")  # a file of its own: identical requests must not share one
        return picture, class_shares(judged.guesses), summary(judged.guesses, judged.confidences)

    def latent_walk(seed_a, seed_b, frames, progress=gr.Progress()):
        seed_a = inputs.whole_number(seed_a, "first seed", 0, MAX_SEED)
        seed_b = inputs.whole_number(seed_b, "second seed", 0, MAX_SEED)
        frames = inputs.whole_number(frames, "number of frames", 2, MAX_FRAMES)
        problems = check_walk(seed_a, seed_b, frames)
        if problems:
            raise gr.Error("; ".join(problems).capitalize() + ".")
        progress(0.1, desc="Loading the generator")
        with CORES.answering():
            model = _model(registry)
            progress(0.3, desc=f"Walking {frames} frames")
            judged = model.walk(seed_a, seed_b, frames)
            progress(0.7, desc="Writing the GIF")
            path = walk_gif(judged, _walk_path())
            gallery = [(outputs.picture_file(images.grid(digit[None], scale=3, padding=0), ".png"),
                        f"{guess} · {confidence:.0%}")
                       for digit, guess, confidence in zip(judged.digits, judged.guesses, judged.confidences)]
        return str(path), gallery

    gr.Markdown("A DCGAN's generator turns 100 random numbers (a latent vector) into a 28×28 digit. A seed picks "
                "the latent vectors, so the same seed always draws the same digits. Under each digit: the guess "
                "of a small classifier trained on real digits, and how sure it is (green ≥ 90%, amber ≥ 60%, "
                "red below). On a CPU that computes bfloat16 natively the generator runs in bfloat16, which "
                "moves a few pixels by a few grey levels from what float32 draws.", elem_classes="ep-note")
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            seed = gr.Number(value=7, precision=0, minimum=0, label="Seed", elem_id="digits-seed")
            new_seed = gr.Button("🎲 New seed", size="sm")
            count = gr.Slider(1, MAX_COUNT, value=64, step=1, label="Number of digits")
            run = gr.Button("Generate digits", variant="primary")
            shares = gr.Label(label="What the classifier sees (share of each digit)", num_top_classes=10,
                              show_heading=False)
        with gr.Column(scale=3):
            # No label badge: it would cover the top row of digits.
            grid = gr.Image(label="Generated digits", show_label=False, type="pil", format="png",
                            interactive=False, elem_id="digits-grid")
            report = gr.Markdown()
    gr.Examples(EXAMPLES, [seed, count], label="Try")

    gr.Markdown("### A walk through latent space\nThe generator's input space is smooth: moving from one seed's "
                "latent vector to another's (along the great circle, as for any Gaussian) morphs one digit into "
                "another. The classifier's guess shows where one digit becomes the next.")
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            seed_a = gr.Number(value=15, precision=0, minimum=0, label="From seed")
            seed_b = gr.Number(value=22, precision=0, minimum=0, label="To seed")
            frames = gr.Slider(2, MAX_FRAMES, value=24, step=1, label="Frames")
            walk = gr.Button("Walk", variant="primary")
        with gr.Column(scale=1, min_width=260):
            walk_image = gr.Image(label="Latent walk (there and back)", type="filepath", interactive=False,
                                  elem_id="latent-walk", height=300)
        with gr.Column(scale=2):
            walk_frames = gr.Gallery(label="Frames (the classifier's guess · confidence)", columns=6, height=300,
                                     object_fit="contain",
                                     elem_id="latent-frames")

    gr.Markdown("### How training got there\nThe same 64 latent vectors drawn after every epoch of the run that "
                "made this checkpoint: digits appear out of noise.")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            progress = gr.Image(value=progress_gif(registry), label="Training progress (one frame per epoch)",
                                type="filepath", interactive=False, elem_id="training-gif", height=500)
        with gr.Column(scale=2):
            scores = gr.Markdown(scores_markdown(registry.metrics(MODEL)), elem_id="digits-scores")

    new_seed.click(lambda: random.randint(0, 2**31 - 1), None, seed, api_name=False)
    run.click(generate_digits, [seed, count], [grid, shares, report], api_name="generate_digits",
              preprocess=False)
    seed.submit(generate_digits, [seed, count], [grid, shares, report], api_name=False)
    walk.click(latent_walk, [seed_a, seed_b, frames], [walk_image, walk_frames], api_name="latent_walk",
               preprocess=False)
    # A promoted run changes both: they are read again whenever the page loads.
    return [(lambda: progress_gif(registry), progress), (lambda: scores_markdown(registry.metrics(MODEL)), scores)]
