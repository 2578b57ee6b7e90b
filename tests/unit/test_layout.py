"""Package layout: no import cycle inside ``alloop``, no import up a floor (``LAYERS``), only the campaign's execution room
(``alloop.campaign.execution``: clusters and the worker tasks) imports Dask, campaign phases read typed settings (not
the config) and know no driver, and sizes package-wide: no function in ``alloop`` over 60 lines, no module over 400
(``SIZE_EXEMPT`` aside, a list that only shrinks).

The import graph is read with ``ast`` (nothing is imported): every ``import``
and ``from ... import`` of a module, at module level or inside functions and
classes, and under ``if TYPE_CHECKING:`` too (a type hint is a dependency: two
modules that name each other's types are a circle). ``from pkg import name``
points at the submodule ``pkg.name`` when there is one, else at ``pkg``.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import alloop

ROOT = Path(alloop.__file__).parent
DASK = ("dask", "distributed", "dask_jobqueue")
#: the only package allowed to import Dask: the phases submit work through it and the worker tasks live in it
#: (``alloop.commands`` reaches clusters through ``alloop.campaign.loop.runner``, which uses this package)
DASK_PACKAGES = ("alloop.campaign.execution",)
#: the campaign's phases and what they run on: they get a PhaseContext with typed settings (alloop.campaign.phases.settings)
PHASES = ("explore", "label", "select_expensive", "train", "cycle_record", "context", "budget", "evaluation_set")  # phases/
#: the tasks that run on the workers (execution/): they get plain data from the phases, so the same rule holds for them
WORKER_TASKS = ("worker", "md_task", "bias_task", "train_task", "train_request", "final_refit")
#: modules outside execution/ whose functions run on the workers (the same rule: plain data in, no config)
WORKER_MODULES = ("alloop.evaluation.scoring",)
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400
#: size offenders allowed for now (``path`` or ``path:qualified.function.name``): none. An entry that is no longer
#: over its limit fails the test too, so the list only shrinks.
SIZE_EXEMPT: frozenset[str] = frozenset()
#: the floors of the house, lowest first: a module may import its own floor and the floors below, never one above
#: (the root modules every layer uses; data and config; the computing packages; what runs a campaign; what
#: reads it; the command line). Names are alloop's root modules and packages; a new one must be placed here.
LAYERS: tuple[frozenset[str], ...] = tuple(frozenset(floor.split()) for floor in (
    "_version errors units io presets allocator signals",
    "fidelity system evaluation evaluation.frames",
    "config training.methods",
    "labeling potentials evaluation.metrics",
    "uncertainty store evaluation.records evaluation.auto evaluation.molecule_table evaluation.predicted_errors",
    "md training evaluation.scoring evaluation.campaign",
    "testing deploy evaluation.evaluate",
    "campaign.execution",
    "campaign.phases",
    "campaign.loop campaign",
    "report dashboard",
    "commands",
    "cli __init__ __main__",
))


def _module_name(path: Path) -> str:
    parts = ("alloop",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.lru_cache(maxsize=1)
def _modules() -> dict[str, tuple[Path, ast.Module]]:
    """Every module of alloop, parsed once per test run (read-only for the tests)."""
    return {_module_name(p): (p, ast.parse(p.read_text(), str(p))) for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, type_checking: bool = False) -> list[ast.Import | ast.ImportFrom]:
    """Import statements anywhere in ``tree``; in ``if TYPE_CHECKING:`` bodies only with ``type_checking``."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and not type_checking and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Absolute names of what ``node`` imports (for ``from x import a, b``: ``x.a``, ``x.b``, plus ``x`` itself)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, tree) in modules.items():
        edges: set[str] = set()
        for node in _imports(tree, type_checking=True):
            targets = _targets(name, path.name == "__init__.py", node)
            if isinstance(node, ast.ImportFrom):
                base, names = targets[0], targets[1:]
                subs = [t for t in names if t in modules]
                edges.update(subs)
                if len(subs) < len(names) and base in modules:
                    edges.add(base)  # some names are attributes of the module (or package) ``base``
            else:
                for target in targets:  # ``import a.b.c``: the longest prefix that is an alloop module
                    parts = target.split(".")
                    hits = [".".join(parts[:k]) for k in range(len(parts), 0, -1) if ".".join(parts[:k]) in modules]
                    edges.update(hits[:1])
        edges.discard(name)
        graph[name] = edges
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(graph):
        if state.get(root):
            continue
        path, iters = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while path:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_graph_sees_function_level_imports() -> None:
    graph = _graph()
    assert "alloop.campaign.execution.jobqueue" in graph["alloop.campaign.loop.runner"]  # imported inside a function
    assert "alloop.campaign.phases.explore" in graph["alloop.campaign.loop.driver"]
    assert "alloop.store.campaign" in graph["alloop.store.sample"]  # imported under ``if TYPE_CHECKING:`` only


