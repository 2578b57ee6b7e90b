"""Reference conformer populations of the equilibrium sets (``make_equilibrium_sets.py``): the sampler's own MD
from a set's summary JSON, and the populations of another surface from the same frames, reweighted.

The frames of the equilibrium sets are Boltzmann samples of the sampler's surface (GFN2-xTB) at T and carry both
its energy and a target level's (B3LYP/def2-SVP), so weights w = exp(-(E_target - E_sampler) / kT) turn them into
samples of the target surface (free-energy perturbation over configurations). The uncertainty is a bootstrap over
the independent runs the frames come from (a 90 % interval); the effective sample size (sum w)^2 / sum w^2 says
how far the two ensembles overlap.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lib.common import DATA, data_file

SET_KINDS = ("eqtest", "eqpool")


def summary_path(molecule: str, temperature_K: float) -> Path:
    return DATA / f"{molecule}_{int(round(temperature_K))}K_eq_summary.json"


def sampler_populations(summary: dict[str, Any], set_name: str = "test") -> tuple[dict[str, float], int] | None:
    """The pooled populations of the first rotor over every run of set ``set_name`` (its "all runs" entry) and the
    number of runs, from a summary JSON; None when the set or its populations are absent."""
    pops = summary["sets"].get(set_name, {}).get("populations", {})
    key = next((k for k in pops if "all runs" in k), None)
    if key is None or not pops[key]:
        return None
    runs = sum(1 for k in pops if k.startswith(f"{set_name} run "))
    return next(iter(pops[key].values())), runs


def reference_populations(molecule: str, temperature_K: float) -> dict[str, float] | None:
    """The pooled H-O-C-C-type populations of the reference test-set MD, if its summary exists."""
    path = summary_path(molecule, temperature_K)
    if not path.is_file():
        return None
    found = sampler_populations(json.loads(path.read_text()))
    return found[0] if found else None


def equilibrium_pairs(molecule: str, temperature_K: float, target: str = "b3lyp-svp",
                      sampler: str = "gfn2-xtb") -> list[tuple[Path, Path]]:
    """(target file, sampler twin) of every committed ``<molecule>_<T>K_eq{test,pool}`` set that has both."""
    t = int(round(temperature_K))
    pairs = [(data_file(f"{molecule}_{t}K_{kind}_{target}.extxyz"), DATA / f"{molecule}_{t}K_{kind}_{sampler}.extxyz")
             for kind in SET_KINDS]
    return [(a, b) for a, b in pairs if a.is_file() and b.is_file()]


def _energies_and_basins(pairs: Sequence[tuple[Path, Path]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame of every pair: E_target - E_sampler (eV), the first non-symmetric rotor's basin, the run's index
    (files and info ``trajectory``); a one-line error when a pair's geometries differ."""
    from ase.io import read

    from alloop.system.conformers import find_rotors, frame_basins

    d_e, basins, runs = [], [], []
    for path, twin in pairs:
        frames, frames_s = read(path, ":"), read(twin, ":")
        if len(frames) != len(frames_s) or any(not np.allclose(a.positions, b.positions, atol=1e-6)
                                                for a, b in zip(frames, frames_s, strict=True)):
            raise ValueError(f"{path.name} and {twin.name} do not hold the same geometries")
        rotors = [r for r in find_rotors(frames[0]) if not r.symmetric][:1]
        basins.append(frame_basins(np.array([a.positions for a in frames]), rotors))
        d_e.append([a.get_potential_energy() - b.get_potential_energy() for a, b in zip(frames, frames_s, strict=True)])
        runs += [f"{path.name}:{a.info.get('trajectory', 'all')}" for a in frames]
    return np.concatenate(d_e), np.concatenate(basins), np.unique(np.array(runs), return_inverse=True)[1]


def reweighted_populations(pairs: Sequence[tuple[Path, Path]], temperature_K: float, n_boot: int = 2000,
                           seed: int = 0) -> dict[str, Any] | None:
    """Basin shares of the target surface's ensemble from the sampler's frames of ``pairs`` (target file, sampler
    twin: the same geometries), reweighted. Returns the shares, a 90 % bootstrap interval over the runs (info
    ``trajectory`` of each file), the effective sample size, the frame and run counts, and the sampler's own shares
    of the same frames; None without pairs."""
    from alloop.units import KB_EV_PER_K

    if not pairs:
        return None
    d_e, basin, run = _energies_and_basins(pairs)
    beta = 1.0 / (KB_EV_PER_K * temperature_K)

    def shares(index: np.ndarray) -> tuple[np.ndarray, float]:
        x = d_e[index]
        w = np.exp(-beta * (x - x.min()))
        b = basin[index]
        return np.array([w[b == k].sum() for k in range(3)]) / w.sum(), float(w.sum() ** 2 / (w ** 2).sum())

    point, ess = shares(np.arange(d_e.size))
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(run == r) for r in range(run.max() + 1)]
    boot = np.array([shares(np.concatenate([members[r] for r in rng.integers(len(members), size=len(members))]))[0]
                     for _ in range(n_boot)])
    low, high = np.percentile(boot, [5, 95], axis=0)
    return {"shares": point, "low": low, "high": high, "ess": ess, "frames": int(d_e.size),
            "runs": len(members), "sampler_shares": np.array([np.mean(basin == k) for k in range(3)])}
