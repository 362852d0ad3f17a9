"""The DCGAN's training settings (no TensorFlow here: the app reads this module to build its form).

The defaults are the shipped configuration; every field is a flag of `python -m trainers.dcgan.train`.
"""

from __future__ import annotations

import dataclasses

from trainers.common.config import RunConfig, flag, in_range, positive
from trainers.common.presets import QUICK_LOOK, SHIPPED, Measurement, Preset, shipped
from trainers.dcgan.augment import parse_policy

RUN_CHECKPOINT = "checkpoint"
# What the app's Training tab offers for this model (besides epochs): data sources and main settings.
SOURCES = ("offline", "canonical")
MAIN_SETTINGS = ("batch_size", "generator_filters", "learning_rate", "label_smoothing")
# The held-out score the Training tab compares before promoting a run over the served checkpoint:
# (metrics.json key, which way is better, label).
PROMOTION_METRIC = ("classifier_fid", "lower", "classifier FID")


@dataclasses.dataclass
class TrainConfig(RunConfig):
    SOURCES = SOURCES

    source: str = dataclasses.field(default="offline", metadata={"help": "offline or canonical"})
    out: str = dataclasses.field(default="runs/dcgan", metadata={"help": "run folder"})
    epochs: int = 40
    batch_size: int = dataclasses.field(default=64, metadata={"help": "global batch (split across replicas)"})
    learning_rate: float = dataclasses.field(default=1e-4, metadata={
        "help": "Adam learning rate of the generator (and of the discriminator if its own rate is 0)"})
    init_from: str = dataclasses.field(default="", metadata={
        "help": "start a new run from this checkpoint's networks and epoch count (e.g. checkpoints/dcgan); both "
                "optimizers start with fresh moments"})
    latent_dim: int = 100
    generator_filters: int = dataclasses.field(default=256, metadata={"help": "channels of the generator's 7x7 map"})
    discriminator_filters: int = dataclasses.field(default=128, metadata={
        "help": "channels of the discriminator's first convolution"})
    kernel_size: int = dataclasses.field(default=4, metadata={"help": "convolution kernel size of both networks"})
    discriminator_learning_rate: float = dataclasses.field(default=4e-4, metadata={
        "help": "the discriminator's own Adam learning rate (0: the same as --learning-rate)"})
    beta_1: float = dataclasses.field(default=0.5, metadata={"help": "Adam beta_1 (the DCGAN paper's 0.5)"})
    label_smoothing: float = dataclasses.field(default=0.0, metadata={
        "help": "one-sided: the discriminator's target for real digits is 1 - this"})
    r1_gamma: float = dataclasses.field(default=0.0, metadata={
        "help": "weight of the R1 penalty on the discriminator's input gradient at real digits (Mescheder et al. "
                "2018; 0: off)"})
    augment: str = dataclasses.field(default="", metadata={
        "help": "differentiable augmentation of every image the discriminator sees, real and generated "
                "(DiffAugment): '', 'translation', 'cutout' or 'translation,cutout'"})
    top_k: float = dataclasses.field(default=0.0, metadata={
        "help": "train the generator only on this share of each generated batch, the digits the discriminator finds "
                "most real (top-k training, Sinha et al. 2020; e.g. 0.5; 0: all)"})
    average_decay: float = dataclasses.field(default=0.999, metadata={
        "help": "decay of the moving average of the generator's weights that is served (0: off)"})
    classifier_epochs: int = dataclasses.field(default=8, metadata={"help": "epochs of the judging classifier"})
    grid_count: int = dataclasses.field(default=64, metadata={"help": "digits in each epoch's progress grid"})
    eval_count: int = dataclasses.field(default=1000, metadata={"help": "generated digits scored each epoch"})
    max_digits: int = dataclasses.field(default=0, metadata={"help": "train on only this many digits (0: all)"})
    keep_epochs: bool = dataclasses.field(default=False, metadata={
        "help": "also keep every epoch's servable networks in <out>/epochs/epoch_NNNN (~18 MB each), to pick "
                "from afterwards with trainers.dcgan.select"})

    def model_config(self):
        """The networks' shape (GanConfig) these settings build."""
        from trainers.dcgan.model import GanConfig

        return GanConfig(latent_dim=self.latent_dim, generator_filters=self.generator_filters,
                         discriminator_filters=self.discriminator_filters, kernel_size=self.kernel_size)

    def validate(self) -> list[str]:
        problems = super().validate()
        for name in ("latent_dim", "generator_filters", "discriminator_filters", "kernel_size", "classifier_epochs",
                     "grid_count", "eval_count"):
            problems += positive(flag(name), getattr(self, name))
        problems += in_range("batch-size", self.batch_size, 1, 4096)
        problems += in_range("latent-dim", self.latent_dim, 1, 1024)
        if self.generator_filters % 4:
            problems.append(f"generator-filters must be a multiple of 4, got {self.generator_filters}")
        problems += in_range("kernel-size", self.kernel_size, 1, 9)
        if self.discriminator_learning_rate:
            problems += in_range("discriminator-learning-rate", self.discriminator_learning_rate, 1e-6, 1.0)
        problems += in_range("beta-1", self.beta_1, 0.0, 0.999)
        problems += in_range("label-smoothing", self.label_smoothing, 0.0, 0.5)
        problems += in_range("r1-gamma", self.r1_gamma, 0.0, 1000.0)
        try:
            parse_policy(self.augment)
        except ValueError as error:
            problems.append(str(error))
        if self.top_k:
            problems += in_range("top-k", self.top_k, 0.01, 1.0)
        problems += in_range("average-decay", self.average_decay, 0.0, 0.99999)
        problems += in_range("grid-count", self.grid_count, 1, 256)
        problems += in_range("eval-count", self.eval_count, 2, 10000)
        problems += positive("max-digits", self.max_digits, allow_zero=True)
        return problems


