"""Conformance checks for any :class:`~alloop.potentials.base.Potential`.

``check_potential(model, structures)`` asserts the physics and the protocol a
Potential must satisfy, so a new architecture (or a wrapped universal model)
gets the same tests as the built-in ones::

    from alloop.testing.potentials import check_potential
    report = check_potential(MyModel([1, 6, 8]), [water, ethanol, methane])

Checked (on float64 copies of the model unless stated): forces = -dE/dx by
central finite differences along random directions; energies and features
invariant and forces equivariant under random rotations and translations;
atom permutations within a molecule permute forces and features; a batch of
molecules of different sizes equals the molecules one by one; inputs are not
mutated; shapes, dtypes and finiteness of every output; features of width
``model.feature_dim`` and deterministic; ``compute_forces=False`` and
``create_graph=True`` behave (double backward: the Hessian-vector products are
symmetric, as score matching needs); ``atomic_energies`` are added per atom and
touch neither forces nor features; the model's own dtype (float32) works too.
Exactness checks run with the reference energies set to zero, so that large
references (thousands of eV) cannot hide rounding-level errors.

Given ``periodic`` structures (cells with pbc), :func:`check_periodic` also
asserts: forces = -dE/dx with atoms across the cell's faces; energies,
forces and features unchanged when an atom moves by a lattice vector, when
the structure is wrapped into its cell or translated rigidly; a 2x1x1
supercell has twice the energy and the same per-atom forces and features;
rotating atoms and cell together rotates the forces; a batch mixing cells and
molecules equals each alone.
The given model is never modified. Failures raise AssertionError.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from ase import Atoms

from alloop.potentials.base import AtomsBatch, Potential, PotentialOutput


@dataclass
class ConformanceReport:
    """Largest deviations measured by :func:`check_potential` (eV, eV/Angstrom, feature units)."""

    max_fd_force_error: float = 0.0
    max_invariance_energy_error: float = 0.0
    max_equivariance_force_error: float = 0.0
    max_invariance_feature_error: float = 0.0
    max_batch_error: float = 0.0
    max_periodic_error: float = 0.0
    checks: list[str] = field(default_factory=list)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random proper rotation matrix (det = +1)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


@dataclass
class _Forces:
    """A model's energies [B], forces [N, 3] and features [N, F] (a PotentialOutput whose forces were computed)."""

    energy: torch.Tensor
    forces: torch.Tensor
    features: torch.Tensor


def _output(model: Potential, structures: Sequence[Atoms], dtype: torch.dtype, **kwargs) -> PotentialOutput:
    return model(AtomsBatch.from_atoms(list(structures), dtype=dtype), **kwargs)


def _run(model: Potential, structures: Sequence[Atoms], dtype: torch.dtype, *, create_graph: bool = False) -> _Forces:
    out = _output(model, structures, dtype, create_graph=create_graph)
    assert out.forces is not None, "the model returned no forces (compute_forces=True)"
    return _Forces(out.energy, out.forces, out.features)


def _max(x: torch.Tensor | np.ndarray) -> float:
    arr = torch.as_tensor(x).detach()
    return float(arr.abs().max()) if arr.numel() else 0.0


def check_output_shapes(model: Potential, structures: Sequence[Atoms], dtype: torch.dtype) -> None:
    """Shapes, dtypes, finiteness; features of width feature_dim, deterministic and detached."""
    n_atoms = sum(len(a) for a in structures)
    out = _output(model, structures, dtype)
    assert out.energy.shape == (len(structures),), f"energy shape {tuple(out.energy.shape)}"
    assert out.forces is not None and out.forces.shape == (n_atoms, 3), "forces must be [N, 3]"
    assert out.features.shape == (n_atoms, model.feature_dim), (
        f"features {tuple(out.features.shape)} != [N, feature_dim={model.feature_dim}]"
    )
    for name in ("energy", "forces", "features"):
        value = getattr(out, name)
        assert value.dtype == dtype, f"{name} is {value.dtype}, expected {dtype}"
        assert bool(torch.isfinite(value).all()), f"{name} has non-finite values"
    assert not out.features.requires_grad, "features must be detached"
    again = _output(model, structures, dtype)
    assert torch.equal(out.features, again.features), "features are not deterministic"
    assert torch.equal(out.energy, again.energy), "energies are not deterministic"
    no_forces = _output(model, structures, dtype, compute_forces=False)
    assert no_forces.forces is None, "compute_forces=False must return forces=None"
    assert torch.allclose(no_forces.energy, out.energy, rtol=1e-6, atol=1e-6), "energy depends on compute_forces"


