"""Checking, before a run's first step, that every metric a handler watches
(``early_stop``, ``reduce_lr_on_plateau``, ``monitor``, ``checkpoint(criteria=...)``) is one
the loop will have when the handler runs: a tracked metric, or one added by a handler that
runs before it (``validate`` adds ``validation_<name>``). A typo then costs no training.

A handler declares what it watches with :func:`watches` and what it adds with
:func:`adds_metrics`; a handler of your own that puts metrics into ``state.metrics``
declares them the same way (``axon.loop.adds_metrics(handler, ["my_metric"])``) so that
other handlers may watch them.

>>> def handler(state):
...     return "continue", state
>>> check_watched_metrics(["loss"], {"epoch_completed": ((watches(handler, "loss", "early_stop"), "always"),)})
>>> check_watched_metrics(["loss"], {"epoch_completed": ((watches(handler, "los", "early_stop"), "always"),)})
Traceback (most recent call last):
...
ValueError: early_stop: metric 'los' is not tracked by this loop; its metrics are ['loss']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["adds_metrics", "check_watched_metrics", "watches"]


def watches(handler: Callable[..., Any], metric: str, where: str) -> Callable[..., Any]:
    """Mark ``handler`` as watching ``metric`` (``where`` names it in errors).

    Args:
        handler: the handler function.
        metric: the metric's name.
        where: the method that made it (``"early_stop"``...).

    Returns:
        ``handler``, marked.
    """
    handler.watched_metric = (metric, where)  # type: ignore[attr-defined]
    return handler


def adds_metrics(handler: Callable[..., Any], names: Iterable[str]) -> Callable[..., Any]:
    """Mark ``handler`` as adding ``names`` to ``state.metrics``, so that ``early_stop``,
    ``monitor``, ``reduce_lr_on_plateau`` and ``checkpoint(criteria=...)`` attached after
    it may watch them (a watched metric nothing provides is an error before the first step).

    Args:
        handler: the handler function.
        names: the metric names it adds.

    Returns:
        ``handler``, marked.

    >>> f = adds_metrics(lambda s: ("continue", s), ["validation_loss"])
    >>> f.added_metrics
    ('validation_loss',)
    """
    handler.added_metrics = tuple(names)  # type: ignore[attr-defined]
    return handler


def _added(handler: Any) -> tuple[str, ...]:
    return tuple(getattr(handler, "added_metrics", ()))


def check_watched_metrics(tracked: Sequence[str], handlers: Mapping[str, Sequence[tuple[Any, Any]]]) -> None:
    """Raise when a handler watches a metric the loop will not have when it runs.

    A metric is there when the loop tracks it, when a handler of another event adds it, or
    when a handler of the same event attached earlier adds it.

    Args:
        tracked: the names of the loop's metrics.
        handlers: ``event -> ((handler, filter), ...)``.

    Raises:
        ValueError: naming the handler's method, the metric and the metrics there are.
    """
    everywhere = {event: [n for h, _ in hs for n in _added(h)] for event, hs in handlers.items()}
    for event, hs in handlers.items():
        before: list[str] = []
        for handler, _ in hs:
            watched = getattr(handler, "watched_metric", None)
            if watched is not None:
                metric, where = watched
                others = [n for e, names in everywhere.items() if e != event for n in names]
                available = list(dict.fromkeys([*tracked, *others, *before]))
                if metric not in available:
                    raise ValueError(_message(metric, where, available, everywhere[event]))
            before.extend(_added(handler))


def _message(metric: str, where: str, available: list[str], same_event: list[str]) -> str:
    if metric in same_event:
        return (
            f"{where}: metric {metric!r} is added by a handler attached after {where} (handlers of one event run in "
            f"the order they were attached): attach {where} after validate"
        )
    text = f"{where}: metric {metric!r} is not tracked by this loop; its metrics are {available}"
    if metric.startswith("validation_"):
        text += "; validation metrics come from Loop.validate, for the metrics attached before it"
    return text
