"""Learning curves of the active-learning loop against random frames and farthest-point sampling (issue 42, item 5).

For each number N of expensive labels (``--n-labels``, default 15 30 60 120) and each seed (``--seeds``, default
0-4), three arms (``--arms``) train the campaign's model on N B3LYP/def2-SVP labels:

- ``random``: N frames of the 500 K equilibrium pools (``--pool``, concatenated; default the two 150-frame pools
  ``ethanol_500K_eqpool_b3lyp-svp`` and ``ethanol_500K_eqpool2_b3lyp-svp`` of ``make_equilibrium_sets.py``),
  drawn without replacement: the first N of a permutation seeded by ``10_000 + seed``, so a seed's 15 frames are
  among its 30, 60 and 120 (nested curves);
- ``fps``: farthest-point sampling of N pool frames in a label-free descriptor: per element pair, the sorted
  inverse interatomic distances (1/A; rotation-, translation- and permutation-invariant, 36 numbers for ethanol),
  Euclidean distance, greedy max-min from a start frame drawn with ``20_000 + seed`` (nested too). It needs only
  the pool's geometries, i.e. its MD, none of its labels: the strongest label-free script a user could write
  without a model. (Not a model's latent features.)
- ``hot``: N random frames of a broad, hot pool (``--hot-pool``, default the 1000 K GFN2-xTB pool
  ``ethanol_1000K_eqpool_b3lyp-svp``): "just heat it", the other baseline a user could script (seed ``30_000 +
  seed``, nested);
- ``loop``: the campaign (``--campaign``, default ``campaigns/quickstart.yaml``; ``--set`` overrides go to it)
  with ``schedule.max_labels.expensive=N``. Its bootstrap labels ``schedule.bootstrap.n_expensive`` frames
  (12; N if smaller) and each cycle at most ``selection.max_expensive_per_cycle`` (6), so the script sets
  ``schedule.n_cycles`` = ceil((N - bootstrap) / per cycle) (N=30: the quickstart's 3 cycles), raises
  ``schedule.max_labels.cheap`` to bootstrap samples + cycles x ``selection.max_cheap_per_cycle`` if the file's
  cap is lower, and lifts ``schedule.budget_cpu_seconds`` (a label count, not CPU, is the budget here; the
  CPU budget would otherwise shrink the cycles' picks). The final retrain (and refit) falls on the last cycle, as
  in the quickstart. The labels it actually bought are read from its store and printed (a cycle may pick fewer
  than its cap). Runs through :func:`lib.campaign_runs.run_campaign` (``alloop run``/``resume``), reused when
  finished; ``--workers`` sets ``execution.n_workers``.

``random`` and ``fps`` train as ``al_vs_random.py`` trains its random frames: ``alloop train --method standard``
with the campaign's ``model.preset`` and ``model.baseline`` (at its ``system.charge`` and ``system.spin``; and
``--init`` its ``model.checkpoint``, the model file
of preset ``mace``), ``--refit`` when the campaign has ``training.final_refit``, ``--seed SEED`` (and
``--threads``, which changes only the speed), plus any ``--train-option KEY=VALUE`` (``--KEY VALUE``; part of the
entries' identity). Their entries record the training's CPU seconds (``train_cpu_s``, the ``alloop train``
process); the loop's its training seconds (``train_s``: wall, the store's ``train_seconds`` over every cycle).

Every model is scored on each ``--test`` file (default the development sets ``ethanol_500K_eqtest`` and
``ethanol_1000K_eqtest``, on which the defaults were tuned, and the fresh 500 K set ``ethanol_500K_eqfresh``, on
which nothing was): per-frame force MAE (:func:`lib.common.per_frame_force_mae`) -> mean over frames, 95th
percentile, max, and the mean over the highest-energy decile of the frames (ceil(n/10) frames with the highest
reference energy in the file; meaningful for a file of one molecule); plus ``alloop evaluate --json``'s force
MAE (equal to the mean for frames of equal size; a difference is reported) and energy MAE.

"label CPU s": the loop's labelling CPU, both fidelities (its store's cycles table); random and fps: the CPU
seconds of the chosen frames' B3LYP labels (their ``cpu_seconds``). MD is not counted on any side (the pools'
GFN2-xTB MD: about 4 CPU s per frame, all of it needed by fps, N frames' worth by random) nor training.

MD robustness (``--md-ps PS``, default 0: off): every model runs ``--md-replicas`` (8) Langevin replicas of ethanol
from the trans rotamer at each of ``--md-temperatures`` (300 600 900 1200 K) for ``PS`` ps under the campaigns'
default guards (:func:`lib.common.md_first_stops`: a bond beyond 1.5x its start, two atoms closer than 0.7 A, above
3x the temperature), the initial velocities seeded by the entry's seed, so the arms of a seed start alike. Printed:
per arm and N the replicas that ran the whole time and the mean time to the first guard stop (censored at PS).
Cached in the entry with its settings. Item 5 asks for 8 x 20 ps; an EGNN on its GFN2-xTB baseline runs about
25 ms a step for 8 replicas, so 20 ps at 4 temperatures is over an hour a model: pick PS to fit.

Each (arm, N, seed) is cached in ``--results`` (default ``benchmarks/results/learning-curves/<campaign name>``,
committed: small JSON files; the model's scores and per-frame errors per test file, the
pool's and campaign's identity, the campaign's resolved settings included): a rerun trains and evaluates only
what is missing and reprints everything; a cache made with another pool, campaign, overrides or campaign settings
(e.g. a changed default in the file) is refused. Printed: one table per test set (rows arm x N,
mean +- sample std over seeds), the paired per-seed differences loop - random and fps - random at each N (on
the same test frames), and ``learning_curves.png`` in ``--results``. Stores, models and logs go to ``--runs``
(default ``runs/learning-curves/<campaign name>``, ignored by git): a cached entry is reprinted without them.

    python benchmarks/learning_curves.py --n-labels 15 --seeds 0 --arms random fps
    python benchmarks/learning_curves.py                                   # the whole grid: hours
    python benchmarks/learning_curves.py --campaign campaigns/universal-quickstart.yaml
    python benchmarks/learning_curves.py --n-labels 30 --seeds 0 1 2 --md-ps 2     # + MD robustness, 2 ps a replica

A variant of the loop (``--set ...`` in a results directory of its own) is compared with ``--compare DIR``: the
results directory of the default grid, whose cached ``random`` and ``loop`` entries (read only, never trained) give
the paired differences variant - random and variant - default loop per seed::

    python benchmarks/learning_curves.py --arms loop --seeds 0 1 2 --n-labels 30 --runs runs/lc-md \
        --results benchmarks/results/learning-curves/quickstart-md --set schedule.bootstrap.method=md \
        --compare benchmarks/results/learning-curves/quickstart
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from lib.campaign_runs import loop_numbers, run_campaign
from lib.common import DATA, ROOT, data_file, md_first_stops
from lib.learning_curve_arms import DEFAULT_POOLS, random_order, score, sha256
from lib.learning_curves_tables import METRIC_HEADER, arm_entries, md_rows, metric_rows, paired_lines
from lib.plots import figure

DEFAULT_TESTS = [data_file("ethanol_500K_eqtest_b3lyp-svp.extxyz"), DATA / "ethanol_1000K_eqtest_b3lyp-svp.extxyz",
                 DATA / "ethanol_500K_eqfresh_b3lyp-svp.extxyz"]
DEFAULT_HOT_POOLS = [DATA / "ethanol_1000K_eqpool_b3lyp-svp.extxyz"]
ARMS = ("random", "fps", "hot", "loop")


# ------------------------------------------------------------------------------------------------ frame choice
def flat_settings(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A resolved campaign as ``{"a.b.c": value}`` (JSON values), for the result files' identity."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat_settings(value, f"{prefix}{key}."))
        else:
            value = json.loads(json.dumps(value, default=str))
            if isinstance(value, str) and value.startswith(str(ROOT) + "/"):
                value = value[len(str(ROOT)) + 1:]  # a file of this checkout: the same file in another checkout
            out[f"{prefix}{key}"] = value
    return out


def settings_differ(theirs: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """The settings both files resolve and that differ. A key only one side has (a setting added to alloop after
    the entry was made, at its default) does not count: the campaign did not change."""
    return {k: (theirs[k], ours[k]) for k in theirs.keys() & ours.keys() if theirs[k] != ours[k]}


def descriptor(frames: list) -> np.ndarray:
    """Per frame: for each element pair, the sorted inverse interatomic distances (1/A), concatenated. Every frame
    must have the same composition."""
    numbers = frames[0].numbers
    if any(sorted(a.numbers) != sorted(numbers) for a in frames):
        raise SystemExit("fps: the pool's frames differ in composition; the descriptor needs one molecule")
    rows = []
    for atoms in frames:
        z, pos = atoms.numbers, atoms.positions
        i, j = np.triu_indices(len(z), k=1)
        inv = 1.0 / np.linalg.norm(pos[i] - pos[j], axis=1)
        pair = np.stack([np.minimum(z[i], z[j]), np.maximum(z[i], z[j])], axis=1)
        keys = sorted({tuple(p) for p in pair.tolist()})
        rows.append(np.concatenate([np.sort(inv[(pair[:, 0] == a) & (pair[:, 1] == b)]) for a, b in keys]))
    return np.array(rows)


def fps_order(features: np.ndarray, seed: int) -> np.ndarray:
    """Greedy farthest-point order (max-min Euclidean distance) from a start frame drawn with ``20_000 + seed``."""
    n = len(features)
    order = [int(np.random.default_rng(20_000 + seed).integers(n))]
    dist = np.linalg.norm(features - features[order[0]], axis=1)
    for _ in range(n - 1):
        k = int(np.argmax(dist))
        order.append(k)
        dist = np.minimum(dist, np.linalg.norm(features - features[k], axis=1))
    return np.array(order)


# ---------------------------------------------------------------------------------------------------- the loop
def loop_overrides(cfg: Any, n: int) -> list[str]:
    """``--set`` items that make the campaign buy ``n`` expensive labels (see the module docstring)."""
    sch, sel = cfg.schedule, cfg.selection
    n_boot = min(sch.bootstrap.n_expensive, n)
    cycles = max(1, math.ceil((n - n_boot) / sel.max_expensive_per_cycle))
    cheap = sch.bootstrap.n_samples + cycles * sel.max_cheap_per_cycle
    if sch.max_labels.cheap is not None:
        cheap = max(cheap, sch.max_labels.cheap)
    return [f"schedule.max_labels.expensive={n}", f"schedule.bootstrap.n_expensive={n_boot}",
            f"schedule.n_cycles={cycles}", f"schedule.max_labels.cheap={cheap}", "schedule.budget_cpu_seconds=null"]


# ------------------------------------------------------------------------------------------------------- runs
def campaign_name(path: Path) -> str:
    """A campaign file's identity in a result file: its path from ``campaigns/`` on, so a cache made in another
    checkout (another absolute path) is still recognised."""
    parts = path.parts
    return "/".join(parts[parts.index("campaigns"):]) if "campaigns" in parts else path.name


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        from alloop.config import load_campaign

        self.args = args
        self.cfg = load_campaign(args.campaign, overrides=args.overrides)
        self.model = self.cfg.model.preset or "small"
        self.baseline = self.cfg.model.baseline
        self.refit = bool(self.cfg.training.final_refit)
        self.results = args.results
        self.results.mkdir(parents=True, exist_ok=True)
        self._pool: list | None = None
        self._orders: dict[tuple[str, int], np.ndarray] = {}
        self._features: np.ndarray | None = None
        settings = {k: v for k, v in self.cfg.to_dict().items() if k not in ("store", "name")}
        self.identity = {"campaign": campaign_name(args.campaign), "overrides": list(args.overrides),
                         "settings_sha256": hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest(),
                         "settings": flat_settings(settings),
                         "pool": {p.name: sha256(p) for p in args.pool},
                         "hot_pool": {p.name: sha256(p) for p in args.hot_pool if p.is_file()},
                         "train_options": list(args.train_options)}
        self._hot: list | None = None

    @property
    def pool(self) -> list:
        if self._pool is None:
            from ase.io import read

            self._pool = [a for p in self.args.pool for a in read(p, ":")]
        return self._pool

    @property
    def hot_pool(self) -> list:
        if self._hot is None:
            from ase.io import read

            self._hot = [a for p in self.args.hot_pool for a in read(p, ":")]
        return self._hot

    def frames(self, arm: str) -> list:
        return self.hot_pool if arm == "hot" else self.pool

    def order(self, arm: str, seed: int) -> np.ndarray:
        if (arm, seed) not in self._orders:
            if arm == "hot":
                self._orders[(arm, seed)] = random_order(len(self.hot_pool), seed, offset=30_000)
            elif arm == "random":
                self._orders[(arm, seed)] = random_order(len(self.pool), seed)
            else:
                if self._features is None:
                    self._features = descriptor(self.pool)
                self._orders[(arm, seed)] = fps_order(self._features, seed)
        return self._orders[(arm, seed)]

    def entry(self, arm: str, n: int, seed: int, tests: list[Path]) -> dict[str, Any]:
        """The cached result of (arm, n, seed), completed with what is missing (model, scores on new test files)."""
        path = self.results / f"{arm}-N{n}-seed{seed}.json"
        entry = json.loads(path.read_text()) if path.is_file() else {}
        if entry:
            pool = {"loop": [], "hot": ["hot_pool"]}.get(arm, ["pool", "train_options"])  # what the arm drew on
            keys = ["campaign", "overrides", *pool]
            theirs = {k: entry["identity"].get(k, [] if k == "train_options" else None) for k in keys}
            theirs["campaign"] = campaign_name(Path(theirs["campaign"] or ""))
            ours = {k: self.identity[k] for k in keys}
            old = entry["identity"].get("settings")
            changed = settings_differ(old, self.identity["settings"]) if old is not None else \
                ({} if entry["identity"]["settings_sha256"] == self.identity["settings_sha256"] else {"all": "?"})
            if theirs != ours or changed:
                theirs["settings changed"] = changed
                raise SystemExit(f"{path} was made with {theirs}, not {ours}: use another --results")
        else:
            entry = {"arm": arm, "n": n, "seed": seed, "identity": self.identity,
                     **(self.train_loop(n, seed) if arm == "loop" else self.train_picked(arm, n, seed))}
            self.save(path, entry)
        for test in tests:
            old = entry.setdefault("scores", {}).get(test.name)
            if old is None or old["sha256"] != sha256(test):
                entry["scores"][test.name] = score(Path(entry["model"]), test)
                self.save(path, entry)
            got = entry["scores"][test.name]
            print(f"  {arm:<6} N={n:<3} seed {seed} {test.name}: force MAE {got['mean']:.4f}, p95 {got['p95']:.4f}, "
                  f"max {got['max']:.4f}, top decile {got['top_decile']:.4f} eV/A", flush=True)
        if self.args.md_ps > 0:
            self.md(path, entry, arm, n, seed)
        return entry

    def md(self, path: Path, entry: dict[str, Any], arm: str, n: int, seed: int) -> None:
        """Complete the entry's MD robustness runs (``--md-*``); reuse those made with the same settings."""
        ps, replicas = self.args.md_ps, self.args.md_replicas
        for temperature in self.args.md_temperatures:
            key = f"{temperature:g}K"
            old = entry.setdefault("md", {}).get(key)
            if old is None or old["ps"] != ps or old["replicas"] != replicas or old["seed"] != seed:
                entry["md"][key] = md_first_stops(Path(entry["model"]), temperature, ps, replicas, seed,
                                                  threads=self.args.threads)
                self.save(path, entry)
            stops = np.asarray(entry["md"][key]["stops_fs"], dtype=float)
            print(f"  {arm:<6} N={n:<3} seed {seed} MD {key}: {int(np.isnan(stops).sum())} of {replicas} replicas "
                  f"ran {ps:g} ps" + (f", first stop at {np.nanmin(stops) / 1000:.2f} ps" if not np.isnan(stops).all()
                                      else ""), flush=True)

    @staticmethod
    def save(path: Path, entry: dict) -> None:
        from alloop.io import write_atomic

        write_atomic(path, json.dumps(entry, indent=1).encode())

    def train_picked(self, arm: str, n: int, seed: int) -> dict[str, Any]:
        """Train on the arm's first ``n`` pool frames, as al_vs_random.py trains its random frames."""
        from alloop.io import write_extxyz

        pool = self.frames(arm)
        if n > len(pool):
            raise SystemExit(f"{arm}: {n} frames asked of a pool of {len(pool)}")
        picked = self.order(arm, seed)[:n]
        folder = self.args.runs / f"{arm}-seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        frames = folder / f"{arm}-{n}.extxyz"
        write_extxyz(frames, [pool[i] for i in picked])
        model = folder / f"{arm}-{n}{'-refit' if self.refit else ''}.safetensors"
        init = self.cfg.model.checkpoint  # a model file the preset starts from (mace)
        cmd = [sys.executable, "-m", "alloop.cli", "train", "--expensive", str(frames), "--method", "standard",
               *(["--refit"] if self.refit else []), "--model", self.model, *(["--init", str(init)] if init else []),
               *(["--baseline", self.baseline, "--charge", str(self.cfg.system.charge), "--spin",
                  str(self.cfg.system.spin)] if self.baseline else []), "--seed", str(seed),
               "--threads", str(self.args.threads), *train_option_args(self.args.train_options), "--quiet",
               "-o", str(model)]
        print(f"  {arm} N={n} seed {seed}: training ({' '.join(cmd[3:])})", flush=True)
        cpu = children_cpu_seconds()
        subprocess.run(cmd, check=True)
        return {"model": str(model), "picked": [int(i) for i in picked], "labels": n,
                "label_cpu_s": float(sum(float(pool[i].info.get("cpu_seconds", np.nan)) for i in picked)),
                "train_cpu_s": children_cpu_seconds() - cpu}

    def train_loop(self, n: int, seed: int) -> dict[str, Any]:
        run_dir = self.args.runs / f"loop-N{n}-seed{seed}"
        overrides = [*loop_overrides(self.cfg, n), f"execution.n_workers={self.args.workers}", *self.args.overrides]
        print(f"  loop N={n} seed {seed}: {self.args.campaign.name} --set {' --set '.join(overrides)} -> {run_dir}",
              flush=True)
        wall = run_campaign(self.args.campaign, run_dir, seed, overrides, "learning_curves.json",
                            self.args.runs / "campaigns.log")
        numbers = loop_numbers(run_dir)
        if numbers["labels"] != n:
            print(f"  loop N={n} seed {seed}: the campaign bought {numbers['labels']} expensive labels, not {n}",
                  flush=True)
        return {"model": str(run_dir), "loop_overrides": overrides, "wall_s": wall, **numbers}


