"""Run data kept out of git (``benchmarks/artefacts.yaml``): list it, restore it from the history, fetch an archive.

    python benchmarks/artefacts.py list                 # every artefact: path, how to remake it, where to get it
    python benchmarks/artefacts.py restore reline-nvp   # extract it from the commit that still holds it into runs/
    python benchmarks/artefacts.py fetch reline-nvp     # download its published archive (url) and check its sha256

``restore`` needs a full clone (the history); ``fetch`` needs a published ``url`` (none is published yet: the
command says so). Nothing here writes inside the tracked tree: artefacts go to ``runs/`` or ``$ALLOOP_CACHE``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "benchmarks" / "artefacts.yaml"


def load() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(REGISTRY.read_text())


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def restore(name: str, entry: dict[str, Any]) -> Path:
    """Extract the artefact from the commit that still holds it to its ``path`` (``git archive``, no download)."""
    commit, old = entry["git"]["commit"], entry["git"]["path"]
    target = ROOT / entry["path"]
    if target.exists():
        raise SystemExit(f"{target} exists already: remove it first")
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit, old], capture_output=True)
    if tar.returncode != 0:
        raise SystemExit(f"git archive {commit} {old} failed (a shallow clone has no history): {tar.stderr.decode()}")
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
        for member in archive.getmembers():
            inside = member.name.rstrip("/")
            if inside != old and not inside.startswith(old + "/"):
                continue  # the parent folders git archive lists
            member.name = entry["path"] + inside[len(old):]
            archive.extract(member, ROOT, filter="data")
    if entry.get("sha256") and target.is_file() and sha256(target) != entry["sha256"]:
        raise SystemExit(f"{target}: checksum differs from the registry's")
    return target


def fetch(name: str, entry: dict[str, Any]) -> Path:
    """Download the artefact's published archive into the cache and check its checksum."""
    url = entry.get("url")
    if not url:
        raise SystemExit(f"{name}: no archive is published yet (url: null); remake it ({entry['make']}) or restore it "
                         f"from git history (python benchmarks/artefacts.py restore {name})")
    cache = Path(os.environ.get("ALLOOP_CACHE", Path.home() / ".cache" / "alloop"))
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / Path(url["href"]).name
    if not target.is_file():
        urllib.request.urlretrieve(url["href"], target)
    if sha256(target) != url["sha256"]:
        target.unlink()
        raise SystemExit(f"{name}: the download's checksum differs from the registry's; removed it")
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=["list", "restore", "fetch"])
    p.add_argument("name", nargs="?")
    args = p.parse_args(argv)
    registry = load()
    if args.action == "list":
        for name, entry in registry.items():
            print(f"{name}: {entry['path']}\n  make: {entry['make']}\n  git: {entry['git']['commit']}:"
                  f"{entry['git']['path']}\n  url: {entry.get('url')}\n  results: {entry.get('results')}")
        return 0
    if args.name not in registry:
        p.error(f"no artefact {args.name!r}; known: {', '.join(registry)}")
    action = restore if args.action == "restore" else fetch
    print(action(args.name, registry[args.name]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
