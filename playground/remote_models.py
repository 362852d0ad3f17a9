"""The app as the ingress of a Ray cluster: the tabs' models answered by Ray Serve deployments (docs/scale.md).

`python -m playground --ray-address auto` (or EAGER_PLAYGROUND_RAY_ADDRESS) swaps the app's `Registry` for a
`RayRegistry`: `get` hands the tabs a stand-in for each inference object, with the methods the tabs call
(`chunks`, `generate_judged`, `walk`, `translate`, `caption`, `vocabulary.unknown_characters`), that sends the
request to the model's deployment (playground/deployments.py) and returns its answer unchanged. The tabs do not
know the difference; everything else the app reads (metrics, examples, the training GIF, runs) comes from the
checkpoints and runs folders, which the nodes share.

Faults: the cluster is reached on first use, and again after a failure (at most every RETRY_SECONDS; a cluster
started again at the same address is reconnected and redeployed). A cluster that cannot be reached, or stops
answering, fails each request with one sentence (gr.Error) saying so: the app does not fall back to in-process
models (the ingress machine is not sized to hold four, and a silent fallback would hide a broken cluster). Expected errors of a request (bad input, a missing checkpoint) come back as the exception
class the tab already turns into a sentence.

Ray is imported only here and only when an address is given: the default install does not need it.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from pathlib import Path

import gradio as gr

from playground.registry import Registry
from trainers.common.ray_jobs import address_from_environment

RETRY_SECONDS = 10.0
PROBE_SECONDS = 3.0
GCS_RECONNECT_SECONDS = 10 * 365 * 24 * 3600
REQUEST_SECONDS = 300.0  # a caption or a 100-digit batch on a busy replica; a dead cluster fails sooner
TITLES = {"char_rnn": "text", "dcgan": "digit", "nmt": "translation", "captioning": "captioning"}
LOG = logging.getLogger(__name__)


class ClusterUnavailable(Exception):
    """The Ray cluster cannot be reached or does not answer; the message is a sentence for a person."""


def reachable(address: str, timeout: float = PROBE_SECONDS) -> None:
    """Raises ClusterUnavailable unless the cluster's GCS port (`auto`: the cluster `ray start` left on this
    machine) accepts a TCP connection within `timeout` seconds."""
    import socket

    from ray._private.services import canonicalize_bootstrap_address

    if address.startswith("ray://"):
        host, _, port = address[len("ray://"):].partition(":")
        bootstrap = f"{host}:{port or 10001}"
    else:
        try:
            bootstrap = canonicalize_bootstrap_address(address)
        except Exception as error:  # noqa: BLE001 - a malformed address, or no cluster started here for `auto`
            raise ClusterUnavailable(str(error)) from None
        if bootstrap is None:
            raise ClusterUnavailable(f"no Ray cluster is running here for the address {address!r}")
    host, _, port = bootstrap.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError) as error:
        raise ClusterUnavailable(f"{bootstrap} does not answer ({error})") from None


class Cluster:
    """The app's connection to a Ray cluster: `ray.init` on first use, the Serve application deployed if it is not
    running yet, and one handle per model deployment. A failure is remembered for RETRY_SECONDS, so a dead cluster
    costs each request one sentence, not a connection timeout."""

    def __init__(self, address: str, checkpoints: Path, deploy: bool = True):
        self.address = address
        self.checkpoints = Path(checkpoints)
        self.deploy = deploy
        self._handles: dict = {}
        self._failed_at = 0.0
        self._failure = ""
        self._stale = False  # connected once, then the cluster went away: ray.shutdown() before connecting again
        self._lock = threading.Lock()

    def sentence(self, model: str) -> str:
        return (f"The Ray cluster at {self.address} is not answering, so the {TITLES.get(model, model)} model cannot "
                f"run right now; try again in a minute (whoever runs the cluster can check it with `ray status`).")

    def connect(self) -> None:
        """Connects and deploys (if needed); ClusterUnavailable when the cluster cannot be reached.

        Every request first asks the cluster's GCS port (a TCP connect, well under a millisecond on a network that
        works): a request to a dead cluster would otherwise wait for its whole timeout."""
        with self._lock:
            if self._handles:
                try:
                    reachable(self.address)
                    return
                except ClusterUnavailable as error:
                    self._handles, self._stale = {}, True
                    self._failed_at, self._failure = time.monotonic(), str(error)
                    raise
            if time.monotonic() - self._failed_at < RETRY_SECONDS:
                raise ClusterUnavailable(self._failure)
            try:
                if self._stale:
                    _disconnect()
                    self._stale = False
                self._handles = self._connect()
            except Exception as error:  # noqa: BLE001 - every way of not reaching a cluster is one sentence
                LOG.warning("the Ray cluster at %s cannot be reached: %s", self.address, error)
                self._failed_at, self._failure = time.monotonic(), str(error)
                raise ClusterUnavailable(str(error)) from None

    def _connect(self) -> dict:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray's usage report would leave the cluster
        # A Ray driver whose cluster has been gone for 60 s ends its own process (rpc_client.h: "Failed to connect
        # to GCS within 60 seconds"): that would be the whole app. It waits instead; requests fail with a sentence.
        os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", str(GCS_RECONNECT_SECONDS))
        import ray
        from ray import serve

        from playground import deployments

        logging.getLogger("ray.serve").setLevel(logging.WARNING)  # Serve's own progress lines, in the app's log
        if not ray.is_initialized():
            reachable(self.address)  # ray.init retries an unreachable cluster for minutes: ask its port first
            ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING,
                     configure_logging=False)
        if self.deploy and deployments.APP_NAME not in serve.status().applications:
            deployments.deploy(self.checkpoints)
        return {model: serve.get_deployment_handle(name, deployments.APP_NAME)
                for model, name in deployments.DEPLOYMENT_NAMES.items()}

    def failed(self, error: BaseException) -> bool:
        """A call failed in a way that is not the request's fault. Returns whether the cluster itself is gone
        (then the next request after RETRY_SECONDS reconnects). A cluster that still answers keeps its connection:
        a dead replica or a timed-out request must not cut off the other users' requests."""
        LOG.warning("a request to the Ray cluster failed: %r", error)
        try:
            reachable(self.address)
            return False
        except ClusterUnavailable as unavailable:
            with self._lock:
                self._handles, self._stale = {}, True
                self._failed_at, self._failure = time.monotonic(), str(unavailable)
            return True

    def handle(self, model: str):
        self.connect()
        return self._handles[model]


