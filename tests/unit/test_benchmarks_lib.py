"""The helpers ``benchmarks/lib`` gives several scripts: cached rows, the recipe benchmarks' sizes, the figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def lib(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import lib.common
    import lib.plots

    return lib


def test_a_cached_row_is_computed_once_then_read(lib, tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"force_mae": 0.25, "seeds": [1, 2]}

    path = tmp_path / "row.json"
    first = lib.common.cached_json(path, compute)
    again = lib.common.cached_json(path, compute)
    assert first == again == {"force_mae": 0.25, "seeds": [1, 2]} and len(calls) == 1


def test_recipe_sizes_refuse_an_unknown_recipe_and_a_size_outside_the_training_frames(lib):
    assert lib.common.recipe_sizes(["a"], {"a": 1, "b": 2}, "5,52,100") == [5, 52, 100]
    with pytest.raises(SystemExit, match=r"unknown recipe\(s\) \['c'\]; known: a, b"):
        lib.common.recipe_sizes(["a", "c"], {"a": 1, "b": 2}, "52")
    with pytest.raises(SystemExit, match="--n must be within 5..100"):
        lib.common.recipe_sizes(["a"], {"a": 1}, "52,101")


def test_a_figure_is_a_2d_grid_saved_on_leaving(lib, tmp_path, capsys):
    path = tmp_path / "curve.png"
    with lib.plots.figure(path, 1, 3, (6, 2)) as axes:
        assert axes.shape == (1, 3) and not path.exists()
        axes[0][1].plot([1, 2], [3, 4])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot: {path}" in capsys.readouterr().out


def _entry(per_frame: list[float], p95: float, test: str = "t.extxyz") -> dict:
    return {"scores": {test: {"sha256": "s", "per_frame": per_frame, "p95": p95}}}


def test_the_claims_table_pairs_seeds_and_decides_only_with_enough_of_them(lib, monkeypatch):
    import lib.al_claims as claims

    mean, low, high = claims.t_interval([1.0, 2.0, 3.0])  # t(0.95, 2 dof) = 2.919986
    assert mean == 2.0 and high == pytest.approx(2.0 + 2.919986 / 3**0.5, rel=1e-6) and low == pytest.approx(
        2.0 - 2.919986 / 3**0.5, rel=1e-6)
    assert all(v != v for v in claims.t_interval([1.0])[1:])  # one value: no interval
    # loop 1 % better than random in seeds 0-4 at N = 30 on the target set; random's p95 at 60 above the loop's at 30
    entries = {("random", 30, s): _entry([1.0, 3.0], 0.5) for s in range(5)}
    entries |= {("loop", 30, s): _entry([0.99, 2.97], 0.4) for s in range(5)}
    entries |= {("random", 60, s): _entry([1.0, 1.0], 0.45) for s in range(5)}
    spec = {"arm": "loop", "reference": "random", "margin_pct": 2, "gain_pct": 10, "min_seeds": 5,
            "target": {"t.extxyz": "target"}, "shifted": {"t.extxyz": "shifted"}}
    lines = claims.claim_lines(entries, spec, [30], list(range(5)))
    assert "| 1: non-inferior | target | 30 | 5 | -1.0 % |" in lines[2] and lines[2].endswith("| holds |")
    assert "| 2: superior | shifted | 30 | 5 | -1.0 % |" in lines[3] and lines[3].endswith("| misses |")
    assert "| 2: tails | shifted | 30 | 5 / 5 | p95 0.4000 eV/A |" in lines[4] and lines[4].endswith("| holds |")
    del entries[("loop", 30, 4)]  # four seeds: undecided, whatever the numbers
    assert claim_verdicts(claims.claim_lines(entries, spec, [30], list(range(5)))) == ["undecided (4 of 5 seeds)"] * 3


def claim_verdicts(lines: list[str]) -> list[str]:
    return [line.rstrip(" |").rsplit("| ", 1)[1] for line in lines[2:]]


def test_pareto_reads_folders_and_decides_the_claims_as_the_claims_table(lib, tmp_path):
    """pareto.py's verdicts use the claims table's statistic: a loop 1 % better than random in 5 seeds is
    non-inferior on the target set, not superior on the shifted one, and its tails at N beat random's at 2N."""
    import json

    import pareto

    def write(folder: Path, arm: str, n: int, seed: int, per_frame: list[float], p95: float) -> None:
        folder.mkdir(exist_ok=True)
        entry = {"arm": arm, "n": n, "seed": seed, **_entry(per_frame, p95)}
        (folder / f"{arm}-N{n}-seed{seed}.json").write_text(json.dumps(entry))

    folder = tmp_path / "uq"
    for s in range(5):
        write(folder, "random", 30, s, [1.0, 3.0], 0.5)
        write(folder, "random", 60, s, [1.0, 1.0], 0.45)
        write(folder, "loop", 30, s, [0.99, 2.97], 0.4)
    entries = pareto.load_entries([folder])
    row = pareto.verdicts(entries, ["t.extxyz"], ["t.extxyz"])["loop"]["30"]["t.extxyz"]
    assert row["mean"]["rel_mean_pct"] == pytest.approx(-1.0) and row["claim1_noninferior"] is True
    shifted = pareto.verdicts(entries, ["t.extxyz"], [])["loop"]["30"]["t.extxyz"]
    assert shifted["claim2_superior"] is False and shifted["claim2_tails"] is True
    other = tmp_path / "explore0.5"  # a second folder with a loop: each loop is named after its folder
    write(other, "loop", 30, 0, [1.0, 3.0], 0.5)
    assert {a for (a, _, _) in pareto.load_entries([folder, other])} == {"random", "loop[uq]", "loop[explore0.5]"}


