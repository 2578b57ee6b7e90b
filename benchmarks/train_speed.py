"""SevenNet-0 fine-tuning throughput: alloop's trainer against a minimal loop of sevenn's own training machinery.

    python benchmarks/train_speed.py                        # 4 repeats of 2 epochs (16 steps) per loop, 1 thread
    python benchmarks/train_speed.py --epochs 4 --repeats 5

Data: the first 30 frames of ethanol_500K_eqpool_b3lyp-svp.extxyz (9 atoms, B3LYP/def2-SVP labels) train both
loops; the next 8 are alloop's validation set. Two variants: the labels themselves (``sevennet-0``) and the labels
minus GFN2-xTB (``sevennet-0+gfn2-xtb``, the universal quickstart's Delta learning; the baseline is subtracted once,
before training, as :func:`alloop.training.fit.fit` does, so the step is the same network step).

alloop: :func:`alloop.training.trainer.train` (the loop of the ``standard`` method, the universal quickstart's) on
a copy of the ``sevennet-0`` preset with the settings of ``alloop train --model sevennet-0`` (batches of 4, energy
weight 0.1, MSE, EMA 0.99, gradient clipping, warm-up + cosine, validation every ``eval_every`` epochs), ``--epochs``
passes over the 30 frames. ``alloop ms/step`` is the training loop (the steps and the validations between them,
from the run's own history); ``call ms/step`` is the whole call over its steps (``setup s``: the reference fit
before and after, the first and last validation, the EMA copy).

sevenn: what sevenn's ``sevenn train`` does per step, with none of alloop: the network rebuilt by sevenn's loader
from the checkpoint in the wheel (its ``AtomGraphSequential`` with its own force module, forces from dE/d(edge
vectors)), graphs built once per frame by sevenn's ``atoms_to_graph`` (as ``SevenNetGraphDataset`` does),
shuffled batches collated by torch-geometric's ``DataLoader``, and ``sevenn.train.trainer.Trainer.run_one_epoch``
(zero_grad, forward, sevenn's ``PerAtomEnergyLoss`` and ``ForceLoss`` with MSE at weights 0.1 and 0.9, backward,
``torch.optim.Adam`` step at the same peak learning rate). ``sevenn + validations`` adds what ``sevenn train`` does
after every epoch: ``run_one_epoch`` over the validation graphs (alloop's 8 validation frames; alloop too validates
every epoch on a set this small). Left out: sevenn's error recorders, learning-rate scheduler and checkpoint
writing. Its energy targets are the labels minus alloop's fitted per-element references (those alloop's model adds),
so both loops minimise the same loss on the same frames: ``loss check`` is the two losses on one batch before
training.

Repeats interleave the loops (alternating which goes first), so machine load touches both alike. Ratios per repeat
(mean +- sample std over repeats): ``ratio`` alloop's loop / sevenn's steps; ``ratio to sevenn + validations``
alloop's loop / sevenn's steps and validations; ``CPU ratio`` alloop's whole call (its setup included, which only
inflates alloop's side) / sevenn's steps and validations, in CPU time of this process (``time.process_time``, one
thread), which swings less than wall time on a machine others load. Then one more alloop run under cProfile gives
the time of its parts and the profile's top entries. Writes benchmarks/results/train-speed/sevennet0-ethanol.json
(``--out``).
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import json
import math
import pstats
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase.calculators.singlepoint import SinglePointCalculator
from lib.common import ROOT, cpu_seconds, data_file, markdown_table
from lib.train_speed_table import RATIOS, train_speed_table

from alloop.io import write_atomic
from alloop.potentials.base import Potential
from alloop.potentials.baseline import Baseline
from alloop.potentials.registry import build_model, model_preset
from alloop.training.data import FrameDataset
from alloop.training.loss import eq1_loss
from alloop.training.recipe import asteroid_settings, section_from_options
from alloop.training.references import model_references, refit_references
from alloop.training.trainer import TrainSettings, train

FRAMES = "ethanol_500K_eqpool_b3lyp-svp.extxyz"
N_TRAIN, N_VAL = 30, 8
BATCH_SIZE = 4
BASELINE = "gfn2-xtb"
VARIANTS = ("sevennet-0", f"sevennet-0+{BASELINE}")
OUT = ROOT / "benchmarks" / "results" / "train-speed" / "sevennet0-ethanol.json"
PROFILE_ROWS = 15
#: the parts of an alloop run the profile sums (cumulative seconds of one function each): part -> (file, function)
PARTS = {
    "train() call": ("alloop/training/trainer.py", "train"),
    "training epochs (the steps)": ("alloop/training/epochs.py", "train_epoch"),
    "batches from the frames": ("alloop/training/data.py", "batch"),
    "neighbour pairs (every forward)": ("alloop/potentials/neighbors.py", "neighbor_pairs"),
    "EMA update": ("alloop/training/optim.py", "update"),
    "gradient clipping": ("torch/nn/utils/clip_grad.py", "clip_grad_norm_"),
    "validations (every eval_every epochs)": ("alloop/training/metrics.py", "validation_metrics"),
    "reference fits (before and after)": ("alloop/training/references.py", "refit_references"),
    "EMA copy of the model": ("alloop/training/optim.py", "__init__"),
}


def labelled_sets(variant: str) -> tuple[FrameDataset, FrameDataset]:
    """The training and validation frames of ``variant``: labels, or labels minus the baseline."""
    from ase.io import read

    frames = read(data_file(FRAMES), f":{N_TRAIN + N_VAL}")
    data = FrameDataset.from_atoms(frames, fidelity="b3lyp-svp")
    if "+" in variant:
        data = Baseline(variant.partition("+")[2], threads=1).subtract(data)
    return data.subset(range(N_TRAIN)), data.subset(range(N_TRAIN, N_TRAIN + N_VAL))


def alloop_settings(epochs: int, threads: int) -> TrainSettings:
    """``alloop train --model sevennet-0``'s recipe (the universal quickstart's) for ``epochs`` passes."""
    steps = epochs * math.ceil(N_TRAIN / BATCH_SIZE)
    section = section_from_options({"steps": steps, "batch_size": BATCH_SIZE}, pretrained=True)
    return asteroid_settings(section, seed=0, threads=threads, temperature_K=500.0).stage1


def time_alloop(pristine: Potential, sets: tuple[FrameDataset, FrameDataset], s: TrainSettings) -> dict[str, float]:
    """One alloop training run on a copy of ``pristine``: loop and whole-call time per step."""
    model = copy.deepcopy(pristine)
    start, cpu = time.perf_counter(), time.process_time()
    result = train(model, sets[0], sets[1], s)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu
    loop = sum(record.seconds for record in result.history[1:])
    return {"ms_per_step": 1e3 * loop / result.steps, "call_ms_per_step": 1e3 * total / result.steps,
            "call_cpu_ms_per_step": 1e3 * cpu / result.steps, "setup_s": total - loop, "steps": result.steps,
            "evaluations": len(result.history)}


def sevenn_graphs(data: FrameDataset, references: dict[int, float], cutoff: float) -> list[Any]:
    """sevenn's graphs of the frames (built once, as its graph dataset does); energies minus ``references``."""
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import atoms_to_graph

    energy, forces = data.labels()
    graphs = []
    for k, atoms in enumerate(data.to_atoms()):
        shift = sum(references[int(z)] for z in atoms.numbers)
        atoms.calc = SinglePointCalculator(atoms, energy=energy[k] - shift, forces=forces[data.frame_slice(k)])
        graph = atoms_to_graph(atoms, cutoff, transfer_info=False, y_from_calc=True)
        graphs.append(AtomGraphData.from_numpy_dict(graph))
    return graphs


