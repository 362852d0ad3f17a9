"""Loads each model's checkpoint once, on first use, and reloads it when a newer one is swapped into place.

The app never holds a model whose folder has been replaced: each `get` compares the checkpoint's identity (the
folder's inode and the weights file's modification time) with the one it loaded, so a promoted training run
(renamed into `checkpoints/<model>/` atomically) is picked up by the next request without a restart. A folder
that is missing or left mid-swap by a crash is recovered (trainers.common.checkpoint.recover_folder) before it is
looked for or loaded.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Callable

from playground.core_sharing import CORES
from trainers.common import checkpoint as checkpoint_io

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "checkpoints"


def checkpoints_root() -> Path:
    return Path(os.environ.get("EAGER_PLAYGROUND_CHECKPOINTS", DEFAULT_ROOT))


class Registry:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else checkpoints_root()
        self._loaded: dict[str, tuple[tuple, Any]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def path(self, name: str) -> Path:
        return self.root / name

    def exists(self, name: str) -> bool:
        if (self.path(name) / "config.json").is_file():
            return True
        self.recover(name)
        return (self.path(name) / "config.json").is_file()

    def recover(self, name: str) -> str | None:
        """Settles an interrupted swap of `name`'s folder (see trainers.common.checkpoint.recover_folder)."""
        try:
            return checkpoint_io.recover_folder(self.path(name))
        except OSError:  # the loader or the tab reports the missing checkpoint in a sentence
            return None

    def metrics(self, name: str) -> dict:
        try:
            return json.loads((self.path(name) / "metrics.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _identity(self, name: str) -> tuple:
        folder = self.path(name)
        try:
            weights = max((item.stat().st_mtime_ns for item in folder.iterdir() if item.is_file()), default=0)
            return folder.stat().st_ino, weights
        except FileNotFoundError:
            return None, None

    def get(self, name: str, loader: Callable[[Path], Any]) -> Any:
        """The loaded model for `name`, loading (or reloading a replaced checkpoint) through `loader(path)`."""
        CORES.serving()  # a request is being answered: a local training run keeps to one core meanwhile
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            if not (self.path(name) / "config.json").is_file():
                self.recover(name)
            identity = self._identity(name)
            cached = self._loaded.get(name)
            if cached is not None and cached[0] == identity:
                return cached[1]
            # The process's models run one thread per op, set before the first of them runs anything (the app's, a
            # Ray replica's; trainers.common.threads says why; EAGER_PLAYGROUND_OP_THREADS=default keeps TensorFlow's)
            from trainers.common.threads import use_serving_threads

            use_serving_threads()
            model = loader(self.path(name))
            self._loaded[name] = (identity, model)
            return model

    def forget(self, name: str) -> None:
        with self._guard:
            self._loaded.pop(name, None)
