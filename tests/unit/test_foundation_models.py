"""``benchmarks/foundation_models.py``'s pure logic: the merged table of result folders written by different
environments, the options that give a random MACE file alloop train's from-scratch recipe, the neighbour count of
the random MACE."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the scripts' own layout: benchmarks/ on sys.path, lib.* importable

import foundation_models  # noqa: E402
from lib.foundation_tables import table  # noqa: E402
from lib.mace_files import mean_neighbours  # noqa: E402

TESTS = {"a.extxyz": "500 K", "b.extxyz": "1000 K"}


def _entry(folder: Path, method: str, n: int, seed: int, means: dict[str, float], **costs: float) -> None:
    scores = {test: {"mean": m, "p95": 2 * m} for test, m in means.items()}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{method}-N{n}-seed{seed}.json").write_text(
        json.dumps({"arm": method, "n": n, "seed": seed, "scores": scores, **costs}))


def test_folders_of_two_environments_merge_into_one_table(tmp_path: Path) -> None:
    """One folder per model (each written by its own venv): rows in the models' order, mean +- std over the seeds
    found, a test file an entry was not scored on and a cost not measured shown as '-'."""
    sevennet, mace = tmp_path / "sevennet-0", tmp_path / "mace-off-small-random"
    _entry(sevennet, "random", 30, 0, {"a.extxyz": 0.020, "b.extxyz": 0.030}, train_cpu_s=100.0)
    _entry(sevennet, "random", 30, 1, {"a.extxyz": 0.024, "b.extxyz": 0.034}, train_cpu_s=120.0)
    _entry(sevennet, "zero-shot", 30, 0, {"a.extxyz": 0.2}, train_cpu_s=5.0)
    _entry(mace, "loop", 60, 2, {"a.extxyz": 0.05, "b.extxyz": 0.07}, train_s=600.0)
    (sevennet / "cost.json").write_text(json.dumps({"network_ms": 80.04, "with_baseline_ms": 84.0}))
    lines = table(tmp_path, TESTS, ["sevennet-0", "mace-off-small-random"])
    assert lines[0] == ("| model | method | N | seeds | 500 K mean | 500 K p95 | 1000 K mean | 1000 K p95 | training s "
                        "| ms/step | ms/step + baseline |")
    assert lines[2:] == [
        "| sevennet-0 | zero-shot | 30 | 1 | 0.2000 | 0.4000 | - | - | 5 | 80.0 | 84.0 |",
        "| sevennet-0 | random | 30 | 2 | 0.0220 ± 0.0028 | 0.0440 ± 0.0057 | 0.0320 ± 0.0028 | 0.0640 ± 0.0057 "
        "| 110 ± 14 | 80.0 | 84.0 |",
        "| mace-off-small-random | loop | 60 | 1 | 0.0500 | 0.1000 | 0.0700 | 0.1400 | 600 | - | - |",
    ]


def test_no_results_is_a_table_without_rows(tmp_path: Path) -> None:
    assert len(table(tmp_path / "none", TESTS)) == 2


def test_scratch_options_give_alloop_train_the_recipe_of_a_model_without_pretrained_weights() -> None:
    """A MACE file counts as pretrained in alloop train; the options put back every key the pretrained recipe
    changes (that alloop train has an option for) to its from-scratch value."""
    import yaml

    from alloop.config.training import PRETRAINED_DEFAULTS
    from alloop.training.recipe import section_from_options

    options = {k: yaml.safe_load(v) for k, v in (i.split("=") for i in foundation_models.scratch_train_options())}
    as_pretrained = section_from_options(options, pretrained=True)
    scratch = section_from_options({}, pretrained=False)
    assert as_pretrained.stage_steps() == scratch.stage_steps()
    changed = [k for k in PRETRAINED_DEFAULTS if k not in ("warm_start_lr_factor", "steps")]
    assert changed and all(getattr(as_pretrained, k) == getattr(scratch, k) for k in changed)
    assert section_from_options({}, pretrained=True).stage_steps() != scratch.stage_steps()


def test_mean_neighbours_counts_other_atoms_within_the_cutoff() -> None:
    from ase import Atoms

    atoms = Atoms("H3", positions=[[0, 0, 0], [0, 0, 1.0], [0, 0, 10.0]])
    assert mean_neighbours([atoms], 5.0) == pytest.approx(2 / 3)
    assert mean_neighbours([atoms, atoms], 20.0) == pytest.approx(2.0)
    assert np.isclose(mean_neighbours([atoms], 0.5), 0.0)
