"""Dropout layers: ``dropout``, ``alpha_dropout``, ``feature_alpha_dropout``,
``spatial_dropout``.

They exist only in train mode (built for inference they pass their input through and
have no state). Each keeps its random key as layer state (``key``, a ``uint32[2]`` array):
the key comes from the build seed and the layer's name, or from ``seed=`` if given, and
advances on every training step, so runs are reproducible and every step draws a new mask.

>>> import axon
>>> model = axon.input("x", shape=(None, 8)).pipe(axon.dropout, rate=0.25)
>>> model.node.mode
'train'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from axon import layers
from axon.api.core import check_graph, layer, param
from axon.graph import Axon
from axon.layers._utils import check_channels
from axon.registry import factory, register, register_all
from axon.typing_aliases import LayerName

__all__ = ["alpha_dropout", "dropout", "feature_alpha_dropout", "spatial_dropout"]


def _check_rate(rate: Any, where: str) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"{where}: expected rate to be a number with 0 <= rate < 1, got {rate!r}")
    return float(rate)


def key_param(seed: int | None) -> Any:
    """The ``key`` state parameter of a random layer."""
    if seed is None:
        init = build_seed_key
    else:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"expected seed to be an int, got {seed!r}")
        init = seeded_key(seed)
    return param("key", (2,), initializer=init, dtype="uint32", kind="state")


@register("initializer", "axon.build_seed_key")
def build_seed_key(key: Any, shape: Any, dtype: Any = None) -> Any:
    """Initializer of a random layer's ``key`` without a ``seed``: the raw data of the
    key the build derives from its seed and the layer's name.

    >>> import jax
    >>> build_seed_key(jax.random.PRNGKey(3), (2,)).tolist()
    [0, 3]
    """
    return jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key


@factory("initializer_factory", "axon.seeded_key")
def seeded_key(seed: int) -> Any:
    """Initializer factory of a random layer's ``key`` given ``seed=``: ``PRNGKey(seed)``.

    >>> seeded_key(7)(None, (2,)).tolist()
    [0, 7]
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seeded_key: expected seed to be an int, got {seed!r}")

    def init(key: Any, shape: Any, dtype: Any = None) -> Any:
        return jax.random.PRNGKey(seed)

    return init


def _make(fn: Callable[..., Any], op_name: str, channel_option: bool):
    def constructor(
        x: Axon,
        *,
        rate: float = 0.5,
        seed: int | None = None,
        name: LayerName = None,
        meta: dict | None = None,
        **opts: Any,
    ) -> Axon:
        check_graph(x, op_name)
        rate = _check_rate(rate, op_name)
        allowed = {"channels"} if channel_option else {"noise_shape"} if op_name == "dropout" else set()
        unknown = sorted(set(opts) - allowed)
        if unknown:
            raise TypeError(f"{op_name}: unknown option(s) {unknown}; accepted: rate, seed, name, meta{''.join(', ' + a for a in sorted(allowed))}")
        if "channels" in opts:
            check_channels(opts["channels"], op_name)
        return layer(fn, [x, key_param(seed)], rate=rate, name=name, op_name=op_name, mode="train", meta=meta, **opts)

    constructor.__name__ = constructor.__qualname__ = op_name
    constructor.__module__ = __name__
    return constructor


dropout = _make(layers.dropout, "dropout", False)
dropout.__doc__ = """Randomly zero a fraction ``rate`` of the values in training and scale the rest
    by ``1 / (1 - rate)`` (see :func:`axon.layers.dropout`; ``noise_shape=`` shares the mask
    along axes of size 1).

    Args:
        x: The input graph.
        rate: The fraction of values dropped, ``0 <= rate < 1``. Default ``0.5``.
        seed: Seed of the layer's random key (kept as layer state and advanced on every
            training step). Default ``None``: derived from the build seed and the layer name.
        name: The layer name (``None``: ``"dropout_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.
        **opts: ``noise_shape``: the mask's shape, size 1 where the mask is shared
            (default: the input's shape). No other option is accepted.

    Returns:
        The graph of the input with dropout applied in train mode; in inference mode the
        layer passes its input through.

    Raises:
        TypeError: ``x`` is not a graph, or an unknown option was given.
        ValueError: ``rate`` is outside ``[0, 1)``.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 1000)).pipe(axon.dropout, rate=0.5)
    >>> init_fn, predict_fn = axon.build(model, mode="train")
    >>> out = predict_fn(init_fn(axon.template((1, 1000))), jnp.ones((1, 1000)))
    >>> sorted(set(out.prediction.ravel().tolist()))
    [0.0, 2.0]
    """
