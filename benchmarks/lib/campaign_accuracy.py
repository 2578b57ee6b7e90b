"""Accuracy vs labelling cost of a finished campaign (the ``--accuracy`` part of campaign_bench.py).

Data (``benchmarks/make_ethanol_data.py``): ``ethanol_500K_short_test_b3lyp-svp.extxyz``
(held-out AIMD trajectory, B3LYP/def2-SVP labels) and
``ethanol_500K_short_pool_b3lyp-svp.extxyz`` (another AIMD trajectory, each frame with
its measured label cost in ``info["cpu_seconds"]``). Both trajectories were run
with HF/STO-3G forces at 500 K. The campaign's expensive fidelity must be that
of the files (checked by fidelity hash), else the comparison is refused.

Rows, each scored on the test frames (force MAE over all components, energy MAE
per atom; the models' reference energies are those fitted on the expensive labels):

- (a) the campaign's final model (latest ``model`` checkpoint): ASTEROID (or the
  configured method) on the frames the loop chose from its own MD, charged the
  campaign's total labelling CPU seconds (cheap + expensive);
- (b) standard training (``train_asteroid("standard")``) on the campaign's ok
  expensive labels only, same architecture, hyperparameters and training settings
  as the campaign's last training; the labels used cost the expensive CPU seconds,
  but choosing them took the cheap labels too (both are shown);
- (c) standard training on randomly chosen pool frames (seeded permutation,
  as many as the campaign's total labelling CPU seconds buys at the pool's recorded
  per-frame B3LYP cost), one row per seed.

The pool's costs were measured by another process at another time (and load)
than the campaign's: CPU seconds are comparable to within the machine's noise.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase import units

from lib.common import markdown_table

PREFIX = "ethanol_500K_short"
KCAL_PER_MOL_PER_EV = 1.0 / (units.kcal / units.mol)


def _dataset(frames: list[Any], fidelity_hash: str):
    from alloop.training import FrameDataset

    return FrameDataset.from_atoms(frames, fidelity=fidelity_hash)


def _campaign_expensive(store: Any, fidelity: Any):
    """The campaign's ok expensive labels as a FrameDataset, in the order the driver trains on them."""
    from alloop.campaign.loop.driver import labelled_arrays

    return labelled_arrays(store, fidelity).dataset()


def _trainer(cfg: Any, store: Any, threads: int):
    """A function dataset -> (trained model, seconds) with the campaign's model and last training settings."""
    from alloop.potentials.checkpoint import load_checkpoint
    from alloop.potentials.registry import build_model
    from alloop.training import train_asteroid
    from alloop.training.recipe import asteroid_settings

    cycles = store.table("cycles") if "cycles" in store.table_names() else {}
    trained = [int(c) for c, v in zip(cycles.get("cycle", []), cycles.get("model_version", []), strict=True) if v >= 0]
    settings = asteroid_settings(cfg.training, cfg.seed + max([0] + trained), threads, cfg.md.temperature_K,
                                 split_seed=cfg.seed)
    elements = sorted({int(z) for a in cfg.load_structures() for z in a.numbers})
    hp = {**cfg.model.hyperparameters(), "seed": cfg.seed}
    initial = load_checkpoint(cfg.model.checkpoint)[0] if cfg.model.checkpoint is not None else None

    def fit(dataset: Any) -> tuple[Any, float]:
        t0 = time.perf_counter()
        result = train_asteroid("standard", dataset,
                                model_factory=lambda: build_model(cfg.model.architecture, elements, **hp),
                                settings=settings, initial_model=initial)
        return result.model, time.perf_counter() - t0

    return fit


def _row(name: str, data: str, n: str, cpu: str, metrics: dict[str, Any], seconds: float | None) -> list[str]:
    f = metrics["force_mae_eV_per_A"]
    return [name, data, n, cpu, f"{f:.4f}", f"{f * KCAL_PER_MOL_PER_EV:.3f}",
            f"{1000 * metrics['energy_mae_per_atom_eV']:.2f}", "" if seconds is None else f"{seconds:.0f}"]


def _labelled_sets(cfg: Any, data_dir: Path) -> tuple[dict[str, Path], list, list] | None:
    """The test and pool files at the campaign's expensive fidelity and their frames; None (said why) when missing
    or at another level of theory."""
    from alloop.io import read_labelled

    exp = cfg.expensive_fidelity
    paths = {part: Path(data_dir) / f"{PREFIX}_{part}_{exp.name}.extxyz" for part in ("test", "pool")}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        print(f"\naccuracy part skipped: missing {', '.join(missing)} (written by benchmarks/make_ethanol_data.py;"
              " run it first, or point --data at its output folder)")
        return None
    test, pool = read_labelled(paths["test"]), read_labelled(paths["pool"])
    for part, frames in (("test", test), ("pool", pool)):
        got = {a.info.get("fidelity_hash") for a in frames}
        if got != {exp.hash()}:
            print(f"\naccuracy part skipped: {paths[part]} holds labels of fidelity hash {sorted(map(str, got))}, the"
                  f" campaign's expensive fidelity '{exp.name}' is {exp.hash()}; the comparison needs the same level"
                  " of theory")
            return None
    return paths, test, pool


