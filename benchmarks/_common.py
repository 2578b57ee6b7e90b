"""What the benchmark scripts share: where the repository and its data are, the mean +- std cell, Markdown tables,
atomic pickles.

The scripts run as ``python benchmarks/<script>.py``, so this folder is on ``sys.path`` and ``from _common import
...`` works without editing it.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from alloop.io import write_atomic

#: the repository
ROOT = Path(__file__).resolve().parents[1]
#: the committed benchmark data (labelled test sets, pools)
DATA = ROOT / "benchmarks" / "data"


def mean_std(values: Iterable[float], digits: int = 3, scale: float = 1.0, sign: str = "") -> str:
    """``mean ± sample std`` of ``values`` x ``scale`` with ``digits`` decimals (the mean alone for one value);
    ``sign="+"`` prints the mean's sign."""
    a = np.asarray(list(values), dtype=float) * scale
    mean = f"{a.mean():{sign}.{digits}f}"
    return f"{mean} ± {a.std(ddof=1):.{digits}f}" if a.size > 1 else mean


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], float_format: str = "{:.1f}") -> str:
    """A Markdown table; floats are formatted with ``float_format``, everything else with ``str``."""
    def cell(v: Any) -> str:
        return float_format.format(v) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])


def atomic_pickle(path: Path, obj: Any) -> None:
    """Pickle ``obj`` to ``path`` atomically (:func:`alloop.io.write_atomic`: a killed run leaves no half file)."""
    write_atomic(path, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def load_pickle(path: Path) -> Any:
    with path.open("rb") as fh:
        return pickle.load(fh)
