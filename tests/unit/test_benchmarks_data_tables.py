"""The docs' tables made from committed data rather than result files (``benchmarks/lib``): the label cost of labelled
sets and of single labelled frames, an equilibrium summary's per-run populations, and the reweighted reference
ensembles, each on a tiny synthetic input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def lib(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import lib.label_tables
    import lib.population_tables
    import lib.populations

    return lib


def _labelled(atoms: Atoms, energy: float, **info) -> Atoms:
    out = atoms.copy()
    out.info.update(info)
    out.calc = SinglePointCalculator(out, energy=energy, forces=np.zeros((len(out), 3)))
    return out


def test_a_set_row_is_the_mean_range_and_sum_of_its_frames_cpu_seconds(lib, tmp_path):
    h2 = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    a, b = tmp_path / "a_ccsdt.extxyz", tmp_path / "b_ccsdt.extxyz"
    write(a, [_labelled(h2, -1.0, fidelity="ccsdt-dz", cpu_seconds=400.0)])
    write(b, [_labelled(h2, -1.0, fidelity="ccsdt-dz", cpu_seconds=s) for s in (500.0, 600.0)])
    lines = lib.label_tables.label_sets_table([{"name": "pair", "files": [a, b], "labelled": "today"},
                                               {"name": "one", "files": [a], "labelled": "then"}])
    assert lines[2] == "| ccsdt-dz | 500 | 400-600 | 3 | 1500 | `pair`, today |"
    assert lines[3] == "| ccsdt-dz | 400 | 400-400 | 1 | 400 | `one`, then |"
    write(tmp_path / "cheap.extxyz", [_labelled(h2, -1.0, fidelity="gfn2-xtb", cpu_seconds=0.00264)])
    assert lib.label_tables.label_sets_table([{"name": "x", "files": [tmp_path / "cheap.extxyz"], "labelled": "-"}])[2] \
        .startswith("| gfn2-xtb | 0.00264 | 0.00264-0.00264 | 1 | 0.00264 |")


def test_a_set_of_two_levels_or_without_costs_is_refused(lib, tmp_path):
    h2 = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    write(tmp_path / "mixed.extxyz", [_labelled(h2, -1.0, fidelity=f, cpu_seconds=1.0) for f in ("hf-sto3g", "b3lyp-svp")])
    with pytest.raises(ValueError, match="one fidelity"):
        lib.label_tables.set_label_cost([tmp_path / "mixed.extxyz"])
    write(tmp_path / "free.extxyz", [_labelled(h2, -1.0, fidelity="hf-sto3g")])
    with pytest.raises(ValueError, match="no cpu_seconds"):
        lib.label_tables.set_label_cost([tmp_path / "free.extxyz"])


def test_each_labelled_frame_is_a_row_with_its_cost_and_scf_cycles(lib, tmp_path):
    h2 = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], cell=[3, 3, 3], pbc=True)
    path = tmp_path / "box.extxyz"
    write(path, [_labelled(h2, -1.0, fidelity="pbe-gth-szv", cpu_seconds=88.3, scf_cycles=11),
                 _labelled(h2, -1.1, fidelity="pbe-gth-dzvp", cpu_seconds=201.8, scf_cycles=12)])
    assert lib.label_tables.frame_labels_table({path: "1 f.u."}, "box")[2:] == [
        "| 1 f.u. | pbe-gth-szv | 88 | 11 |", "| 1 f.u. | pbe-gth-dzvp | 202 | 12 |"]


def _pops(trans: float, plus: float) -> dict[str, dict[str, float]]:
    return {"0-1-2-3": {"trans": trans, "gauche+": plus, "gauche-": round(1.0 - trans - plus, 6)}}


def test_equilibrium_populations_have_a_column_per_run_and_leave_a_missing_run_empty(lib):
    summary = {"sets": {
        "test": {"populations": {"test run 0 (start 0, 501 K)": _pops(0.05, 0.51), "test run 1 (start 1, 494 K)":
                                 _pops(0.2, 0.4), "test: all runs (10 fs trace)": _pops(0.125, 0.455),
                                 "test: its 4 frames": _pops(0.25, 0.5)}},
        "fresh": {"populations": {"fresh run 0 (start 0, 480 K)": _pops(0.1, 0.3),
                                  "fresh: all runs (10 fs trace)": _pops(0.1, 0.3), "fresh: its 4 frames": _pops(0.0, 0.5)}},
    }}
    lines = lib.population_tables.equilibrium_populations_table(summary, {"test": "test", "fresh": "fresh"})
    assert lines[0] == "| set | run 0 | run 1 | all runs | its 4 frames |"
    assert lines[2] == "| test | 5 / 51 / 44 | 20 / 40 / 40 | 12.5 / 45.5 / 42.0 | 25.0 / 50.0 / 25.0 |"
    assert lines[3] == "| fresh | 10 / 30 / 60 |  | 10.0 / 30.0 / 60.0 | 0.0 / 50.0 / 50.0 |"


def _ethanol_pair(tmp_path: Path, name: str, phis: list[float], shifts: list[float]) -> tuple[Path, Path]:
    """A target file and its sampler twin: ethanol with the C-C-O-H dihedral at each of ``phis``, one run per frame
    (info ``trajectory``), the target's energy the sampler's plus each of ``shifts``."""
    from alloop.system.conformers import dihedrals, find_rotors, rotate

    base = molecule("CH3CH2OH")
    rotor = [r for r in find_rotors(base) if not r.symmetric][0]
    frames = [rotate(base, rotor, phi - dihedrals(base.positions, [rotor])[0]) for phi in phis]
    target, sampler = tmp_path / f"{name}_b3lyp-svp.extxyz", tmp_path / f"{name}_gfn2-xtb.extxyz"
    pairs = enumerate(zip(frames, shifts, strict=True))
    write(target, [_labelled(a, -10.0 + s, trajectory=f"run{i}") for i, (a, s) in pairs])
    write(sampler, [_labelled(a, -10.0, trajectory=f"run{i}") for i, a in enumerate(frames)])
    return target, sampler


def test_reweighting_with_equal_energies_is_the_sampler_and_a_lower_trans_energy_raises_trans(lib, tmp_path):
    phis = [180.0, 60.0, -60.0, 70.0]
    even = lib.populations.reweighted_populations([_ethanol_pair(tmp_path, "even", phis, [0.0] * 4)], 500.0, n_boot=50)
    assert np.allclose(even["sampler_shares"], [0.25, 0.5, 0.25])
    assert np.allclose(even["shares"], even["sampler_shares"])
    assert even["ess"] == pytest.approx(4.0) and (even["frames"], even["runs"]) == (4, 4)
    tilted = lib.populations.reweighted_populations([_ethanol_pair(tmp_path, "tilted", phis, [-0.05, 0, 0, 0])], 500.0,
                                                    n_boot=50)
    from alloop.units import KB_EV_PER_K

    w = np.exp(0.05 / (KB_EV_PER_K * 500.0))  # the trans frame's weight against the others' 1
    assert tilted["shares"] == pytest.approx([w / (w + 3), 2 / (w + 3), 1 / (w + 3)], rel=1e-4)
    assert tilted["ess"] == pytest.approx((w + 3) ** 2 / (w ** 2 + 3), rel=1e-4)
    assert tilted["low"][0] <= tilted["shares"][0] <= tilted["high"][0]


def test_the_reference_table_names_runs_frames_and_effective_size(lib):
    rew = {"shares": np.array([0.335, 0.318, 0.347]), "low": np.array([0.19, 0.22, 0.28]),
           "high": np.array([0.47, 0.44, 0.42]), "ess": 56.2, "frames": 300, "runs": 12,
           "sampler_shares": np.array([0.13, 0.4133, 0.4567])}
    lines = lib.population_tables.conformer_references_table(
        [{"temperature": 500.0, "sampler_md": {"trans": 0.125, "gauche+": 0.468, "gauche-": 0.407}, "runs": 6,
          "ps": 20.0, "reweighted": rew}], "B3LYP", "xTB")
    assert lines[2] == "| 500 K: (1) xTB MD, 6 x 20 ps every 10 fs (the sampler; the test set's runs) | 12.5 / 46.8 / 40.7 |"
    assert lines[3] == "| 500 K: the 300 labelled frames of 12 runs (test and pool sets), unweighted | 13.0 / 41.3 / 45.7 |"
    assert lines[4] == ("| 500 K: (2) B3LYP: those frames reweighted (effective sample size 56 of 300) | "
                        "33.5 [19-47] / 31.8 [22-44] / 34.7 [28-42] |")
