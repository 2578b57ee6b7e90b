"""Every shipped campaign and preset validates; ``extends:`` and ``alloop validate`` work on real files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from ase.build import molecule
from ase.io import write

from alloop.cli import main
from alloop.config import CampaignConfig, load_campaign
from alloop.config.execution import ClusterConfig
from alloop.config.system import FILE_ARCHITECTURES, ModelConfig
from alloop.errors import ConfigError
from alloop.potentials.registry import EXTRAS, build_model
from alloop.presets import configs_dir, preset_names

CAMPAIGNS = sorted((Path(__file__).resolve().parents[3] / "campaigns").glob("*.yaml"))


def test_campaign_folder_has_the_promised_files():
    names = {p.name for p in CAMPAIGNS}
    assert {"quickstart.yaml", "ethanol.yaml", "naive-vs-periodic.yaml", "naive.yaml"} <= names


#: campaigns whose model start is run data (not in git; benchmarks/artefacts.yaml restores or remakes it)
NEEDS_RUN_DATA = {"reline-szv-start.yaml": CAMPAIGNS[0].parents[1] / "runs" / "reline_sevennet0_szv.pt"}


@pytest.mark.parametrize("path", CAMPAIGNS, ids=[p.stem for p in CAMPAIGNS])
def test_campaign_files_validate_and_round_trip(path):
    if path.name in NEEDS_RUN_DATA and not NEEDS_RUN_DATA[path.name].is_file():
        with pytest.raises(ConfigError, match="file not found"):  # refused with the reason, not a traceback
            load_campaign(path)
        pytest.skip(f"{path.name} starts from run data not in git (python benchmarks/artefacts.py restore "
                    "reline-sevennet0-szv)")
    cfg = load_campaign(path)
    assert cfg.run_dir.parent == path.parent.resolve()
    data = json.loads(json.dumps(cfg.to_dict()))
    assert CampaignConfig.from_dict(data) == cfg


def test_presets_validate():
    assert {"small", "egnn-paper", "pair"} <= set(preset_names("models"))
    assert {"local", "slurm"} <= set(preset_names("clusters"))
    for name in preset_names("models"):
        if name in FILE_ARCHITECTURES:  # its weights are a file the user brings (tests/unit/potentials/test_mace.py)
            with pytest.raises(ValueError, match="needs a model file you bring"):
                ModelConfig.model_validate(name)
            continue
        model = ModelConfig.model_validate(name)
        assert model.preset == name
        package = EXTRAS.get(model.architecture, ("torch",))[0]
        if importlib.util.find_spec(package) is None:  # an extra not installed here (so3lr: its tests skip too)
            continue
        built = build_model(model.architecture, [1, 6, 8], **model.hyperparameters())
        assert built.cutoff == model.cutoff_A
    for name in preset_names("clusters"):
        assert ClusterConfig.model_validate(name).preset == name
    assert (configs_dir() / "fidelities" / "hf-sto3g.yaml").is_file()


def test_quickstart_is_small():
    cfg = load_campaign(CAMPAIGNS[0].parent / "quickstart.yaml")
    assert cfg.system.structures == "CH3CH2OH" and cfg.model.preset == "small"
    assert (cfg.cheap_fidelity.name, cfg.expensive_fidelity.name) == ("hf-sto3g", "b3lyp-svp")
    assert cfg.schedule.n_cycles == 3 and cfg.md.n_replicas * cfg.md.segment_steps <= 2000
    assert cfg.system.conformers == 3 and cfg.md.n_replicas % 3 == 0  # every rotamer gets the same replicas
    # at most ~60 cheap (0.5-1 s) and ~24 expensive (6-12 s) labels per cycle, and capped overall
    assert cfg.selection.max_cheap_per_cycle <= 60 and cfg.selection.max_expensive_per_cycle <= 24
    assert cfg.schedule.max_labels.expensive is not None and cfg.schedule.max_labels.expensive <= 40


def test_naive_differs_from_periodic_only_in_strategy_name_and_store():
    folder = CAMPAIGNS[0].parent
    periodic = load_campaign(folder / "naive-vs-periodic.yaml").to_dict()
    naive = load_campaign(folder / "naive.yaml").to_dict()
    assert (periodic["schedule"]["strategy"], naive["schedule"]["strategy"]) == ("periodic", "naive")
    assert periodic["store"]["run_dir"] != naive["store"]["run_dir"] and naive["name"] == "naive"
    for data in (periodic, naive):
        data["schedule"].pop("strategy")
        data.pop("name")
        data.pop("store")
    assert periodic == naive


def test_extends_keeps_base_relative_paths(tmp_path):
    base_dir, child_dir = tmp_path / "base", tmp_path / "elsewhere"
    base_dir.mkdir()
    child_dir.mkdir()
    write(base_dir / "start.xyz", molecule("H2O"))
    (base_dir / "base.yaml").write_text(
        "name: basename\nsystem: {structures: start.xyz}\nmd: {temperature_K: 300, n_replicas: 3}\nstore: {run_dir: b.run}\n"
    )
    (child_dir / "child.yaml").write_text("extends: ../base/base.yaml\nmd: {n_replicas: 5}\n")
    cfg = load_campaign(child_dir / "child.yaml")
    assert cfg.system.structures == str((base_dir / "start.xyz").resolve())
    assert (cfg.md.temperature_K, cfg.md.n_replicas) == (300, 5)
    assert cfg.name == "child" and cfg.run_dir == child_dir.resolve() / "child.run"


def test_cli_validate_text_json_and_error(tmp_path, capsys):
    quickstart = CAMPAIGNS[0].parent / "quickstart.yaml"
    assert main(["validate", str(quickstart)]) == 0
    out = capsys.readouterr().out
    cfg = load_campaign(quickstart)
    assert cfg.expensive_fidelity.hash() in out and "3 x 9 atoms" in out and str(cfg.run_dir) in out
    assert "selection  per cycle <= 20 cheap (at least 12), <= 6 expensive by the model's predicted force error x " \
           "distance" in out
    assert main(["validate", str(quickstart), "--set", "selection.expensive_pick=coverage"]) == 0
    assert "expensive by coverage of feature space from the labelled frames" in capsys.readouterr().out
    assert main(["validate", str(quickstart), "--set", "selection.expensive_pick=lcmd"]) == 0
    assert "expensive by largest cluster maximum distance (LCMD) from the labelled frames" in capsys.readouterr().out
    assert main(["validate", str(quickstart), "--set", "selection.expensive_pick=kmeans++"]) == 0
    assert "expensive by k-means++ from the labelled frames (drawn with probability ~ distance^2)" in \
        capsys.readouterr().out
    assert main(["validate", str(quickstart), "--set", "selection.density_weight=1"]) == 0
    assert "expensive by the model's predicted force error x density^1 x distance" in capsys.readouterr().out
    assert main(["validate", str(quickstart), "--set", "selection.expensive_pick=bias"]) == 0
    assert "expensive by bias B x distance" in capsys.readouterr().out
    assert main(["validate", str(quickstart), "--set", "selection.pick_beta=2"]) == 0
    assert "expensive drawn with probability ~ (the model's predicted force error x distance)^2" in \
        capsys.readouterr().out
    assert main(["validate", str(quickstart), "--set", "selection.exploration=0.5"]) == 0
    assert "x distance, after a 50% quota of each pick by kernel herding (cycle)" in capsys.readouterr().out
    assert main(["validate", str(quickstart), "--set", "training.final_refit=true"]) == 0
    assert ", final retrain then a refit on every label" in capsys.readouterr().out
    assert main(["validate", str(quickstart), "--json", "--set", "schedule.strategy=naive"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"]["schedule"]["strategy"] == "naive"
    assert report["resolved"]["fidelities"]["cheap"]["hash"] == cfg.cheap_fidelity.hash()
    assert report["resolved"]["structures"]["n_atoms_total"] == 27  # three rotamers of 9 atoms
    assert CampaignConfig.from_dict(report["config"]).schedule.strategy == "naive"
    assert main(["validate", str(quickstart), "--set", "md.temperature_K=-5"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "alloop validate: error: md.temperature_K: must be > 0 (got -5)"
