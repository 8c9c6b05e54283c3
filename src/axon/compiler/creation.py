"""Creating parameters one at a time, each with a small compiled program shared by every
parameter with the same initializer, shape, dtype and layout.

``init_fn`` used to be one jitted program holding every initializer call of the model;
XLA's compile time for it grows faster than linearly in the number of random-number
calls (minutes for a few thousand parameters). Instead, ``init_fn`` now finds the
parameters by abstract evaluation (shapes only, nothing computed) and creates each one
with :func:`creator`: a ``jax.jit`` program ``(base_key, salt) -> value`` cached per
``(initializer, shape, dtype, sharding)``. A model of 800 identical blocks compiles a
handful of programs, not one program 800 blocks long.

The values are the same as the single program's: a parameter's key is
``jax.random.fold_in(jax.random.PRNGKey(seed), path_salt(path))``, where
:func:`path_salt` is the first four bytes (little-endian) of the MD5 digest of the
parameter's dotted path (``"dense_0.kernel"``), masked to 31 bits, and its value is
``initializer(key, shape, dtype)``.

Two initializers share a program when they are the same object, or when both were made
by the same registered factory with equal options (``axon.registry.made_by``; the
registry's contract is that such initializers sample bit for bit the same).

>>> import jax, numpy as np
>>> from axon import initializers
>>> make = creator(initializers.glorot_uniform(), (3, 2), "float32")
>>> make is creator(initializers.glorot_uniform(), (3, 2), "float32")  # a fresh, equal initializer
True
>>> key = jax.random.PRNGKey(0)
>>> direct = initializers.glorot_uniform()(jax.random.fold_in(key, path_salt(("dense_0", "kernel"))), (3, 2))
>>> bool(np.array_equal(make(key, path_salt(("dense_0", "kernel"))), direct))
True
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import lru_cache
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from axon import registry

__all__ = ["CREATOR_CACHE_SIZE", "creator", "path_salt"]

CREATOR_CACHE_SIZE = 512
"""The most compiled parameter-creation programs kept (least recently used first out)."""

_cache: OrderedDict[Hashable, Callable[..., Any]] = OrderedDict()
_lock = threading.Lock()


@lru_cache(maxsize=4096)
def path_salt(path: tuple[str, ...]) -> int:
    """The number folded into the base key for the parameter at ``path``: the first four
    bytes (little-endian) of the MD5 digest of the dotted path, masked to 31 bits.

    Args:
        path: the parameter's path in the state, e.g. ``("dense_0", "kernel")``.

    Returns:
        An int in ``[0, 2**31)``.

    >>> path_salt(("dense_0", "kernel")) == int.from_bytes(hashlib.md5(b"dense_0.kernel").digest()[:4], "little") & 0x7FFFFFFF
    True
    """
    digest = hashlib.md5(".".join(path).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _freeze(value: Any) -> Hashable:
    """A hashable stand-in for an initializer's option value (raises TypeError if none)."""
    if isinstance(value, dict):
        return ("dict", tuple((k, _freeze(v)) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_freeze(v) for v in value))
    made = registry.made_by(value) if callable(value) else None
    if made is not None:
        return ("made_by", made[0], _freeze(made[1]))
    if isinstance(value, (np.ndarray, jax.Array)):
        raise TypeError("array option")
    hash(value)
    return (type(value).__name__, value)


def _initializer_key(initializer: Any) -> Hashable | None:
    """What identifies ``initializer`` in the cache: its factory and options when a
    registered factory made it, else the object itself; ``None`` when neither is hashable."""
    made = registry.made_by(initializer)
    if made is not None:
        try:
            return ("made_by", made[0], _freeze(made[1]))
        except TypeError:
            pass
    try:
        hash(initializer)
    except TypeError:
        return None
    return ("object", initializer)


def _dtype_key(dtype: Any) -> Hashable:
    try:
        return ("dtype", str(jnp.dtype(dtype)))
    except TypeError:
        return ("object", dtype)


def _program(initializer: Callable[..., Any], shape: tuple[int, ...], dtype: Any) -> Callable[..., Any]:
    def create(base_key: jax.Array, salt: jax.Array) -> Any:
        return initializer(jax.random.fold_in(base_key, salt), shape, dtype)

    return create


def _flat_bits_program(create: Callable[..., Any]) -> Callable[..., Any]:
    """``create`` with every threefry ``random_bits`` of a multi-dimensional shape drawn
    flat and reshaped: the same bits (threefry numbers the elements in row-major order, in
    both the partitionable and the original scheme), but XLA:CPU compiles the flat
    generator several times faster (e.g. 0.3 s instead of 1.3 s for a ``(32, 10)``
    kernel). Everything else in the initializer runs as written."""

    def flat(*args: Any) -> Any:
        closed, out_shape = jax.make_jaxpr(create, return_shape=True)(*args)
        if not _has_shaped_bits(closed.jaxpr):
            return create(*args)
        try:
            out = _eval_flat_bits(closed.jaxpr, closed.consts, *args)
        except Exception:  # the initializer itself traced fine above: a jaxpr this rewrite does not know
            return create(*args)
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), out)

    return flat


