"""Model graphs: ``Axon`` (an immutable graph with one output node), ``Node`` and ``Parameter``.

A graph is data. Every constructor returns a new ``Axon`` whose node table is the union of
its parents' tables plus one new node; nothing is ever mutated. Layer names are computed
lazily when a graph is built (see :func:`layer_names`), exactly as Axon does.

>>> import axon
>>> model = axon.input("x", shape=(None, 4)).pipe(axon.dense, 2)
>>> model
<Axon inputs={'x': (None, 4)} output='dense_0' nodes=2>
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

__all__ = ["Axon", "Node", "Parameter", "declared_inputs", "layer_names", "topological_order"]

_ids = itertools.count(1)
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

SPECIAL_OPS = ("input", "constant", "container", "optional", "or_else", "namespace", "block")


def next_id() -> int:
    """A fresh, process-unique node id."""
    return next(_ids)


def creation_site() -> str | None:
    """``file:line`` of the first stack frame outside the axon package (the user's call)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_PACKAGE_DIR) and "importlib" not in filename:
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


@dataclass(frozen=True, eq=False)
class Parameter:
    """A trainable parameter or a piece of layer state, declared with :func:`axon.param`.

    ``shape`` is a tuple of ints or a function of the layer inputs' shapes returning one;
    ``children`` makes a group whose value is a dict of arrays (e.g. an LSTM's per-gate
    kernels). ``kind`` is ``"parameter"`` (trained) or ``"state"`` (updated by the layer).
    """

    name: str
    shape: tuple[int, ...] | Callable[..., tuple[int, ...]] | None
    initializer: Callable[..., Any] | None
    dtype: Any = "float32"
    kind: str = "parameter"
    frozen: bool = False
    children: Mapping[str, Parameter] | None = None

    def __repr__(self) -> str:
        shape = self.shape if not callable(self.shape) else "<fn>"
        return f"Parameter({self.name!r}, shape={shape}, kind={self.kind!r})"


@dataclass(frozen=True, eq=False)
class Node:
    """One layer of a graph. ``op`` is a function (or the name of a special op); ``parents``
    are node ids; ``args`` records the call order of layer inputs (``"layer"``) and
    parameters (``"parameter"``)."""

    id: int
    name: str | Callable[[str, Mapping[str, int]], str] | None
    op: Any
    op_name: str
    parents: tuple[int, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    args: tuple[str, ...] = ()
    opts: Mapping[str, Any] = field(default_factory=dict)
    mode: str = "both"
    global_options: tuple[str, ...] = ()
    policy: Any = None
    hooks: tuple[tuple[str, str, Callable[..., Any]], ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    created_at: str | None = None

    def replace(self, **changes: Any) -> Node:
        """A copy of this node with ``changes`` applied (nodes are immutable)."""
        return replace(self, **changes)


class Axon:
    """An immutable model graph: a table of nodes and the id of the output node.

    Compose graphs with the constructors in ``axon`` (``axon.dense(x, 10)``) or with
    ``.pipe``; build them with :func:`axon.build`.

    >>> import axon
    >>> x = axon.input("x", shape=(None, 3))
    >>> y = x.pipe(axon.dense, 8, activation="relu").pipe(axon.dense, 1)
    >>> y.output_name, len(y.nodes)
    ('dense_1', 4)
    """

    __slots__ = ("__weakref__", "_nodes", "_output")

    def __init__(self, nodes: Mapping[int, Node], output: int):
        self._nodes = MappingProxyType(dict(nodes))
        self._output = output

    @property
    def nodes(self) -> Mapping[int, Node]:
        """Read-only table ``id -> Node`` of every node the output depends on (and maybe more)."""
        return self._nodes

    @property
    def output(self) -> int:
        """Id of the output node."""
        return self._output

    @property
    def node(self) -> Node:
        """The output node itself."""
        return self._nodes[self._output]

    @property
    def output_name(self) -> str:
        """The name the output layer gets when the graph is built."""
        return layer_names(self)[self._output][1]

    def pipe(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``f(self, *args, **kwargs)``: Axon's ``|>`` for method chaining.

        >>> import axon
        >>> axon.input("x").pipe(axon.relu).node.op_name
        'relu'
        """
        return f(self, *args, **kwargs)

    def __repr__(self) -> str:
        return (
            f"<Axon inputs={declared_inputs(self)!r} output={self.output_name!r} "
            f"nodes={len(topological_order(self))}>"
        )

    def _repr_html_(self) -> str:
        """Jupyter: the layer table (``axon.display.as_table``) when every input declares
        its shape (``None`` dimensions taken as 1, float32 inputs), else the repr."""
        # The one import against the module order (display imports graph): a notebook
        # representation is display's job, and graph must not import display at load time.
        from axon.display import graph_html

        return graph_html(self)

    def __iter__(self) -> Iterator[Any]:
        raise TypeError(
            "an Axon graph is a single node and cannot be iterated or unpacked; "
            "layers that return several outputs (split, lstm) return a tuple of graphs"
        )

    def __bool__(self) -> bool:
        return True


def merge_nodes(*graphs: Axon) -> dict[int, Node]:
    """Union of the node tables of ``graphs``."""
    nodes: dict[int, Node] = {}
    for g in graphs:
        nodes.update(g.nodes)
    return nodes


def topological_order(model: Axon) -> list[int]:
    """Node ids reachable from the output, parents first (depth-first post-order, parents
    visited left to right), the order in which Axon names and runs layers.

    >>> import axon
    >>> m = axon.input("x").pipe(axon.relu).pipe(axon.tanh)
    >>> [m.nodes[i].op_name for i in topological_order(m)]
    ['input', 'relu', 'tanh']
    """
    nodes = model.nodes
    order: list[int] = []
    seen: set[int] = set()
    stack: list[tuple[int, bool]] = [(model.output, False)]
    while stack:
        nid, expanded = stack.pop()
        if expanded:
            order.append(nid)
            continue
        if nid in seen:
            continue
        seen.add(nid)
        stack.append((nid, True))
        for p in reversed(nodes[nid].parents):
            if p not in seen:
                stack.append((p, False))
    return order


def declared_inputs(model: Axon) -> dict[str, tuple | None]:
    """Map each input name to its declared shape (``None`` when none was declared), sorted
    by name (``axon.get_inputs``).

    >>> import axon
    >>> declared_inputs(axon.add(axon.input("b"), axon.input("a", shape=(None, 1))))
    {'a': (None, 1), 'b': None}
    """
    out = {}
    for nid in topological_order(model):
        node = model.nodes[nid]
        if node.op == "input":
            out[node.name] = node.opts.get("shape")
    return dict(sorted(out.items()))


def _resolve_name(node: Node, counts: Mapping[str, int]) -> str:
    name = node.name
    count = counts.get(node.op_name, 0)
    if name is None:
        return f"{node.op_name}_{count}"
    if isinstance(name, str):
        return name.replace("{n}", str(count))
    resolved = name(node.op_name, dict(counts))
    if not isinstance(resolved, str):
        raise TypeError(f"a layer-name function must return a string, got {resolved!r}")
    return resolved


def layer_names(model: Axon) -> dict[int, tuple[tuple[str, ...], str]]:
    """Map each reachable node id to ``(scope, name)``.

    Names follow Axon: ``<op_name>_<k>`` with ``k`` counted per op name in parents-first
    order; an explicit name is kept, ``"{n}"`` in it is replaced by the count; a callable
    name receives ``(op_name, op_counts)``. Layers inside ``axon.namespace`` are counted
    afresh and scoped under the namespace's name; all calls of one ``axon.block`` share
    one name (and so one set of parameters).

    >>> import axon
    >>> m = axon.input("x").pipe(axon.dense, 2).pipe(axon.dense, 2, name="head")
    >>> sorted(name for _, name in layer_names(m).values())
    ['dense_0', 'head', 'x']
    """
    nodes = model.nodes
    names: dict[int, tuple[tuple[str, ...], str]] = {}
    block_names: dict[int, str] = {}

    def visit(root: int, scope: tuple[str, ...], counts: dict[str, int]) -> None:
        stack: list[tuple[int, bool]] = [(root, False)]
        while stack:
            nid, expanded = stack.pop()
            node = nodes[nid]
            if not expanded:
                if nid in names:
                    continue
                stack.append((nid, True))
                if node.op == "namespace":
                    continue
                for p in reversed(node.parents):
                    if p not in names:
                        stack.append((p, False))
                continue
            if nid in names:
                continue
            if node.op == "namespace":
                ns_name = _resolve_name(node, counts)
                for p in node.parents:
                    visit(p, (*scope, ns_name), {})
                names[nid] = (scope, ns_name)
            elif node.op == "block":
                block_id = node.opts["block"].id
                if block_id not in block_names:
                    block_names[block_id] = _resolve_name(node, counts)
                    counts[node.op_name] = counts.get(node.op_name, 0) + 1
                names[nid] = (scope, block_names[block_id])
                continue
            else:
                names[nid] = (scope, _resolve_name(node, counts))
            counts[node.op_name] = counts.get(node.op_name, 0) + 1

    visit(model.output, (), {})
    return names
