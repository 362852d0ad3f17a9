"""Score a DCGAN checkpoint folder again, exactly as it is served, and write the figures into its metrics.json.

    python -m trainers.dcgan.evaluate --checkpoint checkpoints/dcgan [--source offline] [--count 1000]

Training scores every epoch already; this re-measures a promoted or shipped folder with the served (float32)
generator and its own classifier on the held-out digits of `--source` (the run's source: see metrics.json),
keeping the training history. The confidence of 1,000 digits moves by about ±0.01 from one set of latent vectors
to another, so it also reports the confidence and class shares of `--large-count` digits (`large_sample`), whose
first 1,000 are the scored ones. It prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def evaluate(folder: Path, source: str = "offline", count: int = 1000, seed: int = 0, digits=None,
             large_count: int = 10000) -> dict:
    import numpy as np

    from trainers.common import checkpoint
    from trainers.dcgan import data, quality
    from trainers.dcgan.generate import DigitGenerator
    from trainers.dcgan.model import latent_vectors

    model = DigitGenerator.load(folder, precision="float32")  # the recorded scores are float32's
    if model.judge is None:
        raise checkpoint.CheckpointError(f"{folder} has no classifier (classifier.json) to judge the digits with")
    digits = digits or data.load_digits(source, seed=seed)
    # The first `count` of the large sample's latent vectors are the scored ones (the same seed), so both come
    # from one batched pass.
    latent = latent_vectors(quality.EVAL_SEED, max(count, large_count), model.config.latent_dim)
    generated = np.concatenate([model.images(latent[i:i + 500]) for i in range(0, len(latent), 500)])
    figures = quality.assess(generated[:count], model.judge, digits.heldout_images, digits.heldout_labels)
    if large_count > count:
        judged = quality.guess_figures(model.judge.outputs(generated)[0])
        figures["large_sample"] = {key: judged[key] for key in (
            "generated_digits", "classifier_confidence", "confidence_standard_error", "share_confident_over_0.9",
            "min_class_share")}
    metrics = checkpoint.read_json(folder / checkpoint.METRICS_FILE) if (folder / checkpoint.METRICS_FILE).is_file() \
        else {}
    metrics.update(figures)
    metrics["meets_bar"] = quality.meets_bar(figures)
    metrics["evaluated_with"] = "python -m trainers.dcgan.evaluate (served float32 generator)"
    checkpoint.write_json(folder / checkpoint.METRICS_FILE, metrics)
    return figures


def main(argv=None) -> None:
    from trainers.common import checkpoint, cli

    parser = argparse.ArgumentParser(description="Re-score a DCGAN checkpoint folder.")
    parser.add_argument("--checkpoint", default="checkpoints/dcgan")
    parser.add_argument("--source", default="offline", help="offline or canonical (the data the run used)")
    parser.add_argument("--count", type=int, default=1000, help="generated digits to score (2-10000)")
    parser.add_argument("--large-count", type=int, default=10000,
                        help="generated digits for the large-sample confidence (0: skip; up to 100000)")
    args = parser.parse_args(argv)
    if not 2 <= args.count <= 10000:
        cli.fail(f"count must be between 2 and 10000, got {args.count}")
    if not 0 <= args.large_count <= 100000:
        cli.fail(f"large-count must be between 0 and 100000, got {args.large_count}")
    try:
        figures = evaluate(Path(args.checkpoint), args.source, args.count, large_count=args.large_count)
    except (ValueError, RuntimeError, checkpoint.CheckpointError) as error:
        cli.fail(str(error), status=1)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
