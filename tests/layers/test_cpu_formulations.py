"""The formulations axon picks for speed give the numbers of the reference formulation they
replace, to float rounding (issue 17): the default attention path (an explicit einsum /
softmax / einsum; a float32 query scaled before the logits are taken, a bfloat16 one's logits
scaled in float32) against ``jax.nn.dot_product_attention``'s XLA path, on the attention
layer's cases (heads, grouped-query, single head, masks, bias, causal, float32 and bfloat16,
values and gradients); max pooling over tiling windows against ``reduce_window``; the layer
norm's and train-mode batch norm's written-out derivatives against autodiff's."""

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


# -- max pooling over non-overlapping windows: strided picks instead of select_and_scatter


POOL_CASES = [
    ((2, 7, 9, 3), (2, 2), "last"),  # odd sizes: the remainder row/column is cropped
    ((2, 3, 8, 6), (2, 3), "first"),
    ((1, 5, 4), (2,), "last"),
    ((2, 4, 4, 4, 2), (2, 2, 2), "last"),
]


def _reduce_window_max(x, kernel, channels):
    dims = (1, *kernel, 1) if channels == "last" else (1, 1, *kernel)
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, dims, dims, "VALID")


@pytest.mark.parametrize("data", ["normal", "ties"])
@pytest.mark.parametrize("shape,kernel,channels", POOL_CASES)
def test_max_pool_equals_reduce_window_values_and_gradients(shape, kernel, channels, data):
    from axon.layers import max_pool

    rng = np.random.default_rng(0)
    # "ties": 0/1 values, so most windows have several maxima (the gradient must go to the
    # first one, as select_and_scatter sends it)
    raw = rng.standard_normal(shape) if data == "normal" else rng.integers(0, 2, shape)
    x = jnp.asarray(raw, jnp.float32)
    ref = _reduce_window_max(x, kernel, channels)
    weights = jnp.arange(1.0, 1.0 + ref.size).reshape(ref.shape)

    def ours(x):
        return (max_pool(x, kernel_size=kernel, channels=channels) * weights).sum()

    def reference(x):
        return (_reduce_window_max(x, kernel, channels) * weights).sum()

    np.testing.assert_array_equal(max_pool(x, kernel_size=kernel, channels=channels), ref)
    np.testing.assert_array_equal(jax.jit(jax.grad(ours))(x), jax.jit(jax.grad(reference))(x))
    tangent = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    np.testing.assert_array_equal(jax.jvp(ours, (x,), (tangent,))[1], jax.jvp(reference, (x,), (tangent,))[1])


def test_max_pool_forward_is_one_reduction_and_second_derivatives_match_reduce_window():
    """Inference runs only the windows' maximum (the first-maximum selection is the
    derivative's business, a custom_jvp); second derivatives still equal reduce_window's."""
    from axon.layers import max_pool

    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((2, 6, 4, 3)), jnp.float32)
    forward = str(jax.make_jaxpr(lambda x: max_pool(x, kernel_size=2))(x))
    assert "reduce_max" in forward and "select_n" not in forward and "eq" not in forward.split()

    def hvp(pool):
        def f(x):
            return (pool(x) ** 2).sum()

        return jax.jvp(jax.grad(f), (x,), (jnp.ones_like(x),))[1]

    ours = hvp(lambda x: max_pool(x, kernel_size=2))
    np.testing.assert_array_equal(ours, hvp(lambda x: _reduce_window_max(x, (2, 2), "last")))
    assert float(jnp.abs(ours).sum()) > 0


def test_max_pool_keeps_reduce_window_for_overlapping_or_padded_windows():
    from axon.layers import max_pool

    x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 6, 6, 3)), jnp.float32)
    for opts in ({"kernel_size": 3, "strides": 2}, {"kernel_size": 2, "padding": "same"}):
        jaxpr = str(jax.make_jaxpr(jax.grad(lambda x, o=opts: max_pool(x, **o).sum()))(x))
        assert "reduce_window_max" in jaxpr or "select_and" in jaxpr
    jaxpr = str(jax.make_jaxpr(jax.grad(lambda x: max_pool(x, kernel_size=2).sum()))(x))
    assert "select_and_scatter" not in jaxpr and "reduce_window" not in jaxpr


