"""Activation functions: Axon's 22 element-wise (and axis-wise) activations in pure JAX.

Every function takes an array first and its options as keywords only, with Axon's
defaults: ``f(x, *, opt=default)``. All are ``jax.jit``/``jax.grad``/``jax.vmap``
friendly, keep the input's floating dtype (``bfloat16`` in, ``bfloat16`` out) and
promote integer inputs to the default float dtype (``linear`` returns its input as is).
``softmax``, ``log_softmax`` and ``log_sumexp`` subtract the maximum (under
``stop_gradient``) before exponentiating, so large logits neither overflow nor give
NaN gradients.

Activations can be looked up by name with :func:`get` (``ACTIVATIONS`` maps each name
to its function), which is how graph constructors accept ``activation="relu"``.

Differences from Axon:

* ``hard_sigmoid`` defaults to ``alpha=0.2, beta=0.5`` (the Keras definition, so
  ``hard_sigmoid(0) == 0.5``); Axon uses ``beta=0.2``, which puts the function's
  midpoint off zero. ``hard_silu`` uses the same defaults.
* Axon's ``sigmoid``/``softmax`` attach their input logits to the output for the
  cross-entropy losses; here losses take ``from_logits=`` explicitly instead.

>>> import jax.numpy as jnp
>>> from axon import activations
>>> activations.relu(jnp.array([-1.0, 0.0, 2.0])).tolist()
[0.0, 0.0, 2.0]
>>> activations.get("softmax")(jnp.zeros(4)).tolist()
[0.25, 0.25, 0.25, 0.25]
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from axon import registry
from axon.lookup import lookup

__all__ = [
    "ACTIVATIONS",
    "celu",
    "elu",
    "exp",
    "gelu",
    "get",
    "hard_sigmoid",
    "hard_silu",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "log_sumexp",
    "mish",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "softsign",
    "tanh",
]

Axis = int | Sequence[int]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_GAMMA = 1.0507009873554804934193349852946


# ---------------------------------------------------------------------------------------
# helpers


def _float(x: Any) -> jax.Array:
    """``x`` as an array with an inexact dtype (integers and bools go to the default float)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return x


def _upcast(x: jax.Array) -> jax.Array:
    """Half-precision (float16/bfloat16) ``x`` as float32, for numerically sensitive
    reductions; other dtypes unchanged. Callers cast the result back to ``x.dtype``."""
    if x.dtype in (jnp.float16, jnp.bfloat16):
        return x.astype(jnp.float32)
    return x


def _opt(value: Any, x: jax.Array) -> Any:
    """An option value that does not change ``x``'s dtype.

    Python and NumPy scalars become (weakly typed) Python floats; arrays are cast to
    ``x.dtype``.
    """
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)  # a Python float is weakly typed: it never promotes x
    return jnp.asarray(value, dtype=x.dtype)


def _is_concrete_zero(value: Any) -> bool:
    """True when ``value`` is a known (not traced) scalar equal to 0."""
    try:
        return float(value) == 0
    except (TypeError, jax.errors.ConcretizationTypeError):
        return False


def _axes(x: jax.Array, axis: Axis, name: str) -> tuple[int, ...]:
    """Normalize ``axis`` (an int or a sequence of ints) to sorted non-negative axes."""
    raw = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    try:
        if not raw or any(isinstance(a, bool) for a in raw):
            raise TypeError
        raw = tuple(operator.index(a) for a in raw)
    except TypeError:
        raise ValueError(
            f"{name}: axis must be an int or a non-empty tuple of ints, got {axis!r}"
        ) from None
    rank = x.ndim
    out = []
    for a in raw:
        if not -rank <= a < rank:
            raise ValueError(
                f"{name}: axis {a} is out of range for an input of rank {rank} "
                f"(shape {tuple(x.shape)}); expected an axis in [{-rank}, {rank - 1}]"
            )
        out.append(a % rank)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: repeated axis in {axis!r} for an input of rank {rank}")
    return tuple(sorted(out))


def _shifted(x: jax.Array, axes: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """``(x - m, m)`` with ``m`` the (gradient-stopped) max over ``axes``, kept dims.

    A max of ``±inf`` (an all ``-inf`` slice) is replaced by 0 so no ``inf - inf`` appears.
    """
    m = jnp.max(x, axis=axes, keepdims=True)
    m = lax.stop_gradient(jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m)))
    return x - m, m


