"""Functional linear layers: ``dense``, ``bilinear``, ``embedding``, ``bias``.

>>> import jax.numpy as jnp
>>> x = jnp.array([[1.0, 0.5, 1.0, 0.5], [0.0, 0.0, 0.0, 0.0]])
>>> k = jnp.array([[0.2], [0.3], [0.5], [0.8]])
>>> dense(x, k, jnp.array([1.0])).tolist()
[[2.25], [1.0]]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from axon.layers._utils import check_batched, check_rank

__all__ = ["bias", "bilinear", "dense", "embedding"]


def dense(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None) -> jax.Array:
    """``x @ kernel + bias`` over the last axis of ``x``.

    Shapes: ``x`` ``(batch, ..., in)``, ``kernel`` ``(in, out)``, ``bias`` ``()`` or ``(out,)``;
    output ``(batch, ..., out)``. As in Axon, ``x`` has a batch axis: a rank-1 input is an
    error, not a silently unbatched result.

    Args:
        x: the input, ``(batch, ..., in)``.
        kernel: the weights, ``(in, out)``.
        bias: ``()`` or ``(out,)``, added to the product; ``None`` (default): no bias.

    Returns:
        ``(batch, ..., out)``.

    Raises:
        ValueError: ``x`` has no batch axis, ``kernel`` is not rank 2, or the last axis of
            ``x`` differs from the kernel's first.

    >>> import jax.numpy as jnp
    >>> dense(jnp.ones((2, 3)), jnp.ones((3, 4)), jnp.zeros(4)).tolist()[0]
    [3.0, 3.0, 3.0, 3.0]
    """
    check_batched(x, "dense")
    check_rank(kernel, 2, "dense", "kernel")
    if x.shape[-1] != kernel.shape[0]:
        raise ValueError(
            f"dense: the last axis of the input ({x.shape[-1]}, input shape {tuple(x.shape)}) must equal "
            f"the kernel's first axis ({kernel.shape[0]}, kernel shape {tuple(kernel.shape)})"
        )
    y = jnp.matmul(x, kernel)
    return y if bias is None else y + bias


def bilinear(
    x1: jax.Array, x2: jax.Array, kernel: jax.Array, bias: jax.Array | None = None
) -> jax.Array:
    """``y[..., k] = x1 · kernel[k] · x2 + bias[k]``.

    Shapes: ``x1`` ``(batch, ..., in1)``, ``x2`` ``(batch, ..., in2)``, ``kernel``
    ``(out, in1, in2)``; output ``(batch, ..., out)``.

    Args:
        x1: the first input, ``(batch, ..., in1)``.
        x2: the second input, ``(batch, ..., in2)``, the same rank as ``x1``.
        kernel: the weights, ``(out, in1, in2)``.
        bias: ``()`` or ``(out,)``; ``None`` (default): no bias.

    Returns:
        ``(batch, ..., out)``.

    Raises:
        ValueError: ``kernel`` is not rank 3, the inputs' ranks differ, or their last axes do
            not match the kernel's.

    >>> import jax.numpy as jnp
    >>> x1 = jnp.arange(6.0).reshape(3, 2)
    >>> x2 = jnp.arange(12.0).reshape(3, 4)
    >>> k = jnp.arange(8.0).reshape(1, 2, 4)
    >>> bilinear(x1, x2, k, jnp.array(1.0)).tolist()
    [[39.0], [455.0], [1319.0]]
    """
    check_rank(kernel, 3, "bilinear", "kernel")
    if x1.ndim != x2.ndim:
        raise ValueError(f"bilinear: inputs must have equal rank, got shapes {tuple(x1.shape)} and {tuple(x2.shape)}")
    if (x1.shape[-1], x2.shape[-1]) != tuple(kernel.shape[1:]):
        raise ValueError(
            f"bilinear: kernel shape {tuple(kernel.shape)} does not match the inputs' last axes "
            f"{x1.shape[-1]} and {x2.shape[-1]}"
        )
    y = jnp.einsum("...i,kij,...j->...k", x1, kernel, x2)
    return y if bias is None else y + bias


def embedding(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Look up rows of ``kernel`` (``(vocab, size)``) by the integer ids in ``x``.

    Output shape is ``x.shape + (size,)``. Ids outside ``[0, vocab)`` are clamped, as XLA's
    gather does (``numpy.take(..., mode="clip")``): an id below 0 reads row 0 and an id
    ``>= vocab`` reads the last row (never a NaN row). Ids are data, so they cannot be
    checked when the model is built; check them in the data pipeline if out-of-range ids
    would be a bug.

    Args:
        x: integer token ids, any shape.
        kernel: the embedding table, ``(vocab, size)``.

    Returns:
        ``x.shape + (size,)``, in the kernel's dtype.

    Raises:
        ValueError: ``kernel`` is not rank 2 or ``x`` is not an integer array.

    >>> import jax.numpy as jnp
    >>> embedding(jnp.array([[0, 2]]), jnp.arange(6.0).reshape(3, 2)).tolist()
    [[[0.0, 1.0], [4.0, 5.0]]]
    >>> embedding(jnp.array([[-1, 7]]), jnp.arange(6.0).reshape(3, 2)).tolist()
    [[[0.0, 1.0], [4.0, 5.0]]]
    """
    check_rank(kernel, 2, "embedding", "kernel")
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise ValueError(f"embedding: expected integer token ids, got dtype {x.dtype}")
    return jnp.take(kernel, x, axis=0, mode="clip")


def bias(x: jax.Array, b: jax.Array) -> jax.Array:
    """Add a bias to the last axis.

    Args:
        x: the input, ``(..., n)``.
        b: the bias, ``()`` or ``(n,)`` (anything that broadcasts against ``x``).

    Returns:
        ``x + b``.

    >>> import jax.numpy as jnp
    >>> bias(jnp.zeros((1, 2)), jnp.array([1.0, 2.0])).tolist()
    [[1.0, 2.0]]
    """
    return x + b
