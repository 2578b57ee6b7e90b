"""The campaign ledger's tables: their names and column schemas, in one place.

The store's generic tables (``append_rows``, ``table``) fix their columns at the
first append; the campaign writes these ones, and the report and ``alloop
status`` read them. Writers go through :func:`append` (the columns must be the
schema's, values are checked and cast to its dtypes), readers through
:func:`read` (an empty mapping for a table not written yet).

- ``progress``: one row per finished phase (bootstrap is cycle -1);
- ``selection``: one row per frame chosen for a label of a role;
- ``bias``: ASTEROID's bias B and weight w per cheap frame and model version;
- ``cycles``: one row per cycle (its model, MD, spend, validation, evaluation-set
  and forgetting scores; the last two groups are absent from stores written
  before they existed);
- ``evaluation``: one row per model scored on the campaign's evaluation set (the tails of its per-frame force MAE
  are absent from stores written before them);
- ``eval_molecules``: one row per model and molecule when the evaluation set holds several molecules: the
  model's errors on that molecule's frames;
- ``eval_coverage``: one row per model whose training task scored the evaluation set's Q-residual (the
  share of its frames within the limit, their median score);
- ``eval_predicted``: one row per model with a calibrated error model: its predicted force error on the
  evaluation set and how well it ranks the true errors;
- ``md_predicted``: the predicted force error of every MD frame (models with a calibrated error model);
- ``md_bias``: the uncertainty bias energy of every frame recorded under uncertainty-driven MD;
- ``herding_target``: per cycle, the MD frames its kernel herding matched (``selection.exploration`` < 1);
- ``md_events``: one row per reaction event of the MD (a bond broken while one of its atoms formed a new
  one, :mod:`alloop.md.events`): the two pairs of atoms, where and when;
- ``frame_basins``: the conformer basin code of each labelled frame (one-molecule campaigns with rotors);
- ``worker_losses``: one row per Dask worker lost while the campaign ran (the
  tasks it held, which were resubmitted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from alloop.errors import StoreError
from alloop.store.campaign import CampaignStore
from alloop.store.column_spec import STRING_DTYPE, ColumnSpec, coerce


@dataclass(frozen=True)
class TableSchema:
    """A table's name, its columns in order, and the columns a row may leave out (older stores)."""

    name: str
    columns: tuple[ColumnSpec, ...]
    optional: frozenset[str] = frozenset()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def rows(self, **values: Any) -> dict[str, np.ndarray]:
        """``values`` checked against the schema and cast to its dtypes, in schema order."""
        unknown = sorted(set(values) - set(self.names))
        missing = sorted(set(self.names) - set(values) - self.optional)
        if unknown or missing:
            raise StoreError(f"table '{self.name}': unknown columns {unknown}, missing {missing}")
        n = len(np.asarray(values[self.columns[0].name]))
        return {c.name: coerce(c, values[c.name], n) for c in self.columns if c.name in values}


def _col(name: str, dtype: type) -> ColumnSpec:
    return ColumnSpec(name, STRING_DTYPE if dtype is str else np.dtype(dtype))


#: ``eval_*`` columns of ``cycles`` and ``evaluation``: errors on the evaluation set (eV/A, eV, eV/atom)
EVAL_COLUMNS = ("eval_force_mae_eV_per_A", "eval_force_rmse_eV_per_A", "eval_energy_mae_eV",
                "eval_energy_mae_per_atom_eV")
#: tails of the per-frame force MAE on the evaluation set (eV/A), in ``evaluation`` and ``eval_molecules`` rows (absent
#: from stores written before them, read there as NaN)
EVAL_TAIL_COLUMNS = ("eval_force_mae_p95_eV_per_A", "eval_force_mae_max_eV_per_A")
#: ``forget_*`` columns of ``cycles``: change against the original model on outside molecules (eV/A, eV/atom)
FORGET_COLUMNS = ("forget_force_mae_eV_per_A", "forget_energy_mae_per_atom_eV")

