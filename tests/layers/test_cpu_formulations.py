"""The formulations axon picks for speed give the numbers of the reference formulation they
replace, to float rounding (issue 17): the default attention path (an explicit einsum /
softmax / einsum) against ``jax.nn.dot_product_attention``'s XLA path, on the attention
layer's cases (heads, grouped-query, single head, masks, bias, causal, float32 and bfloat16,
values and gradients)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon
from axon.layers import dot_product_attention

CASES = {
    "multi_head": dict(q=(2, 5, 4, 8), kv=(2, 7, 4, 8)),
    "grouped_query": dict(q=(2, 5, 4, 8), kv=(2, 7, 2, 8)),
    "single_head": dict(q=(2, 5, 8), kv=(2, 7, 8)),
    "causal": dict(q=(2, 6, 4, 8), kv=(2, 6, 4, 8), causal=True),
    "mask": dict(q=(2, 5, 4, 8), kv=(2, 7, 4, 8), mask=(2, 1, 5, 7)),
    "bias_and_mask": dict(q=(2, 5, 4, 8), kv=(2, 7, 2, 8), mask=(2, 4, 5, 7), bias=(1, 4, 5, 7)),
    "all_masked_row": dict(q=(1, 3, 2, 4), kv=(1, 4, 2, 4), mask="row"),
}


def _inputs(case, dtype):
    rng = np.random.default_rng(0)
    q = jnp.asarray(rng.standard_normal(case["q"]), dtype)
    k = jnp.asarray(rng.standard_normal(case["kv"]), dtype)
    v = jnp.asarray(rng.standard_normal(case["kv"]), dtype)
    opts = {"causal": case.get("causal", False)}
    if case.get("mask") == "row":
        m = np.ones((1, 2, 3, 4), bool)
        m[0, :, 1] = False  # query 1 attends to nothing: jax.nn averages the values uniformly
        opts["mask"] = jnp.asarray(m)
    elif "mask" in case:
        opts["mask"] = jnp.asarray(rng.random(case["mask"]) > 0.3)
    if "bias" in case:
        opts["bias"] = jnp.asarray(rng.standard_normal(case["bias"]), dtype)
    return q, k, v, opts


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_default_attention_equals_jax_nn_xla_path(name, dtype):
    q, k, v, opts = _inputs(CASES[name], dtype)

    def run(implementation):
        def f(q, k, v):
            out = dot_product_attention(q, k, v, implementation=implementation, **opts)
            return (out.astype(jnp.float32) ** 2).sum(), out

        (_, out), grads = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True))(q, k, v)
        return out, grads

    out, grads = run(None)
    ref, ref_grads = run("xla")
    assert out.dtype == ref.dtype == jnp.dtype(dtype)
    tol = 1e-5 if dtype == "float32" else 2e-2
    np.testing.assert_allclose(np.asarray(out, np.float32), np.asarray(ref, np.float32), rtol=tol, atol=tol)
    for g, r in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(np.asarray(g, np.float32), np.asarray(r, np.float32), rtol=tol, atol=tol * 10)


def test_multi_head_attention_layer_equals_the_jax_nn_path(monkeypatch):
    # the graph layer (projections, heads) through the default path against the same layer
    # with its attention replaced by jax.nn's XLA path
    x = axon.input("x", shape=(None, 6, 16))
    model = axon.multi_head_attention(x, num_heads=4)
    init_fn, predict_fn = axon.build(model)
    state = init_fn()
    xs = np.random.default_rng(1).standard_normal((3, 6, 16)).astype(np.float32)
    out = predict_fn(state, xs)
    import axon.layers.attention as attention

    monkeypatch.setattr(
        attention, "_explicit_attention",
        lambda q, k, v, b, m, c, s, rate=0.0, key=None: jax.nn.dot_product_attention(
            q, k, v, bias=b, mask=m, scale=s, is_causal=c, implementation="xla"),
    )
    _, reference_fn = axon.build(model)
    np.testing.assert_allclose(out, reference_fn(state, xs), rtol=1e-5, atol=1e-6)
