"""Checkpoints: bitwise round trips, references and metadata, atomic writes, clear errors."""

from __future__ import annotations

import json
import os
import struct

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from alloop.errors import AlloopError
from alloop.potentials.base import AtomsBatch
from alloop.potentials.checkpoint import checkpoint_to_bytes, load_checkpoint, model_from_bytes, save_checkpoint
from alloop.potentials.egnn import EGNN
from alloop.potentials.pair import PairPotential
from alloop.potentials.registry import build_model

REFERENCES = {"a1b2c3": {1: -13.587, 6: -1027.25, 8: -2039.9}, "ffee00": {1: -12.5, 8: -2030.0}}


def _trained_like(dtype: torch.dtype) -> EGNN:
    model = build_model("egnn", [1, 6, 8], hidden_features=16, n_layers=2, n_rbf=8, seed=4, dtype=dtype)
    with torch.no_grad():  # move away from the seeded initialisation, as training would
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.atomic_energies[[1, 6, 8]] = torch.tensor([-13.6123456789, -1030.5, -2040.25], dtype=torch.float64)
    return model


def _predict(model, structures, dtype):
    out = model(AtomsBatch.from_atoms(structures, dtype=dtype))
    return out.energy.detach(), out.forces, out.features


def test_float64_round_trip_is_bitwise(tmp_path, water, ethanol):
    model = _trained_like(torch.float64)
    meta = {"energy_references": REFERENCES, "metrics": {"force_mae": 0.123}, "cycle": 3}
    path = save_checkpoint(model, tmp_path / "ckpt" / "model.safetensors", metadata=meta)
    loaded, got = load_checkpoint(path)
    assert type(loaded) is EGNN and loaded.hyperparameters() == model.hyperparameters()
    assert torch.equal(loaded.atomic_energies, model.atomic_energies)
    assert loaded.atomic_energies.dtype == torch.float64
    assert got == meta  # references come back with integer Z keys
    for a, b in zip(_predict(model, [water, ethanol], torch.float64), _predict(loaded, [water, ethanol], torch.float64),
                    strict=True):
        assert torch.equal(a, b)
    assert os.listdir(tmp_path / "ckpt") == ["model.safetensors"]  # no temporary file left behind


def test_float32_round_trip_keeps_dtype_and_float64_references(water):
    model = _trained_like(torch.float32)
    loaded, meta = model_from_bytes(checkpoint_to_bytes(model))
    assert meta == {"energy_references": {}}
    assert next(loaded.parameters()).dtype == torch.float32
    assert loaded.atomic_energies.dtype == torch.float64 and torch.equal(loaded.atomic_energies, model.atomic_energies)
    for a, b in zip(_predict(model, [water], torch.float32), _predict(loaded, [water], torch.float32), strict=True):
        assert torch.equal(a, b)


def test_pair_potential_round_trip(water):
    model = PairPotential([1, 8], cutoff=3.5, n_radial=5, seed=7).double()
    loaded, _ = model_from_bytes(checkpoint_to_bytes(model))
    assert type(loaded) is PairPotential and loaded.n_radial == 5 and loaded.cutoff == 3.5
    assert torch.equal(_predict(model, [water], torch.float64)[1], _predict(loaded, [water], torch.float64)[1])


def test_header_is_readable_json(water):
    blob = checkpoint_to_bytes(_trained_like(torch.float64), {"energy_references": REFERENCES})
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(json.loads(blob[8 : 8 + size])["__metadata__"]["alloop"])
    assert header["architecture"] == "egnn" and header["dtype"] == "float64" and header["elements"] == [1, 6, 8]
    assert header["atomic_energies"]["8"] == -2040.25
    assert header["energy_references"]["a1b2c3"]["6"] == -1027.25


def test_overwrite_replaces_atomically(tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(_trained_like(torch.float64), path, {"version": 1})
    save_checkpoint(_trained_like(torch.float64), path, {"version": 2})
    assert load_checkpoint(path)[1]["version"] == 2
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]


def test_saved_checkpoint_is_readable_by_the_group_like_other_files(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_checkpoint(PairPotential(elements=[1, 8], cutoff=3.0), tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary file left


def test_missing_and_corrupt_files_raise_alloop_error(tmp_path):
    with pytest.raises(AlloopError, match="not found"):
        load_checkpoint(tmp_path / "absent.safetensors")
    blob = checkpoint_to_bytes(_trained_like(torch.float32))
    bad = {"truncated.st": blob[: len(blob) // 2], "garbage.st": os.urandom(64), "empty.st": b"", "tiny.st": b"abc"}
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(AlloopError):
            load_checkpoint(tmp_path / name)
    # A valid safetensors file that is not an alloop checkpoint.
    (tmp_path / "plain.st").write_bytes(st_save({"w": torch.zeros(2)}))
    with pytest.raises(AlloopError, match="not an alloop checkpoint"):
        load_checkpoint(tmp_path / "plain.st")


def _rewrite_header(blob: bytes, **changes) -> bytes:
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(json.loads(blob[8 : 8 + size])["__metadata__"]["alloop"])
    header.update(changes)
    return st_save(st_load(blob), metadata={"alloop": json.dumps(header)})


def test_unknown_architecture_and_mismatched_tensors_raise():
    blob = checkpoint_to_bytes(_trained_like(torch.float32))
    with pytest.raises(AlloopError, match="'nope' is not registered"):
        model_from_bytes(_rewrite_header(blob, architecture="nope"))
    hparams = {**_trained_like(torch.float32).hyperparameters(), "hidden_features": 8}
    with pytest.raises(AlloopError, match="does not match"):
        model_from_bytes(_rewrite_header(blob, hyperparameters=hparams))
    with pytest.raises(AlloopError, match="format version"):
        model_from_bytes(_rewrite_header(blob, format_version=99))


def test_bad_metadata_is_refused():
    model = _trained_like(torch.float32)
    with pytest.raises(AlloopError, match="JSON"):
        checkpoint_to_bytes(model, {"when": object()})
    with pytest.raises(AlloopError, match="energy_references"):
        checkpoint_to_bytes(model, {"energy_references": {"h": {"H": -13.6}}})
