"""The stored original model: stored once, found on resume, and what the forgetting columns are scored against."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load as st_load

from alloop.campaign.phases import original
from alloop.config import load_campaign
from alloop.potentials.checkpoint import checkpoint_to_bytes, model_from_bytes
from alloop.store.campaign import CampaignStore

CAMPAIGN = """
name: unit
system: {{structures: H2O}}
fidelities: {{cheap: hf-sto3g, expensive: {{name: hf-631g, method: hf, basis: 6-31g}}}}
model: {model}
"""


def _config(tmp_path, model: str = "sevennet-0"):
    path = tmp_path / "unit.yaml"
    path.write_text(CAMPAIGN.format(model=model))
    return load_campaign(path)


@pytest.fixture(scope="module")
def sevennet0_blob(tmp_path_factory):
    cfg = _config(tmp_path_factory.mktemp("cfg"))
    return original.starting_blob(cfg, [1, 8])


def _tampered(blob: bytes) -> bytes:
    model, _ = model_from_bytes(blob)
    with torch.no_grad():
        param = next(p for p in model.parameters() if p.requires_grad and p.numel() > 100)
        param.mul_(1.05)
    return checkpoint_to_bytes(model)


def _store_model(store: CampaignStore, blob: bytes) -> int:
    version = store.add_checkpoint(blob, {"cycle": 0}, role="model")
    store.commit()
    return version


def test_the_original_is_stored_once_and_found_on_resume(tmp_path, sevennet0_blob):
    cfg = _config(tmp_path)
    water = cfg.load_structures()
    said: list[str] = []
    with CampaignStore.create(tmp_path / "store") as store:
        first = original.prepare(store, cfg, water, said.append)
        assert first is not None and first.version == 0
        assert [c["role"] for c in store.checkpoints()] == ["base"]
        assert [m.get_chemical_formula() for m in first.molecules] == ["H2", "H2O2"]  # outside water's composition
    assert "stored as checkpoint v0 (role base)" in said[-1]
    with CampaignStore.open(tmp_path / "store", "a") as store:  # a resumed campaign
        again = original.prepare(store, cfg, water, said.append)
        assert [c["role"] for c in store.checkpoints()] == ["base"] and again.version == 0
        stored = store.checkpoint(0)[0]
    assert "found as checkpoint v0" in said[-1]
    # the stored model is the untouched pretrained model: the tensors of a fresh build
    fresh, kept = st_load(sevennet0_blob), st_load(stored)
    assert fresh.keys() == kept.keys() and all(torch.equal(fresh[k], kept[k]) for k in fresh)
    # without pretrained weights: nothing stored, no original
    with CampaignStore.create(tmp_path / "scratch") as store:
        assert original.prepare(store, _config(tmp_path, "pair"), water, said.append) is None
        assert store.checkpoints() == []


def test_forgetting_is_scored_against_the_stored_original(tmp_path, sevennet0_blob):
    """The same model scores zero against an honest store and not against a store whose original was tampered."""
    cfg = _config(tmp_path)
    water = cfg.load_structures()
    scores = {}
    for name, base in (("honest", sevennet0_blob), ("tampered", _tampered(sevennet0_blob))):
        with CampaignStore.create(tmp_path / name) as store:
            original.store_original(store, lambda base=base: base)
            loaded = original.prepare(store, cfg, water, lambda _: None)  # finds the stored one, never rebuilds
            version = _store_model(store, sevennet0_blob)
            scores[name] = original.forgetting_columns(store, loaded, version)
    honest, tampered = scores["honest"], scores["tampered"]
    assert set(honest) == set(original.COLUMNS)
    assert honest["forget_force_mae_eV_per_A"][0] < 1e-6 and honest["forget_energy_mae_per_atom_eV"][0] < 1e-6
    assert tampered["forget_force_mae_eV_per_A"][0] > 1e-3
    assert tampered["forget_energy_mae_per_atom_eV"][0] > 1e-5


def test_forgetting_columns_without_an_original_and_in_old_tables(tmp_path, sevennet0_blob):
    with CampaignStore.create(tmp_path / "store") as store:
        version = _store_model(store, sevennet0_blob)
        nan = original.forgetting_columns(store, None, version)
        assert all(np.isnan(v[0]) for v in nan.values()) and set(nan) == set(original.COLUMNS)
        store.append_rows("cycles", cycle=np.array([0], np.int32), model_version=np.array([version], np.int32))
        store.commit()
        assert original.forgetting_columns(store, None, version) == {}  # a table written before the columns existed
        assert original.status(store) is None


def test_status_lists_the_scored_models(tmp_path, sevennet0_blob):
    cfg = _config(tmp_path)
    with CampaignStore.create(tmp_path / "store") as store:
        loaded = original.prepare(store, cfg, cfg.load_structures(), lambda _: None)
        assert original.status(store) is None  # no cycles yet
        for cycle, blob in ((-1, sevennet0_blob), (0, _tampered(sevennet0_blob))):
            version = _store_model(store, blob)
            store.append_rows("cycles", cycle=np.array([cycle], np.int32), model_version=np.array([version], np.int32),
                              **original.forgetting_columns(store, loaded, version))
        store.append_rows("cycles", cycle=np.array([1], np.int32), model_version=np.array([-1], np.int32),
                          **original.forgetting_columns(store, loaded, -1))  # a cycle without training (naive)
        store.commit()
        part = original.status(store)
    assert part["original_version"] == 0 and [m["model_version"] for m in part["models"]] == [1, 2]
    lines = original.format_status(part)
    assert lines[0].startswith("forgetting   change against the original v0 (role base)")
    assert "bootstrap" in lines[2] and lines[3].split()[:2] == ["v2", "0"]
    assert float(lines[2].split()[2]) < 1e-4 < float(lines[3].split()[2])


#: one xdist worker runs this module (its module-scoped fixture is built once)
pytestmark = pytest.mark.xdist_group("test_original")


def test_forgetting_of_a_charged_or_open_shell_delta_model_runs_its_baseline_neutral(tmp_path, sevennet0_blob):
    """The outside molecules (H2, H2O2) are neutral closed-shell: a Delta model of an open-shell (2S = 1) or charged
    campaign is scored there with its GFN2-xTB baseline at charge 0, spin 0, as the same model with a neutral
    baseline is (before, the baseline ran at 2S = 1 and failed: 2 electrons cannot have 2S = 1)."""
    from alloop.fidelity import load_fidelity
    from alloop.potentials.baseline import DeltaPotential

    cfg = _config(tmp_path)
    plain = model_from_bytes(sevennet0_blob)[0]
    with CampaignStore.create(tmp_path / "store") as store:
        original.store_original(store, lambda: sevennet0_blob)
        loaded = original.prepare(store, cfg, cfg.load_structures(), lambda _: None)
        scores = {}
        for charge, spin in ((0, 0), (0, 1), (-1, 0)):
            delta = DeltaPotential.wrap(plain, load_fidelity("gfn2-xtb", charge=charge, spin=spin))
            scores[(charge, spin)] = original.forgetting_columns(store, loaded, _store_model(store,
                                                                                              checkpoint_to_bytes(delta)))
    neutral = scores[(0, 0)]["forget_force_mae_eV_per_A"][0]
    assert np.isfinite(neutral) and neutral > 1e-3  # the baseline's forces count: not the original's prediction
    for key in ((0, 1), (-1, 0)):
        assert scores[key]["forget_force_mae_eV_per_A"][0] == pytest.approx(neutral, rel=1e-9)
        assert scores[key]["forget_energy_mae_per_atom_eV"][0] == pytest.approx(
            scores[(0, 0)]["forget_energy_mae_per_atom_eV"][0], rel=1e-9)