def test_max_pool_keeps_reduce_window_for_large_windows():
    from axon.layers import max_pool

    x = jnp.asarray(np.random.default_rng(2).standard_normal((1, 10, 10, 2)), jnp.float32)
    jaxpr = str(jax.make_jaxpr(lambda x: max_pool(x, kernel_size=5))(x))  # 25 entries per window
    assert "reduce_window_max" in jaxpr
    np.testing.assert_array_equal(max_pool(x, kernel_size=5), _reduce_window_max(x, (5, 5), "last"))


# --------------------------------------------------------------------------------------------
# The LSTM: the dynamic unroll's hand-written backward pass


def _gated_case(kind, mask, use_bias, scalar_bias, dtype):
    from axon.layers import recurrent

    spec = recurrent.GATED_CELLS[kind]
    rng = np.random.default_rng(7)
    b, t, f, u = 3, 5, 4, 6

    def draw(shape, scale=0.5):
        return jnp.asarray(rng.normal(size=shape) * scale, dtype)

    ik = {k: draw((f, u)) for k in spec.input_keys}
    hk = {k: draw((u, u)) for k in spec.hidden_keys}
    bias = {k: draw(() if scalar_bias else (u,)) for k in spec.bias_keys} if use_bias else None
    x = draw((b, t, f), 1.0)
    carry = tuple(draw((b, u), 1.0) for _ in spec.carry)
    if mask == "sequence":
        mask = jnp.asarray(rng.random((b, t)) > 0.6, jnp.int32)
    elif mask == "per_example":
        mask = jnp.asarray([[1.0], [0.0], [0.0]], dtype)
    return x, carry, mask, ik, hk, bias


GATED_CASES = [  # kind, mask, bias, scalar biases, gate, dtype, also check a second reverse pass
    ("lstm", None, True, False, "sigmoid", "float32", True),
    ("lstm", None, False, False, "sigmoid", "float32", False),
    ("lstm", "sequence", True, False, "sigmoid", "float32", False),
    ("lstm", "sequence", True, False, "sigmoid", "bfloat16", False),
    ("lstm", "per_example", True, True, "hard_sigmoid", "float32", False),
    ("lstm", 1, True, False, "sigmoid", "float32", False),
    # the GRU's dynamic unroll: kernels concatenated before the loop instead of in its body
    ("gru", None, True, False, "sigmoid", "float32", True),
    ("gru", None, False, False, "sigmoid", "float32", False),
    ("gru", "sequence", True, False, "sigmoid", "float32", False),
    ("gru", "sequence", True, False, "sigmoid", "bfloat16", False),
    ("gru", "per_example", True, True, "hard_sigmoid", "float32", False),
]


@pytest.mark.parametrize("kind,mask,use_bias,scalar_bias,gate,dtype,second_order", GATED_CASES)
def test_gated_dynamic_unroll_equals_autodiff_of_the_cell_loop(kind, mask, use_bias, scalar_bias, gate, dtype,
                                                                second_order):
    """``lstm(unroll="dynamic")`` (a ``lax.scan`` with a hand-written backward pass that takes
    the kernels' gradients after the loop) against ``dynamic_unroll(lstm_cell)``
    differentiated by JAX: the same outputs bit for bit, gradients (inputs, initial state,
    kernels, biases) to float rounding, and in two cases ``grad`` of a gradient too. The same
    for ``gru(unroll="dynamic")`` (its gate kernels concatenated once, before the loop, so that
    an inference ``predict_fn`` does it once per state), plus forward mode."""
    import functools

    from axon.layers import gru, gru_cell, lstm, lstm_cell
    from axon.layers.recurrent import dynamic_unroll

    layer, cell = (lstm, lstm_cell) if kind == "lstm" else (gru, gru_cell)
    x, carry, mask, ik, hk, bias = _gated_case(kind, mask, use_bias, scalar_bias, dtype)

    def ours(x, carry, ik, hk, bias):
        return layer(x, carry, mask, ik, hk, bias, unroll="dynamic", gate=gate, activation="tanh")

    def reference(x, carry, ik, hk, bias):
        step = functools.partial(cell, gate_fn=axon.activations.get(gate), activation_fn=jnp.tanh)
        return dynamic_unroll(step, x, carry, mask, ik, hk, bias)

    def loss(f):
        def value(*args):
            out, final = f(*args)
            weights = jnp.linspace(-1.0, 1.0, out.size).reshape(out.shape)
            return jnp.sum(out.astype(jnp.float32) * weights) + sum(jnp.sum(c.astype(jnp.float32) ** 2) for c in final)
        return value

    args = (x, carry, ik, hk, bias)
    for got, want in zip(jax.tree.leaves(jax.jit(ours)(*args)), jax.tree.leaves(jax.jit(reference)(*args)), strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(want, np.float32))
    argnums = (0, 1, 2, 3, 4) if use_bias else (0, 1, 2, 3)
    grads = jax.jit(jax.grad(loss(ours), argnums=argnums))(*args)
    ref_grads = jax.jit(jax.grad(loss(reference), argnums=argnums))(*args)
    tol = 1e-5 if dtype == "float32" else 5e-2
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads), strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        scale = max(1.0, float(np.abs(np.asarray(want, np.float32)).max()))
        np.testing.assert_allclose(np.asarray(got, np.float32), np.asarray(want, np.float32), rtol=tol, atol=tol * scale)
    if kind == "gru":  # no custom_vjp: forward mode too
        tangents = jax.tree.map(lambda a: jnp.ones_like(a) * 0.1, args)
        got = jax.jit(lambda a, t: jax.jvp(ours, a, t))(args, tangents)
        want = jax.jit(lambda a, t: jax.jvp(reference, a, t))(args, tangents)
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(np.asarray(g, np.float32), np.asarray(w, np.float32), rtol=tol, atol=tol)
    if second_order:
        def second(f):
            return lambda x, *rest: jnp.sum(jax.grad(loss(f))(x, *rest) ** 2)

        np.testing.assert_allclose(
            jax.jit(jax.grad(second(ours)))(*args), jax.jit(jax.grad(second(reference)))(*args), rtol=1e-4, atol=1e-5
        )


