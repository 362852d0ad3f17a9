"""The app's thread layout (trainers.common.threads): one thread per op, batches in slices side by side, frozen
text weights, and the same outputs as TensorFlow's default threads, bit for bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from trainers.common.decoding import row_multiple

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, timeout: int = 300, **env: str) -> str:
    """The last line `code` prints, run in a fresh interpreter (a process's thread pools are set once)."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
                                                **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_serving_threads_are_set_before_the_first_op_and_only_then():
    result = json.loads(run_python("""
        import json
        import tensorflow as tf
        from trainers.common.threads import cores, use_serving_threads
        first = use_serving_threads()
        tf.constant(1.0) + 1.0
        print(json.dumps([first, tf.config.threading.get_intra_op_parallelism_threads(),
                          tf.config.threading.get_inter_op_parallelism_threads(), cores()]))
    """))
    assert result[0] is True and result[1] == 1 and result[2] == max(2, result[3])
    late = run_python("""
        import tensorflow as tf
        from trainers.common.threads import use_serving_threads
        tf.constant(1.0) + 1.0  # TensorFlow already ran an op: its pools are fixed
        print(use_serving_threads(), tf.config.threading.get_intra_op_parallelism_threads())
    """)
    assert late == "False 0"
    kept = run_python("""
        import tensorflow as tf
        from trainers.common.threads import use_serving_threads
        print(use_serving_threads(), tf.config.threading.get_intra_op_parallelism_threads())
    """, EAGER_PLAYGROUND_OP_THREADS="default")
    assert kept == "False 0"


def test_the_registry_sets_them_before_it_loads_a_model(tmp_path):
    from tests.tiny import char_rnn

    char_rnn.make(tmp_path / "char_rnn")
    loaded = run_python(f"""
        import tensorflow as tf
        from playground.registry import Registry
        from trainers.char_rnn.generate import TextGenerator
        generator = Registry({str(tmp_path)!r}).get("char_rnn", TextGenerator.load)
        print(generator.generate("To be", 20, temperature=0.0) != "", tf.config.threading.get_intra_op_parallelism_threads())
    """)
    assert loaded == "True 1"


def test_parallel_batches_give_each_row_what_the_whole_batch_gives_it():
    import keras
    import tensorflow as tf

    from trainers.common.decoding import row_softmax
    from trainers.common.threads import parallel_batches

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                              keras.layers.Dense(5)])
    traced = []

    def call(batch):
        traced.append(batch)
        outputs = model(batch, training=False)
        # A tuple: each element joined in order. row_softmax, not tf.nn.softmax, whose rows depend on the batch
        # size on an AVX2-only CPU (trainers.common.decoding).
        return outputs, row_softmax(outputs)

    whole = tf.function(call)
    for parts in (1, 2, 3):
        sliced = parallel_batches(call, parts=parts)
        for rows in (1, 2, 3, 5, 9, 64):
            batch = tf.constant(np.random.default_rng(rows).standard_normal((rows, 6, 6, 1)).astype(np.float32))
            expected, got = whole(batch), sliced(batch)
            for a, b in zip(expected, got):
                assert np.array_equal(a.numpy(), b.numpy()), (parts, rows)
    # Slices of at least 2 rows (6 without AVX-512): 64 rows in 3 slices, 3 rows whole
    traced.clear()
    parallel_batches(call, parts=3)(tf.zeros((64, 6, 6, 1)))
    assert len(traced) == 3
    traced.clear()
    parallel_batches(call, parts=3)(tf.zeros((3, 6, 6, 1)))
    assert len(traced) == 1
    # Traced once per slice count, whatever the number of rows (the Digits tab's count changes often)
    traced.clear()
    sliced = parallel_batches(call, parts=2)
    for rows in (12, 14, 64, 100):
        sliced(tf.zeros((rows, 6, 6, 1)))
    assert len(traced) == 2


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_frozen_text_weights_write_the_same_text(precision, tmp_path):
    from tests.tiny import char_rnn
    from trainers.char_rnn.generate import TextGenerator
    from trainers.char_rnn.model import load

    model, vocabulary = load(char_rnn.make(tmp_path / "char_rnn"))
    texts = []
    for frozen in (False, True):
        generator = TextGenerator(model, vocabulary, chunk=16, precision=precision, frozen=frozen)
        steps = [step for chunk in generator.chunks("To be", 50, temperature=0.9, top_k=5, seed=11) for step in chunk]
        texts.append([(step.char, step.probability, step.alternatives) for step in steps])
    assert texts[0] == texts[1]


@pytest.mark.skipif(row_multiple() != 1,
                    reason="without AVX-512 the default threads round a small product differently (they split its sums "
                           "between the threads); the app and the CLIs run one thread per op there too")
def test_the_shipped_models_answer_the_same_with_serving_threads():
    """Text (batched and alone), digits with their labels, a translation: the same bits either way (on CPUs with
    AVX-512, where oneDNN does not split a small product's sums between threads)."""
    code = """
        import json, sys
        from pathlib import Path
        if sys.argv[-1] == "serving":
            from trainers.common.threads import use_serving_threads
            use_serving_threads()
        from trainers.char_rnn.generate import TextGenerator
        from trainers.dcgan.generate import DigitGenerator
        from trainers.nmt.translate import Translator
        root = Path("checkpoints")
        text = TextGenerator.load(root / "char_rnn")
        streams = [text.start("ROMEO:", 100, temperature=0.8, seed=seed) for seed in range(5)]
        written = [[] for _ in streams]
        while not streams[0].finished:
            for row, chunk in zip(written, text.advance(streams)):
                row += [[step.char, step.probability] for step in chunk]
        judged = DigitGenerator.load(root / "dcgan").generate_judged(7, 64)
        print(json.dumps({"text": written, "digits": judged.digits.tolist(), "labels": judged.guesses,
                          "confidence": judged.confidences,
                          "translation": Translator.load(root / "nmt").translate("El gato duerme en la cama.")}))
    """
    answers = {}
    for arm in ("default", "serving"):
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), arm], capture_output=True, text=True,
                              cwd=ROOT, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert done.returncode == 0, done.stderr[-3000:]
        answers[arm] = json.loads(done.stdout.strip().splitlines()[-1])
    assert answers["default"] == answers["serving"]


def test_the_warm_up_runs_every_hook_in_one_thread_in_order():
    """The models warm up one after another in the warm-up's own thread, the detector's first call included: with
    that call in a thread beside another model's warm-up, the app died of a segmentation fault in TensorFlow in about
    one run in five of the concurrent endpoints test on an AVX2-only AMD EPYC (playground/app.py)."""
    import threading
    import types

    from playground.app import warm_up

    calls = []

    def tab(name: str, *hooks: str):
        module = types.SimpleNamespace(MODEL=name)
        for hook in hooks:
            setattr(module, hook, lambda registry, hook=hook: calls.append((name, hook, threading.current_thread())))
        return module

    tabs = [(tab("text", "warm_up", "warm_up_later"), True), (tab("caption", "warm_up", "warm_up_after"), True),
            (tab("hidden", "warm_up", "warm_up_after"), False)]
    warm_up(None, tabs)
    assert [(name, hook) for name, hook, _ in calls] == [("text", "warm_up"), ("caption", "warm_up"),
                                                         ("caption", "warm_up_after"), ("text", "warm_up_later")]
    assert {thread for _, _, thread in calls} == {threading.current_thread()}
