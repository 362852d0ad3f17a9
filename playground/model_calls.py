"""The calls a model server makes on the four inference objects, each taking a list of requests.

The Ray Serve deployments (playground/deployments.py) collect concurrent requests with `@serve.batch` and hand
each batch here as one list. Where the inference object has a method that takes the whole list (request
batching, issue 15 part 1: `Translator.translate_many`, which decodes every greedy request in one batch with the
same outputs as alone), it is used; otherwise the function loops over the single-request method the tabs call
in-process (`Captioner.caption`, `DigitGenerator.generate_judged`/`walk`), so a batch's answers are exactly the
unbatched ones either way. The names methods are looked up by are the one place to change, here.

Each request is a dict of the keyword arguments of the single-request method; each result is the method's
return value, or the exception it raised (one bad request must not fail the others in its batch), which the
deployment sends back as a `Failure`. Nothing here imports TensorFlow or Ray at import time (the ingress imports
`Failure`; `load` imports a model's trainer module when it is called).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from pathlib import Path
from typing import Any, Callable

LOG = logging.getLogger("ray.serve")  # in a replica, Serve's logger writes the replica's log
# Exceptions a request may raise on purpose (bad input, a missing checkpoint): carried back by class name and
# raised again, as the same class with the same sentence, at the ingress (`Failure.error`).
EXPECTED = {
    "ValueError": "builtins:ValueError",
    "TranslationInputError": "trainers.nmt.translate:TranslationInputError",
    "ImageError": "trainers.captioning.encoder:ImageError",
    "ImageTooLarge": "trainers.captioning.encoder:ImageTooLarge",
    "CheckpointError": "trainers.common.checkpoint:CheckpointError",
}


def _named(name: str):
    """The object a "module:attribute" name points to (imported when first asked for)."""
    module, attribute = name.split(":")
    return getattr(importlib.import_module(module), attribute)


@dataclasses.dataclass
class Failure:
    """A request that raised: the exception's class name and its message (no traceback crosses the cluster)."""

    kind: str
    message: str

    @classmethod
    def of(cls, error: BaseException) -> "Failure":
        kind = type(error).__name__
        if kind not in EXPECTED:
            LOG.error("a request failed", exc_info=error)
            return cls("unexpected", "")
        return cls(kind, str(error))

    def error(self) -> BaseException | None:
        """The exception to raise again for this failure; None for an unexpected one (its replica logged it)."""
        return _named(EXPECTED[self.kind])(self.message) if self.kind in EXPECTED else None


# Each model's inference class ("module:Class"); its `load(path)` reads a checkpoint folder. The tabs (in-process)
# and the Serve replicas load through `load`, so both serve the same objects built the same way.
INFERENCE_CLASSES = {
    "char_rnn": "trainers.char_rnn.generate:TextGenerator",
    "dcgan": "trainers.dcgan.generate:DigitGenerator",
    "nmt": "trainers.nmt.translate:Translator",
    "captioning": "trainers.captioning.caption:Captioner",
}


def load(model: str, path) -> Any:
    """The inference object of `model`'s checkpoint folder at `path` (imports TensorFlow on first use)."""
    return _named(INFERENCE_CLASSES[model]).load(Path(path))


# The list-taking method each call would use if the inference object has it (request batching, part 1).
BATCHED_METHODS = {
    "translate": "translate_many",
    "caption": "caption_many",
    "generate_judged": "generate_judged_many",
    "walk": "walk_many",
}


def call_each(model, method: str, requests: list[dict]) -> list[Any]:
    """`model.<method>(**request)` for every request, through the list-taking method when the model has one.

    Returns one result per request, in order; a request that raised gets its exception in its place."""
    batched: Callable | None = getattr(model, BATCHED_METHODS.get(method, ""), None)
    if batched is not None and len(requests) > 1:
        try:
            return list(batched(requests))
        except Exception:  # noqa: BLE001 - one bad request: answer each alone, so only it fails
            pass
    single = getattr(model, method)
    results = []
    for request in requests:
        try:
            results.append(single(**request))
        except Exception as error:  # noqa: BLE001 - returned to that request's caller, who decides
            results.append(error)
    return results


def translate(translator, requests: list[dict]) -> list[Any]:
    """Requests: {text, method, beam, temperature, seed} -> Translator.translate's result dicts."""
    return call_each(translator, "translate", requests)


def caption(captioner, requests: list[dict]) -> list[Any]:
    """Requests: {image (bytes), beam, detections (the ingress detector's, or None)} -> Captioner.caption's result
    dicts."""
    return call_each(captioner, "caption", requests)


def generate_digits(generator, requests: list[dict]) -> list[Any]:
    """Requests: {seed, count} -> DigitGenerator.generate_judged's Judged digits."""
    return call_each(generator, "generate_judged", requests)


def walk_digits(generator, requests: list[dict]) -> list[Any]:
    """Requests: {seed_a, seed_b, frames} -> DigitGenerator.walk's Judged frames."""
    return call_each(generator, "walk", requests)


async def text_chunks(streams, text_generator, prompt: str, length: int, **sampling):
    """One stream's chunks of generated characters, through `streams` (a batching.TextStreams): the streams a
    process serves at once (the app's users, a replica's requests) advance together, one batched call a round, and
    each gets the text it would get alone. An async generator: its consumer runs on an event loop."""
    async for chunk in streams.astream(text_generator, text_generator.start(prompt, length, **sampling)):
        yield chunk
