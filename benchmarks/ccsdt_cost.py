"""Where the CPU of a CCSD(T)/cc-pVDZ energy + analytic gradient of ethanol goes, and what makes it cheaper.

The steps are the labeller's own (``alloop.labeling.pyscf_methods._coupled_cluster``), timed one by one in CPU and
wall seconds: the RHF SCF, the integral transformation (``ao2mo``), the CCSD amplitude iterations, the (T)
energy, the (T) lambda equations, and the gradient. Variants, each on the same frame(s):

- ``base``: the ``ccsdt-dz`` preset as a campaign runs it (one thread, ``max_memory_MB`` of the preset);
- ``memory``: the same with ``--memory`` MB for PySCF (its integrals held in memory instead of on disk);
- ``threads``: the same with ``--threads`` threads (a label on a free core's worth of threads);
- ``guess``: the CCSD amplitudes and the RHF density of the previous frame as the starting guesses (frames of one
  trajectory are close: the next frame of the same run, 100 fs later), counting the CCSD iterations saved;
- ``frozen-core``: the 1s orbitals of C and O frozen (a different level: its energy and forces are compared
  with the all-electron ones, never mixed with them).

Every variant but ``frozen-core`` must reproduce the base energy (1e-7 Eh) and gradient (1e-6 Eh/Bohr); the table
says so. Each variant costs about as much as one label (8-10 CPU minutes on this machine).

    python benchmarks/ccsdt_cost.py                           # base, memory, threads, guess, frozen-core
    python benchmarks/ccsdt_cost.py --variants base frozen-core --frames 2
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from lib.common import DATA

FRAMES = DATA / "ethanol_500K_ccsdttest_ccsdt-dz.extxyz"
VARIANTS = ("base", "memory", "threads", "guess", "frozen-core")


@dataclass
class Timings:
    steps: dict[str, tuple[float, float]] = field(default_factory=dict)  # step -> (CPU s, wall s)
    cc_iterations: int = 0
    energy: float = float("nan")
    gradient: np.ndarray | None = None

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        cpu, wall = time.process_time(), time.perf_counter()
        yield
        self.steps[name] = (time.process_time() - cpu, time.perf_counter() - wall)

    @property
    def cpu(self) -> float:
        return sum(c for c, _ in self.steps.values())

    @property
    def wall(self) -> float:
        return sum(w for _, w in self.steps.values())


def label(atoms, memory_mb: int, frozen: int = 0, guess: dict | None = None) -> tuple[Timings, dict]:
    """One CCSD(T) energy + gradient with per-step timings; returns them and the converged state (a guess)."""
    from pyscf import cc, gto, scf
    from pyscf.cc import ccsd_t, ccsd_t_lambda
    from pyscf.grad import ccsd_t as ccsd_t_grad

    from alloop.fidelity import load_fidelity
    from alloop.labeling.pyscf_methods import CC_CONV_TOL_NORMT

    fid = load_fidelity("ccsdt-dz")
    t = Timings()
    mol = gto.M(atom=[(s, p) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)], basis=fid.basis,
                unit="Angstrom", verbose=0, max_memory=memory_mb)
    with t.step("SCF"):
        mf = scf.RHF(mol)
        mf.conv_tol = fid.conv_tol_Eh
        mf.kernel(dm0=None if guess is None else guess["dm"])
    mycc = cc.CCSD(mf, frozen=frozen or None)
    mycc.verbose, mycc.conv_tol, mycc.conv_tol_normt, mycc.max_cycle = 0, fid.conv_tol_Eh, CC_CONV_TOL_NORMT, fid.max_cycles
    iterations = []
    mycc.callback = lambda env: iterations.append(1)
    with t.step("ao2mo"):
        eris = mycc.ao2mo()
    with t.step("CCSD"):
        mycc.kernel(eris=eris, t1=None if guess is None else guess["t1"], t2=None if guess is None else guess["t2"])
    t.cc_iterations = len(iterations)
    with t.step("(T) energy"):
        e_t = ccsd_t.kernel(mycc, eris, mycc.t1, mycc.t2, verbose=0)
    with t.step("(T) lambda"):
        conv, l1, l2 = ccsd_t_lambda.kernel(mycc, eris, mycc.t1, mycc.t2, max_cycle=fid.max_cycles, tol=CC_CONV_TOL_NORMT,
                                            verbose=0)
    with t.step("gradient"):
        grad = ccsd_t_grad.Gradients(mycc)
        grad.verbose = 0
        t.gradient = np.asarray(grad.kernel(mycc.t1, mycc.t2, l1, l2, eris=eris))
    if not (mycc.converged and conv):
        raise SystemExit("CCSD or its lambda equations did not converge")
    t.energy = float(mycc.e_tot + e_t)
    return t, {"dm": mf.make_rdm1(), "t1": mycc.t1, "t2": mycc.t2}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--frames", type=int, default=1, help="test frames timed per variant (default 1)")
    ap.add_argument("--memory", type=int, default=8000, help="MB for the 'memory' variant (default 8000)")
    ap.add_argument("--threads", type=int, default=2, help="threads for the 'threads' variant (default 2)")
    args = ap.parse_args(argv)
    from ase.io import read
    from pyscf import lib

    from alloop.fidelity import load_fidelity

    frames = read(FRAMES, ":")
    base_memory = int(load_fidelity("ccsdt-dz").max_memory_MB)
    # consecutive frames of one trajectory (the test set holds 5 per run, 100 fs apart): frame k and k + 1
    pairs = [(frames[k], frames[k + 1]) for k in range(0, 2 * args.frames, 2)]
    rows: dict[str, list[Timings]] = {}
    reference: list[Timings] = []
    for variant in ["base", *[v for v in args.variants if v != "base"]]:
        lib.num_threads(args.threads if variant == "threads" else 1)
        memory = args.memory if variant == "memory" else base_memory
        for k, (first, second) in enumerate(pairs):
            if variant == "guess":
                _, state = label(first, memory)  # the previous frame's solution (not timed: the loop has it)
                timed, _ = label(second, memory, guess=state)
            else:
                core = int(np.sum(second.numbers > 2)) if variant == "frozen-core" else 0  # a 1s orbital per C, O
                timed, _ = label(second, memory, frozen=core)
            rows.setdefault(variant, []).append(timed)
            if variant == "base":
                reference.append(timed)
            print(f"{variant} frame {k}: {timed.cpu:.0f} CPU s, {timed.wall:.0f} s wall, "
                  f"{timed.cc_iterations} CCSD iterations", flush=True)
    steps = list(reference[0].steps)
    print(f"\nCCSD(T)/cc-pVDZ energy + analytic gradient of ethanol ({len(pairs)} frame(s) of {FRAMES.name}); "
          f"CPU s per step (mean over frames)")
    print("| variant | " + " | ".join(steps)
          + " | total CPU s | wall s | CCSD iterations | dE (Eh) | max dG (Eh/Bohr) |")
    print("|---|" + "---:|" * (len(steps) + 5))
    for variant, timed in rows.items():
        cells = [f"{np.mean([t.steps[s][0] for t in timed]):.1f}" for s in steps]
        de = max(abs(t.energy - r.energy) for t, r in zip(timed, reference, strict=True))
        dg = max(float(np.abs(t.gradient - r.gradient).max()) for t, r in zip(timed, reference, strict=True))
        print(f"| {variant} | " + " | ".join(cells) + f" | {np.mean([t.cpu for t in timed]):.0f} | "
              f"{np.mean([t.wall for t in timed]):.0f} | {np.mean([t.cc_iterations for t in timed]):.0f} | {de:.1e} | "
              f"{dg:.1e} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