def _shaped_bits(eqn: Any) -> bool:
    return (eqn.primitive.name == "random_bits" and len(eqn.params.get("shape", ())) > 1
            and str(eqn.invars[0].aval.dtype) == "key<fry>")


def _has_shaped_bits(jaxpr: Any) -> bool:
    for eqn in jaxpr.eqns:
        if _shaped_bits(eqn):
            return True
        if eqn.primitive.name in ("jit", "pjit") and _has_shaped_bits(eqn.params["jaxpr"].jaxpr):
            return True
    return False


def _eval_flat_bits(jaxpr: Any, consts: list, *args: Any) -> list:
    """``jax.core.eval_jaxpr`` inlining the ``jit`` calls that draw shaped bits, and drawing
    those flat (see :func:`_flat_bits_program`)."""
    from jax.extend.core import Literal

    env: dict = {}

    def read(v: Any) -> Any:
        return v.val if isinstance(v, Literal) else env[v]

    for v, val in zip(jaxpr.constvars, consts):
        env[v] = val
    for v, val in zip(jaxpr.invars, args):
        env[v] = val
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        if _shaped_bits(eqn):
            shape = tuple(eqn.params["shape"])
            flat = eqn.primitive.bind(*invals, **{**eqn.params, "shape": (int(np.prod(shape)),)})
            # an array of keys (a vmapped draw) gives each key its own draw: keys' shape first
            ans, multiple = jax.lax.reshape(flat, (*eqn.invars[0].aval.shape, *shape)), False
        elif eqn.primitive.name in ("jit", "pjit") and _has_shaped_bits(eqn.params["jaxpr"].jaxpr):
            inner = eqn.params["jaxpr"]
            ans, multiple = _eval_flat_bits(inner.jaxpr, inner.consts, *invals), True
        else:
            params = eqn.primitive.get_bind_params(eqn.params)
            if isinstance(params, tuple):  # older jax: (subfuns, params)
                invals, params = [*params[0], *invals], params[1]
            manager = getattr(getattr(eqn, "ctx", None), "manager", None)
            with manager if manager is not None else contextlib.nullcontext():
                ans = eqn.primitive.bind(*invals, **params)
            multiple = eqn.primitive.multiple_results
        if multiple:
            for v, val in zip(eqn.outvars, ans):
                env[v] = val
        else:
            env[eqn.outvars[0]] = ans
    return [read(v) for v in jaxpr.outvars]


def creator(initializer: Callable[..., Any], shape: tuple[int, ...], dtype: Any, sharding: Any = None,
            *, jit: bool = True) -> Callable[[jax.Array, int], Any]:
    """The function ``(base_key, salt) -> initializer(fold_in(base_key, salt), shape, dtype)``,
    jit-compiled (laid out with ``sharding`` when given) and cached: equal arguments give
    the same function, so each distinct program compiles once per process.

    Args:
        initializer: an init function ``init(key, shape, dtype)``.
        shape: the parameter's shape.
        dtype: the dtype asked of the initializer.
        sharding: a ``jax.sharding.Sharding`` for the result (``None``: the default device).
        jit: ``False`` returns the uncompiled function (not cached), for eager debugging.

    Returns:
        A function of a base PRNG key and a salt (an int or a uint32 scalar).

    >>> import jax
    >>> from axon import initializers
    >>> make = creator(initializers.zeros(), (2,), "float32")
    >>> make(jax.random.PRNGKey(0), 7).tolist()
    [0.0, 0.0]
    """
    shape = tuple(int(d) for d in shape)
    raw = _program(initializer, shape, dtype)
    if not jit:
        return lambda base_key, salt: raw(base_key, np.uint32(salt))
    raw = _flat_bits_program(raw)
    ident = _initializer_key(initializer)
    if ident is None:
        return _wrap(jax.jit(raw, out_shardings=sharding) if sharding is not None else jax.jit(raw))
    key = (ident, shape, _dtype_key(dtype), sharding)
    with _lock:
        fn = _cache.get(key)
        if fn is not None:
            _cache.move_to_end(key)
            return fn
    compiled = jax.jit(raw, out_shardings=sharding) if sharding is not None else jax.jit(raw)
    fn = _wrap(compiled)
    with _lock:
        fn = _cache.setdefault(key, fn)
        _cache.move_to_end(key)
        while len(_cache) > CREATOR_CACHE_SIZE:
            _cache.popitem(last=False)
    return fn


def _wrap(compiled: Callable[..., Any]) -> Callable[[jax.Array, int], Any]:
    def make(base_key: jax.Array, salt: int) -> Any:
        return compiled(base_key, np.uint32(salt))

    return make
