"""A live one-line progress display of a running campaign (stderr).

On a terminal the line is redrawn in place; otherwise (logs, CI) a line is
printed at most every ``interval_s`` seconds and at every phase change.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """Cycle, phase, labels done/total per fidelity, in flight, CPU spent of budget, validation error, flag rate."""

    def __init__(self, *, enabled: bool = True, n_cycles: int | None = None, budget_cpu_s: float | None = None,
                 spent_cpu_s: float = 0.0, stream: TextIO | None = None, interval_s: float = 10.0) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_s = interval_s
        self.n_cycles = n_cycles
        self.budget = budget_cpu_s
        self.state: dict[str, Any] = {"cycle": None, "phase": "", "labels": {}, "in_flight": 0,
                                      "spent": spent_cpu_s, "val_force_mae": None, "flag_rate": None,
                                      "predicted_error": None}
        self._last_print = 0.0
        self._start = time.monotonic()

    def update(self, *, spent_delta: float = 0.0, last_status: tuple[str, str] | None = None, **fields: Any) -> None:
        phase_changed = "phase" in fields and fields["phase"] != self.state["phase"]
        self.state.update({k: v for k, v in fields.items() if v is not None or k == "labels"})
        self.state["spent"] += float(spent_delta or 0.0)
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty or phase_changed or now - self._last_print >= self.interval_s:
            self._print(self.line())
            self._last_print = now

    def line(self) -> str:
        s = self.state
        cycle = "bootstrap" if s["cycle"] == -1 else (
            f"cycle {s['cycle'] + 1}/{self.n_cycles}" if s["cycle"] is not None and self.n_cycles else "")
        parts = [p for p in (cycle, s["phase"]) if p]
        for role, (done, total) in (s["labels"] or {}).items():
            parts.append(f"{role} {done}/{total}")
        if s["in_flight"]:
            parts.append(f"{s['in_flight']} in flight")
        spent = f"{s['spent']:.0f}" + (f"/{self.budget:.0f}" if self.budget else "") + " CPU s"
        parts.append(spent)
        if s["val_force_mae"] is not None:
            parts.append(f"val F-MAE {s['val_force_mae']:.3f} eV/A")
        if s["flag_rate"] is not None:
            parts.append(f"flagged {s['flag_rate']:.0%}")
        if s["predicted_error"] is not None:
            parts.append(f"MD predicted F-err {s['predicted_error']:.3f} eV/A")
        parts.append(f"{time.monotonic() - self._start:.0f} s")
        return " | ".join(parts)

    def _print(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