def sevenn_losses(energy_weight: float) -> list[tuple[Any, float]]:
    """sevenn's energy (per atom) and force losses, MSE, weighted as alloop's Eq. 1 (rho, 1 - rho)."""
    from sevenn.train.loss import ForceLoss, PerAtomEnergyLoss

    return [(PerAtomEnergyLoss(criterion=torch.nn.MSELoss()), energy_weight),
            (ForceLoss(criterion=torch.nn.MSELoss()), 1.0 - energy_weight)]


def time_sevenn(net: Any, initial: dict[str, torch.Tensor], graphs: tuple[list[Any], list[Any]], s: TrainSettings,
                epochs: int) -> dict[str, float]:
    """``epochs`` of sevenn's ``Trainer.run_one_epoch`` from the weights ``initial``, each followed by its pass over
    the validation graphs (as ``sevenn train`` does every epoch, without its error recorders); time per step of the
    training epochs alone and with the validations."""
    from sevenn.train.trainer import Trainer
    from torch_geometric.loader import DataLoader

    net.load_state_dict(initial)
    torch.manual_seed(s.seed)
    trainer = Trainer(net, sevenn_losses(s.energy_weight), torch.optim.Adam, {"lr": s.lr}, device="cpu")
    loader = DataLoader(graphs[0], batch_size=s.batch_size, shuffle=True)
    val_loader = DataLoader(graphs[1], batch_size=s.eval_batch_size)
    wall = {"train": 0.0, "val": 0.0}
    cpu = dict(wall)
    for _ in range(epochs):
        for part, data, is_train in (("train", loader, True), ("val", val_loader, False)):
            start, start_cpu = time.perf_counter(), time.process_time()
            trainer.run_one_epoch(data, is_train=is_train)
            wall[part] += time.perf_counter() - start
            cpu[part] += time.process_time() - start_cpu
    steps = epochs * len(loader)
    return {"ms_per_step": 1e3 * wall["train"] / steps, "cpu_ms_per_step": 1e3 * cpu["train"] / steps,
            "with_validation_ms_per_step": 1e3 * (wall["train"] + wall["val"]) / steps,
            "with_validation_cpu_ms_per_step": 1e3 * (cpu["train"] + cpu["val"]) / steps, "steps": steps}


