"""benchmarks/many_workers.py's core on a real 4-worker cluster: every label of the stream comes back and is timed,
and a SIGKILLed worker loses none of them."""

from __future__ import annotations

from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def many_workers(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import lib.many_workers

    return lib.many_workers


def test_a_stream_of_20_labels_on_4_workers_is_measured(many_workers):
    plan = many_workers.Plan(4, 0.2, n_labels=20, idle_s=0, batch_seconds=0)
    r = many_workers.run(plan, log=lambda _: None)
    assert (r["labels_sent"], r["labels_ok"], r["labels_failed"], r["labels_lost"]) == (20, 20, 0, 0)
    assert r["tasks_sent"] == r["tasks_timed"] == 20 and r["workers_used"] == 4 and r["tasks_retried"] == 0
    assert 0 < r["utilisation"] <= 1 and r["window_s"] > 0
    assert 0 <= r["gap_median_s"] <= r["latency_median_s"] <= r["latency_p95_s"]
    assert 0 < r["driver_main_thread_cpu_s"] <= r["driver_cpu_s"]
    assert r["driver_peak_rss_mb"] >= r["driver_rss_before_mb"] > 0
    assert r["workers_rss_mb"] > 0 and r["kills"] == [] and r["worker_deaths"] == 0


@pytest.mark.slow  # the campaign's own kill tests run in the main suite; this one in CI's slow job
def test_a_worker_killed_mid_stream_loses_no_label(many_workers):
    plan = many_workers.Plan(4, 0.3, n_labels=20, idle_s=0, batch_seconds=0, kill_after_labels=(4,))
    r = many_workers.run(plan, log=lambda _: None)
    assert len(r["kills"]) == 1 and r["kills"][0]["pid"] is not None
    assert r["worker_deaths"] >= 1 and r["tasks_retried"] >= 1
    assert (r["labels_sent"], r["labels_ok"], r["labels_lost"]) == (20, 20, 0)
