"""``alloop label`` in-process (--workers 0); the Dask path is tested in tests/integration."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase.build import molecule

from alloop.cli import main
from alloop.io import read_structures


@pytest.fixture
def frames_file(tmp_path):
    frames = []
    for seed in range(2):
        atoms = molecule("H2O")
        atoms.rattle(0.03, seed=seed)
        frames.append(atoms)
    broken = molecule("H2O")
    broken.positions[1] = broken.positions[0]
    frames.append(broken)
    path = tmp_path / "in.xyz"
    ase.io.write(path, frames)
    return path


def test_label_writes_every_frame_with_status(frames_file, tmp_path, capsys):
    out = tmp_path / "out.extxyz"
    assert main(["label", str(frames_file), "--fidelity", "hf-sto3g", "-o", str(out), "--workers", "0"]) == 0
    captured = capsys.readouterr()
    assert "| ok | 2 |" in captured.out and "| failed | 1 |" in captured.out and "| total | 3 |" in captured.out
    assert "3/3 frames (1 not ok)" in captured.err
    labelled = read_structures(out)
    assert [a.info["label_status"] for a in labelled] == ["ok", "ok", "failed"]
    for atoms in labelled[:2]:
        assert atoms.info["fidelity"] == "hf-sto3g" and atoms.info["scf_cycles"] > 0
        assert np.isfinite(atoms.get_potential_energy()) and atoms.get_forces().shape == (3, 3)
    assert labelled[2].calc is None and labelled[2].info["label_reason"]


def test_skip_failed_leaves_them_out(frames_file, tmp_path, capsys):
    out = tmp_path / "out.extxyz"
    argv = ["label", str(frames_file), "--fidelity", "hf-sto3g", "-o", str(out), "--workers", "0", "--skip-failed"]
    assert main(argv) == 0
    assert len(read_structures(out)) == 2
    assert "1 not ok (left out)" in capsys.readouterr().out


def test_molecule_name_and_errors_are_one_line(tmp_path, capsys):
    out = tmp_path / "w.extxyz"
    assert main(["label", "H2O", "--fidelity", "hf-sto3g", "-o", str(out), "--workers", "0"]) == 0
    assert read_structures(out)[0].info["label_status"] == "ok"
    capsys.readouterr()
    assert main(["label", "H2O", "--fidelity", "nope", "-o", str(out), "--workers", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("alloop label: error: unknown fidelity preset 'nope'") and "\n" not in err
    assert main(["label", "H2O", "--fidelity", "hf-sto3g", "--spin", "1", "-o", str(out), "--workers", "0"]) == 1
    assert "frame 0:" in capsys.readouterr().err
    assert main(["label", "H2O", "--fidelity", "hf-sto3g", "-o", str(tmp_path / "no" / "x.extxyz")]) == 1
    assert "does not exist" in capsys.readouterr().err
