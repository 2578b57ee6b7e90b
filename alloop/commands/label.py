"""``alloop label INPUT --fidelity NAME -o OUT.extxyz``: label structures with PySCF or GFN-xTB (tblite), in
parallel on Dask.

Every input frame is written to OUT in input order. A labelled frame carries
energy (eV) and forces (eV/Angstrom) as calculator results (extxyz ``energy``
and ``forces``); a frame whose label failed is written without them, so it can
never be mistaken for data, with ``label_status`` and ``label_reason`` in its
info (``--skip-failed`` leaves such frames out and reports the count). Every
frame records ``label_status``, ``fidelity``, ``fidelity_hash``,
``cpu_seconds``, ``wall_seconds``, ``scf_cycles`` and the software that computed
it (``pyscf_version``; for DFT ``libxc_version`` and ``xc_definition``; ``tblite_version`` for xTB) in its info.

Progress goes to stderr; the summary table (statuses and CPU cost) to stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import TextIO

from ase import Atoms

from alloop.errors import AlloopError, FidelityError
from alloop.io import attach_label, read_structures, write_extxyz
from alloop.labeling.provenance import to_info
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.presets import preset_names

ORDER = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "label",
        help="label structures (energy, forces) with PySCF or GFN-xTB at a fidelity preset",
        description="Label every structure of INPUT with PySCF or GFN-xTB (tblite) at one fidelity, in parallel on "
        "a Dask cluster (embedded by default), and write labelled extxyz.",
    )
    parser.add_argument("input", help="an ASE-readable structure file, or a molecule name known to ase.build.molecule")
    parser.add_argument(
        "--fidelity", required=True, metavar="NAME", help=f"fidelity preset ({', '.join(preset_names('fidelities'))})"
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT.extxyz", help="labelled structures (extxyz)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="Dask worker processes (default: cores / threads per worker; 0: label in this process)",
    )
    parser.add_argument("--threads-per-worker", type=int, default=1, metavar="T", help="compute threads per label")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS", help="use the Dask scheduler at ADDRESS")
    parser.add_argument("--charge", type=int, default=None, help="molecular charge (overrides the preset)")
    parser.add_argument("--spin", type=int, default=None, help="2S, unpaired electrons (overrides the preset)")
    parser.add_argument("--skip-failed", action="store_true", help="leave frames whose label failed out of OUT")
    parser.set_defaults(func=run)


class Progress:
    """One status line on a terminal (redrawn), or a line per 10% of the frames otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total, self.done, self.failed = total, 0, 0
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self._last_decile = -1

    def restart(self) -> None:
        """Measure rate and ETA from now (e.g. after the cluster has started)."""
        self.start = time.perf_counter()

    def line(self) -> str:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta_text = f"{eta:.0f} s" if eta == eta else "?"
        return (
            f"label: {self.done}/{self.total} frames ({self.failed} not ok) | "
            f"{rate:.3g} frames/s | elapsed {elapsed:.0f} s | ETA {eta_text}"
        )

    def update(self, result: LabelResult) -> None:
        self.done += 1
        self.failed += int(not result.ok)
        if self.tty:
            print("\r" + self.line(), end="", file=self.stream, flush=True)
            return
        decile = (10 * self.done) // max(self.total, 1)
        if decile != self._last_decile:
            self._last_decile = decile
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=self.stream, flush=True)


def summary_table(results: list[LabelResult], wall_seconds: float) -> str:
    """Markdown table: frames and CPU seconds per status, and the total."""
    counts: Counter[LabelStatus] = Counter(r.status for r in results)
    cpu: defaultdict[LabelStatus, float] = defaultdict(float)
    for r in results:
        cpu[r.status] += r.cpu_seconds
    rows = ["| status | frames | CPU s | CPU s / frame |", "|---|---:|---:|---:|"]
    for status in LabelStatus:
        if counts[status]:
            rows.append(
                f"| {status.value} | {counts[status]} | {cpu[status]:.2f} | {cpu[status] / counts[status]:.3f} |"
            )
    total_cpu = sum(cpu.values())
    n = max(len(results), 1)
    rows.append(f"| total | {len(results)} | {total_cpu:.2f} | {total_cpu / n:.3f} |")
    rows.append("")
    rows.append(f"wall time {wall_seconds:.2f} s (including cluster start-up)")
    return "\n".join(rows)


