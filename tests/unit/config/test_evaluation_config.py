"""The campaign's optional ``evaluation`` section: a labelled extxyz file checked at validation time."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule
from ase.io import write

from alloop.config import CampaignConfig, load_campaign
from alloop.errors import ConfigError
from alloop.evaluation.frames import EvaluationFrames, file_sha256, read_evaluation_frames
from alloop.io import attach_label, write_extxyz


def _water_frames(n: int = 3, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = molecule("H2O")
        atoms.positions += rng.normal(scale=0.03, size=atoms.positions.shape)
        frames.append(atoms)
    return frames


def write_labelled(path: Path, n: int = 3) -> Path:
    """Water frames with (made-up) standard energy/forces calculator results."""
    frames = [attach_label(a, -2000.0 - k, np.full((3, 3), 0.1 * k)) for k, a in enumerate(_water_frames(n))]
    write_extxyz(path, frames)
    return path


def campaign(evaluation: object, base: Path) -> CampaignConfig:
    return CampaignConfig.from_dict({"system": {"structures": "H2O"}, "evaluation": evaluation}, base_dir=base)


def reject(evaluation: object, base: Path, pattern: str) -> str:
    with pytest.raises(ConfigError) as info:
        campaign(evaluation, base)
    message = str(info.value)
    assert re.search(pattern, message), message
    return message


def test_standard_keys_relative_path_and_hash_round_trip(tmp_path):
    write_labelled(tmp_path / "eval.extxyz")
    cfg = campaign({"structures": "eval.extxyz"}, tmp_path)
    ev = cfg.evaluation
    assert ev.structures == (tmp_path / "eval.extxyz").resolve()
    assert (ev.energy_key, ev.forces_key) == ("energy", "forces")
    assert ev.sha256 == file_sha256(tmp_path / "eval.extxyz")
    # the stored (resolved) config reads back equal, and without the file once it is gone
    stored = cfg.to_dict()
    (tmp_path / "eval.extxyz").unlink()
    assert CampaignConfig.from_dict(stored, check_files=False).evaluation == ev
    assert campaign(None, tmp_path).evaluation is None


def test_file_name_alone_and_custom_keys(tmp_path):
    frames = _water_frames(2)
    for k, atoms in enumerate(frames):
        atoms.info["REF_energy"] = -2000.5 + k
        atoms.arrays["REF_forces"] = np.full((3, 3), 0.2 + k)
    write(tmp_path / "mace.extxyz", frames, format="extxyz")
    write_labelled(tmp_path / "eval.extxyz")
    assert campaign("eval.extxyz", tmp_path).evaluation.structures.name == "eval.extxyz"  # shorthand: the file alone
    reject("mace.extxyz", tmp_path, r"^evaluation\.structures: .*mace\.extxyz: frame 0 has no energy 'energy' "
                                    r"\(info keys \['REF_energy'\].*set evaluation\.energy_key\)$")
    cfg = campaign({"structures": "mace.extxyz", "energy_key": "REF_energy", "forces_key": "REF_forces"}, tmp_path)
    got = read_evaluation_frames(cfg.evaluation.structures, "REF_energy", "REF_forces")
    assert np.allclose(got.energy_eV, [-2000.5, -1999.5])
    assert np.allclose(got.forces_eV_per_A[3:], 1.2) and list(got.offsets) == [0, 3, 6]
    again = EvaluationFrames.from_bytes(got.to_bytes())
    assert np.array_equal(again.forces_eV_per_A, got.forces_eV_per_A) and again.header == got.header


def test_missing_file(tmp_path):
    reject({"structures": "nowhere.extxyz"}, tmp_path, r"^evaluation\.structures: file not found: .*nowhere\.extxyz$")


def test_missing_forces_names_the_frame(tmp_path):
    frames = _water_frames(3)
    labelled = [attach_label(a, -2000.0, np.zeros((3, 3))) for a in frames[:2]]
    unlabelled = frames[2].copy()
    unlabelled.info["energy"] = -2000.0  # an energy, but no forces
    write_extxyz(tmp_path / "eval.extxyz", [*labelled, unlabelled])
    reject({"structures": "eval.extxyz"}, tmp_path,
           r"^evaluation\.structures: .*eval\.extxyz: frame 2 has no forces 'forces' .*set evaluation\.forces_key\)$")


def test_unknown_element(tmp_path):
    frames = [attach_label(molecule("CH4"), -1100.0, np.zeros((5, 3)))]
    write_extxyz(tmp_path / "methane.extxyz", frames)
    reject({"structures": "methane.extxyz"}, tmp_path,
           r"^evaluation\.structures: frame 0 has elements \(C\) that the system's structures do not have \(H, O\)")


def test_unknown_key_and_wrong_hash(tmp_path):
    write_labelled(tmp_path / "eval.extxyz")
    reject({"structures": "eval.extxyz", "energy": "x"}, tmp_path,
           r"^evaluation\.energy: unknown key; did you mean 'energy_key'\?")
    reject({"structures": "eval.extxyz", "sha256": "0" * 64}, tmp_path,
           r"^evaluation\.sha256: .*eval\.extxyz has SHA-256 [0-9a-f]{64}, not the 0{64} given here$")


def test_extends_keeps_the_base_files_evaluation_path(tmp_path):
    (tmp_path / "base").mkdir()
    write_labelled(tmp_path / "base" / "eval.extxyz")
    (tmp_path / "base" / "base.yaml").write_text("system: {structures: H2O}\nevaluation: eval.extxyz\n")
    (tmp_path / "child.yaml").write_text("extends: base/base.yaml\n")
    assert load_campaign(tmp_path / "child.yaml").evaluation.structures == (tmp_path / "base" / "eval.extxyz").resolve()


def test_quickstart_names_the_b3lyp_test_frames():
    root = Path(__file__).resolve().parents[3]
    cfg = load_campaign(root / "campaigns" / "quickstart.yaml")
    frames = read_evaluation_frames(cfg.evaluation.structures)
    assert frames.n_frames == 150 and frames.elements == [1, 6, 8]
    assert frames.header["recorded_fidelity_hashes"] == [cfg.expensive_fidelity.hash()]


def test_auto_resolves_its_defaults_and_surface(tmp_path):
    """``evaluation: {auto: N}`` takes the MD defaults and the surface chain; a file and auto together, a level that
    is not GFN-xTB, or MD keys with a file are one-line errors."""
    from alloop.config import CampaignConfig
    from alloop.config.evaluation import AUTO_EQUILIBRATION_FS, AUTO_SPACING_FS
    from alloop.errors import ConfigError

    base = {"name": "a", "system": {"structures": "H2O"}, "fidelities": {"cheap": "hf-sto3g", "expensive": "hf-sto3g"},
            "model": {"preset": "small", "baseline": None}}
    cfg = CampaignConfig.from_dict({**base, "evaluation": {"auto": 30}}, base_dir=tmp_path)
    assert (cfg.evaluation.auto, cfg.evaluation.structures) == (30, None)
    assert (cfg.evaluation.equilibration_fs, cfg.evaluation.spacing_fs) == (AUTO_EQUILIBRATION_FS, AUTO_SPACING_FS)
    assert cfg.evaluation_surface().name == "gfn2-xtb"  # no GFN-xTB cheap level, no baseline
    xtb = {**base, "fidelities": {"cheap": "gfn1-xtb", "expensive": "hf-sto3g"}, "evaluation": {"auto": 5}}
    assert CampaignConfig.from_dict(xtb, base_dir=tmp_path).evaluation_surface().name == "gfn1-xtb"
    assert CampaignConfig.from_dict(CampaignConfig.from_dict(xtb, base_dir=tmp_path).to_dict(),
                                    check_files=False).evaluation.auto == 5  # the stored config reads back
    for section, message in (({"auto": 5, "structures": "x.extxyz"}, "either structures"),
                             ({"auto": 5, "level": "hf-sto3g"}, "evaluation.level: the automatic set's MD"),
                             ({"auto": 0}, "evaluation.auto"),
                             ({"auto": 5, "spacing_fs": 0}, "evaluation.spacing_fs")):
        with pytest.raises(ConfigError, match=message):
            CampaignConfig.from_dict({**base, "evaluation": section}, base_dir=tmp_path, check_files=False)
