"""Trains one tiny model twice in this process, on one device and mirrored over two logical CPUs, and prints the
step losses of both as JSON (tests/test_strategy.py runs this in a subprocess: the CPU must be split before
TensorFlow starts).

    python -m tests.distributed.compare char_rnn|dcgan|nmt|captioning OUT_FOLDER
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

os.environ["EAGER_PLAYGROUND_CPU_REPLICAS"] = "2"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from trainers.common import run  # noqa: E402
from trainers.common.progress import read_events  # noqa: E402

TEXT = ("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
        "The slings and arrows of outrageous fortune,\nOr to take arms against a sea of troubles\n") * 12


def char_rnn(folder: Path, strategy: str):
    from trainers.char_rnn.train import TrainConfig, train

    text_file = folder / "text.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    # A text of ~2,900 characters: 90% trains, in batches of 8 windows of 21 characters.
    config = TrainConfig(source="file", text_file=str(text_file), out=str(folder / strategy), epochs=2,
                         batch_size=8, seq_len=20, embedding_dim=8, rnn_units=16, steps_per_epoch=3,
                         sample_length=10, precision="float32", log_every=1, strategy=strategy)
    return train, config


def dcgan(folder: Path, strategy: str):
    """A tiny GAN without dropout: dropout draws its masks per replica, which no strategy can make equal to one
    device's. Everything else (latent vectors split with the images, synchronized batch norm, the averaged
    generator, two optimizers) is what a real run does."""
    import functools

    from tests.test_dcgan import synthetic_split
    from trainers.dcgan import config as dcgan_config
    from trainers.dcgan.train import TrainConfig, train

    shape = dcgan_config.TrainConfig.model_config
    dcgan_config.TrainConfig.model_config = lambda self: dataclasses.replace(shape(self), dropout=0.0)
    config = TrainConfig(out=str(folder / strategy), epochs=2, batch_size=16, latent_dim=8, generator_filters=8,
                         discriminator_filters=4, kernel_size=3, classifier_epochs=1, grid_count=4, eval_count=16,
                         steps_per_epoch=3, log_every=1, learning_rate=1e-3, precision="float32", strategy=strategy)
    return functools.partial(train, digits=synthetic_split()), config


def captioning(folder: Path, strategy: str):
    """A tiny captioner (random encoder, synthetic sprites, the recipe of tests/test_captioning.py), no dropout."""
    from tests.test_captioning import tiny_recipe, tiny_run_config

    config = tiny_run_config(folder, strategy, dropout=0.0, precision="float32", strategy=strategy)
    return lambda config, stream: run.fit(tiny_recipe(config)), config


def nmt(folder: Path, strategy: str):
    """A tiny translator on the four sentences of tests/test_nmt.py, no dropout."""
    from tests.test_nmt import tiny_corpus
    from trainers.nmt import data
    from trainers.nmt.train import TrainConfig, train

    corpus = tiny_corpus()
    data.load_corpus = lambda source, max_words: corpus
    config = TrainConfig(out=str(folder / strategy), epochs=2, batch_size=16, embedding_dim=16, encoder_units=16,
                         decoder_units=32, attention_units=16, vocab_size=400, dropout=0.0, steps_per_epoch=3,
                         precision="float32", validation_bleu_segments=4, log_every=1, warmup_steps=3,
                         strategy=strategy)
    return train, config


TINY_RUNS = {"char_rnn": char_rnn, "dcgan": dcgan, "nmt": nmt, "captioning": captioning}


def losses(folder: Path) -> list[dict]:
    return [{key: value for key, value in event.items() if key not in ("event", "time", "elapsed", "eta",
                                                                        "epoch", "step", "total_steps")}
            for event in read_events(folder) if event["event"] == "step"]


def main() -> None:
    model, out = sys.argv[1], Path(sys.argv[2])
    run.split_cpu(2)
    results = {}
    for strategy in ("default", "mirrored"):
        folder = out / model
        folder.mkdir(parents=True, exist_ok=True)
        train, config = TINY_RUNS[model](folder, strategy)
        train(config, stream=open(os.devnull, "w"))
        results[strategy] = losses(Path(config.out))
    results["replicas"] = [event.get("replicas") for event in read_events(out / model / "mirrored")
                           if event["event"] == "start"]
    results["devices"] = len(tf.config.list_logical_devices("CPU"))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
