"""Several campaigns side by side: ``compare_cost.png`` (their learning curves) and ``compare.md``.

The runs are read by :func:`alloop.report.runs.read_runs` into plain :class:`~alloop.report.runs.RunSummary`
data; the plot (:func:`alloop.report.plots.plot_compare`) and :func:`compare_markdown` only format it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alloop.errors import AlloopError
from alloop.report.runs import EVALUATION, VALIDATION, RunSummary, read_runs


def compare_markdown(runs: list[RunSummary]) -> str:
    """``compare.md``: one column per run."""
    lines = ["# Campaigns compared", ""]
    sets = {r.evaluation for r in runs if r.curve.errors_on == EVALUATION}
    if len(sets) > 1:
        lines += ["**Note: the runs were scored on different evaluation sets; their errors are not comparable.**", ""]
    if any(r.curve.errors_on == VALIDATION for r in runs):
        lines += ["Errors on *validation* are on each run's own validation split (not comparable across runs); "
                  "*evaluation set* errors are on the campaign's fixed evaluation set.", ""]
    lines += ["| | " + " | ".join(r.label.replace("|", "\\|") for r in runs) + " |", "|---|" + "---:|" * len(runs)]
    for title, cell in _ROWS:
        lines.append(f"| {title} | " + " | ".join(cell(r).replace("|", "\\|") for r in runs) + " |")
    lines += ["", "Cost is cumulative labelling CPU s (both fidelities) when the model was trained; "
              "wall time spans the first to the last committed phase of the campaign.", ""]
    return "\n".join(lines)


def _labels(r: RunSummary, role: str) -> str:
    return f"{r.labels[role]}" + (f" ({r.failed[role]} failed)" if r.failed[role] else "")


def _point(r: RunSummary, k: int | None, with_cost: bool = False) -> tuple[str, str]:
    """(force, energy) cells of curve point k: the model, and with ``with_cost`` its cycle and cost."""
    c = r.curve
    if k is None:
        return "-", "-"
    cycle = "bootstrap" if c.cycle[k] < 0 else f"cycle {c.cycle[k]}"
    where = f"v{c.model_version[k]}, {cycle}, {c.cpu_s[k]:.0f} CPU s" if with_cost else f"v{c.model_version[k]}"
    energy = c.energy_mae_meV_per_atom[k]
    return f"{c.force_mae_eV_per_A[k]:.4f} ({where})", f"{energy:.2f}" if np.isfinite(energy) else "-"


_ROWS = (
    ("run directory", lambda r: f"`{r.run_dir}`"),
    ("campaign name", lambda r: r.name),
    ("strategy", lambda r: r.strategy),
    ("model", lambda r: r.model),
    ("training", lambda r: r.training),
    ("state", lambda r: r.state),
    ("cheap fidelity", lambda r: r.fidelity["cheap"]),
    ("expensive fidelity", lambda r: r.fidelity["expensive"]),
    ("labels, cheap", lambda r: _labels(r, "cheap")),
    ("labels, expensive", lambda r: _labels(r, "expensive")),
    ("CPU s, cheap", lambda r: f"{r.cpu_s['cheap']:.0f}"),
    ("CPU s, expensive", lambda r: f"{r.cpu_s['expensive']:.0f}"),
    ("CPU s, total", lambda r: f"{sum(r.cpu_s.values()):.0f}"),
    ("wall time (s)", lambda r: "-" if r.wall_s is None else f"{r.wall_s:.0f}"),
    ("models", lambda r: str(r.n_models)),
    ("errors on", lambda r: r.curve.errors_on + (f" ({r.evaluation})" if r.curve.errors_on == EVALUATION else "")),
    ("final force MAE (eV/Å)", lambda r: _point(r, r.curve.final)[0]),
    ("final energy MAE (meV/atom)", lambda r: _point(r, r.curve.final)[1]),
    ("best force MAE (eV/Å), at cost", lambda r: _point(r, r.curve.best, with_cost=True)[0]),
    ("energy MAE of the best (meV/atom)", lambda r: _point(r, r.curve.best)[1]),
)


def write_comparison(run_dirs: list[str], out_dir: str | Path) -> list[Path]:
    """Write ``compare_cost.png`` and ``compare.md`` for two or more run directories; returns the files written."""
    from alloop.report.plots import plot_compare

    if len(run_dirs) < 2:
        raise AlloopError(f"--compare needs at least two run directories (got {len(run_dirs)})")
    runs = read_runs(run_dirs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure = plot_compare(runs, out / "compare_cost.png")
    table = out / "compare.md"
    table.write_text(compare_markdown(runs))
    return [figure, table]
