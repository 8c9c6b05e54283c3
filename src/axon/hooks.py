"""Hooks: side effects that run inside the compiled model, at a layer's initialization,
before its forward pass, after it, or on its output gradient.

>>> import axon, jax, jax.numpy as jnp
>>> seen = []
>>> model = axon.input("x").pipe(axon.relu).pipe(axon.attach_hook, lambda v: seen.append(v.tolist()))
>>> _ = axon.predict(model, {}, jnp.array([-1.0, 1.0])); jax.effects_barrier()
>>> seen
[[0.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from axon.graph import Axon, Node

__all__ = ["attach_hook"]

EVENTS = ("initialize", "pre_forward", "forward", "backward", "all")
MODES = ("both", "train", "inference")


def attach_hook(
    model: Axon | Node, fn: Callable[[Any], Any], *, on: str = "forward", mode: str = "both"
) -> Axon | Node:
    """Attach ``fn`` to the output layer of ``model`` (or to a ``Node``, e.g. in
    ``map_nodes``).

    ``on`` is ``"initialize"`` (receives the layer's parameters as a dict),
    ``"pre_forward"`` (each input), ``"forward"`` (the output), ``"backward"`` (the
    gradient of the output) or ``"all"``; ``mode`` restricts it to ``"train"`` or
    ``"inference"`` builds. Hooks run in the order they were attached, as
    ``jax.debug.callback`` calls, so they work under ``jit``.

    Args:
        model: the graph (its output layer gets the hook) or a ``Node``.
        fn: the hook, called with the value of the event (its return value is ignored).
        on: ``"forward"`` (default), ``"initialize"``, ``"pre_forward"``, ``"backward"`` or
            ``"all"``.
        mode: ``"both"`` (default), ``"train"`` or ``"inference"``.

    Returns:
        A new graph (or node) of the same kind as ``model``.

    Raises:
        ValueError: an unknown ``on`` or ``mode``.
        TypeError: ``fn`` is not callable, or ``model`` is neither a graph nor a node.

    >>> import axon
    >>> m = axon.attach_hook(axon.input("x"), print, on="all", mode="train")
    >>> m.node.hooks[0][:2]
    ('all', 'train')
    """
    if on not in EVENTS:
        raise ValueError(f"attach_hook: expected on to be one of {list(EVENTS)}, got {on!r}")
    if mode not in MODES:
        raise ValueError(f"attach_hook: expected mode to be one of {list(MODES)}, got {mode!r}")
    if not callable(fn):
        raise TypeError(f"attach_hook: expected a function, got {fn!r}")
    if isinstance(model, Node):
        return model.replace(hooks=(*model.hooks, (on, mode, fn)))
    if not isinstance(model, Axon):
        raise TypeError(f"attach_hook: expected an axon graph or node, got {type(model).__name__}")
    nodes = dict(model.nodes)
    node = model.node
    nodes[node.id] = node.replace(hooks=(*node.hooks, (on, mode, fn)))
    return Axon(nodes, model.output)
