"""The Text tab: stream Shakespeare-like text from the character GRU and see how sure it was of each character."""

from __future__ import annotations

import asyncio
import os
import random

import gradio as gr

from playground import inputs, model_calls
from playground.batching import TEXT_STREAMS
from trainers.char_rnn.generate import check_sampling

MODEL = "char_rnn"
TITLE = "Text"
MAX_PROMPT = 2000
MIN_LENGTH, MAX_LENGTH = 10, 2000  # the sliders' ranges, checked for API calls too
MAX_TEMPERATURE, MAX_TOP_K, MIN_TOP_P = 2, 100, 0.05
MAX_SEED = 2**32 - 1
# Streams served at once (Gradio's concurrency_limit of the endpoint): they share one compiled call per chunk
# (playground/batching.py), so more of them cost little; benchmarks/serving.py measured 1 to 32 users with 32 and
# with 16 (docs/speed.md). EAGER_PLAYGROUND_TEXT_STREAMS sets another limit (a smaller machine, the benchmark).
CONCURRENT_STREAMS = int(os.environ.get("EAGER_PLAYGROUND_TEXT_STREAMS", "32"))
VISIBLE = {"\n": "⏎", " ": "␣", "\t": "⇥"}
EXAMPLES = [
    ["Ham.\nTo be, or not to be", 400, 0.7, 0, 1.0, 7],
    ["KING.\nMy lords, ", 400, 0.8, 20, 0.95, 1],
    ["Enter ", 300, 1.0, 0, 0.9, 3],
    ["O Romeo, Romeo! ", 300, 0.5, 0, 1.0, 11],
]


def load(path):
    return model_calls.load(MODEL, path)


def warm_up(registry) -> None:
    generator = registry.get(MODEL, load)
    generator.generate("a", 2, temperature=0)  # traces the prompt step and the chunk loop


def warm_up_later(registry) -> None:
    """Compiles the chunk loop for the larger batches once every tab has loaded (a few seconds each for a generator
    built with XLA; nothing left to do for the app's, whose one graph serves every size); until a size is ready, the
    batcher serves that many users with several calls of a ready size."""
    registry.get(MODEL, load).compile_batch_sizes()


def _generator(registry):
    from trainers.common.checkpoint import CheckpointError

    try:
        return registry.get(MODEL, load)
    except CheckpointError as error:
        raise gr.Error(f"The text model cannot be loaded: {inputs.without_paths(error)}") from None


def _generator_and_unknown(registry, prompt: str):
    """The generator, and the prompt's characters it never saw (a call to the replica when Ray serves it)."""
    generator = _generator(registry)
    return generator, generator.vocabulary.unknown_characters(prompt)


async def _in_thread(iterator):
    """A blocking iterator's items, each taken in a worker thread."""
    done = object()
    while (item := await asyncio.to_thread(next, iterator, done)) is not done:
        yield item


def written_on_page(steps, shown: str) -> int:
    """How many of `steps` the page's text `shown` (the prompt, then the characters) ends with."""
    written = "".join(step.char for step in steps)
    return next((count for count in range(len(written), 0, -1) if shown.endswith(written[:count])), 0)


def _views(steps):
    """The confidence spans, the position slider and the first character's alternatives, for `steps`."""
    return confidence_spans(steps), _positions(steps), alternatives_at(steps, 1)


def _positions(steps):
    """The character-position slider over `steps`."""
    return gr.Slider(minimum=1, maximum=max(len(steps), 1), value=1, step=1, interactive=True)


def _shown(char: str) -> str:
    return VISIBLE.get(char, char)


def confidence_spans(steps) -> list[tuple[str, float]]:
    """(character, score) pairs for HighlightedText: unsure characters get a stronger colour.

    A new line is shown as ⏎: the component lays tokens out in a wrapping row, where a bare newline is invisible.
    """
    return [(VISIBLE["\n"] if step.char == "\n" else step.char, round(1.0 - step.probability, 3)) for step in steps]


def spans_as_sent(spans) -> list[dict] | None:
    """What HighlightedText.postprocess sends for `confidence_spans` (one {token, class_or_confidence} per
    character), built as plain dicts: Gradio's own builds and validates a pydantic model per character, then dumps
    it back to dicts, which at 16 users was 17 % of the app's interpreter time (py-spy, benchmarks/serving.py)."""
    if spans is None:
        return None
    return [{"token": token, "class_or_confidence": score} for token, score in spans]


def alternatives_at(steps, position: int) -> dict:
    if not steps:
        return {}
    index = min(max(int(position), 1), len(steps)) - 1
    return {f"{_shown(char)}  ({char!r})": round(probability, 4)
            for char, probability in steps[index].alternatives}