def test_many_workers_timings_window_utilisation_latency_and_gaps(lib):
    import lib.many_workers as mw

    def rec(key, worker, start, stop, action="compute"):
        return {"key": key, "worker": worker, "startstops": ({"action": action, "start": start, "stop": stop},)}

    submitted = {"a": 0.0, "b": 0.0, "c": 0.5, "d": 1.25}
    records = [rec("a", "w1", 0.1, 1.1), rec("b", "w2", 0.3, 1.3), rec("c", "w1", 1.2, 2.2),
               rec("d", "w2", 1.3, 2.3), rec("d", "w2", 1.29, 1.3, action="transfer"), rec("other", "w3", 0.0, 9.0)]
    t = mw.task_timings(records, submitted, n_workers=2)
    # the window opens at w2's first start (0.3) and closes at the last submit (1.25): busy 0.8 + 0.95 + 0.05 s
    assert t["window_s"] == pytest.approx(0.95) and t["utilisation"] == pytest.approx(1.8 / (2 * 0.95))
    assert (t["tasks_timed"], t["workers_used"]) == (4, 2)
    assert t["latency_median_s"] == pytest.approx(0.2)  # of 0.1, 0.3, 0.7, 0.05
    assert t["gap_median_s"] == pytest.approx(0.1)  # of 0.1, 0.3, 1.2 - 1.1, 1.3 - 1.3
    assert t["latency_p95_s"] == pytest.approx(0.3 + 0.85 * 0.4)


def test_many_workers_busy_time_counts_overlapping_tasks_of_a_worker_once(lib):
    """The task stream can shift a worker's consecutive tasks into each other by a millisecond: never above 1."""
    import lib.many_workers as mw

    records = [{"key": k, "worker": "w1", "startstops": ({"action": "compute", "start": a, "stop": b},)}
               for k, a, b in (("a", 0.0, 1.001), ("b", 1.0, 2.0), ("c", 1.9995, 3.0))]
    t = mw.task_timings(records, {"a": 0.0, "b": 0.0, "c": 2.5}, n_workers=1)
    assert t["window_s"] == pytest.approx(2.5) and t["utilisation"] == pytest.approx(1.0)


