"""Model summaries: a table of layers (:func:`as_table`, rendered with ``rich``) and a
picture of the graph (:func:`as_graph`: Mermaid or Graphviz text, or an SVG/PNG drawn by
Graphviz when it is installed).

Shapes come from tracing the model on input templates (nothing is computed). In a
Jupyter notebook a graph whose inputs declare their shapes shows this table by itself.

>>> import axon
>>> model = axon.input("input", shape=(None, 4)).pipe(axon.dense, 2)
>>> print(as_table_str(model, axon.template((1, 4), "f32")))
                                              Model
+----------------------------+-------------+--------------+------------------+-------------------+
| Layer                      | Input Shape | Output Shape | Options          | Parameters        |
+============================+=============+==============+==================+===================+
| input ( input )            | []          | (1, 4)       | shape: (None, 4) |                   |
|                            |             |              | optional: False  |                   |
+----------------------------+-------------+--------------+------------------+-------------------+
| dense_0 ( dense["input"] ) | [(1, 4)]    | (1, 2)       |                  | kernel: f32[4][2] |
|                            |             |              |                  | bias: f32[2]      |
+----------------------------+-------------+--------------+------------------+-------------------+
Total Parameters: 10
Total Parameters Memory: 40 bytes
"""

from __future__ import annotations

import html
import io
import json
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any, Literal

import jax
import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from axon._dtypes import dtype_short_name
from axon.compiler import template, trace_values
from axon.graph import Axon, Node, Parameter, declared_inputs, layer_names, topological_order
from axon.model_state import get_path, leaf_paths
from axon.values import NoneValue

__all__ = ["GraphFormat", "ModelTable", "as_graph", "as_table", "as_table_str", "graph_html", "has_graphviz"]

_DIRECTIONS = {"top_down": "TD", "left_right": "LR"}
_MODES = ("inference", "train")


# ---------------------------------------------------------------------------------------
# formatting helpers


