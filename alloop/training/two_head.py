"""Training two-head models: cheap labels for the representation, one energy head per fidelity.

:func:`train_two_head` (``alloop train --method two-head``) trains a
:class:`~alloop.potentials.two_head.TwoHeadPotential` on a cheap and an
expensive labelled set, in one of :data:`TWO_HEAD_MODES`:

- ``frozen`` (default; the recipe of the distribution-shifts paper, METHODS.md
  section 3): stage ``cheap`` trains the representation and the cheap head on
  the cheap labels (stage-2 settings, cheap references); the expensive head
  then starts as a copy of the trained cheap head, and stage ``expensive``
  trains only it on the expensive labels (stage-3 settings), the
  representation and the cheap head frozen (checked bit-identical afterwards).
- ``joint``: one run (stage-2 settings) trains the representation and both
  heads: every optimiser step adds the cheap head's Eq. 1 loss on a cheap batch
  to the expensive head's loss on an expensive batch (weight 1 each); the
  guard, the EMA and the final weights follow the expensive validation split,
  as in any run. Each head's references are fitted on its own fidelity.

Splits are those of ASTEROID (same ``split_key``); the reported metrics are the
expensive head's errors on the expensive validation split. The model starts
fresh from ``model_factory``, or from ``initial_model`` (a single-head model
becomes two heads that copy its readout; a two-head model is copied).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from alloop.errors import AlloopError
from alloop.evaluation.metrics import evaluate_model
from alloop.potentials.base import Potential, model_dtype
from alloop.potentials.copying import exact_deepcopy
from alloop.potentials.two_head import TwoHeadPotential
from alloop.training.data import FrameDataset, LabelledBatch
from alloop.training.loss import eq1_loss
from alloop.training.methods import TWO_HEAD, check_labels
from alloop.training.references import apply_references, refit_references
from alloop.training.stages import AsteroidResult, AsteroidSettings, ModelFactory
from alloop.training.trainer import Logger, TrainResult, TrainSettings, fit_output_scale, parameter_fingerprint, train

TWO_HEAD_MODES = ("frozen", "joint")
#: seed offset of the cheap batches' order in joint training (apart from the expensive batches' seeds)
_CHEAP_STREAM = 500_009


class CheapHeadLoss:
    """The cheap head's Eq. 1 loss on the next batch of ``data`` (seeded passes), for joint training."""

    def __init__(self, data: FrameDataset, settings: TrainSettings, head: str = "cheap") -> None:
        self.data, self.s, self.head = data, settings, head
        self.mean_weight = float(data.weight.mean())
        self.passes = 0
        self._batches: list[LabelledBatch] = []

    def _next(self, dtype: torch.dtype) -> LabelledBatch:
        if not self._batches:
            self.passes += 1
            seed = self.s.seed * 1_000_003 + _CHEAP_STREAM + self.passes
            self._batches = list(self.data.batches(self.s.batch_size, dtype=dtype, shuffle=True, seed=seed))[::-1]
        return self._batches.pop()

    def __call__(self, model: Potential) -> torch.Tensor:
        assert isinstance(model, TwoHeadPotential)  # joint training runs on a two-head model
        batch = self._next(model_dtype(model))
        with model.using_head(self.head):
            out = model(batch.atoms, compute_forces=True, create_graph=True)
        assert out.forces is not None  # compute_forces
        energy, forces = batch.targets()
        return eq1_loss(
            out.energy, out.forces, energy, forces, batch.atoms.batch, batch.n_atoms,
            weight=batch.weight, energy_weight=self.s.energy_weight, kind=self.s.loss,
            normalizer=batch.weight.numel() * self.mean_weight,
        )


def _start(initial: Potential | None, factory: ModelFactory | None, seed: int, data: FrameDataset) -> TwoHeadPotential:
    """A copy of a two-head ``initial``, two heads on a single-head one, or a fresh model (output scale from ``data``)."""
    try:
        return _two_heads(initial, factory, seed, data)
    except ValueError as exc:  # an architecture without a representation/head split
        raise AlloopError(str(exc)) from None


def _two_heads(initial: Potential | None, factory: ModelFactory | None, seed: int, data: FrameDataset) -> TwoHeadPotential:
    if isinstance(initial, TwoHeadPotential):
        missing = {"cheap", "expensive"} - set(initial.head_names)
        if missing:
            raise AlloopError(f"the initial model has no head {', '.join(sorted(missing))} "
                              f"(it has {', '.join(initial.head_names)})")
        return exact_deepcopy(initial)
    if initial is not None:
        return TwoHeadPotential.from_model(initial)
    if factory is None:
        raise AlloopError("a model_factory or an initial model is needed")
    torch.manual_seed(seed)
    model = TwoHeadPotential.from_model(factory())
    fit_output_scale(model, data)
    return model


