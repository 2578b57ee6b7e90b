"""The dashboard's Bokeh figures: each draws one panel of :func:`alloop.dashboard.data.read_snapshot` from a
named ColumnDataSource, and :func:`plot_columns` turns a snapshot's panel into that source's data.

The sources are named after their panels (``learning``, ``predicted``, ``coverage``, ``flags``, ``labels``,
``timeline``), so the page's data can be found in the browser (``Bokeh.documents[0].get_model_by_name``).
"""

from __future__ import annotations

from typing import Any

from bokeh.models import BasicTicker, ColumnDataSource, CustomJSTickFormatter, HoverTool, Range1d
from bokeh.palettes import Category10
from bokeh.plotting import figure

from alloop.store.ledger import (
    EXPLORED,
    FINISHED,
    LABELLED,
    LABELLED_CHEAP,
    LABELLED_EXPENSIVE,
    SAMPLED,
    SELECTED_EXPENSIVE,
    TRAINED,
)

PALETTE = Category10[10]
#: a colour per phase of the ``progress`` table (another phase: grey)
PHASE_COLORS = dict(zip((SAMPLED, LABELLED, EXPLORED, LABELLED_CHEAP, SELECTED_EXPENSIVE, LABELLED_EXPENSIVE,
                         TRAINED, FINISHED), PALETTE, strict=False))
#: width of all the bars of one cycle in the labels panel (cycles are 1 apart)
GROUP_WIDTH = 0.8
CYCLE_AXIS = "cycle"
HEIGHT = 300
TITLES = {
    "learning": "learning curve: force MAE per model vs labelling cost",
    "predicted": "predicted vs measured force error",
    "coverage": "coverage: evaluation set within the Q-residual limit",
    "flags": "flagged MD frames per cycle",
    "labels": "labels per cycle and fidelity (failed: hatched)",
    "timeline": "phase timeline (each bar: since the previous phase finished)",
}
#: what an empty panel's title adds
EMPTY = {
    "learning": "no model trained yet",
    "predicted": "none: no calibrated error model yet",
    "coverage": "none: no evaluation set scored yet",
    "flags": "no cycle recorded yet",
    "labels": "no labels yet",
    "timeline": "no phase finished yet",
}


def title(panel: str, columns: dict[str, list[Any]]) -> str:
    """Panel ``panel``'s title, saying why it is empty when it has no rows."""
    empty = not next(iter(columns.values()), [])
    return f"{TITLES[panel]} ({EMPTY[panel]})" if empty else TITLES[panel]


