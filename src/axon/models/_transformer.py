"""Ops shared by the transformer models (``bert``, ``gpt2``), each made into a layer through
:func:`axon.layer` as any user layer is, and registered under ``"axon.models.<op>"`` so that a
model using them can be saved and loaded.

* :func:`positions_op`: learned absolute position embeddings from an offset.
* :func:`tied_embedding_op` / :func:`tied_logits_op`: a token embedding whose table is also
  the output projection (weight tying): the embedding layer passes its table on as a graph
  value, so the model has one parameter for both uses and gradients reach it from both.
* :func:`causal_self_attention_op` / :func:`cached_self_attention_op`: multi-head causal
  self-attention over a fused ``query|key|value`` projection, with a padding mask, without or
  through a key/value cache; :func:`default_positions_op`: the positions of new tokens.
* :func:`select_op`, :func:`zeros_like_op`, :func:`not_zero_op`, :func:`gelu_tanh_op`: small
  value ops.

>>> import jax.numpy as jnp
>>> table = jnp.arange(6.0).reshape(3, 2)
>>> positions_op(jnp.zeros((1, 2), "int32"), table).tolist()
[[[0.0, 1.0], [2.0, 3.0]]]
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from axon import layers
from axon.registry import register
from axon.values import is_none

__all__ = [
    "all_true_op",
    "cached_self_attention_op",
    "causal_self_attention_op",
    "default_positions_op",
    "first_token_op",
    "gelu_tanh_op",
    "not_zero_op",
    "positions_op",
    "select_op",
    "tied_embedding_op",
    "tied_logits_op",
    "zeros_like_op",
]


@register("op", "axon.models.positions")
def positions_op(ids: jax.Array, table: jax.Array, offset: Any = None) -> jax.Array:
    """Rows ``offset .. offset + T`` of a position table, for ``ids`` of shape ``(B, T)``.

    Args:
        ids: the token ids ``(B, T)`` (only their length is used).
        table: the position table ``(max_positions, D)``.
        offset: the position of the first token (a scalar; traced values allowed).
            ``None``: 0.

    Returns:
        ``(1, T, D)``, broadcastable against the token embeddings.

    Raises:
        ValueError: ``T`` exceeds the table's length.

    >>> import jax.numpy as jnp
    >>> positions_op(jnp.zeros((1, 1), "int32"), jnp.arange(6.0).reshape(3, 2), jnp.int32(2)).tolist()
    [[[4.0, 5.0]]]
    """
    t = ids.shape[-1]
    if t > table.shape[0]:
        raise ValueError(f"positions: a sequence of {t} tokens is longer than the {table.shape[0]} learned positions")
    if offset is None:
        return table[None, :t]
    start = jnp.asarray(offset, jnp.int32).reshape(())
    return lax.dynamic_slice_in_dim(table, start, t, axis=0)[None]


@register("op", "axon.models.tied_embedding")
def tied_embedding_op(ids: jax.Array, table: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The embeddings of ``ids`` and the table itself, for a tied output layer.

    Args:
        ids: integer ids ``(B, T)``.
        table: the embedding table ``(V, D)``.

    Returns:
        ``(embeddings (B, T, D), table)``.

    >>> import jax.numpy as jnp
    >>> emb, table = tied_embedding_op(jnp.array([[1]]), jnp.eye(2))
    >>> emb.tolist(), table.shape
    ([[[0.0, 1.0]]], (2, 2))
    """
    return layers.embedding(ids, table), table


@register("op", "axon.models.tied_logits")
def tied_logits_op(hidden: jax.Array, table: jax.Array) -> jax.Array:
    """``hidden @ tableᵀ``: scores over the vocabulary from an embedding table ``(V, D)``.

    Args:
        hidden: ``(..., D)``.
        table: the embedding table ``(V, D)``.

    Returns:
        ``(..., V)``.

    >>> import jax.numpy as jnp
    >>> tied_logits_op(jnp.ones((1, 1, 2)), jnp.array([[1.0, 2.0], [3.0, 4.0]])).tolist()
    [[[3.0, 7.0]]]
    """
    return jnp.einsum("...d,vd->...v", hidden, table)


@register("op", "axon.models.select")
def select_op(value: Any, *, index: Any) -> Any:
    """``value[index]``: one entry of a container value.

    Args:
        value: a container (tuple, list or dict).
        index: the entry's index or key.

    Returns:
        The entry.

    >>> select_op((1, 2), index=1)
    2
    """
    return value[index]


@register("op", "axon.models.zeros_like")
def zeros_like_op(x: jax.Array) -> jax.Array:
    """Zeros of ``x``'s shape and dtype.

    Args:
        x: an array.

    Returns:
        Zeros of ``x``'s shape and dtype.

    >>> zeros_like_op(jnp.ones(2, "int32")).tolist()
    [0, 0]
    """
    return jnp.zeros_like(x)


