"""Plots of a training run's metric history, with matplotlib (the ``plot`` extra).

:func:`history` draws one panel per metric with its training curve and, when the run
validated, its ``validation_<metric>`` curve, epoch by epoch. It builds a
``matplotlib.figure.Figure`` directly (no ``pyplot``, no global state, no GUI backend), so it
works the same in a terminal, a headless job and Jupyter, which shows the returned Figure
by itself; ``fig.savefig("history.png")`` writes a picture. ``Loop.plot`` redraws it live
while a loop runs.

>>> history_ = {0: {"loss": 1.0, "validation_loss": 1.2}, 1: {"loss": 0.5, "validation_loss": 0.7}}
>>> metric_names(history_)
['loss']
>>> fig = history(history_)  # doctest: +SKIP
>>> [line.get_label() for line in fig.axes[0].lines]  # doctest: +SKIP
['train', 'validation']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["history", "metric_names", "require_matplotlib"]

VALIDATION_PREFIX = "validation_"


def _history_of(source: Any) -> Mapping[int, Mapping[str, Any]]:
    hist = getattr(source, "history", source)
    if not isinstance(hist, Mapping) or not all(isinstance(v, Mapping) for v in hist.values()):
        raise TypeError(
            "plot: expected a LoopState or a history {epoch: {metric: value}}, got "
            f"{type(source).__name__}"
        )
    return hist


def metric_names(source: Any) -> list[str]:
    """The metrics of a history, ``validation_<name>`` counted as ``<name>``, in the order
    they first appear.

    Args:
        source: a :class:`axon.loop.LoopState` or its ``history`` (``{epoch: {metric: value}}``).

    Returns:
        The names.

    Raises:
        TypeError: ``source`` is neither.

    >>> metric_names({0: {"loss": 1.0, "mae": 0.5, "validation_loss": 2.0, "validation_acc": 0.1}})
    ['loss', 'mae', 'acc']
    """
    names: dict[str, None] = {}
    for values in _history_of(source).values():
        for key in values:
            names.setdefault(key[len(VALIDATION_PREFIX):] if key.startswith(VALIDATION_PREFIX) else key)
    return list(names)


def _curve(hist: Mapping[int, Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for epoch in sorted(hist):
        value = hist[epoch].get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            xs.append(epoch)
            ys.append(float(value))
    return xs, ys


def history(loop_state_or_history: Any, metrics: str | Sequence[str] | None = None) -> Any:
    """A matplotlib Figure with one panel per metric: its training curve (label
    ``"train"``) and its validation curve (``"validation"``, from ``validation_<metric>``),
    with the epoch on the x axis. Non-scalar metric values are left out.

    Args:
        loop_state_or_history: a :class:`axon.loop.LoopState` (``run(...,
            return_state=True)``) or its ``history`` (``{epoch: {metric: value}}``, also what
            an evaluator returns).
        metrics: a metric name or names (``"loss"`` plots ``loss`` and
            ``validation_loss``); ``None``: every metric.

    Returns:
        A ``matplotlib.figure.Figure`` (panels in ``fig.axes``, in the order of ``metrics``).

    Raises:
        ImportError: matplotlib is not installed (``pip install "axon-jax[plot]"``).
        ValueError: an unknown metric, or a history with no scalar values to plot.
        TypeError: the argument is neither a state nor a history.

    >>> import axon
    >>> fig = axon.plot.history({0: {"loss": 1.0}, 1: {"loss": 0.5}})  # doctest: +SKIP
    >>> fig.axes[0].lines[0].get_ydata().tolist()  # doctest: +SKIP
    [1.0, 0.5]
    """
    hist = _history_of(loop_state_or_history)
    available = metric_names(hist)
    if metrics is None:
        names = available
    else:
        names = [metrics] if isinstance(metrics, str) else list(metrics)
        for name in names:
            if not isinstance(name, str) or name not in available:
                raise ValueError(f"plot: metric {name!r} is not in the history; its metrics are {available}")
    curves = []
    for name in names:
        train, validation = _curve(hist, name), _curve(hist, VALIDATION_PREFIX + name)
        if train[0] or validation[0]:
            curves.append((name, train, validation))
        elif metrics is not None:
            raise ValueError(f"plot: metric {name!r} has no scalar values to plot")
    if not curves:
        raise ValueError(f"plot: the history has no scalar metric values to plot (metrics: {available})")
    Figure = _figure_class()  # N806: the class, named as matplotlib names it
    fig = Figure(figsize=(4.5 * len(curves), 3.2), layout="constrained")
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (name, train, validation) in zip(axes, curves):
        if train[0]:
            ax.plot(*train, marker="o", markersize=3, label="train")
        if validation[0]:
            ax.plot(*validation, marker="o", markersize=3, label="validation")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend()
    return fig


def require_matplotlib() -> None:
    """Raise an ImportError naming the ``plot`` extra when matplotlib is not installed.

    Raises:
        ImportError: matplotlib is missing.

    >>> require_matplotlib()  # doctest: +SKIP
    """
    _figure_class()


def _figure_class() -> Any:
    """``matplotlib.figure.Figure``, or an ImportError that names the extra."""
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError('plot: needs matplotlib; install it with pip install "axon-jax[plot]" (or pip install matplotlib)') from e
    return Figure
