"""Molecules nobody tuned on (issue 63, item 5): the universal quickstart's settings, unchanged, on six molecules.

Molecules (``lib/molecules.py``, structures in ``benchmarks/data/molecules/``): malonaldehyde (proton transfer),
aspirin (21 atoms, a ring and rotors), glycine (intramolecular O-H...N hydrogen bond), acetate (charge -1), the
ethoxy radical (2S = 1) and 2-chloroethanol (a halogen). For each molecule:

1. **Sets** (made when missing, by ``make_equilibrium_sets.py`` at the molecule's charge and spin: GFN2-xTB Langevin
   MD from the molecule's structure, 6 runs of 20 ps (aspirin 5) after 2 ps, relabelled at the expensive level): the
   ``verdict`` set at the campaign temperature (500 K) and at 900 K, for scoring only, and a 500 K ``pool`` for the
   random arm (60 / 60 / 100 frames; aspirin 30 / 30 / 30).
2. **The loop and random frames** through ``learning_curves.py`` (run as a command; its caching per (arm, N, seed)
   JSON): ``campaigns/universal-quickstart.yaml`` with ``--set system.structures=<the molecule>``,
   ``system.charge``, ``system.spin`` and ``evaluation.structures=<its 500 K verdict set>`` and nothing else changed,
   at N = 30 expensive labels (``loop``), against N random frames of the pool trained the same way (``random``:
   ``alloop train --method standard --model sevennet-0 --baseline gfn2-xtb --refit`` at the molecule's charge and
   spin), seeds 0 1 2 (aspirin: 0).
3. **SevenNet-0 zero-shot**: the pretrained model, no weight update, its per-element reference energies re-fitted by
   least squares to the random arm's N frames of the same seed (forces are those of SevenNet-0 itself; it knows no
   charge or spin).

Every model is scored on both verdict sets: per-frame force MAE, its mean and 95th percentile (and max, top energy
decile, in the entries). Results: ``benchmarks/results/molecules/<molecule>/`` (committed, small JSON: the entries,
and ``sets.json`` with the sets' files, frames and MD and label CPU); stores and models in ``runs/molecules/`` (not
committed). "label CPU s": the loop's labelling CPU (both fidelities, from its store), the random arm's and the
zero-shot's the CPU of the N frames' expensive labels; the sets' own cost is in the second table. Wall time: the
loop's whole campaign (``learning_curves.py``'s record).

    python benchmarks/molecules.py                                  # everything: sets, loop, random, zero-shot
    python benchmarks/molecules.py --molecules glycine acetate      # some molecules
    python benchmarks/molecules.py --table                          # print the table of the committed results only
    python benchmarks/molecules.py --molecules ethoxy --fidelity hf-sto3g --frames 4 --ps 0.2 --equil-ps 0.05 \\
        --trajectories 2 --n-labels 8 --seeds 0 --data /tmp/mol/data --results /tmp/mol/results --runs /tmp/mol/runs \\
        --set training.steps=5 --set training.finetune_steps=5 --set md.segment_steps=20     # smoke, minutes

``--fidelity`` replaces the expensive level of the sets and of the campaign (``--set fidelities.expensive=...``);
the full run uses the quickstart's B3LYP/def2-SVP for every molecule (aspirin included, with one seed).
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
from lib.common import DATA, ROOT, frame_error_summary, frame_force_maes
from lib.learning_curve_arms import sha256
from lib.molecules import CAMPAIGN_K, EXPENSIVE, HOT_K, MOLECULES, Molecule
from lib.molecules_table import molecules_table

CAMPAIGN = ROOT / "campaigns" / "universal-quickstart.yaml"
RESULTS = ROOT / "benchmarks" / "results" / "molecules"
#: (set, temperature, key in sets.json) of each molecule
SETS = (("verdict", CAMPAIGN_K, "campaign"), ("verdict", HOT_K, "hot"), ("pool", CAMPAIGN_K, "pool"))


def for_campaign(path: Path) -> str:
    """``path`` as a campaign setting: relative to campaigns/ inside this checkout (result files made in another
    checkout stay valid), else absolute."""
    return os.path.relpath(path.resolve(), CAMPAIGN.parent) if path.resolve().is_relative_to(ROOT) else str(path)


def set_path(args: argparse.Namespace, name: str, set_name: str, temperature: float) -> Path:
    return args.data / f"{name}_{temperature:g}K_eq{set_name}_{args.fidelity}.extxyz"


def make_sets(args: argparse.Namespace, name: str, mol: Molecule) -> dict[str, Any]:
    """Make the molecule's missing sets (``make_equilibrium_sets.py``) and describe all three for ``sets.json``."""
    from ase.io import read

    files = {}
    for set_name, temperature, key in SETS:
        path = set_path(args, name, set_name, temperature)
        frames = args.frames or (mol.pool_frames if set_name == "pool" else mol.test_frames)
        if not path.is_file():
            cmd = [sys.executable, str(ROOT / "benchmarks" / "make_equilibrium_sets.py"), "--molecule", name,
                   "--temperature", f"{temperature:g}", "--sets", set_name, "--frames", str(frames), "--fidelity",
                   args.fidelity, "--out", str(args.data), "--trajectories", str(args.trajectories), "--ps",
                   f"{args.ps or mol.md_ps:g}", "--equil-ps", f"{args.equil_ps:g}", "--workers", str(args.workers)]
            print(f"{name}: making {path.name} ({' '.join(cmd[2:])})", flush=True)
            subprocess.run(cmd, check=True)
        summary = json.loads((args.data / f"{name}_{temperature:g}K_eq_summary.json").read_text())["sets"][set_name]
        files[f"{set_name} {temperature:g} K"] = {
            "file": path.name, "sha256": sha256(path), "frames": len(read(path, ":")),
            "md_cpu_s": float(summary["md_cpu_seconds"]),
            "label_cpu_s": float(summary[f"{args.fidelity}_label_cpu_seconds"]), "key": key}
    by_key = {f["key"]: f["file"] for f in files.values()}
    return {"molecule": name, "charge": mol.charge, "spin": mol.spin, "fidelity": args.fidelity,
            "temperatures": {"campaign": f"{CAMPAIGN_K:g} K", "hot": f"{HOT_K:g} K"},
            "tests": {"campaign": by_key["campaign"], "hot": by_key["hot"]}, "pool": by_key["pool"], "files": files}


