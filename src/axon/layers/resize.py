"""Functional resize layer (pure JAX).

>>> import jax.numpy as jnp
>>> resize(jnp.ones((1, 4, 4, 3)), size=(2, 8), method="bilinear").shape
(1, 2, 8, 3)
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from axon.layers._conv_utils import positive_tuple
from axon.layers._utils import check_channels, check_rank, spatial_axes
from axon.typing_aliases import Channels, ResizeMethod

__all__ = ["resize"]

# Axon's method names -> jax.image.resize's.
_METHODS = {
    "nearest": "nearest",
    "bilinear": "linear",
    "bicubic": "cubic",
    "lanczos3": "lanczos3",
    "lanczos5": "lanczos5",
}


def resize(
    x: jax.Array,
    *,
    size: int | Sequence[int],
    method: ResizeMethod = "nearest",
    antialias: bool = True,
    channels: Channels = "last",
) -> jax.Array:
    """Resize the two spatial axes of a batch of images to ``size = (height, width)``.

    Methods (Axon's names): ``"nearest"`` (input index ``floor((i + 0.5) * in / out)``),
    ``"bilinear"`` (triangle kernel), ``"bicubic"`` (Keys cubic kernel, a = -0.5),
    ``"lanczos3"``, ``"lanczos5"``. Sample points are pixel centres (PyTorch's
    ``align_corners=False``); kernel weights are normalised over the pixels inside the image.
    With ``antialias=True`` (the default) the kernel is widened by ``in / out`` when
    downsampling, a low-pass filter; it has no effect when upsampling. Axes whose size does
    not change are left as they are. The output has the input's dtype (integers are
    truncated after interpolation, as ``Nx.as_type`` does).

    Kernel resampling is ``jax.image.resize``, the code Axon's own implementation was ported
    from; Axon additionally zeroes single weights below about 1.2e-4 before normalising,
    which can move results by about that much.

    Parameter shapes: ``x`` ``(batch, h, w, c)`` (``channels="last"``) or
    ``(batch, c, h, w)`` (``"first"``). Output shape: ``(batch, height, width, c)`` or
    ``(batch, c, height, width)``.

    Args:
        x: a batch of images, rank 4.
        size: the output ``(height, width)``; an int means a square.
        method: ``"nearest"`` (default), ``"bilinear"``, ``"bicubic"``, ``"lanczos3"`` or
            ``"lanczos5"``.
        antialias: low-pass filter when downsampling (default ``True``).
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        The resized images, in the input's dtype.

    Raises:
        ValueError: ``x`` is not rank 4, or an unknown ``method`` or ``channels``, or a
            ``size`` that is not one or two positive ints.

    >>> import jax.numpy as jnp
    >>> img = jnp.arange(9.0).reshape(1, 1, 3, 3)
    >>> resize(img, size=(4, 4), channels="first")[0, 0].tolist()
    [[0.0, 1.0, 1.0, 2.0], [3.0, 4.0, 4.0, 5.0], [3.0, 4.0, 4.0, 5.0], [6.0, 7.0, 7.0, 8.0]]
    >>> resize(jnp.array([[[[0.0], [1.0]]]]), size=(1, 4), method="bilinear")[0, 0, :, 0].tolist()
    [0.0, 0.25, 0.75, 1.0]
    """
    where = "resize"
    x = jnp.asarray(x)
    check_rank(x, 4, where)
    check_channels(channels, where)
    if not isinstance(method, str) or method not in _METHODS:
        accepted = ", ".join(repr(m) for m in _METHODS)
        raise ValueError(f"{where}: expected method to be one of {accepted}, got {method!r}")
    size = positive_tuple(size, 2, "size", where)
    out_shape = list(x.shape)
    for axis, s in zip(spatial_axes(4, channels), size, strict=True):
        out_shape[axis] = s
    if tuple(out_shape) == x.shape:
        return x
    y = jax.image.resize(
        x,
        tuple(out_shape),
        method=_METHODS[method],
        antialias=bool(antialias),
        precision=lax.Precision.HIGHEST,
    )
    return y.astype(x.dtype)
