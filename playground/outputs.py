"""Files a response returns (pictures, GIFs): each response writes its own, atomically, and old ones are pruned.

Gradio copies a returned *file* into its content-addressed cache with an atomic rename, whereas a returned array
or PIL image is re-encoded over the same cache file by every identical response, and another response still
sending that file then breaks ("h11: Too little data for declared Content-Length", a RemoteProtocolError for the
client). So every handler that returns a picture writes it with `picture_file` (or a GIF with `new_path`) and
returns the path. Gradio copies the file into its cache while it post-processes the response, before the handler's
request ends, so this copy is needed only for seconds: files older than LIFETIME seconds are deleted, here and in
the folders left by earlier app processes (a killed app never runs its atexit clean-up). What the page shows is
Gradio's copy, kept for CACHE_AGE_SECONDS by `delete_cache` (playground/__main__.py).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(tempfile.gettempdir()) / "eager-playground-outputs"
FOLDER = ROOT / str(os.getpid())
LIFETIME = 60  # seconds: a response's own file outlives its copy into Gradio's cache by far (the soak: 16 users)


def folder() -> Path:
    if not FOLDER.is_dir():
        FOLDER.mkdir(parents=True, exist_ok=True)
        atexit.register(shutil.rmtree, FOLDER, ignore_errors=True)
    return FOLDER


def new_path(suffix: str, prefix: str = "") -> Path:
    """A fresh file name in this process's output folder (pruning old files first)."""
    prune()
    return folder() / f"{prefix}{uuid.uuid4().hex}{suffix}"


def picture_file(picture, suffix: str = ".webp") -> str:
    """Writes a picture (numpy array or PIL image) to a file of its own, atomically, and returns its path."""
    import numpy as np
    from PIL import Image

    target = new_path(suffix)
    staging = target.with_name(f".{target.name}.part")
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(np.asarray(picture, np.uint8))
    try:
        image.save(staging, format={".webp": "WEBP", ".png": "PNG"}[suffix])
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return str(target)


def prune(now: float | None = None) -> None:
    """Deletes output files older than LIFETIME, of this process and of earlier ones; concurrent prunes (threads,
    other app processes) may remove the same files or folders first, which is fine."""
    cutoff = (now or time.time()) - LIFETIME
    try:
        places = [place for place in ROOT.iterdir() if place.is_dir()]
    except OSError:
        return
    for place in places:
        try:
            entries = list(place.iterdir())
        except OSError:  # removed meanwhile by another prune
            continue
        for old in entries:
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except OSError:
                pass
        if place != FOLDER:
            try:
                place.rmdir()  # an earlier process's folder, once empty
            except OSError:
                pass
