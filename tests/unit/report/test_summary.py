"""The report's summary: cost per label per fidelity and ASTEROID's bias B per model, from a real store."""

from __future__ import annotations

import numpy as np
from ase.build import molecule

from alloop.fidelity import load_fidelity
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.report.summary import summary_markdown
from alloop.store import tables
from alloop.store.campaign import CampaignStore


def _ok(n_atoms: int, cpu: float, fid) -> LabelResult:  # noqa: ANN001
    return LabelResult(status=LabelStatus.OK, energy_eV=-1.0, forces_eV_per_A=np.zeros((n_atoms, 3)), cpu_seconds=cpu,
                       wall_seconds=cpu, fidelity_name=fid.name, fidelity_hash=fid.hash())


def test_cost_per_label_and_bias_per_model(tmp_path):
    water = molecule("H2O")
    fid = load_fidelity("hf-sto3g")
    store = CampaignStore.create(tmp_path / "store.zarr", {"name": "t"})
    ids = store.add_frames([water] * 4, origin="test", cycle=0)
    store.add_labels(fid, ids, [_ok(3, cpu, fid) for cpu in (1.0, 2.0, 3.0, 6.0)])
    tables.append(store, tables.BIAS, model_version=np.array([1, 1, 1, 2]), frame_id=np.asarray(ids),
                  B=np.array([0.1, 0.2, 0.3, 0.5]), w=np.array([0.9, 0.8, 0.7, 0.5]))
    store.commit()
    text = summary_markdown(store)
    assert f"| {fid.name} | 4 | 4 | - | 12.0 | 3 |" in text  # 12 CPU s over 4 labels
    assert "| 1 | 3 | 0.200 | 0.120-0.280 | 0.80 |" in text
    assert "| 2 | 1 | 0.500 | 0.500-0.500 | 0.50 |" in text
    store.close()
