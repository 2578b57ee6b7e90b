"""A campaign that starts from ``model.checkpoint`` bootstraps like any other (the driver samples and labels the
bootstrap, whose labels are the checkpoint model's first training): its label budget must cover the bootstrap, its
bootstrap gets the evidence's default method, and ``alloop validate`` says how its first labels are made."""

from __future__ import annotations

from pathlib import Path

import pytest

from alloop.cli import main
from alloop.config import CampaignConfig
from alloop.config.derived import derived_defaults
from alloop.errors import ConfigError
from alloop.potentials.checkpoint import save_checkpoint
from alloop.potentials.registry import build_model


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    return save_checkpoint(build_model("egnn", [1, 8], hidden_features=8, n_layers=1), tmp_path / "start.safetensors")


def _data(checkpoint: Path, **schedule: object) -> dict:
    return {"system": {"structures": "H2O"}, "model": {"checkpoint": str(checkpoint)},
            "fidelities": {"cheap": "gfn2-xtb", "expensive": "hf-sto3g"}, "schedule": dict(schedule)}


def test_the_label_budget_must_cover_the_bootstrap_of_a_checkpoint_campaign(tmp_path, checkpoint):
    with pytest.raises(ConfigError, match=r"^schedule\.max_labels\.expensive: 3 is fewer than the bootstrap alone"):
        CampaignConfig.from_dict(_data(checkpoint, max_labels={"expensive": 3}), base_dir=tmp_path)


def test_a_checkpoint_campaign_gets_the_default_bootstrap_method(tmp_path, checkpoint):
    derived = {d.key: d.value for d in derived_defaults(_data(checkpoint), tmp_path)}
    assert derived["schedule.bootstrap.method"] == "md"
    assert "model.baseline" not in derived  # the checkpoint's model keeps its own (no) baseline


def test_validate_says_how_a_checkpoint_campaign_bootstraps(tmp_path, checkpoint, capsys):
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_data(checkpoint)))
    assert main(["validate", str(path)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("bootstrap"))
    assert "gfn2-xtb MD" in line and "8 also expensive" in line, line
