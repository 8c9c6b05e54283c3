"""Private helpers for the conv, pooling and resize layers: option checks, Axon's padding
rules and ``lax`` dimension numbers.

Axon (through Nx) resolves ``padding="same"`` without looking at the strides: the
(dilated) window of size ``k`` gets ``k - 1`` elements of padding in total, ``(k - 1) // 2``
before and the rest after. With stride 1 this keeps the spatial size; with stride ``s`` the
output size is ``ceil(n / s)``.

>>> same_padding((3, 4), (1, 1))
((1, 1), (1, 2))
>>> conv_transpose_padding((3, 2), (1, 1), (2, 2), "valid")
((2, 2), (1, 1))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from axon.layers._utils import check_channels, normalize_padding, normalize_tuple
from axon.typing_aliases import Channels

__all__ = [
    "as_inexact",
    "conv_dimension_numbers",
    "conv_transpose_padding",
    "kernel_layout",
    "output_size",
    "positive_tuple",
    "resolve_padding",
    "same_padding",
]



def positive_tuple(value: Any, n: int, name: str, where: str) -> tuple[int, ...]:
    """``normalize_tuple`` that also requires every entry to be a positive int."""
    if isinstance(value, bool) or not isinstance(value, int | Sequence):
        raise ValueError(
            f"{where}: expected {name} to be an int or a sequence of {n} ints, got {value!r}"
        )
    try:
        out = normalize_tuple(value, n, name)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None
    if any(v < 1 for v in out):
        raise ValueError(f"{where}: expected {name} to be positive, got {value!r}")
    return out


def same_padding(window: Sequence[int], dilation: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Axon's (Nx's) ``"same"`` padding: ``k_eff - 1`` in total, ``(k_eff - 1) // 2`` before."""
    pads = []
    for k, d in zip(window, dilation, strict=True):
        total = (k - 1) * d
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def resolve_padding(
    padding: Any, window: Sequence[int], dilation: Sequence[int], where: str
) -> tuple[tuple[int, int], ...]:
    """``"valid"``/``"same"`` or explicit ``(lo, hi)`` pairs -> explicit pairs."""
    try:
        pad = normalize_padding(padding, len(window))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None
    if pad == "valid":
        return ((0, 0),) * len(window)
    if pad == "same":
        return same_padding(window, dilation)
    return pad


def conv_transpose_padding(
    kernel_size: Sequence[int], kernel_dilation: Sequence[int], strides: Sequence[int], padding: Any
) -> Any:
    """Padding of the input-dilated conv behind ``conv_transpose`` (``Axon.Shape``).

    ``"valid"`` gives an output of ``n * s + max(k - s, 0)``, ``"same"`` one of ``n * s``
    (``k`` the dilated kernel size); explicit padding is returned unchanged.
    """
    if not isinstance(padding, str):
        return padding
    pads = []
    for k, d, s in zip(kernel_size, kernel_dilation, strides, strict=True):
        k = (k - 1) * d + 1
        if padding.lower() == "valid":
            total = k + s - 2 + max(k - s, 0)
            lo = k - 1
        elif padding.lower() == "same":
            total = k + s - 2
            lo = k - 1 if s > k - 1 else -(-total // 2)
        else:
            return padding  # rejected by resolve_padding with a clear message
        pads.append((lo, total - lo))
    return tuple(pads)


def kernel_layout(kernel: jax.Array, channels: Channels) -> tuple[tuple[int, ...], int, int]:
    """``(spatial sizes, in, out)`` of a kernel in Axon's layout for ``channels``."""
    shape = tuple(kernel.shape)
    if channels == "last":
        return shape[:-2], shape[-2], shape[-1]
    return shape[2:], shape[1], shape[0]


def conv_dimension_numbers(ndim: int, channels: Channels) -> lax.ConvDimensionNumbers:
    """Dimension numbers for NC... / OI... (first) or N...C / ...IO (last), any rank."""
    check_channels(channels)
    spatial = tuple(range(1, ndim - 1)) if channels == "last" else tuple(range(2, ndim))
    if channels == "last":
        lhs = (0, ndim - 1, *spatial)
        rhs = (ndim - 1, ndim - 2, *range(ndim - 2))
    else:
        lhs = (0, 1, *spatial)
        rhs = (0, 1, *range(2, ndim))
    return lax.ConvDimensionNumbers(lhs_spec=lhs, rhs_spec=rhs, out_spec=lhs)


def output_size(
    n: int, window: int, stride: int, pad: tuple[int, int], in_dil: int = 1, win_dil: int = 1
) -> int:
    """Spatial output size of a windowed op (may be <= 0 for an empty result)."""
    n = (n - 1) * in_dil + 1 if n > 0 else 0
    k = (window - 1) * win_dil + 1
    return (n + pad[0] + pad[1] - k) // stride + 1


def as_inexact(x: Any) -> jax.Array:
    """``x`` as an array, integers and booleans promoted to the default float type."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return x
