"""Layout of ``benchmarks/``: scripts share code through ``benchmarks/lib`` only (no script imports another script,
no import cycle among the shared modules), and no function there is over 60 lines.

Read with ``ast`` (nothing is imported): every ``import`` and ``from ... import`` anywhere in a file, inside
functions too. A script is a ``benchmarks/*.py`` file; the shared modules are ``benchmarks/lib/*.py``, imported as
``lib.<module>``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
MAX_FUNCTION_LINES = 60


def _imported(tree: ast.AST) -> set[str]:
    """Absolute module names ``tree`` imports (``from x import a`` gives ``x`` and ``x.a``); relative imports are
    read against ``lib``, the only package here."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ("lib." * bool(node.level) + (node.module or "")).rstrip(".")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _parsed(folder: Path) -> dict[str, ast.Module]:
    return {p.name: ast.parse(p.read_text(), str(p)) for p in sorted(folder.glob("*.py"))}


def script_imports(folder: Path) -> list[str]:
    """``importer -> script`` for every file of ``folder`` or ``folder/lib`` that imports a script of ``folder``."""
    scripts = {name.removesuffix(".py") for name in _parsed(folder)}
    files = {**_parsed(folder), **{f"lib/{k}": v for k, v in _parsed(folder / "lib").items()}}
    return [f"{name} -> {target}.py" for name, tree in files.items()
            for target in sorted(scripts & {n.split(".")[0] for n in _imported(tree)})]


def lib_cycle(folder: Path) -> list[str] | None:
    """A cycle of imports among the modules of ``folder/lib`` (``lib.a``, ``lib.b``, ..., ``lib.a``), or None."""
    modules = {f"lib.{name.removesuffix('.py')}": tree for name, tree in _parsed(folder / "lib").items()}
    graph = {name: {n for n in _imported(tree) if n in modules and n != name} for name, tree in modules.items()}
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for nxt in sorted(graph[node]):
            if (found := visit(nxt, path + [node])) is not None:
                return found
        done.add(node)
        return None

    return next((c for name in sorted(graph) if (c := visit(name, [])) is not None), None)


def long_functions(folder: Path, max_lines: int = MAX_FUNCTION_LINES) -> list[str]:
    """``path:line name: N lines`` for every function or method (nested ones too) of ``folder`` and its
    subfolders over ``max_lines`` lines, from ``def`` to its last line."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > max_lines:
                    found.append(f"{path.relative_to(folder).as_posix()}:{node.lineno} {node.name}: {n} lines")
    return found


def _write(folder: Path, files: dict[str, str]) -> Path:
    (folder / "lib").mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_checks_see_a_script_import_a_lib_cycle_and_a_long_function(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad", {
        "a.py": "from lib.x import f\n", "b.py": "def g():\n    from a import h\n",
        "lib/__init__.py": "", "lib/x.py": "from lib.y import f\n", "lib/y.py": "from . import x\nimport c\n",
        "c.py": "def long():\n" + "    x = 1\n" * MAX_FUNCTION_LINES})
    assert script_imports(bad) == ["b.py -> a.py", "lib/y.py -> c.py"]
    assert lib_cycle(bad) == ["lib.x", "lib.y", "lib.x"]
    assert long_functions(bad) == [f"c.py:1 long: {MAX_FUNCTION_LINES + 1} lines"]
    good = _write(tmp_path / "good", {
        "a.py": "from lib.x import f\nimport numpy\n", "lib/__init__.py": "", "lib/x.py": "from lib.y import f\n",
        "lib/y.py": "def f():\n" + "    x = 1\n" * (MAX_FUNCTION_LINES - 1)})
    assert script_imports(good) == [] and lib_cycle(good) is None and long_functions(good) == []


def test_no_script_imports_another_script() -> None:
    found = script_imports(BENCHMARKS)
    assert not found, "scripts import scripts (move what they share to benchmarks/lib):\n" + "\n".join(found)


def test_no_import_cycle_in_benchmarks_lib() -> None:
    cycle = lib_cycle(BENCHMARKS)
    assert cycle is None, "import cycle in benchmarks/lib: " + " -> ".join(cycle or [])


def test_no_long_function_in_benchmarks() -> None:
    found = long_functions(BENCHMARKS)
    assert not found, f"functions over {MAX_FUNCTION_LINES} lines in benchmarks/ (split them):\n" + "\n".join(found)


def test_lib_paths_point_at_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    """``lib.common``'s ROOT is the repository and DATA its benchmark data (the module sits one floor down)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from lib.common import DATA, ROOT

    assert ROOT == BENCHMARKS.parent and DATA == BENCHMARKS / "data" and DATA.is_dir()