@register("op", "axon.models.all_true")
def all_true_op(x: jax.Array) -> jax.Array:
    """``True`` everywhere in ``x``'s shape (the default attention mask: attend to every token).

    Args:
        x: any array; only its shape is used.

    Returns:
        A boolean array of ``x``'s shape, all ``True``.

    >>> all_true_op(jnp.zeros((1, 2), "int32")).tolist()
    [[True, True]]
    """
    return jnp.ones(jnp.shape(x), jnp.bool_)


@register("op", "axon.models.first_token")
def first_token_op(x: jax.Array) -> jax.Array:
    """``x[:, 0]``: the first position of ``(batch, T, ...)`` (BERT's pooler input).

    Args:
        x: ``(batch, T, ...)``.

    Returns:
        ``(batch, ...)``.

    >>> first_token_op(jnp.arange(4).reshape(1, 2, 2)).tolist()
    [[0, 1]]
    """
    return x[:, 0]


@register("op", "axon.models.not_zero")
def not_zero_op(x: jax.Array) -> jax.Array:
    """``x != 0`` (a 0/1 attention mask to the boolean mask the attention layers take).

    Args:
        x: an array of any shape.

    Returns:
        A boolean array of ``x``'s shape.

    >>> not_zero_op(jnp.array([1, 0])).tolist()
    [True, False]
    """
    return jnp.asarray(x) != 0


@register("op", "axon.models.gelu_tanh")
def gelu_tanh_op(x: jax.Array) -> jax.Array:
    """GELU's tanh approximation (GPT-2's ``gelu_new``):
    ``x/2 · (1 + tanh(sqrt(2/π) · (x + 0.044715 x³)))``.

    Args:
        x: a floating array.

    Returns:
        An array of ``x``'s shape and dtype.

    >>> round(float(gelu_tanh_op(jnp.array(1.0))), 4)
    0.8412
    """
    return jax.nn.gelu(x, approximate=True)


