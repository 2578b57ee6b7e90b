"""XTBLabeler: energy (eV) and forces (eV/Angstrom) of a molecule or a 3D-periodic cell at GFN1- or GFN2-xTB,
through tblite.

tblite's Python API (``tblite.interface.Calculator``) is called directly, not
through its ASE calculator: a fresh calculator per label (no wavefunction
carried over from a previous frame, so a result depends only on structure,
fidelity and threads), positions in Bohr, energy in Hartree and gradient in
Hartree/Bohr, converted here with the constants of ``alloop.units`` (ASE's, as
``tblite.ase`` uses). Charge and spin (2S = unpaired electrons, tblite's
``uhf``) come from the fidelity; so do tblite's accuracy, the electronic
temperature and the SCC iteration limit (``max_cycles``). A structure periodic
in all three directions is passed with its lattice (tblite's Ewald sums and
periodic images); slabs and wires are refused.

Along an MD trajectory (a Delta model's baseline, :meth:`XTBLabeler.label_warm`) a calculator is kept per slot
(a replica's place in the batch) and moved to each new geometry, its SCC started from the previous step's
wavefunction: the same converged answer within tblite's accuracy, in fewer SCC cycles and without rebuilding the
basis (ethanol GFN2-xTB: about 2.0 -> 1.2 ms). A failed warm step is recomputed from scratch before it counts as a
failure. Labels themselves are never warm.

tblite parallelises with OpenMP: every label pins the OpenMP runtimes of this
thread to ``threads`` (default 1, one thread per task). Left unpinned on a busy
machine, an ethanol label measured 1.5 s instead of 1.5 ms.

Statuses (see ``alloop.labeling.result``):

- ``ok``: the SCC converged and the label passes ``alloop.labeling.sanity``;
- ``scf_not_converged``: tblite's "SCF not converged in N cycles";
- ``failed``: any other error tblite raises (atoms too close, a failed
  eigensolver, ...), with its message as the reason;
- ``inconsistent``: non-finite numbers, absurd forces or a net force.

Raised, not recorded: a non-Atoms argument (TypeError), a slab or wire, or a
structure the fidelity cannot describe (FidelityError: elements beyond Rn, charge,
spin), a fidelity that is not of family xtb (FidelityError, at construction).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from alloop.errors import FidelityError
from alloop.fidelity import XTB_METHODS, Fidelity
from alloop.labeling.common import FidelityLabeler, Outcome, label_with, structure_numbers
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.labeling.threads import set_openmp_threads
from alloop.units import BOHR_TO_ANGSTROM, HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM, HARTREE_TO_EV, KB_EV_PER_K

#: errors tblite raises for a structure it cannot compute (its own classes derive from these)
TBLITE_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, ValueError, ArithmeticError, MemoryError)
_NOT_CONVERGED = "SCF not converged"


class XTBLabeler(FidelityLabeler):
    """Labels molecules and 3D cells with tblite at an xtb ``fidelity`` using ``threads`` OpenMP threads."""

    def check_family(self, fidelity: Fidelity) -> None:
        if fidelity.family != "xtb":
            raise FidelityError(f"fidelity '{fidelity.name}' is of family {fidelity.family}, not xtb")

    def label(self, atoms: Atoms) -> LabelResult:
        """Energy and forces of ``atoms`` (not modified), or the reason there are none."""
        numbers, positions_bohr, lattice_bohr = self._inputs(atoms)
        return label_with(lambda: self._compute(numbers, positions_bohr, lattice_bohr), len(numbers), self._fidelity,
                          self.limits)

    def label_warm(self, atoms: Atoms, warm: WarmStates, slot: int) -> LabelResult:
        """:meth:`label`, continuing the calculator and wavefunction ``warm`` keeps for ``slot`` when it holds the
        same atoms (and cell shape); a failed warm step is recomputed from scratch."""
        numbers, positions_bohr, lattice_bohr = self._inputs(atoms)

        def compute() -> Outcome:
            state = warm.get(slot)
            if state is not None and state.fits(numbers, lattice_bohr):
                outcome = state.step(positions_bohr, lattice_bohr)
                if outcome.status is LabelStatus.OK:
                    return outcome
            state = _WarmState(numbers, lattice_bohr, self._fidelity)
            warm[slot] = state
            outcome = state.step(positions_bohr, lattice_bohr)
            if outcome.status is not LabelStatus.OK:
                del warm[slot]
            return outcome

        return label_with(compute, len(numbers), self._fidelity, self.limits)

    def _inputs(self, atoms: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The atomic numbers, positions and lattice (Bohr; None for a molecule) tblite takes, with this thread's
        OpenMP runtimes pinned to :attr:`threads`."""
        numbers = structure_numbers(atoms, self._fidelity)  # a molecule, or a 3D cell (tblite handles both)
        positions_bohr = np.array(atoms.positions, dtype=float) / BOHR_TO_ANGSTROM
        lattice_bohr = np.array(atoms.cell.array, dtype=float) / BOHR_TO_ANGSTROM if atoms.pbc.any() else None
        import tblite.interface  # noqa: F401  (loads tblite's OpenMP runtime before it is pinned)

        set_openmp_threads(self.threads)
        return numbers, positions_bohr, lattice_bohr

    def _compute(self, numbers: np.ndarray, positions_bohr: np.ndarray, lattice_bohr: np.ndarray | None) -> Outcome:
        return _WarmState(numbers, lattice_bohr, self._fidelity).step(positions_bohr, lattice_bohr)


