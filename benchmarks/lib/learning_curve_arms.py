"""What ``learning_curves.py`` and the scripts built on its arms share: the 500 K pools, the random arm's frame
order, and the scoring of a model on a labelled test file.

An entry of ``learning_curves.py`` (one (arm, N, seed) result file) scores its model with :func:`score`; a script
that adds an arm of its own (``foundation_models.py``'s zero-shot) draws the random arm's frames with
:func:`random_order` and scores the same way, so its rows sit in the same tables.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from lib.common import DATA, alloop, per_frame_force_mae

#: the random arm's pools, concatenated: the two 150-frame 500 K pools of ``make_equilibrium_sets.py``
DEFAULT_POOLS = [DATA / "ethanol_500K_eqpool_b3lyp-svp.extxyz", DATA / "ethanol_500K_eqpool2_b3lyp-svp.extxyz"]


def sha256(path: Path) -> str:
    """The SHA-256 (hex) of a file (:func:`alloop.evaluation.frames.file_sha256`)."""
    from alloop.evaluation.frames import file_sha256

    return file_sha256(path)


def random_order(n_pool: int, seed: int, offset: int = 10_000) -> np.ndarray:
    """The pool's frames in a seeded random order: the first N are the random arm's N frames."""
    return np.random.default_rng(offset + seed).permutation(n_pool)


def evaluate_json(stdout: str) -> dict[str, Any]:
    """The JSON object of ``alloop evaluate --json``'s output: from its first line that opens one (mace prints a
    line about cuEquivariance to stdout when it is imported)."""
    lines = stdout.splitlines()
    start = next((k for k, line in enumerate(lines) if line.startswith("{")), None)
    if start is None:
        raise SystemExit(f"alloop evaluate --json printed no JSON object: {stdout[:200]!r}")
    return json.loads("\n".join(lines[start:]))


def score(model: Path, test: Path) -> dict[str, Any]:
    """A model's errors on one labelled file: per-frame force MAE and its summaries, ``alloop evaluate``'s MAEs."""
    from ase.io import read

    frames = read(test, ":")
    energy = np.array([a.get_potential_energy() for a in frames])
    per_frame = per_frame_force_mae(model, test)
    top = np.argsort(energy)[-max(1, math.ceil(len(frames) / 10)):]
    got = evaluate_json(alloop("evaluate", str(model), str(test), "--json"))
    return {"sha256": sha256(test), "per_frame": per_frame.tolist(), "mean": float(per_frame.mean()),
            "p95": float(np.percentile(per_frame, 95)), "max": float(per_frame.max()),
            "top_decile": float(per_frame[top].mean()), "evaluate_force_mae": float(got["force_mae_eV_per_A"]),
            "evaluate_energy_mae": float(got["energy_mae_eV"])}
