"""Convolution layers: ``conv``, ``conv_transpose``, ``depthwise_conv``,
``separable_conv2d``, ``separable_conv3d``.

Channels are last by default (inputs ``(batch, *spatial, channels)``, kernels HWIO); with
``channels="first"`` inputs are ``(batch, channels, *spatial)`` and kernels OIHW.

>>> import axon
>>> model = axon.input("img", shape=(None, 28, 28, 1)).pipe(axon.conv, 32, kernel_size=3, activation="relu")
>>> state = axon.init(model, axon.template((1, 28, 28, 1)))
>>> state["conv_0"]["kernel"].shape, axon.get_output_shape(model, axon.template((1, 28, 28, 1)))
((3, 3, 1, 32), (1, 26, 26, 32))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from axon import layers
from axon.api.core import check_graph, layer, param
from axon.api.linear import _maybe_activation, _units
from axon.graph import Axon
from axon.layers._utils import check_channels, normalize_tuple
from axon.registry import register, register_all
from axon.typing_aliases import Activation, Channels, Initializer, LayerName, Padding

__all__ = ["conv", "conv_transpose", "depthwise_conv", "separable_conv2d", "separable_conv3d"]


def _in_channels(s: tuple, channels: Channels) -> int:
    return s[-1] if channels == "last" else s[1]


def _kernel(kernel_size: Any, spatial: tuple[int, ...], in_dim: int, out_dim: int, channels: Channels) -> tuple[int, ...]:
    return (*spatial, in_dim, out_dim) if channels == "last" else (out_dim, in_dim, *spatial)


def _spatial(kernel_size: Any, s: tuple) -> tuple[int, ...]:
    if len(s) < 3:
        raise ValueError(f"expected an input of rank at least 3 (batch, spatial..., channels), got shape {s}")
    return normalize_tuple(kernel_size, len(s) - 2, "kernel_size")


def _check_common(where: str, x: Axon, kernel_size: Any, strides: Any, padding: Any, channels: Channels) -> None:
    check_graph(x, where)
    check_channels(channels, where)
    for name, value in (("kernel_size", kernel_size), ("strides", strides)):
        vals = (value,) if isinstance(value, int) else tuple(value)
        if not vals or not all(isinstance(v, int) and v >= 1 for v in vals):
            raise ValueError(f"{where}: expected {name} to be a positive int or a tuple of them, got {value!r}")
    if isinstance(padding, str):
        if padding.lower() not in ("valid", "same"):
            raise ValueError(f"{where}: expected padding to be 'valid', 'same' or a list of (lo, hi) pairs, got {padding!r}")
    elif not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in padding):
        raise ValueError(f"{where}: expected padding to be 'valid', 'same' or a list of (lo, hi) pairs, got {padding!r}")


def _padding(padding: Any) -> Any:
    return padding.lower() if isinstance(padding, str) else tuple(tuple(p) for p in padding)


def _kernel_layer(
    op: Callable[..., Any], op_name: str, x: Axon, kernel_shape: Callable[..., tuple], bias_shape: Any, *,
    use_bias: bool, kernel_initializer: Any, bias_initializer: Any, activation: Any, name: Any, meta: Any, **opts: Any,
) -> Axon:
    """A layer with a ``kernel`` (and optionally a ``bias``), followed by its activation."""
    inputs = [x, param("kernel", kernel_shape, initializer=kernel_initializer)]
    if use_bias:
        inputs.append(param("bias", bias_shape, initializer=bias_initializer))
    out = layer(op, inputs, name=name, op_name=op_name, meta=meta, **opts)
    return _maybe_activation(out, activation)


def conv(
    x: Axon,
    units: int,
    *,
    kernel_size: int | tuple[int, ...] = 1,
    strides: int | tuple[int, ...] = 1,
    padding: Padding = "valid",
    input_dilation: int | tuple[int, ...] = 1,
    kernel_dilation: int | tuple[int, ...] = 1,
    feature_group_size: int = 1,
    channels: Channels = "last",
    activation: Activation | None = None,
    use_bias: bool = True,
    kernel_initializer: Initializer = "glorot_uniform",
    bias_initializer: Initializer = "zeros",
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """An N-d convolution (1-, 2-, 3-d...) with ``units`` output channels (see
    :func:`axon.layers.conv`). Parameters: ``kernel`` ``(*kernel_size, in/groups, units)``
    (channels last) and ``bias`` ``(units,)``.

    Args:
        x: The input graph, ``(batch, *spatial, channels)`` (or channels first).
        units: The number of output channels.
        kernel_size: The window size per spatial dimension (an int for all). Default ``1``.
        strides: The step per spatial dimension (an int for all). Default ``1``.
        padding: ``"valid"`` (none), ``"same"`` (output size ``ceil(input / stride)``) or one
            ``(low, high)`` pair per spatial dimension. Default ``"valid"``.
        input_dilation: Spacing inserted between input elements (fractional striding).
            Default ``1``.
        kernel_dilation: Spacing between kernel taps (atrous convolution). Default ``1``.
        feature_group_size: Split the input channels into this many groups, each convolved
            with its own filters. Default ``1``.
        channels: ``"last"`` (default; ``(batch, *spatial, channels)``) or ``"first"``
            (``(batch, channels, *spatial)``).
        activation: An activation applied after the layer, as a separate layer (a name
            from ``axon.activations`` or a function). Default ``None``: none.
        use_bias: Whether to add a trainable bias. Default ``True``.
        kernel_initializer: The kernel's initializer (a name from ``axon.initializers``
            or ``init(key, shape, dtype)``). Default ``"glorot_uniform"``.
        bias_initializer: The bias's initializer. Default ``"zeros"``.
        name: The layer name (``None``: ``"conv_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the output, ``(batch, *out_spatial, units)`` (or channels first).

    Raises:
        TypeError: ``x`` is not a graph.
        ValueError: A size, stride, padding or channels option is invalid.

    >>> import axon
    >>> m = axon.input("x", shape=(None, 8, 3)).pipe(axon.conv, 4, kernel_size=3, padding="same")
    >>> axon.get_output_shape(m, axon.template((2, 8, 3)))
    (2, 8, 4)
    """
    _check_common("conv", x, kernel_size, strides, padding, channels)
    _units(units, "conv")
    if not isinstance(feature_group_size, int) or feature_group_size < 1:
        raise ValueError(f"conv: expected feature_group_size to be a positive int, got {feature_group_size!r}")

    def kernel_shape(s):
        cin = _in_channels(s, channels)
        if cin % feature_group_size:
            raise ValueError(f"conv: input channels {cin} are not divisible by feature_group_size {feature_group_size}")
        return _kernel(kernel_size, _spatial(kernel_size, s), cin // feature_group_size, units, channels)

    return _kernel_layer(
        layers.conv, "conv", x, kernel_shape, (units,), use_bias=use_bias, kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer, activation=activation, name=name, meta=meta, strides=strides,
        padding=_padding(padding), input_dilation=input_dilation, kernel_dilation=kernel_dilation,
        feature_group_size=feature_group_size, channels=channels,
    )


def conv_transpose(
    x: Axon,
    units: int,
    *,
    kernel_size: int | tuple[int, ...] = 1,
    strides: int | tuple[int, ...] = 1,
    padding: Padding = "valid",
    kernel_dilation: int | tuple[int, ...] = 1,
    channels: Channels = "last",
    activation: Activation | None = None,
    use_bias: bool = True,
    kernel_initializer: Initializer = "glorot_uniform",
    bias_initializer: Initializer = "zeros",
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """A transposed (fractionally strided) convolution (see :func:`axon.layers.conv_transpose`).
    Parameters: ``kernel`` ``(*kernel_size, in, units)`` (channels last), ``bias`` ``(units,)``.

    Args:
        x: The input graph, ``(batch, *spatial, channels)`` (or channels first).
        units: The number of output channels.
        kernel_size: The window size per spatial dimension (an int for all). Default ``1``.
        strides: The step per spatial dimension (an int for all). Default ``1``.
        padding: ``"valid"`` (none), ``"same"`` (output size ``ceil(input / stride)``) or one
            ``(low, high)`` pair per spatial dimension. Default ``"valid"``.
        kernel_dilation: Spacing between kernel taps (atrous convolution). Default ``1``.
        channels: ``"last"`` (default; ``(batch, *spatial, channels)``) or ``"first"``
            (``(batch, channels, *spatial)``).
        activation: An activation applied after the layer, as a separate layer (a name
            from ``axon.activations`` or a function). Default ``None``: none.
        use_bias: Whether to add a trainable bias. Default ``True``.
        kernel_initializer: The kernel's initializer (a name from ``axon.initializers``
            or ``init(key, shape, dtype)``). Default ``"glorot_uniform"``.
        bias_initializer: The bias's initializer. Default ``"zeros"``.
        name: The layer name (``None``: ``"conv_transpose_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the output, ``(batch, *out_spatial, units)`` (or channels first).

    Raises:
        TypeError: ``x`` is not a graph.
        ValueError: A size, stride, padding or channels option is invalid.

    >>> import axon
    >>> m = axon.input("x", shape=(None, 4, 4, 2)).pipe(axon.conv_transpose, 3, kernel_size=2, strides=2)
    >>> axon.get_output_shape(m, axon.template((1, 4, 4, 2)))
    (1, 8, 8, 3)
    """
    _check_common("conv_transpose", x, kernel_size, strides, padding, channels)
    _units(units, "conv_transpose")
    return _kernel_layer(
        layers.conv_transpose, "conv_transpose", x,
        lambda s: _kernel(kernel_size, _spatial(kernel_size, s), _in_channels(s, channels), units, channels), (units,),
        use_bias=use_bias, kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
        activation=activation, name=name, meta=meta, strides=strides, padding=_padding(padding),
        kernel_dilation=kernel_dilation, channels=channels,
    )


def depthwise_conv(
    x: Axon,
    channel_multiplier: int,
    *,
    kernel_size: int | tuple[int, ...] = 1,
    strides: int | tuple[int, ...] = 1,
    padding: Padding = "valid",
    input_dilation: int | tuple[int, ...] = 1,
    kernel_dilation: int | tuple[int, ...] = 1,
    channels: Channels = "last",
    activation: Activation | None = None,
    use_bias: bool = True,
    kernel_initializer: Initializer = "glorot_uniform",
    bias_initializer: Initializer = "zeros",
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """A depthwise convolution: each input channel gets ``channel_multiplier`` filters of
    its own (see :func:`axon.layers.depthwise_conv`). Parameters: ``kernel``
    ``(*kernel_size, 1, in * m)`` (channels last), ``bias`` ``(in * m,)``.

    Args:
        x: The input graph, ``(batch, *spatial, channels)`` (or channels first).
        channel_multiplier: The number of filters per input channel.
        kernel_size: The window size per spatial dimension (an int for all). Default ``1``.
        strides: The step per spatial dimension (an int for all). Default ``1``.
        padding: ``"valid"`` (none), ``"same"`` (output size ``ceil(input / stride)``) or one
            ``(low, high)`` pair per spatial dimension. Default ``"valid"``.
        input_dilation: Spacing inserted between input elements (fractional striding).
            Default ``1``.
        kernel_dilation: Spacing between kernel taps (atrous convolution). Default ``1``.
        channels: ``"last"`` (default; ``(batch, *spatial, channels)``) or ``"first"``
            (``(batch, channels, *spatial)``).
        activation: An activation applied after the layer, as a separate layer (a name
            from ``axon.activations`` or a function). Default ``None``: none.
        use_bias: Whether to add a trainable bias. Default ``True``.
        kernel_initializer: The kernel's initializer (a name from ``axon.initializers``
            or ``init(key, shape, dtype)``). Default ``"glorot_uniform"``.
        bias_initializer: The bias's initializer. Default ``"zeros"``.
        name: The layer name (``None``: ``"depthwise_conv_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the output, with ``in_channels · channel_multiplier`` channels.

    Raises:
        TypeError: ``x`` is not a graph.
        ValueError: A size, stride, padding or channels option is invalid.

    >>> import axon
    >>> m = axon.input("x", shape=(None, 6, 6, 3)).pipe(axon.depthwise_conv, 2, kernel_size=3)
    >>> axon.init(m, axon.template((1, 6, 6, 3)))["depthwise_conv_0"]["kernel"].shape
    (3, 3, 1, 6)
    """
    _check_common("depthwise_conv", x, kernel_size, strides, padding, channels)
    _units(channel_multiplier, "depthwise_conv", "channel_multiplier")
    return _kernel_layer(
        layers.depthwise_conv, "depthwise_conv", x,
        lambda s: _kernel(kernel_size, _spatial(kernel_size, s), 1, _in_channels(s, channels) * channel_multiplier, channels),
        lambda s: (_in_channels(s, channels) * channel_multiplier,),
        use_bias=use_bias, kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
        activation=activation, name=name, meta=meta, strides=strides, padding=_padding(padding),
        input_dilation=input_dilation, kernel_dilation=kernel_dilation, channels=channels,
    )


@register("op", "axon.separable_conv2d_op")
def separable_conv2d_op(x, k1, k2, b1=None, b2=None, *, strides=1, padding="valid", input_dilation=1,
                        kernel_dilation=1, channels="last"):
    """Graph op of ``separable_conv2d``: kernels first, optional biases after."""
    return layers.separable_conv2d(x, k1, b1, k2, b2, strides=strides, padding=padding, input_dilation=input_dilation,
                                   kernel_dilation=kernel_dilation, channels=channels)


@register("op", "axon.separable_conv3d_op")
def separable_conv3d_op(x, k1, k2, k3, b1=None, b2=None, b3=None, *, strides=1, padding="valid", input_dilation=1,
                        kernel_dilation=1, channels="last"):
    """Graph op of ``separable_conv3d``: kernels first, optional biases after."""
    return layers.separable_conv3d(x, k1, b1, k2, b2, k3, b3, strides=strides, padding=padding,
                                   input_dilation=input_dilation, kernel_dilation=kernel_dilation, channels=channels)


def _separable(where: str, rank: int, x: Axon, channel_multiplier: int, kernel_size, strides, padding, input_dilation,
               kernel_dilation, channels, activation, use_bias, kernel_initializer, bias_initializer, name, meta) -> Axon:
    _check_common(where, x, kernel_size, strides, padding, channels)
    _units(channel_multiplier, where, "channel_multiplier")
    n = rank - 2

    def kernel_i(i: int):
        def shape(s):
            if len(s) != rank:
                raise ValueError(f"{where}: expected an input of rank {rank}, got shape {s}")
            ks = normalize_tuple(kernel_size, n, "kernel_size")
            spatial = tuple(ks[j] if j == i else 1 for j in range(n))
            return _kernel(kernel_size, spatial, 1, _in_channels(s, channels) * channel_multiplier, channels)

        return shape

    kernels = [param(f"kernel_{i + 1}", kernel_i(i), initializer=kernel_initializer) for i in range(n)]
    biases = (
        [param(f"bias_{i + 1}", lambda s: (_in_channels(s, channels) * channel_multiplier,), initializer=bias_initializer) for i in range(n)]
        if use_bias else []
    )
    op = separable_conv2d_op if rank == 4 else separable_conv3d_op
    out = layer(
        op, [x, *kernels, *biases], strides=strides, padding=_padding(padding), input_dilation=input_dilation,
        kernel_dilation=kernel_dilation, channels=channels, name=name, op_name=where, meta=meta,
    )
    return _maybe_activation(out, activation)


def separable_conv2d(
    x: Axon,
    channel_multiplier: int,
    *,
    kernel_size: int | tuple[int, int] = 1,
    strides: int | tuple[int, int] = 1,
    padding: Padding = "valid",
    input_dilation: int | tuple[int, int] = 1,
    kernel_dilation: int | tuple[int, int] = 1,
    channels: Channels = "last",
    activation: Activation | None = None,
    use_bias: bool = True,
    kernel_initializer: Initializer = "glorot_uniform",
    bias_initializer: Initializer = "zeros",
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """A depthwise separable 2-d convolution: two depthwise convolutions, one per spatial
    axis. Parameters ``kernel_1`` ``(kh, 1, 1, in*m)``, ``kernel_2`` ``(1, kw, 1, in*m)``,
    ``bias_1``, ``bias_2`` ``(in*m,)`` (channels last).

    Args:
        x: The input graph, ``(batch, *spatial, channels)`` (or channels first).
        channel_multiplier: The number of filters per input channel.
        kernel_size: The window size per spatial dimension (an int for all). Default ``1``.
        strides: The step per spatial dimension (an int for all). Default ``1``.
        padding: ``"valid"`` (none), ``"same"`` (output size ``ceil(input / stride)``) or one
            ``(low, high)`` pair per spatial dimension. Default ``"valid"``.
        input_dilation: Spacing inserted between input elements (fractional striding).
            Default ``1``.
        kernel_dilation: Spacing between kernel taps (atrous convolution). Default ``1``.
        channels: ``"last"`` (default; ``(batch, *spatial, channels)``) or ``"first"``
            (``(batch, channels, *spatial)``).
        activation: An activation applied after the layer, as a separate layer (a name
            from ``axon.activations`` or a function). Default ``None``: none.
        use_bias: Whether to add a trainable bias. Default ``True``.
        kernel_initializer: The kernel's initializer (a name from ``axon.initializers``
            or ``init(key, shape, dtype)``). Default ``"glorot_uniform"``.
        bias_initializer: The bias's initializer. Default ``"zeros"``.
        name: The layer name (``None``: ``"separable_conv2d_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the output, with ``in_channels · channel_multiplier`` channels.

    Raises:
        TypeError: ``x`` is not a graph.
        ValueError: A size, stride, padding or channels option is invalid.

    >>> import axon
    >>> m = axon.input("x", shape=(None, 6, 6, 2)).pipe(axon.separable_conv2d, 1, kernel_size=3)
    >>> sorted(axon.init(m, axon.template((1, 6, 6, 2)))["separable_conv2d_0"])
    ['bias_1', 'bias_2', 'kernel_1', 'kernel_2']
    """
    return _separable("separable_conv2d", 4, x, channel_multiplier, kernel_size, strides, padding, input_dilation,
                      kernel_dilation, channels, activation, use_bias, kernel_initializer, bias_initializer, name, meta)


def separable_conv3d(
    x: Axon,
    channel_multiplier: int,
    *,
    kernel_size: int | tuple[int, int, int] = 1,
    strides: int | tuple[int, int, int] = 1,
    padding: Padding = "valid",
    input_dilation: int | tuple[int, int, int] = 1,
    kernel_dilation: int | tuple[int, int, int] = 1,
    channels: Channels = "last",
    activation: Activation | None = None,
    use_bias: bool = True,
    kernel_initializer: Initializer = "glorot_uniform",
    bias_initializer: Initializer = "zeros",
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """A depthwise separable 3-d convolution: three depthwise convolutions, one per spatial
    axis, with ``kernel_1..3`` and ``bias_1..3``.

    Args:
        x: The input graph, ``(batch, *spatial, channels)`` (or channels first).
        channel_multiplier: The number of filters per input channel.
        kernel_size: The window size per spatial dimension (an int for all). Default ``1``.
        strides: The step per spatial dimension (an int for all). Default ``1``.
        padding: ``"valid"`` (none), ``"same"`` (output size ``ceil(input / stride)``) or one
            ``(low, high)`` pair per spatial dimension. Default ``"valid"``.
        input_dilation: Spacing inserted between input elements (fractional striding).
            Default ``1``.
        kernel_dilation: Spacing between kernel taps (atrous convolution). Default ``1``.
        channels: ``"last"`` (default; ``(batch, *spatial, channels)``) or ``"first"``
            (``(batch, channels, *spatial)``).
        activation: An activation applied after the layer, as a separate layer (a name
            from ``axon.activations`` or a function). Default ``None``: none.
        use_bias: Whether to add a trainable bias. Default ``True``.
        kernel_initializer: The kernel's initializer (a name from ``axon.initializers``
            or ``init(key, shape, dtype)``). Default ``"glorot_uniform"``.
        bias_initializer: The bias's initializer. Default ``"zeros"``.
        name: The layer name (``None``: ``"separable_conv3d_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the output, with ``in_channels · channel_multiplier`` channels.

    Raises:
        TypeError: ``x`` is not a graph.
        ValueError: A size, stride, padding or channels option is invalid.

    >>> import axon
    >>> m = axon.input("x", shape=(None, 4, 4, 4, 1)).pipe(axon.separable_conv3d, 2, kernel_size=2)
    >>> axon.init(m, axon.template((1, 4, 4, 4, 1)))["separable_conv3d_0"]["kernel_3"].shape
    (1, 1, 2, 1, 2)
    """
    return _separable("separable_conv3d", 5, x, channel_multiplier, kernel_size, strides, padding, input_dilation,
                      kernel_dilation, channels, activation, use_bias, kernel_initializer, bias_initializer, name, meta)


# functional layers (axon.layers) as ops with permanent names "axon.<name>" (see axon.registry)
register_all("op", {
    "axon.conv": layers.conv,
    "axon.conv_transpose": layers.conv_transpose,
    "axon.depthwise_conv": layers.depthwise_conv,
    "axon.separable_conv2d": layers.separable_conv2d,
    "axon.separable_conv3d": layers.separable_conv3d,
})
