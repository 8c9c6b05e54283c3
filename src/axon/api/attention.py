"""Attention layers: ``multi_head_attention``.

Axon 0.8 has no attention layer; this one is made like every other layer, with
:func:`axon.param` and :func:`axon.layer` over the functional
:func:`axon.layers.dot_product_attention` (which runs :func:`jax.nn.dot_product_attention`,
so a GPU gets its fused kernel). Its parameters are the usual multi-head projections, laid
out per head as in Keras' ``MultiHeadAttention`` and Flax's ``MultiHeadDotProductAttention``.

>>> import axon
>>> x = axon.input("x", shape=(None, 10, 16))
>>> model = axon.multi_head_attention(x, num_heads=4)
>>> state = axon.init(model, axon.template((2, 10, 16)))
>>> state["multi_head_attention_0"]["query_kernel"].shape, axon.get_output_shape(model, axon.template((2, 10, 16)))
((16, 4, 4), (2, 10, 16))
"""

from __future__ import annotations

import math
from typing import Any, Literal

import jax
import jax.numpy as jnp

from axon import initializers as _initializers
from axon import layers
from axon.api.core import check_graph, check_name, layer, param
from axon.api.dropout import key_param
from axon.graph import Axon
from axon.registry import made_by, register, register_all
from axon.typing_aliases import Initializer, LayerName, RunMode
from axon.values import StatefulOutput

__all__ = ["multi_head_attention"]