def campaign_overrides(args: argparse.Namespace, name: str, mol: Molecule) -> list[str]:
    """The ``--set`` items that make the universal quickstart this molecule's campaign (and nothing else)."""
    items = [f"system.structures={for_campaign(mol.path)}", f"system.charge={mol.charge}", f"system.spin={mol.spin}",
             f"evaluation.structures={for_campaign(set_path(args, name, 'verdict', CAMPAIGN_K))}"]
    if args.fidelity != EXPENSIVE:
        items.append(f"fidelities.expensive={args.fidelity}")
    return items + args.overrides


def run_arms(args: argparse.Namespace, name: str, mol: Molecule, results: Path) -> None:
    """The loop and random arms by ``learning_curves.py`` (cached per (arm, N, seed) in ``results``)."""
    tests = [set_path(args, name, "verdict", t) for t in (CAMPAIGN_K, HOT_K)]
    cmd = [sys.executable, str(ROOT / "benchmarks" / "learning_curves.py"), "--campaign", str(CAMPAIGN),
           "--arms", "random", "loop", "--n-labels", *map(str, args.n_labels), "--seeds", *map(str, seeds(args, mol)),
           "--pool", str(set_path(args, name, "pool", CAMPAIGN_K)), "--test", *map(str, tests),
           "--results", str(results), "--runs", str(args.runs / name), "--workers", str(args.workers)]
    for item in campaign_overrides(args, name, mol):
        cmd += ["--set", item]
    print(f"{name}: {' '.join(cmd[2:])}", flush=True)
    subprocess.run(cmd, check=True)


def seeds(args: argparse.Namespace, mol: Molecule) -> list[int]:
    return args.seeds if args.seeds is not None else list(mol.seeds)


