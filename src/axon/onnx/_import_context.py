"""The state of one ONNX import: the value of every ONNX tensor name (a constant known at
import time, or an axon graph with its static shape), the layer names in use, and the
parameters that will make up the ``ModelState``.

Shapes are tracked by evaluating each new layer's op abstractly (``jax.eval_shape``), so they
are exactly what axon computes. A dynamic size (``None`` in an input's shape) is tracked as the
marker ``DYNAMIC``, a large prime that no real size equals; a size that is a multiple of it was
computed from a dynamic size.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import axon
from axon.tree import fill_structure

DYNAMIC = 1_000_003
"""The stand-in size of a dynamic dimension while shapes are tracked."""


class OnnxImportError(ValueError):
    """An ONNX model that axon cannot import (the message names the node, op and values)."""


@dataclass(frozen=True)
class Const:
    """An ONNX value known at import time (an initializer, a Constant or a folded result)."""

    value: np.ndarray
    initializer: str | None = None  # the initializer's name when it came straight from one
    dynamic_axes: tuple[int, ...] = ()
    """Axes of size 1 standing for a dynamic size (a ``ConstantOfShape`` of a dynamic shape):
    the value broadcasts there, so element-wise ops and recurrent initial states accept it."""
    from_dynamic: bool = False
    """Computed from a dynamic size (which is only a stand-in while importing): it may shape the
    graph only where the stand-in is recognized (reshape targets, slice ends), never be data."""

    def depends_on_dynamic(self) -> bool:
        v = self.value
        return self.from_dynamic or (v.dtype.kind in "iu" and bool(np.any((v != 0) & (v % DYNAMIC == 0))))


@dataclass(frozen=True)
class Sym:
    """An ONNX value computed by the axon graph ``graph``, of static ``shape`` (``DYNAMIC``
    for a dynamic size) and ``dtype``."""

    graph: axon.Axon
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def rank(self) -> int:
        return len(self.shape)


Value = Const | Sym


def is_dynamic(d: int) -> bool:
    return int(d) != 0 and int(d) % DYNAMIC == 0


def public_shape(shape: Sequence[int]) -> tuple[int | None, ...]:
    return tuple(None if is_dynamic(d) else int(d) for d in shape)


def sanitize(name: str) -> str:
    """A readable layer or parameter name from an ONNX name: ``"/layer1/layer1.0/conv1/Conv"``
    becomes ``"layer1_layer1_0_conv1_Conv"``."""
    out = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_")
    return out or "value"


def to_host(value: Any) -> np.ndarray:
    """A NumPy array with a dtype JAX keeps (64-bit floats and ints narrowed)."""
    arr = np.asarray(value)
    if arr.dtype == np.float64:
        return arr.astype(np.float32)
    if arr.dtype == np.int64:
        return arr.astype(np.int32)
    return arr


def _accepts_mode(op: Any) -> bool:
    try:
        return "mode" in inspect.signature(op).parameters
    except (TypeError, ValueError):
        return False


class Context:
    """Builds the axon graph of one ONNX graph, node by node."""

    def __init__(self, onnx: Any) -> None:
        self.values: dict[str, Value] = {}
        self.data: dict[str, dict[str, Any]] = {}
        self.state_paths: list[tuple[str, str]] = []
        self.used_names: set[str] = set()
        self._shapes: dict[int, Any] = {}
        self._constant_graphs: dict[int, tuple[Const, axon.Axon]] = {}
        self.node: Any = None  # the ONNX node being imported
        self.onnx = onnx

    # -- errors --------------------------------------------------------------------------
    def error(self, message: str) -> OnnxImportError:
        node = self.node
        if node is None:
            where = "model"
        elif node.name:
            where = f"node {node.name!r} ({node.op_type})"
        else:
            where = f"the unnamed {node.op_type} node computing {list(node.output)}"
        return OnnxImportError(f"onnx.import_model: {where}: {message}")

    # -- names ---------------------------------------------------------------------------
    def unique(self, base: str) -> str:
        base = sanitize(base)
        name, n = base, 1
        while name in self.used_names:
            name, n = f"{base}_{n}", n + 1
        self.used_names.add(name)
        return name

    def layer_name(self, suffix: str = "") -> str:
        """A name for the current node's layer: its ONNX name (sanitized), or its op type."""
        node = self.node
        base = node.name or f"{node.op_type.lower()}"
        return self.unique(base + suffix)

    def param_layer_name(self, initializer: str | None) -> str:
        """A name for a layer holding an initializer: the initializer's name without its
        trailing ``weight``/``kernel`` (``"layer1.0.conv1.weight"`` -> ``"layer1_0_conv1"``)."""
        if initializer and not initializer.startswith("onnx::"):
            base = re.sub(r"[._/:]?(weight|kernel|W)$", "", initializer)
            if base:
                return self.unique(base)
        return self.layer_name()

    # -- values --------------------------------------------------------------------------
    def get(self, name: str) -> Value | None:
        if name == "":
            return None
        if name not in self.values:
            raise self.error(f"input {name!r} is not produced by any earlier node, initializer or graph input")
        return self.values[name]

    def const(self, name: str, what: str) -> np.ndarray:
        """The value of input ``name``, which must be known at import time."""
        v = self.get(name)
        if isinstance(v, Const) and v.dynamic_axes:
            raise self.error(f"{what} (input {name!r}) depends on dynamic input sizes (axes {list(v.dynamic_axes)}); "
                             "pass fixed sizes with dims={...}")
        if isinstance(v, Sym):
            raise self.error(
                f"{what} (input {name!r}) must be known when the model is imported, but it is computed at run time "
                f"from dynamic sizes (shape {public_shape(v.shape)}); pass fixed sizes with dims={{...}}"
            )
        return v.value

    def static_ints(self, name: str, what: str) -> list[int]:
        """Input ``name`` as a list of ints known at import time, none of them a dynamic size."""
        values = [int(v) for v in np.asarray(self.const(name, what)).reshape(-1)]
        if any(is_dynamic(v) for v in values):
            raise self.error(f"{what} (input {name!r}) {public_shape(values)} depends on dynamic input sizes; "
                             "pass fixed sizes with dims={...}")
        return values

    def set(self, name: str, value: Value | axon.Axon) -> None:
        if isinstance(value, axon.Axon):
            value = self.sym(value)
        self.values[name] = value

    def graph(self, value: Value) -> axon.Axon:
        """The axon graph of ``value`` (a constant becomes an ``axon.constant`` layer)."""
        if isinstance(value, Sym):
            return value.graph
        if value.depends_on_dynamic():
            raise self.error(f"a value computed from dynamic input sizes ({public_shape(np.asarray(value.value).reshape(-1)[:8])}...) "
                             "is used as data; pass fixed sizes with dims={...}")
        key = id(value)  # the value is kept alongside, so its id is not reused
        if key not in self._constant_graphs:
            self._constant_graphs[key] = (value, axon.constant(to_host(value.value), name=self.layer_name("_const")))
        return self._constant_graphs[key][1]

    # -- parameters ----------------------------------------------------------------------
    def put(self, layer: str, param: str, value: Any, *, state: bool = False) -> None:
        """Store ``value`` (an array or a dict of arrays) as ``state[layer][param]``."""
        value = jax.tree_util.tree_map(lambda v: jnp.asarray(to_host(v)), value)
        self.data.setdefault(layer, {})[param] = value
        if state:
            self.state_paths.append((layer, param))

    def param(self, layer: str, param: str, value: np.ndarray) -> axon.Parameter:
        """An ``axon.param`` of ``layer`` holding ``value`` (initialized from the file)."""
        arr = to_host(value)
        self.put(layer, param, arr)
        return axon.param(param, tuple(arr.shape), initializer="zeros", dtype=str(arr.dtype))

    # -- shapes --------------------------------------------------------------------------
    def sym(self, graph: axon.Axon) -> Sym:
        out = self.shape_of(graph)
        if not hasattr(out, "shape"):
            raise self.error(f"expected one array from layer {graph.node.name!r}, got {out}")
        if isinstance(graph.node.name, str):
            self.used_names.add(graph.node.name)
        return Sym(graph, tuple(int(d) for d in out.shape), np.dtype(out.dtype))

    def shape_of(self, graph: axon.Axon) -> Any:
        return self._eval(graph.nodes, graph.output)

    def _eval(self, nodes: Mapping[int, Any], node_id: int) -> Any:
        if node_id in self._shapes:
            return self._shapes[node_id]
        node = nodes[node_id]
        parents = [self._eval(nodes, p) for p in node.parents]
        if node.op == "input":
            shape = tuple(DYNAMIC if d is None else d for d in node.opts["shape"])
            out = jax.ShapeDtypeStruct(shape, node.meta.get("dtype", jnp.float32))
        elif node.op == "constant":
            v = node.opts["value"]
            out = jax.ShapeDtypeStruct(v.shape, jnp.asarray(v[()] if v.ndim == 0 else v.flat[:1]).dtype)
        elif node.op == "container":
            out = fill_structure(node.opts["structure"], parents)
        elif callable(node.op):
            params = iter(self.data.get(node.name, {}).get(p.name) for p in node.parameters)
            inputs = iter(parents)
            args = [next(inputs) if a == "layer" else next(params) for a in node.args]
            args = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), args)
            opts = dict(node.opts)
            if _accepts_mode(node.op):
                opts["mode"] = "inference"
            try:
                out = jax.eval_shape(functools.partial(node.op, **opts), *args)
            except Exception as e:
                shapes = [public_shape(getattr(a, "shape", ())) for a in args]
                raise self.error(f"layer {node.name!r} ({node.op_name}) cannot take inputs of shapes {shapes}: {e}") from e
        else:
            raise self.error(f"cannot track the shape of a {node.op!r} layer")
        self._shapes[node_id] = out
        return out

