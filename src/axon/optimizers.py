"""Optimizers (Axon's ``Axon.Optimizers`` / ``Polaris.Optimizers``), as optax transforms.

Every constructor returns an ``optax.GradientTransformation`` (an ``axon.updates.Update``,
so ``.pipe`` works too) built from ``axon.updates`` transforms, with Axon's option names
and defaults. ``learning_rate`` is a number or a schedule (any ``step -> value``
function, e.g. from ``axon.schedules``); a schedule is evaluated at the update count,
starting from 0.

Run-time learning rate. Each optimizer is wrapped in ``optax.inject_hyperparams``: its
state has ``state.hyperparams["learning_rate"]`` (the rate, or for a schedule its value
at the current step, recomputed on every update) and ``state.hyperparams
["learning_rate_scale"]`` (1.0 initially). The rate applied is their product. To scale
the rate at run time, as ``reduce_lr_on_plateau`` does, use :func:`scale_learning_rate`,
which works for constant rates and schedules alike; :func:`learning_rate` reads the
rate in effect.

>>> import jax
>>> import jax.numpy as jnp
>>> import optax
>>> opt = adam(0.1)
>>> params = jnp.array([1.0, -1.0])
>>> state = opt.init(params)
>>> grads = jax.grad(lambda p: jnp.sum(p**2))(params)
>>> updates, state = opt.update(grads, state, params)
>>> optax.apply_updates(params, updates).round(4).tolist()
[0.9, -0.9]
>>> state = scale_learning_rate(state, 0.5)
>>> round(float(learning_rate(state)), 4)
0.05
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from axon import updates as U
from axon.lookup import lookup

__all__ = [
    "OPTIMIZERS",
    "adabelief",
    "adagrad",
    "adam",
    "adamw",
    "fromage",
    "get",
    "lamb",
    "learning_rate",
    "noisy_sgd",
    "radam",
    "rmsprop",
    "scale_learning_rate",
    "sgd",
    "yogi",
]

LearningRate = float | jax.Array | Callable[[jax.typing.ArrayLike], jax.typing.ArrayLike]


def _with_learning_rate(
    name: str, learning_rate: LearningRate, build: Callable[[Any], optax.GradientTransformation]
) -> U.Update:
    """``build(lr)`` inside ``optax.inject_hyperparams`` with a learning-rate scale."""
    if isinstance(learning_rate, bool) or not (
        callable(learning_rate) or isinstance(learning_rate, (numbers.Real, jax.Array, np.ndarray))
    ):
        raise TypeError(
            f"{name}: expected learning_rate to be a number or a schedule (a function of the "
            f"step), got {learning_rate!r}"
        )
    if isinstance(learning_rate, numbers.Real):
        learning_rate = float(learning_rate)

    def factory(learning_rate, learning_rate_scale):
        return build(learning_rate * learning_rate_scale)

    t = optax.inject_hyperparams(factory)(learning_rate=learning_rate, learning_rate_scale=1.0)
    return U.Update(t.init, t.update)


def adabelief(
    learning_rate: LearningRate = 1.0e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 0.0,
    eps_root: float = 1.0e-16,
) -> U.Update:
    """AdaBelief: ``scale_by_belief`` then ``-learning_rate``.

    Deviation from Polaris: the second moment is the EMA of the squared prediction error
    ``(g - m)²`` as published (Polaris accumulates ``g²``); see
    ``axon.updates.scale_by_belief``.

    Args:
        learning_rate: The step size: a number, or a schedule (a function of the update
            count, from 0) such as those in ``axon.schedules``. Default ``1e-3``.
        b1: Decay rate of the gradient's moving average. Default ``0.9``.
        b2: Decay rate of the moving average of ``(g - m)²``. Default ``0.999``.
        eps: Added to the denominator outside the square root. Default ``0.0``.
        eps_root: Added inside the square root. Default ``1e-16``.

    Returns:
        An ``optax.GradientTransformation`` (an ``axon.updates.Update``).

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a schedule.

    >>> import jax.numpy as jnp
    >>> opt = adabelief(0.1)
    >>> opt.update(jnp.array([1.0]), opt.init(jnp.zeros(1)))[0].round(4).tolist()
    [-0.1111]
    """
    return _with_learning_rate(
        "adabelief",
        learning_rate,
        lambda lr: U.scale_by_belief(b1=b1, b2=b2, eps=eps, eps_root=eps_root).pipe(U.scale, -lr),
    )


def adagrad(
    learning_rate: LearningRate = 1.0e-3,
    *,
    eps: float = 1.0e-7,
    initial_accumulator_value: float = 0.1,
) -> U.Update:
    """Adagrad: ``scale_by_rss`` then ``-learning_rate``.

    Args:
        learning_rate: The step size: a number, or a schedule (a function of the update
            count, from 0). Default ``1e-3``.
        eps: Added inside the square root of the accumulated squares. Default ``1e-7``.
        initial_accumulator_value: Starting value of the sum of squared gradients.
            Default ``0.1``.

    Returns:
        An ``optax.GradientTransformation`` (an ``axon.updates.Update``).

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a schedule.

    >>> import jax.numpy as jnp
    >>> opt = adagrad(0.5, initial_accumulator_value=0.0, eps=0.0)
    >>> opt.update(jnp.array([4.0]), opt.init(jnp.zeros(1)))[0].tolist()
    [-0.5]
    """
    return _with_learning_rate(
        "adagrad",
        learning_rate,
        lambda lr: U.scale_by_rss(
            initial_accumulator_value=initial_accumulator_value, eps=eps
        ).pipe(U.scale, -lr),
    )


def adam(
    learning_rate: LearningRate = 1.0e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1.0e-8,
    eps_root: float = 1.0e-15,
    mu_dtype: Any = None,
    nesterov: bool = False,
) -> U.Update:
    """Adam: ``scale_by_adam`` then ``-learning_rate``.

    Args:
        learning_rate: The step size: a number, or a schedule (a function of the update
            count, from 0). Default ``1e-3``.
        b1: Decay rate of the first moment (gradient EMA). Default ``0.9``.
        b2: Decay rate of the second moment (squared-gradient EMA). Default ``0.999``.
        eps: Added to the denominator outside the square root. Default ``1e-8``.
        eps_root: Added inside the square root (Polaris's default ``1e-15``; optax's is 0).
        mu_dtype: dtype of the first moment, e.g. ``"bfloat16"`` to halve its memory.
            Default ``None``: the parameters' dtype. Passed to ``optax.scale_by_adam``.
        nesterov: Use Nesterov momentum (NAdam, Dozat 2016; ``optax.nadam``). Default
            ``False``.

    Returns:
        An ``optax.GradientTransformation`` (an ``axon.updates.Update``).

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a schedule.

    >>> import jax.numpy as jnp
    >>> opt = adam(0.01)
    >>> opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))[0].round(4).tolist()
    [-0.01]
    """
    return _with_learning_rate(
        "adam",
        learning_rate,
        lambda lr: U.scale_by_adam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov
        ).pipe(U.scale, -lr),
    )


def adamw(
    learning_rate: LearningRate = 1.0e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1.0e-8,
    eps_root: float = 1.0e-15,
    decay: float = 0.0,
    mask: Any = None,
    mu_dtype: Any = None,
    nesterov: bool = False,
) -> U.Update:
    """AdamW: ``scale_by_adam``, ``add_decayed_weights(decay)``, then ``-learning_rate``.

    The weight decay is decoupled and multiplied by the learning rate, as in PyTorch's
    ``AdamW`` (``weight_decay`` there is ``decay`` here; Axon's default is 0.0).

    Args:
        learning_rate: The step size: a number, or a schedule (a function of the update
            count, from 0). Default ``1e-3``.
        b1: Decay rate of the first moment (gradient EMA). Default ``0.9``.
        b2: Decay rate of the second moment (squared-gradient EMA). Default ``0.999``.
        eps: Added to the denominator outside the square root. Default ``1e-8``.
        eps_root: Added inside the square root. Default ``1e-15``.
        decay: Weight-decay coefficient (per step, times the learning rate). Default
            ``0.0``.
        mask: Which parameters are decayed: a pytree of bools with the parameters'
            structure (``True`` = decayed) or a function of the parameters returning one,
            as in ``optax.adamw``. Default ``None``: all of them. A common choice leaves
            biases and normalization scales undecayed.
        mu_dtype: dtype of the first moment. Default ``None``: the parameters' dtype.
        nesterov: Use Nesterov momentum (NAdamW). Default ``False``.

    Returns:
        An ``optax.GradientTransformation`` (an ``axon.updates.Update``).

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a schedule.

    >>> import jax.numpy as jnp
    >>> opt = adamw(0.1, decay=0.5)
    >>> params = jnp.array([2.0])
    >>> opt.update(jnp.array([3.0]), opt.init(params), params)[0].round(4).tolist()
    [-0.2]
    >>> params = {"w": jnp.array([2.0]), "b": jnp.array([2.0])}
    >>> opt = adamw(0.1, decay=0.5, mask={"w": True, "b": False})
    >>> u, _ = opt.update({"w": jnp.array([3.0]), "b": jnp.array([3.0])}, opt.init(params), params)
    >>> u["w"].round(4).tolist(), u["b"].round(4).tolist()
    ([-0.2], [-0.1])
    """
    return _with_learning_rate(
        "adamw",
        learning_rate,
        lambda lr: (
            U.scale_by_adam(
                b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov
            )
            .pipe(U.add_decayed_weights, decay=decay, mask=mask)
            .pipe(U.scale, -lr)
        ),
    )


def fromage(learning_rate: LearningRate = 1.0e-2, *, min_norm: float = 0.0) -> U.Update:
    """Fromage: ``p ← (p - lr · g · ‖p‖ / ‖g‖) / sqrt(1 + lr²)`` per parameter.

    Built as in Axon: ``scale_by_trust_ratio``, ``scale(-lr / sqrt(1 + lr²))``, then
    ``add_decayed_weights(1 / sqrt(1 + lr²) - 1)``.

    Args:
        learning_rate: The step size: a number, or a schedule (a function of the update
            count, from 0). Default ``1e-2``.
        min_norm: Lower bound on the parameter and update norms in the trust ratio
            ``‖p‖ / ‖u‖``. Default ``0.0``.

    Returns:
        An ``optax.GradientTransformation`` (an ``axon.updates.Update``).

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a schedule.

    >>> import jax.numpy as jnp
    >>> opt = fromage(0.75)
    >>> params = jnp.array([3.0, 4.0])
    >>> u, _ = opt.update(jnp.array([1.0, 0.0]), opt.init(params), params)
    >>> (params + u).round(4).tolist()
    [-0.6, 3.2]
    """

    def build(lr):
        mult = 1.0 / jnp.sqrt(1.0 + lr**2)
        return (
            U.scale_by_trust_ratio(min_norm=min_norm)
            .pipe(U.scale, -lr * mult)
            .pipe(U.add_decayed_weights, decay=mult - 1.0)
        )

    return _with_learning_rate("fromage", learning_rate, build)


def lamb(
    learning_rate: LearningRate = 1.0e-2,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1.0e-8,
    eps_root: float = 1.0e-15,
    decay: float = 0.0,
    min_norm: float = 0.0,
    mask: Any = None,
) -> U.Update:
    """LAMB: ``scale_by_adam``, ``add_decayed_weights``, ``scale_by_trust_ratio``, ``-learning_rate``.

    Args:
        learning_rate: The step size: a number, or a schedule (a function of the update
            count, from 0). Default ``1e-2``.
        b1: Decay rate of the first moment. Default ``0.9``.
        b2: Decay rate of the second moment. Default ``0.999``.
        eps: Added to the denominator outside the square root. Default ``1e-8``.
        eps_root: Added inside the square root. Default ``1e-15``.
        decay: Weight-decay coefficient, applied before the trust ratio. Default ``0.0``.
        min_norm: Lower bound on the norms in the trust ratio ``‖p‖ / ‖u‖``. Default
            ``0.0``.
        mask: Which parameters are decayed (a pytree of bools or a function of the
            parameters returning one), as in ``optax.lamb``. Default ``None``: all.

    Returns:
        An ``optax.GradientTransformation`` (an ``axon.updates.Update``).

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a schedule.

    >>> import jax.numpy as jnp
    >>> opt = lamb(0.1)
    >>> params = jnp.array([3.0, 4.0])
    >>> opt.update(jnp.array([1.0, 1.0]), opt.init(params), params)[0].round(4).tolist()
    [-0.3536, -0.3536]
    """
    return _with_learning_rate(
        "lamb",
        learning_rate,
        lambda lr: (
            U.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root)
            .pipe(U.add_decayed_weights, decay=decay, mask=mask)
            .pipe(U.scale_by_trust_ratio, min_norm=min_norm)
            .pipe(U.scale, -lr)
        ),
    )


def noisy_sgd(
    learning_rate: LearningRate = 1.0e-2,
    *,
    eta: float = 0.01,
    gamma: float = 0.55,
    seed: int = 0,
) -> U.Update:
    """SGD with annealed Gaussian gradient noise: ``-lr · (g + N(0, eta / (1 + t) ** gamma))``.

    Deviations from Polaris (which adds noise of scale ``eta / (1 + t) ** gamma`` after
    the learning-rate scaling, seeded from the clock): the noise is added to the gradient
    before scaling, with that variance, as published (Neelakantan et al., 2015) and in
    optax; the key comes from ``seed`` (default 0) and lives in the state.

    Args:
        learning_rate: The step size: a number, or a schedule (a function of the update
            count, from 0). Default ``1e-2``.
        eta: Initial noise variance. Default ``0.01``.
        gamma: Annealing exponent of the variance over steps ``t``. Default ``0.55``.
        seed: Seed of the noise's PRNG key. Default ``0``.

    Returns:
        An ``optax.GradientTransformation`` (an ``axon.updates.Update``).

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a schedule.

    >>> import jax.numpy as jnp
    >>> opt = noisy_sgd(0.1, eta=0.0)
    >>> opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))[0].round(4).tolist()
    [-0.2]
    """
    return _with_learning_rate(
        "noisy_sgd",
        learning_rate,
        lambda lr: U.add_noise(eta=eta, gamma=gamma, seed=seed).pipe(U.scale, -lr),
    )


def radam(
    learning_rate: LearningRate = 1.0e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1.0e-8,
    eps_root: float = 0.0,
    threshold: float = 5.0,
) -> U.Update:
    """Rectified Adam: ``scale_by_radam`` then ``-learning_rate``.

    Deviation from Polaris: ``ρ_∞ = 2 / (1 - b2) - 1`` as published (Polaris uses ``b1``);
    see ``axon.updates.scale_by_radam``.

    Args:
        learning_rate: The step size: a number, or a schedule (a function of the update
            count, from 0). Default ``1e-3``.
        b1: Decay rate of the first moment. Default ``0.9``.
        b2: Decay rate of the second moment. Default ``0.999``.
        eps: Added to the denominator outside the square root. Default ``1e-8``.
        eps_root: Added inside the square root. Default ``0.0``.
        threshold: Variance-tractability threshold on ``ρ_t``; below it the update is the
            un-adapted momentum. Default ``5.0``.

    Returns:
        An ``optax.GradientTransformation`` (an ``axon.updates.Update``).

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a schedule.

    >>> import jax.numpy as jnp
    >>> opt = radam(0.1)
    >>> opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))[0].round(4).tolist()
    [-0.2]
    """
    return _with_learning_rate(
        "radam",
        learning_rate,
        lambda lr: U.scale_by_radam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, threshold=threshold
        ).pipe(U.scale, -lr),
    )


def rmsprop(
    learning_rate: LearningRate = 1.0e-2,
    *,
    centered: bool = False,
    momentum: float | None = None,
    nesterov: bool = False,
    initial_scale: float = 0.0,
    decay: float = 0.9,
    eps: float = 1.0e-8,
) -> U.Update:
    """RMSProp: ``scale_by_rms`` (``scale_by_stddev`` if ``centered``), ``-learning_rate``, then ``trace(momentum)``.

    ``eps`` goes inside the square root (``g / sqrt(v + eps)``), as in Axon; PyTorch adds it
    outside. ``nesterov`` needs ``momentum``.

    Args:
        learning_rate: The step size: a number, or a schedule (a function of the update
            count, from 0). Default ``1e-2``.
        centered: Divide by the standard deviation of the gradients (their second moment
            minus their squared mean) instead of their root mean square. Default ``False``.
        momentum: Momentum applied after scaling; ``None`` or 0 for none. Default ``None``.
        nesterov: Nesterov momentum (needs ``momentum``). Default ``False``.
        initial_scale: Starting value of the squared-gradient average. Default ``0.0``.
        decay: Decay rate of the squared-gradient average. Default ``0.9``.
        eps: Added inside the square root. Default ``1e-8``.

    Returns:
        An ``optax.GradientTransformation`` (an ``axon.updates.Update``).

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a schedule.
        ValueError: ``nesterov=True`` without a momentum.

    >>> import jax.numpy as jnp
    >>> opt = rmsprop(0.1, decay=0.75, eps=0.0)
    >>> opt.update(jnp.array([3.0]), opt.init(jnp.zeros(1)))[0].round(4).tolist()
    [-0.2]
    """
    if nesterov and not momentum:
        raise ValueError("rmsprop: nesterov=True needs a non-zero momentum")

    def build(lr):
        rms = U.scale_by_stddev if centered else U.scale_by_rms
        t = rms(decay=decay, eps=eps, initial_scale=initial_scale).pipe(U.scale, -lr)
        return t.pipe(U.trace, decay=momentum, nesterov=nesterov) if momentum else t

    return _with_learning_rate("rmsprop", learning_rate, build)


def sgd(
    learning_rate: LearningRate = 1.0e-2,
    *,
    momentum: float | None = None,
    nesterov: bool = False,
) -> U.Update:
    """Stochastic gradient descent, with optional (Nesterov) momentum: ``trace`` then ``-learning_rate``.

    With ``momentum`` this matches ``torch.optim.SGD(momentum=..., nesterov=...)``.

    Args:
        learning_rate: The step size: a number, or a schedule (a function of the update
            count, from 0). Default ``1e-2``.
        momentum: Momentum decay rate; ``None`` or 0 for plain SGD. Default ``None``.
        nesterov: Nesterov momentum (needs ``momentum``). Default ``False``.

    Returns:
        An ``optax.GradientTransformation`` (an ``axon.updates.Update``).

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a schedule.
        ValueError: ``nesterov=True`` without a momentum.

    >>> import jax.numpy as jnp
    >>> opt = sgd(0.1)
    >>> opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))[0].round(4).tolist()
    [-0.2]
    """
    if nesterov and not momentum:
        raise ValueError("sgd: nesterov=True needs a non-zero momentum")

    def build(lr):
        if momentum:
            return U.trace(decay=momentum, nesterov=nesterov).pipe(U.scale, -lr)
        return U.scale(-lr)

    return _with_learning_rate("sgd", learning_rate, build)


def yogi(
    learning_rate: LearningRate = 1.0e-2,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1.0e-3,
    eps_root: float = 0.0,
    initial_accumulator_value: float = 1.0e-6,
) -> U.Update:
    """Yogi: ``scale_by_yogi`` then ``-learning_rate`` (Polaris's code defaults).

    Args:
        learning_rate: The step size: a number, or a schedule (a function of the update
            count, from 0). Default ``1e-2``.
        b1: Decay rate of the first moment. Default ``0.9``.
        b2: Rate of the additive second-moment update. Default ``0.999``.
        eps: Added to the denominator outside the square root. Default ``1e-3``.
        eps_root: Added inside the square root. Default ``0.0``.
        initial_accumulator_value: Starting value of both moments. Default ``1e-6``.

    Returns:
        An ``optax.GradientTransformation`` (an ``axon.updates.Update``).

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a schedule.

    >>> import jax.numpy as jnp
    >>> opt = yogi()
    >>> opt.update(jnp.array([1.0]), opt.init(jnp.zeros(1)))[0].shape
    (1,)
    """
    return _with_learning_rate(
        "yogi",
        learning_rate,
        lambda lr: U.scale_by_yogi(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            initial_accumulator_value=initial_accumulator_value,
        ).pipe(U.scale, -lr),
    )


OPTIMIZERS: dict[str, Callable[..., U.Update]] = {
    "adabelief": adabelief,
    "adagrad": adagrad,
    "adam": adam,
    "adamw": adamw,
    "fromage": fromage,
    "lamb": lamb,
    "noisy_sgd": noisy_sgd,
    "radam": radam,
    "rmsprop": rmsprop,
    "sgd": sgd,
    "yogi": yogi,
}


def get(name_or_transform: str | optax.GradientTransformation) -> optax.GradientTransformation:
    """An optimizer by name (built with its defaults), or an optax transformation unchanged.

    >>> get("adam") is not None, get(sgd(0.1)).__class__.__name__
    (True, 'Update')
    >>> get("adma")
    Traceback (most recent call last):
    ...
    ValueError: unknown optimizer 'adma' (did you mean 'adam'?); expected an optax.GradientTransformation or one of: 'adabelief', ...
    """
    found = lookup(
        name_or_transform,
        OPTIMIZERS,
        kind="optimizer",
        accepts="an optax.GradientTransformation",
        is_accepted=lambda t: isinstance(t, optax.GradientTransformation),
    )
    return found() if isinstance(name_or_transform, str) else found


# ---------------------------------------------------------------------------------------------
# Run-time learning rate


def _is_inject_state(x: Any) -> bool:
    return isinstance(x, optax.InjectStatefulHyperparamsState)


def _lr_states(opt_state: Any) -> list:
    return [
        s
        for s in jax.tree_util.tree_leaves(opt_state, is_leaf=_is_inject_state)
        if _is_inject_state(s) and "learning_rate" in s.hyperparams
    ]


def scale_learning_rate(opt_state: Any, factor: jax.typing.ArrayLike) -> Any:
    """Return ``opt_state`` with its learning rate multiplied by ``factor``.

    Works on the state of any ``axon.optimizers`` optimizer (also inside a chain), with a
    constant rate or a schedule (it scales ``hyperparams["learning_rate_scale"]``), and on
    optax ``inject_hyperparams`` states with a constant ``learning_rate``. Jit-friendly.

    >>> import jax.numpy as jnp
    >>> state = sgd(0.1).init(jnp.zeros(2))
    >>> round(float(learning_rate(scale_learning_rate(state, 0.1))), 4)
    0.01
    """
    if not _lr_states(opt_state):
        raise ValueError(
            "scale_learning_rate: the optimizer state has no injected learning rate; build the "
            "optimizer with axon.optimizers or optax.inject_hyperparams"
        )

    def scale_one(s: Any) -> Any:
        if not _is_inject_state(s) or "learning_rate" not in s.hyperparams:
            return s
        hp = dict(s.hyperparams)
        if "learning_rate_scale" in hp:
            hp["learning_rate_scale"] = hp["learning_rate_scale"] * factor
        elif "learning_rate" in s.hyperparams_states:
            raise ValueError(
                "scale_learning_rate: this optax state's learning rate is a schedule, which is "
                "recomputed on every step; build the optimizer with axon.optimizers instead"
            )
        else:
            hp["learning_rate"] = hp["learning_rate"] * factor
        return s._replace(hyperparams=hp)

    return jax.tree_util.tree_map(scale_one, opt_state, is_leaf=_is_inject_state)


def learning_rate(opt_state: Any) -> jax.Array:
    """The learning rate in effect (``learning_rate · learning_rate_scale``) of an optimizer state.

    For a schedule it is the value used by the latest update (``schedule(0)`` right after
    ``init``).

    >>> import jax.numpy as jnp
    >>> round(float(learning_rate(adam(3e-4).init(jnp.zeros(1)))), 6)
    0.0003
    """
    states = _lr_states(opt_state)
    if not states:
        raise ValueError("learning_rate: the optimizer state has no injected learning rate")
    hp = states[0].hyperparams
    return jnp.asarray(hp["learning_rate"]) * hp.get("learning_rate_scale", 1.0)
