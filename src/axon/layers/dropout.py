"""Functional dropout layers (pure JAX).

Every layer takes the input and a PRNG key (a raw ``uint32`` key of shape ``(2,)`` as made by
:func:`dropout_key`, which the graph API keeps as layer state; typed keys from
``jax.random.key`` work too). In ``mode="inference"`` (the default) the input is returned
unchanged. In ``mode="train"`` the key is split (``new_key, sub = jax.random.split(key)``), the
mask is drawn from ``sub`` and ``StatefulOutput(y, {"key": new_key})`` is returned. ``rate`` is
the probability of dropping an element and must satisfy ``0 <= rate < 1``.

Differences from Axon 0.8 (Axon's docs describe the behaviour below, its code differs):

* ``spatial_dropout`` drops whole feature maps: its mask has shape ``(B, 1, ..., 1, C)`` and is
  broadcast over the spatial axes, as ``torch.nn.Dropout2d`` and Keras ``SpatialDropout2D``.
  (Axon's mask kept the spatial axes and set the channel axis to 1.)
* ``feature_alpha_dropout`` uses the same per-feature-map mask and Klambauer et al.'s alpha
  dropout transform (dropped -> ``-alpha * lambda``, then ``a * x + b``), as
  ``torch.nn.FeatureAlphaDropout``; Axon replaced dropped values by ``-selu(x)``.

>>> import jax.numpy as jnp
>>> key = dropout_key(0)
>>> x = jnp.ones((4, 8))
>>> dropout(x, key, rate=0.5) is x  # inference mode: identity
True
>>> out = dropout(x, key, rate=0.5, mode="train")
>>> set(out.output.ravel().tolist()) <= {0.0, 2.0}, out.state["key"].shape
(True, (2,))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from axon.layers._utils import check_channels, check_min_rank
from axon.typing_aliases import Channels, RunMode
from axon.values import StatefulOutput

__all__ = [
    "alpha_dropout",
    "dropout",
    "dropout_key",
    "feature_alpha_dropout",
    "spatial_dropout",
]

# SELU constants (Klambauer et al., 2017).
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_ALPHA_P = -_SELU_ALPHA * _SELU_SCALE


def dropout_key(seed: int) -> jax.Array:
    """A raw ``uint32`` PRNG key of shape ``(2,)`` for the dropout layers (``PRNGKey(seed)``).

    Args:
        seed: an integer seed.

    Returns:
        A ``uint32`` array of shape ``(2,)``.

    >>> dropout_key(0).shape, str(dropout_key(0).dtype)
    ((2,), 'uint32')
    """
    return jax.random.PRNGKey(seed)


def _check_rate(rate: float, where: str) -> float:
    try:
        r = float(rate)
    except (TypeError, jax.errors.ConcretizationTypeError):
        raise ValueError(
            f"{where}: rate must be a Python number with 0 <= rate < 1, got {rate!r}"
        ) from None
    if not 0.0 <= r < 1.0:
        raise ValueError(f"{where}: rate must satisfy 0 <= rate < 1, got rate={rate!r}")
    return r


def _check_mode(mode: str, where: str) -> None:
    if mode not in ("inference", "train"):
        raise ValueError(f"{where}: expected mode to be 'inference' or 'train', got {mode!r}")


def _split_key(key: jax.Array | None, where: str) -> tuple[jax.Array, jax.Array]:
    if key is None:
        raise ValueError(f"{where}: a PRNG key is required in train mode (see dropout_key(seed))")
    key = jnp.asarray(key)
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and (
        key.dtype != jnp.uint32 or key.ndim != 1
    ):
        raise ValueError(
            f"{where}: expected a PRNG key (uint32 array of shape (2,) from dropout_key(seed) or "
            f"jax.random.PRNGKey), got dtype {key.dtype} and shape {tuple(key.shape)}"
        )
    new_key, sub = jax.random.split(key)
    return new_key, sub


def _feature_noise_shape(x: jax.Array, channels: Channels, where: str) -> tuple[int, ...]:
    check_channels(channels, where)
    check_min_rank(x, 3, where)
    c_axis = x.ndim - 1 if channels == "last" else 1
    return tuple(d if i in (0, c_axis) else 1 for i, d in enumerate(x.shape))


def _keep_mask(sub: jax.Array, keep_prob: float, shape: tuple[int, ...]) -> jax.Array:
    """Bernoulli(keep_prob) mask; drawn flat and reshaped, which compiles much faster on CPU
    than a multi-dimensional draw."""
    return jax.random.bernoulli(sub, keep_prob, (math.prod(shape),)).reshape(shape)


def _drop(x: jax.Array, sub: jax.Array, rate: float, noise_shape: tuple[int, ...]) -> jax.Array:
    keep_prob = 1.0 - rate
    keep = _keep_mask(sub, keep_prob, noise_shape)
    scaled = x * jnp.asarray(1.0 / keep_prob, dtype=x.dtype)
    return jnp.where(keep, scaled, jnp.zeros((), dtype=x.dtype))


def _alpha_drop(
    x: jax.Array, sub: jax.Array, rate: float, noise_shape: tuple[int, ...]
) -> jax.Array:
    keep_prob = 1.0 - rate
    keep = _keep_mask(sub, keep_prob, noise_shape)
    a = (keep_prob + _ALPHA_P**2 * keep_prob * rate) ** -0.5
    b = -a * _ALPHA_P * rate
    y = jnp.where(keep, x, jnp.asarray(_ALPHA_P, dtype=x.dtype))
    return (a * y + b).astype(x.dtype)


def dropout(
    x: jax.Array,
    key: jax.Array | None,
    *,
    rate: float,
    noise_shape: Sequence[int | None] | None = None,
    mode: RunMode = "inference",
) -> jax.Array | StatefulOutput:
    """Zero each element with probability ``rate`` and scale the kept ones by ``1 / (1 - rate)``.

    ``noise_shape`` (default ``x.shape``) is the mask's shape, of the same rank as ``x`` with
    each entry equal to the input's dimension (or ``None`` for it) or ``1`` to share the mask
    along that axis. Inference mode returns ``x``; train mode returns
    ``StatefulOutput(y, {"key": new_key})``.

    Shapes: ``x`` any; ``key`` ``(2,)`` uint32; output like ``x``.

    Args:
        x: the input, any shape.
        key: a PRNG key (:func:`dropout_key`); only read in train mode, may be ``None`` in
            inference mode.
        rate: the probability of dropping an element, in ``[0, 1)``.
        noise_shape: the mask's shape (see above); ``None`` (default): ``x.shape``.
        mode: ``"inference"`` (default; identity) or ``"train"``.

    Returns:
        ``x`` in inference mode; in train mode ``StatefulOutput(y, {"key": new_key})``, ``y``
        shaped like ``x``.

    Raises:
        ValueError: ``rate`` outside ``[0, 1)``, an unknown ``mode``, a bad ``noise_shape``, or
            a missing or malformed ``key`` in train mode.

    >>> import jax.numpy as jnp
    >>> out = dropout(jnp.ones((2, 3)), dropout_key(1), rate=0.25, noise_shape=(2, 1), mode="train")
    >>> out.output.shape, all(len(set(row)) == 1 for row in out.output.tolist())
    ((2, 3), True)
    """
    _check_mode(mode, "dropout")
    rate = _check_rate(rate, "dropout")
    if noise_shape is None:
        shape = tuple(x.shape)
    else:
        noise_shape = tuple(noise_shape)
        if len(noise_shape) != x.ndim:
            raise ValueError(
                f"dropout: noise_shape {noise_shape} must have the input's rank {x.ndim} "
                f"(input shape {tuple(x.shape)})"
            )
        shape = tuple(d if n is None else int(n) for n, d in zip(noise_shape, x.shape, strict=True))
        if any(n not in (1, d) for n, d in zip(shape, x.shape, strict=True)):
            raise ValueError(
                f"dropout: each noise_shape entry must be 1 or the input's dimension; "
                f"got noise_shape {noise_shape} for input shape {tuple(x.shape)}"
            )
    if mode == "inference":
        return x
    new_key, sub = _split_key(key, "dropout")
    return StatefulOutput(_drop(x, sub, rate, shape), {"key": new_key})


def spatial_dropout(
    x: jax.Array,
    key: jax.Array | None,
    *,
    rate: float = 0.5,
    channels: Channels = "last",
    mode: RunMode = "inference",
) -> jax.Array | StatefulOutput:
    """Drop whole feature maps (each channel of each sample) with probability ``rate``.

    The mask has shape ``(B, 1, ..., 1, C)`` (``(B, C, 1, ..., 1)`` for ``channels="first"``),
    so every spatial position of a dropped channel is zeroed; kept maps are scaled by
    ``1 / (1 - rate)`` (``torch.nn.Dropout2d``; see the module notes for Axon's difference).

    Shapes: ``x`` rank ≥ 3, ``(B, *spatial, C)`` or ``(B, C, *spatial)``; output like ``x``.

    Args:
        x: the input, rank >= 3.
        key: a PRNG key (:func:`dropout_key`); may be ``None`` in inference mode.
        rate: the probability of dropping a feature map (default 0.5), in ``[0, 1)``.
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.
        mode: ``"inference"`` (default; identity) or ``"train"``.

    Returns:
        ``x`` in inference mode; in train mode ``StatefulOutput(y, {"key": new_key})``.

    Raises:
        ValueError: a bad ``rate``, ``mode`` or ``channels``, rank below 3, or a missing or
            malformed ``key`` in train mode.

    >>> import jax.numpy as jnp
    >>> out = spatial_dropout(jnp.ones((2, 5, 5, 3)), dropout_key(0), mode="train")
    >>> y = out.output
    >>> bool(((y == 0).all(axis=(1, 2)) | (y == 2).all(axis=(1, 2))).all())
    True
    """
    _check_mode(mode, "spatial_dropout")
    rate = _check_rate(rate, "spatial_dropout")
    shape = _feature_noise_shape(x, channels, "spatial_dropout")
    if mode == "inference":
        return x
    new_key, sub = _split_key(key, "spatial_dropout")
    return StatefulOutput(_drop(x, sub, rate, shape), {"key": new_key})


def alpha_dropout(
    x: jax.Array,
    key: jax.Array | None,
    *,
    rate: float = 0.5,
    mode: RunMode = "inference",
) -> jax.Array | StatefulOutput:
    """Alpha dropout (Klambauer et al., 2017), keeping SELU's zero mean and unit variance.

    Dropped elements are set to ``alpha' = -alpha * lambda`` (SELU's negative saturation), then
    ``y = a * x + b`` with ``a = (q + alpha'^2 q (1 - q))^(-1/2)``, ``b = -a alpha' (1 - q)`` and
    ``q = 1 - rate``.

    Shapes: ``x`` any; output like ``x``.

    Args:
        x: the input, any shape.
        key: a PRNG key (:func:`dropout_key`); may be ``None`` in inference mode.
        rate: the probability of dropping an element (default 0.5), in ``[0, 1)``.
        mode: ``"inference"`` (default; identity) or ``"train"``.

    Returns:
        ``x`` in inference mode; in train mode ``StatefulOutput(y, {"key": new_key})``.

    Raises:
        ValueError: a bad ``rate`` or ``mode``, or a missing or malformed ``key`` in train mode.

    >>> import jax.numpy as jnp
    >>> out = alpha_dropout(jnp.zeros((1000,)), dropout_key(0), rate=0.2, mode="train")
    >>> out.output.shape, len(set(out.output.round(4).tolist()))
    ((1000,), 2)
    """
    _check_mode(mode, "alpha_dropout")
    rate = _check_rate(rate, "alpha_dropout")
    if mode == "inference":
        return x
    new_key, sub = _split_key(key, "alpha_dropout")
    return StatefulOutput(_alpha_drop(x, sub, rate, tuple(x.shape)), {"key": new_key})


def feature_alpha_dropout(
    x: jax.Array,
    key: jax.Array | None,
    *,
    rate: float = 0.5,
    channels: Channels = "last",
    mode: RunMode = "inference",
) -> jax.Array | StatefulOutput:
    """Alpha dropout of whole feature maps (``torch.nn.FeatureAlphaDropout``).

    The mask is drawn per sample and channel, as in :func:`spatial_dropout`, and applied with
    the alpha-dropout transform of :func:`alpha_dropout` (see the module notes for Axon's
    difference).

    Shapes: ``x`` rank ≥ 3, ``(B, *spatial, C)`` or ``(B, C, *spatial)``; output like ``x``.

    Args:
        x: the input, rank >= 3.
        key: a PRNG key (:func:`dropout_key`); may be ``None`` in inference mode.
        rate: the probability of dropping a feature map (default 0.5), in ``[0, 1)``.
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.
        mode: ``"inference"`` (default; identity) or ``"train"``.

    Returns:
        ``x`` in inference mode; in train mode ``StatefulOutput(y, {"key": new_key})``.

    Raises:
        ValueError: a bad ``rate``, ``mode`` or ``channels``, rank below 3, or a missing or
            malformed ``key`` in train mode.

    >>> import jax.numpy as jnp
    >>> out = feature_alpha_dropout(jnp.zeros((4, 6, 2)), dropout_key(0), mode="train")
    >>> y = out.output
    >>> bool((y == y[:, :1, :]).all())  # constant along the spatial axis
    True
    """
    _check_mode(mode, "feature_alpha_dropout")
    rate = _check_rate(rate, "feature_alpha_dropout")
    shape = _feature_noise_shape(x, channels, "feature_alpha_dropout")
    if mode == "inference":
        return x
    new_key, sub = _split_key(key, "feature_alpha_dropout")
    return StatefulOutput(_alpha_drop(x, sub, rate, shape), {"key": new_key})
