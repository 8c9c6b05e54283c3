"""How a loop tracks a metric: the metric function, how its per-step values accumulate over
an epoch, and which step-state fields it reads.

>>> import jax.numpy as jnp
>>> spec = metric_spec(lambda s: s * 2.0, "double", transform=lambda s: s, where="metric")
>>> spec.name, float(spec.fn(*spec.transform(jnp.array(3.0))))
('double', 6.0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal

from axon import metrics as _metrics

__all__ = ["ACCUMULATORS", "Accumulate", "MetricSpec", "metric_spec"]

Accumulate = Literal["running_average", "running_sum"]


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """A tracked metric.

    Attributes:
        name: the metric's name in ``state.metrics`` and the history.
        fn: ``fn(*args) -> value`` computed after every step.
        accumulate: ``accumulate(acc, value, i) -> acc`` over the steps of an epoch.
        transform: ``transform(step_state) -> args`` for ``fn``.
        evaluate: how validation computes it from ``(y_true, y_pred)``, or ``None`` when the
            metric reads other step-state fields (it is then not validated).
    """

    name: str
    fn: Callable[..., Any]
    accumulate: Callable[[Any, Any, Any], Any]
    transform: Callable[[Any], tuple]
    evaluate: Callable[..., Any] | None = None


def _running_average(acc: Any, value: Any, i: Any) -> Any:
    return acc + (value - acc) / (i + 1)


def _running_sum(acc: Any, value: Any, i: Any) -> Any:
    return acc + value


ACCUMULATORS: dict[str, Callable[[Any, Any, Any], Any]] = {
    "running_average": _running_average,
    "running_sum": _running_sum,
}


def _transform(transform: Any, where: str) -> Callable[[Any], tuple]:
    if transform is None:
        return lambda s: (s["y_true"], s["y_pred"])
    if isinstance(transform, str):
        return lambda s: (s[transform],)
    if isinstance(transform, (list, tuple)):
        keys = tuple(transform)
        return lambda s: tuple(s[f] for f in keys)
    if callable(transform):
        def tf(s: Any) -> tuple:
            out = transform(s)
            return tuple(out) if isinstance(out, (list, tuple)) else (out,)

        return tf
    raise TypeError(f"{where}: expected transform to be field names or a function, got {transform!r}")


def metric_spec(
    metric: str | Callable[..., Any],
    name: str | None = None,
    accumulate: Accumulate | Callable[[Any, Any, Any], Any] = "running_average",
    transform: str | Sequence[str] | Callable[[Any], Any] | None = None,
    *,
    where: str = "metric",
) -> MetricSpec:
    """A :class:`MetricSpec` from the arguments of ``Loop.metric``.

    Args:
        metric: a name from :mod:`axon.metrics` or a function.
        name: the metric's name (required for a function; default: the metric's name).
        accumulate: ``"running_average"``, ``"running_sum"`` or ``fn(acc, value, i)``.
        transform: step-state field name(s), or ``fn(step_state) -> args``; default
            ``("y_true", "y_pred")``.
        where: the name used in error messages.

    Returns:
        The spec.

    Raises:
        ValueError: a function without a name, or an unknown accumulator name.
        TypeError: arguments of the wrong kind.

    >>> metric_spec("accuracy").name
    'accuracy'
    """
    if isinstance(metric, str):
        fn = _metrics.get(metric)
        name = name or metric
    elif callable(metric):
        if name is None:
            raise ValueError(f"{where}: a metric given as a function needs a name, e.g. loop.metric(fn, 'my_metric')")
        fn = metric
    else:
        raise TypeError(f"{where}: expected a metric name or function, got {metric!r}")
    if not isinstance(name, str):
        raise TypeError(f"{where}: expected name to be a string, got {name!r}")
    if isinstance(accumulate, str):
        if accumulate not in ACCUMULATORS:
            raise ValueError(f"{where}: expected accumulate to be one of {list(ACCUMULATORS)} or a function, got {accumulate!r}")
        acc_fn = ACCUMULATORS[accumulate]
    elif callable(accumulate):
        acc_fn = accumulate
    else:
        raise TypeError(f"{where}: expected accumulate to be a name or a function, got {accumulate!r}")
    evaluate = fn if transform is None else None
    return MetricSpec(name, fn, acc_fn, _transform(transform, where), evaluate)
