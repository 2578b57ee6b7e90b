"""Torsional conformers of a molecule: its rotors, their dihedrals and basins, and a set of rotated starts.

A *rotor* is a single bond between two atoms bonded to something else, whose
rotation changes the structure. Not rotors: bonds in a ring, bonds in a
quasi-ring closed by an intramolecular hydrogen bond (:func:`hydrogen_bonds`,
e.g. malonaldehyde's O-H...O ring), double and triple bonds
(:func:`multiple_bonds`: judged from valence and length), and bonds whose
dihedral is undefined on a side (every neighbour collinear with the bond). A
side made of three identical terminal atoms (a methyl, CF3) is a symmetric
rotor, whose 120 deg rotations only relabel atoms; such rotors are listed but
never rotated and have no basins. A rotor's dihedral a-b-c-d takes, on each side, the neighbour
with the highest atomic number (lowest index on ties), so ethanol's rotors are
H-O-C-C (trans / gauche+ / gauche-) and the methyl's H-C-C-O.

Basins are the three 120 deg sectors of a dihedral: ``trans`` (|phi| > 120),
``gauche+`` (0 < phi <= 120) and ``gauche-`` (-120 <= phi <= 0). Everything
works on ASE ``Atoms`` in Angstrom and degrees; bonds come from ASE's natural
covalent cut-offs, so only molecules (no periodic cell) are handled.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import covalent_radii

BASINS = ("trans", "gauche+", "gauche-")
#: the usual number of bonds of an element (neutral, not hypervalent): an atom with fewer neighbours is unsaturated
VALENCE = {1: 1, 5: 3, 6: 4, 7: 3, 8: 2, 9: 1, 14: 4, 15: 3, 16: 2, 17: 1, 35: 1, 53: 1}
#: a multiple bond is at most this fraction of the single-bond length (the sum of the covalent radii): C=C 1.34 A is
#: 0.88 of 1.52, C=O 1.21 A 0.85 of 1.42, the conjugated single bond C-C 1.45 A 0.95
MULTIPLE_BOND_RATIO = 0.97
#: hydrogen bond X-H...Y (X, Y in N, O, F) closing a quasi-ring: H...Y at most this long (A), angle X-H...Y at least
HYDROGEN_BOND_A, HYDROGEN_BOND_ANGLE_DEG = 2.3, 120.0
#: a neighbour whose angle with the bond exceeds this is collinear: it cannot define a dihedral
COLLINEAR_DEG = 170.0
_HBOND_ELEMENTS = (7, 8, 9)


@dataclass(frozen=True)
class Rotor:
    """A rotatable bond b-c, the dihedral a-b-c-d that measures it, and the atoms that move with c."""

    dihedral: tuple[int, int, int, int]
    moving: tuple[int, ...]
    symmetric: bool

    @property
    def label(self) -> str:
        return "-".join(str(i) for i in self.dihedral)

    def name(self, atoms: Atoms) -> str:
        """The dihedral in element symbols, e.g. ``H-O-C-C``."""
        symbols = atoms.get_chemical_symbols()
        return "-".join(symbols[i] for i in self.dihedral)


def bonds(atoms: Atoms, scale: float = 1.2) -> list[set[int]]:
    """Each atom's bonded neighbours: atoms closer than the sum of their covalent radii x ``scale`` (ASE's natural
    cut-offs and neighbour list on a molecule, computed here from all distances: ``ase.neighborlist`` imports
    scipy, a second of ``alloop status``)."""
    if atoms.pbc.any():
        raise ValueError("conformers: only molecules (no periodic cell) have torsional rotors here")
    radii = covalent_radii[atoms.numbers] * scale
    positions = atoms.positions
    out: list[set[int]] = [set() for _ in range(len(atoms))]
    for i in range(len(atoms)):  # row by row: memory linear in the atoms
        delta = positions - positions[i]
        near = np.sqrt(np.sum(delta * delta, axis=1)) < radii + radii[i]
        near[i] = False
        out[i].update(np.flatnonzero(near).tolist())
    return out


def _side(graph: list[set[int]], start: int, cut_from: int) -> set[int] | None:
    """Atoms reachable from ``start`` without crossing the bond to ``cut_from``; None if the bond is in a ring."""
    seen, todo = {start}, [start]
    while todo:
        atom = todo.pop()
        for other in graph[atom]:
            if atom == start and other == cut_from:
                continue
            if other == cut_from:
                return None
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


def _heaviest(numbers: np.ndarray, candidates: Sequence[int]) -> int:
    return min(candidates, key=lambda i: (-int(numbers[i]), i))


def _is_symmetric_top(numbers: np.ndarray, graph: list[set[int]], atom: int, partner: int) -> bool:
    others = [o for o in graph[atom] if o != partner]
    return len(others) == 3 and len({int(numbers[o]) for o in others}) == 1 and all(len(graph[o]) == 1 for o in others)


def multiple_bonds(atoms: Atoms, graph: list[set[int]]) -> set[frozenset[int]]:
    """The double and triple bonds: each unsaturated atom (fewer neighbours than its :data:`VALENCE`) gives its
    missing bonds to unsaturated neighbours, shortest bond first (relative to the sum of the covalent radii), where
    the bond is shorter than :data:`MULTIPLE_BOND_RATIO` x that sum. Malonaldehyde's enol: C=O and C=C, its C-C and
    C-O(H) stay single."""
    numbers, d = atoms.numbers, atoms.get_all_distances()
    missing = [VALENCE.get(int(z), 0) - len(graph[i]) for i, z in enumerate(numbers)]
    candidates = []
    for i in range(len(atoms)):
        for j in graph[i]:
            ratio = d[i, j] / (covalent_radii[numbers[i]] + covalent_radii[numbers[j]])
            if i < j and missing[i] > 0 and missing[j] > 0 and ratio < MULTIPLE_BOND_RATIO:
                candidates.append((ratio, i, j))
    out = set()
    for _, i, j in sorted(candidates):
        while missing[i] > 0 and missing[j] > 0:
            missing[i] -= 1
            missing[j] -= 1
            out.add(frozenset((i, j)))
    return out


def hydrogen_bonds(atoms: Atoms, graph: list[set[int]]) -> list[tuple[int, int]]:
    """Intramolecular hydrogen bonds (H, acceptor): H bonded to N, O or F and an N, O or F it is not bonded to, within
    :data:`HYDROGEN_BOND_A` at an angle donor-H...acceptor of at least :data:`HYDROGEN_BOND_ANGLE_DEG`."""
    numbers, d = atoms.numbers, atoms.get_all_distances()
    out = []
    for h in np.flatnonzero(numbers == 1).tolist():
        donors = [x for x in graph[h] if numbers[x] in _HBOND_ELEMENTS]
        for y in np.flatnonzero(np.isin(numbers, _HBOND_ELEMENTS)).tolist():
            if y in graph[h] or d[h, y] > HYDROGEN_BOND_A:
                continue
            if any(atoms.get_angle(x, h, y) >= HYDROGEN_BOND_ANGLE_DEG for x in donors):
                out.append((h, y))
    return out


def _defining(atoms: Atoms, graph: list[set[int]], atom: int, partner: int) -> list[int]:
    """The neighbours of ``atom`` other than ``partner`` that are not collinear with the bond: they define a
    dihedral about it."""
    return [o for o in graph[atom] if o != partner and atoms.get_angle(o, atom, partner) < COLLINEAR_DEG]


def find_rotors(atoms: Atoms) -> list[Rotor]:
    """The molecule's rotatable bonds, each once, in order of their atom indices."""
    graph, numbers = bonds(atoms), atoms.numbers
    closed = [set(g) for g in graph]  # the bonds and the hydrogen bonds: its rings include the quasi-rings
    for h, y in hydrogen_bonds(atoms, graph):
        closed[h].add(y)
        closed[y].add(h)
    multiple = multiple_bonds(atoms, graph)
    rotors = []
    for b in range(len(atoms)):
        for c in sorted(graph[b]):
            if c <= b or len(graph[b]) < 2 or len(graph[c]) < 2 or frozenset((b, c)) in multiple:
                continue
            side_c = _side(graph, c, b)
            if side_c is None or _side(closed, c, b) is None:
                continue  # in a ring, or in a quasi-ring closed by a hydrogen bond
            side_b = set(range(len(atoms))) - side_c
            symmetric = _is_symmetric_top(numbers, graph, b, c) or _is_symmetric_top(numbers, graph, c, b)
            # the side that moves is the smaller one; the dihedral runs from the fixed side to the moving one
            if len(side_b) < len(side_c):
                b_, c_, moving = c, b, side_b
            else:
                b_, c_, moving = b, c, side_c
            ends_b, ends_c = _defining(atoms, graph, b_, c_), _defining(atoms, graph, c_, b_)
            if not ends_b or not ends_c:
                continue  # a collinear side: the dihedral measures nothing
            rotors.append(Rotor((_heaviest(numbers, ends_b), b_, c_, _heaviest(numbers, ends_c)),
                                tuple(sorted(moving)), symmetric))
    return rotors


