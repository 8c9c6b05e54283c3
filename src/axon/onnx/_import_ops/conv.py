"""Convolutions, pooling and resizing on NCHW inputs: ``axon.conv``, ``axon.conv_transpose``,
``axon.max_pool``, ``axon.avg_pool``, the global pools and ``axon.resize``, all with
``channels="first"`` (ONNX's layout is kept, never transposed)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import axon
from axon import layers
from axon.onnx._import_context import Const, Context, Sym, is_dynamic
from axon.onnx._import_ops._common import apply, inputs
from axon.onnx._import_ops._table import handles


def _graph_input(ctx: Context, value: Any, what: str = "the input") -> Sym:
    if not isinstance(value, Sym):
        raise ctx.error(f"{what} is a constant; axon imports this op on computed values only")
    return value


def _weight(ctx: Context, node: Any, index: int, what: str) -> np.ndarray | None:
    if len(node.input) <= index or not node.input[index]:
        return None
    return ctx.const(node.input[index], what)


def _padding(ctx: Context, attrs: dict, spatial: tuple[int, ...], kernel: tuple[int, ...], strides: tuple[int, ...],
             dilations: tuple[int, ...]) -> list[tuple[int, int]]:
    """ONNX's ``auto_pad``/``pads`` as one ``(lo, hi)`` pair per spatial axis."""
    n = len(spatial)
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = list(attrs.get("pads", [0] * (2 * n)))
        return [(int(pads[i]), int(pads[i + n])) for i in range(n)]
    if auto == "VALID":
        return [(0, 0)] * n
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for size, k, s, d in zip(spatial, kernel, strides, dilations):
            if is_dynamic(size):
                raise ctx.error(f"auto_pad={auto} needs static spatial sizes, got a dynamic one; pass dims={{...}}")
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small = total // 2
            out.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
        return out
    raise ctx.error(f"unknown auto_pad {auto!r}")


def _window(attrs: dict, n: int, kernel: tuple[int, ...] | None = None) -> tuple:
    kernel = tuple(int(k) for k in (kernel if kernel is not None else attrs["kernel_shape"]))
    strides = tuple(int(s) for s in attrs.get("strides", [1] * n))
    dilations = tuple(int(d) for d in attrs.get("dilations", [1] * n))
    return kernel, strides, dilations