def _shapes(value: Any) -> Any:
    if isinstance(value, NoneValue) or value is None:
        return None
    if isinstance(value, Mapping):
        return {k: _shapes(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "shape"):
        return type(value)(_shapes(v) for v in value) if not hasattr(value, "_fields") else tuple(_shapes(v) for v in value)
    if hasattr(value, "shape"):
        return tuple(int(d) for d in value.shape)
    return jax.tree_util.tree_map(_shapes, value)


def _shape_str(value: Any) -> str:
    """``(1, 784)`` for an array, the nested structure of shapes for a container."""
    return repr(_shapes(value))


def _array_str(v: Any) -> str:
    """``f32[784][128]``: Axon's type-and-shape notation."""
    return dtype_short_name(v.dtype) + "".join(f"[{int(d)}]" for d in v.shape)


def _option_str(value: Any) -> str:
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return _array_str(value)
    if callable(value):
        return getattr(value, "__name__", repr(value))
    return repr(value)


def _options(node: Node) -> list[str]:
    if node.op in ("container", "block", "namespace", "optional", "or_else"):
        return []
    return [f"{k}: {_option_str(v)}" for k, v in node.opts.items()]


def format_bytes(n: int) -> str:
    """Bytes in Axon's words: bytes, kilobytes, megabytes, gigabytes (powers of 1000).

    Args:
        n: a number of bytes.

    Returns:
        The text, e.g. ``"1.50 kilobytes"``.

    >>> format_bytes(512), format_bytes(439592), format_bytes(3_500_000_000)
    ('512 bytes', '439.59 kilobytes', '3.50 gigabytes')
    """
    if n < 1000:
        return f"{n} bytes"
    for unit, scale in (("kilobytes", 1e3), ("megabytes", 1e6), ("gigabytes", 1e9)):
        if n < scale * 1000 or unit == "gigabytes":
            return f"{n / scale:.2f} {unit}"
    raise AssertionError("unreachable")


def _check_mode(mode: str, where: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"{where}: expected mode to be one of {list(_MODES)}, got {mode!r}")


# ---------------------------------------------------------------------------------------
# the table


def _get(tree: Any, path: tuple[str, ...]) -> Any:
    try:
        return get_path(tree, path)
    except (KeyError, TypeError):
        return {}  # not initialized in this mode (e.g. a train-only layer)


def _value_lines(label: str, p: Parameter, value: Any) -> list[str]:
    if isinstance(value, Mapping):
        if p.children is not None:
            return [line for c in p.children.values() if c.name in value
                    for line in _value_lines(f"{label}.{c.name}", c, value[c.name])]
        return [f"{label}.{'.'.join(q)}: {_array_str(get_path(value, q))}" for q in leaf_paths(value)]
    return [f"{label}: {_array_str(value)}"]


def _layer_param_lines(node: Node, tree: Any, prefix: str) -> list[str]:
    """``name: f32[..]`` for each parameter and state entry of a layer, in declaration order."""
    return [line for p in node.parameters if isinstance(tree, Mapping) and p.name in tree
            for line in _value_lines(prefix + p.name, p, tree[p.name])]


def _graph_param_lines(graph: Axon | None, tree: Any, prefix: str) -> list[str]:
    """The parameters of every layer of a block's graph, as ``layer.name: f32[..]``."""
    if graph is None or not isinstance(tree, Mapping):
        return []
    names = layer_names(graph)
    lines: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for nid in topological_order(graph):
        node = graph.nodes[nid]
        path = (*names[nid][0], names[nid][1])
        label = prefix + ".".join(path) + "."
        if node.op == "block":
            if path not in seen:
                lines += _graph_param_lines(node.opts["block"].graph, _get(tree, path), label)
            seen.add(path)
        else:
            lines += _layer_param_lines(node, _get(tree, path), label)
    return lines


def _rows(model: Axon, inputs: Any, mode: str, where: str) -> tuple[list[list[str]], int, int, list[tuple[str, ...]]]:
    if not isinstance(model, Axon):
        raise TypeError(f"{where}: expected an axon graph (axon.Axon), got {type(model).__name__}: {model!r}")
    _check_mode(mode, where)
    params, outputs = trace_values(model, inputs, mode=mode, where=where)
    names = layer_names(model)
    full = {nid: ".".join((*sc, n)) for nid, (sc, n) in names.items()}
    shown_blocks: set[tuple[str, ...]] = set()
    rows = []
    paths = []
    for nid in topological_order(model):
        node = model.nodes[nid]
        scope, name = names[nid]
        parents = "[" + ", ".join(json.dumps(full[p], ensure_ascii=False) for p in node.parents) + "]" if node.parents else ""
        layer = f"{full[nid]} ( {node.op_name}{parents} )"
        input_shapes = "[" + ", ".join(_shape_str(outputs.get(p)) for p in node.parents) + "]"
        if node.op == "input":
            opts = [f"shape: {node.opts.get('shape')!r}", f"optional: {bool(node.opts.get('optional'))!r}"]
        else:
            opts = _options(node)
        if node.op == "block":
            path = (*scope, name)
            param_lines = [] if path in shown_blocks else _graph_param_lines(node.opts["block"].graph, _get(params, path), "")
            shown_blocks.add(path)
        else:
            param_lines = _layer_param_lines(node, _get(params, (*scope, name)), "")
        rows.append([layer, input_shapes, _shape_str(outputs.get(nid)), "\n".join(opts), "\n".join(param_lines)])
        paths.append((*scope, name))
    leaves = jax.tree_util.tree_leaves(params)
    count = sum(int(np.prod(v.shape)) for v in leaves)
    nbytes = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in leaves)
    return rows, count, nbytes, paths


def _sharding_lines(state: Any, path: tuple[str, ...]) -> str:
    """``name: spec`` for each array under ``path`` in ``state`` (a sharded ModelState)."""
    sub = _get(state.data if hasattr(state, "data") else state, path)
    if not isinstance(sub, dict):
        return ""
    lines = []
    for keypath, leaf in jax.tree_util.tree_flatten_with_path(sub)[0]:
        name = ".".join(str(getattr(k, "key", k)) for k in keypath)
        sharding = getattr(leaf, "sharding", None)
        spec = getattr(sharding, "spec", None)
        lines.append(f"{name}: {spec if spec is not None else 'one device'}")
    return "\n".join(lines)