def dihedrals(positions: np.ndarray, rotors: Sequence[Rotor]) -> np.ndarray:
    """Dihedral angles in degrees (-180, 180] of every rotor, for one frame [n, 3] or many [f, n, 3]."""
    pos = np.asarray(positions, dtype=float)
    single = pos.ndim == 2
    pos = pos[None] if single else pos
    out = np.zeros((len(pos), len(rotors)))
    for k, rotor in enumerate(rotors):
        a, b, c, d = (pos[:, i] for i in rotor.dihedral)
        b0, b1, b2 = a - b, c - b, d - c
        b1n = b1 / np.linalg.norm(b1, axis=1, keepdims=True)
        v = b0 - np.sum(b0 * b1n, axis=1, keepdims=True) * b1n
        w = b2 - np.sum(b2 * b1n, axis=1, keepdims=True) * b1n
        x = np.sum(v * w, axis=1)
        y = np.sum(np.cross(b1n, v) * w, axis=1)
        out[:, k] = np.degrees(np.arctan2(y, x))
    return out[0] if single else out


def basin_index(phi_deg: np.ndarray) -> np.ndarray:
    """0 trans (|phi| > 120), 1 gauche+ (0 < phi <= 120), 2 gauche- (-120 <= phi <= 0)."""
    phi = np.asarray(phi_deg, dtype=float)
    return np.where(np.abs(phi) > 120.0, 0, np.where(phi > 0.0, 1, 2))


