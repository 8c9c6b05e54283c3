"""dot_product_attention against a numpy reference and torch's scaled_dot_product_attention."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from axon.layers import dot_product_attention


def _ref(q, k, v, *, bias=None, mask=None, causal=False, scale=None):
    """softmax(Q Kᵀ · scale + bias) V in float64, over (B, T, N, H) arrays (GQA by repeat)."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    n, kh = q.shape[2], k.shape[2]
    k, v = np.repeat(k, n // kh, axis=2), np.repeat(v, n // kh, axis=2)
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    logits = np.einsum("btnh,bsnh->bnts", q, k) * scale
    if bias is not None:
        logits = logits + np.asarray(bias, dtype=np.float64)
    allowed = np.ones(logits.shape, dtype=bool)
    if mask is not None:
        allowed = allowed & np.asarray(mask)
    if causal:
        t, s = logits.shape[-2:]
        allowed = allowed & np.tril(np.ones((t, s), dtype=bool))
    logits = np.where(allowed, logits, -np.inf)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w = w / w.sum(-1, keepdims=True)
    return np.einsum("bnts,bsnh->btnh", w, v)


def _qkv(b=2, t=5, s=7, n=4, kh=None, h=8, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    kh = n if kh is None else kh
    q = rng.normal(size=(b, t, n, h)).astype(dtype)
    k = rng.normal(size=(b, s, kh, h)).astype(dtype)
    v = rng.normal(size=(b, s, kh, h)).astype(dtype)
    return q, k, v


def _attn(**options):
    return jax.jit(partial(dot_product_attention, **options))


def _random_mask(shape, seed):
    m = np.random.default_rng(seed).uniform(size=shape) < 0.6
    m[..., 0] = True  # every query attends to something
    return m


def test_plain_matches_reference():
    q, k, v = _qkv()
    y = _attn()(q, k, v)
    assert y.shape == q.shape
    np.testing.assert_allclose(np.asarray(y), _ref(q, k, v), rtol=1e-5, atol=1e-5)


def test_bias_mask_scale_match_reference():
    q, k, v = _qkv(seed=1)
    bias = np.random.default_rng(2).normal(size=(2, 4, 5, 7)).astype(np.float32)
    mask = _random_mask((2, 1, 5, 7), 3)  # broadcast over heads
    y = _attn(scale=0.3)(q, k, v, bias=bias, mask=mask)
    expected = _ref(q, k, v, bias=bias, mask=mask, scale=0.3)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


def test_padding_mask_and_head_bias_broadcast():
    q, k, v = _qkv(seed=4)
    pad = np.array([[True] * 7, [True] * 4 + [False] * 3])[:, None, None, :]  # (B, 1, 1, S)
    bias = np.linspace(-1, 1, 4 * 7).reshape(1, 4, 1, 7).astype(np.float32)  # per-head bias
    y = _attn()(q, k, v, bias=bias, mask=pad)
    np.testing.assert_allclose(
        np.asarray(y), _ref(q, k, v, bias=bias, mask=pad), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(("t", "s"), [(6, 6), (4, 6)])
def test_causal_matches_reference(t, s):
    q, k, v = _qkv(t=t, s=s, seed=5)
    y = _attn(causal=True)(q, k, v)
    np.testing.assert_allclose(np.asarray(y), _ref(q, k, v, causal=True), rtol=1e-5, atol=1e-5)


def test_grouped_query_attention():
    q, k, v = _qkv(n=6, kh=2, seed=6)
    mask = _random_mask((2, 6, 5, 7), 7)
    y = _attn()(q, k, v, mask=mask)
    np.testing.assert_allclose(np.asarray(y), _ref(q, k, v, mask=mask), rtol=1e-5, atol=1e-5)


def test_rank3_single_head():
    q, k, v = (a[:, :, 0, :] for a in _qkv(seed=8))
    mask = _random_mask((2, 5, 7), 9)  # (B, T, S)
    bias = np.random.default_rng(10).normal(size=(5, 7)).astype(np.float32)
    y = _attn(causal=False)(q, k, v, mask=mask, bias=bias)
    assert y.shape == (2, 5, 8)
    expected = _ref(q[:, :, None], k[:, :, None], v[:, :, None], mask=mask[:, None], bias=bias)
    np.testing.assert_allclose(np.asarray(y), expected[:, :, 0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", ["plain", "causal", "mask", "mask_causal_scale"])
def test_matches_torch_sdpa(case, torch):
    q, k, v = _qkv(t=6, s=6, seed=11)
    mask = _random_mask((2, 4, 6, 6), 12) if "mask" in case else None
    causal = "causal" in case
    scale = 0.25 if "scale" in case else None
    y = _attn(causal=causal, scale=scale)(q, k, v, mask=mask)
    tq, tk, tv = (torch.tensor(np.transpose(a, (0, 2, 1, 3))) for a in (q, k, v))
    attn_mask = None if mask is None else torch.tensor(mask)
    if causal and attn_mask is not None:  # torch does not take both; combine them
        attn_mask = attn_mask & torch.ones(6, 6, dtype=torch.bool).tril()
        causal_t = False
    else:
        causal_t = causal
    expected = torch.nn.functional.scaled_dot_product_attention(
        tq, tk, tv, attn_mask=attn_mask, is_causal=causal_t, scale=scale
    ).numpy()
    np.testing.assert_allclose(
        np.asarray(y), np.transpose(expected, (0, 2, 1, 3)), rtol=1e-5, atol=1e-5
    )


def test_matches_torch_float_bias(torch):
    q, k, v = _qkv(t=3, s=9, seed=13)
    bias = np.random.default_rng(14).normal(size=(2, 4, 3, 9)).astype(np.float32)
    y = _attn()(q, k, v, bias=bias)
    tq, tk, tv = (torch.tensor(np.transpose(a, (0, 2, 1, 3))) for a in (q, k, v))
    expected = torch.nn.functional.scaled_dot_product_attention(
        tq, tk, tv, attn_mask=torch.tensor(bias)
    )
    np.testing.assert_allclose(
        np.asarray(y), np.transpose(expected.numpy(), (0, 2, 1, 3)), rtol=1e-5, atol=1e-5
    )


def test_fully_masked_rows_are_finite():
    q, k, v = _qkv(seed=15)
    mask = np.ones((2, 4, 5, 7), dtype=bool)
    mask[0, 1, 2, :] = False
    y = np.asarray(_attn()(q, k, v, mask=mask))
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y[0, 2, 1], np.asarray(v)[0, :, 1].mean(0), rtol=1e-5, atol=1e-5)


def test_gradients_finite_and_match_reference_direction():
    q, k, v = _qkv(seed=16)
    mask = _random_mask((2, 1, 5, 7), 17)

    def loss(q, k, v):
        return jnp.sum(dot_product_attention(q, k, v, mask=mask, causal=True) ** 2)

    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(q, k, v)
    assert all(bool(jnp.isfinite(g).all()) for g in grads)
    # value gradient is exactly Wᵀ · 2·out (out linear in V): check against the reference.
    q64, k64 = np.asarray(q, np.float64), np.asarray(k, np.float64)
    eye = np.eye(7)[None, :, None, :].repeat(4, axis=2).repeat(2, axis=0)  # V = one-hot rows
    w = _ref(q64, k64, eye, mask=mask, causal=True)  # (B, T, N, S) attention weights
    out = _ref(q64, k64, np.asarray(v), mask=mask, causal=True)
    np.testing.assert_allclose(
        np.asarray(grads[2]), np.einsum("btns,btnh->bsnh", w, 2 * out), rtol=1e-4, atol=1e-5
    )


def test_bf16_inputs():
    q, k, v = _qkv(seed=18)
    qb, kb, vb = (jnp.asarray(a, dtype=jnp.bfloat16) for a in (q, k, v))
    y = _attn(causal=True)(qb, kb, vb)
    assert y.dtype == jnp.bfloat16
    expected = _ref(*(np.asarray(a.astype(jnp.float32)) for a in (qb, kb, vb)), causal=True)
    np.testing.assert_allclose(np.asarray(y, dtype=np.float64), expected, atol=0.05, rtol=0.02)


def test_implementation_xla_passthrough():
    q, k, v = _qkv(seed=19)
    np.testing.assert_allclose(
        np.asarray(_attn(implementation="xla")(q, k, v)), _ref(q, k, v), rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match="implementation"):
        dot_product_attention(q, k, v, implementation="nope")


# --------------------------------------------------------------------------------- dropout


def test_dropout_rate_zero_equals_no_dropout():
    q, k, v = _qkv(seed=20)
    y = _attn(dropout_rate=0.0)(q, k, v, dropout_key=jax.random.PRNGKey(0))
    np.testing.assert_allclose(np.asarray(y), _ref(q, k, v), rtol=1e-5, atol=1e-5)


def test_dropout_drops_attention_weights():
    # With V = one-hot rows (head_dim = S), the output row is the (dropped, rescaled) weights.
    b, t, s, n, rate = 2, 4, 6, 3, 0.4
    rng = np.random.default_rng(21)
    q = rng.normal(size=(b, t, n, s)).astype(np.float32)
    k = rng.normal(size=(b, s, n, s)).astype(np.float32)
    v = np.broadcast_to(np.eye(s, dtype=np.float32)[None, :, None, :], (b, s, n, s)).copy()
    mask = _random_mask((b, 1, t, s), 22)
    f = _attn(dropout_rate=rate, causal=True)
    y = np.asarray(f(q, k, v, mask=mask, dropout_key=jax.random.PRNGKey(3)))
    w = _ref(q, k, v, mask=mask, causal=True)  # undropped weights, (B, T, N, S)
    kept = y != 0
    np.testing.assert_allclose(y[kept], w[kept] / (1 - rate), rtol=1e-5, atol=1e-6)
    # same key, same result; another key, another mask
    np.testing.assert_array_equal(
        y, np.asarray(f(q, k, v, mask=mask, dropout_key=jax.random.PRNGKey(3)))
    )
    assert not np.array_equal(
        y, np.asarray(f(q, k, v, mask=mask, dropout_key=jax.random.PRNGKey(4)))
    )


def test_dropout_is_unbiased_on_average():
    q, k, v = _qkv(b=1, t=3, s=5, n=2, h=4, seed=23)
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    f = jax.jit(
        jax.vmap(lambda key: dot_product_attention(q, k, v, dropout_rate=0.3, dropout_key=key))
    )
    mean = np.asarray(f(keys)).mean(0)
    np.testing.assert_allclose(mean, _ref(q, k, v), atol=0.06)


def test_dropout_with_gqa_rank3_and_grad():
    q, k, v = _qkv(n=4, kh=2, seed=24)
    key = jax.random.PRNGKey(1)

    def loss(q):
        y = dot_product_attention(q, k, v, dropout_rate=0.1, dropout_key=key)
        return y.sum(), y

    g, y = jax.jit(jax.grad(loss, has_aux=True))(q)
    assert y.shape == q.shape
    assert bool(jnp.isfinite(g).all())
    y3 = _attn(dropout_rate=0.5)(q[:, :, 0], k[:, :, 0], v[:, :, 0], dropout_key=key)
    assert y3.shape == (2, 5, 8)


# ---------------------------------------------------------------------------------- errors


def test_errors():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="head dims differ"):
        dot_product_attention(q, k[..., :4], v[..., :4])
    with pytest.raises(ValueError, match="rank"):
        dot_product_attention(q, k[:, :, 0], v[:, :, 0])
    with pytest.raises(ValueError, match="value shape"):
        dot_product_attention(q, k, v[:, :3])
    with pytest.raises(ValueError, match="multiple"):
        dot_product_attention(q, k[:, :, :3], v[:, :, :3])
    with pytest.raises(ValueError, match="not broadcastable"):
        dot_product_attention(q, k, v, mask=np.ones((2, 4, 5, 6), dtype=bool))
    with pytest.raises(ValueError, match="boolean"):
        dot_product_attention(q, k, v, mask=np.ones((2, 1, 5, 7), dtype=np.float32))
    with pytest.raises(ValueError, match="dropout_key"):
        dot_product_attention(q, k, v, dropout_rate=0.5)
    with pytest.raises(ValueError, match="dropout_rate"):
        dot_product_attention(q, k, v, dropout_rate=1.0, dropout_key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="cudnn"):
        dot_product_attention(
            q, k, v, dropout_rate=0.5, dropout_key=jax.random.PRNGKey(0), implementation="cudnn"
        )