# ---------------------------------------------------------------------------------------
# element-wise activations


def celu(x: jax.Array, *, alpha: float = 1.0) -> jax.Array:
    """Continuously-differentiable ELU: ``x`` if ``x > 0`` else ``alpha * (exp(x / alpha) - 1)``.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.
        alpha: scale of the negative branch and of its exponent; must be non-zero. Defaults
            to ``1.0``.

    Returns:
        Array of ``x``'s shape and floating dtype.

    Raises:
        ValueError: if ``alpha`` is zero (checked when its value is concrete, not traced).

    >>> import jax.numpy as jnp
    >>> celu(jnp.array([-1.0, 0.0, 2.0])).tolist()
    [-0.6321, 0.0, 2.0]
    >>> celu(jnp.array([-1.0]), alpha=2.0).tolist()
    [-0.7869]
    """
    if _is_concrete_zero(alpha):
        raise ValueError(f"celu: alpha must be non-zero, got {alpha!r}")
    x = _float(x)
    alpha = _opt(alpha, x)
    # max/min keep the unused branch finite, so gradients never see inf * 0.
    return jnp.maximum(x, 0) + alpha * jnp.expm1(jnp.minimum(x, 0) / alpha)


def elu(x: jax.Array, *, alpha: float = 1.0) -> jax.Array:
    """Exponential linear unit: ``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.
        alpha: value the negative branch saturates to (as ``-alpha``). Defaults to ``1.0``.

    Returns:
        Array of ``x``'s shape and floating dtype.

    >>> import jax.numpy as jnp
    >>> elu(jnp.array([-1.0, 0.0, 2.0])).tolist()
    [-0.6321, 0.0, 2.0]
    >>> elu(jnp.array([-1.0]), alpha=0.5).tolist()
    [-0.3161]
    """
    x = _float(x)
    alpha = _opt(alpha, x)
    safe = jnp.where(x > 0, jnp.zeros_like(x), x)
    return jnp.where(x > 0, x, alpha * jnp.expm1(safe))


def exp(x: jax.Array) -> jax.Array:
    """Exponential, ``e ** x``.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.

    Returns:
        Array of ``x``'s shape and floating dtype.

    >>> import jax.numpy as jnp
    >>> exp(jnp.array([0.0, 1.0])).tolist()
    [1.0, 2.7183]
    """
    return jnp.exp(_float(x))


def gelu(x: jax.Array) -> jax.Array:
    """Gaussian error linear unit, exact form: ``x * (1 + erf(x / sqrt(2))) / 2``.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.

    Returns:
        Array of ``x``'s shape and floating dtype.

    >>> import jax.numpy as jnp
    >>> gelu(jnp.array([-1.0, 0.0, 1.0])).tolist()
    [-0.1587, 0.0, 0.8413]
    """
    x = _float(x)
    return x * (lax.erf(x / math.sqrt(2.0)) + 1) / 2


def hard_sigmoid(x: jax.Array, *, alpha: float = 0.2, beta: float = 0.5) -> jax.Array:
    """Piecewise-linear sigmoid: ``clip(alpha * x + beta, 0, 1)``.

    Defaults follow Keras (``alpha=0.2, beta=0.5``, so ``hard_sigmoid(0) == 0.5``).
    Axon defaults to ``beta=0.2``, a defect that shifts the function off centre; pass
    ``beta=0.2`` to reproduce it. ``alpha=1/6`` gives PyTorch's ``hardsigmoid``.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.
        alpha: slope of the linear part. Defaults to ``0.2``.
        beta: offset of the linear part (the value at ``x == 0``). Defaults to ``0.5``.

    Returns:
        Array of ``x``'s shape and floating dtype, with values in ``[0, 1]``.

    >>> import jax.numpy as jnp
    >>> hard_sigmoid(jnp.array([-3.0, 0.0, 1.0, 3.0])).tolist()
    [0.0, 0.5, 0.7, 1.0]
    """
    x = _float(x)
    return jnp.clip(_opt(alpha, x) * x + _opt(beta, x), 0, 1)


