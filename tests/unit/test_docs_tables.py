"""The generated tables of docs/benchmarks.md match what ``python benchmarks/docs_tables.py`` makes from the committed
result files (the command's ``--check``), and the check fails on a table edited by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the scripts' own layout: benchmarks/ on sys.path, lib.* importable

import docs_tables  # noqa: E402


def test_committed_docs_match_their_result_files(capsys: pytest.CaptureFixture[str]) -> None:
    code = docs_tables.main(["--check"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "not generated:" in out.out


def test_check_names_a_table_edited_by_hand() -> None:
    registry = docs_tables.load_registry()
    text = (BENCHMARKS.parent / registry["docs"]).read_text()
    edited = text.replace("| herding (30) | 0.00259 |", "| herding (30) | 0.00300 |")
    assert edited != text
    regenerated, names = docs_tables.regenerate(edited, registry)
    assert regenerated == text
    assert docs_tables.changed_tables(edited, regenerated, names) == ["herding-ethanol-500K"]


def test_every_section_with_a_table_is_in_the_registry() -> None:
    """Each ## / ### section of the docs that holds a table has a registry entry (result files or a reason)."""
    registry = docs_tables.load_registry()
    text = (BENCHMARKS.parent / registry["docs"]).read_text()
    with_tables, current = set(), None
    for line in text.splitlines():
        if line.startswith(("## ", "### ")):
            current = line.split(" ", 1)[1]
        elif line.startswith("|---") and current is not None:
            with_tables.add(current)
    entries = registry["sections"]
    assert with_tables == {s["section"] for s in entries}
    assert all(s["result"] is not None or s.get("reason") for s in entries)


def test_a_missing_marker_is_a_one_line_error() -> None:
    with pytest.raises(SystemExit, match="0 blocks for table nowhere"):
        docs_tables.replace_block("# docs\n", "nowhere", ["x.json"], ["| a |"])


def test_readme_results_rows_come_from_the_result_files() -> None:
    """The README's generated table is remade from the result files: a number edited by hand is put back, and a
    row's cell is computed (the CCSD(T) campaign's final model, from its status.json)."""
    import json

    registry = docs_tables.load_registry()
    readme = (BENCHMARKS.parent / registry["readme"]["file"]).read_text()
    status = json.loads((BENCHMARKS / "results" / "ethanol-ccsdt" / "status.json").read_text())
    final = f"**{status['evaluation']['models'][-1]['eval_force_mae_eV_per_A']:.4f} eV/A**"
    assert final in readme
    edited = readme.replace(final, "**0.0100 eV/A**")
    assert edited != readme
    assert docs_tables.regenerate_readme(edited, registry) == readme
