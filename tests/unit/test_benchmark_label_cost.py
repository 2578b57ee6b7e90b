"""The label-cost tables (``benchmarks/lib/label_cost_table.py``, ``periodic_label_table.py``) from tiny synthetic
result files, and the run record their scripts write (``benchmarks/lib/run_record.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the scripts' own layout: benchmarks/ on sys.path, lib.* importable

from lib.label_cost_table import label_bench_lines, per_label_lines, throughput_lines  # noqa: E402
from lib.periodic_label_table import box_cell, periodic_label_lines  # noqa: E402
from lib.run_record import finish_record, start_record  # noqa: E402


def _label(molecule: str, threads: int, wall: float, cpu: float, status: str = "ok") -> dict:
    return {"molecule": molecule, "atoms": 9, "basis_functions": 57, "preset": "b3lyp-svp", "threads": threads,
            "status": status, "wall_s": wall, "cpu_s": cpu}


def test_a_molecule_and_preset_is_one_row_with_each_thread_count_and_the_speed_up() -> None:
    skipped = {**_label("aspirin", 2, 0, 0), "status": "skipped", "estimate_s": 1234.5}
    del skipped["wall_s"], skipped["cpu_s"]
    result = {"per_label": [_label("ethanol", 1, 10.0, 9.9), _label("aspirin", 1, 200.0, 198.0, "scf_not_converged"),
                            _label("ethanol", 2, 8.0, 15.2), skipped]}
    lines = per_label_lines(result)
    assert "wall s (1 / 2 threads)" in lines[0] and "speed-up, 2 vs 1 threads" in lines[0]
    assert lines[2] == "| ethanol | 9 | 57 | b3lyp-svp | 10 / 8 | 9.9 / 15.2 | 0.99 / 1.90 | 1.25 |"
    assert lines[3] == ("| aspirin | 9 | 57 | b3lyp-svp | 200 (scf_not_converged) / skipped (est. 1.23e+03 s) | "
                        "198 (scf_not_converged) / skipped (est. 1.23e+03 s) | 0.99 (scf_not_converged) / "
                        "skipped (est. 1.23e+03 s) | - |")


def test_one_thread_count_has_no_speed_up() -> None:
    lines = per_label_lines({"per_label": [_label("water", 1, 0.5, 0.5)]})
    assert "wall s (1 thread)" in lines[0]
    assert lines[2].endswith("| 0.5 | 0.5 | 1.00 | - |")


def test_throughput_is_speed_up_on_the_serial_run_and_core_utilisation() -> None:
    runs = [{"mode": "serial (in-process)", "cores": 1, "wall_s": 40.0, "cpu_s": 40.0, "labels": 4, "not_ok": 0},
            {"mode": "Dask, 2 workers", "cores": 2, "wall_s": 25.0, "cpu_s": 45.0, "labels": 4, "not_ok": 1}]
    result = {"mode": "quick", "per_label": [_label("water", 1, 0.5, 0.5)], "cores": 2,
              "load_average": {"start": 2.5, "end": 3.0},
              "throughput": {"molecule": "ethanol", "preset": "b3lyp-svp", "frames": 4, "threads_per_label": 1,
                             "runs": runs}}
    lines = throughput_lines(result)
    assert lines[2] == "| serial (in-process) | 1 | 40 | 40 | 0.1 | 1.00 | 1.00 |"
    assert lines[3] == "| Dask, 2 workers (1 not ok) | 2 | 25 | 45 | 0.16 | 1.60 | 0.90 |"
    printed = label_bench_lines(result)
    assert printed[-1].startswith("Machine: 2 cores; 1-min load average 2.50 at the start, 3.00 at the end")
    assert "Throughput: 4 x ethanol at b3lyp-svp, 1 thread per label" in printed
    md_record = {"commit": "0f482a7+changes", "load_average_start": 2.5, "load_average_end": 3.0}  # md_bench.py's old
    old = {k: v for k, v in result.items() if k not in ("cores", "load_average")} | md_record
    assert label_bench_lines(old)[-1].startswith("Machine: 1-min load average 2.50 at the start, 3.00 at the end")


def _periodic(structure: str, preset: str, status: str = "ok", cutoff: float | None = None) -> dict:
    row = {"structure": structure, "atoms": 12, "cell_A": [4.93, 4.93, 4.93], "preset": preset,
           "ke_cutoff_Eh": cutoff, "status": status, "cpu_s": 14.06, "wall_s": 14.3, "scf_cycles": 9}
    return row | ({"max_force_eV_per_A": 0.634, "net_force_eV_per_A": 0.0021} if status == "ok" else {})


def test_periodic_rows_of_several_files_with_cutoffs_and_a_failed_label() -> None:
    first = {"structures": "water boxes", "rows": [_periodic("4", "pbe-gth-dzvp", cutoff=600.0)]}
    second = {"structures": "water boxes", "rows": [_periodic("4", "gfn2-xtb", status="failed")]}
    lines = periodic_label_lines([first, second])
    assert lines[0].startswith("| waters | atoms | box (A) |")
    assert lines[2] == "| 4 | 12 | 4.93 | pbe-gth-dzvp (600 Eh) | ok | 14.1 | 14.3 | 9 | 0.63 | 0.002 |"
    assert lines[3] == "| 4 | 12 | 4.93 | gfn2-xtb | failed | 14.1 | 14.3 | 9 | - | - |"
    assert box_cell([7.1, 7.1, 8.96]) == "7.10 x 7.10 x 8.96"
    with pytest.raises(ValueError, match="water boxes and of structure files"):
        periodic_label_lines([first, {**second, "structures": "files"}])


def test_a_run_record_has_its_command_commit_versions_and_load_at_both_ends() -> None:
    record = start_record("label_bench.py", ["--quick", "--results", "a b.json"], ("pyscf", "no-such-package"))
    assert record["command"] == "python benchmarks/label_bench.py --quick --results 'a b.json'"
    assert record["versions"]["no-such-package"] is None and record["versions"]["pyscf"]
    assert set(record["git"]) == {"commit", "dirty"} and "end" not in record["load_average"]
    done = finish_record(record)
    assert set(done["load_average"]) == {"start", "end"} and done["cores"] >= 1
    assert label_bench_lines({**done, "mode": "quick", "per_label": [_label("water", 1, 0.5, 0.5)]})[-1].startswith(
        f"Machine: {done['cores']} cores; 1-min load average ")