def _disconnect(seconds: float = 10.0) -> None:
    """Forgets a connection whose cluster went away: Serve's cached controller, then ray.shutdown(), given
    `seconds` (it may wait on the dead cluster), so the next `ray.init` starts a new driver session."""
    import ray
    from ray.serve import context as serve_context

    serve_context._set_global_client(None)
    worker = threading.Thread(target=ray.shutdown, daemon=True, name="ray-shutdown")
    worker.start()
    worker.join(seconds)


def _failed_on_replica(model: str) -> gr.Error:
    return gr.Error(f"The {TITLES.get(model, model)} model failed on this request on the Ray cluster; the "
                    f"replica's log has the details.")


def _raise(failure, model: str) -> None:
    """Raises the exception a replica's request raised, as its own class with its own sentence."""
    raise failure.error() or _failed_on_replica(model)


class _Remote:
    """A stand-in for one inference object: each method is one request to the model's deployment."""

    MODEL = ""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    def _handle(self):
        try:
            return self.cluster.handle(self.MODEL)
        except ClusterUnavailable:
            raise gr.Error(self.cluster.sentence(self.MODEL)) from None

    def _fault(self, error: BaseException) -> gr.Error:
        """The sentence for a call that failed: the replica's own code raised (a bug: its log has the details),
        the cluster is gone (then a later request reconnects), or a replica or its node is (Serve replaces it)."""
        from ray.exceptions import RayTaskError

        if isinstance(error, RayTaskError):
            LOG.error("a %s replica raised: %s", self.MODEL, error)
            return _failed_on_replica(self.MODEL)
        if self.cluster.failed(error):
            return gr.Error(self.cluster.sentence(self.MODEL))
        return gr.Error(f"The {TITLES.get(self.MODEL, self.MODEL)} model on the Ray cluster did not answer this "
                        f"request (a replica stopped, or it took longer than {REQUEST_SECONDS:.0f} s); try again in "
                        f"a minute.")

    def _call(self, method: str, request):
        from playground.model_calls import Failure

        handle = self._handle()
        try:
            answer = getattr(handle, method).remote(request).result(timeout_s=REQUEST_SECONDS)
        except Exception as error:  # noqa: BLE001 - a dead replica, node or cluster: one sentence
            raise self._fault(error) from None
        if isinstance(answer, Failure):
            _raise(answer, self.MODEL)
        return answer


