"""The tests' harness, outside the wheel: what alloop's own tests (and the kill soak, ``benchmarks/kill_soak.py``)
drive campaigns with, and no user needs to import.

- ``kill_points``: run the CLI and SIGKILL its process group at a point counted in the store's commits;
- ``kill_resume``: the kill plans, the runs through the killer, the store readings the crash tests check;
- ``campaigns``: the tiny water campaign and the store invariants checked after it;
- ``faults``: labellers that fail, take longer, or kill their worker on purpose;
- ``dashboard``: ``alloop dashboard`` as its own process, on a free port;
- ``mace_models``: small random MACE networks saved as mace does (needs the mace extra).

Imported as ``harness`` (``pyproject.toml`` puts ``tests`` on pytest's ``pythonpath``). The conformance checks a
user's own potential or labeller can run stay public in ``alloop.testing``.
"""
