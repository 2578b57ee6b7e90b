"""The dashboard page of one browser session: a status line (commit, current cycle and phase, state), the six
figures of :mod:`alloop.dashboard.figures` and a table of the budget left; :meth:`Page.show` puts a snapshot on it.

The status line and the budget table are Divs named ``status`` and ``budget``.
"""

from __future__ import annotations

import html
import math
from datetime import datetime
from typing import Any

from bokeh.layouts import column, gridplot
from bokeh.models.widgets import Div

from alloop.dashboard.data import cycle_name
from alloop.dashboard.figures import make_figures, plot_columns, title

STYLE = "font-family: sans-serif; font-size: 14px;"


class Page:
    """The Bokeh models of one session's page, filled with ``snapshot`` (:func:`~alloop.dashboard.data.read_snapshot`)."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.sources, figures = make_figures()
        self.figures = figures
        self.title = Div(text=_title(snapshot), name="title", styles={"font-family": "sans-serif"})
        self.status = Div(text="", name="status", styles={"font-family": "sans-serif", "font-size": "15px"})
        self.budget = Div(text="", name="budget", styles={"font-family": "sans-serif", "font-size": "14px"})
        grid = gridplot([[figures["learning"], figures["predicted"]], [figures["coverage"], figures["flags"]],
                         [figures["labels"], figures["timeline"]]], sizing_mode="stretch_width", merge_tools=False,
                         toolbar_location=None)
        self.root = column(self.title, self.status, grid, self.budget, sizing_mode="stretch_width")
        self.seq: int | None = None
        self.show(snapshot)

    def show(self, snapshot: dict[str, Any]) -> None:
        """Put ``snapshot`` on the page (every source and Div; the browser gets only what changed)."""
        for name, source in self.sources.items():
            source.data = plot_columns(name, snapshot[name])
            self.figures[name].title.text = title(name, snapshot[name])
        self.status.text = status_html(snapshot)
        self.budget.text = budget_html(snapshot["budget"])
        self.seq = snapshot["commit"]["seq"]

    def show_error(self, snapshot: dict[str, Any], error: str) -> None:
        """Keep the last snapshot on the page, with the reason the store could not be read now."""
        self.status.text = status_html(snapshot) + (
            f"<div style='color: #b00'>could not read the store now ({html.escape(error)}); showing commit "
            f"#{snapshot['commit']['seq']}, trying again</div>")


def _title(snapshot: dict[str, Any]) -> str:
    name = html.escape(str(snapshot["name"] or "(no campaign config)"))
    return (f"<h2 style='margin: 4px 0'>alloop dashboard: {name}</h2>"
            f"<div style='color: #555'>store {html.escape(snapshot['store'])} (read-only)</div>")


def status_html(snapshot: dict[str, Any]) -> str:
    """``commit #N at TIME · cycle C · phase P · STATE`` (the current cycle is the last commit's)."""
    c = snapshot["commit"]
    when = datetime.fromtimestamp(c["time_unix"]).strftime("%Y-%m-%d %H:%M:%S") if c.get("time_unix") else "-"
    parts = [f"commit #{c['seq']} at {when}", f"<b class='cycle'>{cycle_name(c['cycle'])}</b>",
             f"phase {html.escape(str(c['phase'] or '-'))}", html.escape(snapshot["state"])]
    return f"<div style='{STYLE}'>" + " &middot; ".join(parts) + "</div>"


def _number(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def budget_html(budget: dict[str, Any] | None) -> str:
    """The limits (spent, limit, left, in flight) and the stopping targets (latest value, target) as tables."""
    if budget is None:
        return f"<p style='{STYLE}'>budget: the store holds no campaign config (made by 'alloop import'?)</p>"
    cell = "style='padding: 2px 10px; text-align: right'"
    rows = "".join(
        f"<tr><td>{html.escape(r['item'])}</td><td {cell}>{_number(r['spent'], 1 if 'CPU' in r['item'] else 0)}</td>"
        f"<td {cell}>{_number(r['limit'], 0) if r['limit'] is not None else 'no limit'}</td>"
        f"<td {cell}>{_number(r['left'], 1 if 'CPU' in r['item'] else 0)}</td>"
        f"<td {cell}>{'' if r['in_flight'] is None else r['in_flight']}</td></tr>" for r in budget["limits"])
    targets = "".join(
        f"<tr><td>{html.escape(t['item'])}</td><td {cell}>{_number(t['latest'], 4)}</td>"
        f"<td {cell}>{'not set' if t['target'] is None else _number(t['target'], 4)}</td></tr>" for t in budget["targets"])
    return (f"<div style='{STYLE}'><h3 style='margin: 8px 0 4px'>budget left</h3><table>"
            f"<tr><th></th><th {cell}>spent</th><th {cell}>limit</th><th {cell}>left</th>"
            f"<th {cell}>selected, not labelled yet</th></tr>{rows}</table>"
            f"<h3 style='margin: 8px 0 4px'>stopping targets (latest cycle)</h3><table>"
            f"<tr><th></th><th {cell}>latest</th><th {cell}>target</th></tr>{targets}</table></div>")
