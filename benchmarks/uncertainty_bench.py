"""How well do Q-residual, Hotelling T^2 and the bias proxy rank a model's true force error?

Protocol (ethanol):
1. Optimise the geometry and take a finite-difference Hessian with the
   labeller at ``--fidelity``; draw frames by classical normal-mode sampling at
   300, 500 and 1000 K (harmonic: mode amplitude ~ N(0, kB T / omega^2)).
2. Label them with ``alloop.labeling`` (PySCF) at ``--fidelity`` (the truth) and at
   ``--cheap``.
3. Train a "cheap" model on cheap labels of the 300 K + 500 K training frames,
   then fine-tune a copy on ``--fidelity`` labels of half of them (the model under
   test, as in the loop's periodic fine-tuning).
4. On fresh test frames at all three temperatures: the true force error
   (mean |F_model - F_label|) against each score: Q-residual and T^2 of the
   fine-tuned model's latent features (PCA fitted on its training frames,
   per-element, k components) with per-atom empirical, frame-level empirical
   and Jackson-Mudholkar limits, and the label-free bias proxy
   mean |F_cheap_model - F_finetuned| (limit: the (1 - alpha) quantile on the
   training frames).

Prints Spearman rho (score vs true error, all test frames), the fraction of
the worst 10% of frames flagged at the limit, and the flagged fraction per
temperature. Quick mode: HF/STO-3G for both fidelities (the proxy then
compares the model with its own fine-tuned continuation), fewer frames, a
small EGNN.

    python benchmarks/uncertainty_bench.py --quick
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from ase import Atoms
from ase.build import molecule
from ase.calculators.calculator import Calculator, all_changes
from ase.optimize import BFGS
from scipy.stats import spearmanr

from alloop.fidelity import load_fidelity
from alloop.labeling.pyscf_labeler import PySCFLabeler
from alloop.potentials.base import AtomsBatch
from alloop.potentials.registry import build_model
from alloop.training.data import FrameDataset
from alloop.training.trainer import TrainSettings, train
from alloop.uncertainty import QResidualModel, QResidualSettings, bias_per_frame, frame_offsets, predict_forces
from alloop.units import KB_EV_PER_K

TEMPERATURES = (300.0, 500.0, 1000.0)


class LabelerCalculator(Calculator):
    implemented_properties = ["energy", "forces"]

    def __init__(self, labeler: PySCFLabeler) -> None:
        super().__init__()
        self.labeler = labeler

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        result = self.labeler.label(self.atoms)
        if not result.ok:
            raise RuntimeError(f"labelling failed during set-up: {result.reason}")
        self.results = {"energy": result.energy_eV, "forces": result.forces_eV_per_A}


def hessian_fd(atoms: Atoms, labeler: PySCFLabeler, h: float = 0.005) -> np.ndarray:
    """Symmetrised central-difference Hessian [3n, 3n] in eV/A^2 from labelled forces."""
    n = len(atoms)
    hess = np.zeros((3 * n, 3 * n))
    for k in range(3 * n):
        cols = []
        for sign in (1, -1):
            disp = atoms.copy()
            disp.positions[k // 3, k % 3] += sign * h
            cols.append(labeler.label(disp).forces_eV_per_A.reshape(-1))
        hess[:, k] = -(cols[0] - cols[1]) / (2 * h)
    return 0.5 * (hess + hess.T)


def normal_mode_sampler(atoms: Atoms, hess: np.ndarray):
    """A function (T, n, rng) -> n frames displaced along the vibrational normal modes at temperature T."""
    masses = np.repeat(atoms.get_masses(), 3)
    inv_sqrt_m = 1.0 / np.sqrt(masses)
    w2, modes = np.linalg.eigh(hess * np.outer(inv_sqrt_m, inv_sqrt_m))
    keep = np.argsort(np.abs(w2))[6:]  # drop translations and rotations
    keep = keep[w2[keep] > 1e-3]
    w2, modes = w2[keep], modes[:, keep]

    def sample(temperature_K: float, n: int, rng: np.random.Generator) -> list[Atoms]:
        q = rng.standard_normal((n, w2.size)) * np.sqrt(KB_EV_PER_K * temperature_K / w2)
        disp = (q @ modes.T) * inv_sqrt_m
        return [Atoms(atoms.numbers, atoms.positions + d.reshape(-1, 3)) for d in disp]

    return sample


def label_frames(labeler: PySCFLabeler, frames: list[Atoms]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ok mask [M], energies [M], forces [N, 3]) with NaN for failed labels."""
    results = [labeler.label(a) for a in frames]
    ok = np.array([r.ok for r in results])
    energy = np.array([r.energy_eV if r.ok else np.nan for r in results])
    forces = np.concatenate([r.forces_eV_per_A if r.ok else np.full((len(a), 3), np.nan) for r, a in zip(results, frames)])
    return ok, energy, forces


