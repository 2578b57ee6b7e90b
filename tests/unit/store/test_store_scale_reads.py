"""The reads that keep status, report, resume and the dashboard fast on big stores give what the full reads give:
the in-memory copy of committed column rows, gathered reads of many frames, column-wise label reads, the status
summary, molecules per frame and the predicted errors per cycle."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from store_helpers import make_frame, make_label

from alloop.evaluation import predicted_errors
from alloop.labeling.result import STATUS_CODES
from alloop.store import CampaignStore, columns, tables
from alloop.store.duplicates import FrameIndex, composition_key, index_store_frames
from alloop.store.summary import summarize
from alloop.system.molecules import frame_molecules, molecule_name


def _write(path, cheap, expensive, n_batches: int = 4) -> None:
    with CampaignStore.create(path, {}) as store:
        for b in range(n_batches):
            ids = store.add_frames([make_frame(50 * b + k) for k in range(50)], origin="md" if b else "bootstrap",
                                   cycle=b - 1, flags=np.arange(50) % 3)
            n = store.frame_meta(ids, columns=["n_atoms"])["n_atoms"]
            store.add_labels(cheap, ids[::2], [make_label(int(i), int(n[2 * j]), fail=j % 7 == 3)
                                               for j, i in enumerate(ids[::2])])
            store.add_labels(expensive, ids[::9], [make_label(int(i), int(n[9 * j])) for j, i in enumerate(ids[::9])])
            store.set_flags(ids[:5], 8)
            tables.append(store, tables.PROGRESS, cycle=[b - 1], phase=["trained"], time=[float(b)])
            tables.append(store, tables.MD_PREDICTED, cycle=np.full(50, b - 1), frame_id=ids,
                          predicted_force_error_eV_per_A=np.linspace(0.1, 0.2, 50) * (b + 1),
                          upper_force_error_eV_per_A=np.ones(50))
            store.commit(cycle=b - 1, phase="trained")


def test_cached_columns_read_as_disk_across_commits(tmp_path, cheap, expensive, monkeypatch):
    _write(tmp_path / "s", cheap, expensive, n_batches=2)
    with CampaignStore.open(tmp_path / "s", "a") as store:
        first = store.table("progress")  # cached
        first["cycle"][:] = 99  # a caller changing what it got leaves the store's copy alone
        assert store.table("progress")["cycle"].tolist() == [-1, 0]
        before = store.frame_meta()
        tables.append(store, tables.PROGRESS, cycle=[1], phase=["explored"], time=[5.0])
        assert store.table("progress")["cycle"].tolist() == [-1, 0, 1]  # pending rows after the cached ones
        store.add_frames([make_frame(900)], origin="md", cycle=1)
        store.commit()
        assert store.table("progress")["phase"].tolist() == ["trained", "trained", "explored"]
        after = store.frame_meta()
        assert after["frame_id"].size == before["frame_id"].size + 1
        for key, values in before.items():
            np.testing.assert_array_equal(after[key][:-1], values)
    monkeypatch.setattr(columns, "CACHE_BYTES", 0)  # nothing kept: every read from disk
    with CampaignStore.open(tmp_path / "s") as disk:
        for key, values in disk.frame_meta().items():
            np.testing.assert_array_equal(after[key], values)
        assert disk.table("progress")["phase"].tolist() == ["trained", "trained", "explored"]


@pytest.mark.parametrize("block_bytes", [1 << 30, 2000])
def test_gathered_frames_equal_frame_by_frame(tmp_path, cheap, expensive, monkeypatch, block_bytes):
    """Every third frame (their chunks are most of the span: read in slices) and a sparse handful (chunk by chunk)."""
    monkeypatch.setattr(columns, "CHUNK_BYTES", 256)  # many small chunks
    monkeypatch.setattr(columns, "TAKE_BLOCK_BYTES", block_bytes)
    _write(tmp_path / "s", cheap, expensive)
    with CampaignStore.open(tmp_path / "s") as store:
        for ids in (np.arange(1, 200, 3)[::-1], np.array([3, 150, 7, 199, 3])):
            arrays = store.frame_arrays(ids)
            expected = [make_frame(int(i)) for i in ids]
            np.testing.assert_array_equal(arrays["positions"], np.concatenate([a.positions for a in expected]))
            np.testing.assert_array_equal(arrays["numbers"], np.concatenate([a.numbers for a in expected]))


def test_summary_equals_the_full_scan(tmp_path, cheap, expensive):
    """Failed cheap labels: j = 3, 10, 17, 24 of each of the 4 batches."""
    _write(tmp_path / "s", cheap, expensive)
    with CampaignStore.open(tmp_path / "s") as store:
        summary = summarize(store)
        meta = store.frame_meta()
        assert summary["frames"]["total"] == 200 and summary["frames"]["atoms"] == int(meta["n_atoms"].sum())
        assert summary["frames"]["by_origin"] == {"bootstrap": 50, "md": 150}
        assert summary["frames"]["by_flag"] == {f: int(((meta["flags"] & bit) != 0).sum())
                                                for f, bit in (("FLAGGED", 1), ("UNSTABLE", 2), ("SELECTED_CHEAP", 4),
                                                               ("SELECTED_EXPENSIVE", 8))}
        for part in summary["labels"]:
            table = store.labels(part["hash"])
            assert part["total"] == len(table)
            assert part["by_status"] == {s.value: int((table.status == c).sum()) for s, c in STATUS_CODES.items()}
            assert part["by_status"]["scf_not_converged"] == (16 if part["name"] == "hf-sto3g" else 0)
            assert part["cpu_seconds"] == pytest.approx(float(table.cpu_seconds.sum()))
            assert part["wall_seconds"] == pytest.approx(float(table.wall_seconds.sum()))
            columns_read = store.label_columns(part["hash"], ["frame_id", "energy"])
            np.testing.assert_array_equal(columns_read["frame_id"], table.frame_id)
            np.testing.assert_array_equal(columns_read["energy"], table.energy)


def test_predicted_errors_per_cycle_equal_a_pass_per_cycle(tmp_path, cheap, expensive):
    _write(tmp_path / "s", cheap, expensive)
    with CampaignStore.open(tmp_path / "s") as store:
        rows = predicted_errors.status(store)
        md = tables.read(store, tables.MD_PREDICTED)
    assert [r["cycle"] for r in rows] == [-1, 0, 1, 2]
    for r in rows:
        values = md["predicted_force_error_eV_per_A"][md["cycle"] == r["cycle"]]
        assert r["md_frames"] == 50
        assert r["md_predicted_eV_per_A"] == pytest.approx(values.mean())
        assert r["md_p95_eV_per_A"] == pytest.approx(np.percentile(values, 95))


def test_frame_molecules_pack_or_sort_the_compositions():
    rng = np.random.default_rng(0)
    frames = [Atoms(numbers=rng.choice([1, 6, 8], size=int(rng.integers(1, 8)))) for _ in range(300)]
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
    numbers = np.concatenate([a.numbers for a in frames])
    assert frame_molecules(numbers, offsets).tolist() == [molecule_name(a.numbers) for a in frames]
    # 40 elements of up to 3000 atoms each do not fit one integer: the rows are sorted instead
    big = [np.repeat(np.arange(1, 41), 3000 - k) for k in range(3)]
    offsets = np.concatenate([[0], np.cumsum([b.size for b in big])])
    assert frame_molecules(np.concatenate(big), offsets).tolist() == [molecule_name(b) for b in big]


def test_import_files_only_the_stored_frames_a_query_may_equal(tmp_path):
    """The vectorised pre-filter of the store's frames: every stored copy is still found (one moved by less than
    the tolerance too), and the frames filed are those near a query, not every stored frame of the composition."""
    rng = np.random.default_rng(3)
    water = [Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]] + rng.normal(0, 0.05, (3, 3)))
             for _ in range(100)]
    with CampaignStore.create(tmp_path / "s", {}) as store:
        store.add_frames(water, origin="md")
        store.commit()
    with CampaignStore.open(tmp_path / "s") as store:
        copies = [store.get_frames([i])[0] for i in (0, 77, 99)]
        copies[1].positions += 3e-9
        new = water[5].copy()
        new.positions += 0.01
        queries = [*copies, new]
        keys = {composition_key(a.numbers, a.pbc) for a in queries}
        every, near = FrameIndex(), FrameIndex()
        assert index_store_frames(store, keys, every) == 100
        assert index_store_frames(store, keys, near, [(a.numbers, a.positions) for a in queries]) == 3
        for index in (every, near):
            found = [index.find(a.numbers, a.positions, a.cell.array, a.pbc) for a in queries]
            assert found == [0, 77, 99, None]
