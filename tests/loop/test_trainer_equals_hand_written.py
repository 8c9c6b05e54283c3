"""Issue 11.4: ``axon.loop.trainer(model, loss, optax_opt).run(data, epochs=1)`` equals a
hand-written ``jax.value_and_grad`` + optax update loop for N steps, from the same initial
parameters on the same batches."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import axon

N_STEPS = 12
RNG = np.random.default_rng(42)
X = RNG.normal(size=(N_STEPS * 8, 5)).astype(np.float32)
Y = np.sin(X @ RNG.normal(size=(5, 2))).astype(np.float32)
BATCHES = [(X[i : i + 8], Y[i : i + 8]) for i in range(0, len(X), 8)]


def model():
    return (
        axon.input("x", shape=(None, 5))
        .pipe(axon.dense, 16, activation="tanh")
        .pipe(axon.dense, 2)
    )


def hand_written(params, tx):
    """The reference: a plain forward pass, jax.value_and_grad and optax."""

    def forward(p, x):
        h = jnp.tanh(x @ p["w1"] + p["b1"])
        return h @ p["w2"] + p["b2"]

    def loss_fn(p, x, y):
        return jnp.mean((forward(p, x) - y) ** 2)

    @jax.jit
    def step(p, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(p, x, y)
        updates, opt_state = tx.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, loss

    opt_state = tx.init(params)
    losses = []
    for x, y in BATCHES:
        params, opt_state, loss = step(params, opt_state, x, y)
        losses.append(float(loss))
    return params, losses


@pytest.mark.parametrize("steps_per_execution", [1, 4])
@pytest.mark.parametrize("make_tx", [lambda: optax.adam(1e-2), lambda: optax.sgd(0.1, momentum=0.9)], ids=["adam", "sgd"])
def test_trainer_equals_hand_written_value_and_grad_optax_loop(make_tx, steps_per_execution):
    m = model()
    start = axon.init(m, axon.template((1, 5)), seed=7)
    params = {
        "w1": jnp.asarray(start["dense_0"]["kernel"]), "b1": jnp.asarray(start["dense_0"]["bias"]),
        "w2": jnp.asarray(start["dense_1"]["kernel"]), "b2": jnp.asarray(start["dense_1"]["bias"]),
    }
    expected, losses = hand_written(params, make_tx())

    final = axon.loop.trainer(m, "mean_squared_error", make_tx(), log=0).run(
        BATCHES, start, epochs=1, steps_per_execution=steps_per_execution, return_state=True
    )
    assert int(final.step_state["i"]) == N_STEPS
    got = final.step_state["model_state"]
    np.testing.assert_allclose(got["dense_0"]["kernel"], expected["w1"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["dense_0"]["bias"], expected["b1"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["dense_1"]["kernel"], expected["w2"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["dense_1"]["bias"], expected["b2"], rtol=1e-5, atol=1e-6)
    # the epoch's loss is the mean of the per-step losses (before each update)
    np.testing.assert_allclose(final.history[0]["loss"], np.mean(losses), rtol=1e-5)
    # and training moved the parameters (the comparison is not between two copies of the start)
    assert not np.allclose(np.asarray(got["dense_0"]["kernel"]), np.asarray(start["dense_0"]["kernel"]))
