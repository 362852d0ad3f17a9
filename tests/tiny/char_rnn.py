"""A tiny, untrained char-RNN checkpoint for app tests (deterministic: seeded initialisation)."""

from pathlib import Path

MODEL = "char_rnn"
TEXT = "To be, or not to be, that is the question.\nHam.\nWhat a piece of work is a man!\n"


def make(folder: Path) -> Path:
    import keras

    from trainers.char_rnn.data import CharVocabulary
    from trainers.char_rnn.model import CharRNNConfig, build, save

    keras.utils.set_random_seed(0)
    vocabulary = CharVocabulary.from_text(TEXT)
    model = build(CharRNNConfig(vocab_size=vocabulary.size, embedding_dim=8, rnn_units=16))
    return save(folder, model, vocabulary, metrics={"model": "char_rnn", "note": "tiny test model"})
