"""How many labels a cycle may ask for, given the campaign's limits and what has been spent.

Limits: per-cycle selection caps, total labels per fidelity (``max_labels``,
bootstrap included), a CPU-second budget over both fidelities and a CPU budget
per fidelity (``budget_cpu_hours``). The CPU budgets are planning budgets: the
next cycle's labels are costed at the mean CPU seconds per label seen so far,
and the cycle's selection is scaled down to fit what remains, so the overshoot
is bounded by the error of that estimate. A fidelity's own budget is spent when
what remains of it would not pay for one more label at that cost: no more
labels of that fidelity (the cheap one: the campaign stops).

Frames selected but not labelled yet (in flight in the asynchronous loop) count
as spent, at the mean cost so far, so overlapping cycles never overshoot the
limits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from alloop.campaign.phases.settings import LabelBudget
from alloop.fidelity import Fidelity
from alloop.store import ledger
from alloop.store.campaign import CampaignStore

#: cost guesses (CPU s per label) before any label of a fidelity exists
DEFAULT_COST_S = {"cheap": 1.0, "expensive": 10.0}


@dataclass(frozen=True)
class Quota:
    n_cheap: int
    n_expensive: int
    reason: str = ""  # why n_cheap is 0
    expensive_reason: str = ""  # why n_expensive is 0 when the expensive CPU budget is spent


def cycle_quota(limits: LabelBudget, store: CampaignStore, fidelities: dict[str, Fidelity]) -> Quota:
    """Labels the next cycle may request per fidelity; a zero cheap quota says why."""
    spent = committed_and_pending(store, fidelities)
    n_cheap = limits.max_cheap_per_cycle
    n_exp = limits.max_expensive_per_cycle
    reason = ""
    if limits.max_cheap is not None:
        n_cheap = min(n_cheap, max(0, limits.max_cheap - spent.labels["cheap"]))
        if n_cheap == 0:
            reason = f"cheap label limit {limits.max_cheap} reached"
    if limits.max_expensive is not None:
        n_exp = min(n_exp, max(0, limits.max_expensive - spent.labels["expensive"]))
    n_cheap, cheap_reason = _fidelity_budget(limits.cheap_cpu_seconds, "cheap", n_cheap, spent)
    n_exp, expensive_reason = _fidelity_budget(limits.expensive_cpu_seconds, "expensive", n_exp, spent)
    reason = reason or cheap_reason
    budget = limits.budget_cpu_seconds
    if budget is not None and n_cheap > 0:
        remaining = budget - spent.total_cpu
        c_cheap = spent.mean_cost("cheap", DEFAULT_COST_S["cheap"])
        c_exp = spent.mean_cost("expensive", DEFAULT_COST_S["expensive"])
        planned = n_cheap * c_cheap + min(n_exp, n_cheap) * c_exp
        if remaining <= c_cheap:
            n_cheap, n_exp, reason = 0, 0, f"CPU budget {budget:.0f} s spent ({spent.total_cpu:.0f} s used)"
        elif planned > remaining:
            scale = remaining / planned
            n_cheap, n_exp = max(1, int(n_cheap * scale)), int(n_exp * scale)
    return Quota(n_cheap=n_cheap, n_expensive=min(n_exp, n_cheap) if n_cheap else 0, reason=reason,
                 expensive_reason=expensive_reason)


def _fidelity_budget(budget_s: float | None, role: str, n: int, spent: ledger.Spend) -> tuple[int, str]:
    """``n`` labels of ``role`` cut to what its own CPU budget still pays for at the mean cost so far, and why it
    is 0 when that budget is spent."""
    if budget_s is None or n == 0:
        return n, ""
    used = spent.cpu_seconds[role]
    cost = spent.mean_cost(role, DEFAULT_COST_S[role])
    if budget_s - used <= cost:
        return 0, (f"{role} CPU budget {budget_s / 3600:.3g} h spent ({used / 3600:.3g} h used, labels in flight "
                   f"included; schedule.budget_cpu_hours.{role})")
    return min(n, int((budget_s - used) / cost)), ""


def expensive_quota(limits: LabelBudget, store: CampaignStore, fidelities: dict[str, Fidelity]) -> Quota:
    """Expensive labels a cycle whose cheap labels are in may select (``n_expensive``, with ``expensive_reason``):
    the cheap limits (which those labels may have just reached) no longer matter, the expensive ones and the CPU
    budget over both fidelities do."""
    return cycle_quota(replace(limits, max_cheap=None, cheap_cpu_seconds=None), store, fidelities)


def committed_and_pending(store: CampaignStore, fidelities: dict[str, Fidelity]) -> ledger.Spend:
    """The labels spent so far plus the frames selected without a label yet (costed at the mean cost so far)."""
    spent = ledger.spend(store, fidelities)
    for role, fid in fidelities.items():
        pending = np.setdiff1d(ledger.selected(store, role), ledger.labelled_ids(store, fid)).size
        if pending:
            cost = spent.mean_cost(role, DEFAULT_COST_S[role])
            spent.labels[role] += pending
            spent.cpu_seconds[role] += pending * cost
    return spent
