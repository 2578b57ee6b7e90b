"""The conformer basins of a campaign's labelled frames (alloop.store.coverage), and alloop status printing them."""

from __future__ import annotations

import json

import numpy as np
from ase.build import molecule
from store_helpers import assert_the_stored_summary_reads_the_same, make_frame, make_label

from alloop.cli import main
from alloop.store import CampaignStore, store_path
from alloop.store.coverage import basin_histogram, cumulative_shares, format_basins, labelled_basins
from alloop.system.conformers import conformer_starts, dihedrals, find_rotors, rotate


def _ethanol_at(phi_deg: list[float]) -> tuple[np.ndarray, list]:
    """Ethanol with its H-O-C-C dihedral turned to each of ``phi_deg`` (positions [f, 9, 3]), and all its rotors."""
    atoms = molecule("CH3CH2OH")
    rotors = find_rotors(atoms)
    oh = next(r for r in rotors if not r.symmetric)
    phi0 = dihedrals(atoms.positions, [oh])[0]
    frames = [rotate(atoms, oh, phi - phi0) for phi in phi_deg]
    np.testing.assert_allclose((dihedrals(np.array([a.positions for a in frames]), [oh])[:, 0] - phi_deg + 180) % 360
                               - 180, 0.0, atol=1e-8)
    return np.array([a.positions for a in frames]), rotors


def test_basin_histogram_counts_known_dihedrals():
    # trans |phi| > 120, gauche+ 0 < phi <= 120, gauche- -120 <= phi <= 0; angles 2 deg from each sector edge
    phi = [180.0, 122.0, -122.0, 60.0, 118.0, 2.0, -60.0, -118.0, -2.0, 170.0]
    cycles = np.array([-1, -1, -1, 0, 0, 0, 0, 2, 2, 2])
    positions, rotors = _ethanol_at(phi)
    # the methyl (a symmetric top) is among the rotors and has no basins: 3 combinations, not 9
    assert sum(r.symmetric for r in rotors) == 1
    got = basin_histogram(positions, cycles, rotors)
    assert got == {-1: [3, 0, 0], 0: [0, 3, 1], 2: [1, 0, 2]}
    done, shares, n = cumulative_shares(got)
    assert done == [-1, 0, 2] and n.tolist() == [3, 7, 10]
    np.testing.assert_allclose(shares, [[1, 0, 0], [3 / 7, 3 / 7, 1 / 7], [4 / 10, 3 / 10, 3 / 10]])
    done, shares, n = cumulative_shares(got, [1])  # cycle 1 labelled nothing: its share is cycle 0's
    assert done == [-1, 0, 1, 2] and n.tolist() == [3, 7, 7, 10]
    np.testing.assert_array_equal(shares[2], shares[1])
    assert basin_histogram(positions[:0], cycles[:0], rotors) == {}


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
    long = {**got, "fidelities": {"hf-sto3g": {-1: [1, 0, 0], **{c: [1, c % 2, 0] for c in range(100)}}}}
    line = format_basins(long)[1]  # a long campaign: the earlier cycles summed, the last five each
    assert "bootstrap 1/0/0, cycles 0-94 95/47/0, cycle 95 1/1/0, cycle 96 1/0/0" in line
    assert line.endswith("cycle 99 1/1/0; all 67 / 33 / 0 %") and "cycle 94 " not in line
    assert main(["status", str(tmp_path / "run")]) == 0
    text = capsys.readouterr().out
    assert "labelled frames by conformer basin of C-C-O-H (atoms " in text and ": trans / gauche+ / gauche-" in text
    assert main(["status", str(tmp_path / "run"), "--json"]) == 0
    part = json.loads(capsys.readouterr().out)["labelled_basins"]
    assert part["rotor_names"] == ["C-C-O-H"] and part["fidelities"]["mp2-dz"] == {"-1": [1, 0, 0], "0": [0, 1, 0]}
    assert_the_stored_summary_reads_the_same(tmp_path / "run", text, capsys)


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
    crystal = molecule("CH3CH2OH", cell=[8.0, 8.0, 8.0], pbc=True)  # rotors are for molecules: none, no error
    with CampaignStore.create(store_path(tmp_path / "bulk"), {}) as store:
        store.add_frames([crystal], origin="md")
        store.add_labels(cheap, [0], [make_label(0, 9)])
        store.commit()
        assert labelled_basins(store) is None


def test_recorded_codes_are_read_and_the_others_computed(tmp_path, cheap):
    """BasinRecorder writes each labelled frame's code as the campaign's labels come back (table frame_basins);
    labelled_basins reads those and computes the codes of frames it has none for (an older store, imports)."""
    from alloop.store import tables
    from alloop.store.coverage import BasinRecorder

    trans, gauche_minus, gauche_plus = conformer_starts(molecule("CH3CH2OH"), 3)
    path = store_path(tmp_path / "run")
    with CampaignStore.create(path, {}) as store:
        ids = store.add_frames([trans, gauche_plus, gauche_minus, trans], origin="md", cycle=0)
        store.add_labels(cheap, ids, [make_label(int(k), 9) for k in ids])
        recorder = BasinRecorder(store)
        for k in ids[:3]:
            recorder.add(int(k))
        recorder.add(int(ids[0]))  # a frame labelled at a second fidelity is recorded once
        recorder.flush()
        store.commit(cycle=0, phase="labelled")
        rows = tables.read(store, tables.FRAME_BASINS)
        assert rows["frame_id"].tolist() == ids[:3].tolist() and rows["code"].tolist() == [0, 1, 2]
        assert labelled_basins(store)["fidelities"] == {"hf-sto3g": {0: [2, 1, 1]}}  # ids[3] computed: trans
        # the recorded codes are what is counted: a (wrong) recorded code shows that they are read, not recomputed
        tables.append(store, tables.FRAME_BASINS, frame_id=[ids[3]], code=[2])
        store.commit(cycle=0, phase="labelled")
        assert labelled_basins(store)["fidelities"] == {"hf-sto3g": {0: [1, 1, 2]}}


def test_the_recorder_writes_nothing_without_rotors(tmp_path, cheap):
    from alloop.store import tables
    from alloop.store.coverage import BasinRecorder

    path = store_path(tmp_path / "run")
    with CampaignStore.create(path, {}) as store:
        ids = store.add_frames([molecule("H2O"), molecule("H2O")], origin="md", cycle=0)
        recorder = BasinRecorder(store)
        for k in ids:
            recorder.add(int(k))
        recorder.flush()
        store.commit(cycle=0, phase="labelled")
        assert tables.read(store, tables.FRAME_BASINS) == {}
