"""The ``resize`` layer: resample the two spatial axes of a batch of images.

>>> import axon
>>> model = axon.input("img", shape=(None, 8, 8, 3)).pipe(axon.resize, (16, 4), method="bilinear")
>>> axon.get_output_shape(model, axon.template((2, 8, 8, 3)))
(2, 16, 4, 3)
"""

from __future__ import annotations

from typing import Any

from axon import layers
from axon.api.core import check_graph, check_name, layer
from axon.graph import Axon
from axon.layers._utils import check_channels
from axon.registry import register_all
from axon.typing_aliases import Channels, LayerName, ResizeMethod

__all__ = ["resize"]

METHODS = ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5")


def _check_size(size: Any) -> tuple[int, int]:
    if isinstance(size, bool):
        raise ValueError(f"resize: expected size to be a positive int or a pair (height, width) of them, got {size!r}")
    if isinstance(size, int):
        size = (size, size)
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)
    ):
        raise ValueError(f"resize: expected size to be a positive int or a pair (height, width) of them, got {size!r}")
    return (int(size[0]), int(size[1]))


def resize(
    x: Axon,
    size: int | tuple[int, int],
    *,
    method: ResizeMethod = "nearest",
    antialias: bool = True,
    channels: Channels = "last",
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """Resize the two spatial axes of a rank-4 input to ``size = (height, width)`` (an int
    means a square) with :func:`axon.layers.resize`.

    ``method``: ``"nearest"`` (default), ``"bilinear"``, ``"bicubic"``, ``"lanczos3"`` or
    ``"lanczos5"``; ``antialias=True`` widens the kernel when downsampling. Input
    ``(batch, h, w, c)`` (``channels="last"``) or ``(batch, c, h, w)`` (``"first"``); output
    ``(batch, height, width, c)`` or ``(batch, c, height, width)``. No parameters.

    Args:
        x: The input graph, rank 4.
        size: The output ``(height, width)``, or an int for a square.
        method: The interpolation: ``"nearest"`` (default), ``"bilinear"``, ``"bicubic"``,
            ``"lanczos3"`` or ``"lanczos5"``.
        antialias: Widen the kernel when downsampling. Default ``True``.
        channels: ``"last"`` (default; ``(batch, *spatial, channels)``) or ``"first"``
            (``(batch, channels, *spatial)``).
        name: The layer name (``None``: ``"resize_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the resized input.

    Raises:
        TypeError: ``x`` is not a graph.
        ValueError: ``size`` or ``method`` is invalid.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 1, 2, 1)).pipe(axon.resize, (1, 4), method="bilinear")
    >>> axon.predict(model, {}, jnp.array([[[[0.0], [1.0]]]]))[0, 0, :, 0].tolist()
    [0.0, 0.25, 0.75, 1.0]
    """
    check_graph(x, "resize")
    check_name(name, "resize")
    size = _check_size(size)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"resize: expected method to be one of {list(METHODS)}, got {method!r}")
    if not isinstance(antialias, bool):
        raise TypeError(f"resize: expected antialias to be a bool, got {antialias!r}")
    check_channels(channels, "resize")
    return layer(
        layers.resize, [x], size=size, method=method, antialias=antialias, channels=channels,
        name=name, op_name="resize", meta=meta,
    )


# functional layers (axon.layers) as ops with permanent names "axon.<name>" (see axon.registry)
register_all("op", {
    "axon.resize": layers.resize,
})
