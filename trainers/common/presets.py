"""Named settings per model for the Training tab, with the step times measured at them (no TensorFlow here).

Each model's `trainers/<model>/config.py` defines `PRESETS`, a dict of `Preset`s by name, beside its
`TrainConfig`: at least `QUICK_LOOK` (the Training tab's default: a small model that shows a falling loss and
improving samples within a few minutes on a 2-core CPU) and `SHIPPED` (exactly the `TrainConfig` defaults, the
configuration of the served checkpoint). A preset's `settings` are the fields that differ from the defaults.

A preset's `measured` is a real run of the trainer's CLI at those settings (`python -m trainers.<model>.train`),
split by `playground.step_times` into the parts the Training tab's duration estimate scales: the time before the
first step, seconds per step and the end-of-epoch work. Figures are only true for the CPU they name.
"""

from __future__ import annotations

import dataclasses

QUICK_LOOK = "quick look"
SHIPPED = "shipped configuration"


@dataclasses.dataclass(frozen=True)
class Measurement:
    """A measured run of a preset; seconds of wall time on `cpu` (with `load`: what else ran at the time)."""

    seconds_per_step: float  # a training step, from the logged steps within epochs
    startup_seconds: float | None  # process start to the first step: imports, data, building, the first trace
    epoch_seconds: float | None  # end-of-epoch work per epoch: held-out scores, samples, checkpoint
    steps_per_pass: int | None  # steps of one pass over the data at these settings (steps_per_epoch 0)
    cpu: str  # the CPU's model name, as /proc/cpuinfo gives it
    load: str  # what else ran on the machine during the measurement
    date: str
    wall_seconds: float | None = None  # the whole measured run, if it was run to the end
    losses: tuple = ()  # ((series, first logged value, last logged value), ...) of the measured run
    heldout: tuple = ()  # (the model's PROMOTION_METRIC, after the first epoch, after the last) of the measured run
    note: str = ""

    def total_seconds(self, epochs: int, steps_per_epoch: int) -> float:
        """The run's duration these figures predict: start-up + epochs x (steps x step time + end of epoch)."""
        return ((self.startup_seconds or 0.0)
                + epochs * (steps_per_epoch * self.seconds_per_step + (self.epoch_seconds or 0.0)))


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    description: str
    settings: dict  # TrainConfig fields (epochs included) that differ from the defaults
    measured: Measurement | None = None


def shipped(description: str, measured: Measurement | None = None) -> Preset:
    """The shipped configuration: the TrainConfig defaults, nothing changed."""
    return Preset(SHIPPED, description, {}, measured)


# Settings that change what a run learns but not how long a step or an epoch's evaluation takes: the estimate
# scales a measurement to other values of these (and to other epochs and steps per epoch); any other setting must
# equal the measured one for its figures to apply.
TIME_NEUTRAL = frozenset({
    "epochs", "steps_per_epoch", "learning_rate", "seed", "warmup_steps", "min_lr_fraction", "clip_norm",
    "lr_decay", "beta_1", "label_smoothing", "discriminator_learning_rate", "sample_prompt", "init_from",
    "log_every"})