def check_inputs_not_mutated(model: Potential, structures: Sequence[Atoms], dtype: torch.dtype) -> None:
    """Neither the Atoms nor the AtomsBatch given to the model change."""
    atoms_before = [(a.numbers.copy(), a.positions.copy()) for a in structures]
    batch = AtomsBatch.from_atoms(list(structures), dtype=dtype)
    before = {k: getattr(batch, k).clone() for k in ("numbers", "positions", "batch", "ptr")}
    model(batch)
    for key, value in before.items():
        assert torch.equal(getattr(batch, key), value), f"the model mutated batch.{key}"
    assert not batch.positions.requires_grad, "the model set requires_grad on the caller's positions"
    for atoms, (numbers, positions) in zip(structures, atoms_before, strict=True):
        assert np.array_equal(atoms.numbers, numbers) and np.array_equal(atoms.positions, positions)


def check_finite_difference_forces(
    model64: Potential, structures: Sequence[Atoms], rng: np.random.Generator, *, n_directions: int = 3,
    step: float = 1e-4, atol: float = 1e-6, rtol: float = 1e-5,
) -> float:
    """F . v == -(E(x + h v) - E(x - h v)) / 2h along random unit directions v (float64)."""
    worst = 0.0
    for atoms in structures:
        out = _run(model64, [atoms], torch.float64)
        for _ in range(n_directions):
            v = rng.normal(size=atoms.positions.shape)
            v /= np.linalg.norm(v)
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions += step * v
            minus.positions -= step * v
            e_plus = _output(model64, [plus], torch.float64, compute_forces=False).energy.item()
            e_minus = _output(model64, [minus], torch.float64, compute_forces=False).energy.item()
            fd = -(e_plus - e_minus) / (2 * step)
            analytic = float((out.forces.detach().numpy() * v).sum())
            err = abs(fd - analytic)
            worst = max(worst, err)
            assert err <= atol + rtol * abs(analytic), (
                f"{atoms.get_chemical_formula()}: force along a random direction {analytic:.10g} "
                f"!= finite difference {fd:.10g}"
            )
    return worst


def check_euclidean_symmetry(
    model64: Potential, structures: Sequence[Atoms], rng: np.random.Generator, *, atol: float = 1e-9,
    invariant_features: bool = True,
) -> tuple[float, float, float]:
    """E(Rx + t) = E(x), F(Rx + t) = R F(x), features invariant, for random R and t (float64)."""
    errs = [0.0, 0.0, 0.0]
    for atoms in structures:
        rot, shift = random_rotation(rng), rng.normal(scale=3.0, size=3)
        moved = atoms.copy()
        moved.positions = atoms.positions @ rot.T + shift
        ref, new = _run(model64, [atoms], torch.float64), _run(model64, [moved], torch.float64)
        rotated = ref.forces.detach().numpy() @ rot.T
        errs[0] = max(errs[0], _max(new.energy - ref.energy))
        errs[1] = max(errs[1], _max(new.forces.detach().numpy() - rotated))
        errs[2] = max(errs[2], _max(new.features - ref.features))
        formula = atoms.get_chemical_formula()
        assert errs[0] <= atol * max(1.0, _max(ref.energy)), f"{formula}: energy not invariant ({errs[0]:.3g} eV)"
        assert errs[1] <= atol * max(1.0, _max(ref.forces)), f"{formula}: forces not equivariant ({errs[1]:.3g})"
        if invariant_features:
            assert errs[2] <= atol * max(1.0, _max(ref.features)), f"{formula}: features not invariant"
    return errs[0], errs[1], errs[2]


def check_permutation(model64: Potential, structures: Sequence[Atoms], rng: np.random.Generator, *,
                      atol: float = 1e-9) -> None:
    """Relabelling atoms within a molecule permutes forces and features and keeps the energy (float64)."""
    for atoms in structures:
        perm = rng.permutation(len(atoms))
        ref, new = _run(model64, [atoms], torch.float64), _run(model64, [atoms[perm]], torch.float64)
        scale = max(1.0, _max(ref.energy))
        assert _max(new.energy - ref.energy) <= atol * scale, "energy changes under an atom permutation"
        assert _max(new.forces - ref.forces[perm]) <= atol * max(1.0, _max(ref.forces)), "forces do not permute"
        assert _max(new.features - ref.features[perm]) <= atol * max(1.0, _max(ref.features)), "features do not permute"


def check_batching(model64: Potential, structures: Sequence[Atoms], *, atol: float = 1e-9) -> float:
    """A batch of the structures equals each structure alone (float64)."""
    sizes = {len(a) for a in structures}
    assert len(structures) >= 2 and len(sizes) >= 2, "give at least two molecules of different sizes"
    batched = _run(model64, structures, torch.float64)
    worst, start = 0.0, 0
    for k, atoms in enumerate(structures):
        single = _run(model64, [atoms], torch.float64)
        stop = start + len(atoms)
        for name, a, b in (
            ("energy", batched.energy[k : k + 1], single.energy),
            ("forces", batched.forces[start:stop], single.forces),
            ("features", batched.features[start:stop], single.features),
        ):
            err = _max(a - b)
            worst = max(worst, err)
            assert err <= atol * max(1.0, _max(b)), f"{atoms.get_chemical_formula()}: batched {name} differ by {err:.3g}"
        start = stop
    return worst


