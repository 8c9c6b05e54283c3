"""Parameter update transforms (Axon's ``Axon.Updates`` / ``Polaris.Updates``), as optax transforms.

An update transform turns gradients into parameter updates. In Axon it is a pair
``{init_fn, update_fn}``; here it is an ``optax.GradientTransformation`` (``init(params)``
and ``update(updates, state, params)``), so every transform below also works anywhere
optax does. Each one is a thin layer over the optax transform of the same meaning, with
Axon's option names and defaults.

Transforms compose in the order they are written, three equivalent ways:

* Axon's combinator form: every function takes an optional leading transform, so
  ``scale(scale_by_adam(), -1e-3)`` is Axon's ``scale_by_adam() |> scale(-1e-3)``;
* the pipe form, ``scale_by_adam().pipe(scale, -1e-3)`` (``t.pipe(f, *args)`` is
  ``f(t, *args)``, as for graphs);
* ``optax.chain(scale_by_adam(), scale(-1e-3))``.

>>> import jax.numpy as jnp
>>> import optax
>>> opt = scale_by_adam().pipe(scale, -0.1)
>>> params = {"w": jnp.array([1.0, -2.0])}
>>> state = opt.init(params)
>>> grads = {"w": jnp.array([0.5, -0.5])}
>>> updates, state = opt.update(grads, state, params)
>>> apply_updates(params, updates)["w"].round(4).tolist()
[0.9, -1.9]

Custom transforms take a few lines with ``stateless`` and ``stateful`` (see ``stateful``
for the launch post's ``scale_by_stddev``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import optax

__all__ = [
    "Update",
    "add_decayed_weights",
    "add_noise",
    "apply_updates",
    "centralize",
    "clip",
    "clip_by_global_norm",
    "compose",
    "identity",
    "scale",
    "scale_by_adam",
    "scale_by_belief",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_schedule",
    "scale_by_state",
    "scale_by_stddev",
    "scale_by_trust_ratio",
    "scale_by_yogi",
    "stateful",
    "stateless",
    "trace",
]

ArrayLike = jax.typing.ArrayLike
Transform = optax.GradientTransformation


class Update(optax.GradientTransformationExtraArgs):
    """An ``optax.GradientTransformationExtraArgs`` with Axon's pipe.

    ``t.pipe(f, *args, **kwargs)`` is ``f(t, *args, **kwargs)``: with the functions of this
    module it appends ``f(*args, **kwargs)`` after ``t``.

    >>> t = identity().pipe(scale, 2.0)
    >>> isinstance(t, optax.GradientTransformation)
    True
    """

    def pipe(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Return ``f(self, *args, **kwargs)``.

        Args:
            f: a function taking a transform first, such as the transforms of this module.
            *args: further positional arguments for ``f``.
            **kwargs: keyword arguments for ``f``.

        Returns:
            Whatever ``f`` returns; for this module's functions, an :class:`Update` that
            runs ``self`` and then the transform ``f`` adds.

        >>> import jax.numpy as jnp
        >>> t = scale(3.0).pipe(clip, delta=2.0)
        >>> t.update(jnp.array([1.0]), t.init(jnp.zeros(1)))[0].tolist()
        [2.0]
        """
        return f(self, *args, **kwargs)


def _wrap(transform: Transform) -> Update:
    transform = optax.with_extra_args_support(transform)
    return Update(transform.init, transform.update)


def _check_combinator(combinator: Any, where: str) -> None:
    if combinator is not None and not isinstance(combinator, optax.GradientTransformation):
        raise TypeError(
            f"{where}: expected the leading argument to be an update transform "
            f"(optax.GradientTransformation) or None, got {type(combinator).__name__}"
        )


def _after(combinator: Transform | None, transform: Transform, where: str) -> Update:
    _check_combinator(combinator, where)
    if combinator is None:
        return _wrap(transform)
    return _wrap(optax.chain(combinator, transform))


