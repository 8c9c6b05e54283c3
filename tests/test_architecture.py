"""The module structure: no import cycle between axon's modules (function-local imports
included), and the graph-building core never imports the subsystems built on it.

The import graph is read from the source with ``ast``: ``import axon.a.b`` and ``from
axon.a import b`` are edges to ``axon.a.b`` when that is a module, else to ``axon.a`` (a
package's ``__init__``); imports under ``if TYPE_CHECKING:`` are not edges. Importing
``axon.a.b`` also runs the ``__init__`` of ``axon`` and ``axon.a``; those implicit edges are
left out, or everything would depend on ``axon/__init__.py``, which imports everything.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "axon"

CORE = ("axon.api", "axon.graph", "axon.compiler", "axon.layers")
"""The modules that build and compile graphs (``axon.graph`` covers ``graph_ops`` and
``graph_rewrite``, ``axon.compiler`` any ``compiler_*`` module)."""

BUILT_ON_CORE = ("axon.serialization", "axon.loop", "axon.onnx", "axon.distributed", "axon.pretrained", "axon.models")
"""Subsystems built on the core, which the core must never import."""

KNOWN_CYCLE_EDGES: dict[tuple[str, str], str] = {
    ("axon.graph", "axon.display"):
        "the one documented notebook-repr import: Axon._repr_html_ shows the model table "
        "(axon.display.graph_html), which needs the compiler; imported when Jupyter asks",
}
"""Function-local imports that close a cycle, each with its reason. Only the notebook repr's
import is allowed; the cycle test ignores it and the test below keeps the list to it."""


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def imports_of(module: str) -> set[str]:
    """The axon modules ``module`` imports anywhere in its source (function bodies too)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    skipped = _type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "axon")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            if source.split(".")[0] != "axon":
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.add(sub if sub in MODULES else source)
    found.discard(module)
    return {m for m in found if m in MODULES}


GRAPH = {m: imports_of(m) for m in MODULES}


def strongly_connected(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The import cycles: strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

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
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Every module ``start`` imports, directly or not, each with the module importing it."""
    seen: dict[str, str] = {}
    todo = [start]
    while todo:
        v = todo.pop()
        for w in graph[v]:
            if w not in seen and w != start:
                seen[w] = v
                todo.append(w)
    return seen


def _in(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") or module.startswith(p + "_") for p in prefixes)


def _chain(parents: dict[str, str], start: str, end: str) -> str:
    chain = [end]
    while chain[-1] != start:
        chain.append(parents[chain[-1]])
    return " -> ".join(reversed(chain))


def test_the_reader_sees_function_local_imports():
    # a self-check of the reader on a module known to import inside a function
    assert "axon.api.core" in GRAPH["axon.serialization.graph_decoding"]
    assert "axon.registry" in GRAPH["axon.api.core"]
    assert GRAPH["axon.registry"] == set()  # the registry is a leaf


def test_strongly_connected_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [frozenset({"a", "b", "c"})]


def test_no_import_cycles_between_axon_modules():
    graph = {m: {w for w in imported if (m, w) not in KNOWN_CYCLE_EDGES} for m, imported in GRAPH.items()}
    cycles = strongly_connected(graph)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)


def test_the_only_cycle_edge_is_the_notebook_repr():
    assert set(KNOWN_CYCLE_EDGES) == {("axon.graph", "axon.display")}
    for importer, imported in KNOWN_CYCLE_EDGES:
        # the edge exists and is function-local (the module itself imports without it)
        assert imported in GRAPH[importer]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _in(m, CORE)))
def test_the_core_never_imports_the_subsystems_built_on_it(module):
    parents = reachable(GRAPH, module)
    bad = sorted(m for m in parents if _in(m, BUILT_ON_CORE))
    assert not bad, f"{module} imports " + "; ".join(_chain(parents, module, m) for m in bad)
