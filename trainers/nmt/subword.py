"""Subword tokenisation for the translation model: one SentencePiece unigram model shared by Spanish and English.

Why SentencePiece (unigram, byte fallback) rather than words, `tokenizers` or `tensorflow-text`:
- every input has a representation: a word the model never saw is spelled in smaller pieces, and a character no
  training text had (emoji, another script) falls back to its UTF-8 bytes, so nothing is refused or read as
  `<unk>`, and the model never writes `<unk>` (it is forbidden at decoding time and never a training target);
- one model for both languages cuts a name the same way on both sides, so copying it is learnable (and the case
  of a name written in the Spanish is put back on the English word, see `restore_case`);
- a small C++ wheel with no dependencies, the same tokenisation in training and in the app, and the whole
  tokeniser is one file (`subword.model`, ~350 kB) beside the weights. `tensorflow-text` is tied to exact
  TensorFlow versions; `tokenizers` would do as well but needs more code for the same byte fallback.

Ids 0-3 are <pad>, <unk>, <start>, <end> (as the word vocabulary had them); the domain tags `<bible>` and
`<everyday>` are single pieces put before the Spanish, so one model writes scripture or plain English on request.
Importing this module does nothing; `SubwordTokenizer.train(...)` and `SubwordTokenizer.load(path)` do the work.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

MODEL_FILE = "subword.model"
PAD, UNK, START, END = 0, 1, 2, 3
DOMAIN_TAGS = {"bible": "<bible>", "everyday": "<everyday>"}
WORD_BOUNDARY = "\u2581"  # SentencePiece's "▁": a piece that starts a word


class SubwordTokenizer:
    """Text <-> ids with a SentencePiece model; `size`, `pad`, `unk`, `start`, `end` as a vocabulary has them."""

    pad, unk, start, end = PAD, UNK, START, END

    def __init__(self, model_bytes: bytes):
        import sentencepiece

        self.model_bytes = bytes(model_bytes)
        self.processor = sentencepiece.SentencePieceProcessor(model_proto=self.model_bytes)
        self.size = self.processor.get_piece_size()
        self.tags = {domain: self.processor.piece_to_id(tag) for domain, tag in DOMAIN_TAGS.items()}
        # Ids the decoder must never write: padding, start, unknown and the domain tags.
        self.never_written = sorted({PAD, START, UNK, *self.tags.values()})

    @classmethod
    def train(cls, sentences, vocab_size: int = 8000, seed_sentences: int = 400_000) -> "SubwordTokenizer":
        """Learns a unigram model from an iterable of (already normalised) sentences of both languages.

        `vocab_size` is an upper bound: on a tiny corpus the model is as large as the text allows.
        """
        import sentencepiece

        text = [sentence for sentence in sentences if sentence and sentence.strip()]
        if not text:
            raise ValueError("no text to learn subwords from")
        model = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(text), model_writer=model, model_type="unigram", vocab_size=int(vocab_size),
            hard_vocab_limit=False, byte_fallback=True, character_coverage=0.9995,
            normalization_rule_name="identity", remove_extra_whitespaces=True, split_digits=True,
            pad_id=PAD, unk_id=UNK, bos_id=START, eos_id=END,
            user_defined_symbols=list(DOMAIN_TAGS.values()), input_sentence_size=seed_sentences,
            shuffle_input_sentence=True, num_threads=1, minloglevel=2)
        return cls(model.getvalue())

    @classmethod
    def load(cls, path: Path) -> "SubwordTokenizer":
        return cls(Path(path).read_bytes())

    def save(self, path: Path) -> None:
        Path(path).write_bytes(self.model_bytes)

    # ---- text <-> ids ----

    def encode(self, text: str) -> list[int]:
        return list(self.processor.encode(str(text), out_type=int))

    def pieces(self, ids) -> list[str]:
        """Each id's piece as SentencePiece writes it: "▁casa" starts a word, "s" continues one, "<0xF0>" is a
        byte of a character no training text had."""
        return [self.processor.id_to_piece(int(i)) for i in ids]

    def decode(self, ids) -> str:
        return self.processor.decode([int(i) for i in ids if int(i) not in (PAD, START, END)])

    def tagged(self, text: str, domain: str) -> list[int]:
        """The encoder's input: the domain tag, then the text's pieces."""
        if domain not in self.tags:
            raise ValueError(f"unknown domain {domain!r}: use {' or '.join(self.tags)}")
        return [self.tags[domain]] + self.encode(text)


# ---------------------------------------------------------------- case

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*", re.UNICODE)


def names_in(text: str) -> dict[str, str]:
    """Words written with a capital inside a sentence (not after . ? ! or at the start): lower-case -> as written.
    "Me llamo Jorge y vivo en Quito." -> {"jorge": "Jorge", "quito": "Quito"}."""
    names = {}
    for match in _WORD.finditer(str(text)):
        word, before = match.group(), str(text)[: match.start()].rstrip(" \"'«“¿¡(")
        if word[:1].isupper() and before and before[-1] not in ".?!:" and word.lower() != word:
            names[word.lower()] = word
    return names


def restore_case(text: str, casing: dict[str, str] | None = None, source: str = "") -> str:
    """A lower-case English sentence as it is written: the first letter and "I" capitalised, words in `casing`
    (learned from the training text: "god" -> "God") and names written with a capital in the Spanish `source`
    ("jorge" -> "Jorge") written that way."""
    known = {**(casing or {}), **names_in(source)}

    def word_case(match: re.Match) -> str:
        word = match.group()
        if word == "i" or word.startswith("i'"):
            return "I" + word[1:]
        return known.get(word, word)

    text = _WORD.sub(word_case, str(text))
    return text[:1].upper() + text[1:]