def test_gated_layer_graph_training_equals_autodiff_of_the_cell_loop():
    """The graph ``axon.lstm`` (``unroll="dynamic"``, the default) trains with the gradients of
    ``dynamic_unroll(lstm_cell)`` on its own parameters."""
    import functools

    from axon.layers import lstm_cell
    from axon.layers.recurrent import dynamic_unroll

    x = jnp.asarray(np.random.default_rng(3).normal(size=(2, 4, 3)), jnp.float32)
    _, (_, h) = axon.lstm(axon.input("x", shape=(None, 4, 3)), 5)
    init_fn, predict_fn = axon.build(h)
    params = init_fn(axon.template((2, 4, 3))).data

    def reference(params):
        p = params["lstm_0"]
        step = functools.partial(lstm_cell, gate_fn=jax.nn.sigmoid, activation_fn=jnp.tanh)
        zeros = jnp.zeros((2, 5))
        return jnp.sum(dynamic_unroll(step, x, (zeros, zeros), None, p["input_kernel"], p["hidden_kernel"], p["bias"])[1][1] ** 2)

    grads = jax.grad(lambda p: jnp.sum(predict_fn.apply(p, x) ** 2))(params)
    ref = jax.grad(reference)(params)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(ref), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_dynamic_lstm_is_reverse_mode_only_and_static_keeps_forward_mode():
    """The documented limit of the hand-written backward pass: ``jax.jvp`` of
    ``lstm(unroll="dynamic")`` raises (JAX's custom_vjp error), while ``unroll="static"`` gives
    the tangent of the cell loop."""
    from axon.layers import lstm

    x, carry, _, ik, hk, bias = _gated_case("lstm", None, True, False, "float32")

    def run(unroll):
        return lambda x: lstm(x, carry, None, ik, hk, bias, unroll=unroll)[0]

    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(run("dynamic"), (x,), (jnp.ones_like(x),))
    _, tangent = jax.jvp(run("static"), (x,), (jnp.ones_like(x),))
    eps = 1e-3
    numeric = (run("static")(x + eps) - run("static")(x - eps)) / (2 * eps)
    np.testing.assert_allclose(tangent, numeric, rtol=1e-2, atol=1e-3)


