"""The campaign loop: bootstrap, then cycles of explore -> select -> label cheap -> bias -> label expensive -> train.

The driver is the store's single writer. MD segments, labels and training
run as Dask tasks; results come back here and are committed. Every phase ends
with a ``progress`` row committed together with its data (see ledger.py), so
``run()`` called on a store killed at any instant continues where it stopped:
finished phases are skipped, selected frames without a committed label are
labelled, a half-finished training restarts.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
from ase import Atoms

from alloop.campaign import ledger
from alloop.campaign import original as originals
from alloop.campaign.bootstrap import normal_mode_samples, rattle_samples
from alloop.campaign.budget import cycle_quota
from alloop.campaign.context import PhaseContext
from alloop.campaign.evaluation import cycle_columns
from alloop.campaign.explore import explore
from alloop.campaign.labeling_pool import LabelingPool
from alloop.campaign.progress import Progress
from alloop.campaign.tasks import TRAIN_TOPIC, LabelledArrays, TrainRequest, train_task, training_settings
from alloop.campaign.taskrun import run_tasks
from alloop.config import CampaignConfig
from alloop.errors import AlloopError
from alloop.fidelity import Fidelity
from alloop.potentials.checkpoint import model_from_bytes
from alloop.store import tables
from alloop.store.campaign import CampaignStore
from alloop.store.schema import FrameFlag
from alloop.uncertainty.bias import model_bias
from alloop.uncertainty.energy_window import within_thermal_window
from alloop.uncertainty.qresidual import QResidualSettings
from alloop.uncertainty.selection import select_expensive

COMMIT_EVERY_S = 5.0


def labelled_arrays(store: CampaignStore, fidelity: Fidelity) -> LabelledArrays:
    """The frames with a successful label at ``fidelity``, in frame-id order.

    Labels are committed in the order they finish, which varies from run to run
    with parallel workers; ordering by frame id makes the training data (and so
    its validation split and the trained model) a function of the labels alone.
    """
    if fidelity.hash() not in store.fidelities():
        return LabelledArrays(np.zeros(0, np.int64), [], [], fidelity=fidelity.hash())
    table = store.labels(fidelity.hash())
    rows = np.flatnonzero(table.ok)
    rows = rows[np.argsort(table.frame_id[rows], kind="stable")]
    frames = store.get_frames(table.frame_id[rows])
    return LabelledArrays(
        frame_ids=table.frame_id[rows], numbers=[a.numbers for a in frames], positions=[a.positions for a in frames],
        energy=table.energy[rows], forces=[table.frame_forces(int(r)) for r in rows], fidelity=fidelity.hash(),
    )


class Campaign:
    """Runs (or resumes) one campaign on a Dask client, writing to its store."""

    def __init__(self, cfg: CampaignConfig, store: CampaignStore, client: Any, *, progress: Progress | None = None,
                 log: Callable[[str], None] = print, labeler_factory: Callable[[Any], Any] | None = None) -> None:
        self.cfg, self.store, self.client, self.log = cfg, store, client, log
        self.fidelities = {"cheap": cfg.cheap_fidelity, "expensive": cfg.expensive_fidelity}
        self.structures = cfg.load_structures()
        self.elements = sorted({int(z) for a in self.structures for z in a.numbers})
        self.progress = progress or Progress(enabled=False)
        ex = cfg.execution
        self.slots = max(1, sum(client.nthreads().values()))
        self.original: originals.Original | None = None
        self.pool = LabelingPool(client, threads_per_task=ex.threads_per_worker, tasks_per_slot=ex.tasks_per_slot,
                                 max_retries=ex.max_task_retries, labeler_factory=labeler_factory)

    # ------------------------------------------------------------------ entry
    def run(self) -> str:
        """Run until a stop condition; returns the reason the campaign finished."""
        done = ledger.finished_reason(self.store)
        if done is not None:
            return done
        self.original = originals.prepare(self.store, self.cfg, self.structures, self.log)
        if not ledger.phase_done(self.store, ledger.BOOTSTRAP, "trained"):
            self._bootstrap()
        for cycle in range(self.cfg.schedule.n_cycles):
            if not ledger.phase_done(self.store, cycle, "trained"):
                quota = cycle_quota(self.cfg, self.store, self.fidelities)
                if quota.n_cheap == 0 and not ledger.phase_done(self.store, cycle, "explored"):
                    return self._finish(cycle - 1, quota.reason or "labelling budget spent")
                self._cycle(cycle)
            reason = self._stop_reason(cycle)
            if reason is not None:
                return self._finish(cycle, reason)
        return self._finish(self.cfg.schedule.n_cycles - 1, f"{self.cfg.schedule.n_cycles} cycles done")

    def _finish(self, cycle: int, reason: str) -> str:
        if self.cfg.schedule.strategy == "naive" and cycle >= 0 and not self._trained_after_bootstrap():
            self._train(cycle, mark=False)
        ledger.mark_phase(self.store, cycle, "finished", note={"reason": reason})
        self.progress.update(phase="finished")
        self.log(f"campaign finished: {reason}")
        return reason

    def _trained_after_bootstrap(self) -> bool:
        rows = tables.read(self.store, tables.CYCLES)
        return bool(rows) and bool(np.any((rows["cycle"] >= 0) & (rows["model_version"] >= 0)))

    # -------------------------------------------------------------- bootstrap
    def _bootstrap(self) -> None:
        b = self.cfg.schedule.bootstrap
        if not ledger.phase_done(self.store, ledger.BOOTSTRAP, "sampled"):
            self.progress.update(cycle=-1, phase="bootstrap: sampling")
            samples = self._bootstrap_samples()
            ids = self.store.add_frames(samples, origin="bootstrap", cycle=-1)
            ledger.select(self.store, ledger.BOOTSTRAP, ids, "cheap", ["bootstrap"] * len(ids))
            n_exp = min(b.n_expensive, len(ids))
            ledger.select(self.store, ledger.BOOTSTRAP, ids[:n_exp], "expensive", ["bootstrap"] * n_exp)
            ledger.mark_phase(self.store, ledger.BOOTSTRAP, "sampled")
            self.log(f"bootstrap: {len(ids)} samples ({b.method}), {n_exp} to be labelled at both fidelities")
        if not ledger.phase_done(self.store, ledger.BOOTSTRAP, "labelled"):
            self._label(ledger.BOOTSTRAP, ("expensive", "cheap"))
            ledger.mark_phase(self.store, ledger.BOOTSTRAP, "labelled")
        self._train(ledger.BOOTSTRAP)

    def _bootstrap_samples(self) -> list[Atoms]:
        b, seed = self.cfg.schedule.bootstrap, self.cfg.seed
        per = [b.n_samples // len(self.structures) + (k < b.n_samples % len(self.structures))
               for k in range(len(self.structures))]
        out: list[Atoms] = []
        for k, (atoms, n) in enumerate(zip(self.structures, per)):
            if b.method == "rattle":
                out += rattle_samples(atoms, n, b.amplitude_A, seed + k)
            else:
                from alloop.campaign.hessian import cheap_hessian

                hessian = run_tasks(self.client, cheap_hessian, [(atoms, self.fidelities["cheap"])],
                                    self.cfg.execution.max_task_retries)[0]
                out += normal_mode_samples(atoms, hessian, n, b.temperature_K, seed + k)
        return out

    # ----------------------------------------------------------------- cycles
    def _cycle(self, cycle: int) -> None:
        """One cycle, skipping the phases the store says are done."""
        if not ledger.phase_done(self.store, cycle, "explored"):
            quota = cycle_quota(self.cfg, self.store, self.fidelities)
            flag_rate = explore(self._context(), cycle, quota.n_cheap)
            ledger.mark_phase(self.store, cycle, "explored", note={"flag_rate": flag_rate})
        if not ledger.phase_done(self.store, cycle, "labelled-cheap"):
            self._label(cycle, ("cheap",))
            ledger.mark_phase(self.store, cycle, "labelled-cheap")
        if not ledger.phase_done(self.store, cycle, "selected-expensive"):
            self._select_expensive(cycle, cycle_quota(self.cfg, self.store, self.fidelities).n_expensive)
            ledger.mark_phase(self.store, cycle, "selected-expensive")
        if not ledger.phase_done(self.store, cycle, "labelled-expensive"):
            self._label(cycle, ("expensive",))
            ledger.mark_phase(self.store, cycle, "labelled-expensive")
        last = cycle == self.cfg.schedule.n_cycles - 1
        if self.cfg.schedule.strategy == "periodic" or last:
            self._train(cycle)
        else:
            self._cycle_row(cycle, -1, {}, 0.0)
            ledger.mark_phase(self.store, cycle, "trained", note={"skipped": "naive strategy trains once, at the end"})

    def _context(self) -> PhaseContext:
        return PhaseContext(cfg=self.cfg, store=self.store, client=self.client, structures=self.structures,
                            fidelities=self.fidelities, slots=self.slots, progress=self.progress, log=self.log)

    def _stop_reason(self, cycle: int) -> str | None:
        s = self.cfg.schedule
        rows = tables.read(self.store, tables.CYCLES)
        this = np.flatnonzero(rows["cycle"] == cycle) if rows else np.zeros(0, int)
        if this.size:
            row = int(this[-1])
            mae = float(rows["val_force_mae_eV_per_A"][row])
            target = s.target_val_force_mae_eV_per_A
            if target is not None and np.isfinite(mae) and mae <= target:
                return f"validation force MAE {mae:.4f} eV/A reached the target {target} eV/A"
            rate = float(rows["flag_rate"][row])
            if s.min_flag_rate is not None and rate < s.min_flag_rate:
                return f"flag rate {rate:.3f} fell below {s.min_flag_rate}"
        quota = cycle_quota(self.cfg, self.store, self.fidelities)
        if quota.n_cheap == 0 and cycle < s.n_cycles - 1:
            return quota.reason or "labelling budget spent"
        return None

    # ---------------------------------------------------------------- labels
    def _label(self, cycle: int, roles: tuple[str, ...]) -> None:
        """Label every frame selected in ``cycle`` for ``roles`` that has no committed label yet."""
        todo: dict[str, np.ndarray] = {}
        for role in roles:
            fid = self.fidelities[role]
            chosen = ledger.selected(self.store, role, cycle)
            todo[role] = np.setdiff1d(chosen, ledger.labelled_ids(self.store, fid))
        total = sum(len(v) for v in todo.values())
        if total == 0:
            return
        frames = {role: self.store.get_frames(ids) for role, ids in todo.items()}
        by_key: dict[str, tuple[str, int]] = {}
        for role, ids in todo.items():
            for fid_, atoms in zip(ids, frames[role]):
                key = f"{role}-{int(fid_)}"
                by_key[key] = (role, int(fid_))
                self.pool.submit(key, atoms, self.fidelities[role])
        done = {role: 0 for role in todo}
        self.progress.update(cycle=cycle, phase=f"labelling {'+'.join(roles)}",
                             labels={r: (0, len(v)) for r, v in todo.items()})
        last_commit = time.monotonic()
        for key, result in self.pool.results():
            role, frame_id = by_key[key]
            self.store.add_labels(self.fidelities[role], [frame_id], [result])
            done[role] += 1
            self.progress.update(labels={r: (done[r], len(todo[r])) for r in todo}, in_flight=self.pool.n_in_flight,
                                 spent_delta=result.cpu_seconds, last_status=(role, result.status.value))
            if time.monotonic() - last_commit > COMMIT_EVERY_S:
                self.store.commit(cycle=cycle, phase="labelling")
                last_commit = time.monotonic()
        self.store.commit(cycle=cycle, phase="labelling")

    def _select_expensive(self, cycle: int, budget: int) -> None:
        cheap, expensive = self.fidelities["cheap"], self.fidelities["expensive"]
        ids = ledger.selected(self.store, "cheap", cycle)
        table = self.store.labels(cheap.hash()) if cheap.hash() in self.store.fidelities() else None
        if table is None or budget == 0 or ids.size == 0:
            return
        rows = np.flatnonzero(np.isin(table.frame_id, ids) & table.ok)
        rows = rows[~np.isin(table.frame_id[rows], ledger.labelled_ids(self.store, expensive))]
        if rows.size == 0:
            return
        frame_ids = table.frame_id[rows]
        frames = self.store.get_frames(frame_ids)
        forces = np.concatenate([table.frame_forces(int(r)) for r in rows])
        bias_model = self._latest_model(role="theta0") or self._latest_model(role="model")
        bias = model_bias(bias_model, frames, forces)
        window = ""
        sigma = self.cfg.selection.energy_window_sigma
        if sigma is not None:
            inside = self._thermal_mask(table, rows, frames, sigma)
            bias = np.where(inside, bias, np.nan)  # never selected
            window = f"; {int((~inside).sum())} outside the thermal energy window"
        chosen = select_expensive(bias, budget)
        ledger.select(self.store, cycle, frame_ids[chosen.indices], "expensive", chosen.reasons)
        self.store.set_flags(frame_ids[chosen.indices], FrameFlag.SELECTED_EXPENSIVE)
        median = f"{np.nanmedian(bias):.3f}" if np.isfinite(bias).any() else "n/a"
        self.log(f"cycle {cycle}: {len(chosen.indices)} of {rows.size} cheap-labelled frames go to "
                 f"'{expensive.name}' (top bias B, median B {median} eV/A{window})")

    def _thermal_mask(self, table, rows: np.ndarray, frames: list[Atoms], n_sigma: float) -> np.ndarray:
        """Which of the cheap-labelled ``rows`` lie within the thermal energy window (see energy_window)."""
        ok = np.flatnonzero(table.ok)
        reference = self.store.get_frames(table.frame_id[ok])
        return within_thermal_window(table.energy[rows], [a.numbers for a in frames], table.energy[ok],
                                     [a.numbers for a in reference], self.cfg.md.temperature_K, n_sigma)

    # ---------------------------------------------------------------- models
    def _latest_model(self, role: str = "model"):
        versions = [c for c in self.store.checkpoints() if c.get("role") == role]
        if not versions:
            return None
        blob, _ = self.store.checkpoint(int(versions[-1]["version"]))
        return model_from_bytes(blob)[0]

    def _labelled(self, role: str) -> LabelledArrays:
        return labelled_arrays(self.store, self.fidelities[role])

    def _unlabelled(self) -> LabelledArrays:
        meta = self.store.frame_meta()
        ids = np.flatnonzero(meta["origin"] == 2)  # md frames
        frames = self.store.get_frames(ids) if ids.size else []
        return LabelledArrays(ids, [a.numbers for a in frames], [a.positions for a in frames])

    def _train(self, cycle: int, mark: bool = True) -> dict[str, Any]:
        cfg = self.cfg
        self.progress.update(cycle=cycle, phase="training")
        expensive = self._labelled("expensive")
        if len(expensive) < 2:
            raise AlloopError(f"training needs at least 2 expensive labels with status ok, the store has {len(expensive)}")
        cheap = self._labelled("cheap")
        initial = None
        if cfg.model.checkpoint is not None:  # the store's copy of the file's model (prepared by run())
            initial = self.store.checkpoint(originals.stored_version(self.store))[0]
        u = cfg.uncertainty
        # the worker's own thread count: small molecules gain nothing from more torch threads, and oversubscribed
        # OpenMP threads made training 17x slower on a busy 2-core machine (measured)
        threads = cfg.execution.threads_per_worker
        warm = self._warm_start_blobs()
        # a periodic cycle continues the previous models briefly; the naive strategy's one fine-tune on all the
        # labels starts from the bootstrap model too, but with the full budget and learning rate
        short = bool(warm) and cfg.schedule.strategy == "periodic"
        request = TrainRequest(
            method=cfg.training.method, architecture=cfg.model.architecture, elements=self.elements,
            hyperparameters={**cfg.model.hyperparameters(), "seed": cfg.seed},
            expensive=expensive, cheap=cheap if len(cheap) else None,
            unlabelled=self._unlabelled() if cfg.training.method == "score-matching" else None,
            settings=training_settings(cfg.training, cfg.seed + max(cycle, 0), threads, cfg.md.temperature_K,
                                       warm=short),
            uq_settings=QResidualSettings(n_components=u.n_components, per_element=u.per_element, alpha=u.alpha,
                                          limit=u.limit.replace("-", "_"), calibration=u.calibration.replace("-", "_"),
                                          n_folds=u.n_folds, frame_score=u.frame_score,
                                          frame_quantile=u.score_quantile),
            initial_model=initial, warm=warm, threads=threads, metadata={"cycle": cycle},
            replay=self.original.replay_pool(cfg.seed) if cfg.training.replay_fraction > 0 else None,
        )
        self.client.subscribe_topic(TRAIN_TOPIC, lambda event: self.log(f"  {event[1]}"))
        try:
            result = run_tasks(self.client, train_task, [(request,)], cfg.execution.max_task_retries)[0]
        finally:
            self.client.unsubscribe_topic(TRAIN_TOPIC)
        if result.bias_model_blob is not None:
            self.store.add_checkpoint(result.bias_model_blob, {"cycle": cycle}, role="theta0")
        if result.pretrained_blob is not None:
            self.store.add_checkpoint(result.pretrained_blob, {"cycle": cycle}, role="stage2")
        version = self.store.add_checkpoint(result.model_blob, {"cycle": cycle, "metrics": result.metrics,
                                                                "gamma": result.gamma}, role="model")
        self.store.put_blob("uncertainty", result.uq_blob)
        if result.bias is not None and cheap is not None and len(cheap):
            tables.append(self.store, tables.BIAS, model_version=np.full(len(cheap), version), frame_id=cheap.frame_ids,
                          B=np.asarray(result.bias, float), w=np.asarray(result.weights, float))
        self._cycle_row(cycle, version, result.metrics, result.seconds)
        if mark:
            ledger.mark_phase(self.store, cycle, "trained", note={"model_version": version})
        mae = result.metrics.get("force_mae_eV_per_A")
        self.progress.update(val_force_mae=mae)
        self.log(f"cycle {cycle}: model v{version} trained in {result.seconds:.0f} s on {len(expensive)} expensive and "
                 f"{len(cheap)} cheap labels; validation force MAE {mae:.4f} eV/A")
        return result.metrics

    def _warm_start_blobs(self) -> dict[str, bytes]:
        """The newest checkpoint of each role (theta0, stage2, model) to continue from, if warm starts are on."""
        if not self.cfg.training.warm_start:
            return {}
        out = {}
        for role in ("theta0", "stage2", "model"):
            versions = [int(c["version"]) for c in self.store.checkpoints() if c.get("role") == role]
            if versions:
                out[role] = self.store.checkpoint(versions[-1])[0]
        return out

    def _cycle_row(self, cycle: int, version: int, metrics: dict[str, Any], seconds: float) -> None:
        sp = ledger.spend(self.store, self.fidelities)
        meta = self.store.frame_meta()
        md = (meta["origin"] == 2) & (meta["cycle"] == cycle)
        flagged = md & ((meta["flags"] & int(FrameFlag.FLAGGED)) > 0)
        tables.append(
            self.store, tables.CYCLES, cycle=[cycle], model_version=[version], md_frames=[int(md.sum())],
            flag_rate=[flagged.sum() / max(1, md.sum())], labels_cheap=[sp.labels["cheap"]],
            labels_expensive=[sp.labels["expensive"]], cpu_cheap_s=[sp.cpu_seconds["cheap"]],
            cpu_expensive_s=[sp.cpu_seconds["expensive"]],
            val_force_mae_eV_per_A=np.array([metrics.get("force_mae_eV_per_A", np.nan)], float),
            val_energy_mae_eV=np.array([metrics.get("energy_mae_eV", np.nan)], float), train_seconds=[seconds],
            time=[time.time()],
            **cycle_columns(self.store, version, cycle, self.log),  # scores on the evaluation set (NaN without one)
            **originals.forgetting_columns(self.store, self.original, version, self.log),  # NaN without an original
        )
