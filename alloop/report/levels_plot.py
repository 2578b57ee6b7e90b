"""``levels.png``: the cheap and expensive levels of a two-fidelity campaign (:mod:`alloop.store.levels`).

Left: CPU seconds per label of each fidelity per cycle (mean, 10th-90th percentile bars; log scale). Right: per
trained model, the median of ASTEROID's bias B over the cheap frames it weighted (10th-90th percentile band), and
the cheap level's measured distance from the expensive one: the mean force MAE between the two labels of the frames
labelled at both by the end of that model's cycle (their number beside each point) and, dotted, over all of them.
Nothing when the store has no bias B and no frame labelled at both; a missing part is left out, not drawn empty.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from alloop.report.plots import _save, cycle_step, cycle_ticks  # noqa: E402
from alloop.store.campaign import CampaignStore  # noqa: E402
from alloop.store.levels import Levels, read_levels  # noqa: E402


def plot_levels(store: CampaignStore, path: Path, levels: Levels | None = None) -> Path | None:
    """Draw ``levels.png``; ``levels``: :func:`read_levels` of the store if already read (read here otherwise)."""
    found = read_levels(store) if levels is None else levels
    if found is None:
        return None
    cycles = sorted({int(c) for cost in found.costs for c in cost.cycles}
                    | {int(c) for c in (found.models.cycles if found.models is not None else [])}
                    | {int(c) for c in found.both_cycles})
    where = {c: k for k, c in enumerate(cycles)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    _cost_panel(left, found, where)
    _bias_panel(right, found, where)
    names = ["boot" if c < 0 else str(c) for c in cycles]
    version = {} if found.models is None else dict(zip(found.models.cycles.tolist(), found.models.versions.tolist(),
                                                       strict=True))
    with_models = [f"{n}\nv{version[c]}" if c in version else n for n, c in zip(names, cycles, strict=True)]
    for ax, labels, title in ((left, names, "cycle"), (right, with_models, "cycle, model")):
        cycle_ticks(ax, labels)
        ax.set_xlim(-0.5, len(cycles) - 0.5)
        ax.set_xlabel(title)
    return _save(fig, path)


def _cost_panel(ax: plt.Axes, levels: Levels, where: dict[int, int]) -> None:
    for k, cost in enumerate(levels.costs):
        if cost.cycles.size == 0:
            continue
        x = np.array([where[int(c)] for c in cost.cycles]) + (k - 0.5) * 0.12
        yerr = np.vstack([cost.mean_s - cost.p10_s, cost.p90_s - cost.mean_s]).clip(min=0)
        ax.errorbar(x, cost.mean_s, yerr=yerr, fmt="o-", capsize=3, color=f"C{k}",
                    label=f"{cost.name} ({cost.role}), {int(cost.n_labels.sum())} labels")
    ax.set_yscale("log")
    ax.set_ylabel("CPU s per label (mean, 10-90 %)")
    ax.set_title("labelling cost per label, per fidelity and cycle", fontsize=10)
    ax.legend(fontsize=8)


def _bias_panel(ax: plt.Axes, levels: Levels, where: dict[int, int]) -> None:
    m = levels.models
    if m is not None:
        x = np.array([where[int(c)] for c in m.cycles])
        ax.fill_between(x, m.p10_b, m.p90_b, color="C2", alpha=0.2, label="B, 10-90 % of the cheap frames")
        ax.plot(x, m.median_b, "o-", color="C2", label="median B of the model's cheap frames")
        known = np.isfinite(m.distance)
        if known.any():
            ax.plot(x[known], m.distance[known], "D-", color="C3",
                    label=f"{levels.cheap} vs {levels.expensive}: frames labelled at both so far")
            step = cycle_step(len(where))
            for xi, yi, n in zip(x[known], m.distance[known], m.n_both[known], strict=True):
                if xi % step:
                    continue  # a cycle whose tick is not labelled
                ax.annotate(f"n={n}", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7, color="C3")
    if levels.both_mae.size:
        ax.axhline(levels.distance, color="C3", ls=":", lw=1,
                   label=f"all {levels.both_mae.size} frames labelled at both: {levels.distance:.3f} eV/Å")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("force error (eV/Å)")
    ax.set_title(f"bias B per model vs {levels.cheap}'s measured distance from {levels.expensive}", fontsize=10)
    ax.legend(fontsize=7)