class _HeadsInit:
    """An initializer for a per-head kernel that draws it as the 2-d matrix it stands for
    (``(d, heads * size)`` for ``split="out"``, ``(heads * size, d)`` for ``split="in"``)
    and reshapes, so that fan-in/fan-out are those of the projection (as in Flax's
    ``DenseGeneral`` and PyTorch's ``in_proj_weight``), not of the 3-d array."""

    def __init__(self, init: Any, split: str):
        self.init = init
        self.split = split

    def __call__(self, key: Any, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        flat = (shape[0], math.prod(shape[1:])) if self.split == "out" else (math.prod(shape[:-1]), shape[-1])
        return jnp.reshape(self.init(key, flat, dtype), shape)

    # equal when they sample alike (same split, and inner initializers that are one object or
    # made by one registered factory with equal options), so that the compiled programs
    # creating parameters (axon.compiler.creation) are shared between attention layers
    def _inner(self) -> Any:
        made = made_by(self.init)
        return self.init if made is None else made

    def __eq__(self, other: object) -> bool:
        return type(other) is _HeadsInit and other.split == self.split and other._inner() == self._inner()

    def __hash__(self) -> int:
        inner = self._inner()
        return hash((self.split, inner[0] if isinstance(inner, tuple) else id(inner)))


def _normalize_mask(mask: jax.Array, b: int, t: int, s: int) -> jax.Array:
    if mask.dtype != jnp.bool_:
        raise ValueError(
            f"multi_head_attention: expected a boolean mask (True = attend), got dtype {mask.dtype}; "
            "convert it in the graph, e.g. axon.fn(m, lambda v: v != 0)"
        )
    if mask.ndim == 2:  # (batch, key_len): a padding mask
        shaped = mask[:, None, None, :]
    elif mask.ndim == 3:  # (batch, query_len, key_len)
        shaped = mask[:, None]
    elif mask.ndim == 4:
        shaped = mask
    else:
        raise ValueError(
            "multi_head_attention: expected the mask to have shape (batch, key_len), (batch, query_len, key_len) "
            f"or (batch, heads, query_len, key_len), got {tuple(mask.shape)}"
        )
    if shaped.shape[0] not in (1, b) or shaped.shape[-2] not in (1, t) or shaped.shape[-1] != s:
        raise ValueError(
            f"multi_head_attention: mask of shape {tuple(mask.shape)} does not fit batch {b}, query length {t} "
            f"and key length {s}"
        )
    return shaped


def _project(x: jax.Array, kernel: jax.Array, bias: jax.Array | None) -> jax.Array:
    y = jnp.einsum("bsd,dnh->bsnh", x, kernel)
    return y if bias is None else y + bias


@register("op", "axon.multi_head_attention")
def multi_head_attention_op(
    *arrays: Any,
    layout: tuple[str, ...],
    causal: bool = False,
    dropout_rate: float = 0.0,
    implementation: Literal["xla", "cudnn"] | None = None,
    mode: RunMode = "inference",
) -> Any:
    """The op of :func:`multi_head_attention`: ``arrays`` named by ``layout`` (from
    ``query``, ``key``, ``value``, ``mask``, the ``*_kernel``/``*_bias`` parameters and the
    dropout ``key`` state, named ``rng``). A missing ``key``/``value`` input is the query
    (self-attention) or the key.

    >>> import jax.numpy as jnp
    >>> eye = jnp.eye(2).reshape(2, 1, 2)
    >>> out = multi_head_attention_op(jnp.ones((1, 3, 2)), eye, eye, eye, jnp.eye(2).reshape(1, 2, 2),
    ...     layout=("query", "query_kernel", "key_kernel", "value_kernel", "output_kernel"))
    >>> out.tolist()
    [[[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]]
    """
    a = dict(zip(layout, arrays, strict=True))
    query = a["query"]
    key = a.get("key", query)
    value = a.get("value", key)
    for what, v in (("query", query), ("key", key), ("value", value)):
        if v.ndim != 3:
            raise ValueError(f"multi_head_attention: expected {what} of shape (batch, seq, features), got {tuple(v.shape)}")
    if key.shape[:2] != value.shape[:2]:
        raise ValueError(
            f"multi_head_attention: key {tuple(key.shape)} and value {tuple(value.shape)} must have the same batch and length"
        )
    q = _project(query, a["query_kernel"], a.get("query_bias"))
    k = _project(key, a["key_kernel"], a.get("key_bias"))
    v = _project(value, a["value_kernel"], a.get("value_bias"))
    key_size, value_size = q.shape[-1], v.shape[-1]
    # jax.nn.dot_product_attention needs equal key and value head sizes: pad the smaller with
    # zeros (it adds nothing to the dot products; the scale stays 1/sqrt(key_size)).
    if value_size > key_size:
        pad = [(0, 0)] * 3 + [(0, value_size - key_size)]
        q, k = jnp.pad(q, pad), jnp.pad(k, pad)
    elif value_size < key_size:
        v = jnp.pad(v, [(0, 0)] * 3 + [(0, key_size - value_size)])
    b, t, s = query.shape[0], query.shape[1], key.shape[1]
    mask = a.get("mask")
    mask = None if mask is None else _normalize_mask(jnp.asarray(mask), b, t, s)
    train_dropout = mode == "train" and dropout_rate > 0
    new_key = sub = None
    if train_dropout:
        new_key, sub = jax.random.split(a["rng"])
    out = layers.dot_product_attention(
        q, k, v, mask=mask, causal=causal, scale=1.0 / math.sqrt(key_size),
        dropout_rate=dropout_rate if train_dropout else 0.0, dropout_key=sub,
        implementation=implementation,
    )[..., :value_size]
    y = jnp.einsum("btnh,nho->bto", out, a["output_kernel"])
    if "output_bias" in a:
        y = y + a["output_bias"]
    return StatefulOutput(y, {"key": new_key}) if train_dropout else y


def _positive(value: Any, what: str, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"multi_head_attention: expected {what} to be a positive int, got {value!r}")
    return value


def multi_head_attention(
    query: Axon,
    key: Axon | None = None,
    value: Axon | None = None,
    *,
    num_heads: int,
    key_size: int | None = None,
    value_size: int | None = None,
    output_size: int | None = None,
    use_bias: bool = True,
    causal: bool = False,
    mask: Axon | None = None,
    dropout_rate: float = 0.0,
    seed: int | None = None,
    implementation: Literal["xla", "cudnn"] | None = None,
    kernel_initializer: Initializer = "glorot_uniform",
    bias_initializer: Initializer = "zeros",
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """Multi-head scaled dot-product attention with learned projections.

    ``query`` is ``(batch, T, d_q)``; ``key`` ``(batch, S, d_k)`` and ``value``
    ``(batch, S, d_v)`` default to the query (self-attention; a missing ``value`` is the
    ``key``). Per head ``h``: ``softmax(q_h·k_hᵀ / sqrt(key_size))·v_h`` with
    ``q = query·query_kernel + query_bias`` (likewise ``k``, ``v``); the heads are combined by
    ``output_kernel``. Output ``(batch, T, output_size)``.

    * ``key_size`` defaults to ``d_q // num_heads`` (``d_q`` must then divide),
      ``value_size`` to ``key_size``, ``output_size`` to ``d_q``.
    * ``mask``: an optional boolean graph, ``True`` = attend, of shape ``(batch, S)`` (key
      padding), ``(batch, T, S)`` or ``(batch, heads, T, S)``. ``causal=True`` lets query ``i``
      see keys ``j <= i``. A query with every key masked averages all values (never NaN).
    * ``dropout_rate`` drops attention weights in train mode only, with masks drawn from the
      layer's ``key`` state (seeded by ``seed=`` or the build seed and the layer's name),
      advanced on every training step, as the dropout layers do.

    Parameters: ``query_kernel`` ``(d_q, heads, key_size)``, ``key_kernel``
    ``(d_k, heads, key_size)``, ``value_kernel`` ``(d_v, heads, value_size)``,
    ``output_kernel`` ``(heads, value_size, output_size)``, and with ``use_bias``
    ``query_bias``/``key_bias`` ``(heads, key_size)``, ``value_bias`` ``(heads, value_size)``,
    ``output_bias`` ``(output_size,)``. Kernels are initialized as the 2-d projection
    matrices they stand for (``(d_q, heads·key_size)`` ...), so fan-in and fan-out are those
    of the projection.

    Args:
        query: The query graph, ``(batch, T, d_q)``.
        key: The key graph, ``(batch, S, d_k)``. Default ``None``: the query.
        value: The value graph, ``(batch, S, d_v)``. Default ``None``: the key.
        num_heads: The number of heads (required).
        key_size: The size of each head's queries and keys. Default ``d_q // num_heads``.
        value_size: The size of each head's values. Default ``key_size``.
        output_size: The size of the output features. Default ``d_q``.
        use_bias: Whether the four projections have biases. Default ``True``.
        causal: Let query ``i`` attend only to keys ``j <= i``. Default ``False``.
        mask: A boolean graph, ``True`` = attend: ``(batch, S)``, ``(batch, T, S)`` or
            ``(batch, heads, T, S)``. Default ``None``: no mask.
        dropout_rate: The fraction of attention weights dropped in train mode,
            ``0 <= rate < 1``. Default ``0.0``.
        seed: Seed of the dropout key (only with ``dropout_rate > 0``). Default ``None``:
            derived from the build seed and the layer name.
        implementation: How the attention itself is computed: ``None`` (default) an explicit
            einsum/softmax/einsum (the fastest on CPU), ``"xla"`` or ``"cudnn"``
            :func:`jax.nn.dot_product_attention` with that implementation (``"cudnn"``: the
            fused flash-attention kernel on NVIDIA GPUs, in float16/bfloat16, without
            attention dropout). See :func:`axon.layers.dot_product_attention`.
        kernel_initializer: The kernel's initializer (a name from ``axon.initializers``
            or ``init(key, shape, dtype)``). Default ``"glorot_uniform"``.
        bias_initializer: The bias's initializer. Default ``"zeros"``.
        name: The layer name (``None``: ``"multi_head_attention_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the attention output, ``(batch, T, output_size)``.

    Raises:
        TypeError: An input is not a graph, or a flag is not a bool.
        ValueError: A size is not positive, ``d_q`` is not divisible by ``num_heads``
            without ``key_size``, ``value`` came without ``key``, ``dropout_rate`` or
            ``seed`` is invalid, or ``implementation`` is unknown or ``"cudnn"`` with dropout.

    >>> import axon
    >>> q, kv = axon.input("q", shape=(None, 3, 8)), axon.input("kv", shape=(None, 5, 6))
    >>> pad = axon.input("pad", shape=(None, 5))
    >>> model = axon.multi_head_attention(q, kv, num_heads=2, output_size=4, causal=True, mask=pad)
    >>> axon.get_output_shape(model, {"q": axon.template((1, 3, 8)), "kv": axon.template((1, 5, 6)),
    ...                               "pad": axon.template((1, 5), "bool")})
    (1, 3, 4)
    """
    where = "multi_head_attention"
    check_graph(query, where, "query")
    if key is not None:
        check_graph(key, where, "key")
    if value is not None:
        check_graph(value, where, "value")
        if key is None:
            raise ValueError(f"{where}: value was given without key; pass key too (or neither, for self-attention)")
    if mask is not None:
        check_graph(mask, where, "mask")
    check_name(name, where)
    num_heads = _positive(num_heads, "num_heads", allow_none=False)
    key_size = _positive(key_size, "key_size")
    value_size = _positive(value_size, "value_size")
    output_size = _positive(output_size, "output_size")
    for what, flag in (("use_bias", use_bias), ("causal", causal)):
        if not isinstance(flag, bool):
            raise TypeError(f"{where}: expected {what} to be a bool, got {flag!r}")
    if isinstance(dropout_rate, bool) or not isinstance(dropout_rate, (int, float)) or not 0 <= dropout_rate < 1:
        raise ValueError(f"{where}: expected dropout_rate to be a number with 0 <= rate < 1, got {dropout_rate!r}")
    if seed is not None and dropout_rate == 0:
        raise ValueError(f"{where}: seed only applies with dropout_rate > 0")
    if implementation not in (None, "xla", "cudnn"):
        raise ValueError(f"{where}: implementation must be None, 'xla' or 'cudnn', got {implementation!r}")
    if implementation == "cudnn" and dropout_rate > 0:
        raise ValueError(f"{where}: implementation='cudnn' does not support attention dropout (dropout_rate={dropout_rate})")
    kernel_init = _initializers.get(kernel_initializer)

    def d_query(shapes) -> int:
        s = shapes[0]
        if len(s) != 3:
            raise ValueError(f"{where}: expected query of shape (batch, seq, features), got {s}")
        return s[-1]

    def k_size(shapes) -> int:
        if key_size is not None:
            return key_size
        d = d_query(shapes)
        if d % num_heads:
            raise ValueError(
                f"{where}: the query's feature size {d} is not divisible by num_heads={num_heads}; pass key_size"
            )
        return d // num_heads

    def v_size(shapes) -> int:
        return value_size if value_size is not None else k_size(shapes)

    def o_size(shapes) -> int:
        return output_size if output_size is not None else d_query(shapes)

    graphs = [query] + ([key] if key is not None else []) + ([value] if value is not None else [])
    names = ["query"] + (["key"] if key is not None else []) + (["value"] if value is not None else [])
    key_index = 1 if key is not None else 0
    value_index = 2 if value is not None else key_index

    def in_dim(shapes, i: int) -> int:
        s = shapes[i]
        if len(s) != 3:
            raise ValueError(f"{where}: expected {names[i]} of shape (batch, seq, features), got {s}")
        return s[-1]

    inputs: list[Any] = list(graphs)
    if mask is not None:
        inputs.append(mask)
        names.append("mask")
    out_init, in_init = _HeadsInit(kernel_init, "out"), _HeadsInit(kernel_init, "in")
    params = [
        param("query_kernel", lambda *s: (in_dim(s, 0), num_heads, k_size(s)), initializer=out_init),
        param("key_kernel", lambda *s: (in_dim(s, key_index), num_heads, k_size(s)), initializer=out_init),
        param("value_kernel", lambda *s: (in_dim(s, value_index), num_heads, v_size(s)), initializer=out_init),
        param("output_kernel", lambda *s: (num_heads, v_size(s), o_size(s)), initializer=in_init),
    ]
    if use_bias:
        params += [
            param("query_bias", lambda *s: (num_heads, k_size(s)), initializer=bias_initializer),
            param("key_bias", lambda *s: (num_heads, k_size(s)), initializer=bias_initializer),
            param("value_bias", lambda *s: (num_heads, v_size(s)), initializer=bias_initializer),
            param("output_bias", lambda *s: (o_size(s),), initializer=bias_initializer),
        ]
    inputs += params
    names += [p.name for p in params]
    if dropout_rate > 0:
        inputs.append(key_param(seed))
        names.append("rng")
    # (implementation is an option of the layer only when given, so files saved before it
    # existed and graphs that leave it out are the same)
    extra = {} if implementation is None else {"implementation": implementation}
    return layer(
        multi_head_attention_op, inputs, layout=tuple(names), causal=causal, dropout_rate=float(dropout_rate),
        name=name, op_name=where, meta=meta, **extra,
    )


# functional layers (axon.layers) as ops with permanent names "axon.<name>" (see axon.registry)
register_all("op", {
    "axon.dot_product_attention": layers.dot_product_attention,
})
