"""The captioner's training settings (no TensorFlow here: the app reads this module to build its form).

The defaults are the shipped configuration; every field is a flag of `python -m trainers.captioning.train`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from trainers.common.config import RunConfig, flag, in_range, positive
from trainers.common.presets import QUICK_LOOK, SHIPPED, Measurement, Preset, shipped

RUN_CHECKPOINT = "checkpoint"
# What the app's Training tab offers for this model (besides epochs): data sources and main settings.
SOURCES = ("offline", "canonical")
MAIN_SETTINGS = ("train_images", "photo_train_images", "batch_size", "units", "learning_rate")
# The held-out score the Training tab compares before promoting a run over the served checkpoint:
# (metrics.json key, which way is better, label).
PROMOTION_METRIC = ("bleu4", "higher", "test BLEU-4")
SHIPPED_ENCODER = Path(__file__).resolve().parents[2] / "checkpoints" / "captioning" / "encoder.weights.h5"


@dataclasses.dataclass
class TrainConfig(RunConfig):
    SOURCES = SOURCES

    source: str = dataclasses.field(default="offline",
                                    metadata={"help": "offline (composed scenes) or canonical (COCO)"})
    out: str = dataclasses.field(default="runs/captioning", metadata={"help": "run folder"})
    epochs: int = 9
    batch_size: int = dataclasses.field(default=64, metadata={"help": "global batch (split across replicas)"})
    learning_rate: float = dataclasses.field(default=2e-3, metadata={"help": "peak learning rate"})
    steps_per_epoch: int = dataclasses.field(default=0, metadata={"help": "0: one pass over the training data"})
    precision: str = dataclasses.field(default="float32", metadata={"help": "float32 or mixed_bfloat16"})
    train_images: int = dataclasses.field(default=4000, metadata={"help": "training pictures (offline: composed scenes)"})
    val_images: int = 600
    test_images: int = 1000
    photo_train_images: int = dataclasses.field(
        default=7000, metadata={"help": "photo-like training pictures (offline; 0: composed scenes only)"})
    photo_val_images: int = dataclasses.field(default=400, metadata={"help": "photo-like validation pictures "
                                                                              "(held-out backgrounds)"})
    photo_test_images: int = 400
    embedding_dim: int = 256
    units: int = 512
    attention_units: int = 256
    dropout: float = 0.1
    max_len: int = dataclasses.field(default=16, metadata={"help": "longest caption in words, with start/end"})
    min_lr_fraction: float = 0.05
    clip_norm: float = 5.0
    encoder_weights: str = dataclasses.field(default=str(SHIPPED_ENCODER),
                                             metadata={"help": "converted MobileNet weights (offline encoder)"})
    cache_dir: str = dataclasses.field(default="", metadata={"help": "feature cache folder (default: ~/.cache)"})

    def validate(self) -> list[str]:
        problems = super().validate()
        for name in ("train_images", "val_images", "test_images", "embedding_dim", "units", "attention_units"):
            problems += positive(flag(name), getattr(self, name))
        for name in ("photo_train_images", "photo_val_images", "photo_test_images"):
            problems += positive(flag(name), getattr(self, name), allow_zero=True)
        problems += in_range("max-len", self.max_len, 4, 100)
        problems += in_range("dropout", self.dropout, 0.0, 0.9)
        problems += in_range("min-lr-fraction", self.min_lr_fraction, 0.0, 1.0)
        problems += positive("clip-norm", self.clip_norm, allow_zero=True)
        if self.train_images and self.batch_size > self.train_images:
            problems.append(f"batch-size ({self.batch_size}) is larger than train-images ({self.train_images})")
        if self.source == "offline" and not Path(self.encoder_weights).is_file():
            problems.append(f"no encoder weights at {self.encoder_weights}; convert them with "
                            f"python -m trainers.captioning.convert_encoder")
        return problems


# The Training tab's presets (the first is its default). Measured with the CLI at nice 10, as the tab runs it:
# `python -m trainers.captioning.train --out /tmp/quick <the settings as flags>`, then `python -m playground.step_times`
# (the feature cache was built beforehand: a larger cache serves these smaller counts).
PRESETS = {
    QUICK_LOOK: Preset(
        QUICK_LOOK, "a half-size decoder on 3,000 of the cached pictures, 8 short epochs of 80 steps, scored on 300 "
                    "held-out ones: the loss falls from 3.5 to 0.4, test BLEU-4 rises from 28 to 51 and the share "
                    "of objects the captions name from 0.18 to 0.77, in about 2 minutes",
        {"epochs": 8, "steps_per_epoch": 80, "train_images": 2000, "photo_train_images": 1000, "val_images": 100,
         "test_images": 100, "photo_val_images": 50, "photo_test_images": 50, "units": 256, "embedding_dim": 128,
         "attention_units": 128},
        Measurement(seconds_per_step=0.1599, startup_seconds=15.3, epoch_seconds=0.7, steps_per_pass=None,
                    cpu="AMD EPYC", load="quiet (family 25 model 1, AVX2 only)",
                    date="2026-12-08", wall_seconds=125.3, losses=(("loss", 3.517, 0.41),),
                    heldout=("test_bleu4", 28.37, 51.39),
                    note="test object recall per epoch 0.18, 0.485, 0.625, 0.74, 0.745, 0.76, 0.755, 0.765; "
                         "mate-backgrounds installed, plasma-workspace-wallpapers not")),
    # A warm-up of the shipped configuration (interrupted after 150 s, in its second epoch): one pass is 171 steps.
    SHIPPED: shipped("the shipped model's configuration: 9 passes over 4,000 composed scenes and 7,000 photo-like "
                     "pictures with the full-size decoder",
                     Measurement(seconds_per_step=0.3891, startup_seconds=18.3, epoch_seconds=18.6, steps_per_pass=171,
                                 cpu="AMD EPYC", load="another training run and a benchmark on both cores (load 5-6)",
                                 date="2026-12-04", losses=(("loss", 4.409, 0.736),),
                                 heldout=("test_bleu4", 40.82, 40.82),
                                 note="warm-up: 1 epoch of 171 steps and part of the second, in float32")),
}