def _split_args(args: tuple, names: tuple[str, ...], where: str) -> tuple[Any, tuple]:
    """Split ``([combinator,] *required)``."""
    n = len(names)
    if len(args) == n + 1:
        _check_combinator(args[0], where)
        return args[0], args[1:]
    if len(args) == n:
        return None, args
    raise TypeError(
        f"{where}() takes ([combinator,] {', '.join(names)}) positionally, "
        f"got {len(args)} positional argument(s)"
    )


# ---------------------------------------------------------------------------------------------
# Primitives


def identity(combinator: Transform | None = None) -> Update:
    """The identity transform (updates pass through unchanged).

    Args:
        combinator: a transform to run before this one (Axon's ``t |> f()``), or ``None``
            (the default) for this transform alone.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs ``combinator`` first,
        when given.

    Raises:
        TypeError: if ``combinator`` is neither ``None`` nor an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = identity()
    >>> t.update(jnp.array([1.5]), t.init(jnp.zeros(1)))[0].tolist()
    [1.5]
    """
    return _after(combinator, optax.identity(), "identity")


def compose(*transforms: Transform) -> Update:
    """Apply ``transforms`` one after another (Polaris's ``compose``; n-ary ``optax.chain``).

    Args:
        *transforms: one or more transforms, applied in the order given.

    Returns:
        An :class:`Update` chaining ``transforms``.

    Raises:
        TypeError: if no transform is given or one is not an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = compose(scale(2.0), clip(delta=3.0))
    >>> t.update(jnp.array([1.0, 2.0]), t.init(jnp.zeros(2)))[0].tolist()
    [2.0, 3.0]
    """
    if not transforms:
        raise TypeError("compose() needs at least one update transform")
    for t in transforms:
        _check_combinator(t, "compose")
    return _wrap(optax.chain(*transforms))


def stateless(*args: Any) -> Update:
    """Build a transform without state: ``stateless([combinator,] apply_fn)``.

    ``apply_fn(updates, params)`` returns new updates (``params`` may be ``None`` when the
    caller does not pass them).

    Args:
        *args: ``[combinator,] apply_fn``: an optional leading transform to run first (as
            ``combinator`` elsewhere), then ``apply_fn(updates, params) -> updates``.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs the leading transform
        first, when given.

    Raises:
        TypeError: if the positional arguments do not have that form, or the leading one is
            not an optax gradient transformation, or ``apply_fn`` is
            not callable.

    >>> import jax
    >>> import jax.numpy as jnp
    >>> def my_scale(combinator=None, step=1.0):
    ...     return stateless(combinator, lambda u, p: jax.tree.map(lambda x: x * step, u))
    >>> t = my_scale(step=-0.5)
    >>> t.update(jnp.array([2.0]), t.init(jnp.zeros(1)))[0].tolist()
    [-1.0]
    """
    combinator, (apply_fn,) = _split_args(args, ("apply_fn",), "stateless")
    if not callable(apply_fn):
        raise TypeError(f"stateless: expected apply_fn to be callable, got {apply_fn!r}")
    return _after(combinator, optax.stateless(apply_fn), "stateless")


