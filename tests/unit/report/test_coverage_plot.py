"""``coverage.png``: the evaluation set's Q-residual coverage per model and the conformer basins of labelled frames."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from ase.build import molecule

from alloop.evaluation import campaign as evaluation
from alloop.fidelity import load_fidelity
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.report import write_report
from alloop.report.plots import plot_coverage
from alloop.store import CampaignStore, store_path
from alloop.system.conformers import conformer_starts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _label(n_atoms: int) -> LabelResult:
    return LabelResult(energy_eV=-1.0, forces_eV_per_A=np.zeros((n_atoms, 3)), status=LabelStatus.OK, cpu_seconds=1.0)


def _store(tmp_path: Path, frames: list, coverage: bool) -> Path:
    """A store with ``frames`` labelled cheap (bootstrap and cycle 0), the first two also expensive, and two
    models' coverage rows when ``coverage``."""
    cheap, expensive = load_fidelity("hf-sto3g"), load_fidelity("mp2-dz")
    path = store_path(tmp_path / "run")
    half = len(frames) // 2
    with CampaignStore.create(path, {}) as store:
        ids = [*store.add_frames(frames[:half], origin="bootstrap", cycle=-1),
               *store.add_frames(frames[half:], origin="md", cycle=0)]
        n = len(frames[0])
        store.add_labels(cheap, ids, [_label(n) for _ in ids])
        store.add_labels(expensive, ids[:2], [_label(n) for _ in ids[:2]])
        if coverage:
            evaluation.record_coverage(store, 1, -1, {"covered_fraction": 0.25, "median_q": 1.8})
            evaluation.record_coverage(store, 2, 0, {"covered_fraction": 0.75, "median_q": 0.6})
        store.commit()
    return path


def _size(png: Path) -> tuple[int, int]:
    assert png.read_bytes()[:8] == PNG_MAGIC
    return matplotlib.image.imread(png).shape[:2]


@pytest.mark.parametrize("coverage", [True, False])
def test_ethanol_gets_one_basin_panel_per_fidelity(tmp_path, coverage):
    starts = conformer_starts(molecule("CH3CH2OH"), 3)
    path = _store(tmp_path, [*starts, starts[0], starts[0], starts[1]], coverage)
    with CampaignStore.open(path, "r") as store:
        png = plot_coverage(store, tmp_path / "coverage.png")
        written = write_report(store, tmp_path / "report")
    assert png is not None and tmp_path / "report" / "coverage.png" in written
    height, width = _size(png)
    assert width > height * (2.5 if coverage else 1.7)  # 3 panels (coverage, cheap, expensive) or 2


def test_water_gets_the_coverage_panel_only_and_nothing_without_scores(tmp_path):
    waters = [molecule("H2O") for _ in range(4)]
    with CampaignStore.open(_store(tmp_path / "a", waters, True), "r") as store:
        png = plot_coverage(store, tmp_path / "coverage.png")
    assert png is not None and _size(png)[1] < 1.5 * _size(png)[0]  # one panel: no rotatable bond, no basins
    with CampaignStore.open(_store(tmp_path / "b", waters, False), "r") as store:
        assert plot_coverage(store, tmp_path / "none.png") is None
        assert tmp_path / "report" / "coverage.png" not in write_report(store, tmp_path / "report")
    assert not (tmp_path / "none.png").exists()
