"""Train the character-level GRU.

    python -m trainers.char_rnn.train                       # offline Shakespeare, the shipped configuration
    python -m trainers.char_rnn.train --source canonical    # Tiny Shakespeare (falls back to offline)
    python -m trainers.char_rnn.train --text-file mine.txt --epochs 5 --rnn-units 256 --out runs/mine

Every epoch ends with the held-out loss (nats/char and bits/char), a sample of generated text, and a
checkpoint of the run (weights, optimizer, progress) in `<out>/checkpoint`; running the same command again
resumes from it. `--eager` runs the training step without tf.function, for debugging.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

from trainers.common import checkpoint, cli
from trainers.common.progress import Progress

RUN_CHECKPOINT = "checkpoint"
# What the app's Training tab offers for this model (besides epochs): data sources and main settings.
SOURCES = ("offline", "canonical", "file")
MAIN_SETTINGS = ("rnn_units", "batch_size", "seq_len", "learning_rate")


@dataclasses.dataclass
class TrainConfig:
    source: str = dataclasses.field(default="offline", metadata={"help": "offline, canonical or file"})
    text_file: str = dataclasses.field(default="", metadata={"help": "a UTF-8 text file to train on"})
    out: str = dataclasses.field(default="runs/char_rnn", metadata={"help": "run folder"})
    epochs: int = 15
    batch_size: int = 256
    seq_len: int = 100
    embedding_dim: int = 256
    rnn_units: int = 1024
    learning_rate: float = dataclasses.field(default=3e-3, metadata={"help": "peak learning rate"})
    warmup_steps: int = 100
    min_lr_fraction: float = dataclasses.field(default=0.05, metadata={"help": "final LR as a share of peak"})
    clip_norm: float = dataclasses.field(default=1.0, metadata={"help": "global gradient-norm clip (0: off)"})
    precision: str = dataclasses.field(default="mixed_bfloat16", metadata={"help": "float32 or mixed_bfloat16"})
    steps_per_epoch: int = dataclasses.field(default=0, metadata={"help": "0: one pass over the data"})
    max_chars: int = dataclasses.field(default=0, metadata={"help": "use only this many training chars (0: all)"})
    sample_prompt: str = "\n"
    sample_length: int = 300
    log_every: int = 10
    seed: int = 0
    eager: bool = dataclasses.field(default=False, metadata={"help": "run the step without tf.function"})
    resume: bool = dataclasses.field(default=True, metadata={"help": "resume from <out>/checkpoint if present"})

    def validate(self) -> list[str]:
        problems = []
        if self.source not in ("offline", "canonical", "file"):
            problems.append(f"source must be offline, canonical or file, got {self.source!r}")
        if self.source == "file" and not self.text_file:
            problems.append("source 'file' needs --text-file PATH")
        if self.precision not in ("float32", "mixed_bfloat16"):
            problems.append(f"precision must be float32 or mixed_bfloat16, got {self.precision!r}")
        for name in ("epochs", "batch_size", "seq_len", "embedding_dim", "rnn_units", "sample_length",
                     "log_every"):
            problems += cli.positive(name.replace("_", "-"), getattr(self, name))
        problems += cli.in_range("epochs", self.epochs, 1, 1000)
        problems += cli.in_range("rnn-units", self.rnn_units, 1, 4096)
        problems += cli.in_range("learning-rate", self.learning_rate, 1e-6, 1.0)
        problems += cli.in_range("min-lr-fraction", self.min_lr_fraction, 0.0, 1.0)
        for name in ("warmup_steps", "steps_per_epoch", "max_chars", "clip_norm"):
            problems += cli.positive(name.replace("_", "-"), getattr(self, name), allow_zero=True)
        return problems


def masked_mean_loss(targets, logits):
    """Mean cross-entropy in nats over every position (all positions are real characters here)."""
    import tensorflow as tf

    per_char = tf.keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    return tf.reduce_mean(per_char)


def make_train_step(model, optimizer, clip_norm: float, eager: bool):
    import tensorflow as tf

    def train_step(inputs, targets):
        with tf.GradientTape() as tape:
            logits, _ = model(inputs, training=True)  # (batch, seq_len, vocab)
            loss = masked_mean_loss(targets, logits)
        gradients = tape.gradient(loss, model.trainable_variables)
        if clip_norm:
            gradients, _ = tf.clip_by_global_norm(gradients, clip_norm)
        optimizer.apply(gradients, model.trainable_variables)
        return {"loss": loss}

    return train_step if eager else tf.function(train_step)


def make_eval_step(model, eager: bool):
    import tensorflow as tf

    def eval_step(inputs, targets):
        logits, _ = model(inputs, training=False)
        per_char = tf.keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
        return tf.reduce_sum(per_char), tf.cast(tf.size(per_char), tf.float32)

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
    import keras

    warmup = min(config.warmup_steps, max(total_steps // 10, 1))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * 0.1, decay_steps=max(total_steps - warmup, 1),
        alpha=config.min_lr_fraction, warmup_target=config.learning_rate, warmup_steps=warmup)


def train(config: TrainConfig, stream=None) -> dict:
    """Runs (or resumes) a training run and returns its final metrics."""
    import keras
    import numpy as np

    from trainers.char_rnn import data
    from trainers.char_rnn.generate import TextGenerator
    from trainers.char_rnn.model import build, count_parameters, save_char_rnn

    out = Path(config.out)
    run_checkpoint = out / RUN_CHECKPOINT
    resuming = config.resume and (run_checkpoint / checkpoint.STATE_FILE).exists()
    keras.utils.set_random_seed(config.seed)

    corpus = data.load_corpus(config.source, config.text_file or None)
    train_text = corpus.train_text[: config.max_chars] if config.max_chars else corpus.train_text
    vocabulary = (data.Vocabulary.load(run_checkpoint / data.VOCAB_FILE) if resuming
                  else data.Vocabulary.from_text(train_text))
    train_ids, heldout_ids = vocabulary.encode(train_text), vocabulary.encode(corpus.heldout_text)
    train_set = data.sequence_dataset(train_ids, config.seq_len, config.batch_size, seed=config.seed)
    heldout_set = data.sequence_dataset(heldout_ids, config.seq_len, config.batch_size, shuffle=False,
                                        drop_remainder=False)
    batches_per_pass = len(train_ids) // (config.seq_len + 1) // config.batch_size
    if batches_per_pass == 0:
        raise ValueError(f"the training text ({len(train_ids)} characters) is smaller than one batch of "
                         f"{config.batch_size} x {config.seq_len + 1}; lower --batch-size or --seq-len")
    steps_per_epoch = config.steps_per_epoch or batches_per_pass
    total_steps = steps_per_epoch * config.epochs

    keras.mixed_precision.set_global_policy(config.precision)
    model_config = _model_config(config, vocabulary.size)
    model = build(model_config)
    optimizer = keras.optimizers.Adam(learning_rate_schedule(config, total_steps))
    state = {"epoch": 0, "step": 0, "elapsed_seconds": 0.0, "history": []}
    if resuming:
        stored = checkpoint.read_json(run_checkpoint / checkpoint.CONFIG_FILE)
        if stored != dataclasses.asdict(model_config):
            raise ValueError(f"{run_checkpoint} holds a model of another shape ({stored}); "
                             f"use another --out or --resume false")
        checkpoint.load_weights(model, run_checkpoint)
        checkpoint.restore_optimizer(optimizer, model.trainable_variables, run_checkpoint / checkpoint.OPTIMIZER_FILE)
        state = checkpoint.read_json(run_checkpoint / checkpoint.STATE_FILE)
        if state["epoch"] >= config.epochs:
            print(f"{out} already finished {state['epoch']} epochs; raise --epochs to train further.",
                  file=stream or sys.stdout)
            return state.get("metrics", {})
    out.mkdir(parents=True, exist_ok=True)
    checkpoint.write_json(out / "train_config.json", dataclasses.asdict(config))

    train_step = make_train_step(model, optimizer, config.clip_norm, config.eager)
    eval_step = make_eval_step(model, config.eager)
    progress = Progress(out, config.epochs, steps_per_epoch, start_step=state["step"],
                        elapsed_before=state["elapsed_seconds"], log_every=config.log_every, stream=stream)
    progress.event("start", config=dataclasses.asdict(config), steps_per_epoch=steps_per_epoch,
                   total_steps=total_steps, resumed_from_epoch=state["epoch"], corpus=corpus.description,
                   parameters=count_parameters(model))
    batches = iter(train_set.repeat())
    step = state["step"]
    try:
        for epoch in range(state["epoch"] + 1, config.epochs + 1):
            losses = []
            for _ in range(steps_per_epoch):
                inputs, targets = next(batches)
                result = train_step(inputs, targets)
                step += 1
                loss = float(result["loss"])
                if not math.isfinite(loss):
                    raise FloatingPointError(f"the loss became {loss} at step {step}; lower --learning-rate")
                losses.append(loss)
                progress.step(epoch, step, loss=loss)
            heldout = evaluate(eval_step, heldout_set)
            sample = TextGenerator(model, vocabulary).generate(
                config.sample_prompt, config.sample_length, temperature=0.8, seed=config.seed)
            metrics = {"train_loss": float(np.mean(losses)), "heldout_loss_nats_per_char": heldout,
                       "heldout_bits_per_char": heldout / math.log(2),
                       "learning_rate": float(optimizer.learning_rate)}
            progress.epoch_end(epoch, step, **metrics)
            progress.sample(epoch, text=config.sample_prompt + sample)
            state = {"epoch": epoch, "step": step, "elapsed_seconds": progress.elapsed,
                     "history": state["history"] + [{"epoch": epoch, "step": step, **metrics}]}
            final = _metrics(config, corpus, model, state, heldout, steps_per_epoch)
            save_char_rnn(run_checkpoint, model, vocabulary, metrics=final, optimizer=optimizer,
                          state={**state, "metrics": final})
    except BaseException as error:
        progress.close("cancelled" if isinstance(error, KeyboardInterrupt) else "error",
                       message=f"{type(error).__name__}: {error}")
        raise
    progress.close("done", **{k: v for k, v in final.items() if isinstance(v, (int, float))})
    return final


def _model_config(config: TrainConfig, vocab_size: int):
    from trainers.char_rnn.model import CharRNNConfig

    return CharRNNConfig(vocab_size=vocab_size, embedding_dim=config.embedding_dim, rnn_units=config.rnn_units)


def _metrics(config: TrainConfig, corpus, model, state: dict, heldout: float, steps_per_epoch: int) -> dict:
    from trainers.char_rnn.model import count_parameters

    return {
        "model": "char_rnn",
        "heldout_loss_nats_per_char": round(heldout, 4),
        "heldout_bits_per_char": round(heldout / math.log(2), 4),
        "data": corpus.description,
        "epochs": state["epoch"],
        "steps": state["step"],
        "steps_per_epoch": steps_per_epoch,
        "batch_size": config.batch_size,
        "seq_len": config.seq_len,
        "parameters": count_parameters(model),
        "precision": config.precision,
        "wall_time_seconds": round(state["elapsed_seconds"], 1),
        "history": state["history"],
    }


def summary(metrics: dict, config: TrainConfig) -> str:
    return (f"held-out loss {metrics.get('heldout_loss_nats_per_char')} nats/char; checkpoint in "
            f"{Path(config.out) / RUN_CHECKPOINT}")


def main(argv=None) -> None:
    cli.run_training(__doc__, TrainConfig, train, summary, argv)


if __name__ == "__main__":
    main()
