"""Train the attention captioner on cached image features.

    python -m trainers.captioning.train                        # offline composed scenes, the shipped configuration
    python -m trainers.captioning.train --source canonical     # MS-COCO 2014 (falls back to offline without internet)
    python -m trainers.captioning.train --epochs 2 --train-images 2000 --out runs/quick

The first run builds the feature cache (MobileNet over every picture, once; see data.py). Every epoch ends with
held-out scores — BLEU-4 against all reference phrasings, object recall (the share of placed objects the caption
names) and object precision (the share of named objects that are there) — on the validation split and on the
test split of unseen object pairs, a few sample captions, and an atomic checkpoint of the run in
`<out>/checkpoint` (servable by the app: encoder, decoder, vocabulary, example pictures). Running the same command
again resumes. `--eager` runs the training step without tf.function, for debugging.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import sys
from pathlib import Path

from trainers.common import checkpoint, cli
from trainers.common.progress import Progress

RUN_CHECKPOINT = "checkpoint"
SOURCES = ("offline", "canonical")
MAIN_SETTINGS = ("train_images", "batch_size", "units", "learning_rate")
SHIPPED_ENCODER = Path(__file__).resolve().parents[2] / "checkpoints" / "captioning" / "encoder.weights.h5"
EXAMPLES_FOLDER = "examples"


@dataclasses.dataclass
class TrainConfig:
    source: str = dataclasses.field(default="offline", metadata={"help": "offline (composed scenes) or canonical (COCO)"})
    out: str = dataclasses.field(default="runs/captioning", metadata={"help": "run folder"})
    epochs: int = 8
    train_images: int = dataclasses.field(default=20000, metadata={"help": "training pictures (offline: scenes)"})
    val_images: int = 600
    test_images: int = 1000
    batch_size: int = 64
    embedding_dim: int = 256
    units: int = 512
    attention_units: int = 256
    dropout: float = 0.1
    max_len: int = dataclasses.field(default=16, metadata={"help": "longest caption in words, with start/end"})
    learning_rate: float = dataclasses.field(default=2e-3, metadata={"help": "peak learning rate"})
    min_lr_fraction: float = 0.05
    clip_norm: float = 5.0
    steps_per_epoch: int = dataclasses.field(default=0, metadata={"help": "0: one pass over the training data"})
    encoder_weights: str = dataclasses.field(default=str(SHIPPED_ENCODER),
                                             metadata={"help": "converted MobileNet weights (offline encoder)"})
    cache_dir: str = dataclasses.field(default="", metadata={"help": "feature cache folder (default: ~/.cache)"})
    log_every: int = 10
    seed: int = 0
    eager: bool = dataclasses.field(default=False, metadata={"help": "run the step without tf.function"})
    resume: bool = dataclasses.field(default=True, metadata={"help": "resume from <out>/checkpoint if present"})

    def validate(self) -> list[str]:
        problems = []
        if self.source not in SOURCES:
            problems.append(f"source must be offline or canonical, got {self.source!r}")
        for name in ("epochs", "train_images", "val_images", "test_images", "batch_size", "embedding_dim", "units",
                     "attention_units", "log_every"):
            problems += cli.positive(name.replace("_", "-"), getattr(self, name))
        problems += cli.in_range("epochs", self.epochs, 1, 1000)
        problems += cli.in_range("max-len", self.max_len, 4, 100)
        problems += cli.in_range("learning-rate", self.learning_rate, 1e-6, 1.0)
        problems += cli.in_range("dropout", self.dropout, 0.0, 0.9)
        problems += cli.in_range("min-lr-fraction", self.min_lr_fraction, 0.0, 1.0)
        for name in ("steps_per_epoch", "clip_norm"):
            problems += cli.positive(name.replace("_", "-"), getattr(self, name), allow_zero=True)
        if self.train_images and self.batch_size > self.train_images:
            problems.append(f"batch-size ({self.batch_size}) is larger than train-images ({self.train_images})")
        if self.source == "offline" and not Path(self.encoder_weights).is_file():
            problems.append(f"no encoder weights at {self.encoder_weights}; convert them with "
                            f"python -m trainers.captioning.convert_encoder")
        return problems


def make_train_step(model, optimizer, clip_norm: float, eager: bool):
    """`step(context, decoder_input, decoder_target)`: one teacher-forced update (see trainers.common.seq2seq)."""
    from trainers.common.seq2seq import make_teacher_forced_step

    return make_teacher_forced_step(model, optimizer, clip_norm, eager)


def object_scores(words_per_image: list[list[str]], records: list[dict]) -> tuple[float, float]:
    """(object recall, object precision) over a split: which placed classes the captions name, and vice versa."""
    from trainers.captioning.scenes import CLASSES

    noun_of = {noun: noun for noun in CLASSES}
    noun_of.update({plural: noun for noun, (plural, *_rest) in CLASSES.items()})
    placed_total = named_total = found = correct = 0
    for words, record in zip(words_per_image, records):
        placed = {group["noun"] for group in record.get("groups", [])}
        if not placed:
            continue
        named = {noun_of[word] for word in words if word in noun_of}
        placed_total += len(placed)
        named_total += len(named)
        found += len(placed & named)
        correct += len(named & placed)
    recall = found / placed_total if placed_total else float("nan")
    precision = correct / named_total if named_total else 0.0
    return recall, precision


def evaluate(captioner, features, records, batch_size: int = 128) -> dict:
    """Greedy captions for a whole split, scored against every reference phrasing."""
    import numpy as np
    import sacrebleu

    hypotheses = []
    for start in range(0, len(features), batch_size):
        chunk = np.asarray(features[start:start + batch_size], np.float32)
        for ids, _ in captioner.greedy_ids(chunk):
            hypotheses.append(captioner.vocabulary.decode(ids))
    references_per_image = max(len(record["captions"]) for record in records)
    streams = [[record["captions"][min(k, len(record["captions"]) - 1)] for record in records]
               for k in range(references_per_image)]
    bleu = sacrebleu.corpus_bleu([" ".join(words) for words in hypotheses], streams)
    recall, precision = object_scores(hypotheses, records)
    exact = float(np.mean([" ".join(words) in record["captions"] for words, record in zip(hypotheses, records)]))
    return {"bleu4": round(bleu.score, 2), "object_recall": round(recall, 4), "object_precision": round(precision, 4),
            "exact_match": round(exact, 4), "captions": [" ".join(words) for words in hypotheses]}


def learning_rate_schedule(config: TrainConfig, total_steps: int):
    import keras

    warmup = min(200, max(total_steps // 20, 1))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * 0.1, decay_steps=max(total_steps - warmup, 1),
        alpha=config.min_lr_fraction, warmup_target=config.learning_rate, warmup_steps=warmup)


def write_examples(folder: Path, config: TrainConfig, count: int = 8) -> list[str]:
    """Saves a few held-out test pictures (JPEG) into a checkpoint, for the app's examples."""
    from PIL import Image

    from trainers.captioning.scenes import SceneGenerator

    target = folder / EXAMPLES_FOLDER
    target.mkdir(parents=True, exist_ok=True)
    generator = SceneGenerator(config.seed)
    names = []
    for index in range(count):
        image, _ = generator.scene("test", index)
        name = f"test_{index:05d}.jpg"
        Image.fromarray(image).save(target / name, quality=92)
        names.append(name)
    return names


