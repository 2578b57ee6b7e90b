"""Start or resume a campaign: open its store, start or reach the Dask cluster, run the loop.

A run directory holds the campaign store (``store.zarr``, a Zarr group) and
``campaign.log`` (everything the loop reports, appended across resumes).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from alloop.campaign.execution.cluster import dashboard_link, open_client, short_logs
from alloop.campaign.execution.jobqueue import check_cluster_options
from alloop.campaign.loop.driver import Campaign
from alloop.campaign.loop.exits import LOG_NAME, append_log, logged_exit
from alloop.campaign.loop.progress import Progress
from alloop.config import CampaignConfig
from alloop.config.loading import apply_stop_overrides
from alloop.errors import AlloopError, StoreError
from alloop.evaluation.campaign import prepare as prepare_evaluation
from alloop.labeling.provenance import combine, current_provenance, describe, mix_error
from alloop.store.campaign import CampaignStore
from alloop.store.ledger import finished_reason, spend
from alloop.store.resolve import is_store, store_path


def start_campaign(cfg: CampaignConfig, run_dir: str | Path | None = None, *, address: str | None = None,
                   progress: bool = True, echo: Callable[[str], None] | None = None, **campaign_kwargs: Any) -> str:
    """Run a new campaign in ``run_dir`` (default from the config); refuses a directory that holds one already."""
    path = Path(run_dir) if run_dir is not None else cfg.run_dir
    if is_store(path):
        raise AlloopError(f"{path} already holds a campaign; continue it with 'alloop resume {path}'")
    check_cluster_options(cfg.execution)
    store = CampaignStore.create(store_path(path), cfg.to_dict())
    with logged_exit(path):
        return _run(cfg, store, path, address, progress, echo, campaign_kwargs)


def resume_campaign(run_dir: str | Path, *, address: str | None = None, progress: bool = True,
                    echo: Callable[[str], None] | None = None, allow_version_mix: bool = False,
                    overrides: Iterable[str] = (), **campaign_kwargs: Any) -> str:
    """Continue the campaign stored in ``run_dir`` from its last commit.

    ``overrides`` (``schedule.key=value``, only the stop rules: a new deadline, budget or target) change the stored
    config before the run (committed at once). Refuses (AlloopError) when this PySCF/libxc differs from the one
    that made the store's labels of a campaign fidelity, unless ``allow_version_mix`` (then the store records
    both)."""
    path = Path(run_dir)
    if not is_store(path):
        raise AlloopError(f"{path} is not a campaign run directory (no store found)")
    with logged_exit(path):
        with CampaignStore.open(store_path(path), "r") as reader:
            done = finished_reason(reader)
        if done is not None:
            (echo or print)(f"campaign in {path} already finished ({done}); nothing to do")
            return done
        store = CampaignStore.open(store_path(path), "a")
        store.allow_version_mix = allow_version_mix
        try:
            cfg = _stored_config(store, list(overrides), _logger(path, echo))
        except Exception:
            store.close()
            raise
        return _run(cfg, store, path, address, progress, echo, campaign_kwargs)


def _stored_config(store: CampaignStore, overrides: list[str], log: Callable[[str], None]) -> CampaignConfig:
    """The store's campaign config, with ``overrides`` of its stop rules applied and committed."""
    if not overrides:
        return CampaignConfig.from_dict(store.config, check_files=False)
    cfg = CampaignConfig.from_dict(apply_stop_overrides(store.config, overrides), check_files=False)
    store.set_config(cfg.to_dict())
    store.commit(note={"resume_set": overrides})
    log(f"resume: {', '.join(overrides)} (now in the campaign's stored config)")
    return cfg


