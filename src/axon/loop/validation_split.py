"""Keras's ``validation_split`` for ``Loop.run``: the last fraction of the ``(inputs,
targets)`` arrays is held out (before any shuffling, as Keras does) and evaluated at the end
of every epoch as ``validation_<metric>``, before any other epoch handler, so loggers,
plots, early stopping and checkpoints see it.

>>> import numpy as np
>>> (train, val) = split_arrays((np.arange(10), np.arange(10)), 0.2)
>>> train[0].tolist(), val[0].tolist()
([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from axon.loop.config import TrainerConfig
from axon.loop.data import _leading

__all__ = ["RowRange", "split_arrays", "with_validation_split"]


def _check_fraction(fraction: Any) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"run: expected validation_split to be a fraction in (0, 1), got {fraction!r}")
    return float(fraction)


def split_arrays(data: Any, fraction: float) -> tuple[Any, Any]:
    """``(train, validation)``: ``data``'s arrays cut at ``floor(n * (1 - fraction))``,
    Keras's rule (slices: a memory-mapped array stays on disk).

    Args:
        data: ``(inputs, targets)`` arrays (``inputs`` may be a dict of arrays).
        fraction: the held-out fraction, in (0, 1).

    Returns:
        The first part and the last part, each ``(inputs, targets)``.

    Raises:
        ValueError: ``data`` is not a pair of arrays, a bad ``fraction``, or too few
            examples for both parts.
    """
    fraction = _check_fraction(fraction)
    if not (isinstance(data, tuple) and len(data) == 2):
        raise ValueError("run: validation_split needs data given as arrays (inputs, targets) with batch_size=")
    size = _leading(data)
    split_at = math.floor(size * (1.0 - fraction))
    if split_at == 0 or split_at == size:
        raise ValueError(
            f"run: the data has {size} examples, too few to hold out validation_split={fraction} of them "
            "and train on the rest"
        )

    def part(start: int, stop: int) -> Any:
        return jax.tree_util.tree_map(lambda a: _rows(a, start, stop), data)

    return part(0, split_at), part(split_at, size)


def _rows(array: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop``: a NumPy slice (a view; a memory map stays on disk), or for another
    array-like (an HDF5 or zarr dataset, which would read the rows when sliced) a view that
    reads them when a batch is taken."""
    if isinstance(array, np.ndarray):
        return array[start:stop]
    return RowRange(array, start, stop)


class RowRange:
    """Rows ``start:stop`` of an array-like, read only when indexed.

    >>> view = RowRange(np.arange(10), 2, 6)
    >>> len(view), view.shape, view[1:3].tolist(), view[np.array([3, 0])].tolist()
    (4, (4,), [3, 4], [5, 2])
    """

    def __init__(self, array: Any, start: int, stop: int) -> None:
        self.array, self.start, self.stop = array, start, stop
        self.shape = (stop - start, *tuple(array.shape[1:]))
        self.dtype = array.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            lo, hi, step = index.indices(len(self))
            return self.array[self.start + lo : self.start + hi : step]
        if isinstance(index, (int, np.integer)):
            if not -len(self) <= index < len(self):
                raise IndexError(f"index {index} is out of range for {len(self)} rows")
            return self.array[self.start + int(index) % len(self)]
        return self.array[np.asarray(index) + self.start]


def with_validation_split(
    loop: Any, data: Any, fraction: float, batch_size: int | None
) -> tuple[Any, Mapping[str, tuple[Any, ...]]]:
    """The training arrays and ``loop``'s handlers with a validation pass over the held-out
    arrays first among the ``epoch_completed`` handlers.

    Args:
        loop: a trainer (:func:`axon.loop.trainer`).
        data: ``(inputs, targets)`` arrays.
        fraction: the held-out fraction, in (0, 1).
        batch_size: the batch size (also for validation).

    Returns:
        ``(training_data, handlers)``.

    Raises:
        ValueError: not a trainer, no ``batch_size``, or what :func:`split_arrays` raises.
    """
    config = loop.settings
    if not isinstance(config, TrainerConfig):
        raise ValueError("run: validation_split needs a loop made by axon.loop.trainer")
    if batch_size is None:
        raise ValueError("run: validation_split needs data given as arrays (inputs, targets) with batch_size=")
    train, held_out = split_arrays(data, fraction)
    model = config.model if config.model is not None else config.built
    validated = loop.validate(model, held_out, batch_size=batch_size)
    handlers = dict(validated.handlers)
    *others, validation = handlers["epoch_completed"]
    handlers["epoch_completed"] = (validation, *others)
    return train, handlers
