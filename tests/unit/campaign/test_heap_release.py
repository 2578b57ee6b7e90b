"""The driver's heap release between cycles (``alloop.campaign.loop.heap``) returns freed memory to the system."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from alloop.campaign.loop.heap import _malloc_trim, release_freed_memory


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux") or _malloc_trim() is None, reason="needs glibc's malloc_trim")
def test_freed_heap_below_a_live_block_goes_back_to_the_system() -> None:
    """64 MB of 4 KB blocks (malloc's heap, below its mmap threshold) are freed but the last one: free() cannot
    shrink the heap past a live block, so the pages stay resident until the trim hands them back."""
    blocks = [bytearray(b"x" * 4096) for _ in range(16_384)]
    keep = blocks.pop()
    del blocks
    before = _rss_mb()
    assert release_freed_memory()
    after = _rss_mb()
    assert before - after > 32, (before, after)
    assert keep[0] == ord("x")
