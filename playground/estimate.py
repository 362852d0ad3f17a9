"""How long a run will take, before it starts: measured step times scaled to the settings on the form.

Two sources, both measurements (never a guess):

1. **Earlier runs on this machine** (the runs folder): a run of the same model whose settings match in everything
   that changes the time of a step or of an epoch's evaluation (all but `TIME_NEUTRAL`: epochs, steps per epoch,
   learning rates, seeds...). Its `progress.jsonl` gives seconds per step, start-up and end-of-epoch work
   (playground/step_times.py). The newest such run counts.
2. **The presets' measurements** (`PRESETS` in trainers/<model>/config.py): a real CLI run at the preset's
   settings, on the CPU it names.

The figures are scaled to the form's epochs and steps per epoch: start-up + epochs x (steps x seconds per step +
end-of-epoch work). When neither source matches, the estimate says that nothing measured applies.
"""

from __future__ import annotations

import dataclasses
import time

from playground import step_times
from playground.trainer_catalog import RESERVED, Setting, Trainer, convert
from trainers.common.presets import TIME_NEUTRAL, Measurement
from trainers.common.progress import read_events

# Fields that are not part of what a run computes (where it writes, whether it resumes, the uploaded file's path).
IGNORED = frozenset(RESERVED) - {"source", "epochs"}
EPOCHS = Setting("epochs", int, 1, "")


@dataclasses.dataclass(frozen=True)
class Estimate:
    seconds: float | None  # None: nothing measured applies
    sentence: str  # what the page shows, saying where the figure comes from
    basis: str = ""  # "run <id>", "preset <name>" or ""


def form_values(trainer: Trainer, source, epochs, settings: dict) -> dict:
    """Every field a run with these settings would have: the TrainConfig defaults, then the form's values, each
    as its field's type (JobError for a value that does not fit)."""
    values = trainer.defaults()
    values["source"] = source
    values["epochs"] = convert(EPOCHS, epochs)
    for name, value in settings.items():
        if name in trainer.settings:
            values[name] = convert(trainer.settings[name], value)
    return values


def preset_values(trainer: Trainer, preset) -> dict:
    """Every field of a preset: the TrainConfig defaults with the preset's settings (source, epochs included)."""
    values = {**trainer.defaults(), "source": trainer.sources[0], "epochs": trainer.default_epochs()}
    values.update(preset.settings)
    return values


def timing_key(values: dict) -> dict:
    """The settings that must be equal for a measurement to apply (all but the time-neutral ones)."""
    return {name: value for name, value in values.items() if name not in TIME_NEUTRAL and name not in IGNORED}


def _run_figures(jobs, trainer: Trainer, values: dict):
    """(run, figures) of the newest earlier run of this model whose timing settings match `values` and that logged
    enough to measure its steps, or None."""
    key = timing_key(values)
    for run in jobs.list_runs():
        if run.model != trainer.name:
            continue
        run_values = {**trainer.defaults(), "source": run.source, "epochs": run.epochs, **run.settings}
        if timing_key(run_values) != key:
            continue
        figures = step_times.split(read_events(jobs.run_dir(run.run_id)), launched=run.started)
        if figures is not None and (values.get("steps_per_epoch") or figures["steps_per_pass"]):
            return run, figures
    return None


def _duration(seconds: float) -> str:
    """'about 2 min 10 s', 'about 3 h 5 min' (rounded to what such an estimate can claim)."""
    if seconds < 60:
        return f"about {max(5, round(seconds / 5) * 5):.0f} s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds / 10) * 10, 60)
        return f"about {minutes:.0f} min" + (f" {rest:.0f} s" if rest else "")
    hours, rest = divmod(round(seconds / 300) * 300, 3600)
    return f"about {hours:.0f} h" + (f" {rest / 60:.0f} min" if rest else "")


def _sentence(seconds: float, epochs: int, steps: int, measured: Measurement, where: str) -> str:
    return (f"**Estimated duration: {_duration(seconds)}**  \n{_parts(epochs, steps, measured)}; measured {where}.")


def _parts(epochs: int, steps: int, measured: Measurement) -> str:
    text = f"{epochs} × {steps:,} steps at {measured.seconds_per_step:.3g} s/step"
    if measured.startup_seconds is not None:
        text += f", {measured.startup_seconds:.0f} s to start"
    if measured.epoch_seconds is not None:
        return text + f", {measured.epoch_seconds:.0f} s of evaluation per epoch"
    return text + "; the end-of-epoch evaluation at these sizes is not measured and comes on top"


def estimate(trainer: Trainer, values: dict, jobs=None, presets: dict | None = None,
             this_cpu: str | None = None) -> Estimate:
    """The duration of a run with `values` (every field: see form_values), from measured figures only."""
    epochs = values["epochs"]
    if values.get("source") == "file" and not values.get("steps_per_epoch"):
        return Estimate(None, "No estimate: an epoch is one pass over your file, so its length depends on the "
                              "file (set steps_per_epoch in More settings to fix it).")
    found = _run_figures(jobs, trainer, values) if jobs is not None else None
    if found is not None:
        run, figures = found
        measured = Measurement(figures["seconds_per_step"], figures["startup_seconds"], figures["epoch_seconds"],
                               figures["steps_per_pass"], cpu="this machine", load="", date="")
        steps = values.get("steps_per_epoch") or measured.steps_per_pass
        seconds = measured.total_seconds(epochs, steps)
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(run.started))
        return Estimate(seconds, _sentence(seconds, epochs, steps, measured,
                                           f"in run {run.run_id} on this machine, {when} UTC"), f"run {run.run_id}")
    presets = getattr(trainer.module, "PRESETS", {}) if presets is None else presets
    key = timing_key(values)
    for preset in presets.values():
        measured = preset.measured
        steps = values.get("steps_per_epoch") or (measured.steps_per_pass if measured else None)
        if measured is None or not steps or timing_key(preset_values(trainer, preset)) != key:
            continue
        seconds = measured.total_seconds(epochs, steps)
        this_cpu = this_cpu or step_times.cpu_name()
        elsewhere = "" if this_cpu == measured.cpu else f"; this machine has {this_cpu}, so it may differ"
        return Estimate(seconds, _sentence(seconds, epochs, steps, measured,
                                           f"for the {preset.name} preset on {measured.cpu}, {measured.date}, "
                                           f"{measured.load}{elsewhere}"), f"preset {preset.name}")
    return Estimate(None, "No estimate: no step time has been measured at these model sizes (only epochs, steps "
                          "per epoch and learning rates may differ from a preset or an earlier run). The progress "
                          "bar shows the time left once the run has logged its first steps.")
