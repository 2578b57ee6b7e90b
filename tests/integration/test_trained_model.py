"""Models out of a real campaign: alloop.calculator drives NVE MD; export --model round trips; versions; errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import units
from ase.build import molecule
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet

import alloop
from alloop.campaign.loop.runner import start_campaign
from alloop.cli import main
from alloop.config import load_campaign
from alloop.potentials.calculator import PotentialCalculator
from alloop.potentials.checkpoint import model_from_bytes
from alloop.store import CampaignStore, store_path
from harness.campaigns import write_tiny

#: the tiny campaign with enough training for a bound water molecule (its default 4 epochs leave the pair model flat)
TRAINING = ["training.max_epochs=60", "training.patience_epochs=60"]
DRIFT_BOUND_EV = 1e-3


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trained")
    cfg = load_campaign(write_tiny(folder, cycles=1), TRAINING)
    assert start_campaign(cfg, folder / "run", progress=False, echo=lambda s: None) == "1 cycles done"
    return folder / "run"


@pytest.fixture(scope="module")
def checkpoints(run_dir):
    with CampaignStore.open(store_path(run_dir)) as store:
        entries = store.checkpoints()
        hashes = {info["name"]: h for h, info in store.fidelities().items()}
        return {int(e["version"]): (e["role"], store.checkpoint(int(e["version"]))[0]) for e in entries}, hashes


def _nve(calc, steps: int = 800, timestep_fs: float = 0.25) -> tuple[np.ndarray, np.ndarray, float]:
    """Total and potential energy along a VelocityVerlet run of water at 300 K, and the widest atom pair seen (A).

    0.25 fs: Verlet's own energy fluctuation grows as (omega dt)^2; at 0.5 fs it reached 1.5 meV for a stiffer
    trained O-H bond, at the bound, while forces that are not -dE/dx drift by far more whatever the step.
    """
    atoms = molecule("H2O")
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    Stationary(atoms)
    ZeroRotation(atoms)
    total, potential, widest = [], [], [0.0]

    def observe() -> None:
        total.append(atoms.get_total_energy())
        potential.append(atoms.get_potential_energy())
        widest[0] = max(widest[0], float(atoms.get_all_distances().max()))

    dyn = VelocityVerlet(atoms, timestep=timestep_fs * units.fs)
    dyn.attach(observe, interval=1)
    dyn.run(steps)
    return np.asarray(total), np.asarray(potential), widest[0]


class _InconsistentForces(PotentialCalculator):
    """Forces 10 % larger than -dE/dx: the pair a broken model or a wrong unit would give."""

    def calculate(self, *args, **kwargs) -> None:
        super().calculate(*args, **kwargs)
        if "forces" in self.results:
            self.results["forces"] = 1.1 * self.results["forces"]


def test_calculator_drives_nve_md_with_bounded_energy_drift(run_dir, checkpoints):
    calc = alloop.calculator(run_dir)
    models = [v for v, (role, _) in checkpoints[0].items() if role == "model"]
    info = calc.model_info
    assert (info["version"], info["role"], info["cycle"]) == (max(models), "model", 0)
    assert info["fidelity"] == {"name": "hf-631g", "hash": checkpoints[1]["hf-631g"], "role": "expensive"}
    total, potential, widest = _nve(calc)
    assert len(total) == 801 and np.all(np.isfinite(total))
    # the run exercises the model: every pair stays within its cutoff, and kinetic and potential energy
    # exchange far more than the drift bound
    assert widest < calc.model.cutoff, f"the molecule came apart ({widest:.2f} A): the drift bound would test nothing"
    assert np.ptp(potential) > 20 * DRIFT_BOUND_EV
    assert np.abs(total - total[0]).max() < DRIFT_BOUND_EV
    broken = _nve(_InconsistentForces(calc.model))[0]
    assert np.abs(broken - broken[0]).max() > 3 * DRIFT_BOUND_EV  # the bound catches forces != -dE/dx


def test_energies_are_at_the_requested_fidelity(run_dir, tmp_path, capsys):
    import ase.io

    frames, calcs = {}, {}
    for fidelity in ("expensive", "cheap"):
        path = tmp_path / f"{fidelity}.extxyz"
        assert main(["export", str(run_dir), "--fidelity", fidelity, "-o", str(path)]) == 0
        frames[fidelity] = ase.io.read(path, ":")
        calcs[fidelity] = alloop.calculator(run_dir, fidelity=fidelity)

    def mae(calc, labelled) -> float:
        return float(np.mean([abs(a.get_potential_energy() - calc.get_potential_energy(a.copy())) for a in labelled]))

    # HF/6-31G and HF/STO-3G water differ by ~30 eV: each calculator sits near its own fidelity's labels
    assert mae(calcs["expensive"], frames["expensive"]) < 0.5
    assert mae(calcs["expensive"], frames["cheap"]) > 10.0
    assert mae(calcs["cheap"], frames["cheap"]) < 0.1 * mae(calcs["expensive"], frames["cheap"])
    f_exp, f_cheap = (calcs[k].get_forces(molecule("H2O")) for k in ("expensive", "cheap"))
    np.testing.assert_array_equal(f_exp, f_cheap)


def test_exported_checkpoint_matches_the_store_model(run_dir, tmp_path, checkpoints, capsys):
    out = tmp_path / "model.safetensors"
    assert main(["export", str(run_dir), "--model", "-o", str(out)]) == 0
    assert "at fidelity hf-631g" in capsys.readouterr().err
    frames = [molecule("H2O")]
    frames.append(frames[0].copy())
    frames[1].rattle(0.05, seed=1)
    for atoms in frames:
        a, b = atoms.copy(), atoms.copy()
        a.calc, b.calc = alloop.calculator(run_dir), alloop.calculator(out)
        assert a.get_potential_energy() == b.get_potential_energy()
        np.testing.assert_array_equal(a.get_forces(), b.get_forces())
    meta = model_from_bytes(out.read_bytes())[1]
    origin = meta["exported_from"]
    version = max(v for v, (role, _) in checkpoints[0].items() if role == "model")
    assert origin["run_dir"] == str(run_dir.resolve())
    assert (origin["version"], origin["cycle"], origin["role"]) == (version, 0, "model")
    assert meta["fidelity"] == checkpoints[1]["hf-631g"] and meta["fidelity_name"] == "hf-631g"
    # alloop evaluate gives the same numbers for the run directory and the exported file
    labels = tmp_path / "labels.extxyz"
    assert main(["export", str(run_dir), "--fidelity", "expensive", "-o", str(labels)]) == 0
    results = []
    for source in (run_dir, out):
        capsys.readouterr()
        assert main(["evaluate", str(source), str(labels), "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    for key in ("energy_mae_eV", "force_mae_eV_per_A", "force_rmse_eV_per_A"):
        assert results[0][key] == results[1][key]
    assert results[0]["fidelity"] == results[1]["fidelity"] == "hf-631g" and results[1]["note"] is None


def test_version_picks_that_checkpoint(run_dir, tmp_path, checkpoints, capsys):
    roles = {role for role, _ in checkpoints[0].values()}
    assert roles == {"theta0", "stage2", "model"}
    for version, (role, blob) in checkpoints[0].items():
        out = tmp_path / f"v{version}.safetensors"
        assert main(["export", str(run_dir), "--model", "--version", str(version), "-o", str(out)]) == 0
        err = capsys.readouterr().err
        assert f"v{version} (role {role}" in err
        exported, meta = model_from_bytes(out.read_bytes())
        stored = model_from_bytes(blob)[0]
        assert meta["exported_from"]["version"] == version and meta["role"] == role
        for name, tensor in stored.state_dict().items():
            if name != "atomic_energies":
                assert np.array_equal(tensor.numpy(), exported.state_dict()[name].numpy()), name
        calc = alloop.calculator(run_dir, version=version, fidelity=None)
        assert calc.model_info["role"] == role and calc.model_info["version"] == version
        if role == "stage2":  # trained on cheap labels; it keeps them, and says so
            assert "no expensive-fidelity references" in err and meta["fidelity_name"] == "hf-sto3g"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "{run}", "--model", "--version", "99", "-o", "{tmp}/x"], "no model version 99 in"),
        (["export", "{run}", "--model", "--fidelity", "cheap", "-o", "{tmp}/x"], "--model and --fidelity are excl"),
        (["export", "{run}", "-o", "{tmp}/x"], "say what to export"),
        (["export", "{run}", "--fidelity", "cheap", "--version", "1", "-o", "{tmp}/x"], "--version applies to --model"),
        (["export", "{run}", "--model", "--format", "onnx", "-o", "{tmp}/x"], "unknown model format 'onnx'"),
        (["export", "{run}", "--model", "--all-status", "-o", "{tmp}/x"], "--all-status applies to labels"),
        (["export", "{tmp}/nowhere", "--model", "-o", "{tmp}/x"], "no such checkpoint or run directory"),
        (["evaluate", "{tmp}/junk.safetensors", "{tmp}/labels.extxyz"], "junk.safetensors: not an alloop checkpoint"),
        (["evaluate", "{run}", "{tmp}/labels.extxyz", "--version", "99"], "no model version 99"),
    ],
)
def test_cli_errors_are_one_line(run_dir, tmp_path, capsys, argv, message):
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint at all")
    assert main(["export", str(run_dir), "--fidelity", "expensive", "-o", str(tmp_path / "labels.extxyz")]) == 0
    capsys.readouterr()
    assert main([a.format(run=run_dir, tmp=tmp_path) for a in argv]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()


#: one xdist worker runs this module (its module-scoped fixture is built once)
pytestmark = pytest.mark.xdist_group("test_trained_model")
