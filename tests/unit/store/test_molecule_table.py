"""Per-molecule tables of a store (alloop.evaluation.molecule_table): status, report and a store of one molecule."""

from __future__ import annotations

import json

import numpy as np
from ase.build import molecule
from store_helpers import make_label

from alloop.cli import main
from alloop.evaluation.molecule_table import format_molecules, molecule_status
from alloop.report.summary import summary_markdown
from alloop.store import CampaignStore, store_path, tables
from alloop.store.schema import FrameFlag

CONFIG = {"name": "m", "fidelities": {"cheap": "hf-sto3g", "expensive": "mp2-dz"}}


def _eval_rows(store, version, scores):
    names = list(scores)
    tables.append(store, tables.EVAL_MOLECULES, model_version=[version] * len(names), cycle=[version - 1] * len(names),
                  molecule=names, n_frames=[5] * len(names), eval_force_mae_eV_per_A=[scores[n] for n in names],
                  eval_force_rmse_eV_per_A=[0.0] * len(names), eval_energy_mae_eV=[0.0] * len(names),
                  eval_energy_mae_per_atom_eV=[0.002] * len(names))


def _two_molecules(path, cheap, expensive):
    store = CampaignStore.create(path, CONFIG)
    water, methane = molecule("H2O"), molecule("CH4")
    store.add_frames([water, methane], origin="bootstrap", cycle=-1)
    flags = np.array([int(FrameFlag.FLAGGED), 0, 0, int(FrameFlag.FLAGGED), int(FrameFlag.FLAGGED)])
    store.add_frames([water, water, methane, methane, methane], origin="md", cycle=0, flags=flags)
    store.add_labels(cheap, [0, 1, 2, 4, 5], [make_label(k, 3 if k in (0, 2) else 5, fail=k == 5)
                                              for k in (0, 1, 2, 4, 5)])
    store.add_labels(expensive, [0, 1], [make_label(0, 3), make_label(1, 5)])
    _eval_rows(store, 1, {"H2O": 0.1, "CH4": 0.2})
    _eval_rows(store, 2, {"H2O": 0.05, "CH4": 0.08, "CO2": 0.3})  # the set holds a molecule the campaign lacks
    store.commit()
    return store


def test_each_molecule_has_its_frames_flags_labels_and_errors(tmp_path, cheap, expensive):
    with _two_molecules(store_path(tmp_path / "run"), cheap, expensive) as store:
        part = molecule_status(store)
        text = summary_markdown(store)
    assert part["fidelities"] == ["hf-sto3g", "mp2-dz"] and part["model_version"] == 2
    water, methane, co2 = part["rows"]
    assert (water["molecule"], water["frames"], water["md_frames"], water["flagged_share"]) == ("H2O", 3, 2, 0.5)
    assert water["labels"] == {"hf-sto3g": 2, "mp2-dz": 1}  # frames 0 and 2 (cheap), 0 (expensive)
    assert (methane["frames"], methane["md_frames"], methane["flagged_share"]) == (4, 3, 2 / 3)
    assert methane["labels"] == {"hf-sto3g": 2, "mp2-dz": 1}  # frame 5's cheap label failed: not counted
    assert methane["eval_force_mae_eV_per_A"] == 0.08 and water["eval_frames"] == 5  # the newest model's
    assert (co2["frames"], co2["flagged_share"], co2["labels"]["hf-sto3g"]) == (0, None, 0)
    lines = format_molecules(part)
    assert lines[0].startswith("molecules    3 (") and "model v2" in lines[0]
    assert lines[2].split() == ["H2O", "3", "2", "50", "%", "2", "1", "5", "0.0500", "2.00"]
    assert "| H2O | 3 | 2 | 50 % | 2 | 1 | 5 | 0.0500 | 2.00 |" in text  # summary.md
    assert "| model | H2O | CH4 | CO2 |" in text and "| 1 | 0.1000 | 0.2000 | - |" in text


def test_status_prints_the_table_and_one_molecule_has_none(tmp_path, capsys, cheap, expensive):
    _two_molecules(store_path(tmp_path / "run"), cheap, expensive).close()
    assert main(["status", str(tmp_path / "run"), "--json"]) == 0
    assert [r["molecule"] for r in json.loads(capsys.readouterr().out)["molecules"]["rows"]] == ["H2O", "CH4", "CO2"]
    assert main(["status", str(tmp_path / "run")]) == 0
    assert "molecules    3" in capsys.readouterr().out
    with CampaignStore.create(store_path(tmp_path / "one"), CONFIG) as store:
        store.add_frames([molecule("H2O")] * 2, origin="md")
        store.commit()
        assert molecule_status(store) is None and "Per molecule" not in summary_markdown(store)