def _is_sharded(state: Any) -> bool:
    return any(len(getattr(getattr(leaf, "sharding", None), "device_set", ())) > 1 for leaf in jax.tree_util.tree_leaves(state))


def _render(renderable: Any, width: int | None) -> str:
    """``renderable`` as plain text (no escape codes, trailing spaces stripped);
    ``width=None``: as wide as it needs."""
    console = Console(record=True, width=width or 100_000, file=io.StringIO(), color_system=None,
                      force_terminal=False, force_jupyter=False, legacy_windows=False)
    console.print(renderable)
    text = console.export_text(styles=False)
    return "\n".join(line.rstrip() for line in text.splitlines())


class ModelTable(Table):
    """The ``rich`` table :func:`as_table` returns; ``print(table)`` and ``str(table)`` give it
    as plain text (as :func:`as_table_str`), and Jupyter shows it as preformatted text.
    It stays a ``rich`` renderable: ``rich.print(table)`` draws it with rich's styles.

    >>> import axon
    >>> table = as_table(axon.input("x", shape=(None, 3)).pipe(axon.relu), axon.template((2, 3)))
    >>> print(table)  # doctest: +ELLIPSIS
                           Model
    +---...
    Total Parameters: 0
    Total Parameters Memory: 0 bytes
    """

    def __str__(self) -> str:
        return _render(self, None)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


def as_table(model: Axon, inputs: Any, *, mode: Literal["inference", "train"] = "inference",
             state: Any = None) -> ModelTable:
    """A ``rich`` table summarizing ``model`` for the input templates (or arrays) ``inputs``:
    one row per layer (parents first) with its name, op and parent layers, its input and
    output shapes, its options and its parameters and state (``name: f32[784][128]``), then
    the total number of parameters and their memory (from the dtypes they are initialized
    in, mixed-precision policies included).

    ``print(table)`` prints it as plain text, ``rich.print(table)`` with rich's styles, and
    Jupyter shows it by itself; :func:`as_table_str` gives the text at a chosen width.
    ``mode="train"`` also shows what exists only in training (a dropout layer's ``key``
    state). Given a ``state`` laid out over several devices (``axon.build(...,
    distribution=...)``), a ``Sharding`` column shows each parameter's partition spec.

    Args:
        model: the graph.
        inputs: input templates or arrays (one, or a dict by input name).
        mode: ``"inference"`` or ``"train"``.
        state: a ``ModelState``; when its arrays span several devices, the table gains a
            ``Sharding`` column.

    Returns:
        A :class:`ModelTable` (a ``rich.table.Table``).

    Raises:
        TypeError: ``model`` is not a graph.
        ValueError: bad inputs or mode; ``CompileError`` names a layer that cannot compute.

    >>> import axon
    >>> table = as_table(axon.input("x", shape=(None, 3)).pipe(axon.dense, 2), axon.template((1, 3)))
    >>> table.title, [c.header for c in table.columns]
    ('Model', ['Layer', 'Input Shape', 'Output Shape', 'Options', 'Parameters'])
    >>> table.caption
    'Total Parameters: 8\\nTotal Parameters Memory: 32 bytes'
    """
    rows, count, nbytes, paths = _rows(model, inputs, mode, "as_table")
    headers = ["Layer", "Input Shape", "Output Shape", "Options", "Parameters"]
    if state is not None and _is_sharded(state):
        headers.append("Sharding")
        rows = [[*row, _sharding_lines(state, path)] for row, path in zip(rows, paths)]
    table = ModelTable(
        title="Model",
        box=box.ASCII_DOUBLE_HEAD,
        show_lines=True,
        caption=f"Total Parameters: {count}\nTotal Parameters Memory: {format_bytes(nbytes)}",
        caption_justify="left",
        title_style="bold",
        caption_style="",
        header_style="bold",
    )
    for header in headers:
        table.add_column(header, no_wrap=True)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


