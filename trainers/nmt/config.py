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
BUCKETS = (12, 18, 26, 40)  # padded lengths in subword pieces (the source's domain tag included)
# The held-out score the Training tab compares before promoting a run over the served checkpoint:
# (metrics.json key, which way is better, label).
PROMOTION_METRIC = ("validation_bleu_greedy", "higher", "validation BLEU (greedy)")


@dataclasses.dataclass
class TrainConfig(RunConfig):
    SOURCES = SOURCES

    source: str = dataclasses.field(default="offline", metadata={
        "help": "offline (Bible + everyday text from Debian packages) or canonical (Anki)"})
    out: str = dataclasses.field(default="runs/nmt", metadata={"help": "run folder"})
    epochs: int = 12
    batch_size: int = dataclasses.field(default=64, metadata={"help": "global batch (split across replicas)"})
    learning_rate: float = dataclasses.field(default=1e-3, metadata={"help": "peak learning rate"})
    precision: str = dataclasses.field(default="float32", metadata={
        "help": "float32 or mixed_bfloat16 (faster, but saturated tanh units cannot recover in bfloat16)"})
    max_words: int = dataclasses.field(default=15, metadata={"help": "longest segment kept, in words"})
    max_pieces: int = dataclasses.field(default=BUCKETS[-1], metadata={
        "help": f"longest pair kept, in subword pieces (the source with its domain tag, the target with its end "
                f"token), at most {BUCKETS[-1]}; batches are padded to the first of {', '.join(map(str, BUCKETS))} "
                "that fits, and each padded length costs the training step one tf.function trace"})
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
        problems += in_range("max-pieces", self.max_pieces, BUCKETS[0], BUCKETS[-1])
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
        QUICK_LOOK, "a quarter-size translator with a 2,000-piece vocabulary on segments of at most 6 words and 18 "
                    "subword pieces, 6 short epochs of 300 steps: the loss falls from 7.6 to about 4.0 and the "
                    "validation loss from 5.50 to 4.03, while the translations go from empty through \"The the the\" "
                    "to English phrases of the right kind (\"And the Lord is bed.\", \"Show references\"), in under "
                    "3 minutes on an idle machine; correct translations need far longer",
        {"epochs": 6, "steps_per_epoch": 300, "decoder_units": 128, "encoder_units": 64, "embedding_dim": 64,
         "attention_units": 64, "vocab_size": 2000, "validation_bleu_segments": 16, "max_words": 6,
         "everyday_max_words": 6, "max_pieces": 18},
        Measurement(seconds_per_step=0.0762, startup_seconds=18.0, epoch_seconds=1.8, steps_per_pass=None,
                    cpu="AMD EPYC", load="quiet (load average 1.7 before, from the runs before it; nothing else "
                    "training)", date="2026-12-08", wall_seconds=167.6, losses=(("loss", 7.601, 3.969),),
                    heldout=("validation_bleu_greedy", 0.0, 11.1),
                    note="AVX2-only EPYC (family 25 model 1); validation loss per epoch 5.505, 4.896, 4.479, 4.261, "
                         "4.134, 4.034; BLEU on 16 validation segments 0.0, 0.37, 2.58, 2.13, 4.64, 11.1; "
                         "--max-pieces 18 keeps 98.6 % of the pairs and two padded lengths (12, 18), so the training "
                         "step is traced twice: start-up 18.0-26.5 s against 39.7 s with all four lengths. Before "
                         "tf.data's autotuning was turned off for this dataset, three runs of these settings took "
                         "162.4-205.5 s: the last epoch's iterator waited 17-21 s for a thread at 0-1 epoch starts "
                         "(at 4 of 5 in a fourth, watched by py-spy)")),
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
