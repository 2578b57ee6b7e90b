"""Naive vs periodic fine-tuning of SevenNet-0 (Wong & Yang), at equal labels, equal MD steps, 3 seeds.

Both strategies run ``campaigns/naive-vs-periodic.yaml`` (``model: sevennet-0``) with the same seed, budget
(labels per fidelity and CPU s), replicas, segment length and number of cycles; only
``schedule.strategy`` differs:

- periodic: the replicas continue with every new model (a warm-started fine-tune after each cycle);
- naive: every cycle's replicas start afresh from the input structure with the starting model (the
  bootstrap fine-tune of SevenNet-0), and the model is fine-tuned once, at the end, on all labels (from the
  bootstrap model, with the full step budget and learning rate; a periodic cycle gets 30 % of the steps at
  0.3 x the learning rate, see the campaign file).

For each final model the script prints:

- force and energy MAE on the held-out B3LYP/def2-SVP frames of independent AIMD at 500 K (in
  distribution) and 1000 K (extrapolation), ``benchmarks/data/ethanol_{500K,1000K}_test_b3lyp-svp.extxyz``;
- MD stability: ``--replicas`` Langevin trajectories at 500 K and at 800 K, capped at ``--ps`` ps, with the
  campaign's guards (bond stretch 1.8x, closest pair 0.5 A, temperature up to 3x the target): time to the first
  guard failure per replica, mean +- std (a replica that never fails counts as the cap);
- coverage of the labelled set: the reference frames are the 500 K and 1000 K test frames; in the per-atom
  feature space of the *untouched* SevenNet-0 (one fixed reference model for every run), the fraction of
  reference frames whose nearest expensive-labelled frame (frame descriptor: the mean of each element's atom
  features, concatenated) lies farther than the reference frames' own median nearest-neighbour distance; and the
  expensive-labelled frames' energies against the reference frames' (mean and spread, meV/atom above the
  lowest reference energy);
- forgetting: the final model against the original model the campaign stored (its v0: SevenNet-0, or the
  campaign's ``model.checkpoint`` when it starts from one), on rattled small CHO
  molecules outside the campaign (``alloop.system.outside``; the campaign's ``forget_*`` columns): force MAE and
  per-atom energy change after per-element offsets; ``--replay F`` adds both strategies with
  ``training.replay_fraction: F`` (part of each batch pseudo-labelled by the original) as two more columns;
- the same outside molecules against B3LYP/def2-SVP labels of those frames (``python
  benchmarks/make_outside_labels.py`` makes them once): did the change move the model towards the fine-tuning
  level of theory (transfer) or away from it (damage)? The original SevenNet-0's own error there is printed below
  the table;
- cost: CPU s of the labels per fidelity (from the store) and wall seconds of each campaign.

- the Q-residual's flag rate per cycle (the store's cycles table): the share of each cycle's MD frames above
  the limit, mean over seeds.

Other systems (e.g. ``campaigns/reline.yaml``, a periodic box): ``--tests KEY=FILE ...`` replaces the ethanol test
sets (labelled at the campaign's expensive level), ``--md-start FILE`` the ethanol molecule of the MD-stability
runs (the first frame of FILE, its cell and pbc), and ``--rdf-reference TRAJ --rdf-pairs A-B ...`` adds, per
element pair, the RMS of the model's g(r) (intermolecular pairs when the start's atoms carry molecule tags; from
the MD at the first ``--temperatures`` value after ``--rdf-skip-ps``) against the reference trajectory's
(:mod:`water_box_md`). The reference trajectory is GFN1-xTB MD, not the expensive level: the RMS mixes the model's
error with the gap between the levels; compare the strategies with each other and with the starting model's row.

``--with-start`` adds a column for the starting model, the untouched SevenNet-0 (or the campaign's
``model.checkpoint``, e.g. ``campaigns/reline-szv-start.yaml``'s deliberately wrong start), scored the same way
(tests, MD, g(r); no labels, so no store rows): is its MD measurably wrong, and how far do the strategies move
from it?

Campaigns go to ``--runs/{strategy}-s{seed}``; a finished one is not run again (an unfinished one resumes).

    python benchmarks/naive_vs_periodic.py                  # 3 seeds, both strategies (~4-5 h on 2 cores: per run
                                                            # 15-30 min of campaign, ~45 min of MD-stability scoring)
    python benchmarks/naive_vs_periodic.py --quick          # 1 seed, short campaigns and MD (smoke run, ~15 min)
    python benchmarks/naive_vs_periodic.py --replay 0.25 --only periodic-replay0.25   # one more column's runs
    python benchmarks/naive_vs_periodic.py --campaign campaigns/reline.yaml --seeds 0,1 --temperatures 350,450 \
        --tests 350K=benchmarks/data/reline_1fu_350K_eqtest_pbe-gth-dzvp.extxyz --ps 2 --replicas 2 \
        --md-start campaigns/reline-start.extxyz --rdf-reference benchmarks/data/reline_1fu_350K_eqtraj_gfn1-xtb.extxyz.gz \
        --rdf-pairs Cl-H O-H --runs runs/reline-nvp                                    # issue 46
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from lib.campaign_runs import run_campaign
from lib.common import DATA, ROOT
from lib.nvp_table import table
from lib.outside_labels import OUT as OUTSIDE_LABELS
from lib.outside_labels import outside_force_mae
from lib.rdf import parse_pair

TESTS = {"500K": DATA / "ethanol_500K_short_test_b3lyp-svp.extxyz",
         "1000K": DATA / "ethanol_1000K_short_test_b3lyp-svp.extxyz"}
RDF_EVERY = 20  # MD steps between frames of the g(r) (10 fs)
STRATEGIES = ("periodic", "naive")
START = "sevennet-0, untuned"  # the --with-start column (a campaign from a model.checkpoint: "start, untuned")
QUICK = ["schedule.n_cycles=2", "md.segment_steps=40", "training.steps=20", "training.finetune_steps=10",
         "schedule.bootstrap.n_samples=12", "schedule.bootstrap.n_expensive=4", "selection.max_cheap_per_cycle=6",
         "selection.min_cheap_per_cycle=4", "selection.max_expensive_per_cycle=2", "schedule.max_labels.expensive=8",
         "schedule.max_labels.cheap=40"]


# --------------------------------------------------------------------------- campaigns
def variants(replay: float) -> dict[str, list[str]]:
    """Column name -> the campaign overrides of that run (both strategies; with ``replay`` > 0 also both with replay)."""
    out = {s: [f"schedule.strategy={s}", f"name={s}"] for s in STRATEGIES}
    if replay > 0:
        out.update({f"{s} + replay {replay:g}": [*out[s], f"training.replay_fraction={replay}"] for s in STRATEGIES})
    return out


def run_name(column: str) -> str:
    """The run directory's stem of a table column: "periodic + replay 0.25" -> "periodic-replay0.25"."""
    return column.replace(" + replay ", "-replay")


