"""Functional pooling layers (pure JAX): windowed (``max_pool``, ``avg_pool``, ``lp_pool``),
``blur_pool``, adaptive and global pooling.

Windows span the spatial axes only: inputs are ``(batch, s1, ..., sN, channels)`` with
``channels="last"`` (the default) or ``(batch, channels, s1, ..., sN)`` with
``channels="first"``, N >= 1. ``padding`` is ``"valid"``, ``"same"`` (Axon's rule: a dilated
window of size ``k`` gets ``k - 1`` elements of padding, ``(k - 1) // 2`` before, whatever the
strides) or one ``(lo, hi)`` pair per spatial axis.

>>> import jax.numpy as jnp
>>> max_pool(jnp.ones((1, 8, 8, 3)), kernel_size=2).shape
(1, 4, 4, 3)
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from axon.layers._conv_utils import as_inexact, output_size, positive_tuple, resolve_padding
from axon.layers._utils import (
    channel_axis,
    check_channels,
    check_min_rank,
    check_rank,
    spatial_axes,
)
from axon.layers.conv import _conv
from axon.typing_aliases import Channels, Padding

__all__ = [
    "adaptive_avg_pool",
    "adaptive_lp_pool",
    "adaptive_max_pool",
    "avg_pool",
    "blur_pool",
    "global_avg_pool",
    "global_lp_pool",
    "global_max_pool",
    "lp_pool",
    "max_pool",
]

IntOrSeq = int | Sequence[int]

_Window = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[tuple[int, int], ...]]


def _full(values: Sequence[Any], fill: Any, ndim: int, channels: Channels) -> tuple[Any, ...]:
    """Spread per-spatial-axis values over all axes, ``fill`` on batch and channel axes."""
    out = [fill] * ndim
    for axis, v in zip(spatial_axes(ndim, channels), values, strict=True):
        out[axis] = v
    return tuple(out)


def _window(
    x: jax.Array,
    kernel_size: IntOrSeq,
    strides: IntOrSeq | None,
    padding: Padding,
    window_dilations: IntOrSeq,
    channels: Channels,
    where: str,
) -> _Window:
    """Full-rank window dims, strides, dilations and padding for ``lax.reduce_window``."""
    check_channels(channels, where)
    check_min_rank(x, 3, where)
    n = x.ndim - 2
    ks = positive_tuple(kernel_size, n, "kernel_size", where)
    st = ks if strides is None else positive_tuple(strides, n, "strides", where)
    wd = positive_tuple(window_dilations, n, "window_dilations", where)
    pads = resolve_padding(padding, ks, wd, where)
    sizes = [x.shape[a] for a in spatial_axes(x.ndim, channels)]
    for i, (size, k, s, p, d) in enumerate(zip(sizes, ks, st, pads, wd, strict=True)):
        if output_size(size, k, s, p, 1, d) < 1:
            raise ValueError(
                f"{where}: the (dilated) window of size {(k - 1) * d + 1} does not fit spatial axis "
                f"{i} of size {size} with padding {p}; input shape {tuple(x.shape)}, "
                f"kernel_size {ks}, channels={channels!r}"
            )
    return (
        _full(ks, 1, x.ndim, channels),
        _full(st, 1, x.ndim, channels),
        _full(wd, 1, x.ndim, channels),
        _full(pads, (0, 0), x.ndim, channels),
    )


@functools.partial(jax.jit, static_argnames=("kind", "window", "norm"))
def _pool(x: jax.Array, *, kind: str, window: _Window, norm: int | float = 1) -> jax.Array:
    """One compiled program per pooling configuration (also when called eagerly)."""
    dims, strides, dilations, pads = window

    def reduce(x: jax.Array, init: Any, op: Callable) -> jax.Array:
        # A NumPy scalar init stays concrete under tracing, so lax picks the differentiable
        # reduce_window_sum / reduce_window_max primitives.
        return lax.reduce_window(
            x, np.array(init, x.dtype), op, dims, strides, pads, window_dilation=dilations
        )

    if kind == "max":
        if _tiles(x, window):
            return _tiled_max(x, dims)
        return reduce(x, _lowest(x.dtype), lax.max)
    if kind == "avg":
        return reduce(x, 0, lax.add) / np.prod(dims)
    return _lp_finish(reduce(x**norm, 0, lax.add), norm)


_TILED_MAX_ENTRIES = 16


def _tiles(x: jax.Array, window: _Window) -> bool:
    """Whether the windows tile the input (floating, unpadded, undilated, stride = window) and
    are small enough for :func:`_tiled_max`, which unrolls one select per window entry."""
    dims, strides, dilations, pads = window
    return (
        jnp.issubdtype(x.dtype, jnp.floating)
        and int(np.prod(dims)) <= _TILED_MAX_ENTRIES
        and dims == strides
        and all(d == 1 for d in dilations)
        and all(p == (0, 0) for p in pads)
    )


def _tiled_windows(x: jax.Array, dims: tuple[int, ...]) -> tuple[jax.Array, tuple[int, ...]]:
    """``x`` cut to whole windows and reshaped so that each window axis follows its axis."""
    outs = [n // d for n, d in zip(x.shape, dims, strict=True)]
    x = x[tuple(slice(0, n * d) for n, d in zip(outs, dims, strict=True))]
    x = x.reshape([size for n, d in zip(outs, dims, strict=True) for size in (n, d)])
    return x, tuple(2 * a + 1 for a in range(len(dims)))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _tiled_max(x: jax.Array, dims: tuple[int, ...]) -> jax.Array:
    """``reduce_window`` max over non-overlapping windows, from the window's entries picked
    by strided reshapes (no ``select_and_scatter``).

    The value is the windows' maximum (one reduction: what an inference program runs); its
    derivatives are those of :func:`_tiled_max_selected`, which builds the same value by
    selecting each window's first maximal entry, so that autodiff sends the gradient where
    ``select_and_scatter`` does (issue 17: the selection chain cost batch-1 inference ~10%
    of the CNN's forward pass, for nothing when nothing is differentiated).
    """
    windows, window_axes = _tiled_windows(x, dims)
    return windows.max(axis=window_axes)


@_tiled_max.defjvp
def _tiled_max_jvp(dims: tuple[int, ...], primals: tuple, tangents: tuple) -> tuple:
    return jax.jvp(lambda x: _tiled_max_selected(x, dims), primals, tangents)


def _tiled_max_selected(x: jax.Array, dims: tuple[int, ...]) -> jax.Array:
    """The windows' maximum as the selection of each window's first maximal entry.

    Same values as ``reduce_window``, and the same gradient: all of it to the first maximum
    of each window in row-major window order, as XLA's ``select_and_scatter`` gives it (the
    output selects that entry; autodiff, forward or reverse, sees only it). The point is
    speed: XLA:CPU runs ``select_and_scatter`` (the usual max-pool gradient) about 10x slower
    (12 ms for the benchmark CNN's 2x2 pool at batch 32, 16% of its training step). Only a
    window with a NaN differs: its output is NaN as before, its gradient zero.
    """
    x, window_axes = _tiled_windows(x, dims)
    largest = lax.stop_gradient(x.max(axis=window_axes))
    entries = [
        x[tuple(i for o in offset for i in (slice(None), o))]
        for offset in itertools.product(*(range(d) for d in dims))
    ]
    firsts, seen = [], jnp.zeros(largest.shape, bool)
    for entry in entries:
        is_max = lax.stop_gradient(entry) == largest
        firsts.append(is_max & ~seen)
        seen = seen | is_max
    out = largest  # only where no entry equals the maximum: a NaN in the window
    for first, entry in zip(reversed(firsts), reversed(entries), strict=True):
        out = jnp.where(first, entry, out)
    return out


def _lowest(dtype: Any) -> Any:
    if jnp.issubdtype(dtype, jnp.inexact):
        return -np.inf
    if jnp.issubdtype(dtype, jnp.bool_):
        return False
    return jnp.iinfo(dtype).min


def _check_norm(norm: Any, where: str) -> int | float:
    if isinstance(norm, bool) or not isinstance(norm, int | float) or norm == 0:
        raise ValueError(f"{where}: expected norm to be a non-zero number, got {norm!r}")
    return norm


def _lp_finish(summed: jax.Array, norm: int | float) -> jax.Array:
    return summed ** (1.0 / norm)


def max_pool(
    x: jax.Array,
    *,
    kernel_size: IntOrSeq,
    strides: IntOrSeq | None = None,
    padding: Padding = "valid",
    window_dilations: IntOrSeq = 1,
    channels: Channels = "last",
) -> jax.Array:
    """Maximum over each window of the spatial axes (padding counts as ``-inf``).

    Parameter shapes: ``x`` ``(batch, s1, ..., sN, c)`` (``channels="last"``) or
    ``(batch, c, s1, ..., sN)`` (``"first"``).

    Output shape: same layout with ``o = (s + lo + hi - ((k - 1) * dilation + 1)) // stride + 1``.

    Options: ``kernel_size`` (required), ``strides`` (default: ``kernel_size``), ``padding``,
    ``window_dilations``, each an int or one value per spatial axis.

    Args:
        x: the input, rank >= 3 (batch, spatial axes and channels).
        kernel_size: the window size: an int or one per spatial axis.
        strides: the window step: an int or one per spatial axis; ``None`` (default):
            ``kernel_size``.
        padding: ``"valid"`` (default), ``"same"`` or one ``(lo, hi)`` pair per spatial axis.
        window_dilations: the window dilation: an int or one per spatial axis (default 1).
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        The pooled array, in the input's layout.

    Raises:
        ValueError: rank below 3, an unknown ``channels`` or ``padding``, or sizes that are not
            positive ints (one per spatial axis).

    >>> import jax.numpy as jnp
    >>> t = jnp.array([[[0.0515, -0.7043, -0.3290], [-0.3713, 1.6192, -0.1183],
    ...                 [0.7100, 0.7283, -0.1864]]])
    >>> max_pool(t, kernel_size=2, channels="first").round(4).tolist()
    [[[0.0515], [1.6192], [0.7283]]]
    """
    x = jnp.asarray(x)
    window = _window(x, kernel_size, strides, padding, window_dilations, channels, "max_pool")
    return _pool(x, kind="max", window=window)


def avg_pool(
    x: jax.Array,
    *,
    kernel_size: IntOrSeq,
    strides: IntOrSeq | None = None,
    padding: Padding = "valid",
    window_dilations: IntOrSeq = 1,
    channels: Channels = "last",
) -> jax.Array:
    """Mean over each window of the spatial axes.

    As in Axon (``Nx.window_mean``), every window sum is divided by the window size
    ``prod(kernel_size)``, padded zeros included (PyTorch's ``count_include_pad=True``).

    Shapes and options as in ``max_pool``; integer inputs give float outputs.

    Args:
        x: the input, rank >= 3 (batch, spatial axes and channels).
        kernel_size: the window size: an int or one per spatial axis.
        strides: the window step: an int or one per spatial axis; ``None`` (default):
            ``kernel_size``.
        padding: ``"valid"`` (default), ``"same"`` or one ``(lo, hi)`` pair per spatial axis.
        window_dilations: the window dilation: an int or one per spatial axis (default 1).
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        The pooled array, in the input's layout (floating point).

    Raises:
        ValueError: rank below 3, an unknown ``channels`` or ``padding``, or sizes that are not
            positive ints (one per spatial axis).

    >>> import jax.numpy as jnp
    >>> avg_pool(jnp.arange(4.0).reshape(1, 4, 1), kernel_size=2).tolist()
    [[[0.5], [2.5]]]
    >>> avg_pool(jnp.ones((1, 3, 1)), kernel_size=2, strides=1, padding="same").tolist()
    [[[1.0], [1.0], [0.5]]]
    """
    x = as_inexact(x)
    window = _window(x, kernel_size, strides, padding, window_dilations, channels, "avg_pool")
    return _pool(x, kind="avg", window=window)


def lp_pool(
    x: jax.Array,
    *,
    kernel_size: IntOrSeq,
    strides: IntOrSeq | None = None,
    padding: Padding = "valid",
    window_dilations: IntOrSeq = 1,
    norm: int | float = 2,
    channels: Channels = "last",
) -> jax.Array:
    """Power-average pooling: ``(sum over the window of x ** norm) ** (1 / norm)``.

    As in Axon there is no absolute value: with an odd or fractional ``norm``, negative values
    can give NaN. Shapes and options as in ``max_pool``, plus ``norm`` (default 2).

    Args:
        x: the input, rank >= 3 (batch, spatial axes and channels).
        kernel_size: the window size: an int or one per spatial axis.
        strides: the window step: an int or one per spatial axis; ``None`` (default):
            ``kernel_size``.
        padding: ``"valid"`` (default), ``"same"`` or one ``(lo, hi)`` pair per spatial axis.
        window_dilations: the window dilation: an int or one per spatial axis (default 1).
        norm: the power, a non-zero number (default 2).
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        The pooled array, in the input's layout (floating point).

    Raises:
        ValueError: a zero or non-numeric ``norm``, rank below 3, an unknown ``channels`` or
            ``padding``, or sizes that are not positive ints.

    >>> import jax.numpy as jnp
    >>> t = jnp.array([[[0.9450, 0.4684, 1.8146], [1.2663, 0.4354, -0.0781],
    ...                 [-0.4759, 0.3251, 0.8742]]])
    >>> lp_pool(t, kernel_size=2, norm=2, channels="first").round(4).tolist()
    [[[1.0547], [1.3391], [0.5763]]]
    """
    where = "lp_pool"
    norm = _check_norm(norm, where)
    x = as_inexact(x)
    window = _window(x, kernel_size, strides, padding, window_dilations, channels, where)
    return _pool(x, kind="lp", window=window, norm=norm)


_BINOMIAL_3X3 = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0


def blur_pool(x: jax.Array, *, channels: Channels = "last") -> jax.Array:
    """2-d blur pooling: a fixed 3×3 binomial low-pass filter (``[1, 2, 1] ⊗ [1, 2, 1] / 16``)
    applied to every channel separately, ``"same"`` zero padding, stride 1 (as in Axon, it
    never downsamples).

    Parameter shapes: ``x`` ``(batch, h, w, c)`` (``channels="last"``) or
    ``(batch, c, h, w)`` (``"first"``). Output shape: the input's.

    Args:
        x: a batch of images, rank 4.
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        The blurred images, shaped like ``x``.

    Raises:
        ValueError: ``x`` is not rank 4, or an unknown ``channels``.

    >>> import jax.numpy as jnp
    >>> blur_pool(jnp.ones((1, 3, 3, 1)))[0, :, :, 0].tolist()
    [[0.5625, 0.75, 0.5625], [0.75, 1.0, 0.75], [0.5625, 0.75, 0.5625]]
    """
    where = "blur_pool"
    check_channels(channels, where)
    x = as_inexact(x)
    check_rank(x, 4, where)
    c = x.shape[channel_axis(4, channels)]
    f = np.broadcast_to(_BINOMIAL_3X3, (c, 1, 3, 3))
    if channels == "last":
        f = f.transpose(2, 3, 1, 0)
    return _conv(
        x,
        jnp.asarray(f, x.dtype),
        None,
        strides=1,
        padding=((1, 1), (1, 1)),
        input_dilation=1,
        kernel_dilation=1,
        feature_group_size=c,
        batch_group_size=1,
        channels=channels,
        where=where,
    )


def _adaptive_window(
    x: jax.Array, output_size: IntOrSeq | None, channels: Channels, where: str
) -> _Window:
    check_channels(channels, where)
    check_min_rank(x, 3, where)
    n = x.ndim - 2
    sizes = tuple(x.shape[a] for a in spatial_axes(x.ndim, channels))
    out = sizes if output_size is None else positive_tuple(output_size, n, "output_size", where)
    if any(o > s for o, s in zip(out, sizes, strict=True)):
        raise ValueError(
            f"{where}: output_size {out} must not exceed the input's spatial size {sizes} "
            f"(input shape {tuple(x.shape)}, channels={channels!r})"
        )
    strides = tuple(s // o for s, o in zip(sizes, out, strict=True))
    dims = tuple(s - (o - 1) * st for s, o, st in zip(sizes, out, strides, strict=True))
    return (
        _full(dims, 1, x.ndim, channels),
        _full(strides, 1, x.ndim, channels),
        (1,) * x.ndim,
        ((0, 0),) * x.ndim,
    )


_ADAPTIVE_DOC = """
    The window and stride follow Axon's rule: per spatial axis of size ``s`` and output size
    ``o``, ``stride = s // o`` and ``window = s - (o - 1) * stride``. This equals PyTorch's
    adaptive pooling whenever ``s`` is a multiple of ``o``; otherwise the windows overlap
    differently (windows of PyTorch start at ``floor(i * s / o)``).

    Parameter shapes: ``x`` ``(batch, s1, ..., sN, c)`` (``channels="last"``) or
    ``(batch, c, s1, ..., sN)`` (``"first"``). Output shape: the same with spatial sizes
    ``output_size`` (an int, one int per spatial axis, or ``None`` for the input's sizes;
    each at most the input size).
"""


def adaptive_avg_pool(
    x: jax.Array, *, output_size: IntOrSeq | None = None, channels: Channels = "last"
) -> jax.Array:
    """Average pooling with the window and stride chosen to give ``output_size``.
    {doc}
    Args:
        x: the input, rank >= 3.
        output_size: the output spatial sizes (see above); ``None`` (default): the input's.
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        The pooled array, in the input's layout.

    Raises:
        ValueError: rank below 3, an unknown ``channels``, or an ``output_size`` that is not
            positive or exceeds the input size.

    >>> import jax.numpy as jnp
    >>> adaptive_avg_pool(jnp.arange(6.0).reshape(1, 6, 1), output_size=3)[0, :, 0].tolist()
    [0.5, 2.5, 4.5]
    """
    x = as_inexact(x)
    window = _adaptive_window(x, output_size, channels, "adaptive_avg_pool")
    return _pool(x, kind="avg", window=window)


def adaptive_max_pool(
    x: jax.Array, *, output_size: IntOrSeq | None = None, channels: Channels = "last"
) -> jax.Array:
    """Max pooling with the window and stride chosen to give ``output_size``.
    {doc}
    Args:
        x: the input, rank >= 3.
        output_size: the output spatial sizes (see above); ``None`` (default): the input's.
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        The pooled array, in the input's layout.

    Raises:
        ValueError: rank below 3, an unknown ``channels``, or an ``output_size`` that is not
            positive or exceeds the input size.

    >>> import jax.numpy as jnp
    >>> adaptive_max_pool(jnp.arange(5.0).reshape(1, 5, 1), output_size=2)[0, :, 0].tolist()
    [2.0, 4.0]
    """
    x = jnp.asarray(x)
    window = _adaptive_window(x, output_size, channels, "adaptive_max_pool")
    return _pool(x, kind="max", window=window)


def adaptive_lp_pool(
    x: jax.Array,
    *,
    output_size: IntOrSeq | None = None,
    norm: int | float = 2,
    channels: Channels = "last",
) -> jax.Array:
    """Power-average pooling (``(sum x ** norm) ** (1 / norm)``, no absolute value, as in
    ``lp_pool``) with the window and stride chosen to give ``output_size``.
    {doc}
    Args:
        x: the input, rank >= 3.
        output_size: the output spatial sizes (see above); ``None`` (default): the input's.
        norm: the power, a non-zero number (default 2).
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        The pooled array, in the input's layout.

    Raises:
        ValueError: a zero ``norm``, rank below 3, an unknown ``channels``, or an
            ``output_size`` that is not positive or exceeds the input size.

    >>> import jax.numpy as jnp
    >>> x = jnp.array([3.0, 4.0, 6.0, 8.0]).reshape(1, 4, 1)
    >>> adaptive_lp_pool(x, output_size=2)[0, :, 0].tolist()
    [5.0, 10.0]
    """
    where = "adaptive_lp_pool"
    norm = _check_norm(norm, where)
    x = as_inexact(x)
    window = _adaptive_window(x, output_size, channels, where)
    return _pool(x, kind="lp", window=window, norm=norm)


for _f in (adaptive_avg_pool, adaptive_max_pool, adaptive_lp_pool):
    if _f.__doc__:  # None under python -OO
        _f.__doc__ = _f.__doc__.replace("{doc}", _ADAPTIVE_DOC)
del _f


def _global_axes(x: jax.Array, channels: Channels, where: str) -> tuple[int, ...]:
    check_channels(channels, where)
    check_min_rank(x, 3, where)
    return spatial_axes(x.ndim, channels)


@functools.partial(jax.jit, static_argnames=("kind", "axes", "keep_axes", "norm"))
def _global(
    x: jax.Array, *, kind: str, axes: tuple[int, ...], keep_axes: bool, norm: int | float = 1
) -> jax.Array:
    if kind == "avg":
        return jnp.mean(x, axis=axes, keepdims=keep_axes)
    if kind == "max":
        return jnp.max(x, axis=axes, keepdims=keep_axes)
    return _lp_finish(jnp.sum(x**norm, axis=axes, keepdims=keep_axes), norm)


def global_avg_pool(x: jax.Array, *, keep_axes: bool = False, channels: Channels = "last") -> jax.Array:
    """Mean over all spatial axes.

    Parameter shapes: ``x`` ``(batch, s1, ..., sN, c)`` (``channels="last"``) or
    ``(batch, c, s1, ..., sN)`` (``"first"``). Output shape: ``(batch, c)``, or the input's
    layout with every spatial size 1 when ``keep_axes=True``.

    Args:
        x: the input, rank >= 3.
        keep_axes: keep the spatial axes with size 1 (default ``False``: drop them).
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        ``(batch, c)``, or the input's layout with spatial sizes 1.

    Raises:
        ValueError: rank below 3 or an unknown ``channels``.

    >>> import jax.numpy as jnp
    >>> global_avg_pool(jnp.arange(18.0).reshape(3, 2, 3), channels="first").tolist()
    [[1.0, 4.0], [7.0, 10.0], [13.0, 16.0]]
    >>> global_avg_pool(jnp.ones((2, 4, 4, 3)), keep_axes=True).shape
    (2, 1, 1, 3)
    """
    x = as_inexact(x)
    axes = _global_axes(x, channels, "global_avg_pool")
    return _global(x, kind="avg", axes=axes, keep_axes=bool(keep_axes))


def global_max_pool(x: jax.Array, *, keep_axes: bool = False, channels: Channels = "last") -> jax.Array:
    """Maximum over all spatial axes. Shapes as in ``global_avg_pool``.

    Args:
        x: the input, rank >= 3.
        keep_axes: keep the spatial axes with size 1 (default ``False``: drop them).
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        ``(batch, c)``, or the input's layout with spatial sizes 1.

    Raises:
        ValueError: rank below 3 or an unknown ``channels``.

    >>> import jax.numpy as jnp
    >>> global_max_pool(jnp.arange(18.0).reshape(3, 2, 3), channels="first").tolist()
    [[2.0, 5.0], [8.0, 11.0], [14.0, 17.0]]
    """
    x = jnp.asarray(x)
    axes = _global_axes(x, channels, "global_max_pool")
    return _global(x, kind="max", axes=axes, keep_axes=bool(keep_axes))


def global_lp_pool(
    x: jax.Array, *, keep_axes: bool = False, norm: int | float = 2, channels: Channels = "last"
) -> jax.Array:
    """``(sum of x ** norm over all spatial axes) ** (1 / norm)`` (no absolute value, as in
    Axon). Shapes as in ``global_avg_pool``.

    Args:
        x: the input, rank >= 3.
        keep_axes: keep the spatial axes with size 1 (default ``False``: drop them).
        norm: the power, a non-zero number (default 2).
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        ``(batch, c)``, or the input's layout with spatial sizes 1.

    Raises:
        ValueError: a zero ``norm``, rank below 3 or an unknown ``channels``.

    >>> import jax.numpy as jnp
    >>> global_lp_pool(jnp.arange(18.0).reshape(3, 2, 3), norm=1, channels="first").tolist()
    [[3.0, 12.0], [21.0, 30.0], [39.0, 48.0]]
    """
    where = "global_lp_pool"
    norm = _check_norm(norm, where)
    x = as_inexact(x)
    axes = _global_axes(x, channels, where)
    return _global(x, kind="lp", axes=axes, keep_axes=bool(keep_axes), norm=norm)