def plot_columns(panel: str, columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The data of panel ``panel``'s source: the snapshot's columns plus what the figure draws from them."""
    out = dict(columns)
    if panel == "labels":
        n = max(columns["index"], default=0) + 1
        width = GROUP_WIDTH / n
        out["x"] = [c + (k - (n - 1) / 2) * width for c, k in zip(columns["cycle"], columns["index"], strict=True)]
        out["width"] = [0.9 * width] * len(columns["cycle"])
        out["total"] = [ok + bad for ok, bad in zip(columns["ok"], columns["failed"], strict=True)]
        out["color"] = [PALETTE[k % len(PALETTE)] for k in columns["index"]]
    elif panel == "timeline":
        t0 = min(columns["start"], default=0.0)
        out["left_min"] = [(t - t0) / 60.0 for t in columns["start"]]
        out["right_min"] = [(t - t0) / 60.0 for t in columns["end"]]
        out["color"] = [PHASE_COLORS.get(p, "#999999") for p in columns["phase"]]
    elif panel == "coverage":
        out["covered_percent"] = [100.0 * f for f in columns["covered_fraction"]]
    elif panel == "flags":
        out["flag_percent"] = [100.0 * f for f in columns["flag_rate"]]
    return out


def _source(name: str) -> ColumnDataSource:
    return ColumnDataSource(name=name)


def _figure(panel: str, x_label: str, y_label: str, y_range: tuple[float, float] | None = None) -> Any:
    """An empty figure titled for ``panel``, as wide as the page allows."""
    fig = figure(title=TITLES[panel], height=HEIGHT, sizing_mode="stretch_width", x_axis_label=x_label,
                 y_axis_label=y_label)
    if y_range is not None:
        fig.y_range = Range1d(start=y_range[0], end=y_range[1])
    return fig


def _legend(fig: Any) -> None:
    """A see-through legend at the top right; clicking an entry hides its line."""
    fig.legend.location = "top_right"
    fig.legend.background_fill_alpha = 0.6
    fig.legend.click_policy = "hide"


def _cycle_ticks(axis: Any) -> None:
    """Whole cycles on ``axis``, the bootstrap (-1) as ``boot``."""
    axis.ticker = BasicTicker(min_interval=1, num_minor_ticks=0)
    axis.formatter = CustomJSTickFormatter(code="return tick < 0 ? 'boot' : tick.toFixed(0)")


def learning_figure(source: ColumnDataSource) -> Any:
    """Force MAE of each model against the cumulative labelling CPU seconds when it was trained."""
    fig = _figure("learning", "cumulative labelling CPU s (both fidelities)", "force MAE (eV/Å)")
    for key, color, label in (("val_force_mae_eV_per_A", PALETTE[0], "validation split"),
                              ("eval_force_mae_eV_per_A", PALETTE[3], "evaluation set")):
        fig.line("cpu_s", key, source=source, color=color, legend_label=label, line_width=2)
        fig.scatter("cpu_s", key, source=source, color=color, legend_label=label, size=7)
    fig.add_tools(HoverTool(tooltips=[("model", "v@model_version"), ("cycle", "@cycle"), ("CPU s", "@cpu_s{0.0}"),
                                      ("validation", "@val_force_mae_eV_per_A{0.0000}"),
                                      ("evaluation set", "@eval_force_mae_eV_per_A{0.0000}")]))
    _legend(fig)
    return fig


def predicted_figure(source: ColumnDataSource) -> Any:
    """The error models' predicted force errors next to the error measured on the evaluation set, per cycle."""
    fig = _figure("predicted", CYCLE_AXIS, "force error (eV/Å)")
    for key, color, dash, label in (
            ("eval_measured_eV_per_A", PALETTE[3], "solid", "evaluation set, measured MAE"),
            ("eval_predicted_eV_per_A", PALETTE[1], "dashed", "evaluation set, predicted MAE"),
            ("md_predicted_eV_per_A", PALETTE[2], "dotted", "MD frames, mean predicted")):
        fig.line("cycle", key, source=source, color=color, line_dash=dash, legend_label=label, line_width=2)
        fig.scatter("cycle", key, source=source, color=color, legend_label=label, size=7)
    fig.add_tools(HoverTool(tooltips=[("cycle", "@cycle"), ("measured", "@eval_measured_eV_per_A{0.0000}"),
                                      ("predicted", "@eval_predicted_eV_per_A{0.0000}"),
                                      ("MD mean", "@md_predicted_eV_per_A{0.0000}"),
                                      ("MD p95", "@md_p95_eV_per_A{0.0000}")]))
    _legend(fig)
    _cycle_ticks(fig.xaxis)
    return fig


def coverage_figure(source: ColumnDataSource) -> Any:
    """Each model's share of the evaluation set within the Q-residual limit."""
    fig = _figure("coverage", CYCLE_AXIS, "share of the evaluation set (%)", y_range=(-3, 103))
    fig.line("cycle", "covered_percent", source=source, color=PALETTE[2], line_width=2)
    fig.scatter("cycle", "covered_percent", source=source, color=PALETTE[2], size=7)
    fig.add_tools(HoverTool(tooltips=[("model", "v@model_version"), ("cycle", "@cycle"),
                                      ("within the limit", "@covered_percent{0.0} %"), ("median Q", "@median_q{0.00}")]))
    _cycle_ticks(fig.xaxis)
    return fig


def flags_figure(source: ColumnDataSource) -> Any:
    """The share of each cycle's MD frames flagged as uncertain."""
    fig = _figure("flags", CYCLE_AXIS, "flagged (%)", y_range=(0, 105))
    fig.vbar(x="cycle", top="flag_percent", width=0.7, source=source, color=PALETTE[4])
    fig.add_tools(HoverTool(tooltips=[("cycle", "@cycle"), ("MD frames", "@md_frames"),
                                      ("flagged", "@flag_percent{0.0} %")]))
    _cycle_ticks(fig.xaxis)
    return fig


def labels_figure(source: ColumnDataSource) -> Any:
    """Labels per cycle and fidelity, side by side: ok, with the failed ones stacked on top (hatched)."""
    fig = _figure("labels", CYCLE_AXIS, "labels")
    fig.vbar(x="x", top="ok", width="width", source=source, color="color", legend_field="fidelity")
    fig.vbar(x="x", bottom="ok", top="total", width="width", source=source, fill_color="white", line_color="color",
             hatch_pattern="/", hatch_color="color")
    fig.add_tools(HoverTool(tooltips=[("fidelity", "@fidelity"), ("cycle", "@cycle"), ("ok", "@ok"),
                                      ("failed", "@failed")]))
    fig.y_range.start = 0
    fig.legend.location = "top_right"
    _cycle_ticks(fig.xaxis)
    return fig


def timeline_figure(source: ColumnDataSource) -> Any:
    """Each finished phase as a bar from the previous phase's end to its own, one row per cycle."""
    fig = _figure("timeline", "wall time since the first finished phase (min)", CYCLE_AXIS)
    fig.hbar(y="cycle", left="left_min", right="right_min", height=0.7, source=source, color="color",
             legend_field="phase")
    fig.add_tools(HoverTool(tooltips=[("cycle", "@cycle"), ("phase", "@phase"), ("seconds", "@seconds{0.0}")]))
    fig.y_range.flipped = True
    fig.add_layout(fig.legend[0], "right")
    _cycle_ticks(fig.yaxis)
    return fig


FIGURES = {"learning": learning_figure, "predicted": predicted_figure, "coverage": coverage_figure,
           "flags": flags_figure, "labels": labels_figure, "timeline": timeline_figure}


def make_figures() -> tuple[dict[str, ColumnDataSource], dict[str, Any]]:
    """One empty source and one figure per panel, by panel name."""
    sources = {name: _source(name) for name in FIGURES}
    return sources, {name: make(sources[name]) for name, make in FIGURES.items()}