def store_summary(run_dir: Path) -> dict[str, Any]:
    """Labels and CPU s per fidelity, and the expensive-labelled frames (positions, energies) of a finished run."""
    from alloop.fidelity import Fidelity
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import store_path

    with CampaignStore.open(store_path(run_dir)) as store:
        rows = store.table("cycles")
        expensive = Fidelity(**store.config["fidelities"]["expensive"]).hash()
        table = store.labels(expensive)
        ok = np.flatnonzero(table.ok)
        frames = store.get_frames(table.frame_id[ok])
        energies = np.asarray(table.energy[ok], float)
    last = -1
    return {
        "labels_cheap": int(rows["labels_cheap"][last]), "labels_expensive": int(rows["labels_expensive"][last]),
        "cpu_cheap_s": float(rows["cpu_cheap_s"][last]), "cpu_expensive_s": float(rows["cpu_expensive_s"][last]),
        "train_s": float(np.nansum(rows["train_seconds"])), "n_models": int(np.sum(rows["model_version"] >= 0)),
        "forget_force": _last_finite(rows.get("forget_force_mae_eV_per_A")),
        "forget_energy_meV_atom": 1000 * _last_finite(rows.get("forget_energy_mae_per_atom_eV")),
        **{f"flag_rate_c{int(c)}": float(v) for c, v, n in zip(rows["cycle"], rows["flag_rate"], rows["md_frames"],
                                                                strict=True) if c >= 0 and n > 0},
        "labelled_frames": frames, "labelled_energies": energies,
    }


