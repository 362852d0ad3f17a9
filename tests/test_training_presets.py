"""The Training tab's presets and its duration estimate (trainers/common/presets.py, playground/estimate.py).

Every model offers a quick look (the form's default) and the shipped configuration (exactly the TrainConfig
defaults); choosing one fills the form, and changing a field makes it "custom". The estimate beside Start is the
measured figures scaled to the settings: from the preset's measurement, or from an earlier run on this machine,
which a real quick-look-shaped tiny run through the Jobs API provides here.
"""

from __future__ import annotations

import dataclasses
import json

import gradio as gr
import pytest

from playground import estimate as estimates
from playground import step_times, training_tab
from playground.jobs import Jobs, discover_trainers
from playground.registry import Registry
from tests.test_jobs import write_text
from trainers.common.presets import QUICK_LOOK, SHIPPED, TIME_NEUTRAL, Measurement, Preset

MODELS = ("char_rnn", "dcgan", "nmt", "captioning")
QUICK_LOOK_SECONDS = 180  # the goal: a falling loss and improving samples within 3 minutes on this CPU


@pytest.fixture(scope="module")
def trainers():
    return discover_trainers()


@pytest.fixture(scope="module")
def tab(tiny_checkpoints, tmp_path_factory):
    """The Training tab laid out and wired in a Blocks that is never launched, with an empty runs folder."""
    tab = training_tab.TrainingTab(Registry(tiny_checkpoints))
    tab.jobs = Jobs(runs=tmp_path_factory.mktemp("runs") / "runs", checkpoints=tiny_checkpoints)
    with gr.Blocks():
        assert tab.layout()
        tab.wire()
    return tab


@pytest.mark.parametrize("model", MODELS)
def test_every_model_has_a_measured_quick_look_and_the_shipped_configuration(trainers, model):
    trainer = trainers[model]
    config = trainer.module.TrainConfig
    presets = trainer.module.PRESETS
    assert list(presets)[:1] == [QUICK_LOOK] and SHIPPED in presets
    fields = {field.name for field in dataclasses.fields(config)}
    for name, preset in presets.items():
        assert preset.name == name and preset.description
        assert set(preset.settings) <= fields, f"{model} {name}: unknown settings"
        assert set(preset.settings) <= set(trainer.settings) | {"epochs"}, f"{model} {name}: not settable"
        assert config(**preset.settings).validate() == [], f"{model} {name}"
    # The shipped preset is exactly the TrainConfig defaults: it changes nothing.
    assert presets[SHIPPED].settings == {}
    shipped = estimates.preset_values(trainer, presets[SHIPPED])
    assert shipped == {**trainer.defaults(), "source": trainer.sources[0], "epochs": config().epochs}
    # The quick look trains for real and its measured run fitted the 3 minutes, with a falling loss.
    quick = presets[QUICK_LOOK]
    measured = quick.measured
    assert quick.settings.get("steps_per_epoch") and quick.settings.get("epochs", 1) >= 3, "several short epochs"
    assert measured.cpu and measured.date and measured.load
    assert 0 < measured.wall_seconds <= QUICK_LOOK_SECONDS
    # A falling loss (a GAN's losses settle instead: there the held-out score is what falls), and a held-out score
    # (the one promotion compares) better after the last epoch than after the first.
    assert measured.losses and (model == "dcgan" or any(last < first for _, first, last in measured.losses))
    metric, direction, _ = trainer.module.PROMOTION_METRIC
    assert measured.heldout[0] in (metric, f"test_{metric}")  # metrics.json's name, or the epochs' for it
    first, last = measured.heldout[1:]
    assert (last < first) if direction == "lower" else (last > first), f"{metric} {first} -> {last}"
    # Its parts add up to the measured wall time: the estimate of the quick look is its measured run.
    epochs, steps = quick.settings["epochs"], quick.settings["steps_per_epoch"]
    assert measured.total_seconds(epochs, steps) == pytest.approx(measured.wall_seconds, rel=0.1)


