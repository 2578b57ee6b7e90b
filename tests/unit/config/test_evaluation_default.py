"""The automatic test set is on by default (issue 63): a campaign file without ``evaluation`` resolves to
``{auto: AUTO_FRAMES}`` where such a set can be made, ``evaluation: false`` (or ``--set evaluation=false``) runs
without one, and where none can be made (a periodic cell, elements GFN-xTB lacks) there is none and ``alloop
validate`` says why in one line. Config level only: nothing is computed."""

from __future__ import annotations

import json

import pytest
from ase import Atoms

from alloop.cli import main
from alloop.config import CampaignConfig, load_campaign
from alloop.config.derived import derived_defaults, no_auto_evaluation
from alloop.config.evaluation import AUTO_FRAMES
from alloop.errors import ConfigError

TINY = """
name: tiny
system: {structures: H2O}
fidelities: {cheap: hf-sto3g, expensive: hf-sto3g}
model: {architecture: pair, cutoff_A: 4.0, n_rbf: 8}
"""


def _write(tmp_path, text: str = TINY, name: str = "tiny.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _validate(capsys, *args: str) -> str:
    assert main(["validate", *args]) == 0
    return capsys.readouterr().out


def test_a_file_without_the_section_gets_the_automatic_set_and_validate_says_it_is_the_default(tmp_path, capsys):
    path = _write(tmp_path)
    cfg = load_campaign(path)
    assert (cfg.evaluation.auto, cfg.evaluation.structures) == (AUTO_FRAMES, None)
    assert cfg.evaluation_surface().name == "gfn2-xtb"  # the default baseline's surface
    again = CampaignConfig.from_dict(cfg.to_dict(), check_files=False)  # what a store keeps reads back the same
    assert again.evaluation == cfg.evaluation
    out = _validate(capsys, str(path), "--sources")
    assert f"evaluation {AUTO_FRAMES} frames to make: gfn2-xtb Langevin MD at 500 K" in out
    assert "; the default: evaluation: false switches it off" in out
    row = next(line for line in out.splitlines() if line.startswith("  evaluation.auto "))
    assert row.split()[1] == str(AUTO_FRAMES) and "<- default (a test set made from GFN-xTB MD" in row
    resolved = json.loads(_validate(capsys, str(path), "--json"))["resolved"]["evaluation"]
    assert (resolved["auto"], resolved["surface"]) == (AUTO_FRAMES, "gfn2-xtb")


def test_the_file_s_own_section_wins_and_says_so(tmp_path, capsys):
    path = _write(tmp_path, TINY + "evaluation: {auto: 5}\n")
    assert load_campaign(path).evaluation.auto == 5
    row = next(line for line in _validate(capsys, str(path), "--sources").splitlines()
               if line.startswith("  evaluation.auto "))
    assert row.endswith("<- tiny.yaml")


@pytest.mark.parametrize("how", ["file", "null", "--set"])
def test_evaluation_false_runs_without_a_set(tmp_path, capsys, how):
    text = TINY + {"file": "evaluation: false\n", "null": "evaluation: null\n", "--set": ""}[how]
    path = _write(tmp_path, text)
    overrides = ["evaluation=false"] if how == "--set" else []
    cfg = load_campaign(path, overrides)
    assert cfg.evaluation is None and cfg.evaluation_surface() is None
    stored = cfg.to_dict()
    assert stored["evaluation"] is None
    assert CampaignConfig.from_dict(stored, check_files=False).evaluation is None  # a resume does not add one
    out = _validate(capsys, str(path), "--sources", *(f"--set={o}" for o in overrides))
    assert ("evaluation none: switched off (evaluation: false in the file, or --set evaluation=false)"
            in out.splitlines())
    row = next(line for line in out.splitlines() if line.startswith("  evaluation "))
    assert row.split()[1] == "null" and row.endswith("<- --set" if how == "--set" else "<- tiny.yaml")


def test_a_switched_off_set_can_be_asked_for_again_and_true_is_refused(tmp_path):
    path = _write(tmp_path, TINY + "evaluation: false\n")
    assert load_campaign(path, ["evaluation.auto=4"]).evaluation.auto == 4
    child = _write(tmp_path, f"extends: {path.name}\nname: child\n", "child.yaml")
    assert load_campaign(child).evaluation is None  # an extended file's false is inherited
    with pytest.raises(ConfigError, match=r"^evaluation: true is not a set: give false \(no set\)"):
        load_campaign(path, ["evaluation=true"])


def test_no_default_set_for_a_periodic_cell_and_validate_says_why(tmp_path, capsys):
    from alloop.io import write_extxyz
    from alloop.testing.cells import water_box

    write_extxyz(tmp_path / "box.extxyz", [water_box(2, seed=0)])
    path = _write(tmp_path, TINY.replace("structures: H2O", "structures: box.extxyz")
                  .replace("cheap: hf-sto3g, expensive: hf-sto3g", "cheap: gfn1-xtb, expensive: pbe-gth-szv"))
    assert load_campaign(path).evaluation is None
    lines = [line for line in _validate(capsys, str(path)).splitlines() if line.startswith("evaluation")]
    assert lines == ["evaluation none: the structures are a periodic cell, where the set's GFN-xTB MD costs hours; "
                     "ask for one with evaluation: {auto: N} or give a labelled file (evaluation.structures)"]
    assert load_campaign(path, ["evaluation.auto=2"]).evaluation.auto == 2  # asked for, it is made


def test_no_default_set_for_elements_no_gfn_xtb_surface_parametrises(tmp_path):
    xyz = tmp_path / "uh2.xyz"
    xyz.write_text("3\n\nU 0 0 0\nH 2.0 0 0\nH -2.0 0 0\n")
    reason = no_auto_evaluation([Atoms("UH2", positions=[[0, 0, 0], [2, 0, 0], [-2, 0, 0]])])
    assert reason is not None and reason.startswith("no GFN-xTB surface parametrises U (H to Rn only)")
    data = {"system": {"structures": str(xyz)}, "fidelities": {"cheap": "hf-sto3g", "expensive": "hf-sto3g"}}
    assert not [d for d in derived_defaults(data, tmp_path) if d.key.startswith("evaluation")]
    water = {**data, "system": {"structures": "H2O"}}
    assert [(d.key, d.value) for d in derived_defaults(water, tmp_path) if d.key.startswith("evaluation")] == \
        [("evaluation.auto", AUTO_FRAMES)]
    assert no_auto_evaluation([Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])]) is None
