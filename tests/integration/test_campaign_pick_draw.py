"""The expensive pick's variants in a real campaign: drawn picks (selection.pick_beta, seeded by the campaign seed and
the cycle), information density (selection.density_weight) and LCMD (selection.expensive_pick: lcmd)."""

from __future__ import annotations

from pathlib import Path

from alloop.campaign.loop.runner import start_campaign
from alloop.config import load_campaign
from alloop.store import tables
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path

WATER = """
name: draw
seed: 5
system: {structures: H2O}
fidelities: {cheap: gfn2-xtb, expensive: hf-sto3g}
model: {architecture: pair, cutoff_A: 4.0, n_rbf: 8}
md: {n_replicas: 2, segment_steps: 40, record_every: 5, temperature_K: 300, max_bond_stretch: 2.0}
uncertainty: {n_components: 2}
selection: {max_cheap_per_cycle: 4, max_expensive_per_cycle: 2, min_step_spacing: 10, pick_beta: 1.0,
            energy_window_sigma: null}
training: {steps: 20, finetune_steps: 10, batch_size: 4, gamma_grid: [1.0]}
schedule:
  n_cycles: 1
  bootstrap: {n_samples: 6, n_expensive: 3, method: rattle, amplitude_A: 0.02}
execution: {n_workers: 1}
evaluation: false
"""


def _run(tmp_path: Path, setting: str) -> tuple[dict, dict, list[str]]:
    """The one-cycle water campaign with ``setting`` in place of ``pick_beta: 1.0``: its selection and herding
    target tables, and the lines it logged."""
    path = tmp_path / "campaign.yaml"
    path.write_text(WATER.replace("pick_beta: 1.0", setting))
    run_dir = tmp_path / "run"
    lines: list[str] = []
    assert start_campaign(load_campaign(path), run_dir, progress=False, echo=lines.append) == "1 cycles done"
    with CampaignStore.open(store_path(run_dir)) as store:
        return tables.read(store, tables.SELECTION), tables.read(store, tables.HERDING_TARGET), lines


def test_a_campaign_draws_its_expensive_picks(tmp_path: Path) -> None:
    chosen, _, lines = _run(tmp_path, "pick_beta: 1.0")
    expensive = (chosen["role"] == "expensive") & (chosen["cycle"] == 0)  # the bootstrap's are cycle -1
    assert expensive.sum() == 2
    assert all(", drawn with p = " in str(r) for r in chosen["reason"][expensive])
    cheap = chosen["role"] == "cheap"
    assert not any("drawn" in str(r) for r in chosen["reason"][cheap])  # the cheap pick is unchanged
    assert any("drawn with p ~ (" in line and ")^1" in line for line in lines), lines


def test_a_campaign_weights_its_expensive_pick_by_the_md_density(tmp_path: Path) -> None:
    """selection.density_weight: each cycle records its MD target without herding (exploration 1), and the
    expensive pick's score is weighted by the candidates' density in it."""
    chosen, target, lines = _run(tmp_path, "density_weight: 1.0")
    assert ((chosen["role"] == "expensive") & (chosen["cycle"] == 0)).sum() == 2
    assert target["frame_id"].size > 0 and set(target["cycle"].tolist()) == {0}
    assert not any("herding" in str(r) for r in chosen["reason"])  # no representative quota
    assert any("cycle 0: 2 of" in line and " x density^1" in line for line in lines), lines


def test_a_campaign_picks_its_expensive_frames_by_lcmd(tmp_path: Path) -> None:
    """selection.expensive_pick: lcmd: the cycle's expensive frames by largest cluster maximum distance from the
    frames expensive-labelled so far (the bootstrap's), each reason saying so."""
    chosen, _, lines = _run(tmp_path, "expensive_pick: lcmd")
    expensive = (chosen["role"] == "expensive") & (chosen["cycle"] == 0)
    assert expensive.sum() == 2
    assert all("; LCMD: the farthest (" in str(r) for r in chosen["reason"][expensive])
    assert any("largest cluster maximum distance (LCMD) from 3 labelled frames" in line for line in lines), lines


def test_a_campaign_picks_its_expensive_frames_by_kmeanspp(tmp_path: Path) -> None:
    """selection.expensive_pick: kmeans++: the cycle's expensive frames drawn by k-means++ from the frames
    expensive-labelled so far, each reason with its probability."""
    chosen, _, lines = _run(tmp_path, "expensive_pick: kmeans++")
    expensive = (chosen["role"] == "expensive") & (chosen["cycle"] == 0)
    assert expensive.sum() == 2
    assert all(", drawn by k-means++ with p = " in str(r) for r in chosen["reason"][expensive])
    assert any("k-means++ (drawn ~ distance^2) from 3 labelled frames" in line for line in lines), lines
