"""The Training tab: retrain any model from the page, watch it learn, cancel it, and promote it into its tab.

Pick a model, a data source (for the text model also "your own writing": an uploaded UTF-8 text file), the
epochs and the model's main settings, and Start: the run trains in the background (see playground/jobs.py)
while a timer refreshes its progress bar, loss plot and latest samples. A finished run can be promoted: its
checkpoint replaces the one its tab serves, without restarting the app, and "Restore previous" swaps it back.
The tab's `CSS` is passed to `launch(css=...)` with the app's own (playground/app.py gathers it).

The events are API endpoints, so a script can drive training exactly as the page does:

    from gradio_client import Client
    client = Client("http://127.0.0.1:7860/")
    run_id, _ = client.predict("char_rnn", "offline", 2, '{"rnn_units": 256}', None, api_name="/start_training")
    details = client.predict(run_id, api_name="/training_status")[0]      # a dict: status, progress, metrics
    client.predict(run_id, api_name="/cancel_training")  # or: api_name="/promote_run" once it has finished

A run scoring worse than the served checkpoint on its model's held-out metric is refused by /promote_run with a
sentence; the page then shows the comparison beside the button with "Promote anyway" (/promote_run_anyway).
"""

from __future__ import annotations

import html
import json
import time

import gradio as gr

from playground import estimate as estimates
from playground.jobs import CANCELLED, DONE, FAILED, RUNNING, JobError, Jobs, describe, discover_trainers
from playground.trainer_catalog import Setting
from trainers.common.presets import QUICK_LOOK, SHIPPED, shipped
from trainers.common.progress import format_seconds

MODEL = None
TITLE = "Training"
TAB_ORDER = ("char_rnn", "dcgan", "nmt", "captioning")  # only the order they are offered in; any trainer is found
SLOTS = 6  # the most main settings a trainer may list; each slot shows one, as a number, text or switch
REFRESH_SECONDS = 2.0  # while a run trains
IDLE_REFRESH_SECONDS = 10.0  # otherwise (a run started elsewhere, e.g. through the API, shows up within this)
SOURCE_LABELS = {"offline": "offline (bundled data)", "canonical": "canonical (download; falls back to offline)",
                 "file": "file (your own writing)"}
RUN_COLUMNS = ["Run", "Model", "Status", "Started (UTC)", "Epochs", "Held-out scores (last epoch)", "Promoted"]
STATUS_ICONS = {RUNNING: "⏳ running", DONE: "✅ done", FAILED: "❌ failed", CANCELLED: "⏹ cancelled"}
CUSTOM = "custom"  # the preset choice once a field no longer matches any preset
CUSTOM_INFO = "Your own settings: a field differs from every preset (pick a preset to fill them in again)."


def _error(error: Exception) -> gr.Error:
    text = str(error)
    return gr.Error(text[:1].upper() + text[1:] + ("" if text.endswith((".", "?", "!")) else "."))


