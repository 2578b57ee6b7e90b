"""Campaign configuration: defaults, presets, rejected values (key path + reason), round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ase.build import molecule
from ase.io import write

from alloop.config import CampaignConfig, apply_overrides, load_campaign
from alloop.config.base import deep_merge
from alloop.errors import ConfigError
from alloop.fidelity import load_fidelity


def make(tmp_path: Path, **sections) -> CampaignConfig:
    data = deep_merge({"system": {"structures": "H2O"}}, sections)
    return CampaignConfig.from_dict(data, base_dir=tmp_path)


def test_defaults(tmp_path):
    cfg = make(tmp_path)
    assert cfg.name == "campaign" and cfg.seed == 0
    assert cfg.cheap_fidelity.hash() == load_fidelity("hf-sto3g").hash()
    assert cfg.expensive_fidelity.hash() == load_fidelity("b3lyp-svp").hash()
    assert cfg.fidelity("expensive") is cfg.expensive_fidelity
    m = cfg.model
    assert (m.preset, m.architecture, m.n_layers, m.hidden_features, m.cutoff_A) == ("small", "egnn", 3, 64, 5.0)
    assert cfg.md.temperature_K == 500 and cfg.md.timestep_fs == 0.5 and cfg.md.temperature_range_K == (0.0, 1500.0)
    assert cfg.uncertainty.n_components == 5 and cfg.uncertainty.limit == "empirical"
    assert cfg.training.gamma_grid == (1.0,) and cfg.training.energy_weight == 0.5
    assert cfg.training.stage_steps() == (3000, 1000)
    assert cfg.training.warm_start and cfg.training.loss == "mse"
    # the benchmarks' settings (issue 63): MD bootstrap on the GFN2-xTB baseline, continued MD, the pick by the
    # model's own predicted error, standard training with the final refit, a cheap minimum
    assert cfg.model.baseline == "gfn2-xtb" and cfg.training.method == "standard" and cfg.training.final_refit
    assert cfg.schedule.bootstrap.method == "md" and cfg.schedule.bootstrap.amplitude_A is None
    assert cfg.bootstrap_surface().method == "gfn2-xtb" and cfg.md.restart_from == "last-stable"
    assert cfg.selection.expensive_pick == "predicted-error"
    assert cfg.selection.min_cheap_per_cycle == 2 * cfg.selection.max_expensive_per_cycle == 32
    assert cfg.execution.cluster is not None and cfg.execution.cluster.kind == "local"
    assert cfg.execution.tasks_per_slot == 2 and cfg.execution.max_task_retries == 2
    assert cfg.run_dir == tmp_path.resolve() / "campaign.run"
    structures = cfg.load_structures()
    assert len(structures) == 1 and structures[0].get_chemical_formula() == "H2O"


def test_load_campaign_names_and_run_dir_from_file(tmp_path, monkeypatch):
    path = tmp_path / "water-test.yaml"
    path.write_text("system:\n  structures: H2O\nmd:\n  temperature_K: 300\n")
    monkeypatch.chdir("/")
    cfg = load_campaign(path)
    assert cfg.name == "water-test"
    assert cfg.run_dir == tmp_path.resolve() / "water-test.run"
    assert cfg.md.temperature_range_K == (0.0, 900.0)


def test_system_charge_and_spin_reach_both_fidelities(tmp_path):
    cfg = make(tmp_path, system={"charge": 1, "spin": 1})
    for fid in (cfg.cheap_fidelity, cfg.expensive_fidelity):
        assert (fid.charge, fid.spin) == (1, 1)
    assert cfg.cheap_fidelity.hash() != load_fidelity("hf-sto3g").hash()


def test_conformers_expand_the_starting_structures(tmp_path):
    from alloop.system.conformers import basin_populations, find_rotors

    one = make(tmp_path, system={"structures": "CH3CH2OH"}).load_structures()
    three = make(tmp_path, system={"structures": "CH3CH2OH", "conformers": 6}).load_structures()
    assert len(one) == 1 and len(three) == 3  # ethanol: trans and both gauche rotamers
    (pops,) = basin_populations([a.positions for a in three], find_rotors(one[0])).values()
    assert min(pops.values()) > 0.3
    assert len(make(tmp_path, system={"conformers": 6}).load_structures()) == 1  # water: nothing to rotate
    with pytest.raises(ConfigError, match="system.conformers"):
        make(tmp_path, system={"conformers": 0})


def test_several_molecules_in_one_campaign(tmp_path):
    (tmp_path / "co2.xyz").write_text("3\n\nO 0 0 1.16\nC 0 0 0\nO 0 0 -1.16\n")
    cfg = make(tmp_path, system={"structures": ["CH3CH2OH", "H2O", "co2.xyz"], "conformers": 3})
    assert cfg.system.structures[2] == str(tmp_path / "co2.xyz")  # each source resolved on its own
    formulas = [a.get_chemical_formula() for a in cfg.load_structures()]
    assert formulas == ["C2H6O"] * 3 + ["H2O", "CO2"]  # each input followed by its rotamers
    assert CampaignConfig.from_dict(cfg.to_dict()).system.structures == cfg.system.structures  # round trip


def test_presets_compose(tmp_path):
    cfg = make(
        tmp_path,
        fidelities={
            "cheap": {"method": "hf", "basis": "sto-3g"},
            "expensive": {"preset": "b3lyp-svp", "grid_level": 4},
        },
        model={"preset": "small", "n_layers": 4},
        execution={"cluster": {"preset": "slurm", "options": {"walltime": "01:00:00"}}},
    )
    assert cfg.cheap_fidelity.hash() == load_fidelity("hf-sto3g").hash()
    assert cfg.cheap_fidelity.name == "hf-sto-3g"
    assert cfg.expensive_fidelity.grid_level == 4
    assert cfg.expensive_fidelity.hash() != load_fidelity("b3lyp-svp").hash()
    assert (cfg.model.preset, cfg.model.n_layers, cfg.model.hidden_features) == ("small", 4, 64)
    cluster = cfg.execution.cluster
    assert cluster.kind == "slurm" and cluster.options["walltime"] == "01:00:00"
    assert cluster.options["memory"] == "16GB"  # kept from the preset


def test_model_presets(tmp_path):
    paper = make(tmp_path, model="egnn-paper").model
    assert (paper.n_layers, paper.hidden_features, paper.architecture) == (5, 128, "egnn")
    pair = make(tmp_path, model="pair").model
    assert pair.architecture == "pair" and pair.dtype == "float64"
    assert pair.hidden_features is None and pair.n_layers is None
    assert pair.hyperparameters() == {"cutoff_A": 4.0, "n_rbf": 8, "dtype": "float64"}
    custom = make(tmp_path, model={"architecture": "egnn", "n_layers": 2}).model
    assert (custom.preset, custom.n_layers, custom.hidden_features) == (None, 2, 64)
    assert not (paper.pretrained or pair.pretrained or custom.pretrained)
    assert make(tmp_path, model="sevennet-0").model.pretrained  # a pretrained base


def test_outside_molecules_round_trip(tmp_path):
    cfg = make(tmp_path, model="sevennet-0", training={"outside_molecules": ["H2O2", "H2"]})
    assert cfg.training.outside_molecules == ("H2O2", "H2")
    assert make(tmp_path).training.outside_molecules is None  # default: the CHO set of alloop.system.outside
    again = CampaignConfig.from_dict(json.loads(json.dumps(cfg.to_dict())), base_dir="/")
    assert again == cfg


def test_replay_fraction_reaches_every_stage(tmp_path):
    from alloop.training.recipe import asteroid_settings

    assert make(tmp_path).training.replay_fraction == 0  # off by default
    cfg = make(tmp_path, model="sevennet-0", training={"replay_fraction": 0.25, "batch_size": 4})
    settings = asteroid_settings(cfg.training, seed=0, threads=1, temperature_K=300.0)
    assert {settings.stage1.replay_fraction, settings.stage2.replay_fraction, settings.stage3.replay_fraction} == {0.25}


def test_round_trip(tmp_path):
    cfg = make(
        tmp_path,
        model={"preset": "pair"},
        schedule={"bootstrap": {"method": "normal-modes"}, "max_labels": {"cheap": 50}},
        execution={"address": "tcp://127.0.0.1:8786"},
    )
    assert cfg.schedule.bootstrap.temperature_K == cfg.md.temperature_K
    data = json.loads(json.dumps(cfg.to_dict()))
    again = CampaignConfig.from_dict(data, base_dir="/")
    assert again == cfg
    assert again.to_dict() == data
    assert again.execution.cluster is None


def test_md_bootstrap_surface_defaults_to_the_baseline_then_an_xtb_cheap_level(tmp_path):
    md = {"bootstrap": {"method": "md"}}
    cfg = make(tmp_path, model={"preset": "pair", "baseline": "gfn1-xtb"}, schedule=md)
    b = cfg.schedule.bootstrap
    assert (b.temperature_K, b.equilibration_fs, b.spacing_fs) == (cfg.md.temperature_K, 200.0, 100.0)
    assert cfg.bootstrap_surface().method == "gfn1-xtb"
    assert make(tmp_path, fidelities={"cheap": "gfn2-xtb"}, schedule=md).bootstrap_surface().method == "gfn2-xtb"
    chosen = make(tmp_path, system={"structures": "H2O", "charge": 0, "spin": 2}, fidelities={"cheap": "gfn2-xtb"},
                  schedule={"bootstrap": {"method": "md", "level": "gfn1-xtb"}})
    assert chosen.bootstrap_surface().method == "gfn1-xtb" and chosen.bootstrap_surface().spin == 2
    assert make(tmp_path, schedule={"bootstrap": {"method": "rattle"}}).bootstrap_surface() is None


def test_relative_structure_path_and_multi_frame_xyz(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    frames = [molecule("H2O"), molecule("CH3CH2OH")]
    frames[1].positions += 0.01
    write(folder / "data" / "start.xyz", frames)
    (folder / "c.yaml").write_text("system:\n  structures: data/start.xyz\n")
    monkeypatch.chdir(tmp_path)  # not the campaign's folder
    cfg = load_campaign(folder / "c.yaml")
    assert cfg.system.structures == str((folder / "data" / "start.xyz").resolve())
    loaded = cfg.load_structures()
    assert [a.get_chemical_formula() for a in loaded] == ["H2O", "C2H6O"]
    assert abs(loaded[1].positions - frames[1].positions).max() < 1e-6
    assert all(a.calc is None for a in loaded)


def test_overrides():
    data = {"system": {"structures": "H2O"}, "model": "small"}
    out = apply_overrides(data, ["schedule.strategy=naive", "model.n_layers=4", "md.temperature_range_K=[0, 900]"])
    assert out["schedule"] == {"strategy": "naive"}
    assert out["model"] == {"preset": "small", "n_layers": 4}
    assert out["md"]["temperature_range_K"] == [0, 900]
    assert data["model"] == "small"  # input untouched
    with pytest.raises(ConfigError, match=r"^--set md: expected key.path=value$"):
        apply_overrides(data, ["md"])
    with pytest.raises(ConfigError, match=r"--set system.structures.x=1: system.structures is not a mapping"):
        apply_overrides({"system": {"structures": ["a"]}}, ["system.structures.x=1"])


def test_empty_sections_and_nulls_mean_defaults(tmp_path):
    path = tmp_path / "sparse.yaml"
    path.write_text("system:\n  structures: H2O\nmd:\nmodel:\nschedule:\n  budget_cpu_seconds: null\n  n_cycles: null\n")
    cfg = load_campaign(path)
    assert cfg.md == make(tmp_path).md and cfg.model.preset == "small"
    assert cfg.schedule.n_cycles == 3 and cfg.schedule.budget_cpu_seconds is None


def test_long_campaign_stop_rules_are_off_by_default_and_survive_the_store(tmp_path):
    """schedule.deadline (a YAML timestamp, zone kept), max_hours, budget_cpu_hours, stop_when_nothing_new: read,
    stored as JSON and read back equal; none is on by default."""
    from datetime import datetime, timedelta, timezone

    assert make(tmp_path).schedule.deadline is None and make(tmp_path).schedule.max_hours is None
    assert not make(tmp_path).schedule.stop_when_nothing_new and make(tmp_path).schedule.budget_cpu_hours.cheap is None
    path = tmp_path / "long.yaml"
    path.write_text("system: {structures: H2O}\nschedule:\n  deadline: 2030-06-01 18:00:00+02:00\n  max_hours: 47.5\n"
                    "  budget_cpu_hours: {expensive: 12}\n  stop_when_nothing_new: true\n")
    cfg = load_campaign(path)
    s = cfg.schedule
    assert s.deadline == datetime(2030, 6, 1, 18, tzinfo=timezone(timedelta(hours=2))) and s.max_hours == 47.5
    assert (s.budget_cpu_hours.cheap, s.budget_cpu_hours.expensive) == (None, 12) and s.stop_when_nothing_new
    assert CampaignConfig.from_dict(cfg.to_dict(), check_files=False) == cfg


def test_null_switches_off_the_energy_window_and_the_ema(tmp_path):
    """For the keys whose documented ``null`` means "none", null is not the default (10 sigma, decay 0.99)."""
    path = tmp_path / "off.yaml"
    path.write_text("system: {structures: H2O}\nselection: {energy_window_sigma: null}\n"
                    "training: {ema_decay: null, rollback_factor: null}\n")
    cfg = load_campaign(path)
    assert cfg.selection.energy_window_sigma is None and cfg.training.ema_decay is None
    assert cfg.training.rollback_factor is None and make(tmp_path).training.rollback_factor == 2.0
    assert make(tmp_path).selection.energy_window_sigma == 10.0 and make(tmp_path).training.ema_decay == 0.99
    again = CampaignConfig.model_validate(json.loads(cfg.model_dump_json()), context={"base_dir": tmp_path})
    assert again.selection.energy_window_sigma is None and again.training.ema_decay is None


def test_stored_config_reads_back_without_its_input_files(tmp_path):
    xyz = tmp_path / "start.xyz"
    write(xyz, molecule("H2O"))
    data = make(tmp_path, system={"structures": "start.xyz"}).to_dict()
    xyz.unlink()
    with pytest.raises(ConfigError, match=r"^system\.structures: file not found: "):
        CampaignConfig.from_dict(data)
    again = CampaignConfig.from_dict(data, check_files=False)
    assert again.system.structures == str(xyz.resolve()) and again.to_dict() == data


@pytest.mark.parametrize("spec", ["b3lyp-svp", {"preset": "pbe-svp-df", "grid_level": 2}, {"preset": "mp2-dz"}])
def test_fidelities_resolve_as_load_fidelity_does(tmp_path, spec):
    cfg = make(tmp_path, system={"charge": -1, "spin": 1}, fidelities={"expensive": spec})
    assert cfg.expensive_fidelity == load_fidelity(spec, charge=-1, spin=1)
