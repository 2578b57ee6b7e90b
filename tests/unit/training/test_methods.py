"""The method registry (alloop.training.methods): one rule for which labels a method needs, asked by the config,
``alloop train``, a campaign's train phase and training task, and the trainers; the CLI and the campaign share one
default method and refuse a method whose labels are missing with the same message."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from ase.build import molecule
from training_synthetic import label_frames, perturbed, truth_potential

from alloop.campaign.execution.train_request import LabelledArrays, TrainRequest
from alloop.campaign.execution.train_task import train_task
from alloop.campaign.phases.context import PhaseContext
from alloop.campaign.phases.settings import campaign_settings
from alloop.campaign.phases.train import start_training
from alloop.cli import build_parser, main
from alloop.config import CampaignConfig, TrainingConfig
from alloop.errors import AlloopError
from alloop.io import write_extxyz
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.store.campaign import CampaignStore
from alloop.training.methods import (
    CAMPAIGN_METHODS,
    DEFAULT_METHOD,
    METHODS,
    check_labels,
    method_spec,
    uses,
)

FIDELITIES = {"cheap": "hf-sto3g", "expensive": {"name": "hf-631g", "method": "hf", "basis": "6-31g"}}


def _message(method: str, present: list[str]) -> str:
    with pytest.raises(AlloopError) as info:
        check_labels(method, present)
    return str(info.value)


def test_the_registry_names_each_methods_labels_and_refuses_what_is_missing():
    assert method_spec("standard").labels == ("expensive",)
    assert uses("asteroid", "cheap") and uses("two-head", "cheap") and not uses("standard", "cheap")
    assert uses("score-matching", "unlabelled") and not method_spec("score-matching").delta
    assert check_labels("asteroid", ["expensive", "cheap"]).trainer == "asteroid"
    assert check_labels("two-head", ["cheap", "expensive"]).trainer == "two-head"
    assert _message("asteroid", ["expensive"]) == (
        "method 'asteroid' needs cheap labelled frames (alloop train --cheap; a campaign's ok labels at "
        "fidelities.cheap), and there are none")
    assert _message("standard", ["cheap"]).startswith("method 'standard' needs expensive labelled frames")
    assert _message("magic", ["expensive"]) == f"unknown method 'magic' (use one of {', '.join(METHODS)})"
    assert "score-matching" not in CAMPAIGN_METHODS and set(CAMPAIGN_METHODS) < set(METHODS)


def test_the_cli_and_a_campaign_default_to_the_same_method():
    args = build_parser().parse_args(["train", "--expensive", "a.extxyz", "-o", "m.safetensors"])
    assert args.method == DEFAULT_METHOD == TrainingConfig().method == "standard"


def test_the_config_accepts_the_campaign_methods_only():
    for name in CAMPAIGN_METHODS:
        assert TrainingConfig(method=name).method == name
    with pytest.raises(ValueError, match="score-matching is not a campaign method"):
        TrainingConfig(method="score-matching")


class _Client:
    """What start_training asks of a Dask client; a submitted task is kept, never run."""

    def __init__(self) -> None:
        self.submitted: list[tuple] = []

    def subscribe_topic(self, topic, handler) -> None:  # noqa: ANN001
        pass

    def submit(self, fn, *args, **kwargs) -> None:  # noqa: ANN001
        self.submitted.append(args)


def _campaign(tmp_path, method: str, cheap_ok: bool) -> PhaseContext:
    """A campaign's train phase on a store with 6 ok expensive labels and 6 cheap ones (failed unless ``cheap_ok``)."""
    cfg = CampaignConfig.from_dict({"system": {"structures": "H2O"}, "fidelities": FIDELITIES,
                                    "training": {"method": method}})
    fidelities = {"cheap": cfg.cheap_fidelity, "expensive": cfg.expensive_fidelity}
    store = CampaignStore.create(tmp_path / f"store-{method}-{cheap_ok}")
    frames = perturbed(["H2O"], 6, seed=0)
    ids = store.add_frames(frames, origin="bootstrap", cycle=-1)
    ok = LabelResult(-1.0, np.zeros((3, 3)), LabelStatus.OK)
    failed = LabelResult.failure(3, LabelStatus.SCF_NOT_CONVERGED, "not converged")
    store.add_labels(fidelities["expensive"], ids, [ok] * len(ids))
    store.add_labels(fidelities["cheap"], ids, [ok if cheap_ok else failed] * len(ids))
    store.commit()
    return PhaseContext(settings=campaign_settings(cfg), store=store, client=_Client(), structures=[molecule("H2O")],
                        fidelities=fidelities, slots=1, progress=SimpleNamespace(update=lambda **_: None),
                        log=lambda _: None)


@pytest.mark.parametrize("method", ["asteroid", "two-head"])
def test_the_cli_and_the_campaign_refuse_a_method_without_its_labels_with_one_message(tmp_path, capsys, method):
    """``alloop train --method M`` without ``--cheap``, a campaign whose store has no ok cheap label (its train phase
    submits nothing) and a training task sent no cheap labels: each stops with the registry's message (before, the
    task trained ``standard`` instead and said so only in its log)."""
    expected = _message(method, ["expensive"])
    data = tmp_path / "exp.extxyz"
    write_extxyz(data, label_frames(perturbed(["H2O"], 6, seed=1), truth_potential()))
    assert main(["train", "--expensive", str(data), "--method", method, "--model", "pair", "-o",
                 str(tmp_path / "m.safetensors")]) == 1
    assert capsys.readouterr().err.strip() == f"alloop train: error: {expected}"

    ctx = _campaign(tmp_path, method, cheap_ok=False)
    with pytest.raises(AlloopError) as campaign:
        start_training(ctx, -1, None)
    assert str(campaign.value) == expected and ctx.client.submitted == []
    assert start_training(_campaign(tmp_path, method, cheap_ok=True), -1, None).cheap.frame_ids.size == 6

    request = _request(ctx, method)
    with pytest.raises(AlloopError) as task:
        train_task(request)
    assert str(task.value) == expected


def _request(ctx: PhaseContext, method: str) -> TrainRequest:
    """A training task's request with 6 expensive labels and no cheap ones."""
    frames = label_frames(perturbed(["H2O"], 6, seed=2), truth_potential())
    expensive = LabelledArrays(np.arange(6), [a.numbers for a in frames], [a.positions for a in frames],
                               np.array([a.get_potential_energy() for a in frames]),
                               [a.get_forces() for a in frames], fidelity="exp")
    plan = ctx.settings.training
    return TrainRequest(method=method, architecture="pair", elements=[1, 8], hyperparameters={}, expensive=expensive,
                        cheap=None, unlabelled=None, settings=plan.stages(0, warm=False),
                        uq_settings=plan.uncertainty, initial_model=None, warm={}, threads=1, metadata={})
