"""The explore phase: MD segments with the current model, scoring, and the choice of frames to label.

Replicas are split over the workers (one task per group, each group advanced
with one batched model call per step). The recorded frames, their scores and
flags, the cheap-label selection and the replicas' new states are committed
together by the caller, so a crash never leaves frames without their
selection or a replica state ahead of its frames.
"""

from __future__ import annotations

import io

import numpy as np
from ase import Atoms

from alloop.campaign import ledger
from alloop.campaign.context import PhaseContext, model_version
from alloop.campaign.taskrun import run_tasks
from alloop.campaign.tasks import MDTaskResult, md_task
from alloop.errors import AlloopError
from alloop.md.state import ReplicaState, init_replicas, redraw_velocities
from alloop.store.schema import FrameFlag
from alloop.uncertainty.selection import select_frames

REPLICAS_BLOB = "replicas"
UNCERTAINTY_BLOB = "uncertainty"


def pack_states(states: dict[int, bytes]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{f"r{r}": np.frombuffer(b, dtype=np.uint8) for r, b in states.items()})
    return buf.getvalue()


def unpack_states(blob: bytes) -> dict[int, bytes]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {int(k[1:]): data[k].tobytes() for k in data.files}


def starting_states(ctx: PhaseContext, cycle: int) -> dict[int, bytes]:
    """Replica states for this cycle: continued (periodic) or fresh from the input structures (naive)."""
    cfg = ctx.cfg
    blob = ctx.store.get_blob(REPLICAS_BLOB)
    if cfg.schedule.strategy == "periodic" and blob is not None:
        return unpack_states(blob)
    states: dict[int, bytes] = {}
    for r in range(cfg.md.n_replicas):
        atoms = ctx.structures[r % len(ctx.structures)]
        seed = cfg.seed * 100_003 + (cycle + 1) * 1009 + r
        (state,) = init_replicas(atoms, 1, cfg.md.temperature_K, seed)
        states[r] = state.to_bytes()
    return states


def _guard_settings(ctx: PhaseContext) -> dict:
    md = ctx.cfg.md
    low, high = md.temperature_range_K
    return {"max_bond_factor": md.max_bond_stretch, "min_distance_A": md.min_distance_A,
            "min_temperature_K": low, "max_temperature_K": high}


def explore(ctx: PhaseContext, cycle: int, n_cheap: int) -> float:
    """Run one MD segment for every replica, add frames and the cheap selection; returns the flag rate."""
    cfg, store = ctx.cfg, ctx.store
    naive = cfg.schedule.strategy == "naive"
    version = model_version(store, first=naive)
    model_blob, _ = store.checkpoint(version)
    uq_blob = store.get_blob(UNCERTAINTY_BLOB)
    if uq_blob is None:
        raise AlloopError("the store holds no uncertainty model: the bootstrap training did not finish")
    states = starting_states(ctx, cycle)
    groups = np.array_split(np.array(sorted(states)), min(ctx.slots, len(states)))
    md = {"temperature_K": cfg.md.temperature_K, "timestep_fs": cfg.md.timestep_fs,
          "friction_per_fs": cfg.md.friction_per_fs, "integrator": "langevin" if cfg.md.ensemble == "langevin" else "verlet"}
    threads = cfg.execution.threads_per_worker
    ctx.progress.update(cycle=cycle, phase=f"MD: {len(states)} replicas x {cfg.md.segment_steps} steps")
    args = [(model_blob, uq_blob, ctx.reference, ctx.reference, {int(r): states[int(r)] for r in g},
             cfg.md.segment_steps, md, cfg.md.record_every, _guard_settings(ctx), threads) for g in groups if len(g)]
    results: list[MDTaskResult] = run_tasks(ctx.client, md_task, args, cfg.execution.max_task_retries)
    frames, meta, descriptors = _collect(results, ctx.reference)
    if not frames:
        raise AlloopError(f"cycle {cycle}: MD recorded no frames (segment_steps {cfg.md.segment_steps}, "
                          f"record_every {cfg.md.record_every})")
    flagged = meta["q_score"] > 1.0
    unstable = meta["unstable"]
    if cfg.selection.diversity == "none":
        descriptors = meta["q_score"][:, None]
    chosen = select_frames(meta["q_score"], descriptors, meta["replica"], meta["md_step"], n_cheap,
                           unstable=unstable, min_spacing_steps=cfg.selection.min_step_spacing,
                           fill_to=cfg.selection.min_cheap_per_cycle)
    flags = np.where(flagged, int(FrameFlag.FLAGGED), 0) | np.where(unstable, int(FrameFlag.UNSTABLE), 0)
    flags[chosen.indices] |= int(FrameFlag.SELECTED_CHEAP)
    ids = store.add_frames(frames, origin="md", replica=meta["replica"], md_step=meta["md_step"], cycle=cycle,
                           model_version=version, q_score=meta["q_score"], t2_score=meta["t2_score"],
                           flags=flags.astype(np.uint32))
    ledger.select(store, cycle, ids[chosen.indices], "cheap", chosen.reasons)
    store.put_blob(REPLICAS_BLOB, pack_states(_next_states(results, ctx, cycle)))
    stopped = {r: why for res in results for r, why in res.stop_reasons.items() if why}
    for r, why in sorted(stopped.items()):
        where = "its input structure" if cfg.md.restart_from == "start" else "its last stable positions"
        ctx.log(f"cycle {cycle}: replica {r} stopped ({why}); it restarts from {where} with fresh velocities")
    rate = float(flagged.mean())
    ctx.log(f"cycle {cycle}: MD recorded {len(frames)} frames with model v{version}; {int(flagged.sum())} above the "
            f"limit ({rate:.0%}), {int(unstable.sum())} unstable; {len(chosen.indices)} selected for '"
            f"{ctx.fidelities['cheap'].name}'")
    ctx.progress.update(flag_rate=rate)
    return rate