def test_phases_know_neither_the_driver_nor_the_config() -> None:
    """Not even for type hints: a phase gets a PhaseContext, not the Campaign, and its settings, not the config; a
    worker task gets its request."""
    modules = _modules()
    checked = [f"alloop.campaign.phases.{phase}" for phase in PHASES]
    for module in checked + [f"alloop.campaign.execution.{task}" for task in WORKER_TASKS] + list(WORKER_MODULES):
        path, tree = modules[module]
        names = {n.module or "" for n in _imports(tree, type_checking=True) if isinstance(n, ast.ImportFrom)}
        names |= {a.name for n in _imports(tree, type_checking=True) if isinstance(n, ast.Import) for a in n.names}
        config = {n for n in names if n == "alloop.config" or n.startswith("alloop.config.")}
        assert "alloop.campaign.loop.driver" not in names and not config, path


def _functions(tree: ast.AST) -> list[tuple[str, int, int]]:
    """(qualified name, first line, lines) of every function or method, nested ones included (``Class.method``,
    ``outer.inner``), spanning from ``def`` to its last line (decorators apart; the signature and docstring count)."""
    found: list[tuple[str, int, int]] = []
    stack: list[tuple[ast.AST, str]] = [(tree, "")]
    while stack:
        node, prefix = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert child.end_lineno is not None
                found.append((prefix + child.name, child.lineno, child.end_lineno - child.lineno + 1))
                stack.append((child, f"{prefix}{child.name}."))
            elif isinstance(child, ast.ClassDef):
                stack.append((child, f"{prefix}{child.name}."))
            else:
                stack.append((child, prefix))
    return sorted(found, key=lambda span: span[1])


def _long_functions(tree: ast.AST, max_lines: int) -> list[tuple[str, int, int]]:
    """The functions of ``tree`` (:func:`_functions`) spanning over ``max_lines`` lines."""
    return [span for span in _functions(tree) if span[2] > max_lines]


def _size_offenders(package: Path) -> dict[str, str]:
    """Every module of ``package`` over ``MAX_MODULE_LINES`` lines (key: its path from the package's parent) and
    every function over ``MAX_FUNCTION_LINES`` (key: ``path:qualified.name``), each with a line saying by how much."""
    offenders: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        name, text = path.relative_to(package.parent).as_posix(), path.read_text()
        n_lines = len(text.splitlines())
        if n_lines > MAX_MODULE_LINES:
            offenders[name] = f"{name}: module of {n_lines} lines (> {MAX_MODULE_LINES})"
        for function, line, n in _long_functions(ast.parse(text, str(path)), MAX_FUNCTION_LINES):
            offenders[f"{name}:{function}"] = f"{name}:{line} {function}: {n} lines (> {MAX_FUNCTION_LINES})"
    return offenders


def _size_problems(offenders: dict[str, str], exempt: frozenset[str]) -> list[str]:
    """The offenders not in ``exempt``, then the entries of ``exempt`` that no longer offend."""
    problems = [line for key, line in sorted(offenders.items()) if key not in exempt]
    problems += [f"{key}: within the limits now; remove it from SIZE_EXEMPT" for key in sorted(exempt - set(offenders))]
    return problems


def test_long_function_finder() -> None:
    tree = ast.parse("def short():\n    pass\n\n\nclass A:\n    def long(self):\n" + "        x = 1\n" * 3)
    assert _long_functions(tree, 3) == [("A.long", 6, 4)]
    assert _long_functions(tree, 4) == []
    nested = ast.parse("def outer():\n    def inner():\n        pass\n    return inner\n")
    assert _functions(nested) == [("outer", 1, 4), ("outer.inner", 2, 2)]