def as_table_str(model: Axon, inputs: Any, *, mode: Literal["inference", "train"] = "inference",
                 width: int | None = None, state: Any = None) -> str:
    """:func:`as_table` as plain ASCII text (``width=None``: as wide as the table needs).

    Args:
        model: the graph.
        inputs: input templates or arrays (one, or a dict by input name).
        mode: ``"inference"`` (default) or ``"train"``.
        width: the text width in characters; ``None`` (default): as wide as needed.
        state: a ``ModelState``, as for :func:`as_table`; ``None`` (default): none.

    Returns:
        The table as text.

    Raises:
        TypeError: ``model`` is not a graph.
        ValueError: bad inputs or mode; ``CompileError`` names a layer that cannot compute.

    >>> import axon
    >>> text = as_table_str(axon.input("x", shape=(None, 3)).pipe(axon.relu), axon.template((2, 3)))
    >>> print(text.splitlines()[-1])
    Total Parameters Memory: 0 bytes
    """
    return _render(as_table(model, inputs, mode=mode, state=state), width)


def graph_html(model: Axon) -> str:
    """What Jupyter shows for a graph: :func:`as_table` as ``<pre>`` text when every input
    declares its shape (``None`` dimensions taken as 1, float32 inputs), else the graph's
    repr (also when the table cannot be made).

    Args:
        model: the graph.

    Returns:
        An HTML ``<pre>`` fragment; it never raises for a graph.

    >>> import axon
    >>> print(graph_html(axon.input("x").pipe(axon.relu)))
    <pre>&lt;Axon inputs={&#x27;x&#x27;: None} output=&#x27;relu_0&#x27; nodes=2&gt;</pre>
    """
    try:
        shapes = declared_inputs(model)
        if any(shape is None for shape in shapes.values()):
            raise ValueError("an input has no declared shape")
        templates = {name: template(tuple(1 if d is None else d for d in shape)) for name, shape in shapes.items()}
        return f"<pre>{html.escape(as_table_str(model, templates))}</pre>"
    except Exception:
        return f"<pre>{html.escape(repr(model))}</pre>"


# ---------------------------------------------------------------------------------------
# the graph


GraphFormat = Literal["mermaid", "dot", "svg", "png"]
_FORMATS = ("mermaid", "dot", "svg", "png")
_DOT_RANKDIR = {"top_down": "TB", "left_right": "LR"}
_GRAPHVIZ_TIMEOUT = 60  # seconds for one ``dot`` run


def _mermaid_label(text: str) -> str:
    return text.replace('"', "#quot;")


def _dot_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def has_graphviz() -> bool:
    """Whether Graphviz's ``dot`` program is on the ``PATH``, so that :func:`as_graph` can
    draw ``"svg"`` and ``"png"`` pictures.

    Returns:
        ``True`` when ``dot`` is found.

    >>> isinstance(has_graphviz(), bool)
    True
    """
    return shutil.which("dot") is not None


def _graph_parts(model: Axon, inputs: Any, mode: str) -> tuple[list[tuple[str, bool]], list[tuple[int, int]]]:
    """``([(label, is_input), ...], [(parent index, child index), ...])`` in topological order."""
    _, outputs = trace_values(model, inputs, mode=mode, where="as_graph")
    names = layer_names(model)
    order = topological_order(model)
    index = {nid: i for i, nid in enumerate(order)}
    nodes, edges = [], []
    for nid in order:
        node = model.nodes[nid]
        nodes.append((f"{'.'.join((*names[nid][0], names[nid][1]))} ({node.op_name}) {_shape_str(outputs.get(nid))}", node.op == "input"))
        edges += [(index[p], index[nid]) for p in dict.fromkeys(node.parents)]
    return nodes, edges


def _mermaid(nodes: list[tuple[str, bool]], edges: list[tuple[int, int]], direction: str) -> str:
    lines = [f"graph {_DIRECTIONS[direction]};"]
    for i, (label, is_input) in enumerate(nodes):
        label = _mermaid_label(label)
        lines.append(f'{i}[/"{label}"/];' if is_input else f'{i}["{label}"];')
    return "\n".join(lines + [f"{a} --> {b};" for a, b in edges])


