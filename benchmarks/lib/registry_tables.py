"""The kinds of generated table of ``docs/benchmarks.md``: each turns a table's entry of ``benchmarks/registry.yaml``
(its ``result`` files and options) into Markdown lines, with the code the benchmark scripts print their tables with.

Kinds: ``learning-curves`` (one test set's force-error summaries per arm and N), ``learning-curves-paired`` (arm
minus a reference arm per seed on the same frames), ``naive-vs-periodic`` (the scores of finished runs),
``status-models`` (a campaign's models from its ``alloop status --json``), ``herding``,
``importance-weights`` and ``importance-weights-diagnostics`` (``importance_weights.py``), ``llpr``, ``al-claims``
(the active-learning claims of issue 62, :mod:`lib.al_claims`), ``loop-calibration`` (the loop models' predicted
against measured error, ``loop_calibration.py``), ``store-scale`` (``store_scale.py``), ``store-bench-append``
and ``store-bench-open`` (``store_bench.py``), ``md-speed`` and ``md-speed-baseline`` (``md_bench.py``),
``allocator`` (``allocator_bench.py``), ``delta-baseline-errors`` and ``delta-baseline-md``
(``delta_baseline.py``), ``phase-cost`` and ``phase-cost-md`` (``phase_cost.py``),
``uncertainty-vs-error`` (``uncertainty_vs_error.py``, one ``model``'s rows),
``asteroid-toy`` (``asteroid_toy.py``), ``foundation-models``
(``foundation_models.py``'s model folders merged) and ``molecules``. From committed data rather than a
benchmark's result file: ``label-sets`` (the mean CPU s per label of labelled sets), ``frame-labels`` (each
labelled frame's cost),
``equilibrium-populations`` (an equilibrium summary JSON's per-run conformer populations) and
``conformer-references`` (``model_populations.py``'s reference ensembles).

The label cost: ``label-cost-per-label`` and ``label-cost-throughput`` (``label_bench.py``), and
``periodic-label-cost`` (``periodic_label_bench.py``'s result files, their rows in turn).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from lib.al_claims import claim_lines
from lib.allocator_table import allocator_lines
from lib.asteroid_toy_table import toy_table
from lib.common import ROOT
from lib.delta_baseline_table import error_lines, md_lines
from lib.error_exponent_table import exponent_table, per_model_table
from lib.foundation_tables import table as foundation_table
from lib.herding_table import herding_table
from lib.importance_table import importance_table, load_results, n30_entries, weights_table
from lib.label_cost_table import per_label_lines, throughput_lines
from lib.label_tables import frame_labels_table, label_sets_table
from lib.learning_curves_tables import (
    METRIC_HEADER,
    arm_entries,
    entry_summary,
    load_entries,
    metric_rows,
    paired_differences,
    paired_row,
)
from lib.loop_calibration_table import calibration_table
from lib.many_workers_table import many_workers_table
from lib.md_speed_table import baseline_lines, md_speed_lines
from lib.molecules_table import molecules_table
from lib.nvp_table import committed_results, table
from lib.periodic_label_table import periodic_label_lines
from lib.phase_cost_table import cost_lines as phase_cost_lines
from lib.phase_cost_table import md_lines as phase_md_lines
from lib.population_tables import conformer_references_table, equilibrium_populations_table
from lib.populations import equilibrium_pairs, reweighted_populations, sampler_populations, summary_path
from lib.status_table import model_table
from lib.store_bench_table import append_lines, open_lines
from lib.store_scale_table import store_scale_lines
from lib.train_memory_table import train_memory_table
from lib.train_speed_table import train_speed_table
from lib.uncertainty_table import uncertainty_lines


def _results(spec: dict[str, Any]) -> list[Any]:
    """Every result file of a table's entry (``result``), read as JSON."""
    return [json.loads((ROOT / r).read_text()) for r in spec["result"]]


def _result(spec: dict[str, Any]) -> Any:
    """The first result file of a table's entry, read as JSON."""
    return json.loads((ROOT / spec["result"][0]).read_text())


def _entries(spec: dict[str, Any]) -> tuple[dict[tuple[str, int, int], dict], list[str], list[int], list[int]]:
    """The learning-curve entries of every result folder, arms renamed to their table labels (``arms``: per
    folder, arm -> label); the labels in the registry's order, the Ns and the seeds."""
    entries: dict[tuple[str, int, int], dict] = {}
    for folder in spec["result"]:
        entries.update(load_entries(ROOT / folder, spec["arms"][folder]))
    found, ns, seeds = entry_summary(entries)
    arms = [label for folder in spec["result"] for label in spec["arms"][folder].values() if label in found]
    return entries, arms, ns, seeds


