"""Delta models: the baseline is GFN-xTB as tblite computes it, the Delta model is the learned part plus it,
checkpoints keep the baseline, datasets shift, the uncertainty-driven MD bias forces stay right."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule

from alloop.errors import AlloopError
from alloop.evaluation.metrics import evaluate_model
from alloop.potentials.base import AtomsBatch
from alloop.potentials.baseline import Baseline, DeltaPotential, learned_part
from alloop.potentials.checkpoint import checkpoint_to_bytes, model_from_bytes
from alloop.potentials.inference import predict
from alloop.potentials.registry import build_model, model_preset
from alloop.testing.potentials import check_potential
from alloop.training.data import FrameDataset


@pytest.fixture
def molecules(water, ethanol):
    return [water, ethanol, molecule("CH4")]


def _delta(preset: str = "small", baseline: str = "gfn2-xtb") -> DeltaPotential:
    torch.manual_seed(0)
    inner = build_model(elements=[1, 6, 8], **model_preset(preset))
    inner.atomic_energies[[1, 6, 8]] = torch.tensor([-1.5, -20.0, -30.0], dtype=torch.float64)
    inner.output_scale.fill_(0.7)
    return DeltaPotential.wrap(inner, baseline)


def _tblite(atoms, method: str) -> tuple[float, np.ndarray]:
    from tblite.ase import TBLite

    a = atoms.copy()
    a.calc = TBLite(method=method, verbosity=0)
    return a.get_potential_energy(), a.get_forces()


@pytest.mark.parametrize("fidelity,method", [("gfn2-xtb", "GFN2-xTB"), ("gfn1-xtb", "GFN1-xTB")])
def test_baseline_is_tblite(molecules, fidelity, method):
    energies, forces, reasons = Baseline(fidelity).compute(molecules)
    assert reasons == ["", "", ""]
    for atoms, e, f in zip(molecules, energies, forces, strict=True):
        want_e, want_f = _tblite(atoms, method)
        assert e == pytest.approx(want_e, abs=1e-6)
        np.testing.assert_allclose(f, want_f, atol=1e-5)


@pytest.mark.parametrize("preset", ["small", "sevennet-small"])
def test_delta_model_is_the_learned_part_plus_the_baseline(molecules, preset):
    delta = _delta(preset)
    batch = AtomsBatch.from_atoms(molecules)
    inner = delta.inner(batch)
    out = delta(batch)
    energies, forces, _ = Baseline("gfn2-xtb").compute(molecules)
    np.testing.assert_allclose(out.energy.detach().double().numpy(), inner.energy.detach().double().numpy() + energies,
                               atol=1e-3)  # float32 model: ~1e-4 eV of rounding on thousands of eV
    np.testing.assert_allclose(out.forces.double().numpy(), inner.forces.double().numpy() + np.concatenate(forces),
                               atol=1e-5)
    assert torch.equal(out.features, inner.features)
    assert delta.feature_dim == delta.inner.feature_dim and delta.cutoff == delta.inner.cutoff


def test_delta_model_passes_the_conformance_kit(molecules):
    # forces = -dE/dx holds to the SCC convergence of tblite's default accuracy (~2e-5 eV/A), not to rounding
    report = check_potential(_delta(), molecules, fd_atol=1e-4, symmetry_atol=1e-7)
    assert report.max_fd_force_error < 1e-4
    assert "Hessian symmetry" in report.checks


def test_delta_checkpoint_round_trips_with_its_baseline(molecules):
    delta = _delta(baseline="gfn1-xtb").double()
    blob = checkpoint_to_bytes(delta, {"cycle": 3})
    loaded, meta = model_from_bytes(blob)
    assert isinstance(loaded, DeltaPotential) and meta["cycle"] == 3
    assert loaded.baseline.fidelity == delta.baseline.fidelity and loaded.baseline.fidelity.method == "gfn1-xtb"
    e1, f1 = predict(delta, molecules)
    e2, f2 = predict(loaded, molecules)
    np.testing.assert_array_equal(e1, e2)
    np.testing.assert_array_equal(f1, f2)


def test_errors_of_the_delta_model_equal_the_learned_parts_on_shifted_targets(molecules):
    delta = _delta().double()
    rng = np.random.default_rng(0)
    frames = []
    for atoms in molecules * 2:
        a = atoms.copy()
        a.positions += rng.normal(scale=0.05, size=a.positions.shape)
        frames.append(a)
    energy = rng.normal(size=len(frames)) - 1000.0
    forces = [rng.normal(size=(len(a), 3)) for a in frames]
    data = FrameDataset.from_arrays([a.numbers for a in frames], [a.positions for a in frames], energy, forces,
                                    fidelity="b3lyp")
    shifted = delta.baseline.subtract(data)
    assert shifted.fidelity == data.fidelity and np.array_equal(shifted.weight, data.weight)
    full, part = evaluate_model(delta, data), evaluate_model(learned_part(delta), shifted)
    assert full["force_mae_eV_per_A"] == pytest.approx(part["force_mae_eV_per_A"], rel=1e-9)
    assert full["energy_mae_eV"] == pytest.approx(part["energy_mae_eV"], rel=1e-6)


def test_baseline_failures_are_nan_in_predictions_and_stop_a_dataset(water):
    crushed = water.copy()
    crushed.positions[1] = crushed.positions[0] + [0.0, 0.0, 0.01]  # H on top of O: tblite refuses or diverges
    energies, forces, reasons = Baseline("gfn2-xtb").compute([water, crushed])
    assert reasons[0] == "" and reasons[1]
    assert np.isfinite(energies[0]) and np.isnan(energies[1]) and np.isnan(forces[1]).all()
    data = FrameDataset.from_arrays([water.numbers] * 2, [water.positions, crushed.positions], [0.0, 0.0],
                                    [np.zeros((3, 3))] * 2)
    with pytest.raises(AlloopError, match="frame 1"):
        Baseline("gfn2-xtb").subtract(data)


def test_only_xtb_can_be_a_baseline():
    with pytest.raises(AlloopError, match="GFN-xTB"):
        Baseline("hf-sto3g")
    with pytest.raises(ValueError, match="already has a baseline"):
        DeltaPotential.wrap(_delta(), "gfn2-xtb")


def test_uncertainty_bias_forces_of_a_delta_model_against_finite_differences(ethanol):
    from alloop.md.uncertainty_bias import BiasSettings, QResidualBias, biased_forces
    from alloop.potentials.inference import predict_features
    from alloop.uncertainty.qresidual import QResidualModel, QResidualSettings

    delta = _delta().double()
    rng = np.random.default_rng(1)
    frames = []
    for _ in range(12):
        a = ethanol.copy()
        a.positions += rng.normal(scale=0.08, size=a.positions.shape)
        frames.append(a)
    offsets = np.arange(13) * len(ethanol)
    numbers = np.tile(ethanol.numbers, 12)
    uq = QResidualModel.fit(numbers, predict_features(delta, frames), offsets,
                            QResidualSettings(n_components=2, min_element_atoms=5))
    bias = QResidualBias(uq, BiasSettings(strength_eV=0.3))
    probe = frames[0].copy()
    probe.positions += rng.normal(scale=0.1, size=probe.positions.shape)
    batch = AtomsBatch.from_atoms([probe], dtype=torch.float64)
    out = biased_forces(delta, bias, batch)
    plain = delta(batch)
    bias_forces = (out.forces - plain.forces).numpy()  # the baseline cancels: what is left is -dE_bias/dx

    def e_bias(positions: np.ndarray) -> float:
        b = AtomsBatch.from_arrays(probe.numbers, positions, [len(probe)], dtype=torch.float64)
        return float(biased_forces(delta, bias, b).bias_energy[0])

    direction = rng.normal(size=probe.positions.shape)
    direction /= np.linalg.norm(direction)
    h = 1e-4
    fd = -(e_bias(probe.positions + h * direction) - e_bias(probe.positions - h * direction)) / (2 * h)
    assert abs(fd) > 1e-6
    assert float((bias_forces * direction).sum()) == pytest.approx(fd, rel=1e-5, abs=1e-8)
    baseline_e, baseline_f, _ = Baseline("gfn2-xtb").compute([probe])
    np.testing.assert_allclose(out.energy.numpy(), delta.inner(batch).energy.detach().numpy() + baseline_e, atol=1e-8)


def test_reference_energies_and_output_scale_are_the_learned_parts(molecules):
    delta = _delta().double()
    assert delta.atomic_energies is delta.inner.atomic_energies and delta.output_scale is delta.inner.output_scale
    batch = AtomsBatch.from_atoms(molecules, dtype=torch.float64)
    before = delta(batch).energy.detach()
    from alloop.training.references import apply_references

    apply_references(delta, {1: -2.5, 6: -20.0, 8: -30.0})
    assert float(delta.inner.atomic_energies[1]) == -2.5
    shift = delta(batch).energy.detach() - before
    np.testing.assert_allclose(shift.numpy(), [-1.0 * 2, -1.0 * 6, -1.0 * 4], atol=1e-9)  # one eV less per H
    assert "atomic_energies" not in dict(delta.named_buffers(recurse=False))
    assert "inner.atomic_energies" in delta.state_dict()


def _shaken(atoms, n: int, seed: int = 0, step_A: float = 0.01) -> list:
    """``n`` copies of ``atoms``, each moved a little from the one before (a rough trajectory)."""
    rng, out, pos = np.random.default_rng(seed), [], atoms.positions.copy()
    for _ in range(n):
        pos = pos + step_A * rng.normal(size=pos.shape)
        a = atoms.copy()
        a.positions = pos
        out.append(a)
    return out


def test_warm_steps_give_the_cold_answer_in_fewer_scc_cycles(ethanol, water):
    """Inside ``Baseline.warm`` each slot continues its own tblite wavefunction: the same energies and forces within
    tblite's accuracy, fewer SCC cycles; a slot whose atoms change starts afresh; outside the block, nothing is kept."""
    frames = list(zip(_shaken(ethanol, 12), _shaken(ethanol, 12, seed=1), strict=True))
    cold, warm = Baseline("gfn2-xtb"), Baseline("gfn2-xtb")
    with warm.warm():
        for pair in frames:
            e_cold, f_cold, _ = cold.compute(pair)
            e_warm, f_warm, reasons = warm.compute(pair)
            assert reasons == ["", ""]
            np.testing.assert_allclose(e_warm, e_cold, atol=1e-5)
            for a, b in zip(f_warm, f_cold, strict=True):
                np.testing.assert_allclose(a, b, atol=2e-3)
        assert warm.scc_cycles < 0.8 * cold.scc_cycles, (warm.scc_cycles, cold.scc_cycles)
        e_water, _, reasons = warm.compute([water])  # slot 0 held ethanol: water starts afresh there
        assert reasons == [""] and e_water[0] == pytest.approx(cold.compute([water])[0][0], abs=1e-6)
    before = warm.scc_cycles
    warm.compute([frames[-1][0]])
    cold_again = cold.scc_cycles
    cold.compute([frames[-1][0]])
    assert warm.scc_cycles - before == cold.scc_cycles - cold_again  # outside the block: afresh