PROGRESS = TableSchema("progress", (_col("cycle", np.int32), _col("phase", str), _col("time", np.float64)))
SELECTION = TableSchema("selection", (_col("cycle", np.int32), _col("frame_id", np.int64), _col("role", str),
                                      _col("reason", str)))
BIAS = TableSchema("bias", (_col("model_version", np.int32), _col("frame_id", np.int64), _col("B", np.float64),
                            _col("w", np.float64)))
CYCLES = TableSchema(
    "cycles",
    (
        _col("cycle", np.int32), _col("model_version", np.int32), _col("md_frames", np.int64),
        _col("flag_rate", np.float64), _col("labels_cheap", np.int64), _col("labels_expensive", np.int64),
        _col("cpu_cheap_s", np.float64), _col("cpu_expensive_s", np.float64),
        _col("val_force_mae_eV_per_A", np.float64), _col("val_energy_mae_eV", np.float64),
        _col("train_seconds", np.float64), _col("time", np.float64),
        *(_col(c, np.float64) for c in EVAL_COLUMNS), *(_col(c, np.float64) for c in FORGET_COLUMNS),
    ),
    optional=frozenset(EVAL_COLUMNS + FORGET_COLUMNS),
)
EVALUATION = TableSchema(
    "evaluation",
    (_col("model_version", np.int32), _col("cycle", np.int32), _col("n_frames", np.int32), _col("sha256", str),
     _col("time", np.float64), *(_col(c, np.float64) for c in EVAL_COLUMNS + EVAL_TAIL_COLUMNS)),
    optional=frozenset(EVAL_TAIL_COLUMNS),
)
#: per model and molecule (formula, alloop.system.molecules) of an evaluation set of several molecules: its frames and the
#: model's errors on them (the eval_* columns)
EVAL_MOLECULES = TableSchema(
    "eval_molecules",
    (_col("model_version", np.int32), _col("cycle", np.int32), _col("molecule", str), _col("n_frames", np.int32),
     *(_col(c, np.float64) for c in EVAL_COLUMNS + EVAL_TAIL_COLUMNS)),
    optional=frozenset(EVAL_TAIL_COLUMNS),
)
#: per model: the share of the evaluation set's frames whose Q-residual score is within the limit (<= 1) under the
#: uncertainty model fitted with it, and their median score (alloop.evaluation.scoring.coverage_scores)
EVAL_COVERAGE = TableSchema(
    "eval_coverage",
    (_col("model_version", np.int32), _col("cycle", np.int32), _col("covered_fraction", np.float64),
     _col("median_q", np.float64)),
)
#: per model: its error model's mean predicted force error on the evaluation set (eV/A, next to the measured
#: eval_force_mae_eV_per_A), the Spearman rho of predicted and true per-frame force errors, and the share of frames
#: whose error lies below the predicted bound (alloop.evaluation.scoring.predicted_error_scores)
EVAL_PREDICTED = TableSchema(
    "eval_predicted",
    (_col("model_version", np.int32), _col("cycle", np.int32), _col("predicted_force_mae_eV_per_A", np.float64),
     _col("error_spearman", np.float64), _col("bound_coverage", np.float64)),
)
#: per MD frame: the predicted force error of the model that ran it and its upper bound (eV/A; models with a
#: calibrated error model only)
MD_PREDICTED = TableSchema(
    "md_predicted",
    (_col("cycle", np.int32), _col("frame_id", np.int64), _col("predicted_force_error_eV_per_A", np.float64),
     _col("upper_force_error_eV_per_A", np.float64)),
)
#: uncertainty-driven MD: the bias energy (eV) of every frame recorded under it (md.uncertainty_bias_eV > 0),
#: to reweight frames to the unbiased ensemble with exp(+E_bias / kT)
MD_BIAS = TableSchema("md_bias", (_col("frame_id", np.int64), _col("bias_energy_eV", np.float64)))
#: per cycle: the MD frames (ids) that the cycle's kernel herding matched (selection.exploration < 1): the cycle's
#: frames at md.temperature_K, or the campaign's reservoir of them (selection.herding_target: campaign)
HERDING_TARGET = TableSchema("herding_target", (_col("cycle", np.int32), _col("frame_id", np.int64)))
#: per reaction event (md.reactions: events): the cycle, the model that ran the MD, the replica, its absolute MD step
#: and time (fs), the broken pair and the formed pair (atom indices, i < j) with their distances at the event (A)
MD_EVENTS = TableSchema(
    "md_events",
    (_col("cycle", np.int32), _col("model_version", np.int32), _col("replica", np.int32), _col("md_step", np.int64),
     _col("time_fs", np.float64), _col("broken_i", np.int32), _col("broken_j", np.int32), _col("formed_i", np.int32),
     _col("formed_j", np.int32), _col("broken_A", np.float64), _col("formed_A", np.float64)),
)
#: per labelled frame of a one-molecule campaign with rotors: its conformer basin code
#: (:func:`alloop.system.conformers.frame_basins`), written as its label comes back, so that ``alloop status`` counts
#: the basins of a long campaign's labels without reading their positions (alloop.store.coverage)
FRAME_BASINS = TableSchema("frame_basins", (_col("frame_id", np.int64), _col("code", np.int32)))
#: one row per Dask worker that left the scheduler unexpectedly (its tasks run again: resubmitted)
WORKER_LOSSES = TableSchema(
    "worker_losses",
    (_col("cycle", np.int32), _col("phase", str), _col("time", np.float64), _col("worker", str),
     _col("n_tasks", np.int32), _col("tasks", str)),
)
#: one row per MD task of a cycle: its replicas, the MD steps it advanced (summed over them) and where its wall
#: seconds went: the model calls (of them, a Delta model's GFN-xTB baseline) and the scoring of the recorded frames
MD_TIMING = TableSchema(
    "md_timing",
    (_col("cycle", np.int32), _col("model_version", np.int32), _col("replicas", np.int32),
     _col("replica_steps", np.int64), _col("seconds", np.float64), _col("model_seconds", np.float64),
     _col("baseline_seconds", np.float64), _col("scoring_seconds", np.float64)),
)
#: every ledger table, by name
SCHEMAS = {s.name: s for s in (PROGRESS, SELECTION, BIAS, CYCLES, EVALUATION, EVAL_MOLECULES, EVAL_COVERAGE,
                                 EVAL_PREDICTED, MD_PREDICTED, HERDING_TARGET, MD_EVENTS, FRAME_BASINS, WORKER_LOSSES,
                                 MD_TIMING)}


def append(store: CampaignStore, schema: TableSchema, **values: Any) -> None:
    """Append rows to the table of ``schema`` (committed with the store's next commit)."""
    store.append_rows(schema.name, **schema.rows(**values))


def read(store: CampaignStore, schema: TableSchema) -> dict[str, np.ndarray]:
    """The rows of the table of ``schema``; empty when it has none yet."""
    return store.table(schema.name) if schema.name in store.table_names() else {}


def has_columns(store: CampaignStore, schema: TableSchema, columns: tuple[str, ...]) -> bool:
    """Whether new rows of the table may carry ``columns``: true unless it exists without them (an older store)."""
    return schema.name not in store.table_names() or columns[0] in store.table(schema.name)


def cycle_predicted_error(store: CampaignStore, cycle: int) -> float | None:
    """The mean predicted force error (eV/A) of ``cycle``'s MD frames, or None when none was predicted."""
    rows = read(store, MD_PREDICTED)
    if not rows:
        return None
    mine = rows["cycle"] == cycle
    return float(rows["predicted_force_error_eV_per_A"][mine].mean()) if mine.any() else None
