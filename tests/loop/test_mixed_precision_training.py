"""Issue 10.7: float16 training with dynamic loss scaling. Adam's state in float16 loses
its epsilon (1e-8 is 0 in float16) and its second moment underflows, so an update became
0/0 = NaN, the parameters NaN, and every later update was skipped while the loss scale fell
to its floor. Half-precision parameters now get float32 master copies (optimizer state and
updates in float32); an update that is not finite is skipped; a run whose updates are all
skipped warns, naming the loss scale and the cause."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import axon

RNG = np.random.default_rng(0)
X = RNG.normal(size=(128, 8)).astype(np.float32)
Y = (X @ RNG.normal(size=(8, 1)) > 0).astype(np.float32)


def fp16_model(params="f16"):
    model = (
        axon.input("x", shape=(None, 8))
        .pipe(axon.dense, 16, activation="relu")
        .pipe(axon.dense, 1, activation="sigmoid")
    )
    policy = axon.mixed_precision.create_policy(params=params, compute="f16", output="f32")
    return axon.mixed_precision.apply_policy(model, policy)


def test_optax_adam_in_float16_gives_nan_updates_for_zero_gradients():
    # the cause, shown on optax alone: a zero gradient gives 0 / (sqrt(0) + eps16) = 0 / 0
    g = {"w": jnp.array([0.0, 1.0], jnp.float16)}
    tx = optax.adam(1e-2)
    updates, _ = tx.update(g, tx.init(g), g)
    assert np.isnan(np.asarray(updates["w"][0]))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_float16_dynamic_loss_scaling_trains(optimizer):
    tx = axon.optimizers.adam(1e-2) if optimizer == "adam" else axon.optimizers.sgd(0.5)
    loop = axon.loop.trainer(fp16_model(), "binary_cross_entropy", tx, log=0, loss_scale="dynamic")
    final = loop.run((X, Y), batch_size=32, epochs=4, return_state=True)
    losses = [final.history[e]["loss"] for e in range(4)]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0]
    assert np.all(np.diff(losses) < 0)
    ms = final.step_state["model_state"]
    assert ms["dense_0"]["kernel"].dtype == jnp.float16  # the policy's dtype is kept
    assert final.step_state["master_params"]["dense_0"]["kernel"].dtype == jnp.float32
    np.testing.assert_array_equal(
        np.asarray(ms["dense_0"]["kernel"]),
        np.asarray(final.step_state["master_params"]["dense_0"]["kernel"]).astype(np.float16),
    )
    assert int(final.step_state["skipped_updates"]) == 0
    assert float(final.step_state["loss_scale_state"]["loss_scale"]) == 2.0**15


def test_warns_when_every_update_is_skipped():
    # sqrt(|p - y|) at p == y: a finite loss (0) whose gradient is NaN at every step
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1, kernel_initializer="zeros")
    loss = lambda y_true, y_pred: jnp.mean(jnp.sqrt(jnp.abs(y_pred - y_true)))  # noqa: E731
    data = [(np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32))] * 3
    loop = axon.loop.trainer(model, loss, "adam", log=0, loss_scale="dynamic")
    with pytest.warns(RuntimeWarning, match=r"the last 3 updates \(of 3 steps\) were all skipped.*loss scale is now 4096"):
        final = loop.run(data, epochs=2, return_state=True)
    assert int(final.step_state["skipped_updates"]) == 6


def test_no_warning_when_a_skipped_step_is_followed_by_updates(recwarn):
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1)
    x, y = np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32)
    loop = axon.loop.trainer(model, "mean_squared_error", "sgd", log=0, loss_scale="dynamic", on_nonfinite="continue")
    loop.run([(x, y), (x * np.inf, y), (x, y)], epochs=2)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_float16_values_are_unscaled_by_a_scale_beyond_float16s_range():
    # 65536 is infinite in float16: unscaling by it in float16 gave 0 and counted as finite
    init, scale, unscale = axon.loss_scale.dynamic(init_scale=2.0**16)
    state = init()
    grads, new_state = unscale({"w": jnp.array([60000.0, 6.0], jnp.float16)}, state)
    np.testing.assert_allclose(np.asarray(grads["w"], np.float32), [60000 / 65536, 6 / 65536], rtol=1e-3)
    assert grads["w"].dtype == jnp.float16
    assert float(new_state["loss_scale"]) == 2.0**16  # finite: the scale is kept
    scaled = scale({"w": jnp.array([0.5], jnp.float16)}, state)
    assert scaled["w"].dtype == jnp.float16 and float(scaled["w"][0]) == 32768.0
