"""Pooling layers: ``max_pool``, ``avg_pool``, ``lp_pool``, ``blur_pool``,
``adaptive_avg_pool``, ``adaptive_max_pool``, ``adaptive_lp_pool``, ``global_avg_pool``,
``global_max_pool``, ``global_lp_pool``.

>>> import axon
>>> m = axon.input("x", shape=(None, 28, 28, 8)).pipe(axon.max_pool, kernel_size=2)
>>> axon.get_output_shape(m, axon.template((1, 28, 28, 8)))
(1, 14, 14, 8)
"""

from __future__ import annotations

from typing import Any

from axon import layers
from axon.api.core import check_graph, layer
from axon.graph import Axon
from axon.layers._utils import check_channels
from axon.registry import register_all
from axon.typing_aliases import Channels, LayerName, Padding

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


def _check_norm(norm: Any, where: str) -> float:
    if isinstance(norm, bool) or not isinstance(norm, (int, float)) or norm <= 0:
        raise ValueError(f"{where}: expected norm to be a positive number, got {norm!r}")
    return norm


def _norm_options(op_name: str, extra: dict[str, Any], has_norm: bool) -> dict[str, Any]:
    """``{"norm": p}`` for the Lp pools (default 2), ``{}`` otherwise; anything else is rejected."""
    unknown = sorted(set(extra) - ({"norm"} if has_norm else set()))
    if unknown:
        raise TypeError(f"{op_name}: unknown option(s) {unknown}")
    return {"norm": _check_norm(extra.get("norm", 2), op_name)} if has_norm else {}


_NORM_DOC = """        **extra: ``norm``: the power ``p`` of the Lp norm (a positive number; default 2).
            No other option is accepted."""
_NO_EXTRA_DOC = """        **extra: No further option is accepted (an unknown one raises ``TypeError``)."""


def _window(fn, op_name: str, has_norm: bool):
    def pool(
        x: Axon,
        *,
        kernel_size: int | tuple[int, ...] = 1,
        strides: int | tuple[int, ...] | None = None,
        padding: Padding = "valid",
        dilations: int | tuple[int, ...] = 1,
        channels: Channels = "last",
        name: LayerName = None,
        meta: dict | None = None,
        **extra: Any,
    ) -> Axon:
        check_graph(x, op_name)
        check_channels(channels, op_name)
        opts = dict(kernel_size=kernel_size, strides=strides, padding=padding.lower() if isinstance(padding, str) else tuple(map(tuple, padding)),
                    window_dilations=dilations, channels=channels)
        opts.update(_norm_options(op_name, extra, has_norm))
        return layer(fn, [x], name=name, op_name=op_name, meta=meta, **opts)

    pool.__name__ = pool.__qualname__ = op_name
    pool.__module__ = __name__
    pool.__doc__ = f"""{op_name.replace('_', ' ').capitalize()} over the spatial axes (see :func:`axon.layers.{op_name}`);
    ``strides`` default to ``kernel_size``; ``dilations`` dilate the window.{' ``norm`` is the power (2).' if has_norm else ''}

    Args:
        x: The input graph, ``(batch, *spatial, channels)`` (or channels first).
        kernel_size: The window size per spatial dimension (an int for all). Default ``1``.
        strides: The step per spatial dimension. Default ``None``: ``kernel_size``.
        padding: ``"valid"`` (none), ``"same"`` (output size ``ceil(input / stride)``) or one
            ``(low, high)`` pair per spatial dimension. Default ``"valid"``.
        dilations: Spacing between window taps. Default ``1``.
        channels: ``"last"`` (default; ``(batch, *spatial, channels)``) or ``"first"``
            (``(batch, channels, *spatial)``).
        name: The layer name (``None``: ``"{op_name}_<count>"``; a string, in which ``"{{n}}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.
{_NORM_DOC if has_norm else _NO_EXTRA_DOC}

    Returns:
        The graph of the pooled input.

    Raises:
        TypeError: ``x`` is not a graph, or an unknown option was given.
        ValueError: An option is out of range.

    >>> import axon
    >>> m = axon.{op_name}(axon.input("x", shape=(None, 4, 4, 1)), kernel_size=2)
    >>> axon.get_output_shape(m, axon.template((1, 4, 4, 1)))
    (1, 2, 2, 1)
    """
    return pool


max_pool = _window(layers.max_pool, "max_pool", False)
avg_pool = _window(layers.avg_pool, "avg_pool", False)
lp_pool = _window(layers.lp_pool, "lp_pool", True)


def blur_pool(x: Axon, *, channels: Channels = "last", name: LayerName = None, meta: dict | None = None) -> Axon:
    """A fixed 3×3 binomial low-pass filter per channel (see :func:`axon.layers.blur_pool`).

    Args:
        x: The input graph, ``(batch, *spatial, channels)`` (or channels first).
        channels: ``"last"`` (default; ``(batch, *spatial, channels)``) or ``"first"``
            (``(batch, channels, *spatial)``).
        name: The layer name (``None``: ``"blur_pool_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the filtered input (the input's shape).

    >>> import axon
    >>> axon.get_output_shape(axon.blur_pool(axon.input("x")), axon.template((1, 5, 5, 2)))
    (1, 5, 5, 2)
    """
    check_graph(x, "blur_pool")
    check_channels(channels, "blur_pool")
    return layer(layers.blur_pool, [x], channels=channels, name=name, op_name="blur_pool", meta=meta)


