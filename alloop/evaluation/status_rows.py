"""Per-cycle tables of ``alloop status`` that stay short: the first row and the last ones, the rows between counted.

``alloop status --json`` keeps every row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Row = TypeVar("Row")

#: rows a status table shows at the most: the first and the last LAST_ROWS
LAST_ROWS = 10


def short_rows(rows: Sequence[Row], line: Callable[[Row], str], indent: str = "  ") -> list[str]:
    """``line`` of each row, or of the first and the last :data:`LAST_ROWS` rows with one line between them saying
    how many were left out."""
    if len(rows) <= LAST_ROWS + 2:
        return [line(r) for r in rows]
    left_out = len(rows) - LAST_ROWS - 1
    return [line(rows[0]), f"{indent}... {left_out} rows left out (alloop status --json has "
                           "every row)", *(line(r) for r in rows[-LAST_ROWS:])]
