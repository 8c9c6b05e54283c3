"""A graph to JSON: nodes parents first, shared blocks once each, parameters with concrete
shapes and their initializers.

``{"output": i, "nodes": [...]}`` (``"blocks"`` is added by the caller for the top graph).
Each node has ``id``, ``name``, ``op`` (``{"special": ...}`` or ``{"function": name}``),
``op_name``, ``parents``, ``args``, ``opts``, ``parameters``, ``mode``,
``global_options``, ``policy`` and ``meta``.

>>> import axon
>>> from axon.serialization.container import TensorTable
>>> encoder = GraphEncoder(TensorTable(), {})
>>> graph = encoder.graph(axon.input("x").pipe(axon.relu))
>>> [node["op"] for node in graph["nodes"]], graph["output"]
([{'special': 'input'}, {'function': 'axon.relu'}], 1)
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from axon.graph import SPECIAL_OPS, Axon, Node, Parameter, layer_names, topological_order
from axon.model_state import get_path
from axon.serialization.codec import ValueEncoder, where_at
from axon.serialization.container import TensorTable
from axon.serialization.dtypes import dtype_name
from axon.serialization.errors import Path, SerializationError
from axon.serialization.registry import layer_name_of


def scoped_nodes(graph: Axon, scope: Path = ()) -> Iterator[tuple[int, Node, Path]]:
    """``(node_id, node, full_name)`` of each node of ``graph``, parents first, where
    ``full_name`` is the layer's state path under ``scope`` (namespaces included).

    >>> import axon
    >>> [full for _, _, full in scoped_nodes(axon.input("x").pipe(axon.relu), ("outer",))]
    [('outer', 'x'), ('outer', 'relu_0')]
    """
    names = layer_names(graph)
    for nid in topological_order(graph):
        sc, name = names[nid]
        yield nid, graph.nodes[nid], (*scope, *sc, name)


def leaf_shape(leaf: Any) -> tuple[int, ...] | None:
    """The shape of a state leaf, or None for a value without one.

    >>> import numpy as np
    >>> leaf_shape(np.zeros((2, 3))), leaf_shape({"nested": 1})
    ((2, 3), None)
    """
    shape = getattr(leaf, "shape", None)
    return None if shape is None else tuple(int(d) for d in shape)


def _shape_in_state(state: Mapping[str, Any], path: Path) -> tuple[int, ...] | None:
    try:
        leaf = get_path(state, path)
    except (KeyError, TypeError, IndexError):
        return None
    return None if isinstance(leaf, Mapping) else leaf_shape(leaf)


class GraphEncoder(ValueEncoder):
    """Encodes graphs whose input-dependent parameter shapes are read from ``state``."""

    def __init__(self, tensors: TensorTable, state: Mapping[str, Any]) -> None:
        super().__init__(tensors)
        self.state = state
        self.blocks: list[Any] = []
        self.block_index: dict[int, int] = {}
        self.hooks: list[str] = []

    def graph(self, model: Axon, scope: Path = (), renames: Mapping[str, str] | None = None) -> dict:
        """The JSON of ``model``, its layers named under ``scope``; inputs named in
        ``renames`` (a block's) are saved under their new names."""
        renames = renames or {}
        scoped = list(scoped_nodes(model, scope))
        index = {nid: i for i, (nid, _, _) in enumerate(scoped)}
        nodes = []
        for i, (_, node, full) in enumerate(scoped):
            where = f"layer {'.'.join(full)!r} (op {node.op_name})"
            nodes.append(self.node(node, i, [index[p] for p in node.parents], full, where, renames))
        return {"output": index[model.output], "nodes": nodes}

    def node(self, node: Node, i: int, parents: list[int], full: Path, where: str, renames: Mapping[str, str]) -> dict:
        """The JSON of one node, at position ``i`` with its parents' positions."""
        if node.name is not None and not isinstance(node.name, str):
            raise SerializationError(
                f"{where}: its name is a function, which cannot be saved; give the layer a string name "
                "(name='...' or a '{n}' template)"
            )
        name = renames.get(node.name, node.name) if node.op == "input" else node.name
        if node.hooks:
            self.hooks.append(".".join(full))
        self._check_extra_fields(node, where)
        if isinstance(node.op, str):
            if node.op not in SPECIAL_OPS:
                raise SerializationError(f"{where}: unknown special op {node.op!r}")
            op: dict = {"special": node.op}
            if node.op == "block":
                opts: Any = {"block": {"$block": self.block(node.opts["block"], full)}}
            else:
                opts = {k: self.value(v, where_at(where, k)) for k, v in node.opts.items()}
        else:
            fname = layer_name_of(node.op)
            if fname is None:
                self.function(node.op, where)  # raises the registration error
            op = {"function": fname}
            opts = {k: self.value(v, f"{where} option {k!r}") for k, v in node.opts.items()}
        policy = None
        if node.policy is not None:
            policy = {role: (None if getattr(node.policy, role, None) is None else dtype_name(getattr(node.policy, role), where))
                      for role in ("params", "compute", "output")}
        return {
            "id": i,
            "name": name,
            "op": op,
            "op_name": node.op_name,
            "parents": parents,
            "args": list(node.args),
            "opts": opts,
            "parameters": [self.parameter(p, (*full, p.name), where) for p in node.parameters],
            "mode": node.mode,
            "global_options": list(node.global_options),
            "policy": policy,
            "meta": self.value(dict(node.meta), f"{where} meta"),
        }

    _KNOWN_FIELDS = frozenset({"id", "name", "op", "op_name", "parents", "parameters", "args", "opts", "mode",
                               "global_options", "policy", "hooks", "meta", "created_at"})

    def _check_extra_fields(self, node: Node, where: str) -> None:
        for f in dataclasses.fields(node):
            if f.name in self._KNOWN_FIELDS:
                continue
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
            value = getattr(node, f.name)
            if default is dataclasses.MISSING or value != default:
                # stacklevel: _check_extra_fields, node, graph, serialize
                warnings.warn(f"serialize: {where}: node field {f.name!r} is not saved", stacklevel=4)

    def block(self, blk: Any, scope: Path) -> int:
        """The index in ``self.blocks`` of ``blk``, encoded once however often it is used."""
        if blk.id in self.block_index:
            return self.block_index[blk.id]
        k = len(self.blocks)
        self.block_index[blk.id] = k
        self.blocks.append(None)
        if blk.name is not None and not isinstance(blk.name, str):
            raise SerializationError(f"block {'.'.join(scope)!r}: its name is a function, which cannot be saved")
        inputs = [f"__block_{k}_{i}" for i in range(len(blk.input_names))]
        renames = dict(zip(blk.input_names, inputs))
        graph = self.graph(blk.graph, scope, renames)
        self.blocks[k] = {"name": blk.name, "inputs": inputs, "graph": graph}
        if getattr(blk, "remat", None) is not None:
            self.blocks[k]["remat"] = blk.remat  # a policy name (axon.api.core.REMAT_POLICIES)
        return k

    def parameter(self, p: Parameter, path: Path, where: str) -> dict:
        """The JSON of a parameter at state path ``path``, with a concrete shape when the
        state has a value for it."""
        entry: dict = {"name": p.name, "kind": p.kind, "dtype": dtype_name(p.dtype, where), "frozen": bool(p.frozen)}
        if p.children is not None:
            entry["children"] = [self.parameter(c, (*path, c.name), where) for c in p.children.values()]
            return entry
        shape = p.shape
        if callable(shape) or shape is None:
            shape = _shape_in_state(self.state, path)
        entry["shape"] = None if shape is None else [int(d) for d in shape]
        entry["initializer"] = self.initializer(p.initializer, f"{where} parameter {p.name!r}")
        return entry
