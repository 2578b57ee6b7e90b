"""alloop import skips frames already in the store or repeated in the file (positions within 1e-8 A)."""

from __future__ import annotations

import ase.io
import numpy as np
from ase import Atoms
from store_helpers import make_frame, make_label

from alloop.cli import main
from alloop.io import attach_label, write_extxyz
from alloop.store import CampaignStore, store_path
from alloop.store.duplicates import _BUCKET, POSITION_TOL_A, FrameIndex, _weights


def _labelled(frame: Atoms, k: int) -> Atoms:
    label = make_label(k, len(frame))
    return attach_label(frame, label.energy_eV, label.forces_eV_per_A)


def _shifted(frame: Atoms, atom: int, by_A: float) -> Atoms:
    out = frame.copy()
    out.positions[atom, 1] += by_A
    return out


def _import(tmp_path, frames: list[Atoms], fidelity: str, capsys, name: str = "in.extxyz") -> str:
    write_extxyz(tmp_path / name, frames)
    assert main(["import", str(tmp_path / name), str(tmp_path / "run"), "--fidelity", fidelity]) == 0
    return capsys.readouterr().out


def _open(tmp_path) -> CampaignStore:
    return CampaignStore.open(store_path(tmp_path / "run"))


def test_reimporting_the_stores_own_export_adds_nothing(tmp_path, capsys):
    _import(tmp_path, [_labelled(make_frame(k), k) for k in range(8)], "hf-sto3g", capsys)
    exported = tmp_path / "out.extxyz"
    assert main(["export", str(tmp_path / "run"), "--fidelity", "hf-sto3g", "-o", str(exported)]) == 0
    with _open(tmp_path) as store:
        seq = store.seq
    assert main(["import", str(exported), str(tmp_path / "run"), "--fidelity", "hf-sto3g"]) == 0
    out = capsys.readouterr().out
    assert "imported 0 frames" in out
    assert "skipped as duplicates: 8 frames (8 already in the store, 0 repeated in the file), 8 labels" in out
    with _open(tmp_path) as store:
        assert store.n_frames == 8 and len(store.labels("hf-sto3g")) == 8 and store.seq == seq  # nothing committed


def test_duplicates_within_one_file_and_the_tolerance(tmp_path, capsys):
    a, b = make_frame(4), make_frame(5)
    frames = [a, b, a.copy(), _shifted(a, 2, 0.6 * POSITION_TOL_A), _shifted(a, 2, 1.5 * POSITION_TOL_A),
              _shifted(b, 0, -3 * POSITION_TOL_A)]
    out = _import(tmp_path, [_labelled(f, k) for k, f in enumerate(frames)], "hf-sto3g", capsys)
    assert "imported 4 frames" in out
    assert "skipped as duplicates: 2 frames (0 already in the store, 2 repeated in the file), 2 labels" in out
    with _open(tmp_path) as store:
        kept = store.get_frames()
        assert [f.positions.tolist() for f in kept] == [frames[k].positions.tolist() for k in (0, 1, 4, 5)]
        assert store.labels("hf-sto3g").energy.tolist() == [make_label(k, 1).energy_eV for k in (0, 1, 4, 5)]
    # against the store: the same frames again, plus one that differs by more than the tolerance
    again = [_shifted(a, 1, 0.9 * POSITION_TOL_A), b, _shifted(b, 1, 2 * POSITION_TOL_A)]
    out = _import(tmp_path, [_labelled(f, 10 + k) for k, f in enumerate(again)], "hf-sto3g", capsys, "again.extxyz")
    assert "imported 1 frames" in out and "2 frames (2 already in the store, 0 repeated in the file), 2 labels" in out
    with _open(tmp_path) as store:
        assert store.n_frames == 5 and np.array_equal(store.get_frames([4])[0].positions, again[2].positions)