def test_many_workers_plan_takes_labels_or_minutes(lib):
    import lib.many_workers as mw

    with pytest.raises(ValueError, match="labels or minutes"):
        mw.Plan(4, 1.0)
    with pytest.raises(ValueError, match="labels or minutes"):
        mw.Plan(4, 1.0, n_labels=10, minutes=1.0)


def test_the_many_workers_table_has_a_column_per_run_and_dashes_for_missing_figures(lib):
    from lib.many_workers_table import many_workers_table

    run = {"plan": {"n_workers": 4, "task_s": 0.2, "kill_fraction_per_hour": 0.0}, "startup_s": 3.0,
           "labels_sent": 20, "labels_ok": 20, "labels_lost": 0, "kills": [], "worker_deaths": 0, "tasks_retried": 0,
           "window_s": 1.5, "utilisation": 0.9, "driver_ms_per_label": 12.25, "idle_driver_core_pct": 2.0,
           "latency_median_s": 0.2, "latency_p95_s": 0.3, "gap_median_s": 0.004, "gap_p95_s": 0.01,
           "driver_rss_before_mb": 40.0, "driver_peak_rss_mb": 300.0, "workers_rss_mb": 500.0,
           "load_before": [1.0, 1.0, 1.0], "load_after": [2.0, 1.0, 1.0]}
    lines = many_workers_table({"a": run, "b": {**run, "driver_main_thread_ms_per_label": 3.6}}).splitlines()
    assert lines[0] == "| figure | a | b |"
    assert "| utilisation | 0.900 | 0.900 |" in lines
    assert "| of it, the driver's main thread (ms) | - | 3.6 |" in lines
    assert "| dispatch gap, median / p95 (ms) | 4.0 / 10.0 | 4.0 / 10.0 |" in lines


def test_the_loop_calibration_table_judges_each_regime_by_its_own_targets(lib):
    from lib.loop_calibration_table import calibration_table, verdict

    def row(seed: int, test: str, measured: float, predicted: float, rho: float, cover: float) -> dict:
        return {"seed": seed, "test": test, "force_mae_eV_per_A": measured, "predicted_force_mae_eV_per_A": predicted,
                "error_spearman": rho, "bound_coverage": cover}

    warm = [row(0, "a", 0.020, 0.023, 0.65, 0.90), row(1, "a", 0.022, 0.025, 0.70, 0.92)]  # +14 %, rho 0.68, 91 %
    hot = [row(0, "b", 0.030, 0.022, 0.50, 0.70), row(1, "b", 0.034, 0.027, 0.62, 0.84)]  # -27 % and -21 %
    assert verdict(warm, "campaign") == "rho 2/2, MAE 2/2, bound 2/2"
    assert verdict([row(0, "a", 0.02, 0.02, 0.7, 1.0)], "campaign") == "rho 1/1, MAE 1/1, bound 0/1"  # covers too much
    assert verdict(hot, "hotter") == "rho 1/2, MAE 2/2, bound 1/2"  # both within the hotter 30 %
    assert verdict(hot, "campaign") == "rho 1/2, MAE 0/2, bound 0/2"
    lines = calibration_table({"runs": {str(k): r for k, r in enumerate(warm + hot)}},
                              {"a": {"label": "warm set", "regime": "campaign"},
                               "b": {"label": "hot set", "regime": "hotter"}, "c": {"label": "none", "regime": "hotter"}})
    assert len(lines) == 4  # header, rule, one row per test set with runs
    assert lines[2] == ("| warm set | 2 | 0.0210 ± 0.0014 | 1.14 ± 0.01 | 0.68 ± 0.04 | 91 ± 1 % "
                        "| rho 2/2, MAE 2/2, bound 2/2 | - |")
    assert lines[3].endswith("| rho 1/2, MAE 2/2, bound 1/2 | - |")
    # the weighted bound at a declared temperature, over the models whose error model keeps it
    hot[0].update(declared_temperature_K=1000.0, shifted_bound_coverage=None)
    hot[1].update(declared_temperature_K=1000.0, shifted_bound_coverage=0.9, shifted_bound_infinite_share=0.25,
                  shifted_effective_sample_size=2.5)
    lines = calibration_table({"runs": {str(k): r for k, r in enumerate(hot)}},
                              {"b": {"label": "hot set", "regime": "hotter"}})
    assert lines[2].endswith("| 90 % (25 %; 2.5), 1 of 2 models at 1000 K |")
    hot[1]["shifted_bound_coverage"] = None
    assert calibration_table({"runs": dict(enumerate(hot))}, {"b": {"label": "h", "regime": "hotter"}})[2].endswith(
        "| not kept by these 2 models |")


