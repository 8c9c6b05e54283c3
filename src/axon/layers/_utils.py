"""Shape helpers shared by the functional layers (no graph code here).

>>> normalize_tuple(2, 3, "strides")
(2, 2, 2)
>>> spatial_axes(4, "last"), spatial_axes(4, "first")
((1, 2), (2, 3))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from axon.typing_aliases import Channels

__all__ = [
    "channel_axis",
    "check_batched",
    "check_channels",
    "check_min_rank",
    "check_rank",
    "normalize_padding",
    "normalize_tuple",
    "spatial_axes",
]


def check_channels(channels: Channels, where: str = "layer") -> str:
    """Validate a ``channels`` option (``"last"`` or ``"first"``)."""
    if channels not in ("last", "first"):
        raise ValueError(f"{where}: expected channels to be 'last' or 'first', got {channels!r}")
    return channels


def spatial_axes(rank: int, channels: Channels = "last") -> tuple[int, ...]:
    """Axes of the spatial dimensions of a rank-``rank`` input (batch first)."""
    check_channels(channels)
    return tuple(range(1, rank - 1)) if channels == "last" else tuple(range(2, rank))


def channel_axis(rank: int, channels: Channels = "last") -> int:
    """Axis of the feature channels of a rank-``rank`` input."""
    check_channels(channels)
    return rank - 1 if channels == "last" else 1


def normalize_tuple(value: int | Sequence[int], n: int, name: str) -> tuple[int, ...]:
    """Expand an int to an ``n``-tuple, or check a sequence has length ``n``."""
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"expected {name} to be an int or a sequence of {n} ints, got {value!r}")
    return value


def normalize_padding(padding: Any, n: int) -> str | tuple[tuple[int, int], ...]:
    """``"valid"``/``"same"`` (also ``"VALID"``/``"SAME"``) or ``n`` ``(lo, hi)`` pairs."""
    if isinstance(padding, str):
        p = padding.lower()
        if p not in ("valid", "same"):
            raise ValueError(f"expected padding to be 'valid', 'same' or a list of (lo, hi), got {padding!r}")
        return p
    pads = tuple((int(lo), int(hi)) for lo, hi in padding)
    if len(pads) != n:
        raise ValueError(f"expected {n} (lo, hi) padding pairs, one per spatial dimension, got {padding!r}")
    return pads


def check_rank(x: Any, rank: int, where: str, what: str = "input") -> None:
    """Raise a clear error unless ``x.ndim == rank``."""
    if x.ndim != rank:
        raise ValueError(f"{where}: expected {what} to have rank {rank}, got rank {x.ndim} with shape {tuple(x.shape)}")


def check_min_rank(x: Any, rank: int, where: str, what: str = "input") -> None:
    """Raise a clear error unless ``x.ndim >= rank``."""
    if x.ndim < rank:
        raise ValueError(
            f"{where}: expected {what} to have rank at least {rank}, got rank {x.ndim} with shape {tuple(x.shape)}"
        )


def check_batched(x: Any, where: str) -> None:
    """Raise a clear error unless ``x`` has a batch axis and a feature axis (rank >= 2), as
    Axon's ``dense`` and ``flatten`` require.

    >>> import jax.numpy as jnp
    >>> check_batched(jnp.ones(3), "dense")
    Traceback (most recent call last):
    ...
    ValueError: dense: expected an input of rank >= 2 (batch, features), got shape (3,)
    """
    if x.ndim < 2:
        raise ValueError(f"{where}: expected an input of rank >= 2 (batch, features), got shape {tuple(x.shape)}")