def test_same_positions_but_other_numbers_order_cell_or_pbc_are_not_duplicates(tmp_path, capsys):
    water = Atoms("OH2", positions=[[0, 0, 0.1], [0, 0.76, -0.47], [0, -0.76, -0.47]])
    swapped = Atoms("H2O", positions=water.positions)
    boxed = water.copy()
    boxed.cell = np.eye(3) * 5.0
    periodic = boxed.copy()
    periodic.pbc = True
    out = _import(tmp_path, [_labelled(f, k) for k, f in enumerate([water, swapped, boxed, periodic])], "hf-sto3g",
                  capsys)
    assert "imported 4 frames" in out and "duplicates" not in out


def test_labels_of_a_new_fidelity_go_to_the_known_frames(tmp_path, capsys):
    frames = [_labelled(make_frame(k), k) for k in range(4)]
    _import(tmp_path, frames[:3], "hf-sto3g", capsys)
    # frames 1 and 2 known (one of them twice in the file), frame 3 new, at another fidelity
    out = _import(tmp_path, [frames[1], frames[3], frames[2], frames[1]], "mp2-dz", capsys, "mp2.extxyz")
    assert "imported 1 frames labelled at mp2-dz" in out and "and 2 labels for frames already in the store" in out
    assert "skipped as duplicates: 3 frames (3 already in the store, 0 repeated in the file), 1 labels" in out
    with _open(tmp_path) as store:
        assert store.n_frames == 4
        mp2 = store.labels("mp2-dz")
        assert sorted(mp2.frame_id.tolist()) == [1, 2, 3]
        assert store.labels("hf-sto3g").frame_id.tolist() == [0, 1, 2]
        by_frame = dict(zip(mp2.frame_id.tolist(), mp2.energy.tolist(), strict=True))
        assert by_frame == {1: frames[1].get_potential_energy(), 2: frames[2].get_potential_energy(),
                            3: frames[3].get_potential_energy()}
    exported = tmp_path / "mp2-out.extxyz"
    assert main(["export", str(tmp_path / "run"), "--fidelity", "mp2-dz", "-o", str(exported)]) == 0
    assert [a.info["frame_id"] for a in ase.io.read(exported, ":")] == [1, 2, 3]


def test_frame_index_finds_equal_frames_across_a_bucket_boundary():
    frame = make_frame(7)
    weights = _weights(len(frame))
    atom = int(np.argmax(np.linalg.norm(weights, axis=1)))
    direction, strength = weights[atom] / np.linalg.norm(weights[atom]), np.linalg.norm(weights[atom])
    projection = float(np.sum(weights * frame.positions))
    below = frame.positions.copy()
    below[atom] += direction * ((np.ceil(projection / _BUCKET) * _BUCKET - 1e-11 - projection) / strength)
    above = below.copy()
    above[atom] += direction * (0.9 * POSITION_TOL_A)
    assert FrameIndex._bucket(below) + 1 == FrameIndex._bucket(above)  # the two land in neighbouring buckets
    index = FrameIndex()
    index.add("below", frame.numbers, below, np.zeros((3, 3)), np.zeros(3, bool))
    assert index.find(frame.numbers, above, np.zeros((3, 3)), np.zeros(3, bool)) == "below"
    far = above.copy()
    far[atom] += direction * (2 * POSITION_TOL_A)
    assert index.find(frame.numbers, far, np.zeros((3, 3)), np.zeros(3, bool)) is None


def test_frame_index_checks_a_few_candidates_per_lookup_not_every_frame():
    n_frames = 3000
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 1.5, (9, 3))
    numbers = np.array([6, 6, 8, 1, 1, 1, 1, 1, 1])
    index = FrameIndex()
    frames = [base + rng.normal(0.0, 0.05, base.shape) for _ in range(n_frames)]
    for k, positions in enumerate(frames):
        index.add(k, numbers, positions, np.zeros((3, 3)), np.zeros(3, bool))
    assert max(len(v) for v in index._buckets.values()) <= 3  # a handful of candidates per lookup, not all frames
    assert [index.find(numbers, p + 1e-9, np.zeros((3, 3)), np.zeros(3, bool)) for p in frames[:50]] == list(range(50))
