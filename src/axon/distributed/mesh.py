"""Device meshes with named axes.

>>> m = mesh({"data": -1})
>>> m.axis_names, m.devices.size == len(jax.devices())
(('data',), True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh

from axon.distributed.runtime import DistributedError

__all__ = ["mesh"]


def mesh(axes: Mapping[str, int], devices: Sequence[Any] | None = None) -> Mesh:
    """A :class:`jax.sharding.Mesh` over ``devices`` (default: every device of every process).

    Axes are given in order, ``{name: size}``; one size may be ``-1`` and takes the devices
    the others leave. Axes are ``AxisType.Auto`` (``jax.make_mesh`` defaults to Explicit
    axes in recent jax, which rules out sharding parameters by annotation).

    Args:
        axes: the mesh's axis names and sizes, in order, e.g. ``{"data": -1}`` or
            ``{"data": 2, "model": 4}``.
        devices: the devices to lay out (default ``jax.devices()``).

    Returns:
        A ``jax.sharding.Mesh`` whose device count is the product of the sizes.

    Raises:
        DistributedError: an empty mapping, a size that is not a positive int or -1, more
            than one -1, or sizes whose product does not match the device count.

    >>> mesh({"data": 1, "model": -1}).shape["data"]
    1
    """
    if not isinstance(axes, Mapping) or not axes:
        raise DistributedError(f"mesh: expected a non-empty dict of axis name -> size, got {axes!r}")
    devices = list(jax.devices() if devices is None else devices)
    names = tuple(axes)
    sizes = list(axes.values())
    for name, size in axes.items():
        if not isinstance(name, str) or not name:
            raise DistributedError(f"mesh: axis names must be non-empty strings, got {name!r}")
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or (size < 1 and size != -1):
            raise DistributedError(f"mesh: axis {name!r} must have a positive size or -1, got {size!r}")
    free = [i for i, s in enumerate(sizes) if s == -1]
    if len(free) > 1:
        raise DistributedError(f"mesh: at most one axis may be -1, got {dict(axes)}")
    known = math.prod(s for s in sizes if s != -1)
    if free:
        if len(devices) % known:
            raise DistributedError(
                f"mesh: {len(devices)} devices do not divide into axes {dict(axes)} (the fixed axes need a multiple of {known})"
            )
        sizes[free[0]] = len(devices) // known
    if math.prod(sizes) != len(devices):
        raise DistributedError(
            f"mesh: axes {dict(zip(names, sizes))} need {math.prod(sizes)} devices, but {len(devices)} are available"
        )
    return jax.make_mesh(tuple(int(s) for s in sizes), names, axis_types=(AxisType.Auto,) * len(names), devices=devices)
