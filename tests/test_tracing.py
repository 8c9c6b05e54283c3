"""trace_init / trace_forward / trace_backward: the jaxprs hold the model's operations and,
evaluated, give the numbers of a numpy forward pass and of hand-derived gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon


def model():
    return axon.input("x", shape=(None, 3)).pipe(axon.dense, 4, activation="relu").pipe(axon.dense, 1)


X = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
Y = np.random.default_rng(1).normal(size=(6, 1)).astype(np.float32)


def run(closed, *args):
    return jax.core.eval_jaxpr(closed.jaxpr, closed.consts, *jax.tree_util.tree_leaves(args))


def primitives(closed):
    """Every primitive name in a jaxpr, nested jaxprs (jit, custom_jvp...) included."""
    names = set()

    def walk(jaxpr):
        jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
        for eqn in jaxpr.eqns:
            names.add(eqn.primitive.name)
            for value in eqn.params.values():
                for v in value if isinstance(value, (tuple, list)) else (value,):
                    if hasattr(v, "eqns") or hasattr(getattr(v, "jaxpr", None), "eqns"):
                        walk(v)

    walk(closed)
    return names


def test_trace_init_outputs_every_parameter():
    jaxpr = axon.trace_init(model(), axon.template((1, 3)))
    assert type(jaxpr).__name__ == "ClosedJaxpr"
    shapes = sorted(tuple(v.aval.shape) for v in jaxpr.jaxpr.outvars)
    assert shapes == sorted([(3, 4), (4,), (4, 1), (1,)])
    assert "random_bits" in str(jaxpr)  # glorot_uniform kernels are sampled


def test_trace_init_with_given_parameters_uses_them():
    kernel = np.arange(12, dtype=np.float32).reshape(3, 4)
    jaxpr = axon.trace_init(model(), axon.template((1, 3)), {"dense_0": {"kernel": kernel}})
    assert [tuple(v.aval.shape) for v in jaxpr.jaxpr.invars] == [(3, 4)]
    out = run(jaxpr, {"dense_0": {"kernel": kernel}})
    # outputs in the order of the sorted state dict: dense_0/bias, dense_0/kernel, dense_1/...
    np.testing.assert_array_equal(out[1], kernel)


def test_trace_forward_holds_dense_and_relu_and_evaluates_like_numpy():
    m = model()
    state = axon.init(m, axon.template((1, 3)))
    jaxpr = axon.trace_forward(m, axon.template((6, 3)), state)
    assert {"dot_general", "max", "add"} <= primitives(jaxpr)
    (out,) = run(jaxpr, state, X)
    d0, d1 = state["dense_0"], state["dense_1"]
    h = np.maximum(X @ np.asarray(d0["kernel"]) + np.asarray(d0["bias"]), 0)
    np.testing.assert_allclose(out, h @ np.asarray(d1["kernel"]) + np.asarray(d1["bias"]), rtol=1e-5, atol=1e-6)
    # arrays work as well as templates
    assert str(axon.trace_forward(m, X, state)) == str(jaxpr)


def test_trace_forward_train_mode_returns_state_updates():
    m = axon.input("x", shape=(None, 3)).pipe(axon.batch_norm)
    state = axon.init(m, axon.template((2, 3)), mode="train")
    jaxpr = axon.trace_forward(m, axon.template((2, 3)), state, mode="train")
    assert len(jaxpr.jaxpr.outvars) == 3  # prediction, new mean, new var
    inference = axon.trace_forward(m, axon.template((2, 3)), state)
    assert len(inference.jaxpr.outvars) == 1


def test_trace_backward_is_the_gradient_of_the_loss():
    m = axon.input("x", shape=(None, 3)).pipe(axon.dense, 1)
    state = axon.init(m, axon.template((1, 3)))

    def mse(y_true, y_pred):
        return jnp.mean((y_pred - y_true) ** 2)

    jaxpr = axon.trace_backward(m, axon.template((6, 3)), state, mse)
    assert "dot_general" in primitives(jaxpr)
    grads = run(jaxpr, state.trainable_parameters(), X, Y)
    # hand-derived: d/dW mean((XW + b - Y)^2) = 2/N X^T r, d/db = 2/N sum(r)
    k, b = np.asarray(state["dense_0"]["kernel"]), np.asarray(state["dense_0"]["bias"])
    r = X @ k + b - Y
    expected = {"bias": 2 / 6 * r.sum(axis=0), "kernel": 2 / 6 * X.T @ r}
    leaves = jax.tree_util.tree_leaves({"dense_0": expected})
    for got, want in zip(grads, leaves):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_trace_backward_builds_in_train_mode_and_skips_frozen_parameters():
    m = axon.input("x", shape=(None, 3)).pipe(axon.dense, 4).pipe(axon.dropout, rate=0.5).pipe(axon.dense, 1)
    state = axon.init(m, axon.template((1, 3)), mode="train").freeze(lambda p: p[0] == "dense_0")
    jaxpr = axon.trace_backward(m, axon.template((6, 3)), state, lambda y, p: jnp.sum((y - p) ** 2))
    assert "random_bits" in str(jaxpr)  # dropout runs: train mode
    assert sorted(tuple(v.aval.shape) for v in jaxpr.jaxpr.outvars) == [(1,), (4, 1)]  # dense_1 only


def test_trace_errors():
    m = model()
    state = axon.init(m, axon.template((1, 3)))
    with pytest.raises(ValueError, match="scalar"):
        axon.trace_backward(m, axon.template((6, 3)), state, lambda y, p: (y - p) ** 2)
    with pytest.raises(TypeError, match="mode"):
        axon.trace_backward(m, axon.template((6, 3)), state, lambda y, p: jnp.sum(p), mode="inference")
    with pytest.raises(TypeError, match="jit"):
        axon.trace_forward(m, axon.template((6, 3)), state, jit=True)
    with pytest.raises(TypeError, match="loss_fn"):
        axon.trace_backward(m, axon.template((6, 3)), state, "mse")
    with pytest.raises(ValueError, match="mode"):
        axon.trace_forward(m, axon.template((6, 3)), state, mode="eval")