def _adaptive(fn, op_name: str, has_norm: bool):
    def pool(
        x: Axon,
        *,
        output_size: int | tuple[int, ...] | None = None,
        channels: Channels = "last",
        name: LayerName = None,
        meta: dict | None = None,
        **extra: Any,
    ) -> Axon:
        check_graph(x, op_name)
        check_channels(channels, op_name)
        opts: dict[str, Any] = dict(output_size=output_size, channels=channels)
        opts.update(_norm_options(op_name, extra, has_norm))
        return layer(fn, [x], name=name, op_name=op_name, meta=meta, **opts)

    pool.__name__ = pool.__qualname__ = op_name
    pool.__module__ = __name__
    pool.__doc__ = f"""{op_name.replace('_', ' ').capitalize()} to ``output_size`` spatial sizes (see
    :func:`axon.layers.{op_name}`; Axon's rule: stride = in // out, window = in - (out - 1) * stride).

    Args:
        x: The input graph, ``(batch, *spatial, channels)`` (or channels first).
        output_size: The output's spatial size (an int for all dimensions). Default
            ``None``: the input's spatial size.
        channels: ``"last"`` (default; ``(batch, *spatial, channels)``) or ``"first"``
            (``(batch, channels, *spatial)``).
        name: The layer name (``None``: ``"{op_name}_<count>"``; a string, in which ``"{{n}}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.
{_NORM_DOC if has_norm else _NO_EXTRA_DOC}

    Returns:
        The graph of the pooled input, ``(batch, *output_size, channels)``.

    Raises:
        TypeError: ``x`` is not a graph, or an unknown option was given.

    >>> import axon
    >>> m = axon.{op_name}(axon.input("x"), output_size=(2, 2))
    >>> axon.get_output_shape(m, axon.template((1, 6, 6, 3)))
    (1, 2, 2, 3)
    """
    return pool


adaptive_avg_pool = _adaptive(layers.adaptive_avg_pool, "adaptive_avg_pool", False)
adaptive_max_pool = _adaptive(layers.adaptive_max_pool, "adaptive_max_pool", False)
adaptive_lp_pool = _adaptive(layers.adaptive_lp_pool, "adaptive_lp_pool", True)


def _global(fn, op_name: str, has_norm: bool):
    def pool(
        x: Axon,
        *,
        keep_axes: bool = False,
        channels: Channels = "last",
        name: LayerName = None,
        meta: dict | None = None,
        **extra: Any,
    ) -> Axon:
        check_graph(x, op_name)
        check_channels(channels, op_name)
        opts: dict[str, Any] = dict(keep_axes=bool(keep_axes), channels=channels)
        opts.update(_norm_options(op_name, extra, has_norm))
        return layer(fn, [x], name=name, op_name=op_name, meta=meta, **opts)

    pool.__name__ = pool.__qualname__ = op_name
    pool.__module__ = __name__
    pool.__doc__ = f"""{op_name.replace('_', ' ').capitalize()} over all spatial axes: ``(batch, ..., c) -> (batch, c)``
    (``keep_axes=True`` keeps them with size 1; see :func:`axon.layers.{op_name}`).

    Args:
        x: The input graph, ``(batch, *spatial, channels)`` (or channels first).
        keep_axes: Keep the spatial axes, with size 1. Default ``False``.
        channels: ``"last"`` (default; ``(batch, *spatial, channels)``) or ``"first"``
            (``(batch, channels, *spatial)``).
        name: The layer name (``None``: ``"{op_name}_<count>"``; a string, in which ``"{{n}}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.
{_NORM_DOC if has_norm else _NO_EXTRA_DOC}

    Returns:
        The graph of the pooled input, ``(batch, channels)`` (or with size-1 spatial axes).

    Raises:
        TypeError: ``x`` is not a graph, or an unknown option was given.

    >>> import axon
    >>> axon.get_output_shape(axon.{op_name}(axon.input("x")), axon.template((2, 5, 5, 3)))
    (2, 3)
    """
    return pool


global_avg_pool = _global(layers.global_avg_pool, "global_avg_pool", False)
global_max_pool = _global(layers.global_max_pool, "global_max_pool", False)
global_lp_pool = _global(layers.global_lp_pool, "global_lp_pool", True)


# functional layers (axon.layers) as ops with permanent names "axon.<name>" (see axon.registry)
register_all("op", {
    "axon.adaptive_avg_pool": layers.adaptive_avg_pool,
    "axon.adaptive_lp_pool": layers.adaptive_lp_pool,
    "axon.adaptive_max_pool": layers.adaptive_max_pool,
    "axon.avg_pool": layers.avg_pool,
    "axon.blur_pool": layers.blur_pool,
    "axon.global_avg_pool": layers.global_avg_pool,
    "axon.global_lp_pool": layers.global_lp_pool,
    "axon.global_max_pool": layers.global_max_pool,
    "axon.lp_pool": layers.lp_pool,
    "axon.max_pool": layers.max_pool,
})