def learning_curves(spec: dict[str, Any]) -> list[str]:
    """Per arm and N, mean +- std over seeds of the per-frame force MAE's mean, p95, max and top decile."""
    entries, arms, ns, seeds = _entries(spec)
    return METRIC_HEADER + metric_rows(entries, spec["test"], arms, ns, seeds)


def learning_curves_paired(spec: dict[str, Any]) -> list[str]:
    """Per test set (``tests``: file -> label), N and arm: the arm minus ``reference`` per seed, and mean +- std."""
    entries, arms, ns, seeds = _entries(spec)
    theirs = arm_entries(entries, spec["reference"])
    lines = ["| test set | N | arm | " + " | ".join(f"seed {s}" for s in seeds) + " | mean +- std |",
             "|---|---:|---|" + "---:|" * (len(seeds) + 1)]
    for test, label in spec["tests"].items():
        for n in ns:
            for arm in (a for a in arms if a != spec["reference"]):
                diffs = paired_differences(arm_entries(entries, arm), theirs, test, n, seeds)
                if diffs:
                    lines.append(paired_row(f"{label} | {n} | {arm}", diffs, seeds))
    return lines


def al_claims(spec: dict[str, Any]) -> list[str]:
    """The active-learning claims (issue 62) of ``arm`` against ``reference`` (:mod:`lib.al_claims`)."""
    entries, _, ns, seeds = _entries(spec)
    return claim_lines(entries, spec, ns, seeds)


def naive_vs_periodic(spec: dict[str, Any]) -> list[str]:
    """The table of ``naive_vs_periodic.py`` from the runs' committed scores (``columns``: run name -> column),
    each seed's value (``per_seed``) or mean +- std; rows no run has are left out."""
    results = committed_results(ROOT / spec["result"][0], spec["columns"], spec["seeds"], spec["temperatures"])
    return table(results, spec["temperatures"], spec["cap_ps"], spec["tests"], spec.get("rdf_pairs", []),
                 per_seed=spec.get("per_seed", False), skip_empty=True)


def status_models(spec: dict[str, Any]) -> list[str]:
    return model_table(_result(spec))


def llpr(spec: dict[str, Any]) -> list[str]:
    """Per evaluation set and signal: Spearman rho with the true per-frame force MAE, predicted / measured mean and
    the share of frames under the 90 % bound (``llpr_bench.py``'s result file)."""
    result = _result(spec)
    lines = ["| set | frames | measured force MAE (eV/A) | signal | Spearman rho | predicted / measured "
             "| under the 90 % bound |", "|---|---:|---:|---|---:|---:|---:|"]
    for name, s in result["sets"].items():
        for signal, v in s["signals"].items():
            lines.append(f"| {name} | {s['n']} | {s['force_mae']:.4f} | {signal} | {v['spearman']:.2f} | "
                         f"{v['predicted_over_measured']:.2f} | {100 * v['bound_coverage']:.0f} % |")
    return lines


def molecules(spec: dict[str, Any]) -> list[str]:
    """``molecules.py``'s tables from its results folder: per molecule and arm the force errors on both sets, and the
    sets' cost."""
    return molecules_table(ROOT / spec["result"][0])


def herding(spec: dict[str, Any]) -> list[str]:
    return herding_table(_result(spec)).splitlines()


def importance_weights(spec: dict[str, Any]) -> list[str]:
    """Per test set (``tests``: file -> label), the loop's frames retrained with and without importance weights,
    beside random frames and the loop's model (``loop_results``: their learning-curve folder)."""
    folder = ROOT / spec["loop_results"]
    return importance_table(load_results(ROOT / spec["result"][0]), list(spec["tests"]),
                            n30_entries(folder, "loop"), n30_entries(folder, "random"), spec["tests"]).splitlines()


def importance_weights_diagnostics(spec: dict[str, Any]) -> list[str]:
    """The importance weights' effective sample size, MMD to the target and basin shares, per target."""
    return weights_table(load_results(ROOT / spec["result"][0])).splitlines()