class _WarmState:
    """A tblite calculator for one structure's atoms and the result of its last step (the next step's restart)."""

    def __init__(self, numbers: np.ndarray, lattice_bohr: np.ndarray | None, fidelity: Fidelity) -> None:
        self.numbers, self.periodic, self.fidelity = numbers.copy(), lattice_bohr is not None, fidelity
        self.log = _CycleCounter()
        self.calc: Any = None
        self.result: Any = None

    def fits(self, numbers: np.ndarray, lattice_bohr: np.ndarray | None) -> bool:
        return self.periodic == (lattice_bohr is not None) and np.array_equal(self.numbers, numbers)

    def step(self, positions_bohr: np.ndarray, lattice_bohr: np.ndarray | None) -> Outcome:
        """Energy and forces at these positions (the first step builds the calculator, later ones restart)."""
        fid, log = self.fidelity, self.log
        log.cycles = 0
        try:
            if self.calc is None:
                self.calc = _calculator(self.numbers, positions_bohr, lattice_bohr, fid, log)
            else:
                self.calc.update(positions_bohr, lattice_bohr)
            self.result = self.calc.singlepoint(self.result) if self.result is not None else self.calc.singlepoint()
            energy_Eh = float(self.result.get("energy"))
            gradient = np.asarray(self.result.get("gradient"), dtype=float)
        except TBLITE_ERRORS as exc:
            self.calc = self.result = None
            text = " ".join(str(exc).split())[:300]
            if text.startswith(_NOT_CONVERGED):
                return Outcome(LabelStatus.SCF_NOT_CONVERGED, f"tblite: {text}", log.cycles)
            return Outcome(LabelStatus.FAILED, f"tblite {type(exc).__name__}: {text}", log.cycles)
        forces = -gradient.reshape(len(self.numbers), 3) * HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM
        return Outcome(LabelStatus.OK, "", log.cycles, energy_Eh * HARTREE_TO_EV, forces)


#: warm tblite states of a trajectory's structures, by slot (:meth:`XTBLabeler.label_warm`)
WarmStates = dict[int, _WarmState]


def _calculator(numbers: np.ndarray, positions_bohr: np.ndarray, lattice_bohr: np.ndarray | None, fid: Fidelity,
                log: _CycleCounter) -> Any:
    """A tblite calculator of ``fid``'s method and settings, logging its SCC cycles to ``log`` (printing nothing)."""
    from tblite.interface import Calculator

    periodic = None if lattice_bohr is None else np.ones(3, dtype=bool)
    calc = Calculator(XTB_METHODS[fid.method], numbers, positions_bohr, float(fid.charge), int(fid.spin),
                      lattice=lattice_bohr, periodic=periodic, color=False, logger=log)
    calc.set("verbosity", 1)  # one line per SCC cycle, counted by the logger; nothing printed
    calc.set("accuracy", float(fid.accuracy or 1.0))
    calc.set("temperature", float(fid.electronic_temperature_K or 0.0) * KB_EV_PER_K / HARTREE_TO_EV)
    calc.set("max-iter", int(fid.max_cycles))
    return calc


class _CycleCounter:
    """tblite's logger: counts the lines of its SCC table (each starts with the cycle number), prints nothing."""

    def __init__(self) -> None:
        self.cycles = 0

    def __call__(self, message: str) -> None:
        first = message.split(maxsplit=1)[:1]
        if first and first[0].isdigit():
            self.cycles += 1
