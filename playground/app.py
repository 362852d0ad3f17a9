"""build_app(): the Gradio Blocks app, one tab per model whose checkpoint exists, plus training.

Each tab lives in its own module with three names: `MODEL` (its checkpoint folder, or None for a tab that needs
none), `TITLE`, and `build(registry)` which lays out the tab's components inside the current `gr.Tab`; `build`
may return (function, outputs) pairs to run whenever the page loads (values that change when a run is promoted),
which are wired without API endpoints. A tab may also define `CSS`, a string of style rules: `page_css()` gathers
them with the app's own for `launch(css=...)` (python -m playground). Every tab is built (so every API endpoint
exists), but a tab whose checkpoint is missing is hidden; the header says which models are missing and how to
train them. Both are decided again on every page load, so a tab appears or disappears as its checkpoint does
(promoted, restored, recovered) without a restart. At start, a checkpoint swap a crash interrupted is finished or
rolled back first (playground.promotion.recover).
"""

from __future__ import annotations

import importlib
import sys
import threading
import time

import gradio as gr

from playground.registry import Registry

TAB_MODULES = (
    "playground.text_tab",
    "playground.digits_tab",
    "playground.translate_tab",
    "playground.caption_tab",
    "playground.training_tab",
)

AFTER_SECONDS = 30  # the longest the background warm-up waits for the server to start
WARM_MESSAGE = "Every model is loaded and warmed up"  # in the log once the background warm-up ends (benchmarks wait)

# System fonts only: the page makes no request to a font service (or anywhere but the app itself).
SANS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial",
        "Noto Sans", "sans-serif"]
MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace"]
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="amber", neutral_hue="slate", font=SANS, font_mono=MONO)

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


def tab_modules() -> list:
    """Every tab module that exists, in the order of the tabs."""
    modules = []
    for name in TAB_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            # that tab is not built yet
    return modules


def available_tabs(registry: Registry):
    """(module, shown) for every tab module that exists; `shown` is False when its checkpoint is missing."""
    return [(module, module.MODEL is None or registry.exists(module.MODEL)) for module in tab_modules()]


def page_css() -> str:
    """The page's style sheet, for `launch(css=...)`: the app's own rules and every tab module's `CSS`."""
    return "\n".join([CSS, *(module.CSS for module in tab_modules() if isinstance(getattr(module, "CSS", None), str))])


def warm_up(registry: Registry, tabs, after: threading.Event | None = None) -> None:
    """Loads every shown model in the background so the first request does not pay for TensorFlow's import; then
    runs each tab's `warm_up_after` (once every tab's `warm_up` is done: the Caption tab's COCO detector, loaded and
    called once) and `warm_up_later`, what can wait until every tab answers (the text tab's larger batch sizes). All
    in this one thread, one after another.

    The detector used to warm up in a thread of its own, beside the other models. On an AVX2-only AMD EPYC
    (2026-12-07) the app then died in about one run in five of tests/test_batching.py's concurrent
    endpoints test: a segmentation fault in a TensorFlow thread (libtensorflow_framework, in a hash), with the
    detector's first call in one Python thread and an eager op of another model's warm-up in the other. So no
    warm-up runs beside another any more.

    `after`: an event to wait for first (at most AFTER_SECONDS), so that importing TensorFlow does not slow the
    server's start (`python -m playground` sets it once the page is served)."""
    if after is not None:
        after.wait(timeout=AFTER_SECONDS)
    started = time.monotonic()
    for hook in ("warm_up", "warm_up_after", "warm_up_later"):
        for module, shown in tabs:
            if shown and hasattr(module, hook):
                _run_hook(module, hook, registry)
    print(f"{WARM_MESSAGE} ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)


def _run_hook(module, hook: str, registry: Registry) -> None:
    try:
        getattr(module, hook)(registry)
    except Exception:  # a broken checkpoint is reported by the tab itself, when it is used
        pass


def missing_note(registry: Registry, tabs) -> str:
    """The header's note on the models whose checkpoint is missing ('' when none is)."""
    missing = [module for module, _ in tabs if module.MODEL is not None and not registry.exists(module.MODEL)]
    if not missing:
        return ""
    lines = "; ".join(f"**{m.TITLE}** (no checkpoint in `{registry.path(m.MODEL)}`; train it with "
                      f"`python -m trainers.{m.MODEL}.train`, or promote or restore one in the Training tab)"
                      for m in missing)
    return f"Not shown: {lines}."


def default_registry() -> Registry:
    """In-process models, or the Ray cluster's deployments when EAGER_PLAYGROUND_RAY_ADDRESS is set
    (`python -m playground --ray-address ...`; playground/remote_models.py)."""
    from trainers.common.ray_jobs import address_from_environment

    if address_from_environment() is None:
        return Registry()
    from playground.remote_models import RayRegistry

    return RayRegistry()


def build_app(registry: Registry | None = None, warm: bool = True,
              warm_after: threading.Event | None = None) -> gr.Blocks:
    from playground.promotion import recover

    registry = registry or default_registry()
    try:
        recover(registry.root)  # a swap a crash interrupted is finished or rolled back before anything loads
    except OSError:
        pass
    tabs = available_tabs(registry)
    with gr.Blocks(title="Eager Playground") as demo:
        gr.HTML(HEADER)
        note = missing_note(registry, tabs)
        header_note = gr.Markdown(note, elem_classes="ep-note", visible=bool(note))
        model_tabs, default = [], None
        with gr.Tabs() as tab_set:
            for module, shown in tabs:
                tab_id = module.__name__.rsplit(".", 1)[-1]
                with gr.Tab(module.TITLE, id=tab_id, visible=shown) as tab:
                    on_load = module.build(registry) or []
                if module.MODEL is not None:
                    model_tabs.append((module.MODEL, tab_id, tab))
                default = default or (tab_id if shown else None)
                for function, outputs in on_load:
                    demo.load(function, None, outputs, api_name=False, show_progress="hidden")

        def show_tabs():
            """Each model tab shown or hidden as its checkpoint is now. (Gradio 6.31 ignores an update to
            visible=False for a tab the page first showed, but honours "hidden".)"""
            note = missing_note(registry, tabs)
            shown = {tab_id: registry.exists(model) for model, tab_id, _ in model_tabs}
            first = next((tab_id for _, tab_id, _ in model_tabs if shown[tab_id]), "training_tab")
            selected = gr.Tabs(selected=first) if default in shown and not shown[default] else gr.skip()
            return [gr.Markdown(note, visible=bool(note)), selected,
                    *(gr.Tab(visible=True if shown[tab_id] else "hidden") for _, tab_id, _ in model_tabs)]

        demo.load(show_tabs, None, [header_note, tab_set, *(tab for _, _, tab in model_tabs)], api_name=False,
                  show_progress="hidden")
    if warm:
        threading.Thread(target=warm_up, args=(registry, tabs, warm_after), daemon=True).start()
    return demo
