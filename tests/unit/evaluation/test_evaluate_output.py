"""``alloop evaluate``'s output of an undefined rank correlation (a constant predicted error): valid JSON, plain text."""

from __future__ import annotations

import json
import math

from alloop.evaluation.evaluate import finite_or_null, rho_text


def test_json_has_null_where_the_correlation_is_undefined():
    text = json.dumps(finite_or_null({"predicted_force_mae_eV_per_A": 0.075, "error_spearman": math.nan,
                                       "bound_coverage": 0.96}))
    parsed = json.loads(text, parse_constant=lambda token: (_ for _ in ()).throw(ValueError(token)))
    assert parsed == {"predicted_force_mae_eV_per_A": 0.075, "error_spearman": None, "bound_coverage": 0.96}


def test_text_says_why_there_is_no_correlation():
    assert rho_text(0.604) == "0.60"
    assert "same on every frame" in rho_text(math.nan)
