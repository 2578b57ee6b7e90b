"""Append-only tables, checkpoints and named blobs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alloop.errors import StoreError
from alloop.store import CampaignStore


def test_tables_fix_columns_and_check_dtypes(tmp_path):
    path = tmp_path / "s"
    with CampaignStore.create(path) as store:
        store.append_rows("bias", model_version=np.array([0, 0]), frame_id=np.array([3, 4]), B=[0.1, 0.2], w=[0.9, 0.8])
        store.append_rows("bias", model_version=[1], frame_id=[3], B=[0.05], w=[1])  # int into a float column: fine
        with pytest.raises(StoreError, match="missing \\['w'\\], unknown \\['x'\\]"):
            store.append_rows("bias", model_version=[1], frame_id=[3], B=[0.05], x=[1.0])
        with pytest.raises(StoreError, match="column 'frame_id' holds int64, got float64"):
            store.append_rows("bias", model_version=[1], frame_id=[3.5], B=[0.05], w=[1.0])
        with pytest.raises(StoreError, match="column 'B': 2 rows given, 1 expected"):
            store.append_rows("bias", model_version=[1], frame_id=[3], B=[0.05, 1.0], w=[1.0])
        with pytest.raises(StoreError, match="table name"):
            store.append_rows("bad name", a=[1])
        store.append_rows("events", kind=np.array(["select", "retrain"]), cycle=[0, 0], vec=np.ones((2, 3)))
        with pytest.raises(StoreError, match="rows of shape \\(2,\\) given, \\(3,\\) expected"):
            store.append_rows("events", kind=["x"], cycle=[1], vec=np.ones((1, 2)))
        with pytest.raises(StoreError, match="holds strings"):
            store.append_rows("events", kind=[1], cycle=[1], vec=np.ones((1, 3)))
        store.commit(cycle=0)
        store.append_rows("events", kind=["lost"], cycle=[9], vec=np.zeros((1, 3)))  # never committed
        with pytest.warns(UserWarning):
            store.close()
    with CampaignStore.open(path, "a") as store:
        assert store.table_names() == ["bias", "events"]
        bias = store.table("bias")
        assert bias["frame_id"].tolist() == [3, 4, 3] and bias["w"].tolist() == [0.9, 0.8, 1.0]
        assert bias["model_version"].dtype == np.int64 and bias["B"].dtype == np.float64
        events = store.table("events")
        assert events["kind"].tolist() == ["select", "retrain"] and events["vec"].shape == (2, 3)
        store.append_rows("events", kind=["again"], cycle=[1], vec=np.zeros((1, 3)))
        assert store.table("events")["kind"].tolist() == ["select", "retrain", "again"]
        with pytest.raises(StoreError, match="no table 'nope' \\(tables: bias, events\\)"):
            store.table("nope")
        store.commit()
    with CampaignStore.open(path) as store:
        assert store.record["tables"] == {"bias": 3, "events": 3}


def test_checkpoints_versions_roles_and_metadata(tmp_path):
    path = tmp_path / "s"
    big = np.random.default_rng(0).bytes(3 << 20)
    with CampaignStore.create(path) as store:
        assert store.add_checkpoint(b"model-0", {"val_mae": np.float32(0.5), "n": np.int64(3)}) == 0
        assert store.add_checkpoint(big, {"stage": 1}, role="theta0") == 1
        assert store.add_checkpoint(b"", {}, role="model") == 2
        store.commit()
        assert store.add_checkpoint(b"lost", {}) == 3  # never committed
        with pytest.raises(StoreError, match="JSON-serialisable"):
            store.add_checkpoint(b"x", {"f": object()})
        with pytest.warns(UserWarning):
            store.close()
    assert (path / "checkpoints" / "v3").is_dir()
    with CampaignStore.open(path, "a") as store:
        assert not (path / "checkpoints" / "v3").exists()  # uncommitted: removed when the writer opens
        assert [c["version"] for c in store.checkpoints()] == [0, 1, 2]
        assert store.checkpoint(0) == (b"model-0", {"val_mae": 0.5, "n": 3})
        assert store.checkpoint(1)[0] == big and store.checkpoint(role="theta0")[1] == {"stage": 1}
        assert store.checkpoint() == (b"", {}) and store.checkpoint(-1, role="model") == (b"", {})
        assert store.checkpoint(-2, role="model")[0] == b"model-0"
        assert store.add_checkpoint(b"model-3", {"cycle": 1}) == 3  # the lost version number is reused
        store.commit()
        with pytest.raises(StoreError, match="no checkpoint version 7"):
            store.checkpoint(7)
        with pytest.raises(StoreError, match="no checkpoint with role 'teacher'"):
            store.checkpoint(role="teacher")
    with CampaignStore.open(path) as store:
        assert store.checkpoint(3) == (b"model-3", {"cycle": 1})


def test_named_blobs_replace_on_commit_and_detect_corruption(tmp_path):
    path = tmp_path / "s"
    with CampaignStore.create(path) as store:
        assert store.get_blob("replica-0") is None
        store.put_blob("replica-0", b"state-a")
        store.put_blob("replica-1", b"other")
        store.commit()
        store.put_blob("replica-0", b"state-b")
        assert store.get_blob("replica-0") == b"state-b"  # the writer sees its pending value
        with pytest.raises(StoreError, match="blob name"):
            store.put_blob("../escape", b"x")
        with pytest.warns(UserWarning):
            store.close()
    with CampaignStore.open(path, "a") as store:
        assert store.get_blob("replica-0") == b"state-a"  # uncommitted replacement is invisible
        store.put_blob("replica-0", b"state-c")
        store.commit()
        assert store.blob_names() == ["replica-0", "replica-1"]
    versions = sorted(p.name for p in (path / "blobs" / "replica-0").iterdir() if p.is_dir())
    assert versions == ["v1"]  # superseded versions are deleted after the commit
    with CampaignStore.open(path) as store:
        assert store.get_blob("replica-0") == b"state-c" and store.get_blob("replica-1") == b"other"
    chunk = next(p for p in Path(path, "blobs", "replica-1", "v0").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(b"otheR")
    with CampaignStore.open(path) as store:
        with pytest.raises(StoreError, match="blob 'replica-1' is corrupt"):
            store.get_blob("replica-1")
