"""An exponential moving average of a trainer's trainable parameters, kept inside the
compiled step (``Loop.ema``).

The average starts at the initial parameters and, after every ``every``-th step ``t``
(``step_state["i"] % every == 0``), becomes ``decay * average + (1 - decay) * params_t``
(``optax.incremental_update``), computed in float32 at least and stored in the parameters'
dtypes. It lives in the step state as ``"ema_model_state"``: the current model state (layer
state such as batch-norm statistics included) with the averaged trainable parameters, so it
is checkpointed and resumed with the rest; ``Loop.validate`` evaluates it, and the trainer's
``run`` returns it (:func:`evaluated_model_state`).

>>> import axon, jax.numpy as jnp
>>> from axon.loop.steps import train_step
>>> init_fn, step_fn = with_ema(*train_step(axon.input("x").pipe(axon.dense, 1), "mean_squared_error", "sgd"), 0.5, 1)
>>> batch = (jnp.ones((2, 3)), jnp.zeros((2, 1)))
>>> state = step_fn(init_fn(batch), batch)
>>> sorted(k for k in state if "model_state" in k)
['ema_model_state', 'model_state']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

__all__ = ["EMA_KEY", "evaluated_model_state", "is_ema_step", "with_ema"]

EMA_KEY = "ema_model_state"


def _average(average: Any, params: Any, decay: float) -> Any:
    def one(a: jax.Array, p: jax.Array) -> jax.Array:
        dtype = jnp.promote_types(a.dtype, jnp.float32)
        new = optax.incremental_update(p.astype(dtype), a.astype(dtype), 1.0 - decay)
        return new.astype(a.dtype)

    return jax.tree_util.tree_map(one, average, params)


def with_ema(
    init_fn: Callable[..., dict], step_fn: Callable[..., dict], decay: float, every: int
) -> tuple[Callable[..., dict], Callable[..., dict]]:
    """A trainer's ``(init_fn, step_fn)`` that also keep the parameters' moving average in
    ``step_state["ema_model_state"]``.

    Args:
        init_fn: the trainer's ``init_fn``; its step state has ``"model_state"`` and ``"i"``.
        step_fn: the trainer's ``step_fn``.
        decay: the average's decay, in [0, 1).
        every: update the average after every this many steps.

    Returns:
        The new ``(init_fn, step_fn)``.
    """

    def init(batch: Any, init_state: Any = None) -> dict:
        state = init_fn(batch, init_state)
        return {**state, EMA_KEY: state["model_state"]}

    def step(step_state: dict, batch: Any) -> dict:
        new = step_fn({k: v for k, v in step_state.items() if k != EMA_KEY}, batch)
        model_state = new["model_state"]
        previous = step_state[EMA_KEY].trainable_parameters()
        averaged = _average(previous, model_state.trainable_parameters(), decay)
        update = new["i"] % every == 0
        kept = jax.tree_util.tree_map(lambda n, o: jnp.where(update, n, o), averaged, previous)
        return {**new, EMA_KEY: model_state.update(kept)}

    step.axon_ema = True  # type: ignore[attr-defined]
    return init, step


def evaluated_model_state(step_state: Any) -> Any:
    """The model state a trainer validates with and returns: the moving average
    (``"ema_model_state"``) when the trainer keeps one, else ``"model_state"``.

    Args:
        step_state: a trainer's step state.

    Returns:
        The model state.

    >>> evaluated_model_state({"model_state": "trained", "ema_model_state": "averaged"})
    'averaged'
    """
    return step_state[EMA_KEY] if EMA_KEY in step_state else step_state["model_state"]


def is_ema_step(step_fn: Any) -> bool:
    """Whether ``step_fn`` already keeps a moving average (made by :func:`with_ema`).

    >>> is_ema_step(lambda s, b: s)
    False
    """
    return bool(getattr(step_fn, "axon_ema", False))