def stateful(*args: Any) -> Update:
    """Build a transform with state: ``stateful([combinator,] init_fn, apply_fn)``.

    ``init_fn(params)`` returns the initial state (any pytree); ``apply_fn(updates, state,
    params)`` returns ``(new_updates, new_state)``.

    Args:
        *args: ``[combinator,] init_fn, apply_fn``: an optional leading transform to run
            first (as ``combinator`` elsewhere), then ``init_fn(params) -> state`` and
            ``apply_fn(updates, state, params) -> (updates, state)``.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs the leading transform
        first, when given.

    Raises:
        TypeError: if the positional arguments do not have that form, or the leading one is
            not an optax gradient transformation, or ``init_fn`` or ``apply_fn`` is not
            callable.

    The launch post's ``scale_by_stddev``, written with it:

    >>> import jax
    >>> import jax.numpy as jnp
    >>> def my_scale_by_stddev(combinator=None, *, decay=0.9, eps=1e-8, initial_scale=0.0):
    ...     def init(params):
    ...         mu = jax.tree.map(jnp.zeros_like, params)
    ...         nu = jax.tree.map(lambda p: jnp.full_like(p, initial_scale), params)
    ...         return (mu, nu)
    ...
    ...     def apply(updates, state, params):
    ...         mu, nu = state
    ...         mu = jax.tree.map(lambda g, m: decay * m + (1 - decay) * g, updates, mu)
    ...         nu = jax.tree.map(lambda g, n: decay * n + (1 - decay) * g**2, updates, nu)
    ...         updates = jax.tree.map(
    ...             lambda g, m, n: g * jax.lax.rsqrt(n - m**2 + eps), updates, mu, nu
    ...         )
    ...         return updates, (mu, nu)
    ...
    ...     return stateful(combinator, init, apply)
    >>> opt = scale_by_adam().pipe(my_scale_by_stddev).pipe(scale, -1e-3)
    >>> params = jnp.array([1.0, 2.0])
    >>> updates, state = opt.update(jnp.array([0.1, -0.2]), opt.init(params), params)
    >>> updates.shape
    (2,)
    """
    combinator, (init_fn, apply_fn) = _split_args(args, ("init_fn", "apply_fn"), "stateful")
    if not callable(init_fn) or not callable(apply_fn):
        raise TypeError("stateful: expected init_fn and apply_fn to be callable")

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        return apply_fn(updates, state, params)

    return _after(combinator, optax.GradientTransformation(init_fn, update_fn), "stateful")


def _merge(params: Any, state: Any) -> Any:
    if isinstance(params, Mapping) and isinstance(state, Mapping):
        merged = dict(params)
        for key, value in state.items():
            merged[key] = _merge(params[key], value) if key in params else value
        return type(params)(merged) if not isinstance(params, dict) else merged
    return state


def apply_updates(params: Any, updates: Any, state: Any = None) -> Any:
    """Return ``params + updates`` (each update cast to its parameter's dtype).

    When ``state`` is given (a nested dict, such as new batch-norm statistics) its entries
    replace the matching entries of the result, as in Axon's ``apply_updates/3``.

    Args:
        params: the parameters, a pytree of arrays.
        updates: the updates, a pytree of ``params``' structure.
        state: optional nested dict whose entries replace the matching entries of the
            result (such as batch-norm statistics). Defaults to ``None``.

    Returns:
        The new parameters, a pytree of ``params``' structure and dtypes.

    >>> import jax.numpy as jnp
    >>> params = {"dense": {"kernel": jnp.ones(2)}, "bn": {"mean": jnp.zeros(2)}}
    >>> updates = {"dense": {"kernel": jnp.full(2, 0.5)}, "bn": {"mean": jnp.zeros(2)}}
    >>> out = apply_updates(params, updates, {"bn": {"mean": jnp.full(2, 3.0)}})
    >>> out["dense"]["kernel"].tolist(), out["bn"]["mean"].tolist()
    ([1.5, 1.5], [3.0, 3.0])
    """
    new_params = optax.apply_updates(params, updates)
    return new_params if state is None else _merge(new_params, state)


# ---------------------------------------------------------------------------------------------
# Scaling


def scale(*args: Any) -> Update:
    """Multiply updates by a fixed ``step_size``: ``scale([combinator,] step_size)``.

    Args:
        *args: ``[combinator,] step_size``: an optional leading transform to run first (as
            ``combinator`` elsewhere), then the factor ``step_size`` (a float).

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs the leading transform
        first, when given.

    Raises:
        TypeError: if the positional arguments do not have that form, or the leading one is
            not an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = scale(-0.5)
    >>> t.update(jnp.array([2.0, 4.0]), t.init(jnp.zeros(2)))[0].tolist()
    [-1.0, -2.0]
    """
    combinator, (step_size,) = _split_args(args, ("step_size",), "scale")
    return _after(combinator, optax.scale(step_size), "scale")