def _collect(results: list[MDTaskResult], reference: Atoms) -> tuple[list[Atoms], dict[str, np.ndarray], np.ndarray]:
    frames: list[Atoms] = []
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("replica", "md_step", "q_score", "t2_score", "unstable")}
    desc = []
    for res in results:
        frames += [Atoms(numbers=reference.numbers, positions=p) for p in res.positions]
        cols["replica"].append(res.replicas)
        cols["md_step"].append(res.steps)
        cols["q_score"].append(res.q_score)
        cols["t2_score"].append(res.t2_score)
        cols["unstable"].append(res.unstable)
        desc.append(res.descriptors)
    meta = {k: np.concatenate(v) if v else np.zeros(0) for k, v in cols.items()}
    meta["unstable"] = meta["unstable"].astype(bool)
    width = max((d.shape[1] for d in desc), default=1)
    descriptors = np.concatenate([d.reshape(len(d), width) for d in desc]) if desc else np.zeros((0, width))
    return frames, meta, descriptors


def _next_states(results: list[MDTaskResult], ctx: PhaseContext, cycle: int) -> dict[int, bytes]:
    """Final states; a replica stopped by a guard restarts with velocities re-drawn at the target temperature,
    from its input structure (``md.restart_from: start``) or from its last stable frame (``last-stable``).

    Restarting at the last stable frame keeps the replica next to the region where the model failed; with few
    labels the model often fails there again at once, cycle after cycle, and the labels go to ever more distorted
    frames. Restarting from the input structure explores the way there again with the improved model; its step
    count continues from the failing step (``last-stable`` continues from the stable frame's step). Naive
    campaigns store the states too (for inspection) but start every cycle afresh.
    """
    out: dict[int, bytes] = {}
    masses = ctx.reference.get_masses()
    for res in results:
        for r, final in res.final_states.items():
            if not res.stop_reasons.get(r):
                out[r] = final
                continue
            seed = ctx.cfg.seed * 100_003 + (cycle + 1) * 1009 + r
            if ctx.cfg.md.restart_from == "start":
                last = ReplicaState.from_bytes(final)
                start = ctx.structures[r % len(ctx.structures)]
                base = ReplicaState(start.positions, last.velocities, last.step, last.rng_state,
                                    restarts=last.restarts, extra=dict(last.extra))
            else:
                base = ReplicaState.from_bytes(res.last_stable_states[r])
            out[r] = redraw_velocities(base, masses, ctx.cfg.md.temperature_K, seed).to_bytes()
    return out
