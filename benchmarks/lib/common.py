"""What the benchmark scripts share: where the repository and its data are, the mean +- std cell, Markdown tables,
atomic pickles, per-frame force errors and MD robustness of a trained model.

The scripts import it as ``lib.common`` (see :mod:`lib`).
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from alloop.io import write_atomic

#: the repository
ROOT = Path(__file__).resolve().parents[2]
#: the committed benchmark data (labelled test sets, pools)
DATA = ROOT / "benchmarks" / "data"
#: the data the example campaigns read (the quickstarts' evaluation set); benchmarks read it too
EXAMPLES = ROOT / "examples" / "data"


def data_file(name: str) -> Path:
    """A committed data file by name: in examples/data when an example campaign reads it, else benchmarks/data."""
    return EXAMPLES / name if (EXAMPLES / name).is_file() else DATA / name


def alloop(*args: str) -> str:
    """Run ``alloop ARGS...`` in this interpreter; its standard output (a failure raises with its stderr)."""
    out = subprocess.run([sys.executable, "-m", "alloop.cli", *args], check=True, capture_output=True, text=True)
    return out.stdout


def model_args(spec: str) -> list[str]:
    """``alloop train``'s model options for a preset, or ``PRESET+BASELINE`` for a Delta model on GFN-xTB."""
    preset, _, baseline = spec.partition("+")
    return ["--model", preset, *(["--baseline", baseline] if baseline else [])]


def label_cpu(path: Path, rows: Iterable[int] | None = None) -> float:
    """The CPU seconds the labels of a labelled extxyz file cost (its frames' ``cpu_seconds``), of ``rows`` or all."""
    from ase.io import read

    frames = read(path, ":")
    chosen = frames if rows is None else [frames[i] for i in rows]
    return float(sum(float(a.info.get("cpu_seconds", np.nan)) for a in chosen))


def mean_std(values: Iterable[float], digits: int = 3, scale: float = 1.0, sign: str = "") -> str:
    """``mean ± sample std`` of ``values`` x ``scale`` with ``digits`` decimals (the mean alone for one value);
    ``sign="+"`` prints the mean's sign."""
    a = np.asarray(list(values), dtype=float) * scale
    mean = f"{a.mean():{sign}.{digits}f}"
    return f"{mean} ± {a.std(ddof=1):.{digits}f}" if a.size > 1 else mean


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], float_format: str = "{:.1f}") -> str:
    """A Markdown table; floats are formatted with ``float_format``, everything else with ``str``."""
    def cell(v: Any) -> str:
        return float_format.format(v) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])


