"""Matrix products: ``Gemm`` and ``MatMul`` become ``axon.dense`` layers when the weight is an
initializer, ``axon.layers.matmul`` otherwise."""

from __future__ import annotations

from typing import Any

import numpy as np

import axon
from axon import layers
from axon.onnx._import_context import Const, Context, Sym
from axon.onnx._import_ops._common import apply, inputs
from axon.onnx._import_ops._table import handles


def _dense(ctx: Context, x: Sym, kernel: np.ndarray, bias: np.ndarray | None, weight_name: str | None) -> Sym:
    name = ctx.param_layer_name(weight_name)
    units = int(kernel.shape[1])
    ctx.param(name, "kernel", kernel)
    if bias is not None:
        ctx.param(name, "bias", np.broadcast_to(bias, (units,)).copy())
    return ctx.sym(axon.dense(x.graph, units, use_bias=bias is not None, name=name))


@handles("Gemm")
def gemm(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.dense`` (``alpha``, ``beta``, ``transB`` folded into the kernel and bias); ``matmul`` otherwise."""
    values = inputs(ctx, node)
    a, b = values[0], values[1]
    c = values[2] if len(values) > 2 else None
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    trans_a, trans_b = int(attrs.get("transA", 0)), int(attrs.get("transB", 0))
    if isinstance(a, Sym) and isinstance(b, Const) and not trans_a and (c is None or isinstance(c, Const)):
        kernel = (b.value.T if trans_b else b.value) * np.float32(alpha)
        bias = None if c is None else (c.value * np.float32(beta)).reshape(-1)
        if bias is not None and bias.size not in (1, kernel.shape[1]):
            raise ctx.error(f"bias C of shape {c.value.shape} does not broadcast to ({kernel.shape[1]},)")
        return [_dense(ctx, a, kernel.astype(np.float32), None if bias is None else bias.astype(np.float32), b.initializer)]
    if trans_a:
        a = apply(ctx, layers.transpose, [a], op_name="transpose", fold=np.transpose, permutation=(1, 0))
    if trans_b:
        b = apply(ctx, layers.transpose, [b], op_name="transpose", fold=np.transpose, permutation=(1, 0))
    out = apply(ctx, layers.matmul, [a, b], op_name="matmul", fold=np.matmul)
    if alpha != 1.0:
        out = apply(ctx, layers.multiply, [out, Const(np.float32(alpha))], op_name="multiply", fold=np.multiply)
    if c is not None:
        if beta != 1.0:
            c = Const(c.value * np.float32(beta), c.initializer) if isinstance(c, Const) else apply(
                ctx, layers.multiply, [c, Const(np.float32(beta))], op_name="multiply")
        out = apply(ctx, layers.add, [out, c], op_name="add", fold=np.add)
    return [out]


@handles("MatMul")
def matmul(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.dense`` without bias when the right operand is a 2-d initializer; ``axon.layers.matmul`` otherwise."""
    a, b = inputs(ctx, node)
    if isinstance(a, Sym) and isinstance(b, Const) and b.initializer and b.value.ndim == 2 and a.rank >= 2:
        return [_dense(ctx, a, b.value, None, b.initializer)]
    return [apply(ctx, layers.matmul, [a, b], op_name="matmul", fold=np.matmul)]


