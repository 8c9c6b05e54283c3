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
    made. Node and constant names start with ``prefix`` (the layer being converted).

    Args:
        onnx: the ``onnx`` module.
        opset: the opset being written (some ops changed their inputs over opsets).
        dynamic_batch: whether the leading dimension is symbolic.
        batch_size: the template's batch size (``None`` until the first input is seen).

    >>> import onnx  # doctest: +SKIP
    >>> b = Builder(onnx, 17, True, 2)  # doctest: +SKIP
    >>> b.op("Relu", [b.reserve("x")])  # doctest: +SKIP
    'Relu'
    """

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
        """Mark a name as taken (graph inputs and outputs).

        Args:
            name: the tensor name.

        Returns:
            ``name``.
        """
        self._used.add(name)
        return name

    def is_used(self, name: str) -> bool:
        """Whether a tensor name is taken.

        Args:
            name: the tensor name.

        Returns:
            True when a tensor of that name exists.
        """
        return name in self._used

    def fresh(self, hint: str) -> str:
        """A tensor name not taken yet: ``hint``, or ``hint_1``, ``hint_2``, ...

        Args:
            hint: the wanted name.

        Returns:
            The name, now taken.
        """
        base = hint if hint else "t"
        name, k = base, 1
        while name in self._used:
            name = f"{base}_{k}"
            k += 1
        self._used.add(name)
        return name

    # -- tensors -----------------------------------------------------------------------

    def initializer(self, name: str, value: Any) -> str:
        """Add an initializer (made unique with a suffix if the name is taken).

        Args:
            name: the initializer's name, for parameters their state path
                (``"conv_0.kernel"``).
            value: the array.

        Returns:
            The initializer's name.
        """
        arr = np.asarray(value)
        name = self.fresh(name) if name in self._used else self.reserve(name)
        self.initializers[name] = self.numpy_helper.from_array(np.array(arr, order="C"), name)  # (keeps 0-d arrays 0-d)
        return name

    def const(self, value: Any, dtype: Any = None, hint: str = "const") -> str:
        """A constant (an initializer), shared between equal constants.

        Args:
            value: the array.
            dtype: its dtype (default: NumPy's for ``value``).
            hint: the name to start from (after ``prefix``).

        Returns:
            The constant's name.
        """
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            name, k = f"{self.prefix}{hint}", 0
            while name in self._used:
                k += 1
                name = f"{self.prefix}{hint}_{k}"
            self._consts[key] = self.initializer(name, arr)
        return self._consts[key]

    def ints(self, values: Sequence[int]) -> str:
        """An int64 1-d constant (shapes, axes, pads).

        Args:
            values: the ints.

        Returns:
            The constant's name.
        """
        return self.const(np.asarray(list(values), np.int64), hint="shape")

    def scalar(self, value: float, dtype: Any = np.float32) -> str:
        """A scalar constant.

        Args:
            value: the number.
            dtype: its dtype (default float32).

        Returns:
            The constant's name.
        """
        return self.const(np.asarray(value, dtype=dtype), hint="scalar")

    # -- nodes -------------------------------------------------------------------------

    def op(self, op_type: str, inputs: Sequence[str], *, outputs: int = 1, hint: str | None = None,
           **attrs: Any) -> Any:
        """Emit one node.

        Args:
            op_type: the ONNX op (``"Conv"``).
            inputs: its input tensor names (``""`` for a left-out optional input).
            outputs: how many outputs it has.
            hint: the output name to start from (default: ``op_type``).
            **attrs: the node's attributes (``None`` values are left out).

        Returns:
            The output name, or a list of names when ``outputs > 1``.
        """
        base = f"{self.prefix}{hint or op_type}"
        names = [self.fresh(base) for _ in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op_type, list(inputs), names, name=self.fresh(f"node:{base}"), **attrs))
        return names[0] if outputs == 1 else names

    def reshape(self, x: str, shape: Sequence[int]) -> str:
        """``Reshape``; in ``shape``, 0 copies the input's dimension (the symbolic batch).

        Args:
            x: the tensor.
            shape: the new shape.

        Returns:
            The reshaped tensor.
        """
        return self.op("Reshape", [x, self.ints(shape)])

    def transpose(self, x: str, perm: Sequence[int]) -> str:
        """``Transpose`` (no node for the identity permutation).

        Args:
            x: the tensor.
            perm: the new order of its axes.

        Returns:
            The transposed tensor.
        """
        if list(perm) == list(range(len(perm))):
            return x
        return self.op("Transpose", [x], perm=list(perm))

    def reduce(self, op_type: str, x: str, axes: Sequence[int], keepdims: bool = True) -> str:
        """A ``Reduce*`` node: its axes are an attribute before opset 18 and an input from
        opset 18 (``ReduceSum``: from opset 13).

        Args:
            op_type: ``"ReduceMean"``, ``"ReduceMax"``, ``"ReduceSum"``, ...
            x: the tensor.
            axes: the reduced axes.
            keepdims: keep them with size 1 (default).

        Returns:
            The reduced tensor.
        """
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.ints(axes)], keepdims=int(keepdims))
        return self.op(op_type, [x], axes=list(axes), keepdims=int(keepdims))

    def unsqueeze(self, x: str, axes: Sequence[int]) -> str:
        """``Unsqueeze``.

        Args:
            x: the tensor.
            axes: where to insert size-1 axes.

        Returns:
            The tensor with the new axes.
        """
        return self.op("Unsqueeze", [x, self.ints(axes)])

    def squeeze(self, x: str, axes: Sequence[int]) -> str:
        """``Squeeze``.

        Args:
            x: the tensor.
            axes: the size-1 axes to drop.

        Returns:
            The tensor without them.
        """
        return self.op("Squeeze", [x, self.ints(axes)])

    def cast(self, x: str, np_dtype: Any) -> str:
        """``Cast``.

        Args:
            x: the tensor.
            np_dtype: the NumPy dtype to cast to.

        Returns:
            The cast tensor.
        """
        return self.op("Cast", [x], to=int(self.helper.np_dtype_to_tensor_dtype(np.dtype(np_dtype))))

    def batch_dim(self, shape: Sequence[int], axis: int = 0) -> int:
        """What a ``Reshape`` target says for one dimension: 0 (copy) for the leading
        dimension when the batch is symbolic, else its size.

        Args:
            shape: the traced shape.
            axis: the dimension.

        Returns:
            0 or the size.
        """
        if self.dynamic_batch and axis == 0:
            return 0
        return int(shape[axis])