def _random_pool_rows(pool: list, budget: float, seeds: list[int], fit: Any, exp_hash: str,
                      test_set: Any) -> tuple[list[list[str]], list[float]]:
    """Rows (c): standard training on the random pool frames ``budget`` CPU s buy, one per seed; their force MAEs."""
    from alloop.evaluation.metrics import evaluate_model

    costs = np.array([float(a.info["cpu_seconds"]) for a in pool])
    rows, pool_errors = [], []
    for seed in seeds:
        order = np.random.default_rng(seed).permutation(len(pool))
        k = int(np.searchsorted(np.cumsum(costs[order]), budget, side="right"))
        if k < 2:
            print(f"(c) seed {seed}: the budget {budget:.0f} CPU s buys {k} pool frame(s); standard training needs 2")
            continue
        note = " (the whole pool)" if k == len(pool) else ""
        model_c, sec_c = fit(_dataset([pool[i] for i in order[:k]], exp_hash))
        metrics = evaluate_model(model_c, test_set)
        pool_errors.append(metrics["force_mae_eV_per_A"])
        rows.append(_row(f"(c) standard, random pool frames, seed {seed}", f"AIMD (HF/STO-3G PES) frames{note}",
                         f"{k} exp", f"{costs[order[:k]].sum():.0f}", metrics, sec_c))
        print(f"  (c) seed {seed} done", flush=True)
    return rows, pool_errors


def _notes(cfg: Any, sp: Any, n_test: int, pool: list, data_dir: Path) -> None:
    """What the rows mean and what they leave out."""
    exp = cfg.expensive_fidelity
    print(f"\nNotes: labels at {cfg.cheap_fidelity.name} (cheap) and {exp.name} (expensive); test = {n_test} frames"
          f" of a held-out AIMD trajectory on the HF/STO-3G surface at 500 K. (a)'s and (b)'s training frames come from"
          f" the campaign's own bootstrap (rattled copies) and MLFF MD, i.e. from where its models went, while (c)'s"
          f" come from AIMD on the same cheap surface that produced the test trajectory, so (c) is in-distribution"
          f" for the test set by construction. (a) also spent {sp.cpu_seconds['cheap']:.0f} CPU s on cheap labels;"
          f" (b) and (c) train with the campaign's last training settings (train s: wall time here, shared machine);"
          f" MD and training compute is not counted in label CPU s. (c)'s costs are the pool file's recorded"
          f" per-frame B3LYP CPU seconds (measured by make_ethanol_data.py, not in this run).")
    summary = Path(data_dir) / f"{PREFIX}_summary.json"
    if summary.is_file():
        md_cpu = json.loads(summary.read_text()).get("pool_md_cpu_seconds")
        if md_cpu is not None:
            print(f"The HF/STO-3G AIMD that produced the pool cost {md_cpu:.0f} CPU s for {len(pool)} frames"
                  f" ({md_cpu / len(pool):.1f} CPU s per frame), charged to no row: (c) needs such a trajectory first.")


def accuracy_report(cfg: Any, store: Any, data_dir: Path, seeds: list[int], threads: int) -> int:
    """Print the accuracy-vs-cost table; returns 0, or 2 when the data files are missing or do not match."""
    from alloop.evaluation.metrics import evaluate_model
    from alloop.potentials.checkpoint import model_from_bytes
    from alloop.store.ledger import spend

    exp = cfg.expensive_fidelity
    sets = _labelled_sets(cfg, data_dir)
    if sets is None:
        return 2
    paths, test, pool = sets
    test_set = _dataset(test, exp.hash())
    sp = spend(store, {"cheap": cfg.cheap_fidelity, "expensive": exp})
    budget = sp.total_cpu
    versions = [c for c in store.checkpoints() if c.get("role") == "model"]
    if not versions:
        print("\naccuracy part skipped: the store holds no trained model")
        return 2
    model = model_from_bytes(store.checkpoint(int(versions[-1]["version"]))[0])[0]
    fit = _trainer(cfg, store, threads)
    ok_exp = _campaign_expensive(store, exp)
    cheap_hash = cfg.cheap_fidelity.hash()
    ok_cheap = int(np.sum(store.labels(cheap_hash).ok)) if cheap_hash in store.fidelities() else 0
    print(f"\n## Accuracy vs labelling cost on {len(test)} held-out frames ({paths['test'].name})\n", flush=True)
    rows = [_row(f"(a) campaign, final model v{versions[-1]['version']} ({cfg.training.method})",
                 "frames from the loop's own MLFF MD", f"{len(ok_exp)} exp + {ok_cheap} cheap",
                 f"{budget:.0f} (all labels)", evaluate_model(model, test_set), None)]
    model_b, sec_b = fit(ok_exp)
    rows.append(_row("(b) standard, campaign's expensive labels", "same expensive frames as (a)", f"{len(ok_exp)} exp",
                     f"{sp.cpu_seconds['expensive']:.0f} (of {budget:.0f} spent)", evaluate_model(model_b, test_set), sec_b))
    pool_rows, pool_errors = _random_pool_rows(pool, budget, seeds, fit, exp.hash(), test_set)
    print(markdown_table(["run", "training frames", "labels", "label CPU s", "force MAE eV/A", "force MAE kcal/mol/A",
                 "energy MAE meV/atom", "train s"], rows + pool_rows))
    if len(pool_errors) > 1:
        print(f"\n(c) over {len(pool_errors)} seeds: force MAE {np.mean(pool_errors):.4f} +- "
              f"{np.std(pool_errors, ddof=1):.4f} eV/A (mean +- sample std)")
    _notes(cfg, sp, len(test), pool, data_dir)
    return 0
