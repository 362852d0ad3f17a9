"""Translation model speed: the training step eager vs tf.function (float32 and mixed bfloat16), and decoding.

    python -m benchmarks.nmt                      # the shipped model size, random data
    python -m benchmarks.nmt --steps 5 --checkpoint checkpoints/nmt

The figures in docs/nmt.md were measured on the word-level model (14,354 / 8,188 words); the subword model has
8,000 pieces on both sides. Prints seconds per training step for each mode and the ratios to eager float32, measured in one run on the same
batches; then sentences per second for batched greedy decoding, one-at-a-time greedy, and beam search (widths
3 and 5) with the given checkpoint (or a random model of the shipped size).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def time_training(precision: str, eager: bool, steps: int, batch: int, length: int, config) -> float:
    import keras
    import numpy as np

    from trainers.nmt.model import build
    from trainers.nmt.train import make_train_step

    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    model = build(config)
    optimizer = keras.optimizers.Adam(1e-3)
    step = make_train_step(model, optimizer, clip_norm=1.0, eager=eager)
    rng = np.random.default_rng(0)
    source = rng.integers(4, config.source_vocab_size, (batch, length)).astype(np.int32)
    target = rng.integers(4, config.target_vocab_size, (batch, length)).astype(np.int32)
    decoder_input = np.concatenate([np.full((batch, 1), 2), target[:, :-1]], axis=1).astype(np.int32)
    float(step(source, decoder_input, target)["loss"])  # trace / warm up
    started = time.perf_counter()
    for _ in range(steps):
        float(step(source, decoder_input, target)["loss"])
    keras.mixed_precision.set_global_policy("float32")
    return (time.perf_counter() - started) / steps


def time_decoding(translator, sentences: list[str]) -> dict:
    results = {}
    started = time.perf_counter()
    translator.translate_batch(sentences)
    results["greedy, batched"] = len(sentences) / (time.perf_counter() - started)
    started = time.perf_counter()
    for sentence in sentences:
        translator.translate(sentence, "greedy")
    results["greedy, one at a time"] = len(sentences) / (time.perf_counter() - started)
    for width in (3, 5):
        started = time.perf_counter()
        for sentence in sentences:
            translator.translate(sentence, "beam", beam=width)
        results[f"beam {width}"] = len(sentences) / (time.perf_counter() - started)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=14, help="padded source and target length")
    parser.add_argument("--checkpoint", default="", help="a checkpoint for the decoding figures")
    parser.add_argument("--sentences", type=int, default=40)
    args = parser.parse_args()

    from trainers.nmt.config import TrainConfig
    from trainers.nmt.model import Seq2SeqConfig, build

    defaults = TrainConfig()
    config = Seq2SeqConfig(defaults.vocab_size, defaults.vocab_size, defaults.embedding_dim, defaults.encoder_units,
                           defaults.decoder_units, defaults.attention_units, defaults.dropout, 80, 80)
    print(f"training step, batch {args.batch} x length {args.length}, {args.steps} timed steps each")
    modes = [("eager float32", "float32", True), ("tf.function float32", "float32", False),
             ("eager mixed_bfloat16", "mixed_bfloat16", True), ("tf.function mixed_bfloat16", "mixed_bfloat16", False)]
    seconds = {name: time_training(precision, eager, args.steps, args.batch, args.length, config)
               for name, precision, eager in modes}
    base = seconds["eager float32"]
    for name, value in seconds.items():
        print(f"  {name:28s} {value:7.3f} s/step   {base / value:5.2f}x eager float32")

    from trainers.nmt import data
    from trainers.nmt.translate import Translator

    if args.checkpoint:
        translator = Translator.load(args.checkpoint)
        sentences = [e.source for e in data.bible_corpus().test[: args.sentences]]
    else:  # a random model of the shipped size, reading random words as subword pieces
        from trainers.nmt.subword import SubwordTokenizer

        words = [f"w{i}x{i * 7 % 13}" for i in range(3000)]
        tokenizer = SubwordTokenizer.train([" ".join(words[i: i + 12]) for i in range(0, 3000, 3)],
                                           config.source_vocab_size)
        config = Seq2SeqConfig(**{**config.__dict__, "source_vocab_size": tokenizer.size,
                                  "target_vocab_size": tokenizer.size})
        translator = Translator(build(config), tokenizer)
        sentences = [" ".join(words[(i * 7 + j) % 3000] for j in range(10)) for i in range(args.sentences)]
    translator.translate(sentences[0], "beam", beam=3)  # trace
    translator.translate_batch(sentences[:2])
    rates = time_decoding(translator, sentences)
    base = rates["greedy, one at a time"]
    origin = "checkpoint " + args.checkpoint if args.checkpoint else "random model"
    print(f"decoding {len(sentences)} sentences ({origin})")
    for name, rate in rates.items():
        print(f"  {name:24s} {rate:7.1f} sentences/s   {rate / base:5.2f}x greedy one at a time")


if __name__ == "__main__":
    main()