def _heads(x: jax.Array, num_heads: int) -> jax.Array:
    b, t, d = x.shape
    return x.reshape(b, t, num_heads, d // num_heads)


def _split_qkv(qkv: jax.Array, num_heads: int, where: str) -> tuple[jax.Array, jax.Array, jax.Array, int]:
    if qkv.ndim != 3 or qkv.shape[-1] % 3:
        raise ValueError(f"{where}: expected qkv of shape (batch, seq, 3 * features), got {tuple(qkv.shape)}")
    d = qkv.shape[-1] // 3
    if d % num_heads:
        raise ValueError(f"{where}: features {d} do not divide into {num_heads} heads")
    q, k, v = (_heads(a, num_heads) for a in jnp.split(qkv, 3, axis=-1))
    return q, k, v, d


def _key_mask(key_mask: Any, b: int, s: int, where: str) -> jax.Array | None:
    """``(B, S)`` (bool or 0/1, ``True``/1 = a real token) as ``(B, 1, 1, S)``; ``None`` if missing."""
    if key_mask is None or is_none(key_mask):
        return None
    key_mask = jnp.asarray(key_mask)
    if key_mask.shape != (b, s):
        raise ValueError(f"{where}: expected an attention_mask of shape (batch, keys) = {(b, s)}, got {tuple(key_mask.shape)}")
    return (key_mask != 0)[:, None, None, :]


@register("op", "axon.models.causal_self_attention")
def causal_self_attention_op(qkv: jax.Array, key_mask: Any = None, *, num_heads: int) -> jax.Array:
    """Causal multi-head self-attention over a fused projection ``qkv = [q | k | v]``: query
    ``i`` attends to keys ``j <= i`` that ``key_mask`` (``(B, T)``, ``True``/1 = a real
    token; ``None`` or ``axon.NONE``: all) keeps. Scores are scaled by ``1/sqrt(head_dim)``; a
    query with no key to attend to (a left pad) averages all the values uniformly (its output
    is meaningless, but never NaN).

    Args:
        qkv: ``(B, T, 3·D)``: queries, keys and values side by side.
        key_mask: the padding mask, or ``None``.
        num_heads: the number of heads (``D`` must divide by it).

    Returns:
        ``(B, T, D)``.

    Raises:
        ValueError: the shapes do not fit together.

    >>> import jax.numpy as jnp
    >>> qkv = jnp.concatenate([jnp.zeros((1, 2, 2)), jnp.zeros((1, 2, 2)), jnp.array([[[1.0, 2.0], [3.0, 4.0]]])], -1)
    >>> causal_self_attention_op(qkv, num_heads=1).tolist()  # equal scores: running means of v
    [[[1.0, 2.0], [2.0, 3.0]]]
    >>> causal_self_attention_op(qkv, jnp.array([[0, 1]]), num_heads=1).tolist()  # the first token is a pad
    [[[2.0, 3.0], [3.0, 4.0]]]
    """
    where = "causal_self_attention"
    q, k, v, d = _split_qkv(qkv, num_heads, where)
    b, t = qkv.shape[:2]
    mask = _key_mask(key_mask, b, t, where)
    out = layers.dot_product_attention(q, k, v, mask=mask, causal=True, scale=1.0 / math.sqrt(d // num_heads))
    return out.reshape(b, t, d)


@register("op", "axon.models.cached_self_attention")
def cached_self_attention_op(
    qkv: jax.Array,
    cache: jax.Array,
    offset: Any,
    key_mask: Any = None,
    *,
    num_heads: int,
    layer_index: int = 0,
) -> tuple[jax.Array, jax.Array]:
    """:func:`causal_self_attention_op` for ``T`` new tokens through a key/value cache.

    ``cache`` is ``(layers, 2, B, S, heads, head_dim)``. The new keys and values are written
    into ``cache[layer_index]`` at positions ``offset .. offset + T - 1`` (``offset + T <= S``
    is the caller's to ensure: inside a trace it cannot be checked, and a larger value is
    clamped), and query ``i`` (at position ``offset + i``) attends to every cached position
    ``<= offset + i`` that ``key_mask`` (``(B, S)``, over the cache's positions) keeps.

    Args:
        qkv: ``(B, T, 3·D)``: queries, keys and values side by side.
        cache: the key/value cache.
        offset: the position of the first new token (a scalar, traced allowed).
        key_mask: the padding mask over the cache's positions, or ``None``/``axon.NONE``.
        num_heads: the number of heads (``D`` must divide by it).
        layer_index: which layer's entry of the cache to use and update.

    Returns:
        ``(output (B, T, D), updated_cache)``.

    Raises:
        ValueError: the shapes do not fit together.

    >>> import jax.numpy as jnp
    >>> cache = jnp.zeros((1, 2, 1, 3, 1, 2)).at[0, 1, 0, 0, 0].set(jnp.array([1.0, 2.0]))  # v at position 0
    >>> qkv = jnp.array([[[0.0, 0.0, 0.0, 0.0, 3.0, 4.0]]])  # one token at position 1
    >>> out, cache = cached_self_attention_op(qkv, cache, jnp.int32(1), num_heads=1)
    >>> out.tolist(), cache[0, 1, 0, :, 0].tolist()
    ([[[2.0, 3.0]]], [[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]])
    """
    where = "cached_self_attention"
    q, k, v, d = _split_qkv(qkv, num_heads, where)
    b, t = qkv.shape[:2]
    expected = (2, b, cache.shape[3], num_heads, d // num_heads)
    if cache.ndim != 6 or tuple(cache.shape[1:]) != expected or not 0 <= layer_index < cache.shape[0]:
        raise ValueError(
            f"{where}: expected a cache of shape (layers > {layer_index}, *{expected}), got {tuple(cache.shape)}"
        )
    s = cache.shape[3]
    start = jnp.asarray(offset, jnp.int32).reshape(())
    new = jnp.stack([k, v]).astype(cache.dtype)[None]  # (1, 2, B, T, N, H)
    zero = jnp.int32(0)
    cache = lax.dynamic_update_slice(cache, new, (jnp.int32(layer_index), zero, zero, start, zero, zero))
    keys, values = cache[layer_index, 0].astype(q.dtype), cache[layer_index, 1].astype(q.dtype)
    causal = (jnp.arange(s)[None, :] <= (start + jnp.arange(t))[:, None])[None, None]  # (1, 1, T, S)
    padding = _key_mask(key_mask, b, s, where)
    mask = causal if padding is None else causal & padding
    out = layers.dot_product_attention(q, keys, values, mask=mask, scale=1.0 / math.sqrt(d // num_heads))
    return out.reshape(b, t, d), cache


@register("op", "axon.models.default_positions")
def default_positions_op(ids: jax.Array, offset: Any = None, *, max_positions: int | None = None) -> jax.Array:
    """The positions ``offset .. offset + T - 1`` of ``ids`` ``(B, T)``, as ``(1, T)`` int32
    (``offset`` ``None``: 0; traced values allowed).

    Args:
        ids: the token ids ``(B, T)``; only their length is used.
        offset: the first position, or ``None`` for 0.
        max_positions: the number of learned positions: a longer sequence is an error
            (checked on ``T``; ``offset + T`` cannot be checked inside a trace).

    Returns:
        ``(1, T)`` int32.

    Raises:
        ValueError: ``T`` exceeds ``max_positions``.

    >>> default_positions_op(jnp.zeros((2, 3), "int32"), jnp.int32(4)).tolist()
    [[4, 5, 6]]
    """
    t = ids.shape[-1]
    if max_positions is not None and t > max_positions:
        raise ValueError(f"positions: a sequence of {t} tokens is longer than the {max_positions} learned positions")
    start = jnp.int32(0) if offset is None else jnp.asarray(offset, jnp.int32).reshape(())
    return (start + jnp.arange(t, dtype=jnp.int32))[None]