def hard_silu(x: jax.Array, *, alpha: float = 0.2, beta: float = 0.5) -> jax.Array:
    """Hard SiLU (hard swish): ``x * hard_sigmoid(x, alpha=alpha, beta=beta)``.

    Same defaults as :func:`hard_sigmoid` (Keras's; Axon uses ``beta=0.2``).
    ``alpha=1/6`` gives PyTorch's ``hardswish``.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.
        alpha: slope of the inner hard sigmoid. Defaults to ``0.2``.
        beta: offset of the inner hard sigmoid. Defaults to ``0.5``.

    Returns:
        Array of ``x``'s shape and floating dtype.

    >>> import jax.numpy as jnp
    >>> hard_silu(jnp.array([-3.0, 0.0, 1.0, 3.0])).tolist()
    [-0.0, 0.0, 0.7, 3.0]
    """
    x = _float(x)
    return x * hard_sigmoid(x, alpha=alpha, beta=beta)


def hard_tanh(x: jax.Array) -> jax.Array:
    """Piecewise-linear tanh: ``clip(x, -1, 1)``.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.

    Returns:
        Array of ``x``'s shape and floating dtype, with values in ``[-1, 1]``.

    >>> import jax.numpy as jnp
    >>> hard_tanh(jnp.array([-2.0, 0.5, 2.0])).tolist()
    [-1.0, 0.5, 1.0]
    """
    x = _float(x)
    return jnp.where(x > 1, 1, jnp.where(x < -1, -1, x)).astype(x.dtype)


def leaky_relu(x: jax.Array, *, alpha: float = 0.01) -> jax.Array:
    """Leaky ReLU: ``x`` if ``x > 0`` else ``alpha * x``.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.
        alpha: slope for negative inputs. Defaults to ``0.01``.

    Returns:
        Array of ``x``'s shape and floating dtype.

    >>> import jax.numpy as jnp
    >>> leaky_relu(jnp.array([-2.0, 0.0, 3.0])).tolist()
    [-0.02, 0.0, 3.0]
    >>> leaky_relu(jnp.array([-2.0]), alpha=0.5).tolist()
    [-1.0]
    """
    x = _float(x)
    return jnp.where(x > 0, x, _opt(alpha, x) * x)


def linear(x: jax.Array) -> jax.Array:
    """Identity: returns ``x`` unchanged.

    Args:
        x: input array of any shape.

    Returns:
        ``x`` itself (no copy, no dtype change).

    >>> import jax.numpy as jnp
    >>> linear(jnp.array([-1.0, 2.0])).tolist()
    [-1.0, 2.0]
    """
    return x


def log_sigmoid(x: jax.Array) -> jax.Array:
    """Log of the sigmoid, computed stably as ``-softplus(-x)``.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.

    Returns:
        Array of ``x``'s shape and floating dtype, with values ``<= 0``.

    >>> import jax.numpy as jnp
    >>> log_sigmoid(jnp.array([0.0, -1000.0])).tolist()
    [-0.6931, -1000.0]
    """
    return -softplus(-_float(x))


def mish(x: jax.Array) -> jax.Array:
    """Mish: ``x * tanh(softplus(x))``.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.

    Returns:
        Array of ``x``'s shape and floating dtype.

    >>> import jax.numpy as jnp
    >>> mish(jnp.array([-1.0, 0.0, 1.0])).tolist()
    [-0.3034, 0.0, 0.8651]
    """
    x = _float(x)
    return x * jnp.tanh(softplus(x))


@jax.custom_jvp
def _relu(x: jax.Array) -> jax.Array:
    return jnp.maximum(x, 0)


@_relu.defjvp
def _relu_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _relu(x), jnp.where(x > 0, t, jnp.zeros_like(t))


def relu(x: jax.Array) -> jax.Array:
    """Rectified linear unit ``max(x, 0)``; its gradient is 1 for ``x > 0`` and 0 for ``x <= 0``.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.

    Returns:
        Array of ``x``'s shape and floating dtype.

    >>> import jax
    >>> import jax.numpy as jnp
    >>> relu(jnp.array([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 2.0]
    >>> float(jax.grad(relu)(0.0))
    0.0
    """
    return _relu(_float(x))


@jax.custom_jvp
def _relu6(x: jax.Array) -> jax.Array:
    return jnp.minimum(jnp.maximum(x, 0), 6)


@_relu6.defjvp
def _relu6_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _relu6(x), jnp.where((x > 0) & (x < 6), t, jnp.zeros_like(t))


def relu6(x: jax.Array) -> jax.Array:
    """ReLU capped at 6: ``min(max(x, 0), 6)`` (gradient 0 at both kinks).

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.

    Returns:
        Array of ``x``'s shape and floating dtype, with values in ``[0, 6]``.

    >>> import jax.numpy as jnp
    >>> relu6(jnp.array([-1.0, 3.0, 9.0])).tolist()
    [0.0, 3.0, 6.0]
    """
    return _relu6(_float(x))