def cached_json(path: Path, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The row a previous run wrote to ``path`` (JSON), else ``compute()``, written there first: a benchmark that
    stops resumes at its next row."""
    if path.is_file():
        return json.loads(path.read_text())
    row = compute()
    path.write_text(json.dumps(row))
    return row


def training_code_digest() -> str:
    """SHA-256 (16 hex digits) of the source of alloop's training and model code: cached models and runs are valid
    for this code only."""
    import hashlib

    import alloop.potentials
    import alloop.training

    digest = hashlib.sha256()
    for package in (alloop.training, alloop.potentials):
        for path in sorted(Path(package.__file__).parent.glob("*.py")):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def recipe_sizes(recipes: Sequence[str], known: Iterable[str], sizes: str) -> list[int]:
    """The training sizes of the recipe benchmarks (``--n``, comma-separated), after refusing (SystemExit) a recipe
    not in ``known`` and a size outside 5..100 (frames 100-149 of each data order are the selection set)."""
    known = list(known)
    unknown = [r for r in recipes if r not in known]
    if unknown:
        raise SystemExit(f"unknown recipe(s) {unknown}; known: {', '.join(known)}")
    values = [int(n) for n in sizes.split(",")]
    if any(not 5 <= n <= 100 for n in values):
        raise SystemExit("--n must be within 5..100 (frames 100-149 of each order are the selection set)")
    return values


def atomic_pickle(path: Path, obj: Any) -> None:
    """Pickle ``obj`` to ``path`` atomically (:func:`alloop.io.write_atomic`: a killed run leaves no half file)."""
    write_atomic(path, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def cpu_seconds() -> float:
    """CPU seconds (user + system) this process has used so far."""
    import psutil

    times = psutil.Process().cpu_times()
    return times.user + times.system


def load_pickle(path: Path) -> Any:
    with path.open("rb") as fh:
        return pickle.load(fh)


def target_ensemble_weights(test: Path, temperature_K: float, baseline_level: str = "gfn2-xtb") -> np.ndarray | None:
    """Weights that carry a test set of GFN2-xTB-driven MD frames (``..._<level>.extxyz``, labelled at the target
    level) over to the target level's own Boltzmann ensemble: w ~ exp(-(E_target - E_xTB) / kT), normalised.
    None when the set has no ``_<baseline_level>`` companion file with the same frames."""
    from ase.io import read

    from alloop.units import KB_EV_PER_K

    stem, _, level = test.stem.rpartition("_")
    companion = test.with_name(f"{stem}_{baseline_level}{test.suffix}")
    if not companion.is_file() or level == baseline_level:
        return None
    target, base = read(test, ":"), read(companion, ":")
    if len(target) != len(base) or any(not np.allclose(a.positions, b.positions) for a, b in zip(target, base, strict=True)):
        return None
    delta = np.array([a.get_potential_energy() - b.get_potential_energy() for a, b in zip(target, base, strict=True)])
    log_w = -(delta - delta.mean()) / (KB_EV_PER_K * temperature_K)
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def per_frame_force_mae(model_path: Path, test: Path, version: int | None = None) -> np.ndarray:
    """Each frame's force MAE (eV/A) of a model file or campaign run directory (checkpoint ``version``, default
    the newest model) on a labelled extxyz file."""
    from ase.io import read

    from alloop.deploy.loading import load_trained

    model = load_trained(model_path, version=version, fidelity=None).model.eval()
    return frame_force_maes(model, read(test, ":"))


def frame_error_summary(per_frame: np.ndarray, energy: np.ndarray) -> dict[str, Any]:
    """A set's per-frame force MAE (eV/A) and its mean, 95th percentile, max and mean over the highest-energy decile
    (the ceil(n/10) frames with the highest reference ``energy``; meaningful for a file of one molecule)."""
    top = np.argsort(energy)[-max(1, -(-len(per_frame) // 10)):]
    return {"per_frame": per_frame.tolist(), "mean": float(per_frame.mean()), "p95": float(np.percentile(per_frame, 95)),
            "max": float(per_frame.max()), "top_decile": float(per_frame[top].mean())}


def frame_force_maes(model: Any, frames: list) -> np.ndarray:
    """Each labelled frame's force MAE (eV/A) of a model (an alloop Potential, in memory)."""
    from alloop.potentials.inference import predict

    _, forces = predict(model, frames)
    reference = np.concatenate([a.get_forces() for a in frames])
    sizes = np.cumsum([0] + [len(a) for a in frames])
    error = np.abs(forces - reference)
    return np.array([error[sizes[k]:sizes[k + 1]].mean() for k in range(len(frames))])


def md_first_stops(model_path: Path, temperature_K: float, ps: float, replicas: int, seed: int,
                   threads: int = 1) -> dict[str, Any]:
    """MD robustness of a model file or campaign run directory on ethanol: ``replicas`` Langevin replicas (alloop's
    batched MD, 0.5 fs, friction 0.01/fs) from the trans rotamer at ``temperature_K`` for ``ps`` ps, under the
    campaigns' default guards (a bond beyond 1.5x its start, two atoms closer than 0.7 A, above 3x the
    temperature). ``stops_fs``: each replica's first guard stop (fs; NaN if it ran the whole time). ``threads``:
    torch's (its default, every core, is slower than one on a machine shared with other jobs)."""
    import torch
    from ase.build import molecule

    from alloop.deploy.loading import load_trained
    from alloop.md import MDSettings, StabilityGuards, init_replicas, run_segment

    torch.set_num_threads(threads)
    model = load_trained(model_path, fidelity=None).model.eval()
    atoms = molecule("CH3CH2OH")
    settings = MDSettings(temperature_K=temperature_K, timestep_fs=0.5, friction_per_fs=0.01)
    guards = StabilityGuards.from_atoms(atoms, max_bond_stretch=1.5, min_distance_A=0.7,
                                        max_temperature_K=3 * temperature_K)
    states = init_replicas(atoms, replicas, temperature_K, seed=seed)
    steps = int(round(ps * 1000 / settings.timestep_fs))
    baseline = getattr(model, "baseline", None)
    base0 = baseline.seconds if baseline is not None else 0.0
    result = run_segment(model, atoms, states, steps, settings, record_every=steps, guards=guards)
    stops = [float("nan") if reason is None else float(state.step) * settings.timestep_fs
             for reason, state in zip(result.stop_reasons, result.final_states, strict=True)]
    return {"stops_fs": stops, "ps": ps, "replicas": replicas, "seed": seed, "wall_s": result.total_seconds,
            "baseline_share": ((baseline.seconds - base0) / result.total_seconds) if baseline is not None else 0.0}