def ordered(trainers: dict) -> dict:
    """The trainers in the order of the app's tabs; models added later come after, alphabetically."""
    rank = {name: index for index, name in enumerate(TAB_ORDER)}
    return dict(sorted(trainers.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def _trainer_choices(trainers) -> list[tuple[str, str]]:
    return [(name.replace("_", "-"), name) for name in trainers]


def _source_choices(trainer) -> list[tuple[str, str]]:
    return [(SOURCE_LABELS.get(source, source), source) for source in trainer.sources]


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def scores_text(scores: dict) -> str:
    return " · ".join(f"{name.replace('_', ' ')} {_format_value(value)}" for name, value in scores.items()
                      if name != "epoch")


def runs_table(jobs: Jobs) -> list[list]:
    rows = []
    for run in jobs.list_runs():
        summary = jobs.summary(run)
        rows.append([run.run_id, run.model, STATUS_ICONS.get(run.status, run.status),
                     time.strftime("%Y-%m-%d %H:%M", time.gmtime(run.started)), summary["epochs"],
                     scores_text(dict(list(summary["scores"].items())[:5])),
                     time.strftime("%m-%d %H:%M", time.gmtime(run.promoted)) if run.promoted else ""])
    return rows


def progress_html(info: dict | None) -> str:
    if not info:
        return ("<div class='ep-progress'><div class='ep-progress-text'>No run yet: choose a model and settings, "
                "then Start.</div></div>")
    percent = round(100 * info["fraction"], 1)
    state = info["status"]
    bits = [f"epoch {info['epoch']}/{info['epochs']}" if info["total_steps"] else "starting",
            f"step {info['step']}/{info['total_steps']}" if info["total_steps"] else ""]
    if info.get("eta_seconds") is not None:
        bits.append(f"ETA {format_seconds(info['eta_seconds'])}")
    if info.get("elapsed_seconds") is not None:
        bits.append(f"elapsed {format_seconds(info['elapsed_seconds'])}")
    if info.get("paused_seconds", 0) >= 1:  # playground/core_sharing.py: the app's answers come first
        bits.append(f"paused {format_seconds(info['paused_seconds'])} while the app answered")
    text = " · ".join(bit for bit in bits if bit)
    return (f"<div class='ep-progress ep-{state}' data-status='{state}' data-fraction='{info['fraction']}'>"
            f"<div class='ep-progress-head'><b>{html.escape(info['run_id'])}</b>"
            f"<span>{html.escape(STATUS_ICONS.get(state, state))} · {percent:g}%</span></div>"
            f"<div class='ep-progress-track'><div class='ep-progress-fill' style='width:{percent}%'></div></div>"
            f"<div class='ep-progress-text'>{html.escape(text)}</div></div>")


def series_label(name: str) -> str:
    """'loss' -> 'train loss', 'heldout_loss_nats_per_char' -> 'held-out loss nats per char'."""
    label = name.replace("heldout", "held-out").replace("_", " ")
    return "train " + label if not label.startswith(("train", "held-out", "val", "test")) else label


def loss_figure(info: dict | None):
    """The run's losses as a matplotlib figure: a line per training loss, dots on the held-out losses.

    (A matplotlib figure rather than gr.LinePlot: Gradio 6.31's LinePlot keeps the colour legend of its first
    drawing, so a held-out series that appears after the first epoch would never be drawn.)
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.2, 3.3), dpi=110, layout="constrained")
    axes = figure.add_subplot()
    points = info["losses"] if info else []
    series: dict[str, list] = {}
    for point in points:
        series.setdefault(point["series"], []).append((point["step"], point["value"]))
    for name, values in series.items():
        steps, losses = zip(*sorted(values))
        held_out = not name.startswith("train") and name != "loss" and name in {
            key for metric in (info or {}).get("metrics", []) for key in metric}
        axes.plot(steps, losses, marker="o" if held_out or len(steps) < 3 else None, markersize=5,
                  linewidth=2.0 if held_out else 1.6, label=series_label(name))
    axes.set_title("Loss", loc="left", fontsize=11, fontweight="bold")
    axes.set_xlabel("step")
    axes.set_ylabel("loss (nats)")
    axes.grid(True, alpha=0.3)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if series:
        axes.legend(frameon=False, fontsize=9)
        if info and info.get("total_steps"):
            axes.set_xlim(0, info["total_steps"])
    else:
        axes.text(0.5, 0.5, "The loss appears here once the run logs its first steps.", ha="center",
                  va="center", transform=axes.transAxes, color="#64748b")
        axes.set_xticks([])
        axes.set_yticks([])
    return figure


def _gallery(sample: dict) -> list:
    from PIL import Image

    items = []
    paths = ([(sample["image"], f"epoch {sample.get('epoch')}")] if sample.get("image") else []) + \
        [(item["path"], item["caption"]) for item in sample.get("images", [])]
    for path, caption in paths:
        try:
            with Image.open(path) as image:
                items.append((image.convert("RGB"), caption))
        except OSError:
            continue
    return items


CSS = """
.ep-progress { border: 1px solid var(--border-color-primary); border-radius: var(--radius-lg); padding: 10px 14px;
  background: var(--block-background-fill); }
.ep-progress-head { display: flex; justify-content: space-between; margin-bottom: 6px; font-size: 0.95em; }
.ep-progress-track { height: 14px; border-radius: 7px; background: var(--neutral-200); overflow: hidden; }
.ep-progress-fill { height: 100%; background: var(--color-accent); transition: width 0.6s ease; }
.ep-done .ep-progress-fill { background: #16a34a; }
.ep-failed .ep-progress-fill { background: #dc2626; }
.ep-cancelled .ep-progress-fill { background: var(--neutral-400); }
.ep-progress-text { margin-top: 6px; font-size: 0.9em; color: var(--body-text-color-subdued); }
#training-sample-text textarea { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.9em; }
#training-estimate { font-size: 0.9em; color: var(--body-text-color-subdued); }
#training-estimate strong { color: var(--body-text-color); font-size: 1.05em; }
#training-error textarea { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.85em;
  color: #b91c1c; }
"""


def _slot_props(setting: Setting | None, value=None) -> tuple[dict, dict, dict]:
    """The properties of a setting slot's number, text box and switch: only the one of the setting's kind shows,
    holding `value` (the setting's default if None)."""
    kind = setting.kind if setting else None
    label = setting.label if setting else ""
    info = (setting.help or None) if setting else None
    value = setting.default if setting and value is None else value
    number = {"visible": kind in (int, float), "label": label, "info": info,
              "value": value if kind in (int, float) else None, "precision": None}
    text = {"visible": kind is str, "label": label, "info": info, "value": value if kind is str else ""}
    switch = {"visible": kind is bool, "label": label, "info": info, "value": bool(value) if kind is bool else False}
    return number, text, switch


def _slot_settings(trainer) -> list[Setting | None]:
    """The setting each of the SLOTS shows for `trainer` (None: the slot is hidden)."""
    shown = [trainer.settings[name] for name in trainer.main_settings[:SLOTS]]
    return shown + [None] * (SLOTS - len(shown))


def _other_settings(trainer) -> str:
    return "Other settings of this model: " + ", ".join(name for name in trainer.settings
                                                         if name not in trainer.main_settings)


def presets_of(trainer) -> dict:
    """The trainer's presets by name (`PRESETS` in its config.py); without any, the shipped configuration only."""
    return dict(getattr(trainer.module, "PRESETS", None) or {SHIPPED: shipped("the defaults")})


def default_preset(trainer) -> str:
    """The preset the form starts with: the quick look where the trainer has one."""
    presets = presets_of(trainer)
    return QUICK_LOOK if QUICK_LOOK in presets else next(iter(presets))


def _preset_choices(trainer) -> list[tuple[str, str]]:
    return [(name, name) for name in presets_of(trainer)] + [(CUSTOM, CUSTOM)]


def _preset_info(trainer, name: str) -> str:
    preset = presets_of(trainer).get(name)
    return (preset.description[:1].upper() + preset.description[1:] + ".") if preset else CUSTOM_INFO


def preset_form(trainer, name: str) -> tuple[int, list, str]:
    """(epochs, the main settings' values in slot order, the More settings JSON) that a preset fills in."""
    preset = presets_of(trainer)[name]
    values = estimates.preset_values(trainer, preset)
    extra = {key: value for key, value in preset.settings.items()
             if key not in trainer.main_settings and key != "epochs"}
    return (values["epochs"], [values[setting] for setting in trainer.main_settings[:SLOTS]],
            json.dumps(extra) if extra else "")


def matching_preset(trainer, values: dict) -> str:
    """The name of the preset whose settings are exactly `values` (every field but the data source), or CUSTOM."""
    fields = {key: value for key, value in values.items() if key != "source"}
    for name, preset in presets_of(trainer).items():
        wanted = estimates.preset_values(trainer, preset)
        if all(fields.get(key) == value for key, value in wanted.items() if key != "source"):
            return name
    return CUSTOM


def form_settings(trainer, slot_values: list, extra) -> dict:
    """The settings a form holds (its visible slots and the More settings JSON); ValueError with a sentence."""
    settings = {}
    for setting, value in zip(_slot_settings(trainer), slot_values):
        if setting is None:
            continue
        if value is None or value == "":
            raise ValueError(f"Give a value for {setting.name.replace('_', ' ')}.")
        settings[setting.name] = value
    if extra and extra.strip():
        try:
            more = json.loads(extra)
        except ValueError as error:
            raise ValueError(f"More settings must be a JSON object like {{\"steps_per_epoch\": 50}}: {error}.")
        if not isinstance(more, dict):
            raise ValueError("More settings must be a JSON object like {\"steps_per_epoch\": 50}.")
        settings.update(more)
    return settings


def estimate_text(trainer, source, epochs, settings: dict, jobs: Jobs | None) -> str:
    """The sentence beside Start: the run's estimated duration and where the figure comes from."""
    try:
        values = estimates.form_values(trainer, source, epochs, settings)
    except JobError as error:
        return f"No estimate: {error}."
    return estimates.estimate(trainer, values, jobs).sentence


class SettingSlot:
    """One main setting on the page: a number, a text box and a switch, of which only the setting's kind shows."""

    def __init__(self, setting: Setting | None, value=None):
        number, text, switch = _slot_props(setting, value)
        self.number = gr.Number(min_width=140, **number)
        self.text = gr.Textbox(min_width=140, **text)
        self.switch = gr.Checkbox(**switch)
        self.components = [self.number, self.text, self.switch]

    def show(self, setting: Setting | None, value=None) -> dict:
        """The updates that make this slot show `setting` holding `value` (or hide it)."""
        number, text, switch = _slot_props(setting, value)
        return {self.number: gr.Number(**number), self.text: gr.Textbox(**text), self.switch: gr.Checkbox(**switch)}

    def value(self, setting: Setting, values: dict):
        """The slot's value for `setting`, from the event's {component: value} inputs."""
        if setting.kind in (int, float):
            return values[self.number]
        return values[self.text] if setting.kind is str else values[self.switch]


class TrainingTab:
    """The tab's components and its event handlers (the handlers that are API endpoints keep their parameter
    names: they are the endpoints' parameters)."""

    def __init__(self, registry):
        self.registry = registry
        self.jobs = Jobs(checkpoints=registry.root)
        self.trainers = ordered(discover_trainers())

    # ---------------------------------------------------------------- layout

    def layout(self) -> bool:
        """Lays out the tab; False (after saying why) when no trainer follows the contract."""
        gr.Markdown("Retrain a model in the background and watch it learn: the loss falling and the samples "
                    "improving epoch by epoch. The run is a separate, lower-priority process, so the other tabs keep "
                    "working; one run trains at a time. Promote a finished run to serve it in its tab.",
                    elem_classes="ep-note")
        first = next(iter(self.trainers), None)
        if first is None:
            gr.Markdown("No trainer follows the Training tab contract yet (`trainers/<model>/config.py`).")
            return False
        trainer, choices = self.trainers[first], _trainer_choices(self.trainers)
        preset = default_preset(trainer)
        epochs, slot_values, extra = preset_form(trainer, preset)
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                gr.Markdown("### New run")
                self.model = gr.Dropdown(choices, value=first, label="Model")
                self.preset = gr.Radio(_preset_choices(trainer), value=preset, label="Preset",
                                       info=_preset_info(trainer, preset), elem_id="training-preset")
                self.source = gr.Radio(_source_choices(trainer), value=trainer.sources[0], label="Data")
                self.text_file = gr.File(label="Your own writing (a UTF-8 .txt file, at least 2,000 characters)",
                                         file_types=[".txt", ".md", ".text"], type="filepath", visible=False,
                                         elem_id="training-text-file")
                self.epochs = gr.Number(value=epochs, minimum=1, label="Epochs")
                with gr.Row():
                    self.slots = [SettingSlot(setting, value) for setting, value
                                  in zip(_slot_settings(trainer), slot_values + [None] * SLOTS)]
                with gr.Accordion("More settings", open=False):
                    self.extra = gr.Textbox(extra, label="More settings (JSON)",
                                            placeholder='{"steps_per_epoch": 50}', lines=2,
                                            info=_other_settings(trainer))
                with gr.Row(equal_height=False):
                    self.start = gr.Button("Start training", variant="primary", scale=1, min_width=150)
                    # Computed again on every page load (an earlier run on this machine may have measured these
                    # settings), by a load event that is not a public endpoint (see `build`).
                    self.initial_estimate = lambda: estimate_text(trainer, trainer.sources[0], epochs,
                                                                  form_settings(trainer, slot_values, extra),
                                                                  self.jobs)
                    self.estimate = gr.Markdown(self.initial_estimate(), elem_id="training-estimate",
                                                elem_classes="ep-note", scale=3)
                self.settings_json = gr.Textbox(visible=False)
                gr.Markdown("### Served checkpoint")
                self.served_model = gr.Dropdown(choices, value=first, label="Model", scale=1)
                self.served_text = gr.Markdown(self.served(first), elem_classes="ep-note")
                self.restore = gr.Button("↩ Restore previous checkpoint", size="sm")
            with gr.Column(scale=3, min_width=420):
                gr.Markdown("### Watch")
                self.run_choice = gr.Dropdown([run.run_id for run in self.jobs.list_runs()], value=None, label="Run",
                                              allow_custom_value=True)
                self.progress = gr.HTML(progress_html(None), padding=False, elem_id="training-progress",
                                        label="Progress")
                self.message = gr.Markdown("", elem_id="training-message", label="Message")
                # Empty until the first refresh (about 2 s after the page loads) draws it: building the page must
                # not import matplotlib (a third of the page's build time, which delays the app's start).
                self.plot = gr.Plot(None, format="png", label="Loss", show_label=False,
                                    elem_id="training-loss-plot")
                with gr.Row():
                    self.cancel = gr.Button("■ Cancel", variant="stop", interactive=False)
                    self.promote = gr.Button("★ Promote to its tab", variant="primary", interactive=False)
                    self.delete = gr.Button("🗑 Delete run", variant="secondary", interactive=False,
                                            elem_id="training-delete")
                # Shown when the chosen run scores worse than the served checkpoint: promoting needs a confirmation.
                with gr.Row(visible=False) as self.worse_row:
                    self.promote_note = gr.Markdown("", elem_id="training-promote-note")
                    self.promote_anyway = gr.Button("Promote anyway", variant="stop", size="sm",
                                                    elem_id="training-promote-anyway")
                self.sample_text = gr.Textbox(label="Generated text", lines=6, max_lines=12, visible=False,
                                              elem_id="training-sample-text")
                self.sample_gallery = gr.Gallery(label="Samples", visible=False, columns=3, height="auto",
                                                 object_fit="contain", preview=False)
                self.sample_rows = gr.Dataframe(headers=["input", "output"], label="Samples", visible=False,
                                                wrap=True, interactive=False, column_widths=["50%", "50%"])
                self.error_tail = gr.Textbox(label="Last lines of the run's output", lines=8, visible=False,
                                             elem_id="training-error")
        gr.Markdown("### Runs")
        self.runs = gr.Dataframe(runs_table(self.jobs), headers=RUN_COLUMNS, interactive=False, wrap=True,
                                 label="Runs (click one to watch it)", elem_id="training-runs", max_height=320,
                                 column_widths=["22%", "9%", "10%", "13%", "6%", "30%", "10%"])
        with gr.Accordion("Status as JSON (what the training_status endpoint returns)", open=False):
            self.details = gr.JSON(label="Status")
        self.seen = gr.State(None)
        self.timer = gr.Timer(REFRESH_SECONDS)  # the first tick sets the pace: fast while a run trains, else slow
        return True

    # ---------------------------------------------------------------- events

    def wire(self) -> None:
        slot_components = [component for slot in self.slots for component in slot.components]
        status_outputs = [self.details, self.run_choice, self.progress, self.message, self.plot, self.sample_text,
                          self.sample_gallery, self.sample_rows, self.error_tail, self.runs, self.cancel,
                          self.promote, self.delete, self.seen, self.timer, self.worse_row, self.promote_note]
        forget_seen = dict(fn=lambda: None, inputs=None, outputs=self.seen, api_name=False)
        show_served = dict(fn=self.served, inputs=self.served_model, outputs=self.served_text, api_name=False)
        form_fields = [self.epochs, self.extra, *slot_components]
        self.model.change(self.pick_model, self.model, [self.preset, self.source, self.epochs, self.text_file,
                                                         *slot_components, self.extra, self.served_model,
                                                         self.estimate], api_name=False)
        self.preset.input(self.pick_preset, {self.model, self.preset, self.source, *form_fields},
                          [self.preset, *form_fields, self.estimate], api_name=False)
        self.source.change(lambda source: gr.File(visible=source == "file"), self.source, self.text_file,
                           api_name=False)
        # A field changed by hand: the preset shows as custom (unless the values still match one), and the
        # estimate follows the new settings.
        for field in [self.source, *form_fields]:
            field.input(self.form_changed, {self.model, self.source, *form_fields}, [self.preset, self.estimate],
                        api_name=False, show_progress="hidden", trigger_mode="always_last")
        self.start.click(self.collect_settings, {self.model, self.extra, *slot_components}, self.settings_json,
                         api_name=False).success(
            self.start_training, [self.model, self.source, self.epochs, self.settings_json, self.text_file],
            [self.run_choice, self.message], api_name="start_training").success(
            lambda: {self.seen: None, self.timer: gr.Timer(REFRESH_SECONDS)}, None, [self.seen, self.timer],
            api_name=False)
        self.timer.tick(self.training_status, [self.run_choice, self.seen], status_outputs,
                        api_name="training_status", show_progress="hidden")
        self.run_choice.change(**forget_seen, show_progress="hidden")
        self.cancel.click(self.cancel_training, self.run_choice, self.message, api_name="cancel_training").then(
            **forget_seen)
        # Promoted: the button stays off until something changes (promoting the served run again is refused).
        after_promote = dict(fn=lambda: {self.promote: gr.Button(interactive=False),
                                         self.worse_row: gr.Row(visible=False)},
                             inputs=None, outputs=[self.promote, self.worse_row], api_name=False)
        self.promote.click(self.promote_run, self.run_choice, self.message, api_name="promote_run").success(
            **after_promote).then(**forget_seen).then(**show_served)
        self.promote_anyway.click(self.promote_run_anyway, self.run_choice, self.message,
                                  api_name="promote_run_anyway").success(**after_promote).then(
            **forget_seen).then(**show_served)
        self.delete.click(self.delete_run, self.run_choice, [self.run_choice, self.message],
                          api_name="delete_run").then(**forget_seen)
        self.restore.click(self.restore_previous, self.served_model, self.message,
                           api_name="restore_previous").then(**forget_seen).then(**show_served)
        self.served_model.change(**show_served)
        self.runs.select(pick_run, self.runs, self.run_choice, api_name=False)

    # ---------------------------------------------------------------- handlers

    def _trainer(self, model):
        trainer = discover_trainers().get(model)
        if trainer is None:
            raise gr.Error(f"There is no trainable model {model!r}.")
        return trainer

    def served(self, model) -> str:
        return _served_text(model, self.registry.metrics(model))

    def pick_model(self, model) -> dict:
        """The form for another model: its sources, its settings, filled in from its default preset."""
        trainer = self._trainer(model)
        source = trainer.sources[0]
        updates = {self.source: gr.Radio(choices=_source_choices(trainer), value=source),
                   self.text_file: gr.File(visible=source == "file"),
                   self.served_model: gr.Dropdown(value=model)}
        updates.update(self._fill(trainer, default_preset(trainer), source, choices=True))
        return updates

    def _fill(self, trainer, preset: str, source, choices: bool = False) -> dict:
        """The updates that fill the form with a preset's settings, and the estimate for them."""
        epochs, slot_values, extra = preset_form(trainer, preset)
        updates = {self.preset: gr.Radio(choices=_preset_choices(trainer), value=preset,
                                         info=_preset_info(trainer, preset)) if choices
                   else gr.Radio(value=preset, info=_preset_info(trainer, preset)),
                   self.epochs: gr.Number(value=epochs),
                   self.extra: gr.Textbox(value=extra, info=_other_settings(trainer)),
                   self.estimate: estimate_text(trainer, source, epochs, form_settings(trainer, slot_values, extra),
                                                self.jobs)}
        for slot, setting, value in zip(self.slots, _slot_settings(trainer), slot_values + [None] * SLOTS):
            updates.update(slot.show(setting, value))
        return updates

    def _slot_values(self, trainer, values: dict) -> list:
        return [slot.value(setting, values) if setting else None
                for slot, setting in zip(self.slots, _slot_settings(trainer))]

    def pick_preset(self, values: dict) -> dict:
        """A preset chosen: its settings fill the form ('custom' leaves the form as it is)."""
        trainer = self._trainer(values[self.model])
        preset = values[self.preset]
        if preset in presets_of(trainer):
            return self._fill(trainer, preset, values[self.source])
        if preset != CUSTOM:
            raise gr.Error(f"{trainer.name} has no preset {str(preset)[:60]!r}; the presets are: "
                           f"{', '.join(presets_of(trainer))}.")
        updates = self.form_changed(values)
        updates[self.preset] = gr.Radio(value=CUSTOM, info=CUSTOM_INFO)  # kept even if the values match a preset
        return updates

    def form_changed(self, values: dict) -> dict:
        """A field changed by hand: which preset (if any) the form still matches, and the new estimate."""
        trainer = self._trainer(values[self.model])
        try:
            settings = form_settings(trainer, self._slot_values(trainer, values), values[self.extra])
            matched = matching_preset(trainer, estimates.form_values(trainer, values[self.source],
                                                                     values[self.epochs], settings))
        except (ValueError, JobError) as error:
            text = str(error)
            return {self.preset: gr.Radio(value=CUSTOM, info=CUSTOM_INFO),
                    self.estimate: "No estimate: " + text[:1].lower() + text[1:].rstrip(".") + "."}
        return {self.preset: gr.Radio(value=matched, info=_preset_info(trainer, matched)),
                self.estimate: estimate_text(trainer, values[self.source], values[self.epochs], settings, self.jobs)}

    def collect_settings(self, values: dict) -> str:
        """Gathers the visible setting slots and the JSON box into one JSON object (the API's settings)."""
        trainer = self._trainer(values[self.model])
        try:
            return json.dumps(form_settings(trainer, self._slot_values(trainer, values), values[self.extra]))
        except ValueError as error:
            raise gr.Error(str(error)) from None

    def start_training(self, model, source, epochs, settings, text_file) -> dict:
        """Starts a run; `settings` is a JSON object of the model's settings, `text_file` an upload or None."""
        if isinstance(settings, str):
            try:
                settings = json.loads(settings) if settings.strip() else {}
            except ValueError as error:
                raise gr.Error(f"Settings must be a JSON object of name: value pairs ({error}).")
        if epochs is None:
            raise gr.Error("Give the number of epochs.")
        upload = text_file if isinstance(text_file, str) or text_file is None else getattr(text_file, "name", None)
        try:
            run = self.jobs.start(model, source, epochs, settings, upload=upload if source == "file" else None)
        except JobError as error:
            raise _error(error) from None
        # The run id as a plain value, so a script gets it; the next refresh updates the run choices.
        return {self.run_choice: run.run_id,
                self.message: f"Started run **{run.run_id}** ({run.model}, {run.source}, {run.epochs} epochs)."}

    def training_status(self, run_id, seen=None) -> dict:
        """The selected run's status (or the running/latest run's when none is selected)."""
        jobs = self.jobs
        try:
            if run_id and not jobs.exists(run_id):
                run_id = None  # deleted (perhaps from another page): follow the running or latest run instead
        except JobError as error:
            raise _error(error) from None
        picked = not run_id  # only then does the refresh choose the run; never override the user's choice
        if not run_id:
            chosen = jobs.active() or next(iter(jobs.list_runs()), None)
            run_id = chosen.run_id if chosen else None
        try:
            info = jobs.status(run_id) if run_id else None
        except JobError as error:
            raise _error(error) from None
        runs = runs_table(jobs)
        key = json.dumps([run_id, info and info["status"], info and info["step"], info and info["epochs_done"],
                          info and info["promoted"], info and len(info["losses"]), runs,
                          info and info.get("promotable"), info and info.get("comparison")])
        updates = {self.details: info or {"status": "none", "message": "no run yet"}, self.seen: key,
                   self.timer: gr.Timer(REFRESH_SECONDS if jobs.active() else IDLE_REFRESH_SECONDS)}
        if seen == key:  # nothing new: leave the plot and samples alone so they do not flicker
            return updates
        sample = (info or {}).get("sample") or {}
        gallery, rows, epoch = _gallery(sample), sample.get("rows") or [], sample.get("epoch")
        state = info["status"] if info else None
        worse = (info or {}).get("comparison") if info and info["promotable"] else None
        worse = worse if worse and worse["worse"] else None
        updates.update({
            self.run_choice: gr.Dropdown(choices=[row[0] for row in runs], value=run_id) if picked
            else gr.Dropdown(choices=[row[0] for row in runs]),
            self.progress: progress_html(info),
            self.message: describe(info) if info else "No runs yet.",
            self.plot: loss_figure(info),
            self.sample_text: gr.Textbox(value=sample.get("text", ""), visible="text" in sample,
                                         label=f"Generated text after epoch {epoch}"),
            self.sample_gallery: gr.Gallery(value=gallery, visible=bool(gallery), label=f"Samples after epoch {epoch}",
                                            columns=1 if len(gallery) == 1 else 3),
            self.sample_rows: gr.Dataframe(value=rows or None, visible=bool(rows),
                                           label=f"Samples after epoch {epoch}"),
            self.error_tail: gr.Textbox(value=(info or {}).get("output_tail", ""), visible=state == FAILED),
            self.runs: runs,
            self.cancel: gr.Button(interactive=state == RUNNING),
            self.promote: gr.Button(interactive=bool(info and info["promotable"])),
            self.worse_row: gr.Row(visible=bool(worse)),
            self.promote_note: worse["sentence"] if worse else "",
            self.delete: gr.Button(interactive=bool(info) and state != RUNNING),
        })
        return updates

    def cancel_training(self, run_id) -> str:
        try:
            run = self.jobs.cancel(run_id)
        except JobError as error:
            raise _error(error) from None
        return f"Run **{run.run_id}** is {run.status}; the served checkpoints are unchanged."

    def delete_run(self, run_id) -> dict:
        try:
            run = self.jobs.delete(run_id)
        except JobError as error:
            raise _error(error) from None
        note = " Its promoted checkpoint stays served." if run.promoted else ""
        return {self.run_choice: None, self.message: f"Run **{run.run_id}** and its folder are deleted.{note}"}

    def promote_run(self, run_id) -> str:
        """Promotes a finished run; refused (with a sentence) for the run already served and for a run scoring
        worse than the served checkpoint (that one needs promote_run_anyway, the page's 'Promote anyway')."""
        return self._promote(run_id, worse_ok=False)

    def promote_run_anyway(self, run_id) -> str:
        """Promotes a finished run even when it scores worse than the served checkpoint (the confirmation)."""
        return self._promote(run_id, worse_ok=True)

    def _promote(self, run_id, worse_ok: bool) -> str:
        try:
            run = self.jobs.get(run_id)
            target = self.jobs.promote(run_id, worse_ok=worse_ok)
        except JobError as error:
            raise _error(error) from None
        self.registry.forget(run.model)
        return (f"Run **{run_id}** now serves the {run.model} tab (from `{target}`); the checkpoint it replaced is "
                f"kept, and **Restore previous** brings it back.")

    def restore_previous(self, model) -> str:
        try:
            self.jobs.restore_previous(model)
        except JobError as error:
            raise _error(error) from None
        self.registry.forget(model)
        return f"The previous {model} checkpoint is served again (the one it replaced is kept as previous)."


def pick_run(runs, event: gr.SelectData):
    row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
    try:
        return str(runs.iloc[row, 0] if hasattr(runs, "iloc") else runs[row][0])
    except (IndexError, KeyError, TypeError):
        return gr.skip()


def build(registry) -> list:
    """Lays out and wires the tab; returns its page-load refreshes [(function, outputs)] for the app to register."""
    tab = TrainingTab(registry)
    if tab.layout():
        tab.wire()
        return [(tab.initial_estimate, [tab.estimate])]
    return []


def _served_text(model: str, metrics: dict) -> str:
    if not metrics:
        return f"No {model} checkpoint is served yet."
    scores = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
              and any(word in k for word in ("heldout", "val_", "test_", "bleu", "accuracy", "fid"))}
    data = metrics.get("data")
    source = data.get("source") if isinstance(data, dict) else data
    parts = [f"**{model}** serves a checkpoint"]
    if metrics.get("epochs"):
        parts.append(f"trained {metrics['epochs']} epochs")
    if source:
        parts.append(f"on {source}")
    text = " ".join(parts) + "."
    if scores:
        text += " Held-out: " + scores_text(dict(list(scores.items())[:4])) + "."
    return text
