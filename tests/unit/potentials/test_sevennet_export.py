"""SevenNet models exported in sevenn's own format: sevenn's ASE calculator and its LAMMPS deployment reproduce alloop.

sevenn runs in float32. With per-element references of a few eV the energies
agree to 1e-4 eV; with ab initio references (thousands of eV per molecule) an
energy is only defined to float32 rounding (0.25 meV per atom at 2000 eV), on
either side, so there the bound is that rounding of sevenn's sum (see
``_energy_tol``) against alloop's float64 energy. Forces agree to 1e-5 eV/A.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

import alloop
from alloop.cli import main
from alloop.errors import AlloopError
from alloop.potentials.base import AtomsBatch
from alloop.potentials.checkpoint import save_checkpoint
from alloop.potentials.registry import build_model, model_preset
from alloop.potentials.sevennet import SevenNet
from alloop.potentials.sevennet_export import sevenn_checkpoint, write_sevenn_checkpoint

#: per-element references of ab initio magnitude (eV), as alloop's trainer fits them on B3LYP labels
AB_INITIO = {1: -13.61, 6: -1029.87, 8: -2041.33}
#: references of a few eV, as for labels near SevenNet-0's own PBE scale
SMALL = {1: -1.37, 6: 3.81, 8: -2.53}
FORCE_TOL = 1e-5


def _sevenn_calculator(path):
    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no tensor product accelerator"
        return SevenNetCalculator(model=str(path), device="cpu")


def _energy_tol(results: dict) -> float:
    """1e-4 eV, or float32 rounding of sevenn's energy if larger: one spacing per atomic energy, half a
    spacing of the total per partial sum."""
    per_atom = sum(float(np.spacing(np.float32(abs(e)))) for e in results["energies"])
    total = (len(results["energies"]) - 1) * float(np.spacing(np.float32(abs(results["energy"])))) / 2
    return max(1e-4, per_atom + total)


def _rattled(name: str, seed: int) -> Atoms:
    atoms = molecule(name)
    atoms.positions += np.random.default_rng(seed).normal(scale=0.05, size=atoms.positions.shape)
    return atoms


def _set_references(model: SevenNet, references: dict[int, float]) -> None:
    for z, e in references.items():
        model.atomic_energies[z] = e


def _assert_same(model: SevenNet, calc, structures) -> None:
    """sevenn's calculator gives alloop's forces and energies (exact: a float64 copy; and the float32 model)."""
    exact = copy.deepcopy(model).double()
    for atoms in structures:
        out = model(AtomsBatch.from_atoms([atoms]))
        energy = float(exact(AtomsBatch.from_atoms([atoms], dtype=torch.float64)).energy.detach()[0])
        theirs = atoms.copy()
        theirs.calc = calc
        d_force = float(np.abs(out.forces.detach().numpy() - theirs.get_forces()).max())
        d_energy = abs(energy - theirs.get_potential_energy())
        assert d_force < FORCE_TOL, (atoms.get_chemical_formula(), d_force)
        assert d_energy <= _energy_tol(calc.results), (atoms.get_chemical_formula(), d_energy)
        d_float32 = abs(float(out.energy.detach()[0]) - theirs.get_potential_energy())  # both sides rounded
        assert d_float32 <= 2 * _energy_tol(calc.results), (atoms.get_chemical_formula(), d_float32)


@pytest.fixture(scope="module")
def finetuned0() -> SevenNet:
    """SevenNet-0 as after fine-tuning: every weight moved, references at the campaign's fidelity."""
    model = SevenNet([1, 6, 8], base="7net-0")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.net.parameters():
            param.add_(0.02 * param.abs().mean() * torch.randn(param.shape, generator=generator))
    _set_references(model, SMALL)
    return model


def test_finetuned_sevennet0_through_sevenns_calculator(finetuned0, tmp_path):
    path = write_sevenn_checkpoint(finetuned0, tmp_path / "finetuned.pth", {"note": "test"})
    raw = torch.load(path, weights_only=False, map_location="cpu")
    import sevenn

    assert raw["config"]["version"] == sevenn.__version__ and raw["alloop"] == {"note": "test"}
    assert raw["config"]["_type_map"] == {6: 0, 1: 1, 8: 2}  # 89 species cut down to the campaign's
    assert raw["model_state_dict"]["onehot_to_feature_x.linear.weight"].numel() == 3 * 128
    calc = _sevenn_calculator(path)
    structures = [_rattled("H2O", 1), _rattled("CH3CH2OH", 2)]
    _assert_same(finetuned0, calc, structures)
    # the comparison is with the fine-tuned weights, not the packaged SevenNet-0
    pretrained = SevenNet([1, 6, 8], base="7net-0")
    moved = (pretrained(AtomsBatch.from_atoms(structures[1:])).forces
             - finetuned0(AtomsBatch.from_atoms(structures[1:])).forces)
    assert moved.abs().max() > 1e-2
    with pytest.raises(ValueError, match="not.*know"):  # the other 86 elements are gone
        Atoms("N2", positions=[[0, 0, 0], [0, 0, 1.1]], calculator=calc).get_forces()


