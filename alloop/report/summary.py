"""A short Markdown summary of a campaign: status, cost, failures, models, molecules, reactions, the MD's cost, stop
reason."""

from __future__ import annotations

from typing import Any

import numpy as np

from alloop.evaluation.molecule_table import molecule_cells, molecule_headers, molecule_status
from alloop.evaluation.records import auto_lines, cycles_table, molecule_scores, tails_line
from alloop.evaluation.records import status as evaluation_status
from alloop.labeling.result import STATUS_FROM_CODE
from alloop.store import tables
from alloop.store.campaign import CampaignStore
from alloop.store.coverage import cumulative_shares, fidelity_label, labelled_basins
from alloop.store.ledger import finished_reason
from alloop.store.levels import Levels, read_levels
from alloop.store.md_cost import md_cost_table
from alloop.store.reactions import reaction_status
from alloop.store.summary import summarize
from alloop.store.tables import EVAL_COLUMNS


def summary_markdown(store: CampaignStore, basins: dict[str, Any] | None = None, levels: Levels | None = None) -> str:
    """The summary; ``basins``: :func:`labelled_basins`, ``levels``: :func:`read_levels` of the store if already read
    (read here otherwise)."""
    info = summarize(store)
    lines = [f"# Campaign report: {store.config.get('name', store.path)}", ""]
    reason = finished_reason(store)
    lines.append(f"- state: {'finished (' + reason + ')' if reason else 'not finished'}")
    rec = info["commit"]
    lines.append(f"- last commit: #{rec.get('seq')} cycle {rec.get('cycle')} phase {rec.get('phase')}")
    fr = info["frames"]
    lines.append(f"- frames: {fr['total']} ({', '.join(f'{k} {v}' for k, v in fr['by_origin'].items())})")
    evaluation = evaluation_status(store)
    if evaluation is not None:
        lines.append(f"- evaluation set: {evaluation['n_frames']} frames of {evaluation['structures']} "
                     f"(SHA-256 {str(evaluation['sha256'])[:12]}); the eval columns are each model's errors on it")
        if evaluation.get("auto"):
            lines += [f"  - {line}" for line in auto_lines(evaluation["auto"], evaluation["n_frames"])]
        if evaluation["models"]:
            lines.append(f"  - {tails_line(evaluation['models'][-1]).strip()}")
    lines += ["", "| fidelity | labels | ok | failed (by status) | CPU s | CPU s per label |",
              "|---|---:|---:|---|---:|---:|"]
    for lab in info["labels"]:
        bad = ", ".join(f"{k} {v}" for k, v in lab["by_status"].items() if k != "ok" and v)
        per = lab["cpu_seconds"] / lab["total"] if lab["total"] else float("nan")
        lines.append(f"| {lab['name']} | {lab['total']} | {lab['by_status']['ok']} | {bad or '-'} "
                     f"| {lab['cpu_seconds']:.1f} | {per:.3g} |")
    failures = _failures(store)
    if failures:
        lines += ["", "Failed labels (first 20):", ""]
        lines += [f"- frame {f} at {name}: {status} ({reason})" for f, name, status, reason in failures[:20]]
    c = cycles_table(store)
    if c:
        covered = {m["model_version"]: m for m in (evaluation or {}).get("models", [])}
        lines += ["", "| cycle | model | MD frames | flag rate | cheap | expensive | CPU s | val F-MAE (eV/Å) "
                  "| eval F-MAE (eV/Å) | eval F-RMSE (eV/Å) | eval E-MAE (eV) | eval E-MAE (meV/atom) "
                  "| eval Q <= limit | eval median Q |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for k in range(c["cycle"].size):
            cpu = c["cpu_cheap_s"][k] + c["cpu_expensive_s"][k]
            held = [_num(c[col][k], scale) for col, scale in _EVAL_COLUMNS]
            lines.append(f"| {c['cycle'][k]} | {c['model_version'][k]} | {c['md_frames'][k]} | {c['flag_rate'][k]:.2f} "
                         f"| {c['labels_cheap'][k]} | {c['labels_expensive'][k]} | {cpu:.0f} "
                         f"| {c['val_force_mae_eV_per_A'][k]:.4f} | {' | '.join(held)} "
                         f"| {_coverage_cells(covered.get(int(c['model_version'][k]), {}))} |")
    lines += _molecules_table(molecule_status(store), molecule_scores(store))
    lines += _bias_table(store)
    lines += _levels_line(read_levels(store) if levels is None else levels)
    lines += _basins_table(labelled_basins(store) if basins is None else basins)
    lines += _reactions_table(reaction_status(store))
    lines += md_cost_table(store)
    return "\n".join(lines) + "\n"


def _molecules_table(part: dict[str, Any] | None, scores: dict[int, dict[str, dict[str, float]]]) -> list[str]:
    """Per molecule of a campaign of several: frames, flagged share, labels, the newest model's evaluation errors;
    then each scored model's force MAE per molecule (the learning curve of every molecule)."""
    if part is None:
        return []
    headers = molecule_headers(part["fidelities"])
    newest = "" if part["model_version"] is None else f"; errors of model v{part['model_version']} on the evaluation set"
    lines = ["", f"Per molecule (frames, share of MD frames flagged, ok labels per fidelity{newest}):", "",
             f"| {' | '.join(headers)} |", "|---|" + "---:|" * (len(headers) - 1)]
    lines += [f"| {' | '.join(molecule_cells(row, part['fidelities']))} |" for row in part["rows"]]
    if len(scores) < 2:
        return lines
    names = list(dict.fromkeys(name for per in scores.values() for name in per))
    lines += ["", "Evaluation-set force MAE (eV/Å) per molecule, per model:", "",
              f"| model | {' | '.join(names)} |", "|---:|" + "---:|" * len(names)]
    for version, per in sorted(scores.items()):
        cells = [_num(per[n]["eval_force_mae_eV_per_A"], 1.0) if n in per else "-" for n in names]
        lines.append(f"| {version} | {' | '.join(cells)} |")
    return lines


def _bias_table(store: CampaignStore) -> list[str]:
    """ASTEROID's bias B of the cheap frames per model version (the model that weighted them): how far the cheap
    labels sit from what the expensive labels imply. Nothing when no training computed B."""
    rows = tables.read(store, tables.BIAS)
    if not rows or rows["B"].size == 0:
        return []
    lines = ["", "Bias B of the cheap frames against the model trained on expensive labels only (stage 1), per model "
             "(eV/Å; the cheap level's real distance from the expensive one is what B should measure):", "",
             "| model | cheap frames | median B | 10th-90th percentile | median weight w |", "|---:|---:|---:|---|---:|"]
    for version in np.unique(rows["model_version"]):
        this = rows["model_version"] == version
        b, w = rows["B"][this], rows["w"][this]
        lo, hi = np.percentile(b, [10, 90])
        lines.append(f"| {int(version)} | {int(this.sum())} | {np.median(b):.3f} | {lo:.3f}-{hi:.3f} | "
                     f"{np.median(w):.2f} |")
    return lines


def _levels_line(levels: Levels | None) -> list[str]:
    """The cheap level's measured distance from the expensive one on the frames labelled at both, and the last
    model's median B (:mod:`alloop.store.levels`); each part only when the store has it."""
    if levels is None:
        return []
    parts = []
    if levels.both_mae.size:
        parts.append(f"cheap level's distance from the expensive level ({levels.cheap} from {levels.expensive}, mean "
                     f"per-frame force MAE) on {levels.both_mae.size} frames labelled at both: "
                     f"{levels.distance:.4f} eV/Å")
    if levels.models is not None:
        parts.append(f"median B of the last model (v{levels.models.versions[-1]}): "
                     f"{levels.models.median_b[-1]:.4f} eV/Å")
    return ["", "; ".join(parts) + " (levels.png)"] if parts else []


def _basins_table(coverage: dict[str, Any] | None) -> list[str]:
    """The labelled frames of each fidelity and cycle by conformer basin, and the shares of those labelled so far."""
    if coverage is None:
        return []
    rotors = ", ".join(f"{n} (atoms {a})" for n, a in zip(coverage["rotor_names"], coverage["rotors"], strict=True))
    basins = coverage["basins"]
    lines = ["", f"Labelled frames by conformer basin of {rotors}; the last column: shares of the frames labelled so "
             "far (%, in the order of the basin columns):", "",
             f"| fidelity | cycle | {' | '.join(basins)} | so far (%) |", "|---|---|" + "---:|" * (len(basins) + 1)]
    for name, per_cycle in coverage["fidelities"].items():
        label = fidelity_label(coverage, name)
        done, shares, _ = cumulative_shares(per_cycle)
        for k, cycle in enumerate(done):
            so_far = " / ".join(f"{100 * x:.0f}" for x in shares[k])
            lines.append(f"| {label} | {'bootstrap' if cycle < 0 else cycle} "
                         f"| {' | '.join(map(str, per_cycle[cycle]))} | {so_far} |")
    return lines


def _reactions_table(status: dict[str, Any] | None) -> list[str]:
    """The MD's reaction events per cycle (:mod:`alloop.store.reactions`) and the labelled frames nearer each partner
    of every atom that moved."""
    if status is None:
        return []
    lines = ["", "Reaction events of the MD (a bond broken while its atom formed another; the replica went on):", "",
             "| cycle | events | reactions |", "|---|---:|---|"]
    for c, row in status["cycles"].items():
        what = ", ".join(f"{name} x{n}" for name, n in row["reactions"].items()) or "-"
        lines.append(f"| {'bootstrap' if c < 0 else c} | {row['events']} | {what} |")
    for name, sides in status.get("sides", {}).items():
        label = fidelity_label({"roles": status.get("roles", {})}, name)
        lines.append("")
        lines.append(f"Labelled frames nearer each partner, {label}: "
                     + "; ".join(f"{move} {n[0]} / {n[1]}" for move, n in sides.items()))
    return lines


_EVAL_COLUMNS = tuple(zip(EVAL_COLUMNS, (1.0, 1.0, 1.0, 1000.0), strict=True))  # column, factor to the unit shown


def _coverage_cells(model: dict[str, Any]) -> str:
    """A model's share of the evaluation set within the Q-residual limit and median Q ("-" where not recorded)."""
    share, median = model.get("covered_fraction"), model.get("median_q")
    return (f"{'-' if share is None else f'{100 * share:.0f} %'} "
            f"| {'-' if median is None else f'{median:.2f}'}")


def _num(value: float, scale: float) -> str:
    if not np.isfinite(value):
        return "-"
    return f"{scale * value:.4f}" if scale == 1.0 else f"{scale * value:.2f}"


def _failures(store: CampaignStore) -> list[tuple[int, str, str, str]]:
    out = []
    for h, info in store.fidelities().items():
        table = store.labels(h)
        for row in np.flatnonzero(~table.ok):
            status = STATUS_FROM_CODE[int(table.status[row])].value
            out.append((int(table.frame_id[row]), info["name"], status, str(table.reason[row])))
    return out
