"""The MACE adapter on tiny random MACE networks (mace.modules constructors, saved with torch.save as mace does).

Foundation weights (MACE-OFF, MACE-MP) cannot be downloaded here: these networks are of the same class
(``ScaleShiftMACE``) with a few channels. Marked ``mace``: skipped where mace-torch is not installed.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from ase.build import molecule

from alloop.errors import AlloopError, ConfigError
from alloop.potentials.base import AtomsBatch
from alloop.potentials.checkpoint import checkpoint_to_bytes, load_checkpoint, model_from_bytes
from alloop.testing.cells import water_box
from alloop.testing.potentials import check_finite_difference_forces, check_potential

pytestmark = pytest.mark.mace


@pytest.fixture(scope="module")
def mace_file(tmp_path_factory):
    from harness.mace_models import write_mace_file

    return write_mace_file(tmp_path_factory.mktemp("mace") / "tiny.model", elements=[1, 6, 8], seed=3)


@pytest.fixture(scope="module")
def model(mace_file):
    return load_checkpoint(mace_file)[0]


@pytest.fixture
def molecules():
    ethanol = molecule("CH3CH2OH")
    ethanol.rattle(0.05, seed=1)
    return [molecule("H2O"), ethanol, molecule("CH4")]


def _mace_calculator(path, dtype="float64"):
    from mace.calculators import MACECalculator

    return MACECalculator(model_paths=str(path), device="cpu", default_dtype=dtype)


def test_a_mace_file_passes_the_conformance_kit_with_molecules_and_a_periodic_cell(model, molecules):
    assert type(model).__name__ == "MACEPotential" and model.elements == (1, 6, 8) and model.cutoff == 4.0
    assert next(model.parameters()).dtype == torch.float64  # the file's dtype
    box = water_box(4, seed=2)  # 12 atoms in a 4.9 A cube: a 4 A cutoff reaches the images
    report = check_potential(model, molecules, seed=1, periodic=[box])
    assert "periodic cells" in report.checks and report.max_fd_force_error < 1e-6


def test_a_float32_file_stays_float32_and_its_float64_copy_is_exactly_equivariant(tmp_path, molecules):
    from harness.mace_models import write_mace_file

    path = write_mace_file(tmp_path / "f32.model", dtype=torch.float32, seed=4)
    model = load_checkpoint(path)[0]
    assert next(model.parameters()).dtype == torch.float32
    out = model(AtomsBatch.from_atoms(molecules, dtype=torch.float32))
    assert out.energy.dtype == torch.float32
    # the Clebsch-Gordan constants come back exact in float64 (not rounded from the file's float32)
    check_potential(model, molecules, seed=2)


def test_energies_forces_and_periodic_cells_equal_maces_own_calculator(model, mace_file, molecules):
    box = water_box(4, seed=5)
    for atoms in [*molecules, box]:
        out = model(AtomsBatch.from_atoms([atoms], dtype=torch.float64))
        atoms = atoms.copy()
        atoms.calc = _mace_calculator(mace_file)
        assert abs(out.energy.item() - atoms.get_potential_energy()) < 1e-8
        assert np.abs(out.forces.numpy() - atoms.get_forces()).max() < 1e-10


def test_forces_are_minus_the_energy_gradient_across_cell_faces(model):
    box = water_box(3, seed=7)
    box.positions[0] = box.cell[0] * 0.999  # an atom at a face: its neighbours are images
    worst = check_finite_difference_forces(copy.deepcopy(model), [box], np.random.default_rng(0), atol=1e-7)
    assert worst < 1e-7


def test_features_are_the_last_readouts_input_and_all_layers_scalars(mace_file, molecules):
    from alloop.potentials.mace import MACEPotential

    last = MACEPotential(model_file=str(mace_file))
    every = MACEPotential(model_file=str(mace_file), features="all")
    assert last.feature_dim == 8 and every.feature_dim == 16  # 8 channels; layer 1 also has 8x1o (not taken)
    batch = AtomsBatch.from_atoms(molecules, dtype=torch.float64)
    f_last, f_all = last(batch).features, every(batch).features
    assert torch.equal(f_all[:, 8:], f_last)
    # the last readout (mace's non-linear MLP) on these features gives mace's per-atom interaction energies
    readout = last.net.readouts[-1]
    node_heads = torch.zeros(f_last.shape[0], dtype=torch.int64)
    assert torch.isfinite(readout(f_last, node_heads)).all()


def test_checkpoint_rebuilds_from_maces_config_without_the_file(tmp_path, molecules):
    from harness.mace_models import write_mace_file

    path = write_mace_file(tmp_path / "gone.model", seed=8)
    model = load_checkpoint(path)[0]
    model.atomic_energies[6] = -3.5  # as a reference refit does
    blob = checkpoint_to_bytes(model)
    path.unlink()  # the alloop checkpoint needs nothing of the file
    again, _ = model_from_bytes(blob)
    hp = again.hyperparameters()
    assert hp["mace_config"]["interaction_cls"] == "RealAgnosticResidualInteractionBlock" and "model_file" not in hp
    batch = AtomsBatch.from_atoms(molecules, dtype=torch.float64)
    a, b = model(batch), again(batch)
    assert torch.equal(a.energy, b.energy) and torch.equal(a.forces, b.forces) and torch.equal(a.features, b.features)


def test_registry_keeps_the_files_dtype_and_checks_elements(mace_file):
    from alloop.potentials.registry import build_model

    model = build_model("mace", [1, 8], model_file=str(mace_file))
    assert next(model.parameters()).dtype == torch.float64 and not model.learns_output_scale
    assert next(build_model("mace", [1, 8], model_file=str(mace_file), dtype="float32").parameters()).dtype == torch.float32
    with pytest.raises(ConfigError, match=r"elements \[7\] are not among"):
        build_model("mace", [1, 7], model_file=str(mace_file))
    with pytest.raises(ConfigError, match="either model_file"):
        build_model("mace", [1, 8])


def test_a_file_that_is_not_a_mace_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"a": torch.zeros(2)}, path)
    with pytest.raises(AlloopError, match="not a MACE model file alloop can read"):
        load_checkpoint(path)


def test_campaign_config_takes_a_mace_file_and_needs_one(mace_file):
    from alloop.config.system import ModelConfig

    cfg = ModelConfig.model_validate({"preset": "mace", "checkpoint": str(mace_file)})
    assert cfg.architecture == "mace" and cfg.pretrained
    assert cfg.hyperparameters() == {"model_file": str(mace_file)}
    with pytest.raises(ValueError, match="needs a model file you bring"):
        ModelConfig.model_validate({"preset": "mace"})
    with pytest.raises(ValueError, match="not used by architecture 'mace'"):
        ModelConfig.model_validate({"preset": "mace", "checkpoint": str(mace_file), "lmax": 2})


def test_a_delta_mace_adds_the_baseline_and_round_trips(model, molecules):
    from alloop.potentials.baseline import DeltaPotential

    delta = DeltaPotential.wrap(model, "gfn2-xtb")
    batch = AtomsBatch.from_atoms(molecules[:2], dtype=torch.float64)
    inner, whole = model(batch), delta(batch)
    xtb_energy, xtb_forces = delta.baseline.on_batch(batch)
    assert torch.allclose(whole.energy, inner.energy + xtb_energy, rtol=0, atol=1e-9)
    assert torch.allclose(whole.forces, inner.forces + xtb_forces, rtol=0, atol=1e-12)
    again, _ = model_from_bytes(checkpoint_to_bytes(delta))
    assert isinstance(again, DeltaPotential) and type(again.inner).__name__ == "MACEPotential"
    assert torch.equal(again(batch).forces, whole.forces)
