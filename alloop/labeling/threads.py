"""Pin the compute threads of this process: PySCF's OpenMP, every loaded OpenBLAS, and torch; or every loaded
OpenMP runtime (tblite's, for the xTB labeller).

Dask's nanny starts workers with OMP/MKL/OPENBLAS_NUM_THREADS=1, and several
BLAS copies live in one process (numpy's, scipy's and PySCF's own OpenBLAS),
so a labelling task sets its thread count explicitly every time it runs.
OpenMP's thread count is per calling thread (the Dask executor thread), which
is why this is called inside the task rather than once per process.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from functools import lru_cache
from typing import Any

#: exported names of "set the number of threads" in the OpenBLAS builds we know
#: a function of a shared library, as ctypes gives it
CFunction = Callable[..., Any]
#: (file name, thread-count setter, thread-count getter) of each loaded library
Runtimes = tuple[tuple[str, CFunction, CFunction], ...]

_SETTERS = (
    "openblas_set_num_threads",
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
)
_GETTERS = (
    "openblas_get_num_threads",
    "scipy_openblas_get_num_threads64_",
    "scipy_openblas_get_num_threads",
    "openblas_get_num_threads64_",
)


def _loaded_libraries(fragment: str) -> list[str]:
    """Paths of shared libraries mapped into this process whose file name contains ``fragment``."""
    try:
        with open("/proc/self/maps") as fh:
            lines = fh.read().splitlines()
    except OSError:  # not Linux: nothing to pin through ctypes
        return []
    paths = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 6 and fragment in parts[-1].rsplit("/", 1)[-1].lower() and parts[-1] not in paths:
            paths.append(parts[-1])
    return paths


@lru_cache(maxsize=8)
def _openblas_functions(libraries: tuple[str, ...]) -> Runtimes:
    """(file name, setter, getter) for each loaded OpenBLAS. Single-threaded builds always report 1."""
    found = []
    for path in libraries:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(lib, n) for n in _SETTERS if hasattr(lib, n)), None)
        getter = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
        if setter is not None and getter is not None:
            getter.restype = ctypes.c_int
            found.append((path.rsplit("/", 1)[-1], setter, getter))
    return tuple(found)


def _openblas() -> Runtimes:
    import numpy  # noqa: F401  (make sure numpy's BLAS is loaded)

    return _openblas_functions(tuple(_loaded_libraries("openblas")))


def set_compute_threads(n: int) -> None:
    """Use ``n`` threads for PySCF (OpenMP, this thread), every loaded OpenBLAS, and torch if imported."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"thread count must be a positive integer, not {n!r}")
    from pyscf import lib

    lib.num_threads(n)
    for _, setter, _ in _openblas():
        setter(ctypes.c_int(n))
    torch = _imported_torch()
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _imported_torch() -> Any:
    """torch if this process has imported it (or is importing it), else None.

    A Dask worker unpickles a task's arguments in another thread than the one running its current task, and
    unpickling a model imports torch: ``sys.modules`` then holds a partially initialised torch (no
    ``get_num_threads`` yet; a kill test's labelling task failed on it). The import statement waits for the
    other thread to finish initialising the module.
    """
    if "torch" not in sys.modules:
        return None
    import torch

    return torch


#: file-name fragments of OpenMP runtimes (GNU, LLVM, Intel)
_OPENMP_RUNTIMES = ("libgomp", "libomp", "libiomp5")
_openmp_cache: dict[str, Any] = {"modules": -1, "runtimes": ()}  # modules: len(sys.modules); runtimes: Runtimes


def _openmp_runtimes() -> Runtimes:
    """(file name, omp_set_num_threads, omp_get_max_threads) of each loaded OpenMP runtime.

    Reading /proc/self/maps costs about a millisecond, as much as a small xTB label: the scan is redone only
    when modules were imported since the last one (a new extension may have brought its own runtime).
    """
    if _openmp_cache["modules"] != len(sys.modules):
        found = []
        for fragment in _OPENMP_RUNTIMES:
            for path in _loaded_libraries(fragment):
                try:
                    lib = ctypes.CDLL(path)
                except OSError:
                    continue
                if hasattr(lib, "omp_set_num_threads") and hasattr(lib, "omp_get_max_threads"):
                    found.append((path.rsplit("/", 1)[-1], lib.omp_set_num_threads, lib.omp_get_max_threads))
        _openmp_cache.update(modules=len(sys.modules), runtimes=tuple(found))
    runtimes: Runtimes = _openmp_cache["runtimes"]
    return runtimes


def set_openmp_threads(n: int) -> None:
    """omp_set_num_threads(n) in every loaded OpenMP runtime (for the calling thread, as OpenMP counts them)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"thread count must be a positive integer, not {n!r}")
    for _, setter, _ in _openmp_runtimes():
        setter(ctypes.c_int(n))


def openmp_threads() -> dict[str, int]:
    """omp_get_max_threads() of each loaded OpenMP runtime, by file name (for checks and reports)."""
    return {name: int(getter()) for name, _, getter in _openmp_runtimes()}


def compute_threads() -> dict[str, int]:
    """The thread counts in force in this thread/process (for checks and reports)."""
    from pyscf import lib

    counts = {"pyscf_omp": int(lib.num_threads())}
    for name, _, getter in _openblas():
        counts[name] = int(getter())
    torch = _imported_torch()
    if torch is not None:
        counts["torch"] = int(torch.get_num_threads())
    return counts
