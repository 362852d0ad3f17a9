"""Request batching inside the app process: many users share one model call instead of taking turns at batch 1.

A GRU step at batch 1 is bound by memory bandwidth (it reads every weight to make one row), so a batch of 16
costs little more than one. Two batchers, both plain threads that only call the inference objects' batched
methods (the TensorFlow work and the guarantee that a row's output does not depend on its neighbours live there):

- `TextStreams`: every open text stream advances together, one compiled chunk of characters per round
  (`TextGenerator.advance`). A stream joins at the next round, where its prompt is read beside the others' text,
  and leaves when it is finished or when its consumer goes away (the Stop button or a closed page closes the Gradio
  generator).
- `RequestBatcher`: requests that arrive within a short window (a few milliseconds) are answered by one call of a
  method that takes a list and returns a list (`Translator.translate_many`, `Captioner.caption_many`).

Hot reload: a request takes its model from the registry as before, and the batchers group by the model object
they are given, so a promoted checkpoint serves every request that starts after the swap while the streams
already running on the old model finish on it (their GRU state belongs to that model).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, AsyncIterator, Callable, Iterator

from playground.core_sharing import CORES

LOG = logging.getLogger(__name__)
WINDOW_SECONDS = 0.005  # how long the first request of a batch waits for others (a greedy translation is ~16 ms)
_DONE = object()


@dataclasses.dataclass(eq=False)
class _Entry:
    generator: Any
    stream: Any
    chunks: queue.SimpleQueue
    closed: bool = False


class TextStreams:
    """One scheduler thread that writes the next chunk of every open text stream in one call per model."""

    def __init__(self):
        self._wake = threading.Condition()
        self._open: list[_Entry] = []
        self._thread: threading.Thread | None = None
        self.rounds = 0  # calls made so far, and the streams they carried: for tests and the benchmark's notes
        self.rows = 0

    def stream(self, generator, stream) -> Iterator[list]:
        """The chunks of `stream` (a `TextStream` of `generator`) as the scheduler writes them (those that
        arrived since the last one was taken, joined).

        Closing this iterator (Gradio does when the request is cancelled or the page goes away) takes the stream
        out of the batch before the next round; an error in the model call is raised here."""
        entry = self._join(generator, stream, queue.SimpleQueue())
        pending = None
        try:
            while True:
                chunk, pending = _joined(pending if pending is not None else entry.chunks.get(), entry.chunks)
                if chunk is None:
                    return
                yield chunk
        finally:
            entry.closed = True

    async def astream(self, generator, stream) -> AsyncIterator[list]:
        """`stream` for a handler running on an asyncio event loop (the Text tab's, on Gradio's loop): the same
        chunks, which the scheduler hands to the loop (call_soon_threadsafe) instead of a worker thread waiting
        on a queue for each update. A synchronous Gradio generator takes a trip through a worker thread for every
        update it sends; with 16 users those trips were about a fifth of the app's interpreter time."""
        entry = self._join(generator, stream, _LoopQueue())
        pending = None
        try:
            while True:
                chunk, pending = _joined(pending if pending is not None else await entry.chunks.get(), entry.chunks)
                if chunk is None:
                    return
                yield chunk
        finally:
            entry.closed = True

    def _join(self, generator, stream, chunks) -> _Entry:
        entry = _Entry(generator, stream, chunks)
        with self._wake:
            self._open.append(entry)
            self._thread = _running(self._thread, self._run, "text-streams")
            self._wake.notify()
        return entry

    def open_streams(self) -> int:
        with self._wake:
            return sum(not entry.closed for entry in self._open)

    def _run(self) -> None:
        while True:
            with self._wake:
                self._open = [entry for entry in self._open if not entry.closed]
                while not self._open:
                    self._wake.wait()
                entries = list(self._open)
            with CORES.answering():  # a local training run is stopped while the texts are written (core_sharing)
                for generator, group in _grouped(entries, lambda entry: entry.generator):
                    size = generator.batch_size_for(len(group))
                    for first in range(0, len(group), size):
                        self._advance(generator, group[first: first + size])

    def _advance(self, generator, entries: list[_Entry]) -> None:
        entries = [entry for entry in entries if not entry.closed]  # one that left since the round began
        if not entries:
            return
        try:
            chunks = generator.advance([entry.stream for entry in entries])
        except Exception as error:  # noqa: BLE001 - each waiting request raises it, the scheduler goes on
            LOG.exception("a batched text step failed")
            chunks = [error] * len(entries)
        self.rounds, self.rows = self.rounds + 1, self.rows + len(entries)
        for entry, chunk in zip(entries, chunks):
            if chunk or isinstance(chunk, BaseException):  # a round that only read the prompt sends nothing
                entry.chunks.put(chunk)
            if isinstance(chunk, BaseException) or entry.stream.finished:
                entry.chunks.put(_DONE)
                entry.closed = True


