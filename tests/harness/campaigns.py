"""A tiny water campaign for the loop's integration and crash tests, and the store invariants they check.

The tiny campaign names the settings its tests were written for where the library defaults have changed since
(issue 63): no baseline, ASTEROID, the pick by bias B, restarts from the input, no final refit, no test set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alloop.labeling.result import STATUS_CODES, LabelStatus
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import is_store, store_path

TINY = """
name: tiny
seed: 3
system: {{structures: H2O}}
fidelities:
  cheap: {cheap}
  expensive: {expensive}
model: {{architecture: pair, cutoff_A: 4.0, n_rbf: 8, baseline: null}}
md: {{n_replicas: 2, segment_steps: {steps}, record_every: 5, temperature_K: 300, max_bond_stretch: 2.0,
     restart_from: start}}
uncertainty: {{n_components: 2}}
selection: {{max_cheap_per_cycle: 4, min_cheap_per_cycle: {min_cheap}, max_expensive_per_cycle: 2,
            min_step_spacing: 10, expensive_pick: bias}}
training: {{method: asteroid, final_refit: false, max_epochs: 4, patience_epochs: 2, batch_size: 4,
           gamma_grid: [1.0]}}
schedule:
  strategy: {strategy}
  mode: {mode}
  n_cycles: {cycles}
  max_labels: {{cheap: {max_cheap}, expensive: {max_expensive}}}
  bootstrap: {bootstrap}
execution: {{n_workers: 2, max_task_retries: 3}}
evaluation: {evaluation}
"""


#: a one-cycle ethanol campaign that starts a foundation model (MACE, SO3LR) on real GFN-xTB and HF/STO-3G labels
ONE_CYCLE_ETHANOL = """
name: tiny-{name}
seed: {seed}
system: {{structures: CH3CH2OH}}
fidelities: {{cheap: {cheap}, expensive: hf-sto3g}}
model: {model}
md: {{n_replicas: 2, segment_steps: 20, record_every: 5, temperature_K: 300, max_bond_stretch: 2.0}}
uncertainty: {{n_components: 2}}
selection: {{max_cheap_per_cycle: 3, min_cheap_per_cycle: 2, max_expensive_per_cycle: 2, min_step_spacing: 6,
            energy_window_sigma: null}}
training: {{method: {method}, steps: 4, batch_size: 2, final_retrain: false}}
schedule:
  n_cycles: 1
  max_labels: {{cheap: 20, expensive: 10}}
  bootstrap: {{n_samples: 4, n_expensive: 3, method: rattle, amplitude_A: 0.03}}
execution: {{n_workers: 2}}
evaluation: false
"""


def write_one_cycle_ethanol(folder: Path, name: str, model: str, *, cheap: str, method: str, seed: int) -> Path:
    """Write :data:`ONE_CYCLE_ETHANOL` with ``model`` (YAML of the model section) to ``folder/campaign.yaml``."""
    path = folder / "campaign.yaml"
    path.write_text(ONE_CYCLE_ETHANOL.format(name=name, seed=seed, cheap=cheap, model=model, method=method))
    return path


HF_631G = "{name: hf-631g, method: hf, basis: 6-31g}"
RATTLE = "{n_samples: 6, n_expensive: 4, amplitude_A: 0.03}"


def write_tiny(folder: Path, *, cycles: int = 2, steps: int = 40, strategy: str = "periodic",
               max_cheap: int = 100, max_expensive: int = 30, mode: str = "synchronous", min_cheap: int = 0,
               cheap: str = "hf-sto3g", expensive: str = HF_631G, bootstrap: str = RATTLE,
               evaluation: str = "null") -> Path:
    """Write the tiny campaign to ``folder/tiny.yaml`` (label limits per fidelity: bootstrap included;
    ``min_cheap``: cheap labels per cycle even when fewer frames are flagged; ``cheap``, ``expensive`` and
    ``bootstrap``, ``evaluation``: YAML of those settings)."""
    path = folder / "tiny.yaml"
    path.write_text(TINY.format(cycles=cycles, steps=steps, strategy=strategy, max_cheap=max_cheap,
                                max_expensive=max_expensive, mode=mode, min_cheap=min_cheap, cheap=cheap,
                                expensive=expensive, bootstrap=bootstrap, evaluation=evaluation))
    return path


def label_entries(store: CampaignStore) -> list[tuple[tuple[int, str], tuple]]:
    """Every stored label row as ((frame id, fidelity hash), (status, energy bytes, forces bytes)), duplicates
    included."""
    out = []
    for h in store.fidelities():
        table = store.labels(h)
        for row in range(len(table)):
            energy = np.float64(table.energy[row]).tobytes()  # bytes: a failed label's NaN equals itself
            value = (int(table.status[row]), energy, table.frame_forces(row).tobytes())
            out.append(((int(table.frame_id[row]), h), value))
    return out


def label_rows(store: CampaignStore) -> dict[tuple[int, str], tuple]:
    """Every label as (frame id, fidelity hash) -> (status, energy bytes, forces bytes); asserts none is stored
    twice."""
    out: dict[tuple[int, str], tuple] = {}
    for key, value in label_entries(store):
        assert key not in out, f"label {key} stored twice"
        out[key] = value
    return out


def committed_label_entries(run_dir: Path) -> list[tuple[tuple[int, str], tuple]]:
    """Every committed label row of the campaign in ``run_dir``, duplicates included (none if it has no store)."""
    if not is_store(run_dir):
        return []
    with CampaignStore.open(store_path(run_dir)) as store:
        return label_entries(store)


def committed_labels(run_dir: Path) -> dict[tuple[int, str], tuple]:
    """(frame id, fidelity hash) -> (status, energy bytes, forces bytes) of every committed label (asserts exactly
    once)."""
    if not is_store(run_dir):
        return {}
    with CampaignStore.open(store_path(run_dir)) as store:
        return label_rows(store)


def lost_and_changed(before: dict, after: dict) -> tuple[list, list]:
    """The labels of ``before`` missing from ``after``, and those not bit-identical there."""
    lost = [k for k in before if k not in after]
    changed = [k for k in before if k in after and after[k] != before[k]]
    return lost, changed


def check_nothing_lost(before: dict, after: dict) -> None:
    """Every label committed before the strike is still there, bit-identical (after holds each label once)."""
    missing, changed = lost_and_changed(before, after)
    assert not missing and not changed, f"labels lost {missing[:5]} or changed {changed[:5]}"


def tail(path: Path, n: int = 4000) -> str:
    """The end of a log file ('' if there is none)."""
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


def check_invariants(run_dir: Path, n_cycles: int, cheap_name: str = "hf-sto3g") -> dict:
    """The store's invariants after a finished campaign (``cheap_name``: the cheap fidelity's name); returns a few
    counts for further checks."""
    with CampaignStore.open(store_path(run_dir)) as store:
        labels = label_rows(store)  # asserts exactly-once
        sel = store.table("selection")
        progress = store.table("progress")
        assert np.any(progress["phase"] == "finished")
        for cycle in range(n_cycles):
            assert np.any((progress["cycle"] == cycle) & (progress["phase"] == "trained")), f"cycle {cycle} not trained"
        hashes: dict[str, str | None] = {"cheap": None, "expensive": None}
        for h, info in store.fidelities().items():
            hashes["cheap" if info["name"] == cheap_name else "expensive"] = h
        for fid, role in zip(sel["frame_id"], sel["role"], strict=True):
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
