"""Choose the detector-fusion weights and the abstention threshold on validation pictures (never real photos).

    python -m trainers.captioning.tune_fusion [--beam-top 6] [--json runs/captioning/fusion_tuning.json]
                                              [--write checkpoints/captioning]   # write the chosen fusion.json

Reads the cached sets of `fusion_data.py`. The rule, fixed before any run:

1. greedy decoding over a grid of (support_weight, mapped_weight, unmapped_weight, min_score) x abstain_below,
   scored on the tuning sets: photo-like validation (400), known-val, unknown-val and composed-val;
2. objective J = mean main-object-named rate of photo-val and known-val (real-photo stamps of known classes that
   no training picture uses) + object precision pooled over photo-val, known-val and unknown-val, among
   settings that keep composed-val object recall >= 0.87 and BLEU-4 >= 50 (the bars are 0.85 and 40);
3. the best `--beam-top` settings (plus no fusion) are decoded again with beam 3 (the tab's default) and the
   best J under beam 3 is chosen;
4. the chosen setting and no fusion are then scored once on the check sets (photo-test, unknown-test,
   known-test, composed-test: the 1,000 test scenes), which choose nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import time
from pathlib import Path

import numpy as np

GRID = {"support_weight": (0.0, 1.0, 2.0, 4.0), "mapped_weight": (0.0, 1.0, 2.0, 4.0),
        "unmapped_weight": (0.0, 0.5, 1.0, 2.0), "min_score": (0.3, 0.4, 0.5)}
THRESHOLDS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
TUNING = ("photo-val", "known-val", "unknown-val", "composed-val")
CHECK = ("photo-test", "known-test", "unknown-test", "composed-test")


def truth(record: dict) -> set[str]:
    """The class nouns really in a picture (none for the unknown things)."""
    from trainers.captioning import photos

    if "truth" in record:
        return set(record["truth"])
    nouns = set(photos.nouns())
    return {group["noun"] for group in record.get("groups", []) if group["noun"] in nouns}


def scores(captions: list[list[str]], records: list[dict]) -> dict:
    """named rate (pictures with a class in them whose caption names one), object precision and recall, the
    share of captions with an abstained "thing", and BLEU-4 for records that carry reference captions."""
    from trainers.captioning.realphotos import named_nouns

    said = right = placed = found = named = with_truth = generic = 0
    for words, record in zip(captions, records):
        real = truth(record)
        nouns = set(named_nouns(words))
        said += len(nouns)
        right += len(nouns & real)
        placed += len(real)
        found += len(nouns & real)
        with_truth += bool(real)
        named += bool(nouns & real)
        generic += any(word in ("thing", "things") for word in words)
    return {"pictures": len(records), "named_rate": round(named / with_truth, 4) if with_truth else None,
            "precision": round(right / said, 4) if said else None, "recall": round(found / placed, 4) if placed else None,
            "said": said, "right": right, "generic_share": round(generic / len(records), 4)}


def bleu(captions: list[list[str]], records: list[dict]) -> float:
    import sacrebleu

    streams = [[record["captions"][k] for record in records] for k in range(len(records[0]["captions"]))]
    return round(sacrebleu.corpus_bleu([" ".join(words) for words in captions], streams).score, 2)


class Decoder:
    """Decodes a cached set under a fusion setting, re-decoding only the pictures whose bias is not zero."""

    def __init__(self, captioner, features: np.ndarray, records: list[dict]):
        self.captioner, self.features, self.records = captioner, np.asarray(features, np.float32), records
        self.base = self._decode(np.arange(len(records)), None, beam=1)
        self.base_beam = None

    def _decode(self, rows: np.ndarray, bias: np.ndarray | None, beam: int) -> dict:
        out = {}
        captioner = self.captioner
        if beam == 1:
            for start in range(0, len(rows), 128):
                chunk = rows[start:start + 128]
                decoded = captioner.greedy_ids(self.features[chunk], bias=None if bias is None else bias[chunk])
                ids = [ids for ids, _ in decoded]
                probabilities = captioner.word_probabilities(self.features[chunk], ids)
                out.update({int(row): (row_ids, row_probs) for row, row_ids, row_probs in zip(chunk, ids, probabilities)})
        else:
            for row in rows:
                ids, _, _ = captioner.beam_ids(self.features[row], beam, bias=None if bias is None else bias[row])
                out[int(row)] = (ids, captioner.word_probabilities(self.features[row][None], [ids])[0])
        return out

    def decode(self, config, beam: int = 1) -> list[tuple[list[int], list[float]]]:
        from trainers.captioning import fusion

        vocabulary = self.captioner.vocabulary
        bias = np.stack([fusion.bias_vector(record["detections"], config, vocabulary.words, self.captioner.noun_of)
                         for record in self.records])
        changed = np.flatnonzero(np.abs(bias).sum(axis=1) > 0)
        if beam == 1:
            base = self.base
        else:
            if self.base_beam is None:
                self.base_beam = self._decode(np.arange(len(self.records)), None, beam)
            base = self.base_beam
        decoded = dict(base)
        decoded.update(self._decode(changed, bias, beam))
        return [decoded[row] for row in range(len(self.records))]

    def captions(self, decoded, config, threshold: float) -> list[list[str]]:
        from trainers.captioning import fusion

        vocabulary = self.captioner.vocabulary
        settings = dataclasses.replace(config, abstain_below=threshold)
        out = []
        for (ids, probabilities), record in zip(decoded, self.records):
            words = vocabulary.decode(ids)
            words, _ = fusion.abstain(words, probabilities[: len(words)], record["detections"], settings,
                                      self.captioner.noun_of)
            out.append(words)
        return out


def evaluate(decoders: dict, config, beam: int, thresholds=THRESHOLDS) -> list[dict]:
    """One row per threshold: the scores of every set under (config, threshold) and J."""
    decoded = {name: decoder.decode(config, beam) for name, decoder in decoders.items()}
    rows = []
    for threshold in thresholds:
        row = {"config": {**dataclasses.asdict(config), "abstain_below": threshold}, "beam": beam}
        captions = {name: decoders[name].captions(decoded[name], config, threshold) for name in decoders}
        for name, words in captions.items():
            row[name] = scores(words, decoders[name].records)
            if name.startswith("composed"):
                row[name]["bleu4"] = bleu(words, decoders[name].records)
        named_sets = [name for name in decoders if name.startswith(("photo", "known"))]
        precision_sets = [name for name in decoders if name.startswith(("photo", "known", "unknown"))]
        said = sum(row[name]["said"] for name in precision_sets)
        right = sum(row[name]["right"] for name in precision_sets)
        row["named_mean"] = round(float(np.mean([row[name]["named_rate"] for name in named_sets])), 4)
        row["precision_pooled"] = round(right / said, 4) if said else 0.0
        row["J"] = round(row["named_mean"] + row["precision_pooled"], 4)
        composed = [name for name in decoders if name.startswith("composed")]
        row["allowed"] = all(row[name]["recall"] >= 0.87 and row[name]["bleu4"] >= 50 for name in composed)
        rows.append(row)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default="")
    parser.add_argument("--beam-top", type=int, default=6)
    parser.add_argument("--json", default="runs/captioning/fusion_tuning.json")
    parser.add_argument("--write", default="", help="a checkpoint folder: write the chosen fusion.json there")
    args = parser.parse_args(argv)
    from trainers.captioning import fusion, fusion_data
    from trainers.captioning.caption import DEFAULT_CHECKPOINT, Captioner

    captioner = Captioner.load(DEFAULT_CHECKPOINT)
    root = fusion_data.fusion_root(args.seed, args.cache_dir)
    started = time.monotonic()
    tuning = {name: Decoder(captioner, *fusion_data.load_set(root, name)) for name in TUNING}
    log = lambda message: print(f"[{time.monotonic() - started:7.0f} s] {message}", flush=True)  # noqa: E731
    results = []
    for values in itertools.product(*GRID.values()):
        config = fusion.FusionConfig(**dict(zip(GRID, values)))
        rows = evaluate(tuning, config, beam=1)
        results += rows
        best = max(rows, key=lambda row: row["J"])
        log(f"{dict(zip(GRID, values))}: best J {best['J']} at abstain {best['config']['abstain_below']} "
            f"(named {best['named_mean']}, precision {best['precision_pooled']}, "
            f"composed recall {best['composed-val']['recall']})")
    allowed = sorted((row for row in results if row["allowed"]), key=lambda row: -row["J"])
    none = next(row for row in results if not any(row["config"][key] for key in
                                                   ("support_weight", "mapped_weight", "unmapped_weight",
                                                    "abstain_below")))
    top = []
    for row in allowed:
        if row["config"] not in top:
            top.append(row["config"])
        if len(top) == args.beam_top:
            break
    log(f"greedy: no fusion J {none['J']}; top {len(top)}: {[row['J'] for row in allowed[:len(top)]]}")
    beam_rows = []
    for settings in [none["config"], *top]:
        config = fusion.FusionConfig(**settings)
        row = evaluate(tuning, config, beam=3, thresholds=(settings["abstain_below"],))[0]
        beam_rows.append(row)
        log(f"beam 3 {settings}: J {row['J']} named {row['named_mean']} precision "
            f"{row['precision_pooled']} composed {row['composed-val']['bleu4']}/{row['composed-val']['recall']}"
            f" allowed {row['allowed']}")
    chosen = max((row for row in beam_rows if row["allowed"]), key=lambda row: row["J"])
    log(f"chosen: {chosen['config']}")
    check = {name: Decoder(captioner, *fusion_data.load_set(root, name)) for name in CHECK}
    checked = []
    for settings in (none["config"], chosen["config"]):
        config = fusion.FusionConfig(**settings)
        row = evaluate(check, config, beam=3, thresholds=(settings["abstain_below"],))[0]
        checked.append(row)
        log(f"check sets, beam 3, {settings}: " + json.dumps({name: row[name] for name in CHECK}))
    report = {"rule": __doc__.split("\n\n")[2], "grid": GRID, "thresholds": THRESHOLDS,
              "greedy": results, "beam3_tuning": beam_rows, "chosen": chosen["config"], "check_beam3": checked}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=1))
    if args.write:
        validation = {"tuning_beam3": {key: chosen[key] for key in (*TUNING, "named_mean", "precision_pooled", "J")},
                      "no_fusion_tuning_beam3": {key: beam_rows[0][key] for key in
                                                 (*TUNING, "named_mean", "precision_pooled", "J")},
                      "check_beam3": {key: checked[1][key] for key in CHECK},
                      "no_fusion_check_beam3": {key: checked[0][key] for key in CHECK}}
        (Path(args.write) / fusion.FUSION_FILE).write_text(json.dumps(
            {**chosen["config"], "chosen_by": "python -m trainers.captioning.tune_fusion (validation pictures only)",
             "validation": validation}, indent=1) + "\n")
        log(f"wrote {Path(args.write) / fusion.FUSION_FILE}")


if __name__ == "__main__":
    main()
