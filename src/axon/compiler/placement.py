"""How a compiled function meets a distribution strategy.

The compiler never imports :mod:`axon.distributed` (new capabilities are clients of the
core): ``build(..., distribution=)`` accepts any object with the three methods of
:class:`Distribution`, which the strategies in ``axon.distributed`` provide.

>>> check_distribution(None, "build") is None
True
>>> check_distribution("data", "build")
Traceback (most recent call last):
...
TypeError: build: expected distribution to be a strategy from axon.distributed (DataParallel, FSDP, ModelParallel) or None, got str
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["Distribution", "check_distribution"]


@runtime_checkable
class Distribution(Protocol):
    """What a distribution strategy provides to the compiler and the loop."""

    def state_shardings(self, tree: Any) -> Any:
        """A sharding for each leaf of ``tree`` (arrays or ``jax.ShapeDtypeStruct`` s)."""

    def place_state(self, tree: Any) -> Any:
        """``tree`` with every leaf placed with its sharding."""

    def shard_batch(self, batch: Any, leading: int = 0) -> Any:
        """A global batch split over the data axis (after ``leading`` stacked dimensions)."""

    def constrain(self, tree: Any) -> Any:
        """Inside a trace: ``tree`` constrained to its shardings."""


def check_distribution(distribution: Any, where: str) -> Distribution | None:
    """``distribution`` if it is ``None`` or a strategy; otherwise a ``TypeError`` naming ``where``.

    Args:
        distribution: ``None`` or a strategy such as ``axon.distributed.DataParallel()``.
        where: the caller's name for the message.

    Returns:
        ``distribution`` unchanged.

    Raises:
        TypeError: ``distribution`` lacks a strategy's methods.
    """
    if distribution is None or isinstance(distribution, Distribution):
        return distribution
    raise TypeError(
        f"{where}: expected distribution to be a strategy from axon.distributed "
        f"(DataParallel, FSDP, ModelParallel) or None, got {type(distribution).__name__}"
    )