def test_size_check_flags_a_long_function_and_a_long_module(tmp_path: Path) -> None:
    """The package-wide check sees a synthetic offender of each kind, and nothing at the limits."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "long.py").write_text(  # A.over: def + MAX_FUNCTION_LINES lines; at_limit: def + one less
        "class A:\n    def over(self):\n" + "        x = 1\n" * MAX_FUNCTION_LINES
        + "\n\ndef at_limit():\n" + "    x = 1\n" * (MAX_FUNCTION_LINES - 1))
    (package / "big.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    (package / "at_limit.py").write_text("x = 1\n" * MAX_MODULE_LINES)
    offenders = _size_offenders(package)
    assert sorted(offenders) == ["pkg/big.py", "pkg/sub/long.py:A.over"]
    over = f"pkg/sub/long.py:2 A.over: {MAX_FUNCTION_LINES + 1} lines (> {MAX_FUNCTION_LINES})"
    assert offenders["pkg/sub/long.py:A.over"] == over
    assert offenders["pkg/big.py"] == f"pkg/big.py: module of {MAX_MODULE_LINES + 1} lines (> {MAX_MODULE_LINES})"
    assert _size_problems(offenders, frozenset({"pkg/big.py"})) == [over]
    assert _size_problems(offenders, frozenset(offenders) | {"pkg/gone.py"}) == [
        "pkg/gone.py: within the limits now; remove it from SIZE_EXEMPT"]


def test_sizes_package_wide() -> None:
    """Every function in alloop/ is at most ``MAX_FUNCTION_LINES`` lines and every module ``MAX_MODULE_LINES``: split
    a longer one along its logic (``SIZE_EXEMPT``: exactly the offenders another branch is splitting)."""
    problems = _size_problems(_size_offenders(ROOT), SIZE_EXEMPT)
    assert not problems, (f"over the size limits (functions <= {MAX_FUNCTION_LINES} lines, modules <= "
                          f"{MAX_MODULE_LINES}):\n" + "\n".join(problems))


def test_cycle_finder() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle() -> None:
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_import_cycle_between_packages() -> None:
    """Nor between alloop's root modules, packages and rooms (:func:`_unit`): two packages that import each other,
    through any modules, are one package in two folders."""
    units: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        units.setdefault(_unit(module), set()).update(_unit(t) for t in targets if t.startswith("alloop"))
    for unit, targets in units.items():
        targets.discard(unit)
    cycle = _find_cycle(units)
    assert cycle is None, "import cycle between packages: " + " -> ".join(cycle or [])


#: packages whose parts sit on different floors: a module there belongs to ``package.part``
ROOMS = {"campaign": ("execution", "phases", "loop"),
         "training": ("methods",),  # the method registry: plain data the config reads
         "evaluation": ("frames", "metrics", "records", "auto", "scoring", "campaign", "evaluate", "molecule_table",
                        "predicted_errors")}


def _unit(module: str) -> str:
    """The root module or package of ``alloop.x.y`` (``__init__`` for the package ``alloop`` itself); in a package
    of ``ROOMS``, its room (``campaign.execution``, ``campaign.phases``, ``campaign.loop``)."""
    parts = module.split(".")
    if len(parts) > 2 and parts[2] in ROOMS.get(parts[1], ()):
        return f"{parts[1]}.{parts[2]}"
    return parts[1] if len(parts) > 1 else "__init__"


def _floor(unit: str) -> int:
    floors = [k for k, names in enumerate(LAYERS) if unit in names]
    assert floors, f"alloop.{unit} is on no floor of LAYERS (tests/unit/test_layout.py): place it"
    return floors[0]


def test_no_import_goes_up_a_floor() -> None:
    """A lower layer never imports a higher one (config never imports campaign/, report/ reads the store, not the
    loop), at module level or inside functions; ``if TYPE_CHECKING:`` imports aside."""
    offenders = []
    for module, targets in _graph().items():
        here = _floor(_unit(module))
        offenders += [f"{module} (floor {here}) imports {t} (floor {_floor(_unit(t))})"
                      for t in sorted(targets) if t.startswith("alloop") and _floor(_unit(t)) > here]
    assert not offenders, "\n".join(offenders)


def test_floor_check_sees_an_upward_import() -> None:
    assert _floor(_unit("alloop.config.execution")) < _floor(_unit("alloop.campaign.execution.jobqueue"))
    assert _floor(_unit("alloop.store.ledger")) < _floor(_unit("alloop.report.compare")) < _floor(_unit("alloop.cli"))


def test_only_the_execution_room_imports_dask() -> None:
    offenders = []
    for name, (_path, tree) in _modules().items():
        if any(name == p or name.startswith(p + ".") for p in DASK_PACKAGES):
            continue
        for node in _imports(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.level:
                continue
            offenders += [f"{name}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in DASK]
    assert not offenders, "\n".join(offenders)


def test_version_is_the_one_in_pyproject():
    import tomllib

    from alloop._version import __version__

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    assert __version__ == project["version"]


def test_alloop_imports_nothing_from_the_tests() -> None:
    """The kill and fault-injection harness lives in ``tests/harness`` (outside the wheel): no module of alloop
    imports it, or anything else of ``tests``, not even inside a function."""
    offenders = []
    for name, (_path, tree) in _modules().items():
        for node in _imports(tree, type_checking=True):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.level:
                continue
            offenders += [f"{name}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in ("harness", "tests")]
    assert not offenders, "\n".join(offenders)

