"""Downloads the canonical data sets into a cache folder, checked by sha256.

A download is written to `<name>.part` and renamed into place only after its checksum matches, so a partial or
corrupt file never looks complete; an interrupted download resumes from the `.part` file with an HTTP Range
request. Network failures are detected quickly (a short connect timeout) so that a trainer without internet
says so in one line and moves on to its offline source instead of hanging.

The cache folder is `$EAGER_PLAYGROUND_CACHE`, or `~/.cache/eager-playground` when that is not set.

Why not `keras.utils.get_file` (Keras 3.15): it has no connect timeout (offline, a trainer could hang instead of
falling back), no resume, it writes straight into the final file name (a killed download without a hash then
looks complete: the COCO archives have none), and a file that fails its hash check is left in place. Those four
are what this module is for; it also needs no TensorFlow import, so data scripts and tests use it directly.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

CONNECT_TIMEOUT_SECONDS = 4.0
CHUNK_BYTES = 1 << 20


class DownloadError(RuntimeError):
    """The file could not be fetched or did not match its checksum."""


def cache_dir() -> Path:
    folder = Path(os.environ.get("EAGER_PLAYGROUND_CACHE", Path.home() / ".cache" / "eager-playground"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, sha256: str | None, filename: str | None = None, folder: Path | None = None,
          timeout: float = CONNECT_TIMEOUT_SECONDS) -> Path:
    """Returns the cached file for `url`, downloading it first if needed.

    Raises DownloadError when the server cannot be reached within `timeout` seconds, answers with an error,
    or sends a file whose sha256 is not `sha256` (None skips the check, for a user's own URL).
    """
    folder = Path(folder) if folder is not None else cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (filename or url.rstrip("/").rsplit("/", 1)[-1])
    if target.exists() and (sha256 is None or sha256_of(target) == sha256):
        return target
    partial = target.with_name(target.name + ".part")
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            # A server that ignores Range answers 200 with the whole file: start again from zero.
            mode = "ab" if offset and response.status == 206 else "wb"
            with open(partial, mode) as handle:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    handle.write(chunk)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"could not download {url}: {reason}") from error
    if sha256 is not None:
        actual = sha256_of(partial)
        if actual != sha256:
            partial.unlink(missing_ok=True)
            raise DownloadError(f"{url} did not match its checksum (expected sha256 {sha256[:12]}…, "
                                f"got {actual[:12]}…); the bad file was deleted")
    os.replace(partial, target)
    return target


def fetch_or_none(url: str, sha256: str | None, what: str, offline_name: str, **kwargs) -> Path | None:
    """Like `fetch`, but on failure prints one line saying the offline source is used, and returns None."""
    try:
        return fetch(url, sha256, **kwargs)
    except DownloadError as error:
        print(f"No download for {what} ({error}); using the offline source: {offline_name}.", file=sys.stderr)
        return None
