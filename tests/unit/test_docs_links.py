"""Every link to a section of the docs (``[text](benchmarks.md#anchor)``, ``(#anchor)``) in README.md and docs/
names a heading that exists, by GitHub's anchor rule (lower case, punctuation dropped, spaces to hyphens)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_anchor_rule():
    assert anchor("SevenNet-0 (the universal quickstart)") == "sevennet-0-the-universal-quickstart"
    assert anchor("Reline (deep eutectic solvent): boxes, label cost") == "reline-deep-eutectic-solvent-boxes-label-cost"


def test_every_section_link_names_a_heading():
    headings = {page.resolve(): {anchor(h) for h in re.findall(r"^#+ (.+)$", page.read_text(), flags=re.M)}
                for page in PAGES}
    broken = []
    for page in PAGES:
        for target, name in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", page.read_text()):
            path = (page.parent / target).resolve() if target else page.resolve()
            if path in headings and name not in headings[path]:
                broken.append(f"{page.relative_to(ROOT)}: {target}#{name}")
    assert not broken, broken