def save_run(folder: Path, model, vocabulary, run_config: dict, encoder_file: Path, metrics: dict, optimizer=None,
             state: dict | None = None, examples: Path | None = None) -> Path:
    def write(temporary: Path) -> None:
        checkpoint.write_json(temporary / checkpoint.CONFIG_FILE, run_config)
        model.save_weights(str(temporary / checkpoint.WEIGHTS_FILE))
        vocabulary.save(temporary / "vocab.json")
        shutil.copy2(encoder_file, temporary / run_config["encoder"]["weights"])
        if examples is not None and examples.is_dir():
            shutil.copytree(examples, temporary / EXAMPLES_FOLDER)
        checkpoint.write_json(temporary / checkpoint.METRICS_FILE, metrics)
        if optimizer is not None:
            checkpoint.save_optimizer(optimizer, temporary / checkpoint.OPTIMIZER_FILE)
        if state is not None:
            checkpoint.write_json(temporary / checkpoint.STATE_FILE, state)

    return checkpoint.write_folder(folder, write)


def train(config: TrainConfig, stream=None) -> dict:
    """Runs (or resumes) a training run and returns its final metrics."""
    import keras
    import numpy as np

    from trainers.captioning import data, encoder as encoder_module
    from trainers.captioning.caption import CaptionModel
    from trainers.captioning.model import CaptionerConfig, build, count_parameters

    stream = stream or sys.stdout
    log = lambda message: (stream.write(message + "\n"), stream.flush())  # noqa: E731
    out = Path(config.out)
    run_checkpoint = out / RUN_CHECKPOINT
    resuming = config.resume and (run_checkpoint / checkpoint.STATE_FILE).exists()
    keras.utils.set_random_seed(config.seed)

    source = config.source
    if source == "canonical":
        encoder = encoder_module.canonical() if _online() else None
        root = data.build_coco(config.train_images + config.test_images, encoder, "keras-imagenet",
                               config.cache_dir, log=log) if encoder is not None else None
        if root is None:
            log("No internet for MS-COCO or the ImageNet weights; training on the offline composed scenes.")
            source = "offline"
    if source == "offline":
        problems = __import__("trainers.captioning.scenes", fromlist=["x"]).sources_available()
        if problems:
            raise ValueError(problems[0])
        encoder_file = Path(config.encoder_weights)
        encoder = encoder_module.from_weights(encoder_file)
        counts = {"train": config.train_images, "val": config.val_images, "test": config.test_images}
        root = data.build_offline(counts, config.seed, encoder, data.fingerprint(encoder_file), config.cache_dir,
                                  log=log)
        encoder_spec = encoder_module.spec_for(encoder, "mobilenet_v1")
    else:
        encoder_file = out / "canonical_encoder.weights.h5"
        encoder.classifier.save_weights(str(encoder_file))
        encoder_spec = encoder_module.spec_for(encoder, "mobilenet_v1")

    limits = {"train": config.train_images, "val": config.val_images, "test": config.test_images} \
        if source == "offline" else {}
    train_features, train_records = data.load_split(root, "train", limits.get("train"))
    test_features, test_records = data.load_split(root, "test", limits.get("test"))
    val_features, val_records = data.load_split(root, "val", limits.get("val")) \
        if (root / "val" / "manifest.json").exists() else (test_features, test_records)
    vocabulary = (data.Vocabulary.load(run_checkpoint / data.VOCAB_FILE) if resuming else
                  data.Vocabulary.from_captions(c for record in train_records for c in record["captions"]))
    train_ids = data.encode_captions(train_records, vocabulary, config.max_len + 1)
    train_set = data.caption_dataset(train_features, train_ids, config.batch_size, seed=config.seed)
    steps_per_epoch = config.steps_per_epoch or len(train_records) // config.batch_size
    total_steps = steps_per_epoch * config.epochs

    model_config = CaptionerConfig(vocab_size=vocabulary.size, locations=encoder.locations,
                                   feature_depth=encoder.depth, embedding_dim=config.embedding_dim, units=config.units,
                                   attention_units=config.attention_units, dropout=config.dropout)
    run_config = {"decoder": dataclasses.asdict(model_config), "encoder": encoder_spec, "max_len": config.max_len,
                  "source": source}
    model = build(model_config)
    optimizer = keras.optimizers.Adam(learning_rate_schedule(config, total_steps))
    state = {"epoch": 0, "step": 0, "elapsed_seconds": 0.0, "history": []}
    if resuming:
        stored = checkpoint.read_json(run_checkpoint / checkpoint.CONFIG_FILE)
        if stored.get("decoder") != run_config["decoder"]:
            raise ValueError(f"{run_checkpoint} holds a model of another shape; use another --out or --resume false")
        checkpoint.load_weights(model, run_checkpoint)
        checkpoint.restore_optimizer(optimizer, model.trainable_variables, run_checkpoint / checkpoint.OPTIMIZER_FILE)
        state = checkpoint.read_json(run_checkpoint / checkpoint.STATE_FILE)
        if state["epoch"] >= config.epochs:
            log(f"{out} already finished {state['epoch']} epochs; raise --epochs to train further.")
            return state.get("metrics", {})
    out.mkdir(parents=True, exist_ok=True)
    checkpoint.write_json(out / "train_config.json", dataclasses.asdict(config))
    examples = out / EXAMPLES_FOLDER
    if source == "offline" and not examples.is_dir():
        write_examples(out, config)

    train_step = make_train_step(model, optimizer, config.clip_norm, config.eager)
    captioner = CaptionModel(encoder, model, vocabulary, config.max_len)
    progress = Progress(out, config.epochs, steps_per_epoch, start_step=state["step"],
                        elapsed_before=state["elapsed_seconds"], log_every=config.log_every, stream=stream)
    description = (f"composed scenes (seed {config.seed}): {len(train_records)} train / {len(val_records)} val / "
                   f"{len(test_records)} test pictures, test = unseen object pairs" if source == "offline"
                   else f"MS-COCO 2014: {len(train_records)} train / {len(test_records)} held-out images")
    progress.event("start", config=dataclasses.asdict(config), steps_per_epoch=steps_per_epoch,
                   total_steps=total_steps, resumed_from_epoch=state["epoch"], data=description,
                   parameters=count_parameters(model))
    batches = iter(train_set.repeat())
    step = state["step"]
    final = state.get("metrics", {})
    try:
        for epoch in range(state["epoch"] + 1, config.epochs + 1):
            losses, accuracies = [], []
            for _ in range(steps_per_epoch):
                features, ids = next(batches)
                result = train_step(features, ids[:, :-1], ids[:, 1:])  # teacher forcing: predict each next word
                step += 1
                loss = float(result["loss"])
                if not math.isfinite(loss):
                    raise FloatingPointError(f"the loss became {loss} at step {step}; lower --learning-rate")
                losses.append(loss)
                accuracies.append(float(result["accuracy"]))
                progress.step(epoch, step, loss=loss, accuracy=accuracies[-1])
            validation = evaluate(captioner, val_features, val_records)
            test = evaluate(captioner, test_features, test_records)
            metrics = {"train_loss": float(np.mean(losses)), "train_accuracy": float(np.mean(accuracies)),
                       **{f"val_{k}": v for k, v in validation.items() if k != "captions"},
                       **{f"test_{k}": v for k, v in test.items() if k != "captions"},
                       "learning_rate": float(optimizer.learning_rate)}
            progress.epoch_end(epoch, step, **metrics)
            rows = [[f"test_{index:05d}", test["captions"][index]] for index in range(min(6, len(test_records)))]
            images = [{"path": f"{EXAMPLES_FOLDER}/test_{index:05d}.jpg", "caption": test["captions"][index]}
                      for index in range(min(6, len(test_records))) if (examples / f"test_{index:05d}.jpg").exists()]
            progress.sample(epoch, rows=rows, images=images)
            state = {"epoch": epoch, "step": step, "elapsed_seconds": progress.elapsed,
                     "history": state["history"] + [{"epoch": epoch, "step": step, **metrics}]}
            final = _metrics(config, description, source, model, state, test, validation, steps_per_epoch)
            save_run(run_checkpoint, model, vocabulary, run_config, encoder_file, final, optimizer=optimizer,
                     state={**state, "metrics": final}, examples=examples)
    except BaseException as error:
        progress.close("cancelled" if isinstance(error, KeyboardInterrupt) else "error",
                       message=f"{type(error).__name__}: {error}")
        raise
    progress.close("done", **{k: v for k, v in final.items() if isinstance(v, (int, float))})
    return final


