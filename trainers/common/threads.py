"""How a serving process spends its cores: one thread per TensorFlow op, several ops at once.

TensorFlow's default gives every op all the cores (intra-op threads). The models the app serves are small per op
(a GRU step at a few rows, a 7 x 7 convolution), where a second thread on the same op gains little or loses:
`benchmarks/op_threads.py` on an Intel Xeon with AMX (2 cores, quiet, 2026-12-07; best of 3 rounds, default against
one thread per op) gave one 64-character text chunk 39.3 / 40.0 ms for one stream, 54.9 / 48.5 ms for 16 and
72.9 / 59.4 ms for 32; a greedy translation 16.9 / 15.8 ms; a caption and the COCO detector the same. So the app
and its Ray replicas run one thread per op (`use_serving_threads`, through `playground.registry.Registry`) and
TensorFlow's inter-op threads run independent ops side by side. A model whose one call is large (64 digits: 38.5 ms
on one thread, 22.6 ms on two) is called on slices of its batch that run at once (`parallel_batches`; with their
labels 28.5 ms against 31.8 ms with the default threads). On CPUs with AVX-512 every output is bit for bit the one
of the default threads (tests/test_threads.py); on an AVX2-only CPU it is not (oneDNN splits a small product's
sums between the default threads), so the inference CLIs run one thread per op too and give the app's answers.
Trainers keep the default: their ops are large.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Callable

LOG = logging.getLogger(__name__)
MIN_ROWS_PER_PART = 2  # a CPU matrix product rounds a lone row differently from 2 or more (char_rnn.generate)


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def use_serving_threads() -> bool:
    """One intra-op thread per TensorFlow op and one inter-op thread per core, for this process (once, before it
    runs its first op). False when TensorFlow has already run one here (its thread pools are fixed by then: a test
    process, say), which changes no output, only the speed. EAGER_PLAYGROUND_OP_THREADS=default keeps TensorFlow's
    default (every op on all the cores)."""
    import tensorflow as tf

    if os.environ.get("EAGER_PLAYGROUND_OP_THREADS") == "default":
        return False
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(max(2, cores()))
    except RuntimeError:
        LOG.info("TensorFlow already runs in this process: its threads stay as they are")
        return False
    return True


def serving_parts() -> int:
    """How many slices `parallel_batches` cuts a batch into by default: one per core where ops run on one thread
    each (`use_serving_threads`), else 1 (an op already uses every core)."""
    import tensorflow as tf

    return cores() if tf.config.threading.get_intra_op_parallelism_threads() == 1 else 1


def parallel_batches(call: Callable, parts: int | None = None) -> Callable:
    """`call(batch)` (a model on a batch; its output a tensor or a tuple of them, one row per input row) compiled,
    and made as up to `parts` calls on consecutive slices of the batch (each at least MIN_ROWS_PER_PART rows), which
    TensorFlow runs at the same time on its inter-op threads; the outputs are joined in order. `parts` defaults to
    `serving_parts()`. Each row's output is the one the whole batch gives it: without AVX-512 the slices are cut at
    multiples of `decoding.row_multiple()` rows (and hold at least that many), so that the matrix products work on
    the same tiles of rows as in the whole batch (trainers.common.decoding says why)."""
    import tensorflow as tf

    from trainers.common.decoding import row_multiple

    multiple = row_multiple()
    smallest = max(MIN_ROWS_PER_PART, multiple)
    compiled: dict[tuple, Callable] = {}  # one trace per slice count and row shape, for any number of rows

    def in_slices(batch, count: int):
        size = tf.shape(batch)[0]
        cuts = [0, *(size * index // count // multiple * multiple for index in range(1, count)), size]
        outputs = [call(batch[cuts[index]:cuts[index + 1]]) for index in range(count)]
        return tf.nest.map_structure(lambda *pieces: tf.concat(pieces, axis=0), *outputs)

    def run(batch):
        wanted = parts if parts is not None else serving_parts()
        count = max(1, min(wanted, int(batch.shape[0]) // smallest))
        key = (count, tuple(batch.shape[1:]), batch.dtype)
        if key not in compiled:  # traced with any batch size: a new count of digits does not trace again
            spec = tf.TensorSpec([None, *batch.shape[1:]], batch.dtype)
            compiled[key] = tf.function(lambda rows: in_slices(rows, count), input_signature=[spec])
        return compiled[key](batch)

    return run
