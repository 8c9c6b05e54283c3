"""How constants folded at import time keep their provenance, between one node and the next.

* A constant standing for a dynamic size (``Const.dynamic_axes``, a ``ConstantOfShape`` of a
  dynamic shape) broadcasts there: only the ops in :data:`BROADCASTING_OPS` may take it.
* A float constant computed from a dynamic size's stand-in is marked (``from_dynamic``), so it
  can never silently become data.
* A float constant folded from one initializer stays that initializer's (a trainable parameter
  where the graph uses it).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from axon.onnx._import_context import Const, Context, Sym

BROADCASTING_OPS = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal", "Where", "Sqrt", "Exp", "Log", "Neg", "Abs", "Erf", "Relu", "Sigmoid",
    "Tanh", "Identity", "Cast", "Shape",
})
"""Ops that take a constant standing for a dynamic size (see ``Const.dynamic_axes``): element-wise
ones broadcast it; ``Shape`` reports the dynamic size; LSTM and GRU accept it as a zero initial state."""


def check_dynamic_constants(ctx: Context, node: Any) -> None:
    for i, name in enumerate(node.input):
        value = ctx.values.get(name)
        if not (isinstance(value, Const) and value.dynamic_axes) or node.op_type in BROADCASTING_OPS:
            continue
        if node.op_type in ("LSTM", "GRU") and i in (5, 6) and not value.value.any():
            continue
        if node.op_type == "Slice" and i == 0:  # slicing other axes keeps the broadcasting ones (checked there)
            continue
        raise ctx.error(f"input {name!r} is a constant whose shape depends on dynamic input sizes (axes "
                        f"{list(value.dynamic_axes)}), which {node.op_type} cannot take; pass fixed sizes with dims={{...}}")


def mark_dynamic(ctx: Context, node: Any, outputs: list) -> list:
    """Mark float constants computed from constants that hold dynamic sizes (integers keep
    them in their values, where they are recognized). ``ConstantOfShape``'s value does not
    depend on its shape's values (a dynamic size there is kept as a broadcasting axis)."""
    if node.op_type == "ConstantOfShape" or not any(isinstance(ctx.values.get(n), Const) and ctx.values[n].depends_on_dynamic() for n in node.input if n):
        return list(outputs)
    return [dataclasses.replace(v, from_dynamic=True) if isinstance(v, Const) and v.value.dtype.kind not in "iub" else v
            for v in outputs]


def keep_initializer(ctx: Context, node: Any, outputs: list) -> list:
    """A float constant folded from one float initializer (a slice of a position table, a
    transposed weight) stays that initializer's: it becomes a trainable parameter where the
    graph uses it, named after the initializer."""
    sources = [ctx.values[n] for n in node.input if n and isinstance(ctx.values.get(n), Const)]
    weights = [v for v in sources if v.initializer and v.value.dtype.kind == "f"]
    if len(weights) != 1 or any(isinstance(ctx.values.get(n), Sym) for n in node.input if n):
        return outputs
    name = weights[0].initializer
    return [dataclasses.replace(v, initializer=name) if isinstance(v, Const) and v.value.dtype.kind == "f" and not v.initializer
            else v for v in outputs]
