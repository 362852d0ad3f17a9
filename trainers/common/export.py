"""SavedModel export shared by the four models: `python -m trainers.<model>.export --out exported/<model>/1`.

Each model's `export.py` builds a `tf.Module` whose serving signatures do a whole job in the graph (no Python at
serving time) and calls `main` here, which parses the flags, checks the output folder and writes the SavedModel
atomically (`checkpoint.write_folder`: a failed export leaves nothing half-written). The folder layout is the
versioned one TensorFlow Serving expects: `--out exported/<model>/<version>` with a whole-number version; a
`--out` that is not versioned gets a sentence, as does a checkpoint folder that cannot be loaded.

    tensorflow_model_server --rest_api_port=8501 --model_name=char_rnn --model_base_path=$PWD/exported/char_rnn
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]


def check_out(out: Path, overwrite: bool) -> list[str]:
    """Problems with an export folder, as sentences: it must be <base>/<version> and not already exist."""
    problems = []
    if not out.name.isdigit() or int(out.name) < 1:
        problems.append(f"--out must end in a version number, as TensorFlow Serving expects "
                        f"(e.g. exported/{out.name or 'model'}/1), got {out}")
    if out.exists() and not overwrite:
        problems.append(f"{out} exists already; choose the next version number or give --overwrite")
    return problems


def main(model: str, build: Callable[[Path], object], signature: str, argv=None, doc: str = "") -> Path:
    """Parses --checkpoint/--out/--overwrite, builds the module from the checkpoint and saves it; returns out.

    `build(checkpoint_folder)` returns the tf.Module; its method `signature` (a tf.function with an input
    signature) is served under that name and as `serving_default`."""
    parser = argparse.ArgumentParser(prog=f"python -m trainers.{model}.export",
                                     description=(doc or f"Export the {model} model as a SavedModel.").split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / model), help="checkpoint folder")
    parser.add_argument("--out", default=f"exported/{model}/1", help="versioned SavedModel folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version")
    args = parser.parse_args(argv)
    out = Path(args.out)
    problems = check_out(out, args.overwrite)
    if problems:
        fail(problems[0])
    from trainers.common import checkpoint

    try:
        module = build(Path(args.checkpoint))
    except (checkpoint.CheckpointError, OSError, ValueError) as error:
        fail(f"cannot export {args.checkpoint}: {error}")
    function = getattr(module, signature)
    signatures = {"serving_default": function, signature: function}
    save(module, out, signatures)
    print(f"SavedModel written to {out} (signatures: {', '.join(signatures)})")
    return out


def save(module, out: Path, signatures: dict) -> Path:
    """Writes `module` with `signatures` to `out` atomically."""
    import tensorflow as tf

    from trainers.common import checkpoint

    return checkpoint.write_folder(out, lambda folder: tf.saved_model.save(module, str(folder),
                                                                           signatures=signatures))


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