def scale_by_state(*args: Any) -> Update:
    """Multiply updates by a step size kept in the state: ``scale_by_state([combinator,] step_size)``.

    The state is optax's ``InjectStatefulHyperparamsState`` and the step size lives in
    ``state.hyperparams["step_size"]``, where a training loop can change it at run time
    (Axon keeps it as ``%{scale: step}``).

    Args:
        *args: ``[combinator,] step_size``: an optional leading transform to run first (as
            ``combinator`` elsewhere), then the initial factor ``step_size`` (a
            float), kept in the state.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs the leading transform
        first, when given.

    Raises:
        TypeError: if the positional arguments do not have that form, or the leading one is
            not an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = scale_by_state(-0.1)
    >>> state = t.init(jnp.zeros(1))
    >>> round(float(state.hyperparams["step_size"]), 4)
    -0.1
    """
    combinator, (step_size,) = _split_args(args, ("step_size",), "scale_by_state")
    return _after(
        combinator, optax.inject_hyperparams(optax.scale)(step_size=step_size), "scale_by_state"
    )


def scale_by_schedule(*args: Any) -> Update:
    """Multiply updates by ``schedule_fn(count)``: ``scale_by_schedule([combinator,] schedule_fn)``.

    ``count`` starts at 0 and grows by one on every update.

    Args:
        *args: ``[combinator,] schedule_fn``: an optional leading transform to run first (as
            ``combinator`` elsewhere), then ``schedule_fn(count) -> factor``, such as
            a schedule from :mod:`axon.schedules`.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs the leading transform
        first, when given.

    Raises:
        TypeError: if the positional arguments do not have that form, or the leading one is
            not an optax gradient transformation, or ``schedule_fn`` is not callable.

    >>> import jax.numpy as jnp
    >>> t = scale_by_schedule(lambda count: 1.0 / (count + 1))
    >>> state = t.init(jnp.zeros(1))
    >>> u1, state = t.update(jnp.ones(1), state)
    >>> u2, state = t.update(jnp.ones(1), state)
    >>> u1.tolist(), u2.tolist()
    ([1.0], [0.5])
    """
    combinator, (schedule_fn,) = _split_args(args, ("schedule_fn",), "scale_by_schedule")
    if not callable(schedule_fn):
        raise TypeError(f"scale_by_schedule: expected a callable schedule, got {schedule_fn!r}")
    return _after(combinator, optax.scale_by_schedule(schedule_fn), "scale_by_schedule")


def scale_by_adam(
    combinator: Transform | None = None,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1.0e-8,
    eps_root: float = 1.0e-15,
    mu_dtype: Any = None,
    nesterov: bool = False,
) -> Update:
    """Scale by Adam's bias-corrected moments: ``m̂ / (sqrt(v̂ + eps_root) + eps)``.

    Defaults are Polaris's (``eps_root=1e-15``). ``mu_dtype`` (e.g. ``"bfloat16"``) is the
    dtype of the first moment (default: the parameters' dtype); ``nesterov=True`` uses
    Nesterov momentum (NAdam, Dozat 2016), as ``optax.scale_by_adam``.

    Args:
        combinator: a transform to run before this one (Axon's ``t |> f()``), or ``None``
            (the default) for this transform alone.
        b1: decay rate of the first-moment (mean) EMA. Defaults to ``0.9``.
        b2: decay rate of the second-moment EMA. Defaults to ``0.999``.
        eps: added to the denominator outside the square root. Defaults to ``1e-8``.
        eps_root: added inside the square root. Defaults to ``1e-15``.
        mu_dtype: dtype of the first moment, or ``None`` (the default) for the parameters'
            dtype.
        nesterov: whether to use Nesterov momentum (NAdam). Defaults to ``False``.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs ``combinator`` first,
        when given.

    Raises:
        TypeError: if ``combinator`` is neither ``None`` nor an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = scale_by_adam()
    >>> t.update(jnp.array([3.0, -0.5]), t.init(jnp.zeros(2)))[0].round(4).tolist()
    [1.0, -1.0]
    """
    return _after(
        combinator,
        optax.scale_by_adam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov
        ),
        "scale_by_adam",
    )


