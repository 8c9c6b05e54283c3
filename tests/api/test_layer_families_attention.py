"""``multi_head_attention`` through the shared conformance check, compared with
``torch.nn.MultiheadAttention`` (copied projection weights) and with a NumPy reference for
what torch cannot express (different key/value/output sizes, no biases).

Part of the layer-family conformance suite (split from test_layer_families.py to keep each
file fast)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon
from axon import layers
from tests.conformance import check_layer

RNG = np.random.default_rng(2)
F32, U32 = "float32", "uint32"
NAMES = ("query", "key", "value", "output")


def x_of(*shape):
    return jnp.asarray(RNG.normal(size=shape).astype(np.float32))


def close(a, b, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=atol)


def t(a):
    torch = pytest.importorskip("torch")
    return torch.tensor(np.asarray(a), dtype=torch.float64)


def from_torch(mha) -> dict:
    """Our per-head projection parameters from a torch MultiheadAttention."""
    e, h = mha.embed_dim, mha.num_heads
    if mha._qkv_same_embed_dim:
        wq, wk, wv = np.split(mha.in_proj_weight.detach().numpy(), 3)
    else:
        wq, wk, wv = (w.detach().numpy() for w in (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight))
    bq, bk, bv = np.split(mha.in_proj_bias.detach().numpy(), 3)
    p = {}
    for name, w, b in (("query", wq, bq), ("key", wk, bk), ("value", wv, bv)):
        p[f"{name}_kernel"] = jnp.asarray(w.T.reshape(w.shape[1], h, e // h), jnp.float32)
        p[f"{name}_bias"] = jnp.asarray(b.reshape(h, e // h), jnp.float32)
    p["output_kernel"] = jnp.asarray(mha.out_proj.weight.detach().numpy().T.reshape(h, e // h, e), jnp.float32)
    p["output_bias"] = jnp.asarray(mha.out_proj.bias.detach().numpy(), jnp.float32)
    return p


def spec_for(layer, d_q, d_k, d_v, heads, key_size, value_size, out, use_bias=True):
    spec = {f"{layer}/query_kernel": ((d_q, heads, key_size), F32), f"{layer}/key_kernel": ((d_k, heads, key_size), F32),
            f"{layer}/value_kernel": ((d_v, heads, value_size), F32), f"{layer}/output_kernel": ((heads, value_size, out), F32)}
    if use_bias:
        spec.update({f"{layer}/query_bias": ((heads, key_size), F32), f"{layer}/key_bias": ((heads, key_size), F32),
                     f"{layer}/value_bias": ((heads, value_size), F32), f"{layer}/output_bias": ((out,), F32)})
    return spec


def mha_numpy(q_in, k_in, v_in, p, mask=None, causal=False, weights_fn=None):
    """Multi-head attention written out in NumPy (float64)."""
    f = lambda a: np.asarray(a, np.float64)  # noqa: E731
    q = np.einsum("btd,dnh->bnth", f(q_in), f(p["query_kernel"]))
    k = np.einsum("bsd,dnh->bnsh", f(k_in), f(p["key_kernel"]))
    v = np.einsum("bsd,dnh->bnsh", f(v_in), f(p["value_kernel"]))
    if "query_bias" in p:
        q, k, v = q + f(p["query_bias"])[:, None], k + f(p["key_bias"])[:, None], v + f(p["value_bias"])[:, None]
    logits = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    allowed = np.ones(logits.shape, bool)
    if mask is not None:
        allowed &= np.asarray(mask)[:, None, None, :]
    if causal:
        allowed &= np.tril(np.ones(logits.shape[-2:], bool))
    logits = np.where(allowed, logits, -np.inf)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    if weights_fn is not None:
        w = weights_fn(w)
    out = np.einsum("bnts,bnsh->bnth", w, v)
    y = np.einsum("bnth,nho->bto", out, f(p["output_kernel"]))
    return y + f(p["output_bias"]) if "output_bias" in p else y


def test_multi_head_attention_against_torch_and_numpy(torch):
    x = axon.input("x", shape=(None, 4, 8))
    kv = axon.input("kv", shape=(None, 5, 6))
    v_in = axon.input("v", shape=(None, 5, 3))
    pad = axon.input("pad", shape=(None, 5))
    model = axon.container([
        axon.multi_head_attention(x, num_heads=2),
        axon.multi_head_attention(x, kv, num_heads=2, causal=True, mask=pad),
        axon.multi_head_attention(x, kv, v_in, num_heads=3, key_size=2, value_size=5, output_size=7, use_bias=False),
        axon.multi_head_attention(x, kv, v_in, num_heads=1, key_size=4, value_size=2),
    ])
    keep = np.array([[True, True, True, False, False], [True, False, True, True, True]])
    inputs = {"x": x_of(2, 4, 8), "kv": x_of(2, 5, 6), "v": x_of(2, 5, 3), "pad": jnp.asarray(keep)}
    torch.manual_seed(0)
    self_ref = torch.nn.MultiheadAttention(8, 2, batch_first=True).double()
    cross_ref = torch.nn.MultiheadAttention(8, 2, kdim=6, vdim=6, batch_first=True).double()
    with torch.no_grad():
        for m in (self_ref, cross_ref):
            m.in_proj_bias.normal_()
            m.out_proj.bias.normal_()
    spec = {**spec_for("multi_head_attention_0", 8, 8, 8, 2, 4, 4, 8), **spec_for("multi_head_attention_1", 8, 6, 6, 2, 4, 4, 8),
            **spec_for("multi_head_attention_2", 8, 6, 3, 3, 2, 5, 7, use_bias=False),
            **spec_for("multi_head_attention_3", 8, 6, 3, 1, 4, 2, 8)}
    init_state = {"multi_head_attention_0": from_torch(self_ref), "multi_head_attention_1": from_torch(cross_ref)}
    for layer in ("multi_head_attention_2", "multi_head_attention_3"):
        init_state[layer] = {k.split("/")[1]: x_of(*shape) * 0.5 for k, (shape, _) in spec.items() if k.startswith(layer)}
    xt, kvt = t(inputs["x"]), t(inputs["kv"])
    with torch.no_grad():
        ref0, _ = self_ref(xt, xt, xt, need_weights=False)
        causal = torch.triu(torch.ones(4, 5, dtype=torch.bool), diagonal=1)  # True = not allowed
        ref1, _ = cross_ref(xt, kvt, kvt, key_padding_mask=torch.tensor(~keep), attn_mask=causal, need_weights=False)
    refs = [ref0.numpy(), ref1.numpy()] + [
        mha_numpy(inputs["x"], inputs["kv"], inputs["v"], init_state[f"multi_head_attention_{i}"]) for i in (2, 3)
    ]
    res = {}
    state = check_layer(model, inputs, spec, init_state=init_state, expected=refs, results=res)
    out = res["inference"]
    assert [o.shape for o in out] == [(2, 4, 8), (2, 4, 8), (2, 4, 7), (2, 4, 8)]
    # the numpy reference agrees with torch where both apply
    close(mha_numpy(inputs["x"], inputs["kv"], inputs["kv"], state["multi_head_attention_1"], keep, True), ref1.numpy())


def test_attention_dropout_and_default_initialization():
    x = axon.input("x", shape=(None, 6, 16))
    model = axon.multi_head_attention(x, num_heads=4, dropout_rate=0.5)
    xv = x_of(2, 6, 16)
    spec = spec_for("multi_head_attention_0", 16, 16, 16, 4, 4, 4, 16)
    res = {}
    state = check_layer(model, xv, spec, state={"multi_head_attention_0/key": ((2,), U32)}, train_differs=True,
                        expected=lambda s: mha_numpy(xv, xv, xv, s["multi_head_attention_0"]), rtol=1e-4, atol=1e-4,
                        results=res)
    p = state["multi_head_attention_0"]
    # kernels are glorot_uniform over the 2-d projection (fan_in = fan_out = 16): limit sqrt(6 / 32)
    limit = np.sqrt(6 / 32)
    for name in NAMES:
        k = np.abs(np.asarray(p[f"{name}_kernel"]))
        assert k.max() <= limit and k.max() > 0.8 * limit, (name, k.max())
        assert not np.any(np.asarray(p[f"{name}_bias"]))
    # inference: no dropout
    close(res["inference"], mha_numpy(xv, xv, xv, p), 1e-4, 1e-4)
    # train: attention weights dropped with the split key, kept ones scaled by 2; the key advances
    step = res["train"]
    new_key, sub = jax.random.split(p["key"])
    np.testing.assert_array_equal(step.state["multi_head_attention_0"]["key"], new_key)

    @jax.jit
    def reference(p, xv, sub):
        proj = {n: jnp.einsum("btd,dnh->btnh", xv, p[f"{n}_kernel"]) + p[f"{n}_bias"] for n in NAMES[:3]}
        heads = layers.dot_product_attention(proj["query"], proj["key"], proj["value"], dropout_rate=0.5, dropout_key=sub)
        return jnp.einsum("btnh,nho->bto", heads, p["output_kernel"]) + p["output_bias"]

    close(step.prediction, reference(p, xv, sub), 1e-4, 1e-4)
    assert not np.allclose(step.prediction, res["inference"], atol=1e-3)


def test_attention_validation():
    x = axon.input("x", shape=(None, 4, 6))
    with pytest.raises(ValueError, match="num_heads"):
        axon.multi_head_attention(x, num_heads=0)
    with pytest.raises(TypeError, match="num_heads"):
        axon.multi_head_attention(x)
    with pytest.raises(ValueError, match="dropout_rate"):
        axon.multi_head_attention(x, num_heads=2, dropout_rate=1.0)
    with pytest.raises(ValueError, match="seed only applies"):
        axon.multi_head_attention(x, num_heads=2, seed=1)
    with pytest.raises(ValueError, match="value was given without key"):
        axon.multi_head_attention(x, value=x, num_heads=2)
    with pytest.raises(TypeError, match="mask"):
        axon.multi_head_attention(x, num_heads=2, mask=np.ones((2, 4), bool))
    with pytest.raises(TypeError, match="unexpected keyword"):
        axon.multi_head_attention(x, num_heads=2, heads=2)
    with pytest.raises(axon.CompileError, match="not divisible by num_heads=4"):
        axon.init(axon.multi_head_attention(x, num_heads=4), axon.template((1, 4, 6)))
    model = axon.multi_head_attention(x, num_heads=2, mask=axon.input("m"))
    with pytest.raises(axon.CompileError, match="boolean mask"):
        axon.init(model, {"x": axon.template((1, 4, 6)), "m": axon.template((1, 4), "int32")})


def test_attention_implementation_option(tmp_path):
    """``implementation="xla"`` routes through jax.nn.dot_product_attention and gives the
    numpy reference's numbers; the option survives save/load and bad values are rejected."""
    q_in, kv_in = x_of(2, 3, 8), x_of(2, 5, 6)
    pad = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    q, kv = axon.input("q", shape=(None, 3, 8)), axon.input("kv", shape=(None, 5, 6))
    mask = axon.input("pad", shape=(None, 5))
    model = axon.multi_head_attention(q, kv, num_heads=2, output_size=4, causal=True, mask=mask,
                                      implementation="xla", name="mha")
    inputs = {"q": q_in, "kv": kv_in, "pad": pad}
    state = axon.init(model, inputs)
    p = state["mha"]
    close(axon.predict(model, state, inputs), mha_numpy(q_in, kv_in, kv_in, p, mask=pad, causal=True))
    axon.save(tmp_path / "m.axon", model, state)
    loaded, loaded_state = axon.load(tmp_path / "m.axon")
    assert loaded.node.opts["implementation"] == "xla"
    close(axon.predict(loaded, loaded_state, inputs), axon.predict(model, state, inputs), rtol=0, atol=0)
    default = axon.multi_head_attention(q, kv, num_heads=2, output_size=4, causal=True, mask=mask, name="mha")
    assert "implementation" not in default.node.opts  # saved graphs without the option are unchanged
    with pytest.raises(ValueError, match=r"implementation must be None, 'xla' or 'cudnn', got 'flash'"):
        axon.multi_head_attention(q, num_heads=2, implementation="flash")
    with pytest.raises(ValueError, match=r"implementation='cudnn' does not support attention dropout"):
        axon.multi_head_attention(q, num_heads=2, implementation="cudnn", dropout_rate=0.1)
