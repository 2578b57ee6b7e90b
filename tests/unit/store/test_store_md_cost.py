"""Where the MD's seconds went: the explore phase writes one ``md_timing`` row per MD task with its commit, and
``alloop status`` prints the campaign's sums and its last cycle's (nothing for a store without the table)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from store_helpers import assert_the_stored_summary_reads_the_same
from test_store_reactions import _ctx, _result

from alloop.campaign.phases.explore import _record_timing
from alloop.cli import main
from alloop.report.summary import summary_markdown
from alloop.store import CampaignStore, store_path, tables
from alloop.store.md_cost import format_md_cost, md_cost_line, md_cost_status


def _timed(steps: int, seconds: float, model: float, baseline: float, scoring: float):
    result = _result([])
    result.replica_steps, result.total_seconds, result.model_seconds = steps, seconds, model
    result.baseline_seconds, result.scoring_seconds = baseline, scoring
    return result


def test_md_timing_rows_commit_with_the_phase_and_sum_in_the_status(tmp_path, malonaldehyde, capsys):
    path = store_path(tmp_path / "run")
    said: list[str] = []
    with CampaignStore.create(path, {}) as store:
        store.add_frames([malonaldehyde], origin="md", cycle=0)
        assert md_cost_status(store) is None and format_md_cost(None) == []
        ctx = dataclasses.replace(_ctx(store), log=said.append)
        _record_timing(ctx, 0, 1, [_timed(900, 10.0, 8.0, 6.0, 1.0), _timed(900, 10.0, 8.0, 2.0, 1.0)])
        with pytest.warns(UserWarning, match="uncommitted"):
            store.close()  # killed before the phase's commit: no row
    assert said == ["cycle 0: MD 1800 replica steps in 20.0 task s (11.11 ms per replica step; model calls 80% "
                    "(the baseline 50% of them), scoring of the recorded frames 10%)"]
    with CampaignStore.open(path, "a") as store:
        assert tables.read(store, tables.MD_TIMING) == {}
        _record_timing(_ctx(store), 0, 1, [_timed(900, 10.0, 8.0, 6.0, 1.0), _timed(900, 10.0, 8.0, 2.0, 1.0)])
        _record_timing(_ctx(store), 1, 2, [_timed(600, 4.0, 2.0, 0.0, 1.0)])
        store.commit(cycle=1, phase="explored")
    with CampaignStore.open(path, "r") as store:
        status = md_cost_status(store)
        assert tables.read(store, tables.MD_TIMING)["replicas"].tolist() == [0, 0, 0]  # no final states in _result
    assert status["tasks"] == 3 and status["last_cycle"] == 1
    assert status["total"]["replica_steps"] == 2400 and status["total"]["baseline_seconds"] == 8.0
    assert status["last"] == {"replica_steps": 600, "seconds": 4.0, "model_seconds": 2.0, "baseline_seconds": 0.0,
                              "scoring_seconds": 1.0}
    lines = format_md_cost(status)
    assert "2400 replica steps in 24.0 task s" in lines[0] and "(the baseline 44% of them)" in lines[0]
    assert "cycle 1" in lines[1] and "baseline" not in lines[1]  # no Delta model in that cycle's MD
    assert main(["status", str(tmp_path / "run")]) == 0
    text = capsys.readouterr().out
    assert lines[0] in text and lines[1] in text
    assert main(["status", str(tmp_path / "run"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["md_cost"]["total"]["seconds"] == 24.0
    assert_the_stored_summary_reads_the_same(tmp_path / "run", text, capsys)
    with CampaignStore.open(path, "r") as store:
        report = summary_markdown(store)
    assert "| 0 | 2 | 1800 | 20.0 | 11.11 | 80 % | 50 % | 10 % |" in report
    assert "| 1 | 1 | 600 | 4.0 | 6.67 | 50 % | 0 % | 25 % |" in report


def test_the_line_without_steps_or_seconds():
    line = md_cost_line({k: np.zeros(1) for k in ("replica_steps", "seconds", "model_seconds", "baseline_seconds",
                                                   "scoring_seconds")})
    assert line == "0 replica steps in 0.0 task s (model calls -, scoring of the recorded frames -)"
