"""Helpers the benchmark scripts share (run them from benchmarks/ or with it on sys.path)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any


def atomic_pickle(path: Path, obj: Any) -> None:
    """Pickle ``obj`` to ``path`` through a temporary file renamed at the end (a killed run leaves no half file)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with tmp.open("wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def load_pickle(path: Path) -> Any:
    with path.open("rb") as fh:
        return pickle.load(fh)
