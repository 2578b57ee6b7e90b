"""Helpers the benchmark scripts share (run them from benchmarks/ or with it on sys.path)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from alloop.io import write_atomic


def atomic_pickle(path: Path, obj: Any) -> None:
    """Pickle ``obj`` to ``path`` atomically (:func:`alloop.io.write_atomic`: a killed run leaves no half file)."""
    write_atomic(path, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def load_pickle(path: Path) -> Any:
    with path.open("rb") as fh:
        return pickle.load(fh)
