"""The forgetting set of an ethanol campaign (rattled outside molecules) and a model's force error on its B3LYP labels
(made by ``make_outside_labels.py``)."""

from __future__ import annotations

from lib.common import DATA

#: the B3LYP/def2-SVP labels of the forgetting set
OUT = DATA / "outside_forgetting_b3lyp-svp.extxyz"


#: ethanol's atomic numbers (its composition is left out of the set)
ETHANOL = (1, 1, 1, 1, 1, 1, 6, 6, 8)


def forgetting_frames() -> list:
    """The forgetting set of a campaign on ethanol with an H/C/O model."""
    from alloop.system.outside import forgetting_structures, outside_molecules

    return forgetting_structures(outside_molecules([1, 6, 8], exclude=[ETHANOL]))


def outside_force_mae(model) -> float | None:
    """Force MAE (eV/A) of ``model`` against the B3LYP labels of the forgetting set (None if not made yet)."""
    if not OUT.is_file():
        return None
    import ase.io
    import numpy as np

    from alloop.evaluation.metrics import evaluate_model
    from alloop.training.data import FrameDataset

    labelled = ase.io.read(OUT, index=":")
    current = forgetting_frames()
    if len(labelled) != len(current) or any(
        not np.allclose(a.positions, b.positions, atol=1e-6) or list(a.numbers) != list(b.numbers)
        for a, b in zip(labelled, current, strict=True)
    ):
        raise SystemExit(f"{OUT} no longer holds alloop.system.outside's forgetting set: rerun make_outside_labels.py")
    return float(evaluate_model(model, FrameDataset.from_atoms(labelled))["force_mae_eV_per_A"])
