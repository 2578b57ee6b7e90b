"""The repository holds code, configuration, small data and small result files: run data stays out of git.

Every clone pays for every tracked byte, so CI fails when a tracked file is over 1 MB, the tracked tree is over
20 MB, or a campaign store, run directory or model checkpoint is tracked (regenerate or restore them with
``python benchmarks/artefacts.py``). ``PENDING_REMOVAL`` lists run data still tracked while it leaves git in
steps (one submission's diffs are capped at 256 MiB); it is empty now. The list only shrinks: an entry no longer
tracked fails the test.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_FILE_BYTES = 1_000_000
MAX_TREE_BYTES = 20_000_000
PENDING_REMOVAL: tuple[str, ...] = ()
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors", ".ckpt", ".model")


def tracked() -> dict[str, int]:
    """Tracked path -> size in bytes, from the index (``git ls-files -s`` + the blobs' sizes)."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "-r", "-l", "--full-tree", "HEAD"],
                             capture_output=True, text=True, check=True).stdout
        staged = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True,
                                check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    sizes = {line.split("\t", 1)[1]: int(line.split()[3]) for line in out.splitlines() if line.split()[3] != "-"}
    files = {path: sizes.get(path, (ROOT / path).stat().st_size if (ROOT / path).is_file() else 0)
             for path in staged if path}
    return files


def kept(files: dict[str, int]) -> dict[str, int]:
    return {p: s for p, s in files.items() if not p.startswith(PENDING_REMOVAL)}


def test_no_tracked_file_over_1_mb() -> None:
    big = {p: s for p, s in kept(tracked()).items() if s > MAX_FILE_BYTES}
    assert not big, f"tracked files over 1 MB (run data belongs in runs/, see benchmarks/artefacts.yaml): {big}"


def test_tracked_tree_under_20_mb() -> None:
    total = sum(kept(tracked()).values())
    assert total <= MAX_TREE_BYTES, f"the tracked tree is {total / 1e6:.1f} MB (limit {MAX_TREE_BYTES / 1e6:.0f} MB)"


def test_no_store_run_directory_or_checkpoint_tracked() -> None:
    bad = [p for p in kept(tracked())
           if ".zarr/" in p or any(part.endswith(".run") for part in p.split("/")[:-1])
           or (p.endswith(CHECKPOINT_SUFFIXES) and not p.startswith("tests/"))]
    assert not bad, f"stores, run directories or checkpoints are tracked: {bad[:10]}"


def test_pending_removals_are_still_pending() -> None:
    files = tracked()
    gone = [prefix for prefix in PENDING_REMOVAL if not any(p.startswith(prefix) for p in files)]
    assert not gone, f"{gone} no longer tracked: remove them from PENDING_REMOVAL (the list only shrinks)"


def _strings(tree: object) -> list[str]:
    if isinstance(tree, dict):
        return [s for v in tree.values() for s in _strings(v)]
    if isinstance(tree, list):
        return [s for v in tree for s in _strings(v)]
    return [tree] if isinstance(tree, str) else []


def test_tests_and_quickstarts_read_no_benchmark_data() -> None:
    """The tests' data lives in tests/data, the example campaigns' in examples/data: benchmarks/ can change freely."""
    import yaml

    needles = ("benchmarks" + "/data", '"benchmarks" / "data"')  # split: this file does not match itself
    readers = [p.name for p in (ROOT / "tests").rglob("test_*.py")
               if p.name != Path(__file__).name and any(n in p.read_text() for n in needles)]
    quickstarts = [p.name for p in (ROOT / "campaigns").glob("*quickstart*.yaml")
                   if any("benchmarks/" in s for s in _strings(yaml.safe_load(p.read_text())))]
    assert not readers and not quickstarts, f"reading benchmarks/data: {readers} {quickstarts}"
