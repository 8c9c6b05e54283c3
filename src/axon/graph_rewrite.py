"""Graph manipulation: map, fold and rewrite the nodes of a graph, pop its output node,
and freeze or unfreeze its parameters.

Graphs are immutable, so every function here returns a new graph. Traversal order is
Axon's: the output node first, the inputs last (the reverse of the parents-first order in
which layers are named and run), every reachable node exactly once.

>>> import axon
>>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 4, activation="relu").pipe(axon.relu)
>>> axon.reduce_nodes(model, 0, lambda node, acc: acc + (node.op_name == "relu"))
2

Nodes inside an :func:`axon.block` belong to the block's own graph and are not visited
by ``map_nodes``/``reduce_nodes``/``rewrite_nodes`` (the block node itself is); ``freeze``
and ``unfreeze`` with a predicate do reach them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from axon.graph import Axon, Node, Parameter, next_id, topological_order
from axon.tree import fill_structure

__all__ = ["freeze", "map_nodes", "pop_node", "reduce_nodes", "rewrite_nodes", "unfreeze"]

Rewriter = Callable[[list[Axon], Axon], Axon]


def _output_first(model: Axon, where: str) -> list[int]:
    if not isinstance(model, Axon):
        raise TypeError(f"{where}: expected an axon graph (axon.Axon), got {type(model).__name__}: {model!r}")
    return list(reversed(topological_order(model)))


def _prune(nodes: Mapping[int, Node], output: int) -> Axon:
    """The graph ending at ``output`` with only the nodes it depends on."""
    full = Axon(nodes, output)
    return Axon({nid: nodes[nid] for nid in topological_order(full)}, output)


def map_nodes(model: Axon, fn: Callable[[Node], Node]) -> Axon:
    """Apply ``fn(node) -> node`` to every node reachable from the output, once each,
    output first.

    The node ``fn`` returns takes the original's place (its ``id`` is kept), so changing
    ``op``/``op_name``/``opts``/``hooks``/``policy`` changes the layer in place; changing
    ``parents`` rewires the graph (parents must be ids of the graph). To replace a node
    by a new sub-graph use :func:`rewrite_nodes`.

    Args:
        model: the graph.
        fn: ``fn(node) -> node``, called once per node (use ``node.replace(...)``).

    Returns:
        A new graph; nodes no longer reachable from the output are dropped.

    Raises:
        TypeError: ``model`` is not a graph, ``fn`` is not callable, or it returns something
            other than a ``Node``.
        ValueError: a returned node names parent ids that are not in the graph.

    >>> import axon
    >>> model = axon.input("x").pipe(axon.relu).pipe(axon.dense, 2)
    >>> swapped = axon.map_nodes(
    ...     model,
    ...     lambda n: n.replace(op=axon.activations.tanh, op_name="tanh") if n.op_name == "relu" else n,
    ... )
    >>> axon.properties(swapped)
    {'x': 'input', 'tanh_0': 'tanh', 'dense_0': 'dense'}
    """
    if not callable(fn):
        raise TypeError(f"map_nodes: expected fn to be a function Node -> Node, got {fn!r}")
    order = _output_first(model, "map_nodes")
    nodes = dict(model.nodes)
    for nid in order:
        new = fn(nodes[nid])
        if not isinstance(new, Node):
            raise TypeError(
                f"map_nodes: fn must return an axon.Node (use node.replace(...)), got {type(new).__name__}: {new!r}"
            )
        if new.id != nid:
            new = new.replace(id=nid)
        nodes[nid] = new
    for nid, node in nodes.items():
        missing = [p for p in node.parents if p not in nodes]
        if missing:
            raise ValueError(f"map_nodes: node {node.op_name!r} (id {nid}) has parent ids {missing} that are not in the graph")
    return _prune(nodes, model.output)


def reduce_nodes(model: Axon, acc: Any, fn: Callable[[Node, Any], Any]) -> Any:
    """Fold ``fn(node, acc) -> acc`` over every node reachable from the output, output
    first.

    Args:
        model: the graph.
        acc: the initial accumulator.
        fn: ``fn(node, acc) -> acc``.

    Returns:
        The final accumulator.

    Raises:
        TypeError: ``model`` is not a graph or ``fn`` is not callable.

    >>> import axon
    >>> model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2).pipe(axon.dense, 1)
    >>> axon.reduce_nodes(model, [], lambda node, acc: [*acc, node.op_name])
    ['dense', 'dense', 'input']
    """
    if not callable(fn):
        raise TypeError(f"reduce_nodes: expected fn to be a function (node, acc) -> acc, got {fn!r}")
    for nid in _output_first(model, "reduce_nodes"):
        acc = fn(model.nodes[nid], acc)
    return acc


def rewrite_nodes(model: Axon, fn: Callable[[Node], Rewriter | None]) -> Axon:
    """Replace nodes by whole sub-graphs.

    ``fn(node)`` returns ``None`` to keep the node, or a rewriter
    ``rewriter(parents, output) -> Axon``: ``parents`` are graphs ending at the node's
    parents and ``output`` is a placeholder graph standing for the original node's own
    output. The graph the rewriter returns replaces the node: every layer that used the
    node now uses the new graph, and wherever the new graph uses ``output`` it gets the
    original node (so ``axon.add(output, adapter(parents[0]))`` adds a LoRA-style branch).
    Nodes no longer reachable are dropped. Nodes are visited output first; nodes created
    by rewriters are not visited.

    Args:
        model: the graph.
        fn: ``fn(node) -> rewriter | None`` (see above).

    Returns:
        A new graph.

    Raises:
        TypeError: ``model`` is not a graph, ``fn`` is not callable, it returns something
            other than ``None`` or a function, or a rewriter returns something other than a
            graph.

    >>> import axon
    >>> model = axon.input("x").pipe(axon.relu).pipe(axon.dense, 2)
    >>> to_tanh = lambda node: (lambda parents, output: axon.tanh(parents[0])) if node.op_name == "relu" else None
    >>> axon.properties(axon.rewrite_nodes(model, to_tanh))
    {'x': 'input', 'tanh_0': 'tanh', 'dense_0': 'dense'}
    """
    if not callable(fn):
        raise TypeError(f"rewrite_nodes: expected fn to be a function Node -> rewriter or None, got {fn!r}")
    order = _output_first(model, "rewrite_nodes")
    nodes = dict(model.nodes)
    output = model.output
    for original_id in order:
        if original_id not in nodes:
            continue
        original = nodes[original_id]
        rewriter = fn(original)
        if rewriter is None:
            continue
        if not callable(rewriter):
            raise TypeError(
                f"rewrite_nodes: fn must return None or a function (parents, output) -> Axon, got {rewriter!r}"
            )
        parents = [Axon(nodes, p) for p in original.parents]
        placeholder = Node(id=next_id(), name="__rewrite_placeholder__", op="input", op_name="input",
                           opts={"shape": None, "optional": False})
        result = rewriter(parents, Axon({**nodes, placeholder.id: placeholder}, placeholder.id))
        if not isinstance(result, Axon):
            raise TypeError(
                f"rewrite_nodes: the rewriter for node {original.op_name!r} must return an axon graph, "
                f"got {type(result).__name__}: {result!r}"
            )
        new_id = result.output
        if new_id in (placeholder.id, original_id):
            continue  # the rewrite is the node itself
        merged = {**nodes, **result.nodes}
        if new_id in nodes:
            # the rewrite is an existing node (e.g. a parent): route the users of the
            # original node to it
            source, target = original_id, new_id
            output = new_id if output == original_id else output
        else:
            # a new sub-graph: it takes the original's id (so users see it) and the
            # placeholder becomes the original node
            source, target = new_id, original_id
            merged[original_id] = merged.pop(new_id).replace(id=original_id)
            if placeholder.id in merged:
                merged[placeholder.id] = original.replace(id=placeholder.id)
        nodes = {
            nid: node.replace(parents=tuple(target if p == source else p for p in node.parents))
            if source in node.parents else node
            for nid, node in merged.items()
        }
    return _prune(nodes, output)


def pop_node(model: Axon) -> tuple[Node, Any]:
    """Remove the output node: returns ``(node, rest)`` where ``rest`` is the graph ending
    at its parent (one parent), a list of graphs (several or none), or, for a container,
    the container's structure with each entry the graph ending there.

    Args:
        model: the graph.

    Returns:
        ``(node, rest)`` as described above.

    Raises:
        TypeError: ``model`` is not a graph.

    >>> import axon
    >>> model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2).pipe(axon.softmax)
    >>> node, rest = axon.pop_node(model)
    >>> node.op_name, rest.output_name
    ('softmax', 'dense_0')
    """
    if not isinstance(model, Axon):
        raise TypeError(f"pop_node: expected an axon graph (axon.Axon), got {type(model).__name__}: {model!r}")
    node = model.node
    nodes = {k: v for k, v in model.nodes.items() if k != node.id}
    graphs = [_prune(nodes, p) for p in node.parents]
    if node.op == "container":
        return node, fill_structure(node.opts["structure"], graphs)
    if len(graphs) == 1:
        return node, graphs[0]
    return node, graphs



# ---------------------------------------------------------------------------------------
# freezing


def map_all_nodes(model: Axon, fn: Callable[[Node], Node]) -> Axon:
    """Like :func:`map_nodes`, but also maps the nodes inside blocks (each block's graph
    once, keeping the block's identity so its parameters stay shared). Internal helper for
    mixed precision and freezing.

    Args:
        model: the graph.
        fn: ``fn(node) -> node``, as for :func:`map_nodes`.

    Returns:
        A new graph.

    Raises:
        TypeError: as :func:`map_nodes`.

    >>> import axon
    >>> model = axon.input("x").pipe(axon.relu)
    >>> to_tanh = lambda n: n.replace(op=axon.activations.tanh, op_name="tanh") if n.op_name == "relu" else n
    >>> axon.properties(map_all_nodes(model, to_tanh))
    {'x': 'input', 'tanh_0': 'tanh'}
    """
    blocks: dict[int, Any] = {}

    def visit(node: Node) -> Node:
        if node.op == "block":
            blk = node.opts["block"]
            if blk.id not in blocks:
                new_blk = copy.copy(blk)
                if blk.graph is not None:
                    new_blk.graph = map_all_nodes(blk.graph, fn)
                blocks[blk.id] = new_blk
            node = node.replace(opts={**node.opts, "block": blocks[blk.id]})
        return fn(node)

    return map_nodes(model, visit)


_SPEC_DOC = "'all', {'up': n}, {'down': n} or a function Parameter -> bool"


def _set_frozen(p: Parameter, flag: bool) -> Parameter:
    children = None
    if p.children is not None:
        children = {k: _set_frozen(c, flag) for k, c in p.children.items()}
    return replace(p, frozen=flag, children=children)


def _freeze(model: Axon, spec: Any, flag: bool, where: str) -> Axon:
    if not isinstance(model, Axon):
        raise TypeError(f"{where}: expected an axon graph (axon.Axon), got {type(model).__name__}: {model!r}")

    def set_all(node: Node, keep: Callable[[Parameter], bool] = lambda p: True) -> Node:
        if not node.parameters:
            return node
        return node.replace(parameters=tuple(_set_frozen(p, flag) if keep(p) else p for p in node.parameters))

    if callable(spec):
        return map_all_nodes(model, lambda node: set_all(node, spec))
    if isinstance(spec, str) and spec == "all":
        return map_all_nodes(model, set_all)
    if isinstance(spec, Mapping) and len(spec) == 1 and next(iter(spec)) in ("up", "down"):
        ((direction, n),) = spec.items()
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"{where}: expected {{{direction!r}: n}} with n a non-negative int, got {spec!r}")
        order = _output_first(model, where)
        chosen = set(order[:n]) if direction == "up" else set(order[len(order) - n:]) if n else set()
        chosen_blocks = {model.nodes[nid].opts["block"].id for nid in chosen if model.nodes[nid].op == "block"}
        frozen_blocks: dict[int, Any] = {}

        def apply(node: Node) -> Node:
            if node.op == "block" and node.opts["block"].id in chosen_blocks:
                blk = node.opts["block"]
                if blk.id not in frozen_blocks:
                    frozen_blocks[blk.id] = copy.copy(blk)
                    if blk.graph is not None:
                        frozen_blocks[blk.id].graph = map_all_nodes(blk.graph, set_all)
                return node.replace(opts={**node.opts, "block": frozen_blocks[blk.id]})
            return set_all(node) if node.id in chosen else node

        return map_nodes(model, apply)
    raise ValueError(f"{where}: expected spec to be {_SPEC_DOC}, got {spec!r}")


def freeze(model: Axon, spec: Any = "all") -> Axon:
    """Mark parameters as frozen: they get no gradient (``stop_gradient``) and the state
    ``init_fn`` returns lists them as frozen.

    ``spec`` is ``"all"``; ``{"up": n}``, the ``n`` nodes nearest the output;
    ``{"down": n}``, the ``n`` nodes nearest the inputs (both counted over all nodes in
    output-first order, as Axon does); or a function ``Parameter -> bool``. Axon
    deprecates this in favour of freezing the state, :meth:`axon.ModelState.freeze`, which
    works on a trained state without rebuilding.

    Args:
        model: the graph.
        spec: which parameters (see above); default ``"all"``.

    Returns:
        A new graph.

    Raises:
        TypeError: ``model`` is not a graph.
        ValueError: a ``spec`` of another form, or a negative count.

    >>> import axon
    >>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 3).pipe(axon.dense, 1)
    >>> state = axon.init(axon.freeze(model, {"down": 2}), axon.template((1, 2)))
    >>> sorted(state.frozen_parameters())
    ['dense_0']
    """
    return _freeze(model, spec, True, "freeze")


def unfreeze(model: Axon, spec: Any = "all") -> Axon:
    """Undo :func:`freeze` for the parameters selected by ``spec`` (same forms).

    Args:
        model: the graph.
        spec: which parameters, as for :func:`freeze`; default ``"all"``.

    Returns:
        A new graph.

    Raises:
        TypeError: ``model`` is not a graph.
        ValueError: a ``spec`` of another form, or a negative count.

    >>> import axon
    >>> model = axon.freeze(axon.input("x", shape=(None, 2)).pipe(axon.dense, 3))
    >>> state = axon.init(axon.unfreeze(model, lambda p: p.name == "bias"), axon.template((1, 2)))
    >>> sorted(state.frozen_parameters()["dense_0"])
    ['kernel']
    """
    return _freeze(model, spec, False, "unfreeze")
