"""The software that made a label (PySCF, libxc, the functional's definition): recorded, compared, merged."""

from __future__ import annotations

import ase.io
import pyscf
from ase.build import molecule
from pyscf.dft import libxc

from alloop.cli import main
from alloop.fidelity import load_fidelity
from alloop.labeling.provenance import combine, current_provenance, from_info, merged, mix_problem, to_info
from alloop.labeling.pyscf_labeler import PySCFLabeler


def test_the_pyscf_labeller_records_its_pyscf_version():
    result = PySCFLabeler(load_fidelity("hf-sto3g")).label(molecule("H2"))
    assert result.ok and dict(result.provenance) == {"pyscf": pyscf.__version__}


def test_dft_records_libxc_and_the_functional_as_pyscf_resolves_it():
    b3lyp, pbe = current_provenance(load_fidelity("b3lyp-svp")), current_provenance(load_fidelity("pbe-svp-df"))
    assert b3lyp["pyscf"] == pbe["pyscf"] == pyscf.__version__
    assert b3lyp["libxc"] == pbe["libxc"] == str(libxc.libxc_version())
    assert b3lyp["xc"] != pbe["xc"] and b3lyp["xc"]  # e.g. "402*1": libxc's B3LYP (VWN-RPA) in PySCF >= 2.3
    assert from_info(to_info(b3lyp)) == b3lyp


def test_label_command_writes_the_versions_into_the_info(tmp_path, capsys):
    out = tmp_path / "h2.extxyz"
    assert main(["label", "H2", "--fidelity", "hf-sto3g", "-o", str(out), "--workers", "0"]) == 0
    assert ase.io.read(out).info["pyscf_version"] == pyscf.__version__


def test_mixes_are_found_and_merged_as_version_sets():
    stored = {"pyscf": "2.6.2", "libxc": "6.2.2"}
    assert mix_problem(stored, {"pyscf": "2.6.2"}) is None
    assert mix_problem(stored, {}) is None and mix_problem({}, {"pyscf": "2.8.0"}) is None  # unknown: accepted
    assert mix_problem(stored, {"pyscf": "2.6.2", "libxc": "7.0.0"}) == "libxc 6.2.2 in the store, 7.0.0 new"
    both = merged(stored, [{"pyscf": "2.14.0"}])
    assert both == {"pyscf": "2.6.2; 2.14.0", "libxc": "6.2.2"}  # numeric order
    assert mix_problem(both, {"pyscf": "2.14.0"}) is None and mix_problem({"pyscf": "2.6.2"}, both) is not None
    first_wins = ({"pyscf": "2.6.2"}, "PySCF 2.6.2 in the store, 2.8.0 new")
    assert combine({}, [{"pyscf": "2.6.2"}, {"pyscf": "2.8.0"}]) == first_wins
    assert combine({}, [{"pyscf": "2.6.2"}, {"pyscf": "2.8.0"}], allow_mix=True)[0] == {"pyscf": "2.6.2; 2.8.0"}
