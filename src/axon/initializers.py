"""Parameter initializers: Axon's 14 initializer factories, with JAX's calling convention.

Each factory takes the initializer's options and returns an init function
``init(key, shape, dtype=jnp.float32) -> jax.Array``, the same signature as the
functions in ``jax.nn.initializers``, so either can be passed wherever axon expects an
initializer. ``zeros``, ``ones``, ``full`` and ``identity`` accept and ignore the key
(``None`` is fine).

The variance-scaling family (``lecun_*``, ``glorot_*``, ``he_*``, ``variance_scaling``)
computes fans as Axon does, from the last two axes (``(..., in, out)``, i.e. HWIO
convolution kernels): rank 0 gives ``(1, 1)``, rank 1 ``(n, n)``, rank 2 ``(in, out)``,
and rank ``>= 3`` multiplies both by the receptive field ``prod(shape[:-2])``. For
rank ``>= 2`` the samples equal ``jax.nn.initializers``' for the same key bit for bit.
As in Axon, ``*_normal`` draw from a normal truncated at two standard deviations.

Initializers can be looked up by name with :func:`get` (``INITIALIZERS`` maps each name
usable as a string to its factory). Each factory is registered in :mod:`axon.registry` as
``"axon.initializers.<name>"``, and every init function it returns carries that name and
its options (defaults included; see :func:`axon.registry.made_by`), so that a saved model
using it remakes it on load as ``factory(**options)``, which samples bit for bit the same.

Differences from Axon: Axon's initializers take ``(shape, type, key)``; here the key comes
first, as in JAX. ``orthogonal(distribution="uniform")`` samples its random matrix from
``U(-1, 1)`` rather than Axon's ``U(0, 1)``, whose all-positive entries bias the first
column of the result.

>>> import jax
>>> from axon import initializers
>>> init = initializers.glorot_uniform()
>>> w = init(jax.random.key(0), (64, 32))
>>> w.shape, w.dtype
((64, 32), dtype('float32'))
>>> initializers.get("zeros")(None, (2,)).tolist()
[0.0, 0.0]
>>> from axon import registry
>>> registry.made_by(initializers.uniform(scale=0.1))
('axon.initializers.uniform', {'scale': 0.1})
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from axon import registry
from axon.lookup import lookup

__all__ = [
    "INITIALIZERS",
    "InitFn",
    "full",
    "get",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "identity",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "ones",
    "orthogonal",
    "uniform",
    "variance_scaling",
    "zeros",
]

InitFn = Callable[..., jax.Array]
"""An init function: ``init(key, shape, dtype=jnp.float32) -> jax.Array``."""

_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("normal", "uniform", "truncated_normal")
_ORTHOGONAL_DISTRIBUTIONS = ("normal", "uniform")
# standard deviation of a standard normal truncated to [-2, 2]
_TRUNCATED_STD = 0.87962566103423978


# ---------------------------------------------------------------------------------------
# helpers


def _shape(shape: Any, name: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        out = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"{name}: shape must be a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in out):
        raise ValueError(f"{name}: shape must not have negative dimensions, got {out}")
    return out


def _float_dtype(dtype: Any, name: str) -> np.dtype:
    dt = jnp.dtype(dtype)
    if not jnp.issubdtype(dt, jnp.floating):
        raise ValueError(f"{name}: random initializers need a floating dtype, got {dt}")
    return dt


def _check_key(key: Any, name: str) -> None:
    if key is None:
        raise ValueError(
            f"{name}: a random initializer needs a PRNG key, e.g. jax.random.key(0); got None"
        )


def _check_choice(name: str, option: str, value: Any, accepted: Sequence[str]) -> None:
    if value not in accepted:
        choices = ", ".join(repr(a) for a in accepted)
        raise ValueError(f"{name}: invalid {option} {value!r}; expected one of {choices}")


def _check_scale(name: str, scale: Any) -> None:
    if isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale < 0:
        raise ValueError(f"{name}: scale must be non-negative, got {scale}")


def _compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Axon's fan rule: ``(fan_in, fan_out)`` from the last two axes."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """Standard normal truncated to [-2, 2]."""
    return jax.random.truncated_normal(key, -2, 2, shape, dtype)


# ---------------------------------------------------------------------------------------
# constant initializers


@registry.factory("initializer_factory", "axon.initializers.zeros")
def zeros() -> InitFn:
    """All zeros.

    Returns:
        An init function ``init(key, shape, dtype=jnp.float32) -> jax.Array`` that
        returns zeros of ``shape`` and ``dtype``; it ignores its key (``None`` is fine).
        It raises ``TypeError``/``ValueError`` for a malformed shape.

    >>> zeros()(None, (2, 2)).tolist()
    [[0.0, 0.0], [0.0, 0.0]]
    """

    def init(key: Any, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return jnp.zeros(_shape(shape, "zeros"), dtype)

    return init


@registry.factory("initializer_factory", "axon.initializers.ones")
def ones() -> InitFn:
    """All ones.

    Returns:
        An init function ``init(key, shape, dtype=jnp.float32) -> jax.Array`` that
        returns ones of ``shape`` and ``dtype``; it ignores its key (``None`` is fine).
        It raises ``TypeError``/``ValueError`` for a malformed shape.

    >>> import jax.numpy as jnp
    >>> ones()(None, (3,), jnp.int32).tolist()
    [1, 1, 1]
    """

    def init(key: Any, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return jnp.ones(_shape(shape, "ones"), dtype)

    return init


@registry.factory("initializer_factory", "axon.initializers.full")
def full(value: Any) -> InitFn:
    """All ``value`` (a scalar, or an array that broadcasts to the shape).

    Args:
        value: the fill value: a scalar, or an array-like that broadcasts to the requested
            shape.

    Returns:
        An init function ``init(key, shape, dtype=jnp.float32) -> jax.Array`` that
        returns ``value`` broadcast to ``shape`` and cast to ``dtype``; it ignores its
        key (``None`` is fine). It raises ``TypeError``/``ValueError`` for a malformed
        shape, or when ``value`` does not broadcast to it.

    >>> full(0.5)(None, (2, 2)).tolist()
    [[0.5, 0.5], [0.5, 0.5]]
    >>> full([1.0, 2.0])(None, (2, 2)).tolist()
    [[1.0, 2.0], [1.0, 2.0]]
    """

    def init(key: Any, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        shape = _shape(shape, "full")
        try:
            return jnp.broadcast_to(jnp.asarray(value, dtype), shape)
        except ValueError:
            raise ValueError(
                f"full: value of shape {np.shape(value)} does not broadcast to shape {shape}"
            ) from None

    return init


@registry.factory("initializer_factory", "axon.initializers.identity")
def identity() -> InitFn:
    """The identity matrix (ones on the main diagonal); the shape must have rank 2.

    Returns:
        An init function ``init(key, shape, dtype=jnp.float32) -> jax.Array`` that
        returns a rank-2 identity (possibly rectangular) of ``shape`` and ``dtype``; it
        ignores its key (``None`` is fine). It raises ``TypeError``/``ValueError`` for a
        malformed shape or one whose rank is not 2.

    >>> identity()(None, (2, 3)).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """

    def init(key: Any, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        shape = _shape(shape, "identity")
        if len(shape) != 2:
            raise ValueError(
                f"identity: expected a rank-2 shape, got shape {shape} of rank {len(shape)}"
            )
        return jnp.eye(shape[0], shape[1], dtype=dtype)

    return init


# ---------------------------------------------------------------------------------------
# random initializers


@registry.factory("initializer_factory", "axon.initializers.uniform")
def uniform(*, scale: float = 0.01) -> InitFn:
    """Uniform on ``[-scale, scale)``.

    Note that ``jax.nn.initializers.uniform(scale)`` samples ``[0, scale)`` instead.

    Args:
        scale: half-width of the sampling interval; must be ``>= 0``. Defaults to ``0.01``.

    Returns:
        An init function ``init(key, shape, dtype=jnp.float32) -> jax.Array`` that
        samples ``U(-scale, scale)``; it needs a ``jax.random`` key and a floating
        dtype. It raises ``TypeError``/``ValueError`` for a malformed shape.

    Raises:
        ValueError: if ``scale`` is negative.

    >>> import jax
    >>> import numpy as np
    >>> w = np.asarray(uniform(scale=0.1)(jax.random.key(0), (64, 32)))
    >>> bool(w.min() >= -0.1 and w.max() < 0.1), bool(w.min() < 0)
    (True, True)
    """
    _check_scale("uniform", scale)

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        shape, dtype = _shape(shape, "uniform"), _float_dtype(dtype, "uniform")
        _check_key(key, "uniform")
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


@registry.factory("initializer_factory", "axon.initializers.normal")
def normal(*, mean: float = 0.0, scale: float = 0.01) -> InitFn:
    """Normal with mean ``mean`` and standard deviation ``scale``.

    Args:
        mean: mean of the samples. Defaults to ``0.0``.
        scale: standard deviation of the samples; must be ``>= 0``. Defaults to ``0.01``.

    Returns:
        An init function ``init(key, shape, dtype=jnp.float32) -> jax.Array`` that
        samples ``N(mean, scale**2)``; it needs a ``jax.random`` key and a floating
        dtype. It raises ``TypeError``/``ValueError`` for a malformed shape.

    Raises:
        ValueError: if ``scale`` is negative.

    >>> import jax
    >>> import numpy as np
    >>> w = np.asarray(normal(mean=1.0, scale=0.1)(jax.random.key(0), (64, 32)))
    >>> round(float(w.mean()), 1), round(float(w.std()), 2)
    (1.0, 0.1)
    """
    _check_scale("normal", scale)

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        shape, dtype = _shape(shape, "normal"), _float_dtype(dtype, "normal")
        _check_key(key, "normal")
        return jnp.asarray(mean, dtype) + jax.random.normal(key, shape, dtype) * jnp.asarray(
            scale, dtype
        )

    return init


@registry.factory("initializer_factory", "axon.initializers.variance_scaling")
def variance_scaling(
    *, scale: float = 1.0, mode: str = "fan_in", distribution: str = "normal"
) -> InitFn:
    """Samples with variance ``scale / max(n, 1)``, ``n`` the fan picked by ``mode``.

    ``mode`` is ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"`` (the mean of the two), with
    fans computed from the last two axes (see the module docstring). ``distribution``:

    * ``"normal"``: ``N(0, variance)``;
    * ``"uniform"``: ``U(-limit, limit)`` with ``limit = sqrt(3 * variance)``;
    * ``"truncated_normal"``: a standard normal truncated to ``[-2, 2]``, times
      ``sqrt(variance) / 0.8796...`` (the truncated distribution's standard deviation).

    Args:
        scale: variance multiplier; must be ``>= 0``. Defaults to ``1.0``.
        mode: which fan divides ``scale``: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
            Defaults to ``"fan_in"``.
        distribution: ``"normal"``, ``"uniform"`` or ``"truncated_normal"``. Defaults to
            ``"normal"``.

    Returns:
        An init function ``init(key, shape, dtype=jnp.float32) -> jax.Array`` that
        samples with the variance above; it needs a ``jax.random`` key and a floating
        dtype. It raises ``TypeError``/``ValueError`` for a malformed shape.

    Raises:
        ValueError: if ``scale`` is negative, or ``mode`` or ``distribution`` is not one of the
            accepted values.

    >>> import jax
    >>> import numpy as np
    >>> init = variance_scaling(scale=2.0, mode="fan_out", distribution="uniform")
    >>> w = np.asarray(init(jax.random.key(0), (64, 32)))
    >>> limit = (3 * 2.0 / 32) ** 0.5  # fan_out = 32
    >>> bool(np.abs(w).max() <= limit), bool(np.abs(w).max() > 0.9 * limit)
    (True, True)
    """
    return _variance_scaling(scale, mode, distribution, "variance_scaling")


def _variance_scaling(scale: float, mode: str, distribution: str, name: str) -> InitFn:
    _check_scale(name, scale)
    _check_choice(name, "mode", mode, _MODES)
    _check_choice(name, "distribution", distribution, _DISTRIBUTIONS)

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        shape = _shape(shape, name)
        dtype = _float_dtype(dtype, name)
        _check_key(key, name)
        fan_in, fan_out = _compute_fans(shape)
        if mode == "fan_in":
            denominator = fan_in
        elif mode == "fan_out":
            denominator = fan_out
        else:
            denominator = (fan_in + fan_out) / 2
        # computed as jax.nn.initializers does (variance rounded to dtype first), so that
        # the samples agree bit for bit
        variance = jnp.array(scale / max(denominator, 1), dtype=dtype)
        if distribution == "truncated_normal":
            stddev = jnp.sqrt(variance) / jnp.array(_TRUNCATED_STD, dtype)
            return _truncated_normal(key, shape, dtype) * stddev
        if distribution == "normal":
            return jax.random.normal(key, shape, dtype) * jnp.sqrt(variance)
        return jax.random.uniform(key, shape, dtype, -1) * jnp.sqrt(3 * variance)

    init.__name__ = init.__qualname__ = name
    return init


@registry.factory("initializer_factory", "axon.initializers.lecun_uniform")
def lecun_uniform(*, scale: float = 1.0) -> InitFn:
    """LeCun uniform: ``variance_scaling(scale=scale, mode="fan_in", distribution="uniform")``.

    Args:
        scale: variance multiplier (the variance is ``scale / fan_in``). Defaults to
            ``1.0``.

    Returns:
        An init function ``init(key, shape, dtype=jnp.float32) -> jax.Array`` that
        samples uniform values with that variance, fans from the last two axes; it needs
        a ``jax.random`` key and a floating dtype. It raises
        ``TypeError``/``ValueError`` for a malformed shape.

    Raises:
        ValueError: if ``scale`` is negative.

    >>> import jax
    >>> import numpy as np
    >>> w = np.asarray(lecun_uniform()(jax.random.key(0), (64, 32)))
    >>> bool(np.abs(w).max() <= (3 / 64) ** 0.5)
    True
    """
    return _variance_scaling(scale, "fan_in", "uniform", "lecun_uniform")


@registry.factory("initializer_factory", "axon.initializers.lecun_normal")
def lecun_normal(*, scale: float = 1.0) -> InitFn:
    """LeCun normal: ``variance_scaling(scale=scale, mode="fan_in", distribution="truncated_normal")``.

    Args:
        scale: variance multiplier (the variance is ``scale / fan_in``). Defaults to
            ``1.0``.

    Returns:
        An init function ``init(key, shape, dtype=jnp.float32) -> jax.Array`` that
        samples truncated-normal values with that variance, fans from the last two axes;
        it needs a ``jax.random`` key and a floating dtype. It raises
        ``TypeError``/``ValueError`` for a malformed shape.

    Raises:
        ValueError: if ``scale`` is negative.

    >>> import jax
    >>> import numpy as np
    >>> w = np.asarray(lecun_normal()(jax.random.key(0), (64, 32)))
    >>> round(float(w.var() * 64), 1)  # variance 1 / fan_in
    1.0
    """
    return _variance_scaling(scale, "fan_in", "truncated_normal", "lecun_normal")


@registry.factory("initializer_factory", "axon.initializers.glorot_uniform")
def glorot_uniform(*, scale: float = 1.0) -> InitFn:
    """Glorot (Xavier) uniform: ``variance_scaling(scale=scale, mode="fan_avg", distribution="uniform")``.

    Args:
        scale: variance multiplier (the variance is ``scale / fan_avg``). Defaults to
            ``1.0``.

    Returns:
        An init function ``init(key, shape, dtype=jnp.float32) -> jax.Array`` that
        samples uniform values with that variance, fans from the last two axes; it needs
        a ``jax.random`` key and a floating dtype. It raises
        ``TypeError``/``ValueError`` for a malformed shape.

    Raises:
        ValueError: if ``scale`` is negative.

    >>> import jax
    >>> import numpy as np
    >>> w = np.asarray(glorot_uniform()(jax.random.key(0), (64, 32)))
    >>> bool(np.abs(w).max() <= (3 / 48) ** 0.5)  # fan_avg = (64 + 32) / 2
    True
    """
    return _variance_scaling(scale, "fan_avg", "uniform", "glorot_uniform")


@registry.factory("initializer_factory", "axon.initializers.glorot_normal")
def glorot_normal(*, scale: float = 1.0) -> InitFn:
    """Glorot (Xavier) normal: ``variance_scaling(scale=scale, mode="fan_avg", distribution="truncated_normal")``.

    Args:
        scale: variance multiplier (the variance is ``scale / fan_avg``). Defaults to
            ``1.0``.

    Returns:
        An init function ``init(key, shape, dtype=jnp.float32) -> jax.Array`` that
        samples truncated-normal values with that variance, fans from the last two axes;
        it needs a ``jax.random`` key and a floating dtype. It raises
        ``TypeError``/``ValueError`` for a malformed shape.

    Raises:
        ValueError: if ``scale`` is negative.

    >>> import jax
    >>> import numpy as np
    >>> w = np.asarray(glorot_normal()(jax.random.key(0), (64, 32)))
    >>> round(float(w.var() * 48), 1)  # variance 1 / fan_avg
    1.0
    """
    return _variance_scaling(scale, "fan_avg", "truncated_normal", "glorot_normal")


@registry.factory("initializer_factory", "axon.initializers.he_uniform")
def he_uniform(*, scale: float = 2.0) -> InitFn:
    """He (Kaiming) uniform: ``variance_scaling(scale=scale, mode="fan_in", distribution="uniform")``.

    Args:
        scale: variance multiplier (the variance is ``scale / fan_in``). Defaults to
            ``2.0``.

    Returns:
        An init function ``init(key, shape, dtype=jnp.float32) -> jax.Array`` that
        samples uniform values with that variance, fans from the last two axes; it needs
        a ``jax.random`` key and a floating dtype. It raises
        ``TypeError``/``ValueError`` for a malformed shape.

    Raises:
        ValueError: if ``scale`` is negative.

    >>> import jax
    >>> import numpy as np
    >>> w = np.asarray(he_uniform()(jax.random.key(0), (64, 32)))
    >>> bool(np.abs(w).max() <= (3 * 2 / 64) ** 0.5)
    True
    """
    return _variance_scaling(scale, "fan_in", "uniform", "he_uniform")


@registry.factory("initializer_factory", "axon.initializers.he_normal")
def he_normal(*, scale: float = 2.0) -> InitFn:
    """He (Kaiming) normal: ``variance_scaling(scale=scale, mode="fan_in", distribution="truncated_normal")``.

    Args:
        scale: variance multiplier (the variance is ``scale / fan_in``). Defaults to
            ``2.0``.

    Returns:
        An init function ``init(key, shape, dtype=jnp.float32) -> jax.Array`` that
        samples truncated-normal values with that variance, fans from the last two axes;
        it needs a ``jax.random`` key and a floating dtype. It raises
        ``TypeError``/``ValueError`` for a malformed shape.

    Raises:
        ValueError: if ``scale`` is negative.

    >>> import jax
    >>> import numpy as np
    >>> w = np.asarray(he_normal()(jax.random.key(0), (64, 32)))
    >>> round(float(w.var() * 64), 1)  # variance 2 / fan_in
    2.0
    """
    return _variance_scaling(scale, "fan_in", "truncated_normal", "he_normal")


@registry.factory("initializer_factory", "axon.initializers.orthogonal")
def orthogonal(*, distribution: str = "normal") -> InitFn:
    """A random orthogonal matrix (orthonormal rows or columns, whichever are fewer).

    The shape must have rank ``>= 2``; it is flattened to ``(m, n) = (prod(shape[:-1]),
    shape[-1])``. A random ``k x k`` matrix (``k = max(m, n)``) drawn from ``distribution``
    (``"normal"``, or ``"uniform"`` on ``[-1, 1)``) is QR-decomposed, the columns of ``Q``
    are multiplied by the signs of ``diag(R)`` (with ``"normal"`` this makes ``Q``
    uniformly (Haar) distributed), and the top-left ``m x n`` block is returned,
    reshaped. So tall shapes get ``QᵀQ = I`` and wide shapes ``QQᵀ = I``.

    Args:
        distribution: distribution of the random matrix that is orthogonalized: ``"normal"``
            or ``"uniform"`` (on ``[-1, 1)``). Defaults to ``"normal"``.

    Returns:
        An init function ``init(key, shape, dtype=jnp.float32) -> jax.Array`` that
        returns an orthogonal block of ``shape``; it needs a ``jax.random`` key and a
        floating dtype. It raises ``TypeError``/``ValueError`` for a malformed shape or
        one of rank below 2.

    Raises:
        ValueError: if ``distribution`` is not ``"normal"`` or ``"uniform"``.

    >>> import jax
    >>> import numpy as np
    >>> q = np.asarray(orthogonal()(jax.random.key(0), (4, 3)))
    >>> bool(np.allclose(q.T @ q, np.eye(3), atol=1e-5))
    True
    """
    _check_choice("orthogonal", "distribution", distribution, _ORTHOGONAL_DISTRIBUTIONS)

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        shape = _shape(shape, "orthogonal")
        dtype = _float_dtype(dtype, "orthogonal")
        _check_key(key, "orthogonal")
        if len(shape) < 2:
            raise ValueError(
                f"orthogonal: expected a shape of rank >= 2, got shape {shape} of rank {len(shape)}"
            )
        m, n = math.prod(shape[:-1]), shape[-1]
        k = max(m, n)
        # QR needs at least single precision
        work = jnp.promote_types(dtype, jnp.float32)
        if distribution == "normal":
            a = jax.random.normal(key, (k, k), work)
        else:
            a = jax.random.uniform(key, (k, k), work, -1, 1)
        q, r = jnp.linalg.qr(a)
        d = jnp.diagonal(r)
        q = q * jnp.where(d < 0, -1, 1).astype(work)
        return q[:m, :n].reshape(shape).astype(dtype)

    return init


# ---------------------------------------------------------------------------------------
# lookup

INITIALIZERS: dict[str, Callable[..., InitFn]] = {
    "zeros": zeros,
    "ones": ones,
    "identity": identity,
    "uniform": uniform,
    "normal": normal,
    "lecun_uniform": lecun_uniform,
    "lecun_normal": lecun_normal,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "variance_scaling": variance_scaling,
    "orthogonal": orthogonal,
}


def get(name_or_fn: str | InitFn) -> InitFn:
    """An init function from a name (its factory called with defaults) or a callable.

    A callable is returned unchanged, except that one of this module's factories passed
    uncalled (``get(glorot_uniform)``) is called with its defaults, as a name would be.
    ``"full"`` needs a value, so it is rejected by name: call ``full(value)`` instead.

    Args:
        name_or_fn: an initializer name (a key of ``INITIALIZERS``, such as ``"zeros"``), one of
            this module's factories passed uncalled, or any init function (passed through).

    Returns:
        An init function ``init(key, shape, dtype) -> jax.Array``.

    Raises:
        ValueError: if ``name_or_fn`` is ``"full"`` or :func:`full` (it needs a value), or a
            string that names no initializer.

    >>> import jax
    >>> get("ones")(None, (2,)).tolist()
    [1.0, 1.0]
    >>> get(jax.nn.initializers.zeros) is jax.nn.initializers.zeros
    True
    >>> get("glorot")
    Traceback (most recent call last):
    ...
    ValueError: unknown initializer 'glorot' (did you mean 'glorot_normal'?); expected a callable or one of: 'glorot_normal', ...
    """
    if (isinstance(name_or_fn, str) and name_or_fn == "full") or name_or_fn is full:
        raise ValueError(
            "the 'full' initializer needs a value and cannot be given by name; "
            "call axon.initializers.full(value) and pass the result"
        )
    found = lookup(name_or_fn, INITIALIZERS, kind="initializer")
    if isinstance(name_or_fn, str) or any(found is f for f in INITIALIZERS.values()):
        return found()  # a factory, by name or passed uncalled: call it with its defaults
    return found