def check_reference_energies(model64: Potential, structures: Sequence[Atoms], *, atol: float = 1e-9) -> None:
    """Energy = residual + sum of ``atomic_energies`` per atom; forces and features do not depend on them."""
    zeroed = copy.deepcopy(model64)
    zeroed.atomic_energies.zero_()
    base = _run(zeroed, structures, torch.float64)
    shifted = copy.deepcopy(zeroed)
    for z in {int(z) for a in structures for z in a.numbers}:
        shifted.atomic_energies[z] = -100.0 * z - 0.5
    out = _run(shifted, structures, torch.float64)
    expected = torch.tensor([sum(-100.0 * z - 0.5 for z in a.numbers) for a in structures], dtype=torch.float64)
    assert _max(out.energy - base.energy - expected) <= atol * _max(expected), "atomic_energies are not added per atom"
    assert torch.equal(out.forces, base.forces), "forces depend on atomic_energies"
    assert torch.equal(out.features, base.features), "features depend on atomic_energies"


def check_hessian_symmetry(model64: Potential, structures: Sequence[Atoms], rng: np.random.Generator, *,
                           atol: float = 1e-9) -> None:
    """u . d(F . v)/dx == v . d(F . u)/dx: second derivatives exist and the Hessian is symmetric (float64).

    This is the double backward pass that sliced score matching needs.
    """
    batch = AtomsBatch.from_atoms(list(structures), dtype=torch.float64)
    positions = batch.positions.clone().requires_grad_(True)
    out = model64(batch.with_positions(positions), create_graph=True)
    u = torch.as_tensor(rng.normal(size=tuple(positions.shape)))
    v = torch.as_tensor(rng.normal(size=tuple(positions.shape)))
    (hv,) = torch.autograd.grad((out.forces * v).sum(), positions, retain_graph=True)
    (hu,) = torch.autograd.grad((out.forces * u).sum(), positions)
    uhv, vhu = float((u * hv).sum()), float((v * hu).sum())
    assert abs(uhv - vhu) <= atol * max(1.0, abs(uhv)), f"Hessian not symmetric: {uhv:.10g} vs {vhu:.10g}"


def check_create_graph(model: Potential, structures: Sequence[Atoms], dtype: torch.dtype) -> None:
    """With create_graph=True the forces are differentiable w.r.t. the parameters (for force losses)."""
    if not any(p.requires_grad for p in model.parameters()):
        return
    out = _run(model, structures, dtype, create_graph=True)
    assert out.forces is not None and out.forces.requires_grad, "create_graph=True must give differentiable forces"
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(out.forces.square().sum(), params, allow_unused=True)
    assert any(g is not None and bool(g.abs().sum() > 0) for g in grads), "force loss has no parameter gradient"


def _compare(ref: _Forces, new: _Forces, atol: float, what: str, perm: np.ndarray | None = None,
             energy_factor: float = 1.0) -> float:
    """Largest deviation of ``new`` from ``ref`` (energy x ``energy_factor``; per-atom rows ``perm`` of new)."""
    rows = slice(None) if perm is None else perm
    errs = (_max(new.energy - energy_factor * ref.energy) / max(1.0, _max(energy_factor * ref.energy)),
            _max(new.forces[rows] - ref.forces) / max(1.0, _max(ref.forces)),
            _max(new.features[rows] - ref.features) / max(1.0, _max(ref.features)))
    for name, err in zip(("energy", "forces", "features"), errs, strict=True):
        assert err <= atol, f"{what}: {name} differ by {err:.3g} (relative)"
    return max(errs)


