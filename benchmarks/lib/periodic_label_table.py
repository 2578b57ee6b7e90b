"""The table of ``periodic_label_bench.py`` from its result files: per periodic structure and preset, the cost of one
Gamma-point energy + forces label, its SCF cycles, largest force and net force."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lib.label_tables import figure


def box_cell(lengths: Sequence[float]) -> str:
    """A box's cell lengths (A): one number for a cube, ``a x b x c`` otherwise."""
    if max(lengths) - min(lengths) < 0.005:
        return f"{lengths[0]:.2f}"
    return " x ".join(f"{x:.2f}" for x in lengths)


def preset_cell(row: dict[str, Any]) -> str:
    """The preset, with its plane-wave cutoff (Hartree) when it has one."""
    cutoff = row.get("ke_cutoff_Eh")
    return row["preset"] + (f" ({cutoff:g} Eh)" if cutoff else "")


def periodic_label_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """One row per structure and preset of each result file in turn: atoms, box, status, CPU and wall s, SCF
    cycles, the largest force component and the net force ``|sum F|`` (``-`` for a label that failed). The first
    column is the water count of water boxes, or the structure's name."""
    kinds = {r["structures"] for r in results}
    if len(kinds) != 1:
        raise ValueError(f"results of water boxes and of structure files in one table: {sorted(kinds)}")
    first = "waters" if kinds.pop() == "water boxes" else "structure"
    lines = [f"| {first} | atoms | box (A) | preset | status | CPU s | wall s | SCF cycles | max abs F (eV/A) | "
             "net force (eV/A) |", "|---:|---:|---:|---|---|---:|---:|---:|---:|---:|"]
    for result in results:
        for r in result["rows"]:
            ok = r["status"] == "ok"
            forces = f"{r['max_force_eV_per_A']:.2f} | {r['net_force_eV_per_A']:.3f}" if ok else "- | -"
            lines.append(f"| {r['structure']} | {r['atoms']} | {box_cell(r['cell_A'])} | {preset_cell(r)} | "
                         f"{r['status']} | {figure(r['cpu_s'])} | {figure(r['wall_s'])} | {r['scf_cycles']} | "
                         f"{forces} |")
    return lines
