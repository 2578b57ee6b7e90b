"""PNG plots of a campaign store (matplotlib, Agg backend; read-only access to the store).

- ``cost.png``: validation force MAE of each model against the cumulative labelling cost (CPU s) per fidelity,
  and the force MAE on the campaign's evaluation set (if it names one) against the total cost;
- ``uncertainty.png``: frame uncertainty (Q-residual / limit) along MD time per replica, the limit, flagged
  and selected frames, unstable frames;
- ``parity.png``: latest model's forces against the expensive labels (training and validation frames; at most
  ``PARITY_FRAMES`` of them, a seeded sample beyond);
- ``labels.png``: labels per cycle and fidelity, failures stacked on top;
- ``coverage.png``: the share of the evaluation set within the Q-residual limit (and the median Q) of each
  cycle's model, and, for one molecule with rotatable bonds, the conformer-basin shares of the frames labelled
  so far after each cycle, one panel per fidelity;
- ``predicted.png`` (:mod:`alloop.report.predicted_plot`): predicted against measured force error, per frame of
  the evaluation set and per cycle;
- ``levels.png`` (:mod:`alloop.report.levels_plot`): CPU s per label per fidelity and cycle, and ASTEROID's bias B
  per model against the cheap level's measured distance from the expensive one;
- ``compare_cost.png`` (several campaigns, ``alloop report --compare``): each run's force MAE and, in a second
  panel when known, per-atom energy MAE against its cumulative labelling cost (CPU s, both fidelities).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from alloop.store.campaign import CampaignStore  # noqa: E402
from alloop.store.sample import bounded_sample  # noqa: E402
from alloop.store.schema import ORIGIN_CODES, FrameFlag  # noqa: E402

if TYPE_CHECKING:
    from alloop.report.runs import RunSummary

#: the most expensive labels the parity plot predicts (beyond: a sample seeded by PARITY_SEED)
PARITY_FRAMES = 300
PARITY_SEED = 0
#: the most cycles whose axis ticks (and per-cycle counts) are all labelled; beyond, every k-th cycle is
CYCLE_LABELS = 12
#: a replica's uncertainty line of more frames is drawn from the minimum and maximum of this many bins (what the
#: figure's pixels show: a million-frame campaign's lines drawn point by point take a minute)
LINE_BINS = 1000
#: with more MD frames than this, the uncertainty plot's legend goes to the lower left instead of where it hides the
#: fewest points (matplotlib's "best", which tests every point: seconds on a million frames)
LEGEND_BEST_FRAMES = 20_000


def plot_cost(store: CampaignStore, path: Path) -> Path | None:
    from alloop.evaluation.records import cycles_table

    rows = cycles_table(store)
    val, held = (rows[k] if rows else np.zeros(0) for k in ("val_force_mae_eV_per_A", "eval_force_mae_eV_per_A"))
    if not np.any(np.isfinite(val)) and not np.any(np.isfinite(held)):
        return None
    ok = np.isfinite(val)
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("cpu_cheap_s", "cheap"), ("cpu_expensive_s", "expensive")):
        ax.plot(rows[key][ok], val[ok], "o-", label=f"validation, {label} CPU s")
    total = rows["cpu_cheap_s"] + rows["cpu_expensive_s"]
    ax.plot(total[ok], val[ok], "s--", color="k", label="validation, total CPU s")
    scored = np.isfinite(held)
    if scored.any():
        ax.plot(total[scored], held[scored], "D-", color="tab:red", lw=2, label="evaluation set, total CPU s")
    ax.set_xlabel("cumulative labelling cost (CPU s)")
    ax.set_ylabel("force MAE (eV/Å)")
    ax.set_title("accuracy vs data cost (one point per trained model)")
    ax.legend()
    return _save(fig, path)


def plot_uncertainty(store: CampaignStore, path: Path) -> Path | None:
    meta = store.frame_meta()
    md = meta["origin"] == ORIGIN_CODES["md"]
    if not md.any():
        return None
    fig, ax = plt.subplots(figsize=(8, 4))
    steps, q, flags, replica = meta["md_step"][md], meta["q_score"][md], meta["flags"][md], meta["replica"][md]
    time_key = meta["cycle"][md].astype(np.int64) * 10**12 + steps  # cycles follow each other in MD time
    index, xs = [], []
    for r in np.unique(replica):
        idx = np.flatnonzero(replica == r)
        idx = idx[np.argsort(time_key[idx], kind="stable")]
        ax.plot(*envelope(q[idx], LINE_BINS), "-", lw=0.8, label=f"replica {r}")
        index.append(idx)
        xs.append(np.arange(idx.size))
    order, x = np.concatenate(index), np.concatenate(xs)
    qs, fl = q[order], flags[order]
    for bit, marker, name in ((FrameFlag.SELECTED_CHEAP, "o", "selected (cheap)"),
                              (FrameFlag.SELECTED_EXPENSIVE, "*", "selected (expensive)"),
                              (FrameFlag.UNSTABLE, "x", "unstable")):
        m = (fl & int(bit)) > 0
        if m.any():
            ax.scatter(x[m], qs[m], marker=marker, s=40, zorder=3, label=name)
    ax.axhline(1.0, color="k", ls="--", lw=1, label="limit")
    ax.set_yscale("log")
    ax.set_xlabel("recorded frame (MD time, per replica, across cycles)")
    ax.set_ylabel("Q-residual / limit")
    ax.set_title("frame uncertainty along the trajectories")
    ax.legend(fontsize=7, ncol=2, loc="best" if md.sum() <= LEGEND_BEST_FRAMES else "lower left")
    return _save(fig, path)


def plot_parity(store: CampaignStore, expensive_hash: str, path: Path) -> Path | None:
    """``parity.png``: the newest model's forces against the expensive labels, at most :data:`PARITY_FRAMES` of
    them (a seeded sample beyond: the model's inference is most of the report's time on a long campaign)."""
    from alloop.potentials.checkpoint import model_from_bytes
    from alloop.potentials.inference import predict

    models = [c for c in store.checkpoints() if c["role"] == "model"]
    if not models or expensive_hash not in store.fidelities():
        return None
    model, _ = model_from_bytes(store.checkpoint(int(models[-1]["version"]))[0])
    table = store.labels(expensive_hash)
    rows = np.flatnonzero(table.ok)
    if rows.size == 0:
        return None
    n_ok = rows.size
    rows = rows[bounded_sample(table.frame_id[rows], PARITY_FRAMES, PARITY_SEED)]
    which = f"all {n_ok}" if rows.size == n_ok else f"{rows.size} of {n_ok} (a seeded sample)"
    frames = store.get_frames(table.frame_id[rows])
    pred = predict(model, frames, 32)[1]
    ref = np.concatenate([table.frame_forces(int(r)) for r in rows])
    mae = float(np.mean(np.abs(pred - ref)))
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(ref.ravel(), pred.ravel(), s=4, alpha=0.5)
    lim = float(np.abs(ref).max()) * 1.05
    ax.plot([-lim, lim], [-lim, lim], "k--", lw=1)
    ax.set_xlabel(f"{table.fidelity_name} force (eV/Å)")
    ax.set_ylabel(f"model v{models[-1]['version']} force (eV/Å)")
    ax.set_title(f"parity on {which} expensive frames (MAE {mae:.3f} eV/Å)", fontsize=9)
    return _save(fig, path)


def plot_labels(store: CampaignStore, path: Path) -> Path | None:
    fids = store.fidelities()
    if not fids:
        return None
    from alloop.labeling.result import STATUS_CODES, LabelStatus

    all_cycles, cycle_index = np.unique(store.frame_meta(columns=["cycle"])["cycle"], return_inverse=True)
    cycle_index = np.asarray(cycle_index).ravel()
    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.8 / len(fids)
    for k, (h, info) in enumerate(fids.items()):
        table = store.label_columns(h, ["frame_id", "status"])  # no forces: only their count per cycle is drawn
        where, ok_row = cycle_index[table["frame_id"]], table["status"] == STATUS_CODES[LabelStatus.OK]
        ok = np.bincount(where[ok_row], minlength=all_cycles.size)
        bad = np.bincount(where[~ok_row], minlength=all_cycles.size)
        x = np.arange(len(all_cycles)) + k * width
        bars(ax, x, ok, width, color=f"C{2 * k}", label=f"{info['name']} ok")
        bars(ax, x, bad, width, bottom=ok, color=f"C{2 * k + 1}", hatch="//", label=f"{info['name']} failed")
    cycle_ticks(ax, ["boot" if c < 0 else str(c) for c in all_cycles], 0.4 - width / 2)
    ax.set_xlabel("cycle")
    ax.set_ylabel("labels")
    ax.set_title("labels per cycle")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_coverage(store: CampaignStore, path: Path, basins: dict[str, Any] | None = None) -> Path | None:
    """``coverage.png``; None when the campaign has neither coverage scores nor a molecule with rotatable bonds.
    ``basins``: :func:`alloop.store.coverage.labelled_basins` of the store if already read (read here otherwise)."""
    from alloop.store import tables
    from alloop.store.coverage import fidelity_label, labelled_basins

    covered = tables.read(store, tables.EVAL_COVERAGE)
    if basins is None:
        basins = labelled_basins(store)
    found: dict[str, Any] = basins or {}  # None: no molecule with rotatable bonds
    per_fidelity = found["fidelities"] if found else {}
    if not covered and not per_fidelity:
        return None
    cycles = sorted({int(c) for c in covered.get("cycle", [])}
                    | {c for counts in per_fidelity.values() for c in counts})
    where = {c: k for k, c in enumerate(cycles)}
    n_panels = bool(covered) + len(per_fidelity)
    fig, axes = plt.subplots(1, n_panels, figsize=(4.2 * n_panels, 3.8), squeeze=False)
    panels = list(axes[0])
    if covered:
        _coverage_panel(panels.pop(0), covered, where)
    for ax, (name, counts) in zip(panels, per_fidelity.items(), strict=True):
        _basin_panel(ax, fidelity_label(found, name), counts, found["basins"], where)
    if per_fidelity:
        panels[-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), title_fontsize=8,
                          title=", ".join(found["rotor_names"]))
    for ax in axes[0]:
        cycle_ticks(ax, ["boot" if c < 0 else str(c) for c in cycles])
        ax.set_xlim(-0.6, len(cycles) - 0.4)
        ax.set_xlabel("cycle")
    return _save(fig, path)


def _coverage_panel(ax: plt.Axes, covered: dict[str, np.ndarray], where: dict[int, int]) -> None:
    """Each model's share of the evaluation set within the Q-residual limit (%), its median Q on a second axis."""
    x = [where[int(c)] for c in covered["cycle"]]
    ax.plot(x, 100 * covered["covered_fraction"], "o-", color="tab:green", label="Q <= limit")
    ax.set_ylim(-3, 103)
    ax.set_ylabel("evaluation set within the limit (%)")
    ax.set_title("coverage of the evaluation set (per model)", fontsize=10)
    twin = ax.twinx()
    twin.plot(x, covered["median_q"], "s--", color="0.4", label="median Q / limit")
    twin.set_ylabel("median Q / limit")
    twin.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [str(h.get_label()) for h in handles], fontsize=8, loc="lower right")