class _RemoteVocabulary:
    def __init__(self, remote: "RemoteTextGenerator"):
        self.remote = remote

    def unknown_characters(self, prompt: str):
        return self.remote._call("unknown_characters", prompt)


class RemoteTextGenerator(_Remote):
    MODEL = "char_rnn"

    def __init__(self, cluster: Cluster):
        super().__init__(cluster)
        self.vocabulary = _RemoteVocabulary(self)

    def chunks(self, prompt: str, length: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
               seed: int | None = None):
        """TextGenerator.chunks on a replica: lists of GeneratedChar, streamed as the replica writes them."""
        from playground.model_calls import Failure

        if seed is None:  # drawn here, as TextGenerator.chunks would, so the seed is the ingress's
            seed = random.randrange(2**31)
        sampling = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
        handle = self._handle()
        try:
            stream = iter(handle.options(stream=True).chunks.remote(prompt, length, sampling))
        except Exception as error:  # noqa: BLE001
            raise self._fault(error) from None
        while True:
            try:
                chunk = next(stream)
            except StopIteration:
                return
            except Exception as error:  # noqa: BLE001 - the replica or the cluster died mid-stream
                raise self._fault(error) from None
            if isinstance(chunk, Failure):
                _raise(chunk, self.MODEL)
            yield chunk

    def generate(self, prompt: str, length: int, **sampling) -> str:
        return "".join(step.char for chunk in self.chunks(prompt, length, **sampling) for step in chunk)


class RemoteDigitGenerator(_Remote):
    MODEL = "dcgan"

    def generate_judged(self, seed: int, count: int):
        return self._call("generate_judged", {"seed": seed, "count": count})

    def walk(self, seed_a: int, seed_b: int, frames: int):
        return self._call("walk", {"seed_a": seed_a, "seed_b": seed_b, "frames": frames})


class RemoteTranslator(_Remote):
    MODEL = "nmt"

    def translate(self, text: str, method: str = "greedy", beam: int = 4, temperature: float = 1.0,
                  seed: int | None = None) -> dict:
        return self._call("translate", {"text": text, "method": method, "beam": beam, "temperature": temperature,
                                        "seed": seed})


class RemoteCaptioner(_Remote):
    MODEL = "captioning"

    def caption(self, image, beam: int = 1, detections: list | None = None) -> dict:
        """Captioner.caption on a replica; a picture file is sent as its bytes (the replica may be elsewhere).
        `detections`: what the ingress's COCO detector found, to steer the nouns (None: the decoder alone)."""
        if isinstance(image, (str, Path)):
            from trainers.captioning.encoder import ImageError

            try:
                image = Path(image).read_bytes()
            except OSError as error:
                raise ImageError(f"the picture cannot be read ({error.strerror or error})") from None
        return self._call("caption", {"image": image, "beam": beam, "detections": detections})


REMOTES = {remote.MODEL: remote for remote in (RemoteTextGenerator, RemoteDigitGenerator, RemoteTranslator,
                                               RemoteCaptioner)}


class RayRegistry(Registry):
    """A Registry whose models live on a Ray cluster: `get` returns the model's stand-in (the loader is not used:
    the replicas load and hot-reload the checkpoints themselves). Paths, metrics and `exists` read the shared
    checkpoints folder, as in-process."""

    def __init__(self, root: Path | None = None, cluster: Cluster | None = None, address: str | None = None):
        super().__init__(root)
        self.cluster = cluster or Cluster(address or address_from_environment(), self.root)
        self._remotes = {model: remote(self.cluster) for model, remote in REMOTES.items()}

    def get(self, name: str, loader=None):
        if name not in self._remotes:
            raise KeyError(f"no Ray deployment serves {name!r}")
        return self._remotes[name]