@pytest.mark.parametrize("model", MODELS)
def test_the_quick_look_estimate_comes_from_its_measurement_and_scales_with_epochs_and_steps(trainers, model):
    trainer = trainers[model]
    quick = trainer.module.PRESETS[QUICK_LOOK]
    measured = quick.measured
    values = estimates.preset_values(trainer, quick)
    epochs, steps = values["epochs"], values["steps_per_epoch"]
    result = estimates.estimate(trainer, values, this_cpu=measured.cpu)
    assert result.basis == f"preset {QUICK_LOOK}"
    assert result.seconds == pytest.approx(measured.total_seconds(epochs, steps))
    assert f"{measured.seconds_per_step:.3g} s/step" in result.sentence and measured.cpu in result.sentence
    assert "may differ" not in result.sentence

    def seconds(**changes):
        return estimates.estimate(trainer, {**values, **changes}, this_cpu=measured.cpu).seconds

    per_epoch = steps * measured.seconds_per_step + measured.epoch_seconds
    assert seconds(epochs=2 * epochs) - seconds(epochs=epochs) == pytest.approx(epochs * per_epoch)
    # Doubling the epochs doubles everything but the start-up.
    assert seconds(epochs=2 * epochs) - measured.startup_seconds == pytest.approx(
        2 * (seconds(epochs=epochs) - measured.startup_seconds))
    assert seconds(steps_per_epoch=2 * steps) - seconds() == pytest.approx(epochs * steps * measured.seconds_per_step)
    assert seconds(learning_rate=values["learning_rate"] / 2) == seconds(), "a learning rate does not change a step"
    # Another CPU: the figure is still the measured one, and the sentence says where it was measured.
    assert "this machine has Some Other CPU, so it may differ" in estimates.estimate(
        trainer, values, this_cpu="Some Other CPU").sentence
    # A model size nothing was measured at: no figure, and a sentence that says so.
    size = next(name for name in trainer.main_settings if name not in TIME_NEUTRAL
                and trainer.settings[name].kind is int)
    unmeasured = estimates.estimate(trainer, {**values, size: values[size] * 2})
    assert unmeasured.seconds is None and unmeasured.sentence.startswith("No estimate: no step time")


def test_a_pass_over_the_data_uses_the_measured_steps_per_pass(trainers):
    trainer = trainers["char_rnn"]
    measured = Measurement(seconds_per_step=2.0, startup_seconds=10.0, epoch_seconds=None, steps_per_pass=40,
                           cpu="X", load="idle", date="2026-12-04")
    presets = {SHIPPED: Preset(SHIPPED, "defaults", {}, measured)}
    values = estimates.preset_values(trainer, presets[SHIPPED])
    result = estimates.estimate(trainer, values, presets=presets, this_cpu="X")
    assert result.seconds == 10.0 + values["epochs"] * 40 * 2.0
    assert "not measured and comes on top" in result.sentence  # the evaluation of a full-size epoch
    # Without a measured pass there is nothing to multiply: no estimate.
    bare = {SHIPPED: Preset(SHIPPED, "defaults", {}, dataclasses.replace(measured, steps_per_pass=None))}
    assert estimates.estimate(trainer, values, presets=bare).seconds is None


def test_the_form_starts_with_the_quick_look(tab, trainers):
    trainer = trainers[tab.model.value]
    quick = trainer.module.PRESETS[QUICK_LOOK]
    assert tab.preset.value == QUICK_LOOK and ("custom", "custom") in tab.preset.choices
    assert tab.epochs.value == quick.settings["epochs"]
    shown = {setting.name: slot.number.value for slot, setting in zip(tab.slots, training_tab._slot_settings(trainer))
             if setting is not None}
    assert shown == {name: {**trainer.defaults(), **quick.settings}[name] for name in trainer.main_settings}
    # The quick look's other settings are in More settings: together the form holds exactly the preset.
    extra = json.loads(tab.extra.value)
    assert {**shown, **extra, "epochs": tab.epochs.value} == {
        **{name: trainer.defaults()[name] for name in trainer.main_settings}, **quick.settings}
    assert tab.estimate.value.startswith("**Estimated duration") and "s/step" in tab.estimate.value


def _form(tab, model: str, preset: str, updates: dict | None = None) -> dict:
    """The form's values after choosing `preset` (as the page would send them), with `updates` applied."""
    filled = tab.pick_preset({tab.model: model, tab.preset: preset, tab.source: "offline"})
    values = {tab.model: model, tab.preset: preset, tab.source: "offline", tab.epochs: filled[tab.epochs].value,
              tab.extra: filled[tab.extra].value}
    for slot in tab.slots:
        for component in slot.components:
            values[component] = filled[component].value
    values.update(updates or {})
    return filled, values