def _last_finite(column: Any) -> float:
    values = np.asarray(column if column is not None else [], float)
    values = values[np.isfinite(values)]
    return float(values[-1]) if values.size else float("nan")


# --------------------------------------------------------------------------- scores
def test_errors(model, tests: dict[str, Path]) -> dict[str, float]:
    import ase.io

    from alloop.evaluation.metrics import evaluate_model
    from alloop.training.data import FrameDataset

    out = {}
    for key, path in tests.items():
        data = FrameDataset.from_atoms(ase.io.read(path, index=":"), fidelity="expensive")
        m = evaluate_model(model, data)
        out[f"{key}_force"] = m["force_mae_eV_per_A"]
        out[f"{key}_energy_meV_atom"] = 1000 * m["energy_mae_per_atom_eV"]
    return out


def md_start(path: Path | None):
    """The MD-stability runs' start: the first frame of ``path`` (cell, pbc, tags kept) or ethanol."""
    import ase.io
    from ase.build import molecule

    return molecule("CH3CH2OH") if path is None else ase.io.read(path, index=0)


def stability(model, start, temperature_K: float, n_replicas: int, n_steps: int, seed: int,
              record_every: int | None = None, skip_steps: int = 0) -> tuple[list[float], list]:
    """Picoseconds to the first guard failure of each replica (the cap when it never fails), and with
    ``record_every`` every replica's stable frames from step ``skip_steps`` on (ase.Atoms, the start's cell)."""
    from alloop.md import MDSettings, StabilityGuards, init_replicas, run_segment

    atoms = start.copy()
    settings = MDSettings(temperature_K=temperature_K, timestep_fs=0.5, friction_per_fs=0.01)
    guards = StabilityGuards.from_atoms(atoms, temperature_K=temperature_K, max_bond_stretch=1.8, min_distance_A=0.5)
    states = init_replicas(atoms, n_replicas, temperature_K, seed)
    result = run_segment(model, atoms, states, n_steps, settings, record_every=record_every or max(1, n_steps),
                         guards=guards)
    fs = settings.timestep_fs
    ps = [(result.final_states[r].step if reason is not None else n_steps) * fs / 1000
          for r, reason in enumerate(result.stop_reasons)]
    frames = []
    if record_every:
        for traj in result.trajectories:
            for step, positions, unstable in zip(traj.steps, traj.positions, traj.unstable, strict=True):
                if step >= skip_steps and not unstable:
                    frames.append(Atoms(atoms.numbers, positions=positions, cell=atoms.cell, pbc=atoms.pbc))
    return ps, frames


def rdf_rms(frames: list, args: argparse.Namespace, tags) -> dict[str, float]:
    """Per ``--rdf-pairs`` pair: the RMS of the frames' g(r) against the reference trajectory's."""
    from lib.rdf import pair_rdf, reference_runs, rms

    reference = [a for run in reference_runs(args.rdf_reference) for a in run]
    out = {}
    for pair in args.rdf_pairs:
        name = "-".join(chemical_symbols[z] for z in pair)
        r, g_ref = pair_rdf(reference, pair, args.rdf_r_max, 0.1, tags)
        _, g = pair_rdf(frames, pair, args.rdf_r_max, 0.1, tags)
        out[f"rdf_rms_{name}"] = rms(g, g_ref, r, 1.4)
    return out


