"""A tiny, untrained Spanish→English checkpoint for app tests (deterministic: seeded initialisation)."""

from pathlib import Path

MODEL = "nmt"
PAIRS = [
    ("¿Todavía están en casa?", "Are they still at home?"),
    ("Y dijo Dios: sea la luz.", "And God said, let there be light."),
    ("El señor es mi pastor.", "The lord is my shepherd."),
    ("Los niños comen pan en la casa.", "The children eat bread in the house."),
]


def make(folder: Path) -> Path:
    import keras

    from trainers.nmt import data
    from trainers.nmt.model import Seq2SeqConfig, build, save

    keras.utils.set_random_seed(0)
    source_vocab = data.WordVocabulary.build((data.source_tokens(s) for s, _ in PAIRS), min_count=1)
    target_vocab = data.WordVocabulary.build((data.target_tokens(e) for _, e in PAIRS), min_count=1)
    model = build(Seq2SeqConfig(source_vocab.size, target_vocab.size, embedding_dim=8, encoder_units=8,
                                decoder_units=16, attention_units=8, dropout=0.0, max_source_len=12,
                                max_target_len=8))
    examples = [{"key": f"tiny/{i}", "spanish": s, "references": {"4": e}} for i, (s, e) in enumerate(PAIRS)]
    return save(folder, model, source_vocab, target_vocab, metrics={"model": "nmt", "note": "tiny test model"},
                examples=examples)
