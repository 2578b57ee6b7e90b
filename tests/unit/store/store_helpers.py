"""Deterministic frames and labels of mixed sizes for the store tests (functions of an index only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from alloop.labeling.result import LabelResult, LabelStatus


def make_frame(k: int) -> Atoms:
    """Frame ``k``: 1..9 atoms, random full-precision positions (a function of k only)."""
    rng = np.random.default_rng(1000 + k)
    n = 1 + k % 9
    return Atoms(numbers=rng.integers(1, 10, n), positions=rng.normal(0.0, 2.0, (n, 3)))


def make_label(k: int, n_atoms: int, fail: bool = False) -> LabelResult:
    if fail:
        return LabelResult.failure(n_atoms, LabelStatus.SCF_NOT_CONVERGED, f"no convergence for {k}", cpu_seconds=0.5)
    rng = np.random.default_rng(5000 + k)
    return LabelResult(
        energy_eV=float(rng.normal() * 100),
        forces_eV_per_A=rng.normal(size=(n_atoms, 3)),
        status=LabelStatus.OK,
        cpu_seconds=1.0 + k,
        wall_seconds=2.0 + k,
        scf_cycles=10 + k,
    )


def assert_the_stored_summary_reads_the_same(run_dir: Path, text: str, capsys: Any) -> None:
    """Once the loop's status summary is stored (:func:`alloop.campaign.status_summary.save`), ``alloop status``
    reads it and prints ``text``, the status computed afresh, to the character but for the last commit (the
    summary's own); ``--json`` says it was stored."""
    from alloop.campaign import status_summary
    from alloop.cli import main
    from alloop.store import CampaignStore, store_path

    with CampaignStore.open(store_path(run_dir), "a") as store:
        status_summary.save(store)
    assert main(["status", str(run_dir)]) == 0
    after = capsys.readouterr().out.splitlines()
    assert after[1].startswith("last commit") and text.splitlines()[1].startswith("last commit")
    assert after[:1] + after[2:] == text.splitlines()[:1] + text.splitlines()[2:]
    assert main(["status", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stored_summary"] is True