def scale_by_rss(
    combinator: Transform | None = None,
    *,
    initial_accumulator_value: float = 0.1,
    eps: float = 1.0e-7,
) -> Update:
    """Scale by the root of the sum of all squared updates so far (Adagrad).

    ``s ← s + g²``; ``g / sqrt(s + eps)`` (0 where ``s`` is 0); ``s`` starts at
    ``initial_accumulator_value``.

    Args:
        combinator: a transform to run before this one (Axon's ``t |> f()``), or ``None``
            (the default) for this transform alone.
        initial_accumulator_value: starting value of the sum of squares. Defaults to ``0.1``.
        eps: added to the sum inside the square root. Defaults to ``1e-7``.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs ``combinator`` first,
        when given.

    Raises:
        TypeError: if ``combinator`` is neither ``None`` nor an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = scale_by_rss(initial_accumulator_value=0.0, eps=0.0)
    >>> t.update(jnp.array([2.0]), t.init(jnp.zeros(1)))[0].tolist()
    [1.0]
    """
    return _after(
        combinator,
        optax.scale_by_rss(initial_accumulator_value=initial_accumulator_value, eps=eps),
        "scale_by_rss",
    )


def scale_by_rms(
    combinator: Transform | None = None,
    *,
    decay: float = 0.9,
    eps: float = 1.0e-8,
    initial_scale: float = 0.0,
) -> Update:
    """Scale by the root of the EMA of squared updates (RMSProp): ``g / sqrt(v + eps)``.

    ``v ← decay · v + (1 - decay) · g²``, starting at ``initial_scale``.

    Args:
        combinator: a transform to run before this one (Axon's ``t |> f()``), or ``None``
            (the default) for this transform alone.
        decay: decay rate of the EMA of squared updates. Defaults to ``0.9``.
        eps: added inside the square root. Defaults to ``1e-8``.
        initial_scale: starting value of the EMA. Defaults to ``0.0``.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs ``combinator`` first,
        when given.

    Raises:
        TypeError: if ``combinator`` is neither ``None`` nor an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = scale_by_rms(decay=0.75, eps=0.0)
    >>> t.update(jnp.array([2.0]), t.init(jnp.zeros(1)))[0].tolist()
    [2.0]
    """
    return _after(
        combinator,
        optax.scale_by_rms(decay=decay, eps=eps, initial_scale=initial_scale),
        "scale_by_rms",
    )


def scale_by_stddev(
    combinator: Transform | None = None,
    *,
    decay: float = 0.9,
    eps: float = 1.0e-8,
    initial_scale: float = 0.0,
) -> Update:
    """Scale by the centred root of the EMA of squared updates: ``g / sqrt(v - m² + eps)``.

    ``m`` and ``v`` are EMAs (rate ``decay``) of ``g`` and ``g²``; ``v`` starts at
    ``initial_scale``. This is centred RMSProp.

    Args:
        combinator: a transform to run before this one (Axon's ``t |> f()``), or ``None``
            (the default) for this transform alone.
        decay: decay rate of both EMAs. Defaults to ``0.9``.
        eps: added inside the square root. Defaults to ``1e-8``.
        initial_scale: starting value of the EMA of squares. Defaults to ``0.0``.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs ``combinator`` first,
        when given.

    Raises:
        TypeError: if ``combinator`` is neither ``None`` nor an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = scale_by_stddev(decay=0.5, eps=0.0)
    >>> t.update(jnp.array([2.0]), t.init(jnp.zeros(1)))[0].tolist()
    [2.0]
    """
    return _after(
        combinator,
        optax.scale_by_stddev(decay=decay, eps=eps, initial_scale=initial_scale),
        "scale_by_stddev",
    )