def test_the_asteroid_toy_table_averages_the_seeds_of_each_size(lib):
    from lib.asteroid_toy_table import toy_table

    def run(standard: float, asteroid: float, gamma: float) -> dict:
        return {"standard": standard, "biased only": 4.0, "pretrain+finetune": 1.0, "ASTEROID": asteroid,
                "gamma/median B": gamma, "bias corr": 0.99}

    lines = toy_table({"runs": {"100": [run(0.5, 0.2, 0.1)], "25": [run(2.0, 0.5, 0.1), run(1.0, 0.4, 2.0)]}})
    assert lines[2] == ("| 25 | 1.500 +- 0.707 | 4.000 +- 0.000 | 1.000 +- 0.000 | 0.450 +- 0.071 | -70% | 0.1, 2 "
                        "| 0.99 |")  # sizes in numeric order, ASTEROID's gain on the seeds' means
    assert lines[3].startswith("| 100 | 0.500 +- 0.000 |") and "| -60% |" in lines[3]


def test_the_store_bench_tables_show_every_append_run_and_the_open_costs(lib):
    from lib.store_bench_table import append_lines, open_lines, store_bench_lines

    result = {"fsync": True, "append": [{"atoms": 10, "batch": 32, "frames": 1248, "commits": 39, "fps": 461.7,
                                         "ms_per_commit": 69.24, "cpu_ms_per_commit": 31.04}],
              "open": {"frames": 100000, "atoms": 10, "open_ms": 10.94, "meta_ms": 89.2, "get100_ms": 410.8,
                       "open_a_ms": 37.2}}
    assert append_lines(result)[2] == "| 10 | 32 | 1248 | 39 | 462 | 69.2 | 31.0 |"
    assert open_lines(result)[2] == "| 100000 | 10.9 | 89.2 | 410.8 | 37.2 |"
    assert store_bench_lines(result)[0] == "## Appending frames (add_frames + commit; fsync on)"


def _md_result(model: str, steps: int, rows: list[dict], baseline: str | None = None, cold: bool = False) -> dict:
    return {"model": model, "steps": steps, "baseline": baseline, "cold_baseline": cold, "rows": rows}


def _md_side(wall: list[float], model: list[float], calls: int, structures: int, **extra: list[float]) -> dict:
    return {"wall_s": wall, "model_s": model, "calls": calls, "structures": structures, **extra}


def test_the_md_speed_table_shows_each_side_at_its_best_repeat(lib):
    from lib.md_speed_table import md_speed_lines

    # 9 steps, 4 replicas: 36 replica-steps; batched best 0.36 s (100/s), ASE best 3.6 s (10/s)
    entry = {"replicas": 4, "batched": _md_side([0.5, 0.36], [0.4, 0.324], 10, 40),
             "ase": _md_side([3.6, 4.0], [2.7, 3.0], 40, 40)}
    lines = md_speed_lines([_md_result("egnn", 9, [entry])])
    assert len(lines) == 3 and lines[1].count("|") == lines[0].count("|")
    assert lines[2] == "| egnn | 4 | 100 | 10 | 10.0x | 10% | 25% | 1 (4 structures) / 4 (1 structure) |"


