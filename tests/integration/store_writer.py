"""The writer the store crash test kills: appends frames and labels in batches with commits.

Everything it writes is a deterministic function of the frame index (or the
checkpoint version), so the test can regenerate the expected content of any
committed prefix. It resumes from whatever the store committed last.

Run by hand: ``python tests/integration/store_writer.py STORE MODE SEED LOG [TARGET]``.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from ase import Atoms

from alloop.fidelity import load_fidelity
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.store import CampaignStore, FrameFlag
from alloop.store import campaign as campaign_module

CHEAP = load_fidelity("hf-sto3g")
EXPENSIVE = load_fidelity("mp2-dz")
CONFIG = {"fidelities": {"cheap": "hf-sto3g", "expensive": "mp2-dz"}, "seed": 11}
#: per mode: largest batch, frames per checkpoint, checkpoint size in bytes
MODES = {"frames": (40, 60, 50_000), "checkpoints": (4, 2, 3 << 20)}
CHEAP_LAG, EXPENSIVE_LAG = 2, 5


def frame(k: int) -> Atoms:
    rng = np.random.default_rng(k)
    n = 1 + (k * 7) % 12
    return Atoms(numbers=rng.integers(1, 19, n), positions=rng.normal(0.0, 3.0, (n, 3)))


def meta(ks: range) -> dict[str, np.ndarray]:
    k = np.arange(ks.start, ks.stop)
    return {
        "origin": np.where(k % 10 == 0, "bootstrap", "md"),
        "replica": k % 3,
        "md_step": 10 * k,
        "q_score": np.where(k % 4 == 0, np.nan, np.sqrt(k + 0.5)),
        "flags": np.where(k % 5 == 0, int(FrameFlag.FLAGGED), 0),
    }


def label(k: int, expensive: bool) -> LabelResult:
    n = 1 + (k * 7) % 12
    if (expensive and k % 11 == 5) or (not expensive and k % 7 == 3):
        status = LabelStatus.SCF_NOT_CONVERGED if expensive else LabelStatus.FAILED
        return LabelResult.failure(n, status, f"failure at frame {k}", cpu_seconds=0.25 * k)
    rng = np.random.default_rng(10_000_000 * (1 + expensive) + k)
    return LabelResult(float(rng.normal() * 50), rng.normal(size=(n, 3)), LabelStatus.OK, "", 1.5 * k, 2.5 * k, k % 17)


def cheap_due(n_frames: int) -> list[int]:
    return list(range(max(0, n_frames - CHEAP_LAG)))


def expensive_due(n_frames: int) -> list[int]:
    return [k for k in range(max(0, n_frames - EXPENSIVE_LAG)) if k % 3 == 0]


def bias(k: np.ndarray) -> np.ndarray:
    return np.cos(k.astype(float)) / 7


def replica_state(n_frames: int) -> bytes:
    return np.random.default_rng(n_frames).bytes(1000 + n_frames % 500)


def checkpoint_blob(version: int, size: int) -> bytes:
    return np.random.default_rng(77 + version).bytes(size + version)


def run(path: str, mode: str, seed: int, log: str, target: int = 10**9) -> None:
    """Append batches until ``target`` frames; log "committed SEQ N" after each commit returns."""
    max_batch, per_checkpoint, size = MODES[mode]
    campaign_module.FLUSH_BYTES = 100_000  # flush rows to disk between commits too (a kill then finds them uncommitted)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    rng = np.random.default_rng(seed)
    with CampaignStore.create(path, CONFIG, exist_ok=True) as store:
        os.write(fd, f"ready {store.seq} {store.n_frames}\n".encode())
        while store.n_frames < target:
            n = store.n_frames
            stop = min(target, n + int(rng.integers(1, max_batch + 1)))
            store.add_frames([frame(k) for k in range(n, stop)], **meta(range(n, stop)))
            for fidelity, due, previous, expensive in (
                (CHEAP, cheap_due(stop), cheap_due(n), False),
                (EXPENSIVE, expensive_due(stop), expensive_due(n), True),
            ):
                new = sorted(set(due) - set(previous))
                again = previous[-2:]  # already labelled: must be skipped
                mask = store.add_labels(fidelity, again + new, [label(k, expensive) for k in again + new])
                if mask.tolist() != [False] * len(again) + [True] * len(new):
                    sys.exit(f"exactly-once violated at n={n}: {mask.tolist()}")
                if not expensive and new:
                    store.append_rows("bias", frame_id=np.array(new), B=bias(np.array(new)))
                    store.set_flags(new, FrameFlag.SELECTED_CHEAP)
            store.put_blob("replica-0", replica_state(stop))
            while len(store.checkpoints()) < stop // per_checkpoint:
                version = len(store.checkpoints())
                os.write(fd, f"checkpoint {version}\n".encode())
                store.add_checkpoint(checkpoint_blob(version, size), {"version": version, "frames": stop})
            seq = store.commit(cycle=stop // 100, phase=mode)
            os.write(fd, f"committed {seq} {stop}\n".encode())
            time.sleep(float(rng.uniform(0, 0.004)))
    os.write(fd, b"done\n")
    os.close(fd)


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], *(int(a) for a in sys.argv[5:6]))