def loss_check(model: Potential, net: Any, data: FrameDataset, graphs: list[Any], energy_weight: float) -> list[float]:
    """alloop's and sevenn's loss on the first batch of frames, same weights (they should agree to float32)."""
    from torch_geometric.loader import DataLoader

    batch = data.batch(np.arange(BATCH_SIZE), dtype=torch.float32)
    out = model(batch.atoms, compute_forces=True)
    energy, forces = batch.targets()
    ours = eq1_loss(out.energy, out.forces, energy, forces, batch.atoms.batch, batch.n_atoms,
                    energy_weight=energy_weight, kind="mse")
    net.train()
    net.set_is_batch_data(True)
    graph = next(iter(DataLoader(graphs[:BATCH_SIZE], batch_size=BATCH_SIZE)))
    output = net(graph)
    theirs = sum(w * loss.get_loss(output, net) for loss, w in sevenn_losses(energy_weight))
    return [float(ours.detach()), float(theirs.detach())]


def profile_alloop(pristine: Potential, sets: tuple[FrameDataset, FrameDataset],
                   s: TrainSettings) -> tuple[list[dict], list[dict]]:
    """cProfile of one alloop run: the cumulative time of the run's parts (:data:`PARTS`) and the top entries by own
    time (the rest of the step is below them)."""
    profiler = cProfile.Profile()
    model = copy.deepcopy(pristine)
    profiler.enable()
    train(model, sets[0], sets[1], s)
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows, parts = [], []
    for (path, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(path).name}:{line}({name})" if line else name
        rows.append({"function": where, "calls": calls, "own_s": own, "cumulative_s": cumulative})
        for part, (file, function) in PARTS.items():
            if path.endswith(file) and name == function:
                parts.append({"part": part, "calls": calls, "cumulative_s": cumulative})
    parts.sort(key=lambda p: list(PARTS).index(p["part"]))
    return parts, sorted(rows, key=lambda r: -r["own_s"])[:PROFILE_ROWS]