def test_md_segments_of_a_delta_model_do_not_depend_on_the_segments_before(ethanol):
    """Every segment starts the baseline's wavefunctions afresh: a segment run after another gives the same
    trajectory, bit for bit, as the same segment run first (a resumed campaign repeats its segments exactly)."""
    from alloop.md import MDSettings, init_replicas, run_segment

    delta = _delta().double()
    settings = MDSettings(temperature_K=300.0, timestep_fs=0.5, friction_per_fs=0.01)
    states = init_replicas(ethanol, 2, 300.0, seed=3)
    first = run_segment(delta, ethanol, states, 6, settings, record_every=2)
    run_segment(delta, ethanol, init_replicas(ethanol, 2, 300.0, seed=4), 6, settings, record_every=2)
    again = run_segment(delta, ethanol, states, 6, settings, record_every=2)
    for a, b in zip(again.trajectories, first.trajectories, strict=True):
        assert len(a) == 3  # steps 2, 4, 6
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.forces, b.forces)


def test_md_replicas_in_groups_keep_their_baseline_slots(ethanol, monkeypatch):
    """An MD step whose replicas are evaluated in groups (big boxes: a pair bound per model call) gives the
    trajectory of one call for all: each replica keeps its own warm tblite slot, so even the SCC cycles agree."""
    from alloop.md import MDSettings, init_replicas, run_segment
    from alloop.potentials import inference

    delta = _delta().double()
    settings = MDSettings(temperature_K=300.0, timestep_fs=0.5, friction_per_fs=0.01)
    states = init_replicas(ethanol, 3, 300.0, seed=5)
    runs, cycles = [], []
    for pairs in (inference.MAX_BATCH_PAIRS, 9 * 8):  # one ethanol per group
        monkeypatch.setattr(inference, "MAX_BATCH_PAIRS", pairs)
        before = delta.baseline.scc_cycles
        runs.append(run_segment(delta, ethanol, states, 6, settings, record_every=2))
        cycles.append(delta.baseline.scc_cycles - before)
    assert runs[1].n_model_calls == 3 * runs[0].n_model_calls
    assert cycles[0] == cycles[1]
    for a, b in zip(*(run.trajectories for run in runs), strict=True):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-9)
        np.testing.assert_allclose(a.forces, b.forces, atol=1e-8)


