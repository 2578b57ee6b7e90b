"""Conformer-population tables of the equilibrium sets: each set's runs from its summary JSON
(``make_equilibrium_sets.py``), and the reference ensembles of ``model_populations.py`` (:mod:`lib.populations`)."""

from __future__ import annotations

from typing import Any

BASINS = ("trans", "gauche+", "gauche-")


def _cell(pops: dict[str, float], digits: int) -> str:
    return " / ".join(f"{100 * pops[b]:.{digits}f}" for b in BASINS)


def _set_rows(summary: dict[str, Any], set_name: str) -> tuple[list[dict[str, float]], dict[str, float], str, dict]:
    """Set ``set_name``'s per-run populations (first rotor), its all-runs entry, its "its N frames" key and entry."""
    pops = summary["sets"][set_name]["populations"]
    first = {k: next(iter(v.values())) for k, v in pops.items() if v}
    runs = [v for k, v in first.items() if k.startswith(f"{set_name} run ")]
    everything = next(v for k, v in first.items() if "all runs" in k)
    frames_key = next(k for k in first if "frames" in k)
    return runs, everything, frames_key.split(": ", 1)[1], first[frames_key]


def equilibrium_populations_table(summary: dict[str, Any], sets: dict[str, str]) -> list[str]:
    """Per set of a summary JSON (``sets``: set name -> the row's label): trans / gauche+ / gauche- (%) of each run
    (whole percent), of all runs' 10 fs trace and of the set's labelled frames; a run column a set lacks is empty."""
    rows = {label: _set_rows(summary, name) for name, label in sets.items()}
    n_runs = max(len(r[0]) for r in rows.values())
    frames = {r[2] for r in rows.values()}
    last = frames.pop() if len(frames) == 1 else "its frames"
    lines = ["| set | " + " | ".join(f"run {k}" for k in range(n_runs)) + f" | all runs | {last} |",
             "|---|" + "---:|" * (n_runs + 2)]
    for label, (runs, everything, _, framed) in rows.items():
        cells = [_cell(p, 0) for p in runs] + [""] * (n_runs - len(runs))
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {_cell(everything, 1)} | {_cell(framed, 1)} |")
    return lines


def _interval_cell(rew: dict[str, Any]) -> str:
    return " / ".join(f"{100 * s:.1f} [{100 * lo:.0f}-{100 * hi:.0f}]"
                      for s, lo, hi in zip(rew["shares"], rew["low"], rew["high"], strict=True))


def conformer_references_table(references: list[dict[str, Any]], target: str, sampler: str) -> list[str]:
    """Per temperature (``references``: dicts with ``temperature``, the sampler MD's ``sampler_md`` populations,
    ``runs`` and ``ps``, and ``reweighted`` of :func:`lib.populations.reweighted_populations`): the sampler's MD,
    its labelled frames unweighted, and those frames reweighted to ``target`` (90 % interval over runs)."""
    lines = ["| reference ensemble | trans / gauche+ / gauche- (%) |", "|---|---|"]
    for ref in references:
        t, rew = f"{ref['temperature']:g} K", ref["reweighted"]
        lines.append(f"| {t}: (1) {sampler} MD, {ref['runs']} x {ref['ps']:g} ps every 10 fs (the sampler; the test "
                     f"set's runs) | {_cell(ref['sampler_md'], 1)} |")
        lines.append(f"| {t}: the {rew['frames']} labelled frames of {rew['runs']} runs (test and pool sets), "
                     f"unweighted | {' / '.join(f'{100 * s:.1f}' for s in rew['sampler_shares'])} |")
        lines.append(f"| {t}: (2) {target}: those frames reweighted (effective sample size {rew['ess']:.0f} of "
                     f"{rew['frames']}) | {_interval_cell(rew)} |")
    return lines
