"""Delta models: E = E_baseline + E_ML, one Potential whose learned part fits the reference minus a baseline.

A :class:`Baseline` is a cheap physical model computed by a labeller (GFN1- or GFN2-xTB through tblite:
milliseconds per small molecule; the ``xtb`` family of :mod:`alloop.fidelity`): energies (eV) and forces
(eV/Angstrom) of whole structures, no gradients through it. A :class:`DeltaPotential` (``registry_name =
"delta"``) wraps a learned model (``inner``, any registered architecture but another Delta model) and adds
the baseline's energy and forces to every prediction, so MD, scoring, uncertainty and the calculator see one
Potential (DESIGN.md: "a baseline is part of a potential"). Features, ``atomic_energies`` and
``output_scale`` are the inner model's (per-element references of the reference-minus-baseline energies).

Training never sees the wrapper: the trainer fits ``inner`` on targets with the baseline subtracted
(:meth:`Baseline.subtract`), and the result is wrapped again (:meth:`DeltaPotential.wrap`). A force or
energy error of the wrapped model on reference labels equals the inner model's error on the shifted
targets, so every metric means the same with and without a baseline.

A structure the baseline cannot compute (tblite fails, SCC not converged) gets NaN energy and forces in a
prediction (the MD guards stop such a replica: non-finite forces) and stops :meth:`Baseline.subtract` with
an :class:`~alloop.errors.AlloopError` naming the frame. Checkpoints hold the baseline's whole fidelity (not
only its preset's name), so a model is rebuilt with the baseline it was trained with.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import numpy as np
import torch
from ase import Atoms

from alloop.errors import AlloopError
from alloop.fidelity import Fidelity, load_fidelity
from alloop.potentials.base import AtomsBatch, Potential, PotentialOutput, model_dtype

#: fidelity families that can be a baseline (cheap enough to run at every MD step)
BASELINE_FAMILIES = ("xtb",)


def baseline_fidelity(spec: str | Mapping[str, Any] | Fidelity) -> Fidelity:
    """The fidelity of a baseline (a preset name, a mapping or a Fidelity); AlloopError unless it is GFN-xTB."""
    fidelity = spec if isinstance(spec, Fidelity) else load_fidelity(dict(spec) if isinstance(spec, Mapping) else spec)
    if fidelity.family not in BASELINE_FAMILIES:
        raise AlloopError(f"a baseline must be a GFN-xTB fidelity (gfn1-xtb, gfn2-xtb): '{fidelity.name}' is "
                          f"{fidelity.family} (too slow to run at every MD step)")
    return fidelity


class Baseline:
    """Energies and forces of ``fidelity`` (GFN-xTB) for whole structures, with ``threads`` OpenMP threads.

    ``seconds``, ``structures`` and ``scc_cycles`` count the wall time spent, the structures computed and tblite's
    SCC iterations over them, for cost reports.
    """

    def __init__(self, fidelity: str | Mapping[str, Any] | Fidelity, threads: int = 1) -> None:
        from alloop.labeling.factory import labeler_for
        from alloop.labeling.xtb_labeler import XTBLabeler

        self.fidelity = baseline_fidelity(fidelity)
        labeler = labeler_for(self.fidelity, threads=threads)
        if not isinstance(labeler, XTBLabeler):
            raise AlloopError(f"baseline {self.fidelity.name}: no GFN-xTB labeller for it")
        self._labeler = labeler
        self._warm: dict[int, Any] | None = None  # tblite states by batch slot inside :meth:`warm`
        self._first_slot = 0  # the slot of a call's first structure (:meth:`slots_from`)
        self.seconds = 0.0
        self.structures = 0
        self.scc_cycles = 0

    @contextmanager
    def warm(self) -> Iterator[None]:
        """Inside the block, structure k of each call continues the tblite calculator and wavefunction of
        structure k of the previous call (an MD segment's replicas, step after step: fewer SCC cycles, no basis
        rebuilt; the same answer within tblite's accuracy). Outside it, every structure starts afresh; a new
        block starts afresh too, so a segment's result does not depend on the segments before it."""
        if self._warm is not None:  # nested: the outer block keeps the states
            yield
            return
        self._warm = {}
        try:
            yield
        finally:
            self._warm = None

    @contextmanager
    def slots_from(self, first: int) -> Iterator[None]:
        """Inside the block, structure k of a call takes warm slot ``first + k`` (a call for a group of replicas
        that does not start at the first one)."""
        previous, self._first_slot = self._first_slot, int(first)
        try:
            yield
        finally:
            self._first_slot = previous

    @property
    def name(self) -> str:
        return str(self.fidelity.name or self.fidelity.method)

    def compute(self, structures: Sequence[Atoms]) -> tuple[np.ndarray, list[np.ndarray], list[str]]:
        """Energies [M] (eV; NaN where it failed), forces per structure (eV/A; NaN rows where it failed) and the
        failure reasons ('' where it worked)."""
        start = time.perf_counter()
        energies, forces, reasons = np.full(len(structures), np.nan), [], []
        for k, atoms in enumerate(structures):
            slot = self._first_slot + k
            result = self._labeler.label(atoms) if self._warm is None else self._labeler.label_warm(atoms, self._warm, slot)
            self.scc_cycles += result.scf_cycles
            if result.ok:
                energies[k] = result.energy_eV
                forces.append(np.asarray(result.forces_eV_per_A, dtype=np.float64))
                reasons.append("")
            else:
                forces.append(np.full((len(atoms), 3), np.nan))
                reasons.append(f"{result.status.value}: {result.reason}")
        self.seconds += time.perf_counter() - start
        self.structures += len(structures)
        return energies, forces, reasons

    def on_batch(self, batch: AtomsBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Energies [B] and forces [N, 3] of a batch, in the batch's dtype and device (NaN where it failed)."""
        energies, forces, _ = self.compute(batch.to_atoms())
        like = batch.positions
        return (torch.as_tensor(energies, dtype=like.dtype, device=like.device),
                torch.as_tensor(np.concatenate(forces), dtype=like.dtype, device=like.device))

    def subtract(self, dataset: Any) -> Any:
        """A copy of a labelled :class:`~alloop.training.data.FrameDataset` whose targets are reference minus
        baseline (the learned part's targets); AlloopError naming the first frame the baseline cannot compute."""
        if dataset is None or dataset.energy is None:
            return dataset
        structures = dataset.to_atoms()
        energies, forces, reasons = self.compute(structures)
        for k, reason in enumerate(reasons):
            if reason:
                raise AlloopError(f"baseline {self.name} failed on frame {k} of the {dataset.fidelity or 'training'} "
                                  f"labels ({reason}): a Delta model cannot be trained on it")
        return dataset.with_targets(dataset.energy - energies, dataset.forces - np.concatenate(forces))


class DeltaPotential(Potential):
    """``inner`` (a learned model) plus a GFN-xTB ``baseline``; see the module docstring.

    Args:
        elements: atomic numbers the model knows.
        inner: ``{"architecture": registry name, "hyperparameters": {...}}`` of the learned part.
        baseline: the baseline's fidelity (a preset name, a mapping as in a checkpoint, or a Fidelity).
        cutoff: must equal the inner model's if given.
    """

    registry_name = "delta"
    float64_buffers = ()  # atomic_energies and output_scale are the learned part's (properties below)

    def __init__(self, elements: Sequence[int], inner: Mapping[str, Any], baseline: str | Mapping[str, Any] | Fidelity,
                 cutoff: float | None = None) -> None:
        from alloop.potentials.registry import model_class

        if not isinstance(inner, Mapping) or "architecture" not in inner:
            raise ValueError("inner must be {'architecture': name, 'hyperparameters': {...}}")
        architecture = str(inner["architecture"])
        if architecture == self.registry_name:
            raise ValueError("the learned part of a Delta model cannot itself be a Delta model")
        hparams = dict(inner.get("hyperparameters") or {})
        hparams.pop("elements", None)
        net = model_class(architecture)(elements, **hparams)
        super().__init__(net.elements, net.cutoff)
        if cutoff is not None and float(cutoff) != net.cutoff:
            raise ValueError(f"cutoff {cutoff} differs from the learned model's {net.cutoff} A")
        del self._buffers["atomic_energies"], self._buffers["output_scale"]  # the learned part's are the model's
        self.inner = net
        # tblite's calls pin every loaded OpenMP runtime (torch's too) to the baseline's threads: keep torch's count
        self.baseline = Baseline(baseline, threads=max(1, torch.get_num_threads()))
        self.learns_output_scale = net.learns_output_scale

    @property
    def atomic_energies(self) -> torch.Tensor:
        """The learned part's per-element reference energies (of the reference-minus-baseline targets)."""
        return self.inner.atomic_energies

    @atomic_energies.setter
    def atomic_energies(self, value: torch.Tensor) -> None:
        self.inner.atomic_energies = value

    @property
    def output_scale(self) -> torch.Tensor:
        return self.inner.output_scale

    @output_scale.setter
    def output_scale(self, value: torch.Tensor) -> None:
        self.inner.output_scale = value

    @classmethod
    def wrap(cls, model: Potential, baseline: str | Mapping[str, Any] | Fidelity | Baseline) -> DeltaPotential:
        """A Delta model whose learned part is (a copy of the weights of) ``model``; ``model`` is not changed."""
        from alloop.potentials.registry import cast_model

        if isinstance(model, DeltaPotential):
            raise ValueError("the model already has a baseline")
        fidelity = baseline.fidelity if isinstance(baseline, Baseline) else baseline_fidelity(baseline)
        inner = {"architecture": model.registry_name, "hyperparameters": model.hyperparameters()}
        delta = cast_model(cls(model.elements, inner=inner, baseline=fidelity), model_dtype(model))
        delta.inner.load_state_dict(model.state_dict())
        return delta

    def energy_and_features(self, batch: AtomsBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The learned part's residual energy and features (without the baseline, which has no autograd graph):
        :meth:`forward` is what adds the baseline."""
        return self.inner.energy_and_features(batch)

    def last_layer_features(self, batch: AtomsBatch) -> torch.Tensor:
        """The learned part's last-layer features (the baseline has no trained layer)."""
        return self.inner.last_layer_features(batch)

    def hyperparameters(self) -> dict[str, Any]:
        return {"inner": {"architecture": self.inner.registry_name, "hyperparameters": self.inner.hyperparameters()},
                "baseline": self.baseline.fidelity.model_dump(mode="json")}

    @property
    def feature_dim(self) -> int:
        return self.inner.feature_dim

    def forward(self, batch: AtomsBatch, *, compute_forces: bool = True, create_graph: bool = False) -> PotentialOutput:
        """The learned part's output plus the baseline's energies and forces (constants for autograd)."""
        out = self.inner(batch, compute_forces=compute_forces, create_graph=create_graph)
        energy, forces = self.baseline.on_batch(batch)
        return PotentialOutput(energy=out.energy + energy.to(out.energy.dtype),
                               forces=None if out.forces is None else out.forces + forces.to(out.forces.dtype),
                               features=out.features)


def warm_baseline(model: Potential) -> AbstractContextManager[None]:
    """:meth:`Baseline.warm` of a Delta model's baseline (a block that does nothing for other models)."""
    return model.baseline.warm() if isinstance(model, DeltaPotential) else nullcontext()


def baseline_slots_from(model: Potential, first: int) -> AbstractContextManager[None]:
    """:meth:`Baseline.slots_from` of a Delta model's baseline (a block that does nothing for other models)."""
    return model.baseline.slots_from(first) if isinstance(model, DeltaPotential) else nullcontext()


def baseline_seconds(model: Potential) -> float:
    """Wall seconds a Delta model's baseline has spent so far (0 for other models): a difference of two readings
    is the baseline's share of the model calls between them."""
    return model.baseline.seconds if isinstance(model, DeltaPotential) else 0.0


def learned_part(model: Potential) -> Potential:
    """The model a trainer fits: a Delta model's inner model, any other model itself."""
    return model.inner if isinstance(model, DeltaPotential) else model
