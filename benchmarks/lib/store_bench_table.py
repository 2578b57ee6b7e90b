"""The tables of ``store_bench.py``: frames appended per second and milliseconds per commit, and the cost of opening
a big store."""

from __future__ import annotations

from typing import Any


def append_lines(result: dict[str, Any]) -> list[str]:
    """Per atoms per frame and batch: frames appended per second (add_frames + commit) and ms per commit (wall, and
    CPU of the process, which the machine's load moves less)."""
    lines = ["| atoms/frame | batch | frames | commits | frames/s | ms/commit | CPU ms/commit |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    return lines + [f"| {r['atoms']} | {r['batch']} | {r['frames']} | {r['commits']} | {r['fps']:.0f} | "
                    f"{r['ms_per_commit']:.1f} | {r['cpu_ms_per_commit']:.1f} |" for r in result["append"]]


def open_lines(result: dict[str, Any]) -> list[str]:
    """Opening a store of many frames: read-only, all frame metadata, 100 random frames, for writing."""
    r = result["open"]
    return ["| frames | open (read) ms | frame_meta() ms | get_frames(100 random) ms | open (write: lock, cleanup) ms |",
            "|---:|---:|---:|---:|---:|",
            f"| {r['frames']} | {r['open_ms']:.1f} | {r['meta_ms']:.1f} | {r['get100_ms']:.1f} | {r['open_a_ms']:.1f} |"]


def store_bench_lines(result: dict[str, Any]) -> list[str]:
    """Both tables with their titles (what the script prints)."""
    fsync = "on" if result["fsync"] else "off"
    return [f"## Appending frames (add_frames + commit; fsync {fsync})", "", *append_lines(result), "",
            f"## Opening a store of {result['open']['frames']} frames ({result['open']['atoms']} atoms each)", "",
            *open_lines(result)]