def _descriptors(reference_model, frames) -> np.ndarray:
    """Per frame: the mean per-atom feature vector of each element, concatenated (a fixed-length descriptor)."""
    import torch

    from alloop.potentials.base import AtomsBatch

    out = []
    elements = sorted({int(z) for a in frames for z in a.numbers})
    for a in frames:
        batch = AtomsBatch.from_atoms([a], dtype=torch.float32)
        with torch.no_grad():
            feats = reference_model.energy_and_features(batch)[1].numpy()
        out.append(np.concatenate([feats[a.numbers == z].mean(axis=0) for z in elements]))
    return np.asarray(out)


def coverage(reference_model, reference: dict[str, list], labelled: list, ref_energy: dict[str, np.ndarray],
             labelled_energy: np.ndarray) -> dict[str, float]:
    """Fraction of reference frames farther than the reference set's median nearest-neighbour distance from every
    labelled frame, per reference set; labelled energies above the lowest reference energy (meV/atom)."""
    lab = _descriptors(reference_model, labelled)
    out: dict[str, float] = {}
    for key, frames in reference.items():
        ref = _descriptors(reference_model, frames)
        d_ref = np.linalg.norm(ref[:, None] - ref[None], axis=-1)
        np.fill_diagonal(d_ref, np.inf)
        threshold = float(np.median(d_ref.min(axis=1)))
        d_lab = np.linalg.norm(ref[:, None] - lab[None], axis=-1).min(axis=1)
        out[f"uncovered_{key}"] = float(np.mean(d_lab > threshold))
    n_atoms = len(labelled[0])
    low = min(float(e.min()) for e in ref_energy.values())
    above = 1000 * (labelled_energy - low) / n_atoms
    out["energy_mean_meV_atom"], out["energy_std_meV_atom"] = float(above.mean()), float(above.std())
    for key, e in ref_energy.items():
        ref_above = 1000 * (e - low) / n_atoms
        out[f"ref_{key}_energy_mean_meV_atom"] = float(ref_above.mean())
        out[f"ref_{key}_energy_std_meV_atom"] = float(ref_above.std())
    return out


# --------------------------------------------------------------------------- driver
def _score_key(args: argparse.Namespace) -> dict[str, Any]:
    """What the cached scores depend on, as JSON reads it back (tuples become lists)."""
    key = {"replicas": args.replicas, "ps": args.ps, "temperatures": args.temperatures,
           **({"tests": {k: str(v) for k, v in args.tests.items()}} if args.tests != TESTS else {}),
           **({"md_start": str(args.md_start)} if args.md_start else {}),
           **({"rdf": [str(args.rdf_reference), args.rdf_pairs, args.rdf_skip_ps]} if args.rdf_reference else {})}
    return json.loads(json.dumps(key))


def _entries(path: Path) -> list[dict[str, Any]]:
    """The cache file's (key, scores) entries: one per scoring setting (a file of one entry is read too)."""
    if not path.is_file():
        return []
    saved = json.loads(path.read_text())
    return saved.get("entries", [saved])


def _cached(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    return next((e["scores"] for e in _entries(path) if e.get("key") == key), None)


def _save(path: Path, key: dict[str, Any], scores: dict[str, Any]) -> None:
    """Add (or replace) the scores of ``key``; the scores of other settings stay."""
    entries = [e for e in _entries(path) if e.get("key") != key] + [{"key": key, "scores": scores}]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"entries": entries}))


