"""The user's own writing: checking an uploaded text file and naming the run's copy of it.

A run never trains on the upload itself (Gradio may delete it): the jobs code copies it into the run folder under
a safe name derived from the upload's, so the trained checkpoint's metrics.json names the data a person gave.
"""

from __future__ import annotations

import re
from pathlib import Path

from playground.job_error import JobError

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MIN_CHARACTERS = 2000
UPLOADED_TEXT = "uploaded_text.txt"
RESERVED_STEMS = {"job", "output", "train_config"}  # the run folder's own files


def check_upload(path: Path) -> Path:
    """The upload's path if it is UTF-8 text of at least 2,000 characters, else JobError with a sentence."""
    path = Path(path)
    if not path.is_file():
        raise JobError("the uploaded file cannot be found; upload it again")
    if path.stat().st_size > MAX_UPLOAD_BYTES:
        raise JobError(f"the text file is larger than {MAX_UPLOAD_BYTES // 2**20} MB; use a smaller one")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise JobError(f"{path.name} is not UTF-8 text (byte {error.start} cannot be decoded); save it as "
                       f"UTF-8 and upload it again") from None
    if len(text) < MIN_CHARACTERS:
        raise JobError(f"{path.name} has only {len(text)} characters; give at least 2,000 to train on")
    return path


def text_copy_name(name: str) -> str:
    """A safe file name for the run's copy of an upload, e.g. 'My Sonnets (v2).txt' -> 'My_Sonnets_v2.txt'."""
    stem = re.sub(r"[^\w.-]+", "_", Path(name).stem).strip("._")[:60]
    return f"{stem}.txt" if stem and stem not in RESERVED_STEMS else UPLOADED_TEXT
