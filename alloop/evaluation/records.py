"""Reading a campaign's evaluation records: the stored evaluation set, each model's scores (per molecule too) and
coverage.

The writers (copying the set in, scoring models) are :mod:`alloop.evaluation.campaign`; these readers serve
``alloop status``, ``alloop report`` and the loop alike. :func:`cycles_table` reads the ``eval_*`` columns of a
store written before they existed as NaN (filled from the ``evaluation`` table where it has the model).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alloop.evaluation.frames import EvaluationFrames
from alloop.evaluation.status_rows import short_rows
from alloop.store import tables
from alloop.store.campaign import CampaignStore
from alloop.store.ledger import held_out_ids

BLOB = "evaluation_set"
#: the header keys of an automatic set (alloop.evaluation.auto) that status shows
AUTO_KEYS = ("sampler", "surface", "temperature_K", "n_runs", "equilibration_fs", "spacing_fs", "n_failed",
             "populations")
TABLE = tables.EVALUATION.name
#: cycles/evaluation column -> key of alloop.evaluation.metrics.error_metrics
COLUMNS = dict(zip(tables.EVAL_COLUMNS, ("force_mae_eV_per_A", "force_rmse_eV_per_A", "energy_mae_eV",
                                         "energy_mae_per_atom_eV"), strict=True))
#: evaluation/eval_molecules tail column -> key of error_metrics: the per-frame force MAE's 95th percentile and max
TAILS = dict(zip(tables.EVAL_TAIL_COLUMNS, ("force_mae_p95_eV_per_A", "force_mae_max_eV_per_A"), strict=True))
#: every score of a model on the set: COLUMNS and TAILS
SCORES = COLUMNS | TAILS


def _floats(rows: dict[str, np.ndarray], k: int) -> dict[str, float]:
    """Row ``k``'s scores (a tail column a store written before it lacks reads as NaN)."""
    return {c: float(rows[c][k]) if c in rows else float("nan") for c in SCORES}


def stored_set(store: CampaignStore) -> EvaluationFrames | None:
    """The evaluation set copied into the store, or None."""
    blob = store.get_blob(BLOB)
    return None if blob is None else EvaluationFrames.from_bytes(blob)


def coverage_by_model(store: CampaignStore) -> dict[int, dict[str, float]]:
    """model version -> its ``eval_coverage`` scores (covered_fraction, median_q)."""
    rows = tables.read(store, tables.EVAL_COVERAGE)
    if not rows:
        return {}
    return {int(v): {"covered_fraction": float(rows["covered_fraction"][k]), "median_q": float(rows["median_q"][k])}
            for k, v in enumerate(rows["model_version"])}


def model_scores(store: CampaignStore) -> dict[int, dict[str, float]]:
    """model version -> its ``eval_*`` scores and tails (NaN in a store written before them) and cycle, from the
    ``evaluation`` table."""
    rows = tables.read(store, tables.EVALUATION)
    if not rows:
        return {}
    return {int(v): {"cycle": int(rows["cycle"][k]), **_floats(rows, k)}
            for k, v in enumerate(rows["model_version"])}


def molecule_scores(store: CampaignStore) -> dict[int, dict[str, dict[str, float]]]:
    """model version -> molecule -> its ``n_frames`` and ``eval_*`` scores, from the ``eval_molecules`` table (empty
    for an evaluation set of one molecule)."""
    rows = tables.read(store, tables.EVAL_MOLECULES)
    out: dict[int, dict[str, dict[str, float]]] = {}
    for k, version in enumerate(rows.get("model_version", [])):
        out.setdefault(int(version), {})[str(rows["molecule"][k])] = {
            "n_frames": int(rows["n_frames"][k]), **_floats(rows, k)}
    return out


def cycles_table(store: CampaignStore) -> dict[str, np.ndarray]:
    """The ``cycles`` table with its ``eval_*`` columns (NaN where unknown, filled from the ``evaluation`` table)."""
    rows = tables.read(store, tables.CYCLES)
    if not rows:
        return {}
    scores = model_scores(store)
    n = rows["cycle"].size
    for column in COLUMNS:
        values = np.asarray(rows.get(column, np.full(n, np.nan)), float).copy()
        for k, version in enumerate(rows["model_version"]):
            if np.isnan(values[k]) and int(version) in scores:
                values[k] = scores[int(version)][column]
        rows[column] = values
    return rows


