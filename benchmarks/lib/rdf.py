"""Radial distribution functions of periodic MD frames, their RMS difference, and the reference MD's runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read
from ase.neighborlist import neighbor_list


def pair_rdf(frames: list[Atoms], pair: tuple[int, int], r_max: float, bin_A: float,
             tags: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and the g(r) of element ``pair`` (atomic numbers) pooled over ``frames`` (every periodic image
    within ``r_max``); with ``tags`` (a molecule number per atom) only pairs of different molecules count."""
    edges = np.arange(0.0, r_max + bin_A / 2, bin_A)
    counts = np.zeros(len(edges) - 1)
    first, second = pair
    n_a = n_b = volume = 0
    for atoms in frames:
        i, j, d = neighbor_list("ijd", atoms, r_max)
        keep = (atoms.numbers[i] == first) & (atoms.numbers[j] == second)
        if tags is not None:
            keep &= tags[i] != tags[j]
        counts += np.histogram(d[keep], bins=edges)[0]
        n_a, n_b, volume = int(np.sum(atoms.numbers == first)), int(np.sum(atoms.numbers == second)), atoms.get_volume()
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = counts / (len(frames) * n_a * (n_b / volume) * shell)  # counts i -> j from every first-element atom i
    return (edges[1:] + edges[:-1]) / 2, g


def parse_pair(text: str) -> tuple[int, int]:
    from ase.data import atomic_numbers

    try:
        first, second = text.split("-")
        return atomic_numbers[first], atomic_numbers[second]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"{text!r}: an element pair such as O-O or Cl-H") from None


def rms(g: np.ndarray, g_ref: np.ndarray, r: np.ndarray, r_from: float) -> float:
    keep = r >= r_from
    return float(np.sqrt(np.mean((g[keep] - g_ref[keep]) ** 2)))


def reference_runs(path: Path) -> list[list[Atoms]]:
    """The reference trajectory split into its independent runs (frame counts from the summary file)."""
    frames = read(path, ":")
    summary = path.with_name(path.name.split("_eqtraj_")[0] + "_eq_summary.json")
    counts = [run["frames"] for run in json.loads(summary.read_text())["runs"]] if summary.is_file() else [len(frames)]
    out, start = [], 0
    for n in counts:
        out.append(frames[start:start + n])
        start += n
    return out
