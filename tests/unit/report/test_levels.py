"""``levels.png`` and its summary line: cost per label per fidelity and cycle, ASTEROID's bias B per model against the
cheap level's measured distance from the expensive one, from a real store, checked against the labels directly."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
from ase.build import molecule

from alloop.fidelity import load_fidelity
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.report import write_report
from alloop.report.levels_plot import plot_levels
from alloop.store import ledger, tables
from alloop.store.campaign import CampaignStore
from alloop.store.levels import read_levels

CHEAP, EXPENSIVE = load_fidelity("hf-sto3g"), load_fidelity("mp2-dz")


def _label(fid, forces: np.ndarray, cpu: float, ok: bool = True) -> LabelResult:  # noqa: ANN001
    if not ok:
        return LabelResult.failure(len(forces), LabelStatus.SCF_NOT_CONVERGED, "test", cpu_seconds=cpu)
    return LabelResult(status=LabelStatus.OK, energy_eV=-1.0, forces_eV_per_A=forces, cpu_seconds=cpu,
                       wall_seconds=cpu, fidelity_name=fid.name, fidelity_hash=fid.hash())


def _cycle_row(store: CampaignStore, cycle: int, version: int) -> None:
    zero = [0.0]
    tables.append(store, tables.CYCLES, cycle=[cycle], model_version=[version], md_frames=[0], flag_rate=zero,
                  labels_cheap=[0], labels_expensive=[0], cpu_cheap_s=zero, cpu_expensive_s=zero,
                  val_force_mae_eV_per_A=zero, val_energy_mae_eV=zero, train_seconds=zero, time=zero)


def _campaign(path: Path, rng: np.random.Generator, bias: bool = True, both: bool = True) -> dict[str, np.ndarray]:
    """Six water frames: bootstrap 0-2 (cheap; 0 and 1 also expensive), cycle 0 3-5 (cheap; frame 5's label failed;
    frame 3 also expensive when ``both``); models v2 (bootstrap) and v4 (cycle 0) with bias rows when ``bias``.
    Returns the forces written per fidelity (frame id order, NaN for no label) and the CPU seconds."""
    water = molecule("H2O")
    cheap_f, exp_f = rng.normal(size=(6, 3, 3)), rng.normal(size=(6, 3, 3))
    cpu_c, cpu_e = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), np.array([100.0, 300.0, 0, 200.0, 0, 0])
    expensive = [0, 1, 3] if both else [0, 1]
    with CampaignStore.create(path, {"name": "levels"}) as store:
        ids = [*store.add_frames([water] * 3, origin="bootstrap", cycle=-1),
               *store.add_frames([water] * 3, origin="md", cycle=0)]
        for cycle, chosen in ((-1, [0, 1, 2]), (0, [3, 4, 5])):
            ledger.select(store, cycle, np.array(chosen), "cheap", [])
        ledger.select(store, -1, np.array([0, 1]), "expensive", [])
        if both:  # frame 3: recorded in cycle 0, its expensive label chosen in cycle 1 (after model v4)
            ledger.select(store, 1, np.array([3]), "expensive", [])
        store.add_labels(CHEAP, ids, [_label(CHEAP, cheap_f[i], cpu_c[i], ok=i != 5) for i in ids])
        store.add_labels(EXPENSIVE, expensive, [_label(EXPENSIVE, exp_f[i], cpu_e[i]) for i in expensive])
        if bias:
            tables.append(store, tables.BIAS, model_version=[2, 2, 2, 4, 4, 4, 4, 4], frame_id=[0, 1, 2, 0, 1, 2, 3, 4],
                          B=[0.1, 0.2, 0.4, 0.05, 0.1, 0.2, 0.3, 0.9], w=np.ones(8))
        _cycle_row(store, -1, 2)
        _cycle_row(store, 0, 4)
        store.commit()
    return {"cheap": cheap_f, "expensive": exp_f, "cpu_cheap": cpu_c, "cpu_expensive": cpu_e}


def test_levels_against_the_labels(tmp_path):
    written = _campaign(tmp_path / "store.zarr", np.random.default_rng(0))
    mae = {f: float(np.mean(np.abs(written["cheap"][f] - written["expensive"][f]))) for f in (0, 1, 3)}
    with CampaignStore.open(tmp_path / "store.zarr") as store:
        levels = read_levels(store)
        files = write_report(store, tmp_path / "report")
    assert levels is not None and (levels.cheap, levels.expensive) == (CHEAP.name, EXPENSIVE.name)
    # every frame labelled ok at both (frame 5's cheap label failed, 2 and 4 have no expensive one)
    assert levels.both_frame_ids.tolist() == [0, 1, 3] and levels.both_cycles.tolist() == [-1, -1, 1]
    np.testing.assert_allclose(levels.both_mae, [mae[0], mae[1], mae[3]])
    assert np.isclose(levels.distance, np.mean(list(mae.values())))
    m = levels.models
    assert m is not None and m.versions.tolist() == [2, 4] and m.cycles.tolist() == [-1, 0]
    np.testing.assert_allclose(m.median_b, [0.2, 0.2])
    np.testing.assert_allclose(m.p10_b, [np.percentile([0.1, 0.2, 0.4], 10), np.percentile([0.05, 0.1, 0.2, 0.3, 0.9], 10)])
    np.testing.assert_allclose(m.p90_b, [np.percentile([0.1, 0.2, 0.4], 90), np.percentile([0.05, 0.1, 0.2, 0.3, 0.9], 90)])
    # the frames labelled at both by the end of each model's cycle: frame 3's expensive label comes in cycle 1
    assert m.n_both.tolist() == [2, 2] and m.n_cheap.tolist() == [3, 5]
    np.testing.assert_allclose(m.distance, [(mae[0] + mae[1]) / 2] * 2)
    cheap, expensive = levels.costs
    assert (cheap.role, expensive.role) == ("cheap", "expensive")
    assert cheap.cycles.tolist() == [-1, 0] and cheap.n_labels.tolist() == [3, 3]  # the failed label counts
    np.testing.assert_allclose(cheap.mean_s, [2.0, 5.0])
    assert expensive.cycles.tolist() == [-1, 1]
    np.testing.assert_allclose(expensive.mean_s, [200.0, 200.0])
    np.testing.assert_allclose([expensive.p10_s[0], expensive.p90_s[0]], np.percentile([100.0, 300.0], [10, 90]))
    png = tmp_path / "report" / "levels.png"
    assert png in files and matplotlib.image.imread(png).shape[1] > 1000
    text = (tmp_path / "report" / "summary.md").read_text()
    assert (f"on 3 frames labelled at both: {levels.distance:.4f} eV/Å; median B of the last model (v4): 0.2000 eV/Å"
            in text)


def test_each_part_only_when_the_store_has_it(tmp_path):
    _campaign(tmp_path / "standard.zarr", np.random.default_rng(1), bias=False)  # no B: the distance alone
    with CampaignStore.open(tmp_path / "standard.zarr") as store:
        levels = read_levels(store)
        assert levels is not None and levels.models is None and levels.both_mae.size == 3
        text = write_report(store, tmp_path / "r1")[-1].read_text()
    assert (tmp_path / "r1" / "levels.png").exists()
    assert "on 3 frames labelled at both" in text and "median B" not in text
    # two fidelities on different frames and no B (a standard campaign): nothing to show, nothing drawn
    with CampaignStore.create(tmp_path / "disjoint.zarr", {}) as store:
        ids = store.add_frames([molecule("H2O")] * 4, origin="bootstrap", cycle=-1)
        store.add_labels(CHEAP, ids[:2], [_label(CHEAP, np.zeros((3, 3)), 1.0) for _ in ids[:2]])
        store.add_labels(EXPENSIVE, ids[2:], [_label(EXPENSIVE, np.zeros((3, 3)), 9.0) for _ in ids[2:]])
        store.commit()
        assert read_levels(store) is None and plot_levels(store, tmp_path / "none.png") is None
        files = write_report(store, tmp_path / "r2")
    assert tmp_path / "r2" / "levels.png" not in files and not (tmp_path / "none.png").exists()
    assert "labelled at both" not in (tmp_path / "r2" / "summary.md").read_text()