alpha_dropout = _make(layers.alpha_dropout, "alpha_dropout", False)
alpha_dropout.__doc__ = """Alpha dropout, which keeps SELU activations' mean and variance (see
    :func:`axon.layers.alpha_dropout`).

    Args:
        x: The input graph.
        rate: The fraction of values dropped, ``0 <= rate < 1``. Default ``0.5``.
        seed: Seed of the layer's random key (kept as layer state and advanced on every
            training step). Default ``None``: derived from the build seed and the layer name.
        name: The layer name (``None``: ``"alpha_dropout_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.
        **opts: No further option is accepted (an unknown one raises ``TypeError``).

    Returns:
        The graph of the input with dropout applied in train mode; in inference mode the
        layer passes its input through.

    Raises:
        TypeError: ``x`` is not a graph, or an unknown option was given.
        ValueError: ``rate`` is outside ``[0, 1)``.

    >>> import axon
    >>> axon.input("x").pipe(axon.alpha_dropout, rate=0.1).node.op_name
    'alpha_dropout'
    """
feature_alpha_dropout = _make(layers.feature_alpha_dropout, "feature_alpha_dropout", True)
feature_alpha_dropout.__doc__ = """Alpha dropout of whole feature maps (``channels="last"|"first"``; see
    :func:`axon.layers.feature_alpha_dropout`).

    Args:
        x: The input graph.
        rate: The fraction of values dropped, ``0 <= rate < 1``. Default ``0.5``.
        seed: Seed of the layer's random key (kept as layer state and advanced on every
            training step). Default ``None``: derived from the build seed and the layer name.
        name: The layer name (``None``: ``"feature_alpha_dropout_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.
        **opts: ``channels``: ``"last"`` (default) or ``"first"``, where the feature axis is.
            No other option is accepted.

    Returns:
        The graph of the input with dropout applied in train mode; in inference mode the
        layer passes its input through.

    Raises:
        TypeError: ``x`` is not a graph, or an unknown option was given.
        ValueError: ``rate`` is outside ``[0, 1)``.

    >>> import axon
    >>> axon.input("x").pipe(axon.feature_alpha_dropout, channels="first").node.opts["channels"]
    'first'
    """
spatial_dropout = _make(layers.spatial_dropout, "spatial_dropout", True)
spatial_dropout.__doc__ = """Dropout of whole feature maps (``channels="last"|"first"``; see
    :func:`axon.layers.spatial_dropout`).

    Args:
        x: The input graph.
        rate: The fraction of values dropped, ``0 <= rate < 1``. Default ``0.5``.
        seed: Seed of the layer's random key (kept as layer state and advanced on every
            training step). Default ``None``: derived from the build seed and the layer name.
        name: The layer name (``None``: ``"spatial_dropout_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.
        **opts: ``channels``: ``"last"`` (default) or ``"first"``, where the feature axis is.
            No other option is accepted.

    Returns:
        The graph of the input with dropout applied in train mode; in inference mode the
        layer passes its input through.

    Raises:
        TypeError: ``x`` is not a graph, or an unknown option was given.
        ValueError: ``rate`` is outside ``[0, 1)``.

    >>> import axon
    >>> axon.input("x").pipe(axon.spatial_dropout, rate=0.2).node.opts["rate"]
    0.2
    """


# functional layers (axon.layers) as ops with permanent names "axon.<name>" (see axon.registry)
register_all("op", {
    "axon.alpha_dropout": layers.alpha_dropout,
    "axon.dropout": layers.dropout,
    "axon.dropout_key": layers.dropout_key,
    "axon.feature_alpha_dropout": layers.feature_alpha_dropout,
    "axon.spatial_dropout": layers.spatial_dropout,
})
