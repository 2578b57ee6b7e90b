"""Small MACE networks built with mace's own constructors and saved as mace does, for tests and benchmarks.

Foundation weights (MACE-OFF, MACE-MP) are downloaded at run time by mace, which these machines cannot do; the
tests use random ``ScaleShiftMACE`` networks of the same kind (mace's default training makes them)::

    from harness.mace_models import write_mace_file
    path = write_mace_file(tmp_path / "tiny.model", elements=[1, 6, 8])

Needs the mace extra (``pip install 'alloop[mace]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

#: E0s (eV) of the tiny networks: about the isolated atoms' HF energies, so totals look like ab initio ones
_E0 = {1: -13.6, 6: -1029.5, 7: -1484.0, 8: -2041.3}


def tiny_mace(elements: Sequence[int] = (1, 6, 8), *, channels: int = 8, max_l: int = 1, n_layers: int = 2,
              r_max: float = 4.0, correlation: int = 2, dtype: torch.dtype = torch.float64, seed: int = 0,
              scale: float = 0.7, shift: float = 0.05) -> torch.nn.Module:
    """A random ``ScaleShiftMACE`` (mace.modules) of ``channels`` x (0e + ... + max_l) hidden irreps, ``n_layers``
    interactions, 8 Bessel functions, in ``dtype``; weights drawn from ``seed`` (the global RNG is untouched)."""
    import mace  # noqa: F401  (e3nn 0.4.4 imports under torch >= 2.6 only after mace set its environment)
    from e3nn import o3
    from mace import modules

    elements = sorted({int(z) for z in elements})
    hidden = "+".join(f"{channels}x{ell}{'e' if ell % 2 == 0 else 'o'}" for ell in range(max_l + 1))
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = modules.ScaleShiftMACE(
                r_max=r_max, num_bessel=8, num_polynomial_cutoff=5, max_ell=2, interaction_cls=block,
                interaction_cls_first=block, num_interactions=n_layers, num_elements=len(elements),
                hidden_irreps=o3.Irreps(hidden), MLP_irreps=o3.Irreps("8x0e"),
                atomic_energies=np.array([_E0.get(z, -100.0 * z) for z in elements]), avg_num_neighbors=6.0,
                atomic_numbers=elements, correlation=correlation, gate=torch.nn.functional.silu,
                atomic_inter_scale=scale, atomic_inter_shift=shift, radial_MLP=[16, 16])
    finally:
        torch.set_default_dtype(previous)
    return net.to(dtype)


def write_mace_file(path: str | Path, elements: Sequence[int] = (1, 6, 8), **kwargs) -> Path:
    """Save :func:`tiny_mace` (keyword arguments passed on) to ``path`` with ``torch.save``, as mace does."""
    path = Path(path)
    torch.save(tiny_mace(elements, **kwargs), path)
    return path
