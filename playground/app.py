"""build_app(): the Gradio Blocks app, one tab per model whose checkpoint exists, plus training.

Each tab lives in its own module with three names: `MODEL` (its checkpoint folder, or None for a tab that needs
none), `TITLE`, and `build(registry)` which lays out the tab's components inside the current `gr.Tab`; `build`
may return (function, outputs) pairs to run whenever the page loads (values that change when a run is promoted),
which are wired without API endpoints. A tab whose checkpoint is missing is not shown; the header says which
models are missing and how to train them.
"""

from __future__ import annotations

import importlib
import threading

import gradio as gr

from playground.registry import Registry

TAB_MODULES = (
    "playground.text_tab",
    "playground.digits_tab",
    "playground.translate_tab",
    "playground.caption_tab",
    "playground.training_tab",
)

THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="amber", neutral_hue="slate",
                       font=[gr.themes.GoogleFont("Inter"), "ui-sans-serif", "system-ui", "sans-serif"])

CSS = """
.ep-header h1 { margin-bottom: 0.1em; }
.ep-header p { margin-top: 0; color: var(--body-text-color-subdued); }
.ep-note { font-size: 0.9em; color: var(--body-text-color-subdued); }
#generated-text textarea { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.95em; }
.ep-confidence .textfield { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; line-height: 1.7; }
.ep-confidence .token-container { margin: 0 !important; padding: 0 !important; }
.ep-confidence .token { padding: 0 1px !important; margin: 0 !important; border-radius: 2px !important; }
.ep-confidence .token .text { white-space: pre; }
"""

HEADER = """
<div class="ep-header">
<h1>Eager Playground</h1>
<p>Four classic models built with Keras model subclassing and trained eagerly with <code>tf.GradientTape</code>:
play with the shipped checkpoints, look inside them, and retrain them from the page.</p>
</div>
"""


def available_tabs(registry: Registry):
    """(module, shown) for every tab module that exists; `shown` is False when its checkpoint is missing."""
    tabs = []
    for name in TAB_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name == name:
                continue  # that tab is not built yet
            raise
        shown = module.MODEL is None or registry.exists(module.MODEL)
        tabs.append((module, shown))
    return tabs


def warm_up(registry: Registry, tabs) -> None:
    """Loads every shown model in the background so the first request does not pay for TensorFlow's import."""
    for module, shown in tabs:
        if shown and hasattr(module, "warm_up"):
            try:
                module.warm_up(registry)
            except Exception:  # a broken checkpoint is reported by the tab itself, when it is used
                pass


def build_app(registry: Registry | None = None, warm: bool = True) -> gr.Blocks:
    registry = registry or Registry()
    tabs = available_tabs(registry)
    with gr.Blocks(title="Eager Playground") as demo:
        gr.HTML(HEADER)
        missing = [module for module, shown in tabs if not shown]
        if missing:
            lines = "; ".join(f"**{m.TITLE}** (no checkpoint in `{registry.path(m.MODEL)}`; train it with "
                              f"`python -m trainers.{m.MODEL}.train`)" for m in missing)
            gr.Markdown(f"Not shown: {lines}.", elem_classes="ep-note")
        with gr.Tabs():
            for module, shown in tabs:
                if shown:
                    with gr.Tab(module.TITLE, id=module.__name__.rsplit(".", 1)[-1]):
                        on_load = module.build(registry) or []
                    for function, outputs in on_load:
                        demo.load(function, None, outputs, api_name=False, show_progress="hidden")
    if warm:
        threading.Thread(target=warm_up, args=(registry, tabs), daemon=True).start()
    return demo
