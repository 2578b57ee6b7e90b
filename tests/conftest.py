"""Shared fixtures: small molecules, a temporary store directory, thread pinning; Dask workers forked, not spawned."""

from __future__ import annotations

import os
from pathlib import Path

import dask
import pytest
import torch

# Dask's nanny may leave OMP/MKL threads at 1 in the environment; tests pin their own.
torch.set_num_threads(int(os.environ.get("ALLOOP_TEST_THREADS", "1")))

#: what the forkserver of a test process imports once, before it forks the Dask workers (and the store crash test's
#: writers, ``store_writer``: found once pytest has put ``tests/integration`` on ``sys.path``; a name that cannot be
#: imported is skipped)
FORKSERVER_PRELOAD = (
    "distributed", "numpy", "scipy", "ase", "zarr", "torch", "pyscf", "pyscf.scf", "pyscf.dft", "pyscf.grad",
    "alloop.campaign.execution.labeling_pool", "alloop.campaign.execution.train_task",
    "alloop.campaign.execution.md_task", "alloop.campaign.execution.bias_task", "alloop.labeling.pyscf_labeler",
    "alloop.potentials.pair", "alloop.potentials.egnn", "alloop.store.campaign", "store_writer",
)


def _fork_dask_workers() -> None:
    """The LocalClusters that tests start in this process (every campaign run in-process: ~35 of them) fork their
    worker processes from one forkserver that has imported torch, PySCF and alloop's task modules once (Dask's own
    test suite does the same), instead of spawning fresh interpreters that import them again for each cluster:
    ~40 s less per cluster on loaded cores, ~8 s on idle ones. Only here: ``alloop`` keeps Dask's default (spawn),
    which every campaign the tests run as a separate process (``alloop run``/``resume`` through ``subprocess``: the
    kill tests, the SIGTERM test, the dashboard's and the remote scheduler's) still uses. The worker's compute
    threads are pinned by the cluster's worker plugin either way (``alloop.campaign.execution.cluster``)."""
    from distributed.utils import get_mp_context

    dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"})
    context = get_mp_context()  # sets Dask's own preload list once; ours replaces it (it starts with "distributed")
    context.set_forkserver_preload(list(FORKSERVER_PRELOAD))


_fork_dask_workers()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``mace`` need mace-torch (alloop[mace]), which cannot share an environment with sevenn: where it
    is missing they skip with the reason (.ci/run runs them in its second venv). Tests marked ``so3lr`` need
    so3krates-torch (alloop[so3lr], SO3LR's weights): where it is missing they skip with the reason."""
    import importlib.util

    if item.get_closest_marker("mace") is not None and importlib.util.find_spec("mace") is None:
        pytest.skip("needs mace-torch: pip install 'alloop[mace]' (an environment without sevenn; .ci/run's mace venv)")
    if item.get_closest_marker("so3lr") is not None and importlib.util.find_spec("so3krates_torch") is None:
        pytest.skip("needs so3krates-torch (SO3LR's weights): pip install 'alloop[so3lr]'")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--dist loadgroup`` (pyproject's addopts) sends the tests of one ``xdist_group`` to one worker through a
    suffix (``nodeid@group``) that pytest-xdist writes to ``item._nodeid``, which pytest 9 no longer reads (it keeps
    a structured ``item._id``): the groups were silently ignored and the module fixtures of grouped modules built
    once per worker (pytest-dev/pytest-xdist#1386). The same suffix, set where pytest 9 reads it; nothing to do when
    xdist's own suffix took (pytest < 9) or without loadgroup."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                         for m in item.iter_markers("xdist_group")})
        nodeid = item.nodeid
        if not groups or nodeid.rfind("@") > nodeid.rfind("]") or not hasattr(item, "_id"):
            continue
        from _pytest.nodeid import NodeId  # pytest >= 9

        item._id = NodeId.parse(f"{nodeid}@{'_'.join(groups)}")


@pytest.fixture
def water():
    from ase.build import molecule

    return molecule("H2O")


@pytest.fixture
def ethanol():
    from ase.build import molecule

    return molecule("CH3CH2OH")


@pytest.fixture
def malonaldehyde():
    """The enol of malonaldehyde (HF/STO-3G geometry): O0, C1-C3, O4, the hydrogen-bonded proton H5 on O4."""
    from alloop.io import read_structures

    (atoms,) = read_structures(Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "malonaldehyde.xyz")
    return atoms