def test_dynamic_lstm_gradient_under_vmap_equals_autodiff_of_the_cell_loop():
    """``vmap(grad(...))`` batches the hand-written backward pass like autodiff's."""
    import functools

    from axon.layers import lstm, lstm_cell
    from axon.layers.recurrent import dynamic_unroll

    _, carry, _, ik, hk, bias = _gated_case("lstm", None, True, False, "float32")
    xs = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3, 5, 4)), jnp.float32)
    cell = functools.partial(lstm_cell, gate_fn=jax.nn.sigmoid, activation_fn=jnp.tanh)

    def ours(ik, x):
        return jnp.sum(lstm(x, carry, None, ik, hk, bias, unroll="dynamic")[0] ** 2)

    def reference(ik, x):
        return jnp.sum(dynamic_unroll(cell, x, carry, None, ik, hk, bias)[0] ** 2)

    got = jax.vmap(jax.grad(ours), in_axes=(None, 0))(ik, xs)
    want = jax.vmap(jax.grad(reference), in_axes=(None, 0))(ik, xs)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)

# -- layer norm: a written-out derivative instead of autodiff's (same math, shorter gradient graph)


def _autodiff_layer_norm(x, gamma, beta, channel_index, epsilon):
    # the formulation axon used before (plain autodiff through the two-pass variance)
    xc = x.astype(jnp.float32)
    mu = jnp.mean(xc, axis=channel_index, keepdims=True)
    v = jnp.mean(jnp.square(xc - mu), axis=channel_index, keepdims=True)
    y = (xc - mu) * jax.lax.rsqrt(v + epsilon)
    shape = [1] * x.ndim
    shape[channel_index] = x.shape[channel_index]
    if gamma is not None:
        y = y * gamma.reshape(shape)
    if beta is not None:
        y = y + beta.reshape(shape)
    return y.astype(x.dtype)


LAYER_NORM_CASES = [
    # shape, channel_index, gamma, beta, offset (a large mean makes the variance ill-conditioned), dtype
    ((4, 7), -1, True, True, 0.0, "float32"),
    ((2, 3, 6), -1, True, False, 3.0, "float32"),
    ((2, 6, 3), 1, False, True, 0.0, "float32"),
    ((3, 5), 0, False, False, 0.0, "float32"),
    ((2, 8, 16), -1, True, True, 100.0, "float32"),
    ((2, 4, 32), -1, True, True, 5.0, "bfloat16"),
]


@pytest.mark.parametrize("shape,channel_index,with_gamma,with_beta,offset,dtype", LAYER_NORM_CASES)
def test_layer_norm_equals_autodiff_values_and_derivatives(shape, channel_index, with_gamma, with_beta, offset, dtype):
    from axon.layers import layer_norm

    rng = np.random.default_rng(3)
    c = shape[channel_index]
    x = jnp.asarray(rng.standard_normal(shape) * 2 + offset, dtype)
    gamma = jnp.asarray(rng.standard_normal(c), jnp.float32) if with_gamma else None
    beta = jnp.asarray(rng.standard_normal(c), jnp.float32) if with_beta else None
    weights = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    eps = 1e-5

    def derivatives(fn):
        # values, reverse mode (the training gradient) for the input and both parameters,
        # forward mode and a Hessian-vector product (custom_jvp keeps those working), in one
        # compiled program per formulation
        def loss(x, g, b):
            return (fn(x, g, b).astype(jnp.float32) ** 2 * weights).sum()

        def run(x, g, b, t):
            grads = jax.grad(loss, (0, 1, 2))(x, g, b)
            forward = jax.jvp(lambda x: loss(x, g, b), (x,), (t,))[1]
            hvp = jax.jvp(jax.grad(lambda x: loss(x, g, b)), (x,), (t,))[1]
            return fn(x, g, b), grads, forward, hvp

        return jax.jit(run)

    tangent = jnp.asarray(rng.standard_normal(shape), dtype)
    out, grads, forward, hvp = derivatives(
        lambda x, g, b: layer_norm(x, g, b, epsilon=eps, channel_index=channel_index))(x, gamma, beta, tangent)
    ref, ref_grads, ref_forward, ref_hvp = derivatives(
        lambda x, g, b: _autodiff_layer_norm(x, g, b, channel_index, eps))(x, gamma, beta, tangent)
    # values: the same operations, so equal bit for bit
    np.testing.assert_array_equal(np.asarray(out, np.float32), np.asarray(ref, np.float32))
    tol = 1e-5 if dtype == "float32" else 1e-2
    for g, w in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(ref_grads), strict=True):
        scale = float(np.abs(np.asarray(w, np.float32)).max())
        np.testing.assert_allclose(np.asarray(g, np.float32), np.asarray(w, np.float32), rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(float(forward), float(ref_forward), rtol=tol * 10, atol=tol)
    scale = float(np.abs(np.asarray(ref_hvp, np.float32)).max())
    np.testing.assert_allclose(np.asarray(hvp, np.float32), np.asarray(ref_hvp, np.float32),
                               rtol=tol * 10, atol=tol * 10 * scale)


def test_layer_norm_layer_gradients_equal_autodiff(monkeypatch):
    # the graph layer in a small transformer-style residual stack, trained one step: parameter
    # gradients with the written-out derivative against the same model with autodiff's
    x = axon.input("x", shape=(None, 6, 16))
    h = x
    for _ in range(2):
        h = axon.add(h, axon.dense(axon.layer_norm(h), 16, activation="gelu"))
    model = axon.layer_norm(h).pipe(axon.dense, 3)
    init_fn, predict_fn = axon.build(model, mode="train")
    state = init_fn()
    xs = jnp.asarray(np.random.default_rng(4).standard_normal((3, 6, 16)) * 3 + 1, jnp.float32)

    def grads(predict):
        def f(p):
            return (predict(state.update(p), xs).prediction ** 2).sum()

        return jax.jit(jax.grad(f))(state.trainable_parameters())

    got = grads(predict_fn)
    import axon.layers.normalization as normalization

    monkeypatch.setattr(normalization, "_layer_norm", lambda x, g, b, axis, eps: _autodiff_layer_norm(x, g, b, axis, eps))
    _, reference_fn = axon.build(model, mode="train")
    want = grads(reference_fn)
    for (path, g), w in zip(jax.tree_util.tree_leaves_with_path(got), jax.tree_util.tree_leaves(want), strict=True):
        scale = float(np.abs(np.asarray(w)).max())
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-5 * scale, err_msg=str(path))

