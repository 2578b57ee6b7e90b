"""The one training path: labelled frames, the stages' settings, a method, a Delta baseline and replay in; trained
models out. ``alloop train`` (:mod:`alloop.commands.train`) and a campaign's training task
(:mod:`alloop.campaign.execution.train_task`) both train through :func:`fit`.

:func:`fit` does, in order:

- Delta learning (``baseline``): the targets of every label set become the reference labels minus the baseline
  (:meth:`LabelSets.minus`), the starting models their learned parts
  (:func:`~alloop.potentials.baseline.learned_part`);
- the method, from the registry :mod:`alloop.training.methods` (its label sets must be given,
  :func:`~alloop.training.methods.check_labels`), by its trainer: ``two-head`` trains a two-head model
  (:func:`~alloop.training.two_head.train_two_head`, in ``two_head_mode``), ``asteroid`` runs
  :func:`~alloop.training.asteroid.train_asteroid` (standard, the ASTEROID stages, score matching);
- replay: the ``replay`` pool of the label sets goes to every supervised run (used when the settings'
  ``replay_fraction`` is > 0);
- the result's models (final, stage 1, stage 2) wrapped back as Delta models (:func:`with_baseline`), so they
  predict reference energies and forces; the metrics stay those of the learned part on the shifted targets, which
  are the Delta model's errors on the reference labels.

The settings come from :func:`alloop.training.recipe.asteroid_settings` on both paths. A caller that trains several
models on the same labels (a campaign: the model, a refit, the committee) subtracts the baseline once
(:meth:`LabelSets.minus`) and passes the shifted sets: :func:`fit` subtracts a baseline only from reference labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from alloop.errors import AlloopError
from alloop.potentials.base import Potential
from alloop.potentials.baseline import Baseline, DeltaPotential, learned_part
from alloop.training.asteroid import train_asteroid
from alloop.training.data import FrameDataset
from alloop.training.methods import check_labels, method_spec
from alloop.training.stages import AsteroidResult, AsteroidSettings, MapFn, ModelFactory, WarmStart
from alloop.training.trainer import Logger
from alloop.training.two_head import train_two_head


@dataclass(frozen=True)
class LabelSets:
    """The frames of one training, by kind: the expensive labels, and the cheap labels, unlabelled frames and replay
    pool when there are some. ``baseline``: the targets of ``expensive`` and ``cheap`` are already the reference
    labels minus this baseline (:meth:`minus`); None: reference labels."""

    expensive: FrameDataset
    cheap: FrameDataset | None = None
    unlabelled: FrameDataset | None = None
    replay: FrameDataset | None = None  # frames labelled by the original model (replay_fraction > 0)
    baseline: Baseline | None = None

    def minus(self, baseline: Baseline | None, log: Logger | None = None,
              trains_on: Sequence[str] = ("expensive", "cheap")) -> LabelSets:
        """The sets whose targets are the reference labels minus ``baseline`` (these sets when ``baseline`` is None or
        already subtracted). The unlabelled frames have no labels and the replay pool is never shifted (replay is
        not offered with a baseline: :func:`fit` refuses it). A cheap set the method does not train on (not in
        ``trains_on``, the method's label sets) is not shifted but loses its labels: its frames stay (the Q-residual
        fit reads their positions), and the baseline is not computed on them."""
        if baseline is None or _same(self.baseline, baseline):
            return self
        if self.baseline is not None:
            raise AlloopError(f"the labels are already minus the baseline {self.baseline.name}, not {baseline.name}")
        expensive, cheap = baseline.subtract(self.expensive), self.cheap
        if cheap is not None:
            cheap = baseline.subtract(cheap) if "cheap" in trains_on else cheap.without_labels()
            if cheap.labelled and _all_zero(cheap):
                raise AlloopError(f"the cheap labels minus the baseline {baseline.name} are zero on every frame (the "
                                  "cheap level is the baseline itself): nothing to train on; train standard, or take "
                                  "another cheap level or no baseline")
        if log:
            n = len(expensive) + (0 if cheap is None or not cheap.labelled else len(cheap))
            log(f"Delta learning: labels minus {baseline.name} ({n} frames, {baseline.seconds:.2f} s)")
        return replace(self, expensive=expensive, cheap=cheap, baseline=baseline)

    def present(self) -> list[str]:
        """The kinds of label set that hold frames (expensive, cheap, unlabelled), as the method registry names
        them (:func:`~alloop.training.methods.check_labels`)."""
        sets = {"expensive": self.expensive, "cheap": self.cheap, "unlabelled": self.unlabelled}
        return [kind for kind, data in sets.items() if data is not None and len(data)]


def _all_zero(data: FrameDataset, tol: float = 1e-6) -> bool:
    """Whether every force of ``data`` and the spread of its per-atom energies are below ``tol`` (eV/A, eV)."""
    energy, forces = data.labels()
    per_atom = energy / data.sizes
    return bool(np.abs(forces).max(initial=0.0) < tol and np.ptp(per_atom) < tol)


def _same(a: Baseline | None, b: Baseline) -> bool:
    return a is not None and (a is b or a.fidelity.hash() == b.fidelity.hash())


def fit(
    method: str,
    labels: LabelSets,
    *,
    model_factory: ModelFactory,
    settings: AsteroidSettings,
    baseline: Baseline | None = None,
    initial_model: Potential | None = None,
    warm: WarmStart | None = None,
    log: Logger | None = None,
    map_fn: MapFn = map,
    two_head_mode: str = "frozen",
) -> AsteroidResult:
    """Train ``method`` (a name of the registry :mod:`alloop.training.methods`) on ``labels`` with ``settings``;
    see the module docstring.

    ``initial_model`` (never modified) is the start of stage 2, score matching, standard training or a two-head
    model; ``warm`` (never modified) the previous cycle's models to continue from (a two-head model continues from
    ``warm.model``). A Delta model given as either starts from its learned part. ``map_fn`` runs ASTEROID's gamma
    candidates (a campaign maps them over its workers). With ``baseline`` the returned models are Delta models.
    """
    spec = check_labels(method, labels.present())
    learned = labels.minus(baseline, log, trains_on=spec.labels)
    _check(method, learned)
    start = None if initial_model is None else learned_part(initial_model)
    warm = _learned_warm(warm)
    if spec.trainer == "two-head":
        result = train_two_head(learned.expensive, learned.cheap, model_factory=model_factory, settings=settings,
                                mode=two_head_mode, initial_model=warm.model if warm.model is not None else start,
                                log=log, replay=learned.replay)
    else:
        result = train_asteroid(method, learned.expensive, learned.cheap, learned.unlabelled,
                                model_factory=model_factory, settings=settings, initial_model=start, log=log,
                                map_fn=map_fn, warm=warm, replay=learned.replay)
    return result if learned.baseline is None else with_baseline(result, learned.baseline)


def _check(method: str, labels: LabelSets) -> None:
    """What no method trains with a baseline: score matching, and replay."""
    if labels.baseline is None:
        return
    if not method_spec(method).delta:
        raise AlloopError("score matching fits the whole model's forces to unlabelled frames; it takes no baseline")
    if labels.replay is not None:
        raise AlloopError("replay is not offered with a baseline (the original model's pseudo-labels have no baseline "
                          "to subtract)")


def _learned_warm(warm: WarmStart | None) -> WarmStart:
    """``warm`` with every model replaced by its learned part (an empty WarmStart for None)."""
    if warm is None:
        return WarmStart()
    def learned(model: Potential | None) -> Potential | None:
        return None if model is None else learned_part(model)

    return WarmStart(stage1=learned(warm.stage1), stage2=learned(warm.stage2), model=learned(warm.model))


def as_delta(model: Potential, baseline: Baseline | None) -> Potential:
    """``model`` plus ``baseline`` as a Delta model (``model`` itself without a baseline or when it is one)."""
    if baseline is None or isinstance(model, DeltaPotential):
        return model
    return DeltaPotential.wrap(model, baseline)


def with_baseline(result: AsteroidResult, baseline: Baseline) -> AsteroidResult:
    """The result's models (final, stage 1, stage 2) as Delta models: the learned part plus ``baseline``; a stage
    model that is the final model (standard training's stage 1) stays the wrapped final model itself."""
    model = as_delta(result.model, baseline)

    def wrap(stage: Potential | None) -> Potential | None:
        return model if stage is result.model else (None if stage is None else as_delta(stage, baseline))

    return replace(result, model=model, bias_model=wrap(result.bias_model), pretrained=wrap(result.pretrained))
