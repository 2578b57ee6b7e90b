"""Damaged stores (a truncated or non-JSON commit record or zarr.json, a truncated, missing or altered chunk)
give one-line errors naming the part; ``alloop status --check`` finds them without writing; a full disk during
a commit leaves the previous commit intact."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from store_helpers import make_frame, make_label

from alloop.cli import main
from alloop.errors import StoreError
from alloop.store import CampaignStore, durable, store_path
from alloop.store import campaign as campaign_module
from alloop.store.integrity import EVERY_CHUNK_ATTR

N_FRAMES, N_LABELLED = 12, 8


def _build(run: Path, cheap) -> Path:
    """A committed store: frames, labels, a table, a checkpoint and a blob; returns its path."""
    path = store_path(run)
    with CampaignStore.create(path, {"fidelities": {"cheap": "hf-sto3g"}}) as store:
        ids = store.add_frames([make_frame(k) for k in range(N_FRAMES)], origin="md")
        labels = [make_label(k, len(make_frame(k)), fail=k == 3) for k in range(N_LABELLED)]
        store.add_labels(cheap, ids[:N_LABELLED], labels)
        store.append_rows("metrics", cycle=[0, 1], force_mae=[0.2, 0.1])
        store.add_checkpoint(b"weights-0", {"cycle": 0})
        store.put_blob("replica-0", b"state")
        store.commit(cycle=0, phase="label")
    return path


def _chunk(path: Path, array: str) -> Path:
    """The one chunk file of ``array`` in a small store."""
    (chunk,) = [p for p in (path / array / "c").rglob("*") if p.is_file()]
    return chunk


def _truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


def _snapshot(path: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file and directory of the store."""
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns) for p in [path, *path.rglob("*")]}


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"alloop {command}: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# -- the commit record ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "not JSON", "empty"])
def test_a_damaged_commit_record_is_named_not_mistaken_for_a_foreign_group(tmp_path, capsys, cheap, damage):
    path = _build(tmp_path / "run", cheap)
    record = path / "zarr.json"
    {"truncated": _truncate, "not JSON": lambda f: f.write_bytes(b"\x89PNG{garbage"),
     "empty": lambda f: f.write_bytes(b"")}[damage](record)
    for argv in (["status", str(tmp_path / "run")], ["status", "--check", str(path)],
                 ["export", str(path), "--fidelity", "cheap", "-o", str(tmp_path / "out.extxyz")]):
        assert main(argv) == 1
        err = _one_line_error(capsys, argv[0])
        assert f"the commit record {record} is damaged" in err and "restore" in err
        assert "not an alloop campaign store" not in err
    with pytest.raises(StoreError, match="commit record .* is damaged"):
        CampaignStore.open(path, "a")


def test_a_foreign_zarr_group_is_still_called_one(tmp_path):
    path = tmp_path / "plain.zarr"
    zarr.open_group(path, mode="w")
    with pytest.raises(StoreError, match="is a Zarr group but not an alloop campaign store"):
        CampaignStore.open(path)


# -- array metadata and chunks ---------------------------------------------------------------------------


@pytest.mark.parametrize("node", ["frames/positions", "frames", "labels/{cheap}"])
@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_damaged_zarr_json_of_a_node_is_named(tmp_path, capsys, cheap, node, damage):
    path = _build(tmp_path / "run", cheap)
    node = node.format(cheap=cheap.hash())
    meta = path / node / "zarr.json"
    _truncate(meta) if damage == "truncated" else meta.unlink()
    assert main(["export", str(path), "--fidelity", "cheap", "-o", str(tmp_path / "out.extxyz")]) == 1
    err = _one_line_error(capsys, "export")
    expected = "its zarr.json cannot be read" if damage == "truncated" else "missing (no zarr.json)"
    assert f"is damaged: {node}: {expected}" in err and "alloop status --check" in err


CHUNK_CASES = [
    ("frames/positions", "truncated"),  # the case: export ended in blosc's RuntimeError
    ("frames/positions", "missing"),  # read back as NaN positions before
    ("frames/flags", "missing"),  # a chunk of fill values (all zero flags): zarr used to skip writing it
    ("labels/{cheap}/forces", "truncated"),
    ("labels/{cheap}/reason", "truncated"),  # strings: zstd, not blosc
]