def _run(cfg: CampaignConfig, store: CampaignStore, path: Path, address: str | None, progress: bool,
         echo: Callable[[str], None] | None, campaign_kwargs: dict[str, Any]) -> str:
    log = _logger(path, echo)
    ex = cfg.execution
    try:
        _check_label_software(store, cfg, log)
        with _client(cfg, address, log) as client:
            link = dashboard_link(client)
            log(f"campaign '{cfg.name}' in {path}; Dask: {len(client.nthreads())} workers"
                + (f", dashboard {link}" if link else ""))
            torch.set_num_threads(max(1, ex.threads_per_worker))
            prepare_evaluation(store, cfg, log)  # copies or checks the evaluation set; scores unscored models
            spent = spend(store, {"cheap": cfg.cheap_fidelity, "expensive": cfg.expensive_fidelity}).total_cpu
            bar = Progress(enabled=progress, n_cycles=cfg.schedule.n_cycles, budget_cpu_s=cfg.schedule.budget_cpu_seconds,
                           spent_cpu_s=spent)
            if _batch_kind(cfg, address) is not None:  # its workers keep connecting: count the planned ones
                from alloop.campaign.execution.jobqueue import batch_slots

                campaign_kwargs = {"slots": batch_slots(ex), **campaign_kwargs}
            try:
                campaign = Campaign(cfg, store, client, progress=bar, log=log, **campaign_kwargs)
                try:
                    return campaign.run()
                finally:
                    if campaign.ctx.losses is not None:
                        campaign.ctx.losses.close()
            finally:
                bar.close()
    finally:
        store.close()


def _check_label_software(store: CampaignStore, cfg: CampaignConfig, log: Callable[[str], None]) -> None:
    """AlloopError if this PySCF/libxc differs from what made the store's labels of a campaign fidelity (unless
    the store allows a mix); a note in the log for labels that record no versions (older stores)."""
    stored_hashes = store.fidelities()
    for role in ("cheap", "expensive"):
        fidelity = cfg.fidelity(role)
        if fidelity.hash() not in stored_hashes:
            continue
        stored, here = store.label_provenance(fidelity.hash()), current_provenance(fidelity)
        if not stored:
            log(f"note: the {role} labels ({fidelity.name}, {fidelity.hash()}) in this store record no software "
                "versions (written before alloop recorded them): unknown; new labels record theirs")
            continue
        _, problem = combine(stored, [here], store.allow_version_mix)
        if problem and not store.allow_version_mix:
            raise AlloopError(mix_error(fidelity.name, fidelity.hash(), problem))
        if problem:
            log(f"note: {role} labels from {describe(here)} join those from {describe(stored)} (--allow-version-mix)")


def _batch_kind(cfg: CampaignConfig, address: str | None) -> str | None:
    """'slurm' or 'pbs' when the campaign starts its own dask-jobqueue cluster, else None."""
    ex = cfg.execution
    kind = ex.cluster.kind if ex.cluster is not None else "local"
    external = address is not None or ex.address is not None or ex.scheduler_file is not None
    return kind if kind in ("slurm", "pbs") and not external else None


@contextlib.contextmanager
def _client(cfg: CampaignConfig, address: str | None, log: Callable[[str], None]) -> Iterator[Any]:
    """The campaign's Dask client, with Dask's low-level logs short while it lives (cluster.short_logs)."""
    ex = cfg.execution
    if _batch_kind(cfg, address) is not None:
        from alloop.campaign.execution.jobqueue import jobqueue_client

        with short_logs(), jobqueue_client(ex, log) as client:
            yield client
        return
    with short_logs(), open_client(n_workers=ex.n_workers, threads_per_worker=ex.threads_per_worker,
                                   address=address or ex.address,
                                   scheduler_file=str(ex.scheduler_file) if ex.scheduler_file else None) as client:
        yield client


def _logger(path: Path, echo: Callable[[str], None] | None) -> Callable[[str], None]:
    out = echo or (lambda text: print(text, file=sys.stdout, flush=True))

    def log(text: str) -> None:
        append_log(path, text)
        out(text)

    return log


__all__ = ["start_campaign", "resume_campaign", "StoreError", "LOG_NAME"]
