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
    """A frame's side depends on the frame and the campaign seed alone: cycle 1 splits its grown dataset with cycle
    1's settings (another seed for the rest) and keeps every frame of cycle 0's split on its side, so a warm start
    never validates on frames it trained on."""
    from alloop.campaign.phases.settings import campaign_settings
    from alloop.config import CampaignConfig

    cfg = CampaignConfig.from_dict({"system": {"structures": "H2O"}, "seed": 5, "training": {"validation_fraction": 0.3}})
    plan = campaign_settings(cfg).training
    cycle0, cycle1 = plan.stages(0, warm=False), plan.stages(1, warm=True)
    assert cycle0.seed != cycle1.seed  # initialisation and batch order are seeded per cycle
    first = FrameDataset.from_atoms(mixed_frames[:10])
    more = FrameDataset.from_atoms(mixed_frames[12:] + mixed_frames[:10])  # new frames first: positions move
    _, _, tri, vai = first.split(cycle0.val_fraction, cycle0.split_key)
    _, _, tri2, vai2 = more.split(cycle1.val_fraction, cycle1.split_key)

    def frames(data: FrameDataset, indices: np.ndarray) -> set[bytes]:
        return {data.positions[data.frame_slice(int(i))].tobytes() for i in indices}

    old_train, old_val = frames(first, tri), frames(first, vai)
    assert len(old_train) == len(tri) and old_val  # distinct frames, both sides used
    assert old_train <= frames(more, tri2)  # a training frame stays a training frame
    assert old_val <= frames(more, vai2)  # a validation frame stays a validation frame


def test_split_keeps_a_frame_on_each_side(mixed_frames):
    data = FrameDataset.from_atoms(mixed_frames[:2])
    for seed in range(20):
        _, _, tri, vai = data.split(0.05, seed)
        assert len(tri) == 1 and len(vai) == 1
        _, _, tri, vai = data.split(0.95, seed)
        assert len(tri) == 1 and len(vai) == 1


def test_split_holds_out_at_least_min_val_frames_and_only_releases_them_as_frames_are_added(mixed_frames):
    """A small hash share can hold out almost nothing; ``min_val`` tops the validation side up with the lowest
    draws (at most half the frames), and once there are 2 x min_val frames adding frames never moves a training
    frame to validation."""
    data = FrameDataset.from_atoms(mixed_frames)
    draws = data.frame_draws(11)
    _, _, _, plain = data.split(0.05, 11)
    assert len(plain) < 6
    _, _, tri, vai = data.split(0.05, 11, min_val=6)
    assert len(vai) == 6 and set(plain) <= set(vai.tolist())
    assert set(vai.tolist()) == set(np.argsort(draws)[:6].tolist())
    assert len(data.subset(np.arange(8)).split(0.05, 11, min_val=6)[3]) == 4  # at most half
    for seed in range(10):  # the share decides when it holds out more
        share = data.split(0.5, seed)[3]
        assert np.array_equal(data.split(0.5, seed, min_val=6)[3], share) or len(share) < 6

    def val_frames(d: FrameDataset, indices: np.ndarray) -> set[bytes]:
        return {d.positions[d.frame_slice(int(i))].tobytes() for i in indices}

    for n in range(12, 24):
        small, big = data.subset(np.arange(n)), data.subset(np.arange(n + 1))
        held_small = val_frames(small, small.split(0.05, 11, min_val=6)[3])
        held_big = val_frames(big, big.split(0.05, 11, min_val=6)[3])
        old_big = held_big - {big.positions[big.frame_slice(n)].tobytes()}
        assert old_big <= held_small  # an old frame in validation was there before: no training frame joined


def test_shuffled_batches_are_seeded(mixed_frames):
    data = FrameDataset.from_atoms(mixed_frames)

    def order(seed):
        return [b.index.tolist() for b in data.batches(5, shuffle=True, seed=seed)]

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


def test_calibration_folds_are_disjoint_and_fold_zero_is_the_split(mixed_frames):
    """Fold k holds out the next v frames by draw rank after fold 0's v (cross-validated calibration): fold 0 is
    the plain split bit for bit, the folds never share a frame, and a fold past the frames is an error."""
    data = FrameDataset.from_atoms(mixed_frames)  # 24 frames
    plain = data.split(0.1, 11, min_val=6)
    fold0 = data.split(0.1, 11, min_val=6, fold=0)
    assert np.array_equal(plain[3], fold0[3]) and np.array_equal(plain[2], fold0[2])
    folds = [data.split(0.1, 11, min_val=6, fold=k)[3] for k in range(4)]
    assert [len(f) for f in folds] == [6, 6, 6, 6]
    assert sorted(np.concatenate(folds).tolist()) == list(range(24))  # disjoint, and here every frame once
    ranks = np.argsort(data.frame_draws(11), kind="stable")
    assert set(folds[2].tolist()) == set(ranks[12:18].tolist())
    tr, va, tri, vai = data.split(0.1, 11, min_val=6, fold=3)
    assert len(tr) == 18 and not set(tri.tolist()) & set(vai.tolist())
    with pytest.raises(AlloopError, match="fold 4 of 24 frames holding out 6 each is empty"):
        data.split(0.1, 11, min_val=6, fold=4)
