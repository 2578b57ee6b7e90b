"""Labels of one fidelity hash made by different PySCF/libxc versions are not mixed silently: the store
records the versions per fidelity, import and resume refuse a mix unless allowed, old stores still work."""

from __future__ import annotations

import json
from dataclasses import replace

import ase.io
import numpy as np
import pyscf
import pytest
from store_helpers import make_frame, make_label

from alloop.campaign.loop import runner
from alloop.cli import main
from alloop.config import load_campaign
from alloop.errors import AlloopError, StoreError
from alloop.io import attach_label, write_extxyz
from alloop.store import CampaignStore, store_path

CAMPAIGN = """
name: unit
system: {structures: H2O}
fidelities: {cheap: hf-sto3g, expensive: {name: hf-631g, method: hf, basis: 6-31g}}
model: pair
schedule: {max_labels: {cheap: 30, expensive: 12}, bootstrap: {n_samples: 4, n_expensive: 2}}
evaluation: false
"""


def _with(k: int, pyscf_version: str | None):
    label = make_label(k, 1 + k % 9)
    return replace(label, provenance={"pyscf": pyscf_version} if pyscf_version else {})


def _file(tmp_path, name: str, ks: range, pyscf_version: str | None):
    frames = []
    for k in ks:
        label = make_label(k, len(make_frame(k)))
        info = {"pyscf_version": pyscf_version} if pyscf_version else {}
        frames.append(attach_label(make_frame(k), label.energy_eV, label.forces_eV_per_A, info))
    write_extxyz(tmp_path / name, frames)
    return str(tmp_path / name)


def test_the_store_refuses_a_mix_unless_allowed_and_keeps_the_versions(tmp_path, cheap):
    path = tmp_path / "s.zarr"
    with CampaignStore.create(path) as store:
        store.add_frames([make_frame(k) for k in range(4)])
        store.add_labels(cheap, [0, 1], [_with(0, "2.6.2"), _with(1, "2.6.2")])
        store.commit()
        with pytest.raises(StoreError, match=r"PySCF 2\.6\.2 in the store, 2\.14\.0 new.*--allow-version-mix"):
            store.add_labels(cheap, [2], [_with(2, "2.14.0")])
        store.add_labels(cheap, [2], [_with(2, None)])  # unknown: accepted
        store.allow_version_mix = True
        store.add_labels(cheap, [3], [_with(3, "2.14.0")])
        store.commit()
    with CampaignStore.open(path) as store:
        assert store.label_provenance(cheap.hash()) == {"pyscf": "2.6.2; 2.14.0"}
        assert len(store.labels(cheap)) == 4


