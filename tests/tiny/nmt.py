"""A tiny, untrained Spanish→English checkpoint for app tests (deterministic: seeded initialisation)."""

from pathlib import Path

MODEL = "nmt"
PAIRS = [
    ("¿Todavía están en casa?", "Are they still at home?"),
    ("Y dijo Dios: sea la luz.", "And God said, let there be light."),
    ("El señor es mi pastor.", "The lord is my shepherd."),
    ("Los niños comen pan en la casa.", "The children eat bread in the house."),
]


def tokenizer():
    """A subword model learned from PAIRS alone (a few hundred pieces: bytes, characters and short pieces)."""
    from trainers.nmt import data
    from trainers.nmt.subword import SubwordTokenizer

    return SubwordTokenizer.train([data.source_text(s) for s, _ in PAIRS] + [data.target_text(e) for _, e in PAIRS],
                                  vocab_size=400)


def make(folder: Path) -> Path:
    import keras

    from trainers.nmt.model import Seq2SeqConfig, build, save

    keras.utils.set_random_seed(0)
    pieces = tokenizer()
    model = build(Seq2SeqConfig(pieces.size, pieces.size, embedding_dim=8, encoder_units=8, decoder_units=16,
                                attention_units=8, dropout=0.0, max_source_len=24, max_target_len=12))
    examples = [{"key": f"tiny/{i}", "spanish": s, "references": {"4": e}, "domain": "bible"}
                for i, (s, e) in enumerate(PAIRS)]
    return save(folder, model, pieces, metrics={"model": "nmt", "note": "tiny test model"}, examples=examples)
