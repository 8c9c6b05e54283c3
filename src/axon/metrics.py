"""Metric functions (Axon's ``Axon.Metrics``).

Every metric takes ``(y_true, y_pred)`` plus keyword options and returns a float32
scalar; all are pure JAX and work under ``jax.jit``. ``running_average`` and
``running_sum`` turn a metric into an accumulator, the form a training loop uses to
aggregate a metric over batches.

Binary metrics (``precision``, ``recall``, the confusion counts...) threshold predictions
with ``y_pred > threshold`` and read ``y_true`` as 0/1 labels (values above 0.5 count as
positive).

>>> import jax.numpy as jnp
>>> y_true = jnp.array([0, 1, 1, 1])
>>> y_pred = jnp.array([1, 0, 1, 1])
>>> round(float(precision(y_true, y_pred)), 4), round(float(recall(y_true, y_pred)), 4)
(0.6667, 0.6667)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from axon.lookup import lookup

__all__ = [
    "METRICS",
    "accuracy",
    "false_negatives",
    "false_positives",
    "get",
    "mean_absolute_error",
    "precision",
    "recall",
    "running_average",
    "running_sum",
    "sensitivity",
    "specificity",
    "top_k_categorical_accuracy",
    "true_negatives",
    "true_positives",
]

ArrayLike = jax.typing.ArrayLike
_EPS = 1.0e-16


def _same_shape(y_true: jax.Array, y_pred: jax.Array, where: str) -> None:
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{where}: expected y_true and y_pred to have the same shape, got y_true "
            f"{tuple(y_true.shape)} and y_pred {tuple(y_pred.shape)}"
        )


def _class_labels(y_true: jax.Array, y_pred: jax.Array, sparse: bool, where: str) -> jax.Array:
    """True class indices for predictions ``(..., C)``: given (sparse) or ``argmax(y_true)``."""
    batch_shape = tuple(y_pred.shape[:-1])
    if sparse:
        if tuple(y_true.shape) == (*batch_shape, 1):
            y_true = y_true[..., 0]
        elif tuple(y_true.shape) != batch_shape:
            raise ValueError(
                f"{where}: with sparse=True expected y_true of shape {batch_shape} or "
                f"{(*batch_shape, 1)} (class indices) for y_pred of shape "
                f"{tuple(y_pred.shape)}, got {tuple(y_true.shape)}"
            )
        return y_true.astype(jnp.int32)
    _same_shape(y_true, y_pred, where)
    return jnp.argmax(y_true, axis=-1)


def _mean(x: jax.Array) -> jax.Array:
    return jnp.mean(x.astype(jnp.float32))


def accuracy(
    y_true: ArrayLike, y_pred: ArrayLike, *, from_logits: bool = False, sparse: bool = False
) -> jax.Array:
    """Fraction of correct predictions.

    * Binary, when ``y_pred`` is ``(B,)`` or ``(..., 1)``: a prediction is positive when
      ``y_pred > 0.5`` (``> 0`` with ``from_logits=True``, i.e. ``sigmoid > 0.5``) and is
      compared with ``y_true > 0.5``. ``y_true`` may have ``y_pred``'s shape or lack the
      trailing 1.
    * Categorical, when ``y_pred`` is ``(..., C)`` with ``C > 1``: ``argmax`` over the last
      axis against ``argmax(y_true)`` (one-hot ``y_true``) or, with ``sparse=True``, the
      class indices ``y_true`` of shape ``(...)`` or ``(..., 1)``. ``from_logits`` does not
      change an argmax.

    Extension over Axon (rank-2 only): any leading shape works, e.g. ``(B, T, C)`` sequence
    predictions, and the mean runs over every position.

    Args:
        y_true: labels: binary ``0``/``1`` values, one-hot rows, or with ``sparse=True`` class
            indices of shape ``y_pred.shape[:-1]`` (or with a trailing axis of size 1).
        y_pred: predictions: ``(B,)`` or ``(..., 1)`` for binary, ``(..., C)`` for categorical.
        from_logits: whether binary predictions are logits (positive above 0 instead of 0.5).
            Defaults to ``False``.
        sparse: whether ``y_true`` holds class indices. Defaults to ``False``.

    Returns:
        A float32 scalar in ``[0, 1]``: the mean over every predicted position.

    Raises:
        ValueError: if ``y_pred`` is a scalar, or ``y_true``'s shape does not fit ``y_pred``'s.

    >>> import jax.numpy as jnp
    >>> round(float(accuracy(jnp.array([[0, 1], [1, 0], [1, 0]]), jnp.array([[0, 1], [1, 0], [0, 1]]))), 4)
    0.6667
    >>> float(accuracy(jnp.array([1, 0]), jnp.array([[0.1, 0.9], [0.8, 0.2]]), sparse=True))
    1.0
    >>> float(accuracy(jnp.array([[1], [0]]), jnp.array([[2.0], [0.3]]), from_logits=True))
    0.5
    """
    where = "accuracy"
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    if y_pred.ndim == 0:
        raise ValueError(f"{where}: expected y_pred of rank at least 1, got a scalar")
    binary = not sparse and (y_pred.ndim == 1 or y_pred.shape[-1] == 1)
    if binary:
        if y_true.shape != y_pred.shape:
            if y_pred.shape[-1] == 1 and y_true.shape == y_pred.shape[:-1]:
                y_true = y_true[..., None]
            else:
                _same_shape(y_true, y_pred, where)
        pred = y_pred > (0.0 if from_logits else 0.5)
        return _mean(pred == (y_true > 0.5))
    if y_pred.ndim == 1:
        raise ValueError(f"{where}: with sparse=True expected y_pred of shape (..., classes)")
    labels = _class_labels(y_true, y_pred, sparse, where)
    return _mean(jnp.argmax(y_pred, axis=-1) == labels)


def _confusion(y_true: ArrayLike, y_pred: ArrayLike, threshold: float, where: str) -> tuple:
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    _same_shape(y_true, y_pred, where)
    return y_true > 0.5, y_pred > threshold


def _count(mask: jax.Array) -> jax.Array:
    return jnp.sum(mask.astype(jnp.float32))


def true_positives(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5) -> jax.Array:
    """Number of positives predicted positive, over all elements (a float32 count).

    Args:
        y_true: labels, read as positive where ``> 0.5``; same shape as ``y_pred``.
        y_pred: predictions (scores or probabilities), any shape.
        threshold: predictions above it count as positive. Defaults to ``0.5``.

    Returns:
        A float32 scalar: the count over all elements.

    Raises:
        ValueError: if ``y_true`` and ``y_pred`` differ in shape.

    >>> float(true_positives(jnp.array([1, 0, 1, 1]), jnp.array([0.9, 0.8, 0.4, 0.6])))
    2.0
    """
    t, p = _confusion(y_true, y_pred, threshold, "true_positives")
    return _count(t & p)


def false_positives(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5) -> jax.Array:
    """Number of negatives predicted positive (a float32 count).

    Args:
        y_true: labels, read as positive where ``> 0.5``; same shape as ``y_pred``.
        y_pred: predictions (scores or probabilities), any shape.
        threshold: predictions above it count as positive. Defaults to ``0.5``.

    Returns:
        A float32 scalar: the count over all elements.

    Raises:
        ValueError: if ``y_true`` and ``y_pred`` differ in shape.

    >>> float(false_positives(jnp.array([1, 0, 1, 1]), jnp.array([0.9, 0.8, 0.4, 0.6])))
    1.0
    """
    t, p = _confusion(y_true, y_pred, threshold, "false_positives")
    return _count(~t & p)


def true_negatives(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5) -> jax.Array:
    """Number of negatives predicted negative (a float32 count).

    Args:
        y_true: labels, read as positive where ``> 0.5``; same shape as ``y_pred``.
        y_pred: predictions (scores or probabilities), any shape.
        threshold: predictions above it count as positive. Defaults to ``0.5``.

    Returns:
        A float32 scalar: the count over all elements.

    Raises:
        ValueError: if ``y_true`` and ``y_pred`` differ in shape.

    >>> float(true_negatives(jnp.array([0, 0, 1]), jnp.array([0.1, 0.8, 0.4]), threshold=0.3))
    1.0
    """
    t, p = _confusion(y_true, y_pred, threshold, "true_negatives")
    return _count(~t & ~p)


def false_negatives(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5) -> jax.Array:
    """Number of positives predicted negative (a float32 count).

    Args:
        y_true: labels, read as positive where ``> 0.5``; same shape as ``y_pred``.
        y_pred: predictions (scores or probabilities), any shape.
        threshold: predictions above it count as positive. Defaults to ``0.5``.

    Returns:
        A float32 scalar: the count over all elements.

    Raises:
        ValueError: if ``y_true`` and ``y_pred`` differ in shape.

    >>> float(false_negatives(jnp.array([1, 0, 1, 1]), jnp.array([0.9, 0.8, 0.4, 0.6])))
    1.0
    """
    t, p = _confusion(y_true, y_pred, threshold, "false_negatives")
    return _count(t & ~p)


def precision(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5) -> jax.Array:
    """``TP / (TP + FP)`` (0 when nothing is predicted positive).

    Args:
        y_true: labels, read as positive where ``> 0.5``; same shape as ``y_pred``.
        y_pred: predictions (scores or probabilities), any shape.
        threshold: predictions above it count as positive. Defaults to ``0.5``.

    Returns:
        A float32 scalar in ``[0, 1]``.

    Raises:
        ValueError: if ``y_true`` and ``y_pred`` differ in shape.

    >>> round(float(precision(jnp.array([0, 1, 1, 1]), jnp.array([1, 0, 1, 1]))), 4)
    0.6667
    """
    t, p = _confusion(y_true, y_pred, threshold, "precision")
    tp = _count(t & p)
    return tp / (tp + _count(~t & p) + _EPS)


def recall(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5) -> jax.Array:
    """``TP / (TP + FN)`` (0 when there are no positives).

    Args:
        y_true: labels, read as positive where ``> 0.5``; same shape as ``y_pred``.
        y_pred: predictions (scores or probabilities), any shape.
        threshold: predictions above it count as positive. Defaults to ``0.5``.

    Returns:
        A float32 scalar in ``[0, 1]``.

    Raises:
        ValueError: if ``y_true`` and ``y_pred`` differ in shape.

    >>> round(float(recall(jnp.array([0, 1, 1, 1]), jnp.array([1, 0, 1, 1]))), 4)
    0.6667
    """
    t, p = _confusion(y_true, y_pred, threshold, "recall")
    tp = _count(t & p)
    return tp / (tp + _count(t & ~p) + _EPS)


def sensitivity(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5) -> jax.Array:
    """Sensitivity, the same as ``recall``: ``TP / (TP + FN)``.

    Args:
        y_true: labels, read as positive where ``> 0.5``; same shape as ``y_pred``.
        y_pred: predictions (scores or probabilities), any shape.
        threshold: predictions above it count as positive. Defaults to ``0.5``.

    Returns:
        A float32 scalar in ``[0, 1]``.

    Raises:
        ValueError: if ``y_true`` and ``y_pred`` differ in shape.

    >>> round(float(sensitivity(jnp.array([0, 1, 1, 1]), jnp.array([1, 0, 1, 1]))), 4)
    0.6667
    """
    return recall(y_true, y_pred, threshold=threshold)


def specificity(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5) -> jax.Array:
    """``TN / (TN + FP)`` (0 when there are no negatives).

    Args:
        y_true: labels, read as positive where ``> 0.5``; same shape as ``y_pred``.
        y_pred: predictions (scores or probabilities), any shape.
        threshold: predictions above it count as positive. Defaults to ``0.5``.

    Returns:
        A float32 scalar in ``[0, 1]``.

    Raises:
        ValueError: if ``y_true`` and ``y_pred`` differ in shape.

    >>> float(specificity(jnp.array([0, 1, 1, 1]), jnp.array([1, 0, 1, 1])))
    0.0
    """
    t, p = _confusion(y_true, y_pred, threshold, "specificity")
    tn = _count(~t & ~p)
    return tn / (tn + _count(~t & p) + _EPS)


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """Mean of ``|y_true - y_pred|`` over every element.

    Args:
        y_true: targets, same shape as ``y_pred``.
        y_pred: predictions, any shape.

    Returns:
        A float32 scalar.

    Raises:
        ValueError: if ``y_true`` and ``y_pred`` differ in shape.

    >>> float(mean_absolute_error(jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[1.0, 1.0], [1.0, 0.0]])))
    0.5
    """
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    _same_shape(y_true, y_pred, "mean_absolute_error")
    return jnp.mean(jnp.abs(y_true.astype(jnp.float32) - y_pred.astype(jnp.float32)))


def top_k_categorical_accuracy(
    y_true: ArrayLike, y_pred: ArrayLike, *, k: int = 5, sparse: bool = False
) -> jax.Array:
    """Fraction of samples whose true class is among the ``k`` highest-scored classes.

    ``y_pred`` is ``(..., C)`` (``(C,)`` is one sample); ``y_true`` is one-hot with the
    same shape, or class indices with ``sparse=True``. ``k`` larger than ``C`` counts
    every sample as a hit.

    Args:
        y_true: one-hot labels of ``y_pred``'s shape, or with ``sparse=True`` class indices of
            shape ``y_pred.shape[:-1]`` (or with a trailing axis of size 1).
        y_pred: class scores, shape ``(..., C)``.
        k: how many of the highest scores count as a hit; a positive int. Defaults to ``5``.
        sparse: whether ``y_true`` holds class indices. Defaults to ``False``.

    Returns:
        A float32 scalar in ``[0, 1]``.

    Raises:
        ValueError: if ``k`` is not a positive int, ``y_pred`` is a scalar, or ``y_true``'s
            shape does not fit ``y_pred``'s.

    >>> y_pred = jnp.array([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]])
    >>> float(top_k_categorical_accuracy(jnp.array([2, 2]), y_pred, k=2, sparse=True))
    0.5
    """
    where = "top_k_categorical_accuracy"
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{where}: expected k to be a positive integer, got {k!r}")
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    if y_pred.ndim == 0:
        raise ValueError(f"{where}: expected y_pred of shape (..., classes), got a scalar")
    labels = _class_labels(y_true, y_pred, sparse, where)
    k = min(k, y_pred.shape[-1])
    _, top = jax.lax.top_k(y_pred, k)
    return _mean(jnp.any(top == labels[..., None], axis=-1))


# ---------------------------------------------------------------------------------------------
# Accumulators


def _split_running_args(args: tuple, where: str) -> tuple[tuple, Any]:
    if len(args) < 2:
        raise TypeError(f"{where}: expected (acc, *metric_args, i), got {len(args) + 1} arguments")
    *metric_args, i = args
    if len(metric_args) == 1 and isinstance(metric_args[0], list):  # Axon's args list
        metric_args = metric_args[0]
    return tuple(metric_args), i


def running_average(metric_fn: str | Callable[..., Any]) -> Callable[..., Any]:
    """Turn ``metric_fn`` into a running average ``fn(avg, *args, i)``.

    ``fn(avg, *args, i) = (avg · i + metric_fn(*args)) / (i + 1)``, where ``i`` is the
    number of values averaged so far (the 0-based batch index). Axon's form, with the
    metric arguments in one list (``fn(avg, [y_true, y_pred], i)``), works too. Works on
    pytrees of values and under ``jax.jit``.

    Args:
        metric_fn: a metric function or the name of one (see :func:`get`).

    Returns:
        An update function ``fn(avg, *metric_args, i)`` returning the new average (a pytree
        like the metric's value); it raises ``TypeError`` when called without ``i``.

    Raises:
        ValueError: if ``metric_fn`` is a string that names no metric.

    >>> import jax.numpy as jnp
    >>> avg_acc = running_average(accuracy)
    >>> avg = avg_acc(0.0, jnp.array([1, 1]), jnp.array([0.9, 0.8]), 0)  # batch accuracy 1.0
    >>> avg = avg_acc(avg, jnp.array([1, 1]), jnp.array([0.9, 0.1]), 1)  # batch accuracy 0.5
    >>> float(avg)
    0.75
    """
    metric_fn = get(metric_fn)

    def update(avg: Any, *args: Any) -> Any:
        metric_args, i = _split_running_args(args, "running_average")
        value = metric_fn(*metric_args)
        return jax.tree.map(lambda a, v: (a * i + v) / (i + 1), avg, value)

    update.__name__ = f"running_average_{getattr(metric_fn, '__name__', 'metric')}"
    return update


def running_sum(metric_fn: str | Callable[..., Any]) -> Callable[..., Any]:
    """Turn ``metric_fn`` into a running sum ``fn(total, *args, i) = total + metric_fn(*args)``.

    ``i`` is accepted for the same call shape as ``running_average`` and ignored.

    Args:
        metric_fn: a metric function or the name of one (see :func:`get`).

    Returns:
        An update function ``fn(total, *metric_args, i)`` returning the new total (a pytree
        like the metric's value); it raises ``TypeError`` when called without ``i``.

    Raises:
        ValueError: if ``metric_fn`` is a string that names no metric.

    >>> import jax.numpy as jnp
    >>> total_tp = running_sum(true_positives)
    >>> total = total_tp(0.0, jnp.array([1, 1]), jnp.array([0.9, 0.8]), 0)
    >>> float(total_tp(total, [jnp.array([1, 0]), jnp.array([0.9, 0.1])], 1))
    3.0
    """
    metric_fn = get(metric_fn)

    def update(total: Any, *args: Any) -> Any:
        metric_args, _ = _split_running_args(args, "running_sum")
        return jax.tree.map(lambda a, v: a + v, total, metric_fn(*metric_args))

    update.__name__ = f"running_sum_{getattr(metric_fn, '__name__', 'metric')}"
    return update


METRICS: dict[str, Callable[..., jax.Array]] = {
    "accuracy": accuracy,
    "false_negatives": false_negatives,
    "false_positives": false_positives,
    "mean_absolute_error": mean_absolute_error,
    "precision": precision,
    "recall": recall,
    "sensitivity": sensitivity,
    "specificity": specificity,
    "top_k_categorical_accuracy": top_k_categorical_accuracy,
    "true_negatives": true_negatives,
    "true_positives": true_positives,
}


def get(name_or_fn: str | Callable[..., Any]) -> Callable[..., Any]:
    """A metric function by name, or a callable unchanged.

    Args:
        name_or_fn: a metric name (a key of ``METRICS``, such as ``"accuracy"``) or a
            callable, which is passed through.

    Returns:
        The metric function.

    Raises:
        ValueError: if ``name_or_fn`` is a string that names no metric.

    >>> get("accuracy") is accuracy
    True
    >>> get("acc")
    Traceback (most recent call last):
    ...
    ValueError: unknown metric 'acc' (did you mean 'accuracy'?); expected a callable or one of: 'accuracy', ...
    """
    return lookup(name_or_fn, METRICS, kind="metric")