@pytest.mark.parametrize(("array", "damage"), CHUNK_CASES)
def test_a_damaged_chunk_is_named_by_reads_and_by_check(tmp_path, capsys, cheap, array, damage):
    path = _build(tmp_path / "run", cheap)
    array = array.format(cheap=cheap.hash())
    chunk = _chunk(path, array)
    _truncate(chunk) if damage == "truncated" else chunk.unlink()
    problem = "cannot be decoded" if damage == "truncated" else "is missing"
    key = chunk.relative_to(path / array).as_posix()

    with CampaignStore.open(path) as store:
        with pytest.raises(StoreError, match=f"{array}: chunk {key} {problem}"):
            store.get_frames()  # reads frames/*
            store.labels(cheap)  # reads labels/<hash>/*
        damaged = [c for c in store.verify() if not c.ok]
    assert [c.part for c in damaged] == [array] and f"chunk {key} {problem}" in damaged[0].problem

    assert main(["export", str(tmp_path / "run"), "--fidelity", "cheap", "-o", str(tmp_path / "out.extxyz")]) == 1
    err = _one_line_error(capsys, "export")
    assert f"{path} is damaged: {array}: chunk {key} {problem}" in err and f"alloop status --check {path}" in err
    assert not (tmp_path / "out.extxyz").exists()

    assert main(["status", "--check", str(tmp_path / "run")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in out if line.strip().startswith("DAMAGED")] == [array]
    assert sum(line.strip().startswith("ok ") for line in out) == len(_parts(path)) - 1
    assert out[-1].endswith("1 damaged: restore the store from a backup")


def _parts(path: Path) -> list[str]:
    """Every part --check reads in the store built by _build: its committed columns, checkpoints and blobs."""
    record = json.loads((path / "zarr.json").read_text())["attributes"]["commit"]
    return [*record["crc32"], *(f"checkpoints/v{e['version']}" for e in record["checkpoints"]),
            *(f"blobs/{n}/v{e['version']}" for n, e in record["blobs"].items())]


def test_a_chunk_that_decodes_to_other_rows_fails_the_checksum(tmp_path, capsys, cheap):
    path = _build(tmp_path / "run", cheap)
    energy = zarr.open_array(path / "labels" / cheap.hash() / "energy", mode="r+")
    energy[2] = energy[2] + 1.0  # a valid chunk with one committed value changed
    with CampaignStore.open(path) as store:
        checks = {c.part: c for c in store.verify()}
    bad = checks[f"labels/{cheap.hash()}/energy"]
    assert not bad.ok and "CRC-32 of its 8 rows" in bad.problem and bad.compared == "crc32"
    assert sum(not c.ok for c in checks.values()) == 1
    assert main(["status", "--check", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and [p["part"] for p in report["parts"] if not p["ok"]] == [bad.part]


def test_a_damaged_checkpoint_is_named(tmp_path, capsys, cheap):
    path = _build(tmp_path / "run", cheap)
    _truncate(_chunk(path, "checkpoints/v0"))
    with CampaignStore.open(path) as store:
        with pytest.raises(StoreError, match="checkpoints/v0: chunk c/0 cannot be decoded"):
            store.checkpoint()
        assert store.get_blob("replica-0") == b"state"
    assert main(["status", "--check", str(path)]) == 1
    assert "DAMAGED  checkpoints/v0" in capsys.readouterr().out


# -- alloop status --check on sound stores -----------------------------------------------------------------


def test_check_reads_everything_and_writes_nothing_beside_a_live_writer(tmp_path, capsys, cheap):
    path = _build(tmp_path / "run", cheap)
    before = _snapshot(path)
    with CampaignStore.open(path, "a"):  # the writer's lock does not stop a check
        assert main(["status", "--check", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert _snapshot(path) == before
    parts = _parts(path)
    assert out[-1] == f"{len(parts)} parts, all ok"
    listed = [line.split()[1] for line in out[1:-1]]
    assert sorted(listed) == sorted(parts) and all(line.split()[0] == "ok" for line in out[1:-1])
    n_atoms = sum(len(make_frame(k)) for k in range(N_FRAMES))
    assert f"ok frames/positions {n_atoms} rows crc32" in [" ".join(line.split()) for line in out]


def test_a_store_written_before_checksums_is_checked_by_decoding(tmp_path, capsys, cheap):
    """No ``crc32`` in the record and chunks of fill values not written: still readable, still checked."""
    path = _build(tmp_path / "run", cheap)
    root = path / "zarr.json"
    meta = json.loads(root.read_text())
    del meta["attributes"]["commit"]["crc32"]
    root.write_text(json.dumps(meta))
    for array_meta in path.rglob("zarr.json"):
        data = json.loads(array_meta.read_text())
        if data.get("attributes", {}).pop(EVERY_CHUNK_ATTR, None):
            array_meta.write_text(json.dumps(data))
    _chunk(path, "frames/flags").unlink()  # all zero: zarr did not write it
    with CampaignStore.open(path) as store:
        assert store.frame_meta()["flags"].tolist() == [0] * N_FRAMES
        checks = store.verify()
    assert all(c.ok for c in checks) and {c.compared for c in checks} == {"decoded", "sha256"}
    _truncate(_chunk(path, "frames/positions"))
    assert main(["status", "--check", str(path)]) == 1
    assert "DAMAGED  frames/positions" in capsys.readouterr().out


# -- a full disk during a commit -----------------------------------------------------------------------------


def _no_partial_files_left(path: Path, safety_s: float = 60.0) -> bool:
    """True once no temporary file is left under ``path``. When a commit raises, zarr's other chunk writes of
    it may still be in flight on its event loop (each then lands or fails, and removes its temporary file);
    the clock is only a safety net."""
    deadline = time.monotonic() + safety_s
    while list(path.rglob("*.partial")):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _full_disk_after(monkeypatch, writes: int) -> list[str]:
    """Make the store's writes fail with ENOSPC half-way through write number ``writes`` (0-based) and after;
    returns the list the (temporary) files written are appended to."""
    names: list[Path] = []
    real = durable.write_bytes

    def write(fh, data) -> None:
        names.append(Path(fh.name))
        if len(names) > writes:
            view = memoryview(data).cast("B")
            real(fh, view[: len(view) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fh, data)

    monkeypatch.setattr(durable, "write_bytes", write)
    return names


def _second_batch(store: CampaignStore, cheap) -> None:
    """Frames, labels, table rows and a checkpoint that grow every array (and rewrite their last chunk)."""
    ids = store.add_frames([make_frame(k) for k in range(N_FRAMES, 3000)], origin="md")
    store.add_labels(cheap, ids[:50], [make_label(k, len(make_frame(k))) for k in range(N_FRAMES, N_FRAMES + 50)])
    store.append_rows("metrics", cycle=[2], force_mae=[0.05])
    store.add_checkpoint(b"weights-1", {"cycle": 1})


def _content(path: Path, cheap) -> str:
    """Everything committed, as JSON (NaN-safe to compare)."""
    with CampaignStore.open(path) as store:
        frames = store.get_frames()
        labels = store.labels(cheap)
        return json.dumps({
            "seq": store.seq,
            "positions": np.concatenate([f.positions for f in frames]).tolist(),
            "meta": {k: v.tolist() for k, v in store.frame_meta().items()},
            "labels": (labels.frame_id.tolist(), labels.energy.tolist(), labels.forces.tolist()),
            "metrics": {k: v.tolist() for k, v in store.table("metrics").items()},
            "checkpoints": store.checkpoints(),
            "blob": store.get_blob("replica-0").hex(),
            "checks_ok": all(c.ok for c in store.verify()),
        }, sort_keys=True)


def _writes_of_a_commit(tmp_path: Path, monkeypatch, cheap) -> int:
    """How many files the second batch's commit writes (counted on a copy of the store)."""
    names = _full_disk_after(monkeypatch, 10**9)
    path = _build(tmp_path / "count", cheap)
    with CampaignStore.open(path, "a") as store:
        _second_batch(store, cheap)
        names.clear()
        store.commit()
    monkeypatch.undo()
    assert _is_record(names[-1], path) and not any(_is_record(n, path) for n in names[:-1]) and len(names) > 20
    return len(names)


def _is_record(written: Path, path: Path) -> bool:
    """Whether a temporary file is the next root zarr.json (the commit record)."""
    return written.parent == path and written.name.startswith("zarr.json.")


@pytest.mark.parametrize("when", ["first", "middle", "record"])
def test_a_full_disk_during_a_commit_leaves_the_previous_commit(tmp_path, monkeypatch, cheap, when):
    n_writes = _writes_of_a_commit(tmp_path, monkeypatch, cheap)
    path = _build(tmp_path / "run", cheap)
    before = _content(path, cheap)
    assert json.loads(before)["seq"] == 1 and json.loads(before)["checks_ok"]
    with CampaignStore.open(path, "a") as store:
        _second_batch(store, cheap)
        names = _full_disk_after(monkeypatch, {"first": 0, "middle": n_writes // 2, "record": n_writes - 1}[when])
        with pytest.raises(StoreError, match=f"the disk holding {path} is full .*commit #1 .* intact") as caught:
            store.commit()
        assert isinstance(caught.value.__cause__, OSError) and caught.value.__cause__.errno == errno.ENOSPC
        assert _is_record(names[-1], path) == (when == "record")
        with pytest.raises(StoreError, match="reopen the store"):
            store.commit()
    monkeypatch.undo()
    assert _no_partial_files_left(path)  # failed writes leave no temporary files
    assert _content(path, cheap) == before
    with CampaignStore.open(path, "a") as store:  # space freed: the campaign goes on from commit #1
        assert store.n_frames == N_FRAMES
        _second_batch(store, cheap)
        assert store.commit() == 2
    with CampaignStore.open(path) as store:
        assert store.n_frames == 3000 and all(c.ok for c in store.verify())


def test_a_full_disk_while_flushing_between_commits(tmp_path, monkeypatch, cheap):
    path = _build(tmp_path / "run", cheap)
    before = _content(path, cheap)
    with CampaignStore.open(path, "a") as store:
        monkeypatch.setattr(campaign_module, "FLUSH_BYTES", 0)  # every add writes its rows at once
        _full_disk_after(monkeypatch, 3)
        with pytest.raises(StoreError, match="is full .*nothing since commit #1 was saved"):
            store.add_frames([make_frame(k) for k in range(N_FRAMES, 200)])
        with pytest.raises(StoreError, match="reopen the store"):
            store.add_frames([make_frame(0)])
    monkeypatch.undo()
    assert _content(path, cheap) == before
