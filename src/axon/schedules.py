"""Parameter schedules (Axon's ``Axon.Schedules`` / ``Polaris.Schedules``), as optax schedules.

A schedule maps a step count (a Python int or an integer array, so it works under
``jax.jit``) to a value, usually a learning rate. Every function here returns a plain
optax schedule, so it can be passed as ``learning_rate`` to any ``axon.optimizers``
constructor, to ``axon.updates.scale_by_schedule``, or to any optax optimizer.

The options keep Axon's names and defaults; the first argument, ``init_value``, is
required as in Polaris.

>>> import axon.schedules as schedules
>>> sched = schedules.exponential_decay(0.1, decay_rate=0.5, transition_steps=10)
>>> [round(float(sched(s)), 4) for s in (0, 10, 20)]
[0.1, 0.05, 0.025]
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import optax

__all__ = [
    "constant",
    "cosine_decay",
    "exponential_decay",
    "linear_decay",
    "polynomial_decay",
]

Schedule = Callable[[jax.typing.ArrayLike], jax.Array]


def _positive_int(value: int, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{where}: expected {name} to be a positive integer, got {value!r}")
    return value


def _non_negative_int(value: int, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}: expected {name} to be a non-negative integer, got {value!r}")
    return value


def constant(init_value: float) -> Schedule:
    """Constant schedule: ``γ(t) = init_value``.

    Args:
        init_value: the value returned at every step.

    Returns:
        A schedule: a function from the step count (an int or integer array) to the value.

    >>> float(constant(0.01)(1000))
    0.01
    """
    return optax.constant_schedule(init_value)


def exponential_decay(
    init_value: float,
    *,
    decay_rate: float = 0.95,
    transition_steps: int = 10,
    transition_begin: int = 0,
    staircase: bool = False,
) -> Schedule:
    """Exponential decay: ``γ(t) = init_value · decay_rate ** ((t - transition_begin) / transition_steps)``.

    The value is ``init_value`` up to ``transition_begin``; with ``staircase=True`` the
    exponent is floored, so the value drops once every ``transition_steps`` steps.

    Args:
        init_value: the value at step 0 (usually a learning rate).
        decay_rate: factor applied per ``transition_steps`` steps. Defaults to ``0.95``.
        transition_steps: number of steps over which the value is multiplied by
            ``decay_rate``; a positive int. Defaults to ``10``.
        transition_begin: number of steps the value is held at ``init_value`` before decay
            starts; a non-negative int. Defaults to ``0``.
        staircase: whether to decay in discrete jumps rather than smoothly. Defaults to
            ``False``.

    Returns:
        A schedule: a function from the step count (an int or integer array) to the value.

    Raises:
        ValueError: if ``transition_steps`` is not a positive int or ``transition_begin`` is
            not a non-negative int.

    >>> sched = exponential_decay(1.0, decay_rate=0.5, transition_steps=2, staircase=True)
    >>> [float(sched(s)) for s in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """
    where = "exponential_decay"
    _positive_int(transition_steps, "transition_steps", where)
    _non_negative_int(transition_begin, "transition_begin", where)
    return optax.exponential_decay(
        init_value=init_value,
        transition_steps=transition_steps,
        decay_rate=decay_rate,
        transition_begin=transition_begin,
        staircase=staircase,
    )


def cosine_decay(init_value: float, *, decay_steps: int = 10, alpha: float = 0.0) -> Schedule:
    """Cosine decay: ``γ(t) = init_value · ((1 - α) · ½(1 + cos(π · min(t, k) / k)) + α)``, ``k = decay_steps``.

    After ``decay_steps`` steps the value stays at ``alpha · init_value``.

    Args:
        init_value: the value at step 0 (usually a learning rate).
        decay_steps: number of steps the decay lasts; a positive int. Defaults to ``10``.
        alpha: the final value as a fraction of ``init_value``. Defaults to ``0.0``.

    Returns:
        A schedule: a function from the step count (an int or integer array) to the value.

    Raises:
        ValueError: if ``decay_steps`` is not a positive int.

    >>> sched = cosine_decay(1.0, decay_steps=4, alpha=0.1)
    >>> [round(float(sched(s)), 4) for s in (0, 2, 4, 8)]
    [1.0, 0.55, 0.1, 0.1]
    """
    _positive_int(decay_steps, "decay_steps", "cosine_decay")
    return optax.cosine_decay_schedule(init_value=init_value, decay_steps=decay_steps, alpha=alpha)


def polynomial_decay(
    init_value: float,
    *,
    end_value: float = 1.0e-3,
    power: float = 2,
    transition_steps: int = 10,
    transition_begin: int = 0,
) -> Schedule:
    """Polynomial decay: ``γ(t) = (init_value - end_value) · (1 - s / k) ** power + end_value``.

    ``s = clip(t - transition_begin, 0, k)`` and ``k = transition_steps``.

    Args:
        init_value: the value at step 0 (usually a learning rate).
        end_value: the value reached after ``transition_steps`` steps of decay. Defaults to
            ``1e-3``.
        power: exponent of the polynomial. Defaults to ``2``.
        transition_steps: number of steps the decay lasts; a positive int. Defaults to ``10``.
        transition_begin: number of steps the value is held at ``init_value`` before decay
            starts; a non-negative int. Defaults to ``0``.

    Returns:
        A schedule: a function from the step count (an int or integer array) to the value.

    Raises:
        ValueError: if ``transition_steps`` is not a positive int or ``transition_begin`` is
            not a non-negative int.

    >>> sched = polynomial_decay(1.0, end_value=0.0, power=1, transition_steps=4)
    >>> [float(sched(s)) for s in (0, 1, 2, 4, 10)]
    [1.0, 0.75, 0.5, 0.0, 0.0]
    """
    where = "polynomial_decay"
    _positive_int(transition_steps, "transition_steps", where)
    _non_negative_int(transition_begin, "transition_begin", where)
    return optax.polynomial_schedule(
        init_value=init_value,
        end_value=end_value,
        power=power,
        transition_steps=transition_steps,
        transition_begin=transition_begin,
    )


def linear_decay(init_value: float, *, warmup: int = 0, steps: int = 1000) -> Schedule:
    """Linear warm-up then linear decay to zero (Polaris's ``linear_decay``).

    For ``t < warmup`` the value rises linearly, ``init_value · t / warmup``; then it falls
    linearly, ``init_value · max(0, (steps - t) / (steps - warmup))``, reaching zero at
    ``steps``.

    Args:
        init_value: the peak value, reached at the end of the warm-up.
        warmup: number of warm-up steps; a non-negative int. Defaults to ``0`` (no warm-up).
        steps: the step at which the value reaches zero; a positive int greater than
            ``warmup``. Defaults to ``1000``.

    Returns:
        A schedule: a function from the step count (an int or integer array) to the value.

    Raises:
        ValueError: if ``warmup`` is negative or not an int, ``steps`` is not a positive int,
            or ``steps <= warmup``.

    >>> sched = linear_decay(1.0, warmup=2, steps=6)
    >>> [float(sched(s)) for s in range(8)]
    [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    where = "linear_decay"
    _non_negative_int(warmup, "warmup", where)
    _positive_int(steps, "steps", where)
    if steps <= warmup:
        raise ValueError(f"{where}: expected steps ({steps}) to be greater than warmup ({warmup})")
    decay = optax.linear_schedule(init_value, 0.0, steps - warmup)
    if warmup == 0:
        return decay
    rise = optax.linear_schedule(0.0, init_value, warmup)
    return optax.join_schedules([rise, decay], [warmup])
