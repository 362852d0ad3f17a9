"""The Training tab: retrain any model from the page, watch it learn, cancel it, and promote it into its tab.

Pick a model, a data source (for the text model also "your own writing": an uploaded UTF-8 text file), the
epochs and the model's main settings, and Start: the run trains in the background (see playground/jobs.py)
while a timer refreshes its progress bar, loss plot and latest samples. A finished run can be promoted: its
checkpoint replaces the one its tab serves, without restarting the app, and "Restore previous" swaps it back.

The events are API endpoints, so a script can drive training exactly as the page does:

    from gradio_client import Client
    client = Client("http://127.0.0.1:7860/")
    run_id, _ = client.predict("char_rnn", "offline", 2, '{"rnn_units": 256}', None, api_name="/start_training")
    details = client.predict(run_id, api_name="/training_status")[0]      # a dict: status, progress, metrics
    client.predict(run_id, api_name="/cancel_training")  # or: api_name="/promote_run" once it has finished
"""

from __future__ import annotations

import html
import json
import time

import gradio as gr

from playground import jobs as jobs_module
from playground.jobs import DONE, FAILED, RUNNING, JobError, Jobs, describe, discover_trainers

MODEL = None
TITLE = "Training"
TAB_ORDER = ("char_rnn", "dcgan", "nmt", "captioning")  # only the order they are offered in; any trainer is found
SLOTS = 6  # the most main settings a trainer may list; each slot shows one, as a number, text or switch
REFRESH_SECONDS = 2.0  # while a run trains
IDLE_REFRESH_SECONDS = 10.0  # otherwise (a run started elsewhere, e.g. through the API, shows up within this)
SOURCE_LABELS = {"offline": "offline (bundled data)", "canonical": "canonical (download; falls back to offline)",
                 "file": "file (your own writing)"}
RUN_COLUMNS = ["Run", "Model", "Status", "Started (UTC)", "Epochs", "Held-out scores (last epoch)", "Promoted"]
STATUS_ICONS = {RUNNING: "⏳ running", DONE: "✅ done", FAILED: "❌ failed", jobs_module.CANCELLED: "⏹ cancelled"}


def _error(error: Exception) -> gr.Error:
    text = str(error)
    return gr.Error(text[:1].upper() + text[1:] + ("" if text.endswith((".", "?", "!")) else "."))