def run_variant(variant: str, pristine: Potential, net: Any, initial: dict[str, torch.Tensor],
                args: argparse.Namespace) -> dict[str, Any]:
    """The interleaved repeats of both loops on one variant's data (sevenn's from its weights ``initial``), the loss
    check and the ratios (:data:`RATIOS`, mean and sample std over the repeats)."""
    sets = labelled_sets(variant)
    s = alloop_settings(args.epochs, args.threads)
    fitted = copy.deepcopy(pristine)
    references = model_references(fitted) | refit_references(fitted, sets[0]).energies
    graphs = (sevenn_graphs(sets[0], references, fitted.cutoff), sevenn_graphs(sets[1], references, fitted.cutoff))
    net.load_state_dict(initial)
    check = loss_check(fitted, net, sets[0], graphs[0], s.energy_weight)
    repeats = []
    for r in range(args.repeats):
        order = ("alloop", "sevenn") if r % 2 == 0 else ("sevenn", "alloop")
        row: dict[str, Any] = {}
        for loop in order:
            row[loop] = (time_alloop(pristine, sets, s) if loop == "alloop"
                         else time_sevenn(net, initial, graphs, s, args.epochs))
        row.update({name: row["alloop"][a] / row["sevenn"][b] for name, (a, b) in RATIOS.items()})
        repeats.append(row)
        print(f"{variant} repeat {r}: alloop {row['alloop']['ms_per_step']:.0f} ms/step (call "
              f"{row['alloop']['call_ms_per_step']:.0f}), sevenn {row['sevenn']['ms_per_step']:.0f} "
              f"(validations too: {row['sevenn']['with_validation_ms_per_step']:.0f}); "
              + ", ".join(f"{name} {row[name]:.3f}" for name in RATIOS), flush=True)
    out: dict[str, Any] = {"variant": variant, "loss_check": check, "repeats": repeats}
    for name in RATIOS:
        values = np.array([row[name] for row in repeats])
        out[f"{name}_mean"] = float(values.mean())
        out[f"{name}_std"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
    out["settings"] = {k: getattr(s, k) for k in ("max_steps", "batch_size", "lr", "energy_weight", "loss",
                                                  "ema_decay", "eval_every", "grad_clip", "optimizer")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2, help="passes over the 30 frames per timed run (8 steps each)")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    preset = model_preset("sevennet-0")
    pristine = build_model(preset.pop("architecture"), [1, 6, 8], **preset)
    from sevenn._const import SEVENNET_0_11Jul2024
    from sevenn.util import load_checkpoint

    net = load_checkpoint(SEVENNET_0_11Jul2024).build_model()
    initial = copy.deepcopy(net.state_dict())
    results = [run_variant(variant, pristine, net, initial, args) for variant in VARIANTS]
    sets = labelled_sets(VARIANTS[1])
    parts, profile = profile_alloop(pristine, sets, alloop_settings(args.epochs, args.threads))
    print(train_speed_table(results))
    print("\nalloop's run under cProfile, its parts (cumulative s; the epochs include batches, neighbours, EMA, "
          "clipping):")
    print(markdown_table(["part", "calls", "s"], [[p["part"], p["calls"], p["cumulative_s"]] for p in parts], "{:.3f}"))
    print("\nalloop's run under cProfile, top entries by own time (s):")
    print(markdown_table(["function", "calls", "own s", "cumulative s"],
                         [[p["function"], p["calls"], p["own_s"], p["cumulative_s"]] for p in profile], "{:.3f}"))
    out = {"frames": FRAMES, "n_train": N_TRAIN, "n_val": N_VAL, "batch_size": BATCH_SIZE, "threads": args.threads,
           "epochs": args.epochs, "repeats": args.repeats, "torch": torch.__version__, "results": results,
           "profile_parts": parts, "profile": profile, "cpu_s": cpu_seconds() - cpu0, "wall_s": time.perf_counter() - wall0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, (json.dumps(out, indent=1) + "\n").encode())
    print(f"\nwrote {args.out} ({out['cpu_s']:.0f} CPU s)")


if __name__ == "__main__":
    main()
