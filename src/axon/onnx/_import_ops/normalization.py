"""Normalization: ``axon.batch_norm``, ``axon.layer_norm`` and (ONNX's instance norm, which always
uses the instance's own statistics) ``axon.group_norm`` with one group per channel."""

from __future__ import annotations

from typing import Any

import numpy as np

import axon
from axon.onnx._import_context import Context, Sym
from axon.onnx._import_ops._table import handles


def _x(ctx: Context, node: Any) -> Sym:
    x = ctx.get(node.input[0])
    if not isinstance(x, Sym):
        raise ctx.error("the input is a constant; axon imports normalization of computed values only")
    return x


def _optional(ctx: Context, node: Any, index: int, what: str, default: np.ndarray) -> np.ndarray:
    if len(node.input) > index and node.input[index]:
        return ctx.const(node.input[index], what)
    return default


@handles("BatchNormalization")
def batch_norm(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.batch_norm(channel_index=1)`` with the running mean and variance as layer state (``momentum`` = 1 - ONNX's)."""
    x = _x(ctx, node)
    if int(attrs.get("training_mode", 0)):
        raise ctx.error("training_mode=1 is not supported; export the model in inference mode (model.eval())")
    if len([o for o in node.output if o]) > 1:
        raise ctx.error("the running-statistics outputs of BatchNormalization are not supported")
    scale, bias, mean, var = (ctx.const(node.input[i], what) for i, what in enumerate(("scale", "B", "input_mean", "input_var"), 1))
    name = ctx.param_layer_name(node.input[1])
    for param, value in (("gamma", scale), ("beta", bias)):
        ctx.param(name, param, value)
    ctx.param(name, "mean", mean)
    ctx.param(name, "var", var)
    ctx.state_paths.extend([(name, "mean"), (name, "var")])
    momentum = 1.0 - float(attrs.get("momentum", 0.9))
    graph = axon.batch_norm(x.graph, channel_index=1, epsilon=float(attrs.get("epsilon", 1e-5)), momentum=momentum, name=name)
    return [ctx.sym(graph)]


@handles("LayerNormalization")
def layer_norm(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.layer_norm`` over the last axis."""
    x = _x(ctx, node)
    axis = int(attrs.get("axis", -1))
    if axis not in (-1, x.rank - 1):
        raise ctx.error(f"axis={axis} is not supported: axon's layer_norm normalizes the last axis only (rank {x.rank})")
    if len([o for o in node.output if o]) > 1:
        raise ctx.error("the Mean and InvStdDev outputs of LayerNormalization are not supported")
    scale = ctx.const(node.input[1], "scale")
    bias = _optional(ctx, node, 2, "B", np.zeros_like(scale))
    name = ctx.param_layer_name(node.input[1])
    ctx.param(name, "gamma", scale)
    ctx.param(name, "beta", bias)
    return [ctx.sym(axon.layer_norm(x.graph, channel_index=-1, epsilon=float(attrs.get("epsilon", 1e-5)), name=name))]


@handles("InstanceNormalization")
def instance_norm(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.group_norm(num_groups=channels, channel_index=1)`` (per-instance statistics, as ONNX)."""
    x = _x(ctx, node)
    scale, bias = ctx.const(node.input[1], "scale"), ctx.const(node.input[2], "B")
    name = ctx.param_layer_name(node.input[1])
    ctx.param(name, "gamma", scale)
    ctx.param(name, "beta", bias)
    graph = axon.group_norm(x.graph, int(scale.shape[0]), channel_index=1, epsilon=float(attrs.get("epsilon", 1e-5)), name=name)
    return [ctx.sym(graph)]
