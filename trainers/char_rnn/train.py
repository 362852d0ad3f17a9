"""Train the character-level GRU.

    python -m trainers.char_rnn.train                       # offline Shakespeare, the shipped configuration
    python -m trainers.char_rnn.train --source canonical    # Tiny Shakespeare (falls back to offline)
    python -m trainers.char_rnn.train --text-file mine.txt --epochs 5 --rnn-units 256 --out runs/mine

Every epoch ends with the held-out loss (nats/char and bits/char), a sample of generated text, the servable
checkpoint `<out>/checkpoint` and the resume state `<out>/resume`; running the same command again resumes.
The run itself (resume, --init-from, --strategy, progress) is `trainers.common.run`; this file is only what is
the character model's own. `--eager` runs the training step without tf.function, for debugging.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import keras
import tensorflow as tf

from trainers.char_rnn import data
from trainers.char_rnn.config import MAIN_SETTINGS, RUN_CHECKPOINT, SOURCES, TrainConfig  # noqa: F401
from trainers.char_rnn.generate import TextGenerator
from trainers.char_rnn.model import CharRNNConfig, build, count_parameters, write_files
from trainers.common import checkpoint, cli, run


def sequence_loss(targets, logits):
    """(sum of the per-character cross-entropies in nats, number of characters) of one batch."""
    per_char = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)  # (batch, seq_len)
    return tf.reduce_sum(per_char), tf.cast(tf.size(per_char), tf.float32)


def update(model, optimizer, inputs, targets, clip_norm: float) -> dict:
    """One training step on a (replica's share of a) batch: forward, loss, gradients, optimizer update."""
    with tf.GradientTape() as tape:
        logits, _ = model(inputs, training=True)  # (batch, seq_len, vocab)
        loss = run.global_mean(*sequence_loss(targets, logits))
    gradients = tape.gradient(loss, model.trainable_variables)
    run.apply_gradients(optimizer, gradients, model.trainable_variables, clip_norm)
    return {"loss": loss}


def make_train_step(model, optimizer, clip_norm: float, eager: bool):
    """`step(inputs, targets)` outside a run (tests, benchmarks); compiled with tf.function unless `eager`."""
    def train_step(inputs, targets):
        return update(model, optimizer, inputs, targets, clip_norm)

    return train_step if eager else tf.function(train_step)


def make_eval_step(model, eager: bool):
    def eval_step(inputs, targets):
        logits, _ = model(inputs, training=False)  # (batch, seq_len, vocab)
        return sequence_loss(targets, logits)

    return eval_step if eager else tf.function(eval_step)


def evaluate(eval_step, dataset) -> float:
    """Mean held-out loss in nats per character over every held-out position."""
    total, count = 0.0, 0.0
    for inputs, targets in dataset:
        batch_total, batch_count = eval_step(inputs, targets)
        total += float(batch_total)
        count += float(batch_count)
    return total / max(count, 1.0)


def learning_rate_schedule(config: TrainConfig, total_steps: int):
    warmup = min(config.warmup_steps, max(total_steps // 10, 1))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * 0.1, decay_steps=max(total_steps - warmup, 1),
        alpha=config.min_lr_fraction, warmup_target=config.learning_rate, warmup_steps=warmup)


class CharRNNRecipe(run.Recipe):
    name = "char_rnn"
    sampler: TextGenerator | None = None  # made at the first epoch's end

    def prepare(self, start: Path | None) -> None:
        config = self.config
        self.corpus = data.load_corpus(config.source, config.text_file or None)
        train_text = self.corpus.train_text[: config.max_chars] if config.max_chars else self.corpus.train_text
        self.vocabulary = (data.CharVocabulary.load(start / data.VOCAB_FILE) if start is not None
                           else data.CharVocabulary.from_text(train_text))
        self.train_ids = self.vocabulary.encode(train_text)
        heldout_ids = self.vocabulary.encode(self.corpus.heldout_text)
        self.heldout_set = data.sequence_dataset(heldout_ids, config.seq_len, config.batch_size, shuffle=False,
                                                 drop_remainder=False)
        batches_per_pass = len(self.train_ids) // (config.seq_len + 1) // config.batch_size
        if batches_per_pass == 0:
            raise ValueError(f"the training text ({len(self.train_ids)} characters) is smaller than one batch of "
                             f"{config.batch_size} x {config.seq_len + 1}; lower --batch-size or --seq-len")
        self.steps_per_epoch = config.steps_per_epoch or batches_per_pass

    def model_config(self) -> dict:
        return dataclasses.asdict(CharRNNConfig(self.vocabulary.size, self.config.embedding_dim,
                                                self.config.rnn_units))

    def build(self) -> None:
        self.model = build(CharRNNConfig(**self.model_config()))
        schedule = learning_rate_schedule(self.config, self.steps_per_epoch * self.config.epochs)
        self.optimizer = keras.optimizers.Adam(schedule)
        self.optimizer.build(self.model.trainable_variables)
        self.eval_step = make_eval_step(self.model, self.config.eager)

    def trackables(self) -> dict:
        return {"model": self.model, "optimizer": self.optimizer}

    def load_servable(self, folder: Path) -> None:
        checkpoint.load_weights(self.model, folder)

    def start_event(self) -> dict:
        return {"corpus": self.corpus.description, "parameters": count_parameters(self.model)}

    def dataset(self, epoch: int) -> tf.data.Dataset:
        batches = data.sequence_dataset(self.train_ids, self.config.seq_len, self.config.batch_size,
                                        seed=run.epoch_seed(self.config, epoch))
        return run.take_steps(batches, self.steps_per_epoch)

    def train_step(self, batch) -> dict:
        inputs, targets = batch
        return update(self.model, self.optimizer, inputs, targets, self.config.clip_norm)

    def end_epoch(self, epoch: int, losses: dict) -> tuple[dict, dict]:
        config = self.config
        heldout = evaluate(self.eval_step, self.heldout_set)
        # One generator for the whole run, traced once (it reads the live weights), and no XLA: a compile or a
        # trace every epoch took seconds under load, and a cancel's SIGINT waits for them to end.
        if self.sampler is None:
            self.sampler = TextGenerator(self.model, self.vocabulary, jit_compile=False)
        sample = self.sampler.generate(
            config.sample_prompt, config.sample_length, temperature=0.8, seed=config.seed)
        metrics = {"train_loss": losses["loss"], "heldout_loss_nats_per_char": heldout,
                   "heldout_bits_per_char": heldout / math.log(2),
                   "learning_rate": float(self.optimizer.learning_rate)}
        return metrics, {"text": config.sample_prompt + sample}

    def summary_metrics(self, state: run.RunState, metrics: dict) -> dict:
        heldout = metrics["heldout_loss_nats_per_char"]
        return {
            "model": "char_rnn",
            "heldout_loss_nats_per_char": round(heldout, 4),
            "heldout_bits_per_char": round(heldout / math.log(2), 4),
            "data": self.corpus.description,
            "epochs": state.epoch,
            "steps": state.step,
            "steps_per_epoch": self.steps_per_epoch,
            "batch_size": self.config.batch_size,
            "seq_len": self.config.seq_len,
            "parameters": count_parameters(self.model),
            "precision": self.config.precision,
            "wall_time_seconds": round(state.elapsed_seconds, 1),
            "history": state.history,
        }

    def write_servable(self, folder: Path, metrics: dict) -> None:
        write_files(folder, self.model, self.vocabulary, metrics)


def train(config: TrainConfig, stream=None) -> dict:
    """Runs (or resumes) a training run and returns its final metrics."""
    return run.fit(CharRNNRecipe(config, stream))


def summary(metrics: dict, config: TrainConfig) -> str:
    return (f"held-out loss {metrics.get('heldout_loss_nats_per_char')} nats/char; checkpoint in "
            f"{Path(config.out) / RUN_CHECKPOINT}")


def main(argv=None) -> None:
    cli.run_training(__doc__, TrainConfig, train, summary, argv)


if __name__ == "__main__":
    main()