# The Training tab's presets (the first is its default). Measured with the CLI at nice 10, as the tab runs it:
# `python -m trainers.dcgan.train --out /tmp/quick <the settings as flags>`, then `python -m playground.step_times`.
# A GAN's losses settle rather than fall (the discriminator's rises as the generator improves); the falling figure is
# the classifier FID of each epoch's digits. The quick look runs in float32, as measured, whatever `auto` would pick.
PRESETS = {
    QUICK_LOOK: Preset(
        QUICK_LOOK, "a quarter-width DCGAN on MNIST, 8 short epochs of 160 steps after a one-epoch judging "
                    "classifier: the digit grid turns from grey blobs into recognisable 0s, 3s, 7s and 9s and the "
                    "classifier FID falls from about 170 to 30 in about 2.5 minutes",
        {"epochs": 8, "steps_per_epoch": 160, "generator_filters": 64, "discriminator_filters": 32,
         "learning_rate": 2e-4, "classifier_epochs": 1, "eval_count": 200, "grid_count": 36, "precision": "float32"},
        Measurement(seconds_per_step=0.0881, startup_seconds=24.3, epoch_seconds=1.4, steps_per_pass=None,
                    cpu="AMD EPYC", load="quiet (family 25 model 1, AVX2 only; the CLI at nice 10)", date="2026-12-08",
                    wall_seconds=149.4, losses=(("d_loss", 0.876, 1.196), ("g_loss", 0.707, 0.798)),
                    heldout=("classifier_fid", 167.637, 29.665),
                    note="classifier FID per epoch 167.6, 82.5, 37.8, 30.9, 30.4, 31.1, 29.6, 29.7 (floor 1.7), the "
                         "same to the last digit in two runs (149.7 and 149.4 s): the judging classifier's shifts "
                         "have stateless seeds since 2026-12-08 (before, its random crops differed between runs: "
                         "207.9 ... 36.5 and 191.5 ... 35.1, 137.6 s); epoch-mean g_loss 1.05 -> 0.96")),
    # A warm-up of the shipped configuration (one epoch and a half, interrupted after 210 s); its start-up holds the
    # judging classifier's 8 epochs. `auto` ran it in bfloat16 here.
    SHIPPED: shipped("the served checkpoint's configuration: the full-width DCGAN, 40 passes over the digits at "
                     "batch 64, judged by a classifier trained 8 epochs",
                     Measurement(seconds_per_step=0.405, startup_seconds=125.2, epoch_seconds=23.6, steps_per_pass=140,
                                 cpu="AMD EPYC", load="another training run and a benchmark on both cores (load 4.8)",
                                 date="2026-12-04", losses=(("d_loss", 1.223, 0.829), ("g_loss", 0.627, 1.314)),
                                 note="warm-up: 1 epoch of 140 steps and part of the second, in mixed_bfloat16")),
}
