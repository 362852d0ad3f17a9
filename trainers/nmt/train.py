"""Train the Spanish→English attention model.

    python -m trainers.nmt.train                          # offline Bible pairs, the shipped configuration
    python -m trainers.nmt.train --source canonical       # Anki spa-eng (falls back to offline without internet)
    python -m trainers.nmt.train --epochs 3 --decoder-units 128 --out runs/small
    python -m trainers.nmt.train --out runs/more --init-from checkpoints/nmt --epochs 12   # continue the shipped model

Batches are bucketed by length (a few padded lengths, so a few tf.function traces and little padding). Every
epoch ends with the held-out (validation) loss and accuracy, greedy corpus BLEU on the validation chapters,
sample translations, the servable checkpoint `<out>/checkpoint` (weights, vocabularies, casing, examples,
metrics) and the resume state `<out>/resume`; running the same command again resumes. `<out>/best/` keeps the
epoch with the best validation BLEU so far (servable too). The test split is scored only by
`python -m trainers.nmt.evaluate` (greedy and beam search, multi- and single-reference BLEU). The run itself
(resume, --init-from, --strategy, progress) is `trainers.common.run`; this file is only what is the translation
model's own. `--eager` runs the training step without tf.function, for debugging.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import keras
import tensorflow as tf

from trainers.common import checkpoint, cli, run, seq2seq
from trainers.nmt import data
from trainers.nmt.config import BUCKETS, MAIN_SETTINGS, RUN_CHECKPOINT, SOURCES, TrainConfig  # noqa: F401
from trainers.nmt.model import Seq2SeqConfig, build, count_parameters, save, write_files
from trainers.nmt.subword import SubwordTokenizer
from trainers.nmt.translate import Translator, corpus_bleu

BEST_CHECKPOINT = "best"
BATCH_SPEC = tuple(tf.TensorSpec(shape=(None, None), dtype=tf.int32) for _ in range(3))  # source, input, target


def make_train_step(model, optimizer, clip_norm: float, eager: bool):
    """`step(context, decoder_input, decoder_target)`: one teacher-forced update (see trainers.common.seq2seq)."""
    return seq2seq.make_teacher_forced_step(model, optimizer, clip_norm, eager)


def make_eval_step(model, eager: bool):
    """`step(source, decoder_input, decoder_target)` -> (loss sum in nats, real target tokens, correct ones)."""
    def eval_step(source, decoder_input, decoder_target):
        logits, _ = model(source, decoder_input, training=False)  # (batch, tgt_len, vocab)
        return seq2seq.masked_sums(decoder_target, logits)

    return eval_step if eager else tf.function(eval_step)


def evaluate_loss(eval_step, encoded, batch_size: int) -> tuple[float, float]:
    """(mean loss in nats per target token, token accuracy) over every pair of `encoded`."""
    total, count, hits = 0.0, 0.0, 0.0
    for batch in data.batches(encoded, batch_size, BUCKETS, shuffle=False):
        batch_total, batch_count, batch_hits = eval_step(*batch)
        total, count, hits = total + float(batch_total), count + float(batch_count), hits + float(batch_hits)
    return total / max(count, 1.0), hits / max(count, 1.0)


def test_examples(examples, limit: int = 40) -> list[dict]:
    """Short held-out test segments with their references, for the tab's clickable examples."""
    chosen = []
    for example in examples:
        words = len(example.source.split())
        if 3 <= words <= 11:
            chosen.append({"key": example.key, "spanish": example.source, "references": example.references,
                           "domain": example.domain})
    step = max(len(chosen) // limit, 1)
    return chosen[::step][:limit]


@keras.saving.register_keras_serializable(package="nmt")
class WarmupEpochDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`learning_rate * lr_decay ** (epoch - 1)`, warmed up linearly over the first `warmup_steps` steps of the run.

    A function of the optimizer's step count, so a resumed optimizer carries on where it stopped. `start_epoch` and
    `start_step` are where the optimizer's first step falls in the run's count (non-zero after --init-from, whose
    optimizer starts fresh but whose epochs and steps carry on); variables, so the resume checkpoint keeps them.
    """

    def __init__(self, learning_rate: float, lr_decay: float, warmup_steps: int, steps_per_epoch: int,
                 start_epoch: int = 0, start_step: int = 0):
        self.learning_rate = float(learning_rate)
        self.lr_decay = float(lr_decay)
        self.warmup_steps = int(warmup_steps)
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self.start_epoch = tf.Variable(int(start_epoch), dtype=tf.int64, trainable=False, name="start_epoch")
        self.start_step = tf.Variable(int(start_step), dtype=tf.int64, trainable=False, name="start_step")

    def epoch_rate(self, epoch: int) -> float:
        """The learning rate of (1-based) `epoch` after the warm-up."""
        return self.learning_rate * self.lr_decay ** (epoch - 1)

    def __call__(self, step):
        step = tf.cast(step, tf.int64)  # updates this optimizer has applied
        epoch_index = tf.cast(self.start_epoch + step // self.steps_per_epoch, tf.float32)  # epoch - 1
        rate = self.learning_rate * tf.pow(tf.constant(self.lr_decay, tf.float32), epoch_index)
        if self.warmup_steps > 0:  # a gentle start keeps the tanh units from saturating early
            run_step = tf.cast(self.start_step + step, tf.float32)
            rate *= tf.minimum((run_step + 1.0) / float(self.warmup_steps), 1.0)
        return rate

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "lr_decay": self.lr_decay, "warmup_steps": self.warmup_steps,
                "steps_per_epoch": self.steps_per_epoch, "start_epoch": int(self.start_epoch.numpy()),
                "start_step": int(self.start_step.numpy())}


def epoch_batches(encoded, batch_size: int, seed: int):
    """An epoch's bucketed batches without end, each of `batch_size` rows: when one shuffled pass runs out,
    another starts, seeded with `seed` plus the number of batches given so far."""
    given = 0
    while True:
        for batch in data.batches(encoded, batch_size, BUCKETS, seed=seed + given, full=True):
            given += 1
            yield batch


class NMTRecipe(run.Recipe):
    name = "nmt"
    loss_names = ("loss", "accuracy")

    def prepare(self, start: Path | None) -> None:
        config = self.config
        started = time.monotonic()
        self.corpus = data.load_corpus(config.source, config.max_words)
        if config.everyday_max_words:
            self.corpus = data.short_everyday(self.corpus, config.everyday_max_words)
        pairs = data.training_pairs(self.corpus.train, everyday_repeats=config.everyday_repeats,
                                    bible_references=config.bible_references)
        if config.max_pairs:
            pairs = pairs[: config.max_pairs]
        if start is not None:
            checkpoint.require_folder(start, (checkpoint.CONFIG_FILE, checkpoint.WEIGHTS_FILE, data.VOCAB_FILE))
            self.tokenizer = SubwordTokenizer.load(start / data.VOCAB_FILE)
        else:
            self.tokenizer = SubwordTokenizer.train(data.tokenizer_text(self.corpus.train), config.vocab_size)
        self.encoded = data.encode_pairs(pairs, self.tokenizer, config.max_pieces, config.max_pieces)
        validation = self.corpus.validation + self.corpus.everyday_validation
        self.validation_encoded = data.encode_pairs(data.training_pairs(validation), self.tokenizer,
                                                    config.max_pieces, config.max_pieces)
        if not self.encoded:
            raise ValueError("no training pairs are left after filtering; raise --max-words or --max-pieces")
        batches_per_pass = sum(1 for _ in data.batches(self.encoded, config.batch_size, BUCKETS, shuffle=False))
        self.steps_per_epoch = config.steps_per_epoch or batches_per_pass
        self.casing = data.learn_casing(english for example in self.corpus.train if example.domain == "bible"
                                        for english in example.references.values())
        # The tab's clickable examples (never scored here): everyday test pairs first, then Bible test segments.
        self.examples = test_examples(self.corpus.everyday_test, 24) + test_examples(self.corpus.test, 16)
        self.validation_bleu_sets = {
            "validation_bleu_greedy": (self.corpus.validation[: config.validation_bleu_segments], "bible"),
            "validation_bleu_everyday": (self.corpus.everyday_validation[: config.validation_bleu_segments],
                                         "everyday")}
        # The everyday samples of every epoch: four spread over those within --max-words (the Bible segments are
        # cut to it; the everyday pairs are not), so a quick look's short segments meet short everyday ones.
        short = [e for e in self.corpus.everyday_validation if data.words(e) <= config.max_words]
        self.shown_everyday = short[:: max(len(short) // 4, 1)][:4]
        if not self.corpus.everyday_validation and config.source == "offline":
            self.log("no everyday text found (install the Debian packages tuxpaint-stamps-default, "
                     "asterisk-core-sounds-es, asterisk-core-sounds-en, dict-freedict-spa-eng, "
                     "dict-freedict-eng-spa): training on the Bible alone")
        self.log(f"{len(self.encoded)} training pairs, {len(self.validation_encoded)} validation pairs, "
                 f"{self.tokenizer.size} subword pieces; {self.steps_per_epoch} steps "
                 f"per epoch (data ready in {time.monotonic() - started:.0f} s)")

    def model_config(self) -> dict:
        config = self.config
        return dataclasses.asdict(Seq2SeqConfig(
            self.tokenizer.size, self.tokenizer.size, config.embedding_dim, config.encoder_units,
            config.decoder_units, config.attention_units, config.dropout, max_source_len=2 * BUCKETS[-1],
            max_target_len=2 * BUCKETS[-1]))

    def build(self) -> None:
        config = self.config
        self.model = build(Seq2SeqConfig(**self.model_config()))
        self.schedule = WarmupEpochDecay(config.learning_rate, config.lr_decay, config.warmup_steps,
                                         self.steps_per_epoch)
        self.optimizer = keras.optimizers.Adam(self.schedule)
        self.optimizer.build(self.model.trainable_variables)
        self.eval_step = make_eval_step(self.model, config.eager)
        self.translator = Translator(self.model, self.tokenizer, self.casing)

    def trackables(self) -> dict:
        return {"model": self.model, "optimizer": self.optimizer, "schedule_start_epoch": self.schedule.start_epoch,
                "schedule_start_step": self.schedule.start_step}

    def load_servable(self, folder: Path) -> None:
        checkpoint.load_weights(self.model, folder)
        # Adam starts with fresh moments; the learning rate carries on from the folder's epochs and steps.
        previous = run.RunFolder.state_from_servable(folder)
        self.schedule.start_epoch.assign(previous.epoch)
        self.schedule.start_step.assign(previous.step)

    def start_event(self) -> dict:
        return {"corpus": {k: v for k, v in self.corpus.description.items() if k != "test_chapter_list"},
                "parameters": count_parameters(self.model)}

    def dataset(self, epoch: int) -> tf.data.Dataset:
        encoded, batch_size, seed = self.encoded, self.config.batch_size, run.epoch_seed(self.config, epoch)
        batches = tf.data.Dataset.from_generator(lambda: epoch_batches(encoded, batch_size, seed),
                                                 output_signature=BATCH_SPEC)
        # The prefetch keeps the generator's work beside the steps (run.epoch_dataset turns autotuning off).
        return run.take_steps(batches, self.steps_per_epoch).prefetch(2)

    def train_step(self, batch) -> dict:
        source, decoder_input, decoder_target = batch
        return seq2seq.teacher_forced_update(self.model, self.optimizer, source, decoder_input, decoder_target,
                                             self.config.clip_norm)

    def end_epoch(self, epoch: int, losses: dict) -> tuple[dict, dict]:
        validation_loss, validation_accuracy = evaluate_loss(self.eval_step, self.validation_encoded, 256)
        metrics = {"train_loss": losses["loss"], "train_accuracy": losses["accuracy"],
                   "validation_loss": validation_loss, "validation_accuracy": validation_accuracy,
                   "learning_rate": self.schedule.epoch_rate(epoch)}
        for name, (examples, domain) in self.validation_bleu_sets.items():  # validation only: test is evaluate.py's
            if examples:
                hypotheses = self.translator.translate_batch([e.source for e in examples], domain=domain)
                metrics[name] = corpus_bleu(hypotheses, [e.references for e in examples])
        shown = self.corpus.validation[:3] + self.shown_everyday
        samples = [self.translator.translate_batch([e.source], domain=e.domain)[0] for e in shown]
        # The best epoch so far (the mean greedy validation BLEU of the Bible and everyday validation sets, or the
        # validation loss without them): kept in state.json, its folder written once the epoch is saved.
        bleus = [metrics[name] for name in self.validation_bleu_sets if name in metrics]
        score = sum(bleus) / len(bleus) if bleus else -validation_loss
        best = self.extra_state.get("best")
        self.new_best = best is None or score > best["score"]
        if self.new_best:
            self.extra_state["best"] = {"epoch": epoch, "score": score, "on": "mean validation BLEU (Bible, "
                                        "everyday)" if bleus else "-validation_loss"}
        return metrics, {"rows": [[e.source, h] for e, h in zip(shown, samples)]}

    def summary_metrics(self, state: run.RunState, metrics: dict) -> dict:
        return {
            "model": "nmt",
            "validation_loss": round(metrics["validation_loss"], 4),
            "validation_accuracy": round(metrics["validation_accuracy"], 4),
            "validation_bleu_greedy": metrics.get("validation_bleu_greedy"),
            "validation_bleu_everyday": metrics.get("validation_bleu_everyday"),
            "data": {**self.corpus.description, "train_pairs_used": len(self.encoded),
                     "max_pieces": self.config.max_pieces, "everyday_repeats": self.config.everyday_repeats,
                     "origin_repeats": data.ORIGIN_REPEATS,
                     "bible_references": self.config.bible_references},
            "tokenizer": {"kind": "SentencePiece unigram, byte fallback, shared by Spanish and English",
                          "pieces": self.tokenizer.size},
            "epochs": state.epoch,
            "steps": state.step,
            "steps_per_epoch": self.steps_per_epoch,
            "batch_size": self.config.batch_size,
            "buckets": list(BUCKETS),
            "parameters": count_parameters(self.model),
            "precision": self.config.precision,
            "wall_time_seconds": round(state.elapsed_seconds, 1),
            "history": state.history,
            "note": "test-split BLEU is added by `python -m trainers.nmt.evaluate`",
        }

    def write_servable(self, folder: Path, metrics: dict) -> None:
        write_files(folder, self.model, self.tokenizer, metrics, casing=self.casing, examples=self.examples)

    def after_epoch_saved(self, epoch: int, state: run.RunState, metrics: dict) -> None:
        if self.new_best:
            save(Path(self.config.out) / BEST_CHECKPOINT, self.model, self.tokenizer, state.metrics,
                 casing=self.casing, examples=self.examples)


def train(config: TrainConfig, stream=None) -> dict:
    """Runs (or resumes) a training run and returns its final metrics."""
    return run.fit(NMTRecipe(config, stream))


def summary(metrics: dict, config: TrainConfig) -> str:
    return (f"validation BLEU (greedy) {metrics.get('validation_bleu_greedy')}; checkpoint in "
            f"{Path(config.out) / RUN_CHECKPOINT}")


def main(argv=None) -> None:
    cli.run_training(__doc__, TrainConfig, train, summary, argv)


if __name__ == "__main__":
    main()