def _online() -> bool:
    import socket

    try:
        socket.create_connection(("images.cocodataset.org", 80), timeout=4).close()
        return True
    except OSError:
        return False


def _metrics(config, description, source, model, state, test, validation, steps_per_epoch) -> dict:
    from trainers.captioning.model import count_parameters

    return {
        "model": "captioning",
        "split": "test (held-out scenes whose object pairs never appear together in training)"
        if source == "offline" else "held-out images",
        "bleu4": test["bleu4"], "object_recall": test["object_recall"],
        "object_precision": test["object_precision"], "exact_match": test["exact_match"],
        "val_bleu4": validation["bleu4"], "val_object_recall": validation["object_recall"],
        "val_object_precision": validation["object_precision"],
        "decoding": "greedy",
        "data": description, "source": source,
        "encoder": "ImageNet MobileNet v1 1.0/224, conv_pw_13_relu (7x7x1024)",
        "epochs": state["epoch"], "steps": state["step"], "steps_per_epoch": steps_per_epoch,
        "batch_size": config.batch_size, "parameters": count_parameters(model),
        "wall_time_seconds": round(state["elapsed_seconds"], 1),
        "history": state["history"],
    }


def summary(metrics: dict, config: TrainConfig) -> str:
    return (f"held-out BLEU-4 {metrics.get('bleu4')}, object recall {metrics.get('object_recall')}; "
            f"checkpoint in {Path(config.out) / RUN_CHECKPOINT}")


def main(argv=None) -> None:
    cli.run_training(__doc__, TrainConfig, train, summary, argv, errors=(OSError,))


if __name__ == "__main__":
    main()