def _dot(nodes: list[tuple[str, bool]], edges: list[tuple[int, int]], direction: str) -> str:
    lines = ["digraph axon {", f"  rankdir={_DOT_RANKDIR[direction]};", '  node [shape=box, fontname="Helvetica"];']
    for i, (label, is_input) in enumerate(nodes):
        shape = ", shape=parallelogram" if is_input else ""
        lines.append(f'  n{i} [label="{_dot_label(label)}"{shape}];')
    lines += [f"  n{a} -> n{b};" for a, b in edges]
    return "\n".join([*lines, "}"])


def _render_dot(source: str, fmt: Literal["svg", "png"]) -> str | bytes:
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(
            f"as_graph: format={fmt!r} needs Graphviz's dot program, which is not on the PATH; install Graphviz "
            "(apt install graphviz, brew install graphviz, conda install graphviz) or use format='mermaid' or 'dot'"
        )
    done = subprocess.run([dot, f"-T{fmt}"], input=source.encode(), capture_output=True, timeout=_GRAPHVIZ_TIMEOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"as_graph: dot failed drawing the graph: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode() if fmt == "svg" else done.stdout


def as_graph(model: Axon, inputs: Any, *, direction: str = "top_down", mode: str = "inference",
             format: GraphFormat = "mermaid") -> str | bytes:
    """A picture of ``model``'s graph: one node per layer labelled ``name (op) shape``,
    inputs drawn as parallelograms, an edge from each parent to its child.

    ``format`` picks the result: ``"mermaid"`` (default), a Mermaid flowchart (render it
    with any Mermaid viewer; JupyterLab and GitHub render a ```` ```mermaid ```` block);
    ``"dot"``, Graphviz's source text; ``"svg"`` (text) or ``"png"`` (bytes), drawn by
    Graphviz's ``dot`` program when it is installed (:func:`has_graphviz`; in Jupyter
    ``IPython.display.SVG(as_graph(..., format="svg"))`` shows it).

    Args:
        model: the graph.
        inputs: input templates or arrays (one, or a dict by input name).
        direction: ``"top_down"`` (default) or ``"left_right"``.
        mode: ``"inference"`` (default) or ``"train"``.
        format: ``"mermaid"``, ``"dot"``, ``"svg"`` or ``"png"``.

    Returns:
        The Mermaid, dot or SVG text, or the PNG bytes.

    Raises:
        ValueError: an unknown ``direction``, ``mode`` or ``format``, or bad inputs;
            ``CompileError`` names a layer that cannot compute.
        TypeError: ``model`` is not a graph.
        RuntimeError: ``"svg"``/``"png"`` without Graphviz's ``dot`` program, or ``dot``
            failed.

    >>> import axon
    >>> model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2)
    >>> print(as_graph(model, axon.template((1, 3))))
    graph TD;
    0[/"x (input) (1, 3)"/];
    1["dense_0 (dense) (1, 2)"];
    0 --> 1;
    >>> print(as_graph(model, axon.template((1, 3)), format="dot"))
    digraph axon {
      rankdir=TB;
      node [shape=box, fontname="Helvetica"];
      n0 [label="x (input) (1, 3)", shape=parallelogram];
      n1 [label="dense_0 (dense) (1, 2)"];
      n0 -> n1;
    }
    """
    if direction not in _DIRECTIONS:
        raise ValueError(f"as_graph: expected direction to be one of {list(_DIRECTIONS)}, got {direction!r}")
    if format not in _FORMATS:
        raise ValueError(f"as_graph: expected format to be one of {list(_FORMATS)}, got {format!r}")
    if not isinstance(model, Axon):
        raise TypeError(f"as_graph: expected an axon graph (axon.Axon), got {type(model).__name__}: {model!r}")
    _check_mode(mode, "as_graph")
    nodes, edges = _graph_parts(model, inputs, mode)
    if format == "mermaid":
        return _mermaid(nodes, edges, direction)
    source = _dot(nodes, edges, direction)
    return source if format == "dot" else _render_dot(source, format)
