"""ONNX converters for convolutions, pooling, normalization and resize.

Channels-last layers (axon's default) are written as ``Transpose`` to channels-first, the
ONNX op, and ``Transpose`` back; kernels are stored in ONNX's ``(out, in / groups, k...)``
layout. Average and Lp pooling are depthwise convolutions with a constant kernel (axon
divides by the full window, padding included, and dilates windows at any opset)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from axon.onnx.export_builder import Builder, Layer, NotExportable
from axon.onnx.export_ops_basic import _x, option, param

__all__ = ["CONVERTERS"]

Converter = Callable[[Builder, Layer], Any]


def _tuple(value: Any, n: int, what: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise NotExportable(f"expected {what} to have {n} entries, got {value}")
    return value


def _pads(padding: Any, window: Sequence[int], dilation: Sequence[int]) -> list[tuple[int, int]]:
    """axon's padding rule: ``"same"`` puts ``(k_eff - 1) // 2`` before, the rest after."""
    if isinstance(padding, str):
        if padding.lower() == "valid":
            return [(0, 0)] * len(window)
        if padding.lower() == "same":
            return [(((k - 1) * d) // 2, (k - 1) * d - ((k - 1) * d) // 2) for k, d in zip(window, dilation, strict=True)]
        raise NotExportable(f"unknown padding {padding!r}")
    return [(int(lo), int(hi)) for lo, hi in padding]


def to_first(b: Builder, x: str, rank: int, channels: str) -> str:
    """A channels-last tensor as channels-first (``NC...``)."""
    return x if channels == "first" else b.transpose(x, [0, rank - 1, *range(1, rank - 1)])


def to_last(b: Builder, x: str, rank: int, channels: str) -> str:
    """A channels-first tensor back in the layer's layout."""
    return x if channels == "first" else b.transpose(x, [0, *range(2, rank), 1])


def _oi_kernel(kernel: np.ndarray, channels: str) -> np.ndarray:
    """An axon kernel as ``(out, in / groups, k...)``."""
    if channels == "first":
        return kernel
    n = kernel.ndim - 2
    return np.transpose(kernel, (n + 1, n, *range(n)))


def dilate_input(b: Builder, x: str, shape: Sequence[int], dilation: Sequence[int]) -> tuple[str, list[int]]:
    """Insert ``d - 1`` zeros between the elements of each spatial axis of a channels-first
    tensor (axon's input dilation); returns the tensor and its new shape."""
    shape = list(shape)
    for i, d in enumerate(dilation):
        if d == 1:
            continue
        axis = 2 + i
        n = shape[axis]
        # (..., n, ...) -> (..., n, 1, ...) -> pad to (..., n, d, ...) -> (..., n * d, ...) -> drop the tail
        y = b.unsqueeze(x, [axis + 1])
        rank = len(shape) + 1
        pads = [0] * (2 * rank)
        pads[rank + axis + 1] = d - 1
        y = b.op("Pad", [y, b.ints(pads)], mode="constant")
        merged = [b.batch_dim(shape, 0), *shape[1:axis], n * d, *shape[axis + 1:]]
        y = b.reshape(y, merged)
        x = b.op("Slice", [y, b.ints([0]), b.ints([(n - 1) * d + 1]), b.ints([axis])])
        shape[axis] = (n - 1) * d + 1
    return x, shape


def conv_first(b: Builder, x: str, shape: Sequence[int], kernel: str, bias: str | None, *, strides: Sequence[int],
               pads: Sequence[tuple[int, int]], input_dilation: Sequence[int], kernel_dilation: Sequence[int],
               groups: int, kernel_shape: Sequence[int]) -> str:
    """An axon convolution of a channels-first tensor as ONNX ``Conv`` (input dilation by
    zero insertion, negative padding by slicing)."""
    x, shape = dilate_input(b, x, shape, input_dilation)
    if any(lo < 0 or hi < 0 for lo, hi in pads):
        starts = [max(-lo, 0) for lo, _ in pads]
        ends = [shape[2 + i] - max(-hi, 0) for i, (_, hi) in enumerate(pads)]
        x = b.op("Slice", [x, b.ints(starts), b.ints(ends), b.ints(list(range(2, 2 + len(pads))))])
        pads = [(max(lo, 0), max(hi, 0)) for lo, hi in pads]
    inputs = [x, kernel] + ([bias] if bias is not None else [])
    return b.op("Conv", inputs, strides=list(strides), pads=[lo for lo, _ in pads] + [hi for _, hi in pads],
                dilations=list(kernel_dilation), group=int(groups), kernel_shape=list(kernel_shape))


def _bias_vector(layer: Layer, name: str, out: int) -> np.ndarray | None:
    if name not in layer.params:
        return None
    v = np.asarray(layer.params[name])
    return np.broadcast_to(v, (out,)).copy() if v.ndim == 0 else v


def _conv_layer(b: Builder, layer: Layer, *, kernel_name: str, bias_name: str, x: str, shape: Sequence[int],
                groups_of: Callable[[int], int], strides: Any, padding: Any, input_dilation: Any,
                kernel_dilation: Any, channels: str, transpose_pads: bool = False) -> tuple[str, list[int]]:
    rank = len(shape)
    n = rank - 2
    kernel = _oi_kernel(np.asarray(layer.params[kernel_name]), channels)
    k_spatial = kernel.shape[2:]
    st, idil, kdil = _tuple(strides, n, "strides"), _tuple(input_dilation, n, "input_dilation"), \
        _tuple(kernel_dilation, n, "kernel_dilation")
    pads = _conv_transpose_pads(k_spatial, kdil, idil, padding) if transpose_pads else _pads(padding, k_spatial, kdil)
    first_shape = list(shape) if channels == "first" else [shape[0], shape[-1], *shape[1:-1]]
    bias = _bias_vector(layer, bias_name, kernel.shape[0])
    y = conv_first(b, x, first_shape, param(b, layer, kernel_name, kernel),
                   None if bias is None else param(b, layer, bias_name, bias),
                   strides=st, pads=pads, input_dilation=idil, kernel_dilation=kdil,
                   groups=groups_of(first_shape[1]), kernel_shape=k_spatial)
    return y, first_shape


def _conv_transpose_pads(kernel_size, kernel_dilation, strides, padding) -> list[tuple[int, int]]:
    if not isinstance(padding, str):
        return _pads(padding, kernel_size, kernel_dilation)
    pads = []
    for k, d, s in zip(kernel_size, kernel_dilation, strides, strict=True):
        k = (k - 1) * d + 1
        if padding.lower() == "valid":
            total, lo = k + s - 2 + max(k - s, 0), k - 1
        elif padding.lower() == "same":
            total = k + s - 2
            lo = k - 1 if s > k - 1 else -(-total // 2)
        else:
            raise NotExportable(f"unknown padding {padding!r}")
        pads.append((lo, total - lo))
    return pads


def _conv(b: Builder, layer: Layer) -> str:
    channels = option(layer, "channels")
    shape = layer.shape(0)
    x = to_first(b, _x(layer), len(shape), channels)
    groups = int(option(layer, "feature_group_size"))
    if int(layer.opts.get("batch_group_size", 1)) != 1:
        raise NotExportable("batch_group_size > 1 has no ONNX counterpart")
    y, _ = _conv_layer(b, layer, kernel_name="kernel", bias_name="bias", x=x, shape=shape, groups_of=lambda c: groups,
                       strides=option(layer, "strides"), padding=option(layer, "padding"),
                       input_dilation=option(layer, "input_dilation"), kernel_dilation=option(layer, "kernel_dilation"),
                       channels=channels)
    return to_last(b, y, len(shape), channels)


def _conv_transpose(b: Builder, layer: Layer) -> str:
    channels = option(layer, "channels")
    shape = layer.shape(0)
    x = to_first(b, _x(layer), len(shape), channels)
    y, _ = _conv_layer(b, layer, kernel_name="kernel", bias_name="bias", x=x, shape=shape, groups_of=lambda c: 1,
                       strides=1, padding=option(layer, "padding"), input_dilation=option(layer, "strides"),
                       kernel_dilation=option(layer, "kernel_dilation"), channels=channels, transpose_pads=True)
    return to_last(b, y, len(shape), channels)


def _depthwise_conv(b: Builder, layer: Layer) -> str:
    channels = option(layer, "channels")
    shape = layer.shape(0)
    x = to_first(b, _x(layer), len(shape), channels)
    y, _ = _conv_layer(b, layer, kernel_name="kernel", bias_name="bias", x=x, shape=shape, groups_of=lambda c: c,
                       strides=option(layer, "strides"), padding=option(layer, "padding"),
                       input_dilation=option(layer, "input_dilation"), kernel_dilation=option(layer, "kernel_dilation"),
                       channels=channels)
    return to_last(b, y, len(shape), channels)


def _separable(count: int) -> Converter:
    def convert(b: Builder, layer: Layer) -> str:
        channels = option(layer, "channels")
        shape = list(layer.shape(0))
        rank = len(shape)
        n = rank - 2
        strides = _tuple(option(layer, "strides"), n, "strides")
        idil = _tuple(option(layer, "input_dilation"), n, "input_dilation")
        padding = option(layer, "padding")
        explicit = None if isinstance(padding, str) else _pads(padding, (1,) * n, (1,) * n)
        y = to_first(b, _x(layer), rank, channels)
        first = shape if channels == "first" else [shape[0], shape[-1], *shape[1:-1]]
        for i in range(count):
            kernel = _oi_kernel(np.asarray(layer.params[f"kernel_{i + 1}"]), channels)
            k_spatial = kernel.shape[2:]
            kdil = _tuple(option(layer, "kernel_dilation"), n, "kernel_dilation")
            pads = _pads(padding, k_spatial, kdil) if explicit is None else \
                [explicit[i] if j == i else (0, 0) for j in range(n)]
            st = [v if j == i else 1 for j, v in enumerate(strides)]
            di = [v if j == i else 1 for j, v in enumerate(idil)]
            bias = _bias_vector(layer, f"bias_{i + 1}", kernel.shape[0])
            y = conv_first(b, y, first, param(b, layer, f"kernel_{i + 1}", kernel),
                           None if bias is None else param(b, layer, f"bias_{i + 1}", bias),
                           strides=st, pads=pads, input_dilation=di, kernel_dilation=kdil,
                           groups=first[1], kernel_shape=k_spatial)
            spatial = []
            for j in range(n):
                size = (first[2 + j] - 1) * di[j] + 1 + pads[j][0] + pads[j][1]
                spatial.append((size - ((k_spatial[j] - 1) * kdil[j] + 1)) // st[j] + 1)
            first = [first[0], kernel.shape[0], *spatial]
        return to_last(b, y, rank, channels)
    return convert


# ---------------------------------------------------------------------------------------
# pooling


def _window(layer: Layer, n: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], list[tuple[int, int]]]:
    ks = _tuple(layer.opts["kernel_size"], n, "kernel_size")
    strides = option(layer, "strides")
    st = ks if strides is None else _tuple(strides, n, "strides")
    wd = _tuple(option(layer, "window_dilations"), n, "window_dilations")
    return ks, st, wd, _pads(option(layer, "padding"), ks, wd)


def _sum_pool(b: Builder, x: str, first_shape: Sequence[int], ks, st, wd, pads, scale: float, dtype: Any) -> str:
    """A window sum (times ``scale``) as a depthwise conv with a constant kernel."""
    c = first_shape[1]
    kernel = np.full((c, 1, *ks), scale, dtype=dtype)
    return conv_first(b, x, first_shape, b.const(kernel, hint="window"), None, strides=st, pads=pads,
                      input_dilation=[1] * len(ks), kernel_dilation=wd, groups=c, kernel_shape=ks)


def _pool(kind: str, adaptive: bool = False) -> Converter:
    def convert(b: Builder, layer: Layer) -> str:
        channels = option(layer, "channels")
        shape = layer.shape(0)
        rank, n = len(shape), len(shape) - 2
        first = list(shape) if channels == "first" else [shape[0], shape[-1], *shape[1:-1]]
        if adaptive:
            sizes = first[2:]
            out = option(layer, "output_size")
            out = sizes if out is None else _tuple(out, n, "output_size")
            st = tuple(s // o for s, o in zip(sizes, out, strict=True))
            ks = tuple(s - (o - 1) * t for s, o, t in zip(sizes, out, st, strict=True))
            wd, pads = (1,) * n, [(0, 0)] * n
        else:
            ks, st, wd, pads = _window(layer, n)
        dtype = np.dtype(layer.out.dtype)
        x = _x(layer)
        if not np.issubdtype(np.dtype(layer.in_values[0].dtype), np.floating):
            if kind == "max":
                raise NotExportable("max pooling of an integer input")
            x = b.cast(x, dtype)
        x = to_first(b, x, rank, channels)
        if kind == "max":
            if any(lo < 0 or hi < 0 for lo, hi in pads):
                raise NotExportable(f"negative padding {pads}")
            y = b.op("MaxPool", [x], kernel_shape=list(ks), strides=list(st), dilations=list(wd),
                     pads=[lo for lo, _ in pads] + [hi for _, hi in pads])
        elif kind == "avg":
            y = _sum_pool(b, x, first, ks, st, wd, pads, 1.0 / float(np.prod(ks)), dtype)
        else:
            norm = float(option(layer, "norm"))
            p = b.scalar(norm, dtype)
            y = _sum_pool(b, b.op("Pow", [x, p]), first, ks, st, wd, pads, 1.0, dtype)
            y = b.op("Pow", [y, b.scalar(1.0 / norm, dtype)])
        return to_last(b, y, rank, channels)
    return convert


def _global_pool(kind: str) -> Converter:
    def convert(b: Builder, layer: Layer) -> str:
        channels = option(layer, "channels")
        rank = len(layer.shape(0))
        axes = list(range(1, rank - 1)) if channels == "last" else list(range(2, rank))
        keep = bool(option(layer, "keep_axes"))
        x = _x(layer)
        dtype = np.dtype(layer.out.dtype)
        if not np.issubdtype(np.dtype(layer.in_values[0].dtype), np.floating) and kind != "max":
            x = b.cast(x, dtype)
        if kind == "avg":
            return b.reduce("ReduceMean", x, axes, keep)
        if kind == "max":
            return b.reduce("ReduceMax", x, axes, keep)
        norm = float(option(layer, "norm"))
        s = b.reduce("ReduceSum", b.op("Pow", [x, b.scalar(norm, dtype)]), axes, keep)
        return b.op("Pow", [s, b.scalar(1.0 / norm, dtype)])
    return convert


_BINOMIAL = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0


def _blur_pool(b: Builder, layer: Layer) -> str:
    channels = option(layer, "channels")
    shape = layer.shape(0)
    first = list(shape) if channels == "first" else [shape[0], shape[-1], *shape[1:-1]]
    dtype = np.dtype(layer.out.dtype)
    x = to_first(b, _x(layer), 4, channels)
    kernel = np.broadcast_to(_BINOMIAL.astype(dtype), (first[1], 1, 3, 3)).copy()
    y = conv_first(b, x, first, b.const(kernel, hint="blur"), None, strides=(1, 1), pads=[(1, 1), (1, 1)],
                   input_dilation=(1, 1), kernel_dilation=(1, 1), groups=first[1], kernel_shape=(3, 3))
    return to_last(b, y, 4, channels)


# ---------------------------------------------------------------------------------------
# normalization


def _per_channel(b: Builder, layer: Layer, name: str, rank: int, axis: int) -> str | None:
    if name not in layer.params:
        return None
    v = np.asarray(layer.params[name])
    t = param(b, layer, name)
    if v.ndim == 0 or axis == rank - 1:
        return t
    shape = [1] * (rank - axis)
    shape[0] = v.shape[0]
    return b.reshape(t, shape)


def _channel_axis(layer: Layer, rank: int) -> int:
    return int(option(layer, "channel_index")) % rank


def _stats_norm(b: Builder, layer: Layer) -> str:
    """``(x - mean) * (gamma / sqrt(var + eps)) + beta`` with the running statistics."""
    rank = len(layer.shape(0))
    axis = _channel_axis(layer, rank)
    dtype = np.dtype(layer.out.dtype)
    x = _x(layer)
    mean, var = _per_channel(b, layer, "mean", rank, axis), _per_channel(b, layer, "var", rank, axis)
    scale = b.op("Div", [b.scalar(1.0, dtype), b.op("Sqrt", [b.op("Add", [var, b.scalar(float(option(layer, "epsilon")), dtype)])])])
    gamma = _per_channel(b, layer, "gamma", rank, axis)
    if gamma is not None:
        scale = b.op("Mul", [scale, gamma])
    y = b.op("Mul", [b.op("Sub", [x, mean]), scale])
    beta = _per_channel(b, layer, "beta", rank, axis)
    return y if beta is None else b.op("Add", [y, beta])


def _normalize_over(b: Builder, x: str, axes: list[int], eps: float, dtype: Any) -> str:
    mu = b.reduce("ReduceMean", x, axes)
    d = b.op("Sub", [x, mu])
    v = b.reduce("ReduceMean", b.op("Mul", [d, d]), axes)
    return b.op("Div", [d, b.op("Sqrt", [b.op("Add", [v, b.scalar(eps, dtype)])])])


def _scale_shift(b: Builder, layer: Layer, y: str, rank: int, axis: int) -> str:
    gamma = _per_channel(b, layer, "gamma", rank, axis)
    if gamma is not None:
        y = b.op("Mul", [y, gamma])
    beta = _per_channel(b, layer, "beta", rank, axis)
    return y if beta is None else b.op("Add", [y, beta])


def _layer_norm(b: Builder, layer: Layer) -> str:
    rank = len(layer.shape(0))
    axis = _channel_axis(layer, rank)
    y = _normalize_over(b, _x(layer), [axis], float(option(layer, "epsilon")), np.dtype(layer.out.dtype))
    return _scale_shift(b, layer, y, rank, axis)


def _group_norm(b: Builder, layer: Layer) -> str:
    shape = list(layer.shape(0))
    rank = len(shape)
    axis = _channel_axis(layer, rank)
    groups = int(layer.opts["num_groups"])
    c = shape[axis]
    grouped = [*shape[:axis], groups, c // groups, *shape[axis + 1:]]
    grouped[0] = b.batch_dim(shape, 0)
    xg = b.reshape(_x(layer), grouped)
    axes = [a for a in range(1, rank + 1) if a != axis]
    y = _normalize_over(b, xg, axes, float(option(layer, "epsilon")), np.dtype(layer.out.dtype))
    back = list(shape)
    back[0] = b.batch_dim(shape, 0)
    return _scale_shift(b, layer, b.reshape(y, back), rank, axis)


def _rms_norm(b: Builder, layer: Layer) -> str:
    rank = len(layer.shape(0))
    axis = _channel_axis(layer, rank)
    dtype = np.dtype(layer.out.dtype)
    x = _x(layer)
    ms = b.reduce("ReduceMean", b.op("Mul", [x, x]), [axis])
    y = b.op("Div", [x, b.op("Sqrt", [b.op("Add", [ms, b.scalar(float(option(layer, "epsilon")), dtype)])])])
    gamma = _per_channel(b, layer, "gamma", rank, axis)
    if gamma is None:
        return y
    shift = float(option(layer, "shift"))
    if shift != 0.0:
        gamma = b.op("Add", [gamma, b.scalar(shift, dtype)])
    return b.op("Mul", [y, gamma])


# ---------------------------------------------------------------------------------------
# resize


def _resize(b: Builder, layer: Layer) -> str:
    channels = option(layer, "channels")
    method = option(layer, "method")
    shape = layer.shape(0)
    rank = len(shape)
    first = list(shape) if channels == "first" else [shape[0], shape[-1], *shape[1:-1]]
    out = layer.out_shape
    out_first = list(out) if channels == "first" else [out[0], out[-1], *out[1:-1]]
    if method not in ("nearest", "bilinear", "bicubic"):
        raise NotExportable(f"method {method!r} (ONNX Resize matches axon's 'nearest', 'bilinear' and 'bicubic')")
    down = any(o < i for o, i in zip(out_first[2:], first[2:], strict=True))
    antialias = method != "nearest" and down and bool(option(layer, "antialias"))
    if antialias and method == "bilinear":
        raise NotExportable("antialiased bilinear downsampling (ONNX's antialiased linear filter differs; "
                            "pass antialias=False)")
    if antialias and b.opset < 18:
        raise NotExportable("antialiased downsampling needs opset 18 or later (or antialias=False)")
    if method == "bicubic" and down and not antialias:
        raise NotExportable("bicubic downsampling without antialiasing (onnxruntime rejects it)")
    # onnxruntime antialiases only channels-last images (and upsamples cubically only channels-first)
    layout = "last" if antialias else "first"
    x = _x(layer) if layout == channels else (to_first(b, _x(layer), rank, channels) if layout == "first"
                                              else to_last(b, _x(layer), rank, "last"))
    spatial = out_first[2:]
    if b.dynamic_batch:  # the batch and channels from the input's shape, the new spatial sizes
        shape_x = b.op("Shape", [x])
        if layout == "first":
            sizes = b.op("Concat", [b.op("Slice", [shape_x, b.ints([0]), b.ints([2])]), b.ints(spatial)], axis=0)
        else:
            sizes = b.op("Concat", [b.op("Slice", [shape_x, b.ints([0]), b.ints([1])]), b.ints(spatial),
                                    b.op("Slice", [shape_x, b.ints([-1]), b.ints([rank])])], axis=0)
    else:
        sizes = b.ints(out_first if layout == "first" else [out_first[0], *spatial, out_first[1]])
    args = [x, "", "", sizes]
    if method == "nearest":  # input index floor((i + 0.5) * in / out), as axon
        y = b.op("Resize", args, mode="nearest", coordinate_transformation_mode="half_pixel",
                 nearest_mode="round_prefer_ceil")
    else:  # kernel weights renormalized over the pixels inside the image, as jax.image.resize
        cubic = {"cubic_coeff_a": -0.5, "exclude_outside": 1} if method == "bicubic" else {}
        y = b.op("Resize", args, mode="cubic" if method == "bicubic" else "linear",
                 coordinate_transformation_mode="half_pixel", antialias=1 if antialias else None, **cubic)
    if layout == channels:
        return y
    return to_last(b, y, rank, channels) if layout == "first" else to_first(b, y, rank, "last")


CONVERTERS: dict[str, Converter] = {
    "axon.conv": _conv,
    "axon.conv_transpose": _conv_transpose,
    "axon.depthwise_conv": _depthwise_conv,
    "axon.separable_conv2d_op": _separable(2),
    "axon.separable_conv3d_op": _separable(3),
    "axon.max_pool": _pool("max"),
    "axon.avg_pool": _pool("avg"),
    "axon.lp_pool": _pool("lp"),
    "axon.adaptive_max_pool": _pool("max", adaptive=True),
    "axon.adaptive_avg_pool": _pool("avg", adaptive=True),
    "axon.adaptive_lp_pool": _pool("lp", adaptive=True),
    "axon.global_max_pool": _global_pool("max"),
    "axon.global_avg_pool": _global_pool("avg"),
    "axon.global_lp_pool": _global_pool("lp"),
    "axon.blur_pool": _blur_pool,
    "axon.batch_norm": _stats_norm,
    "axon.instance_norm": _stats_norm,
    "axon.layer_norm": _layer_norm,
    "axon.group_norm": _group_norm,
    "axon.rms_norm": _rms_norm,
    "axon.resize": _resize,
}
