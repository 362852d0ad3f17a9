"""A tiny, untrained DCGAN checkpoint for app tests: generator, discriminator, classifier, progress GIF, metrics.

Deterministic (seeded initialisation); the digits it draws are noise, but every file the tab reads is there.
"""

from pathlib import Path

MODEL = "dcgan"


def make(folder: Path) -> Path:
    import keras
    import numpy as np

    from trainers.dcgan import images
    from trainers.dcgan.classifier import ClassifierConfig, DigitJudge, make_classifier, save_classifier
    from trainers.dcgan.model import GanConfig, build, save

    keras.utils.set_random_seed(0)
    config = GanConfig(latent_dim=8, generator_filters=8, discriminator_filters=4, kernel_size=3)
    generator, discriminator = build(config)
    folder = Path(folder)
    staging = folder.parent / f".{folder.name}-parts"
    staging.mkdir(parents=True, exist_ok=True)
    classifier_config = ClassifierConfig(filters=4, features=8)
    save_classifier(staging, DigitJudge(make_classifier(classifier_config), classifier_config, accuracy=0.1))
    rng = np.random.default_rng(0)
    frames = [images.with_header(images.grid(rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)), f"epoch {e}")
              for e in (1, 2, 3)]
    gif = images.save_gif(frames, staging / "progress.gif")
    metrics = {"model": "dcgan", "note": "tiny test model", "classifier_confidence": 0.1, "min_class_share": 0.0,
               "class_shares": {str(d): 0.1 for d in range(10)}, "classifier_fid": 99.0,
               "classifier_fid_floor": 1.0, "generated_digits": 16, "meets_bar": False, "epochs": 3,
               "classifier_heldout_accuracy": 0.1, "wall_time_seconds": 1.0,
               "data": {"source": "none (untrained)", "train_digits": 0, "heldout_digits": 0}}
    save(folder, generator, discriminator, config, classifier_folder=staging, progress_gif=gif, metrics=metrics)
    return folder
