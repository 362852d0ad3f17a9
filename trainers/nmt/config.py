"""The translation model's training settings (no TensorFlow here: the app reads this module to build its form).

The defaults are the shipped configuration; every field is a flag of `python -m trainers.nmt.train`.
"""

from __future__ import annotations

import dataclasses

from trainers.common.config import RunConfig, flag, in_range, positive

RUN_CHECKPOINT = "checkpoint"
# What the app's Training tab offers for this model (besides epochs): data sources and main settings.
SOURCES = ("offline", "canonical")
MAIN_SETTINGS = ("decoder_units", "batch_size", "learning_rate", "max_words")
# The held-out score the Training tab compares before promoting a run over the served checkpoint:
# (metrics.json key, which way is better, label).
PROMOTION_METRIC = ("validation_bleu_greedy", "higher", "validation BLEU (greedy)")


@dataclasses.dataclass
class TrainConfig(RunConfig):
    SOURCES = SOURCES

    source: str = dataclasses.field(default="offline", metadata={"help": "offline (Bible + everyday text from Debian packages) or canonical (Anki)"})
    out: str = dataclasses.field(default="runs/nmt", metadata={"help": "run folder"})
    epochs: int = 12
    batch_size: int = dataclasses.field(default=64, metadata={"help": "global batch (split across replicas)"})
    learning_rate: float = dataclasses.field(default=1e-3, metadata={"help": "peak learning rate"})
    precision: str = dataclasses.field(default="float32", metadata={
        "help": "float32 or mixed_bfloat16 (faster, but saturated tanh units cannot recover in bfloat16)"})
    max_words: int = dataclasses.field(default=15, metadata={"help": "longest segment kept, in words"})
    embedding_dim: int = 128
    encoder_units: int = dataclasses.field(default=128, metadata={"help": "per direction"})
    decoder_units: int = 256
    attention_units: int = 128
    dropout: float = 0.15
    vocab_size: int = dataclasses.field(default=8000, metadata={"help": "subword pieces (Spanish and English)"})
    everyday_repeats: int = dataclasses.field(default=2, metadata={
        "help": "times each everyday pair is trained on per pass (Tux Paint and Asterisk 3x that)"})
    bible_references: int = dataclasses.field(default=3, metadata={
        "help": "English versions of each Bible segment trained on (1-3)"})
    lr_decay: float = dataclasses.field(default=0.92, metadata={"help": "learning rate factor per epoch"})
    warmup_steps: int = dataclasses.field(default=400, metadata={"help": "linear learning-rate warm-up"})
    clip_norm: float = dataclasses.field(default=1.0, metadata={"help": "global gradient-norm clip (0: off)"})
    max_pairs: int = dataclasses.field(default=0, metadata={"help": "use only this many training pairs (0: all)"})
    validation_bleu_segments: int = dataclasses.field(default=400, metadata={"help": "0: skip validation BLEU"})

    def validate(self) -> list[str]:
        problems = super().validate()
        for name in ("max_words", "embedding_dim", "encoder_units", "decoder_units", "attention_units", "vocab_size",
                     "everyday_repeats"):
            problems += positive(flag(name), getattr(self, name))
        problems += in_range("max-words", self.max_words, 1, 24)
        problems += in_range("bible-references", self.bible_references, 1, 3)
        problems += in_range("vocab-size", self.vocab_size, 300, 32000)
        problems += in_range("dropout", self.dropout, 0.0, 0.9)
        problems += in_range("lr-decay", self.lr_decay, 0.01, 1.0)
        for name in ("max_pairs", "clip_norm", "validation_bleu_segments", "warmup_steps"):
            problems += positive(flag(name), getattr(self, name), allow_zero=True)
        return problems
