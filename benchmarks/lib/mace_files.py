"""A MACE of MACE-OFF23-small's size with random weights, built by mace's own constructors and saved as mace saves a
model file (``torch.save`` of the network), for benchmarks that compare it with pretrained models.

The size: MACE-OFF23 "small" (Kovacs et al., 2023): 96 channels of invariant (L = 0) messages, 5 A cutoff, 2
interactions, correlation order 3. Everything else is ``mace_run_train``'s default for ``--model MACE`` (mace 0.3):
8 Bessel functions with a degree-5 polynomial cutoff, spherical harmonics to l = 3, radial MLP [64, 64, 64], readout
MLP 16x0e with SiLU, a ``RealAgnosticInteractionBlock`` first and residual blocks after it, float64. What mace's
training would compute from its data is set without data here: the per-element E0s are zero (alloop fits the
references on the labels), the interaction energy's scale 1 and shift 0 (mace's ``no_scaling``; ethanol's forces
at 500 K have an RMS of about 1 eV/A, what ``rms_forces_scaling`` would give), and ``avg_num_neighbors`` is the
mean number of neighbours within the cutoff in the frames given (geometries only, no labels).

Needs the mace extra (``pip install 'alloop[mace]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: MACE-OFF23 small's size (the paper) and mace_run_train's defaults for the rest (see the module docstring)
MACE_OFF_SMALL: dict[str, Any] = {"channels": 96, "max_L": 0, "r_max": 5.0, "num_interactions": 2, "correlation": 3,
                                  "num_bessel": 8, "num_polynomial_cutoff": 5, "max_ell": 3,
                                  "radial_MLP": [64, 64, 64], "MLP_irreps": "16x0e", "dtype": "float64"}


def mean_neighbours(frames: Sequence[Any], r_max: float) -> float:
    """The mean number of other atoms within ``r_max`` (A) of an atom, over every atom of ``frames`` (molecules)."""
    counts = []
    for atoms in frames:
        d = np.linalg.norm(atoms.positions[:, None, :] - atoms.positions[None, :, :], axis=-1)
        counts.append(((d < r_max).sum(axis=1) - 1).astype(float))
    return float(np.concatenate(counts).mean())


def random_mace(elements: Sequence[int], avg_num_neighbors: float, seed: int) -> Any:
    """A ``ScaleShiftMACE`` of :data:`MACE_OFF_SMALL`'s size for ``elements``, weights drawn from ``seed`` (the global
    RNG untouched)."""
    import mace  # noqa: F401  (e3nn 0.4.4 imports under torch >= 2.6 only after mace set its environment)
    import torch
    from e3nn import o3
    from mace import modules

    size = MACE_OFF_SMALL
    elements = sorted({int(z) for z in elements})
    hidden = o3.Irreps((size["channels"] * o3.Irreps.spherical_harmonics(size["max_L"])).sort()[0].simplify())
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, size["dtype"]))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = modules.ScaleShiftMACE(
                r_max=size["r_max"], num_bessel=size["num_bessel"],
                num_polynomial_cutoff=size["num_polynomial_cutoff"], max_ell=size["max_ell"],
                interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
                interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
                num_interactions=size["num_interactions"], num_elements=len(elements), hidden_irreps=hidden,
                MLP_irreps=o3.Irreps(size["MLP_irreps"]), atomic_energies=np.zeros(len(elements)),
                avg_num_neighbors=avg_num_neighbors, atomic_numbers=elements, correlation=size["correlation"],
                gate=modules.gate_dict["silu"], atomic_inter_scale=1.0, atomic_inter_shift=0.0,
                radial_MLP=list(size["radial_MLP"]))
    finally:
        torch.set_default_dtype(previous)
    return net


def write_random_mace(path: Path, elements: Sequence[int], avg_num_neighbors: float, seed: int) -> Path:
    """Save :func:`random_mace` to ``path`` as mace saves a model file (``torch.save`` of the network); kept if the
    file is there already (the same seed gives the same weights)."""
    import torch

    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(random_mace(elements, avg_num_neighbors, seed), tmp)
        tmp.replace(path)
    return path
