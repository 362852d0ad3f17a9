"""Held-out loss of a checkpoint, recomputed in float32 exactly as the app serves it.

    python -m trainers.char_rnn.evaluate [--checkpoint checkpoints/char_rnn] [--write]

The held-out text is the checkpoint's own: the works listed in its metrics.json (offline corpus), or, for other
sources, the same split the trainer made. `--write` stores the result in metrics.json as
`heldout_loss_float32_nats_per_char`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from trainers.common import checkpoint, cli


def heldout_loss(path: Path, seq_len: int, batch_size: int = 128) -> tuple[float, int]:
    from trainers.char_rnn import data
    from trainers.char_rnn.model import load
    from trainers.char_rnn.train import evaluate, make_eval_step

    metrics = checkpoint.read_json(Path(path) / checkpoint.METRICS_FILE)
    works = metrics.get("data", {}).get("heldout_works")
    if not works:
        raise ValueError(f"{path} was not trained on the offline corpus; evaluate it with its trainer")
    model, vocabulary = load(path)
    ids = vocabulary.encode(data.offline_corpus(tuple(works)).heldout_text)
    dataset = data.sequence_dataset(ids, seq_len, batch_size, shuffle=False, drop_remainder=False)
    return evaluate(make_eval_step(model, eager=False), dataset), len(ids)


def main(argv=None) -> None:
    from trainers.char_rnn.generate import DEFAULT_CHECKPOINT

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--write", action="store_true", help="store the result in metrics.json")
    args = parser.parse_args(argv)
    try:
        metrics = checkpoint.read_json(Path(args.checkpoint) / checkpoint.METRICS_FILE)
        loss, characters = heldout_loss(Path(args.checkpoint), metrics.get("seq_len", 100))
    except (checkpoint.CheckpointError, ValueError, RuntimeError) as error:
        cli.fail(str(error), status=1)
    print(f"held-out loss (float32): {loss:.4f} nats/char = {loss / math.log(2):.4f} bits/char "
          f"over {characters} characters")
    if args.write:
        metrics["heldout_loss_float32_nats_per_char"] = round(loss, 4)
        checkpoint.write_json(Path(args.checkpoint) / checkpoint.METRICS_FILE, metrics)


if __name__ == "__main__":
    main()
