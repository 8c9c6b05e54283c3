"""Functional attention layers (pure JAX).

:func:`dot_product_attention` is scaled dot-product attention over ``(batch, seq, heads,
head_dim)`` arrays, the layout of :func:`jax.nn.dot_product_attention`, on which it is built so
that a GPU can use its fused (cuDNN) kernel. Axon 0.8 has no attention layer; this one follows
JAX's conventions (a boolean ``mask`` with ``True`` = attend, an additive ``bias``).

>>> import jax.numpy as jnp
>>> q = k = v = jnp.ones((2, 5, 4, 8))  # (batch, seq, heads, head_dim)
>>> dot_product_attention(q, k, v, causal=True).shape
(2, 5, 4, 8)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["dot_product_attention"]


def _broadcast_4d(
    t: jax.Array | None, target: tuple[int, int, int, int], name: str, single_head: bool
) -> jax.Array | None:
    """Validate ``t`` against ``(B, N, T, S)`` and return it as a rank-4 array (not tiled)."""
    if t is None:
        return None
    t = jnp.asarray(t)
    if single_head and t.ndim <= 3:  # broadcastable to (B, T, S): insert the head axis
        t = jnp.expand_dims(t.reshape((1,) * (3 - t.ndim) + t.shape), 1)
    if t.ndim > 4:
        raise ValueError(
            f"dot_product_attention: {name} must have rank <= 4, got shape {tuple(t.shape)}"
        )
    t = t.reshape((1,) * (4 - t.ndim) + t.shape)
    b, _, tq, s = target
    if any(d not in (1, want) for d, want in zip(t.shape, target, strict=True)):
        where = (
            "(batch, query_len, key_len)" if single_head else "(batch, heads, query_len, key_len)"
        )
        shown = (b, tq, s) if single_head else target
        raise ValueError(
            f"dot_product_attention: {name} of shape {tuple(t.shape)} is not broadcastable to "
            f"{where} = {shown}"
        )
    return t


def _scale_the_query(query_dtype: jnp.dtype, logits_dtype: jnp.dtype) -> bool:
    """Whether the attention scale multiplies the query, ``(B, T, N, H)``, rather than the
    logits, ``(B, N, T, S)``: in float32 (or wider) it does, as Flax Linen does (the same
    numbers to float rounding; XLA:CPU otherwise materializes the scale broadcast to the
    logits' shape for its fused matmul-softmax kernel, ~1.5% of the benchmark transformer's
    training step, issue 17). A half-precision query keeps the scale on the float32 logits:
    scaling it in its own dtype would round it once more."""
    return jnp.dtype(query_dtype) == jnp.dtype(logits_dtype)


def _explicit_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    bias: jax.Array | None,
    mask: jax.Array | None,
    causal: bool,
    scale: float,
    rate: float = 0.0,
    key: jax.Array | None = None,
) -> jax.Array:
    """Explicit einsum/softmax/einsum attention: the default path, and the only one with
    attention dropout (``jax.nn.dot_product_attention`` has none).

    Same numerics as jax.nn's XLA path (to float rounding: a float32 query is scaled before
    the logits are taken, see :func:`_scale_the_query`): logits in float32 (at least), masked
    logits set to a large finite negative number, softmax in float32; with ``rate > 0`` the attention weights
    are then dropped with probability ``rate`` and the kept ones scaled by ``1 / (1 - rate)``.
    Unlike jax.nn's XLA path it does not ``vmap`` over the query-head groups, whose axis
    shuffles cost a CPU training step of the benchmark transformer about 6%.
    """
    b, t, n, h = q.shape
    s, kh = k.shape[1], k.shape[2]
    g = n // kh
    logits_dtype = jnp.promote_types(q.dtype, jnp.float32)
    prescale = _scale_the_query(q.dtype, logits_dtype)
    if prescale:
        q = q * jnp.asarray(scale, dtype=q.dtype)
    if g == 1:  # one query head per key head: no group axis
        logits = jnp.einsum("btnh,bsnh->bnts", q, k, preferred_element_type=logits_dtype)
    else:
        qg = q.reshape(b, t, kh, g, h)
        logits = jnp.einsum("btkgh,bskh->bkgts", qg, k, preferred_element_type=logits_dtype)
    if not prescale:
        logits = logits * jnp.asarray(scale, dtype=logits_dtype)

    def grouped(x: jax.Array) -> jax.Array:
        if g == 1:
            return x
        return jnp.broadcast_to(x, (b, n, t, s)).reshape(b, kh, g, t, s)

    if bias is not None:
        logits = (logits + grouped(bias)).astype(logits_dtype)
    keep = None if mask is None else grouped(mask)
    if causal:
        tri = jnp.tril(jnp.ones((t, s), dtype=bool))
        keep = tri if keep is None else jnp.logical_and(keep, tri)
    if keep is not None:
        big_neg = -0.7 * min(float(jnp.finfo(logits_dtype).max), float(jnp.finfo(jnp.float32).max))
        logits = jnp.where(keep, logits, jnp.asarray(big_neg, dtype=logits_dtype))
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    if rate > 0.0:
        # drawn flat then reshaped: a rank-5 draw takes seconds to compile on CPU
        kept = jax.random.bernoulli(key, 1.0 - rate, (probs.size,)).reshape(probs.shape)
        probs = jnp.where(kept, probs / (1.0 - rate), 0.0)
    probs = probs.astype(v.dtype)
    if g == 1:
        return jnp.einsum("bnts,bsnh->btnh", probs, v)
    out = jnp.einsum("bkgts,bskh->btkgh", probs, v)
    return out.reshape(b, t, n, v.shape[-1])


def dot_product_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    bias: jax.Array | None = None,
    mask: jax.Array | None = None,
    causal: bool = False,
    scale: float | None = None,
    dropout_rate: float = 0.0,
    dropout_key: jax.Array | None = None,
    implementation: str | None = None,
) -> jax.Array:
    """``softmax(query · keyᵀ · scale + bias, masked) · value`` per head.

    Shapes: ``query`` ``(B, T, N, H)``, ``key``/``value`` ``(B, S, K, H)`` with ``N`` a multiple
    of ``K`` (``K < N`` is grouped-query attention); output ``(B, T, N, H)``. Rank-3 inputs
    ``(B, T, D)``/``(B, S, D)`` are a single head and give ``(B, T, D)``.

    * ``mask``: boolean, ``True`` = attend, broadcastable to ``(B, N, T, S)`` (``(B, T, S)`` for
      rank-3 inputs). ``bias``: added to the logits, same broadcasting. ``causal=True`` lets
      query ``i`` attend to keys ``j <= i``. A query whose keys are all masked averages all
      values uniformly (``jax.nn.dot_product_attention``'s behaviour), never NaN.
    * ``scale``: defaults to ``1 / sqrt(H)``.
    * ``implementation``: ``None`` (default): an explicit einsum/softmax/einsum, the math of
      jax.nn's XLA path without its per-group ``vmap`` (faster on CPU); ``"xla"`` or
      ``"cudnn"``: :func:`jax.nn.dot_product_attention` with that implementation.
    * ``dropout_rate > 0`` drops attention weights with that probability, drawing the mask from
      ``dropout_key`` (required; use a fresh key per call, e.g. split from layer state). This
      goes through an explicit softmax path, since ``jax.nn.dot_product_attention`` has no
      dropout (and so cannot be combined with ``implementation="cudnn"``). Pass
      ``dropout_rate=0.0`` for inference.

    Args:
        query: ``(B, T, N, H)``, or ``(B, T, D)`` for a single head.
        key: ``(B, S, K, H)``, or ``(B, S, D)``.
        value: shaped like ``key``.
        bias: added to the logits, broadcastable to ``(B, N, T, S)``; ``None`` (default): none.
        mask: boolean, ``True`` = attend, broadcastable to ``(B, N, T, S)``; ``None`` (default):
            attend everywhere.
        causal: let query ``i`` attend only to keys ``j <= i`` (default ``False``).
        scale: the logit scale; ``None`` (default): ``1 / sqrt(H)``.
        dropout_rate: the probability of dropping an attention weight (default 0.0).
        dropout_key: a PRNG key; required when ``dropout_rate > 0``.
        implementation: ``None`` (default), ``"xla"`` or ``"cudnn"``.

    Returns:
        ``(B, T, N, H)``, or ``(B, T, D)`` for rank-3 inputs.

    Raises:
        ValueError: an unknown ``implementation``, inputs of mixed or unsupported ranks,
            mismatched head sizes or head counts, a bias or mask that does not broadcast, or
            dropout without a key (or with ``"cudnn"``).

    >>> import jax.numpy as jnp
    >>> q = jnp.array([[[1.0, 0.0]]])            # (B=1, T=1, D=2), single head
    >>> k = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
    >>> v = jnp.array([[[10.0, 0.0], [0.0, 10.0]]])
    >>> dot_product_attention(q, k, v, scale=jnp.log(3.0).item()).round(3).tolist()
    [[[7.5, 2.5]]]
    >>> dot_product_attention(q, k, v, mask=jnp.array([False, True])).tolist()
    [[[0.0, 10.0]]]
    """
    if implementation not in (None, "xla", "cudnn"):
        raise ValueError(
            "dot_product_attention: implementation must be None, 'xla' or 'cudnn', "
            f"got {implementation!r}"
        )
    query, key, value = jnp.asarray(query), jnp.asarray(key), jnp.asarray(value)
    if not query.ndim == key.ndim == value.ndim or query.ndim not in (3, 4):
        raise ValueError(
            "dot_product_attention: query, key and value must all be rank 4 (batch, seq, heads, "
            "head_dim) or all rank 3 (batch, seq, dim), got shapes "
            f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
        )
    single_head = query.ndim == 3
    if single_head:
        query, key, value = (jnp.expand_dims(a, 2) for a in (query, key, value))
    b, t, n, h = query.shape
    kb, s, kh, kd = key.shape
    if kd != h:
        raise ValueError(
            f"dot_product_attention: query and key head dims differ: query {tuple(query.shape)} "
            f"has head_dim {h}, key {tuple(key.shape)} has head_dim {kd}"
        )
    if value.shape != key.shape:
        raise ValueError(
            f"dot_product_attention: value shape {tuple(value.shape)} must equal key shape "
            f"{tuple(key.shape)}"
        )
    if kb != b:
        raise ValueError(f"dot_product_attention: query batch {b} differs from key batch {kb}")
    if n % kh != 0:
        raise ValueError(
            f"dot_product_attention: the number of query heads ({n}) must be a multiple of the "
            f"number of key/value heads ({kh})"
        )
    dtype = jnp.result_type(query, key, value)
    query, key, value = query.astype(dtype), key.astype(dtype), value.astype(dtype)
    target = (b, n, t, s)
    bias4 = _broadcast_4d(bias, target, "bias", single_head)
    mask4 = _broadcast_4d(mask, target, "mask", single_head)
    if mask4 is not None and mask4.dtype != jnp.bool_:
        raise ValueError(
            f"dot_product_attention: mask must be boolean (True = attend), got {mask4.dtype}"
        )
    scale = 1.0 / math.sqrt(h) if scale is None else scale

    rate = float(dropout_rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(
            f"dot_product_attention: dropout_rate must satisfy 0 <= rate < 1, got {dropout_rate!r}"
        )
    if rate > 0.0:
        if dropout_key is None:
            raise ValueError("dot_product_attention: dropout_rate > 0 requires a dropout_key")
        if implementation == "cudnn":
            raise ValueError(
                "dot_product_attention: dropout is not available with implementation='cudnn' "
                "(jax.nn.dot_product_attention has no dropout); use dropout_rate=0.0"
            )
        out = _explicit_attention(
            query, key, value, bias4, mask4, causal, scale, rate, jnp.asarray(dropout_key)
        )
    elif implementation is None:
        out = _explicit_attention(query, key, value, bias4, mask4, causal, scale)
    else:
        out = jax.nn.dot_product_attention(
            query,
            key,
            value,
            bias=bias4,
            mask=mask4,
            scale=scale,
            is_causal=causal,
            implementation=implementation,
        )
    return out[:, :, 0, :] if single_head else out