def dataset(frames, energy, forces, fidelity) -> FrameDataset:
    n = len(frames[0])
    return FrameDataset.from_arrays(
        [a.numbers for a in frames], [a.positions for a in frames], energy, list(forces.reshape(-1, n, 3)), fidelity=fidelity
    )


def fit(model, data: FrameDataset, settings: TrainSettings):
    tr, va, _, _ = data.split(0.2, seed=0)
    result = train(model, tr, va, settings)
    return result.best_val_force_mae


def features_of(model, frames: list[Atoms]) -> np.ndarray:
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
    out = [model(AtomsBatch.from_atoms(frames[i : i + 64], dtype=dtype), compute_forces=False).features for i in range(0, len(frames), 64)]
    return torch.cat(out).to(torch.float64).numpy()


def metrics(score: np.ndarray, error: np.ndarray, temps: np.ndarray) -> list[str]:
    rho = spearmanr(score, error).statistic
    worst = np.argsort(-error)[: max(1, int(np.ceil(0.1 * error.size)))]
    caught = np.mean(score[worst] > 1.0)
    flagged = [np.mean(score[temps == t] > 1.0) for t in TEMPERATURES]
    return [f"{rho:+.2f}", f"{100 * caught:.0f}%"] + [f"{100 * f:.0f}%" for f in flagged]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="HF/STO-3G, few frames, small model")
    p.add_argument("--fidelity", default="b3lyp-svp", help="truth / expensive fidelity preset (quick: hf-sto3g)")
    p.add_argument("--cheap", default="hf-sto3g", help="cheap fidelity preset")
    p.add_argument("--train-per-T", type=int, default=None, help="training frames per temperature (300, 500 K)")
    p.add_argument("--test-per-T", type=int, default=None, help="test frames per temperature")
    p.add_argument("--alpha", type=float, default=0.01)
    p.add_argument("--components", type=int, default=5)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.quick:
        args.fidelity = "hf-sto3g"
    n_train = args.train_per_T or (40 if args.quick else 150)
    n_test = args.test_per_T or (30 if args.quick else 100)
    epochs = args.epochs or (150 if args.quick else 600)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()

    truth = PySCFLabeler(load_fidelity(args.fidelity), threads=args.threads)
    cheap = truth if args.cheap == args.fidelity else PySCFLabeler(load_fidelity(args.cheap), threads=args.threads)
    mol = molecule("CH3CH2OH")
    mol.calc = LabelerCalculator(truth)
    BFGS(mol, logfile=None).run(fmax=0.02, steps=200)
    mol = Atoms(mol.numbers, mol.positions)
    sample = normal_mode_sampler(mol, hessian_fd(mol, truth))
    t_setup = time.perf_counter() - t0

    train_frames = sample(300.0, n_train, rng) + sample(500.0, n_train, rng)
    test_frames, test_t = [], []
    for t in TEMPERATURES:
        test_frames += sample(t, n_test, rng)
        test_t += [t] * n_test
    test_t = np.array(test_t)
    t1 = time.perf_counter()
    ok_tr_c, e_tr_c, f_tr_c = label_frames(cheap, train_frames)
    ok_tr, e_tr, f_tr = (ok_tr_c, e_tr_c, f_tr_c) if cheap is truth else label_frames(truth, train_frames)
    ok_te, e_te, f_te = label_frames(truth, test_frames)
    t_label = time.perf_counter() - t1

    keep = np.flatnonzero(ok_tr_c & ok_tr)
    n_at = len(mol)
    f_tr_c, f_tr = f_tr_c.reshape(-1, n_at, 3), f_tr.reshape(-1, n_at, 3)
    train_kept = [train_frames[i] for i in keep]
    hidden, layers = (32, 2) if args.quick else (64, 3)
    cheap_model = build_model("egnn", [1, 6, 8], hidden_features=hidden, n_layers=layers, cutoff_A=5.0, seed=args.seed)
    settings = TrainSettings(max_epochs=epochs, batch_size=8, lr=3e-3, patience=40, threads=args.threads, seed=args.seed)
    t2 = time.perf_counter()
    mae_cheap = fit(cheap_model, dataset(train_kept, e_tr_c[keep], f_tr_c[keep], args.cheap), settings)
    ft_model = copy.deepcopy(cheap_model)
    half = keep[: max(4, keep.size // 2)]
    ft_settings = TrainSettings(max_epochs=epochs // 2, batch_size=8, lr=5e-4, patience=30, threads=args.threads, seed=args.seed + 1)
    mae_ft = fit(ft_model, dataset([train_frames[i] for i in half], e_tr[half], f_tr[half], args.fidelity), ft_settings)
    t_train = time.perf_counter() - t2

    test_ok = np.flatnonzero(ok_te)
    frames = [test_frames[i] for i in test_ok]
    temps = test_t[test_ok]
    ref = f_te.reshape(-1, n_at, 3)[test_ok].reshape(-1, 3)
    pred = predict_forces(ft_model, frames)
    error = bias_per_frame(pred, ref, frame_offsets(frames))
    proxy = bias_per_frame(predict_forces(cheap_model, frames), pred, frame_offsets(frames))
    proxy_train = bias_per_frame(predict_forces(cheap_model, train_kept), predict_forces(ft_model, train_kept), frame_offsets(train_kept))
    proxy_limit = np.quantile(proxy_train, 1 - args.alpha)

    numbers_tr = np.concatenate([a.numbers for a in train_kept])
    feats_tr, ptr_tr = features_of(ft_model, train_kept), frame_offsets(train_kept)
    numbers_te, feats_te, ptr_te = np.concatenate([a.numbers for a in frames]), features_of(ft_model, frames), frame_offsets(frames)
    rows = []
    for limit in ("empirical", "empirical_frame", "jackson_mudholkar"):
        s = QResidualSettings(n_components=args.components, alpha=args.alpha, limit=limit)
        scores = QResidualModel.fit(numbers_tr, feats_tr, ptr_tr, s).frame_scores(numbers_te, feats_te, ptr_te)
        rows.append((f"Q-residual, {limit} limit", scores.q))
        if limit != "jackson_mudholkar":
            rows.append((f"T^2, {limit} limit", scores.t2))
    rows.append(("bias proxy mean abs(F_cheap - F_ft), empirical limit", proxy / proxy_limit))

    print(f"ethanol, truth {args.fidelity}, cheap {args.cheap}; EGNN {hidden}x{layers}; k = {args.components}, alpha = {args.alpha}")
    print(f"train: {keep.size} frames (300 + 500 K, normal-mode sampling); test: {len(frames)} frames "
          f"({', '.join(f'{int(t)} K' for t in TEMPERATURES)}); failed labels: {int((~ok_tr_c).sum() + (~ok_tr).sum() + (~ok_te).sum())}")
    print(f"validation force MAE: cheap model {mae_cheap:.3f}, fine-tuned {mae_ft:.3f} eV/A; "
          f"time: set-up {t_setup:.0f} s, labels {t_label:.0f} s, training {t_train:.0f} s\n")
    print("| T (K) | true force error, mean (eV/A) | max (eV/A) |")
    print("|---:|---:|---:|")
    for t in TEMPERATURES:
        print(f"| {int(t)} | {error[temps == t].mean():.3f} | {error[temps == t].max():.3f} |")
    print("\n| score | Spearman rho vs error | worst 10% caught | flagged 300 K | flagged 500 K | flagged 1000 K |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, score in rows:
        print("| " + " | ".join([name] + metrics(score, error, temps)) + " |")


if __name__ == "__main__":
    main()
