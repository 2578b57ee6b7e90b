"""Per-model table of a finished campaign from its ``alloop status --json`` (kept in ``benchmarks/results``): each
trained model's errors on the campaign's evaluation set, its Q-residual coverage there and its forgetting."""

from __future__ import annotations

from typing import Any


def _model_name(cycle: int, last_cycle: int) -> str:
    if cycle < 0:
        return "bootstrap"
    return f"final retrain (cycle {cycle})" if cycle == last_cycle else f"cycle {cycle}"


def _labels_by_cycle(status: dict[str, Any]) -> dict[int, str]:
    """Cycle -> "expensive + cheap" labels bought up to it, from the labelled frames per basin (molecules only)."""
    basins = status.get("labelled_basins")
    if not basins:
        return {}
    roles = {role: name for name, role in basins["roles"].items()}
    counts = {role: {int(c): sum(v) for c, v in basins["fidelities"][roles[role]].items()} for role in roles}
    cycles = sorted(counts["expensive"])
    total = {role: 0 for role in counts}
    out = {}
    for c in cycles:
        for role in counts:
            total[role] += counts[role].get(c, 0)
        out[c] = f"{total['expensive']} + {total['cheap']}"
    return out


def model_table(status: dict[str, Any]) -> list[str]:
    """One row per model the campaign evaluated: version, force and energy MAE on the evaluation set, the share of
    its frames within the Q limit and the median Q / limit, and the force change on the outside molecules."""
    models = status["evaluation"]["models"]
    forget = {m["model_version"]: m["forget_force_mae_eV_per_A"] for m in (status.get("forgetting") or {}).get(
        "models", [])}
    labels = _labels_by_cycle(status)
    last = max(m["cycle"] for m in models)
    header = ["model", "version", *(["expensive + cheap labels"] if labels else []), "force MAE (eV/A)",
              "energy MAE (meV/atom)", "evaluation frames within the Q limit", "median Q / limit",
              "force change on outside molecules (eV/A)"]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + ("---:|" if labels else "") + "---:|" * 5]
    for m in models:
        change = forget.get(m["model_version"])
        cells = [_model_name(m["cycle"], last), f"v{m['model_version']}",
                 *([labels.get(m["cycle"], "-")] if labels else []), f"{m['eval_force_mae_eV_per_A']:.4f}",
                 f"{1000 * m['eval_energy_mae_per_atom_eV']:.2f}", f"{100 * m['covered_fraction']:.0f} %",
                 f"{m['median_q']:.2f}", "-" if change is None else f"{change:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