def _small(references: dict[int, float]) -> SevenNet:
    model = build_model(elements=[1, 6, 8], **model_preset("sevennet-small"), seed=3)
    assert isinstance(model, SevenNet) and model.learns_output_scale
    model.output_scale.fill_(0.4137)  # the trainer sets it to the training force RMS
    _set_references(model, references)
    return model


def test_sevennet_small_with_output_scale_through_sevenn_and_its_lammps_deployment(tmp_path):
    from sevenn.scripts.deploy import deploy

    model = _small(SMALL)
    path = write_sevenn_checkpoint(model, tmp_path / "small.pth")
    raw = torch.load(path, weights_only=False, map_location="cpu")
    assert raw["model_state_dict"]["rescale_atomic_energy.scale"].tolist() == pytest.approx([0.4137] * 3)
    structures = [_rattled("H2O", 3), _rattled("CH3CH2OH", 4), _rattled("CH4", 5)]
    _assert_same(model, _sevenn_calculator(path), structures)

    # LAMMPS: sevenn's serial deployment, called the way pair_e3gnn calls it (type indices, edges i -> j,
    # edge_vec = r_j - r_i, forces from dE/d edge_vec), gives the same numbers
    deployed = tmp_path / "deployed_serial.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deploy(str(path), str(deployed))
    extra = {"chemical_symbols_to_index": "", "cutoff": ""}
    script = torch.jit.load(str(deployed), _extra_files=extra)
    symbols, cutoff = extra["chemical_symbols_to_index"].decode().split(), float(extra["cutoff"])
    assert symbols == ["C", "H", "O"] and cutoff == model.cutoff
    for atoms in structures:
        delta = atoms.positions[None, :, :] - atoms.positions[:, None, :]
        dist = np.linalg.norm(delta, axis=-1)
        i, j = np.nonzero((dist < cutoff) & (dist > 0))
        vec = torch.tensor(delta[i, j], dtype=torch.float32, requires_grad=True)
        n_atoms = torch.tensor([len(atoms)])
        inputs = {"x": torch.tensor([symbols.index(s) for s in atoms.get_chemical_symbols()]),
                  "edge_index": torch.tensor(np.stack([i, j])), "edge_vec": vec, "num_atoms": n_atoms,
                  "nlocal": n_atoms}
        energy = script(inputs)["inferred_total_energy"].squeeze()
        (grad,) = torch.autograd.grad(energy, vec)
        forces = torch.zeros(len(atoms), 3).index_add_(0, torch.tensor(i), grad).index_add_(0, torch.tensor(j), -grad)
        out = model(AtomsBatch.from_atoms([atoms]))
        assert float((out.forces - forces).abs().max()) < FORCE_TOL
        assert abs(float(out.energy.detach()[0]) - float(energy.detach())) < 1e-4


def test_cli_exports_a_sevennet_checkpoint_and_refuses_other_models(tmp_path, capsys):
    model = _small(SMALL)
    references = {z: e + 1.0 for z, e in AB_INITIO.items()}  # the file's "expensive" references replace the active ones
    source = save_checkpoint(model, tmp_path / "model.safetensors", {"energy_references": {"expensive": references}})
    out = tmp_path / "model.pth"
    assert main(["export", str(source), "--model", "--format", "sevenn", "-o", str(out)]) == 0
    assert "(format sevenn," in capsys.readouterr().err
    raw = torch.load(out, weights_only=False, map_location="cpu")
    assert raw["alloop"]["exported_from"]["source"] == str(source.resolve())
    assert raw["alloop"]["exported_from"]["architecture"] == "sevennet"
    ours = alloop.calculator(source)  # at the "expensive" references, as exported
    theirs = _sevenn_calculator(out)
    atoms = _rattled("CH3CH2OH", 6)
    a, b = atoms.copy(), atoms.copy()
    a.calc, b.calc = ours, theirs
    np.testing.assert_allclose(a.get_forces(), b.get_forces(), rtol=0, atol=FORCE_TOL)
    _assert_same(ours.model, theirs, [atoms, _rattled("H2O", 7)])
    assert np.allclose(ours.model.atomic_energies[[1, 6, 8]].numpy(), [references[z] for z in (1, 6, 8)])

    egnn = build_model(elements=[1, 6, 8], **model_preset("small"))
    save_checkpoint(egnn, tmp_path / "egnn.safetensors", {"energy_references": {"expensive": references}})
    assert main(["export", str(tmp_path / "egnn.safetensors"), "--model", "--format", "sevenn",
                 "-o", str(tmp_path / "egnn.pth")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "format 'sevenn' exports sevennet models" in err and "'egnn' model" in err
    assert not (tmp_path / "egnn.pth").exists()
    with pytest.raises(AlloopError, match="holds a SevenNet model, got EGNN"):
        sevenn_checkpoint(egnn)  # type: ignore[arg-type]
