"""axon.updates: each transform against its formula written out in numpy, composition
forms, custom transforms and apply_updates."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from axon import updates as U

RNG = np.random.default_rng(1)
GRADS = [RNG.normal(size=(3, 2)).astype(np.float32) for _ in range(4)]
PARAMS = RNG.normal(size=(3, 2)).astype(np.float32)


def _run(t, grads=GRADS, params=PARAMS):
    """Feed a sequence of gradients through ``t``; return the list of updates (numpy)."""
    state = t.init(jnp.asarray(params))
    out = []
    for g in grads:
        u, state = t.update(jnp.asarray(g), state, jnp.asarray(params))
        out.append(np.asarray(u))
    return out


def _check(t, reference, rtol=1e-5, atol=1e-6):
    ours = _run(t)
    ref = reference([g.astype(np.float64) for g in GRADS], PARAMS.astype(np.float64))
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _ema_ref(grads, decay, order, init=0.0):
    z, out = init, []
    for g in grads:
        z = decay * z + (1 - decay) * g**order
        out.append(z)
    return out


def test_scale():
    _check(U.scale(-0.3), lambda gs, p: [-0.3 * g for g in gs])


def test_scale_by_adam():
    b1, b2, eps, eps_root = 0.8, 0.95, 1e-6, 1e-10

    def ref(gs, p):
        ms, vs = _ema_ref(gs, b1, 1), _ema_ref(gs, b2, 2)
        return [
            (m / (1 - b1 ** (t + 1))) / (np.sqrt(v / (1 - b2 ** (t + 1)) + eps_root) + eps)
            for t, (m, v) in enumerate(zip(ms, vs, strict=True))
        ]

    _check(U.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root), ref)


def test_scale_by_rss():
    init, eps = 0.1, 1e-7

    def ref(gs, p):
        s, out = init, []
        for g in gs:
            s = s + g**2
            out.append(g / np.sqrt(s + eps))
        return out

    _check(U.scale_by_rss(initial_accumulator_value=init, eps=eps), ref)


def test_scale_by_rms():
    decay, eps, init = 0.7, 1e-8, 0.5

    def ref(gs, p):
        return [g / np.sqrt(v + eps) for g, v in zip(gs, _ema_ref(gs, decay, 2, init), strict=True)]

    _check(U.scale_by_rms(decay=decay, eps=eps, initial_scale=init), ref)


def test_scale_by_stddev():
    decay, eps = 0.7, 1e-8

    def ref(gs, p):
        ms, vs = _ema_ref(gs, decay, 1), _ema_ref(gs, decay, 2)
        return [g / np.sqrt(v - m**2 + eps) for g, m, v in zip(gs, ms, vs, strict=True)]

    _check(U.scale_by_stddev(decay=decay, eps=eps), ref, rtol=1e-4)


def test_scale_by_belief_uses_prediction_error():
    b1, b2, eps, eps_root = 0.9, 0.99, 1e-8, 1e-16

    def ref(gs, p):
        m, s, out = 0.0, 0.0, []
        for t, g in enumerate(gs):
            m = b1 * m + (1 - b1) * g
            s = b2 * s + (1 - b2) * (g - m) ** 2 + eps_root
            out.append((m / (1 - b1 ** (t + 1))) / (np.sqrt(s / (1 - b2 ** (t + 1))) + eps))
        return out

    _check(U.scale_by_belief(b1=b1, b2=b2, eps=eps, eps_root=eps_root), ref, rtol=1e-4)


def test_scale_by_yogi():
    b1, b2, eps, init = 0.9, 0.99, 1e-3, 1e-6

    def ref(gs, p):
        m, v, out = init, init, []
        for t, g in enumerate(gs):
            m = b1 * m + (1 - b1) * g
            v = v - (1 - b2) * np.sign(v - g**2) * g**2
            out.append((m / (1 - b1 ** (t + 1))) / (np.sqrt(v / (1 - b2 ** (t + 1))) + eps))
        return out

    _check(U.scale_by_yogi(b1=b1, b2=b2), ref, rtol=1e-4)


def test_scale_by_radam():
    # b2 = 0.9 gives rho_inf = 19 and rho_t = 1, 1.95, 2.86, 3.74, 4.58, 5.39, 6.1 for
    # t = 1..7: five plain bias-corrected steps, then rectified ones (threshold 5).
    b1, b2, eps = 0.9, 0.9, 1e-8
    rho_inf = 2 / (1 - b2) - 1
    grads = [RNG.normal(size=(3, 2)).astype(np.float32) for _ in range(7)]

    ms = _ema_ref([g.astype(np.float64) for g in grads], b1, 1)
    vs = _ema_ref([g.astype(np.float64) for g in grads], b2, 2)
    expected = []
    for t, (m, v) in enumerate(zip(ms, vs, strict=True), start=1):
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho >= 5.0:
            r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            expected.append(r * m_hat / (np.sqrt(v_hat) + eps))
        else:
            expected.append(m_hat)
    ours = _run(U.scale_by_radam(b1=b1, b2=b2, eps=eps), grads=grads)
    for a, b in zip(ours, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_trace_and_nesterov():
    decay = 0.6

    def ref(nesterov):
        def f(gs, p):
            t, out = 0.0, []
            for g in gs:
                t = decay * t + g
                out.append(g + decay * t if nesterov else t)
            return out

        return f

    _check(U.trace(decay=decay), ref(False))
    _check(U.trace(decay=decay, nesterov=True), ref(True))


def test_clip():
    _check(U.clip(delta=0.5), lambda gs, p: [np.clip(g, -0.5, 0.5) for g in gs])
    _check(U.clip(), lambda gs, p: [np.clip(g, -2.0, 2.0) for g in gs])


def test_clip_by_global_norm():
    grads = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[4.0]])}
    t = U.clip_by_global_norm(max_norm=2.0)
    out, _ = t.update(grads, t.init(grads))
    # global norm 5 -> scale 2/5
    np.testing.assert_allclose(np.asarray(out["a"]), [1.2, 0.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(out["b"]), [[1.6]], rtol=1e-6)
    small, _ = U.clip_by_global_norm(max_norm=10.0).update(grads, t.init(grads))
    np.testing.assert_allclose(np.asarray(small["a"]), [3.0, 0.0])


def test_centralize():
    _check(U.centralize(), lambda gs, p: [g - g.mean(axis=1, keepdims=True) for g in gs])
    vec = jnp.array([1.0, 2.0])  # rank 1 is left alone
    t = U.centralize()
    np.testing.assert_allclose(np.asarray(t.update(vec, t.init(vec))[0]), [1.0, 2.0])


def test_add_decayed_weights():
    _check(U.add_decayed_weights(decay=0.3), lambda gs, p: [g + 0.3 * p for g in gs])


def test_scale_by_trust_ratio():
    def ref(gs, p):
        return [g * 1.5 * np.linalg.norm(p) / (np.linalg.norm(g) + 1e-3) for g in gs]

    _check(U.scale_by_trust_ratio(trust_coefficient=1.5, eps=1e-3), ref, rtol=1e-4)
    # zero parameters: ratio 1
    t = U.scale_by_trust_ratio()
    z = jnp.zeros(2)
    np.testing.assert_allclose(
        np.asarray(t.update(jnp.array([1.0, 2.0]), t.init(z), z)[0]), [1.0, 2.0]
    )


def test_add_noise_statistics():
    eta, gamma = 0.3, 0.55
    t = U.add_noise(eta=eta, gamma=gamma, seed=7)
    g = jnp.full(20000, 1.0)
    state = t.init(g)
    for step in range(3):
        u, state = t.update(g, state)
        noise = np.asarray(u) - 1.0
        expected_std = math.sqrt(eta / (1 + step) ** gamma)
        assert abs(noise.std() / expected_std - 1) < 0.03
        assert abs(noise.mean()) < 0.05 * expected_std


def test_scale_by_schedule():
    _check(
        U.scale_by_schedule(lambda c: 0.5**c),
        lambda gs, p: [g * 0.5**t for t, g in enumerate(gs)],
    )


def test_scale_by_state_can_be_changed_at_run_time():
    t = U.scale_by_state(-0.1)
    x = jnp.array([2.0])
    state = t.init(x)
    u, state = t.update(x, state)
    np.testing.assert_allclose(np.asarray(u), [-0.2], rtol=1e-6)
    state = state._replace(hyperparams={"step_size": jnp.asarray(-0.01)})
    u, state = jax.jit(t.update)(x, state)
    np.testing.assert_allclose(np.asarray(u), [-0.02], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Composition


def test_three_composition_forms_agree():
    lr = 0.05
    forms = [
        U.scale_by_adam().pipe(U.clip, delta=0.5).pipe(U.scale, -lr),
        U.scale(U.clip(U.scale_by_adam(), delta=0.5), -lr),
        optax.chain(U.scale_by_adam(), U.clip(delta=0.5), U.scale(-lr)),
        U.compose(U.scale_by_adam(), U.clip(delta=0.5), U.scale(-lr)),
    ]
    results = [_run(f) for f in forms]

    def ref(gs, p):
        ms, vs = _ema_ref(gs, 0.9, 1), _ema_ref(gs, 0.999, 2)
        return [
            -lr
            * np.clip((m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t) + 1e-15) + 1e-8), -0.5, 0.5)
            for t, (m, v) in enumerate(zip(ms, vs, strict=True), start=1)
        ]

    expected = ref([g.astype(np.float64) for g in GRADS], None)
    for res in results:
        for a, b in zip(res, expected, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8)


def test_order_matters():
    # clip then scale vs scale then clip
    g = [np.array([4.0], np.float32)]
    a = _run(U.clip(delta=1.0).pipe(U.scale, 0.5), grads=g, params=np.zeros(1, np.float32))
    b = _run(U.scale(0.5).pipe(U.clip, delta=1.0), grads=g, params=np.zeros(1, np.float32))
    assert a[0].tolist() == [0.5] and b[0].tolist() == [1.0]


def test_identity():
    _check(U.identity(), lambda gs, p: gs)


def test_stateless_custom_transform():
    def my_scale(combinator=None, step=1.0):
        return U.stateless(combinator, lambda u, p: jax.tree.map(lambda x: x * step, u))

    _check(my_scale(step=-2.0), lambda gs, p: [-2.0 * g for g in gs])
    _check(
        U.clip(delta=0.5).pipe(my_scale, step=3.0),
        lambda gs, p: [3.0 * np.clip(g, -0.5, 0.5) for g in gs],
    )


def test_stateful_launch_post_scale_by_stddev_matches_builtin():
    def my_scale_by_stddev(combinator=None, *, decay=0.9, eps=1e-8, initial_scale=0.0):
        def init(params):
            mu = jax.tree.map(jnp.zeros_like, params)
            nu = jax.tree.map(lambda p: jnp.full_like(p, initial_scale), params)
            return (mu, nu)

        def apply(updates, state, params):
            mu, nu = state
            mu = jax.tree.map(lambda g, m: decay * m + (1 - decay) * g, updates, mu)
            nu = jax.tree.map(lambda g, n: decay * n + (1 - decay) * g**2, updates, nu)
            updates = jax.tree.map(
                lambda g, m, n: g * jax.lax.rsqrt(n - m**2 + eps), updates, mu, nu
            )
            return updates, (mu, nu)

        return U.stateful(combinator, init, apply)

    custom = U.scale_by_adam().pipe(my_scale_by_stddev).pipe(U.scale, -1e-3)
    builtin = U.scale_by_adam().pipe(U.scale_by_stddev).pipe(U.scale, -1e-3)
    for a, b in zip(_run(custom), _run(builtin), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)
    # and it works under jit with a pytree of parameters
    params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
    state = custom.init(params)
    u, _ = jax.jit(custom.update)(params, state, params)
    assert u["w"].shape == (2, 2)


def test_apply_updates():
    params = {
        "dense": {"kernel": jnp.ones(2, jnp.bfloat16)},
        "bn": {"mean": jnp.zeros(2), "var": jnp.ones(2)},
    }
    updates = {
        "dense": {"kernel": jnp.full(2, 0.5, jnp.float32)},
        "bn": {"mean": jnp.zeros(2), "var": jnp.zeros(2)},
    }
    out = U.apply_updates(params, updates)
    assert out["dense"]["kernel"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out["dense"]["kernel"], np.float32), [1.5, 1.5])
    out = U.apply_updates(params, updates, {"bn": {"mean": jnp.array([7.0, 8.0])}})
    np.testing.assert_allclose(np.asarray(out["bn"]["mean"]), [7.0, 8.0])
    np.testing.assert_allclose(np.asarray(out["bn"]["var"]), [1.0, 1.0])


def test_bad_arguments():
    with pytest.raises(TypeError, match="update transform"):
        U.scale_by_adam("not a transform")
    with pytest.raises(TypeError, match="step_size"):
        U.scale()
    with pytest.raises(TypeError, match="init_fn"):
        U.stateful(lambda p: None)
    with pytest.raises(TypeError, match="callable"):
        U.scale_by_schedule(0.1)
    with pytest.raises(TypeError):
        U.compose()