def build(registry) -> None:
    async def generate_text(prompt, length, temperature, top_k, top_p, seed):
        # A coroutine on Gradio's event loop (batching.TextStreams.astream says why); what may block (loading the
        # model, any call to a model served by Ray) goes to a worker thread.
        # Unprocessed inputs (preprocess=False): every value is checked here, with a sentence for a bad one.
        prompt = inputs.text(prompt, "prompt", MAX_PROMPT)
        length = inputs.whole_number(length, "length", MIN_LENGTH, MAX_LENGTH)
        temperature = inputs.real_number(temperature, "temperature", 0, MAX_TEMPERATURE)
        top_k = inputs.whole_number(top_k, "top-k", 0, MAX_TOP_K)
        top_p = inputs.real_number(top_p, "top-p", MIN_TOP_P, 1)
        seed = inputs.whole_number(seed, "seed", 0, MAX_SEED, default=None)
        problems = check_sampling(length, temperature, top_k, top_p)
        if problems:
            raise gr.Error("; ".join(problems).capitalize() + ".")
        generator, unknown = await asyncio.to_thread(_generator_and_unknown, registry, prompt)
        if unknown:
            gr.Warning(f"The model has never seen {' '.join(unknown)}; they are read as an unknown character.")
        text, steps = prompt, []
        sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        if hasattr(generator, "start"):
            # Every open stream of the app advances in the same compiled call (playground/batching.py); the text
            # is the one this stream writes alone. A call writes a chunk of characters; the page gets each at once.
            chunks = model_calls.text_chunks(TEXT_STREAMS, generator, prompt, length, **sampling)
        else:  # a model served elsewhere (a Ray replica, playground/remote_models.py) streams its own chunks
            chunks = _in_thread(generator.chunks(prompt, length, **sampling))
        async for chunk in chunks:
            text += "".join(step.char for step in chunk)
            # GeneratedChar: each builds its alternatives when the page asks for them. A new list, not `+=`: the
            # State keeps the list of the last update sent, which a Stop then draws (show_confidence).
            steps = steps + chunk
            if len(steps) >= length:
                break
            # Plain values only, never gr.skip(): for an update dict Gradio builds a new component and its API schema
            # (pydantic) on every update, which at 16 users cost more of the app's time than the model's steps did.
            # So the confidence view stays empty while the text is written (None costs nothing) and is drawn once
            # at the end, with the slider and the alternatives. (postprocess=False, which spares each output's trip
            # to its component's postprocess, left the confidence view of a second text undrawn: not used.)
            yield text, None, steps, 1, None
        spans, slider, top = _views(steps)
        yield text, spans, steps, slider, top

    def show_confidence(steps, shown):
        """The confidence view of what was written before a Stop: the characters of the stream's last update, cut
        to the text the page shows (Gradio stores an update's State before it sends the update, so a Stop between
        the two leaves the State one chunk ahead of the page)."""
        return _views(steps[:written_on_page(steps, shown or "")])

    def pick_position(steps, position):
        return alternatives_at(steps, position)

    def pick_character(steps, event: gr.SelectData):
        position = event.index + 1 if isinstance(event.index, int) else 1
        return position, alternatives_at(steps, position)

    gr.Markdown("A character-level GRU trained on Shakespeare writes one character at a time, carrying its "
                "hidden state forward. Lower temperature is safer, higher is wilder; top-k and top-p cut the "
                "unlikely tail. The same seed always gives the same text.", elem_classes="ep-note")
    with gr.Row():
        with gr.Column(scale=2):
            prompt = gr.Textbox(label="Prompt", value="Ham.\nTo be, or not to be", lines=3)
            length = gr.Slider(MIN_LENGTH, MAX_LENGTH, value=400, step=10, label="Length (characters)")
            temperature = gr.Slider(0, MAX_TEMPERATURE, value=0.7, step=0.05, label="Temperature (0 = greedy)")
            with gr.Row():
                top_k = gr.Slider(0, MAX_TOP_K, value=0, step=1, label="Top-k (0 = off)")
                top_p = gr.Slider(MIN_TOP_P, 1, value=1.0, step=0.05, label="Top-p (1 = off)")
            with gr.Row():
                seed = gr.Number(value=42, precision=0, label="Seed", minimum=0)
                new_seed = gr.Button("🎲 New seed", size="sm")
            with gr.Row():
                run = gr.Button("Generate", variant="primary")
                stop = gr.Button("Stop", variant="stop")
        with gr.Column(scale=3):
            output = gr.Textbox(label="Generated text", lines=14, max_lines=30, elem_id="generated-text",
                                buttons=["copy"])
            confidence = gr.HighlightedText(
                label="How sure the model was of each character (drawn when the text is complete or stopped; "
                      "darker = less sure; click one)",
                combine_adjacent=False, show_legend=False, show_inline_category=False,
                elem_classes="ep-confidence")
            confidence.postprocess = spans_as_sent  # the same JSON, without a pydantic model per character
            with gr.Row():
                position = gr.Slider(1, 2, value=1, step=1, label="Character position")
                alternatives = gr.Label(label="Top alternatives there", num_top_classes=5)
    steps = gr.State([])
    gr.Examples(EXAMPLES, [prompt, length, temperature, top_k, top_p, seed], label="Try")

    new_seed.click(lambda: random.randint(0, 2**31 - 1), None, seed, api_name=False)
    event = run.click(generate_text, [prompt, length, temperature, top_k, top_p, seed],
                      [output, confidence, steps, position, alternatives], api_name="generate_text",
                      preprocess=False, concurrency_limit=CONCURRENT_STREAMS)
    stop.click(None, None, None, cancels=[event], api_name=False).then(
        show_confidence, [steps, output], [confidence, position, alternatives], api_name=False)
    position.release(pick_position, [steps, position], alternatives, api_name=False)
    confidence.select(pick_character, [steps], [position, alternatives], api_name=False)