def zero_shot(args: argparse.Namespace, mol: Molecule, results: Path, sets: dict[str, Any], n: int,
              seed: int) -> dict[str, Any]:
    """SevenNet-0 zero-shot, re-referenced on the random arm's frames of (n, seed); cached like the other arms."""
    from ase.io import read

    path = results / f"zero-shot-N{n}-seed{seed}.json"
    if path.is_file():
        return json.loads(path.read_text())
    random_entry = json.loads((results / f"random-N{n}-seed{seed}.json").read_text())
    pool = read(args.data / sets["pool"], ":")
    picked = [pool[i] for i in random_entry["picked"]]
    t0 = time.perf_counter()
    model = reference_fitted_sevennet0(picked, args.fidelity, seed)
    entry: dict[str, Any] = {"arm": "zero-shot", "n": n, "seed": seed, "labels": n, "picked": random_entry["picked"],
                             "label_cpu_s": float(sum(float(a.info.get("cpu_seconds", np.nan)) for a in picked)),
                             "identity": {"pool": {sets["pool"]: sets["files"][f"pool {CAMPAIGN_K:g} K"]["sha256"]}},
                             "scores": {}}
    for key in ("campaign", "hot"):
        entry["scores"][sets["tests"][key]] = scores(model, args.data / sets["tests"][key])
    entry["wall_s"] = time.perf_counter() - t0
    path.write_text(json.dumps(entry, indent=1))
    return entry


def reference_fitted_sevennet0(frames: list, fidelity: str, seed: int) -> Any:
    """The pretrained SevenNet-0 for the frames' elements, its per-element references fitted to the frames."""
    import torch

    from alloop.potentials.registry import build_model
    from alloop.presets import load_preset
    from alloop.training.data import FrameDataset
    from alloop.training.references import refit_references

    torch.set_num_threads(1)
    hparams = load_preset("models", "sevennet-0")
    architecture = hparams.pop("architecture")
    elements = sorted({int(z) for a in frames for z in a.numbers})
    model = build_model(architecture, elements, seed=seed, **hparams)
    refit_references(model, FrameDataset.from_atoms(frames, fidelity=fidelity))
    return model.eval()


def scores(model: Any, test: Path) -> dict[str, Any]:
    """Per-frame force MAE (and its mean, p95, max, highest-energy-decile mean) and energy MAE on a labelled set."""
    from ase.io import read

    from alloop.potentials.inference import predict

    frames = read(test, ":")
    energy = np.array([a.get_potential_energy() for a in frames])
    predicted = np.asarray(predict(model, frames)[0])
    return {"sha256": sha256(test), **frame_error_summary(frame_force_maes(model, frames), energy),
            "energy_mae_eV": float(np.mean(np.abs(predicted - energy)))}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--molecules", nargs="+", default=list(MOLECULES), choices=list(MOLECULES))
    p.add_argument("--table", action="store_true", help="print the table of --results and exit (nothing runs)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the table's (3; aspirin 1)")
    p.add_argument("--n-labels", type=int, nargs="+", default=[30])
    p.add_argument("--fidelity", default=EXPENSIVE, help="the expensive level of the sets and the campaign")
    p.add_argument("--frames", type=int, default=None, help="frames of every set (default: the table's)")
    p.add_argument("--trajectories", type=int, default=6, help="MD runs per set")
    p.add_argument("--ps", type=float, default=None, help="production ps of each set's MD run (default: the "
                   "table's, 20; aspirin 5)")
    p.add_argument("--equil-ps", type=float, default=2.0)
    p.add_argument("--workers", type=int, default=1, help="processes for the sets, the campaign's n_workers")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="another campaign override (smoke)")
    p.add_argument("--data", type=Path, default=DATA, help="where the sets are (made)")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "molecules")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.table:
        for name in args.molecules:
            mol, results = MOLECULES[name], args.results / name
            results.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            sets = make_sets(args, name, mol)
            (results / "sets.json").write_text(json.dumps(sets, indent=1))
            run_arms(args, name, mol, results)
            for n in args.n_labels:
                for seed in seeds(args, mol):
                    zero_shot(args, mol, results, sets, n, seed)
            print(f"{name}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    print("\n".join(molecules_table(args.results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