@pytest.mark.parametrize("model", MODELS)
def test_choosing_a_preset_fills_the_form_and_editing_it_makes_it_custom(tab, trainers, model):
    trainer = trainers[model]
    for name, preset in trainer.module.PRESETS.items():
        filled, values = _form(tab, model, name)
        assert filled[tab.preset].value == name
        wanted = estimates.preset_values(trainer, preset)
        sent = json.loads(tab.collect_settings(values))  # what Start would send
        assert {**trainer.defaults(), **sent, "epochs": values[tab.epochs]} == {
            key: value for key, value in wanted.items() if key != "source"}
        assert tab.form_changed(values)[tab.preset].value == name, "unchanged values still match the preset"
        assert filled[tab.estimate] == estimates.estimate(trainer, {**wanted, "source": "offline"}, tab.jobs).sentence
    _, values = _form(tab, model, QUICK_LOOK)
    values[tab.epochs] = trainer.module.PRESETS[QUICK_LOOK].settings["epochs"] + 1
    changed = tab.form_changed(values)
    assert changed[tab.preset].value == training_tab.CUSTOM
    assert "Estimated duration" in changed[tab.estimate]  # more epochs of the same sizes: still measured
    values[tab.extra] = "{not json"
    broken = tab.form_changed(values)
    assert broken[tab.preset].value == training_tab.CUSTOM and broken[tab.estimate].startswith("No estimate")
    with pytest.raises(gr.Error, match="More settings must be a JSON object"):
        tab.collect_settings(values)
    with pytest.raises(gr.Error, match="has no preset 'fastest'"):
        tab.pick_preset({tab.model: model, tab.preset: "fastest", tab.source: "offline"})


def test_step_times_split_a_progress_log_into_its_parts():
    events = [{"event": "start", "time": 105.0, "elapsed": 0.0, "steps_per_epoch": 4, "config": {"steps_per_epoch": 0}}]
    clock = 105.0
    for epoch in (1, 2):
        for step in range(1, 5):
            clock += 0.5
            events.append({"event": "step", "epoch": epoch, "step": (epoch - 1) * 4 + step, "time": clock,
                           "elapsed": clock - 105.0, "loss": 3.0 - 0.1 * step - epoch})
        clock += 3.0  # the end of the epoch
    events.append({"event": "done", "time": clock, "elapsed": clock - 105.0})
    parts = step_times.split(events, launched=100.0)
    assert parts["seconds_per_step"] == pytest.approx(0.5) and parts["epoch_seconds"] == pytest.approx(3.0)
    assert parts["startup_seconds"] == pytest.approx(5.0) and parts["steps_per_pass"] == 4
    assert parts["losses"] == (("loss", pytest.approx(1.9), pytest.approx(0.6)),)
    measured = Measurement(parts["seconds_per_step"], parts["startup_seconds"], parts["epoch_seconds"], 4, "", "", "")
    assert measured.total_seconds(2, 4) == pytest.approx(clock - 100.0)  # the parts add up to the run
    assert step_times.split(events[:2]) is None, "one logged step measures nothing"


def test_a_quick_look_shaped_run_through_the_jobs_api_measures_the_next_estimate(tmp_path, tiny_checkpoints):
    """A tiny run shaped like the quick look (several short epochs, float32) trains through the Jobs API; the
    estimate for the same settings then comes from its own progress log and reproduces its duration."""
    from tests.test_jobs import wait_for

    trainer = discover_trainers()["char_rnn"]
    quick = trainer.module.PRESETS[QUICK_LOOK].settings
    settings = {**{k: v for k, v in quick.items() if k != "epochs"}, "rnn_units": 16, "embedding_dim": 8,
                "batch_size": 8, "seq_len": 20, "steps_per_epoch": 6, "sample_length": 40, "log_every": 2}
    jobs = Jobs(runs=tmp_path / "runs", checkpoints=tiny_checkpoints)
    values = estimates.form_values(trainer, "file", 3, settings)
    before = estimates.estimate(trainer, values, jobs)
    assert before.seconds is None and before.sentence.startswith("No estimate")  # nothing measured at these sizes

    run = jobs.start("char_rnn", "file", 3, settings, upload=write_text(tmp_path / "writing.txt"))
    wait_for(lambda: jobs.get(run.run_id).status != "running", 600, "the quick-look-shaped run to finish")
    info = jobs.status(run.run_id)
    assert info["status"] == "done", info["message"]
    assert info["epochs_done"] == 3 and info["step"] == 18 and info["sample"]["text"]
    train_losses = [point["value"] for point in info["losses"] if point["series"] == "loss"]
    assert min(train_losses[-3:]) < train_losses[0], "the loss falls"

    after = estimates.estimate(trainer, values, jobs)
    assert after.basis == f"run {run.run_id}" and "on this machine" in after.sentence
    done = next(e for e in reversed(step_times.read_events(jobs.run_dir(run.run_id))) if e["event"] == "done")
    assert after.seconds == pytest.approx(done["time"] - run.started, abs=1.0)  # the run's own duration
    doubled = estimates.estimate(trainer, {**values, "epochs": 6}, jobs).seconds
    startup = step_times.split(step_times.read_events(jobs.run_dir(run.run_id)), run.started)["startup_seconds"]
    assert doubled - startup == pytest.approx(2 * (after.seconds - startup))
    # Another model size is still unmeasured.
    assert estimates.estimate(trainer, {**values, "rnn_units": 32}, jobs).seconds is None
