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

from axon.loop.config import TrainerConfig
from axon.loop.data import _leading

__all__ = ["split_arrays", "with_validation_split"]


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
        return jax.tree_util.tree_map(lambda a: a[start:stop], data)

    return part(0, split_at), part(split_at, size)


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
