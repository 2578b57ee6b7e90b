"""Status tables and plots of a campaign store: :func:`write_report`."""

from __future__ import annotations

from pathlib import Path

from alloop.store.campaign import CampaignStore


def write_report(store: CampaignStore, out_dir: str | Path, expensive_hash: str | None = None) -> list[Path]:
    """Write the PNG plots and ``summary.md`` into ``out_dir``; returns the files written."""
    from alloop.report.levels_plot import plot_levels
    from alloop.report.plots import plot_cost, plot_coverage, plot_labels, plot_parity, plot_uncertainty
    from alloop.report.predicted_plot import plot_predicted
    from alloop.report.summary import summary_markdown
    from alloop.store.coverage import labelled_basins
    from alloop.store.levels import read_levels

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    basins = labelled_basins(store)  # read once: the plot and the summary both show it
    levels = read_levels(store)  # likewise
    files = [
        plot_cost(store, out / "cost.png"),
        plot_uncertainty(store, out / "uncertainty.png"),
        plot_parity(store, expensive_hash, out / "parity.png") if expensive_hash else None,
        plot_labels(store, out / "labels.png"),
        plot_coverage(store, out / "coverage.png", basins),
        plot_predicted(store, out / "predicted.png"),
        plot_levels(store, out / "levels.png", levels) if levels is not None else None,
    ]
    summary = out / "summary.md"
    summary.write_text(summary_markdown(store, basins, levels))
    return [f for f in files if f is not None] + [summary]
