"""The four models as Ray Serve deployments, for `python -m playground --ray-address ...` (docs/scale.md).

Each deployment is a replica holding one `Registry` over the checkpoints folder the nodes share: every request
(or batch) asks it for the model, so a promoted checkpoint is loaded by the next request, as in-process (the same
identity check: the folder's inode and its files' modification times). Translations, captions and digits are
collected by `@serve.batch` (a few milliseconds) and answered through playground/model_calls.py, the one module
that knows how a batch becomes calls on the inference object (in a worker thread: the replica's event loop
keeps collecting the next batch meanwhile). Text streams, a chunk at a time, and the streams a replica serves at
once advance together in one batched call a round (the app's own scheduler, batching.TextStreams).

Replicas autoscale on their ongoing requests; `EAGER_PLAYGROUND_REPLICA_CPUS` sets the CPUs each one reserves
(1 by default; the tests use a fraction, to fit four replicas and a training run on two CPUs).

An answer crosses the cluster as a plain value or as a `Failure` naming the exception: the ingress raises the same
exception class again (a sentence for the person), never a remote traceback.

Importing this module needs Ray (requirements-scale.txt); the app imports it only when a Ray address is given.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from ray import serve

from playground import model_calls
from playground.model_calls import Failure

APP_NAME = "eager-playground"
BATCH_SIZE = 16
BATCH_WAIT_SECONDS = 0.005  # the collection window: a few milliseconds of added latency at most
AUTOSCALING = {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 4, "upscale_delay_s": 10,
               "downscale_delay_s": 120}
DEPLOYMENT_NAMES = {"char_rnn": "TextModel", "dcgan": "DigitModel", "nmt": "TranslateModel",
                    "captioning": "CaptionModel"}


OPTIONS = {"autoscaling_config": AUTOSCALING, "max_ongoing_requests": 32}  # CPUs: set by application()


def _replica_cpus() -> float:
    try:
        return float(os.environ.get("EAGER_PLAYGROUND_REPLICA_CPUS", "1"))
    except ValueError:
        return 1.0


class _Model:
    """One model's replica: loads (and reloads) it through a Registry on the shared checkpoints folder."""

    MODEL = ""

    def __init__(self, checkpoints: str):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from playground.registry import Registry

        self.registry = Registry(Path(checkpoints))

    def model(self):
        return self.registry.get(self.MODEL, self.load)

    def load(self, path):
        return model_calls.load(self.MODEL, path)  # as the tabs load it in-process

    def _batch(self, call, requests: list[dict]) -> list:
        try:
            model = self.model()
        except Exception as error:  # noqa: BLE001 - a missing checkpoint answers every request of the batch
            return [Failure.of(error)] * len(requests)
        return [Failure.of(result) if isinstance(result, BaseException) else result
                for result in call(model, requests)]


@serve.deployment(name=DEPLOYMENT_NAMES["char_rnn"], **OPTIONS)
class TextModel(_Model):
    MODEL = "char_rnn"

    def __init__(self, checkpoints: str):
        super().__init__(checkpoints)
        from playground.batching import TextStreams

        self.streams = TextStreams()  # this replica's: its concurrent streams share each round's call

    def unknown_characters(self, prompt: str):
        try:
            return self.model().vocabulary.unknown_characters(prompt)
        except Exception as error:  # noqa: BLE001
            return Failure.of(error)

    async def chunks(self, prompt: str, length: int, sampling: dict):
        """Streams lists of GeneratedChar; a failure is the stream's last (and only bad) item."""
        try:
            model = await asyncio.to_thread(self.model)  # loading (or reloading) blocks: not on the replica's loop
            async for chunk in model_calls.text_chunks(self.streams, model, prompt, length, **sampling):
                yield chunk
        except Exception as error:  # noqa: BLE001
            yield Failure.of(error)


@serve.deployment(name=DEPLOYMENT_NAMES["dcgan"], **OPTIONS)
class DigitModel(_Model):
    MODEL = "dcgan"

    @serve.batch(max_batch_size=BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_SECONDS)
    async def generate_judged(self, requests: list[dict]) -> list:
        return await asyncio.to_thread(self._batch, model_calls.generate_digits, requests)

    @serve.batch(max_batch_size=BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_SECONDS)
    async def walk(self, requests: list[dict]) -> list:
        return await asyncio.to_thread(self._batch, model_calls.walk_digits, requests)


@serve.deployment(name=DEPLOYMENT_NAMES["nmt"], **OPTIONS)
class TranslateModel(_Model):
    MODEL = "nmt"

    @serve.batch(max_batch_size=BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_SECONDS)
    async def translate(self, requests: list[dict]) -> list:
        return await asyncio.to_thread(self._batch, model_calls.translate, requests)


@serve.deployment(name=DEPLOYMENT_NAMES["captioning"], **OPTIONS)
class CaptionModel(_Model):
    MODEL = "captioning"

    @serve.batch(max_batch_size=BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_SECONDS)
    async def caption(self, requests: list[dict]) -> list:
        return await asyncio.to_thread(self._batch, model_calls.caption, requests)


DEPLOYMENTS = (TextModel, DigitModel, TranslateModel, CaptionModel)


@serve.deployment(name="Models", num_replicas=1, ray_actor_options={"num_cpus": 0})
class Models:
    """The application's root: holds the four deployments so one `serve.run` starts them all. The ingress calls
    the model deployments directly (`serve.get_deployment_handle`), not through this."""

    def __init__(self, *handles):
        self.handles = handles

    def __call__(self) -> str:
        return "ok"


def application(checkpoints: str | Path):
    """The Serve application of the four deployments, each reading `checkpoints` (shared by the nodes)."""
    cpus = {"ray_actor_options": {"num_cpus": _replica_cpus()}}  # read when deploying, not when importing
    return Models.bind(*(deployment.options(**cpus).bind(str(checkpoints)) for deployment in DEPLOYMENTS))


def deploy(checkpoints: str | Path) -> None:
    """Starts (or updates) the application; Serve's HTTP proxy stays off: the Gradio ingress uses handles."""
    serve.start(proxy_location="Disabled")
    serve.run(application(checkpoints), name=APP_NAME, route_prefix=None, blocking=False)
