"""A campaign over two molecules (water and methane) in one store: real PySCF HF labels, real LocalCluster, real MD,
real store. Both are explored, labelled, scored and exported, each frame with its own composition."""

from __future__ import annotations

import json
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import molecule

from alloop.campaign.loop.runner import start_campaign
from alloop.cli import main
from alloop.config import load_campaign
from alloop.io import attach_label, write_extxyz
from alloop.labeling.pyscf_labeler import PySCFLabeler
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path
from alloop.store.schema import ORIGIN_CODES
from harness.campaigns import check_invariants, write_tiny

MOLECULES = ("H2O", "CH4")


def write_two_molecules(folder: Path) -> Path:
    """The tiny campaign over water and methane (two replicas each), with an evaluation set of both labelled at
    its expensive fidelity (HF/6-31G)."""
    yaml = write_tiny(folder, cycles=2, min_cheap=4)
    text = yaml.read_text().replace("system: {structures: H2O}", "system: {structures: [H2O, CH4]}")
    yaml.write_text(text.replace("n_replicas: 2,", "n_replicas: 4,"))
    labeler = PySCFLabeler(load_campaign(yaml).expensive_fidelity)
    rng = np.random.default_rng(5)
    frames = []
    for name in MOLECULES * 2:
        atoms = molecule(name)
        atoms.positions += rng.normal(scale=0.04, size=atoms.positions.shape)
        result = labeler.label(atoms)
        assert result.ok
        frames.append(attach_label(atoms, result.energy_eV, result.forces_eV_per_A))
    write_extxyz(folder / "eval.extxyz", frames)
    yaml.write_text(yaml.read_text().replace("evaluation: null", "evaluation: {structures: eval.extxyz}"))
    return yaml


def test_two_molecules_explored_labelled_scored_and_exported(tmp_path, capsys):
    yaml = write_two_molecules(tmp_path)
    run_dir = tmp_path / "run"
    lines: list[str] = []
    assert start_campaign(load_campaign(yaml), run_dir, progress=False, echo=lines.append) == "2 cycles done"
    out = check_invariants(run_dir, 2)
    with CampaignStore.open(store_path(run_dir)) as store:
        meta = store.frame_meta()
        formulas = np.array([a.get_chemical_formula() for a in store.get_frames()])
        labelled = {h: set(formulas[np.unique(store.labels(h).frame_id[store.labels(h).ok])].tolist())
                    for h in store.fidelities()}
    md = meta["origin"] == ORIGIN_CODES["md"]
    # replicas are dealt over the molecules: 0 and 2 run water, 1 and 3 methane, and every frame keeps its own atoms
    for replica, name in zip(range(4), MOLECULES * 2, strict=True):
        mine = md & (meta["replica"] == replica)
        assert mine.any() and set(formulas[mine].tolist()) == {name}, f"replica {replica}"
    bootstrap = formulas[meta["origin"] == ORIGIN_CODES["bootstrap"]]
    assert sorted(bootstrap[:2]) == sorted(MOLECULES)  # dealt over the molecules: the first ones cover both
    assert all(found == set(MOLECULES) for found in labelled.values())  # both molecules at both fidelities
    assert out["n_ok"] >= 6 + 4

    assert main(["status", str(run_dir), "--json"]) == 0
    rows = {r["molecule"]: r for r in json.loads(capsys.readouterr().out)["molecules"]["rows"]}
    assert set(rows) == set(MOLECULES)
    for name, row in rows.items():
        assert row["md_frames"] == int((md & (formulas == name)).sum()) > 0
        assert row["labels"]["hf-sto3g"] > 0 and row["labels"]["hf-631g"] > 0
        assert row["eval_frames"] == 2 and row["eval_force_mae_eV_per_A"] > 0  # the newest model, on its frames
    assert main(["status", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "molecules    2" in text and "\n  H2O " in text and "\n  CH4 " in text

    assert main(["evaluate", str(run_dir), str(tmp_path / "eval.extxyz"), "--json"]) == 0
    split = json.loads(capsys.readouterr().out)["per_molecule"]
    assert set(split) == set(MOLECULES)
    assert split["CH4"]["force_mae_eV_per_A"] == pytest.approx(rows["CH4"]["eval_force_mae_eV_per_A"])  # as scored

    assert main(["export", str(run_dir), "--fidelity", "cheap", "-o", str(tmp_path / "cheap.extxyz")]) == 0
    exported = ase.io.read(tmp_path / "cheap.extxyz", ":")
    assert {a.info["molecule"] for a in exported} == set(MOLECULES)
    assert all(a.info["molecule"] == a.get_chemical_formula() for a in exported)
    assert all(a.info["cycle"] in (0, 1) and a.info["replica"] >= 0 for a in exported if a.info["origin"] == "md")
    assert main(["report", str(run_dir)]) == 0
    capsys.readouterr()
    summary = (run_dir / "report" / "summary.md").read_text()
    assert "Per molecule" in summary and "| H2O |" in summary and "| CH4 |" in summary