@dataclasses.dataclass(eq=False)
class _Request:
    method: Callable[[list], list]
    item: Any
    future: Future


class RequestBatcher:
    """Answers single requests with batched calls: `call(method, item)` blocks until `method([.., item, ..])`
    returns, where `method` takes a list of requests and returns one result per request (an exception in a
    result's place is raised for that request alone). Requests for the same method (the same bound method of
    the same model object) that arrive within `window` seconds of the first share one call, up to `max_batch`."""

    def __init__(self, window: float = WINDOW_SECONDS, max_batch: int = 32):
        self.window = window
        self.max_batch = max_batch
        self._wake = threading.Condition()
        self._waiting: list[_Request] = []
        self._thread: threading.Thread | None = None
        self.calls = 0  # batched calls made, and the requests they answered
        self.requests = 0

    def call(self, method: Callable[[list], list], item):
        request = _Request(method, item, Future())
        with self._wake:
            self._waiting.append(request)
            self._thread = _running(self._thread, self._run, "request-batcher")
            self._wake.notify()
        return request.future.result()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._waiting:
                    self._wake.wait()
            time.sleep(self.window)  # let the requests arriving at the same moment join
            with self._wake:
                waiting, self._waiting = self._waiting, []
            for method, group in _grouped(waiting, lambda request: request.method):
                for first in range(0, len(group), self.max_batch):
                    self._answer(method, group[first: first + self.max_batch])

    def _answer(self, method, requests: list[_Request]) -> None:
        try:
            results = method([request.item for request in requests])
        except Exception as error:  # noqa: BLE001 - every request of the call gets it
            results = [error] * len(requests)
        self.calls, self.requests = self.calls + 1, self.requests + len(requests)
        for request, result in zip(requests, results):
            if isinstance(result, BaseException):
                request.future.set_exception(result)
            else:
                request.future.set_result(result)


class _LoopQueue:
    """A queue the scheduler thread fills and a coroutine on the event loop it was made on empties."""

    def __init__(self):
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue()

    def put(self, item) -> None:  # from the scheduler thread
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed (the app is stopping): nobody is left to read it
            pass

    async def get(self):
        return await self._queue.get()

    def empty(self) -> bool:
        return self._queue.empty()

    def get_nowait(self):
        return self._queue.get_nowait()


def _joined(item, chunks) -> tuple[list | None, Any]:
    """(the chunk to send, an end or error taken early) from `item` and whatever else `chunks` already holds.

    Chunks written while the consumer was busy go out as one: a loaded app then sends fewer, larger updates, and
    each update costs Gradio more than the model's step for one more user does. The chunk is None at the end;
    an error is raised."""
    if item is _DONE:
        return None, None
    if isinstance(item, BaseException):
        raise item
    chunk = list(item)
    while not chunks.empty():
        more = chunks.get_nowait()
        if more is _DONE or isinstance(more, BaseException):
            return chunk, more
        chunk += more
    return chunk, None


def _running(thread: threading.Thread | None, target: Callable[[], None], name: str) -> threading.Thread:
    """`thread` if it is alive, else a new daemon thread running `target`, started (a batcher's scheduler starts
    with its first request, and again if it ever stopped)."""
    if thread is not None and thread.is_alive():
        return thread
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def _grouped(items: list, key) -> list[tuple[Any, list]]:
    """(key, items) in order of first appearance; keys compare with ==, so two bound methods of one object match."""
    groups: list[tuple[Any, list]] = []
    for item in items:
        for group_key, group in groups:
            if group_key == key(item):
                group.append(item)
                break
        else:
            groups.append((key(item), [item]))
    return groups


TEXT_STREAMS = TextStreams()  # the app's own: every Text tab request of the process shares it
REQUESTS = RequestBatcher()
