"""When is a finished label ``inconsistent``? Checks on energy (eV) and forces (eV/Angstrom).

A label is inconsistent when

1. the energy or any force component is not finite; or
2. some atom's force exceeds ``max_force_eV_per_A`` (default 1000 eV/A). Forces
   that large only occur when nuclei nearly coincide (well under 0.5 A apart),
   where a small Gaussian basis is meaningless and the frame is useless for
   training; or
3. the net force on the structure, |sum_i F_i|, exceeds
   ``net_force_eV_per_A``. Translational invariance makes it vanish exactly
   for HF and the correlated methods (any density, since the basis moves with
   the atoms) and for GFN-xTB (measured: 3e-15 eV/A on rattled ethanol):
   default 1e-3 eV/A, which only a broken gradient exceeds. DFT
   gradients without grid response carry a grid error. Measured at
   B3LYP/def2-SVP: water 4e-4 eV/A (grid level 3), 8e-3 (level 1), 0.14
   (level 0); ethanol 2e-3 (level 3). Defaults: 0.1 eV/A for DFT at grid
   level >= 2, 1 eV/A on the coarse grids 0 and 1. Periodic DFT on PySCF's
   multigrid integrator (family ``pyscf-pbc``) breaks translational invariance
   more (the real-space grid is fixed to the cell) unless the plane-wave
   cutoff is high: measured on 4 waters in a 4.93 A box at PBE/GTH-DZVP, 0.22
   eV/A at 300 Hartree, 0.06 at 400, 0.002 at 600 (the presets: 400 for
   GTH-SZV, 600 for GTH-DZVP); up to 0.5 eV/A at 200. Default 0.5 eV/A.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alloop.fidelity import Fidelity

#: default net-force limits (eV/Angstrom)
NET_FORCE_WAVEFUNCTION_EV_PER_A = 1e-3
NET_FORCE_DFT_EV_PER_A = 0.1
NET_FORCE_DFT_COARSE_GRID_EV_PER_A = 1.0
NET_FORCE_PERIODIC_EV_PER_A = 0.5
MAX_FORCE_EV_PER_A = 1e3


@dataclass(frozen=True)
class SanityLimits:
    """Limits beyond which a label is recorded as ``inconsistent``."""

    max_force_eV_per_A: float = MAX_FORCE_EV_PER_A
    net_force_eV_per_A: float = NET_FORCE_WAVEFUNCTION_EV_PER_A

    @classmethod
    def for_fidelity(cls, fidelity: Fidelity, **overrides: float | None) -> SanityLimits:
        """The defaults for this fidelity's method and grid; ``None`` overrides are ignored."""
        if fidelity.periodic:
            net = NET_FORCE_PERIODIC_EV_PER_A
        elif not fidelity.is_dft:
            net = NET_FORCE_WAVEFUNCTION_EV_PER_A
        elif fidelity.grid_level >= 2:
            net = NET_FORCE_DFT_EV_PER_A
        else:
            net = NET_FORCE_DFT_COARSE_GRID_EV_PER_A
        base = cls(net_force_eV_per_A=net)
        given = {k: float(v) for k, v in overrides.items() if v is not None}
        for key, value in given.items():
            if not value > 0:
                raise ValueError(f"{key} must be positive, not {value}")
        return cls(**{**base.__dict__, **given})


def consistency_problem(energy_eV: float, forces_eV_per_A: np.ndarray, limits: SanityLimits) -> str | None:
    """None if the label passes every check, otherwise a one-line reason."""
    if not np.isfinite(energy_eV):
        return f"non-finite energy ({energy_eV})"
    if not np.all(np.isfinite(forces_eV_per_A)):
        bad = int(np.count_nonzero(~np.isfinite(forces_eV_per_A)))
        return f"{bad} non-finite force components"
    norms = np.linalg.norm(forces_eV_per_A, axis=1)
    worst = int(np.argmax(norms))
    if norms[worst] > limits.max_force_eV_per_A:
        return (
            f"force on atom {worst} is {norms[worst]:.4g} eV/A, beyond the limit "
            f"{limits.max_force_eV_per_A:.4g} eV/A"
        )
    net = float(np.linalg.norm(forces_eV_per_A.sum(axis=0)))
    if net > limits.net_force_eV_per_A:
        return (
            f"net force {net:.3g} eV/A on the structure exceeds {limits.net_force_eV_per_A:.3g} eV/A"
        )
    return None