@handles("Conv")
def conv(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.conv(channels="first")`` (groups as ``feature_group_size``; ``auto_pad`` and ``pads`` as explicit padding)."""
    x = _graph_input(ctx, ctx.get(node.input[0]))
    w = _weight(ctx, node, 1, "the weight W")
    b = _weight(ctx, node, 2, "the bias B")
    n = w.ndim - 2
    kernel, strides, dilations = _window(attrs, n, w.shape[2:])
    padding = _padding(ctx, attrs, x.shape[2:], kernel, strides, dilations)
    name = ctx.param_layer_name(node.input[1])
    ctx.param(name, "kernel", w)
    if b is not None:
        ctx.param(name, "bias", b)
    graph = axon.conv(x.graph, int(w.shape[0]), kernel_size=kernel, strides=strides, padding=padding, kernel_dilation=dilations,
                      feature_group_size=int(attrs.get("group", 1)), channels="first", use_bias=b is not None, name=name)
    return [ctx.sym(graph)]


@handles("ConvTranspose")
def conv_transpose(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.conv_transpose(channels="first")`` with the kernel flipped and ONNX's padding and ``output_padding``."""
    x = _graph_input(ctx, ctx.get(node.input[0]))
    w = _weight(ctx, node, 1, "the weight W")
    b = _weight(ctx, node, 2, "the bias B")
    if int(attrs.get("group", 1)) != 1:
        raise ctx.error(f"group={attrs['group']} is not supported (only group=1)")
    if "output_shape" in attrs:
        raise ctx.error(f"output_shape={attrs['output_shape']} is not supported; export with pads and output_padding")
    n = w.ndim - 2
    kernel, strides, dilations = _window(attrs, n, w.shape[2:])
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
        raise ctx.error(f"auto_pad={attrs['auto_pad']!r} is not supported (only explicit pads)")
    pads = list(attrs.get("pads", [0] * (2 * n)))
    extra = list(attrs.get("output_padding", [0] * n))
    padding = []
    for i in range(n):
        dk = (kernel[i] - 1) * dilations[i] + 1
        padding.append((dk - 1 - int(pads[i]), dk - 1 - int(pads[i + n]) + int(extra[i])))
    kernel_value = np.flip(np.swapaxes(w, 0, 1), axis=tuple(range(2, 2 + n))).copy()
    name = ctx.param_layer_name(node.input[1])
    ctx.param(name, "kernel", kernel_value)
    if b is not None:
        ctx.param(name, "bias", b)
    graph = axon.conv_transpose(x.graph, int(w.shape[1]), kernel_size=kernel, strides=strides, padding=padding,
                                kernel_dilation=dilations, channels="first", use_bias=b is not None, name=name)
    return [ctx.sym(graph)]


def _ceil_padding(ctx: Context, x: Sym, padding: list, kernel: tuple, strides: tuple, dilations: tuple) -> list:
    """Extra high padding that gives ONNX's ``ceil_mode=1`` output sizes."""
    out = []
    for size, (lo, hi), k, s, d in zip(x.shape[2:], padding, kernel, strides, dilations):
        dk = (k - 1) * d + 1
        if is_dynamic(size):
            raise ctx.error("ceil_mode=1 needs static spatial sizes; pass dims={...}")
        n_out = math.ceil((size + lo + hi - dk) / s) + 1
        if (n_out - 1) * s >= size + lo:
            n_out -= 1
        out.append((lo, hi + max((n_out - 1) * s + dk - (size + lo + hi), 0)))
    return out


@handles("MaxPool")
def max_pool(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.max_pool(channels="first")`` (``ceil_mode`` as extra padding)."""
    x = _graph_input(ctx, ctx.get(node.input[0]))
    if len(node.output) > 1 and node.output[1]:
        raise ctx.error("the Indices output of MaxPool is not supported")
    n = x.rank - 2
    kernel, strides, dilations = _window(attrs, n)
    padding = _padding(ctx, attrs, x.shape[2:], kernel, strides, dilations)
    if int(attrs.get("ceil_mode", 0)):
        padding = _ceil_padding(ctx, x, padding, kernel, strides, dilations)
    graph = axon.max_pool(x.graph, kernel_size=kernel, strides=strides, padding=padding, dilations=dilations, channels="first",
                          name=ctx.layer_name())
    return [ctx.sym(graph)]


def _window_counts(shape: tuple[int, ...], padding: list, kernel: tuple, strides: tuple) -> np.ndarray:
    """How many real (not padded) entries each pooling window covers, per output position."""
    counts = np.ones((), np.float32)
    for size, (lo, hi), k, s in zip(shape, padding, kernel, strides):
        valid = np.pad(np.ones(size, np.float32), (lo, hi))
        n_out = (len(valid) - k) // s + 1
        per_axis = np.array([valid[i * s: i * s + k].sum() for i in range(n_out)], np.float32)
        counts = np.multiply.outer(counts, per_axis)
    return counts


@handles("AveragePool")
def avg_pool(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.avg_pool(channels="first")``; with padding and ``count_include_pad=0`` scaled by a constant to divide by the real counts."""
    x = _graph_input(ctx, ctx.get(node.input[0]))
    n = x.rank - 2
    kernel, strides, dilations = _window(attrs, n)
    if any(d != 1 for d in dilations):
        raise ctx.error(f"dilations={list(dilations)} are not supported for AveragePool")
    padding = _padding(ctx, attrs, x.shape[2:], kernel, strides, dilations)
    if int(attrs.get("ceil_mode", 0)) and _ceil_padding(ctx, x, padding, kernel, strides, dilations) != padding:
        raise ctx.error("ceil_mode=1 that changes the output size is not supported for AveragePool")
    graph = axon.avg_pool(x.graph, kernel_size=kernel, strides=strides, padding=padding, channels="first", name=ctx.layer_name())
    out = ctx.sym(graph)
    if any(p != (0, 0) for p in padding) and not int(attrs.get("count_include_pad", 0)):
        if any(is_dynamic(s) for s in x.shape[2:]):
            raise ctx.error("count_include_pad=0 with padding needs static spatial sizes; pass dims={...}")
        counts = _window_counts(tuple(x.shape[2:]), padding, kernel, strides)
        scale = (float(np.prod(kernel)) / counts)[None, None].astype(np.float32)
        out = apply(ctx, layers.multiply, [out, Const(scale)], op_name="multiply")
    return [out]


@handles("GlobalAveragePool", "GlobalMaxPool", describe={
    "GlobalAveragePool": '`axon.global_avg_pool(keep_axes=True, channels="first")`',
    "GlobalMaxPool": '`axon.global_max_pool(keep_axes=True, channels="first")`'})
def global_pool(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.global_avg_pool``/``global_max_pool(keep_axes=True, channels="first")``."""
    x = _graph_input(ctx, ctx.get(node.input[0]))
    fn = axon.global_avg_pool if node.op_type == "GlobalAveragePool" else axon.global_max_pool
    return [ctx.sym(fn(x.graph, keep_axes=True, channels="first", name=ctx.layer_name()))]


@handles("Resize")
def resize(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.resize(channels="first", antialias=False)``: nearest or (bi)linear upsampling of NCHW inputs."""
    values = inputs(ctx, node)
    x = _graph_input(ctx, values[0])
    if x.rank != 4:
        raise ctx.error(f"only rank-4 (NCHW) inputs are supported, got shape {x.shape}")
    sizes = ctx.const(node.input[3], "sizes") if len(node.input) > 3 and node.input[3] else None
    if sizes is None:
        scales = ctx.const(node.input[2], "scales")
        sizes = [math.floor(d * s) for d, s in zip(x.shape, scales)]
    sizes = [int(s) for s in sizes]
    if sizes[:2] != list(x.shape[:2]):
        raise ctx.error(f"only the spatial axes may be resized, got output sizes {sizes} for input {x.shape}")
    mode = attrs.get("mode", "nearest")
    transform = attrs.get("coordinate_transformation_mode", "half_pixel")
    h, w = x.shape[2:]
    upscale = [o / i for o, i in zip(sizes[2:], (h, w))]
    if mode == "nearest":
        if not all(u >= 1 and float(u).is_integer() for u in upscale) or transform not in ("asymmetric", "half_pixel"):
            raise ctx.error(f"nearest resize is supported for integer upscaling with asymmetric or half_pixel coordinates, "
                            f"got scale {upscale} and coordinate_transformation_mode={transform!r}")
        method = "nearest"
    elif mode == "linear":
        if transform not in ("half_pixel", "pytorch_half_pixel") or not all(u >= 1 for u in upscale):
            raise ctx.error(f"linear resize is supported for upscaling with half_pixel coordinates, got scale {upscale} and "
                            f"coordinate_transformation_mode={transform!r}")
        method = "bilinear"
    else:
        raise ctx.error(f"mode={mode!r} is not supported (only 'nearest' and 'linear')")
    graph = axon.resize(x.graph, (sizes[2], sizes[3]), method=method, antialias=False, channels="first", name=ctx.layer_name())
    return [ctx.sym(graph)]
