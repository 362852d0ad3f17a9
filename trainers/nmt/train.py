"""Train the Spanish→English attention model.

    python -m trainers.nmt.train                          # offline Bible pairs, the shipped configuration
    python -m trainers.nmt.train --source canonical       # Anki spa-eng (falls back to offline without internet)
    python -m trainers.nmt.train --epochs 3 --decoder-units 128 --out runs/small
    python -m trainers.nmt.train --out runs/more --init-from checkpoints/nmt --epochs 12   # continue the shipped model

Batches are bucketed by length (a few padded lengths, so a few tf.function traces and little padding). Every
epoch ends with the held-out (validation) loss and accuracy, greedy corpus BLEU on the validation chapters,
sample translations, and an atomic checkpoint of the run in `<out>/checkpoint` (weights, vocabularies,
optimizer, progress); running the same command again resumes. The test split is scored only by
`python -m trainers.nmt.evaluate` (greedy and beam search, multi- and single-reference BLEU).
`--eager` runs the training step without tf.function, for debugging.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path

from trainers.common import checkpoint, cli
from trainers.common.progress import Progress

RUN_CHECKPOINT = "checkpoint"
SOURCES = ("offline", "canonical")
MAIN_SETTINGS = ("decoder_units", "batch_size", "learning_rate", "max_words")
EXAMPLES_FILE = "examples.json"
BUCKETS = (10, 14, 19, 26)


@dataclasses.dataclass
class TrainConfig:
    source: str = dataclasses.field(default="offline", metadata={"help": "offline (Bible) or canonical (Anki)"})
    out: str = dataclasses.field(default="runs/nmt", metadata={"help": "run folder"})
    epochs: int = 12
    batch_size: int = 64
    max_words: int = dataclasses.field(default=15, metadata={"help": "longest segment kept, in words"})
    embedding_dim: int = 128
    encoder_units: int = dataclasses.field(default=128, metadata={"help": "per direction"})
    decoder_units: int = 256
    attention_units: int = 128
    dropout: float = 0.15
    min_count: int = dataclasses.field(default=2, metadata={"help": "rarer words become <unk>"})
    learning_rate: float = 1e-3
    lr_decay: float = dataclasses.field(default=0.92, metadata={"help": "learning rate factor per epoch"})
    warmup_steps: int = dataclasses.field(default=400, metadata={"help": "linear learning-rate warm-up"})
    clip_norm: float = dataclasses.field(default=1.0, metadata={"help": "global gradient-norm clip (0: off)"})
    precision: str = dataclasses.field(default="float32", metadata={
        "help": "float32 or mixed_bfloat16 (faster, but saturated tanh units cannot recover in bfloat16)"})
    steps_per_epoch: int = dataclasses.field(default=0, metadata={"help": "0: one pass over the data"})
    max_pairs: int = dataclasses.field(default=0, metadata={"help": "use only this many training pairs (0: all)"})
    validation_bleu_segments: int = dataclasses.field(default=400, metadata={"help": "0: skip validation BLEU"})
    log_every: int = 10
    seed: int = 0
    eager: bool = dataclasses.field(default=False, metadata={"help": "run the step without tf.function"})
    resume: bool = dataclasses.field(default=True, metadata={"help": "resume from <out>/checkpoint if present"})
    init_from: str = dataclasses.field(default="", metadata={
        "help": "start a new run from this checkpoint's weights, vocabularies and epoch count (e.g. checkpoints/nmt)"})

    def validate(self) -> list[str]:
        problems = []
        if self.source not in SOURCES:
            problems.append(f"source must be offline or canonical, got {self.source!r}")
        if self.precision not in ("float32", "mixed_bfloat16"):
            problems.append(f"precision must be float32 or mixed_bfloat16, got {self.precision!r}")
        for name in ("epochs", "batch_size", "max_words", "embedding_dim", "encoder_units", "decoder_units",
                     "attention_units", "min_count", "log_every"):
            problems += cli.positive(name.replace("_", "-"), getattr(self, name))
        problems += cli.in_range("epochs", self.epochs, 1, 1000)
        problems += cli.in_range("max-words", self.max_words, 1, 24)
        problems += cli.in_range("dropout", self.dropout, 0.0, 0.9)
        problems += cli.in_range("learning-rate", self.learning_rate, 1e-6, 1.0)
        problems += cli.in_range("lr-decay", self.lr_decay, 0.01, 1.0)
        for name in ("steps_per_epoch", "max_pairs", "clip_norm", "validation_bleu_segments", "warmup_steps"):
            problems += cli.positive(name.replace("_", "-"), getattr(self, name), allow_zero=True)
        return problems


def make_train_step(model, optimizer, clip_norm: float, eager: bool):
    """`step(context, decoder_input, decoder_target)`: one teacher-forced update (see trainers.common.seq2seq)."""
    from trainers.common.seq2seq import make_teacher_forced_step

    return make_teacher_forced_step(model, optimizer, clip_norm, eager)


def make_eval_step(model, eager: bool):
    import tensorflow as tf
    from keras import ops

    def eval_step(source, decoder_input, decoder_target):
        logits, _ = model(source, decoder_input, training=False)
        per_token = tf.keras.losses.sparse_categorical_crossentropy(decoder_target, logits, from_logits=True)
        mask = ops.cast(ops.not_equal(decoder_target, 0), "float32")
        hits = ops.cast(ops.equal(ops.cast(ops.argmax(logits, -1), decoder_target.dtype), decoder_target), "float32")
        return ops.sum(per_token * mask), ops.sum(hits * mask), ops.sum(mask)

    return eval_step if eager else tf.function(eval_step)


def evaluate_loss(eval_step, encoded, batch_size: int) -> tuple[float, float]:
    from trainers.nmt import data

    total, hits, count = 0.0, 0.0, 0.0
    for batch in data.batches(encoded, batch_size, BUCKETS, shuffle=False):
        batch_total, batch_hits, batch_count = eval_step(*batch)
        total, hits, count = total + float(batch_total), hits + float(batch_hits), count + float(batch_count)
    return total / max(count, 1.0), hits / max(count, 1.0)


def test_examples(examples, limit: int = 40) -> list[dict]:
    """Short held-out test segments with their references, for the tab's clickable examples."""
    chosen = []
    for example in examples:
        words = len(example.source.split())
        if 4 <= words <= 11:
            chosen.append({"key": example.key, "spanish": example.source, "references": example.references})
    step = max(len(chosen) // limit, 1)
    return chosen[::step][:limit]


def train(config: TrainConfig, stream=None) -> dict:
    """Runs (or resumes) a training run and returns its final metrics."""
    import keras
    import numpy as np

    from trainers.nmt import data
    from trainers.nmt.model import TranslatorConfig, build, count_parameters, save_translator
    from trainers.nmt.translate import Translator as Inference, corpus_bleu

    out = Path(config.out)
    run_checkpoint = out / RUN_CHECKPOINT
    resuming = config.resume and (run_checkpoint / checkpoint.STATE_FILE).exists()
    keras.utils.set_random_seed(config.seed)
    started = time.monotonic()

    corpus = data.load_corpus(config.source, config.max_words)
    pairs = data.training_pairs(corpus.train)
    if config.max_pairs:
        pairs = pairs[: config.max_pairs]
    initial = None if resuming or not config.init_from else Path(config.init_from)
    if initial is not None:
        checkpoint.require_folder(initial, (checkpoint.CONFIG_FILE, checkpoint.WEIGHTS_FILE, data.VOCAB_FILE))
    if resuming or initial is not None:
        source_vocab, target_vocab = data.load_vocabularies((initial or run_checkpoint) / data.VOCAB_FILE)
    else:
        source_vocab = data.Vocabulary.build((p[0] for p in pairs), config.min_count)
        target_vocab = data.Vocabulary.build((p[1] for p in pairs), config.min_count)
    model_config = TranslatorConfig(
        source_vocab.size, target_vocab.size, config.embedding_dim, config.encoder_units, config.decoder_units,
        config.attention_units, config.dropout, max_source_len=BUCKETS[-1], max_target_len=BUCKETS[-1])
    encoded = data.encode_pairs(pairs, source_vocab, target_vocab, BUCKETS[-1], BUCKETS[-1])
    validation_encoded = data.encode_pairs(data.training_pairs(corpus.validation), source_vocab, target_vocab,
                                           BUCKETS[-1], BUCKETS[-1])
    if not encoded:
        raise ValueError("no training pairs are left after filtering; raise --max-words")
    batches_per_pass = sum(1 for _ in data.batches(encoded, config.batch_size, BUCKETS, shuffle=False))
    steps_per_epoch = config.steps_per_epoch or batches_per_pass
    print(f"{len(encoded)} training pairs, {len(validation_encoded)} validation pairs, vocabularies "
          f"{source_vocab.size} Spanish / {target_vocab.size} English; {steps_per_epoch} steps per epoch "
          f"(data ready in {time.monotonic() - started:.0f} s)", file=stream or sys.stdout)

    keras.mixed_precision.set_global_policy(config.precision)
    model = build(model_config)
    optimizer = keras.optimizers.Adam(config.learning_rate)
    state = {"epoch": 0, "step": 0, "elapsed_seconds": 0.0, "history": [], "best_validation_bleu": -1.0}
    if resuming or initial is not None:
        folder = initial or run_checkpoint
        stored = checkpoint.read_json(folder / checkpoint.CONFIG_FILE)
        if stored != dataclasses.asdict(model_config):
            raise ValueError(f"{folder} holds a model of another shape ({stored}); give the same model settings, "
                             f"or use another --out / --resume false")
        checkpoint.load_weights(model, folder)
        if (folder / checkpoint.OPTIMIZER_FILE).exists():
            checkpoint.restore_optimizer(optimizer, model.trainable_variables, folder / checkpoint.OPTIMIZER_FILE)
        else:
            print(f"{folder} has no optimizer state; Adam starts with fresh moments.", file=stream or sys.stdout)
        if resuming:
            state = checkpoint.read_json(run_checkpoint / checkpoint.STATE_FILE)
        else:  # a promoted checkpoint keeps its progress in metrics.json
            previous = checkpoint.read_json(folder / checkpoint.METRICS_FILE)
            state = {"epoch": previous.get("epochs", 0), "step": previous.get("steps", 0),
                     "elapsed_seconds": previous.get("wall_time_seconds", 0.0),
                     "history": previous.get("history", []), "best_validation_bleu": -1.0}
        if state["epoch"] >= config.epochs:
            print(f"{out} already finished {state['epoch']} epochs; raise --epochs to train further.",
                  file=stream or sys.stdout)
            return state.get("metrics", {})
    out.mkdir(parents=True, exist_ok=True)
    checkpoint.write_json(out / "train_config.json", dataclasses.asdict(config))

    train_step = make_train_step(model, optimizer, config.clip_norm, config.eager)
    eval_step = make_eval_step(model, config.eager)
    casing = data.learn_casing(english for example in corpus.train for english in example.references.values())
    inference = Inference(model, source_vocab, target_vocab, casing)
    validation_bleu_set = corpus.validation[: config.validation_bleu_segments]
    progress = Progress(out, config.epochs, steps_per_epoch, start_step=state["step"],
                        elapsed_before=state["elapsed_seconds"], log_every=config.log_every, stream=stream)
    progress.event("start", config=dataclasses.asdict(config), steps_per_epoch=steps_per_epoch,
                   total_steps=steps_per_epoch * config.epochs, resumed_from_epoch=state["epoch"],
                   corpus={k: v for k, v in corpus.description.items() if k != "test_chapter_list"},
                   parameters=count_parameters(model))
    step = state["step"]
    extra = {EXAMPLES_FILE: test_examples(corpus.test), data.CASING_FILE: casing}
    final = state.get("metrics", {})
    try:
        for epoch in range(state["epoch"] + 1, config.epochs + 1):
            learning_rate = config.learning_rate * config.lr_decay ** (epoch - 1)
            optimizer.learning_rate.assign(learning_rate)
            losses, accuracies = [], []
            batches = data.batches(encoded, config.batch_size, BUCKETS, seed=config.seed * 1000 + epoch)
            for count in range(steps_per_epoch):
                try:
                    batch = next(batches)
                except StopIteration:
                    batches = data.batches(encoded, config.batch_size, BUCKETS, seed=config.seed * 1000 + epoch + count)
                    batch = next(batches)
                if step < config.warmup_steps:  # a gentle start keeps the tanh units from saturating early
                    optimizer.learning_rate.assign(learning_rate * (step + 1) / config.warmup_steps)
                elif step == config.warmup_steps:
                    optimizer.learning_rate.assign(learning_rate)
                result = train_step(*batch)
                step += 1
                loss = float(result["loss"])
                if not math.isfinite(loss):
                    raise FloatingPointError(f"the loss became {loss} at step {step}; lower --learning-rate")
                losses.append(loss)
                accuracies.append(float(result["accuracy"]))
                progress.step(epoch, step, loss=loss, accuracy=accuracies[-1])
            validation_loss, validation_accuracy = evaluate_loss(eval_step, validation_encoded, 256)
            metrics = {"train_loss": float(np.mean(losses)), "train_accuracy": float(np.mean(accuracies)),
                       "validation_loss": validation_loss, "validation_accuracy": validation_accuracy,
                       "learning_rate": learning_rate}
            if validation_bleu_set:
                hypotheses = inference.translate_batch([e.source for e in validation_bleu_set])
                metrics["validation_bleu_greedy"] = corpus_bleu(hypotheses, [e.references for e in validation_bleu_set])
            progress.epoch_end(epoch, step, **metrics)
            samples = inference.translate_batch([e.source for e in corpus.validation[:6]])
            progress.sample(epoch, rows=[[e.source, h] for e, h in zip(corpus.validation[:6], samples)])
            state = {"epoch": epoch, "step": step, "elapsed_seconds": progress.elapsed,
                     "history": state["history"] + [{"epoch": epoch, "step": step, **metrics}],
                     "best_validation_bleu": state.get("best_validation_bleu", -1.0)}
            final = _metrics(config, corpus, model, state, metrics, steps_per_epoch, len(encoded))
            state["metrics"] = final
            save_translator(run_checkpoint, model, source_vocab, target_vocab, metrics=final, optimizer=optimizer,
                            state=state, extra_files=extra)
            bleu = metrics.get("validation_bleu_greedy", -validation_loss)
            if bleu > state["best_validation_bleu"]:
                state["best_validation_bleu"] = bleu
                save_translator(out / "best", model, source_vocab, target_vocab, metrics=final, extra_files=extra)
                checkpoint.write_json(run_checkpoint / checkpoint.STATE_FILE, state)
    except BaseException as error:
        progress.close("cancelled" if isinstance(error, KeyboardInterrupt) else "error",
                       message=f"{type(error).__name__}: {error}")
        raise
    progress.close("done", **{k: v for k, v in final.items() if isinstance(v, (int, float))})
    return final


def _metrics(config: TrainConfig, corpus, model, state: dict, metrics: dict, steps_per_epoch: int,
             pairs: int) -> dict:
    from trainers.nmt.model import count_parameters

    return {
        "model": "nmt",
        "validation_loss": round(metrics["validation_loss"], 4),
        "validation_accuracy": round(metrics["validation_accuracy"], 4),
        "validation_bleu_greedy": metrics.get("validation_bleu_greedy"),
        "data": {**corpus.description, "train_pairs_used": pairs},
        "epochs": state["epoch"],
        "steps": state["step"],
        "steps_per_epoch": steps_per_epoch,
        "batch_size": config.batch_size,
        "buckets": list(BUCKETS),
        "parameters": count_parameters(model),
        "precision": config.precision,
        "wall_time_seconds": round(state["elapsed_seconds"], 1),
        "history": state["history"],
        "note": "test-split BLEU is added by `python -m trainers.nmt.evaluate`",
    }


def summary(metrics: dict, config: TrainConfig) -> str:
    return (f"validation BLEU (greedy) {metrics.get('validation_bleu_greedy')}; checkpoint in "
            f"{Path(config.out) / RUN_CHECKPOINT}")


def main(argv=None) -> None:
    cli.run_training(__doc__, TrainConfig, train, summary, argv)


if __name__ == "__main__":
    main()