def _basin_panel(ax: plt.Axes, fidelity: str, counts: dict[int, list[int]], names: list[str],
                 where: dict[int, int]) -> None:
    """Stacked basin shares of the frames labelled at ``fidelity`` so far after each cycle (their count on top)."""
    from alloop.store.coverage import cumulative_shares

    done, shares, n = cumulative_shares(counts, [c for c in where if c >= min(counts)])
    x, bottom = np.array([where[c] for c in done]), np.zeros(len(done))
    colors = (plt.get_cmap("tab10")(np.arange(len(names))) if len(names) <= 10
              else plt.get_cmap("viridis")(np.linspace(0.0, 1.0, len(names))))
    for j, name in enumerate(names):
        bars(ax, x, shares[:, j], 0.7, bottom=bottom.copy(), color=colors[j], label=name)
        bottom += shares[:, j]
    step = cycle_step(len(where))
    for xi, ni in zip(x, n, strict=True):
        if xi % step == 0:  # the cycles whose tick is labelled
            ax.text(xi, 1.01, str(ni), ha="center", va="bottom", fontsize=7)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("conformer basins of the frames labelled so far")
    ax.set_title(f"{fidelity}: basins, count on top", fontsize=10)


def plot_compare(runs: list[RunSummary], path: Path) -> Path:
    """Learning curves of several runs in one figure (the energy panel only when a run knows its energy MAE)."""
    with_energy = any(np.isfinite(r.curve.energy_mae_meV_per_atom).any() for r in runs)
    fig, axes = plt.subplots(1, 2 if with_energy else 1, figsize=(11 if with_energy else 6, 4.2), squeeze=False)
    kinds = sorted({r.curve.errors_on for r in runs})
    on = f", {kinds[0]}" if len(kinds) == 1 else ""  # otherwise each legend entry says which errors it shows
    panels = [(axes[0, 0], "force_mae_eV_per_A", f"force MAE (eV/Å){on}")]
    if with_energy:
        panels.append((axes[0, 1], "energy_mae_meV_per_atom", f"energy MAE (meV/atom){on}"))
    for k, run in enumerate(runs):
        c = run.curve
        for ax, key, _ in panels:
            y = getattr(c, key)
            ok = np.isfinite(y)
            if ok.any():
                ax.plot(c.cpu_s[ok], y[ok], "o-", color=f"C{k}", label=f"{run.label} ({run.strategy}, {c.errors_on})")
        if not c.force_mae_eV_per_A.size:
            axes[0, 0].plot([], [], "o-", color=f"C{k}", label=f"{run.label} ({run.strategy}): no model yet")
    for ax, _, ylabel in panels:
        ax.set_xlabel("cumulative labelling cost (CPU s, both fidelities)")
        ax.set_ylabel(ylabel, fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("learning curves (one point per trained model)", fontsize=10)
    return _save(fig, path)


def bars(ax: plt.Axes, x: np.ndarray, height: np.ndarray, width: float, bottom: Any = 0.0, **style: Any) -> None:
    """``ax.bar(x, height, width, bottom)`` (centred bars, one colour) as one collection of rectangles: matplotlib's
    bar makes an artist per bar, a second each at the thousands of bars of a long campaign's per-cycle plots.
    ``style``: ``color`` (required), ``label``, ``hatch``."""
    from matplotlib.collections import PolyCollection

    x, height = np.asarray(x, float), np.asarray(height, float)
    low = np.broadcast_to(np.asarray(bottom, float), x.shape)
    left, right, top = x - width / 2, x + width / 2, low + height
    corners = np.stack([np.column_stack(p) for p in ((left, low), (left, top), (right, top), (right, low))], axis=1)
    rectangles = PolyCollection(list(corners), facecolors=style.pop("color"), edgecolors="none", linewidths=0, **style)
    rectangles.sticky_edges.y.extend(np.unique(low).tolist())  # as bar's: no autoscale margin beyond a bar's base
    ax.add_collection(rectangles, autolim=True)
    ax.autoscale_view()


def cycle_step(n_cycles: int) -> int:
    """Every how many cycles a tick (or a per-cycle count) is labelled: 1 up to :data:`CYCLE_LABELS` cycles."""
    return max(1, -(-n_cycles // CYCLE_LABELS))


def cycle_ticks(ax: plt.Axes, labels: list[str], offset: float = 0.0) -> None:
    """Ticks at the cycles 0, 1, ... (plus ``offset``) labelled ``labels``; every :func:`cycle_step`-th of many."""
    keep = range(0, len(labels), cycle_step(len(labels)))
    ax.set_xticks([k + offset for k in keep])
    ax.set_xticklabels([labels[k] for k in keep])


def envelope(y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """The points (x = 0, 1, ...) of a line through ``y``; of a longer one than ``2 * bins`` points, the minimum and
    maximum of each of ``bins`` equal bins in their order (the line's extent per bin: what its pixels show)."""
    x = np.arange(y.size)
    if y.size <= 2 * bins:
        return x, y
    edges = np.linspace(0, y.size, bins + 1).astype(np.int64)
    low, high = np.fmin.reduceat(y, edges[:-1]), np.fmax.reduceat(y, edges[:-1])  # NaN: not scored
    at_low = edges[:-1] + _argreduce(y, edges, low)
    at_high = edges[:-1] + _argreduce(y, edges, high)
    first = at_low <= at_high
    xs = np.column_stack([np.where(first, at_low, at_high), np.where(first, at_high, at_low)]).ravel()
    return x[xs], y[xs]


def _argreduce(y: np.ndarray, edges: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Per bin ``edges[k]:edges[k + 1]``, the first position (from the bin's start) where ``y`` equals ``value[k]``."""
    which = np.repeat(np.arange(edges.size - 1), np.diff(edges))
    hit = np.flatnonzero((y == value[which]) | np.isnan(value[which]))  # a bin of NaN only: its first point
    first = np.unique(which[hit], return_index=True)[1]
    return hit[first] - edges[:-1]


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