def check_periodic(model64: Potential, cells: Sequence[Atoms], molecules: Sequence[Atoms], rng: np.random.Generator,
                   *, fd_atol: float = 1e-6, atol: float = 1e-9) -> float:
    """The periodic checks of the kit on float64 ``model64`` (see the module docstring); the worst relative error."""
    assert cells and all(a.pbc.all() for a in cells), "give cells periodic in all three directions"
    check_finite_difference_forces(model64, cells, rng, atol=fd_atol)
    worst = 0.0
    for atoms in cells:
        formula = atoms.get_chemical_formula()
        ref = _run(model64, [atoms], torch.float64)
        moved = atoms.copy()
        moved.positions[0] += moved.cell[0] - 2 * moved.cell[2]
        worst = max(worst, _compare(ref, _run(model64, [moved], torch.float64), atol, f"{formula}: lattice shift"))
        wrapped = atoms.copy()
        wrapped.positions += rng.normal(scale=2.0, size=3)
        worst = max(worst, _compare(ref, _run(model64, [wrapped], torch.float64), atol, f"{formula}: translation"))
        wrapped.wrap()
        worst = max(worst, _compare(ref, _run(model64, [wrapped], torch.float64), atol, f"{formula}: wrapping"))
        supercell = atoms.repeat((2, 1, 1))
        tiled = np.tile(np.arange(len(atoms)), 2)
        worst = max(worst, _compare(ref, _run(model64, [supercell], torch.float64), atol, f"{formula}: 2x1x1 supercell",
                                    perm=np.arange(len(atoms)), energy_factor=2.0))
        super_out = _run(model64, [supercell], torch.float64)
        assert _max(super_out.forces - ref.forces[tiled]) <= atol * max(1.0, _max(ref.forces)), (
            f"{formula}: supercell images get different forces")
        rot = random_rotation(rng)
        turned = atoms.copy()
        turned.set_cell(atoms.cell.array @ rot.T, scale_atoms=False)
        turned.positions = atoms.positions @ rot.T
        new = _run(model64, [turned], torch.float64)
        assert _max(new.energy - ref.energy) <= atol * max(1.0, _max(ref.energy)), f"{formula}: energy not invariant"
        assert _max(new.forces.detach().numpy() - ref.forces.detach().numpy() @ rot.T) <= atol * max(
            1.0, _max(ref.forces)), f"{formula}: forces do not rotate with atoms and cell"
    mixed = [*cells, *molecules]
    batched, start = _run(model64, mixed, torch.float64), 0
    for k, atoms in enumerate(mixed):
        single, stop = _run(model64, [atoms], torch.float64), start + len(atoms)
        err = max(_max(batched.energy[k] - single.energy[0]), _max(batched.forces[start:stop] - single.forces))
        assert err <= atol * max(1.0, _max(single.energy), _max(single.forces)), (
            f"{atoms.get_chemical_formula()}: a batch of cells and molecules differs from one by one ({err:.3g})")
        start = stop
    return worst


def check_potential(
    model: Potential,
    structures: Sequence[Atoms],
    *,
    seed: int = 0,
    invariant_features: bool = True,
    fd_atol: float = 1e-6,
    symmetry_atol: float = 1e-9,
    periodic: Sequence[Atoms] = (),
) -> ConformanceReport:
    """Run every conformance check on ``model`` with ``structures`` (molecules of at least two sizes) and, given
    ``periodic`` cells, the periodic checks (:func:`check_periodic`).

    ``symmetry_atol`` is relative to the magnitude of the compared quantity
    (floored at 1), in float64. Returns the largest deviations measured.
    """
    if not isinstance(model, Potential):
        raise TypeError(f"expected a Potential, got {type(model).__name__}")
    structures = list(structures)
    rng = np.random.default_rng(seed)
    report = ConformanceReport()
    own_dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    own = copy.deepcopy(model)
    model64 = copy.deepcopy(model).double()
    # Exactness checks on the residual energy: large reference energies would hide rounding-level errors.
    model64.atomic_energies.zero_()

    check_output_shapes(own, structures, own_dtype)
    check_output_shapes(model64, structures, torch.float64)
    report.checks.append("shapes, dtypes, determinism")
    check_inputs_not_mutated(model64, structures, torch.float64)
    report.checks.append("inputs not mutated")
    report.max_fd_force_error = check_finite_difference_forces(model64, structures, rng, atol=fd_atol)
    report.checks.append("forces = -dE/dx")
    errs = check_euclidean_symmetry(model64, structures, rng, atol=symmetry_atol, invariant_features=invariant_features)
    report.max_invariance_energy_error, report.max_equivariance_force_error, report.max_invariance_feature_error = errs
    report.checks.append("rotation/translation symmetry")
    check_permutation(model64, structures, rng, atol=symmetry_atol)
    report.checks.append("permutation")
    report.max_batch_error = check_batching(model64, structures, atol=symmetry_atol)
    report.checks.append("batched = one by one")
    check_reference_energies(model64, structures)
    report.checks.append("reference energies")
    check_hessian_symmetry(model64, structures, rng, atol=symmetry_atol)
    report.checks.append("Hessian symmetry")
    check_create_graph(own, structures, own_dtype)
    report.checks.append("create_graph")
    if periodic:
        report.max_periodic_error = check_periodic(model64, list(periodic), structures, rng, fd_atol=fd_atol,
                                                   atol=symmetry_atol)
        report.checks.append("periodic cells")
    return report