def many_workers(spec: dict[str, Any]) -> list[str]:
    """Utilisation, driver CPU per label, latency and memory of each many-workers run."""
    return many_workers_table(_result(spec)).splitlines()


def train_speed(spec: dict[str, Any]) -> list[str]:
    """ms per step of alloop's trainer and sevenn's own loop, and their ratios, per variant."""
    return train_speed_table(_result(spec)["results"]).splitlines()


def store_scale(spec: dict[str, Any]) -> list[str]:
    """Per operation and store size: seconds, CPU seconds, peak memory, slope; issue 65's targets."""
    return store_scale_lines(_result(spec))


def asteroid_toy(spec: dict[str, Any]) -> list[str]:
    """Per number of accurate points, each method's test MAE on the toy problem and ASTEROID's gain."""
    return toy_table(_result(spec))


def store_bench_append(spec: dict[str, Any]) -> list[str]:
    """Frames appended per second and ms per commit, per atoms per frame and batch."""
    return append_lines(_result(spec))


def store_bench_open(spec: dict[str, Any]) -> list[str]:
    """The cost of opening a store of many frames and reading from it."""
    return open_lines(_result(spec))


def md_speed(spec: dict[str, Any]) -> list[str]:
    """Batched MD against one ASE run per replica, a row per result file and replica count (``md_bench.py``)."""
    return md_speed_lines(_results(spec))


def md_speed_baseline(spec: dict[str, Any]) -> list[str]:
    """The GFN-xTB baseline's cost in batched MD, afresh every step against the wavefunction carried, each run a
    result file of ``md_bench.py --baseline``."""
    return baseline_lines(_results(spec))


def allocator(spec: dict[str, Any]) -> list[str]:
    """A worker's work under Dask's malloc setting, glibc's defaults and alloop's (``allocator_bench.py``)."""
    return allocator_lines(_result(spec))


def phase_cost(spec: dict[str, Any]) -> list[str]:
    """Each system's campaign wall time per phase kind (``phase_cost.py``, one result file per system)."""
    return phase_cost_lines(_results(spec))


def error_exponent(spec: dict[str, Any]) -> list[str]:
    return exponent_table(_result(spec)).splitlines()


def error_exponent_models(spec: dict[str, Any]) -> list[str]:
    return per_model_table(_result(spec)).splitlines()


def train_memory(spec: dict[str, Any]) -> list[str]:
    return train_memory_table(_result(spec)).splitlines()


def phase_cost_md(spec: dict[str, Any]) -> list[str]:
    """Where each system's MD seconds went: model calls, the GFN-xTB baseline, scoring (``phase_cost.py``)."""
    return phase_md_lines(_results(spec))


def delta_baseline_errors(spec: dict[str, Any]) -> list[str]:
    """Force errors with and without the GFN-xTB baseline (``delta_baseline.py``)."""
    return error_lines(_result(spec))


def delta_baseline_md(spec: dict[str, Any]) -> list[str]:
    """The MD stability of those models and the baseline's share of the MD wall time (``delta_baseline.py``)."""
    return md_lines(_result(spec))


def uncertainty_vs_error(spec: dict[str, Any]) -> list[str]:
    """How each uncertainty signal ranks one model's per-frame force error (``uncertainty_vs_error.py``)."""
    return uncertainty_lines(_result(spec), spec["model"])


def loop_calibration(spec: dict[str, Any]) -> list[str]:
    """Per test set (``tests``: file -> {label, regime}), the loop models' predicted against measured force error."""
    return calibration_table(_result(spec), spec["tests"])


def foundation_models(spec: dict[str, Any]) -> list[str]:
    """Per model, method and N: mean and p95 of the per-frame force MAE on each test set (``tests``: file -> label),
    training seconds and inference ms per MD step; ``models``: the rows' order."""
    return foundation_table(ROOT / spec["result"][0], spec["tests"], spec.get("models", []))


def label_sets(spec: dict[str, Any]) -> list[str]:
    """Per labelled set (``sets``: ``name``, its ``files``, ``labelled``: when) the mean CPU s per label."""
    return label_sets_table([dict(s, files=[ROOT / f for f in s["files"]]) for s in spec["sets"]])


def frame_labels(spec: dict[str, Any]) -> list[str]:
    """Each labelled frame's CPU s and SCF cycles (``files``: path -> the rows' ``first_column`` cell)."""
    return frame_labels_table({ROOT / f: label for f, label in spec["files"].items()}, spec["first_column"])


