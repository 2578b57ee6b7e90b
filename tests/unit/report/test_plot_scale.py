"""What keeps the report's plots of a long campaign bounded: line envelopes, thinned cycle ticks, bar collections."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from alloop.report.plots import CYCLE_LABELS, bars, cycle_step, cycle_ticks, envelope  # noqa: E402


def test_a_short_line_is_drawn_point_by_point() -> None:
    y = np.linspace(1.0, 2.0, 7)
    x, v = envelope(y, 4)
    assert x.tolist() == list(range(7)) and v.tolist() == y.tolist()


def test_a_long_line_keeps_each_bins_extremes_in_their_order() -> None:
    rng = np.random.default_rng(0)
    y = rng.lognormal(size=10_001)
    y[105:125] = np.nan  # frames not scored
    y[2000:2010] = np.nan  # a whole bin of them
    x, v = envelope(y, 1000)
    assert x.size == 2000 and np.all(np.diff(x) >= 0)
    assert np.array_equal(v, y[x], equal_nan=True)  # points of the line itself
    edges = np.linspace(0, y.size, 1001).astype(int)
    for k in (0, 10, 150, 999):  # bin 10 partly NaN
        part = y[edges[k]:edges[k + 1]]
        assert set(v[2 * k:2 * k + 2].tolist()) == {np.nanmin(part), np.nanmax(part)}
    assert np.isnan(v[400:402]).all()  # the bin 2000:2010 holds no value


def test_cycle_ticks_label_every_cycle_up_to_the_limit_then_every_kth() -> None:
    fig, ax = plt.subplots()
    labels = ["boot", *map(str, range(CYCLE_LABELS - 1))]
    cycle_ticks(ax, labels, 0.25)
    assert ax.get_xticks().tolist() == [k + 0.25 for k in range(CYCLE_LABELS)]
    many = ["boot", *map(str, range(999))]
    cycle_ticks(ax, many)
    step = cycle_step(len(many))
    assert step == -(-1000 // CYCLE_LABELS) and len(ax.get_xticks()) <= CYCLE_LABELS
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["boot", str(step - 1)]
    plt.close(fig)


def test_bars_are_one_collection_with_the_bars_extent() -> None:
    fig, ax = plt.subplots()
    x = np.arange(500)
    bars(ax, x, np.full(500, 2.0), 0.8, bottom=np.ones(500), color="C0", label="ok", hatch="//")
    assert len(ax.collections) == 1 and not ax.patches
    assert ax.get_legend_handles_labels()[1] == ["ok"]
    (x0, y0), (x1, y1) = ax.dataLim.get_points()
    assert (x0, y0, x1, y1) == (-0.4, 1.0, 499.4, 3.0)
    plt.close(fig)
