"""The three levels of a two-fidelity campaign, read from its store: what a label costs at each fidelity per cycle,
ASTEROID's bias B of each model against the cheap level's measured distance from the expensive one.

- **Cost**: CPU seconds of every label (failed ones too: their CPU was spent) per fidelity and per cycle of the
  label. A label's cycle is the cycle that selected its frame for that role (``selection`` table; the first such
  row), else the cycle that recorded the frame (a label without a selection row, e.g. an import).
- **Bias**: per trained model version, the median and the 10th-90th percentiles of B over the cheap frames it
  weighted (``bias`` table; B is the mean over atoms and xyz of |F_theta0 - f_cheap|, eV/A); the model's cycle is
  its row of the ``cycles`` table (a version without one is left out).
- **Distance**: every frame with an ok label at both fidelities (an ASTEROID campaign picks its expensive frames
  among the cheap-labelled ones), its force MAE between the two labels (mean over atoms and xyz of
  |f_cheap - f_expensive|, eV/A: the quantity B estimates); per model, the mean over the frames labelled at both by
  the end of its cycle (a frame counts from the later of its two labels' cycles).

The cheap and expensive fidelities are the campaign's roles (:func:`alloop.store.coverage.fidelity_roles`); a store
without a campaign config that holds exactly two fidelities takes the one cheaper per label as the cheap one.
Computed from committed data whenever the report runs; nothing is stored. ``alloop report`` draws it
(``levels.png``, :mod:`alloop.report.levels_plot`) and states it in one line of ``summary.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alloop.store import tables
from alloop.store.campaign import CampaignStore
from alloop.store.coverage import fidelity_roles
from alloop.store.labels import LabelTable


@dataclass(frozen=True)
class LabelCosts:
    """CPU seconds per label of one fidelity, per cycle of the label (cycles in increasing order)."""

    name: str
    role: str
    cycles: np.ndarray  # int
    mean_s: np.ndarray
    p10_s: np.ndarray
    p90_s: np.ndarray
    n_labels: np.ndarray  # int


@dataclass(frozen=True)
class ModelLevels:
    """Per trained model version with bias rows (in version order): its cycle, its B over the cheap frames, and the
    measured cheap-vs-expensive distance on the frames labelled at both by the end of its cycle (NaN when none)."""

    versions: np.ndarray  # int
    cycles: np.ndarray  # int
    median_b: np.ndarray  # eV/A
    p10_b: np.ndarray
    p90_b: np.ndarray
    n_cheap: np.ndarray  # int: cheap frames with a B
    distance: np.ndarray  # eV/A, mean per-frame force MAE between the two labels
    n_both: np.ndarray  # int: frames labelled at both so far


@dataclass(frozen=True)
class Levels:
    """What :func:`read_levels` returns: costs per fidelity, the bias per model (None when no model recorded B) and
    the per-frame distances of every frame labelled at both fidelities (empty arrays when none)."""

    cheap: str  # fidelity names
    expensive: str
    costs: list[LabelCosts]
    models: ModelLevels | None
    both_frame_ids: np.ndarray  # int
    both_cycles: np.ndarray  # int: the cycle from which a frame counts as labelled at both
    both_mae: np.ndarray  # eV/A per frame

    @property
    def distance(self) -> float:
        """The cheap level's measured distance from the expensive one over every frame labelled at both (NaN: none)."""
        return float(np.mean(self.both_mae)) if self.both_mae.size else float("nan")


def read_levels(store: CampaignStore) -> Levels | None:
    """The levels of ``store``; None unless it holds a cheap and an expensive fidelity and either a model with bias
    rows or a frame labelled at both (a standard campaign without doubly-labelled frames has nothing to show)."""
    pair = fidelity_pair(store)
    if pair is None:
        return None
    (cheap_hash, expensive_hash), stored = pair, store.fidelities()
    cheap, expensive = store.labels(cheap_hash), store.labels(expensive_hash)
    cycles_c, cycles_e = label_cycles(store, cheap, "cheap"), label_cycles(store, expensive, "expensive")
    ids, cycles, mae = both_labelled(cheap, expensive, cycles_c, cycles_e)
    models = model_levels(store, cycles, mae)
    if models is None and ids.size == 0:
        return None
    costs = [label_costs(table, role, c) for table, role, c in ((cheap, "cheap", cycles_c),
                                                                (expensive, "expensive", cycles_e))]
    return Levels(stored[cheap_hash]["name"], stored[expensive_hash]["name"], costs, models, ids, cycles, mae)


def fidelity_pair(store: CampaignStore) -> tuple[str, str] | None:
    """(cheap hash, expensive hash) of the campaign's roles; without them, of exactly two stored fidelities, the one
    with the lower mean CPU seconds per label first; None otherwise."""
    roles = {role: h for h, role in fidelity_roles(store).items()}
    if set(roles) == {"cheap", "expensive"}:
        return roles["cheap"], roles["expensive"]
    stored = list(store.fidelities())
    if len(stored) != 2:
        return None
    cost = [float(np.nanmean(store.labels(h).cpu_seconds)) if len(store.labels(h)) else np.inf for h in stored]
    cheap, expensive = stored if cost[0] <= cost[1] else stored[::-1]
    return cheap, expensive


