"""Functional convolution layers (pure JAX): ``conv``, ``conv_transpose``, ``depthwise_conv``,
``separable_conv2d``, ``separable_conv3d``.

Layouts follow Axon. With ``channels="last"`` (the default) inputs are ``(batch, s1, ..., sN,
channels)`` and kernels ``(k1, ..., kN, in, out)``; with ``channels="first"`` inputs are
``(batch, channels, s1, ..., sN)`` and kernels ``(out, in, k1, ..., kN)``. Biases are ``()`` or
``(out,)`` and are added along the channel axis; ``bias=None`` adds nothing.

``padding`` is ``"valid"`` (none), ``"same"`` or one ``(lo, hi)`` pair per spatial axis.
``"same"`` is Axon's rule: the dilated kernel of size ``k`` gets ``k - 1`` elements of zero
padding, ``(k - 1) // 2`` before and the rest after, whatever the strides (so the output
size is ``ceil(n / stride)``).

>>> import jax.numpy as jnp
>>> conv(jnp.ones((1, 5, 5, 3)), jnp.ones((3, 3, 3, 8)), padding="same").shape
(1, 5, 5, 8)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from axon.layers._conv_utils import (
    conv_dimension_numbers,
    conv_transpose_padding,
    kernel_layout,
    output_size,
    positive_tuple,
    resolve_padding,
)
from axon.layers._utils import (
    channel_axis,
    check_channels,
    check_min_rank,
    check_rank,
    spatial_axes,
)
from axon.typing_aliases import Channels, Padding

__all__ = ["conv", "conv_transpose", "depthwise_conv", "separable_conv2d", "separable_conv3d"]

IntOrSeq = int | Sequence[int]


def _positive_int(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: expected {name} to be a positive int, got {value!r}")
    return value


def _conv(
    x: Any,
    kernel: Any,
    bias: Any,
    *,
    strides: IntOrSeq,
    padding: Padding,
    input_dilation: IntOrSeq,
    kernel_dilation: IntOrSeq,
    feature_group_size: int,
    batch_group_size: int,
    channels: Channels,
    where: str,
) -> jax.Array:
    """The one convolution behind every public function; ``where`` names it in errors."""
    check_channels(channels, where)
    x = jnp.asarray(x)
    kernel = jnp.asarray(kernel)
    check_min_rank(x, 3, where)
    if kernel.ndim != x.ndim:
        raise ValueError(
            f"{where}: expected kernel to have the input's rank {x.ndim}, got rank {kernel.ndim} "
            f"with kernel shape {tuple(kernel.shape)} for input shape {tuple(x.shape)}"
        )
    n = x.ndim - 2
    strides = positive_tuple(strides, n, "strides", where)
    input_dilation = positive_tuple(input_dilation, n, "input_dilation", where)
    kernel_dilation = positive_tuple(kernel_dilation, n, "kernel_dilation", where)
    fg = _positive_int(feature_group_size, "feature_group_size", where)
    bg = _positive_int(batch_group_size, "batch_group_size", where)

    k_spatial, k_in, k_out = kernel_layout(kernel, channels)
    c_in = x.shape[channel_axis(x.ndim, channels)]
    layout = "(k..., in/groups, out)" if channels == "last" else "(out, in/groups, k...)"
    if fg != 1 and bg != 1:
        raise ValueError(
            f"{where}: feature_group_size and batch_group_size cannot both be > 1, got {fg} and {bg}"
        )
    if c_in % fg != 0:
        raise ValueError(
            f"{where}: input channels ({c_in}, input shape {tuple(x.shape)}) must be divisible by "
            f"feature_group_size={fg}"
        )
    if k_in * fg != c_in:
        raise ValueError(
            f"{where}: kernel input channels must be input channels / feature_group_size = "
            f"{c_in} / {fg} = {c_in // fg}, got {k_in} (kernel shape {tuple(kernel.shape)}, "
            f"expected layout {layout} for channels={channels!r}, input shape {tuple(x.shape)})"
        )
    if k_out % fg != 0 or k_out % bg != 0:
        raise ValueError(
            f"{where}: kernel output channels ({k_out}, kernel shape {tuple(kernel.shape)}) must be "
            f"divisible by feature_group_size={fg} and batch_group_size={bg}"
        )
    if x.shape[0] % bg != 0:
        raise ValueError(
            f"{where}: batch size ({x.shape[0]}, input shape {tuple(x.shape)}) must be divisible by "
            f"batch_group_size={bg}"
        )

    pads = resolve_padding(padding, k_spatial, kernel_dilation, where)
    sizes = [x.shape[a] for a in spatial_axes(x.ndim, channels)]
    for i, (size, k, s, p, di, dk) in enumerate(
        zip(sizes, k_spatial, strides, pads, input_dilation, kernel_dilation, strict=True)
    ):
        if output_size(size, k, s, p, di, dk) < 1:
            raise ValueError(
                f"{where}: the (dilated) kernel of size {(k - 1) * dk + 1} does not fit spatial axis {i} "
                f"of size {size} (input dilation {di}, padding {p}); input shape {tuple(x.shape)}, "
                f"kernel shape {tuple(kernel.shape)}"
            )

    if bias is not None:
        bias = jnp.asarray(bias)
        if bias.ndim != 0 and bias.shape != (k_out,):
            raise ValueError(
                f"{where}: expected bias to have shape () or ({k_out},), got shape {tuple(bias.shape)}"
            )
    return _conv_core(
        x,
        kernel,
        bias,
        strides=strides,
        padding=pads,
        input_dilation=input_dilation,
        kernel_dilation=kernel_dilation,
        feature_group_size=fg,
        batch_group_size=bg,
        channels=channels,
    )


@functools.partial(
    jax.jit,
    static_argnames=(
        "strides",
        "padding",
        "input_dilation",
        "kernel_dilation",
        "feature_group_size",
        "batch_group_size",
        "channels",
    ),
)
def _conv_core(
    x: jax.Array,
    kernel: jax.Array,
    bias: jax.Array | None,
    *,
    strides: tuple[int, ...],
    padding: tuple[tuple[int, int], ...],
    input_dilation: tuple[int, ...],
    kernel_dilation: tuple[int, ...],
    feature_group_size: int,
    batch_group_size: int,
    channels: Channels,
) -> jax.Array:
    """Validated options -> one compiled program (conv and bias), also when called eagerly."""
    dtype = jnp.result_type(x, kernel)
    if not jnp.issubdtype(dtype, jnp.inexact):
        dtype = jnp.result_type(float)
    y = lax.conv_general_dilated(
        x.astype(dtype),
        kernel.astype(dtype),
        window_strides=strides,
        padding=padding,
        lhs_dilation=input_dilation,
        rhs_dilation=kernel_dilation,
        dimension_numbers=conv_dimension_numbers(x.ndim, channels),
        feature_group_count=feature_group_size,
        batch_group_count=batch_group_size,
    )
    if bias is None:
        return y
    if bias.ndim == 1:
        shape = [1] * y.ndim
        shape[channel_axis(y.ndim, channels)] = bias.shape[0]
        bias = bias.reshape(shape)
    return y + bias


def conv(
    x: jax.Array,
    kernel: jax.Array,
    bias: jax.Array | None = None,
    *,
    strides: IntOrSeq = 1,
    padding: Padding = "valid",
    input_dilation: IntOrSeq = 1,
    kernel_dilation: IntOrSeq = 1,
    feature_group_size: int = 1,
    batch_group_size: int = 1,
    channels: Channels = "last",
) -> jax.Array:
    """General N-d convolution (cross-correlation, as in every deep-learning library).

    Parameter shapes (``channels="last"`` / ``"first"``):

    * ``x``: ``(batch, s1, ..., sN, in)`` / ``(batch, in, s1, ..., sN)``, N >= 1
    * ``kernel``: ``(k1, ..., kN, in // feature_group_size, out)`` /
      ``(out, in // feature_group_size, k1, ..., kN)``
    * ``bias``: ``()`` or ``(out,)``, or ``None``

    Output shape: ``(batch // batch_group_size, o1, ..., oN, out)`` (or channels first), with
    ``o = (d + lo + hi - ((k - 1) * kernel_dilation + 1)) // stride + 1`` where
    ``d = (s - 1) * input_dilation + 1``.

    Options: ``strides``, ``input_dilation`` and ``kernel_dilation`` are an int or one int per
    spatial axis; ``padding`` is ``"valid"``, ``"same"`` (Axon's rule, see the module doc) or
    ``(lo, hi)`` pairs; ``feature_group_size`` splits the input channels into groups (``out``
    must divide too); ``batch_group_size`` splits the batch into groups, each convolved with its
    share of the output channels.

    Args:
        x: the input (see the shapes above), rank >= 3.
        kernel: the filters (see the shapes above), the same rank as ``x``.
        bias: ``()`` or ``(out,)``; ``None`` (default): no bias.
        strides: the window step: an int or one per spatial axis (default 1).
        padding: ``"valid"`` (default), ``"same"`` or one ``(lo, hi)`` pair per spatial axis.
        input_dilation: the input dilation: an int or one per spatial axis (default 1).
        kernel_dilation: the kernel dilation: an int or one per spatial axis (default 1).
        feature_group_size: the number of input-channel groups (default 1).
        batch_group_size: the number of batch groups (default 1).
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        The convolved array, in the input's layout.

    Raises:
        ValueError: mismatched ranks or channel counts, group sizes that do not divide, an
            unknown ``channels`` or ``padding``, or sizes that are not positive ints.

    >>> import jax.numpy as jnp
    >>> x = jnp.array([[[0.1294, -0.6638, 1.0251]], [[0.9182, 1.1512, -1.6149]]])
    >>> k = jnp.array([[[-1.5475, 1.2425]], [[0.1871, 0.5458]], [[-0.4488, 0.8879]]])
    >>> b = jnp.array([0.7791, 0.1676, 1.5971])
    >>> conv(x, k, b, channels="first").round(4).tolist()
    [[[-0.2459, 3.08], [-0.1705, 0.6029], [0.9496, 2.8052]],
     [[0.7886, -3.0089], [0.9677, -0.4984], [2.2072, -0.3534]]]
    """
    return _conv(
        x,
        kernel,
        bias,
        strides=strides,
        padding=padding,
        input_dilation=input_dilation,
        kernel_dilation=kernel_dilation,
        feature_group_size=feature_group_size,
        batch_group_size=batch_group_size,
        channels=channels,
        where="conv",
    )


def conv_transpose(
    x: jax.Array,
    kernel: jax.Array,
    bias: jax.Array | None = None,
    *,
    strides: IntOrSeq = 1,
    padding: Padding = "valid",
    kernel_dilation: IntOrSeq = 1,
    channels: Channels = "last",
) -> jax.Array:
    """Transposed ("fractionally strided") N-d convolution, with Axon's semantics.

    As in Axon, this is ``conv`` of the input dilated by ``strides`` (``strides - 1`` zeros
    between elements), stride 1, with the kernel used as given (not flipped, no in/out
    swap). ``"valid"`` and ``"same"`` padding follow ``Axon.Shape.conv_transpose_padding``
    (the Keras rule): with ``k`` the dilated kernel size and ``s`` the stride, an axis of size
    ``n`` becomes ``n * s + max(k - s, 0)`` (valid) or ``n * s`` (same). Explicit ``(lo, hi)``
    pairs pad the dilated input directly.

    It equals ``torch.nn.functional.conv_transpose{N}d`` with weight
    ``flip(kernel, spatial axes)`` laid out ``(in, out, k...)``, up to how the output is
    cropped or extended by the padding.

    Parameter shapes (``channels="last"`` / ``"first"``):

    * ``x``: ``(batch, s1, ..., sN, in)`` / ``(batch, in, s1, ..., sN)``
    * ``kernel``: ``(k1, ..., kN, in, out)`` / ``(out, in, k1, ..., kN)``
    * ``bias``: ``()`` or ``(out,)``, or ``None``

    Output shape: ``(batch, o1, ..., oN, out)`` (or channels first), as described above.

    Args:
        x: the input (see the shapes above), rank >= 3.
        kernel: the filters (see the shapes above), the same rank as ``x``.
        bias: ``()`` or ``(out,)``; ``None`` (default): no bias.
        strides: the input dilation step: an int or one per spatial axis (default 1).
        padding: ``"valid"`` (default), ``"same"`` or one ``(lo, hi)`` pair per spatial axis.
        kernel_dilation: the kernel dilation: an int or one per spatial axis (default 1).
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        The convolved array, in the input's layout.

    Raises:
        ValueError: mismatched ranks or channel counts, an unknown ``channels`` or ``padding``,
            or sizes that are not positive ints.

    >>> import jax.numpy as jnp
    >>> x = jnp.arange(9.0).reshape(1, 3, 3)
    >>> k = jnp.arange(36.0).reshape(6, 3, 2)
    >>> conv_transpose(x, k, jnp.array(1.0), channels="first").tolist()[0][:2]
    [[40.0, 79.0, 94.0, 43.0], [94.0, 205.0, 256.0, 133.0]]
    >>> conv_transpose(jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 5)), strides=2, padding="same").shape
    (1, 8, 8, 5)
    """
    where = "conv_transpose"
    check_channels(channels, where)
    x = jnp.asarray(x)
    kernel = jnp.asarray(kernel)
    check_min_rank(x, 3, where)
    if kernel.ndim != x.ndim:
        raise ValueError(
            f"{where}: expected kernel to have the input's rank {x.ndim}, got rank {kernel.ndim} "
            f"with kernel shape {tuple(kernel.shape)} for input shape {tuple(x.shape)}"
        )
    n = x.ndim - 2
    strides = positive_tuple(strides, n, "strides", where)
    kernel_dilation = positive_tuple(kernel_dilation, n, "kernel_dilation", where)
    k_spatial, _, _ = kernel_layout(kernel, channels)
    pads = conv_transpose_padding(k_spatial, kernel_dilation, strides, padding)
    return _conv(
        x,
        kernel,
        bias,
        strides=1,
        padding=pads,
        input_dilation=strides,
        kernel_dilation=kernel_dilation,
        feature_group_size=1,
        batch_group_size=1,
        channels=channels,
        where=where,
    )


def _depthwise(
    x: Any,
    kernel: Any,
    bias: Any,
    *,
    strides: IntOrSeq,
    padding: Padding,
    input_dilation: IntOrSeq,
    kernel_dilation: IntOrSeq,
    channels: Channels,
    where: str,
    what: str = "kernel",
) -> jax.Array:
    check_channels(channels, where)
    x = jnp.asarray(x)
    kernel = jnp.asarray(kernel)
    check_min_rank(x, 3, where)
    if kernel.ndim != x.ndim:
        raise ValueError(
            f"{where}: expected {what} to have the input's rank {x.ndim}, got rank {kernel.ndim} "
            f"with {what} shape {tuple(kernel.shape)} for input shape {tuple(x.shape)}"
        )
    c_in = x.shape[channel_axis(x.ndim, channels)]
    _, k_in, k_out = kernel_layout(kernel, channels)
    if k_in != 1 or k_out % c_in != 0:
        layout = "(k..., 1, in * m)" if channels == "last" else "(in * m, 1, k...)"
        raise ValueError(
            f"{where}: expected {what} of layout {layout} for channels={channels!r} with in = {c_in} "
            f"input channels and an integer channel multiplier m, got {what} shape "
            f"{tuple(kernel.shape)} for input shape {tuple(x.shape)}"
        )
    return _conv(
        x,
        kernel,
        bias,
        strides=strides,
        padding=padding,
        input_dilation=input_dilation,
        kernel_dilation=kernel_dilation,
        feature_group_size=c_in,
        batch_group_size=1,
        channels=channels,
        where=where,
    )


def depthwise_conv(
    x: jax.Array,
    kernel: jax.Array,
    bias: jax.Array | None = None,
    *,
    strides: IntOrSeq = 1,
    padding: Padding = "valid",
    input_dilation: IntOrSeq = 1,
    kernel_dilation: IntOrSeq = 1,
    channels: Channels = "last",
) -> jax.Array:
    """Depthwise N-d convolution: each input channel is convolved with its own ``m`` filters
    (``feature_group_size`` = number of input channels).

    Parameter shapes (``channels="last"`` / ``"first"``):

    * ``x``: ``(batch, s1, ..., sN, in)`` / ``(batch, in, s1, ..., sN)``
    * ``kernel``: ``(k1, ..., kN, 1, in * m)`` / ``(in * m, 1, k1, ..., kN)``
    * ``bias``: ``()`` or ``(in * m,)``, or ``None``

    Output shape: ``(batch, o1, ..., oN, in * m)`` (or channels first); output channel ``j``
    comes from input channel ``j // m``. Options as in ``conv``.

    Args:
        x: the input (see the shapes above), rank >= 3.
        kernel: the filters (see the shapes above), the same rank as ``x``.
        bias: ``()`` or ``(in * m,)``; ``None`` (default): no bias.
        strides: the window step: an int or one per spatial axis (default 1).
        padding: ``"valid"`` (default), ``"same"`` or one ``(lo, hi)`` pair per spatial axis.
        input_dilation: the input dilation: an int or one per spatial axis (default 1).
        kernel_dilation: the kernel dilation: an int or one per spatial axis (default 1).
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        The convolved array, in the input's layout, with ``in * m`` channels.

    Raises:
        ValueError: mismatched ranks, a kernel whose output channels are not a multiple of the
            input's, an unknown ``channels`` or ``padding``, or sizes that are not positive ints.

    >>> import jax.numpy as jnp
    >>> x = jnp.arange(8.0).reshape(1, 4, 2)
    >>> depthwise_conv(x, jnp.ones((2, 1, 4))).tolist()
    [[[2.0, 2.0, 4.0, 4.0], [6.0, 6.0, 8.0, 8.0], [10.0, 10.0, 12.0, 12.0]]]
    """
    return _depthwise(
        x,
        kernel,
        bias,
        strides=strides,
        padding=padding,
        input_dilation=input_dilation,
        kernel_dilation=kernel_dilation,
        channels=channels,
        where="depthwise_conv",
    )


def _separable(
    x: Any,
    kernels: Sequence[Any],
    biases: Sequence[Any],
    *,
    strides: IntOrSeq,
    padding: Padding,
    input_dilation: IntOrSeq,
    kernel_dilation: IntOrSeq,
    channels: Channels,
    where: str,
) -> jax.Array:
    check_channels(channels, where)
    x = jnp.asarray(x)
    n = len(kernels)
    check_rank(x, n + 2, where)
    strides = positive_tuple(strides, n, "strides", where)
    input_dilation = positive_tuple(input_dilation, n, "input_dilation", where)
    kernel_dilation = positive_tuple(kernel_dilation, n, "kernel_dilation", where)
    if isinstance(padding, str):
        resolve_padding(padding, (1,) * n, (1,) * n, where)  # validates the string
        pads = [padding] * n
    else:
        pairs = resolve_padding(padding, (1,) * n, (1,) * n, where)
        pads = [tuple(pairs[i] if j == i else (0, 0) for j in range(n)) for i in range(n)]

    def only(values: tuple[int, ...], i: int) -> tuple[int, ...]:
        return tuple(v if j == i else 1 for j, v in enumerate(values))

    kernels = [jnp.asarray(k) for k in kernels]
    for i, k in enumerate(kernels):
        what = f"kernel_{i + 1}"
        if k.ndim != n + 2:
            raise ValueError(
                f"{where}: expected {what} to have rank {n + 2}, got shape {tuple(k.shape)}"
            )
        k_spatial, _, _ = kernel_layout(k, channels)
        if any(size != 1 for j, size in enumerate(k_spatial) if j != i):
            raise ValueError(
                f"{where}: {what} must span spatial axis {i} only (size 1 on the other spatial "
                f"axes), got spatial kernel size {k_spatial} (kernel shape {tuple(k.shape)}, "
                f"channels={channels!r})"
            )
    y = x
    for i, (k, b) in enumerate(zip(kernels, biases, strict=True)):
        y = _depthwise(
            y,
            k,
            b,
            strides=only(strides, i),
            padding=pads[i],
            input_dilation=only(input_dilation, i),
            kernel_dilation=kernel_dilation,
            channels=channels,
            where=where,
            what=f"kernel_{i + 1}",
        )
    return y


_SEPARABLE_DOC = """
    Each spatial option applies along its own axis only: the ``i``-th convolution uses
    ``strides[i]``, ``input_dilation[i]`` and ``padding[i]`` along spatial axis ``i`` (a
    ``"same"``/``"valid"`` string applies to every convolution). Axon passes every option to
    every convolution, so there ``strides=2`` downsamples each axis by 4 and explicit padding
    or input dilation is applied repeatedly; the port does what the options promise. With
    ``strides=1``, no input dilation and ``"valid"``/``"same"`` padding the two agree.
"""


def separable_conv2d(
    x: jax.Array,
    k1: jax.Array,
    b1: jax.Array | None,
    k2: jax.Array,
    b2: jax.Array | None,
    *,
    strides: IntOrSeq = 1,
    padding: Padding = "valid",
    input_dilation: IntOrSeq = 1,
    kernel_dilation: IntOrSeq = 1,
    channels: Channels = "last",
) -> jax.Array:
    """Spatially separable 2-d depthwise convolution: a depthwise conv over the first spatial
    axis (``k1``, ``b1``), then one over the second (``k2``, ``b2``).

    Parameter shapes (``channels="last"`` / ``"first"``), ``m`` the channel multiplier:

    * ``x``: ``(batch, h, w, in)`` / ``(batch, in, h, w)``
    * ``k1``: ``(kh, 1, 1, in * m)`` / ``(in * m, 1, kh, 1)``
    * ``k2``: ``(1, kw, 1, in * m)`` / ``(in * m, 1, 1, kw)``
    * ``b1``, ``b2``: ``()`` or ``(in * m,)``, or ``None``

    Output shape: ``(batch, oh, ow, in * m)`` (or channels first).
    {doc}
    Args:
        x: a batch of images, rank 4.
        k1: the filters over the first spatial axis.
        b1: the first bias, or ``None``.
        k2: the filters over the second spatial axis.
        b2: the second bias, or ``None``.
        strides: the window step: an int or one per spatial axis (default 1).
        padding: ``"valid"`` (default), ``"same"`` or one ``(lo, hi)`` pair per spatial axis.
        input_dilation: the input dilation: an int or one per spatial axis (default 1).
        kernel_dilation: the kernel dilation: an int or one per spatial axis (default 1).
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        The convolved images, in the input's layout.

    Raises:
        ValueError: ``x`` is not rank 4, or as :func:`depthwise_conv`.

    >>> import jax.numpy as jnp
    >>> x = jnp.ones((1, 5, 5, 2))
    >>> y = separable_conv2d(x, jnp.ones((3, 1, 1, 4)), None, jnp.ones((1, 3, 1, 4)), jnp.ones(4))
    >>> y.shape, y[0, 0, 0].tolist()
    ((1, 3, 3, 4), [10.0, 10.0, 10.0, 10.0])
    """
    return _separable(
        x,
        (k1, k2),
        (b1, b2),
        strides=strides,
        padding=padding,
        input_dilation=input_dilation,
        kernel_dilation=kernel_dilation,
        channels=channels,
        where="separable_conv2d",
    )


def separable_conv3d(
    x: jax.Array,
    k1: jax.Array,
    b1: jax.Array | None,
    k2: jax.Array,
    b2: jax.Array | None,
    k3: jax.Array,
    b3: jax.Array | None,
    *,
    strides: IntOrSeq = 1,
    padding: Padding = "valid",
    input_dilation: IntOrSeq = 1,
    kernel_dilation: IntOrSeq = 1,
    channels: Channels = "last",
) -> jax.Array:
    """Spatially separable 3-d depthwise convolution: three depthwise convs, over the first,
    second and third spatial axis in turn.

    Parameter shapes (``channels="last"`` / ``"first"``), ``m`` the channel multiplier:

    * ``x``: ``(batch, d, h, w, in)`` / ``(batch, in, d, h, w)``
    * ``k1``: ``(kd, 1, 1, 1, in * m)`` / ``(in * m, 1, kd, 1, 1)``
    * ``k2``: ``(1, kh, 1, 1, in * m)`` / ``(in * m, 1, 1, kh, 1)``
    * ``k3``: ``(1, 1, kw, 1, in * m)`` / ``(in * m, 1, 1, 1, kw)``
    * ``b1``, ``b2``, ``b3``: ``()`` or ``(in * m,)``, or ``None``

    Output shape: ``(batch, od, oh, ow, in * m)`` (or channels first).
    {doc}
    Args:
        x: a batch of volumes, rank 5.
        k1: the filters over the first spatial axis.
        b1: the first bias, or ``None``.
        k2: the filters over the second spatial axis.
        b2: the second bias, or ``None``.
        k3: the filters over the third spatial axis.
        b3: the third bias, or ``None``.
        strides: the window step: an int or one per spatial axis (default 1).
        padding: ``"valid"`` (default), ``"same"`` or one ``(lo, hi)`` pair per spatial axis.
        input_dilation: the input dilation: an int or one per spatial axis (default 1).
        kernel_dilation: the kernel dilation: an int or one per spatial axis (default 1).
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        The convolved volumes, in the input's layout.

    Raises:
        ValueError: ``x`` is not rank 5, or as :func:`depthwise_conv`.

    >>> import jax.numpy as jnp
    >>> ks = [jnp.ones(s) for s in [(2, 1, 1, 1, 3), (1, 2, 1, 1, 3), (1, 1, 2, 1, 3)]]
    >>> y = separable_conv3d(jnp.ones((1, 4, 4, 4, 3)), ks[0], None, ks[1], None, ks[2], None)
    >>> y.shape, float(y[0, 0, 0, 0, 0])
    ((1, 3, 3, 3, 3), 8.0)
    """
    return _separable(
        x,
        (k1, k2, k3),
        (b1, b2, b3),
        strides=strides,
        padding=padding,
        input_dilation=input_dilation,
        kernel_dilation=kernel_dilation,
        channels=channels,
        where="separable_conv3d",
    )


for _f in (separable_conv2d, separable_conv3d):
    if _f.__doc__:  # None under python -OO
        _f.__doc__ = _f.__doc__.replace("{doc}", _SEPARABLE_DOC)
del _f
