"""Score a captioning checkpoint on the held-out test scenes, greedy and with beam search.

    python -m trainers.captioning.evaluate [--checkpoint checkpoints/captioning] [--beam 3] [--write]

Uses the feature cache the trainer built (the same 1,000 test scenes of unseen object pairs). Prints BLEU-4, object
recall and precision for greedy decoding and for beam search; `--write` adds the beam-search scores to the
checkpoint's metrics.json under `beam` (the headline scores stay the greedy ones the trainer wrote).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from trainers.captioning.caption import DEFAULT_CHECKPOINT


def score(captioner, features, records, beam: int) -> dict:
    import sacrebleu

    from trainers.captioning.train import object_scores

    started = time.monotonic()
    if beam == 1:
        hypotheses = []
        for start in range(0, len(features), 128):
            hypotheses += [captioner.vocabulary.decode(ids)
                           for ids, _ in captioner.greedy_ids(np.asarray(features[start:start + 128], np.float32))]
    else:
        hypotheses = [captioner.vocabulary.decode(captioner.beam_ids(np.asarray(row, np.float32), beam)[0])
                      for row in features]
    streams = [[record["captions"][k] for record in records] for k in range(len(records[0]["captions"]))]
    bleu = sacrebleu.corpus_bleu([" ".join(words) for words in hypotheses], streams)
    recall, precision = object_scores(hypotheses, records)
    exact = float(np.mean([" ".join(words) in record["captions"] for words, record in zip(hypotheses, records)]))
    return {"beam_width": beam, "bleu4": round(bleu.score, 2), "object_recall": round(recall, 4),
            "object_precision": round(precision, 4), "exact_match": round(exact, 4),
            "scenes": len(records), "seconds": round(time.monotonic() - started, 1)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--beam", type=int, default=3)
    parser.add_argument("--count", type=int, default=1000, help="test scenes to score")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default="")
    parser.add_argument("--write", action="store_true", help="record the beam scores in metrics.json")
    args = parser.parse_args(argv)
    from trainers.captioning import data
    from trainers.captioning.caption import Captioner
    from trainers.common import checkpoint

    root = data.cache_root("offline", args.seed, args.cache_dir)
    try:
        features, records = data.load_split(root, "test", args.count)
    except (OSError, RuntimeError) as error:
        print(f"error: no test feature cache in {root} ({error}); run python -m trainers.captioning.data first",
              file=sys.stderr)
        raise SystemExit(1)
    captioner = Captioner.load(Path(args.checkpoint))
    results = [score(captioner, features, records, 1)]
    if args.beam > 1:
        results.append(score(captioner, features, records, args.beam))
    for result in results:
        print(json.dumps(result))
    if args.write and args.beam > 1:
        path = Path(args.checkpoint) / checkpoint.METRICS_FILE
        metrics = checkpoint.read_json(path)
        metrics["beam"] = results[-1]
        checkpoint.write_json(path, metrics)


if __name__ == "__main__":
    main()