def label_cycles(store: CampaignStore, table: LabelTable, role: str) -> np.ndarray:
    """The cycle of each label row: the first ``selection`` row choosing its frame for ``role``, else the cycle that
    recorded the frame."""
    frame_ids = np.asarray(table.frame_id, np.int64)
    cycles = np.asarray(store.frame_meta(frame_ids)["cycle"], np.int64) if frame_ids.size else np.zeros(0, np.int64)
    rows = tables.read(store, tables.SELECTION)
    if rows:
        mine = rows["role"] == role
        chosen, first = np.unique(np.asarray(rows["frame_id"][mine], np.int64), return_index=True)  # first row each
        if chosen.size and frame_ids.size:
            at = np.minimum(np.searchsorted(chosen, frame_ids), chosen.size - 1)
            hit = chosen[at] == frame_ids
            cycles = cycles.copy()
            cycles[hit] = np.asarray(rows["cycle"][mine], np.int64)[first[at[hit]]]
    return cycles


def label_costs(table: LabelTable, role: str, cycles: np.ndarray) -> LabelCosts:
    """CPU seconds per label of ``table`` (every status; rows without a finite CPU time left out) per cycle;
    ``cycles``: :func:`label_cycles` of the table."""
    cpu = np.asarray(table.cpu_seconds, float)
    keep = np.isfinite(cpu)
    cpu, cycles = cpu[keep], cycles[keep]
    done, per = _groups(cycles, cpu)
    p10, p90 = (np.array([np.percentile(x, q) for x in per]) for q in (10, 90))
    return LabelCosts(table.fidelity_name, role, done.astype(np.int64), np.array([x.mean() for x in per]), p10, p90,
                      np.array([x.size for x in per], np.int64))


def both_labelled(cheap: LabelTable, expensive: LabelTable, cycles_c: np.ndarray, cycles_e: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames with an ok label at both fidelities (``cycles_c``, ``cycles_e``: :func:`label_cycles` of the two
    tables): (frame ids in increasing order, the cycle from which each counts: the later of its two labels' cycles,
    the force MAE between its two labels in eV/A)."""
    rows_c, rows_e = _ok_rows(cheap), _ok_rows(expensive)
    ids = np.array(sorted(set(rows_c) & set(rows_e)), np.int64)
    cycles = np.array([max(cycles_c[rows_c[f]], cycles_e[rows_e[f]]) for f in ids.tolist()], np.int64)
    mae = np.array([float(np.mean(np.abs(cheap.frame_forces(rows_c[f]) - expensive.frame_forces(rows_e[f]))))
                    for f in ids.tolist()])
    return ids, cycles, mae


def _ok_rows(table: LabelTable) -> dict[int, int]:
    """frame id -> its ok label row."""
    return {int(table.frame_id[r]): int(r) for r in np.flatnonzero(table.ok)}


def model_levels(store: CampaignStore, both_cycles: np.ndarray, both_mae: np.ndarray) -> ModelLevels | None:
    """Per model version with bias rows and a ``cycles`` row: its B statistics and the distance over the frames
    labelled at both by the end of its cycle; None when no such model."""
    bias = tables.read(store, tables.BIAS)
    cycle_rows = tables.read(store, tables.CYCLES)
    if not bias or bias["B"].size == 0 or not cycle_rows:
        return None
    cycle_of = {int(v): int(c) for v, c in zip(cycle_rows["model_version"], cycle_rows["cycle"], strict=True)}
    versions = [int(v) for v in np.unique(bias["model_version"]) if int(v) in cycle_of]
    if not versions:
        return None
    found, groups = _groups(np.asarray(bias["model_version"]), np.asarray(bias["B"], float))
    b = [groups[int(np.searchsorted(found, v))] for v in versions]
    cycles = np.array([cycle_of[v] for v in versions], np.int64)
    so_far = [both_cycles <= c for c in cycles]
    return ModelLevels(
        versions=np.array(versions, np.int64), cycles=cycles, median_b=np.array([np.median(x) for x in b]),
        p10_b=np.array([np.percentile(x, 10) for x in b]), p90_b=np.array([np.percentile(x, 90) for x in b]),
        n_cheap=np.array([x.size for x in b], np.int64),
        distance=np.array([float(np.mean(both_mae[m])) if m.any() else np.nan for m in so_far]),
        n_both=np.array([int(m.sum()) for m in so_far], np.int64),
    )


def _groups(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The distinct ``keys`` (increasing) and, for each, the ``values`` of its rows in their order (one stable sort,
    not one pass over the rows per key)."""
    if keys.size == 0:
        return keys, []
    order = np.argsort(keys, kind="stable")
    found, starts = np.unique(keys[order], return_index=True)
    return found, np.split(values[order], starts[1:])