def test_the_md_speed_table_adds_the_baseline_columns_and_leaves_them_empty_without_one(lib):
    from lib.md_speed_table import md_speed_lines

    side = _md_side([1.0], [0.5], 11, 11)
    plain = _md_result("egnn", 10, [{"replicas": 1, "batched": side, "ase": side}])
    delta = _md_result("egnn + gfn2-xtb", 10, [{"replicas": 1, "ase": side, "batched": _md_side(
        [1.0], [0.5], 11, 11, baseline_s=[0.033], scc_cycles_per_structure=[5.84])}], baseline="gfn2-xtb")
    lines = md_speed_lines([plain, delta])
    assert lines[0].endswith("| baseline SCC cycles per structure |") and lines[1].endswith("|---:|---:|---:|")
    assert lines[2].endswith("| 1 (1 structure) / 1 (1 structure) |  |  |  |")
    assert lines[3].endswith("| 3.0 | 3% | 5.8 |")


def test_the_baseline_table_puts_each_run_of_a_replica_count_in_one_row_afresh_first(lib):
    from lib.md_speed_table import baseline_lines

    def run(cold: bool, seconds: float, scc: float) -> dict:
        batched = _md_side([2.0, 1.0], [1.0, 0.5], 11, 22, baseline_s=[9.0, seconds],
                           scc_cycles_per_structure=[0.0, scc])
        return _md_result("egnn + gfn2-xtb", 10, [{"replicas": 2, "batched": batched, "ase": batched}],
                          "gfn2-xtb", cold)

    lines = baseline_lines([run(False, 0.022, 5.8), run(True, 0.033, 9.0), run(False, 0.044, 5.8)])
    assert lines[2:] == ["| 2 | afresh every step | 9.0 | 3.0 | 3 % |",
                         "| 2 | wavefunction carried | 5.8 | 2.0, 4.0 | 2-4 % |"]


def test_a_run_record_names_the_command_commit_load_and_cpu(lib):
    from lib.common import ROOT
    from lib.run_record import command_line, finish_record, load_text, read_record, start_record

    assert command_line(str(ROOT / "benchmarks" / "md_bench.py"), ["--steps", "100"]) == (
        "python benchmarks/md_bench.py --steps 100")
    start = start_record("md_bench.py", [], packages=("torch",))
    record = finish_record(start, children_cpu_s=2.0)
    assert "_cpu0" not in record and record["cpu_s"] >= 2.0 and record["versions"]["torch"]
    git = record["git"]
    assert git["commit"] is None or (len(git["commit"]) == 40 and isinstance(git["dirty"], bool))
    assert record["date"].count("-") == 2 and record["started_utc"].count(":") == record["finished_utc"].count(":") == 1
    assert load_text(record).startswith(f"{record['cores']} cores; 1-min load average "
                                        f"{record['load_average']['start']:.2f} at the start")
    again = finish_record(start)  # a record can be finished again (periodic_label_bench.py: after each label)
    assert again["cpu_s"] >= 0 and again["load_average"]["start"] == record["load_average"]["start"]
    assert read_record(record) == record  # the current format reads as written


def test_readers_take_the_records_of_both_old_run_record_modules(lib):
    """md_bench.py / allocator_bench.py wrote ``commit`` as a string and flat load averages; the label-cost scripts a
    ``git`` dict, nested load averages and the cores; every committed result file of both reads to one form."""
    from lib.common import ROOT
    from lib.run_record import load_text, read_record

    md = {"command": "python benchmarks/md_bench.py", "date": "2026-11-29", "started_utc": "13:13",
          "commit": "0f482a7+changes", "threads": 1, "load_average_start": 7.12, "finished_utc": "13:16",
          "load_average_end": 6.38, "cpu_s": 130.1}
    label = {"command": "python benchmarks/label_bench.py --quick", "date": "2026-11-29",
             "git": {"commit": "aa93440" + "0" * 33, "dirty": False}, "cores": 2, "versions": {"pyscf": "2.8.0"},
             "load_average": {"start": 5.76, "end": 7.21}}
    assert read_record(md)["git"] == {"commit": "0f482a7", "dirty": True}
    assert read_record({**md, "commit": "cc339c1"})["git"] == {"commit": "cc339c1", "dirty": False}
    assert read_record({**md, "commit": "unknown"})["git"] == {"commit": None, "dirty": None}
    assert read_record(md)["load_average"] == {"start": 7.12, "end": 6.38} and read_record(md)["cores"] is None
    assert read_record(label)["git"] == label["git"] and read_record(label)["cpu_s"] is None
    assert load_text(md) == "1-min load average 7.12 at the start, 6.38 at the end"
    assert load_text(label) == "2 cores; 1-min load average 5.76 at the start, 7.21 at the end"
    folders = ("md-speed", "memory-reuse", "label-cost", "periodic-label-cost")
    results = {p.name: json.loads(p.read_text())
               for f in folders for p in (ROOT / "benchmarks" / "results" / f).glob("*.json")}
    assert any("commit" in r for r in results.values()) and any("git" in r for r in results.values())
    for name, result in results.items():
        record = read_record(result)
        assert record["command"].startswith("python benchmarks/") and record["git"]["commit"], name
        assert all(isinstance(v, float) for v in record["load_average"].values()), name
        assert "1-min load average " in load_text(result), name


