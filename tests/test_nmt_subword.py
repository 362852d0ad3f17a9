"""The translation model's subword tokeniser: any Unicode text encodes and decodes, names survive, tags and
special ids are where the model expects them. Tiny models learned here from a few sentences."""

from __future__ import annotations

import re

import pytest

from trainers.nmt import subword


@pytest.fixture(scope="module")
def tokenizer():
    from tests.tiny import nmt as tiny_nmt

    return tiny_nmt.tokenizer()


UNICODE = ["hola", "¿Dónde está Zoë?", "Nguyễn Thị Minh Khai 17", "東京は遠い", "مرحبا بالعالم", "Привет, мир!",
           "😀 🐶 🇪🇸 👩‍👩‍👧", "a\u0301rbol (NFD)", "tab\tand  double  spaces", "\u200b zero width", "x" * 300,
           "ñandú, pingüino, cigüeña", "<unk> <pad> <bible> written by a user", "€ 3,50 · 100 % · ½"]


@pytest.mark.parametrize("text", UNICODE)
def test_any_unicode_text_round_trips_without_unknown_pieces(tokenizer, text):
    ids = tokenizer.encode(text)
    assert ids and tokenizer.unk not in ids
    assert tokenizer.decode(ids) == re.sub(" +", " ", text).strip()  # SentencePiece only collapses spaces


def test_domain_tag_comes_first(tokenizer):
    ids = tokenizer.tagged("hola", "bible")
    assert ids[0] == tokenizer.tags["bible"] and tokenizer.decode(ids[1:]) == "hola"
    with pytest.raises(ValueError, match="unknown domain"):
        tokenizer.tagged("hola", "legal")


def test_special_ids_and_never_written_ids(tokenizer):
    assert (tokenizer.pad, tokenizer.unk, tokenizer.start, tokenizer.end) == (0, 1, 2, 3)
    assert set(tokenizer.never_written) == {0, 1, 2, *tokenizer.tags.values()}
    assert tokenizer.end not in tokenizer.never_written
    assert tokenizer.decode([tokenizer.start, *tokenizer.encode("casa"), tokenizer.end, 0, 0]) == "casa"


def test_unseen_characters_fall_back_to_bytes(tokenizer):
    pieces = tokenizer.pieces(tokenizer.encode("🐶"))
    assert pieces and all(piece.startswith("<0x") or piece == "\u2581" for piece in pieces)


def test_save_and_load_give_the_same_pieces(tokenizer, tmp_path):
    tokenizer.save(tmp_path / "subword.model")
    again = subword.SubwordTokenizer.load(tmp_path / "subword.model")
    for text in UNICODE:
        assert again.encode(text) == tokenizer.encode(text)


def test_vocab_size_is_an_upper_bound_on_tiny_text():
    tiny = subword.SubwordTokenizer.train(["uno dos tres", "one two three"], vocab_size=8000)
    assert 260 < tiny.size < 8000
    with pytest.raises(ValueError, match="no text"):
        subword.SubwordTokenizer.train(["", "  "])


def test_names_written_in_the_spanish_keep_their_case_in_the_english():
    assert subword.names_in("Me llamo Jorge y vivo en Quito. Hoy") == {"jorge": "Jorge", "quito": "Quito"}
    assert subword.names_in("¿Conoces a María?") == {"maría": "María"}
    assert subword.names_in("Hola. Buenos días") == {}  # capitals that start a sentence are not names
    assert subword.restore_case("my name is jorge and i live in quito.", {}, "Me llamo Jorge y vivo en Quito.") \
        == "My name is Jorge and I live in Quito."
    assert subword.restore_case("and god said to noah", {"god": "God"}, "") == "And God said to noah"
    assert subword.restore_case("", {}, "") == ""


def test_names_survive_the_tokeniser_and_the_case_step(tokenizer):
    for name in ("Jorge", "Zoë", "Nguyễn", "Xóchitl", "Ødegaard"):
        text = f"me llamo {name.lower()}"
        assert tokenizer.decode(tokenizer.encode(text)) == text
        assert subword.restore_case(text, {}, f"Me llamo {name}.").endswith(name)


def test_warm_start_copies_recurrent_weights_and_whole_word_rows(tokenizer):
    import keras
    import numpy as np

    from trainers.nmt.model import Seq2SeqConfig, build
    from trainers.nmt.warm_start import transplant, word_rows

    pieces = [tokenizer.processor.id_to_piece(i) for i in range(tokenizer.size)]
    whole = next(p for p in pieces if p.startswith("\u2581") and len(p) > 2)
    old_source = ["<pad>", "<unk>", "<start>", "<end>", "zzz", whole[1:]]
    old_target = ["<pad>", "<unk>", "<start>", "<end>", whole[1:], ",", "yyy"]
    mapping = word_rows(pieces, old_target)
    assert mapping[pieces.index(whole)] == 4 and all(mapping[i] == i for i in range(4))
    if "," in pieces:
        assert mapping[pieces.index(",")] == 5
    keras.utils.set_random_seed(3)
    sizes = dict(embedding_dim=8, encoder_units=8, decoder_units=16, attention_units=8, dropout=0.0)
    old = build(Seq2SeqConfig(len(old_source), len(old_target), **sizes))
    new = build(Seq2SeqConfig(tokenizer.size, tokenizer.size, **sizes))
    transplant(old, old_source, old_target, new, tokenizer)
    for before, after in zip(old.weights, new.weights):
        if before.shape == after.shape:
            np.testing.assert_array_equal(before.numpy(), after.numpy())
    np.testing.assert_array_equal(new.encoder.embedding.embeddings.numpy()[pieces.index(whole)],
                                  old.encoder.embedding.embeddings.numpy()[5])
    np.testing.assert_array_equal(new.decoder.logits.kernel.numpy()[:, pieces.index(whole)],
                                  old.decoder.logits.kernel.numpy()[:, 4])
