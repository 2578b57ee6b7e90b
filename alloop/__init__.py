"""alloop: active-learning molecular dynamics for machine-learned force fields.

``alloop.calculator(RUN_DIR)`` gives an ASE calculator for a campaign's newest
model; everything else is reached through the ``alloop`` command or the
subpackages. Importing ``alloop`` itself is cheap (torch is imported on use).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from alloop.potentials.calculator import PotentialCalculator

from alloop._version import __version__

__all__ = ["calculator", "__version__"]


def calculator(
    source: str | Path,
    version: int | None = None,
    fidelity: str | None = "expensive",
    *,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device = "cpu",
) -> PotentialCalculator:
    """An ASE calculator (energy in eV, forces in eV/Angstrom) for a trained alloop model.

    ``source`` is a campaign run directory (the folder holding ``store.zarr``),
    a store, or a checkpoint file (``alloop train -o``, ``alloop export --model``).
    ``version`` picks a checkpoint of a store (``alloop status`` lists them);
    by default the newest one of role ``model``. Explicit versions may name
    ASTEROID's intermediate models too (roles ``theta0``, ``stage2``): the
    role is in ``calc.model_info``. ``fidelity`` is the level of theory of the
    predicted absolute energies: a campaign role (``expensive``, the default,
    or ``cheap``), a stored fidelity name or hash, or a preset name; the
    checkpoint must hold that fidelity's per-element references. ``None``
    keeps the energies the checkpoint was saved with. Forces do not depend on
    it. ``dtype`` (default: the model's) and ``device`` set where the model runs.

    Missing paths, stores without models, unknown versions, corrupt checkpoints
    and fidelities without references raise :class:`alloop.errors.AlloopError`
    with a one-line message.

    >>> import alloop
    >>> from ase.build import molecule
    >>> atoms = molecule("CH3CH2OH")
    >>> atoms.calc = alloop.calculator("campaigns/quickstart.run")  # doctest: +SKIP
    >>> atoms.get_forces()  # doctest: +SKIP
    """
    from alloop.deploy.loading import load_trained
    from alloop.potentials.calculator import PotentialCalculator

    trained = load_trained(source, version, fidelity)
    return PotentialCalculator(trained.model, dtype=dtype, device=device, model_info=trained.summary())