def test_a_segment_counts_the_seconds_its_baseline_took(ethanol):
    """A Delta model's segment reports the baseline's share of its model calls (tblite's wall time, inside the
    model time); a plain model's reports none."""
    from alloop.md import MDSettings, init_replicas, run_segment

    delta = _delta().double()
    settings = MDSettings(temperature_K=300.0, timestep_fs=0.5, friction_per_fs=0.01)
    before = delta.baseline.seconds
    result = run_segment(delta, ethanol, init_replicas(ethanol, 2, 300.0, seed=3), 5, settings, record_every=5)
    assert result.baseline_seconds == pytest.approx(delta.baseline.seconds - before)
    assert 0 < result.baseline_seconds < result.model_seconds < result.total_seconds
    assert delta.baseline.structures == 2 * 6  # the start and 5 steps, 2 replicas
    plain = run_segment(learned_part(delta), ethanol, init_replicas(ethanol, 2, 300.0, seed=3), 5, settings,
                        record_every=5)
    assert plain.baseline_seconds == 0.0 and plain.model_seconds > 0


def _labelled(frames: list, fidelity: str) -> FrameDataset:
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(3)
    for atoms in frames:
        atoms.calc = SinglePointCalculator(atoms, energy=float(rng.normal(-1000, 1)),
                                           forces=rng.normal(0, 0.3, (len(atoms), 3)))
    return FrameDataset.from_atoms(frames, fidelity=fidelity)


