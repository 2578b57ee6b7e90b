"""Frames of mixed sizes, metadata, labels exactly once, growth, and what survives a reopen."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr
from ase import Atoms
from store_helpers import make_frame, make_label

from alloop.errors import StoreError
from alloop.labeling.result import STATUS_CODES, LabelResult, LabelStatus
from alloop.store import CampaignStore, FrameFlag
from alloop.store import columns as columns_module


def test_frames_of_different_sizes_round_trip(tmp_path, water, ethanol):
    cell = [[3.6, 0, 0], [0, 3.6, 0], [0.1, 0, 3.6]]
    periodic = Atoms("Cu2", positions=[[0, 0, 0], [1.3, 1.3, 0.1]], cell=cell, pbc=[1, 1, 0])
    frames = [water, ethanol, periodic, make_frame(4)]
    with CampaignStore.create(tmp_path / "s", {"seed": 7}) as store:
        ids = store.add_frames(frames, origin=["md", "md", "test", "bootstrap"], replica=[0, 1, -1, -1], q_score=0.25)
        assert ids.tolist() == [0, 1, 2, 3] and store.n_frames == 4 and store.committed_frames == 0
        pending = store.get_frames([3, 0])  # pending frames are readable by the writer
        assert np.array_equal(pending[0].positions, frames[3].positions)
        store.commit(cycle=0, phase="explore")
    with CampaignStore.open(tmp_path / "s") as store:
        assert store.config == {"seed": 7} and store.record["cycle"] == 0 and store.record["phase"] == "explore"
        got = store.get_frames()
        for a, b in zip(frames, got, strict=True):
            assert np.array_equal(a.numbers, b.numbers) and np.array_equal(a.positions, b.positions)
            assert np.array_equal(a.cell.array, b.cell.array) and np.array_equal(a.pbc, b.pbc)
        assert [a.info["frame_id"] for a in store.get_frames([2, 0, 2])] == [2, 0, 2]
        arrays = store.frame_arrays([2, 0, 1, 2])  # arrays, no Atoms built
        assert arrays["n_atoms"].tolist() == [2, 3, 9, 2]
        assert arrays["numbers"].tolist() == [z for k in (2, 0, 1, 2) for z in frames[k].numbers.tolist()]
        np.testing.assert_array_equal(arrays["positions"], np.concatenate([frames[k].positions for k in (2, 0, 1, 2)]))
        meta = store.frame_meta()
        assert meta["n_atoms"].tolist() == [3, 9, 2, 5] and meta["offset"].tolist() == [0, 3, 12, 14]
        assert meta["origin"].tolist() == [2, 2, 4, 1] and meta["replica"].tolist() == [0, 1, -1, -1]
        assert np.all(meta["q_score"] == 0.25) and np.isnan(meta["t2_score"]).all()
        assert meta["md_step"].tolist() == [-1] * 4


def test_bad_frames_and_metadata_are_refused(tmp_path, water):
    with CampaignStore.create(tmp_path / "s") as store:
        with pytest.raises(StoreError, match="unknown frame metadata \\['colour'\\]"):
            store.add_frames([water], colour=1)
        with pytest.raises(StoreError, match="unknown frame origin 'mars'"):
            store.add_frames([water], origin="mars")
        with pytest.raises(StoreError, match="replica.*holds int32, got float64"):
            store.add_frames([water], replica=0.5)
        with pytest.raises(StoreError, match="no atoms"):
            store.add_frames([Atoms()])
        bad = water.copy()
        bad.positions[0, 0] = np.nan
        with pytest.raises(StoreError, match="positions must be finite"):
            store.add_frames([bad])
        assert store.n_frames == 0 and not store.has_pending_changes
        with pytest.raises(StoreError, match="frame id 5 does not exist"):
            store.get_frames([5])


def test_growth_beyond_initial_capacity(tmp_path, monkeypatch):
    monkeypatch.setattr(columns_module, "INITIAL_ROWS", 16)
    frames = [make_frame(k) for k in range(300)]
    with CampaignStore.create(tmp_path / "s") as store:
        for start in range(0, 300, 37):
            store.add_frames(frames[start : start + 37], md_step=np.arange(start, min(start + 37, 300)))
            store.commit()
    group = zarr.open_group(tmp_path / "s", mode="r")
    assert group["frames/n_atoms"].shape[0] >= 300 and group["frames/positions"].shape[0] >= sum(len(f) for f in frames)
    with CampaignStore.open(tmp_path / "s") as store:
        assert store.n_frames == 300 and store.frame_meta()["md_step"].tolist() == list(range(300))
        for a, b in zip(frames, store.get_frames(), strict=True):
            assert np.array_equal(a.positions, b.positions) and np.array_equal(a.numbers, b.numbers)


def test_labels_exactly_once_in_batch_across_commit_and_reopen(tmp_path, cheap, expensive):
    frames = [make_frame(k) for k in range(6)]
    path = tmp_path / "s"
    with CampaignStore.create(path) as store:
        store.add_frames(frames)
        ids = [0, 1, 1, 2]
        results = [make_label(0, 1), make_label(1, 2), make_label(99, 2), make_label(2, 3, fail=True)]
        assert store.add_labels(cheap, ids, results).tolist() == [True, True, False, True]
        assert store.has_label(1, cheap.hash()) and not store.has_label(1, expensive.hash())
        store.commit()
        assert store.add_labels(cheap, [1, 3], [make_label(7, 2), make_label(3, 4)]).tolist() == [False, True]
        assert store.add_labels(expensive, [1], [make_label(1, 2)]).tolist() == [True]
        store.commit()
    with CampaignStore.open(path, "a") as store:
        assert store.add_labels(cheap, [3, 0, 4], [make_label(3, 4), make_label(0, 1), make_label(4, 5)]).tolist() == [
            False,
            False,
            True,
        ]
        store.commit()
    with CampaignStore.open(path) as store:
        table = store.labels(cheap)
        assert table.frame_id.tolist() == [0, 1, 2, 3, 4] and len(set(table.frame_id.tolist())) == len(table)
        for row, k in enumerate(table.frame_id):
            if k == 2:
                assert table.status[row] == STATUS_CODES[LabelStatus.SCF_NOT_CONVERGED]
                assert np.isnan(table.energy[row]) and table.reason[row] == "no convergence for 2"
                assert np.isnan(table.frame_forces(row)).all() and table.frame_forces(row).shape == (3, 3)
                continue
            expected = make_label(int(k), int(k) + 1)
            assert table.energy[row] == expected.energy_eV and table.cpu_seconds[row] == expected.cpu_seconds
            assert np.array_equal(table.frame_forces(row), expected.forces_eV_per_A)
            assert table.scf_cycles[row] == expected.scf_cycles and table.wall_seconds[row] == expected.wall_seconds
        assert table.ok.tolist() == [True, True, False, True, True]
        assert store.labels("mp2-dz").frame_id.tolist() == [1]  # by unique stored name
        assert set(store.fidelities()) == {cheap.hash(), expensive.hash()}
        assert store.fidelities()[cheap.hash()]["spec"]["basis"] == "sto-3g"


def test_label_validation(tmp_path, cheap, expensive):
    with CampaignStore.create(tmp_path / "s") as store:
        store.add_frames([make_frame(2)])  # 3 atoms
        with pytest.raises(StoreError, match="forces of shape \\(2, 3\\) for a frame of 3 atoms"):
            store.add_labels(cheap, [0], [make_label(0, 2)])
        with pytest.raises(StoreError, match="frame id 1 does not exist"):
            store.add_labels(cheap, [1], [make_label(0, 3)])
        wrong = LabelResult(1.0, np.zeros((3, 3)), LabelStatus.OK, fidelity_hash=expensive.hash())
        with pytest.raises(StoreError, match="computed at fidelity"):
            store.add_labels(cheap, [0], [wrong])
        with pytest.raises(StoreError, match="status ok but non-finite"):
            store.add_labels(cheap, [0], [LabelResult(np.nan, np.zeros((3, 3)), LabelStatus.OK)])
        with pytest.raises(StoreError, match="1 frame ids but 2 label results"):
            store.add_labels(cheap, [0], [make_label(0, 3)] * 2)
        assert not store.has_label(0, cheap.hash()) and store.add_labels(cheap, [0], [make_label(0, 3)]).all()
        store.commit()


def test_uncommitted_data_is_invisible_after_reopen_even_if_flushed(tmp_path, monkeypatch, cheap):
    from alloop.store import campaign as campaign_module

    path = tmp_path / "s"
    with CampaignStore.create(path) as store:
        store.add_frames([make_frame(k) for k in range(5)])
        store.add_labels(cheap, [0, 1], [make_label(0, 1), make_label(1, 2)])
        store.commit()
        monkeypatch.setattr(campaign_module, "FLUSH_BYTES", 0)  # every add writes its rows to disk at once
        store.add_frames([make_frame(k) for k in range(100, 104)])
        store.add_labels(cheap, [2, 6], [make_label(2, 3), make_label(6, 3)])
        store.append_rows("events", frame_id=np.array([5]))
        with pytest.warns(UserWarning, match="uncommitted changes"):
            store.close()
    with CampaignStore.open(path, "a") as store:
        assert store.n_frames == 5 and store.labels(cheap).frame_id.tolist() == [0, 1]
        assert not store.has_label(2, cheap.hash()) and store.table_names() == []
        assert not (path / "tables" / "events").exists()  # the writer removes uncommitted nodes on open
        new = store.add_frames([make_frame(k) for k in range(200, 203)])  # overwrites the stale rows
        assert new.tolist() == [5, 6, 7]
        assert store.add_labels(cheap, [2, 6], [make_label(2, 3), make_label(206, 4)]).all()
        store.commit()
    with CampaignStore.open(path) as store:
        expected = [make_frame(k) for k in [0, 1, 2, 3, 4, 200, 201, 202]]
        for a, b in zip(expected, store.get_frames(), strict=True):
            assert np.array_equal(a.positions, b.positions) and np.array_equal(a.numbers, b.numbers)
        table = store.labels(cheap)
        assert table.frame_id.tolist() == [0, 1, 2, 6]
        assert np.array_equal(table.frame_forces(3), make_label(206, 4).forces_eV_per_A)


def test_frame_meta_updates_and_flags(tmp_path):
    path = tmp_path / "s"
    with CampaignStore.create(path) as store:
        store.add_frames([make_frame(k) for k in range(4)], flags=int(FrameFlag.FLAGGED))
        store.set_flags([1, 3], FrameFlag.SELECTED_CHEAP)
        store.update_frame_meta([1], q_score=2.5)
        store.commit()
        store.update_frame_meta([1, 2], q_score=[3.5, 4.5])
        store.set_flags([3], FrameFlag.SELECTED_EXPENSIVE)
        store.commit()
        store.update_frame_meta([0], q_score=9.0)  # never committed
        with pytest.raises(StoreError, match="cannot be updated"):
            store.update_frame_meta([0], origin="md")
        with pytest.warns(UserWarning):
            store.close()
    with CampaignStore.open(path) as store:
        meta = store.frame_meta()
        assert meta["flags"].tolist() == [1, 5, 1, 13]
        assert np.isnan(meta["q_score"][0]) and meta["q_score"][1:].tolist()[:2] == [3.5, 4.5]
        assert store.frame_meta([3, 1])["flags"].tolist() == [13, 5]
        assert store.get_frames([3])[0].info["flags"] == 13


def test_single_writer_and_read_only(tmp_path, water):
    path = tmp_path / "s"
    writer = CampaignStore.create(path)
    writer.add_frames([water])
    writer.commit()
    with pytest.raises(StoreError, match="already open for writing by another process"):
        CampaignStore.open(path, "a")
    with pytest.raises(StoreError, match="already open for writing"):
        CampaignStore.create(path, exist_ok=True)
    with CampaignStore.open(path) as reader:  # readers need no lock
        assert reader.n_frames == 1
        with pytest.raises(StoreError, match="open read-only"):
            reader.add_frames([water])
    writer.close()
    with CampaignStore.open(path, "a") as again:
        assert again.n_frames == 1
    with pytest.raises(StoreError, match="is closed"):
        again.get_frames()


def test_create_and_open_errors(tmp_path, water):
    with pytest.raises(StoreError, match="no campaign store at .* \\(not a directory\\)"):
        CampaignStore.open(tmp_path / "missing")
    with pytest.raises(StoreError, match="is not a campaign store \\(no zarr.json\\)"):
        CampaignStore.open(tmp_path)
    zarr.open_group(tmp_path / "plain", mode="w")
    with pytest.raises(StoreError, match="Zarr group but not an alloop campaign store"):
        CampaignStore.open(tmp_path / "plain")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("x")
    with pytest.raises(StoreError, match="not an empty directory"):
        CampaignStore.create(tmp_path / "busy")
    CampaignStore.create(tmp_path / "s", {"a": 1}).close()
    with pytest.raises(StoreError, match="already exists"):
        CampaignStore.create(tmp_path / "s")
    with CampaignStore.create(tmp_path / "s", {"b": 2}, exist_ok=True) as store:
        assert store.config == {"a": 1} and store.mode == "a"
    with pytest.raises(StoreError, match="mode must be 'r' or 'a'"):
        CampaignStore.open(tmp_path / "s", "w")


def test_plain_zarr_reads_the_store(tmp_path, cheap):
    path = tmp_path / "s"
    frames = [make_frame(k) for k in range(7)]
    with CampaignStore.create(path, {"name": "demo"}) as store:
        store.add_frames(frames, origin="md")
        store.add_labels(cheap, [1, 4], [make_label(1, 2), make_label(4, 5)])
        store.commit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not recognized as a component" warnings: the record lives in zarr.json
        group = zarr.open_group(path, mode="r")
        group.tree()
    commit = group.attrs["commit"]
    n, m = commit["frames"]["rows"], commit["frames"]["atoms"]
    assert (n, m) == (7, sum(len(f) for f in frames)) and group.attrs["config"] == {"name": "demo"}
    assert group["frames/positions"].shape[0] >= m  # pre-allocated tail rows beyond the committed length
    offsets, counts = group["frames/offset"][:n], group["frames/n_atoms"][:n]
    positions = group["frames/positions"][:m]
    for k, frame in enumerate(frames):
        assert np.array_equal(positions[offsets[k] : offsets[k] + counts[k]], frame.positions)
    rows = commit["labels"][cheap.hash()]["rows"]
    assert group[f"labels/{cheap.hash()}/frame_id"][:rows].tolist() == [1, 4]
    assert group[f"labels/{cheap.hash()}"].attrs["name"] == "hf-sto3g"


def test_commit_fsyncs_data_before_the_record(tmp_path, monkeypatch, cheap):
    import os

    from alloop.store import durable

    root = tmp_path / "s"
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = durable.fsync_path, os.replace

    def name(path) -> str:
        return "." if Path(path) == root else str(Path(path).relative_to(root))

    def fsync_spy(path):
        events.append(("fsync", name(path)))
        real_fsync(path)

    def replace_spy(src, dst):
        events.append(("replace", name(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(durable, "fsync_path", fsync_spy)
    with CampaignStore.create(root) as store:
        store.add_frames([make_frame(k) for k in range(3)])
        store.add_labels(cheap, [0], [make_label(0, 1)])
        events.clear()
        monkeypatch.setattr(durable.os, "replace", replace_spy)
        store.commit()
        monkeypatch.setattr(durable.os, "replace", real_replace)
    assert events[-2:] == [("replace", "zarr.json"), ("fsync", ".")]  # the commit is the last rename, then its dir
    synced = {path for kind, path in events[:-2] if kind == "fsync"}
    assert {"frames/positions/c/0/0", f"labels/{cheap.hash()}/forces/c/0/0", "frames/n_atoms/c/0"} <= synced
    assert {"frames/positions/c/0", "frames/positions/c", "frames", "."} <= synced  # their directories too
