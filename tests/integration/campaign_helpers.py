"""A tiny water campaign for the loop's integration and crash tests, and the store invariants they check."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alloop.labeling.result import STATUS_CODES, LabelStatus
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path

TINY = """
name: tiny
seed: 3
system: {{structures: H2O}}
fidelities:
  cheap: hf-sto3g
  expensive: {{name: hf-631g, method: hf, basis: 6-31g}}
model: {{architecture: pair, cutoff_A: 4.0, n_rbf: 8}}
md: {{n_replicas: 2, segment_steps: {steps}, record_every: 5, temperature_K: 300, max_bond_stretch: 2.0}}
uncertainty: {{n_components: 2}}
selection: {{max_cheap_per_cycle: 4, max_expensive_per_cycle: 2, min_step_spacing: 10}}
training: {{max_epochs: 4, patience_epochs: 2, batch_size: 4, gamma_grid: [1.0]}}
schedule:
  strategy: {strategy}
  mode: {mode}
  n_cycles: {cycles}
  max_labels: {{cheap: {max_cheap}, expensive: 30}}
  bootstrap: {{n_samples: 6, n_expensive: 4, amplitude_A: 0.03}}
execution: {{n_workers: 2, max_task_retries: 3}}
"""


def write_tiny(folder: Path, *, cycles: int = 2, steps: int = 40, strategy: str = "periodic",
               max_cheap: int = 100, mode: str = "synchronous") -> Path:
    path = folder / "tiny.yaml"
    path.write_text(TINY.format(cycles=cycles, steps=steps, strategy=strategy, max_cheap=max_cheap, mode=mode))
    return path


def label_rows(store: CampaignStore) -> dict[tuple[int, str], tuple]:
    """Every label as (frame id, fidelity hash) -> (status, energy, forces bytes)."""
    out: dict[tuple[int, str], tuple] = {}
    for h in store.fidelities():
        table = store.labels(h)
        for row in range(len(table)):
            key = (int(table.frame_id[row]), h)
            assert key not in out, f"label {key} stored twice"
            out[key] = (int(table.status[row]), float(table.energy[row]), table.frame_forces(row).tobytes())
    return out


def check_invariants(run_dir: Path, n_cycles: int) -> dict:
    """The store's invariants after a finished campaign; returns a few counts for further checks."""
    with CampaignStore.open(store_path(run_dir)) as store:
        labels = label_rows(store)  # asserts exactly-once
        sel = store.table("selection")
        progress = store.table("progress")
        assert np.any(progress["phase"] == "finished")
        for cycle in range(n_cycles):
            assert np.any((progress["cycle"] == cycle) & (progress["phase"] == "trained")), f"cycle {cycle} not trained"
        hashes = {"cheap": None, "expensive": None}
        for h, info in store.fidelities().items():
            hashes["cheap" if info["name"] == "hf-sto3g" else "expensive"] = h
        for fid, role in zip(sel["frame_id"], sel["role"]):
            assert (int(fid), hashes[str(role)]) in labels, f"selected frame {fid} has no {role} label"
        n_frames = store.committed_frames
        assert all(0 <= fid < n_frames for fid, _ in labels)
        ok = STATUS_CODES[LabelStatus.OK]
        models = [c for c in store.checkpoints() if c["role"] == "model"]
        return {
            "labels": labels,
            "n_ok": sum(1 for v in labels.values() if v[0] == ok),
            "n_failed": sum(1 for v in labels.values() if v[0] != ok),
            "models": len(models),
            "cycles": store.table("cycles"),
            "n_frames": n_frames,
        }
