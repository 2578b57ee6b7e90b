"""The tests' kill harness (``tests/harness``: outside the wheel, never installed) for the benchmarks that kill
campaigns, ``kill_soak.py`` and ``lib/worker_kills.py``: importing this module puts the repository's ``tests`` on
``sys.path`` and re-exports what they use (the tiny campaign and its store checks, the kill points, the kill plans
and runs)."""

from __future__ import annotations

import sys

from lib.common import ROOT

if str(ROOT / "tests") not in sys.path:
    sys.path.append(str(ROOT / "tests"))

from harness.campaigns import (  # noqa: E402 (the harness is found once tests/ is on the path)
    check_invariants,
    committed_label_entries,
    lost_and_changed,
    tail,
    write_tiny,
)
from harness.kill_points import ALL_MODES, PROGRESS_MODES, WINDOW  # noqa: E402
from harness.kill_resume import (  # noqa: E402
    KillPoint,
    RunHung,
    campaign_command,
    committed_phases,
    committed_seq,
    kill_plan,
    phase_commits,
    plan_cost,
    run_group,
)

__all__ = ["ALL_MODES", "PROGRESS_MODES", "WINDOW", "KillPoint", "RunHung", "campaign_command", "check_invariants",
           "committed_label_entries", "committed_phases", "committed_seq", "kill_plan", "lost_and_changed",
           "phase_commits", "plan_cost", "run_group", "tail", "write_tiny"]
