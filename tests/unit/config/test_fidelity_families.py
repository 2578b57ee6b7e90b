"""Method families of a fidelity: PySCF hashes byte-for-byte as before families existed; xtb's hash and checks."""

import json

import numpy as np
import pytest

from alloop.cli import main
from alloop.config import CampaignConfig, load_campaign
from alloop.errors import ConfigError, FidelityError
from alloop.fidelity import Fidelity, load_fidelity

#: hash of each shipped PySCF preset, and of some variants, as written into stores before method families existed
PINNED = {
    "b3lyp-svp": "13a41035541800f0",
    "ccsdt-dz": "4bb5ca06516e7660",
    "hf-sto3g": "fa1162a91ebb1963",
    "mp2-dz": "3042f6942b71dec0",
    "pbe-svp-df": "fda51aa97952656a",
}
PYSCF_FIELDS = {"name", "method", "basis", "density_fit", "grid_level", "charge", "spin", "conv_tol_Eh", "max_cycles",
                "max_memory_MB"}
XTB_PINNED = {"gfn2-xtb": "ab1641f0e6475020", "gfn1-xtb": "6caf74f84c8b712b"}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_shipped_pyscf_presets_keep_their_hashes(name):
    fid = load_fidelity(name)
    assert fid.hash() == PINNED[name] and fid.family == "pyscf"
    assert set(fid.model_dump()) == PYSCF_FIELDS  # the spec a store records is unchanged too
    assert Fidelity(**fid.model_dump()) == fid


def test_pyscf_variants_keep_their_hashes():
    assert load_fidelity("b3lyp-svp", charge=1, spin=1).hash() == "b95a8263a8f6922b"
    assert load_fidelity({"preset": "b3lyp-svp", "grid_level": 2}).hash() == "9ff6ad53c9444cc5"
    assert load_fidelity({"preset": "hf-sto3g", "conv_tol_Eh": 1e-10}).hash() == "caab4c74ba3d8e32"
    assert load_fidelity({"preset": "hf-sto3g", "family": "pyscf"}).hash() == PINNED["hf-sto3g"]


@pytest.mark.parametrize("name", sorted(XTB_PINNED))
def test_xtb_presets(name):
    fid = load_fidelity(name)
    assert (fid.family, fid.method, fid.basis, fid.level) == ("xtb", name, None, f"{name} (tblite)")
    assert (fid.accuracy, fid.electronic_temperature_K, fid.max_cycles) == (1.0, 300.0, 250)
    assert fid.hash() == XTB_PINNED[name] and not fid.is_dft
    assert set(fid.model_dump()) == {"name", "family", "method", "charge", "spin", "max_cycles", "accuracy",
                                     "electronic_temperature_K"}
    assert Fidelity(**fid.model_dump()) == fid


def test_xtb_hash_covers_what_changes_the_numbers():
    base = load_fidelity("gfn2-xtb")
    same = [{"name": "other"}, {"max_cycles": 50}]
    for update in same:
        assert load_fidelity({"preset": "gfn2-xtb", **update}).hash() == base.hash(), update
    changed = [{"method": "gfn1-xtb"}, {"charge": 1, "spin": 1}, {"spin": 2}, {"accuracy": 0.1},
               {"electronic_temperature_K": 1000.0}]
    hashes = {load_fidelity({"preset": "gfn2-xtb", **update}).hash() for update in changed}
    assert len(hashes) == len(changed) and base.hash() not in hashes
    assert base.hash() not in PINNED.values()


def test_an_xtb_method_implies_the_family_and_tblite_defaults():
    fid = load_fidelity({"name": "mine", "method": "GFN1-xTB"})
    assert fid.family == "xtb" and fid.method == "gfn1-xtb" and fid.hash() == XTB_PINNED["gfn1-xtb"]


@pytest.mark.parametrize(("spec", "message"), [
    ({"preset": "gfn2-xtb", "basis": "sto-3g"}, "^basis: not used by xtb fidelities"),
    ({"preset": "gfn2-xtb", "grid_level": 2}, "^grid_level: not used by xtb fidelities"),
    ({"preset": "gfn2-xtb", "method": "b3lyp"}, "^method: unknown xtb method 'b3lyp'"),
    ({"preset": "hf-sto3g", "accuracy": 0.1}, r"^accuracy: not used by pyscf fidelities \(only by xtb\)"),
    ({"preset": "hf-sto3g", "pseudo": "gth-pbe"}, r"^pseudo: not used by pyscf fidelities \(only by pyscf-pbc\)"),
    ({"preset": "pbe-gth-szv", "density_fit": True}, r"^density_fit: not used by pyscf-pbc fidelities"),
    ({"preset": "pbe-gth-szv", "method": "b3lyp"}, "^method: 'b3lyp': periodic fidelities take LDA or GGA"),
    ({"preset": "pbe-gth-szv", "method": "hf"}, "^method: 'hf': periodic fidelities take LDA or GGA"),
    ({"preset": "pbe-gth-szv", "ke_cutoff_Eh": 0}, "^ke_cutoff_Eh: Input should be greater than 0"),
    ({"name": "x", "method": "hf"}, "^basis: required by PySCF methods"),
    ({"preset": "gfn2-xtb", "accuracy": 0}, "^accuracy: Input should be greater than 0"),
    ({"preset": "hf-sto3g", "family": "orca"}, "^family: Input should be 'pyscf', 'pyscf-pbc' or 'xtb'"),
])
def test_fields_of_the_other_family_are_refused(spec, message):
    with pytest.raises(ConfigError, match=message):
        load_fidelity(spec)


