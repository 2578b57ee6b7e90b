"""How well do Q-residual, Hotelling T^2 and the bias scores rank a model's true force error?

Protocol (ethanol):
1. Frames at 300, 500 and 1000 K with labels at the truth fidelity (``--fidelity``,
   default B3LYP/def2-SVP) and at ``--cheap`` (HF/STO-3G). Two sources:
   ``aimd`` (default): the trajectories of ``benchmarks/make_ethanol_data.py``
   (HF/STO-3G Langevin MD; training frames from the 300 K and 500 K ``pool``
   trajectories, test frames from the independent ``test`` trajectories at
   300, 500 and 1000 K), read from ``--data``; ``harmonic`` (``--quick``):
   the geometry is optimised with the labeller, the analytic Hessian taken at
   ``--fidelity`` (HF or DFT; ``alloop.campaign.phases.hessian``), and frames drawn by
   the loop's normal-mode sampler (``alloop.campaign.phases.bootstrap``), then
   labelled here.
2. A "cheap" model is trained on the cheap labels of the training frames (300 +
   500 K), and a copy is fine-tuned on truth labels of every other one of them
   (the model under test, as in the loop's periodic fine-tuning). ``--model``
   chooses the architecture: ``egnn`` (default; 64 x 3, quick 32 x 2, trained
   ``--epochs`` with lr 3e-3, the copy with 5e-4 for half the epochs), or a
   SevenNet model preset trained with ``alloop train``'s recipe
   (``alloop.training.recipe`` with the command's defaults; the cheap
   model as ``--method standard`` trains, the truth fine-tune as ASTEROID's stage
   3: steps / 3 at 0.3 x lr): ``sevennet-small`` from scratch
   (the scratch defaults: 3000 steps of batch 8, lr 1e-2) and ``sevennet-0``
   fine-tuned from the pretrained SevenNet-0 weights of the sevenn wheel
   (``PRETRAINED_DEFAULTS``: 1200 steps of batch 4, lr 1e-2, energy weight 0.1).
   SevenNet-0 is heavy on a CPU: 0.4-0.8 s per step of batch 4 on one thread of
   this 2-core machine (measured here and by ``benchmarks/models_ethanol.py``),
   so its full recipe (1200 + 400 steps) takes 12-25 min; sevennet-small takes
   0.07-0.2 s per step of batch 8. ``--steps N`` sets the cheap model's
   optimiser steps (the fine-tune gets N / 3) and ``--quick`` uses a tenth of
   the defaults: fewer steps mean a less converged model (SevenNet-0 less so,
   it starts from pretrained weights), so such numbers check the pipeline more
   than they measure the scores.
3. On the test frames at all three temperatures: the true force error
   (mean |F_model - F_truth| per frame) against each score: Q-residual and T^2
   of the fine-tuned model's latent features (PCA fitted on its training
   frames, per element, k components) with the per-atom empirical, frame-level
   empirical and Jackson-Mudholkar limits; the label-free bias proxy
   mean |F_cheap_model - F_finetuned|; and, where test frames carry a cheap
   label, the bias B = mean |F_cheap_model - F_cheap_label| (what the loop
   ranks cheap-labelled frames by). The limit of the two bias scores is their
   (1 - alpha) quantile on the training frames.

Prints Spearman rho (score vs true error, all test frames), the fraction of
the worst 10% of test frames flagged at the limit, and the flagged fraction per
temperature (empirical limits calibrated on held-out frames, the default).
Then the calibration check: the fraction of the in-distribution test frames
(300 and 500 K, independent of the training frames) flagged by the Q-residual
next to the configured alpha, with limits calibrated in-sample (the PCA's own
fitting rows, the former default) and by 10-fold cross-validation over frames,
for a PCA fitted on all training frames and on 10 of them (as in a campaign's
first cycles: ~20 rows of an element against 64 latent features).

    python benchmarks/make_ethanol_data.py --temperature 300 --pool 50 --test 50   # once; 500 K files are committed
    python benchmarks/make_ethanol_data.py --temperature 1000 --pool 0 --test 50
    python benchmarks/uncertainty_bench.py                 # AIMD frames, B3LYP truth
    python benchmarks/uncertainty_bench.py --quick         # harmonic frames, HF/STO-3G for both fidelities, small EGNN
    python benchmarks/uncertainty_bench.py --model sevennet-0        # SevenNet-0 fine-tuned, alloop train's recipe
    python benchmarks/uncertainty_bench.py --model sevennet-small    # SevenNet from scratch, alloop train's recipe
    python benchmarks/uncertainty_bench.py --model sevennet-0 --train-per-T 20 --test-per-T 20 --steps 150       # 2 min
    python benchmarks/uncertainty_bench.py --model sevennet-small --train-per-T 20 --test-per-T 20 --steps 600   # 1 min
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.build import molecule
from ase.data import chemical_symbols
from ase.optimize import BFGS
from lib.common import DATA
from scipy.stats import spearmanr

from alloop.campaign.phases.bootstrap import normal_mode_samples
from alloop.campaign.phases.hessian import cheap_hessian
from alloop.fidelity import load_fidelity
from alloop.labeling.base import Labeler
from alloop.labeling.calculator import LabelerCalculator
from alloop.labeling.factory import labeler_for
from alloop.potentials.base import AtomsBatch, model_dtype
from alloop.potentials.registry import build_model
from alloop.presets import load_preset
from alloop.training.data import FrameDataset
from alloop.training.trainer import TrainSettings, fit_output_scale, train
from alloop.uncertainty import QResidualModel, QResidualSettings, bias_per_frame, frame_offsets, predict_forces

MODELS = ("egnn", "sevennet-small", "sevennet-0")  # egnn: built here; the others are model presets
TEMPERATURES = (300.0, 500.0, 1000.0)
TRAIN_TEMPERATURES = (300.0, 500.0)


@dataclass
class BenchData:
    """Training and test frames with their labels (energies [M] in eV, forces [M, n, 3] in eV/A; NaN = no label)."""

    train: list[Atoms]
    train_cheap_e: np.ndarray
    train_cheap_f: np.ndarray
    train_truth_e: np.ndarray
    train_truth_f: np.ndarray
    test: list[Atoms]
    test_temps: np.ndarray
    test_truth_f: np.ndarray
    test_cheap_f: np.ndarray | None
    source: str
    timings: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- harmonic frames (quick mode)
def label_frames(labeler: Labeler, frames: list[Atoms]) -> tuple[np.ndarray, np.ndarray]:
    """(energies [M], forces [M, n, 3]) with NaN for failed labels (all frames have the same size)."""
    results = [labeler.label(a) for a in frames]
    n = len(frames[0])
    energy = np.array([r.energy_eV if r.ok else np.nan for r in results])
    forces = np.stack([r.forces_eV_per_A if r.ok else np.full((n, 3), np.nan) for r in results])
    return energy, forces


def harmonic_data(args: argparse.Namespace, rng: np.random.Generator) -> BenchData:
    """Normal-mode frames labelled here: cheap labels on all training frames, truth on every other one and the test."""
    t0 = time.perf_counter()
    truth = labeler_for(load_fidelity(args.fidelity), threads=args.threads)
    cheap = truth if args.cheap == args.fidelity else labeler_for(load_fidelity(args.cheap), threads=args.threads)
    mol = molecule("CH3CH2OH")
    mol.calc = LabelerCalculator(truth)
    BFGS(mol, logfile=None).run(fmax=0.02, steps=200)
    mol = Atoms(mol.numbers, mol.positions)
    hessian = cheap_hessian(mol, load_fidelity(args.fidelity), threads=args.threads)
    t1 = time.perf_counter()

    def sample(temperature_K: float, n: int) -> list[Atoms]:
        return normal_mode_samples(mol, hessian, n, temperature_K, seed=int(rng.integers(2**31)))

    train_frames = [a for t in TRAIN_TEMPERATURES for a in sample(t, args.train_per_T)]
    test_frames = [a for t in TEMPERATURES for a in sample(t, args.test_per_T)]
    cheap_e, cheap_f = label_frames(cheap, train_frames)
    truth_e, truth_f = np.full_like(cheap_e, np.nan), np.full_like(cheap_f, np.nan)
    ft = finetune_indices(len(train_frames))
    if cheap is truth:
        truth_e[ft], truth_f[ft] = cheap_e[ft], cheap_f[ft]
    else:
        truth_e[ft], truth_f[ft] = label_frames(truth, [train_frames[i] for i in ft])
    _, test_truth_f = label_frames(truth, test_frames)
    test_cheap_f = test_truth_f if cheap is truth else label_frames(cheap, test_frames)[1]
    return BenchData(
        train_frames, cheap_e, cheap_f, truth_e, truth_f, test_frames,
        np.repeat(TEMPERATURES, args.test_per_T), test_truth_f, test_cheap_f,
        source="harmonic normal-mode sampling around the optimised geometry",
        timings={"set-up": t1 - t0, "labels": time.perf_counter() - t1},
    )


# --------------------------------------------------------------------------- AIMD frames (full mode)
def read_pair(folder: Path, temperature_K: float, traj: str, cheap: str, truth: str) -> tuple[list[Atoms], list[Atoms]]:
    """The cheap- and truth-labelled files of one trajectory (same frames, same order, checked)."""
    import ase.io

    out = []
    for fid in (cheap, truth):
        path = folder / f"ethanol_{temperature_K:g}K_short_{traj}_{fid}.extxyz"
        if not path.is_file():
            raise SystemExit(
                f"missing {path}: run python benchmarks/make_ethanol_data.py --temperature {temperature_K:g} first"
            )
        out.append(ase.io.read(path, index=":"))
    a, b = out
    if len(a) != len(b) or not all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b, strict=True)):
        raise SystemExit(f"{folder}: the {cheap} and {truth} files of {traj} at {temperature_K:g} K hold different frames")
    return a, b


def spaced(n_total: int, n: int) -> np.ndarray:
    """``n`` evenly spaced indices of ``n_total`` (all when n >= n_total)."""
    return np.arange(n_total) if n >= n_total else np.unique(np.linspace(0, n_total - 1, n).round().astype(int))


def aimd_data(args: argparse.Namespace) -> BenchData:
    """Frames of the committed / generated HF/STO-3G Langevin trajectories with their labels."""

    def energies_forces(frames: list[Atoms]) -> tuple[np.ndarray, np.ndarray]:
        return np.array([a.get_potential_energy() for a in frames]), np.stack([a.get_forces() for a in frames])

    train_c, train_t = [], []
    for t in TRAIN_TEMPERATURES:
        c, x = read_pair(args.data, t, "pool", args.cheap, args.fidelity)
        idx = spaced(len(c), args.train_per_T)
        train_c += [c[i] for i in idx]
        train_t += [x[i] for i in idx]
    test_c, test_t, temps = [], [], []
    for t in TEMPERATURES:
        c, x = read_pair(args.data, t, "test", args.cheap, args.fidelity)
        idx = spaced(len(c), args.test_per_T)
        test_c += [c[i] for i in idx]
        test_t += [x[i] for i in idx]
        temps += [t] * idx.size
    cheap_e, cheap_f = energies_forces(train_c)
    truth_e, truth_f = energies_forces(train_t)
    unused = np.setdiff1d(np.arange(len(train_c)), finetune_indices(len(train_c)))
    truth_e[unused], truth_f[unused] = np.nan, np.nan  # the fine-tuned model sees truth labels on every other frame
    plain = [Atoms(a.numbers, a.positions) for a in train_c]
    return BenchData(
        plain, cheap_e, cheap_f, truth_e, truth_f, [Atoms(a.numbers, a.positions) for a in test_c],
        np.array(temps), energies_forces(test_t)[1], energies_forces(test_c)[1],
        source=f"{args.cheap} Langevin MD trajectories ({args.data})",
    )


# --------------------------------------------------------------------------- models and scores
def finetune_indices(n_train: int) -> np.ndarray:
    """Every other training frame (both temperatures) gets a truth label for fine-tuning."""
    return np.arange(0, n_train, 2)


def dataset(frames: list[Atoms], energy: np.ndarray, forces: np.ndarray, fidelity: str) -> FrameDataset:
    return FrameDataset.from_arrays(
        [a.numbers for a in frames], [a.positions for a in frames], energy, list(forces), fidelity=fidelity
    )


def fit(model, data: FrameDataset, settings: TrainSettings) -> float:
    tr, va, _, _ = data.split(0.2, seed=0)
    return train(model, tr, va, settings).best_val_force_mae


def build_models(args: argparse.Namespace, cheap_data: FrameDataset):
    """(cheap model, its TrainSettings, the truth fine-tune's TrainSettings, a description) for ``args.model``."""
    if args.model == "egnn":
        hidden, layers = (32, 2) if args.quick else (64, 3)
        model = build_model("egnn", [1, 6, 8], hidden_features=hidden, n_layers=layers, cutoff_A=5.0, seed=args.seed)
        settings = TrainSettings(max_epochs=args.epochs, batch_size=8, lr=3e-3, patience=40, threads=args.threads,
                                 seed=args.seed)
        ft_settings = TrainSettings(max_epochs=args.epochs // 2, batch_size=8, lr=5e-4, patience=30, threads=args.threads,
                                    seed=args.seed + 1)
        return model, settings, ft_settings, f"EGNN {hidden}x{layers}, {args.epochs} / {args.epochs // 2} epochs"
    from alloop.config.training import DEFAULT_STEPS, PRETRAINED_DEFAULTS
    from alloop.training.recipe import asteroid_settings, section_from_options

    hparams = load_preset("models", args.model)
    architecture = hparams.pop("architecture")
    pretrained = hparams.get("base") is not None
    default_steps = PRETRAINED_DEFAULTS["steps"] if pretrained else DEFAULT_STEPS
    options = {"steps": args.steps or (default_steps // 10 if args.quick else default_steps)}
    recipe = asteroid_settings(section_from_options(options, pretrained=pretrained), args.seed, args.threads, 300.0,
                               split_seed=args.seed)
    torch.manual_seed(args.seed)
    model = build_model(architecture, [1, 6, 8], seed=args.seed, **hparams)
    fit_output_scale(model, cheap_data)  # a fresh model starts at the data's force scale (pretrained: no-op)
    start = "fine-tuned from SevenNet-0" if pretrained else "from scratch"
    s1, s3 = recipe.stage1, replace(recipe.stage3, seed=args.seed + 1)
    return model, s1, s3, (f"{args.model} ({start}), {s1.max_steps} steps of batch {s1.batch_size} at lr {s1.lr:g}, "
                           f"fine-tune {s3.max_steps} steps at lr {s3.lr:g}")


def features_of(model, frames: list[Atoms]) -> np.ndarray:
    dtype = model_dtype(model)
    out = [
        model(AtomsBatch.from_atoms(frames[i : i + 64], dtype=dtype), compute_forces=False).features
        for i in range(0, len(frames), 64)
    ]
    return torch.cat(out).to(torch.float64).detach().numpy()


def metrics(score: np.ndarray, error: np.ndarray, temps: np.ndarray) -> list[str]:
    rho = spearmanr(score, error).statistic
    worst = np.argsort(-error)[: max(1, int(np.ceil(0.1 * error.size)))]
    caught = np.mean(score[worst] > 1.0)
    flagged = [np.mean(score[temps == t] > 1.0) for t in TEMPERATURES]
    return [f"{rho:+.2f}", f"{100 * caught:.0f}%"] + [f"{100 * f:.0f}%" for f in flagged]


def frame_forces(forces: np.ndarray) -> np.ndarray:
    return forces.reshape(-1, 3)


def parse_args() -> argparse.Namespace:
    """The command line, with the defaults that depend on ``--quick`` and ``--model`` filled in."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="harmonic frames, HF/STO-3G for both fidelities, few frames, small model")
    p.add_argument("--source", choices=("aimd", "harmonic"), default=None,
                   help="frames (default: aimd; harmonic with --quick)")
    p.add_argument("--data", type=Path, default=DATA, help="folder of the make_ethanol_data.py files (aimd source)")
    p.add_argument("--fidelity", default="b3lyp-svp", help="truth / expensive fidelity preset (quick: hf-sto3g)")
    p.add_argument("--cheap", default="hf-sto3g", help="cheap fidelity preset")
    p.add_argument("--train-per-T", type=int, default=None, help="training frames per temperature (300, 500 K)")
    p.add_argument("--test-per-T", type=int, default=None, help="test frames per temperature")
    p.add_argument("--alpha", type=float, default=0.01)
    p.add_argument("--calibration-alphas", default="0.01,0.05,0.1", help="alphas of the calibration check (comma-separated)")
    p.add_argument("--calibration-frames", default="0,10", help="training frames the calibration check fits on (0: all)")
    p.add_argument("--components", type=int, default=5)
    p.add_argument("--model", choices=MODELS, default="egnn", help="egnn (default) or a SevenNet model preset")
    p.add_argument("--epochs", type=int, default=None, help="egnn: training epochs (default 600, quick 150)")
    p.add_argument("--steps", type=int, default=None,
                   help="SevenNet models: optimiser steps of the cheap model, the fine-tune gets steps / 3 "
                   "(default alloop train's: 3000 from scratch, 1200 for sevennet-0; quick a tenth)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.quick:
        args.fidelity = "hf-sto3g"
    args.source = args.source or ("harmonic" if args.quick else "aimd")
    args.train_per_T = args.train_per_T or (40 if args.quick else 50)
    args.test_per_T = args.test_per_T or (30 if args.quick else 50)
    if args.model == "egnn" and args.steps is not None:
        p.error("--steps is for SevenNet models; the EGNN's budget is --epochs")
    if args.model != "egnn" and args.epochs is not None:
        p.error("--epochs is for the EGNN; a SevenNet model's budget is --steps")
    args.epochs = args.epochs or (150 if args.quick else 600)
    budget = args.epochs if args.model == "egnn" else (args.steps if args.steps is not None else 1)
    if min(args.train_per_T, args.test_per_T, budget, args.components) < 1 or not 0 < args.alpha < 1:
        p.error("frame counts, --epochs, --steps and --components must be positive and --alpha in (0, 1)")
    return args


@dataclass
class Trained:
    """The cheap model and its truth fine-tune, the training frames they saw and their validation force MAEs."""

    cheap: Any
    finetuned: Any
    keep: np.ndarray  # training frames with a cheap label
    ft: np.ndarray  # of those, the ones with a truth label too
    frames: list[Atoms]  # the training frames of ``keep``
    mae_cheap: float
    mae_ft: float
    described: str


def train_models(args: argparse.Namespace, data: BenchData) -> Trained:
    """Train the cheap model on the cheap labels, then fine-tune a copy of it on the truth labels."""
    keep = np.flatnonzero(np.isfinite(data.train_cheap_e))
    ft = np.intersect1d(keep, np.flatnonzero(np.isfinite(data.train_truth_e)))
    train_kept = [data.train[i] for i in keep]
    cheap_data = dataset(train_kept, data.train_cheap_e[keep], data.train_cheap_f[keep], args.cheap)
    cheap_model, settings, ft_settings, described = build_models(args, cheap_data)
    t2 = time.perf_counter()
    mae_cheap = fit(cheap_model, cheap_data, settings)
    ft_model = copy.deepcopy(cheap_model)
    ft_frames = [data.train[i] for i in ft]
    mae_ft = fit(ft_model, dataset(ft_frames, data.train_truth_e[ft], data.train_truth_f[ft], args.fidelity), ft_settings)
    data.timings["training"] = time.perf_counter() - t2
    return Trained(cheap_model, ft_model, keep, ft, train_kept, mae_cheap, mae_ft, described)


def score_rows(args: argparse.Namespace, data: BenchData, m: Trained, test: tuple, pred: np.ndarray,
               pred_cheap: np.ndarray) -> tuple[list[tuple[str, np.ndarray]], tuple]:
    """Each score of the test frames over its limit (> 1 flags), and the training frames' (numbers, features,
    offsets). ``test``: the test frames' (kept indices, frames, offsets)."""
    test_ok, frames, ptr = test
    proxy = bias_per_frame(pred_cheap, pred, ptr)
    ptr_tr = frame_offsets(m.frames)
    pred_cheap_tr = predict_forces(m.cheap, m.frames)
    proxy_limit = np.quantile(bias_per_frame(pred_cheap_tr, predict_forces(m.finetuned, m.frames), ptr_tr), 1 - args.alpha)

    numbers_tr = np.concatenate([a.numbers for a in m.frames])
    feats_tr = features_of(m.finetuned, m.frames)
    numbers_te, feats_te = np.concatenate([a.numbers for a in frames]), features_of(m.finetuned, frames)
    rows = []
    for limit in ("empirical", "empirical_frame", "jackson_mudholkar"):
        s = QResidualSettings(n_components=args.components, alpha=args.alpha, limit=limit)
        scores = QResidualModel.fit(numbers_tr, feats_tr, ptr_tr, s).frame_scores(numbers_te, feats_te, ptr)
        how = "" if limit == "jackson_mudholkar" else ", held-out calibration"
        rows.append((f"Q-residual, {limit} limit{how}", scores.q))
        if limit != "jackson_mudholkar":
            rows.append((f"T^2, {limit} limit{how}", scores.t2))
    rows.append(("bias proxy mean abs(F_cheap_model - F_ft), no label", proxy / proxy_limit))
    cheap_ok = data.test_cheap_f is not None and args.cheap != args.fidelity
    if cheap_ok:
        bias = bias_per_frame(pred_cheap, frame_forces(data.test_cheap_f[test_ok]), ptr)
        bias_tr = bias_per_frame(pred_cheap_tr, frame_forces(data.train_cheap_f[m.keep]), ptr_tr)
        rows.append(("bias B mean abs(F_cheap_model - f_cheap), needs a cheap label",
                     bias / np.quantile(bias_tr, 1 - args.alpha)))
    return rows, (numbers_tr, feats_tr, ptr_tr), (numbers_te, feats_te, ptr)


def print_report(args: argparse.Namespace, data: BenchData, m: Trained, test_ok: np.ndarray, temps: np.ndarray,
                 error: np.ndarray, rows: list[tuple[str, np.ndarray]]) -> None:
    """The run's settings, the true error per temperature and each score's agreement with it (Markdown)."""
    print(f"ethanol, truth {args.fidelity}, cheap {args.cheap}; {m.described}; k = {args.components}, alpha = {args.alpha}")
    print(f"frames: {data.source}")
    print(f"train: {m.keep.size} frames at 300 + 500 K ({args.cheap} labels; {m.ft.size} of them also {args.fidelity}); "
          f"test: {test_ok.size} frames ({', '.join(f'{int(t)} K: {int(np.sum(temps == t))}' for t in TEMPERATURES)}); "
          f"failed labels left out: {len(data.train) - m.keep.size + len(data.test) - test_ok.size}")
    print(f"validation force MAE: cheap model {m.mae_cheap:.3f} ({args.cheap}), "
          f"fine-tuned {m.mae_ft:.3f} ({args.fidelity}) eV/A; "
          f"time: {', '.join(f'{k} {v:.0f} s' for k, v in data.timings.items())}\n")
    print("| T (K) | true force error, mean (eV/A) | max (eV/A) |")
    print("|---:|---:|---:|")
    for t in TEMPERATURES:
        print(f"| {int(t)} | {error[temps == t].mean():.3f} | {error[temps == t].max():.3f} |")
    print("\n| score | Spearman rho vs error | worst 10% caught | flagged 300 K | flagged 500 K | flagged 1000 K |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, score in rows:
        print("| " + " | ".join([name] + metrics(score, error, temps)) + " |")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)

    data = harmonic_data(args, rng) if args.source == "harmonic" else aimd_data(args)
    m = train_models(args, data)
    test_ok = np.flatnonzero(np.isfinite(data.test_truth_f).all(axis=(1, 2)))
    frames = [data.test[i] for i in test_ok]
    temps = data.test_temps[test_ok]
    ptr = frame_offsets(frames)
    pred = predict_forces(m.finetuned, frames)
    pred_cheap = predict_forces(m.cheap, frames)
    error = bias_per_frame(pred, frame_forces(data.test_truth_f[test_ok]), ptr)
    rows, train_feats, test_feats = score_rows(args, data, m, (test_ok, frames, ptr), pred, pred_cheap)
    print_report(args, data, m, test_ok, temps, error, rows)
    alphas = sorted({args.alpha, *(float(a) for a in args.calibration_alphas.split(","))})
    print("\n" + "\n".join(calibration_check(train_feats, test_feats, temps, alphas, args)))


def calibration_check(train: tuple, test: tuple, temps: np.ndarray, alphas: list[float], args) -> list[str]:
    """Flag rates of the Q-residual on the test frames with in-sample vs cross-validated empirical limits, for PCAs
    fitted on all training frames and on a few of them (a per-element group then has few rows against the features)."""
    numbers, feats, ptr = test
    inside = np.isin(temps, TRAIN_TEMPERATURES)  # in-distribution frames (the training temperatures)
    atom_inside = np.repeat(inside, np.diff(ptr))
    lines = [f"Q-residual flag rates on held-out test frames (in distribution: {int(inside.sum())} frames at 300 + 500 K; "
             f"1000 K: out of distribution); per-element PCA (elements with < 20 atoms pooled), k = {args.components}, "
             f"{feats.shape[1]} features",
             "| PCA fitted on | calibration | alpha | atoms flagged, per-atom limits | frames flagged, per-atom limits "
             "| frames flagged, frame limit | 1000 K frames flagged, frame limit |", "|---|---|---:|---:|---:|---:|---:|"]
    pct = lambda x: f"{100 * np.mean(x):.1f}%"  # noqa: E731
    sizes = np.diff(train[2])
    for n_fit in sorted({int(n) if int(n) > 0 else sizes.size for n in args.calibration_frames.split(",")}, reverse=True):
        keep = spaced(sizes.size, n_fit)
        rows = np.repeat(np.isin(np.arange(sizes.size), keep), sizes)
        fit_on = (train[0][rows], train[1][rows], np.concatenate([[0], np.cumsum(sizes[keep])]))
        per_element = ", ".join(f"{chemical_symbols[z]} {np.sum(fit_on[0] == z)}" for z in np.unique(fit_on[0]))
        where = f"{keep.size} frames ({per_element})"
        for alpha in alphas:
            for calibration in ("in_sample", "cross_validation"):
                s = QResidualSettings(n_components=args.components, alpha=alpha, limit="empirical_frame",
                                      calibration=calibration)
                model = QResidualModel.fit(*fit_on, s)
                atoms = model.atom_scores(numbers, feats)["q_ratio"] > 1.0
                by_atom = np.maximum.reduceat(atoms, ptr[:-1])  # a frame with any atom beyond its per-atom limit
                frames = model.frame_scores(numbers, feats, ptr).flagged
                lines.append(f"| {where} | {calibration.replace('_', ' ')} | {alpha:g} | {pct(atoms[atom_inside])} | "
                             f"{pct(by_atom[inside])} | {pct(frames[inside])} | {pct(frames[temps == 1000.0])} |")
    return lines


if __name__ == "__main__":
    main()