def score_model(model, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Test-set errors, MD stability per temperature and (with ``--rdf-reference``) the g(r) RMS of one model."""
    import torch

    torch.set_num_threads(1)
    scores: dict[str, Any] = test_errors(model, args.tests)
    n_steps = int(round(args.ps * 1000 / 0.5))
    start = md_start(args.md_start)
    for k, t in enumerate(args.temperatures):
        rdf = args.rdf_reference is not None and k == 0
        scores[f"stable_ps_{t:g}K"], frames = stability(model, start, t, args.replicas, n_steps, seed,
                                                         RDF_EVERY if rdf else None, int(args.rdf_skip_ps * 2000))
        if rdf and frames:
            scores.update(rdf_rms(frames, args, start.get_tags() if start.get_tags().any() else None))
    return scores


def starting_model(campaign: Path, reference_model) -> tuple[str, Any]:
    """The campaign's untouched starting model and its column name: its ``model.checkpoint``'s model if it has one
    (e.g. a deliberately wrong start), else the untouched SevenNet-0 (``reference_model``)."""
    from alloop.config.loading import load_campaign
    from alloop.potentials.checkpoint import load_checkpoint

    path = load_campaign(campaign).model.checkpoint
    if path is None:
        return START, reference_model
    return f"start ({path.name}), untuned", load_checkpoint(path)[0].eval()


def score_start(start_model, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """The campaign's starting model scored as the runs are; no labels, so no store rows. Its energies are on its
    own scale (no per-element refit), so its energy rows are left out."""
    cache = args.runs / f"start-s{seed}" / "naive_vs_periodic_scores.json"
    key = _score_key(args)
    scores = _cached(cache, key)
    if scores is None:
        scores = score_model(start_model, args, seed)
        scores = {k: v for k, v in scores.items() if not k.endswith("_energy_meV_atom")}
        _save(cache, key, scores)
    return scores


def score_run(run_dir: Path, reference_model, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    import ase.io

    from alloop.deploy.loading import load_trained

    cache = run_dir / "naive_vs_periodic_scores.json"
    key = _score_key(args)
    saved = _cached(cache, key)
    if saved is not None:
        return saved
    scores = score_model(load_trained(run_dir).model.eval(), args, seed)
    info = store_summary(run_dir)
    reference = {k: ase.io.read(p, index=":") for k, p in args.tests.items()}
    ref_energy = {k: np.array([a.get_potential_energy() for a in frames]) for k, frames in reference.items()}
    scores.update(coverage(reference_model, reference, info.pop("labelled_frames"), ref_energy,
                           info.pop("labelled_energies")))
    scores.update(info)
    _save(cache, key, scores)
    return scores


def parse_args() -> argparse.Namespace:
    """The command line, checked; ``--quick`` applied; ``seeds`` and ``temperatures`` as lists, ``variants`` the
    runs to do (column name -> its campaign overrides), ``overrides`` those for every run."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--campaign", type=Path, default=ROOT / "campaigns" / "naive-vs-periodic.yaml")
    ap.add_argument("--runs", type=Path, default=Path("/tmp/alloop-naive-vs-periodic"))
    ap.add_argument("--replicas", type=int, default=5, help="MD stability: trajectories per temperature")
    ap.add_argument("--ps", type=float, default=5.0, help="MD stability: cap in ps (0.5 fs steps)")
    ap.add_argument("--temperatures", default="500,800", help="MD stability temperatures (K), comma-separated")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="extra campaign override for both strategies (repeatable)")
    ap.add_argument("--replay", type=float, default=0.0,
                    help="also run both strategies with training.replay_fraction REPLAY (e.g. 0.25)")
    ap.add_argument("--only", default="",
                    help="run and print only these columns, by run name (comma-separated: periodic, naive, "
                         "periodic-replay0.25, ...)")
    ap.add_argument("--with-start", action="store_true",
                    help="add a column for the starting model (the untouched SevenNet-0, or the campaign's "
                         "model.checkpoint), scored as the runs are")
    ap.add_argument("--quick", action="store_true", help="1 seed, tiny campaigns, 0.1 ps of MD (smoke run)")
    ap.add_argument("--tests", nargs="+", metavar="KEY=FILE", help="test sets (default: ethanol at 500 and 1000 K)")
    ap.add_argument("--md-start", type=Path, help="MD-stability start: the first frame of this file (default ethanol)")
    ap.add_argument("--rdf-reference", type=Path, help="reference trajectory (make_water_box_sets.py's eqtraj)")
    ap.add_argument("--rdf-pairs", type=parse_pair, nargs="+", default=[], metavar="A-B")
    ap.add_argument("--rdf-skip-ps", type=float, default=0.25, help="MD left out of the g(r)")
    ap.add_argument("--rdf-r-max", type=float, default=5.0, help="A")
    args = ap.parse_args()
    try:
        args.tests = TESTS if not args.tests else {k: Path(v) for k, v in (t.split("=", 1) for t in args.tests)}
    except ValueError:
        ap.error("--tests takes KEY=FILE pairs, e.g. 350K=benchmarks/data/reline_1fu_350K_eqtest_pbe-gth-dzvp.extxyz")
    missing = [str(f) for f in [*args.tests.values(), *filter(None, [args.md_start, args.rdf_reference])]
               if not f.is_file()]
    if missing:
        ap.error(f"missing files: {missing}")
    if args.rdf_pairs and args.rdf_reference is None:
        ap.error("--rdf-pairs needs --rdf-reference")
    args.temperatures = [float(t) for t in args.temperatures.split(",")]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.overrides = list(args.overrides)
    if args.quick:
        args.seeds, args.ps, args.replicas = args.seeds[:1], 0.1, 2
        args.overrides = QUICK + args.overrides
        args.runs = args.runs.with_name(args.runs.name + "-quick")
    args.variants = {name: sets for name, sets in variants(args.replay).items()
            if not args.only or run_name(name) in args.only.split(",")}
    if not args.variants:
        ap.error(f"--only {args.only}: no such run; the runs are {', '.join(map(run_name, variants(args.replay)))}")
    return args


