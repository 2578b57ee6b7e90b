"""The training methods: each one's name, the label sets it trains on, its trainer and whether a campaign runs it.

The one home of the rule "which labels does a method need": the campaign config (``training.method``),
``alloop train --method``, a campaign's training (the train phase before it submits the task, and the task itself)
and :func:`alloop.training.fit.fit` all ask :func:`check_labels`, so a method whose labels are missing is refused
with the same one-line message everywhere, never trained as another method.

Plain data, importing nothing of alloop but its errors: the config (a floor below ``training/``) reads it too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from alloop.errors import AlloopError

STANDARD = "standard"
ASTEROID = "asteroid"
ASTEROID_NO_WEIGHTS = "asteroid-no-weights"
SCORE_MATCHING = "score-matching"
TWO_HEAD = "two-head"

#: the label sets a method can train on, and where each comes from (the same words for ``alloop train`` and a
#: campaign, whose training gets the store's labels with status ok at each fidelity)
LABEL_SOURCES = {
    "expensive": "expensive labelled frames (alloop train --expensive; a campaign's ok labels at fidelities.expensive)",
    "cheap": "cheap labelled frames (alloop train --cheap; a campaign's ok labels at fidelities.cheap)",
    "unlabelled": "unlabelled Boltzmann samples of a reference surface (alloop train --unlabelled; no campaign has "
                  "them)",
}


@dataclass(frozen=True)
class Method:
    """A training method: ``labels``, the label sets it trains on (every one required); ``trainer``, the function
    of :func:`alloop.training.fit.fit` that trains it (``asteroid``: a stage plan of
    :func:`alloop.training.asteroid.train_asteroid`; ``two-head``: :func:`alloop.training.two_head.train_two_head`);
    ``delta``, whether it trains a Delta model (the learned part on labels minus a baseline); ``not_in_campaign``,
    why a campaign refuses it (None: a campaign method)."""

    name: str
    labels: tuple[str, ...]
    trainer: Literal["asteroid", "two-head"]
    summary: str
    delta: bool = True
    not_in_campaign: str | None = None


METHODS: dict[str, Method] = {m.name: m for m in (
    Method(STANDARD, ("expensive",), "asteroid", "a model trained on the expensive labels only"),
    Method(ASTEROID, ("expensive", "cheap"), "asteroid",
           "stage 1 on expensive labels (theta_0), stage 2 on cheap labels weighted by exp(-B/gamma), stage 3 "
           "fine-tuning on expensive labels"),
    Method(ASTEROID_NO_WEIGHTS, ("expensive", "cheap"), "asteroid",
           "stages 2 (cheap labels, weight 1) and 3 (expensive labels): no stage 1"),
    Method(SCORE_MATCHING, ("expensive", "unlabelled"), "asteroid",
           "sliced score matching on unlabelled frames in place of stages 1-2, then stage 3",
           delta=False,  # it fits the whole model's forces to unlabelled frames: no labels to subtract from
           not_in_campaign="the campaign's MD frames are Boltzmann samples of the model being trained, not of the "
           "reference surface, so they carry no information about it; use asteroid or standard here, and `alloop "
           "train --method score-matching --unlabelled FRAMES` with Boltzmann samples of a reference surface"),
    Method(TWO_HEAD, ("expensive", "cheap"), "two-head",
           "one representation, a cheap and an expensive energy head (the model `alloop refine` refines)"),
)}
#: the method of a campaign whose file names none, and of ``alloop train`` without ``--method``: the measured best on
#: a GFN-xTB baseline (docs/training.md)
DEFAULT_METHOD = STANDARD
#: the names a campaign accepts (``training.method``), in registry order
CAMPAIGN_METHODS = tuple(name for name, m in METHODS.items() if m.not_in_campaign is None)


def method_spec(name: str) -> Method:
    """The registered method ``name``; AlloopError naming the known ones for any other."""
    try:
        return METHODS[name]
    except KeyError:
        raise AlloopError(f"unknown method '{name}' (use one of {', '.join(METHODS)})") from None


def campaign_method(name: str) -> Method:
    """:func:`method_spec`, refused (AlloopError with the reason) when a campaign cannot train it."""
    found = method_spec(name)
    if found.not_in_campaign is not None:
        raise AlloopError(f"{name} is not a campaign method: {found.not_in_campaign}")
    return found


def uses(name: str, labels: str) -> bool:
    """Whether method ``name`` trains on the label set ``labels`` (expensive, cheap, unlabelled)."""
    return labels in method_spec(name).labels


def check_labels(name: str, present: Iterable[str]) -> Method:
    """The method ``name`` when every label set it needs is in ``present`` (the non-empty sets at hand); else
    AlloopError: ``method 'M' needs S and has none: <where they come from>`` for the first missing set."""
    found = method_spec(name)
    have = set(present)
    for labels in found.labels:
        if labels not in have:
            raise AlloopError(f"method '{name}' needs {LABEL_SOURCES[labels]}, and there are none")
    return found