def labelled_frame(atoms: Atoms, result: LabelResult) -> Atoms:
    """The output frame: calculator results if ok, otherwise the structure with status and reason only."""
    info = {
        "label_status": result.status.value,
        "fidelity": result.fidelity_name,
        "fidelity_hash": result.fidelity_hash,
        "cpu_seconds": round(result.cpu_seconds, 4),
        "wall_seconds": round(result.wall_seconds, 4),
        "scf_cycles": result.scf_cycles,
        **to_info(result.provenance),
    }
    if result.reason:
        info["label_reason"] = result.reason
    if result.ok:
        return attach_label(atoms, result.energy_eV, result.forces_eV_per_A, info)
    out = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    out.info.update(atoms.info)
    out.info.update(info)
    return out


def run(args: argparse.Namespace) -> int:
    from alloop.fidelity import load_fidelity
    from alloop.labeling.factory import labeler_for

    output = Path(args.output)
    if not output.parent.is_dir():
        raise AlloopError(f"output folder {output.parent} does not exist")
    if args.workers is not None and args.workers < 0:
        raise AlloopError("--workers must be >= 0")
    if args.threads_per_worker < 1:
        raise AlloopError("--threads-per-worker must be >= 1")
    structures = read_structures(args.input)
    fidelity = load_fidelity(args.fidelity, charge=args.charge, spin=args.spin)
    labeler = labeler_for(fidelity, threads=args.threads_per_worker)
    for k, atoms in enumerate(structures):
        try:
            fidelity.check_periodicity(atoms.pbc, atoms.cell.array)
            fidelity.check_structure(atoms.numbers)
        except FidelityError as exc:
            raise FidelityError(f"frame {k}: {exc}") from None

    progress = Progress(len(structures))
    start = time.perf_counter()
    try:
        results = _label(structures, labeler, args, progress)
    finally:
        progress.close()
    wall = time.perf_counter() - start

    frames = [labelled_frame(a, r) for a, r in zip(structures, results, strict=True) if r.ok or not args.skip_failed]
    write_extxyz(output, frames)
    print(summary_table(results, wall))
    n_bad = sum(not r.ok for r in results)
    what = "left out" if args.skip_failed else "written without energy/forces"
    print(f"{len(frames)} frames written to {output}" + (f"; {n_bad} not ok ({what})" if n_bad else ""))
    return 0


def _label(structures: list[Atoms], labeler, args: argparse.Namespace, progress: Progress) -> list[LabelResult]:  # noqa: ANN001
    if args.workers == 0 and args.scheduler is None:
        results = []
        for atoms in structures:
            results.append(labeler.label(atoms))
            progress.update(results[-1])
        return results
    from alloop.campaign.execution.cluster import dashboard_link, open_client
    from alloop.campaign.execution.labeling_pool import label_all

    with open_client(
        n_workers=args.workers, threads_per_worker=args.threads_per_worker, address=args.scheduler
    ) as client:
        link = dashboard_link(client)
        if link:
            print(f"label: Dask dashboard at {link}", file=sys.stderr)
        progress.restart()  # rates and ETA from when the cluster is up
        items = [(str(k), a) for k, a in enumerate(structures)]
        done = label_all(
            client,
            items,
            labeler.fidelity,
            on_result=lambda _key, result: progress.update(result),
            threads_per_task=args.threads_per_worker,
        )
    return [done[str(k)] for k in range(len(structures))]
