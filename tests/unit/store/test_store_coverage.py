"""The conformer basins of a campaign's labelled frames (alloop.store.coverage), and alloop status printing them."""

from __future__ import annotations

from ase.build import molecule
from store_helpers import make_frame, make_label

from alloop.cli import main
from alloop.conformers import conformer_starts
from alloop.store import CampaignStore, store_path
from alloop.store.coverage import format_basins, labelled_basins


def test_labelled_frames_are_counted_per_fidelity_cycle_and_basin(tmp_path, capsys, cheap, expensive):
    trans, gauche_minus, gauche_plus = conformer_starts(molecule("CH3CH2OH"), 3)  # 0, 120, 240 deg from trans
    path = store_path(tmp_path / "run")
    with CampaignStore.create(path, {}) as store:
        boot = store.add_frames([trans, gauche_plus, gauche_minus], origin="bootstrap", cycle=-1)
        md = store.add_frames([trans, trans, gauche_plus, gauche_minus], origin="md", cycle=0)
        store.add_labels(cheap, [*boot, *md], [make_label(int(k), 9, fail=k == md[3]) for k in [*boot, *md]])
        store.add_labels(expensive, [boot[0], md[2]], [make_label(0, 9), make_label(1, 9)])
        store.commit(cycle=0, phase="labelled")
    with CampaignStore.open(path, "r") as store:
        got = labelled_basins(store)
    assert got["basins"] == ["trans", "gauche+", "gauche-"]
    # the failed cheap label (md[3], gauche-) is not counted
    assert got["fidelities"] == {"hf-sto3g": {-1: [1, 1, 1], 0: [2, 1, 0]}, "mp2-dz": {-1: [1, 0, 0], 0: [0, 1, 0]}}
    lines = format_basins(got)
    assert "hf-sto3g" in lines[1] and "bootstrap 1/1/1, cycle 0 2/1/0; all 50 / 33 / 17 %" in lines[1]
    assert main(["status", str(tmp_path / "run")]) == 0
    assert "labelled frames by conformer basin" in capsys.readouterr().out


def test_no_histogram_without_rotors_or_labels(tmp_path, cheap):
    path = store_path(tmp_path / "run")
    with CampaignStore.create(path, {}) as store:
        store.add_frames([molecule("H2O")] * 2, origin="md")
        assert labelled_basins(store) is None  # no labels
        store.add_labels(cheap, [0, 1], [make_label(0, 3), make_label(1, 3)])
        assert labelled_basins(store) is None  # water has no rotatable bond
        store.add_frames([make_frame(4)], origin="md")
        store.commit()
    assert format_basins(None) == []
