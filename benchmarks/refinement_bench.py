"""Test-time refinement on ethanol: force MAE before and after TTT and RR on 1000 K frames of a 500 K model.

Per seed a two-head EGNN (``alloop.training.two_head.train_two_head``, frozen
recipe) is trained on the 500 K ethanol pool of ``benchmarks/data``: cheap
labels (HF/STO-3G) of all 150 pool frames, expensive labels (B3LYP/def2-SVP)
of ``--n-expensive`` pool frames drawn with the seed. Models are cached in
``--cache`` (keyed by the configuration, the data and alloop's training and
model code). Each model is then scored on the expensive labels of the test
frames (default: the 1000 K test trajectory, out of distribution; ``--tests
1000K,500K`` adds the in-distribution 500 K test trajectory; ``methanol-500K``
another molecule, never seen in training, from ``make_ethanol_data.py
--molecule methanol --pool 0``):

- before: the expensive head as trained;
- TTT (``alloop.training.refine``): the test frames in chunks of
  ``--ttt-chunk``; per chunk a fresh copy of the model takes ``--ttt-steps``
  SGD steps (lr ``--ttt-lr``) on the cheap head's loss over the chunk's cheap
  labels, then predicts the chunk with its expensive head. Cost: the cheap
  labels' CPU seconds (``cpu_seconds`` of the cheap test file) plus the CPU
  seconds of the gradient steps;
- RR (``alloop.training.spectral_radius``): per frame the graph radius whose
  Laplacian spectrum matches the pool's mean spectrum at the training cutoff.
  Cost: the CPU seconds of the spectra (the predictions are needed anyway).

Next to each cost: the number of expensive labels the same CPU would buy (the
mean ``cpu_seconds`` of the test structures' own expensive labels). At the default cutoff
of 5 A every ethanol graph is complete (the molecule's largest interatomic
distance is about 4.3 A even at 1000 K), so RR keeps the training cutoff and
changes nothing; ``--cutoff 3.5`` trains models whose graphs RR can change.

    python benchmarks/refinement_bench.py                # 3 seeds
    python benchmarks/refinement_bench.py --quick        # 1 seed, short training, 20 TTT steps (a smoke test)
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from lib.common import DATA, mean_std, training_code_digest

CHEAP, EXPENSIVE = "hf-sto3g", "b3lyp-svp"
ELEMENTS = (1, 6, 8)


@dataclass(frozen=True)
class Config:
    """The two-head model (EGNN; hidden 64 as the quickstart's `small`) and its training, and TTT."""

    cutoff: float = 5.0
    hidden: int = 64  # the quickstart's `small` EGNN
    layers: int = 3
    n_expensive: int = 50
    cheap_steps: int = 3000  # representation + cheap head
    expensive_steps: int = 1500  # expensive head, representation frozen
    batch: int = 8
    lr: float = 3e-3
    ttt_steps: int = 100
    ttt_lr: float = 1e-5
    ttt_chunk: int = 10

    @classmethod
    def quick(cls) -> Config:
        return cls(cheap_steps=600, expensive_steps=300, ttt_steps=20)

    def training_key(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("ttt_")}


def load_pair(folder: Path, stem: str) -> list[list]:
    """[cheap frames, expensive frames] of ``ethanol_<stem>_<fidelity>.extxyz`` (same geometries); a stem
    ``<molecule>-<rest>`` reads ``<molecule>_<rest>_<fidelity>.extxyz`` instead."""
    molecule, _, rest = stem.rpartition("-")
    stem = f"{molecule or 'ethanol'}_{rest}"
    import ase.io

    out = []
    for fid in (CHEAP, EXPENSIVE):
        file = folder / f"{stem}_{fid}.extxyz"
        if not file.is_file():
            raise SystemExit(f"missing {file}: run benchmarks/make_ethanol_data.py first")
        out.append(ase.io.read(file, index=":"))
    if len(out[0]) != len(out[1]) or not all(np.array_equal(a.positions, b.positions)
                                             for a, b in zip(*out, strict=True)):
        raise SystemExit(f"the cheap and expensive files of {stem} differ in positions")
    return out


def trained_model(cfg: Config, seed: int, pool: list, cache: Path) -> Any:
    """The two-head model of ``seed`` (from the cache, else trained and cached)."""
    from alloop.potentials.checkpoint import load_checkpoint, save_checkpoint
    from alloop.potentials.egnn import EGNN
    from alloop.training.data import FrameDataset
    from alloop.training.stages import AsteroidSettings
    from alloop.training.trainer import TrainSettings
    from alloop.training.two_head import train_two_head

    key = json.dumps({"config": cfg.training_key(), "seed": seed, "code": training_code_digest(),
                      "data": [float(a.positions.sum()) for a in pool[1]]}, sort_keys=True)
    path = cache / f"two_head_s{seed}_{hashlib.sha256(key.encode()).hexdigest()[:12]}.safetensors"
    if path.is_file():
        return load_checkpoint(path)[0]
    chosen = np.sort(np.random.default_rng(seed).permutation(len(pool[1]))[: cfg.n_expensive])
    cheap = FrameDataset.from_atoms(pool[0], CHEAP)
    expensive = FrameDataset.from_atoms([pool[1][k] for k in chosen], EXPENSIVE)
    run = TrainSettings(max_steps=cfg.cheap_steps, batch_size=cfg.batch, lr=cfg.lr, threads=1)
    settings = AsteroidSettings(stage1=run, stage2=run, stage3=replace(run, max_steps=cfg.expensive_steps), seed=seed)
    t0 = time.perf_counter()
    result = train_two_head(expensive, cheap, lambda: EGNN(ELEMENTS, cutoff=cfg.cutoff, hidden_features=cfg.hidden,
                                                           n_layers=cfg.layers, seed=seed), settings=settings)
    print(f"  seed {seed}: trained in {time.perf_counter() - t0:.0f} s, expensive validation force MAE "
          f"{result.metrics['force_mae_eV_per_A']:.4f} eV/A", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    save_checkpoint(result.model, path, {"config": asdict(cfg), "seed": seed, "expensive_frames": chosen.tolist()})
    return result.model


def force_mae(forces: np.ndarray, frames: list) -> float:
    return float(np.mean(np.abs(forces - np.concatenate([a.get_forces() for a in frames]))))


def ttt(model: Any, cheap: list, expensive: list, cfg: Config, seed: int) -> tuple[float, float, float]:
    """(force MAE after TTT, CPU s of the cheap labels, CPU s of the gradient steps) over chunks of the test frames."""
    from alloop.potentials.inference import predict
    from alloop.training.data import FrameDataset
    from alloop.training.refine import RefineSettings, refine_representation

    settings = RefineSettings(steps=cfg.ttt_steps, lr=cfg.ttt_lr, seed=seed, threads=1)
    forces, step_cpu = [], 0.0
    for start in range(0, len(cheap), cfg.ttt_chunk):
        chunk = slice(start, start + cfg.ttt_chunk)
        refined = copy.deepcopy(model)
        t0 = time.process_time()
        refine_representation(refined, FrameDataset.from_atoms(cheap[chunk], CHEAP), settings)
        step_cpu += time.process_time() - t0
        forces.append(predict(refined, expensive[chunk])[1])
    label_cpu = float(sum(a.info["cpu_seconds"] for a in cheap))
    return force_mae(np.concatenate(forces), expensive), label_cpu, step_cpu


def score(model: Any, pool: list, cheap: list, expensive: list, cfg: Config, seed: int) -> dict[str, Any]:
    from alloop.potentials.inference import predict
    from alloop.training.spectral_radius import refine_radius_predict

    before = force_mae(predict(model, expensive)[1], expensive)
    ttt_mae, label_cpu, step_cpu = ttt(model, cheap, expensive, cfg, seed)
    rr = refine_radius_predict(model, expensive, pool[0])
    return {"before": before, "ttt": ttt_mae, "ttt_label_cpu": label_cpu, "ttt_step_cpu": step_cpu,
            "rr": force_mae(rr.forces, expensive), "rr_cpu": rr.choose_cpu_seconds, "rr_moved": int(rr.moved.sum()),
            "rr_radii": sorted({float(r) for r in rr.radii}), "n": len(expensive),
            "exp_cpu": float(np.mean([a.info["cpu_seconds"] for a in expensive]))}


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| test set | seed | before F-MAE (eV/Å) | after TTT | TTT change | TTT CPU s (labels + steps) "
             "| ≙ expensive labels | after RR | RR change | RR frames moved | RR radii (Å) | RR CPU s "
             "| ≙ expensive labels |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def line(name: str, seed: str, rs: list[dict[str, Any]]) -> str:
        ttt_cpu = [r["ttt_label_cpu"] + r["ttt_step_cpu"] for r in rs]
        exp_cpu = float(np.mean([r["exp_cpu"] for r in rs]))  # an expensive label of these structures
        radii = sorted({x for r in rs for x in r["rr_radii"]})
        return (f"| {name} | {seed} | {mean_std([r['before'] for r in rs], 4)} | {mean_std([r['ttt'] for r in rs], 4)} "
                f"| {mean_std([r['ttt'] / r['before'] - 1 for r in rs], 1, 100, '+')} % "
                f"| {np.mean([r['ttt_label_cpu'] for r in rs]):.1f} + {np.mean([r['ttt_step_cpu'] for r in rs]):.1f} "
                f"| {np.mean(ttt_cpu) / exp_cpu:.1f} | {mean_std([r['rr'] for r in rs], 4)} "
                f"| {mean_std([r['rr'] / r['before'] - 1 for r in rs], 1, 100, '+')} % "
                f"| {sum(r['rr_moved'] for r in rs)} of {sum(r['n'] for r in rs)} "
                f"| {', '.join(f'{x:g}' for x in radii)} | {np.mean([r['rr_cpu'] for r in rs]):.2f} "
                f"| {np.mean([r['rr_cpu'] for r in rs]) / exp_cpu:.2f} |")

    for name in dict.fromkeys(r["test"] for r in rows):
        group = [r for r in rows if r["test"] == name]
        lines += [line(name, str(r["seed"]), [r]) for r in group]
        if len(group) > 1:
            lines.append(line(name, "mean ± std", group))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tests", default="1000K",
                        help="test trajectories, comma-separated: 1000K, 500K, 300K (ethanol), or "
                        "MOLECULE-TEMPK for another molecule's file (e.g. methanol-500K, made by "
                        "make_ethanol_data.py --molecule methanol --pool 0)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/test_time_models"), help="trained models")
    parser.add_argument("--quick", action="store_true", help="1 seed, 600 + 300 training steps, 20 TTT steps")
    for name, kind in (("cutoff", float), ("hidden", int), ("n_expensive", int), ("cheap_steps", int),
                       ("expensive_steps", int),
                       ("ttt_steps", int), ("ttt_lr", float), ("ttt_chunk", int)):
        parser.add_argument("--" + name.replace("_", "-"), type=kind, help=f"override Config.{name}")
    args = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    cfg = Config.quick() if args.quick else Config()
    cfg = replace(cfg, **{k: v for k, v in vars(args).items() if k in Config.__dataclass_fields__ and v is not None})
    seeds = [0] if args.quick else list(range(args.seeds))
    pool = load_pair(args.data, "500K_short_pool")
    tests = {name: load_pair(args.data, f"{name}_short_test") for name in args.tests.split(",") if name}
    exp_cpu = float(np.mean([a.info["cpu_seconds"] for a in pool[1]]))
    print(f"pool {len(pool[0])} frames; one expensive label {exp_cpu:.2f} CPU s on average; config {asdict(cfg)}",
          flush=True)
    started, rows = time.perf_counter(), []
    for seed in seeds:
        model = trained_model(cfg, seed, pool, args.cache)
        for name, (cheap, expensive) in tests.items():
            rows.append({"test": name, "seed": seed, **score(model, pool, cheap, expensive, cfg, seed)})
            r = rows[-1]
            print(f"  seed {seed} {name}: before {r['before']:.4f}, TTT {r['ttt']:.4f}, RR {r['rr']:.4f} eV/A "
                  f"({time.perf_counter() - started:.0f} s elapsed)", flush=True)
    costs = ", ".join(f"{name} {np.mean([r['exp_cpu'] for r in rows if r['test'] == name]):.2f}" for name in tests)
    print()
    print("\n".join(table(rows)))
    print()
    print(f"force MAE on the expensive labels; mean ± sample std over seeds {seeds}; TTT: {cfg.ttt_steps} SGD steps "
          f"(lr {cfg.ttt_lr:g}) per chunk of {cfg.ttt_chunk} frames on their cheap labels; RR cost: the spectra only; "
          f"≙ expensive labels: the same CPU spent on {EXPENSIVE} labels of the test structures (mean CPU s per "
          f"label: {costs}). "
          f"Wall time {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
