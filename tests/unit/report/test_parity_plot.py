"""``parity.png`` predicts at most PARITY_FRAMES expensive labels: beyond, a seeded sample (a long campaign's
thousand labels would make the model's inference most of the report's time)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule

from alloop.fidelity import load_fidelity
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.potentials import inference
from alloop.potentials.checkpoint import checkpoint_to_bytes
from alloop.potentials.pair import PairPotential
from alloop.report import plots
from alloop.store import CampaignStore


@pytest.fixture()
def store(tmp_path):
    expensive = load_fidelity("mp2-dz")
    water, rng = molecule("H2O"), np.random.default_rng(0)
    frames = [water.copy() for _ in range(12)]
    for a in frames:
        a.positions += rng.normal(scale=0.05, size=a.positions.shape)
    with CampaignStore.create(tmp_path / "store", {}) as writer:
        ids = writer.add_frames(frames, origin="md", cycle=0)
        writer.add_labels(expensive, ids, [LabelResult(-1.0, rng.normal(size=(3, 3)), LabelStatus.OK) for _ in ids])
        writer.add_checkpoint(checkpoint_to_bytes(PairPotential([1, 8], seed=1), {}), {}, role="model")
        writer.commit()
    with CampaignStore.open(tmp_path / "store") as reader:
        yield reader, expensive.hash()


@pytest.mark.parametrize("cap, predicted", [(5, 5), (50, 12)])
def test_parity_predicts_a_bounded_seeded_sample(store, tmp_path, monkeypatch, cap, predicted):
    reader, expensive = store
    seen: list[int] = []
    original = inference.predict

    def counting(model, frames, *args, **kwargs):  # noqa: ANN001, ANN202
        seen.append(len(frames))
        return original(model, frames, *args, **kwargs)

    monkeypatch.setattr(inference, "predict", counting)
    monkeypatch.setattr(plots, "PARITY_FRAMES", cap)
    assert plots.plot_parity(reader, expensive, tmp_path / "a.png") is not None
    assert plots.plot_parity(reader, expensive, tmp_path / "b.png") is not None
    assert seen == [predicted, predicted]
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()  # the same sample each time
