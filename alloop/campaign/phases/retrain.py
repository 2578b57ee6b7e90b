"""Whether a cycle retrains: not when no label its training method trains on is new since the newest model.

Training a warm-started model again on the labels it was trained on costs a training (minutes for SevenNet-0) and
changes nothing the campaign needs: such a cycle keeps its model, records a ``cycles`` row without one and marks
its training done with the reason (issue 63: a campaign that labelled nothing after its bootstrap retrained three
times on the same labels). The final retrain always runs: it trains afresh with the full budget, not again.
"""

from __future__ import annotations

from alloop.campaign.phases import original as originals
from alloop.campaign.phases.context import PhaseContext
from alloop.campaign.phases.cycle_record import record_cycle
from alloop.campaign.phases.stop_rules import N_LABELS_KEY, ok_label_counts
from alloop.campaign.phases.train import is_final
from alloop.errors import StoreError
from alloop.store import ledger
from alloop.training.methods import method_spec


def nothing_new(ctx: PhaseContext, cycle: int) -> str | None:
    """Why ``cycle`` need not train (no new ok label of the roles its method trains on since the newest model), or
    None when it trains (new labels, the final retrain, a model that does not record its labels)."""
    if is_final(ctx, cycle):
        return None
    try:
        _, meta = ctx.store.checkpoint(-1, role="model")
    except StoreError:
        return None
    trained = meta.get(N_LABELS_KEY)
    if not isinstance(trained, dict):
        return None
    roles = method_spec(ctx.settings.training.method).labels  # the label roles the method trains on
    counts = ok_label_counts(ctx.store, ctx.fidelities)
    if any(counts[role] > int(trained.get(role, -1)) for role in roles):
        return None
    labels = " or ".join(roles)
    since = "the bootstrap" if int(meta.get("cycle", -1)) < 0 else f"cycle {meta.get('cycle')}"
    return f"no new {labels} label since the model of {since} ({', '.join(f'{counts[r]} {r}' for r in roles)})"


def skip_training(ctx: PhaseContext, cycle: int, original: originals.Original | None, reason: str) -> None:
    """Keep the newest model for ``cycle``: its ``cycles`` row without a model, the training marked done (one
    commit), and the reason in the log."""
    record_cycle(ctx, cycle, -1, {}, 0.0, original)
    ctx.record_losses(cycle, ledger.TRAINED)
    ledger.mark_phase(ctx.store, cycle, ledger.TRAINED, note={"skipped": f"not retrained: {reason}"})
    ctx.log(f"cycle {cycle}: not retrained: {reason}; the model stays")