def _frozen_parts(model: TwoHeadPotential) -> str:
    """Fingerprint of what the expensive stage must not change: the representation and the cheap head."""
    return parameter_fingerprint(model.body) + parameter_fingerprint(model.heads["cheap"])


def _check(mode: str, expensive: FrameDataset, cheap: FrameDataset | None) -> FrameDataset:
    if mode not in TWO_HEAD_MODES:
        raise AlloopError(f"unknown two-head mode '{mode}' (use {' or '.join(TWO_HEAD_MODES)})")
    check_labels(TWO_HEAD, [kind for kind, data in (("expensive", expensive), ("cheap", cheap))
                            if data is not None and len(data)])
    assert cheap is not None  # check_labels: two-head trains on cheap labels
    if not (expensive.labelled and cheap.labelled):
        raise AlloopError("two-head training needs energies and forces in both sets")
    if cheap.fidelity == expensive.fidelity:
        raise AlloopError(f"the cheap and expensive sets carry the same fidelity '{cheap.fidelity}'")
    return cheap


def train_two_head(
    expensive: FrameDataset,
    cheap: FrameDataset | None,
    model_factory: ModelFactory | None = None,
    *,
    settings: AsteroidSettings,
    mode: str = "frozen",
    initial_model: Potential | None = None,
    log: Logger | None = None,
    replay: FrameDataset | None = None,
) -> AsteroidResult:
    """Train a two-head model in ``mode``; see the module docstring. ``initial_model`` is never modified."""
    cheap = _check(mode, expensive, cheap)
    s = settings
    exp_train, exp_val, exp_tr_idx, exp_va_idx = s.split_expensive(expensive)
    cheap_train, cheap_val, ch_tr_idx, ch_va_idx = s.split(cheap)
    splits = {"expensive_train": exp_tr_idx, "expensive_val": exp_va_idx, "cheap_train": ch_tr_idx, "cheap_val": ch_va_idx}
    model = _start(initial_model, model_factory, s.seed + 2, cheap_train)
    model.record_fidelity("cheap", cheap.fidelity)
    model.record_fidelity("expensive", expensive.fidelity)
    stages: dict[str, TrainResult] = {}
    fingerprints: dict[str, str] = {}
    if mode == "frozen":
        model.use_head("cheap")
        with model.train_only(representation=True, heads=["cheap"]):
            stages["cheap"] = train(model, cheap_train, cheap_val, replace(s.stage2, seed=s.seed + 2), log=log,
                                    tag="cheap", replay=replay)
        model.copy_head("cheap", "expensive")
        model.use_head("expensive")
        fingerprints["frozen"] = _frozen_parts(model)
        with model.train_only(representation=False, heads=["expensive"]):
            stages["expensive"] = train(model, exp_train, exp_val, replace(s.stage3, seed=s.seed + 3), log=log,
                                        tag="expensive", replay=replay)
        if _frozen_parts(model) != fingerprints["frozen"]:
            raise RuntimeError("the expensive-head stage changed the frozen representation or the cheap head")
    else:
        joint = replace(s.stage2, seed=s.seed + 2)
        with model.using_head("cheap"):
            apply_references(model, {})
            refit_references(model, cheap_train, batch_size=joint.eval_batch_size)
        model.use_head("expensive")
        stages["joint"] = train(model, exp_train, exp_val, joint, log=log, tag="joint", replay=replay,
                                auxiliary=CheapHeadLoss(cheap_train, joint))
        with model.using_head("cheap"):
            refit_references(model, cheap_train, batch_size=joint.eval_batch_size)
    with model.using_head("cheap"):
        cheap_metrics = evaluate_model(model, cheap_val)
    if log:
        log(f"cheap head on the cheap validation split: force MAE {cheap_metrics['force_mae_eV_per_A']:.4f} eV/A")
    references = {cheap.fidelity: model.head_references("cheap"), expensive.fidelity: model.head_references("expensive")}
    metrics = {**evaluate_model(model, exp_val), "cheap_head": cheap_metrics}
    return AsteroidResult(TWO_HEAD, model, metrics, dict(stages), references=references, splits=splits,
                          fingerprints=fingerprints)
