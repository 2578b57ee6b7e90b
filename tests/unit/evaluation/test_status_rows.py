"""Per-cycle status tables stay short: the first row, a count of the rows left out, the last ten."""

from __future__ import annotations

from alloop.evaluation.status_rows import LAST_ROWS, short_rows


def test_a_short_table_is_shown_whole():
    assert short_rows(list(range(LAST_ROWS + 2)), str) == [str(i) for i in range(LAST_ROWS + 2)]


def test_a_long_table_keeps_its_first_and_last_rows_and_counts_the_rest():
    lines = short_rows(list(range(100)), lambda r: f"row {r}")
    assert len(lines) == LAST_ROWS + 2 and lines[0] == "row 0" and lines[-1] == "row 99"
    assert lines[1] == f"  ... {99 - LAST_ROWS} rows left out (alloop status --json has every row)"
    assert lines[2] == f"row {100 - LAST_ROWS}"
