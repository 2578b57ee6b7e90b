"""The wall-clock deadline of a run: ``schedule.deadline`` (a time) or ``schedule.max_hours`` (hours after this run
or resume started), whichever comes first.

Once it has passed, the loop starts no new work (no MD segment, label, selection or training task); what runs
finishes and is committed, a model is trained on every label if the newest one lacks some, and the run stops with
a ``deadline reached: ...`` reason, leaving a store that ``alloop resume`` continues. :func:`clock` is the one clock
these checks read (tests replace it to make the deadline pass right after a chosen commit).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from alloop.campaign.phases.settings import StopRules


def clock() -> float:
    """Now, in seconds since the epoch (what every deadline check reads)."""
    return time.time()


@dataclass(frozen=True)
class Deadline:
    """When this run stops starting new work (``at_s``, seconds since the epoch; None: never) and what set it."""

    at_s: float | None = None
    source: str = ""

    @classmethod
    def of(cls, stop: StopRules, started_s: float) -> Deadline:
        """The earlier of ``stop.deadline`` and ``started_s`` + ``stop.max_hours`` (None when neither is set)."""
        options: list[tuple[float, str]] = []
        if stop.deadline is not None:
            options.append((stop.deadline.timestamp(), f"schedule.deadline {stop.deadline.isoformat()}"))
        if stop.max_hours is not None:
            options.append((started_s + 3600.0 * stop.max_hours,
                            f"schedule.max_hours {stop.max_hours:g} h after this run started at {_local(started_s)}"))
        if not options:
            return cls()
        at_s, source = min(options)
        return cls(at_s, source)

    def local_time(self) -> str:
        """The deadline as local time, ``YYYY-MM-DD HH:MM:SS`` ('never' without one)."""
        return "never" if self.at_s is None else _local(self.at_s)

    def reason(self) -> str | None:
        """``deadline reached: ...`` once the deadline has passed (by :func:`clock`), else None."""
        if self.at_s is None or clock() < self.at_s:
            return None
        return f"deadline reached: {self.source}"


def _local(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))
