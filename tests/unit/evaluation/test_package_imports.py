"""Each module of alloop.evaluation imports first, in a fresh interpreter: its parts sit on different floors and
training and the store import some of them, so a module-level import of training or the store by the lower parts
would make a circle through a package's ``__init__`` that the import graph of tests/unit/test_layout.py misses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import alloop.evaluation

MODULES = sorted(p.stem for p in Path(alloop.evaluation.__file__).parent.glob("*.py") if p.stem != "__init__")
#: import each module after forgetting every alloop module (third-party ones stay loaded: quick)
SCRIPT = """
import importlib, sys
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "alloop" or m.startswith("alloop.")]:
        del sys.modules[loaded]
    importlib.import_module("alloop.evaluation." + name)
    print(name)
"""


def test_every_module_imports_first() -> None:
    assert {"frames", "metrics", "records", "auto", "scoring", "campaign", "evaluate"} <= set(MODULES)
    root = Path(alloop.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", SCRIPT, *MODULES], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == MODULES