# -- batch norm (train mode): a written-out derivative instead of autodiff's two-pass variance chain


def _autodiff_batch_norm(x, gamma, beta, axes, epsilon):
    # the formulation axon used before: two-pass statistics, gamma folded into the rsqrt,
    # differentiated by autodiff
    xc = x.astype(jnp.float32)
    mu = jnp.mean(xc, axis=axes, keepdims=True)
    v = jnp.mean(jnp.square(xc - mu), axis=axes, keepdims=True)
    scale = jax.lax.rsqrt(v + epsilon)
    if gamma is not None:
        scale = scale * gamma
    y = (xc - mu) * scale
    if beta is not None:
        y = y + beta
    return y.astype(x.dtype), mu, v


BATCH_NORM_CASES = [
    # shape, channel_index, gamma, beta, offset (a large mean makes the variance ill-conditioned), instance, dtype
    ((8, 5, 5, 4), -1, True, True, 0.0, False, "float32"),
    ((6, 3, 4, 4), 1, True, False, 3.0, False, "float32"),
    ((16, 7), -1, False, True, 0.0, False, "float32"),
    ((4, 6, 3), -1, False, False, 0.0, True, "float32"),
    ((8, 4, 4, 8), -1, True, True, 50.0, False, "float32"),
    ((8, 4, 4, 8), -1, True, True, 2.0, False, "bfloat16"),
]


