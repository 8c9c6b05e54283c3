"""Loss functions (Axon's ``Axon.Losses``).

Every loss takes ``(y_true, y_pred)`` plus keyword options and a ``reduction``: ``"none"``
(the default, as in Axon) returns one value per sample, ``"mean"`` and ``"sum"`` reduce to
a scalar. Most losses reduce the last axis first (per-sample mean or sum), so
``(batch, features)`` inputs give a ``(batch,)`` result. ``y_true`` and ``y_pred`` must
have the same shape unless a loss says otherwise; integer targets are cast to the
prediction's float type. All functions are pure JAX and work under ``jax.jit`` and
``jax.grad``.

Losses whose inputs are probabilities (``binary_cross_entropy``,
``categorical_cross_entropy``) take ``from_logits=True`` to accept raw scores and then use
a numerically stable log-sigmoid / log-softmax form; there is no hidden logit caching.

>>> import jax.numpy as jnp
>>> y_true = jnp.array([[0.0, 1.0], [0.0, 0.0]])
>>> y_pred = jnp.array([[1.0, 1.0], [1.0, 0.0]])
>>> mean_squared_error(y_true, y_pred).tolist()
[0.5, 0.5]
>>> float(mean_squared_error(y_true, y_pred, reduction="mean"))
0.5
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from axon.lookup import lookup
from axon.typing_aliases import Reduction

__all__ = [
    "LOSSES",
    "apply_label_smoothing",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "categorical_hinge",
    "connectionist_temporal_classification",
    "cosine_similarity",
    "get",
    "hinge",
    "huber",
    "kl_divergence",
    "label_smoothing",
    "log_cosh",
    "margin_ranking",
    "mean_absolute_error",
    "mean_squared_error",
    "poisson",
    "soft_margin",
]

ArrayLike = jax.typing.ArrayLike
REDUCTIONS = ("none", "mean", "sum")


# ---------------------------------------------------------------------------------------------
# Helpers


def _check_reduction(reduction: str, where: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"{where}: expected reduction to be one of {', '.join(map(repr, REDUCTIONS))}, "
            f"got {reduction!r}"
        )


def _reduce(loss: jax.Array, reduction: str) -> jax.Array:
    if reduction == "mean":
        return jnp.mean(loss)
    if reduction == "sum":
        return jnp.sum(loss)
    return loss


def _float_dtype(*xs: jax.Array) -> Any:
    dtype = jnp.result_type(*xs)
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.result_type(float)


def _pair(y_true: ArrayLike, y_pred: ArrayLike, where: str, min_rank: int = 1) -> tuple:
    """Same-shape check, then both cast to a common float dtype."""
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{where}: expected y_true and y_pred to have the same shape, got y_true "
            f"{tuple(y_true.shape)} and y_pred {tuple(y_pred.shape)}"
        )
    if y_pred.ndim < min_rank:
        raise ValueError(
            f"{where}: expected inputs of rank at least {min_rank}, got shape {tuple(y_pred.shape)}"
        )
    dtype = _float_dtype(y_true, y_pred)
    return y_true.astype(dtype), y_pred.astype(dtype)


def _xlogy(x: jax.Array, y: jax.Array) -> jax.Array:
    """``x · log(y)`` with ``0 · log(0) = 0`` and a finite gradient where ``x == 0``."""
    zero = x == 0
    return jnp.where(zero, 0.0, x * jnp.log(jnp.where(zero, 1.0, y)))


# ---------------------------------------------------------------------------------------------
# Classification


def binary_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    positive_weight: float | None = None,
    negative_weight: float | None = None,
    from_logits: bool = False,
    reduction: Reduction = "none",
) -> jax.Array:
    """Binary cross-entropy, averaged over the last axis.

    ``l = -mean_last(w₊ · y · log p + w₋ · (1 - y) · log(1 - p))``. Probabilities are
    clipped to ``[1e-7, 1 - 1e-7]`` (and ``1e-7`` added inside the logs, as Axon and Keras
    do); with ``from_logits=True`` ``y_pred`` holds logits and the stable
    ``log_sigmoid`` form is used. ``positive_weight`` (``w₊``) and ``negative_weight``
    (``w₋``) default to 1.

    Deviation from Axon: with weights Axon returns the mean over *all* elements whatever
    ``reduction`` says; here the weighted loss is per-sample like the unweighted one and
    ``reduction`` applies as usual (``"mean"`` equals PyTorch's ``BCEWithLogitsLoss`` with
    ``pos_weight``).

    Args:
        y_true: targets in ``[0, 1]``, same shape as ``y_pred``.
        y_pred: predicted probabilities (logits with ``from_logits=True``), shape
            ``(..., features)``.
        positive_weight: weight ``w₊`` of the positive term; ``None`` means 1.
        negative_weight: weight ``w₋`` of the negative term; ``None`` means 1.
        from_logits: whether ``y_pred`` holds logits rather than probabilities. Defaults to
            ``False``.
        reduction: ``"none"`` for one value per sample, ``"mean"`` or ``"sum"`` for a scalar.
            Defaults to ``"none"``.

    Returns:
        The loss, of shape ``y_pred.shape[:-1]`` with ``reduction="none"``, else a scalar.

    Raises:
        ValueError: if ``reduction`` is not ``"none"``, ``"mean"`` or ``"sum"``, or ``y_true`` and
            ``y_pred`` differ in shape or are scalars.

    >>> import jax.numpy as jnp
    >>> y_true = jnp.array([[0, 1], [1, 0], [1, 0]])
    >>> y_pred = jnp.array([[0.6811, 0.5565], [0.6551, 0.4551], [0.5422, 0.2648]])
    >>> binary_cross_entropy(y_true, y_pred).round(4).tolist()
    [0.8645, 0.5151, 0.4599]
    >>> round(float(binary_cross_entropy(y_true, y_pred, reduction="mean")), 4)
    0.6131
    """
    where = "binary_cross_entropy"
    _check_reduction(reduction, where)
    y_true, y_pred = _pair(y_true, y_pred, where)
    if from_logits:
        log_p, log_not_p = jax.nn.log_sigmoid(y_pred), jax.nn.log_sigmoid(-y_pred)
    else:
        eps = 1.0e-7
        p = jnp.clip(y_pred, eps, 1.0 - eps)
        log_p, log_not_p = jnp.log(p + eps), jnp.log(1.0 - p + eps)
    pos = y_true * log_p
    neg = (1.0 - y_true) * log_not_p
    if positive_weight is not None:
        pos = positive_weight * pos
    if negative_weight is not None:
        neg = negative_weight * neg
    return _reduce(-jnp.mean(pos + neg, axis=-1), reduction)


def categorical_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    class_weights: Sequence[float] | ArrayLike | None = None,
    from_logits: bool = False,
    sparse: bool = False,
    reduction: Reduction = "none",
) -> jax.Array:
    """Categorical cross-entropy over the last (class) axis: ``l = -Σ y · log p``.

    ``y_pred`` holds probabilities (or logits with ``from_logits=True``, then the stable
    ``log_softmax`` form is used). ``y_true`` is one-hot (or soft) with ``y_pred``'s shape,
    or with ``sparse=True`` integer class indices of shape ``y_pred.shape[:-1]`` (a
    trailing axis of size 1 is accepted). ``class_weights`` (one per class) weight each
    sample by the weight of its true class (``argmax`` of ``y_true`` when not sparse);
    the weighted ``"mean"`` is ``Σ w·l / Σ w``, as in PyTorch.

    Args:
        y_true: one-hot or soft targets of ``y_pred``'s shape, or with ``sparse=True`` integer
            class indices of shape ``y_pred.shape[:-1]`` (or with a trailing axis of size 1).
        y_pred: class probabilities (logits with ``from_logits=True``), shape
            ``(..., classes)``.
        class_weights: one weight per class, or ``None`` (the default) for no weighting.
        from_logits: whether ``y_pred`` holds logits rather than probabilities. Defaults to
            ``False``.
        sparse: whether ``y_true`` holds class indices rather than one-hot rows. Defaults to
            ``False``.
        reduction: ``"none"`` for one value per sample, ``"mean"`` or ``"sum"`` for a scalar.
            Defaults to ``"none"``.

    Returns:
        The loss, of shape ``y_pred.shape[:-1]`` with ``reduction="none"``, else a scalar.

    Raises:
        ValueError: if ``reduction`` is unknown, ``y_pred`` is a scalar, ``y_true``'s shape does
            not fit ``y_pred``'s, or ``class_weights`` does not hold one weight per class.

    >>> import jax.numpy as jnp
    >>> y_true = jnp.array([[0, 1, 0], [0, 0, 1]])
    >>> y_pred = jnp.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
    >>> categorical_cross_entropy(y_true, y_pred).round(4).tolist()
    [0.0513, 2.3026]
    >>> round(float(categorical_cross_entropy(jnp.array([1, 2]), y_pred, sparse=True, reduction="sum")), 4)
    2.3539
    """
    where = "categorical_cross_entropy"
    _check_reduction(reduction, where)
    y_pred = jnp.asarray(y_pred)
    if y_pred.ndim < 1:
        raise ValueError(f"{where}: expected y_pred of rank at least 1, got a scalar")
    num_classes = y_pred.shape[-1]
    if sparse:
        labels = jnp.asarray(y_true)
        batch_shape = tuple(y_pred.shape[:-1])
        if tuple(labels.shape) == (*batch_shape, 1):
            labels = labels[..., 0]
        elif tuple(labels.shape) != batch_shape:
            raise ValueError(
                f"{where}: with sparse=True expected y_true of shape {batch_shape} or "
                f"{(*batch_shape, 1)} (class indices) for y_pred of shape "
                f"{tuple(y_pred.shape)}, got {tuple(labels.shape)}"
            )
        labels = labels.astype(jnp.int32)
        y_pred = y_pred.astype(_float_dtype(y_pred))
        scores = jax.nn.log_softmax(y_pred, axis=-1) if from_logits else y_pred
        picked = jnp.take_along_axis(scores, labels[..., None], axis=-1)[..., 0]
        loss = -picked if from_logits else -jnp.log(picked)
    else:
        y_true, y_pred = _pair(y_true, y_pred, where)
        if from_logits:
            loss = -jnp.sum(y_true * jax.nn.log_softmax(y_pred, axis=-1), axis=-1)
        else:
            loss = -jnp.sum(_xlogy(y_true, y_pred), axis=-1)
        labels = None
    if class_weights is None:
        return _reduce(loss, reduction)
    weights = jnp.asarray(class_weights, dtype=loss.dtype)
    if weights.shape != (num_classes,):
        raise ValueError(
            f"{where}: expected class_weights to hold one weight per class ({num_classes}), "
            f"got shape {tuple(weights.shape)}"
        )
    if labels is None:
        labels = jnp.argmax(y_true, axis=-1)
    w = weights[labels]
    loss = w * loss
    if reduction == "mean":
        return jnp.sum(loss) / jnp.sum(w)
    return _reduce(loss, reduction)


def categorical_hinge(
    y_true: ArrayLike, y_pred: ArrayLike, *, reduction: Reduction = "none"
) -> jax.Array:
    """Categorical hinge: ``max(0, max_last((1 - y) · p) - Σ_last y · p + 1)``.

    Args:
        y_true: one-hot targets, same shape as ``y_pred``.
        y_pred: class scores, shape ``(..., classes)``.
        reduction: ``"none"`` for one value per sample, ``"mean"`` or ``"sum"`` for a scalar.
            Defaults to ``"none"``.

    Returns:
        The loss, of shape ``y_pred.shape[:-1]`` with ``reduction="none"``, else a scalar.

    Raises:
        ValueError: if ``reduction`` is not ``"none"``, ``"mean"`` or ``"sum"``, or ``y_true`` and
            ``y_pred`` differ in shape or are scalars.

    >>> import jax.numpy as jnp
    >>> y_true = jnp.array([[1, 0, 0], [0, 0, 1]])
    >>> y_pred = jnp.array([[0.05300799, 0.21617081, 0.68642382], [0.3754382, 0.08494169, 0.13442067]])
    >>> categorical_hinge(y_true, y_pred).round(4).tolist()
    [1.6334, 1.241]
    """
    where = "categorical_hinge"
    _check_reduction(reduction, where)
    y_true, y_pred = _pair(y_true, y_pred, where)
    neg = jnp.max((1.0 - y_true) * y_pred, axis=-1)
    pos = jnp.sum(y_true * y_pred, axis=-1)
    return _reduce(jnp.maximum(0.0, neg - pos + 1.0), reduction)


def hinge(y_true: ArrayLike, y_pred: ArrayLike, *, reduction: Reduction = "none") -> jax.Array:
    """Hinge loss, ``mean_last(max(0, 1 - y · p))``, for targets in ``{-1, 1}``.

    Args:
        y_true: targets in ``{-1, 1}``, same shape as ``y_pred``.
        y_pred: scores, shape ``(..., features)``.
        reduction: ``"none"`` for one value per sample, ``"mean"`` or ``"sum"`` for a scalar.
            Defaults to ``"none"``.

    Returns:
        The loss, of shape ``y_pred.shape[:-1]`` with ``reduction="none"``, else a scalar.

    Raises:
        ValueError: if ``reduction`` is not ``"none"``, ``"mean"`` or ``"sum"``, or ``y_true`` and
            ``y_pred`` differ in shape or are scalars.

    >>> import jax.numpy as jnp
    >>> y_true = jnp.array([[1, 1, -1], [1, 1, -1]])
    >>> y_pred = jnp.array([[0.45440044, 0.31470688, 0.67920924], [0.24311459, 0.93466766, 0.10914676]])
    >>> hinge(y_true, y_pred).round(4).tolist()
    [0.97, 0.6438]
    """
    where = "hinge"
    _check_reduction(reduction, where)
    y_true, y_pred = _pair(y_true, y_pred, where)
    return _reduce(jnp.mean(jnp.maximum(0.0, 1.0 - y_true * y_pred), axis=-1), reduction)


def kl_divergence(y_true: ArrayLike, y_pred: ArrayLike, *, reduction: Reduction = "none") -> jax.Array:
    """Kullback-Leibler divergence ``Σ_last y · log(y / p)``, both clipped to ``[1e-7, 1]`` (as Axon).

    Args:
        y_true: target probabilities, same shape as ``y_pred``.
        y_pred: predicted probabilities, shape ``(..., classes)``.
        reduction: ``"none"`` for one value per sample, ``"mean"`` or ``"sum"`` for a scalar.
            Defaults to ``"none"``.

    Returns:
        The loss, of shape ``y_pred.shape[:-1]`` with ``reduction="none"``, else a scalar.

    Raises:
        ValueError: if ``reduction`` is not ``"none"``, ``"mean"`` or ``"sum"``, or ``y_true`` and
            ``y_pred`` differ in shape or are scalars.

    >>> import jax.numpy as jnp
    >>> y_true = jnp.array([[0, 1], [0, 0]])
    >>> y_pred = jnp.array([[0.6, 0.4], [0.4, 0.6]])
    >>> kl_divergence(y_true, y_pred).round(4).tolist()
    [0.9163, -0.0]
    """
    where = "kl_divergence"
    _check_reduction(reduction, where)
    y_true, y_pred = _pair(y_true, y_pred, where)
    eps = 1.0e-7
    y_true = jnp.clip(y_true, eps, 1.0)
    y_pred = jnp.clip(y_pred, eps, 1.0)
    return _reduce(jnp.sum(y_true * jnp.log(y_true / y_pred), axis=-1), reduction)


def margin_ranking(
    y_true: ArrayLike,
    y_pred: tuple[ArrayLike, ArrayLike],
    *,
    margin: float = 0.0,
    reduction: Reduction = "none",
) -> jax.Array:
    """Margin ranking loss, element-wise ``max(0, -y · (p₁ - p₂) + margin)``; ``y_pred = (p₁, p₂)``.

    Args:
        y_true: ``1`` where ``p₁`` should rank above ``p₂``, ``-1`` where below; same shape as
            ``p₁``.
        y_pred: the pair ``(p₁, p₂)`` of score arrays, of equal shapes.
        margin: how far apart the two scores must be before the loss is zero. Defaults to
            ``0.0``.
        reduction: ``"none"`` for one value per sample, ``"mean"`` or ``"sum"`` for a scalar.
            Defaults to ``"none"``.

    Returns:
        The element-wise loss, of ``y_true``'s shape with ``reduction="none"``, else a scalar.

    Raises:
        ValueError: if ``reduction`` is unknown, ``y_pred`` is not a pair, or the shapes of
            ``y_true``, ``p₁`` and ``p₂`` differ.

    >>> import jax.numpy as jnp
    >>> y_true = jnp.array([1.0, 1.0, 1.0])
    >>> p1 = jnp.array([0.6934, -0.7239, 1.1954])
    >>> p2 = jnp.array([-0.4691, 0.2670, -1.7452])
    >>> margin_ranking(y_true, (p1, p2)).round(4).tolist()
    [0.0, 0.9909, 0.0]
    """
    where = "margin_ranking"
    _check_reduction(reduction, where)
    if not isinstance(y_pred, (tuple, list)) or len(y_pred) != 2:
        raise ValueError(f"{where}: expected y_pred to be a pair (y_pred1, y_pred2)")
    p1, p2 = jnp.asarray(y_pred[0]), jnp.asarray(y_pred[1])
    if p1.shape != p2.shape:
        raise ValueError(
            f"{where}: expected y_pred1 and y_pred2 to have the same shape, got "
            f"{tuple(p1.shape)} and {tuple(p2.shape)}"
        )
    y_true, p1 = _pair(y_true, p1, where, min_rank=0)
    p2 = p2.astype(p1.dtype)
    return _reduce(jnp.maximum(0.0, -y_true * (p1 - p2) + margin), reduction)


def soft_margin(y_true: ArrayLike, y_pred: ArrayLike, *, reduction: Reduction = "none") -> jax.Array:
    """Soft margin loss, ``mean_last(log(1 + exp(-y · p)))``, computed as a stable softplus.

    Deviation from Axon: Axon sums over axis 0 (the batch), mixing samples; here each
    sample is reduced over its last axis like the other losses, so ``reduction="mean"``
    equals PyTorch's ``soft_margin_loss``.

    Args:
        y_true: targets in ``{-1, 1}``, same shape as ``y_pred``.
        y_pred: scores, shape ``(..., features)``.
        reduction: ``"none"`` for one value per sample, ``"mean"`` or ``"sum"`` for a scalar.
            Defaults to ``"none"``.

    Returns:
        The loss, of shape ``y_pred.shape[:-1]`` with ``reduction="none"``, else a scalar.

    Raises:
        ValueError: if ``reduction`` is not ``"none"``, ``"mean"`` or ``"sum"``, or ``y_true`` and
            ``y_pred`` differ in shape or are scalars.

    >>> import jax.numpy as jnp
    >>> y_true = jnp.array([[-1.0, 1.0, 1.0]])
    >>> y_pred = jnp.array([[0.2953, -0.1709, 0.9486]])
    >>> soft_margin(y_true, y_pred).round(4).tolist()
    [0.6537]
    """
    where = "soft_margin"
    _check_reduction(reduction, where)
    y_true, y_pred = _pair(y_true, y_pred, where)
    return _reduce(jnp.mean(jax.nn.softplus(-y_true * y_pred), axis=-1), reduction)


# ---------------------------------------------------------------------------------------------
# Regression


def mean_absolute_error(
    y_true: ArrayLike, y_pred: ArrayLike, *, reduction: Reduction = "none"
) -> jax.Array:
    """Mean absolute error over the last axis, ``mean_last |y - p|``.

    Args:
        y_true: targets, same shape as ``y_pred``.
        y_pred: predictions, shape ``(..., features)``.
        reduction: ``"none"`` for one value per sample, ``"mean"`` or ``"sum"`` for a scalar.
            Defaults to ``"none"``.

    Returns:
        The loss, of shape ``y_pred.shape[:-1]`` with ``reduction="none"``, else a scalar.

    Raises:
        ValueError: if ``reduction`` is not ``"none"``, ``"mean"`` or ``"sum"``, or ``y_true`` and
            ``y_pred`` differ in shape or are scalars.

    >>> import jax.numpy as jnp
    >>> mean_absolute_error(jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[1.0, 1.0], [1.0, 0.0]])).tolist()
    [0.5, 0.5]
    """
    where = "mean_absolute_error"
    _check_reduction(reduction, where)
    y_true, y_pred = _pair(y_true, y_pred, where)
    return _reduce(jnp.mean(jnp.abs(y_true - y_pred), axis=-1), reduction)


def mean_squared_error(
    y_true: ArrayLike, y_pred: ArrayLike, *, reduction: Reduction = "none"
) -> jax.Array:
    """Mean squared error over the last axis, ``mean_last (y - p)²``.

    Args:
        y_true: targets, same shape as ``y_pred``.
        y_pred: predictions, shape ``(..., features)``.
        reduction: ``"none"`` for one value per sample, ``"mean"`` or ``"sum"`` for a scalar.
            Defaults to ``"none"``.

    Returns:
        The loss, of shape ``y_pred.shape[:-1]`` with ``reduction="none"``, else a scalar.

    Raises:
        ValueError: if ``reduction`` is not ``"none"``, ``"mean"`` or ``"sum"``, or ``y_true`` and
            ``y_pred`` differ in shape or are scalars.

    >>> import jax.numpy as jnp
    >>> float(mean_squared_error(jnp.array([[0.0, 1.0]]), jnp.array([[1.0, 1.0]]), reduction="sum"))
    0.5
    """
    where = "mean_squared_error"
    _check_reduction(reduction, where)
    y_true, y_pred = _pair(y_true, y_pred, where)
    return _reduce(jnp.mean(jnp.square(y_true - y_pred), axis=-1), reduction)


def log_cosh(y_true: ArrayLike, y_pred: ArrayLike, *, reduction: Reduction = "none") -> jax.Array:
    """Log-cosh loss, ``mean_last log(cosh(p - y))``, in the overflow-free form ``d + softplus(-2d) - log 2``.

    Args:
        y_true: targets, same shape as ``y_pred``.
        y_pred: predictions, shape ``(..., features)``.
        reduction: ``"none"`` for one value per sample, ``"mean"`` or ``"sum"`` for a scalar.
            Defaults to ``"none"``.

    Returns:
        The loss, of shape ``y_pred.shape[:-1]`` with ``reduction="none"``, else a scalar.

    Raises:
        ValueError: if ``reduction`` is not ``"none"``, ``"mean"`` or ``"sum"``, or ``y_true`` and
            ``y_pred`` differ in shape or are scalars.

    >>> import jax.numpy as jnp
    >>> log_cosh(jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[1.0, 1.0], [0.0, 0.0]])).round(4).tolist()
    [0.2169, 0.0]
    """
    where = "log_cosh"
    _check_reduction(reduction, where)
    y_true, y_pred = _pair(y_true, y_pred, where)
    d = y_pred - y_true
    loss = d + jax.nn.softplus(-2.0 * d) - math.log(2.0)
    return _reduce(jnp.mean(loss, axis=-1), reduction)


def poisson(y_true: ArrayLike, y_pred: ArrayLike, *, reduction: Reduction = "none") -> jax.Array:
    """Poisson loss, ``mean_last(p - y · log(p + 1e-7))``.

    Args:
        y_true: observed counts (``>= 0``), same shape as ``y_pred``.
        y_pred: predicted rates (``>= 0``), shape ``(..., features)``.
        reduction: ``"none"`` for one value per sample, ``"mean"`` or ``"sum"`` for a scalar.
            Defaults to ``"none"``.

    Returns:
        The loss, of shape ``y_pred.shape[:-1]`` with ``reduction="none"``, else a scalar.

    Raises:
        ValueError: if ``reduction`` is not ``"none"``, ``"mean"`` or ``"sum"``, or ``y_true`` and
            ``y_pred`` differ in shape or are scalars.

    >>> import jax.numpy as jnp
    >>> poisson(jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[1.0, 1.0], [0.0, 0.0]])).round(4).tolist()
    [1.0, 0.0]
    """
    where = "poisson"
    _check_reduction(reduction, where)
    y_true, y_pred = _pair(y_true, y_pred, where)
    return _reduce(jnp.mean(y_pred - y_true * jnp.log(y_pred + 1.0e-7), axis=-1), reduction)


def huber(
    y_true: ArrayLike, y_pred: ArrayLike, *, delta: float = 1.0, reduction: Reduction = "none"
) -> jax.Array:
    """Huber loss, ``mean_last`` of ``½d²`` where ``|d| ≤ delta`` else ``delta · (|d| - ½ delta)``.

    Deviation from Axon: Axon returns the element-wise loss (no last-axis mean); here it is
    averaged over the last axis like the other regression losses (PyTorch's
    ``huber_loss`` with ``reduction="mean"`` equals ``reduction="mean"`` here).

    Args:
        y_true: targets, same shape as ``y_pred``.
        y_pred: predictions, shape ``(..., features)``.
        delta: the error size where the loss turns from quadratic to linear. Defaults to
            ``1.0``.
        reduction: ``"none"`` for one value per sample, ``"mean"`` or ``"sum"`` for a scalar.
            Defaults to ``"none"``.

    Returns:
        The loss, of shape ``y_pred.shape[:-1]`` with ``reduction="none"``, else a scalar.

    Raises:
        ValueError: if ``reduction`` is not ``"none"``, ``"mean"`` or ``"sum"``, or ``y_true`` and
            ``y_pred`` differ in shape or are scalars.

    >>> import jax.numpy as jnp
    >>> huber(jnp.array([[1.0], [1.5], [2.0]]), jnp.array([[0.8], [1.8], [2.1]])).round(4).tolist()
    [0.02, 0.045, 0.005]
    """
    where = "huber"
    _check_reduction(reduction, where)
    y_true, y_pred = _pair(y_true, y_pred, where)
    d = jnp.abs(y_pred - y_true)
    loss = jnp.where(d <= delta, 0.5 * d**2, delta * d - 0.5 * delta**2)
    return _reduce(jnp.mean(loss, axis=-1), reduction)


def cosine_similarity(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    axes: int | Sequence[int] = 1,
    eps: float = 1.0e-6,
    reduction: Reduction = "none",
) -> jax.Array:
    """Cosine similarity over ``axes``: ``Σ y·p / max(‖y‖ · ‖p‖, eps)``.

    This is the *similarity* (1 for aligned vectors), as in Axon; a loss to minimize is its
    negative (or ``1 - similarity``). The gradient stays finite for zero vectors.

    Args:
        y_true: first array, same shape as ``y_pred``.
        y_pred: second array.
        axes: axis or axes that hold the vectors (negative values count from the end).
            Defaults to ``1``.
        eps: lower bound on the norm product, which keeps zero vectors finite. Defaults to
            ``1e-6``.
        reduction: ``"none"`` for one value per sample, ``"mean"`` or ``"sum"`` for a scalar.
            Defaults to ``"none"``.

    Returns:
        The similarity, with ``axes`` removed from the shape when ``reduction="none"``, else a
        scalar.

    Raises:
        ValueError: if ``reduction`` is unknown, the shapes differ, or an axis is out of range.

    >>> import jax.numpy as jnp
    >>> y_pred = jnp.array([[1.0, 0.0], [1.0, 1.0]])
    >>> y_true = jnp.array([[0.0, 1.0], [1.0, 1.0]])
    >>> cosine_similarity(y_true, y_pred).round(4).tolist()
    [0.0, 1.0]
    """
    where = "cosine_similarity"
    _check_reduction(reduction, where)
    y_true, y_pred = _pair(y_true, y_pred, where)
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    for a in axes:
        if not -y_pred.ndim <= a < y_pred.ndim:
            raise ValueError(f"{where}: axis {a} is out of range for inputs of rank {y_pred.ndim}")
    dot = jnp.sum(y_true * y_pred, axis=axes)
    sq = jnp.sum(y_true**2, axis=axes) * jnp.sum(y_pred**2, axis=axes)
    return _reduce(dot / jnp.sqrt(jnp.maximum(sq, eps**2)), reduction)


# ---------------------------------------------------------------------------------------------
# Sequences


def connectionist_temporal_classification(
    y_true: tuple[ArrayLike, ArrayLike],
    y_pred: ArrayLike,
    *,
    blank: int = 0,
    reduction: Reduction = "none",
    input_lengths: ArrayLike | None = None,
    zero_infinity: bool = False,
) -> jax.Array:
    """CTC negative log-likelihood per sequence (wraps ``optax.ctc_loss``, a ``lax.scan`` in log space).

    ``y_true = (target_lengths, targets)``: ``target_lengths`` ``(B,)`` and ``targets``
    ``(B, S)`` integer labels, right-padded (values past each length are ignored); labels
    never equal ``blank``. ``y_pred`` ``(B, T, C)`` holds log-probabilities over ``C``
    classes (blank included); it is log-softmax-normalized over the class axis, so logits
    work too. ``input_lengths`` ``(B,)`` defaults to ``T`` for every sequence.
    ``reduction="mean"`` divides each loss by its target length (at least 1) and then
    averages, ``"sum"`` sums, as ``torch.nn.functional.ctc_loss`` does.

    A target that cannot be aligned (input shorter than target length plus repeated
    labels) gets ``inf``, or 0 with ``zero_infinity=True``, like PyTorch.

    Args:
        y_true: the pair ``(target_lengths, targets)``: lengths of shape ``(B,)`` and integer
            labels of shape ``(B, S)``, right-padded.
        y_pred: log-probabilities (or logits) of shape ``(B, T, C)``, ``C`` counting the blank.
        blank: class index of the blank label. Defaults to ``0``.
        reduction: ``"none"`` for one loss per sequence, ``"mean"`` for the mean of the losses
            divided by their target lengths, ``"sum"`` for their sum. Defaults to ``"none"``.
        input_lengths: number of valid frames per sequence, shape ``(B,)``; ``None`` (the
            default) means all ``T``.
        zero_infinity: whether unalignable targets get a loss of 0 instead of ``inf``.
            Defaults to ``False``.

    Returns:
        The negative log-likelihood, of shape ``(B,)`` with ``reduction="none"``, else a
        scalar.

    Raises:
        ValueError: if ``reduction`` is unknown, ``y_true`` is not a pair, or any input's shape
            is not the one described above.

    >>> import jax, jax.numpy as jnp
    >>> log_probs = jax.nn.log_softmax(jnp.zeros((1, 3, 3)))  # uniform over 3 classes
    >>> loss = connectionist_temporal_classification((jnp.array([1]), jnp.array([[1]])), log_probs)
    >>> round(float(loss[0]), 4)  # 6 of the 27 paths read "1": -log(6 / 27)
    1.5041
    """
    where = "connectionist_temporal_classification"
    _check_reduction(reduction, where)
    if not isinstance(y_true, (tuple, list)) or len(y_true) != 2:
        raise ValueError(f"{where}: expected y_true to be a pair (target_lengths, targets)")
    target_lengths = jnp.asarray(y_true[0]).astype(jnp.int32)
    targets = jnp.asarray(y_true[1]).astype(jnp.int32)
    log_probs = jnp.asarray(y_pred)
    log_probs = log_probs.astype(_float_dtype(log_probs))
    if log_probs.ndim != 3:
        raise ValueError(
            f"{where}: expected y_pred of shape (batch, time, classes), got {tuple(log_probs.shape)}"
        )
    batch, time, _ = log_probs.shape
    if targets.ndim != 2 or targets.shape[0] != batch:
        raise ValueError(
            f"{where}: expected targets of shape ({batch}, max_target_length), got {tuple(targets.shape)}"
        )
    if target_lengths.shape != (batch,):
        raise ValueError(
            f"{where}: expected target_lengths of shape ({batch},), got {tuple(target_lengths.shape)}"
        )
    if input_lengths is None:
        input_lengths = jnp.full((batch,), time, jnp.int32)
    else:
        input_lengths = jnp.asarray(input_lengths).astype(jnp.int32)
        if input_lengths.shape != (batch,):
            raise ValueError(
                f"{where}: expected input_lengths of shape ({batch},), got {tuple(input_lengths.shape)}"
            )

    valid_label = jnp.arange(targets.shape[1])[None, :] < target_lengths[:, None]
    labels = jnp.where(valid_label, targets, blank)
    logit_paddings = (jnp.arange(time)[None, :] >= input_lengths[:, None]).astype(log_probs.dtype)
    label_paddings = (~valid_label).astype(log_probs.dtype)
    loss = optax.ctc_loss(log_probs, logit_paddings, labels, label_paddings, blank_id=blank)

    # A path needs one frame per label plus a blank between repeated labels.
    repeats = jnp.sum((labels[:, 1:] == labels[:, :-1]) & valid_label[:, 1:], axis=1)
    feasible = input_lengths >= target_lengths + repeats
    loss = jnp.where(feasible, loss, 0.0 if zero_infinity else jnp.inf)

    if reduction == "mean":
        return jnp.mean(loss / jnp.maximum(target_lengths, 1).astype(loss.dtype))
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------------------------------
# Label smoothing


def apply_label_smoothing(
    y_true: ArrayLike, y_pred: ArrayLike, *, smoothing: float = 0.1
) -> jax.Array:
    """Smooth one-hot targets: ``y · (1 - smoothing) + smoothing / num_classes``.

    ``num_classes`` is the size of ``y_pred``'s last axis (Axon uses axis 1, the same for
    ``(batch, classes)`` inputs).

    Args:
        y_true: one-hot targets, same shape as ``y_pred``.
        y_pred: predictions, shape ``(..., classes)``; only its shape is used.
        smoothing: the share of probability mass spread evenly over the classes, in
            ``[0, 1]``. Defaults to ``0.1``.

    Returns:
        The smoothed targets, of ``y_true``'s shape, in a floating dtype.

    Raises:
        ValueError: if ``smoothing`` is outside ``[0, 1]`` or the shapes differ.

    >>> import jax.numpy as jnp
    >>> apply_label_smoothing(jnp.array([[0.0, 1.0]]), jnp.zeros((1, 2)), smoothing=0.2).round(4).tolist()
    [[0.1, 0.9]]
    """
    where = "apply_label_smoothing"
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"{where}: expected smoothing in [0, 1], got {smoothing!r}")
    y_true, y_pred = _pair(y_true, y_pred, where)
    return y_true * (1.0 - smoothing) + smoothing / y_pred.shape[-1]


def label_smoothing(
    loss_fn: Callable[..., jax.Array], *, smoothing: float = 0.1
) -> Callable[..., jax.Array]:
    """Wrap ``loss_fn`` so that it smooths ``y_true`` first (see ``apply_label_smoothing``).

    The returned function takes ``(y_true, y_pred, **options)`` and forwards the options.

    Args:
        loss_fn: a loss taking ``(y_true, y_pred, **options)``.
        smoothing: the share of probability mass spread evenly over the classes, in
            ``[0, 1]``. Defaults to ``0.1``.

    Returns:
        A loss function ``(y_true, y_pred, **options)`` that smooths ``y_true`` and then calls
        ``loss_fn``.

    Raises:
        ValueError: if ``smoothing`` is outside ``[0, 1]``.

    >>> import jax.numpy as jnp
    >>> loss = label_smoothing(categorical_cross_entropy, smoothing=0.2)
    >>> y_pred = jnp.array([[0.5, 0.5]])
    >>> loss(jnp.array([[0.0, 1.0]]), y_pred, reduction="mean").round(4).tolist()
    0.6931
    """
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"label_smoothing: expected smoothing in [0, 1], got {smoothing!r}")

    def smoothed(y_true: ArrayLike, y_pred: ArrayLike, **opts: Any) -> jax.Array:
        return loss_fn(apply_label_smoothing(y_true, y_pred, smoothing=smoothing), y_pred, **opts)

    smoothed.__name__ = f"label_smoothed_{getattr(loss_fn, '__name__', 'loss')}"
    return smoothed


LOSSES: dict[str, Callable[..., jax.Array]] = {
    "binary_cross_entropy": binary_cross_entropy,
    "categorical_cross_entropy": categorical_cross_entropy,
    "categorical_hinge": categorical_hinge,
    "connectionist_temporal_classification": connectionist_temporal_classification,
    "cosine_similarity": cosine_similarity,
    "hinge": hinge,
    "huber": huber,
    "kl_divergence": kl_divergence,
    "log_cosh": log_cosh,
    "margin_ranking": margin_ranking,
    "mean_absolute_error": mean_absolute_error,
    "mean_squared_error": mean_squared_error,
    "poisson": poisson,
    "soft_margin": soft_margin,
}


def get(name_or_fn: str | Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """A loss function by name, or a callable unchanged.

    Args:
        name_or_fn: a loss name (a key of ``LOSSES``, such as ``"mean_squared_error"``) or a
            callable, which is passed through.

    Returns:
        The loss function.

    Raises:
        ValueError: if ``name_or_fn`` is a string that names no loss.

    >>> get("mean_squared_error") is mean_squared_error
    True
    >>> get("mse")
    Traceback (most recent call last):
    ...
    ValueError: unknown loss 'mse'; expected a callable or one of: 'binary_cross_entropy', ...
    """
    return lookup(name_or_fn, LOSSES, kind="loss")
