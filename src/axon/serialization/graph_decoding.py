"""JSON to a graph, trusting nothing: every node, option, parameter and block reference of
the file is checked before it is built, and ops resolve through the registry only (names
saved by older releases are translated by :mod:`~axon.serialization.legacy_names`).

>>> import axon
>>> from axon.serialization.container import TensorTable
>>> from axon.serialization.graph_encoding import GraphEncoder
>>> encoded = GraphEncoder(TensorTable(), {}).graph(axon.input("x").pipe(axon.relu))
>>> GraphDecoder({}).graph(encoded, "graph")
<Axon inputs={'x': None} output='relu_0' nodes=2>
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from axon import registry
from axon.graph import SPECIAL_OPS, Axon, Node, Parameter, next_id
from axon.serialization.codec import ValueDecoder
from axon.serialization.dtypes import DTYPE_NAMES, parse_dtype
from axon.serialization.errors import (
    SerializationError,
    expect,
    expect_int,
    expect_str_list,
    expect_type,
    short,
)
from axon.serialization.registry import layer_fn, registered_initializer, registered_layers

_SPECIAL_PARENTS = {"input": 0, "constant": 0, "optional": 1, "or_else": 2, "namespace": 1}
"""How many parents each special op with a fixed arity has."""


class _LoadedBlockFn:
    """Stands in for the graph function of a loaded block (whose graph is already built)."""

    __name__ = "loaded"

    def __call__(self, *xs: Any) -> Any:  # pragma: no cover - never called: the graph exists
        raise RuntimeError("a loaded block's graph function is not available")


class GraphDecoder(ValueDecoder):
    """Decodes graphs whose ``$block`` references index ``blocks`` (the file's)."""

    def __init__(self, tensors: Mapping[str, np.ndarray], blocks: Any = None):
        super().__init__(tensors)
        self.blocks_json = blocks if blocks is not None else []
        self.blocks: dict[int, Any] = {}
        self.loading: set[int] = set()

    def function(self, name: Any, where: str) -> Callable[..., Any]:
        """The op registered under ``name``; an unknown name raises listing close matches."""
        if isinstance(name, str) and layer_fn(name) is None:
            close = difflib.get_close_matches(name, list(registered_layers()), n=3, cutoff=0.6)
            hint = f" (close matches: {', '.join(repr(c) for c in close)})" if close else ""
            raise SerializationError(
                f"{where}: the function {name!r} is not registered in this program{hint}; register it with "
                f"axon.register_layer({name!r}, fn) before loading"
            )
        return super().function(name, where)

    def initializer(self, j: Any, where: str) -> Callable[..., Any]:
        """The initializer ``{"name": ..., "options": ...}``; an unknown name raises listing
        close matches."""
        name = j.get("name") if isinstance(j, dict) else None
        if isinstance(name, str) and registered_initializer(name) is None:
            known = [*registry.names("initializer"), *registry.names("initializer_factory")]
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = f" (close matches: {', '.join(repr(c) for c in close)})" if close else ""
            raise SerializationError(
                f"{where}: the initializer {name!r} is not registered in this program{hint}; register it with "
                f"axon.serialization.register_initializer({name!r}, fn) before loading"
            )
        return super().initializer(j, where)

    def block(self, k: Any, where: str) -> Any:
        """The block ``k`` of the file, built once however often it is used."""
        from axon.api.core import REMAT_POLICIES, Block

        expect_int(k, where, 0, len(self.blocks_json))
        if k in self.blocks:
            return self.blocks[k]
        if k in self.loading:
            raise SerializationError(f"{where}: block {k} contains itself")
        self.loading.add(k)
        j = expect_type(self.blocks_json[k], dict, f"block {k}", "a block object")
        name = j.get("name")
        expect(name is None or isinstance(name, str), f"block {k}: bad name {short(name)}")
        inputs = expect_str_list(j.get("inputs"), f"block {k} inputs")
        expect(len(set(inputs)) == len(inputs), f"block {k}: input names must be distinct")
        remat = j.get("remat")
        expect(remat is None or remat in REMAT_POLICIES,
               f"block {k}: unknown remat policy {short(remat)}; expected one of {list(REMAT_POLICIES)}")
        blk = Block(_LoadedBlockFn(), name, remat)
        blk.input_names = tuple(f"__block_{blk.id}_{i}" for i in range(len(inputs)))
        blk.graph = self.graph(j.get("graph"), f"block {k}", dict(zip(inputs, blk.input_names)))
        self.loading.discard(k)
        self.blocks[k] = blk
        return blk

    def graph(self, j: Any, where: str, renames: Mapping[str, str] | None = None) -> Axon:
        """The graph encoded as ``j``; inputs named in ``renames`` (a block's) get new names."""
        expect_type(j, dict, where, "a graph object")
        nodes_json = expect_type(j.get("nodes"), list, where, "a list of nodes")
        expect(len(nodes_json) > 0, f"{where}: the graph has no nodes")
        ids: list[int] = []
        nodes: dict[int, Node] = {}
        for i, nj in enumerate(nodes_json):
            node = self.node(nj, i, ids, f"{where} node {i}", renames or {})
            ids.append(node.id)
            nodes[node.id] = node
        output = expect_int(j.get("output"), f"{where} output", 0, len(ids))
        return Axon(nodes, ids[output])

    def node(self, j: Any, i: int, ids: list[int], where: str, renames: Mapping[str, str]) -> Node:
        """Node ``i``, whose parents are among the nodes ``ids`` already built."""
        from axon.api.core import _accepted_keywords

        expect_type(j, dict, where, "a node object")
        expect(j.get("id", i) == i, f"{where}: expected id {i}, got {short(j.get('id'))}")
        name = j.get("name")
        expect(name is None or isinstance(name, str), f"{where}: a layer name must be a string or null, got {short(name)}")
        op_name = expect_type(j.get("op_name"), str, where, "an op_name string")
        expect(bool(op_name), f"{where}: empty op_name")
        where = f"{where} ({op_name})"
        parents = [ids[expect_int(p, f"{where} parents", 0, i)] for p in expect_type(j.get("parents", []), list, where, "a list of parents")]
        args = tuple(expect_str_list(j.get("args", []), f"{where} args"))
        expect(all(a in ("layer", "parameter") for a in args), f"{where}: args must be 'layer' or 'parameter'")
        mode = j.get("mode", "both")
        expect(mode in ("both", "train", "inference"), f"{where}: bad mode {short(mode)}")
        global_options = tuple(expect_str_list(j.get("global_options", []), f"{where} global_options"))
        params = tuple(self.parameter(p, f"{where} parameter") for p in expect_type(j.get("parameters", []), list, where, "a list of parameters"))
        expect(len({p.name for p in params}) == len(params), f"{where}: parameter names must be unique")
        meta = self.value(j.get("meta", {}), f"{where} meta")
        expect(isinstance(meta, dict), f"{where}: meta must be a dict")
        policy = self.policy(j.get("policy"), where)
        op_json = expect_type(j.get("op"), dict, where, "an op object")
        opts_json = expect_type(j.get("opts", {}), dict, where, "an opts object")
        if "special" in op_json:
            op: Any = op_json["special"]
            expect(op in SPECIAL_OPS, f"{where}: unknown special op {short(op)}")
            expect(not params and not args, f"{where}: a {op} node has no parameters")
            opts = self.special_opts(op, opts_json, len(parents), where)
            if op == "input":
                expect(isinstance(name, str) and bool(name), f"{where}: an input needs a name")
                name = renames.get(name, name)
            if op == "namespace":
                expect(isinstance(name, str) and bool(name), f"{where}: a namespace needs a name")
        else:
            op = self.function(op_json.get("function"), where)
            expect(args.count("layer") == len(parents) and args.count("parameter") == len(params),
                   f"{where}: args {list(args)} do not match {len(parents)} inputs and {len(params)} parameters")
            opts = {k: self.value(v, f"{where} option {k!r}") for k, v in opts_json.items()}
            accepted, var_kw = _accepted_keywords(op, len(args))
            unknown = [k for k in opts if k not in accepted and not var_kw]
            expect(not unknown, f"{where}: option(s) {unknown} are not accepted by {op_json.get('function')!r}")
        return Node(id=next_id(), name=name, op=op, op_name=op_name, parents=tuple(parents), parameters=params,
                    args=args, opts=opts, mode=mode, global_options=global_options, policy=policy, meta=meta)

    def policy(self, j: Any, where: str) -> Any:
        """The mixed-precision policy ``{"params", "compute", "output"}`` of a node, or None."""
        from axon.mixed_precision import create_policy

        if j is None:
            return None
        expect_type(j, dict, where, "a policy object")
        roles = {r: (None if j.get(r) is None else parse_dtype(j.get(r), f"{where} policy")) for r in ("params", "compute", "output")}
        try:
            return create_policy(**roles)
        except ValueError as e:
            raise SerializationError(f"{where}: bad policy: {e}") from e

    def special_opts(self, op: str, opts_json: dict, n_parents: int, where: str) -> dict:
        """The options of a special op (input, constant, container, block, ...), checked."""
        if op in _SPECIAL_PARENTS:
            expect(n_parents == _SPECIAL_PARENTS[op], f"{where}: a {op} node has {_SPECIAL_PARENTS[op]} parents, got {n_parents}")
        if op == "input":
            expect(set(opts_json) <= {"shape", "optional"}, f"{where}: unknown input options {sorted(opts_json)}")
            shape = self.value(opts_json.get("shape"), where)
            expect(shape is None or (isinstance(shape, tuple) and all(
                d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 0) for d in shape)),
                f"{where}: an input shape must be a tuple of ints and None, got {short(shape)}")
            optional = opts_json.get("optional", False)
            expect(isinstance(optional, bool), f"{where}: optional must be a bool")
            return {"shape": shape, "optional": optional}
        if op == "constant":
            expect(set(opts_json) == {"value"}, f"{where}: a constant has exactly the option 'value'")
            value = self.value(opts_json["value"], where)
            expect(isinstance(value, np.ndarray) and (value.dtype.kind in "biufc" or value.dtype.name in DTYPE_NAMES),
                   f"{where}: a constant's value must be a numeric tensor")
            return {"value": value}
        if op == "container":
            expect(set(opts_json) == {"structure"}, f"{where}: a container has exactly the option 'structure'")
            structure = self.value(opts_json["structure"], where)
            _check_structure(structure, n_parents, where)
            return {"structure": structure}
        if op == "block":
            from axon.api.core import Block

            expect(set(opts_json) == {"block"}, f"{where}: a block node has exactly the option 'block'")
            blk = self.value(opts_json["block"], where)
            expect(isinstance(blk, Block), f"{where}: the block option must be a $block reference")
            expect(n_parents == len(blk.input_names), f"{where}: the block takes {len(blk.input_names)} inputs, got {n_parents}")
            return {"block": blk}
        expect(not opts_json, f"{where}: a {op} node has no options")
        return {}

    def parameter(self, j: Any, where: str) -> Parameter:
        """A parameter; one whose shape or initializer was not saved fails clearly at init."""
        expect_type(j, dict, where, "a parameter object")
        name = expect_type(j.get("name"), str, where, "a parameter name")
        expect(bool(name), f"{where}: empty parameter name")
        where = f"{where} {name!r}"
        kind = j.get("kind", "parameter")
        expect(kind in ("parameter", "state"), f"{where}: bad kind {short(kind)}")
        dtype = parse_dtype(j.get("dtype", "float32"), where)
        frozen = j.get("frozen", False)
        expect(isinstance(frozen, bool), f"{where}: frozen must be a bool")
        if j.get("children") is not None:
            children = [self.parameter(c, where) for c in expect_type(j["children"], list, where, "a list of children")]
            expect(len({c.name for c in children}) == len(children), f"{where}: child names must be unique")
            return Parameter(name=name, shape=None, initializer=None, dtype=dtype, kind=kind, frozen=frozen,
                             children={c.name: c for c in children})
        shape_json = j.get("shape")
        if shape_json is None:
            shape: Any = _unsaved_shape(where)
        else:
            expect_type(shape_json, list, where, "a shape list")
            shape = tuple(expect_int(d, f"{where} shape", 0) for d in shape_json)
        init_json = j.get("initializer")
        init = _unsaved_initializer(where) if init_json is None else self.initializer(init_json, f"{where} initializer")
        return Parameter(name=name, shape=shape, initializer=init, dtype=dtype, kind=kind, frozen=frozen)


def _check_structure(s: Any, n: int, where: str) -> None:
    if isinstance(s, int) and not isinstance(s, bool):
        expect(0 <= s < n, f"{where}: container index {s} out of range for {n} inputs")
    elif isinstance(s, dict):
        for v in s.values():
            _check_structure(v, n, where)
    elif isinstance(s, (list, tuple)):
        for v in s:
            _check_structure(v, n, where)
    else:
        raise SerializationError(f"{where}: a container structure holds only dicts, tuples, lists and input indices, got {short(s)}")


def _unsaved_shape(where: str) -> Callable[..., Any]:
    def shape(*input_shapes: Any) -> Any:
        raise ValueError(
            f"{where}: the shape of this parameter was not saved (the saved state had no value for it); "
            "pass its value in init_fn's init_state"
        )

    return shape


def _unsaved_initializer(where: str) -> Callable[..., Any]:
    def init(key: Any, shape: Any, dtype: Any = None) -> Any:
        raise ValueError(
            f"{where}: the initializer of this parameter was not saved (a custom function); pass its value "
            "in init_fn's init_state, or register the initializer with "
            "axon.serialization.register_initializer before saving"
        )

    return init
