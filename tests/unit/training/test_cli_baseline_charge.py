"""``alloop train --baseline`` on frames of a charged or open-shell species: the GFN-xTB baseline is computed at the
frames' ``--charge`` and ``--spin`` (2S), as a campaign computes it at ``system.charge`` and ``system.spin``."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.io import read, write

from alloop.cli import main
from alloop.fidelity import load_fidelity
from alloop.labeling.factory import labeler_for
from alloop.potentials.baseline import DeltaPotential
from alloop.potentials.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def hydronium_labels(tmp_path_factory):
    """Six rattled H3O+ frames labelled at GFN1-xTB, charge +1, by ``alloop label``."""
    folder = tmp_path_factory.mktemp("hydronium")
    start = Atoms("OH3", positions=[[0, 0, 0.10], [0.94, 0, -0.18], [-0.47, 0.81, -0.18], [-0.47, -0.81, -0.18]])
    frames = []
    for seed in range(6):
        frame = start.copy()
        frame.rattle(0.04, seed=seed)
        frames.append(frame)
    write(folder / "frames.xyz", frames)
    out = folder / "labelled.extxyz"
    assert main(["label", str(folder / "frames.xyz"), "--fidelity", "gfn1-xtb", "--charge", "1", "-o", str(out),
                 "--workers", "0"]) == 0
    return out


def _train(labels, out, *extra):
    return main(["train", "--expensive", str(labels), "--model", "pair", "--method", "standard", "--epochs", "2",
                 "--val-fraction", "0.34", "--quiet", "-o", str(out), *extra])


def test_the_baseline_is_computed_at_the_frames_charge(hydronium_labels, tmp_path, capsys):
    out = tmp_path / "delta.safetensors"
    assert _train(hydronium_labels, out, "--baseline", "gfn2-xtb", "--charge", "1") == 0
    model, meta = load_checkpoint(out)
    assert isinstance(model, DeltaPotential) and meta["baseline"] == "gfn2-xtb"
    fidelity = model.baseline.fidelity
    assert (fidelity.charge, fidelity.spin) == (1, 0)
    frame = read(hydronium_labels, 0)
    energies, forces, _ = model.baseline.compute([frame])
    direct = labeler_for(load_fidelity("gfn2-xtb", charge=1)).label(frame)
    assert energies[0] == pytest.approx(direct.energy_eV, abs=1e-9)
    np.testing.assert_allclose(forces[0], direct.forces_eV_per_A, atol=1e-9)


def test_a_baseline_at_the_wrong_charge_is_refused_in_one_line(hydronium_labels, tmp_path, capsys):
    assert _train(hydronium_labels, tmp_path / "m.safetensors", "--baseline", "gfn2-xtb") == 1
    err = capsys.readouterr().err
    assert "fidelity 'gfn2-xtb': 11 electrons cannot have spin (2S) = 0" in err and "Traceback" not in err
    assert _train(hydronium_labels, tmp_path / "m.safetensors", "--charge", "1") == 1
    assert "--charge and --spin are the --baseline's" in capsys.readouterr().err
