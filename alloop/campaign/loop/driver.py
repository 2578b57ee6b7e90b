"""The campaign loop: bootstrap, then cycles of explore -> select -> label cheap -> bias -> label expensive -> train.

The driver is the store's single writer. MD segments, labels and training
run as Dask tasks; results come back here and are committed. Every phase ends
with a ``progress`` row committed together with its data (see ledger.py), so
``run()`` called on a store killed at any instant continues where it stopped:
finished phases are skipped, selected frames without a committed label are
labelled, a half-finished training restarts.

With ``schedule.mode: asynchronous`` the phases of successive cycles overlap
(:mod:`.pipeline`): MD, labels of several cycles and one training run at the
same time, each phase starting as soon as its own inputs are committed. The
phases and their marks are the same, so a run killed at any instant resumes
the same way in either mode.

The driver only orders the phases and marks them done; each phase (explore,
label, select_expensive, train) is a function of a :class:`PhaseContext` that
carries the typed settings built once from the config (:mod:`.settings`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from ase import Atoms

from alloop.campaign import status_summary
from alloop.campaign.execution.labeling_pool import LabelingPool
from alloop.campaign.execution.taskrun import run_tasks
from alloop.campaign.execution.worker_losses import WorkerLosses
from alloop.campaign.loop.heap import release_freed_memory
from alloop.campaign.loop.pipeline import Hooks, Pipeline
from alloop.campaign.loop.progress import Progress
from alloop.campaign.phases import original as originals
from alloop.campaign.phases.bootstrap import normal_mode_samples, rattle_samples
from alloop.campaign.phases.budget import Quota, cycle_quota, expensive_quota
from alloop.campaign.phases.context import PhaseContext
from alloop.campaign.phases.cycle_record import record_cycle
from alloop.campaign.phases.deadline import Deadline, clock
from alloop.campaign.phases.evaluation_set import make_evaluation_set
from alloop.campaign.phases.explore import explore
from alloop.campaign.phases.label import label
from alloop.campaign.phases.retrain import nothing_new as nothing_new_to_train
from alloop.campaign.phases.retrain import skip_training
from alloop.campaign.phases.select_expensive import select_expensive
from alloop.campaign.phases.settings import campaign_settings
from alloop.campaign.phases.stop_rules import nothing_new, trained_on_every_label
from alloop.campaign.phases.train import labelled_arrays, train
from alloop.config import CampaignConfig
from alloop.signals import raise_if_stopped
from alloop.store import ledger, tables
from alloop.store.campaign import CampaignStore
from alloop.store.ledger import STOPPED

__all__ = ["Campaign", "labelled_arrays"]


class Campaign:
    """Runs (or resumes) one campaign on a Dask client, writing to its store."""

    def __init__(self, cfg: CampaignConfig, store: CampaignStore, client: Any, *, progress: Progress | None = None,
                 log: Callable[[str], None] = print, labeler_factory: Callable[[Any], Any] | None = None,
                 slots: int | None = None) -> None:
        self.cfg, self.store, self.client, self.log = cfg, store, client, log
        self.settings = campaign_settings(cfg)
        self.fidelities = {"cheap": cfg.cheap_fidelity, "expensive": cfg.expensive_fidelity}
        self.structures = cfg.load_structures()
        self.progress = progress or Progress(enabled=False)
        s = self.settings
        self.slots = slots or max(1, sum(client.nthreads().values()))  # task slots: given, or the cluster's now
        self.original: originals.Original | None = None
        self.pool = LabelingPool(client, threads_per_task=s.threads_per_worker, tasks_per_slot=s.tasks_per_slot,
                                 max_retries=s.max_task_retries, labeler_factory=labeler_factory,
                                 batch_seconds=s.label_batch_seconds)
        self.ctx = PhaseContext(settings=self.settings, store=store, client=client, structures=self.structures,
                                fidelities=self.fidelities, slots=self.slots, progress=self.progress, log=log,
                                losses=WorkerLosses(client))
        self.deadline = Deadline.of(s.stop, started_s=clock())
        self.late: str | None = None  # the deadline's reason once it has passed
        self._expensive_said = False

    # ------------------------------------------------------------------ entry
    def run(self) -> str:
        """Run until a stop condition (or the deadline); returns the reason the campaign finished (or stopped)."""
        done = ledger.finished_reason(self.store)
        if done is not None:
            return done
        self.original = originals.prepare(self.store, self.cfg, self.structures, self.log)
        if self.deadline.at_s is not None:
            self.log(f"deadline: no new work after {self.deadline.local_time()} ({self.deadline.source})")
        if not make_evaluation_set(self.ctx, self.pool, self._mark, self._late):
            return self._stop(ledger.BOOTSTRAP)
        if not ledger.phase_done(self.store, ledger.BOOTSTRAP, ledger.TRAINED) and not self._bootstrap():
            return self._stop(ledger.BOOTSTRAP)
        if self.settings.asynchronous:
            return self._run_asynchronous()
        n_cycles = self.settings.stop.n_cycles
        for cycle in range(n_cycles):
            if not ledger.phase_done(self.store, cycle, ledger.TRAINED):
                quota = self._quota()
                if quota.n_cheap == 0 and not ledger.phase_done(self.store, cycle, ledger.EXPLORED):
                    return self._finish(cycle - 1, quota.reason or "labelling budget spent")
                if not self._cycle(cycle):
                    return self._stop(cycle)
                self._save_status()  # a cycle run now (not one a resume finds done: its summary is stored)
            elif ledger.cycle_started(self.store, cycle + 1):
                continue  # the run that went on to the next cycle passed this one's stop checks (its labels may
                # have spent the budget since: stopping here again would drop that cycle's training)
            reason = self._stop_reason(cycle)
            if reason is not None:
                return self._finish(cycle, reason)
        return self._finish(n_cycles - 1, f"{n_cycles} cycles done")

    def _run_asynchronous(self) -> str:
        """The cycles as an overlapping pipeline (see :mod:`.pipeline`): no barrier between phases or cycles."""
        hooks = Hooks(quota=self._quota, expensive_quota=self._expensive_quota,
                      mark=lambda cycle, phase, note: self._mark(cycle, phase, note=note),
                      stop_reason=lambda cycle: self._cycle_done(cycle, budget=False), late=self._late)
        pipeline = Pipeline(self.ctx, self.pool, self.original, hooks, self.settings.stop.n_cycles)
        cycle, reason = pipeline.run()
        return self._stop(cycle) if pipeline.stopped else self._finish(cycle, reason)

    def _finish(self, cycle: int, reason: str) -> str:
        if not self.settings.periodic and cycle >= 0 and self._naive_model_stale():
            train(self.ctx, cycle, self.original, mark=False)
        self._mark(cycle, ledger.FINISHED, note={"reason": reason})
        self.progress.update(phase=ledger.FINISHED)
        self.log(f"campaign finished: {reason}")
        return reason

    def _stop(self, cycle: int) -> str:
        """Stop at the deadline (in ``cycle``, the first not trained): train on every label, unless the newest model
        was (the bootstrap's model waits for all its labels), commit, and say why; ``alloop resume`` continues."""
        reason = self.late or "deadline reached"
        if cycle >= 0 and trained_on_every_label(self.store, self.fidelities) is not True:
            self.log(f"{reason}; the newest model lacks labels: training one on every label")
            train(self.ctx, cycle, self.original, mark=False, final=False)
        self.ctx.record_losses(cycle, STOPPED)
        self.store.commit(cycle=cycle, phase=STOPPED, note={"reason": reason})
        self._save_status()
        self.progress.update(phase=STOPPED)
        self.log(f"campaign stopped: {reason}; 'alloop resume' continues it (a new deadline: --set schedule.deadline=..."
                 " or schedule.max_hours=...)")
        return reason

    def _late(self) -> str | None:
        """The deadline's reason once it has passed (kept from the first time it is seen), else None."""
        if self.late is None:
            self.late = self.deadline.reason()
            if self.late is not None:
                self.log(f"{self.late}: no new work starts; what runs finishes")
        return self.late

    def _mark(self, cycle: int, phase: str, note: dict | None = None) -> None:
        """Record the workers lost during the phase, then mark it done (one commit)."""
        raise_if_stopped()  # a Ctrl-C whose exception was dropped: the phase is not marked, as if it came now
        self.ctx.record_losses(cycle, phase)
        ledger.mark_phase(self.store, cycle, phase, note=note)
        if phase == ledger.FINISHED:
            self._save_status()
        release_freed_memory()

    def _cycle_done(self, cycle: int, budget: bool = True) -> str | None:
        """The asynchronous pipeline's step after a cycle's model is committed: store the status summary, then the
        reason to stop, if any."""
        self._save_status()
        return self._stop_reason(cycle, budget)

    def _save_status(self) -> None:
        """Store the status summary ``alloop status`` reads instead of a pass over every frame; a failure costs
        only that (status computes afresh), never the campaign."""
        try:
            status_summary.save(self.store)
        except Exception as exc:  # noqa: BLE001 - an auxiliary copy: logged, the campaign goes on
            self.log(f"WARNING: the status summary was not stored ({type(exc).__name__}: {exc}); `alloop status` "
                     "computes it afresh")

    def _naive_model_stale(self) -> bool:
        """Whether a naive campaign's newest model lacks labels (a model that does not record what it was trained
        on: whether none was trained after the bootstrap's)."""
        current = trained_on_every_label(self.store, self.fidelities)
        if current is not None:
            return not current
        rows = tables.read(self.store, tables.CYCLES)
        return not (bool(rows) and bool(np.any((rows["cycle"] >= 0) & (rows["model_version"] >= 0))))

    def _quota(self) -> Quota:
        return cycle_quota(self.settings.budget, self.store, self.fidelities)

    def _expensive_quota(self) -> int:
        quota = expensive_quota(self.settings.budget, self.store, self.fidelities)
        if quota.expensive_reason and not self._expensive_said:
            self.log(f"{quota.expensive_reason}: no more expensive labels")
            self._expensive_said = True
        return quota.n_expensive

    # -------------------------------------------------------------- bootstrap
    def _bootstrap(self) -> bool:
        """Sample, label, train (the steps not done yet); False when the deadline stopped it before its model."""
        b = self.settings.bootstrap
        if not ledger.phase_done(self.store, ledger.BOOTSTRAP, ledger.SAMPLED):
            if self._late():
                return False
            self.progress.update(cycle=-1, phase="bootstrap: sampling")
            samples = self._bootstrap_samples()
            ids = self.store.add_frames(samples, origin="bootstrap", cycle=-1)
            ledger.select(self.store, ledger.BOOTSTRAP, ids, "cheap", ["bootstrap"] * len(ids))
            n_exp = min(b.n_expensive, len(ids))
            ledger.select(self.store, ledger.BOOTSTRAP, ids[:n_exp], "expensive", ["bootstrap"] * n_exp)
            self._mark(ledger.BOOTSTRAP, ledger.SAMPLED)
            self.log(f"bootstrap: {len(ids)} samples ({b.method}), {n_exp} to be labelled at both fidelities")
        if not ledger.phase_done(self.store, ledger.BOOTSTRAP, ledger.LABELLED):
            if self._late() or not label(self.ctx, self.pool, ledger.BOOTSTRAP, ("expensive", "cheap"), self._late):
                return False
            self._mark(ledger.BOOTSTRAP, ledger.LABELLED)
        train(self.ctx, ledger.BOOTSTRAP, self.original)
        return True

    def _bootstrap_samples(self) -> list[Atoms]:
        b, seed = self.settings.bootstrap, self.settings.seed
        owners = self.ctx.molecules.deal(b.n_samples)  # over the molecules, then over each one's structures
        per = [owners.count(k) for k in range(len(self.structures))]
        if b.method == "rattle":
            assert b.amplitude_A is not None  # BootstrapConfig's default for rattle
            groups = [rattle_samples(atoms, n, b.amplitude_A, seed + k)
                      for k, (atoms, n) in enumerate(zip(self.structures, per, strict=True))]
        elif b.method == "md":
            groups = self._md_samples(per)
        else:
            from alloop.campaign.phases.hessian import cheap_hessian

            assert b.temperature_K is not None  # BootstrapConfig requires it for normal modes
            hessians = run_tasks(self.client, cheap_hessian, [(a, self.fidelities["cheap"]) for a in self.structures],
                                 self.settings.max_task_retries)
            groups = [normal_mode_samples(atoms, hessian, n, b.temperature_K, seed + k)
                      for k, (atoms, hessian, n) in enumerate(zip(self.structures, hessians, per, strict=True))]
        # dealt as the owners say (round robin over the molecules), so the first n_expensive samples cover them all
        taken = [0] * len(groups)
        samples = []
        for k in owners:
            if taken[k] < len(groups[k]):
                samples.append(groups[k][taken[k]])
            taken[k] += 1
        return samples

    def _md_samples(self, per: list[int]) -> list[list[Atoms]]:
        """Each structure's samples from its own xTB MD run (one task each), in a seeded random order, so the first
        ones (those labelled at both fidelities) come from anywhere along the run, not only its start."""
        from alloop.campaign.phases.surface_md import surface_md_samples

        plan, seed = self.settings.bootstrap_md, self.settings.seed
        assert plan is not None
        runs = run_tasks(self.client, surface_md_samples,
                         [(atoms, plan.surface, n, plan.md, seed + k, self.settings.threads_per_worker)
                          for k, (atoms, n) in enumerate(zip(self.structures, per, strict=True))],
                         self.settings.max_task_retries)
        groups = []
        for k, (samples, _, _) in enumerate(runs):
            order = np.random.default_rng([seed, k]).permutation(len(samples))
            groups.append([samples[i] for i in order])
        calls, cpu = sum(r[1] for r in runs), sum(r[2] for r in runs)
        md = plan.md
        length = md.equilibration_fs + max(per, default=0) * md.spacing_fs
        self.log(f"bootstrap: {plan.surface.name} MD at {md.temperature_K:g} K from {len(runs)} structure(s), up to "
                 f"{length / 1000:.2f} ps each ({calls} force calls, {cpu:.0f} CPU s)")
        return groups

    # ----------------------------------------------------------------- cycles
    def _cycle(self, cycle: int) -> bool:
        """One cycle, skipping the phases the store says are done; False when the deadline stopped it (a phase in
        progress finishes, its labels not sent yet stay unlabelled; the cycle's training, once due, runs)."""
        if not self._label_phases(cycle):
            return False
        if (self.settings.periodic or cycle == self.settings.stop.n_cycles - 1) and \
                (unchanged := nothing_new_to_train(self.ctx, cycle)) is not None:
            skip_training(self.ctx, cycle, self.original, unchanged)
        elif self.settings.periodic or cycle == self.settings.stop.n_cycles - 1:
            train(self.ctx, cycle, self.original)
            release_freed_memory()
        else:
            record_cycle(self.ctx, cycle, -1, {}, 0.0, self.original)
            self._mark(cycle, ledger.TRAINED, note={"skipped": "naive strategy trains once, at the end"})
        return True

    def _label_phases(self, cycle: int) -> bool:
        """Explore, label cheap, select expensive, label expensive (those not done yet); False when the deadline
        stopped them. Each phase returns (whether it is complete, the note of its mark)."""
        def labelled(role: str) -> tuple[bool, None]:
            return label(self.ctx, self.pool, cycle, (role,), self._late), None

        def selected() -> tuple[bool, None]:
            select_expensive(self.ctx, cycle, self._expensive_quota())
            return True, None

        phases: list[tuple[str, Callable[[], tuple[bool, dict | None]]]] = [
            (ledger.EXPLORED, lambda: (True, {"flag_rate": explore(self.ctx, cycle, self._quota().n_cheap)})),
            (ledger.LABELLED_CHEAP, lambda: labelled("cheap")),
            (ledger.SELECTED_EXPENSIVE, selected),
            (ledger.LABELLED_EXPENSIVE, lambda: labelled("expensive")),
        ]
        for phase, run in phases:
            if ledger.phase_done(self.store, cycle, phase):
                continue
            if self._late():
                return False
            complete, note = run()  # explore's note: its flag rate
            if not complete:
                return False
            self._mark(cycle, phase, note=note)
        return True

    def _stop_reason(self, cycle: int, budget: bool = True) -> str | None:
        stop = self.settings.stop
        rows = tables.read(self.store, tables.CYCLES)
        this = np.flatnonzero(rows["cycle"] == cycle) if rows else np.zeros(0, int)
        if this.size:
            row = int(this[-1])
            mae = float(rows["val_force_mae_eV_per_A"][row])
            target = stop.target_val_force_mae_eV_per_A
            if target is not None and np.isfinite(mae) and mae <= target:
                return f"validation force MAE {mae:.4f} eV/A reached the target {target} eV/A"
            rate = float(rows["flag_rate"][row])
            if stop.min_flag_rate is not None and rate < stop.min_flag_rate:
                return f"flag rate {rate:.3f} fell below {stop.min_flag_rate}"
            predicted = tables.cycle_predicted_error(self.store, cycle)
            target = stop.target_predicted_force_error_eV_per_A
            if target is not None and predicted is not None and predicted <= target:
                return f"the predicted force error of the cycle's MD, {predicted:.4f} eV/A, reached the target {target} eV/A"
        quiet = nothing_new(self.store, cycle) if stop.stop_when_nothing_new else None
        if quiet is not None:
            return quiet
        quota = self._quota() if budget else None
        if quota is not None and quota.n_cheap == 0 and cycle < stop.n_cycles - 1:
            return quota.reason or "labelling budget spent"
        return None