def test_import_refuses_labels_of_another_pyscf_before_writing(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(["import", _file(tmp_path, "a.extxyz", range(3), "2.6.2"), run, "--fidelity", "hf-sto3g"]) == 0
    other = _file(tmp_path, "b.extxyz", range(3, 6), "2.7.0")
    capsys.readouterr()
    assert main(["import", other, run, "--fidelity", "hf-sto3g"]) == 1
    err = capsys.readouterr().err
    assert "PySCF 2.6.2 in the store, 2.7.0 new" in err and "--allow-version-mix" in err
    assert len(err.strip().splitlines()) == 1
    with CampaignStore.open(store_path(run)) as store:
        assert store.n_frames == 3 and store.seq == 1  # nothing written
    assert main(["import", other, run, "--fidelity", "hf-sto3g", "--allow-version-mix"]) == 0
    out = tmp_path / "out.extxyz"
    assert main(["export", run, "--fidelity", "hf-sto3g", "-o", str(out)]) == 0
    assert {a.info["pyscf_version"] for a in ase.io.read(out, ":")} == {"2.6.2; 2.7.0"}


def test_labels_without_versions_are_accepted_with_a_note(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(["import", _file(tmp_path, "a.extxyz", range(3), "2.6.2"), run, "--fidelity", "hf-sto3g"]) == 0
    assert main(["import", _file(tmp_path, "b.extxyz", range(3, 5), None), run, "--fidelity", "hf-sto3g"]) == 0
    assert "note: 2 labels of" in capsys.readouterr().err
    with CampaignStore.open(store_path(run)) as store:
        assert store.n_frames == 5 and store.label_provenance(store.fidelity_hash("hf-sto3g")) == {"pyscf": "2.6.2"}


def test_an_old_store_without_versions_opens_takes_labels_and_records_them_from_then_on(tmp_path, cheap, capsys):
    path = store_path(tmp_path / "run")
    with CampaignStore.create(path) as store:  # labels that record no versions: what older alloop wrote
        store.add_frames([make_frame(k) for k in range(3)])
        store.add_labels(cheap, [0, 1, 2], [make_label(k, 1 + k) for k in range(3)])
        store.commit()
    entry = json.loads((path / "zarr.json").read_text())["attributes"]["commit"]["labels"][cheap.hash()]
    assert set(entry) == {"name", "rows", "atoms"}
    assert main(["import", _file(tmp_path, "new.extxyz", range(3, 5), "2.6.2"), str(tmp_path / "run"),
                 "--fidelity", "hf-sto3g"]) == 0
    assert "predate version records (unknown); recording PySCF 2.6.2 from now on" in capsys.readouterr().err
    with CampaignStore.open(path) as store:
        assert store.label_provenance(cheap.hash()) == {"pyscf": "2.6.2"}
        table = store.labels(cheap)
        assert table.provenance_from == 3 and len(table) == 5
    out = tmp_path / "out.extxyz"
    assert main(["export", str(tmp_path / "run"), "--fidelity", "hf-sto3g", "-o", str(out)]) == 0
    assert [a.info.get("pyscf_version") for a in ase.io.read(out, ":")] == [None, None, None, "2.6.2", "2.6.2"]


class _Stop(Exception):
    """Raised instead of starting a Dask cluster: the resume got past its checks."""


def _campaign_store(tmp_path, pyscf_version: str | None):
    config = tmp_path / "unit.yaml"
    config.write_text(CAMPAIGN)
    cfg = load_campaign(config)
    run_dir = tmp_path / "run"
    with CampaignStore.create(store_path(run_dir), cfg.to_dict()) as store:
        store.add_frames([make_frame(2), make_frame(11)])
        labels = [_with(k, pyscf_version) for k in (2, 11)]
        store.add_labels(cfg.cheap_fidelity, [0, 1], [replace(r, forces_eV_per_A=np.zeros((3, 3))) for r in labels])
        store.commit()
    return run_dir


def _no_cluster(*_args, **_kwargs):
    raise _Stop


def test_resume_refuses_another_pyscf_than_the_stores_labels(tmp_path, monkeypatch, capsys):
    run_dir = _campaign_store(tmp_path, "1.0.0")
    monkeypatch.setattr(runner, "_client", _no_cluster)
    with pytest.raises(AlloopError, match=rf"PySCF 1\.0\.0 in the store, {pyscf.__version__} new"):
        runner.resume_campaign(run_dir, progress=False, echo=lambda _: None)
    assert main(["resume", str(run_dir), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "--allow-version-mix" in err and len(err.strip().splitlines()) == 1
    lines: list[str] = []
    with pytest.raises(_Stop):
        runner.resume_campaign(run_dir, progress=False, echo=lines.append, allow_version_mix=True)
    assert any(f"labels from PySCF {pyscf.__version__} join those from PySCF 1.0.0" in line for line in lines)


def test_resume_with_the_same_pyscf_goes_on_silently(tmp_path, monkeypatch):
    run_dir = _campaign_store(tmp_path, pyscf.__version__)
    monkeypatch.setattr(runner, "_client", _no_cluster)
    lines: list[str] = []
    with pytest.raises(_Stop):
        runner.resume_campaign(run_dir, progress=False, echo=lines.append)
    assert not any("version" in line for line in lines)


def test_resume_of_a_store_without_versions_goes_on_with_a_note(tmp_path, monkeypatch):
    run_dir = _campaign_store(tmp_path, None)
    monkeypatch.setattr(runner, "_client", _no_cluster)
    lines: list[str] = []
    with pytest.raises(_Stop):
        runner.resume_campaign(run_dir, progress=False, echo=lines.append)
    assert any("the cheap labels (hf-sto3g" in line and "record no software versions" in line for line in lines)
    assert "record no software versions" in (run_dir / "campaign.log").read_text()
