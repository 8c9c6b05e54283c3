"""Loss scaling for mixed-precision training: ``identity``, ``static`` and ``dynamic``.

Each returns a :class:`LossScale` ``(init, scale, unscale)``, Axon's triple:

* ``init() -> state``;
* ``scale(x, state) -> x * loss_scale`` (any pytree: a loss or gradients);
* ``unscale(grads, state) -> (grads / loss_scale, new_state)``; the dynamic scale adjusts
  itself here.

All functions are pure and ``jax.jit``-friendly. :func:`all_finite` tells a training step
whether to apply the update (a step whose gradients hold ``inf`` or ``NaN`` should be
skipped; the dynamic scale has then already shrunk).

Difference from Axon: the dynamic scale treats ``NaN`` gradients as non-finite too (Axon
only checks for infinities, so a ``NaN`` step would grow the scale). Half-precision values
are scaled and unscaled in float32 and rounded back, since a scale of ``2**16`` or more is
infinite in float16 (unscaling by it would silently give zero gradients).

>>> import jax.numpy as jnp
>>> init, scale, unscale = dynamic(init_scale=2.0**10, period=2)
>>> state = init()
>>> grads, state = unscale(scale({"w": jnp.ones(2)}, state), state)
>>> grads["w"].tolist(), float(state["loss_scale"]), int(state["counter"])
([1.0, 1.0], 1024.0, 1)
>>> _, state = unscale({"w": jnp.array([jnp.inf, 1.0])}, state)
>>> float(state["loss_scale"]), int(state["counter"])
(512.0, 0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["LossScale", "all_finite", "dynamic", "identity", "static"]


class LossScale(NamedTuple):
    """``(init, scale, unscale)``: ``init() -> state``, ``scale(x, state) -> x``,
    ``unscale(x, state) -> (x, state)``.

    >>> init, scale, unscale = identity()
    >>> unscale(2.0, init())
    (2.0, {})
    """

    init: Callable[[], dict]
    scale: Callable[[Any, dict], Any]
    unscale: Callable[[Any, dict], tuple[Any, dict]]


def all_finite(tree: Any) -> jax.Array:
    """A boolean scalar: whether every floating value in ``tree`` is finite (no ``inf``,
    no ``NaN``). Integer leaves count as finite; an empty tree is finite.

    Args:
        tree: any pytree of arrays.

    Returns:
        A boolean scalar array.

    >>> import jax.numpy as jnp
    >>> bool(all_finite({"a": jnp.ones(3), "b": jnp.array([0.0, jnp.nan])}))
    False
    >>> bool(all_finite({"a": jnp.ones(3)})), bool(all_finite({}))
    (True, True)
    """
    checks = [
        jnp.all(jnp.isfinite(leaf))
        for leaf in jax.tree_util.tree_leaves(tree)
        if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)
    ]
    if not checks:
        return jnp.array(True)
    return jnp.all(jnp.stack(checks))


def _map_floats(fn: Callable[[Any], Any], tree: Any) -> Any:
    def leaf(x: Any) -> Any:
        if jnp.issubdtype(jnp.result_type(x), jnp.inexact):
            return fn(x)
        return x

    return jax.tree_util.tree_map(leaf, tree)


def _compute_dtype(dtype: Any) -> Any:
    """float32 for narrower floats: the scale itself (2**16 and up) does not fit in float16."""
    return jnp.float32 if jnp.dtype(dtype).itemsize < 4 else dtype


def _mul(x: Any, s: Any) -> Any:
    x = jnp.asarray(x)
    wide = _compute_dtype(x.dtype)
    return (x.astype(wide) * s.astype(wide)).astype(x.dtype)


def _div(x: Any, s: Any) -> Any:
    x = jnp.asarray(x)
    wide = _compute_dtype(x.dtype)
    return (x.astype(wide) / s.astype(wide)).astype(x.dtype)


def _check_positive(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: expected {what} to be a positive finite number, got {value!r}")
    return float(value)


def identity(**opts: Any) -> LossScale:
    """No scaling: ``scale`` and ``unscale`` return their input; the state is ``{}``.
    Options are accepted and ignored, as in Axon.

    Args:
        **opts: ignored.

    Returns:
        A :class:`LossScale`.

    >>> init, scale, unscale = identity()
    >>> init(), scale(3.0, {})
    ({}, 3.0)
    """

    def init() -> dict:
        return {}

    def scale(x: Any, state: dict) -> Any:
        return x

    def unscale(x: Any, state: dict) -> tuple[Any, dict]:
        return x, state

    return LossScale(init, scale, unscale)


def static(init_scale: float = 2**15) -> LossScale:
    """A fixed scale: ``scale`` multiplies by ``init_scale``, ``unscale`` divides; the
    state ``{"loss_scale"}`` never changes.

    Args:
        init_scale: the scale (default ``2**15``), positive and finite.

    Returns:
        A :class:`LossScale`.

    Raises:
        ValueError: ``init_scale`` is not a positive finite number.

    >>> import jax.numpy as jnp
    >>> init, scale, unscale = static(init_scale=4.0)
    >>> state = init()
    >>> scale(jnp.array(1.5), state).tolist()
    6.0
    >>> grads, new_state = unscale({"w": jnp.array([8.0])}, state)
    >>> grads["w"].tolist(), float(new_state["loss_scale"])
    ([2.0], 4.0)
    """
    value = _check_positive(init_scale, "init_scale", "static")

    def init() -> dict:
        return {"loss_scale": jnp.asarray(value, jnp.float32)}

    def scale(x: Any, state: dict) -> Any:
        return _map_floats(lambda v: _mul(v, state["loss_scale"]), x)

    def unscale(x: Any, state: dict) -> tuple[Any, dict]:
        return _map_floats(lambda v: _div(v, state["loss_scale"]), x), state

    return LossScale(init, scale, unscale)


def dynamic(
    init_scale: float = 2**15,
    period: int = 2000,
    factor: float = 2,
    min_loss_scale: float = 1,
) -> LossScale:
    """A scale that adapts, with state ``{"loss_scale", "counter"}``. ``unscale`` divides
    the gradients by the scale, then: if they are all finite, the counter advances and,
    when it was ``period - 1`` (so after ``period`` finite steps in a row), the scale is
    multiplied by ``factor`` (unless that overflows) and the counter wraps to 0; if any is
    ``inf`` or ``NaN``, the scale becomes ``max(min_loss_scale, scale / factor)`` and the
    counter 0.

    Args:
        init_scale: the initial scale (default ``2**15``), positive and finite.
        period: finite steps in a row before the scale grows (default 2000).
        factor: the growth and shrink factor (default 2), at least 1.
        min_loss_scale: the smallest scale (default 1), positive and finite.

    Returns:
        A :class:`LossScale`.

    Raises:
        ValueError: a bad ``init_scale``, ``period``, ``factor`` or ``min_loss_scale``.

    >>> import jax.numpy as jnp
    >>> init, scale, unscale = dynamic(init_scale=8.0, period=2, factor=2, min_loss_scale=2.0)
    >>> state, scales = init(), []
    >>> for g in [1.0, 1.0, 1.0, jnp.nan, jnp.inf, jnp.inf]:
    ...     _, state = unscale(jnp.array(g), state)
    ...     scales.append(float(state["loss_scale"]))
    >>> scales
    [8.0, 16.0, 16.0, 8.0, 4.0, 2.0]
    """
    where = "dynamic"
    value = _check_positive(init_scale, "init_scale", where)
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise ValueError(f"{where}: expected period to be a positive int, got {period!r}")
    factor = _check_positive(factor, "factor", where)
    if factor < 1:
        raise ValueError(f"{where}: expected factor to be at least 1, got {factor!r}")
    floor = _check_positive(min_loss_scale, "min_loss_scale", where)

    def init() -> dict:
        return {"loss_scale": jnp.asarray(value, jnp.float32), "counter": jnp.asarray(0, jnp.int32)}

    def scale(x: Any, state: dict) -> Any:
        return _map_floats(lambda v: _mul(v, state["loss_scale"]), x)

    def unscale(x: Any, state: dict) -> tuple[Any, dict]:
        loss_scale = jnp.asarray(state["loss_scale"], jnp.float32)
        counter = jnp.asarray(state["counter"], jnp.int32)
        grads = _map_floats(lambda v: _div(v, loss_scale), x)
        finite = all_finite(grads)
        grown = loss_scale * factor
        grown = jnp.where(jnp.isfinite(grown), grown, loss_scale)
        new_scale = jnp.where(
            finite,
            jnp.where(counter == period - 1, grown, loss_scale),
            jnp.maximum(floor, loss_scale / factor),
        )
        new_counter = jnp.where(finite, (counter + 1) % period, 0).astype(jnp.int32)
        return grads, {"loss_scale": new_scale.astype(jnp.float32), "counter": new_counter}

    return LossScale(init, scale, unscale)