def train_option_args(options: list[str]) -> list[str]:
    """``alloop train`` arguments of ``--train-option`` items: ``steps=3000`` -> ``--steps 3000``."""
    out = []
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--train-option {item}: expected KEY=VALUE (an alloop train option, e.g. steps=3000)")
        out += [f"--{key.replace('_', '-')}", value]
    return out


def children_cpu_seconds() -> float:
    """User + system CPU seconds of this process's finished child processes so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------------------------------------------ output
def print_tables(entries: dict[tuple[str, int, int], dict], tests: list[Path], arms: list[str], ns: list[int],
                 seeds: list[int], md_temperatures: list[float] | None = None) -> None:
    for test in tests:
        print(f"\n{test.name}: per-frame force MAE (eV/A) -> mean, 95th percentile, max, mean over the highest-energy "
              f"decile; mean +- std over seeds")
        print("\n".join(METRIC_HEADER + metric_rows(entries, test.name, arms, ns, seeds)))
    if md_temperatures:
        print("\nMD robustness: replicas that ran the whole time (of seeds x replicas), mean ps to the first guard stop "
              "(a replica that never stopped counts its full length)")
        print("| arm | N | " + " | ".join(f"{t:g} K" for t in md_temperatures) + " |")
        print("|---|---:|" + "---:|" * len(md_temperatures))
        for row in md_rows(entries, arms, ns, seeds, md_temperatures):
            print(row)
    for other in ("loop", "fps", "hot"):
        if other in arms and "random" in arms:
            print_paired(f"{other} - random, paired per seed on the same test frames: mean of the per-frame force MAE "
                         "differences (eV/A; negative: better than random)", arm_entries(entries, other),
                         arm_entries(entries, "random"), tests, ns, seeds)


def print_paired(title: str, ours: dict[tuple[int, int], dict], theirs: dict[tuple[int, int], dict],
                 tests: list[Path], ns: list[int], seeds: list[int]) -> None:
    """Per test set and N: the mean per-frame force MAE difference ours - theirs per seed (entries keyed by (N,
    seed), scored on the same test file), and its mean +- std over the seeds."""
    print(f"\n{title}")
    print("\n".join(paired_lines(ours, theirs, [t.name for t in tests], ns, seeds)))


def print_comparison(entries: dict[tuple[str, int, int], dict], compare: Path, tests: list[Path], ns: list[int],
                     seeds: list[int]) -> None:
    """Paired per-seed differences of this run's loop against ``compare``'s cached random and loop entries."""
    for other in ("random", "loop"):
        cached = {(n, seed): compare / f"{other}-N{n}-seed{seed}.json" for n in ns for seed in seeds}
        theirs = {key: json.loads(path.read_text()) for key, path in cached.items() if path.is_file()}
        print_paired(f"this loop - {other} of {compare}, paired per seed: mean of the per-frame force MAE differences "
                     "(eV/A; negative: this loop is better)", arm_entries(entries, "loop"), theirs, tests, ns, seeds)


def curve(entries: dict[tuple[str, int, int], dict], test: Path, metric: str, arm: str,
          ns: list[int]) -> tuple[list[float], list[float], list[float]]:
    """One arm's learning curve on one test set: mean expensive labels, mean ``metric`` and its sample std over the
    seeds, for each N with entries."""
    xs, ys, es = [], [], []
    for n in ns:
        runs = [e for (a, m, _), e in entries.items() if a == arm and m == n]
        vals = [e["scores"][test.name][metric] for e in runs]
        if vals:
            xs.append(float(np.mean([e["labels"] for e in runs])))
            ys.append(float(np.mean(vals)))
            es.append(float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0)
    return xs, ys, es


def plot(entries: dict[tuple[str, int, int], dict], tests: list[Path], arms: list[str], ns: list[int],
         path: Path) -> None:
    with figure(path, 2, len(tests), (4.5 * len(tests), 7)) as axes:
        for col, test in enumerate(tests):
            for row, metric in enumerate(("mean", "top_decile")):
                ax = axes[row][col]
                for arm in arms:
                    xs, ys, es = curve(entries, test, metric, arm, ns)
                    if xs:
                        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=arm)
                ax.set_xscale("log", base=2)
                ax.set_xticks(ns, [str(n) for n in ns])
                ax.minorticks_off()
                ax.set_xlabel("expensive labels")
                ax.set_ylabel("force MAE (eV/A)" + (", top energy decile" if metric == "top_decile" else ""))
                ax.set_title(test.name.removesuffix(".extxyz"), fontsize=8)
                ax.legend(fontsize=7)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--campaign", type=Path, default=ROOT / "campaigns" / "quickstart.yaml")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--n-labels", type=int, nargs="+", default=[15, 30, 60, 120])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--runs", type=Path, default=None, help="stores and models (not committed); default "
                   "runs/learning-curves/<campaign name>")
    p.add_argument("--results", type=Path, default=None, help="the result files (committed); default "
                   "benchmarks/results/learning-curves/<campaign name>")
    p.add_argument("--test", type=Path, nargs="+", default=DEFAULT_TESTS)
    p.add_argument("--pool", type=Path, nargs="+", default=DEFAULT_POOLS)
    p.add_argument("--hot-pool", type=Path, nargs="+", default=DEFAULT_HOT_POOLS,
                   help="the hot arm's pool (make_equilibrium_sets.py --temperature 1000 --sets pool)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   help="override for the campaign (and the model the other arms train)")
    p.add_argument("--workers", type=int, default=1, help="the campaign's execution.n_workers")
    p.add_argument("--threads", type=int, default=1, help="alloop train --threads")
    p.add_argument("--train-option", dest="train_options", action="append", default=[], metavar="KEY=VALUE",
                   help="an alloop train option for the random, fps and hot arms (steps=3000: --steps 3000); "
                   "part of their entries' identity")
    p.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True,
                   help="write learning_curves.png in --results (default on)")
    p.add_argument("--md-ps", type=float, default=0.0, help="MD robustness: ps per replica (default 0: no MD)")
    p.add_argument("--md-temperatures", type=float, nargs="+", default=[300.0, 600.0, 900.0, 1200.0])
    p.add_argument("--md-replicas", type=int, default=8)
    p.add_argument("--compare", type=Path, help="results directory of the default grid: paired differences of this "
                   "run's loop against its cached random and loop entries")
    return p


def main(argv: list[str] | None = None) -> int:
    from alloop.allocator import reuse_freed_memory

    reuse_freed_memory()  # in-process training and MD, as the alloop command (docs/benchmarks.md: Memory reuse)
    p = parser()
    args = p.parse_args(argv)
    if args.md_ps < 0 or args.md_replicas < 1 or min(args.md_temperatures) <= 0:
        p.error("--md-ps must be >= 0, --md-replicas >= 1 and every --md-temperatures > 0")
    args.runs = args.runs or ROOT / "runs" / "learning-curves" / args.campaign.stem
    args.results = args.results or ROOT / "benchmarks" / "results" / "learning-curves" / args.campaign.stem
    missing = [str(f) for f in [*args.test, *args.pool, *(args.hot_pool if "hot" in args.arms else [])]
               if not f.is_file()]
    if missing:
        print(f"missing {missing}: run benchmarks/make_equilibrium_sets.py (--sets fresh / pool2 --fidelity "
              "b3lyp-svp)", file=sys.stderr)
        return 1
    bench = Bench(args)
    delta = f" on {bench.baseline}" if bench.baseline else ""
    print(f"{args.campaign.name}: model {bench.model}{delta}{', --refit' if bench.refit else ''}; "
          f"pool {[p.name for p in args.pool]}; runs {args.runs}", flush=True)
    entries = {}
    for n in sorted(args.n_labels):
        for seed in args.seeds:
            for arm in args.arms:
                entries[(arm, n, seed)] = bench.entry(arm, n, seed, args.test)
    for key, e in entries.items():
        for test in args.test:
            got = e["scores"][test.name]
            if abs(got["mean"] - got["evaluate_force_mae"]) > 1e-4:
                print(f"note: {key} {test.name}: mean per-frame MAE {got['mean']:.5f} but alloop evaluate "
                      f"{got['evaluate_force_mae']:.5f} eV/A")
    ns = sorted(args.n_labels)
    print_tables(entries, args.test, args.arms, ns, args.seeds, args.md_temperatures if args.md_ps > 0 else None)
    if args.plot:
        plot(entries, args.test, args.arms, ns, args.results / "learning_curves.png")
    if args.compare is not None and "loop" in args.arms:
        print_comparison(entries, args.compare, args.test, ns, args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