def status(store: CampaignStore) -> dict[str, Any] | None:
    """The evaluation set and each scored model's errors (what ``alloop status`` shows), or None without a set."""
    frames = stored_set(store)
    if frames is None:
        return None
    h = frames.header
    coverage = coverage_by_model(store)
    molecules = molecule_scores(store)
    models = [{"model_version": v, **s, **coverage.get(v, {"covered_fraction": None, "median_q": None}),
               "molecules": molecules.get(v, {})}
              for v, s in sorted(model_scores(store).items())]
    made = {k: h.get(k) for k in AUTO_KEYS} | {"labels": held_out_cost(store)} if h.get("source") == "auto" else None
    return {"structures": h.get("source"), "sha256": h.get("sha256"), "energy_key": h.get("energy_key"),
            "forces_key": h.get("forces_key"), "n_frames": frames.n_frames, "n_atoms": int(frames.numbers.size),
            "auto": made, "models": models}


def held_out_cost(store: CampaignStore) -> dict[str, dict[str, float]]:
    """Fidelity name -> labels and CPU seconds of the automatic set's frames (counted apart from the campaign's)."""
    ids, out = held_out_ids(store), {}
    for fidelity_hash, info in store.fidelities().items():
        table = store.label_columns(fidelity_hash, ["frame_id", "cpu_seconds"])
        rows = np.isin(table["frame_id"], ids)
        if rows.any():
            out[str(info["name"])] = {"labels": int(rows.sum()), "cpu_seconds": float(np.nansum(table["cpu_seconds"][rows]))}
    return out


def auto_lines(made: dict[str, Any], n_frames: int) -> list[str]:
    """What an automatic set represents (sampler, temperature, runs, frames; its conformer populations in one line
    when its molecule has rotors) and its label cost, as unindented lines."""
    lines = [f"made by alloop: {made['sampler']} at {made['temperature_K']:g} K, {made['n_runs']} independent run(s) "
             f"from the starting structures (own seeds), {made['equilibration_fs']:g} fs equilibration, a frame every "
             f"{made['spacing_fs']:g} fs; {n_frames} frames ({made['n_failed']} failed labels left out)"]
    pops = made.get("populations") or {}
    if pops.get("shares"):
        lines.append("conformer populations of the set: " + "; ".join(
            f"{pops['rotors'].get(label, label)} " + ", ".join(f"{b} {100 * x:.0f} %" for b, x in shares.items())
            for label, shares in pops["shares"].items()))
    cost = ", ".join(f"{c['labels']} {name} labels, {c['cpu_seconds']:.0f} CPU s" for name, c in made["labels"].items())
    lines.append(f"its labels (not in the campaign's budget): {cost or 'none yet'}")
    return lines


def format_status(part: dict[str, Any] | None) -> list[str]:
    """:func:`status` as text lines (none without an evaluation set)."""
    if part is None:
        return []
    lines = [f"evaluation   {part['n_frames']} frames ({part['n_atoms']} atoms) of {part['structures']}"
             f" (SHA-256 {str(part['sha256'])[:12]})"]
    if part.get("auto"):
        lines += [f"  {line}" for line in auto_lines(part["auto"], part["n_frames"])]
    if not part["models"]:
        return lines + ["  no model scored yet"]
    lines.append(f"  {'model':>5}  {'cycle':>9}  {'F-MAE eV/A':>10}  {'F-RMSE eV/A':>11}  {'E-MAE eV':>9}"
                 f"  {'E-MAE meV/atom':>14}  {'Q <= limit':>10}  {'median Q':>8}")
    return [*lines, *short_rows(part["models"], _model_line), tails_line(part["models"][-1])]


def _model_line(m: dict[str, Any]) -> str:
    cycle = "bootstrap" if m["cycle"] < 0 else str(m["cycle"])
    covered = "-" if m.get("covered_fraction") is None else f"{100 * m['covered_fraction']:.0f} %"
    median = "-" if m.get("median_q") is None else f"{m['median_q']:.2f}"
    return (f"  {'v' + str(m['model_version']):>5}  {cycle:>9}  {m['eval_force_mae_eV_per_A']:>10.4f}"
            f"  {m['eval_force_rmse_eV_per_A']:>11.4f}  {m['eval_energy_mae_eV']:>9.4f}"
            f"  {1000 * m['eval_energy_mae_per_atom_eV']:>14.2f}  {covered:>10}  {median:>8}")


def tails_line(m: dict[str, Any]) -> str:
    """The final model's force MAE on the set with the tails of its per-frame force MAE ("n/a" where not recorded)."""
    p95, top = (m.get(c, float("nan")) for c in TAILS)
    return (f"  final model v{m['model_version']}: force MAE {m['eval_force_mae_eV_per_A']:.4f} eV/A; per frame "
            f"95th percentile {_or_na(p95)}, max {_or_na(top)}")


def _or_na(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.4f} eV/A"