def run_and_score(args: argparse.Namespace, reference_model: Any) -> tuple[dict[str, list[dict[str, Any]]], Any]:
    """Every run's scores per column (and the starting model's with ``--with-start``), seed by seed; the original
    SevenNet-0's force MAE on the outside molecules' B3LYP labels."""
    from alloop.deploy.loading import load_trained

    results: dict[str, list[dict[str, Any]]] = {name: [] for name in args.variants}
    original = outside_force_mae(reference_model)
    if args.with_start:
        start_name, start_model = starting_model(args.campaign, reference_model)
        start_outside = original if start_model is reference_model else outside_force_mae(start_model)
        results[start_name] = []
    for seed in args.seeds:
        for strategy, sets in args.variants.items():
            run_dir = args.runs / f"{run_name(strategy)}-s{seed}"
            wall = run_campaign(args.campaign, run_dir, seed, [*sets, *args.overrides], "naive_vs_periodic.json",
                                run_dir.parent / f"{run_dir.name}.log")
            scores = score_run(run_dir, reference_model, args, seed)
            scores["wall_seconds"] = wall
            scores["outside_b3lyp_force"] = outside_force_mae(load_trained(run_dir).model.eval())
            results[strategy].append(scores)
            print(f"{strategy} seed {seed}: {wall:.0f} s; test force MAE " + ", ".join(
                f"{t} {scores[f'{t}_force']:.3f}" for t in args.tests) + " eV/A", flush=True)
        if args.with_start:
            results[start_name].append({**score_start(start_model, args, seed), "outside_b3lyp_force": start_outside})
    return results, original


def main() -> None:
    from alloop.allocator import reuse_freed_memory

    reuse_freed_memory()  # in-process training and MD, as the alloop command (docs/benchmarks.md: Memory reuse)
    args = parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)

    from alloop.potentials.registry import build_model
    from alloop.presets import load_preset

    spec = load_preset("models", "sevennet-0")
    import ase.io

    elements = sorted({int(z) for f in args.tests.values() for a in ase.io.read(f, index=":") for z in a.numbers}
                      | {int(z) for z in md_start(args.md_start).numbers})
    reference_model = build_model(spec.pop("architecture"), elements, **spec).eval()
    results, original = run_and_score(args, reference_model)
    print()
    pairs = ["-".join(chemical_symbols[z] for z in pair) for pair in args.rdf_pairs]
    print("\n".join(table(results, args.temperatures, args.ps, list(args.tests), pairs)))
    print("\noutside molecules, the original SevenNet-0 vs B3LYP/def2-SVP: "
          + (f"force MAE {original:.3f} eV/A" if original is not None else
             f"no labels ({OUTSIDE_LABELS} missing: python benchmarks/make_outside_labels.py)"))
    print(f"\nseeds {args.seeds}; runs in {args.runs}; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