def scale_by_belief(
    combinator: Transform | None = None,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 0.0,
    eps_root: float = 1.0e-16,
) -> Update:
    """Scale by AdaBelief's ``m̂ / (sqrt(ŝ) + eps)``, ``s`` the EMA of ``(g - m)² + eps_root``.

    Deviation from Polaris: Polaris's ``scale_by_belief`` accumulates ``g²`` (Adam's second
    moment) instead of the squared prediction error ``(g - m)²``; this follows the published
    AdaBelief rule (as optax does). The defaults are Polaris's.

    Args:
        combinator: a transform to run before this one (Axon's ``t |> f()``), or ``None``
            (the default) for this transform alone.
        b1: decay rate of the first-moment (mean) EMA. Defaults to ``0.9``.
        b2: decay rate of the EMA of squared prediction errors. Defaults to ``0.999``.
        eps: added to the denominator outside the square root. Defaults to ``0.0``.
        eps_root: added to each squared error. Defaults to ``1e-16``.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs ``combinator`` first,
        when given.

    Raises:
        TypeError: if ``combinator`` is neither ``None`` nor an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = scale_by_belief()
    >>> t.update(jnp.array([1.0]), t.init(jnp.zeros(1)))[0].round(4).tolist()
    [1.1111]
    """
    return _after(
        combinator,
        optax.scale_by_belief(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
        "scale_by_belief",
    )


def scale_by_radam(
    combinator: Transform | None = None,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1.0e-8,
    eps_root: float = 0.0,
    threshold: float = 5.0,
) -> Update:
    """Scale by Rectified Adam: the rectified Adam step once ``ρ_t ≥ threshold``, else ``m̂``.

    Deviation from Polaris: Polaris computes ``ρ_∞ = 2 / (1 - b1) - 1``; the published rule
    (used here, via optax) is ``ρ_∞ = 2 / (1 - b2) - 1``.

    Args:
        combinator: a transform to run before this one (Axon's ``t |> f()``), or ``None``
            (the default) for this transform alone.
        b1: decay rate of the first-moment (mean) EMA. Defaults to ``0.9``.
        b2: decay rate of the second-moment EMA. Defaults to ``0.999``.
        eps: added to the denominator outside the square root. Defaults to ``1e-8``.
        eps_root: added inside the square root. Defaults to ``0.0``.
        threshold: smallest ``ρ_t`` at which the rectified step is used. Defaults to ``5.0``.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs ``combinator`` first,
        when given.

    Raises:
        TypeError: if ``combinator`` is neither ``None`` nor an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = scale_by_radam()
    >>> t.update(jnp.array([0.5]), t.init(jnp.zeros(1)))[0].round(4).tolist()
    [0.5]
    """
    return _after(
        combinator,
        optax.scale_by_radam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, threshold=threshold),
        "scale_by_radam",
    )


def scale_by_yogi(
    combinator: Transform | None = None,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1.0e-3,
    eps_root: float = 0.0,
    initial_accumulator_value: float = 1.0e-6,
) -> Update:
    """Scale by Yogi: ``v ← v - (1 - b2) · sign(v - g²) · g²``; ``m̂ / (sqrt(v̂ + eps_root) + eps)``.

    Defaults are Polaris's code values (``eps=1e-3``, ``initial_accumulator_value=1e-6``).

    Args:
        combinator: a transform to run before this one (Axon's ``t |> f()``), or ``None``
            (the default) for this transform alone.
        b1: decay rate of the first-moment (mean) EMA. Defaults to ``0.9``.
        b2: decay rate of the second-moment EMA. Defaults to ``0.999``.
        eps: added to the denominator outside the square root. Defaults to ``1e-3``.
        eps_root: added inside the square root. Defaults to ``0.0``.
        initial_accumulator_value: starting value of both moments. Defaults to ``1e-6``.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs ``combinator`` first,
        when given.

    Raises:
        TypeError: if ``combinator`` is neither ``None`` nor an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = scale_by_yogi()
    >>> t.update(jnp.array([1.0]), t.init(jnp.zeros(1)))[0].shape
    (1,)
    """
    return _after(
        combinator,
        optax.scale_by_yogi(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            initial_accumulator_value=initial_accumulator_value,
        ),
        "scale_by_yogi",
    )