def label_cost_per_label(spec: dict[str, Any]) -> list[str]:
    """``label_bench.py``'s wall and CPU s per label per molecule and preset, at each thread count."""
    return per_label_lines(_result(spec))


def label_cost_throughput(spec: dict[str, Any]) -> list[str]:
    """``label_bench.py``'s labels serially in-process against the same labels on Dask workers."""
    return throughput_lines(_result(spec))


def periodic_label_cost(spec: dict[str, Any]) -> list[str]:
    """``periodic_label_bench.py``'s labels of every result file in turn: cost, SCF cycles, largest and net force."""
    return periodic_label_lines(_results(spec))


def equilibrium_populations(spec: dict[str, Any]) -> list[str]:
    """Per set of one equilibrium summary JSON (``sets``: name -> row label) its runs' conformer populations."""
    return equilibrium_populations_table(_result(spec), spec["sets"])


def conformer_references(spec: dict[str, Any]) -> list[str]:
    """``model_populations.py``'s references (1) and (2) at each of ``temperatures`` for ``molecule``; every file
    they read must be one of the table's ``result``."""
    refs = []
    for t in spec["temperatures"]:
        pairs = equilibrium_pairs(spec["molecule"], t)
        if not pairs:
            raise SystemExit(f"registry: table {spec['name']}: no {spec['molecule']} {t:g} K eqtest/eqpool set "
                             "has both levels' labels")
        summary_file = summary_path(spec["molecule"], t)
        unnamed = {str(p.relative_to(ROOT)) for p in [summary_file, *(p for pair in pairs for p in pair)]}
        if unnamed - set(spec["result"]):
            raise SystemExit(f"registry: table {spec['name']} reads {', '.join(sorted(unnamed - set(spec['result'])))}: "
                             "add it to the table's result")
        summary = json.loads(summary_file.read_text())
        sampler = sampler_populations(summary)
        if sampler is None:
            raise SystemExit(f"registry: table {spec['name']}: {summary_file.name} has no test-set populations")
        settings = summary["sets"]["test"].get("settings", summary["settings"])
        refs.append({"temperature": t, "sampler_md": sampler[0], "runs": sampler[1], "ps": settings["ps"],
                     "reweighted": reweighted_populations(pairs, t)})
    return conformer_references_table(refs, spec["target"], spec["sampler"])


KINDS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "learning-curves": learning_curves, "learning-curves-paired": learning_curves_paired,
    "naive-vs-periodic": naive_vs_periodic, "status-models": status_models, "herding": herding,
    "importance-weights": importance_weights, "importance-weights-diagnostics": importance_weights_diagnostics,
    "llpr": llpr, "al-claims": al_claims, "foundation-models": foundation_models, "molecules": molecules,
    "label-sets": label_sets, "frame-labels": frame_labels, "equilibrium-populations": equilibrium_populations,
    "label-cost-per-label": label_cost_per_label, "label-cost-throughput": label_cost_throughput,
    "periodic-label-cost": periodic_label_cost,
    "conformer-references": conformer_references, "train-speed": train_speed,
    "many-workers": many_workers, "loop-calibration": loop_calibration, "store-scale": store_scale,
    "asteroid-toy": asteroid_toy, "store-bench-append": store_bench_append, "store-bench-open": store_bench_open,
    "md-speed": md_speed, "train-memory": train_memory,
    "error-exponent": error_exponent, "error-exponent-models": error_exponent_models,
    "md-speed-baseline": md_speed_baseline, "allocator": allocator,
    "delta-baseline-errors": delta_baseline_errors, "delta-baseline-md": delta_baseline_md,
    "uncertainty-vs-error": uncertainty_vs_error, "phase-cost": phase_cost, "phase-cost-md": phase_cost_md,
}


def generate(spec: dict[str, Any]) -> list[str]:
    """The Markdown lines of one table entry; a one-line error for an unknown kind or a missing result."""
    if spec["kind"] not in KINDS:
        raise SystemExit(f"registry: table {spec['name']}: unknown kind {spec['kind']!r} (known: {', '.join(KINDS)})")
    missing = [r for r in spec["result"] if not (ROOT / r).exists()]
    if missing:
        raise SystemExit(f"registry: table {spec['name']}: result {', '.join(missing)} not found")
    return KINDS[spec["kind"]](spec)

