"""Assembles README.md from docs/README.head.md, the per-model sections and docs/README.tail.md.

    python docs/build_readme.py

The scores table is read from each shipped checkpoint's metrics.json, so the README cannot drift from them.
"""

import json
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
SECTIONS = ["text.md", "dcgan.md", "nmt.md", "captioning.md", "speed.md", "training.md", "export.md"]


def large_sample(gan: dict) -> str:
    large = gan.get("large_sample")
    if not large:
        return ""
    return (f"; on 10,000 digits {large['classifier_confidence']:.3f} ± {large['confidence_standard_error']:.3f}")


def metrics(model: str) -> dict:
    path = ROOT / "checkpoints" / model / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else {}


def fmt(value, digits=1):
    return "—" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def scores_table() -> str:
    text, gan, nmt, cap = metrics("char_rnn"), metrics("dcgan"), metrics("nmt"), metrics("captioning")
    rows = [
        ("Text", "character GRU", "held-out loss (Hamlet, Twelfth Night)",
         f"{fmt(text.get('heldout_loss_nats_per_char'), 3)} nats/char (bar ≤ 1.50)",
         text.get("epochs"), text.get("wall_time_seconds")),
        ("Digits", "DCGAN + judging classifier", "classifier confidence / FID (floor)",
         f"{fmt(gan.get('classifier_confidence'), 3)} / {fmt(gan.get('classifier_fid'), 2)} "
         f"({fmt(gan.get('classifier_fid_floor'), 2)}) (bar: confidence ≥ 0.90){large_sample(gan)}", gan.get("epochs"),
         gan.get("wall_time_seconds")),
        ("Translate", "GRU encoder-decoder + Bahdanau attention", "BLEU beam / greedy (held-out chapters)",
         f"{fmt(nmt.get('bleu_beam'))} / {fmt(nmt.get('bleu_greedy'))} (bar ≥ 15)", nmt.get("epochs"),
         nmt.get("wall_time_seconds")),
        ("Caption", "MobileNet + GRU decoder + Bahdanau attention", "BLEU-4 / object recall (held-out scenes)",
         f"{fmt(cap.get('bleu4'))} / {fmt(cap.get('object_recall'), 3)} (bars ≥ 40, ≥ 0.85)", cap.get("epochs"),
         cap.get("wall_time_seconds")),
    ]
    lines = ["| tab | model | held-out score | value | epochs | training wall time |",
             "|---|---|---|---|---|---|"]
    for tab, model, score, value, epochs, seconds in rows:
        minutes = "—" if seconds is None else f"{seconds / 60:.0f} min"
        lines.append(f"| {tab} | {model} | {score} | {value} | {fmt(epochs)} | {minutes} |")
    return "\n".join(lines) + "\n\nA dash means that checkpoint is not shipped yet; the details of each are in its section below."


def main() -> None:
    head = (DOCS / "README.head.md").read_text().replace("SCORES_TABLE", scores_table())
    sections = [(DOCS / name).read_text().strip() for name in SECTIONS if (DOCS / name).exists()]
    tail = (DOCS / "README.tail.md").read_text()
    (ROOT / "README.md").write_text("\n\n".join([head.strip(), *sections, tail.strip()]) + "\n")


if __name__ == "__main__":
    main()
