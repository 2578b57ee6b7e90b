"""The explore phase: MD segments with the current model, scoring, and the choice of frames to label.

Replicas are dealt over the campaign's molecules (:class:`alloop.system.molecules.Molecules`: replica r to molecule
r % M, then over that molecule's starting structures) and split into MD tasks: one set per topology (the same
atoms in the same order) and bath temperature, each split over the workers and advanced with one batched model
call per step. Each replica's guards measure it against its own starting structure, and a stopped replica
restarts from it; frame descriptors have one column block per element of the campaign, the same in every task.
The recorded frames, their scores and
flags, the cheap-label selection, the reaction events (``md_events``) and the replicas' new states are committed
together by the caller, so a crash never leaves frames without their
selection or a replica state ahead of its frames, and every event is committed exactly once.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from alloop.campaign.execution.md_task import MDRequest, MDTaskResult, md_task
from alloop.campaign.execution.taskrun import BackgroundTask
from alloop.campaign.phases import representative
from alloop.campaign.phases.context import UNCERTAINTY_BLOB, PhaseContext, model_version
from alloop.campaign.phases.settings import SelectionSettings
from alloop.errors import AlloopError
from alloop.md.state import ReplicaState, init_replicas, redraw_velocities
from alloop.store import ledger, tables
from alloop.store.md_cost import md_cost_line
from alloop.store.schema import FrameFlag
from alloop.uncertainty.selection import Selection, select_frames

REPLICAS_BLOB = "replicas"


def pack_states(states: dict[int, bytes]) -> bytes:
    buf = io.BytesIO()
    # allow_pickle=True: numpy's default, named so that mypy lets the **arrays pass
    np.savez(buf, allow_pickle=True, **{f"r{r}": np.frombuffer(b, dtype=np.uint8) for r, b in states.items()})
    return buf.getvalue()


def unpack_states(blob: bytes) -> dict[int, bytes]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {int(k[1:]): data[k].tobytes() for k in data.files}


def replica_seed(seed: int, cycle: int, replica: int) -> int:
    """The seed of a replica's fresh velocities in ``cycle`` (a new start or a restart after a stop)."""
    return seed * 100_003 + (cycle + 1) * 1009 + replica


def starting_states(ctx: PhaseContext, cycle: int) -> dict[int, bytes]:
    """Replica states for this cycle: continued (periodic) or fresh from the input structures (naive)."""
    s = ctx.settings
    blob = ctx.store.get_blob(REPLICAS_BLOB)
    if s.periodic and blob is not None:
        return unpack_states(blob)
    states: dict[int, bytes] = {}
    for r in range(s.explore.n_replicas):
        atoms = ctx.replica_start(r)
        (state,) = init_replicas(atoms, 1, ctx.replica_temperature(r), replica_seed(s.seed, cycle, r))
        states[r] = state.to_bytes()
    return states


