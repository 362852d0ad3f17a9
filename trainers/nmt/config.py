"""The translation model's training settings (no TensorFlow here: the app reads this module to build its form).

The defaults are the shipped configuration; every field is a flag of `python -m trainers.nmt.train`.
"""

from __future__ import annotations

import dataclasses

from trainers.common.config import RunConfig, flag, in_range, positive
from trainers.common.presets import QUICK_LOOK, SHIPPED, Measurement, Preset, shipped

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
    everyday_max_words: int = dataclasses.field(default=0, metadata={
        "help": "train and validate only on everyday pairs of at most this many words, either side (0: all of them; "
                "--max-words cuts the Bible segments)"})
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
        for name in ("max_pairs", "clip_norm", "validation_bleu_segments", "warmup_steps", "everyday_max_words"):
            problems += positive(flag(name), getattr(self, name), allow_zero=True)
        return problems


# The Training tab's presets (the first is its default). Measured with the CLI at nice 10, as the tab runs it:
# `python -m trainers.nmt.train --out /tmp/quick <the settings as flags>`, then `python -m playground.step_times`.
# From nothing, a subword translator takes far longer than 3 minutes to translate. The quick look trains on short
# segments (at most 6 words, the everyday pairs too) in full batches: 3 traces of the step where a run counted 6, so its
# 1,800 steps get from empty output through "The the the" to English phrases of the right kind ("And the sons of the
# Lord.", "References of the expression"), which are not yet translations. The shipped model itself was
# warm-started from a word-level model (metrics.json, "compute").
PRESETS = {
    QUICK_LOOK: Preset(
        QUICK_LOOK, "a quarter-size translator with a 2,000-piece vocabulary on segments of at most 6 words, 6 short "
                    "epochs of 300 steps: the loss falls from 7.6 to about 3.9 and the validation loss from 5.52 to "
                    "4.05, while the translations go from empty through \"The the the\" to English phrases of the "
                    "right kind (\"And the sons of the Lord.\", \"References of the expression\"), in under 3 "
                    "minutes on an idle machine; correct translations need far longer",
        {"epochs": 6, "steps_per_epoch": 300, "decoder_units": 128, "encoder_units": 64, "embedding_dim": 64,
         "attention_units": 64, "vocab_size": 2000, "validation_bleu_segments": 16, "max_words": 6,
         "everyday_max_words": 6},
        Measurement(seconds_per_step=0.0594, startup_seconds=43.8, epoch_seconds=3.0, steps_per_pass=None,
                    cpu="AMD EPYC", load="quiet (load average under 1; nothing else training)", date="2026-12-07",
                    wall_seconds=170.9, losses=(("loss", 7.6, 3.872),),
                    heldout=("validation_bleu_greedy", 0.0, 5.14),
                    note="AVX2-only EPYC (family 25 model 1); validation loss per epoch 5.516, 4.935, 4.500, 4.311, "
                         "4.142, 4.048; BLEU on 16 validation segments 0.0, 0.14, 4.02, 2.40, 5.13, 5.14; the "
                         "start-up holds 5 s of data and tokenizer and the first epoch's three traces (one per "
                         "padded length, 8-13 s each)")),
    # A warm-up of the shipped configuration (interrupted after 150 s, within its first epoch): one pass is 1,470
    # steps; the end of an epoch was not reached, so its evaluation is not in the estimate.
    SHIPPED: shipped("the shipped model's configuration: 12 passes over the Bible and everyday pairs with an "
                     "8,000-piece vocabulary (the served checkpoint was warm-started from a word-level model)",
                     Measurement(seconds_per_step=0.3106, startup_seconds=26.3, epoch_seconds=None,
                                 steps_per_pass=1470, cpu="AMD EPYC",
                                 load="another training run and a benchmark on both cores (load 5)",
                                 date="2026-12-04", losses=(("loss", 8.987, 5.428),),
                                 note="warm-up of 338 steps in float32")),
}
