"""Training data from the store does not depend on the order labels finished in."""

import numpy as np
from ase.build import molecule

from alloop.campaign.phases.train import labelled_arrays
from alloop.fidelity import load_fidelity
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.store.campaign import CampaignStore


def _label(k: int, n: int) -> LabelResult:
    rng = np.random.default_rng(k)
    return LabelResult(float(-100 - k), rng.normal(size=(n, 3)), LabelStatus.OK)


def _store(path, order):
    fid = load_fidelity("hf-sto3g")
    water = molecule("H2O")
    frames = []
    for k in range(6):
        a = water.copy()
        a.positions += 0.01 * k
        frames.append(a)
    store = CampaignStore.create(path)
    ids = store.add_frames(frames, origin="bootstrap", cycle=-1)
    for k in order:  # labels arrive in completion order
        store.add_labels(fid, [int(ids[k])], [_label(k, 3)])
    store.commit()
    return store, fid, ids


def test_labelled_arrays_in_frame_order_whatever_the_completion_order(tmp_path):
    a_store, fid, ids = _store(tmp_path / "a", [0, 1, 2, 3, 4, 5])
    b_store, _, _ = _store(tmp_path / "b", [4, 1, 5, 0, 3, 2])
    a, b = labelled_arrays(a_store, fid), labelled_arrays(b_store, fid)
    np.testing.assert_array_equal(a.frame_ids, ids)
    np.testing.assert_array_equal(b.frame_ids, ids)
    np.testing.assert_array_equal(a.energy, b.energy)
    for x, y in zip(a.forces, b.forces, strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a.positions, b.positions, strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.energy[0] == -100.0 and a.energy[5] == -105.0


def test_labelled_arrays_empty_for_an_unknown_fidelity(tmp_path):
    store, _, _ = _store(tmp_path / "c", [0])
    out = labelled_arrays(store, load_fidelity("b3lyp-svp"))
    assert len(out) == 0 and out.frame_ids.size == 0
