"""Worker losses read from the scheduler's event log and recorded in the store."""

from __future__ import annotations

from alloop.campaign.execution.worker_losses import WorkerLoss, WorkerLosses, describe, parse_losses, record_losses
from alloop.store import tables
from alloop.store.campaign import CampaignStore


def _removed(worker: str, keys: list[str], expected: bool = False) -> dict:
    return {"action": "remove-worker", "worker": worker, "processing-tasks": keys, "expected": expected}


EVENTS = [
    (1.0, {"action": "add-worker", "worker": "tcp://a"}),
    (2.0, _removed("tcp://a", ["label-h-cheap-3", "label-h-cheap-1"])),
    (3.0, _removed("tcp://b", ["md-1"], expected=True)),  # retired: nothing lost
    (4.0, _removed("tcp://c", [])),
]


def test_parse_losses_keeps_unexpected_removals_after_since():
    assert parse_losses(EVENTS, 0.0) == [WorkerLoss(2.0, "tcp://a", ("label-h-cheap-1", "label-h-cheap-3")),
                                        WorkerLoss(4.0, "tcp://c", ())]
    assert parse_losses(EVENTS, 2.0) == [WorkerLoss(4.0, "tcp://c", ())]


class _Client:
    def __init__(self, events: list) -> None:
        self.events = events

    def get_events(self, topic: str) -> tuple:
        assert topic == "all"
        return tuple(self.events)


def test_each_loss_is_read_once_and_earlier_ones_never():
    client = _Client(EVENTS[:2])
    losses = WorkerLosses(client)  # a loss before the campaign started is not the campaign's
    assert losses.new() == []
    client.events = EVENTS
    assert [x.worker for x in losses.new()] == ["tcp://c"]
    assert losses.new() == []


class _PushingClient(_Client):
    """A client whose scheduler log keeps only the last event; the others come pushed to the subscriber."""

    def __init__(self) -> None:
        super().__init__([])
        self.handlers: dict = {}

    def subscribe_topic(self, topic, handler) -> None:  # noqa: ANN001
        self.handlers[topic] = handler

    def publish(self, event: tuple) -> None:
        self.events = [event]
        self.handlers["all"](event)


def test_losses_pushed_to_the_client_count_when_the_scheduler_log_dropped_them():
    client = _PushingClient()
    losses = WorkerLosses(client)
    for event in EVENTS:  # the loss of tcp://a at 2.0 has left the scheduler's one-event log
        client.publish(event)
    assert [x.worker for x in losses.new()] == ["tcp://a", "tcp://c"]  # once each, though 4.0 came both ways
    assert losses.new() == [] and losses.pushed == []  # read events are dropped
    client.publish((5.0, _removed("tcp://d", ["md-2"])))
    assert [x.worker for x in losses.new()] == ["tcp://d"]


def test_a_scheduler_without_event_log_records_nothing():
    class Broken:
        def get_events(self, topic: str) -> tuple:
            raise OSError("gone")

    assert WorkerLosses(Broken()).new() == []


def test_record_losses_writes_the_table_and_the_log(tmp_path):
    client = _Client([])
    losses = WorkerLosses(client)
    client.events = EVENTS
    lines: list[str] = []
    with CampaignStore.create(tmp_path / "s.zarr", {}) as store:
        assert record_losses(store, losses, 0, "labelling", lines.append) == 2
        assert record_losses(store, losses, 0, "labelling", lines.append) == 0
        assert record_losses(store, None, 0, "labelling", lines.append) == 0
        store.commit()
        rows = tables.read(store, tables.WORKER_LOSSES)
    assert rows["worker"].tolist() == ["tcp://a", "tcp://c"] and rows["n_tasks"].tolist() == [2, 0]
    assert rows["tasks"][0] == "label-h-cheap-1 label-h-cheap-3" and rows["phase"][0] == "labelling"
    assert lines[0] == ("cycle 0 (labelling): Dask worker tcp://a lost while holding 2 tasks "
                        "(label-h-cheap-1, label-h-cheap-3), resubmitted")


def test_describe_shortens_long_task_lists():
    loss = WorkerLoss(0.0, "tcp://w", tuple(f"k{i}" for i in range(6)))
    assert describe(loss) == "Dask worker tcp://w lost while holding 6 tasks (k0, k1, k2, k3 and 2 more), resubmitted"
    assert describe(WorkerLoss(0.0, "tcp://w", ())) == "Dask worker tcp://w lost while holding no task"
