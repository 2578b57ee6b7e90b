"""Every rejected configuration raises ConfigError whose message is ``<key path>: <reason>``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ase import Atoms
from ase.build import molecule
from ase.io import write

from alloop.config import CampaignConfig, load_campaign
from alloop.config.base import deep_merge
from alloop.errors import ConfigError


def reject(tmp_path: Path, sections: dict, pattern: str) -> str:
    data = deep_merge({"system": {"structures": "H2O"}}, sections)
    with pytest.raises(ConfigError) as info:
        CampaignConfig.from_dict(data, base_dir=tmp_path)
    message = str(info.value)
    assert re.search(pattern, message), message
    return message


CASES = [
    ({"md": {"temperature_K": -5}}, r"^md\.temperature_K: must be > 0 \(got -5\)$"),
    ({"md": {"timestep_fs": 0}}, r"^md\.timestep_fs: must be > 0 \(got 0\)$"),
    ({"md": {"temprature_K": 300}}, r"^md\.temprature_K: unknown key; did you mean 'temperature_K'\? \(known: "),
    ({"colour": "red"}, r"^colour: unknown key; \(known: name, seed, system, "),
    ({"md": {"temperature_K": 500, "temperature_ladder_K": [500, 1600]}},
     r"^md\.temperature_ladder_K: 1600 K is outside temperature_range_K \[0, 1500\], where the temperature guard "
     r"would stop its replicas$"),
    ({"md": {"temperature_ladder_K": []}}, r"^md\.temperature_ladder_K: "),
    ({"md": {"n_replicas": "four"}}, r"^md\.n_replicas: must be an integer \(got 'four'\)$"),
    ({"md": {"ensemble": "npt"}}, r"^md\.ensemble: must be 'langevin' or 'nve' \(got 'npt'\)$"),
    ({"md": {"temperature_range_K": [900, 100]}}, r"^md\.temperature_range_K: low must be < high \(got \[900, 100\]\)$"),
    ({"md": {"temperature_range_K": [0, 400]}}, r"^md\.temperature_range_K: must contain temperature_K \(500\)"),
    ({"md": {"temperature_range_K": [-1, 400]}}, r"^md\.temperature_range_K: low must be >= 0 \(got -1\)$"),
    ({"md": {"segment_steps": 10, "record_every": 20}}, r"^md\.record_every: must be <= segment_steps \(10\) \(got 20\)$"),
    ({"md": {"max_bond_stretch": 0.9}}, r"^md\.max_bond_stretch: must be > 1 \(got 0\.9\)$"),
    ({"uncertainty": {"alpha": 1.5}}, r"^uncertainty\.alpha: must be < 1 \(got 1\.5\)$"),
    ({"uncertainty": {"score_quantile": 0}}, r"^uncertainty\.score_quantile: must be > 0 \(got 0\)$"),
    (
        {"uncertainty": {"limit": "hotelling"}},
        r"^uncertainty\.limit: must be 'empirical', 'empirical-frame' or 'jackson-mudholkar'",
    ),
    ({"training": {"validation_fraction": 1.0}}, r"^training\.validation_fraction: must be < 1 \(got 1\.0\)$"),
    ({"training": {"gamma_grid": [0.5, -1]}}, r"^training\.gamma_grid: every gamma must be > 0"),
    ({"training": {"max_epochs": 5, "patience_epochs": 10}}, r"^training\.patience_epochs: must be <= max_epochs \(5\)"),
    ({"training": {"method": "magic"}},
     r"^training\.method: must be 'standard', 'asteroid', 'asteroid-no-weights' or 'two-head' \(got 'magic'\)$"),
    (
        {"training": {"method": "score-matching"}},
        r"^training\.method: score-matching is not a campaign method: the campaign's MD frames are Boltzmann samples "
        r"of the model being trained, not of the reference surface, .*`alloop train --method score-matching "
        r"--unlabelled FRAMES` with Boltzmann samples of a reference surface$",
    ),
    (
        {"md": {"record_every": 10}, "selection": {"min_step_spacing": 10}},
        r"^selection\.min_step_spacing: must be > md\.record_every \(10\), or two consecutive recorded frames of a "
        r"replica can both be selected \(got 10\)$",
    ),
    ({"md": {"record_every": 5}, "selection": {"min_step_spacing": 0}}, r"^selection\.min_step_spacing: .*\(got 0\)$"),
    (
        {"selection": {"expensive_pick": "coverage", "diversity": "none"}},
        r"^selection: expensive_pick: coverage needs diversity: fps \(it measures distances in feature space\)$",
    ),
    ({"selection": {"expensive_pick": "random"}},
     r"^selection\.expensive_pick: must be 'bias', 'coverage', 'lcmd', 'kmeans\+\+', 'committee' or 'predicted-error'"),
    ({"selection": {"committee_size": 1}}, r"^selection\.committee_size: must be >= 2 \(got 1\)$"),
    ({"training": {"final_retrain": False, "final_refit": True}},
     r"^training\.final_refit: a refit on every label follows the final retrain"),
    ({"training": {"final_refit": False, "calibration_folds": 3}},
     r"^training\.calibration_folds: cross-validated calibration calibrates the refit on every label"),
    ({"training": {"calibration_folds": 11}}, r"^training\.calibration_folds: must be <= 10"),
    (
        {"training": {"outside_molecules": ["H2", "Unobtainium"]}},
        r"^training\.outside_molecules: 'Unobtainium' is not a molecule name ase\.build\.molecule knows$",
    ),
    ({"training": {"outside_molecules": ["H2", "H2"]}}, r"^training\.outside_molecules: molecules must be distinct"),
    (
        {"training": {"outside_molecules": ["H2", "CH4"]}},
        r"^training\.outside_molecules: 'CH4' has elements \[6\] that the model does not know$",
    ),
    ({"training": {"outside_molecules": ["H2O"]}}, r"^training\.outside_molecules: 'H2O' is a composition of the campaign$"),
    (
        {"fidelities": {"cheap": "gfn1-xtb"}, "model": {"baseline": "gfn1-xtb"}, "training": {"method": "asteroid"}},
        r"^training\.method: asteroid trains on the cheap labels minus the baseline, and fidelities\.cheap \(gfn1-xtb\) "
        r"is the baseline itself \(model\.baseline: gfn1-xtb\): those targets are zero on every frame; ",
    ),
    (
        {"training": {"replay_fraction": 0.25}},
        r"^training\.replay_fraction: 0\.25 needs a model that starts from pretrained weights \(model\.base, e\.g\. "
        r"model: sevennet-0, or model\.checkpoint\)$",
    ),
    (
        {"model": "sevennet-0", "training": {"batch_size": 1, "replay_fraction": 0.5}},
        r"^training\.replay_fraction: replay needs batch_size >= 2 \(got batch_size 1\)$",
    ),
    ({"model": "sevennet-0", "training": {"replay_fraction": 1}}, r"^training\.replay_fraction: must be < 1 \(got 1\)$"),
    (
        {"system": {"structures": "N2"}, "model": "sevennet-0", "training": {"replay_fraction": 0.25}},
        r"^training\.replay_fraction: no outside molecule is made of the campaign's elements; name some in "
        r"training\.outside_molecules$",
    ),
    (
        {"selection": {"max_cheap_per_cycle": 4, "max_expensive_per_cycle": 5}},
        r"^selection\.max_expensive_per_cycle: must be <= max_cheap_per_cycle \(4\)",
    ),
    (
        {"schedule": {"bootstrap": {"method": "normal-modes", "amplitude_A": 0.1}}},
        r"^schedule\.bootstrap\.amplitude_A: only used by method 'rattle' \(method is 'normal-modes'\)$",
    ),
    (
        {"schedule": {"bootstrap": {"method": "rattle", "temperature_K": 300}}},
        r"^schedule\.bootstrap\.temperature_K: only used by methods 'normal-modes' and 'md'",
    ),
    (
        {"model": {"preset": "small", "baseline": None}, "schedule": {"bootstrap": {"method": "md"}}},
        r"^schedule\.bootstrap\.method: md runs GFN-xTB MD; name its surface in schedule\.bootstrap\.level ",
    ),
    (
        {"schedule": {"bootstrap": {"method": "md", "level": "b3lyp-svp"}}},
        r"^schedule\.bootstrap\.level: bootstrap MD runs on a GFN-xTB surface \(gfn1-xtb, gfn2-xtb\), "
        r"not the pyscf fidelity ",
    ),
    (
        {"schedule": {"bootstrap": {"method": "rattle", "spacing_fs": 50}}},
        r"^schedule\.bootstrap\.spacing_fs: only used by method 'md' \(method is 'rattle'\)$",
    ),
    (
        {"schedule": {"bootstrap": {"method": "md", "level": "gfn2-xtb", "spacing_fs": 0}}},
        r"^schedule\.bootstrap\.spacing_fs: must be > 0 \(got 0\)$",
    ),
    (
        {"schedule": {"bootstrap": {"n_samples": 4, "n_expensive": 5}}},
        r"^schedule\.bootstrap\.n_expensive: must be <= n_samples \(4\) \(got 5\)$",
    ),
    (
        {"schedule": {"max_labels": {"expensive": 3}}},
        r"^schedule\.max_labels\.expensive: 3 is fewer than the bootstrap alone needs "
        r"\(schedule\.bootstrap\.n_expensive = 8\)$",
    ),
    (
        {"selection": {"max_expensive_per_cycle": 0}, "schedule": {"bootstrap": {"n_expensive": 0}}},
        r"^selection\.max_expensive_per_cycle: 0, and the bootstrap gives no expensive labels",
    ),
    ({"schedule": {"min_flag_rate": 1.2}}, r"^schedule\.min_flag_rate: must be < 1 \(got 1\.2\)$"),
    ({"schedule": {"deadline": "friday"}},
     r"^schedule\.deadline: must be an ISO-8601 time such as 2025-06-01T18:00 or 2025-06-01T18:00\+02:00 \(got 'friday'\)$"),
    ({"schedule": {"deadline": 48}},
     r"^schedule\.deadline: must be a time such as 2025-06-01T18:00 \(got 48\); for hours from the start of each run "
     r"use schedule\.max_hours$"),
    ({"schedule": {"max_hours": 0}}, r"^schedule\.max_hours: must be > 0 \(got 0\)$"),
    ({"schedule": {"budget_cpu_hours": {"cheap": -1}}}, r"^schedule\.budget_cpu_hours\.cheap: must be > 0 \(got -1\)$"),
    ({"schedule": {"budget_cpu_hours": {"expensive": "lots"}}},
     r"^schedule\.budget_cpu_hours\.expensive: must be a number \(got 'lots'\)$"),
    ({"schedule": {"budget_cpu_hours": {"ccsd": 1}}},
     r"^schedule\.budget_cpu_hours\.ccsd: unknown key; \(known: cheap, expensive\)$"),
    ({"schedule": {"budget_cpu_hours": 5}}, r"^schedule\.budget_cpu_hours: must be a mapping \(got 5\)$"),
    ({"schedule": {"stop_when_nothing_new": "sometimes"}},
     r"^schedule\.stop_when_nothing_new: must be true or false \(got 'sometimes'\)$"),
    ({"schedule": {"strategy": "greedy"}}, r"^schedule\.strategy: must be 'periodic' or 'naive' \(got 'greedy'\)$"),
    (
        {"schedule": {"strategy": "naive", "mode": "asynchronous"}},
        r"^schedule\.mode: asynchronous mode overlaps a cycle's training .* \(use strategy: periodic or mode: synchronous\)",
    ),
    ({"system": {"spin": 1}}, r"^system\.spin: 10 electrons in the structure \(H2O, charge 0\) cannot have spin \(2S\) = 1"),
    (
        {"system": {"charge": 1}},
        r"^system\.spin: 9 electrons in the structure \(H2O, charge 1\) cannot have spin \(2S\) = 0",
    ),
    ({"system": {"charge": 10}}, r"^system\.charge: leaves 0 electrons"),
    ({"system": {"spin": -2}}, r"^system\.spin: must be >= 0 \(got -2\)$"),
    ({"system": {"structures": "missing.xyz"}}, r"^system\.structures: file not found: .*/missing\.xyz"),
    (
        {"model": "huge"},
        r"^model: unknown model preset 'huge' \(known: egnn-paper, mace, pair, sevennet-0, sevennet-small, small, so3lr\)$",
    ),
    ({"model": {"checkpoint": "nowhere.pt"}}, r"^model\.checkpoint: file not found: .*/nowhere\.pt$"),
    ({"model": {"preset": "pair", "n_layers": 2}}, r"^model\.n_layers: not used by architecture 'pair'$"),
    ({"model": {"architecture": "nequip"}},
     r"^model\.architecture: must be 'egnn', 'pair', 'sevennet', 'mace' or 'so3lr' \(got 'nequip'\)$"),
    ({"model": {"architecture": "mace"}}, r"^model: checkpoint: architecture 'mace' needs a model file you bring"),
    ({"model": {"architecture": "so3lr"}}, r"^model: base: architecture 'so3lr' is the pretrained SO3LR only: set base"),
    ({"model": {"preset": "small", "dtype": "float16"}}, r"^model\.dtype: must be 'float32' or 'float64'"),
    ({"fidelities": {"cheap": "nope"}}, r"^fidelities\.cheap: unknown fidelity preset 'nope' \(known: "),
    (
        {"fidelities": {"expensive": {"preset": "b3lyp-svp", "method": "nonsense"}}},
        r"^fidelities\.expensive\.method: unknown method 'nonsense'",
    ),
    (
        {"fidelities": {"cheap": {"method": "hf", "basis": "sto-3g", "colour": 1}}},
        r"^fidelities\.cheap\.colour: unknown key",
    ),
    (
        {"fidelities": {"cheap": {"preset": "hf-sto3g", "charge": 2}}},
        r"^fidelities\.cheap\.charge: set by system\.charge \(0\)",
    ),
    ({"fidelities": {"cheap": ["hf"]}}, r"^fidelities\.cheap: must be a mapping \(got \['hf'\]\)$"),
    ({"execution": {"address": "tcp://h:1", "scheduler_file": "s.json"}}, r"^execution\.scheduler_file: give either"),
    ({"execution": {"address": "tcp://h:1", "cluster": "local"}}, r"^execution\.cluster: not used with execution\.address"),
    ({"execution": {"cluster": "cloud"}}, r"^execution\.cluster: unknown cluster preset 'cloud' \(known: local, slurm\)$"),
    (
        {"execution": {"cluster": {"kind": "local", "options": {"n_workers": 3}}}},
        r"^execution\.cluster\.options: 'n_workers' is set by execution\.n_workers, not here$",
    ),
    ({"execution": {"tasks_per_slot": 0}}, r"^execution\.tasks_per_slot: must be >= 1 \(got 0\)$"),
    ({"name": "my campaign"}, r"^name: must match .* \(got 'my campaign'\)$"),
    ({"seed": -1}, r"^seed: must be >= 0 \(got -1\)$"),
    ({"system": {"structures": ["CH4", "H2O", "CO2"]}, "md": {"n_replicas": 2}},
     r"^md\.n_replicas: 2 replicas cannot cover the 3 molecules of system\.structures \(CH4, H2O, CO2\); use at least 3$"),
    ({"system": {"structures": ["CH4", "no-such-molecule"]}}, r"^system\.structures.*no-such-molecule"),
]


@pytest.mark.parametrize("sections, pattern", CASES, ids=[p.split(":")[0].strip("^").replace("\\", "") for _, p in CASES])
def test_rejected(tmp_path, sections, pattern):
    reject(tmp_path, sections, pattern)


def test_step_spacing_just_above_record_every_is_accepted(tmp_path):
    data = {"system": {"structures": "H2O"}, "md": {"record_every": 5}, "selection": {"min_step_spacing": 6}}
    assert CampaignConfig.from_dict(data, base_dir=tmp_path).selection.min_step_spacing == 6


def test_missing_system_and_all_errors_one_per_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^system: required$"):
        CampaignConfig.from_dict({}, base_dir=tmp_path)
    message = reject(tmp_path, {"md": {"temperature_K": -5, "timestep_fs": 0}, "seed": "x"}, r"")
    lines = message.splitlines()
    assert lines == [
        "seed: must be an integer (got 'x')",
        "md.temperature_K: must be > 0 (got -5)",
        "md.timestep_fs: must be > 0 (got 0)",
    ]


def test_fidelity_basis_coverage(tmp_path):
    xyz = tmp_path / "k2.xyz"
    write(xyz, Atoms("K2", positions=[[0, 0, 0], [0, 0, 3.9]]))
    reject(
        tmp_path,
        {"system": {"structures": str(xyz)}, "fidelities": {"expensive": "ccsdt-dz"}},
        r"^fidelities\.expensive: fidelity 'ccsdt-dz': basis 'cc-pvdz' does not cover element K$",
    )
    write(xyz, Atoms("Xe2", positions=[[0, 0, 0], [0, 0, 4.4]]))
    reject(tmp_path, {"system": {"structures": str(xyz)}},
           r"^fidelities\.cheap: .*basis 'sto-3g' does not cover element Xe$")


def test_structures_too_close_or_periodic(tmp_path):
    xyz = tmp_path / "close.xyz"
    write(xyz, Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.3]]))
    reject(
        tmp_path,
        {"system": {"structures": str(xyz)}},
        r"^system\.structures: the structure has atoms 0\.300 A apart, closer than md\.min_distance_A \(0\.5\)",
    )
    box = molecule("H2O", vacuum=3.0)
    box.pbc = True
    write(tmp_path / "box.extxyz", box)
    reject(tmp_path, {"system": {"structures": "box.extxyz"}},
           r"^fidelities\.cheap: fidelity 'hf-sto3g' \(hf/sto-3g\) labels isolated molecules; this structure is periodic")
    box.pbc = [True, True, False]
    write(tmp_path / "slab.extxyz", box)
    reject(tmp_path, {"system": {"structures": "slab.extxyz"}},
           r"^system\.structures: the structure: alloop simulates molecules and cells periodic in all three directions")


def test_unreadable_structure_file(tmp_path):
    (tmp_path / "junk.xyz").write_text("this is not\nan xyz file\n")
    reject(tmp_path, {"system": {"structures": "junk.xyz"}}, r"^system\.structures: cannot read structures from .*junk\.xyz")


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("system:\n  structures: H2O\nmd:\n  temperature_K: [500\n  timestep_fs: 0.5\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+:\d+: YAML syntax error: ") as info:
        load_campaign(path)
    assert "\n" not in str(info.value)
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: a campaign file must be a mapping of sections \(got list\)"):
        load_campaign(path)
    with pytest.raises(ConfigError, match=r"nothere\.yaml: campaign file not found"):
        load_campaign(tmp_path / "nothere.yaml")


def test_extends_cycle_rejected(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nsystem: {structures: H2O}\n")
    with pytest.raises(ConfigError, match=r"^extends: .*a\.yaml extends itself"):
        load_campaign(tmp_path / "a.yaml")


def test_unknown_cluster_option_is_refused_where_clusters_are_built(tmp_path, capsys):
    """The option names come from the cluster classes (Dask), so the config accepts any name and
    ``check_cluster_options`` (called by ``alloop validate`` and before a campaign starts) refuses a typo."""
    from alloop.campaign.execution.jobqueue import check_cluster_options
    from alloop.campaign.loop.runner import start_campaign
    from alloop.cli import main

    sections = {"execution": {"cluster": {"preset": "slurm", "options": {"walltme": "1:00:00"}}}}
    cfg = CampaignConfig.from_dict(deep_merge({"system": {"structures": "H2O"}}, sections), base_dir=tmp_path)
    pattern = r"^execution\.cluster\.options: unknown slurm cluster option 'walltme' \(known: .*walltime"
    with pytest.raises(ConfigError, match=pattern):
        check_cluster_options(cfg.execution)
    with pytest.raises(ConfigError, match=pattern):
        start_campaign(cfg, tmp_path / "run", progress=False, echo=lambda s: None)
    assert not (tmp_path / "run").exists()  # refused before the store is created
    path = tmp_path / "c.yaml"
    path.write_text("system: {structures: H2O}\nexecution: {cluster: {preset: slurm, options: {walltme: '1:00:00'}}}\n")
    assert main(["validate", str(path)]) == 1
    assert "unknown slurm cluster option 'walltme'" in capsys.readouterr().err
    check_cluster_options(CampaignConfig.from_dict({"system": {"structures": "H2O"}}, base_dir=tmp_path).execution)