def scale_by_trust_ratio(
    combinator: Transform | None = None,
    *,
    min_norm: float = 0.0,
    trust_coefficient: float = 1.0,
    eps: float = 0.0,
) -> Update:
    """Scale each parameter's update by ``trust_coefficient · ‖p‖ / (‖u‖ + eps)`` (LARS/LAMB).

    Norms are clipped below at ``min_norm``; where either norm is zero the ratio is 1.

    Args:
        combinator: a transform to run before this one (Axon's ``t |> f()``), or ``None``
            (the default) for this transform alone.
        min_norm: lower bound applied to both norms. Defaults to ``0.0``.
        trust_coefficient: multiplier of the ratio. Defaults to ``1.0``.
        eps: added to the update norm in the denominator. Defaults to ``0.0``.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs ``combinator`` first,
        when given.

    Raises:
        TypeError: if ``combinator`` is neither ``None`` nor an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = scale_by_trust_ratio()
    >>> params = jnp.array([3.0, 4.0])
    >>> t.update(jnp.array([0.1, 0.0]), t.init(params), params)[0].round(4).tolist()
    [5.0, 0.0]
    """
    return _after(
        combinator,
        optax.scale_by_trust_ratio(min_norm=min_norm, trust_coefficient=trust_coefficient, eps=eps),
        "scale_by_trust_ratio",
    )


# ---------------------------------------------------------------------------------------------
# Other updates


def trace(
    combinator: Transform | None = None, *, decay: float = 0.9, nesterov: bool = False
) -> Update:
    """Momentum: ``t ← decay · t + g``; returns ``t`` (or ``g + decay · t`` with ``nesterov``).

    Args:
        combinator: a transform to run before this one (Axon's ``t |> f()``), or ``None``
            (the default) for this transform alone.
        decay: momentum coefficient. Defaults to ``0.9``.
        nesterov: whether to return the Nesterov form ``g + decay · t``. Defaults to
            ``False``.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs ``combinator`` first,
        when given.

    Raises:
        TypeError: if ``combinator`` is neither ``None`` nor an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = trace(decay=0.5)
    >>> state = t.init(jnp.zeros(1))
    >>> u1, state = t.update(jnp.ones(1), state)
    >>> u2, state = t.update(jnp.ones(1), state)
    >>> u1.tolist(), u2.tolist()
    ([1.0], [1.5])
    """
    return _after(combinator, optax.trace(decay=decay, nesterov=nesterov), "trace")


def clip(combinator: Transform | None = None, *, delta: float = 2.0) -> Update:
    """Clip every update element to ``[-delta, delta]``.

    Args:
        combinator: a transform to run before this one (Axon's ``t |> f()``), or ``None``
            (the default) for this transform alone.
        delta: largest absolute value an update element may have. Defaults to ``2.0``.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs ``combinator`` first,
        when given.

    Raises:
        TypeError: if ``combinator`` is neither ``None`` nor an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = clip(delta=1.0)
    >>> t.update(jnp.array([-3.0, 0.5, 2.0]), t.init(jnp.zeros(3)))[0].tolist()
    [-1.0, 0.5, 1.0]
    """
    return _after(combinator, optax.clip(delta), "clip")


