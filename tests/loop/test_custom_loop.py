"""Issue 10.2: a custom ``axon.loop.loop(step_fn, init_fn)`` takes any batch (Axon's GAN
example feeds bare image batches); only a trainer and an evaluator need pairs."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import axon


def test_gan_style_custom_loop_on_bare_arrays():
    latent, features = 4, 6
    gen = axon.input("noise", shape=(None, latent)).pipe(axon.dense, features, activation="tanh")
    disc = axon.input("data", shape=(None, features)).pipe(axon.dense, 1)
    g_init, g_predict = axon.build(gen)
    d_init, d_predict = axon.build(disc)
    g_opt, d_opt = optax.adam(1e-2), optax.adam(1e-2)

    def init_fn(images, init_state):
        assert images.shape == (8, features)  # the bare batch, as given
        g = g_init(axon.template((1, latent)))
        d = d_init(axon.template((1, features)))
        return {"g": g, "d": d, "g_opt": g_opt.init(g.data), "d_opt": d_opt.init(d.data),
                "key": jax.random.key(0), "d_loss": jnp.zeros(()), "g_loss": jnp.zeros(())}

    def bce(logits, label):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, label)))

    def step_fn(s, images):
        key, sub = jax.random.split(s["key"])
        noise = jax.random.normal(sub, (images.shape[0], latent))

        def d_loss(dp):
            fake = g_predict.apply(s["g"].data, noise)
            return bce(d_predict.apply(dp, images), 1.0) + bce(d_predict.apply(dp, fake), 0.0)

        def g_loss(gp):
            return bce(d_predict.apply(s["d"].data, g_predict.apply(gp, noise)), 1.0)

        dl, dg = jax.value_and_grad(d_loss)(s["d"].data)
        d_up, d_opt_state = d_opt.update(dg, s["d_opt"], s["d"].data)
        gl, gg = jax.value_and_grad(g_loss)(s["g"].data)
        g_up, g_opt_state = g_opt.update(gg, s["g_opt"], s["g"].data)
        return {"g": s["g"].update(optax.apply_updates(s["g"].data, g_up)),
                "d": s["d"].update(optax.apply_updates(s["d"].data, d_up)),
                "g_opt": g_opt_state, "d_opt": d_opt_state, "key": key, "d_loss": dl, "g_loss": gl}

    images = np.random.default_rng(0).uniform(-1, 1, size=(5, 8, features)).astype(np.float32)
    lp = (
        axon.loop.loop(step_fn, init_fn)
        .metric(lambda v: v, "d_loss", transform="d_loss")
        .metric(lambda v: v, "g_loss", transform="g_loss")
    )
    final = lp.run(list(images), epochs=2, progress=False)
    assert final.status == "completed" and final.event_counts["iteration_completed"]["total"] == 10
    assert np.isfinite(final.history[1]["d_loss"]) and np.isfinite(final.history[1]["g_loss"])
    # the parameters moved
    start = axon.init(disc, axon.template((1, features)))
    assert not np.allclose(np.asarray(final.step_state["d"]["dense_0"]["kernel"]), np.asarray(start["dense_0"]["kernel"]))


def test_custom_loop_takes_dicts_and_scalars_as_batches():
    total = axon.loop.loop(lambda s, b: s + b["x"].sum(), lambda b, init: jnp.zeros(())).run(
        [{"x": np.ones(3)}, {"x": np.ones(3) * 2}], progress=False
    )
    assert float(total.step_state) == 9.0
    assert int(axon.loop.loop(lambda s, b: s + b, lambda b, i: 0).run([1, 2, 3], jit=False, progress=False).step_state) == 6


def test_trainer_and_evaluator_still_need_pairs():
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1)
    with pytest.raises(ValueError, match="pair \\(inputs, targets\\)"):
        axon.loop.trainer(model, "mean_squared_error", "sgd", log=0).run([np.ones((4, 2), np.float32)])
    state = axon.init(model, axon.template((1, 2)))
    with pytest.raises(ValueError, match="pair \\(inputs, targets\\)"):
        axon.loop.evaluator(model).run([np.ones((4, 2), np.float32)], state)
