"""The settings every trainer shares, in a module that imports no TensorFlow.

Each model's `trainers/<model>/config.py` subclasses `RunConfig`, overrides the defaults that differ (a field
declared again keeps its place in the flag list and takes the new default) and adds its own fields. The app reads
these modules to build the Training tab, so they must stay cheap to import: no TensorFlow, no Keras, no data.

Flags come from the fields (`trainers.common.cli`): `batch_size` becomes `--batch-size`, typed and checked.
"""

from __future__ import annotations

import dataclasses
import math

from trainers.common.hardware import PRECISIONS  # ("auto", "float32", "mixed_bfloat16")

STRATEGIES = ("default", "mirrored", "multi-worker")


def positive(name: str, value, allow_zero: bool = False) -> list[str]:
    """A list with one sentence if `value` is not a finite number greater than zero (or zero, if allowed)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{name} must be a finite number, got {value}"]
    if value < 0 or (value == 0 and not allow_zero):
        return [f"{name} must be {'zero or more' if allow_zero else 'greater than zero'}, got {value}"]
    return []


def in_range(name: str, value, low, high) -> list[str]:
    """A list with one sentence if `value` is not between `low` and `high` (NaN is never in range)."""
    if not (low <= value <= high):
        return [f"{name} must be between {low} and {high}, got {value}"]
    return []


def one_of(name: str, value, choices) -> list[str]:
    if value not in choices:
        return [f"{name} must be {', '.join(choices[:-1])} or {choices[-1]}, got {value!r}"]
    return []


def flag(name: str) -> str:
    return name.replace("_", "-")


@dataclasses.dataclass
class RunConfig:
    """Fields of every training run. Subclasses set `SOURCES` and may override any default."""

    SOURCES = ("offline", "canonical")

    source: str = dataclasses.field(default="offline", metadata={"help": "where the training data comes from"})
    out: str = dataclasses.field(default="runs/model", metadata={"help": "run folder"})
    epochs: int = 1
    batch_size: int = dataclasses.field(default=64, metadata={"help": "global batch (split across replicas)"})
    learning_rate: float = dataclasses.field(default=1e-3, metadata={"help": "peak learning rate"})
    steps_per_epoch: int = dataclasses.field(default=0, metadata={"help": "0: one pass over the data"})
    log_every: int = 10
    seed: int = 0
    precision: str = dataclasses.field(default="auto", metadata={
        "help": "auto (bfloat16 where the CPU computes it natively: AMX or AVX512-BF16; float32 elsewhere), "
                "float32 or mixed_bfloat16"})
    strategy: str = dataclasses.field(default="default", metadata={
        "help": "tf.distribute strategy: default (one device), mirrored (every local device) or multi-worker "
                "(MultiWorkerMirroredStrategy; reads TF_CONFIG)"})
    eager: bool = dataclasses.field(default=False, metadata={"help": "run the step without tf.function"})
    resume: bool = dataclasses.field(default=True, metadata={"help": "resume from <out>/resume if present"})
    init_from: str = dataclasses.field(default="", metadata={
        "help": "start a new run from this checkpoint folder's weights and epoch count (e.g. checkpoints/<model>)"})

    def validate(self) -> list[str]:
        """Every problem with these settings, as sentences; subclasses add theirs to `super().validate()`."""
        problems = one_of("source", self.source, self.SOURCES)
        problems += one_of("precision", self.precision, PRECISIONS)
        problems += one_of("strategy", self.strategy, STRATEGIES)
        for name in ("epochs", "batch_size", "log_every"):
            problems += positive(flag(name), getattr(self, name))
        problems += in_range("epochs", self.epochs, 1, 1000)
        problems += in_range("learning-rate", self.learning_rate, 1e-6, 1.0)
        problems += positive("steps-per-epoch", self.steps_per_epoch, allow_zero=True)
        return problems