def basin_populations(frames_positions: np.ndarray, rotors: Sequence[Rotor]) -> dict[str, dict[str, float]]:
    """For every non-symmetric rotor (by its label), the share of frames in each basin."""
    return basin_shares(dihedrals(np.asarray(frames_positions), rotors), rotors)


def basin_shares(phi_deg: np.ndarray, rotors: Sequence[Rotor]) -> dict[str, dict[str, float]]:
    """:func:`basin_populations` from dihedrals already measured, [frames, rotors] degrees."""
    phi = np.asarray(phi_deg, dtype=float)
    if phi.ndim == 1:
        phi = phi[None]
    out: dict[str, dict[str, float]] = {}
    for k, rotor in enumerate(rotors):
        if rotor.symmetric:
            continue
        idx = basin_index(phi[:, k])
        out[rotor.label] = {name: float(np.mean(idx == j)) for j, name in enumerate(BASINS)}
    return out


def frame_basins(frames_positions: np.ndarray, rotors: Sequence[Rotor]) -> np.ndarray:
    """Each frame's basin combination as one integer (base 3 over the non-symmetric rotors; 0 for none)."""
    active = [r for r in rotors if not r.symmetric]
    pos = np.asarray(frames_positions)
    n = len(pos)
    if not active:
        return np.zeros(n, dtype=int)
    idx = basin_index(dihedrals(pos, active).reshape(n, len(active)))
    return (idx * (3 ** np.arange(len(active)))[None, :]).sum(axis=1).astype(int)


def basin_name(code: int, n_active: int) -> str:
    """The basin combination of :func:`frame_basins` as names, e.g. ``trans/gauche+``."""
    if n_active == 0:
        return "all"
    return "/".join(BASINS[(code // 3**k) % 3] for k in range(n_active))


def rotate(atoms: Atoms, rotor: Rotor, angle_deg: float) -> Atoms:
    """A copy of ``atoms`` with the rotor's moving side turned by ``angle_deg`` about the bond b-c."""
    _, b, c, _ = rotor.dihedral
    out = atoms.copy()
    pos = out.positions
    axis = pos[c] - pos[b]
    axis /= np.linalg.norm(axis)
    theta = np.radians(angle_deg)
    moving = np.array(rotor.moving)
    rel = pos[moving] - pos[c]
    # Rodrigues' rotation formula
    rot = (rel * np.cos(theta) + np.cross(axis, rel) * np.sin(theta)
           + np.outer(rel @ axis, axis) * (1.0 - np.cos(theta)))
    pos[moving] = pos[c] + rot
    out.positions = pos
    return out


def _clashes(atoms: Atoms, graph: list[set[int]], factor: float = 0.75) -> bool:
    """Whether two atoms more than two bonds apart are closer than ``factor`` x the sum of covalent radii."""
    radii = covalent_radii[atoms.numbers]  # ASE's natural cut-offs
    dist = atoms.get_all_distances()
    n = len(atoms)
    for i in range(n):
        near = graph[i] | {k for j in graph[i] for k in graph[j]}
        for j in range(i + 1, n):
            if j not in near and dist[i, j] < factor * (radii[i] + radii[j]):
                return True
    return False


def conformer_starts(atoms: Atoms, max_conformers: int = 9) -> list[Atoms]:
    """The input and its rotamers: every non-symmetric rotor turned by 0, 120 and 240 deg, all combinations.

    The first structure is ``atoms`` itself; combinations that put non-bonded atoms on top of each other are
    dropped; at most ``max_conformers`` are returned, evenly spread over the combinations. The rotamers are not
    relaxed: they are starting points for MD and the centres of bootstrap samples.
    """
    if max_conformers < 1:
        raise ValueError("max_conformers must be >= 1")
    active = [r for r in find_rotors(atoms) if not r.symmetric]
    graph = bonds(atoms)
    out: list[Atoms] = []
    for turns in itertools.product((0.0, 120.0, 240.0), repeat=len(active)):
        conf = atoms.copy()
        for rotor, angle in zip(active, turns, strict=True):
            if angle:
                conf = rotate(conf, rotor, angle)
        if not any(turns) or not _clashes(conf, graph):
            out.append(conf)
    if len(out) > max_conformers:
        keep = np.unique(np.round(np.linspace(0, len(out) - 1, max_conformers)).astype(int))
        out = [out[i] for i in keep]
    return out
