"""The benchmarks' figures: a grid of axes drawn off-screen (matplotlib's Agg backend), saved to a PNG and closed.

    with figure(path, rows=1, cols=2, size=(10, 4)) as axes:   # axes[row][col], always 2-D
        axes[0][0].plot(...)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def figure(path: Path, rows: int, cols: int, size: tuple[float, float], dpi: int = 120,
           **subplots: Any) -> Iterator[Any]:
    """A ``rows`` x ``cols`` grid of axes (2-D even for one row; ``subplots``: more ``plt.subplots`` keywords) in
    a ``size`` inch figure; on leaving, laid out tight, saved to ``path`` at ``dpi``, closed and its path printed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False, **subplots)
    try:
        yield axes
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
    print(f"\nplot: {path}", flush=True)
