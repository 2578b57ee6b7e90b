"""Label-cost tables from committed labelled sets: every frame of an extxyz file a labeller wrote carries the CPU
seconds its label took (``cpu_seconds``), its level (``fidelity``) and, for PySCF, its ``scf_cycles``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _frames(path: Path) -> list[Any]:
    from ase.io import read

    return read(path, ":")


def set_label_cost(paths: Sequence[Path]) -> dict[str, Any]:
    """The labels of one set (one or more files of the same level): its fidelity, label count, and the mean, min,
    max and sum of their CPU seconds; a one-line error when the files mix levels or a frame has no cost."""
    frames = [a for path in paths for a in _frames(path)]
    fidelities = {a.info.get("fidelity") for a in frames}
    if len(fidelities) != 1 or None in fidelities:
        names = ", ".join(p.name for p in paths)
        raise ValueError(f"{names}: want frames of one fidelity, found {sorted(map(str, fidelities))}")
    if any("cpu_seconds" not in a.info for a in frames):
        raise ValueError(f"{', '.join(p.name for p in paths)}: a frame has no cpu_seconds")
    cpu = np.array([float(a.info["cpu_seconds"]) for a in frames])
    return {"fidelity": fidelities.pop(), "labels": int(cpu.size), "mean": float(cpu.mean()), "min": float(cpu.min()),
            "max": float(cpu.max()), "total": float(cpu.sum())}


def figure(x: float) -> str:
    """Three significant digits, whole numbers from 100 on."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def label_sets_table(sets: Sequence[dict[str, Any]]) -> list[str]:
    """One row per set (``name``, its ``files``, ``labelled``: when): the level, the mean CPU s per label (three
    significant digits, whole from 100), min-max, labels and CPU s in all."""
    lines = ["| fidelity | CPU s per label (mean) | min-max | labels | CPU s in all | set, when labelled |",
             "|---|---:|---:|---:|---:|---|"]
    for s in sets:
        c = set_label_cost([Path(f) for f in s["files"]])
        lines.append(f"| {c['fidelity']} | {figure(c['mean'])} | {figure(c['min'])}-{figure(c['max'])} | "
                     f"{c['labels']} | {figure(c['total'])} | `{s['name']}`, {s['labelled']} |")
    return lines


def frame_labels_table(files: dict[Path, str], first_column: str) -> list[str]:
    """One row per labelled frame of each file (``files``: path -> the rows' first cell, e.g. the box): its level,
    CPU s of its energy + forces, and SCF cycles."""
    lines = [f"| {first_column} | preset | CPU s per energy + forces | SCF cycles |", "|---|---|---:|---:|"]
    for path, label in files.items():
        for a in _frames(path):
            if "cpu_seconds" not in a.info or "fidelity" not in a.info:
                raise ValueError(f"{path.name}: a frame has no cpu_seconds or fidelity")
            lines.append(f"| {label} | {a.info['fidelity']} | {float(a.info['cpu_seconds']):.0f} | "
                         f"{a.info.get('scf_cycles', '')} |")
    return lines
