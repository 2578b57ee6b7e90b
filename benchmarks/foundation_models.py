"""Foundation models on ethanol: SevenNet-0, SO3LR and a MACE of MACE-OFF23-small's size, zero-shot, fine-tuned on
random frames and in the loop, scored on the ethanol equilibrium sets (issue 64, item 4).

Models (``--models``):

- ``sevennet-0``: the pretrained SevenNet-0 of the sevenn wheel (preset ``sevennet-0``; the sevenn extra);
- ``so3lr``: the pretrained SO3LR of the so3krates-torch wheel (preset ``so3lr``; the so3lr extra);
- ``mace-off-small-random``: a MACE of MACE-OFF23-small's size with random weights (:mod:`lib.mace_files`: 96
  channels, L = 0, 5 A, 2 interactions, correlation 3, mace_run_train's defaults otherwise, float64), one file per
  seed (weights drawn from the seed) written by mace's constructors to ``--runs``, run as preset ``mace`` with
  ``model.checkpoint`` (the mace extra). It is not pretrained: its random arm trains with the from-scratch defaults
  of ``alloop train`` (``--steps``, ``--batch-size``, ``--energy-weight`` of the scratch recipe: alloop train would
  otherwise give a model file the pretrained ones), and its campaign gets the scratch defaults a model without
  ``base`` gets, with the final retrain's budget raised to the scratch recipe's steps
  (``training.final_steps_factor``: 3000 / the campaign's 300); it is put on the campaign's baseline (GFN2-xTB)
  like the others (a checkpoint gets none by default). Its campaign bootstraps as every campaign does, the
  bootstrap's labels training the file's random weights first. There is no zero-shot row for it.

Methods (``--methods``), at each N of ``--n-labels`` (30 60) and seed of ``--seeds`` (0 1 2):

- ``zero-shot`` (pretrained models): the model as shipped, no baseline, its per-element reference energies fitted
  by least squares to the residuals of the random arm's N frames (forces as they are);
- ``random``: ``learning_curves.py``'s random arm (N random frames of the 500 K pools, ``alloop train``);
- ``loop``: ``learning_curves.py``'s loop arm: ``--campaign`` (``campaigns/universal-quickstart.yaml``) with
  ``--set model.preset=...`` buying N expensive labels (no ``--set`` for the campaign's own model, SevenNet-0: its
  random and loop entries are then those of ``learning_curves.py --campaign campaigns/universal-quickstart.yaml``
  with the same pools, and entries already made there can be copied into its results folder: the cache checks their
  identity).

``random`` and ``loop`` run ``learning_curves.py`` (a subprocess, one per seed) with ``--results`` the model's
folder; ``zero-shot`` writes entries of the same format beside them. Every model is scored on each ``--test`` file
(default the 500 K and 1000 K equilibrium test sets) as learning_curves.py scores. Costs: ``training s`` per entry
(random and zero-shot: CPU seconds of the training process; loop: the campaign's training seconds, wall, over its
cycles); per model ``cost.json``: the median CPU ms (and wall ms) of one energy + forces call on one ethanol, one
torch thread: the cost of an MD step of one replica (the network, and with the GFN2-xTB baseline its Delta models
carry in MD).

Results: ``--results`` (default ``benchmarks/results/foundation-models/<model>/``, small JSON, committed);
models, stores, logs in ``--runs`` (default ``runs/foundation-models/<model>/``, not committed). Every entry is
cached: a rerun computes only what is missing. A model whose package is not in the running environment is skipped
with the reason, so the script runs once per environment (mace and sevenn cannot share one) and the folders fill
the grid; ``--table`` prints the merged table without running anything. The commands of the full run, one per
environment (SO3LR runs in either; its entries are cached, so it runs once)::

    # an environment with pip install -e '.[sevenn,so3lr]': SevenNet-0 and SO3LR
    python benchmarks/foundation_models.py --models sevennet-0 so3lr
    # an environment with pip install -e '.[mace]' (no sevenn): the random MACE
    python benchmarks/foundation_models.py --models mace-off-small-random
    # any environment: the merged table (docs/benchmarks.md's is python benchmarks/docs_tables.py)
    python benchmarks/foundation_models.py --table

A smoke run::

    python benchmarks/foundation_models.py --models sevennet-0 --n-labels 5 --seeds 0 --methods zero-shot random \\
        --train-option steps=20 --test examples/data/ethanol_500K_eqtest_b3lyp-svp.extxyz \\
        --results /tmp/fm/results --runs /tmp/fm/runs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from lib.common import DATA, ROOT, data_file
from lib.foundation_tables import METHODS, table
from lib.learning_curve_arms import DEFAULT_POOLS, random_order, score, sha256

#: model name -> (model preset, pretrained)
MODELS: dict[str, tuple[str, bool]] = {"sevennet-0": ("sevennet-0", True), "so3lr": ("so3lr", True),
                                       "mace-off-small-random": ("mace", False)}
DEFAULT_TESTS = [data_file("ethanol_500K_eqtest_b3lyp-svp.extxyz"), DATA / "ethanol_1000K_eqtest_b3lyp-svp.extxyz"]
#: the test sets' labels in the table
TEST_LABELS = {"ethanol_500K_eqtest_b3lyp-svp.extxyz": "500 K", "ethanol_1000K_eqtest_b3lyp-svp.extxyz": "1000 K"}
LEARNING_CURVES = ROOT / "benchmarks" / "learning_curves.py"
#: repeats of the timed energy + forces call
TIMING_REPEATS = 20


def missing_package(name: str) -> str | None:
    """Why ``name`` cannot run in this environment (its extra's pip command), or None."""
    from alloop.errors import ConfigError
    from alloop.potentials.registry import check_extra, model_preset

    try:
        check_extra(model_preset(MODELS[name][0])["architecture"])
    except ConfigError as exc:
        return str(exc)
    return None


def scratch_train_options() -> list[str]:
    """``--train-option`` items giving ``alloop train`` the from-scratch values of the keys its pretrained recipe
    changes (a model file counts as pretrained there)."""
    from alloop.config.training import DEFAULT_STEPS, PRETRAINED_DEFAULTS, TrainingConfig
    from alloop.training.recipe import OPTION_KEYS

    scratch = TrainingConfig()
    options = {key: option for option, key in OPTION_KEYS.items()}
    out = []
    for key in PRETRAINED_DEFAULTS:
        if key in options:  # warm_start_lr_factor is a campaign's (warm cycles) only
            value = DEFAULT_STEPS if key == "steps" else getattr(scratch, key)
            out.append(f"{options[key]}={value}")
    return out


def pool_frames(pools: list[Path]) -> list:
    from ase.io import read

    return [a for p in pools for a in read(p, ":")]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        from alloop.config import load_campaign

        self.args = args
        model = load_campaign(args.campaign).model
        self.baseline = model.baseline  # the campaign's own model's baseline
        self.campaign_preset = model.preset
        self._pool: list | None = None

    @property
    def pool(self) -> list:
        if self._pool is None:
            self._pool = pool_frames(self.args.pool)
        return self._pool

    def results(self, name: str) -> Path:
        folder = self.args.results / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def runs(self, name: str) -> Path:
        return self.args.runs / name

    # ------------------------------------------------------------------------------------------- the model
    def mace_file(self, seed: int) -> Path:
        from lib.mace_files import MACE_OFF_SMALL, mean_neighbours, write_random_mace

        path = self.runs("mace-off-small-random") / f"mace-off-small-random-seed{seed}.model"
        if not path.is_file():
            print(f"  writing {path} (MACE-OFF23-small size, random weights from seed {seed})", flush=True)
        elements = sorted({int(z) for a in self.pool for z in a.numbers})
        return write_random_mace(path, elements, mean_neighbours(self.pool, MACE_OFF_SMALL["r_max"]), seed)

    def campaign_overrides(self, name: str, seed: int) -> list[str]:
        """``--set`` items that put ``name`` in the campaign (and the arms' training)."""
        preset = MODELS[name][0]
        if preset == self.campaign_preset:  # the campaign's own model: its learning-curve entries are these
            return []
        if preset != "mace":
            return [f"model.preset={preset}"]
        checkpoint = self.mace_file(seed).resolve()
        if checkpoint.is_relative_to(ROOT):  # relative to the campaign: the same entry in another checkout
            checkpoint = Path(os.path.relpath(checkpoint, self.args.campaign.resolve().parent))
        return [f"model.preset={preset}", f"model.checkpoint={checkpoint}",
                *([f"model.baseline={self.baseline}"] if self.baseline else []), *self.scratch_final_retrain(name)]

    def scratch_final_retrain(self, name: str) -> list[str]:
        """For a model without pretrained weights: the campaign's final retrain at the scratch recipe's steps."""
        from alloop.config import load_campaign
        from alloop.config.training import DEFAULT_STEPS

        if MODELS[name][1]:
            return []
        steps = load_campaign(self.args.campaign).training.steps or DEFAULT_STEPS
        return [f"training.final_steps_factor={DEFAULT_STEPS / steps:g}"]

    # ---------------------------------------------------------------------------------------- random, loop
    def learning_curves(self, name: str, arms: list[str], seed: int) -> None:
        """``learning_curves.py``'s ``arms`` for one seed, into the model's results folder."""
        train_options = [*([] if MODELS[name][1] else scratch_train_options()), *self.args.train_options]
        cmd = [sys.executable, str(LEARNING_CURVES), "--campaign", str(self.args.campaign), "--arms", *arms,
               "--n-labels", *map(str, self.args.n_labels), "--seeds", str(seed), "--test", *map(str, self.args.test),
               "--pool", *map(str, self.args.pool), "--results", str(self.results(name)),
               "--runs", str(self.runs(name)), "--threads", "1", "--workers", str(self.args.workers), "--no-plot"]
        for item in self.campaign_overrides(name, seed):
            cmd += ["--set", item]
        for item in train_options:
            cmd += ["--train-option", item]
        print(f"{name} seed {seed}: learning_curves.py --arms {' '.join(arms)}", flush=True)
        subprocess.run(cmd, check=True)

    # ------------------------------------------------------------------------------------------- zero-shot
    def zero_shot(self, name: str, n: int, seed: int) -> dict[str, Any]:
        """The cached zero-shot entry of (n, seed), completed with scores on new test files."""
        path = self.results(name) / f"zero-shot-N{n}-seed{seed}.json"
        identity = {"preset": MODELS[name][0], "pool": {p.name: sha256(p) for p in self.args.pool}}
        entry = json.loads(path.read_text()) if path.is_file() else {}
        if entry and entry["identity"] != identity:
            raise SystemExit(f"{path} was made with {entry['identity']}, not {identity}: use another --results")
        if not entry:
            entry = {"arm": "zero-shot", "n": n, "seed": seed, "identity": identity, **self.rereference(name, n, seed)}
            save(path, entry)
        for test in self.args.test:
            old = entry.setdefault("scores", {}).get(test.name)
            if old is None or old["sha256"] != sha256(test):
                entry["scores"][test.name] = score(Path(entry["model"]), test)
                save(path, entry)
            print(f"  zero-shot N={n:<3} seed {seed} {test.name}: force MAE {entry['scores'][test.name]['mean']:.4f}, "
                  f"p95 {entry['scores'][test.name]['p95']:.4f} eV/A", flush=True)
        return entry

    def rereference(self, name: str, n: int, seed: int) -> dict[str, Any]:
        """The pretrained model with its references fitted to the random arm's first ``n`` frames, saved."""
        from alloop.io import write_extxyz
        from alloop.potentials.checkpoint import save_checkpoint
        from alloop.potentials.registry import build_model, model_preset
        from alloop.training.references import model_references, refit_references
        from alloop.training.run import load_dataset

        picked = random_order(len(self.pool), seed)[:n]
        folder = self.runs(name) / f"zero-shot-seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        frames = folder / f"zero-shot-{n}.extxyz"
        write_extxyz(frames, [self.pool[i] for i in picked])
        dataset = load_dataset(frames, "expensive")  # the fidelity tag alloop train gives the same file
        t0 = time.process_time()
        model = build_model(elements=dataset.elements, **model_preset(MODELS[name][0]))
        fit = refit_references(model, dataset)
        cpu = time.process_time() - t0
        references = {str(z): e for z, e in model_references(model).items()}
        out = save_checkpoint(model, folder / f"zero-shot-{n}.safetensors",
                              {"method": "zero-shot", "fidelity": dataset.fidelity,
                               "energy_references": {dataset.fidelity: references}})
        print(f"  zero-shot N={n} seed {seed}: references fitted (residual RMS {fit.residual_rms_eV:.4f} eV)", flush=True)
        return {"model": str(out), "picked": [int(i) for i in picked], "labels": n, "train_cpu_s": cpu,
                "label_cpu_s": float(sum(float(self.pool[i].info.get("cpu_seconds", np.nan)) for i in picked))}

    # ------------------------------------------------------------------------------------------------- cost
    def cost(self, name: str) -> dict[str, Any]:
        """The model's ``cost.json`` (measured if missing): CPU ms per energy + forces of one ethanol, one thread."""
        path = self.results(name) / "cost.json"
        if path.is_file():
            return json.loads(path.read_text())
        out = inference_ms(self.network(name), self.baseline)
        save(path, {**out, "threads": 1, "repeats": TIMING_REPEATS, "load_average": list(os.getloadavg())})
        print(f"  {name}: {out['network_ms']:.1f} CPU ms per MD step (network)"
              + (f", {out['with_baseline_ms']:.1f} with {self.baseline}" if self.baseline else ""), flush=True)
        return out

    def network(self, name: str) -> Any:
        from alloop.potentials.registry import build_model, model_preset

        elements = sorted({int(z) for a in self.pool for z in a.numbers})
        preset = model_preset(MODELS[name][0])
        if preset["architecture"] == "mace":
            return build_model("mace", elements, model_file=str(self.mace_file(min(self.args.seeds))))
        return build_model(elements=elements, **preset)


def inference_ms(model: Any, baseline: str | None) -> dict[str, Any]:
    """Median ms of one energy + forces call on one ethanol, one torch thread, in CPU time (a machine shared with
    other jobs inflates it less than wall time, which is kept too): the network, and wrapped with ``baseline`` (None:
    no such column). Each repeat is a new geometry (the trans rotamer displaced by 0.02 A Gaussian noise, seeded), as
    in MD; the two models are timed in turn on it, so a change in the machine's load hits both alike."""
    import torch
    from ase.build import molecule

    from alloop.potentials.base import AtomsBatch
    from alloop.potentials.baseline import DeltaPotential

    torch.set_num_threads(1)
    dtype = next(model.parameters()).dtype
    models = {"network": model.eval()}
    if baseline:
        models["with_baseline"] = DeltaPotential.wrap(model, baseline).eval()
    rng = np.random.default_rng(0)
    start = molecule("CH3CH2OH")
    batches = []
    for _ in range(TIMING_REPEATS + 1):  # the first: warm-up
        atoms = start.copy()
        atoms.positions += rng.normal(0.0, 0.02, atoms.positions.shape)
        batches.append(AtomsBatch.from_atoms([atoms], dtype=dtype))
    cpu: dict[str, list[float]] = {k: [] for k in models}
    wall: dict[str, list[float]] = {k: [] for k in models}
    for k, batch in enumerate(batches):
        for key, m in models.items():
            c0, w0 = time.process_time(), time.perf_counter()
            m(batch)
            if k:
                cpu[key].append(1000 * (time.process_time() - c0))
                wall[key].append(1000 * (time.perf_counter() - w0))
    out: dict[str, Any] = {"baseline": baseline, "parameters": int(sum(p.numel() for p in model.parameters()))}
    for key in ("network", "with_baseline"):
        out[f"{key}_ms"] = float(np.median(cpu[key])) if key in models else None
        out[f"{key}_wall_ms"] = float(np.median(wall[key])) if key in models else None
    return out


def save(path: Path, entry: dict[str, Any]) -> None:
    from alloop.io import write_atomic

    write_atomic(path, json.dumps(entry, indent=1).encode())


def run(args: argparse.Namespace) -> None:
    bench = Bench(args)
    for name in args.models:
        reason = missing_package(name)
        if reason is not None:
            print(f"skip {name}: {reason}", flush=True)
            continue
        print(f"{name}: methods {' '.join(args.methods)}, N {args.n_labels}, seeds {args.seeds}", flush=True)
        if "zero-shot" in args.methods and not MODELS[name][1]:
            print(f"  {name}: no zero-shot (random weights)", flush=True)
        arms = [m for m in ("random", "loop") if m in args.methods]
        for seed in args.seeds:
            if "zero-shot" in args.methods and MODELS[name][1]:
                for n in sorted(args.n_labels):
                    bench.zero_shot(name, n, seed)
            if arms:
                bench.learning_curves(name, arms, seed)
        bench.cost(name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--n-labels", type=int, nargs="+", default=[30, 60])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--test", type=Path, nargs="+", default=DEFAULT_TESTS)
    p.add_argument("--pool", type=Path, nargs="+", default=DEFAULT_POOLS)
    p.add_argument("--campaign", type=Path, default=ROOT / "campaigns" / "universal-quickstart.yaml")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "foundation-models")
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "foundation-models")
    p.add_argument("--workers", type=int, default=1, help="the loop's execution.n_workers")
    p.add_argument("--train-option", dest="train_options", action="append", default=[], metavar="KEY=VALUE",
                   help="an alloop train option for the random arm, after the model's own (steps=20: a smoke run)")
    p.add_argument("--table", action="store_true", help="print the merged table of --results and run nothing")
    args = p.parse_args(argv)
    labels = {t.name: TEST_LABELS.get(t.name, t.stem) for t in args.test}
    if not args.table:
        missing = [str(f) for f in [*args.test, *args.pool, args.campaign] if not f.is_file()]
        if missing:
            print(f"missing {missing}: run benchmarks/make_equilibrium_sets.py", file=sys.stderr)
            return 1
        run(args)
    print(f"\nper-frame force MAE (eV/A) on each test set: mean and 95th percentile, mean +- std over seeds; "
          f"{args.results}")
    print("\n".join(table(args.results, labels, MODELS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