@pytest.mark.parametrize("shape,channel_index,with_gamma,with_beta,offset,instance,dtype", BATCH_NORM_CASES)
def test_batch_norm_equals_autodiff_values_and_derivatives(shape, channel_index, with_gamma, with_beta, offset,
                                                           instance, dtype):
    from axon.layers import batch_norm, instance_norm

    rng = np.random.default_rng(5)
    axis = channel_index % len(shape)
    c = shape[axis]
    axes = tuple(a for a in range(len(shape)) if a != axis and not (instance and a == 0))
    bshape = [1] * len(shape)
    bshape[axis] = c
    x = jnp.asarray(rng.standard_normal(shape) * 2 + offset, dtype)
    gamma = jnp.asarray(rng.standard_normal(c), jnp.float32) if with_gamma else None
    beta = jnp.asarray(rng.standard_normal(c), jnp.float32) if with_beta else None
    weights = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    eps = 1e-5
    norm = instance_norm if instance else batch_norm

    def ours(x, g, b):
        out = norm(x, g, b, jnp.zeros(c), jnp.ones(c), channel_index=channel_index, epsilon=eps, mode="train")
        return out.output, out.state

    def reference(x, g, b):
        g = None if g is None else g.reshape(bshape)
        b = None if b is None else b.reshape(bshape)
        y, mu, v = _autodiff_batch_norm(x, g, b, axes, eps)
        n = np.prod([shape[a] for a in axes])
        mu, v = mu.reshape(-1, c).mean(0), (v * (n / (n - 1))).reshape(-1, c).mean(0)
        return y, {"mean": 0.1 * jax.lax.stop_gradient(mu), "var": 0.9 + 0.1 * jax.lax.stop_gradient(v)}

    def derivatives(fn):
        # values and running statistics; reverse mode for the input and both parameters;
        # forward mode and a Hessian-vector product (custom_jvp keeps those working)
        def loss(x, g, b):
            return (fn(x, g, b)[0].astype(jnp.float32) ** 2 * weights).sum()

        def run(x, g, b, t):
            grads = jax.grad(loss, (0, 1, 2))(x, g, b)
            forward = jax.jvp(lambda x: loss(x, g, b), (x,), (t,))[1]
            hvp = jax.jvp(jax.grad(lambda x: loss(x, g, b)), (x,), (t,))[1]
            return fn(x, g, b), grads, forward, hvp

        return jax.jit(run)

    tangent = jnp.asarray(rng.standard_normal(shape), dtype)
    (out, stats), grads, forward, hvp = derivatives(ours)(x, gamma, beta, tangent)
    (ref, ref_stats), ref_grads, ref_forward, ref_hvp = derivatives(reference)(x, gamma, beta, tangent)
    # values: the same operations, so equal bit for bit
    np.testing.assert_array_equal(np.asarray(out, np.float32), np.asarray(ref, np.float32))
    for k in ("mean", "var"):
        np.testing.assert_allclose(stats[k], ref_stats[k], rtol=1e-6, atol=1e-7)
    tol = 1e-5 if dtype == "float32" else 1e-2
    for g, w in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(ref_grads), strict=True):
        scale = float(np.abs(np.asarray(w, np.float32)).max())
        np.testing.assert_allclose(np.asarray(g, np.float32), np.asarray(w, np.float32), rtol=tol * 10,
                                   atol=tol * scale * (1 + offset))
    np.testing.assert_allclose(float(forward), float(ref_forward), rtol=tol * 10, atol=tol)
    scale = float(np.abs(np.asarray(ref_hvp, np.float32)).max())
    np.testing.assert_allclose(np.asarray(hvp, np.float32), np.asarray(ref_hvp, np.float32),
                               rtol=tol * 10, atol=tol * 10 * scale * (1 + offset))


def test_batch_norm_layer_gradients_equal_autodiff(monkeypatch):
    # the graph layer in a small residual CNN, one training step's parameter gradients and
    # running statistics, with the written-out derivative against autodiff's
    x = axon.input("x", shape=(None, 6, 6, 3))
    h = axon.conv(x, 8, kernel_size=3, padding="same", use_bias=False).pipe(axon.batch_norm).pipe(axon.relu)
    y = axon.conv(h, 8, kernel_size=3, padding="same", use_bias=False).pipe(axon.batch_norm)
    h = axon.relu(axon.add(h, y))
    model = h.pipe(axon.global_avg_pool).pipe(axon.dense, 3)
    init_fn, predict_fn = axon.build(model, mode="train")
    state = init_fn()
    xs = jnp.asarray(np.random.default_rng(6).standard_normal((4, 6, 6, 3)) + 1, jnp.float32)

    def grads(predict):
        def f(p):
            out = predict(state.update(p), xs)
            return (out.prediction ** 2).sum(), out.state

        return jax.jit(jax.grad(f, has_aux=True))(state.trainable_parameters())

    got, got_state = grads(predict_fn)
    import axon.layers.normalization as normalization

    def autodiff(x, g, b, axes, eps):
        return _autodiff_batch_norm(x, g, b, axes, eps)

    monkeypatch.setattr(normalization, "_batch_normalize", autodiff)
    _, reference_fn = axon.build(model, mode="train")
    want, want_state = grads(reference_fn)
    for (path, g), w in zip(jax.tree_util.tree_leaves_with_path(got), jax.tree_util.tree_leaves(want), strict=True):
        scale = float(np.abs(np.asarray(w)).max())
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-5 * scale, err_msg=str(path))
    for g, w in zip(jax.tree_util.tree_leaves(got_state), jax.tree_util.tree_leaves(want_state), strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
