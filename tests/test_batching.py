"""Request batching (playground/batching.py): a request's output is the one it gets alone, bit for bit.

The guarantee rests on a property of the CPU kernels measured on this machine: from 2 rows on, a row of a matrix
product (oneDNN or XLA) does not depend on the batch size, on its place or on the other rows, while at 1 row a
matrix-vector kernel rounds differently (hence every path runs at least 2 rows); tf.nn.log_softmax breaks it from
8 rows on (hence logits - logsumexp), and the attention's softmax at another padded width (hence the translator's
fixed source widths). These tests check the outputs themselves, on the shipped checkpoints where they exist (the
shapes that matter) and on tiny ones otherwise: text with its per-character probabilities and top 5, translations
with attention and scores, captions with attention and scores.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from playground.batching import RequestBatcher, TextStreams

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints"
SETTINGS = [  # (prompt, temperature, top_k, top_p, seed): greedy, plain, top-k, top-p, both
    ("Ham.\n", 0.0, 0, 1.0, 1), ("KING.\nMy lords, ", 0.8, 0, 1.0, 2), ("Enter ", 1.2, 10, 1.0, 3),
    ("O Romeo", 1.0, 0, 0.9, 4), ("x", 0.5, 5, 0.8, 5)]


def checkpoint(tmp_path_factory, model: str) -> Path:
    """The shipped checkpoint of `model`, or a tiny one when it is not shipped."""
    if (SHIPPED / model / "config.json").is_file():
        return SHIPPED / model
    import importlib

    tiny = importlib.import_module(f"tests.tiny.{model}")
    return tiny.make(tmp_path_factory.mktemp("tiny") / model)


@pytest.fixture(scope="module")
def text_generator(tmp_path_factory):
    from trainers.char_rnn.generate import TextGenerator

    return TextGenerator.load(checkpoint(tmp_path_factory, "char_rnn"))


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    from trainers.nmt.translate import Translator

    return Translator.load(checkpoint(tmp_path_factory, "nmt"))


@pytest.fixture(scope="module")
def captioner(tmp_path_factory):
    from trainers.captioning.caption import Captioner

    return Captioner.load(checkpoint(tmp_path_factory, "captioning"))


def as_tuples(chunks) -> list:
    """Every character with its probability and top-5, as plain values compared exactly."""
    return [(step.char, step.probability, step.alternatives) for chunk in chunks for step in chunk]


def alone(generator, prompt, temperature, top_k, top_p, seed, length):
    return as_tuples(generator.chunks(prompt, length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed))


def test_text_streams_joining_at_different_times_write_what_they_write_alone(text_generator):
    """Five users with their own settings join a batch of others one round after another (the batch grows to
    the 32-row call, its order changes), and each gets its text, probabilities and top 5 exactly."""
    length = 150
    expected = [alone(text_generator, *setting, length) for setting in SETTINGS]
    rng = np.random.default_rng(0)
    others = [text_generator.start("The ", 500, temperature=float(rng.uniform(0, 2)), seed=int(rng.integers(1e6)))
              for _ in range(22)]
    active, mine, written = list(others[:3]), {}, {index: [] for index in range(len(SETTINGS))}
    for round_ in range(len(SETTINGS) + 3):
        if round_ < len(SETTINGS):
            prompt, temperature, top_k, top_p, seed = SETTINGS[round_]
            mine[round_] = text_generator.start(prompt, length, temperature=temperature, top_k=top_k, top_p=top_p,
                                                seed=seed)
            active.append(mine[round_])
        if round_ == 1:
            active += others[3:]  # 27 streams: the 32-row call
        if round_ == 2:
            active.reverse()
        for stream, chunk in zip(active, text_generator.advance(active)):
            for index, own in mine.items():
                if own is stream:
                    written[index].append(chunk)
        active = [stream for stream in active if not stream.finished]
    assert [as_tuples(written[index]) for index in range(len(SETTINGS))] == expected


@pytest.mark.parametrize("product", ["whole", "float"])
@pytest.mark.parametrize("transposed, parts", [(False, 2), (True, 2), (False, 16)],
                         ids=["plain", "turned", "plain-16-blocks"])
def test_a_kernel_cut_in_blocks_batches_as_it_writes_alone(tmp_path_factory, transposed, parts, product):
    """The app multiplies by the recurrent kernel in blocks side by side (KernelLayout: one per core where each op
    runs on one thread, 8 per core without AVX-512): a stream's text, probabilities and top 5 sharing a call with
    others are still exactly its lone ones, in both orientations of the product. "whole": in whole numbers, as
    `load` serves float32 (a lone stream at one row, no padding); "float": the float product, padded to
    BATCH_SIZES."""
    from trainers.char_rnn.generate import KernelLayout, TextGenerator, make_chunk_sampler

    loaded = TextGenerator.load(checkpoint(tmp_path_factory, "char_rnn"))
    if product == "whole" and not loaded.whole_numbers:
        pytest.skip("whole numbers serve float32 only, and this CPU serves bfloat16")
    generator = TextGenerator(loaded.model, loaded.vocabulary, precision=loaded.precision, frozen=True,
                              whole_numbers=product == "whole")
    matmul_dtype = generator.matmul_dtype
    if transposed and not KernelLayout.for_this_process(matmul_dtype).transposed:
        pytest.skip("the app turns the product around only in bfloat16 on a CPU with AMX, which this is not")
    generator._sample_chunk = make_chunk_sampler(generator.model, generator.alternatives, generator.chunk,
                                                 jit_compile=False, matmul_dtype=matmul_dtype, frozen=True,
                                                 layout=KernelLayout(transposed=transposed, parts=parts))
    length = 100
    expected = [alone(generator, *setting, length) for setting in SETTINGS]
    streams = [generator.start(prompt, length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
               for prompt, temperature, top_k, top_p, seed in SETTINGS]
    streams += [generator.start("The ", 300, temperature=0.9, seed=seed) for seed in range(11)]  # a 16-row call
    written = [[] for _ in SETTINGS]
    while not all(stream.finished for stream in streams[:len(SETTINGS)]):
        for index, chunk in enumerate(generator.advance(streams)):
            if index < len(SETTINGS):
                written[index].append(chunk)
    assert [as_tuples(chunks) for chunks in written] == expected


def test_the_scheduler_batches_users_and_one_leaving_disturbs_no_one(text_generator):
    """Real threads through the app's scheduler: users start at different moments, one closes its stream after
    two chunks (as Gradio does on Stop), the others still get exactly their lone text."""
    length = 200
    expected = {index: alone(text_generator, *setting, length) for index, setting in enumerate(SETTINGS)}
    streams = TextStreams()
    results: dict[int, list] = {}

    def user(index):
        time.sleep(0.05 * index)
        prompt, temperature, top_k, top_p, seed = SETTINGS[index]
        chunks = streams.stream(text_generator, text_generator.start(prompt, length, temperature=temperature,
                                                                     top_k=top_k, top_p=top_p, seed=seed))
        taken = []
        for chunk in chunks:
            taken.append(chunk)
            if index == 2 and len(taken) == 2:
                chunks.close()  # the user who leaves
                break
        results[index] = taken

    threads = [threading.Thread(target=user, args=(index,)) for index in range(len(SETTINGS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    left = as_tuples(results[2])  # two updates: two chunks (the first read the prompt too), or more if they came together
    assert 2 * text_generator.chunk - len(SETTINGS[2][0]) <= len(left) <= length and left == expected[2][:len(left)]
    for index in (0, 1, 3, 4):
        assert as_tuples(results[index]) == expected[index]
    assert streams.rows > streams.rounds  # some rounds carried several users
    deadline = time.monotonic() + 5
    while streams.open_streams() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert streams.open_streams() == 0  # the one who left is gone too


def test_streams_on_an_event_loop_write_what_they_write_alone(text_generator):
    """The Text tab's handler is a coroutine on Gradio's loop (`TextStreams.astream`): users on one loop get their
    lone text through the same scheduler, and one who stops after its first update (Gradio closes the generator)
    leaves the batch."""
    import asyncio

    length = 200
    users = (0, 1, 3)
    expected = {index: alone(text_generator, *SETTINGS[index], length) for index in users}
    streams = TextStreams()

    async def user(index, leave_after=None):
        prompt, temperature, top_k, top_p, seed = SETTINGS[index]
        chunks = streams.astream(text_generator, text_generator.start(prompt, length, temperature=temperature,
                                                                      top_k=top_k, top_p=top_p, seed=seed))
        taken = []
        async for chunk in chunks:
            taken.append(chunk)
            if len(taken) == leave_after:
                await chunks.aclose()
                break
        return taken

    async def together():
        return await asyncio.gather(user(0), user(1), user(3, leave_after=1))

    with ThreadPoolExecutor(1) as pool:  # a loop of its own (a browser test may leave one running in this thread)
        whole, other, left = pool.submit(asyncio.run, together()).result(timeout=120)
    assert as_tuples(whole) == expected[0] and as_tuples(other) == expected[1]
    left = as_tuples(left)
    assert 0 < len(left) < length and left == expected[3][:len(left)]
    assert streams.rows > streams.rounds  # rounds carried several users
    deadline = time.monotonic() + 5
    while streams.open_streams() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert streams.open_streams() == 0


def test_a_stream_whose_event_loop_closed_stops_no_one_else(text_generator):
    """An event loop that closes under an open stream (the app stopping) leaves the scheduler running for the
    streams of other threads: they still get their lone text."""
    import asyncio

    length = 200
    streams = TextStreams()

    def orphan_first_chunk():  # in a thread of its own: a browser test may leave a loop running in this one
        loop = asyncio.new_event_loop()
        orphan = streams.astream(text_generator, text_generator.start("The ", 2000, temperature=0.8, seed=9))
        chunk = loop.run_until_complete(orphan.__anext__())  # its first chunk; then its loop goes, still open
        loop.close()
        return chunk

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(orphan_first_chunk).result(timeout=120)
    prompt, temperature, top_k, top_p, seed = SETTINGS[1]
    result = {}

    def user():
        result["text"] = as_tuples(streams.stream(text_generator, text_generator.start(
            prompt, length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)))

    thread = threading.Thread(target=user)
    thread.start()
    thread.join(timeout=120)
    assert result.get("text") == alone(text_generator, *SETTINGS[1], length)


SPANISH = ["No se pudo abrir el archivo.", "¿Puedes ayudarme?", "Me gusta leer libros.",
           "Y habló Dios á Noé diciendo:", "El perro duerme bajo la mesa.", "Mañana vamos a la playa."]


def random_sentences(count: int) -> list[str]:
    words = "el perro gato casa libro mesa rey Dios dijo archivo abrir no se pudo leer mañana playa vamos a la".split()
    rng = random.Random(0)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 30))) + "." for _ in range(count)]


def test_batched_translations_equal_single_ones(translator):
    """Greedy translations of 40 sentences of 1 to 30 words (every source width), one batch or alone: the same
    words, attention and scores; a bad request in the batch gets its own error; beam search rides along."""
    from trainers.nmt.translate import TranslationInputError

    sentences = SPANISH + random_sentences(34) + ["No se pudo abrir el archivo. " * 12]  # the last is cut in parts
    expected = [translator.translate(sentence, "greedy") for sentence in sentences]
    for count in (3, 9, len(sentences)):
        assert translator.translate_many([{"text": sentence} for sentence in sentences[:count]]) \
            == expected[:count]
    mixed = translator.translate_many([{"text": SPANISH[0]}, {"text": "¡¿…?!"},
                                       {"text": SPANISH[1], "method": "beam", "beam": 3}, {"text": SPANISH[2]}])
    assert mixed[0] == expected[0] and mixed[3] == expected[2]
    assert isinstance(mixed[1], TranslationInputError)
    assert mixed[2] == translator.translate(SPANISH[1], "beam", beam=3)


def test_concurrent_translations_through_the_batcher_equal_sequential_ones(translator):
    batcher = RequestBatcher(window=0.02)
    sentences = random_sentences(24)
    expected = [translator.translate(sentence, "greedy") for sentence in sentences]
    with ThreadPoolExecutor(len(sentences)) as pool:
        answers = list(pool.map(lambda text: batcher.call(translator.translate_many, {"text": text}), sentences))
    assert answers == expected
    assert batcher.calls < len(sentences)  # requests shared calls


def test_batched_captions_equal_single_ones(captioner):
    pictures = sorted((SHIPPED / "captioning" / "examples").glob("*.jpg"))
    if pictures and captioner.encoder.locations == 49:
        features = [captioner.read(str(picture))["features"] for picture in pictures]
    else:
        rng = np.random.default_rng(0)
        features = [rng.random((captioner.encoder.locations, captioner.encoder.depth), np.float32)
                    for _ in range(12)]
    features = (features * 3)[:32]
    expected = [captioner.caption_features(row, beam=1) for row in features]
    for count in (3, 8, 12, 32):
        assert captioner.caption_features_many(features[:count]) == expected[:count]
    # Steered by detections (the tab's usual case) and not, mixed in one batch: each the same as alone.
    detections = [[{"label": "cat", "score": 0.9}], [], None, [{"label": "person", "score": 0.7},
                                                              {"label": "cup", "score": 0.5}]] * 3
    alone = [captioner.caption_features(row, beam=1, detections=found) for row, found in zip(features, detections)]
    assert captioner.greedy_many(list(zip(features, detections))) == alone
    assert all(("fusion" in result) == (found is not None) for result, found in zip(alone, detections))
    # beam 1 is the beam search of width 1 (the words and, to rounding, the score it always gave)
    ids, _, score = captioner.beam_ids(features[0], 1)
    assert expected[0]["words"] == captioner.vocabulary.decode(ids)
    assert expected[0]["score"] == pytest.approx(score, abs=1e-5)


def test_app_endpoints_answer_concurrent_calls_as_sequential_ones(app_url):
    """Eight users at once through gradio_client against a real app process: the same texts (and confidence
    spans) and translations as one after another."""
    from gradio_client import Client

    text_requests = [(prompt, 70, temperature, top_k, top_p, seed) for prompt, temperature, top_k, top_p, seed
                     in SETTINGS] + [("To be", 130, 0.9, 0, 1.0, 99), ("a", 10, 1.5, 3, 1.0, 8)]
    translate_requests = [(sentence, "Greedy", 5, 0.8, 0) for sentence in SPANISH]
    sequential_client = Client(app_url, verbose=False)
    expected_text = [sequential_client.predict(*request, api_name="/generate_text")[:2] for request in text_requests]
    expected_translations = [sequential_client.predict(*request, api_name="/translate")[0]
                             for request in translate_requests]

    def text(request):
        return Client(app_url, verbose=False).predict(*request, api_name="/generate_text")[:2]

    def translate(request):
        return Client(app_url, verbose=False).predict(*request, api_name="/translate")[0]

    with ThreadPoolExecutor(len(text_requests) + len(translate_requests)) as pool:
        texts = pool.map(text, text_requests)
        translations = pool.map(translate, translate_requests)
        assert list(texts) == expected_text
        assert list(translations) == expected_translations


def test_a_promoted_checkpoint_serves_new_streams_while_running_ones_finish_on_theirs(tmp_path):
    """Hot reload: the registry hands out a new generator once the folder is swapped; streams started before finish
    on the old model (their GRU state belongs to it), new ones write with the new one, through one scheduler."""
    import os
    import shutil

    import keras

    from playground import text_tab
    from playground.registry import Registry
    from tests.tiny import char_rnn as tiny
    from trainers.char_rnn.model import CharRNNConfig, build, save

    tiny.make(tmp_path / "char_rnn")
    registry, streams = Registry(tmp_path), TextStreams()
    old = registry.get(text_tab.MODEL, text_tab.load)
    results = {}

    def user(name, generator):
        chunks = streams.stream(generator, generator.start("To be", 640, temperature=0.9, seed=4))
        results[name] = "".join(step.char for chunk in chunks for step in chunk)

    first = threading.Thread(target=user, args=("old", old))
    first.start()
    keras.utils.set_random_seed(1)  # another model of the same shape, promoted by a folder swap
    save(tmp_path / "promoted", build(CharRNNConfig(old.vocabulary.size, embedding_dim=8, rnn_units=16)),
         old.vocabulary, metrics={"model": "char_rnn"})
    shutil.rmtree(tmp_path / "char_rnn")
    os.rename(tmp_path / "promoted", tmp_path / "char_rnn")
    new = registry.get(text_tab.MODEL, text_tab.load)
    assert new is not old
    user("new", new)
    first.join(timeout=60)
    assert results["old"] == old.generate("To be", 640, temperature=0.9, seed=4)
    assert results["new"] == new.generate("To be", 640, temperature=0.9, seed=4)
    assert results["old"] != results["new"]


def test_a_training_run_is_stopped_while_text_streams_are_written(text_generator, monkeypatch):
    """The scheduler computes its rounds inside `answering()` (playground/core_sharing.py): a run in a process
    group of its own stays stopped from the first chunk to the last, and trains again afterwards."""
    import subprocess
    import sys

    from playground import batching
    from playground.core_sharing import CoreSharing, state_of

    run = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        sharing = CoreSharing(watch_seconds=0.02, hold_seconds=0.2, pausing=True)
        monkeypatch.setattr(batching, "CORES", sharing)
        sharing.adopt(run.pid)
        streams = TextStreams()
        states = [state_of(run.pid) for _ in streams.stream(text_generator, text_generator.start(
            "Ham.\n", 300, temperature=0.8, top_k=0, top_p=1.0, seed=3))]
        assert len(states) >= 3 and set(states) == {"T"}, states
        deadline = time.monotonic() + 5
        while state_of(run.pid) == "T" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert state_of(run.pid) != "T" and sharing.pauses >= 1
    finally:
        run.kill()
        run.wait()
