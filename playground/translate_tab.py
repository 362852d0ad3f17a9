"""The Translate tab: Spanish → English with Bahdanau attention, and a heatmap of what each English subword piece
looked at."""

from __future__ import annotations

import functools
import html
import json

import gradio as gr

from playground import inputs, model_calls
from playground.batching import REQUESTS
from playground.core_sharing import CORES

MODEL = "nmt"
TITLE = "Translate"
METHODS = {"Greedy": "greedy", "Beam search": "beam", "Sampling (temperature)": "sample"}
DEFAULT_TEXT = "No se pudo abrir el archivo."
MAX_CHARACTERS = 600
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.1, 2.0  # the slider's range, checked for API calls too
MAX_SEED = 2**32 - 1
# Translations served at once (Gradio's concurrency_limit, shared by the button and Enter): greedy ones are decoded
# together (playground/batching.py); benchmarks/serving.py measured 1 to 32 users (docs/speed.md).
CONCURRENT_REQUESTS = 32


def load(path):
    return model_calls.load(MODEL, path)


def warm_up(registry) -> None:
    translator = registry.get(MODEL, load)
    for method in ("greedy", "beam"):  # traces the compiled encoder and decoder step once
        try:
            translator.translate("hola", method, beam=2)
        except ValueError:
            pass
    _magma()  # the heatmap's colours (importing matplotlib: 0.15 s) before the first answer needs them


def _translator(registry):
    from trainers.common.checkpoint import CheckpointError

    try:
        return registry.get(MODEL, load)
    except CheckpointError as error:
        raise gr.Error(f"The translation model cannot be loaded: {inputs.without_paths(error)}") from None


