"""A warm-started cycle trains on a bounded, seeded sample of the labels (the newest all in); the bootstrap and the
final retrain train on every label (training.warm_sample_cheap / _expensive). The picks' reference sets of labelled
frames are bounded the same way (selection.reference_frames)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from ase.build import molecule

from alloop.campaign.phases.context import PhaseContext
from alloop.campaign.phases.settings import campaign_settings
from alloop.campaign.phases.train import start_training
from alloop.config import CampaignConfig, load_campaign
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.store.campaign import CampaignStore
from alloop.store.sample import bounded_sample

FIDELITIES = {"cheap": "hf-sto3g", "expensive": {"name": "hf-631g", "method": "hf", "basis": "6-31g"}}
PER_CYCLE = {"cheap": 8, "expensive": 3}  # labels per cycle, cycles -1..4
CAPS = {"cheap": 20, "expensive": 10}


class _Client:
    """What start_training asks of a Dask client: the submitted calls are kept, nothing runs."""

    def __init__(self) -> None:
        self.submitted: list[tuple] = []

    def subscribe_topic(self, topic, handler) -> None:  # noqa: ANN001
        pass

    def submit(self, fn, *args, **kwargs) -> None:  # noqa: ANN001
        self.submitted.append(args)


def _ctx(tmp_path, seed: int = 0, checkpoints: bool = True, reference_frames: int | None = 2000) -> PhaseContext:
    cfg = CampaignConfig.from_dict({
        "system": {"structures": "H2O"}, "fidelities": FIDELITIES, "seed": seed,
        "selection": {"reference_frames": reference_frames},
        "training": {"warm_sample_cheap": CAPS["cheap"], "warm_sample_expensive": CAPS["expensive"]},
        "schedule": {"n_cycles": 6, "bootstrap": {"n_samples": 8, "n_expensive": 3}}})
    settings = campaign_settings(cfg)
    fidelities = {"cheap": cfg.cheap_fidelity, "expensive": cfg.expensive_fidelity}
    store = CampaignStore.create(tmp_path / f"store-{seed}-{checkpoints}-{reference_frames}")
    water, rng = molecule("H2O"), np.random.default_rng(0)
    for cycle in range(-1, 5):
        frames = [water.copy() for _ in range(PER_CYCLE["cheap"])]
        for a in frames:
            a.positions += rng.normal(scale=0.05, size=a.positions.shape)
        ids = store.add_frames(frames, origin="md", cycle=cycle)
        for role, fid in fidelities.items():
            chosen = ids[:PER_CYCLE[role]]
            store.add_labels(fid, chosen, [LabelResult(-1.0, np.zeros((3, 3)), LabelStatus.OK) for _ in chosen])
    if checkpoints:  # what a warm start continues from (the train phase only passes the bytes on)
        for role in ("theta0", "stage2", "model"):
            store.add_checkpoint(b"weights", {"cycle": 3}, role=role)
    store.commit()
    return PhaseContext(settings=settings, store=store, client=_Client(), structures=[water], fidelities=fidelities,
                        slots=1, progress=SimpleNamespace(update=lambda **_: None), log=lambda _: None)


def _request(ctx: PhaseContext, cycle: int):  # noqa: ANN202
    run = start_training(ctx, cycle, None)
    (request,) = ctx.client.submitted[-1]
    return run, request


def test_a_warm_cycle_trains_on_the_newest_labels_and_a_seeded_sample_of_the_older(tmp_path):
    ctx = _ctx(tmp_path)
    run, request = _request(ctx, 4)
    cycles = {role: ctx.store.frame_meta(getattr(request, role).frame_ids)["cycle"] for role in CAPS}
    for role, cap in CAPS.items():
        ids = getattr(request, role).frame_ids
        assert len(ids) == cap and np.all(np.diff(ids) > 0)  # bounded, in frame-id order
        assert np.sum(cycles[role] >= 3) == 2 * PER_CYCLE[role]  # every label of this cycle and the one before
    assert run.n_labels == {"expensive": 18, "cheap": 48}  # what the sample was drawn from
    _, again = _request(ctx, 4)
    np.testing.assert_array_equal(again.cheap.frame_ids, request.cheap.frame_ids)  # seeded
    _, other = _request(_ctx(tmp_path, seed=1), 4)
    assert not np.array_equal(other.cheap.frame_ids, request.cheap.frame_ids)  # by the campaign's seed
    assert set(request.warm) == {"theta0", "stage2", "model"} and request.settings.stage2.max_steps == 900  # warm


@pytest.mark.parametrize("cycle, checkpoints", [(5, True), (0, False)], ids=["final retrain", "no warm start"])
def test_the_final_retrain_and_a_cold_start_train_on_every_label(tmp_path, cycle, checkpoints):
    run, request = _request(_ctx(tmp_path, checkpoints=checkpoints), cycle)
    assert (len(request.expensive), len(request.cheap)) == (18, 48) and request.warm == {}
    assert run.n_labels == {"expensive": 18, "cheap": 48}


@pytest.mark.parametrize("cap", [18, None])
def test_the_picks_measure_distances_from_a_bounded_reference_set(tmp_path, cap):
    ctx = _ctx(tmp_path, reference_frames=cap)
    frames = ctx.reference_frames("cheap", 4)
    ids = [a.info["frame_id"] for a in frames]
    if cap is None:
        assert len(ids) == 48
        return
    assert len(ids) == cap and len(set(ids)) == cap
    assert sum(a.info["cycle"] >= 3 for a in frames) == 2 * PER_CYCLE["cheap"]  # the newest labels all in
    assert [a.info["frame_id"] for a in ctx.reference_frames("cheap", 4)] == ids  # seeded
    assert len(ctx.reference_frames("expensive", 4)) == 18  # all of them: not more than the cap


def test_bounded_sample():
    ids = np.arange(100, 200)
    np.testing.assert_array_equal(bounded_sample(ids, None, 0), np.arange(100))
    np.testing.assert_array_equal(bounded_sample(ids, 100, 0), np.arange(100))
    keep = ids >= 190
    picked = bounded_sample(ids, 30, (0, 5), keep=keep)
    assert picked.size == 30 and set(np.flatnonzero(keep)) <= set(picked) and np.all(np.diff(picked) > 0)
    np.testing.assert_array_equal(picked, bounded_sample(ids, 30, (0, 5), keep=keep))
    assert not np.array_equal(picked, bounded_sample(ids, 30, (0, 6), keep=keep))
    np.testing.assert_array_equal(bounded_sample(ids, 4, 0, keep=keep), np.arange(96, 100))  # the newest marked
    shuffled = np.random.default_rng(1).permutation(100)  # the same frames in another order: the same frames
    again = bounded_sample(ids[shuffled], 30, (0, 5), keep=keep[shuffled])
    assert set(ids[shuffled][again]) == set(ids[picked]) and np.all(np.diff(again) > 0)


def test_the_default_bounds_leave_the_quickstart_every_label():
    cfg = load_campaign(Path(__file__).resolve().parents[3] / "campaigns" / "quickstart.yaml")
    limits = cfg.schedule.max_labels
    assert limits.cheap is not None and limits.expensive is not None
    assert cfg.training.warm_sample_cheap >= limits.cheap and cfg.training.warm_sample_expensive >= limits.expensive
