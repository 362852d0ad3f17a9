"""Score a translation checkpoint on the held-out test split and record the result in its metrics.json.

    python -m trainers.nmt.evaluate runs/nmt/best                 # greedy and beam (width 5) BLEU on test
    python -m trainers.nmt.evaluate checkpoints/nmt --beam 5 --limit 300 --no-write

Corpus BLEU (sacrebleu, 13a tokenisation, lower-cased, the hypotheses and references both normalised as the
model's English tokens) against every English reference of each test segment (`bleu_greedy`, `bleu_beam`), and
against the World English Bible alone (`bleu_beam_single_ref`, `bleu_greedy_single_ref`, on the test segments
that have a WEB reference), the Bible read with the `<bible>` tag. Then the everyday test pairs (whole held-out
catalogues, stamp folders and prompt families, one reference each) with the `<everyday>` tag, as the app asks:
greedy and beam BLEU, per source too. Both sets also count refused inputs and outputs containing <unk>. The test
splits are rebuilt from the same data and recorded in metrics.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from trainers.common import checkpoint


def failures(translator, texts: list[str], outputs: list[str], domain: str) -> dict:
    """How many inputs the translator refuses (a TranslationInputError) and how many outputs contain <unk>."""
    from trainers.nmt.translate import TranslationInputError

    refused = 0
    for text in texts:
        try:
            translator.prepare(text, domain)
        except TranslationInputError:
            refused += 1
    return {"refused_inputs": refused, "outputs_with_unk": sum(1 for o in outputs if "<unk>" in o or "\u2047" in o)}


def evaluate_everyday(translator, examples, beam: int = 5, alpha: float = 1.0, stream=None) -> dict:
    """sacrebleu BLEU (greedy and beam) of the everyday test pairs (one reference each), per source too."""
    import collections

    from trainers.nmt.translate import corpus_bleu

    sources, references = [e.source for e in examples], [e.references for e in examples]
    greedy = translator.translate_batch(sources, domain="everyday")
    beamed = translator.translate_beam(sources, beam, alpha=alpha, domain="everyday")
    origins = [e.origin for e in examples]
    by_source = {origin: {"pairs": count,
                          "bleu_beam": corpus_bleu([b for b, o in zip(beamed, origins) if o == origin],
                                                   [r for r, o in zip(references, origins) if o == origin])}
                 for origin, count in sorted(collections.Counter(origins).items())}
    result = {"bleu_greedy": corpus_bleu(greedy, references), "bleu_beam": corpus_bleu(beamed, references),
              "beam_width": beam, "pairs": len(examples), "by_source": by_source,
              "groups": sorted({e.group for e in examples}),
              **failures(translator, sources, greedy + beamed, "everyday"),
              "examples": [{"spanish": s, "beam": b, "reference": next(iter(r.values())), "group": e.group}
                           for s, b, r, e in list(zip(sources, beamed, references, examples))[::25]]}
    print(f"everyday test: BLEU greedy {result['bleu_greedy']}, beam {beam} {result['bleu_beam']} on "
          f"{len(examples)} pairs ({', '.join(f'{k} {v}' for k, v in by_source.items())}); refused "
          f"{result['refused_inputs']}, outputs with <unk> {result['outputs_with_unk']}", file=stream or sys.stdout)
    return result


def evaluate(path: Path, beam: int = 5, alpha: float = 1.0, limit: int = 0, source: str | None = None,
             max_words: int = 15, split: str = "test", stream=None) -> dict:
    from trainers.nmt import data
    from trainers.nmt.translate import Translator, corpus_bleu

    stream = stream or sys.stdout
    translator = Translator.load(path)
    metrics = checkpoint.read_json(path / checkpoint.METRICS_FILE) if (path / checkpoint.METRICS_FILE).exists() else {}
    source = source or ("canonical" if str(metrics.get("data", {}).get("source", "")).startswith("canonical")
                        else "offline")
    corpus = data.load_corpus(source, max_words)
    test = getattr(corpus, split)
    test = test[:limit] if limit else test
    domain = "everyday" if source == "canonical" else "bible"
    sources, references = [e.source for e in test], [e.references for e in test]
    started = time.monotonic()
    greedy = translator.translate_batch(sources, domain=domain)
    greedy_seconds = time.monotonic() - started
    started = time.monotonic()
    beamed = translator.translate_beam(sources, beam, alpha=alpha, domain=domain)
    beam_seconds = time.monotonic() - started
    single = (data.SINGLE_REFERENCE,) if source == "offline" else None
    result = {
        "bleu_greedy": corpus_bleu(greedy, references),
        "bleu_beam": corpus_bleu(beamed, references),
        "beam_width": beam,
        "beam_length_alpha": alpha,
        "bleu_greedy_single_ref": corpus_bleu(greedy, references, single),
        "bleu_beam_single_ref": corpus_bleu(beamed, references, single),
        "single_reference": data.ENGLISH_VERSIONS.get(data.SINGLE_REFERENCE) if single else "first Anki translation",
        "split_scored": split,
        "test_segments_scored": len(test),
        "test_segments_with_single_ref": sum(1 for r in references if single is None or data.SINGLE_REFERENCE in r),
        "bleu_settings": "sacrebleu corpus_bleu, tokenize=13a, lowercase, multi-reference (all English versions "
                         "of each segment); hypotheses and references normalised to the model's English tokens",
        "greedy_sentences_per_second": round(len(test) / greedy_seconds, 1),
        "beam_sentences_per_second": round(len(test) / beam_seconds, 1),
        "test_split": corpus.description.get("split"),
        "test_chapters": corpus.description.get("test_chapter_list"),
        "segmentation": corpus.description.get("segmentation"),
        "domain_tag": domain,
        **failures(translator, sources, greedy + beamed, domain),
    }
    print(f"{path} ({split}): BLEU greedy {result['bleu_greedy']}, beam {beam} {result['bleu_beam']} "
          f"(multi-reference); "
          f"single-reference beam {result['bleu_beam_single_ref']}, greedy {result['bleu_greedy_single_ref']} "
          f"on {len(test)} test segments", file=stream)
    result["examples"] = [{"spanish": s, "greedy": g, "beam": b, "references": r}
                          for s, g, b, r in list(zip(sources, greedy, beamed, references))[:12]]
    everyday_set = getattr(corpus, f"everyday_{split}")
    if everyday_set:
        result["everyday"] = evaluate_everyday(translator, everyday_set[:limit] if limit else everyday_set, beam,
                                               alpha, stream)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="checkpoint folder")
    parser.add_argument("--beam", type=int, default=5, help="beam width")
    parser.add_argument("--alpha", type=float, default=1.0, help="length normalisation exponent")
    parser.add_argument("--limit", type=int, default=0, help="score only the first N test segments (0: all)")
    parser.add_argument("--split", choices=("test", "validation"), default="test",
                        help="validation is for choosing decoding settings; only test is written")
    parser.add_argument("--no-write", action="store_true", help="print only; leave metrics.json as it is")
    args = parser.parse_args(argv)
    if not 1 <= args.beam <= 20:
        print(f"error: --beam must be between 1 and 20, got {args.beam}", file=sys.stderr)
        raise SystemExit(2)
    path = Path(args.checkpoint)
    try:
        result = evaluate(path, args.beam, args.alpha, args.limit, split=args.split)
    except (checkpoint.CheckpointError, RuntimeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1)
    if not args.no_write and args.split == "test":
        metrics_file = path / checkpoint.METRICS_FILE
        metrics = checkpoint.read_json(metrics_file) if metrics_file.exists() else {}
        metrics.update({"test": result, **{k: result[k] for k in (
            "bleu_greedy", "bleu_beam", "beam_width", "bleu_beam_single_ref", "bleu_greedy_single_ref")}})
        if "everyday" in result:
            metrics["everyday_bleu_beam"] = result["everyday"]["bleu_beam"]
        metrics.pop("note", None)
        checkpoint.write_json(path / checkpoint.METRICS_FILE, metrics)
        print(f"wrote {path / checkpoint.METRICS_FILE}")


if __name__ == "__main__":
    main()
