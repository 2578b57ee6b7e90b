import numpy as np
import pytest
import torch
from ase.build import molecule

from alloop.errors import AlloopError
from alloop.training.data import FrameDataset


def test_from_atoms_keeps_labels_and_sizes(mixed_frames):
    data = FrameDataset.from_atoms(mixed_frames, fidelity="synthetic")
    assert len(data) == 24 and data.labelled and data.fidelity == "synthetic"
    assert list(data.sizes[:4]) == [3, 5, 9, 2]
    for j in (0, 2, 7):
        s = data.frame_slice(j)
        assert np.allclose(data.positions[s], mixed_frames[j].positions)
        assert np.allclose(data.forces[s], mixed_frames[j].get_forces())
        assert data.energy[j] == pytest.approx(mixed_frames[j].get_potential_energy())
    assert data.elements == (1, 6, 8)


def test_batch_of_different_sizes_has_matching_targets(mixed_frames):
    data = FrameDataset.from_atoms(mixed_frames)
    batch = data.batch([2, 0, 3], dtype=torch.float64)
    assert batch.atoms.n_graphs == 3
    assert batch.atoms.n_atoms.tolist() == [9, 3, 2]
    assert batch.forces.shape == (14, 3) and batch.forces.dtype == torch.float64
    assert np.allclose(batch.forces[9:12].numpy(), mixed_frames[0].get_forces())
    assert np.allclose(batch.atoms.positions[12:].numpy(), mixed_frames[3].positions)
    assert batch.energy[1].item() == pytest.approx(mixed_frames[0].get_potential_energy())
    assert batch.index.tolist() == [2, 0, 3]


def test_split_is_seeded_disjoint_and_complete(mixed_frames):
    data = FrameDataset.from_atoms(mixed_frames)
    tr, va, tri, vai = data.split(0.25, seed=3)
    _, _, tri2, vai2 = data.split(0.25, seed=3)
    _, _, _, vai3 = data.split(0.25, seed=4)
    assert 1 <= len(va) <= 12 and len(tr) + len(va) == 24
    assert np.array_equal(vai, vai2) and np.array_equal(tri, tri2)
    assert not np.array_equal(vai, vai3)
    assert sorted(np.concatenate([tri, vai]).tolist()) == list(range(24))
    assert np.allclose(va.energy, data.energy[vai])


def test_split_is_stable_when_frames_are_added(mixed_frames):
    """A frame's side depends on the frame alone: the next cycle never validates on earlier training frames."""
    first = FrameDataset.from_atoms(mixed_frames[:10])
    more = FrameDataset.from_atoms(mixed_frames[12:] + mixed_frames[:10])  # new frames first: positions move
    _, _, tri, vai = first.split(0.3, seed=5)
    _, _, tri2, vai2 = more.split(0.3, seed=5)
    old_train = {first.positions[first.offsets[i]:first.offsets[i + 1]].tobytes() for i in tri}
    new_val = {more.positions[more.offsets[i]:more.offsets[i + 1]].tobytes() for i in vai2}
    assert not old_train & new_val
    assert len(old_train) == len(tri)  # the frames are distinct


def test_split_keeps_a_frame_on_each_side(mixed_frames):
    data = FrameDataset.from_atoms(mixed_frames[:2])
    for seed in range(20):
        _, _, tri, vai = data.split(0.05, seed)
        assert len(tri) == 1 and len(vai) == 1
        _, _, tri, vai = data.split(0.95, seed)
        assert len(tri) == 1 and len(vai) == 1


def test_shuffled_batches_are_seeded(mixed_frames):
    data = FrameDataset.from_atoms(mixed_frames)
    order = lambda seed: [b.index.tolist() for b in data.batches(5, shuffle=True, seed=seed)]
    assert order(1) == order(1)
    assert order(1) != order(2)
    assert sorted(sum(order(1), [])) == list(range(24))
    assert [len(b) for b in order(1)] == [5, 5, 5, 5, 4]


def test_unlabelled_frames_and_clear_errors(water):
    data = FrameDataset.from_atoms([water, molecule("CH4")], labelled=False)
    assert not data.labelled and data.batch([0, 1]).energy is None
    with pytest.raises(AlloopError, match="frame 0 has no energy and forces"):
        FrameDataset.from_atoms([water])
    with pytest.raises(AlloopError, match="at least 2 frames"):
        FrameDataset.from_atoms([water], labelled=False).split(0.1, 0)
    with pytest.raises(AlloopError, match="weights"):
        data.with_weights([1.0, -1.0])