def selu(x: jax.Array, *, alpha: float = _SELU_ALPHA, gamma: float = _SELU_GAMMA) -> jax.Array:
    """Scaled ELU: ``gamma * elu(x, alpha=alpha)``.

    Defaults are the self-normalizing constants ``alpha ≈ 1.6733``, ``gamma ≈ 1.0507``.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.
        alpha: scale of the inner ELU's negative branch. Defaults to ``1.6732632...``.
        gamma: overall output scale. Defaults to ``1.0507009...``.

    Returns:
        Array of ``x``'s shape and floating dtype.

    >>> import jax.numpy as jnp
    >>> selu(jnp.array([-1.0, 0.0, 1.0])).tolist()
    [-1.1113, 0.0, 1.0507]
    """
    x = _float(x)
    return _opt(gamma, x) * elu(x, alpha=alpha)


def sigmoid(x: jax.Array) -> jax.Array:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, stable for large ``|x|``.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.

    Returns:
        Array of ``x``'s shape and floating dtype, with values in ``[0, 1]``.

    >>> import jax.numpy as jnp
    >>> sigmoid(jnp.array([0.0, 2.0, -1000.0])).tolist()
    [0.5, 0.8808, 0.0]
    """
    return lax.logistic(_float(x))


def silu(x: jax.Array) -> jax.Array:
    """Sigmoid linear unit (swish): ``x * sigmoid(x)``.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.

    Returns:
        Array of ``x``'s shape and floating dtype.

    >>> import jax.numpy as jnp
    >>> silu(jnp.array([-1.0, 0.0, 1.0])).tolist()
    [-0.2689, 0.0, 0.7311]
    """
    x = _float(x)
    return x * lax.logistic(x)


def softplus(x: jax.Array) -> jax.Array:
    """Softplus ``log(1 + exp(x))``, stable: ``max(x, 0) + log1p(exp(-|x|))``.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.

    Returns:
        Array of ``x``'s shape and floating dtype, with values ``>= 0``.

    >>> import jax.numpy as jnp
    >>> softplus(jnp.array([0.0, 1000.0, -1000.0])).tolist()
    [0.6931, 1000.0, 0.0]
    """
    return jnp.logaddexp(_float(x), 0)


def softsign(x: jax.Array) -> jax.Array:
    """Softsign: ``x / (|x| + 1)``.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.

    Returns:
        Array of ``x``'s shape and floating dtype, with values in ``(-1, 1)``.

    >>> import jax.numpy as jnp
    >>> softsign(jnp.array([-3.0, 0.0, 1.0])).tolist()
    [-0.75, 0.0, 0.5]
    """
    x = _float(x)
    return x / (jnp.abs(x) + 1)


def tanh(x: jax.Array) -> jax.Array:
    """Hyperbolic tangent.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.

    Returns:
        Array of ``x``'s shape and floating dtype, with values in ``[-1, 1]``.

    >>> import jax.numpy as jnp
    >>> tanh(jnp.array([0.0, 1.0])).tolist()
    [0.0, 0.7616]
    """
    return jnp.tanh(_float(x))


# ---------------------------------------------------------------------------------------
# axis-wise activations


def softmax(x: jax.Array, *, axis: Axis = -1) -> jax.Array:
    """Softmax over ``axis`` (an int or a tuple of ints), max-shifted for stability.
    Half-precision inputs are computed in float32 and returned in their own dtype.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.
        axis: axis or non-empty tuple of axes to normalize over (negative values count from
            the end). Defaults to ``-1``, the last axis.

    Returns:
        Array of ``x``'s shape and dtype; it sums to 1 over ``axis``.

    Raises:
        ValueError: if ``axis`` is not an int or a non-empty tuple of distinct ints within ``x``'s rank.

    >>> import jax.numpy as jnp
    >>> softmax(jnp.array([1.0, 2.0, 3.0])).tolist()
    [0.0900, 0.2447, 0.6652]
    >>> softmax(jnp.array([[0.0, 0.0], [0.0, 1000.0]]), axis=0).tolist()
    [[0.5, 0.0], [0.5, 1.0]]
    """
    x = _float(x)
    axes = _axes(x, axis, "softmax")
    shifted, _ = _shifted(_upcast(x), axes)
    e = jnp.exp(shifted)
    return (e / jnp.sum(e, axis=axes, keepdims=True)).astype(x.dtype)


def log_softmax(x: jax.Array, *, axis: Axis = -1) -> jax.Array:
    """Log of the softmax over ``axis``: ``x - log_sumexp(x, axis=axis)``, max-shifted.
    Half-precision inputs are computed in float32 and returned in their own dtype.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.
        axis: axis or non-empty tuple of axes to normalize over (negative values count from
            the end). Defaults to ``-1``, the last axis.

    Returns:
        Array of ``x``'s shape and dtype; its ``exp`` sums to 1 over ``axis``.

    Raises:
        ValueError: if ``axis`` is not an int or a non-empty tuple of distinct ints within ``x``'s rank.

    >>> import jax.numpy as jnp
    >>> log_softmax(jnp.array([1.0, 2.0, 3.0])).tolist()
    [-2.4076, -1.4076, -0.4076]
    >>> log_softmax(jnp.array([0.0, 1000.0])).tolist()
    [-1000.0, 0.0]
    """
    x = _float(x)
    axes = _axes(x, axis, "log_softmax")
    shifted, _ = _shifted(_upcast(x), axes)
    return (shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axes, keepdims=True))).astype(x.dtype)


def log_sumexp(x: jax.Array, *, axis: Axis = -1) -> jax.Array:
    """``log(sum(exp(x)))`` over ``axis``, max-shifted; the reduced axes are kept (size 1).
    Half-precision inputs are computed in float32 and returned in their own dtype.

    Args:
        x: input array of any shape; integer inputs are promoted to the default float dtype.
        axis: axis or non-empty tuple of axes to reduce (negative values count from
            the end). Defaults to ``-1``, the last axis.

    Returns:
        Array of ``x``'s dtype and rank, with the reduced axes kept at size 1.

    Raises:
        ValueError: if ``axis`` is not an int or a non-empty tuple of distinct ints within ``x``'s rank.

    >>> import jax.numpy as jnp
    >>> out = log_sumexp(jnp.array([[1.0, 2.0, 3.0]]))
    >>> out.shape, out.tolist()
    ((1, 1), [[3.4076]])
    >>> log_sumexp(jnp.array([1000.0, 1000.0])).tolist()
    [1000.6931]
    """
    x = _float(x)
    axes = _axes(x, axis, "log_sumexp")
    shifted, m = _shifted(_upcast(x), axes)
    return (jnp.log(jnp.sum(jnp.exp(shifted), axis=axes, keepdims=True)) + m).astype(x.dtype)


# ---------------------------------------------------------------------------------------
# lookup

ACTIVATIONS: dict[str, Callable[..., jax.Array]] = {
    "celu": celu,
    "elu": elu,
    "exp": exp,
    "gelu": gelu,
    "hard_sigmoid": hard_sigmoid,
    "hard_silu": hard_silu,
    "hard_tanh": hard_tanh,
    "leaky_relu": leaky_relu,
    "linear": linear,
    "log_sumexp": log_sumexp,
    "log_sigmoid": log_sigmoid,
    "log_softmax": log_softmax,
    "mish": mish,
    "relu": relu,
    "relu6": relu6,
    "sigmoid": sigmoid,
    "silu": silu,
    "selu": selu,
    "softmax": softmax,
    "softplus": softplus,
    "softsign": softsign,
    "tanh": tanh,
}


def get(name_or_fn: str | Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """The activation function called ``name_or_fn``; a callable is returned unchanged.

    Args:
        name_or_fn: an activation name (a key of ``ACTIVATIONS``, such as ``"relu"``) or a
            callable, which is passed through.

    Returns:
        The activation function.

    Raises:
        ValueError: if ``name_or_fn`` is a string that names no activation.

    >>> import jax.numpy as jnp
    >>> get("relu") is relu
    True
    >>> get(jnp.sin) is jnp.sin
    True
    >>> get("rellu")
    Traceback (most recent call last):
    ...
    ValueError: unknown activation 'rellu' (did you mean 'relu'?); expected a callable or one of: 'celu', ...
    """
    return lookup(name_or_fn, ACTIVATIONS, kind="activation")


# every activation is an op, permanently named "axon.<name>" (see axon.registry)
registry.register_all("op", {f"axon.{name}": fn for name, fn in ACTIVATIONS.items()})