def test_the_allocator_table_names_a_work_once_and_compares_each_case_with_dask(lib):
    from lib.allocator_table import allocator_lines

    def row(work: str, case: str, wall: float, value: str | float) -> dict:
        return {"work": work, "case": case, "wall": wall, "user": 1.04, "system": 0.25, "faults": 2_570_000,
                "max_rss_GB": 6.44, "value": value}

    result = {"works": {"reline-train": {"frames": 24, "atoms": 38}, "reline-label": {"frames": 0, "atoms": 0}},
              "rows": [row("reline-train", "dask", 240.0, "aa78437e254a0123"),
                       row("reline-train", "reuse", 80.0, "aa78437e254a0123"),
                       row("reline-label", "glibc", 40.0, -4459.343102037831)]}
    lines = allocator_lines(result)
    assert lines[0].count("|") == lines[1].count("|") == len(lines[2].split(" | ")) + 1
    assert lines[2] == ("| SevenNet-0 training, reline box (24 frames) | dask | 240.0 | 1.0 | 0.2 | 2.57 | 6.4 | 1.00x "
                        "| aa78437e254a |")
    assert lines[3].startswith("|  | **reuse** | **80.0** |") and "| 3.00x |" in lines[3]
    assert lines[4] == "| PBE/GTH-SZV label, reline box | glibc | 40.0 | 1.0 | 0.2 | 2.57 | 6.4 | - | -4459.34310204 eV |"


def test_phase_seconds_are_the_gaps_between_progress_rows(lib):
    """``phase_cost.py``: each phase's wall time is its progress row's time minus the previous row's; the first
    phase starts ``wall_s`` before the last row; an unknown phase is an error."""
    import numpy as np
    from lib.phase_cost import phase_seconds
    from lib.phase_cost_table import cost_lines

    progress = {"phase": np.array(["sampled", "labelled", "trained", "explored", "labelled-cheap",
                                   "selected-expensive", "labelled-expensive", "trained", "finished"]),
                "time": np.array([110.0, 130, 170, 200, 205, 206, 216, 276, 277])}
    spent = phase_seconds(progress, wall_s=187.0)
    assert spent == {"start-up and bootstrap sampling": 20.0, "labels": 20 + 5 + 10, "MD and the cheap pick": 30.0,
                     "expensive pick": 1.0, "training": 40 + 60, "finish": 1.0}
    assert sum(spent.values()) == 187.0
    result = {"system": "ethanol", "atoms": 9, "wall_s": 187.0, "phases": spent, "train_s": [40.0, 60.0],
              "labels": {"gfn1-xtb": {"n": 10, "cpu_s": 0.5}}}
    assert cost_lines([result])[2] == ("| ethanol | 9 | 187 | 20 (11 %) | 35 (19 %) | 30 (16 %) | 1 (1 %) | 100 (53 %) | "
                                       "gfn1-xtb 10, 0.05 | 40 + 60 |")
    with pytest.raises(ValueError, match="no kind"):
        phase_seconds({"phase": np.array(["dreaming"]), "time": np.array([1.0])}, 1.0)
