"""The ledger's table schemas (alloop.store.tables): checked columns, fixed dtypes, optional column groups."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.errors import StoreError
from alloop.store import CampaignStore, tables


def test_rows_are_cast_to_the_schema_and_unknown_or_missing_columns_refused(tmp_path):
    with CampaignStore.create(tmp_path / "s") as store:
        tables.append(store, tables.PROGRESS, cycle=[-1], phase=["sampled"], time=[1.5])
        with pytest.raises(StoreError, match=r"unknown columns \['note'\], missing \['time'\]"):
            tables.append(store, tables.PROGRESS, cycle=[0], phase=["x"], note=["y"])
        with pytest.raises(StoreError, match="holds int32"):
            tables.append(store, tables.SELECTION, cycle=[0.5], frame_id=[1], role=["cheap"], reason=[""])
        store.commit()
        rows = tables.read(store, tables.PROGRESS)
        assert rows["cycle"].dtype == np.int32 and rows["time"].dtype == np.float64
        assert rows["phase"].tolist() == ["sampled"]
        assert tables.read(store, tables.CYCLES) == {}


def test_cycles_rows_may_leave_out_the_optional_groups_of_older_stores(tmp_path):
    base = {name: [0] for name in tables.CYCLES.names if name not in tables.CYCLES.optional}
    with CampaignStore.create(tmp_path / "s") as store:
        assert tables.has_columns(store, tables.CYCLES, tables.EVAL_COLUMNS)  # a new table takes every column
        tables.append(store, tables.CYCLES, **base)  # a table written before eval_* and forget_* existed
        assert not tables.has_columns(store, tables.CYCLES, tables.EVAL_COLUMNS)
        with pytest.raises(StoreError):
            tables.append(store, tables.CYCLES, **base, **{c: [0.1] for c in tables.EVAL_COLUMNS})
        store.commit()
        rows = tables.read(store, tables.CYCLES)
    assert list(rows) == [n for n in tables.CYCLES.names if n in base]
    assert rows["flag_rate"].dtype == np.float64 and rows["md_frames"].dtype == np.int64


def test_every_schema_is_registered_once():
    assert set(tables.SCHEMAS) == {"progress", "selection", "bias", "cycles", "evaluation", "eval_molecules",
                                  "eval_coverage", "eval_predicted", "md_predicted", "herding_target", "md_events",
                                   "frame_basins", "worker_losses", "md_timing"}
    for schema in tables.SCHEMAS.values():
        assert len(set(schema.names)) == len(schema.names) and schema.optional <= set(schema.names)
