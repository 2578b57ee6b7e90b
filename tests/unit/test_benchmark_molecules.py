"""The molecules benchmark's table (``benchmarks/lib/molecules.py``): each structure file loads with the table's
formula as one molecule, and its charge and 2S agree with its electron count at both of the benchmark's levels."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import read

from alloop.errors import FidelityError
from alloop.fidelity import load_fidelity

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the scripts' own layout: benchmarks/ on sys.path, lib.* importable

from lib.molecules import EXPENSIVE, MOLECULES, electrons  # noqa: E402
from make_molecule_structures import bond_set, fragments  # noqa: E402


@pytest.mark.parametrize("name", list(MOLECULES))
def test_structure_has_the_table_formula_and_is_one_molecule(name: str) -> None:
    entry = MOLECULES[name]
    atoms = read(entry.path)
    assert atoms.get_chemical_formula() == Atoms(entry.formula).get_chemical_formula()
    assert fragments(len(atoms), bond_set(atoms)) == 1
    distances = atoms.get_all_distances() + 10.0 * np.eye(len(atoms))
    assert distances.min() > 0.9  # no two atoms on top of each other (O-H, the shortest bond, is about 0.97 A)


@pytest.mark.parametrize("name", list(MOLECULES))
def test_charge_and_spin_fit_the_electron_count(name: str) -> None:
    entry = MOLECULES[name]
    numbers = read(entry.path).numbers.tolist()
    n = electrons(numbers, entry.charge)
    assert (n - entry.spin) % 2 == 0 and 0 <= entry.spin <= n
    for level in (EXPENSIVE, "hf-sto3g", "gfn2-xtb"):
        load_fidelity(level, charge=entry.charge, spin=entry.spin).check_structure(numbers)
    with pytest.raises(FidelityError, match="parities"):
        load_fidelity(EXPENSIVE, charge=entry.charge, spin=entry.spin + 1).check_structure(numbers)


def test_the_table_has_the_kinds_the_issue_asks_for() -> None:
    charges = {entry.charge for entry in MOLECULES.values()}
    assert charges - {0}, "a charged species"
    assert any(entry.spin for entry in MOLECULES.values()), "an open-shell species"
    assert any("Cl" in entry.formula for entry in MOLECULES.values()), "a halogen"
    assert len(MOLECULES) >= 6


def _entry(arm: str, seed: int, cold: float, hot: float, **extra: float) -> dict:
    return {"arm": arm, "n": 30, "seed": seed, "labels": 30, "label_cpu_s": 100.0 + seed, **extra,
            "scores": {"g_500K.extxyz": {"mean": cold, "p95": 2 * cold}, "g_900K.extxyz": {"mean": hot, "p95": 2 * hot}}}


def test_table_rows_are_the_entries_mean_and_std_and_name_molecules_not_run(tmp_path: Path) -> None:
    import json

    from lib.molecules_table import molecules_table

    folder = tmp_path / "glycine"
    folder.mkdir()
    sets = {"charge": 0, "spin": 0, "fidelity": "b3lyp-svp", "temperatures": {"campaign": "500 K", "hot": "900 K"},
            "tests": {"campaign": "g_500K.extxyz", "hot": "g_900K.extxyz"},
            "files": {"verdict 500 K": {"frames": 60, "md_cpu_s": 600.0, "label_cpu_s": 1500.0}}}
    (folder / "sets.json").write_text(json.dumps(sets))
    for seed, (cold, hot) in enumerate([(0.020, 0.040), (0.030, 0.050)]):
        (folder / f"loop-N30-seed{seed}.json").write_text(json.dumps(_entry("loop", seed, cold, hot, wall_s=700.0)))
    (folder / "random-N30-seed0.json").write_text(json.dumps(_entry("random", 0, 0.035, 0.060)))
    lines = molecules_table(tmp_path)
    loop = next(line for line in lines if line.startswith("| glycine | loop |"))
    cells = [c.strip() for c in loop.strip("|").split("|")]
    assert cells[2:6] == ["30", "2", "100 ± 1", "700 ± 0"]
    assert cells[6:] == ["25.0 ± 7.1", "50.0 ± 14.1", "45.0 ± 7.1", "90.0 ± 14.1"]
    random = next(line for line in lines if line.startswith("| glycine | random"))
    assert random.endswith("| 1 | 100 | - | 35.0 | 70.0 | 60.0 | 120.0 |")
    assert not any(line.startswith("| glycine | SevenNet-0") for line in lines)  # no zero-shot entry, no row
    assert any(line.startswith("| acetate | not run yet |") for line in lines)
    assert "| glycine | 0 | 0 | b3lyp-svp | verdict 500 K | 60 | 600 | 1500 |" in lines


@pytest.mark.parametrize("name", list(MOLECULES))
def test_a_minimal_campaign_file_validates_to_the_evidence_defaults(name: str, tmp_path: Path, capsys) -> None:
    """Issue 63: structures, charge and spin, two fidelities and a model preset: nothing else."""
    from alloop.cli import main

    entry = MOLECULES[name]
    campaign = tmp_path / "minimal.yaml"
    campaign.write_text(f"system: {{structures: {entry.path}, charge: {entry.charge}, spin: {entry.spin}}}\n"
                        f"fidelities: {{cheap: gfn2-xtb, expensive: {EXPENSIVE}}}\nmodel: {{preset: sevennet-0}}\n")
    assert main(["validate", str(campaign)]) == 0
    out = capsys.readouterr().out
    assert f"charge {entry.charge}, spin (2S) {entry.spin}" in out
    assert "Delta on a gfn2-xtb baseline" in out  # every element of the six is in GFN2-xTB
    assert "bootstrap  32 frames of gfn2-xtb MD" in out
    assert "by the model's predicted force error" in out
    assert "evaluation 30 frames to make" in out  # the automatic test set, on by default
    assert out.rstrip().endswith("ok: the campaign is valid")
