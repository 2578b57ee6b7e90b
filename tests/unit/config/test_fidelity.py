import pytest

from alloop.errors import ConfigError, FidelityError
from alloop.fidelity import Fidelity, load_fidelity
from alloop.presets import preset_names


def test_presets_exist_and_hash_differently():
    names = preset_names("fidelities")
    for required in ["hf-sto3g", "b3lyp-svp", "pbe-svp-df", "mp2-dz", "ccsdt-dz"]:
        assert required in names
    hashes = {load_fidelity(n).hash() for n in names}
    assert len(hashes) == len(names)


def test_hash_ignores_name_and_resources_but_not_physics():
    base = load_fidelity("b3lyp-svp")
    renamed = base.model_copy(update={"name": "other", "max_cycles": 7, "max_memory_MB": 500})
    assert renamed.hash() == base.hash()
    assert base.model_copy(update={"grid_level": 4}).hash() != base.hash()
    assert base.model_copy(update={"basis": "def2-tzvp"}).hash() != base.hash()


def test_frozen_core_is_a_level_of_its_own_and_only_for_correlated_methods():
    all_electron, frozen = load_fidelity("ccsdt-dz"), load_fidelity("ccsdt-fc-dz")
    assert frozen.frozen_core and not all_electron.frozen_core
    assert frozen.hash() != all_electron.hash() and "frozen core" in frozen.level
    assert "frozen_core" not in all_electron.model_dump()  # all-electron hashes and stored dumps stay as they were
    assert Fidelity(**frozen.model_dump()) == frozen  # a stored dump loads back
    for method in ("hf", "b3lyp"):
        with pytest.raises(ConfigError, match="frozen_core: only for correlated methods"):
            load_fidelity({"name": "x", "method": method, "basis": "cc-pvdz", "frozen_core": True})
    with pytest.raises(ConfigError, match="frozen_core: not used by xtb fidelities"):
        load_fidelity({"preset": "gfn2-xtb", "frozen_core": True})


def test_preset_override_and_system_charge_spin():
    fid = load_fidelity({"preset": "b3lyp-svp", "grid_level": 5}, charge=1, spin=1)
    assert fid.method == "b3lyp" and fid.grid_level == 5 and fid.charge == 1 and fid.unrestricted


def test_bad_method_and_preset_rejected():
    with pytest.raises(ConfigError, match="method: .*unknown method 'nonsense'"):
        load_fidelity({"name": "x", "method": "nonsense", "basis": "sto-3g"})
    with pytest.raises(ConfigError, match="unknown fidelity preset 'nope'"):
        load_fidelity("nope")
    with pytest.raises(ConfigError, match="bogus: Extra inputs are not permitted"):
        load_fidelity({"preset": "hf-sto3g", "bogus": 1})


def test_structure_checks(water):
    fid = load_fidelity("hf-sto3g")
    fid.check_structure(water.numbers)
    with pytest.raises(FidelityError, match="9 electrons cannot have spin"):
        fid.check_structure([8, 1])
    with pytest.raises(FidelityError, match="does not cover element U"):
        load_fidelity("b3lyp-svp").check_structure([92, 1])
    radical = Fidelity(name="r", method="hf", basis="sto-3g", spin=1)
    radical.check_structure([8, 1])


def test_the_table_of_known_functionals_agrees_with_libxc():
    """The functionals validated without pyscf.dft: libxc parses each, and the periodic family takes exactly those
    the table says (LDA or GGA: no exact exchange, meta-GGA or non-local correlation)."""
    from pyscf.dft import libxc

    from alloop.fidelity import KNOWN_FUNCTIONALS

    for name, periodic_ok in KNOWN_FUNCTIONALS.items():
        libxc.parse_xc(name)
        assert periodic_ok == (not (libxc.is_hybrid_xc(name) or libxc.is_meta_gga(name) or libxc.is_nlc(name))), name


def test_validating_a_known_functional_imports_no_pyscf_dft():
    import subprocess
    import sys

    code = ("import sys; from alloop.fidelity import load_fidelity; load_fidelity('b3lyp-svp'); "
            "print('pyscf.dft' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
