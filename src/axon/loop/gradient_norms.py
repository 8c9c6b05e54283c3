"""Gradient norms from a trainer's step, for ``Loop.tensorboard(..., gradient_norms=True)``.

The trainer's step computes them from the gradients it already has (no second backward
pass) when its step state holds the key ``"gradient_norms"``: the initial step state gets
it from :func:`with_gradient_norms`, and every step then replaces it with the L2 norms of
that step's gradients (after loss-scale unscaling, before the optimizer): ``"global"``
over all trainable parameters, and one per layer (the layer's path, e.g. ``"dense_0"``, over
its parameters).

>>> import jax.numpy as jnp
>>> norms = gradient_norms({"dense_0": {"kernel": jnp.full((2, 2), 1.0), "bias": jnp.zeros(2)}, "dense_1": {"kernel": jnp.full((1,), 3.0)}})
>>> {k: round(float(v), 4) for k, v in norms.items()}
{'global': 3.6056, 'dense_0': 2.0, 'dense_1': 3.0}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["GRADIENT_NORMS_KEY", "gradient_norms", "layer_name", "record_gradient_norms", "with_gradient_norms"]

GRADIENT_NORMS_KEY = "gradient_norms"


def layer_name(path: tuple[Any, ...]) -> str:
    """The layer a parameter's tree path belongs to: the path without the parameter's own
    name, joined with ``/``.

    >>> from jax.tree_util import DictKey
    >>> layer_name((DictKey("block"), DictKey("dense_0"), DictKey("kernel")))
    'block/dense_0'
    """
    keys = [str(getattr(k, "key", getattr(k, "idx", k))) for k in path]
    return "/".join(keys[:-1]) if len(keys) > 1 else keys[0]


def gradient_norms(grads: Any) -> dict[str, jax.Array]:
    """``{"global": norm, layer: norm, ...}``: L2 norms of ``grads`` (a tree of arrays),
    computed in float32 at least.

    Args:
        grads: the gradients, a tree like the trainable parameters.

    Returns:
        The global norm and one norm per layer, in the tree's order.
    """
    squares: dict[str, jax.Array] = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(grads):
        value = jnp.sum(jnp.square(leaf.astype(jnp.promote_types(leaf.dtype, jnp.float32))))
        name = layer_name(path)
        squares[name] = squares[name] + value if name in squares else value
    total = sum(squares.values(), jnp.zeros((), jnp.float32))
    return {"global": jnp.sqrt(total), **{name: jnp.sqrt(v) for name, v in squares.items()}}


def with_gradient_norms(init_fn: Callable[..., Any]) -> Callable[..., Any]:
    """A trainer's ``init_fn`` whose step state also holds zero gradient norms, which asks
    the trainer's step to compute them.

    Args:
        init_fn: a trainer's ``init_fn`` (its step state has ``"model_state"``).

    Returns:
        The new ``init_fn``.
    """

    def init(batch: Any, init_state: Any = None) -> Any:
        state = init_fn(batch, init_state)
        params = state["model_state"].trainable_parameters()
        zeros = jax.tree_util.tree_map(jnp.zeros_like, gradient_norms(params))
        return {**state, GRADIENT_NORMS_KEY: zeros}

    return init


def record_gradient_norms(loop: Any) -> Any:
    """``loop`` (a trainer) with ``settings.gradient_norms`` set: its runs start from a step
    state made by :func:`with_gradient_norms` (a flag, so that methods attached later that
    rebuild the step, such as ``ema``, keep it).

    Args:
        loop: a trainer.

    Returns:
        The new loop.
    """
    return dataclasses.replace(loop, settings=dataclasses.replace(loop.settings, gradient_norms=True))
