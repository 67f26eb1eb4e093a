"""The import graph of ``neurodyn``: no circle, and imports inside functions only where allowed.

The graph is read from the source with :mod:`ast` (nothing is imported): an edge ``a -> b``
for every ``import``/``from ... import`` in module ``a``, at module level or inside a
function, that names module ``b`` of the package. Importing ``p.q.r`` from outside package
``p.q`` also runs ``p.q/__init__.py``, so it adds edges to those enclosing packages too; a
module's own enclosing packages are always initialised first and add none.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import neurodyn

ROOT = Path(neurodyn.__file__).parent

#: Top-level modules that may be imported inside a function: optional or slow-to-import
#: third-party dependencies that most commands never touch (each costs 0.3-2 s to import),
#: and fcntl (POSIX only).
LAZY_ALLOWED = {
    "mne", "pynwb", "dask", "distributed", "dask_jobqueue", "torch", "pyarrow", "arviz",
    "igraph", "leidenalg", "matplotlib", "sklearn", "scipy", "fcntl",
    "xarray", "tensorly",  # 1.5-2 s each: the Python API / exports, and CPTensor / --solver
}
#: Packages whose functions may import neurodyn's own modules (and h5py) lazily: the CLI
#: imports a stage only when its command runs, so ``neurodyn --help`` stays fast (see
#: ``neurodyn/cli/__init__.py``).
LAZY_INTERNAL_OK = ("neurodyn.cli",)
CLI_DEFERRED = {"neurodyn", "h5py"}


def _modules() -> dict[str, tuple[Path, bool]]:
    mods = {}
    for p in sorted(ROOT.rglob("*.py")):
        parts = ["neurodyn", *p.relative_to(ROOT).with_suffix("").parts]
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (p, is_pkg)
    return mods


MODULES = _modules()


def _targets(mod: str, is_pkg: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Fully qualified names an import statement refers to (modules or module attributes)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = mod.split(".") if is_pkg else mod.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        pkg = ".".join(base + ([node.module] if node.module else []))
    else:
        pkg = node.module or ""
    return [f"{pkg}.{a.name}" if f"{pkg}.{a.name}" in MODULES else pkg for a in node.names]


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement that runs, and whether it sits inside a function (imports under
    ``if TYPE_CHECKING:`` never run and are left out)."""
    def under(kinds) -> set[int]:
        return {id(n) for f in ast.walk(tree) if kinds(f)
                for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}

    inner = under(lambda f: isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)))
    typing_only = under(_is_type_checking)
    return [(n, id(n) in inner) for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in typing_only]


@functools.cache  # parsed once for all tests
def import_graph() -> tuple[dict[str, set[str]], list[tuple[str, int, str]]]:
    """``({module: modules it imports}, [(module, line, statement) for imports in functions]``."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    lazy: list[tuple[str, int, str]] = []
    for mod, (path, is_pkg) in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        for node, in_function in _imports(tree):
            if in_function:
                lazy.append((mod, node.lineno, ast.unparse(node)))
            for name in _targets(mod, is_pkg, node):
                parts = name.split(".")
                # the module itself (or its longest prefix that is a module) ...
                while parts and ".".join(parts) not in MODULES:
                    parts.pop()
                # ... and the packages above it that ``mod`` is not inside
                for k in range(len(parts), 0, -1):
                    target = ".".join(parts[:k])
                    if target in MODULES and target != mod and not mod.startswith(target + "."):
                        graph[mod].add(target)
    return graph, lazy


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_finder_sees_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_graph_reads_function_level_and_package_imports():
    tree = ast.parse("import a\nif TYPE_CHECKING:\n    import b\ndef f():\n    import c\n")
    assert [(ast.unparse(n), lazy) for n, lazy in _imports(tree)] == [("import a", False),
                                                                       ("import c", True)]
    graph, lazy = import_graph()
    # a module-level import, a function-level one (the CLI's) and an enclosing package
    assert "neurodyn.io.store" in graph["neurodyn.preprocess"]
    assert "neurodyn.preprocess" in graph["neurodyn.cli.preprocess"]
    assert any(m == "neurodyn.cli.preprocess" for m, _, _ in lazy)
    assert "neurodyn.pipeline" in graph["neurodyn.cli.pipeline"]
    assert "neurodyn.pipeline" not in graph["neurodyn.pipeline.runner"]


def test_no_import_cycles():
    graph, _ = import_graph()
    cycles = find_cycles(graph)
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_function_level_imports_only_of_heavy_optional_modules():
    _, lazy = import_graph()
    bad = []
    for mod, line, stmt in lazy:
        node = ast.parse(stmt).body[0]
        if isinstance(node, ast.ImportFrom) and node.level:
            names = ["neurodyn"]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = [a.name for a in node.names]
        for name in names:
            top = name.split(".")[0]
            if top in CLI_DEFERRED and mod.startswith(LAZY_INTERNAL_OK):
                continue
            if top not in LAZY_ALLOWED:
                bad.append(f"{mod}:{line}: {stmt}")
    assert not bad, "imports inside functions (move them to module level):\n" + "\n".join(bad)