@pytest.mark.parametrize("method", ["standard", "asteroid"])
def test_the_baseline_is_computed_only_on_the_sets_a_method_trains_on(ethanol, method):
    """Standard training reads no cheap labels: the cheap set keeps its frames (the Q-residual fit reads them) without
    labels, and the baseline runs on the expensive frames only; ASTEROID trains on both, so both are shifted."""
    from alloop.training.fit import LabelSets
    from alloop.training.methods import method_spec

    expensive, cheap = _labelled(_shaken(ethanol, 3), "b3lyp"), _labelled(_shaken(ethanol, 5, seed=1), "hf")
    baseline = Baseline("gfn2-xtb")
    shifted = LabelSets(expensive=expensive, cheap=cheap).minus(baseline, trains_on=method_spec(method).labels)
    assert baseline.structures == (3 if method == "standard" else 8)
    e_base, f_base, _ = Baseline("gfn2-xtb").compute(expensive.to_atoms())
    np.testing.assert_allclose(shifted.expensive.energy, expensive.energy - e_base)
    assert len(shifted.cheap) == 5
    np.testing.assert_array_equal(shifted.cheap.positions, cheap.positions)
    assert shifted.cheap.labelled == (method == "asteroid")


def test_cheap_labels_of_the_baseline_itself_are_refused_for_a_method_that_trains_on_them(ethanol):
    """Cheap GFN2-xTB labels minus a GFN2-xTB baseline are zero: ASTEROID would pretrain on nothing, so it is refused;
    standard training does not read them and goes on."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from alloop.training.fit import LabelSets

    frames = _shaken(ethanol, 3, seed=2)
    energies, forces, _ = Baseline("gfn2-xtb").compute(frames)
    for atoms, e, f in zip(frames, energies, forces, strict=True):
        atoms.calc = SinglePointCalculator(atoms, energy=float(e), forces=f)
    cheap = FrameDataset.from_atoms(frames, fidelity="gfn2-xtb")
    labels = LabelSets(expensive=_labelled(_shaken(ethanol, 2), "b3lyp"), cheap=cheap)
    with pytest.raises(AlloopError, match="the cheap labels minus the baseline gfn2-xtb are zero on every frame"):
        labels.minus(Baseline("gfn2-xtb"), trains_on=("expensive", "cheap"))
    assert labels.minus(Baseline("gfn2-xtb"), trains_on=("expensive",)).cheap is not None
