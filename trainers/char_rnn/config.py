"""The character model's training settings (no TensorFlow here: the app reads this module to build its form).

The defaults are the shipped configuration; every field is a flag of `python -m trainers.char_rnn.train`.
"""

from __future__ import annotations

import dataclasses

from trainers.common.config import RunConfig, flag, in_range, positive
from trainers.common.presets import QUICK_LOOK, SHIPPED, Measurement, Preset, shipped

RUN_CHECKPOINT = "checkpoint"
# What the app's Training tab offers for this model (besides epochs): data sources and main settings.
SOURCES = ("offline", "canonical", "file")
MAIN_SETTINGS = ("rnn_units", "batch_size", "seq_len", "learning_rate")
# The held-out score the Training tab compares before promoting a run over the served checkpoint:
# (metrics.json key, which way is better, label).
PROMOTION_METRIC = ("heldout_loss_nats_per_char", "lower", "held-out loss")


@dataclasses.dataclass
class TrainConfig(RunConfig):
    SOURCES = SOURCES

    source: str = dataclasses.field(default="offline", metadata={"help": "offline, canonical or file"})
    out: str = dataclasses.field(default="runs/char_rnn", metadata={"help": "run folder"})
    epochs: int = 15
    batch_size: int = dataclasses.field(default=256, metadata={"help": "global batch (split across replicas)"})
    learning_rate: float = dataclasses.field(default=3e-3, metadata={"help": "peak learning rate"})
    text_file: str = dataclasses.field(default="", metadata={"help": "a UTF-8 text file to train on"})
    seq_len: int = 100
    embedding_dim: int = 256
    rnn_units: int = 1024
    warmup_steps: int = 100
    min_lr_fraction: float = dataclasses.field(default=0.05, metadata={"help": "final LR as a share of peak"})
    clip_norm: float = dataclasses.field(default=1.0, metadata={"help": "global gradient-norm clip (0: off)"})
    max_chars: int = dataclasses.field(default=0, metadata={"help": "use only this many training chars (0: all)"})
    sample_prompt: str = "\n"
    sample_length: int = 300

    def validate(self) -> list[str]:
        problems = super().validate()
        if self.source == "file" and not self.text_file:
            problems.append("source 'file' needs --text-file PATH")
        for name in ("seq_len", "embedding_dim", "rnn_units", "sample_length"):
            problems += positive(flag(name), getattr(self, name))
        problems += in_range("rnn-units", self.rnn_units, 1, 4096)
        problems += in_range("min-lr-fraction", self.min_lr_fraction, 0.0, 1.0)
        for name in ("warmup_steps", "max_chars", "clip_norm"):
            problems += positive(flag(name), getattr(self, name), allow_zero=True)
        return problems


# The Training tab's presets (the first is its default). Measured with the CLI at nice 10, as the tab runs it:
# `python -m trainers.char_rnn.train --out /tmp/quick <the settings as flags>`, then `python -m playground.step_times`.
# The quick look runs in float32, the precision its step time was measured in (`auto` would pick bfloat16 on an
# AVX512-BF16 CPU; until 2026-12-04 the end-of-epoch sampler failed there, which is fixed).
PRESETS = {
    QUICK_LOOK: Preset(
        QUICK_LOOK, "a GRU-256 on Shakespeare, 6 short epochs of 80 steps: the loss falls from 4.4 to about 1.9 "
                    "nats/char and each epoch's sample turns from letter soup into words, names and stage directions "
                    "in about 2 minutes",
        {"epochs": 6, "steps_per_epoch": 80, "rnn_units": 256, "embedding_dim": 64, "batch_size": 64,
         "sample_length": 200, "precision": "float32"},
        Measurement(seconds_per_step=0.1701, startup_seconds=5.7, epoch_seconds=3.3, steps_per_pass=None,
                    cpu="AMD EPYC", load="quiet (family 25 model 1, AVX2 only)", date="2026-12-08",
                    wall_seconds=108.6, losses=(("loss", 4.369, 1.879),),
                    heldout=("heldout_loss_nats_per_char", 2.566, 1.938),
                    note="held-out loss per epoch 2.566, 2.240, 2.077, 1.990, 1.951, 1.938 nats/char")),
    # A warm-up of the shipped configuration (28 steps, interrupted after 150 s): one pass is 184 steps; the end of
    # an epoch was not reached, so its evaluation is not in the estimate. `auto` ran it in bfloat16 here.
    SHIPPED: shipped("the served checkpoint's configuration: a GRU-1024 at batch 256, 15 passes over Shakespeare",
                     Measurement(seconds_per_step=4.8512, startup_seconds=8.1, epoch_seconds=None, steps_per_pass=184,
                                 cpu="AMD EPYC", load="another training run and a benchmark on both cores (load 5)",
                                 date="2026-12-04", losses=(("loss", 4.433, 3.137),),
                                 note="warm-up of 28 steps in mixed_bfloat16 (precision auto on this AVX512-BF16 "
                                      "CPU)")),
}