def held_out_examples(registry, limit: int = 40) -> list[list[str]]:
    """[spanish, references] rows from the checkpoint's examples.json (held-out everyday test pairs, then Bible
    test segments); no TensorFlow."""
    try:
        examples = json.loads((registry.path(MODEL) / "examples.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    rows = []
    for example in examples[:limit]:
        references = "\n".join(f"{_version_name(version)}: {text}" for version, text in example["references"].items())
        if example.get("domain") == "bible":
            references += "\n(Bible test chapter: scored with the Bible style tag; the tab writes everyday English)"
        rows.append([example["spanish"], references])
    return rows


def _version_name(version: str) -> str:
    from trainers.nmt.data import ENGLISH_VERSIONS

    names = {"4": "WEB", "3": "BBE", "k": "KJV", "gettext": "program interface (gettext)", "tuxpaint": "Tux Paint",
             "asterisk": "Asterisk phone prompt"}
    return names.get(version, ENGLISH_VERSIONS.get(version, version))


CSS = """
.ep-attention { overflow-x: auto; padding: 4px 2px; }
.ep-attention .ep-attention-title { font-weight: 600; margin-bottom: 6px; }
.ep-attention table { border-collapse: collapse; font-size: 0.9em; }
.ep-attention th { font-weight: normal; color: var(--body-text-color); padding: 2px 6px; white-space: pre; }
.ep-attention thead th { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left;
                         vertical-align: bottom; padding: 6px 2px; }
.ep-attention tbody th { text-align: right; }
.ep-attention td { min-width: 2.6em; height: 1.9em; text-align: center; font-size: 0.8em; padding: 0;
                   font-variant-numeric: tabular-nums; border: 1px solid var(--background-fill-primary);
                   background: #000004; color: #fff; }  /* magma at 0: a cell with no attention has no style */
.ep-attention .ep-attention-legend { display: flex; align-items: center; gap: 6px; margin-top: 8px;
                                     font-size: 0.85em; color: var(--body-text-color-subdued); }
.ep-attention .ep-attention-bar { width: 160px; height: 10px; border-radius: 2px; }
.ep-attention .ep-attention-axes { font-size: 0.85em; color: var(--body-text-color-subdued); margin-top: 4px; }
"""
SHOWN_WEIGHT = 0.3  # cells at or above this weight print their value (all show it on hover)


@functools.lru_cache(maxsize=1)
def _magma() -> list[str]:
    """matplotlib's "magma" colour map as 256 hex colours (read once; dark = little attention)."""
    from matplotlib import colormaps, colors

    return [colors.to_hex(colour) for colour in colormaps["magma"](range(256))]


def attention_html(result: dict) -> str:
    """The attention weights as an HTML heatmap: English pieces down, Spanish pieces across, magma colours (darker
    = less attention), each cell's weight on hover and printed where it is at least SHOWN_WEIGHT.

    A table the browser lays out, not a picture: drawing the matplotlib figure and encoding it as a PNG took about
    140 ms of the app's interpreter per answer, ten times the greedy translation itself (docs/speed.md)."""
    source = result["source_tokens"]
    labels = result.get("display_tokens", result["tokens"])
    rows = [list(row)[: len(source)] for row in result["attention"][: len(labels)]]
    colours = _magma()
    head = "".join(f"<th>{html.escape(token)}</th>" for token in source)
    body = []
    for label, row in zip(labels, rows):
        cells = []
        for weight in row:
            weight = min(max(float(weight), 0.0), 1.0)
            if weight < 0.0005:  # shows as 0.000: the CSS's own colour, no hover. A long input is translated part
                cells.append("<td></td>")  # by part, so most of its table is such cells (600 characters: 1.5 MB)
                continue
            text = f"{weight:.2f}" if weight >= SHOWN_WEIGHT else ""
            ink = ";color:#000" if weight > 0.6 else ""
            cells.append(f'<td style="background:{colours[round(weight * 255)]}{ink}" title="{weight:.3f}">{text}</td>')
        body.append(f"<tr><th>{html.escape(label)}</th>{''.join(cells)}</tr>")
    if not body:
        body.append(f'<tr><th>(empty)</th><td colspan="{max(len(source), 1)}"></td></tr>')
    gradient = ", ".join(colours[::32] + [colours[-1]])
    return (f'<div class="ep-attention"><div class="ep-attention-title">What each English piece attended to</div>'
            f'<table><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            f'<div class="ep-attention-axes">Down: English pieces. Across: Spanish subword pieces, as the model reads '
            f'them (the first is the style tag).</div>'
            f'<div class="ep-attention-legend">attention weight 0 <span class="ep-attention-bar" '
            f'style="background:linear-gradient(to right, {gradient})"></span> 1</div></div>')


def n_best_rows(result: dict) -> list[list]:
    return [[rank, entry["translation"] or "(empty)", entry["score"], entry["log_prob"]]
            for rank, entry in enumerate(result.get("n_best") or [], start=1)]


def description(metrics: dict) -> str:
    """What the model is and what it was trained on, with the shipped checkpoint's held-out scores."""
    text = ("A bidirectional GRU reads the Spanish as subword pieces (any word, name or symbol has some: nothing is "
            "refused as unknown); a GRU decoder writes English a piece at a time, looking back at the Spanish "
            "through Bahdanau (additive) attention. Trained on the public-domain Bible (Reina-Valera 1909 → World "
            "English, Basic English, King James) and on everyday text found in Debian packages: translated program "
            "interfaces, Tux Paint's picture descriptions, Asterisk phone prompts and the FreeDict dictionary. "
            "It gets short interface messages and simple phrases right (\"No se pudo abrir el archivo.\" → "
            "\"Could not open file.\", \"¿Puedes ayudarme?\" → \"Can you help me?\"), but many everyday "
            "sentences still come out wrong (\"Me gusta leer libros.\" → \"Backing book documents.\"): it saw "
            "little conversation. Scripture is what it translates best.")
    everyday = (metrics.get("test") or {}).get("everyday") or {}
    if "bleu_beam" in metrics:
        text += (f" Held-out scores of this checkpoint (beam {metrics.get('beam_width')}): Bible test chapters "
                 f"BLEU **{metrics['bleu_beam']}** (multi-reference, Bible style)")
        if everyday:
            mix = ", ".join(f"{source} {entry['pairs']}" for source, entry in everyday.get("by_source", {}).items())
            text += (f"; everyday test set ({everyday['pairs']} pairs from held-out catalogues, stamp folders and "
                     f"prompt families: {mix}) BLEU **{everyday['bleu_beam']}**")
            shipped = metrics.get("previous_model_everyday_bleu_beam")
            if shipped is not None:
                text += f" (the word-level Bible model before it: {shipped})"
        text += "."
    return text


def build(registry) -> None:
    from trainers.nmt.translate import MAX_BEAM, TranslationInputError

    def translate(text, decoding, beam_width, temperature, seed, progress=gr.Progress()):
        # Unprocessed inputs (preprocess=False): every value is checked here, with a sentence for a bad one.
        text = inputs.text(text, "input", MAX_CHARACTERS, required=True,
                           empty_message="Type a Spanish sentence to translate.")
        method = inputs.choice(decoding, "decoding", METHODS)
        beam_width = inputs.whole_number(beam_width, "beam width", 1, MAX_BEAM)
        temperature = inputs.real_number(temperature, "temperature", MIN_TEMPERATURE, MAX_TEMPERATURE)
        seed = inputs.whole_number(seed, "seed", 0, MAX_SEED, default=None)
        progress(0.1, desc="Loading the translator")
        with CORES.answering():  # a local training run is stopped meanwhile (playground/core_sharing.py)
            translator = _translator(registry)
            progress(0.4, desc={"greedy": "Translating", "beam": "Beam search",
                                "sample": "Sampling a translation"}[method])
            request = dict(text=text, method=method, beam=beam_width, temperature=temperature, seed=seed)
            try:
                # Greedy requests of all users arriving within a few milliseconds are decoded in one batch (the
                # same output as alone, see Translator.decode); beam search and sampling run here, one alone.
                batched = method == "greedy" and hasattr(translator, "translate_many")  # not so on a Ray replica
                result = (REQUESTS.call(translator.translate_many, request) if batched
                          else translator.translate(**request))
            except TranslationInputError as error:
                raise gr.Error(inputs.without_paths(error)) from None
        rows = n_best_rows(result)
        # Only a beam search has an n-best list to show; other answers send plain rows, not an update dict (for one
        # Gradio builds a new component and its API schema on every request), and the table's visibility follows
        # the decoding choice (show_method).
        table = gr.update(value=rows, visible=True) if rows else rows
        return (result["translation"] or "(the model produced no words)", attention_html(result), table, result)

    def show_method(decoding):
        method = METHODS.get(decoding, decoding)
        return gr.update(visible=method == "beam"), gr.update(visible=method == "sample"), \
            gr.update(visible=method == "sample"), gr.update(visible=False)

    gr.Markdown(description(registry.metrics(MODEL)), elem_classes="ep-note")
    with gr.Row():
        with gr.Column(scale=2):
            spanish = gr.Textbox(label="Spanish", value=DEFAULT_TEXT, lines=3, max_lines=6, elem_id="nmt-spanish",
                                 placeholder="Escribe una frase en español…")
            decoding = gr.Radio(list(METHODS), value="Beam search", label="Decoding")
            beam_width = gr.Slider(1, MAX_BEAM, value=5, step=1, label="Beam width")
            with gr.Row():
                temperature = gr.Slider(MIN_TEMPERATURE, MAX_TEMPERATURE, value=0.8, step=0.05, label="Temperature", visible=False)
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", visible=False)
            run = gr.Button("Translate", variant="primary")
            references = gr.Textbox(label="Reference translations (held-out example)", lines=3, interactive=False,
                                    elem_id="nmt-references")
        with gr.Column(scale=3):
            english = gr.Textbox(label="English", lines=2, interactive=False, elem_id="nmt-english",
                                 buttons=["copy"])
            heatmap = gr.HTML(label="Attention", elem_id="nmt-attention")
            n_best = gr.Dataframe(headers=["rank", "translation", "score (log p / length)", "log p"],
                                  datatype=["number", "str", "number", "number"], label="Beam search n-best",
                                  interactive=False, visible=False, wrap=True, elem_id="nmt-nbest",
                                  column_widths=["9%", "55%", "20%", "16%"])
            with gr.Accordion("Raw output (tokens, attention matrix, scores)", open=False):
                raw = gr.JSON(label="Result")
    examples = held_out_examples(registry)
    if examples:
        gr.Examples(examples, [spanish, references], label="Held-out test examples (click one)",
                    examples_per_page=8)

    decoding.change(show_method, decoding, [beam_width, temperature, seed, n_best], api_name=False)
    fields = [spanish, decoding, beam_width, temperature, seed]
    outputs = [english, heatmap, n_best, raw]
    shared = dict(preprocess=False, concurrency_limit=CONCURRENT_REQUESTS, concurrency_id="translate")
    run.click(translate, fields, outputs, api_name="translate", **shared)
    spanish.submit(translate, fields, outputs, api_name=False, **shared)
