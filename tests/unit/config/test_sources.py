"""``alloop validate`` says where each resolved setting came from (alloop.config.sources)."""

from __future__ import annotations

from pathlib import Path

from alloop.cli import main
from alloop.config import load_campaign
from alloop.config.sources import flatten, setting_sources

ROOT = Path(__file__).resolve().parents[3]


def test_each_layer_is_named(tmp_path):
    """A file extending the universal quickstart, with --set: its own keys, the extended files', the presets', the
    pretrained recipe's, the derived defaults' and the library's are told apart."""
    path = tmp_path / "mine.yaml"
    path.write_text(f"extends: {ROOT / 'campaigns' / 'universal-quickstart.yaml'}\nmd: {{n_replicas: 4}}\n")
    overrides = ["training.batch_size=2"]
    cfg = load_campaign(path, overrides)
    src = setting_sources(path, cfg.to_dict(), overrides)
    assert src["md.n_replicas"] == "mine.yaml" and src["name"] == "default"  # an extended file's name is not inherited
    assert src["training.steps"] == "universal-quickstart.yaml (extended)"
    assert src["md.segment_steps"] == "quickstart.yaml (extended)"
    assert src["training.batch_size"] == "--set" and cfg.training.batch_size == 2
    assert src["training.energy_weight"] == "pretrained recipe (sevennet-0)" and cfg.training.energy_weight == 0.1
    assert src["model.base"] == "model preset sevennet-0"
    assert src["fidelities.expensive.basis"] == "fidelity preset b3lyp-svp"
    assert src["model.baseline"].startswith("default (GFN2-xTB") and cfg.model.baseline == "gfn2-xtb"
    assert src["training.method"] == "default" and src["md.temperature_K"] == "default"
    assert set(src) == set(flatten(cfg.to_dict()))  # every resolved key labelled


def test_validate_prints_a_summary_and_with_sources_every_setting(tmp_path, capsys):
    """A minimal file (structures, two fidelities, a model preset) gets the benchmarks' settings; validate says so."""
    path = tmp_path / "minimal.yaml"
    path.write_text("system: {structures: CH3CH2OH}\nfidelities: {cheap: hf-sto3g, expensive: b3lyp-svp}\n"
                    "model: {preset: sevennet-0}\n")
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    settings = next(line for line in out.splitlines() if line.startswith("settings"))
    assert "minimal.yaml" in settings and "default" in settings and "pretrained recipe (sevennet-0)" in settings
    assert "bootstrap  32 frames of gfn2-xtb MD" in out and "by the model's predicted force error" in out
    assert main(["validate", str(path), "--sources", "--set", "seed=4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.strip().startswith("seed "))
    assert row.split()[1] == "4" and row.endswith("<- --set")
    row = next(line for line in lines if line.strip().startswith("model.preset "))
    assert row.endswith("<- minimal.yaml")
    row = next(line for line in lines if line.strip().startswith("schedule.bootstrap.method "))
    assert '"md"' in row and row.endswith("<- default")