def clip_by_global_norm(combinator: Transform | None = None, *, max_norm: float = 1.0) -> Update:
    """Rescale all updates together so that their global L2 norm is at most ``max_norm``.

    Args:
        combinator: a transform to run before this one (Axon's ``t |> f()``), or ``None``
            (the default) for this transform alone.
        max_norm: largest global L2 norm of all updates together. Defaults to ``1.0``.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs ``combinator`` first,
        when given.

    Raises:
        TypeError: if ``combinator`` is neither ``None`` nor an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = clip_by_global_norm(max_norm=1.0)
    >>> u = {"a": jnp.array([3.0]), "b": jnp.array([4.0])}
    >>> out, _ = t.update(u, t.init(u))
    >>> round(float(out["a"][0]), 4), round(float(out["b"][0]), 4)
    (0.6, 0.8)
    """
    return _after(combinator, optax.clip_by_global_norm(max_norm), "clip_by_global_norm")


def centralize(combinator: Transform | None = None) -> Update:
    """Gradient centralization: subtract from each update of rank > 1 its mean over all axes but the first.

    Args:
        combinator: a transform to run before this one (Axon's ``t |> f()``), or ``None``
            (the default) for this transform alone.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs ``combinator`` first,
        when given.

    Raises:
        TypeError: if ``combinator`` is neither ``None`` nor an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = centralize()
    >>> t.update(jnp.array([[1.0, 3.0], [0.0, 0.0]]), t.init(jnp.zeros((2, 2))))[0].tolist()
    [[-1.0, 1.0], [0.0, 0.0]]
    """
    return _after(combinator, optax.centralize(), "centralize")


def add_decayed_weights(
    combinator: Transform | None = None, *, decay: float = 0.0, mask: Any = None
) -> Update:
    """Add ``decay · params`` to the updates (decoupled weight decay).

    ``mask`` (as in ``optax.add_decayed_weights``) limits the decay to some parameters: a
    pytree of bools with the parameters' structure (``True`` = decayed), or a function of
    the parameters returning one. ``None`` decays every parameter.

    Args:
        combinator: a transform to run before this one (Axon's ``t |> f()``), or ``None``
            (the default) for this transform alone.
        decay: weight-decay coefficient. Defaults to ``0.0``.
        mask: which parameters decay: a pytree of bools shaped like the parameters, a
            function of the parameters returning one, or ``None`` (the default) for all.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs ``combinator`` first,
        when given.

    Raises:
        TypeError: if ``combinator`` is neither ``None`` nor an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = add_decayed_weights(decay=0.1)
    >>> params = jnp.array([10.0])
    >>> t.update(jnp.array([1.0]), t.init(params), params)[0].tolist()
    [2.0]
    """
    return _after(combinator, optax.add_decayed_weights(decay, mask), "add_decayed_weights")


def add_noise(
    combinator: Transform | None = None,
    *,
    eta: float = 0.01,
    gamma: float = 0.55,
    seed: int = 0,
) -> Update:
    """Add Gaussian noise of variance ``eta / (1 + t) ** gamma`` to the updates (``t`` = step).

    Deviations from Polaris, which multiplies unit noise by the *variance* and seeds from
    the clock: the noise has that variance (standard deviation ``sqrt(eta / (1 + t) **
    gamma)``, as published by Neelakantan et al. and in optax), and the key comes from
    ``seed`` (default 0), so runs are reproducible. The key is kept in the state.

    Args:
        combinator: a transform to run before this one (Axon's ``t |> f()``), or ``None``
            (the default) for this transform alone.
        eta: noise variance at step 0. Defaults to ``0.01``.
        gamma: decay exponent of the variance. Defaults to ``0.55``.
        seed: seed of the noise's random key. Defaults to ``0``.

    Returns:
        An :class:`Update` (an optax gradient transformation) that runs ``combinator`` first,
        when given.

    Raises:
        TypeError: if ``combinator`` is neither ``None`` nor an optax gradient transformation.

    >>> import jax.numpy as jnp
    >>> t = add_noise(eta=0.0)
    >>> t.update(jnp.array([1.0]), t.init(jnp.zeros(1)))[0].tolist()
    [1.0]
    """
    return _after(combinator, optax.add_noise(eta, gamma, seed), "add_noise")
