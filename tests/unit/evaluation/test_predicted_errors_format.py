"""``alloop status``'s predicted-error lines: absent values and undefined correlations print as "-"."""

from __future__ import annotations

import math

from alloop.evaluation.predicted_errors import format_status


def _row(**kw):
    row = {"cycle": 2, "md_frames": 80, "md_predicted_eV_per_A": 0.0754, "md_p95_eV_per_A": 0.0754,
           "model_version": 4, "eval_predicted_eV_per_A": 0.0754, "eval_measured_eV_per_A": 0.0921,
           "error_spearman": 0.59, "bound_coverage": 0.96}
    row.update(kw)
    return row


def test_no_rows_no_lines():
    assert format_status([]) == []


def test_undefined_rank_correlation_prints_a_dash_not_nan():
    lines = format_status([_row(error_spearman=math.nan), _row(cycle=3, error_spearman=0.6)])
    assert "nan" not in "\n".join(lines)
    constant, ranked = lines[2].split(), lines[3].split()
    assert constant[7] == "-" and ranked[7] == "0.60"


def test_absent_values_print_dashes():
    line = format_status([_row(cycle=-1, md_frames=0, md_predicted_eV_per_A=None, md_p95_eV_per_A=None,
                               model_version=None, error_spearman=None, bound_coverage=None)])[2].split()
    assert line[0] == "bootstrap" and line[2:5] == ["-", "-", "-"] and line[-1] == "-"
