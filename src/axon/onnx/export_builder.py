"""The ONNX graph under construction while :func:`axon.onnx.export` walks an axon graph: a
list of nodes, the initializers, unique tensor names, and small helpers that emit the
common node patterns (constants, reshapes, reductions whose ``axes`` moved from an
attribute to an input at opset 18).

Converters (``axon.onnx.export_ops_*``) receive a :class:`Layer` (one axon layer: its
inputs as ONNX tensor names, its parameters, options and traced shapes) and emit nodes
through the :class:`Builder`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["BATCH", "Builder", "Layer", "NotExportable"]

BATCH = "batch"
"""The name of the symbolic leading dimension when ``dynamic_batch=True``."""


class NotExportable(Exception):
    """Raised by a converter for a layer whose options have no ONNX counterpart (the
    export collects these and reports every such layer at once)."""


@dataclass
class Layer:
    """One axon layer as a converter sees it.

    ``inputs`` are the layer inputs (ONNX tensor names, or nested tuples/lists/dicts of
    them for container values), in call order; ``params`` the parameter values by name
    (NumPy arrays, or dicts of them for grouped parameters); ``in_shapes``/``out`` the
    traced input and output values (``jax.ShapeDtypeStruct`` leaves, the template's batch
    size); ``opts`` the layer's options; ``arg_kinds`` the op's call order of layer inputs
    (``"layer"``) and parameters (``"parameter"``).
    """

    path: str
    op: str
    opts: Mapping[str, Any]
    inputs: list[Any]
    in_values: list[Any]
    out: Any
    params: dict[str, Any] = field(default_factory=dict)
    param_kinds: dict[str, str] = field(default_factory=dict)
    arg_kinds: tuple[str, ...] = ()

    def shape(self, i: int = 0) -> tuple[int, ...]:
        """The traced shape of input ``i``."""
        return tuple(int(d) for d in self.in_values[i].shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        """The traced shape of the (single-array) output."""
        return tuple(int(d) for d in self.out.shape)


class Builder:
    """Collects ONNX nodes and initializers; every helper returns the name of the tensor it
    made."""

    def __init__(self, onnx: Any, opset: int, dynamic_batch: bool, batch_size: int | None) -> None:
        self.onnx = onnx
        self.helper = onnx.helper
        self.numpy_helper = onnx.numpy_helper
        self.opset = opset
        self.dynamic_batch = dynamic_batch
        self.batch_size = batch_size
        self.nodes: list[Any] = []
        self.initializers: dict[str, Any] = {}
        self._used: set[str] = set()
        self._consts: dict[tuple, str] = {}
        self.prefix = ""

    # -- names -------------------------------------------------------------------------

    def reserve(self, name: str) -> str:
        """Mark ``name`` as used (inputs, initializers) and return it."""
        self._used.add(name)
        return name

    def fresh(self, hint: str) -> str:
        """A tensor name not used yet, made from ``hint``."""
        base = hint if hint else "t"
        name, k = base, 1
        while name in self._used:
            name = f"{base}_{k}"
            k += 1
        self._used.add(name)
        return name

    # -- tensors -----------------------------------------------------------------------

    def initializer(self, name: str, value: Any) -> str:
        """Add ``value`` as an initializer called ``name`` (made unique if taken)."""
        arr = np.asarray(value)
        name = self.fresh(name) if name in self._used else self.reserve(name)
        self.initializers[name] = self.numpy_helper.from_array(np.ascontiguousarray(arr), name)
        return name

    def const(self, value: Any, dtype: Any = None, hint: str = "const") -> str:
        """A constant tensor (an initializer), shared between equal constants."""
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            self._consts[key] = self.initializer(self.fresh_const_name(hint), arr)
        return self._consts[key]

    def fresh_const_name(self, hint: str) -> str:
        name, k = f"{self.prefix}{hint}", 0
        while name in self._used:
            k += 1
            name = f"{self.prefix}{hint}_{k}"
        return name

    def ints(self, values: Sequence[int]) -> str:
        """An int64 1-d constant."""
        return self.const(np.asarray(list(values), np.int64), hint="shape")

    def scalar(self, value: float, dtype: Any = np.float32) -> str:
        """A scalar constant of ``dtype``."""
        return self.const(np.asarray(value, dtype=dtype), hint="scalar")

    # -- nodes -------------------------------------------------------------------------

    def op(self, op_type: str, inputs: Sequence[str], *, outputs: int = 1, hint: str | None = None,
           **attrs: Any) -> Any:
        """Emit one node; returns its output name (or a list of names when ``outputs > 1``)."""
        base = f"{self.prefix}{hint or op_type}"
        names = [self.fresh(base) for _ in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op_type, list(inputs), names, name=self.fresh(f"node:{base}"), **attrs))
        return names[0] if outputs == 1 else names

    def reshape(self, x: str, shape: Sequence[int]) -> str:
        """``Reshape`` to ``shape`` (0 copies the input's dimension: the batch)."""
        return self.op("Reshape", [x, self.ints(shape)])

    def transpose(self, x: str, perm: Sequence[int]) -> str:
        """``Transpose`` by ``perm`` (no node for the identity)."""
        if list(perm) == list(range(len(perm))):
            return x
        return self.op("Transpose", [x], perm=list(perm))

    def reduce(self, op_type: str, x: str, axes: Sequence[int], keepdims: bool = True) -> str:
        """A ``Reduce*`` over ``axes``: an ``axes`` attribute before opset 18 (``ReduceSum``:
        an input from opset 13), an input from 18."""
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.ints(axes)], keepdims=int(keepdims))
        return self.op(op_type, [x], axes=list(axes), keepdims=int(keepdims))

    def unsqueeze(self, x: str, axes: Sequence[int]) -> str:
        return self.op("Unsqueeze", [x, self.ints(axes)])

    def squeeze(self, x: str, axes: Sequence[int]) -> str:
        return self.op("Squeeze", [x, self.ints(axes)])

    def cast(self, x: str, np_dtype: Any) -> str:
        return self.op("Cast", [x], to=int(self.helper.np_dtype_to_tensor_dtype(np.dtype(np_dtype))))

    def batch_dim(self, shape: Sequence[int], axis: int = 0) -> int:
        """What a Reshape target should say for dimension ``axis`` of ``shape``: ``0`` (copy)
        for a leading batch dimension when the batch is symbolic, else the size."""
        if self.dynamic_batch and axis == 0:
            return 0
        return int(shape[axis])