def test_xtb_structure_checks():
    fid = load_fidelity("gfn2-xtb")
    fid.check_structure([86, 1, 1])  # Rn: the heaviest element GFN2-xTB has
    with pytest.raises(FidelityError, match=r"GFN2-xTB parametrises elements H to Rn \(Z 1-86\), not Fr"):
        fid.check_structure([87, 1])
    with pytest.raises(FidelityError, match="9 electrons cannot have spin"):
        fid.check_structure([8, 1])
    load_fidelity("gfn2-xtb", spin=1).check_structure([8, 1])
    with pytest.raises(FidelityError, match="leaves 0 electrons"):
        load_fidelity("gfn1-xtb", charge=2).check_structure([1, 1])


TINY_XTB = """
name: tiny-xtb
system: {structures: H2O}
fidelities: {cheap: gfn2-xtb, expensive: hf-sto3g}
model: {architecture: pair, cutoff_A: 4.0, n_rbf: 8}
schedule: {bootstrap: {method: normal-modes, n_samples: 6, n_expensive: 4}}
"""


def test_cli_validate_accepts_an_xtb_cheap_level(tmp_path, capsys):
    path = tmp_path / "tiny-xtb.yaml"
    path.write_text(TINY_XTB)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"cheap      gfn2-xtb: gfn2-xtb (tblite)  hash {XTB_PINNED['gfn2-xtb']}" in out
    assert f"expensive  hf-sto3g: hf/sto-3g  hash {PINNED['hf-sto3g']}" in out and "ok: the campaign is valid" in out
    assert main(["validate", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    cheap = report["resolved"]["fidelities"]["cheap"]
    assert (cheap["family"], cheap["method"], cheap["hash"]) == ("xtb", "gfn2-xtb", XTB_PINNED["gfn2-xtb"])
    again = CampaignConfig.from_dict(report["config"])
    assert again.cheap_fidelity == load_campaign(path).cheap_fidelity


def test_cli_validate_refuses_elements_xtb_lacks_and_fields_it_does_not_use(tmp_path, capsys):
    xyz = tmp_path / "uh2.xyz"
    xyz.write_text("3\n\nU 0 0 0\nH 2.0 0 0\nH -2.0 0 0\n")
    path = tmp_path / "bad.yaml"
    path.write_text(TINY_XTB.replace("structures: H2O", f"structures: {xyz}"))
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "fidelities.cheap: fidelity 'gfn2-xtb': GFN2-xTB parametrises elements H to Rn (Z 1-86), not U" in err
    path.write_text(TINY_XTB.replace("cheap: gfn2-xtb", "cheap: {preset: gfn2-xtb, basis: sto-3g}"))
    assert main(["validate", str(path)]) == 1
    assert "basis: not used by xtb fidelities" in capsys.readouterr().err


def test_cli_validate_shows_the_cell_of_a_periodic_system(tmp_path, capsys):
    from alloop.io import write_extxyz
    from alloop.testing.cells import water_box

    write_extxyz(tmp_path / "box.extxyz", [water_box(2, seed=0), water_box(2, seed=1)])
    path = tmp_path / "box.yaml"
    path.write_text(TINY_XTB.replace("structures: H2O", "structures: box.extxyz")
                    .replace("expensive: hf-sto3g", "expensive: pbe-gth-szv")
                    .replace("method: normal-modes", "method: rattle"))
    assert main(["validate", str(path)]) == 0
    length = water_box(2).cell.lengths()[0]
    assert f"cell       {length:.3f} x {length:.3f} x {length:.3f} A, periodic in 3D" in capsys.readouterr().out
    assert main(["validate", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert np.allclose(report["resolved"]["structures"]["cell_A"], water_box(2).cell.array)
    path.write_text(TINY_XTB)
    assert main(["validate", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["resolved"]["structures"]["cell_A"] is None
