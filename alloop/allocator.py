"""Keep freed memory in the process for reuse: glibc malloc settings for large tensors and arrays.

glibc returns every allocation above its mmap threshold to the kernel when it is freed, so the next allocation
of that size is a fresh mapping whose pages fault in one by one. The threshold starts at 128 KiB and grows with
the blocks freed, up to 32 MiB; Dask's nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``
(``distributed.nanny.pre-spawn-environ``), which also freezes it at 128 KiB. A SevenNet training step on a
38-atom periodic box, or a periodic PySCF label, allocates and frees such buffers all the time: in a Dask worker
the kernel took as much CPU as the computation (650,000 page faults a second). With the limits below the memory
stays in the process's heap and is reused (``python benchmarks/allocator_bench.py``). One arena: a thread other
than the main one allocates from a heap of at most 64 MiB and maps anything larger afresh; alloop computes on
one or two threads per process, so they share the main heap.

:func:`reuse_freed_memory` sets them in a running process (``mallopt``); :data:`SPAWN_ENV` is the environment
that sets them in a process from its start (the embedded cluster's workers). Elsewhere than glibc (macOS, musl)
nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import lru_cache
from typing import Any

#: blocks up to this size come from the heap and go back to it when freed (bytes)
MMAP_THRESHOLD = 1 << 30
#: free memory at the top of the heap kept rather than returned to the kernel (bytes)
TRIM_THRESHOLD = 1 << 30

#: malloc arenas: every thread allocates from the main heap
ARENAS = 1

#: mallopt's parameter numbers (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8

#: the same limits as glibc's environment variables, read when a process starts
SPAWN_ENV = {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD), "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
             "MALLOC_ARENA_MAX": str(ARENAS)}


@lru_cache(maxsize=1)
def _mallopt() -> Callable[..., Any] | None:
    """glibc's ``mallopt``, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        return None


def reuse_freed_memory() -> bool:
    """Set :data:`MMAP_THRESHOLD`, :data:`TRIM_THRESHOLD` and :data:`ARENAS` in this process; True when the C
    library took them all. Threads started later get no arena of their own (they share those that exist: set at a
    process's start, as :data:`SPAWN_ENV` does, that is the main heap alone)."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_ARENA_MAX, ARENAS))
    return all([mallopt(param, ctypes.c_int(value)) == 1 for param, value in settings])
