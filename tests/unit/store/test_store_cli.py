"""alloop status / export / import, and the exact extxyz -> store -> extxyz round trip."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
from ase import Atoms
from store_helpers import make_frame, make_label

from alloop.cli import main
from alloop.io import attach_label, write_extxyz
from alloop.store import CampaignStore, store_path


def _labelled(n: int) -> list[Atoms]:
    out = []
    for k in range(n):
        frame = make_frame(k)
        label = make_label(k, len(frame))
        out.append(attach_label(frame, label.energy_eV, label.forces_eV_per_A * 1e-3 + 1e-7 / 3, {"source": "test"}))
    periodic = Atoms("Cu2", positions=[[0, 0, 0], [1.3, 1.3, 0.1 / 3]], cell=np.eye(3) * 3.6 + 0.01 / 7, pbc=[1, 1, 0])
    out.append(attach_label(periodic, -1 / 3, np.full((2, 3), 2 / 7)))
    return out


def _same(a: list[Atoms], b: list[Atoms]) -> bool:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.numbers, y.numbers) and np.array_equal(x.positions, y.positions)
        assert x.get_potential_energy() == y.get_potential_energy()
        assert np.array_equal(x.get_forces(), y.get_forces())
        assert np.array_equal(x.cell.array, y.cell.array) and np.array_equal(x.pbc, y.pbc)
    return True


def test_extxyz_store_extxyz_round_trip_is_bit_exact(tmp_path, capsys):
    source = tmp_path / "in.extxyz"
    write_extxyz(source, _labelled(12))
    original = ase.io.read(source, ":")
    _same(_labelled(12), original)  # our writer is lossless (ASE's prints 8 decimals)
    run = tmp_path / "run"
    assert main(["import", str(source), str(run), "--fidelity", "hf-sto3g", "--batch", "5"]) == 0
    err = capsys.readouterr().err
    assert "imported 5/13 frames (commit #1)" in err and "imported 13/13 frames (commit #3)" in err
    out = tmp_path / "out.extxyz"
    assert main(["export", str(run), "--fidelity", "hf-sto3g", "-o", str(out)]) == 0
    exported = ase.io.read(out, ":")
    assert _same(original, exported)
    assert [a.info["frame_id"] for a in exported] == list(range(13))
    assert exported[0].info["origin"] == "import" and exported[0].info["label_status"] == "ok"
    assert exported[0].info["fidelity"] == "hf-sto3g"
    assert [a.info["molecule"] for a in exported] == [a.get_chemical_formula() for a in original]  # Hill formulas


def test_status_counts_labels_cost_and_models(tmp_path, capsys, cheap, expensive):
    path = store_path(tmp_path / "run")
    with CampaignStore.create(path, {"fidelities": {"cheap": "hf-sto3g", "expensive": "mp2-dz"}}) as store:
        store.add_frames([make_frame(k) for k in range(5)], origin="md")
        store.add_frames([make_frame(9)], origin="bootstrap", flags=1)
        ids = [0, 1, 2, 3]
        store.add_labels(cheap, ids, [make_label(k, 1 + k, fail=k == 2) for k in ids])
        store.add_labels(expensive, [1], [make_label(1, 2)])
        store.add_checkpoint(b"weights", {"mae": 0.1})
        store.append_rows("cycle_metrics", cycle=[0], force_mae=[0.2])
        store.commit(cycle=0, phase="train")
    assert main(["status", str(tmp_path / "run"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"]["total"] == 6 and summary["frames"]["by_origin"] == {"bootstrap": 1, "md": 5}
    assert summary["frames"]["by_flag"]["FLAGGED"] == 1
    by_name = {lab["name"]: lab for lab in summary["labels"]}
    assert by_name["hf-sto3g"]["by_status"] == {"ok": 3, "scf_not_converged": 1, "failed": 0, "inconsistent": 0}
    assert by_name["hf-sto3g"]["cpu_seconds"] == 1 + 2 + 0.5 + 4 and by_name["mp2-dz"]["total"] == 1
    assert summary["commit"]["seq"] == 1 and summary["commit"]["cycle"] == 0 and summary["commit"]["phase"] == "train"
    assert summary["checkpoints"] == [{"version": 0, "role": "model", "nbytes": 7}]
    assert summary["tables"] == {"cycle_metrics": 1}
    assert main(["status", str(path)]) == 0  # the store directory itself works too
    text = capsys.readouterr().out
    assert "frames       6 (16 atoms): bootstrap 1, md 5" in text
    assert "hf-sto3g" in text and cheap.hash() in text and "phase train" in text and "1 checkpoints" in text


def test_export_roles_all_status_and_import_by_role(tmp_path, capsys, cheap):
    path = store_path(tmp_path / "run")
    with CampaignStore.create(path, {"fidelities": {"cheap": {"preset": "hf-sto3g"}, "expensive": "mp2-dz"}}) as store:
        store.add_frames([make_frame(k) for k in range(3)])
        store.add_labels(cheap, [0, 1, 2], [make_label(0, 1), make_label(1, 2, fail=True), make_label(2, 3)])
        store.commit()
    ok_file, all_file = tmp_path / "ok.extxyz", tmp_path / "all.extxyz"
    assert main(["export", str(tmp_path / "run"), "--fidelity", "cheap", "-o", str(ok_file)]) == 0
    assert [a.info["frame_id"] for a in ase.io.read(ok_file, ":")] == [0, 2]
    assert main(["export", str(tmp_path / "run"), "--fidelity", "cheap", "-o", str(all_file), "--all-status"]) == 0
    frames = ase.io.read(all_file, ":")
    assert [a.info["label_status"] for a in frames] == ["ok", "scf_not_converged", "ok"]
    assert frames[1].calc is None and frames[1].info["label_reason"] == "no convergence for 1"
    assert main(["export", str(tmp_path / "run"), "--fidelity", "expensive", "-o", str(ok_file)]) == 1
    assert "no labels at fidelity mp2-dz" in capsys.readouterr().err
    # a failed export writes nothing; import by campaign role: labels land under the role's fidelity,
    # on the frames already in the store (the file holds frames 0 and 2)
    assert main(["import", str(all_file), str(tmp_path / "run"), "--fidelity", "expensive"]) == 1
    assert "frame 1 has no energy and forces" in capsys.readouterr().err
    assert main(["import", str(ok_file), str(tmp_path / "run"), "--fidelity", "expensive"]) == 0
    assert "and 2 labels for frames already in the store" in capsys.readouterr().out
    with CampaignStore.open(path) as store:
        assert store.n_frames == 3 and store.labels("mp2-dz").frame_id.tolist() == [0, 2]
        assert store.labels("mp2-dz").energy.tolist() == store.labels(cheap).energy[[0, 2]].tolist()
        assert store.frame_meta()["origin"].tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["status", "{tmp}/nowhere"], "alloop status: error: no such directory: {tmp}/nowhere"),
        (["status", "{tmp}"], "alloop status: error: {tmp} holds no campaign store"),
        (["export", "{tmp}/run", "--fidelity", "nope", "-o", "{tmp}/x.extxyz"], "unknown fidelity 'nope'"),
        (["import", "{tmp}/missing.xyz", "{tmp}/new", "--fidelity", "hf-sto3g"], "no such file: {tmp}/missing.xyz"),
        (["import", "{tmp}/plain.xyz", "{tmp}/new", "--fidelity", "hf-sto3g"], "frame 0 has no energy and forces"),
        (["import", "{tmp}/in.extxyz", "{tmp}/new", "--fidelity", "cheap"], "campaign roles: none"),
        (["import", "{tmp}/in.extxyz", "{tmp}/new", "--fidelity", "hf-sto3g", "--batch", "0"], "--batch must be"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    with CampaignStore.create(store_path(tmp_path / "run")) as store:
        store.commit()
    ase.io.write(tmp_path / "plain.xyz", make_frame(3))
    write_extxyz(tmp_path / "in.extxyz", _labelled(2))
    tmp = str(tmp_path)
    assert main([a.format(tmp=tmp) for a in argv]) == 1
    err = capsys.readouterr().err
    assert message.format(tmp=tmp) in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "new").exists()  # a failed import creates no store


def test_import_into_locked_store_fails_cleanly(tmp_path, capsys):
    write_extxyz(tmp_path / "in.extxyz", _labelled(2))
    with CampaignStore.create(store_path(tmp_path / "run")):
        assert main(["import", str(tmp_path / "in.extxyz"), str(tmp_path / "run"), "--fidelity", "hf-sto3g"]) == 1
    assert "already open for writing" in capsys.readouterr().err


def test_fidelity_resolution_prefers_the_stored_spec_up_to_charge_and_spin(tmp_path):
    from alloop.errors import StoreError
    from alloop.fidelity import load_fidelity
    from alloop.store import resolve_fidelity

    charged = load_fidelity("hf-sto3g", charge=1, spin=1)
    stored = {charged.hash(): {"name": "hf-sto3g", "spec": charged.model_dump()}}
    config = {"fidelities": {"cheap": "hf-sto3g", "expensive": {"preset": "hf-sto3g", "basis": "6-31g"}}}
    assert resolve_fidelity("cheap", config, stored).hash() == charged.hash()  # role -> preset -> stored (charge 1)
    assert resolve_fidelity("hf-sto3g", None, stored).hash() == charged.hash()
    assert resolve_fidelity(charged.hash(), None, stored).charge == 1
    other = resolve_fidelity("expensive", config, stored)  # different physics: not replaced by the stored one
    assert other.basis == "6-31g" and other.charge == 0
    assert resolve_fidelity("mp2-dz", None, {}).method == "mp2"
    neutral = load_fidelity("hf-sto3g")
    both = {**stored, neutral.hash(): {"name": "hf-sto3g", "spec": neutral.model_dump()}}
    assert resolve_fidelity("cheap", config, both).hash() == neutral.hash()  # exact hash match wins
    assert resolve_fidelity("hf-sto3g", None, both).hash() == neutral.hash()
    renamed = {h: {**v, "name": "mine"} for h, v in both.items()}
    with pytest.raises(StoreError, match="fidelity name 'mine' is ambiguous"):
        resolve_fidelity("mine", None, renamed)
    with pytest.raises(StoreError, match="fidelity role 'bad' of the campaign config: unknown fidelity preset"):
        resolve_fidelity("bad", {"fidelities": {"bad": "nope"}}, {})