def ordered(trainers: dict) -> dict:
    """The trainers in the order of the app's tabs; models added later come after, alphabetically."""
    rank = {name: index for index, name in enumerate(TAB_ORDER)}
    return dict(sorted(trainers.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def _trainer_choices(trainers) -> list[tuple[str, str]]:
    return [(name.replace("_", "-"), name) for name in trainers]


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
        bits.append(f"ETA {jobs_module.format_seconds(info['eta_seconds'])}")
    if info.get("elapsed_seconds") is not None:
        bits.append(f"elapsed {jobs_module.format_seconds(info['elapsed_seconds'])}")
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
#training-error textarea { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.85em;
  color: #b91c1c; }
"""


def build(registry) -> None:
    jobs = Jobs(checkpoints=registry.root)
    trainers = ordered(discover_trainers())
    first = next(iter(trainers), None)

    # ---------------------------------------------------------------- handlers

    def pick_model(model):
        trainer = discover_trainers().get(model)
        if trainer is None:
            raise gr.Error(f"There is no trainable model {model!r}.")
        sources = [(SOURCE_LABELS.get(source, source), source) for source in trainer.sources]
        updates = [gr.Radio(choices=sources, value=trainer.sources[0]),
                   gr.Number(value=trainer.module.TrainConfig().epochs if _has_defaults(trainer) else 1),
                   gr.File(visible=trainer.sources[0] == "file")]
        for index in range(SLOTS):
            name = trainer.main_settings[index] if index < len(trainer.main_settings) else None
            setting = trainer.settings.get(name) if name else None
            kind = setting.kind if setting else None
            label = setting.label if setting else ""
            info = setting.help or None if setting else None
            updates += [gr.Number(visible=kind in (int, float), label=label, info=info,
                                  value=setting.default if kind in (int, float) else None,
                                  precision=0 if kind is int else None),
                        gr.Textbox(visible=kind is str, label=label, info=info,
                                   value=setting.default if kind is str else ""),
                        gr.Checkbox(visible=kind is bool, label=label, info=info,
                                    value=bool(setting.default) if kind is bool else False)]
        others = [name for name in trainer.settings if name not in trainer.main_settings]
        updates.append(gr.Textbox(value="", info="Other settings of this model: " + ", ".join(others)))
        updates.append(gr.Dropdown(value=model))
        return updates

    def pick_source(source):
        return gr.File(visible=source == "file")

    def collect_settings(model, extra, *slots):
        """Gathers the visible setting slots and the JSON box into one JSON object (the API's settings)."""
        trainer = discover_trainers().get(model)
        if trainer is None:
            raise gr.Error(f"There is no trainable model {model!r}.")
        settings = {}
        for index, name in enumerate(trainer.main_settings[:SLOTS]):
            number, text, switch = slots[3 * index: 3 * index + 3]
            kind = trainer.settings[name].kind
            value = number if kind in (int, float) else text if kind is str else switch
            if value is None or value == "":
                raise gr.Error(f"Give a value for {name.replace('_', ' ')}.")
            settings[name] = value
        if extra and extra.strip():
            try:
                more = json.loads(extra)
            except ValueError as error:
                raise gr.Error(f"More settings must be a JSON object like {{\"steps_per_epoch\": 50}}: {error}.")
            if not isinstance(more, dict):
                raise gr.Error("More settings must be a JSON object like {\"steps_per_epoch\": 50}.")
            settings.update(more)
        return json.dumps(settings)

    def start_training(model, source, epochs, settings, text_file):
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
            run = jobs.start(model, source, epochs, settings, upload=upload if source == "file" else None)
        except JobError as error:
            raise _error(error) from None
        return (run.run_id,  # a plain value, so a script gets the run id; the next refresh updates the choices
                f"Started run **{run.run_id}** ({run.model}, {run.source}, {run.epochs} epochs).")

    def training_status(run_id, seen=None):
        """The selected run's status (or the running/latest run's when none is selected)."""
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
                          info and info["promoted"], info and len(info["losses"]), runs])
        details = info or {"status": "none", "message": "no run yet"}
        running = bool(jobs.active())
        timer = gr.Timer(REFRESH_SECONDS if running else IDLE_REFRESH_SECONDS)
        if seen == key:  # nothing new: leave the plot and samples alone so they do not flicker
            return [details] + [gr.skip()] * 12 + [key, timer]
        sample = (info or {}).get("sample") or {}
        gallery = _gallery(sample)
        rows = sample.get("rows") or []
        failed = bool(info and info["status"] == FAILED)
        message = describe(info) if info else "No runs yet."
        return [
            details,
            gr.Dropdown(choices=[row[0] for row in runs], value=run_id) if picked
            else gr.Dropdown(choices=[row[0] for row in runs]),
            progress_html(info),
            message,
            loss_figure(info),
            gr.Textbox(value=sample.get("text", ""), visible="text" in sample,
                       label=f"Generated text after epoch {sample.get('epoch')}"),
            gr.Gallery(value=gallery, visible=bool(gallery), label=f"Samples after epoch {sample.get('epoch')}",
                       columns=1 if len(gallery) == 1 else 3),
            gr.Dataframe(value=rows or None, visible=bool(rows), label=f"Samples after epoch {sample.get('epoch')}"),
            gr.Textbox(value=(info or {}).get("output_tail", ""), visible=failed),
            runs,
            gr.Button(interactive=bool(info and info["status"] == RUNNING)),
            gr.Button(interactive=bool(info and info["promotable"])),
            gr.Button(interactive=bool(info and info["status"] != RUNNING)),
            key,
            timer,
        ]

    def cancel_training(run_id):
        try:
            run = jobs.cancel(run_id)
        except JobError as error:
            raise _error(error) from None
        return f"Run **{run.run_id}** is {run.status}; the served checkpoints are unchanged."

    def delete_run(run_id):
        try:
            run = jobs.delete(run_id)
        except JobError as error:
            raise _error(error) from None
        note = " Its promoted checkpoint stays served." if run.promoted else ""
        return None, f"Run **{run.run_id}** and its folder are deleted.{note}"

    def promote_run(run_id):
        try:
            run = jobs.get(run_id)
            target = jobs.promote(run_id)
        except JobError as error:
            raise _error(error) from None
        registry.forget(run.model)
        return (f"Run **{run_id}** now serves the {run.model} tab (from `{target}`); the checkpoint it replaced is "
                f"kept, and **Restore previous** brings it back.")

    def restore_previous(model):
        try:
            jobs.restore_previous(model)
        except JobError as error:
            raise _error(error) from None
        registry.forget(model)
        return f"The previous {model} checkpoint is served again (the one it replaced is kept as previous)."

    def pick_run(runs, event: gr.SelectData):
        row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        try:
            return str(runs.iloc[row, 0] if hasattr(runs, "iloc") else runs[row][0])
        except (IndexError, KeyError, TypeError):
            return gr.skip()

    # ---------------------------------------------------------------- layout

    gr.HTML(f"<style>{CSS}</style>", padding=False)
    gr.Markdown("Retrain a model in the background and watch it learn: the loss falling and the samples improving "
                "epoch by epoch. The run is a separate, lower-priority process, so the other tabs keep working; "
                "one run trains at a time. Promote a finished run to serve it in its tab.", elem_classes="ep-note")
    if first is None:
        gr.Markdown("No trainer follows the Training tab contract yet (`trainers/<model>/train.py`).")
        return
    trainer = trainers[first]
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            gr.Markdown("### New run")
            model = gr.Dropdown(_trainer_choices(trainers), value=first, label="Model")
            source = gr.Radio([(SOURCE_LABELS.get(s, s), s) for s in trainer.sources], value=trainer.sources[0],
                              label="Data")
            text_file = gr.File(label="Your own writing (a UTF-8 .txt file, at least 2,000 characters)",
                                file_types=[".txt", ".md", ".text"], type="filepath", visible=False,
                                elem_id="training-text-file")
            epochs = gr.Number(value=trainer.module.TrainConfig().epochs if _has_defaults(trainer) else 1,
                               precision=0, minimum=1, label="Epochs")
            slots = []
            with gr.Row():
                for index in range(SLOTS):
                    name = trainer.main_settings[index] if index < len(trainer.main_settings) else None
                    setting = trainer.settings.get(name) if name else None
                    kind = setting.kind if setting else None
                    label = setting.label if setting else ""
                    slots += [gr.Number(visible=kind in (int, float), label=label, min_width=140,
                                        value=setting.default if kind in (int, float) else None,
                                        precision=0 if kind is int else None),
                              gr.Textbox(visible=kind is str, label=label, min_width=140,
                                         value=setting.default if kind is str else ""),
                              gr.Checkbox(visible=kind is bool, label=label,
                                          value=bool(setting.default) if kind is bool else False)]
            others = [name for name in trainer.settings if name not in trainer.main_settings]
            with gr.Accordion("More settings", open=False):
                extra = gr.Textbox(label="More settings (JSON)", placeholder='{"steps_per_epoch": 50}', lines=2,
                                   info="Other settings of this model: " + ", ".join(others))
            start = gr.Button("Start training", variant="primary")
            settings_json = gr.Textbox(visible=False)
            gr.Markdown("### Served checkpoint")
            served_model = gr.Dropdown(_trainer_choices(trainers), value=first, label="Model", scale=1)
            served_text = gr.Markdown(_served_text(first, registry.metrics(first)), elem_classes="ep-note")
            restore = gr.Button("↩ Restore previous checkpoint", size="sm")
        with gr.Column(scale=3, min_width=420):
            gr.Markdown("### Watch")
            run_choice = gr.Dropdown([run.run_id for run in jobs.list_runs()], value=None, label="Run",
                                     allow_custom_value=True)
            progress = gr.HTML(progress_html(None), padding=False, elem_id="training-progress", label="Progress")
            message = gr.Markdown("", elem_id="training-message", label="Message")
            plot = gr.Plot(loss_figure(None), format="png", label="Loss", show_label=False,
                           elem_id="training-loss-plot")
            with gr.Row():
                cancel = gr.Button("■ Cancel", variant="stop", interactive=False)
                promote = gr.Button("★ Promote to its tab", variant="primary", interactive=False)
                delete = gr.Button("🗑 Delete run", variant="secondary", interactive=False, elem_id="training-delete")
            sample_text = gr.Textbox(label="Generated text", lines=6, max_lines=12, visible=False,
                                     elem_id="training-sample-text")
            sample_gallery = gr.Gallery(label="Samples", visible=False, columns=3, height="auto",
                                        object_fit="contain", preview=False)
            sample_rows = gr.Dataframe(headers=["input", "output"], label="Samples", visible=False, wrap=True,
                                       interactive=False, column_widths=["50%", "50%"])
            error_tail = gr.Textbox(label="Last lines of the run's output", lines=8, visible=False,
                                    elem_id="training-error")
    gr.Markdown("### Runs")
    runs = gr.Dataframe(runs_table(jobs), headers=RUN_COLUMNS, interactive=False, wrap=True,
                        label="Runs (click one to watch it)", elem_id="training-runs", max_height=320,
                        column_widths=["22%", "9%", "10%", "13%", "6%", "30%", "10%"])
    with gr.Accordion("Status as JSON (what the training_status endpoint returns)", open=False):
        details = gr.JSON(label="Status")
    seen = gr.State(None)
    timer = gr.Timer(REFRESH_SECONDS)  # the first tick sets the pace: fast while a run trains, slow otherwise

    # ---------------------------------------------------------------- events

    status_outputs = [details, run_choice, progress, message, plot, sample_text, sample_gallery, sample_rows,
                      error_tail, runs, cancel, promote, delete, seen, timer]
    model.change(pick_model, model, [source, epochs, text_file, *slots, extra, served_model], api_name=False)
    source.change(pick_source, source, text_file, api_name=False)
    start.click(collect_settings, [model, extra, *slots], settings_json, api_name=False).success(
        start_training, [model, source, epochs, settings_json, text_file], [run_choice, message],
        api_name="start_training").success(
        lambda: (None, gr.Timer(REFRESH_SECONDS)), None, [seen, timer], api_name=False)
    timer.tick(training_status, [run_choice, seen], status_outputs, api_name="training_status",
               show_progress="hidden")
    run_choice.change(lambda: None, None, seen, api_name=False, show_progress="hidden")
    cancel.click(cancel_training, run_choice, message, api_name="cancel_training").then(
        lambda: None, None, seen, api_name=False)
    promote.click(promote_run, run_choice, message, api_name="promote_run").then(
        lambda: None, None, seen, api_name=False).then(
        lambda model: _served_text(model, registry.metrics(model)), served_model, served_text, api_name=False)
    delete.click(delete_run, run_choice, [run_choice, message], api_name="delete_run").then(
        lambda: None, None, seen, api_name=False)
    restore.click(restore_previous, served_model, message, api_name="restore_previous").then(
        lambda model: _served_text(model, registry.metrics(model)), served_model, served_text, api_name=False)
    served_model.change(lambda model: _served_text(model, registry.metrics(model)), served_model, served_text,
                        api_name=False)
    runs.select(pick_run, runs, run_choice, api_name=False)


def _has_defaults(trainer) -> bool:
    try:
        trainer.module.TrainConfig()
        return True
    except TypeError:
        return False


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
