"""Optax options passed through by axon.optimizers: ``adam(nesterov=, mu_dtype=)``,
``adamw(mask=)``, ``lamb(mask=)``; checked against the published rules in numpy and
against optax called directly."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from axon import optimizers, updates

STEPS = 6
RNG = np.random.default_rng(1)
X = RNG.normal(size=(8, 3)).astype(np.float32)
Y = RNG.normal(size=(8, 2)).astype(np.float32)
W0 = RNG.normal(size=(3, 2)).astype(np.float32)
B0 = RNG.normal(size=(2,)).astype(np.float32)


def _loss(params):
    return jnp.mean((jnp.asarray(X) @ params["w"] + params["b"] - jnp.asarray(Y)) ** 2)


def _grad_np(params):
    r = X.astype(np.float64) @ params["w"] + params["b"] - Y
    return {"w": 2.0 / r.size * X.T @ r, "b": 2.0 / r.size * r.sum(0)}


def _run(opt, steps=STEPS):
    params = {"w": jnp.asarray(W0), "b": jnp.asarray(B0)}
    state = opt.init(params)
    for _ in range(steps):
        upd, state = opt.update(jax.grad(_loss)(params), state, params)
        params = optax.apply_updates(params, upd)
    return {k: np.asarray(v) for k, v in params.items()}, state


def _adam_rule(lr, b1, b2, eps, *, nesterov=False, decay=None, steps=STEPS):
    """Adam / NAdam (Dozat 2016, without momentum schedule) / AdamW in numpy.

    ``decay`` maps a parameter name to its decoupled weight-decay coefficient.
    """
    params = {"w": W0.astype(np.float64), "b": B0.astype(np.float64)}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for t in range(1, steps + 1):
        g = _grad_np(params)
        for k in params:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            if nesterov:
                m_hat = b1 * m[k] / (1 - b1 ** (t + 1)) + (1 - b1) * g[k] / (1 - b1**t)
            else:
                m_hat = m[k] / (1 - b1**t)
            v_hat = v[k] / (1 - b2**t)
            u = m_hat / (np.sqrt(v_hat) + eps)
            if decay:
                u = u + decay.get(k, 0.0) * params[k]
            params[k] = params[k] - lr * u
    return params


def _close(ours, ref, rtol=2e-5, atol=2e-6):
    for k in ("w", "b"):
        np.testing.assert_allclose(ours[k], ref[k], rtol=rtol, atol=atol)


def test_adam_nesterov_matches_nadam_rule_and_optax_nadam():
    ours, _ = _run(optimizers.adam(0.05, b1=0.8, b2=0.99, eps=1e-7, eps_root=0.0, nesterov=True))
    _close(ours, _adam_rule(0.05, 0.8, 0.99, 1e-7, nesterov=True))
    direct, _ = _run(optax.nadam(0.05, b1=0.8, b2=0.99, eps=1e-7))
    _close(ours, direct, rtol=1e-6, atol=1e-7)
    plain, _ = _run(optimizers.adam(0.05, b1=0.8, b2=0.99, eps=1e-7, eps_root=0.0))
    assert not np.allclose(plain["w"], ours["w"], atol=1e-4)  # nesterov changes the result


def test_adamw_nesterov_matches_rule():
    ours, _ = _run(optimizers.adamw(0.05, decay=0.1, eps_root=0.0, nesterov=True))
    _close(ours, _adam_rule(0.05, 0.9, 0.999, 1e-8, nesterov=True, decay={"w": 0.1, "b": 0.1}))


@pytest.mark.parametrize(
    "mask",
    [{"w": True, "b": False}, lambda p: jax.tree_util.tree_map(lambda x: x.ndim > 1, p)],
    ids=["tree", "function"],
)
def test_adamw_mask_leaves_masked_params_undecayed(mask):
    ours, _ = _run(optimizers.adamw(0.05, decay=0.5, eps_root=0.0, mask=mask))
    _close(ours, _adam_rule(0.05, 0.9, 0.999, 1e-8, decay={"w": 0.5}))
    everything, _ = _run(optimizers.adamw(0.05, decay=0.5, eps_root=0.0))
    assert not np.allclose(everything["b"], ours["b"], atol=1e-4)  # the mask matters


def test_adamw_mask_first_step_by_hand():
    # One step from zero moments: m̂ / sqrt(v̂) = sign(g) (eps aside), so the update is
    # -lr · (sign(g) + decay · p) for decayed parameters and -lr · sign(g) for the others.
    params = {"w": jnp.array([2.0]), "b": jnp.array([2.0])}
    opt = optimizers.adamw(0.1, decay=0.5, eps=0.0, eps_root=0.0, mask={"w": True, "b": False})
    upd, _ = opt.update({"w": jnp.array([3.0]), "b": jnp.array([-3.0])}, opt.init(params), params)
    assert upd["w"].tolist() == pytest.approx([-0.1 * (1.0 + 0.5 * 2.0)], rel=1e-5)
    assert upd["b"].tolist() == pytest.approx([0.1], rel=1e-5)


def test_lamb_mask_is_per_parameter():
    # LAMB's trust ratio is per parameter, so a masked step equals, parameter by parameter,
    # the step that decays everything (w) and the step that decays nothing (b). (One step:
    # after it the gradients of w depend on b, which differs between the runs.)
    masked, _ = _run(optimizers.lamb(0.05, decay=0.3, mask={"w": True, "b": False}), steps=1)
    decayed, _ = _run(optimizers.lamb(0.05, decay=0.3), steps=1)
    plain, _ = _run(optimizers.lamb(0.05), steps=1)
    np.testing.assert_allclose(masked["w"], decayed["w"], rtol=1e-6)
    np.testing.assert_allclose(masked["b"], plain["b"], rtol=1e-6)
    assert not np.allclose(decayed["b"], plain["b"], atol=1e-5)


def test_adam_mu_dtype_sets_first_moment_dtype():
    ours, state = _run(optimizers.adam(0.05, eps_root=0.0, mu_dtype="bfloat16"))
    adam_states = [
        s
        for s in jax.tree_util.tree_leaves(state, is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))
        if isinstance(s, optax.ScaleByAdamState)
    ]
    assert [s.mu["w"].dtype for s in adam_states] == [jnp.bfloat16]
    assert adam_states[0].nu["w"].dtype == jnp.float32
    assert ours["w"].dtype == np.float32
    # bfloat16 keeps ~3 significant digits of the moment: close to the float32 rule
    _close(ours, _adam_rule(0.05, 0.9, 0.999, 1e-8), rtol=2e-2, atol=2e-2)


def test_updates_pass_the_options_through():
    t = updates.scale_by_adam(nesterov=True, eps_root=0.0)
    ref = optax.scale_by_adam(nesterov=True)
    g = jnp.array([0.5, -2.0])
    ours, _ = t.update(g, t.init(jnp.zeros(2)))
    theirs, _ = ref.update(g, ref.init(jnp.zeros(2)))
    np.testing.assert_allclose(ours, theirs)
    d = updates.add_decayed_weights(decay=0.1, mask={"a": False, "b": True})
    p = {"a": jnp.array([10.0]), "b": jnp.array([10.0])}
    out, _ = d.update({"a": jnp.ones(1), "b": jnp.ones(1)}, d.init(p), p)
    assert out["a"].tolist() == [1.0] and out["b"].tolist() == [2.0]
