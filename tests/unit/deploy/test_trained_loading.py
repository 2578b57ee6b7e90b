"""alloop.calculator and its loader on checkpoints and stores written here: fidelities, versions, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import alloop
from alloop.deploy import export as export_module
from alloop.deploy.export import export_model, format_names, register_format
from alloop.deploy.loading import load_trained, use_fidelity
from alloop.errors import AlloopError
from alloop.fidelity import load_fidelity
from alloop.potentials.base import AtomsBatch
from alloop.potentials.calculator import PotentialCalculator
from alloop.potentials.checkpoint import checkpoint_to_bytes, model_from_bytes, save_checkpoint
from alloop.potentials.pair import PairPotential
from alloop.store import CampaignStore, store_path

CHEAP, EXPENSIVE = load_fidelity("hf-sto3g").hash(), load_fidelity("mp2-dz").hash()
REFS = {EXPENSIVE: {1: -13.25, 8: -2041.5}, CHEAP: {1: -12.0, 8: -2030.75}}


def _model(seed: int = 1, refs: dict[int, float] | None = None) -> PairPotential:
    model = PairPotential([1, 8], cutoff=4.0, n_radial=6, seed=seed).double()
    with torch.no_grad():
        model.weights.mul_(50.0)  # forces of a few eV/A, as a trained model has
        for z, e in (refs or {1: -1.0, 8: -2.0}).items():
            model.atomic_energies[z] = e
    return model


def _predict(model, atoms) -> tuple[float, np.ndarray]:
    out = model(AtomsBatch.from_atoms([atoms], dtype=torch.float64))
    return float(out.energy.detach()[0]), out.forces.numpy()


def _shift(refs: dict[int, float], atoms) -> float:
    return float(sum(refs[int(z)] for z in atoms.numbers))


@pytest.fixture
def campaign_store(tmp_path):
    """theta0 v0, model v1, stage2 v2, model v3, stage2 v4: the newest checkpoint is not a model."""
    config = {"fidelities": {"cheap": "hf-sto3g", "expensive": "mp2-dz"}, "training": {"method": "asteroid"}}
    with CampaignStore.create(store_path(tmp_path / "run"), config) as store:
        for seed, role in enumerate(["theta0", "model", "stage2", "model", "stage2"]):
            refs = REFS[CHEAP] if role == "stage2" else REFS[EXPENSIVE]
            meta = {"energy_references": REFS, "method": "asteroid"} if role == "model" else {"role": role}
            store.add_checkpoint(checkpoint_to_bytes(_model(seed, refs), meta), {"cycle": seed // 2}, role=role)
        store.commit()
    return tmp_path / "run"


def test_import_alloop_is_cheap():
    code = "import sys, alloop; assert callable(alloop.calculator); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_checkpoint_file_at_each_fidelity(tmp_path, water):
    model = _model(refs={1: -1.0, 8: -2.0})  # saved with references of no recorded fidelity
    fidelities = {"expensive": {"name": "mp2-dz", "hash": EXPENSIVE}, "cheap": {"name": "hf-sto3g", "hash": CHEAP}}
    path = save_checkpoint(model, tmp_path / "m.safetensors", {"energy_references": REFS, "fidelities": fidelities})
    base_e, base_f = _predict(model, water)
    residual = base_e - _shift({1: -1.0, 8: -2.0}, water)
    for fidelity, key in [("expensive", EXPENSIVE), ("cheap", CHEAP), (CHEAP, CHEAP), ("hf-sto3g", CHEAP)]:
        water.calc = alloop.calculator(path, fidelity=fidelity)
        assert water.get_potential_energy() == pytest.approx(residual + _shift(REFS[key], water), abs=1e-9)
        np.testing.assert_array_equal(water.get_forces(), base_f)  # forces do not depend on the fidelity
        assert water.calc.model_info["fidelity"]["hash"] == key
        assert water.calc.model_info["source"] == str(path.resolve()) and water.calc.model_info["version"] is None
    water.calc = alloop.calculator(path, fidelity=None)
    assert water.get_potential_energy() == base_e


def test_alloop_train_tags_and_a_checkpoint_without_references(tmp_path, water):
    refs = {"expensive": REFS[EXPENSIVE], "cheap": REFS[CHEAP]}  # ``alloop train`` without fidelity hashes
    path = save_checkpoint(_model(refs=REFS[EXPENSIVE]), tmp_path / "t.safetensors",
                           {"energy_references": refs, "fidelity": "expensive"})
    assert load_trained(path).fidelity["hash"] == "expensive"
    cheap = load_trained(path, fidelity="cheap").model
    assert cheap.atomic_energies[8].item() == REFS[CHEAP][8]
    bare = save_checkpoint(_model(), tmp_path / "bare.safetensors")
    with pytest.raises(AlloopError, match="unknown fidelity 'expensive'.*known: none.*fidelity=None keeps"):
        alloop.calculator(bare)
    with pytest.raises(AlloopError, match="no energy references for fidelity 'mp2-dz'.*fidelity=None keeps"):
        alloop.calculator(path, fidelity="mp2-dz")  # a preset the checkpoint has no references for
    assert alloop.calculator(bare, fidelity=None).model_info["fidelity"] is None


def test_calculator_matches_the_model_in_both_precisions(tmp_path, water):
    model = _model(refs=REFS[EXPENSIVE])
    path = save_checkpoint(model, tmp_path / "m.safetensors", {"energy_references": REFS, "fidelity": EXPENSIVE})
    water.calc = alloop.calculator(path)
    direct = PotentialCalculator(model)
    assert water.get_potential_energy() == direct.get_potential_energy(water.copy())
    np.testing.assert_array_equal(water.get_forces(), direct.get_forces(water.copy()))
    single = alloop.calculator(path, dtype="float32")
    assert single.model.weights.dtype == torch.float32
    np.testing.assert_allclose(single.get_forces(water), water.get_forces(), atol=1e-4)


def test_store_versions_and_roles(campaign_store, water):
    newest = load_trained(campaign_store)
    assert (newest.version, newest.role, newest.cycle) == (3, "model", 1)
    assert newest.fidelity == {"name": "mp2-dz", "hash": EXPENSIVE, "role": "expensive"}
    assert newest.run_dir == campaign_store and "v3 (role model, cycle 1)" in newest.description
    for version, role in [(0, "theta0"), (1, "model"), (4, "stage2")]:
        calc = alloop.calculator(campaign_store / "store.zarr", version=version, fidelity=None)
        assert calc.model_info["role"] == role and calc.model_info["version"] == version
    # theta0 was saved with expensive references, stage 2 with cheap ones; neither records them
    assert load_trained(campaign_store, 0).fidelity["role"] == "expensive"
    assert load_trained(campaign_store, 4, fidelity="cheap").fidelity["role"] == "cheap"
    with pytest.raises(AlloopError, match=r"v4 \(role stage2, cycle 2\) has no energy references for fidelity"):
        load_trained(campaign_store, 4)
    with CampaignStore.open(store_path(campaign_store)) as store:
        blob = store.checkpoint(1)[0]
    loaded = load_trained(campaign_store, np.int64(1)).model
    assert torch.equal(loaded.weights, model_from_bytes(blob)[0].weights)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "{tmp}/nowhere"}, "no such checkpoint or run directory: {tmp}/nowhere"),
        ({"source": "{tmp}"}, "holds no campaign store"),
        ({"source": "{tmp}/run", "version": 7}, r"no model version 7 in .* \(versions: 0 \(theta0\), 1 \(model\)"),
        ({"source": "{tmp}/run", "version": -1}, "no model version -1"),
        ({"source": "{tmp}/run", "version": "2"}, "a model version is an integer"),
        ({"source": "{tmp}/run", "fidelity": "nope"}, "unknown fidelity 'nope'"),
        ({"source": "{tmp}/junk.safetensors"}, "junk.safetensors: not an alloop checkpoint"),
        ({"source": "{tmp}/cut.safetensors"}, "cut.safetensors: (not an alloop checkpoint|corrupt checkpoint)"),
        ({"source": "{tmp}/cut.safetensors", "version": 1}, "a version only picks a model in a campaign store"),
        ({"source": "{tmp}/empty"}, "holds no trained model yet"),
    ],
)
def test_errors_are_one_line(campaign_store, tmp_path, kwargs, message):
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    blob = checkpoint_to_bytes(_model(), {"energy_references": REFS})
    (tmp_path / "cut.safetensors").write_bytes(blob[: len(blob) - 40])
    with CampaignStore.create(store_path(tmp_path / "empty")) as store:
        store.commit()
    tmp = str(tmp_path)
    kwargs = {k: v.format(tmp=tmp) if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises(AlloopError, match=message.format(tmp=tmp)) as info:
        alloop.calculator(**kwargs)
    assert "\n" not in str(info.value)


def test_export_alloop_format_records_provenance(campaign_store, tmp_path, water):
    trained = load_trained(campaign_store, 1)
    path = export_model(trained, tmp_path / "out.safetensors")
    again = load_trained(path)
    meta = again.metadata
    assert meta["fidelity"] == EXPENSIVE and meta["fidelity_name"] == "mp2-dz" and meta["role"] == "model"
    origin = meta["exported_from"]
    assert (origin["version"], origin["cycle"], origin["role"]) == (1, 0, "model")
    assert origin["run_dir"] == str(campaign_store.resolve()) and origin["sha256"] == trained.sha256
    assert origin["fidelity"]["hash"] == EXPENSIVE and meta["energy_references"] == REFS
    json.dumps(meta)
    for fidelity in ("expensive", "cheap"):
        a = _predict(load_trained(campaign_store, 1, fidelity).model, water)
        b = _predict(load_trained(path, fidelity=fidelity).model, water)
        assert a[0] == b[0] and np.array_equal(a[1], b[1])


def test_export_format_registry(campaign_store, tmp_path, monkeypatch):
    monkeypatch.setattr(export_module, "_REGISTERED", {})
    trained = load_trained(campaign_store)
    with pytest.raises(AlloopError, match="unknown model format 'nope' \\(formats: alloop"):
        export_model(trained, tmp_path / "x", "nope")
    written = []
    register_format("test-egnn-only", lambda t, p: written.append(p) or p, architectures=["egnn"])
    assert "test-egnn-only" in format_names()
    with pytest.raises(AlloopError, match="format 'test-egnn-only' exports egnn models; .* is a 'pair' model"):
        export_model(trained, tmp_path / "x", "test-egnn-only")
    assert written == []
    with pytest.raises(ValueError):
        register_format("alloop", lambda t, p: p)


def test_use_fidelity_leaves_the_model_unchanged_on_error(campaign_store):
    trained = load_trained(campaign_store, 4, fidelity=None)
    before = trained.model.atomic_energies.clone()
    with pytest.raises(AlloopError):
        use_fidelity(trained, "expensive")
    assert torch.equal(trained.model.atomic_energies, before) and trained.fidelity["role"] == "cheap"
