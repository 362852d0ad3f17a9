"""Pick the best of many saved epochs on more selection digits, and write it as a servable folder.

    python -m trainers.dcgan.train ... --keep-epochs --out runs/dcgan_more       # a folder per epoch
    python -m trainers.dcgan.select runs/dcgan_more/epochs/epoch_* --count 5000 [--trained-too] --out runs/picked
    python -m trainers.dcgan.evaluate --checkpoint runs/picked                    # then score it on held-out digits

During training each epoch is judged on 1,000 selection digits; one epoch's confidence moves by about ±0.005
from one such sample to another, about as much as epochs differ late in a run. This scores every candidate on
`--count` digits from the same selection latent vectors (seed 4321; the first 1,000 are the per-epoch ones)
against the same 1,000 training digits, with the same rule: meeting the bar first, then the lowest Fréchet
distance. No held-out digit is used, so `evaluate` afterwards measures the pick without bias.

With `--trained-too`, each epoch's trained generator (not only its weight average, which is what is served)
is a candidate too; if one wins, the written folder serves it. With `--average-last N`, one more candidate is
the mean of the served weights of the N latest candidates (stochastic weight averaging over epochs, Izmailov
et al. 2018); if it wins, the written folder is the latest of those epochs, serving the mean. `--out` gets the
winner's networks, classifier and metrics (with the pick recorded under `picked`) and, when the candidate came
from a run's `epochs/` folder, the run's progress GIF up to that epoch.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

VARIANTS = {"averaged": "model.weights.h5", "trained": "generator_training.weights.h5"}


def score_candidates(folders: list[Path], count: int = 5000, trained_too: bool = False, digits=None,
                     stream=None, average_last: int = 0) -> list[dict]:
    """Selection figures of every candidate, best first; each row: folder, variant, epoch, figures, score (and
    weights_file for the epoch average, which is written to a temporary file)."""
    import numpy as np

    from trainers.common import checkpoint
    from trainers.dcgan import data, quality
    from trainers.dcgan.classifier import load_classifier
    from trainers.dcgan.model import build, latent_vectors, read_config
    from trainers.dcgan.train import draw

    if not folders:
        raise ValueError("give at least one checkpoint folder to choose from")
    for folder in folders:  # every folder is checked before the digits are loaded
        checkpoint.require_folder(folder)
    digits = digits or data.load_digits("offline", seed=0)
    reference = quality.selection_reference(digits.train_images, digits.train_labels, seed=0)
    rows = []

    def epoch_of(folder: Path):
        metrics = folder / checkpoint.METRICS_FILE
        return checkpoint.read_json(metrics).get("epochs") if metrics.is_file() else None

    def add(folder: Path, epoch, variant: str, generator, judge, latent, **extra) -> None:
        figures = quality.selection_figures(draw(generator, latent), judge, reference)
        rows.append({"folder": str(folder), "variant": variant, "epoch": epoch, **figures,
                     "score": list(quality.selection_score(figures)), **extra})
        if stream is not None:
            print(f"{folder} ({variant}): confidence {figures['selection_confidence']:.4f}, smallest class "
                  f"{figures['selection_min_class_share']:.3f}, FID {figures['selection_fid']:.2f}", file=stream)

    for folder in folders:
        judge = load_classifier(folder)
        config = read_config(folder)
        latent = latent_vectors(quality.SELECTION_SEED, count, config.latent_dim)
        generator, _ = build(config)
        epoch = epoch_of(folder)  # read once: metrics.json holds the whole history
        for variant, weights in VARIANTS.items():
            if variant == "trained" and not trained_too or not (folder / weights).is_file():
                continue
            generator.load_weights(str(folder / weights))
            add(folder, epoch, variant, generator, judge, latent)
    if average_last > 1:
        latest = sorted((row for row in rows if row["variant"] == "averaged"), key=lambda row: row["epoch"] or 0)
        latest = latest[-average_last:]
        config = read_config(Path(latest[-1]["folder"]))
        if any(read_config(Path(row["folder"])) != config for row in latest):
            raise ValueError("the folders to average hold networks of different shapes")
        generator, _ = build(config)
        layers = []
        for row in latest:
            generator.load_weights(str(Path(row["folder"]) / VARIANTS["averaged"]))
            layers.append(generator.get_weights())
        generator.set_weights([np.mean(np.stack(values), axis=0) for values in zip(*layers)])
        weights_file = Path(tempfile.mkdtemp(prefix="dcgan_select_")) / VARIANTS["averaged"]
        generator.save_weights(str(weights_file))
        last = Path(latest[-1]["folder"])
        add(last, latest[-1]["epoch"], f"mean of epochs {latest[0]['epoch']}-{latest[-1]['epoch']}", generator,
            load_classifier(last), latent_vectors(quality.SELECTION_SEED, count, config.latent_dim),
            weights_file=str(weights_file))
    return sorted(rows, key=lambda row: tuple(row["score"]), reverse=True)


def write_pick(row: dict, out: Path, count: int, candidates: int) -> Path:
    """The winning candidate as a servable folder: the chosen generator as model.weights.h5, the pick recorded."""
    from trainers.common import checkpoint
    from trainers.dcgan import images, quality
    from trainers.dcgan.generate import PROGRESS_GIF
    from trainers.dcgan.train import EPOCHS_FOLDER, PROGRESS_GREY_LEVELS, progress_frames

    source = Path(row["folder"])

    def write(folder: Path) -> None:
        checkpoint.copy_into(source, folder)
        for name in (checkpoint.OPTIMIZER_FILE, checkpoint.STATE_FILE):
            (folder / name).unlink(missing_ok=True)
        if row["variant"] == "trained":
            shutil.copy2(source / VARIANTS["trained"], folder / checkpoint.WEIGHTS_FILE)
        if row.get("weights_file"):
            shutil.copy2(row["weights_file"], folder / checkpoint.WEIGHTS_FILE)
        run = source.parent.parent
        if source.parent.name == EPOCHS_FOLDER and not (folder / PROGRESS_GIF).is_file() and row["epoch"]:
            frames = progress_frames(run, row["epoch"])
            if frames:
                images.save_gif(frames, folder / PROGRESS_GIF, grey_levels=PROGRESS_GREY_LEVELS)
        metrics = checkpoint.read_json(folder / checkpoint.METRICS_FILE)
        metrics["served_generator"] = {
            "averaged": "the moving average of the trained generator's weights" if metrics.get("average_decay", 1)
            else "the trained generator (the run kept no moving average)",
            "trained": "the trained generator itself (it scored better than its moving average)",
        }.get(row["variant"], f"the {row['variant']}, averaged weight by weight (stochastic weight averaging)")
        metrics["picked"] = {
            "from": f"{candidates} candidates ({row['folder']} won, {row['variant']} generator)",
            "rule": f"{count} generated digits (latent seed {quality.SELECTION_SEED}) against "
                    f"{quality.SELECTION_REFERENCE} training digits: meeting the bar first, then the lowest "
                    f"Fréchet distance; no held-out digit is used",
            **{key: row[key] for key in ("selection_confidence", "selection_min_class_share", "selection_fid")},
        }
        checkpoint.write_json(folder / checkpoint.METRICS_FILE, metrics)

    return checkpoint.write_folder(out, write)


def main(argv=None) -> None:
    import sys

    from trainers.common import checkpoint, cli

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="checkpoint folders (e.g. runs/x/epochs/epoch_*)")
    parser.add_argument("--count", type=int, default=5000, help="selection digits per candidate (100-50000)")
    parser.add_argument("--trained-too", action="store_true", help="also try each trained (not averaged) generator")
    parser.add_argument("--average-last", type=int, default=0,
                        help="also try the mean of the served weights of the N latest candidates (0: no)")
    parser.add_argument("--out", default="", help="write the winner here as a servable folder")
    args = parser.parse_args(argv)
    if not 100 <= args.count <= 50000:
        cli.fail(f"count must be between 100 and 50000, got {args.count}")
    try:
        rows = score_candidates([Path(f) for f in args.folders], args.count, args.trained_too, stream=sys.stdout,
                                average_last=args.average_last)
        best = rows[0]
        print(f"best: {best['folder']} ({best['variant']}), confidence {best['selection_confidence']:.4f}, "
              f"FID {best['selection_fid']:.2f}, meets the bar on the selection digits: {bool(best['score'][0])}")
        if args.out:
            print(f"wrote {write_pick(best, Path(args.out), args.count, len(rows))}")
    except (ValueError, OSError, checkpoint.CheckpointError) as error:
        cli.fail(str(error), status=1)


if __name__ == "__main__":
    main()