def replica_groups(replicas: list[int], temperatures: list[float], slots: int,
                   topologies: list[Hashable] | None = None) -> list[list[int]]:
    """Replicas split into MD tasks: one set per topology and bath temperature (a task has one molecule's atoms and
    one integrator), each split evenly over about ``slots / number of sets`` tasks (at least one)."""
    keys = topologies if topologies is not None else [None] * len(replicas)
    sets: dict[tuple[Hashable, float], list[int]] = {}
    for r, temperature, key in zip(replicas, temperatures, keys, strict=True):
        sets.setdefault((key, temperature), []).append(r)
    pieces = max(1, slots // len(sets)) if sets else 1
    return [[int(r) for r in g] for group in sets.values()
            for g in np.array_split(np.array(group), min(pieces, len(group))) if len(g)]


def md_requests(ctx: PhaseContext, states: dict[int, bytes], model_blob: bytes, uq_blob: bytes) -> list[MDRequest]:
    """One MD task per group of replicas of one topology at one temperature, each group split evenly over the
    cluster's slots; every replica's guards measure against its own starting structure."""
    ex = ctx.settings.explore
    replicas = sorted(states)
    starts = {r: ctx.replica_start(r) for r in replicas}
    groups = replica_groups(replicas, [ctx.replica_temperature(r) for r in replicas], ctx.slots,
                            [starts[r].numbers.tobytes() for r in replicas])
    return [MDRequest(model_blob=model_blob, uq_blob=uq_blob, atoms=starts[g[0]],
                      references={r: starts[r] for r in g}, states={r: states[r] for r in g},
                      n_steps=ex.segment_steps, md=ex.md_at(ctx.replica_temperature(g[0])),
                      record_every=ex.record_every, guards=ex.guards, threads=ctx.settings.threads_per_worker, bias=ex.bias,
                      elements=tuple(ctx.elements))
            for g in groups]


@dataclass
class ExploreRun:
    """A cycle's MD tasks in flight (:func:`start_explore`), committed by :func:`finish_explore`."""

    cycle: int
    version: int
    tasks: list[BackgroundTask]

    def ready(self) -> bool:
        """Whether every MD task has ended (a task that lost its worker is resubmitted and keeps this False)."""
        return all([t.ready() for t in self.tasks])


def start_explore(ctx: PhaseContext, cycle: int, priority: int = 0) -> ExploreRun:
    """Submit one MD segment for every replica with the newest model (naive: the bootstrap model)."""
    s, store = ctx.settings, ctx.store
    version = model_version(store, first=not s.periodic)  # naive: every cycle explores with the bootstrap model
    uq_blob = store.get_blob(UNCERTAINTY_BLOB)
    if uq_blob is None:
        raise AlloopError("the store holds no uncertainty model: the bootstrap training did not finish")
    states = starting_states(ctx, cycle)
    ctx.progress.update(cycle=cycle, phase=f"MD: {len(states)} replicas x {s.explore.segment_steps} steps")
    requests = md_requests(ctx, states, store.checkpoint(version)[0], uq_blob)
    herding = representative.herding_on(s.selection)
    if s.selection.memory or herding:  # one task describes the frames labelled so far (at most reference_frames)
        requests[0].labelled = ctx.reference_frames("cheap", cycle)
    if representative.target_on(s.selection) and s.selection.herding_target == "campaign":  # and the campaign's
        # reservoir of MD frames
        requests[0].reservoir = representative.reservoir_frames(ctx)
    tasks = [BackgroundTask(ctx.client, md_task, (r,), s.max_task_retries, priority) for r in requests]
    return ExploreRun(cycle, version, tasks)


def finish_explore(ctx: PhaseContext, run: ExploreRun, n_cheap: int) -> float:
    """Wait for the MD tasks, add their frames and the cheap selection (committed by the caller's phase mark);
    returns the flag rate."""
    s, store, cycle, version = ctx.settings, ctx.store, run.cycle, run.version
    results: list[MDTaskResult] = [t.result() for t in run.tasks]
    frames, meta, descriptors = _collect(results, ctx.replica_start)
    if not frames:
        raise AlloopError(f"cycle {cycle}: MD recorded no frames (segment_steps {s.explore.segment_steps}, "
                          f"record_every {s.explore.record_every})")
    score = flag_scores(meta, s.max_force_error_eV_per_A)
    flagged = score > 1.0
    labelled = next((r.labelled_descriptors for r in results if r.labelled_descriptors is not None), None)
    target = herded = None
    if representative.target_on(s.selection):
        pool = next((r.reservoir_descriptors for r in results if r.reservoir_descriptors is not None), None)
        target = representative.cycle_target(ctx, cycle, meta["replica"], descriptors, pool)
        herded = representative.cheap_quota(ctx, target, meta, descriptors, labelled, n_cheap)
    chosen, flags = _choose(s.selection, meta, descriptors, n_cheap, score,
                            labelled if s.selection.memory else None, herded)
    ids = store.add_frames(frames, origin="md", replica=meta["replica"], md_step=meta["md_step"], cycle=cycle,
                           model_version=version, q_score=meta["q_score"], t2_score=meta["t2_score"], flags=flags)
    representative.record_target(ctx, cycle, target, ids)
    ledger.select(store, cycle, ids[chosen.indices], "cheap", chosen.reasons)
    if s.explore.bias.enabled:
        tables.append(store, tables.MD_BIAS, frame_id=ids, bias_energy_eV=meta["bias_energy"])
    predicted = _record_predicted(ctx, cycle, ids, meta)
    store.put_blob(REPLICAS_BLOB, pack_states(_next_states(results, ctx, cycle)))
    _record_events(ctx, cycle, version, results)
    _record_timing(ctx, cycle, version, results)
    _log_stops(ctx, cycle, results)
    rate = float(flagged.mean())
    limit = "the limit" if s.max_force_error_eV_per_A is None else f"{s.max_force_error_eV_per_A:g} eV/A (predicted bound)"
    ctx.log(f"cycle {cycle}: MD recorded {len(frames)} frames with model v{version}; {int(flagged.sum())} above "
            f"{limit} ({rate:.0%}), {int(meta['unstable'].sum())} unstable; {len(chosen.indices)} selected for '"
            f"{ctx.fidelities['cheap'].name}'" + predicted)
    ctx.progress.update(flag_rate=rate)
    return rate


def flag_scores(meta: dict[str, np.ndarray], target: float | None) -> np.ndarray:
    """Each frame's score relative to the flag limit (flagged when > 1): without a ``target``, the Q-residual score;
    with one (eV/A), the predicted force-error bound / target (the Q-residual score for frames without a
    prediction: a model without a calibrated error model)."""
    q = meta["q_score"]
    if target is None:
        return q
    upper = meta["upper_error"]
    return np.where(np.isfinite(upper), upper / target, q)


def _record_predicted(ctx: PhaseContext, cycle: int, ids: np.ndarray, meta: dict[str, np.ndarray]) -> str:
    """Add the frames' predicted force errors (when the model has a calibrated error model) to ``md_predicted``;
    returns the part of the log line that states them."""
    known = np.isfinite(meta["predicted_error"])
    if not known.any():
        return ""
    tables.append(ctx.store, tables.MD_PREDICTED, cycle=np.full(int(known.sum()), cycle), frame_id=ids[known],
                  predicted_force_error_eV_per_A=meta["predicted_error"][known],
                  upper_force_error_eV_per_A=meta["upper_error"][known])
    values = meta["predicted_error"][known]
    ctx.progress.update(predicted_error=float(values.mean()))
    return f"; predicted force error {values.mean():.4f} eV/A (95th percentile {np.percentile(values, 95):.4f})"


def explore(ctx: PhaseContext, cycle: int, n_cheap: int) -> float:
    """Run one MD segment for every replica, add frames and the cheap selection; returns the flag rate."""
    return finish_explore(ctx, start_explore(ctx, cycle), n_cheap)


def _choose(selection: SelectionSettings, meta: dict[str, np.ndarray], descriptors: np.ndarray,
            n_cheap: int, score: np.ndarray, labelled: np.ndarray | None = None,
            herded: Selection | None = None) -> tuple[Selection, np.ndarray]:
    """The frames chosen for cheap labels (the ``herded`` ones first, then by ``score``, flagged when > 1), and
    every frame's flags (flagged, unstable, selected)."""
    flagged, unstable = score > 1.0, meta["unstable"]
    if selection.diversity == "none":
        descriptors = score[:, None]
    chosen = select_frames(score, descriptors, meta["replica"], meta["md_step"], n_cheap,
                           unstable=unstable, min_spacing_steps=selection.min_step_spacing,
                           fill_to=selection.min_cheap_per_cycle, diverse_fill=selection.diversity != "none",
                           labelled=labelled if selection.diversity != "none" else None, preselected=herded)
    flags = np.where(flagged, int(FrameFlag.FLAGGED), 0) | np.where(unstable, int(FrameFlag.UNSTABLE), 0)
    flags[chosen.indices] |= int(FrameFlag.SELECTED_CHEAP)
    return chosen, flags.astype(np.uint32)


def _record_events(ctx: PhaseContext, cycle: int, version: int, results: list[MDTaskResult]) -> None:
    """Add the tasks' reaction events to ``md_events`` (committed with the frames) and log each one."""
    found = sorted(((r, e) for res in results for r, e in res.events), key=lambda re: (re[0], re[1].step))
    if not found:
        return
    step = np.array([e.step for _, e in found], dtype=np.int64)
    tables.append(ctx.store, tables.MD_EVENTS, cycle=np.full(len(found), cycle), model_version=np.full(len(found), version),
                  replica=[r for r, _ in found], md_step=step, time_fs=step * ctx.settings.explore.md.timestep_fs,
                  broken_i=[e.broken[0] for _, e in found], broken_j=[e.broken[1] for _, e in found],
                  formed_i=[e.formed[0] for _, e in found], formed_j=[e.formed[1] for _, e in found],
                  broken_A=[e.broken_A for _, e in found], formed_A=[e.formed_A for _, e in found])
    for r, event in found:
        ctx.log(f"cycle {cycle}: replica {r} reacted at {event} (recorded; it goes on)")


def _record_timing(ctx: PhaseContext, cycle: int, version: int, results: list[MDTaskResult]) -> None:
    """One ``md_timing`` row per MD task, and a log line of where the MD tasks' seconds went."""
    rows: dict[str, list[float]] = {
        "replicas": [len(r.final_states) for r in results], "replica_steps": [r.replica_steps for r in results],
        "seconds": [r.total_seconds for r in results], "model_seconds": [r.model_seconds for r in results],
        "baseline_seconds": [r.baseline_seconds for r in results], "scoring_seconds": [r.scoring_seconds for r in results]}
    tables.append(ctx.store, tables.MD_TIMING, cycle=[cycle] * len(results), model_version=[version] * len(results),
                  **rows)
    ctx.log(f"cycle {cycle}: MD {md_cost_line(rows)}")


def _log_stops(ctx: PhaseContext, cycle: int, results: list[MDTaskResult]) -> None:
    stopped = {r: why for res in results for r, why in res.stop_reasons.items() if why}
    for r, why in sorted(stopped.items()):
        where = "its input structure" if ctx.settings.explore.restart_from == "start" else "its last stable positions"
        ctx.log(f"cycle {cycle}: replica {r} stopped ({why}); it restarts from {where} with fresh velocities")


def _collect(results: list[MDTaskResult], start: Callable[[int], Atoms]
             ) -> tuple[list[Atoms], dict[str, np.ndarray], np.ndarray]:
    """The tasks' frames (each with the numbers and cell of its replica's ``start``), per-frame columns and
    descriptors, task after task."""
    frames: list[Atoms] = []
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("replica", "md_step", "q_score", "t2_score", "unstable",
                                                         "bias_energy", "predicted_error", "upper_error")}
    desc = []
    for res in results:
        for r, p in zip(res.replicas, res.positions, strict=True):
            topology = start(int(r))
            frames.append(Atoms(numbers=topology.numbers, positions=p, cell=topology.cell, pbc=topology.pbc))
        cols["replica"].append(res.replicas)
        cols["md_step"].append(res.steps)
        cols["q_score"].append(res.q_score)
        cols["t2_score"].append(res.t2_score)
        cols["unstable"].append(res.unstable)
        cols["bias_energy"].append(res.bias_energy)
        cols["predicted_error"].append(res.predicted_error)
        cols["upper_error"].append(res.upper_error)
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
    ex = ctx.settings.explore
    for res in results:
        for r, final in res.final_states.items():
            if not res.stop_reasons.get(r):
                out[r] = final
                continue
            seed = replica_seed(ctx.settings.seed, cycle, r)
            start = ctx.replica_start(r)
            if ex.restart_from == "start":
                last = ReplicaState.from_bytes(final)
                base = ReplicaState(start.positions, last.velocities, last.step, last.rng_state,
                                    restarts=last.restarts, extra=dict(last.extra))
            else:
                base = ReplicaState.from_bytes(res.last_stable_states[r])
            out[r] = redraw_velocities(base, start.get_masses(), ctx.replica_temperature(r), seed).to_bytes()
    return out
