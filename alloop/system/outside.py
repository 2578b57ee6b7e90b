"""Structures outside a campaign: small closed-shell CHO molecules from ``ase.build.molecule``, rattled.

They serve the forgetting metric (:mod:`alloop.training.forgetting`) and replay
(:mod:`alloop.training.replay`), as two seeded draws that never share a frame:
:func:`forgetting_structures` is one fixed set (the same for every campaign with
the same elements, so scores compare across campaigns and seeds),
:func:`replay_structures` a pool drawn from another random stream. Their labels
come from the campaign's original model
(:func:`alloop.training.metrics.pseudo_labelled`), not from a labeller. This
module needs only ASE and numpy (config validation uses it).

Molecules only: alloop's potentials have no periodic cell, so no bulk crystal
is part of the set (forgetting of a universal model's solid-state knowledge is
not measured here).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from ase import Atoms

from alloop.errors import AlloopError

#: the default molecules (ase.build.molecule names); each campaign keeps those made of its elements
DEFAULT_MOLECULES = (
    "H2", "H2O", "H2O2", "CO", "CO2", "CH4", "C2H2", "C2H4", "C2H6", "H2CO", "CH3OH", "HCOOH",
    "CH3CHO", "CH3COOH", "CH3OCH3", "CH3CH2OH",
)
#: Gaussian displacement of every atom (Angstrom)
AMPLITUDE_A = 0.05
#: rattled copies of each molecule in the forgetting set
FORGETTING_COPIES = 3
#: frames in the replay pool (spread evenly over the molecules)
REPLAY_FRAMES = 32
# distinct random streams (numpy SeedSequence entropy): the two sets never share a frame
_FORGETTING_STREAM = (0x466F72,)
_REPLAY_STREAM = 0x52706C


def molecule_elements(name: str) -> tuple[int, ...]:
    """Sorted atomic numbers of an ``ase.build.molecule`` name; AlloopError for an unknown name."""
    from ase.build import molecule

    try:
        return tuple(sorted({int(z) for z in molecule(name).numbers}))
    except KeyError:
        raise AlloopError(f"'{name}' is not a molecule name ase.build.molecule knows") from None


def outside_molecules(
    elements: Iterable[int], names: Sequence[str] | None = None, exclude: Iterable[Sequence[int]] = ()
) -> list[Atoms]:
    """The molecules ``names`` (default :data:`DEFAULT_MOLECULES`) made only of ``elements``, in that order.

    Molecules whose composition equals one of ``exclude`` (the campaign's own structures, as atomic
    numbers) are inside the campaign. Given names must all be made of ``elements`` and outside the
    campaign (AlloopError otherwise); default names that are not are skipped.
    """
    from ase.build import molecule

    known = {int(z) for z in elements}
    excluded = {tuple(sorted(int(z) for z in numbers)) for numbers in exclude}
    out = []
    for name in DEFAULT_MOLECULES if names is None else names:
        extra = sorted(set(molecule_elements(name)) - known)
        atoms = molecule(name)
        inside = tuple(sorted(int(z) for z in atoms.numbers)) in excluded
        if names is not None and (extra or inside):
            why = f"has elements {extra} that the model does not know" if extra else "is a composition of the campaign"
            raise AlloopError(f"'{name}' {why}")
        if not (extra or inside):
            out.append(Atoms(numbers=atoms.numbers, positions=atoms.positions))
    return out


def rattled(molecules: Sequence[Atoms], n_frames: int, rng: np.random.Generator) -> list[Atoms]:
    """``n_frames`` copies cycling through ``molecules``, every atom displaced by N(0, AMPLITUDE_A) per axis."""
    if n_frames > 0 and not molecules:
        raise AlloopError("no outside molecule is made of the model's elements")
    out = []
    for k in range(n_frames):
        base = molecules[k % len(molecules)]
        out.append(Atoms(numbers=base.numbers,
                         positions=base.positions + rng.normal(0.0, AMPLITUDE_A, base.positions.shape)))
    return out


def forgetting_structures(molecules: Sequence[Atoms]) -> list[Atoms]:
    """The fixed forgetting set: :data:`FORGETTING_COPIES` rattled copies of each molecule (no campaign seed)."""
    return rattled(molecules, FORGETTING_COPIES * len(molecules), np.random.default_rng(_FORGETTING_STREAM))


def replay_structures(molecules: Sequence[Atoms], seed: int, n_frames: int = REPLAY_FRAMES) -> list[Atoms]:
    """The replay pool: ``n_frames`` rattled copies from the campaign-seeded replay stream."""
    return rattled(molecules, n_frames, np.random.default_rng((_REPLAY_STREAM, int(seed))))

