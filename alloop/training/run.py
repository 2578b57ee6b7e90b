"""Glue for ``alloop train`` / ``alloop evaluate``: datasets from files, checkpoint metadata, summaries (the
settings come from :mod:`alloop.training.recipe`).

Fidelity tags: frames written by ``alloop label`` carry ``fidelity_hash`` in their
info; a file's tag is that hash (one per file: a file that mixes fidelities is
refused) or, without it, the file's role (``expensive``, ``cheap``). Energy
references in checkpoints are keyed by this tag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from alloop.errors import AlloopError
from alloop.io import read_labelled, read_structures
from alloop.potentials.base import Potential
from alloop.training.data import FrameDataset
from alloop.training.stages import AsteroidResult, AsteroidSettings
from alloop.training.trainer import TrainResult


def fidelity_tag(structures: Sequence[Atoms], role: str, source: str | Path = "") -> str:
    """The one ``fidelity_hash`` of a file's frames, or ``role`` if they carry none."""
    hashes = {a.info.get("fidelity_hash") for a in structures}
    if hashes == {None}:
        return role
    if None in hashes or len(hashes) > 1:
        shown = ", ".join(sorted(str(h) for h in hashes))
        raise AlloopError(f"{source or role}: frames of several fidelities ({shown}); a training set carries one fidelity")
    return str(hashes.pop())


def fidelity_name(path: str | Path) -> str | None:
    """The ``fidelity`` (preset name) that ``alloop label`` recorded in a file's first frame, if any."""
    name = read_structures(path, index="0")[0].info.get("fidelity")
    return str(name) if name else None


def load_dataset(path: str | Path, role: str, labelled: bool = True, weight_key: str | None = None) -> FrameDataset:
    """A FrameDataset from an extxyz (or any ASE-readable) file; labelled files need energy and forces.
    ``weight_key``: each frame's loss weight from its ``info[weight_key]`` (see :func:`frame_weights`)."""
    structures = read_labelled(path) if labelled else read_structures(path)
    weight = None if weight_key is None else frame_weights(structures, weight_key, path)
    return FrameDataset.from_atoms(structures, fidelity=fidelity_tag(structures, role, path), labelled=labelled,
                                   weight=weight)


def frame_weights(structures: Sequence[Atoms], key: str, source: str | Path = "") -> np.ndarray:
    """Per-frame loss weights from ``info[key]``: finite, non-negative, not all zero; AlloopError naming the first
    frame without one or with a bad one."""
    weights = np.empty(len(structures))
    for k, atoms in enumerate(structures):
        value = atoms.info.get(key)
        try:
            weights[k] = float(value)
        except (TypeError, ValueError):
            raise AlloopError(f"{source}: frame {k} has no number under '{key}' (got {value!r}); every frame needs "
                              "its weight") from None
        if not np.isfinite(weights[k]) or weights[k] < 0:
            raise AlloopError(f"{source}: frame {k}'s weight '{key}' is {weights[k]}: weights are finite and >= 0")
    if len(weights) and weights.sum() <= 0:
        raise AlloopError(f"{source}: every frame's weight '{key}' is 0")
    return weights


def replay_pool(original: Potential, datasets: Sequence[FrameDataset], seed: int) -> FrameDataset:
    """Replay frames (:mod:`alloop.system.outside`, outside the datasets' compositions) labelled by ``original``."""
    from alloop.system.outside import outside_molecules, replay_structures
    from alloop.training.metrics import pseudo_labelled

    compositions = {tuple(sorted(d.numbers[d.frame_slice(k)].tolist())) for d in datasets for k in range(len(d))}
    molecules = outside_molecules(original.elements, exclude=compositions)
    return pseudo_labelled(original, replay_structures(molecules, seed))


def _stage_summary(stage: Any) -> dict[str, Any]:
    if isinstance(stage, TrainResult):
        return {"best_epoch": stage.best_epoch, "epochs_run": stage.epochs_run,
                "best_val_force_mae_eV_per_A": stage.best_val_force_mae,
                "best_val_energy_mae_eV": stage.best_val_energy_mae, "stopped_early": stage.stopped_early,
                "rollbacks": stage.rollbacks, "restarts": stage.restarts, "seconds": round(stage.seconds, 2)}
    return {"best_epoch": stage.best_epoch, "epochs_run": stage.epochs_run,
            "best_val_score_matching_loss": stage.best_val_loss, "seconds": round(stage.seconds, 2)}


def checkpoint_metadata(result: AsteroidResult, settings: AsteroidSettings, sources: dict[str, Any],
                        fidelity: str) -> dict[str, Any]:
    """JSON-serialisable metadata for the trained model's checkpoint (references under ``energy_references``)."""
    meta: dict[str, Any] = {
        "method": result.method,
        "fidelity": fidelity,
        "metrics": result.metrics,
        "energy_references": {tag: {str(z): e for z, e in refs.items()} for tag, refs in result.references.items()},
        "stages": {name: _stage_summary(stage) for name, stage in result.stages.items()},
        "sources": sources,
        "settings": _jsonable(asdict(settings)),
    }
    if result.bias is not None:
        b = result.bias
        meta["bias"] = {"gamma_eV_per_A": result.gamma, "median_eV_per_A": float(np.median(b)),
                        "min_eV_per_A": float(b.min()), "max_eV_per_A": float(b.max()),
                        "gamma_scores": {f"{g:.6g}": v for g, v in result.gamma_scores.items()}}
    return meta


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def summary_lines(result: AsteroidResult, n_frames: dict[str, int], holdout: bool = True) -> list[str]:
    """The final human-readable summary of a training run (``holdout`` off: a refit, its errors on training frames)."""
    lines = [f"method {result.method}: " + ", ".join(f"{n} {role} frames" for role, n in n_frames.items())]
    for name, stage in result.stages.items():
        s = _stage_summary(stage)
        if "best_val_force_mae_eV_per_A" in s:
            lines.append(f"  {name}: best epoch {s['best_epoch']} of {s['epochs_run']}, "
                         f"val force MAE {s['best_val_force_mae_eV_per_A']:.4f} eV/A ({s['seconds']:.1f} s)")
        else:
            lines.append(f"  {name}: best epoch {s['best_epoch']} of {s['epochs_run']}, "
                         f"val score-matching loss {s['best_val_score_matching_loss']:.4g} (eV/A)^2 ({s['seconds']:.1f} s)")
    if result.gamma is not None and result.bias is not None and result.weights is not None:  # the asteroid method
        lines.append(f"  gamma {result.gamma:.4g} eV/A; bias B median {np.median(result.bias):.4f} eV/A, "
                     f"weights {result.weights.min():.3g}..{result.weights.max():.3g}")
    m = result.metrics
    scored = "expensive validation" if holdout else "expensive training frames, no holdout"
    lines.append(f"{scored} ({m['n_frames']} frames): force MAE {m['force_mae_eV_per_A']:.4f} eV/A, "
                 f"force RMSE {m['force_rmse_eV_per_A']:.4f} eV/A, energy MAE {m['energy_mae_eV']:.4f} eV "
                 f"({1000 * m['energy_mae_per_atom_eV']:.2f} meV/atom)")
    return lines
