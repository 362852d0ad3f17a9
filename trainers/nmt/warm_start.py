"""Warm start: a subword model whose weights come from a word-level checkpoint of the same architecture.

The shipped model before subwords (word vocabularies in `vocab.json`, trained 6 epochs on the Bible) already
knows how to translate scripture; training the subword model from nothing to the same Bible score takes longer
than this machine has. So the recurrent, attention and bottleneck weights are copied as they are, and every
subword piece that is a whole word of the old vocabularies (`"▁casa"` = `casa`, `","` = `,`) takes that word's
embedding row (and, on the English side, its output-layer column and bias). Pieces that are parts of words,
bytes and the domain tags start from the new model's random initialisation; their output bias starts at the old
vocabulary's median, so the decoder does not favour them before it has learned them.

    python -m trainers.nmt.warm_start --words checkpoints/nmt --out runs/nmt_warm   # then
    python -m trainers.nmt.train --init-from runs/nmt_warm ...

The subword model is learned here from the training text (as `trainers.nmt.train` would learn it) and saved in the
warm folder, which `--init-from` then uses. Its metrics.json says epochs 0, so the run's epochs count from 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from trainers.common import checkpoint


def word_rows(pieces: list[str], words: list[str]) -> dict[int, int]:
    """{piece id: old word id} for the pieces that are a whole old word (special ids 0-3 map to themselves)."""
    index = {word: position for position, word in enumerate(words)}
    mapping = {i: i for i in range(4)}
    for piece_id, piece in enumerate(pieces):
        if piece_id < 4:
            continue
        word = piece[1:] if piece.startswith("\u2581") else piece
        if word and word in index and (piece.startswith("\u2581") or not word.isalnum()):
            mapping[piece_id] = index[word]
    return mapping


def transplant(old_model, old_source: list[str], old_target: list[str], new_model, tokenizer) -> dict:
    """Copies `old_model`'s weights into `new_model` (same sizes but the vocabularies); returns what was mapped."""
    pieces = [tokenizer.processor.id_to_piece(i) for i in range(tokenizer.size)]
    source_map, target_map = word_rows(pieces, old_source), word_rows(pieces, old_target)
    # The two models list their variables in the same order; only the vocabulary axes differ in shape.
    source_size, target_size = old_model.config.source_vocab_size, old_model.config.target_vocab_size
    for old_variable, variable in zip(old_model.weights, new_model.weights):
        before, value = old_variable.numpy(), variable.numpy()
        if before.shape == value.shape:
            variable.assign(before)
            continue
        if before.ndim == 2 and before.shape[0] == source_size and source_size != target_size:
            mapping, axis = source_map, 0  # the encoder's embedding
        elif before.ndim == 2 and before.shape[0] == target_size:
            mapping, axis = target_map, 0  # the decoder's embedding
        elif before.ndim == 2 and before.shape[1] == target_size:
            mapping, axis = target_map, 1  # the output layer's kernel
        elif before.ndim == 1 and before.shape[0] == target_size:
            mapping, axis = target_map, 0  # the output layer's bias
            value[:] = np.median(before)
        else:
            raise ValueError(f"{variable.path}: {before.shape} cannot become {value.shape}")
        new_ids, old_ids = np.array(list(mapping)), np.array(list(mapping.values()))
        if axis == 0:
            value[new_ids] = before[old_ids]
        else:
            value[:, new_ids] = before[:, old_ids]
        variable.assign(value)
    return {"source_pieces_from_words": len(source_map) - 4, "target_pieces_from_words": len(target_map) - 4,
            "pieces": tokenizer.size}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", required=True, help="word-level checkpoint folder (config.json, vocab.json)")
    parser.add_argument("--out", required=True, help="the warm folder to write")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--max-words", type=int, default=15)
    args = parser.parse_args(argv)
    import dataclasses

    import keras

    from trainers.nmt import data, model
    from trainers.nmt.subword import SubwordTokenizer
    from trainers.nmt.train import BUCKETS

    words = Path(args.words)
    vocabularies = json.loads((words / "vocab.json").read_text(encoding="utf-8"))
    if "source" not in vocabularies:
        print(f"error: {words / 'vocab.json'} is not a word-level vocabulary", file=sys.stderr)
        raise SystemExit(1)
    old_config = model.Seq2SeqConfig(**checkpoint.read_json(words / checkpoint.CONFIG_FILE))
    old_model = model.build(old_config)
    checkpoint.load_weights(old_model, words)
    corpus = data.load_corpus("offline", args.max_words)
    tokenizer = SubwordTokenizer.train(data.tokenizer_text(corpus.train), args.vocab_size)
    keras.utils.set_random_seed(0)
    new_config = dataclasses.replace(old_config, source_vocab_size=tokenizer.size, target_vocab_size=tokenizer.size,
                                     max_source_len=2 * BUCKETS[-1], max_target_len=2 * BUCKETS[-1])
    new_model = model.build(new_config)
    mapped = transplant(old_model, vocabularies["source"]["tokens"], vocabularies["target"]["tokens"], new_model,
                        tokenizer)
    metrics = {"model": "nmt", "epochs": 0, "steps": 0, "wall_time_seconds": 0.0, "history": [],
               "warm_start": {"from": str(words), **mapped}}
    model.save(Path(args.out), new_model, tokenizer, metrics)
    print(json.dumps(mapped))


if __name__ == "__main__":
    main()
