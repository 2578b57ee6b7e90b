"""Registry: short names, config keys, presets, dtypes, extension and errors."""

from __future__ import annotations

import pytest
import torch

from alloop.errors import ConfigError
from alloop.potentials.checkpoint import checkpoint_to_bytes, model_from_bytes
from alloop.potentials.egnn import EGNN
from alloop.potentials.pair import PairPotential
from alloop.potentials.registry import build_model, model_names, model_preset, register_model


def test_build_from_config_keys():
    cfg = {"architecture": "egnn", "cutoff_A": 4.0, "hidden_features": 32, "n_layers": 2, "n_rbf": 12, "dtype": "float64"}
    model = build_model(elements=[8, 1], **cfg)
    assert isinstance(model, EGNN) and model.elements == (1, 8)
    assert (model.cutoff, model.hidden_features, model.n_layers, model.n_rbf) == (4.0, 32, 2, 12)
    assert model.embedding.weight.dtype == torch.float64 and model.atomic_energies.dtype == torch.float64


def test_pair_accepts_config_aliases_and_none_means_default():
    model = build_model("pair", [1, 8], cutoff_A=3.0, n_rbf=4, seed=None, dtype=None)
    assert isinstance(model, PairPotential) and model.n_radial == 4 and model.cutoff == 3.0 and model.seed == 0
    assert model.weights.dtype == torch.float32


def test_presets():
    paper = model_preset("egnn-paper")
    assert paper == {
        "architecture": "egnn", "cutoff_A": 5.0, "hidden_features": 128, "n_layers": 5, "n_rbf": 16, "dtype": "float32"
    }
    model = build_model(elements=[1, 6, 8], **paper)
    assert model.feature_dim == 128 and len(model.layers) == 5
    with pytest.raises(ConfigError, match="unknown model preset"):
        model_preset("huge")


def test_errors_are_config_errors():
    with pytest.raises(ConfigError, match="unknown model 'nequip'.*egnn, mace, pair"):
        build_model("nequip", [1])
    with pytest.raises(ConfigError, match="hidden_features: not a hyperparameter of 'pair'"):
        build_model("pair", [1], hidden_features=8)
    with pytest.raises(ConfigError, match="dtype"):
        build_model("egnn", [1], dtype="float16")
    with pytest.raises(ConfigError, match="n_layers"):
        build_model("egnn", [1], n_layers=-2)
    with pytest.raises(ConfigError, match="given twice"):
        build_model("egnn", [1], cutoff=3.0, cutoff_A=4.0)


class _Scaled(PairPotential):
    """A registered third-party model (same maths as the pair potential, scaled)."""

    registry_name = "test-scaled-pair"

    def __init__(self, elements, cutoff: float = 4.0, scale: float = 2.0) -> None:
        super().__init__(elements, cutoff)
        self.scale = scale

    def hyperparameters(self):
        return {"elements": list(self.elements), "cutoff": self.cutoff, "scale": self.scale}

    def energy_and_features(self, batch):
        energy, feats = super().energy_and_features(batch)
        return self.scale * energy, feats


def test_register_model_extends_build_and_checkpoints(water):
    register_model(_Scaled)
    assert "test-scaled-pair" in model_names()
    model = build_model("test-scaled-pair", [1, 8], scale=3.0)
    loaded, _ = model_from_bytes(checkpoint_to_bytes(model))
    assert type(loaded) is _Scaled and loaded.scale == 3.0


def test_register_model_refuses_conflicts():
    class Impostor(PairPotential):
        registry_name = "egnn"

    class Nameless(PairPotential):
        registry_name = ""

    with pytest.raises(ValueError, match="reserved"):
        register_model(Impostor)
    with pytest.raises(ValueError, match="empty registry_name"):
        register_model(Nameless)
    with pytest.raises(TypeError):
        register_model(dict)


def test_a_missing_extra_names_its_pip_command(tmp_path, capsys):
    """In the main environment (sevenn, no mace): asking for a MACE says how to install it, in one line."""
    import importlib.util

    from alloop.cli import main

    if importlib.util.find_spec("mace") is not None:
        pytest.skip("mace-torch is installed here: this test is for an environment without it (the main one)")
    with pytest.raises(ConfigError) as info:
        build_model("mace", [1, 8], model_file="MACE-OFF23_small.model")
    message = str(info.value)
    assert "pip install 'alloop[mace]'" in message and "\n" not in message
    data = tmp_path / "frames.extxyz"
    data.write_text("")
    assert main(["train", "--model", "mace", "--init", "x.model", "--expensive", str(data), "--method", "standard",
                 "-o", str(tmp_path / "m.safetensors")]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'alloop[mace]'" in err, err


def test_a_missing_so3lr_extra_names_its_pip_command(tmp_path, capsys):
    """Where so3krates-torch is not installed (the main environment): asking for SO3LR says how to install it, in one
    line, from the registry and from ``alloop train``; the so3lr extra shares an environment with sevenn."""
    import importlib.util

    from alloop.cli import main

    if importlib.util.find_spec("so3krates_torch") is not None:
        pytest.skip("so3krates-torch is installed here: this test is for an environment without it")
    with pytest.raises(ConfigError) as info:
        build_model("so3lr", [1, 8], base="so3lr")
    message = str(info.value)
    assert "pip install 'alloop[so3lr]'" in message and "\n" not in message and "cannot share" not in message
    data = tmp_path / "frames.extxyz"
    data.write_text("")
    assert main(["train", "--model", "so3lr", "--expensive", str(data), "--method", "standard",
                 "-o", str(tmp_path / "m.safetensors")]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'alloop[so3lr]'" in err, err
