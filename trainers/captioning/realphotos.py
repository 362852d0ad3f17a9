"""Score a captioner on real photos: the photos with an obvious main object that installed packages ship.

    python -m trainers.captioning.realphotos [--checkpoint checkpoints/captioning] [--beam 3] [--json out.json]
                                             [--detector [--no-fusion]]
                                             [--write]    # record the scores in the checkpoint's metrics.json

With `--detector` the COCO detector runs on each photo at the Caption tab's display size (DETECTOR_SIDE) and its
findings steer the caption's nouns, as in the tab (`fusion.py`); `--no-fusion` only lists them (the decoder alone).

The set is `real_photos.json` beside this file (package, path inside it, the nouns naming each photo's main
object(s) and the nouns of other things really in it); the pictures are read from the installed packages
(scikit-image, scikit-learn, matplotlib), never copied into the project. It is an evaluation set only: nothing
is trained, tuned or picked on it. Reported:

- **main-object-named rate**: the share of photos whose caption names one of its main objects;
- **object precision**: of the objects the captions name (distinct class nouns per caption), the share that are
  really in the photo (a main object or one listed under `also`);
- per photo: the caption, the nouns named, the novelty judgement (is the photo beyond the validation-set
  threshold of distance to the training pictures?) and, when the detector is installed, what it finds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

MANIFEST = Path(__file__).resolve().parent / "real_photos.json"
# The Caption tab runs the detector on the picture it shows (playground/caption_tab.py DISPLAY_SIDE). The scores
# recorded before 2026-12-06 ran it at 640 px: the same findings and the same 13 captions as at 448.
DETECTOR_SIDE = 448


def package_root(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def load_manifest(path: Path = MANIFEST) -> list[dict]:
    """The manifest's photos, each with `file` (its path in the installed package, or None when not installed)."""
    photos = json.loads(Path(path).read_text(encoding="utf-8"))["photos"]
    for photo in photos:
        root = package_root(photo["package"])
        file = root / photo["path"] if root is not None else None
        photo["file"] = str(file) if file is not None and file.is_file() else None
        photo["name"] = f"{photo['package']} {Path(photo['path']).name}"
    return photos


def named_nouns(words: list[str]) -> list[str]:
    """The class nouns a caption names, once each, in order."""
    from trainers.captioning import photos

    table = photos.noun_table()
    found = []
    for word in words:
        noun = table.get(word)
        if noun and noun not in found:
            found.append(noun)
    return found


def score(rows: list[dict]) -> dict:
    """rows: {"main", "also", "words"} per photo -> named rate, object precision and their counts."""
    named = sum(1 for row in rows if set(named_nouns(row["words"])) & set(row["main"]))
    said = [noun for row in rows for noun in named_nouns(row["words"])]
    right = sum(1 for row in rows for noun in named_nouns(row["words"]) if noun in set(row["main"]) | set(row["also"]))
    return {"photos": len(rows), "main_object_named": named,
            "main_object_named_rate": round(named / len(rows), 4) if rows else float("nan"),
            "objects_named": len(said), "objects_right": right,
            "object_precision": round(right / len(said), 4) if said else 0.0}


def evaluate(captioner, photos: list[dict], beam: int = 3, detector=None, fusion: bool = True) -> dict:
    """Captions every installed photo and scores them. With a detector, its findings steer the caption (as in the
    Caption tab) unless `fusion` is False (then they are only listed)."""
    from trainers.captioning import encoder as encoder_module

    rows = []
    for photo in photos:
        if photo["file"] is None:
            continue
        found = None
        if detector is not None:
            import numpy as np

            picture = np.asarray(encoder_module.open_picture(photo["file"], size=DETECTOR_SIDE))
            found = detector.detect(picture)
        result = captioner.caption(photo["file"], beam=beam, detections=found if fusion else None)
        row = {"name": photo["name"], "title": photo.get("title", photo["name"]), "main": photo["main"],
               "also": photo["also"], "caption": result["caption"],
               "words": result["words"], "named": named_nouns(result["words"]),
               "novelty": result.get("novelty"),
               "imagenet_top3": [item["label"] for item in result.get("imagenet_top3", [])]}
        row["main_named"] = bool(set(row["named"]) & set(photo["main"]))
        if detector is not None:
            row["detector"] = [f"{item['label']} {item['score']:.2f}" for item in found]
        if result.get("fusion"):
            row["abstained"] = [item["word"] for item in result["fusion"]["abstained"]]
        rows.append(row)
    missing = [photo["name"] for photo in photos if photo["file"] is None]
    return {**score(rows), "beam": beam, "fusion": bool(fusion) if detector is not None else None,
            "missing": missing,
            "unfamiliar": sum(1 for row in rows if (row["novelty"] or {}).get("unfamiliar")), "rows": rows}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(Path(__file__).resolve().parents[2] / "checkpoints" /
                                                    "captioning"))
    parser.add_argument("--beam", type=int, default=3)
    parser.add_argument("--json", default="", help="also write the full results to this file")
    parser.add_argument("--detector", action="store_true",
                        help="run the COCO detector and let its findings steer the caption, as the Caption tab does")
    parser.add_argument("--no-fusion", action="store_true",
                        help="with --detector: only list the detections; the caption is the decoder's alone")
    parser.add_argument("--write", action="store_true",
                        help="record the scores and captions in the checkpoint's metrics.json under real_photos "
                             "(beam 3) or real_photos_beam<N>; the Caption tab quotes them")
    args = parser.parse_args(argv)
    from trainers.captioning.caption import Captioner

    photos = load_manifest()
    if all(photo["file"] is None for photo in photos):
        print("error: none of the photos' packages is installed (pip install scikit-image scikit-learn)",
              file=sys.stderr)
        raise SystemExit(1)
    detector = None
    if args.detector:
        from trainers.captioning import detector as detector_module

        detector = detector_module.Detector.load()
    results = evaluate(Captioner.load(Path(args.checkpoint)), photos, args.beam, detector, not args.no_fusion)
    for row in results["rows"]:
        mark = "named" if row["main_named"] else "MISSED"
        print(f"{row['name']:42s} {mark:6s} {row['caption']}"
              + (f"   [detector: {', '.join(row['detector'])}]" if detector is not None else ""))
    print(json.dumps({key: value for key, value in results.items() if key != "rows"}))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.write:
        write_metrics(Path(args.checkpoint), results)


def write_metrics(folder: Path, results: dict) -> str:
    """Adds the scores, and per photo its title, caption and whether the main object was named, to the folder's
    metrics.json; returns the key used (real_photos for beam 3, else real_photos_beam<N>; with _decoder_only
    appended when scored without the detector's steering)."""
    from trainers.common import checkpoint

    key = "real_photos" if results["beam"] == 3 else f"real_photos_beam{results['beam']}"
    if results.get("fusion") is False:  # scored without the detector's steering: kept apart from the tab's record
        key += "_decoder_only"
    path = folder / checkpoint.METRICS_FILE
    metrics = checkpoint.read_json(path) if path.is_file() else {}
    metrics[key] = {**{name: value for name, value in results.items() if name != "rows"},
                    "set": f"trainers/captioning/{MANIFEST.name} ({results['photos']} photos shipped by scikit-image, "
                           f"scikit-learn, matplotlib; evaluation only)",
                    "photos_scored": [{"name": row["name"], "title": row["title"], "caption": row["caption"],
                                       "main_named": row["main_named"], "named": row["named"], "main": row["main"]}
                                      for row in results["rows"]]}
    checkpoint.write_json(path, metrics)
    return key


if __name__ == "__main__":
    main()
