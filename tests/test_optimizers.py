"""axon.optimizers: N steps on a fixed least-squares problem against torch.optim or the
published update rule written out in numpy."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from axon import optimizers, schedules
from axon import updates as U

STEPS = 12
RNG = np.random.default_rng(0)
X = RNG.normal(size=(8, 3)).astype(np.float32)
Y = RNG.normal(size=(8, 2)).astype(np.float32)
W0 = RNG.normal(size=(3, 2)).astype(np.float32)
B0 = RNG.normal(size=(2,)).astype(np.float32)


def _loss_jax(params):
    pred = jnp.asarray(X) @ params["w"] + params["b"]
    return jnp.mean((pred - jnp.asarray(Y)) ** 2)


def _grad_np(params):
    """Analytic gradient of mean((X w + b - Y)^2) (numpy, independent of jax)."""
    r = X.astype(np.float64) @ params["w"] + params["b"] - Y
    n = r.size
    return {"w": 2.0 / n * X.T @ r, "b": 2.0 / n * r.sum(0)}


def _run_ours(opt, steps=STEPS):
    params = {"w": jnp.asarray(W0), "b": jnp.asarray(B0)}
    state = opt.init(params)

    # Eager on purpose: a handful of steps costs less than compiling them.
    def step(params, state):
        grads = jax.grad(_loss_jax)(params)
        upd, state = opt.update(grads, state, params)
        return optax.apply_updates(params, upd), state

    for _ in range(steps):
        params, state = step(params, state)
    return {k: np.asarray(v) for k, v in params.items()}, state


def _run_torch(make_opt, steps=STEPS, scheduler=None):
    torch = pytest.importorskip("torch")
    w = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(B0, requires_grad=True)
    opt = make_opt([w, b])
    sched = scheduler(opt) if scheduler else None
    x, y = torch.tensor(X), torch.tensor(Y)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.mean((x @ w + b - y) ** 2)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    return {"w": w.detach().numpy(), "b": b.detach().numpy()}


def _run_rule(rule, steps=STEPS):
    """Apply a numpy update rule ``rule(grads, params, state, t) -> (new_params, state)``."""
    params = {"w": W0.astype(np.float64), "b": B0.astype(np.float64)}
    state = None
    for t in range(steps):
        params, state = rule(_grad_np(params), params, state, t)
    return params


def _close(ours, ref, rtol=2e-5, atol=2e-6):
    for k in ("w", "b"):
        np.testing.assert_allclose(ours[k], ref[k], rtol=rtol, atol=atol)


def _moved(ours):
    # Guard against a vacuous comparison: the optimizer must have changed the parameters.
    assert not np.allclose(ours["w"], W0, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Against torch.optim


def test_adam_matches_torch(torch):
    ours, _ = _run_ours(optimizers.adam(0.05, b1=0.8, b2=0.99, eps=1e-7, eps_root=0.0))
    ref = _run_torch(lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.99), eps=1e-7))
    _moved(ours)
    _close(ours, ref)


def test_adam_defaults_match_torch(torch):
    ours, _ = _run_ours(optimizers.adam())
    ref = _run_torch(lambda p: torch.optim.Adam(p, lr=1e-3))
    assert np.abs(ours["w"] - W0).max() > 1e-3  # the small default lr still moved them
    _close(ours, ref)


def test_adamw_matches_torch(torch):
    ours, _ = _run_ours(optimizers.adamw(0.05, decay=0.1))
    ref = _run_torch(lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1, eps=1e-8))
    _moved(ours)
    _close(ours, ref)
    # The decay matters: without it the result differs.
    no_decay, _ = _run_ours(optimizers.adamw(0.05))
    assert not np.allclose(no_decay["w"], ref["w"], atol=1e-4)


@pytest.mark.parametrize(
    "momentum,nesterov", [(None, False), (0.9, False), (0.9, True), (0.5, True)]
)
def test_sgd_matches_torch(momentum, nesterov, torch):
    ours, _ = _run_ours(optimizers.sgd(0.1, momentum=momentum, nesterov=nesterov))
    ref = _run_torch(
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=momentum or 0.0, nesterov=nesterov)
    )
    _moved(ours)
    _close(ours, ref)


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [None, 0.7])
def test_rmsprop_matches_torch(centered, momentum, torch):
    # eps=0 on both sides: torch adds eps outside the sqrt, Axon inside.
    ours, _ = _run_ours(
        optimizers.rmsprop(0.01, decay=0.9, eps=0.0, centered=centered, momentum=momentum)
    )
    ref = _run_torch(
        lambda p: torch.optim.RMSprop(
            p, lr=0.01, alpha=0.9, eps=0.0, centered=centered, momentum=momentum or 0.0
        )
    )
    _moved(ours)
    _close(ours, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("initial", [0.0, 0.1])
def test_adagrad_matches_torch(initial, torch):
    ours, _ = _run_ours(optimizers.adagrad(0.1, eps=0.0, initial_accumulator_value=initial))
    ref = _run_torch(
        lambda p: torch.optim.Adagrad(p, lr=0.1, eps=0.0, initial_accumulator_value=initial)
    )
    _moved(ours)
    _close(ours, ref)


def test_radam_matches_torch(torch):
    # 12 steps cross the rectification threshold (rho_t >= 5 from step 6 on).
    # Tolerance: optax computes rho_t in float32, where 1 - b2**t cancels (torch uses
    # Python floats), so the rectifier differs by ~1% in the first rectified steps. A wrong
    # rule (e.g. Polaris's rho_inf from b1) is off by far more.
    ours, _ = _run_ours(optimizers.radam(0.05, eps=1e-10))
    ref = _run_torch(lambda p: torch.optim.RAdam(p, lr=0.05, eps=1e-10))
    _moved(ours)
    _close(ours, ref, rtol=1e-3, atol=3e-4)
    # The rectified phase matters: plain bias-corrected momentum gives a different result.
    sgd_like, _ = _run_ours(optimizers.radam(0.05, eps=1e-10, threshold=1e9))
    assert not np.allclose(sgd_like["w"], ref["w"], rtol=1e-3, atol=3e-3)


def test_adam_with_schedule_matches_torch_lambda_lr(torch):
    def lr_at(t):
        return 0.05 * 0.5 ** (t / 4)

    ours, state = _run_ours(
        optimizers.adam(schedules.exponential_decay(0.05, decay_rate=0.5, transition_steps=4))
    )
    ref = _run_torch(
        lambda p: torch.optim.Adam(p, lr=0.05, eps=1e-8),
        scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda t: lr_at(t) / 0.05),
    )
    _close(ours, ref)
    # hyperparams["learning_rate"] is the schedule's value at the last step taken.
    np.testing.assert_allclose(
        float(state.hyperparams["learning_rate"]), lr_at(STEPS - 1), rtol=1e-5
    )


# ---------------------------------------------------------------------------------------------
# Against the published update rules (numpy)


def test_adabelief_matches_published_rule():
    b1, b2, eps, eps_root, lr = 0.9, 0.999, 1e-8, 1e-16, 0.05

    def rule(g, p, s, t):
        s = s or {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in p.items()}
        out, new_s = {}, {}
        for k in p:
            m, v = s[k]
            m = b1 * m + (1 - b1) * g[k]
            v = b2 * v + (1 - b2) * (g[k] - m) ** 2 + eps_root
            m_hat, v_hat = m / (1 - b1 ** (t + 1)), v / (1 - b2 ** (t + 1))
            out[k] = p[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
            new_s[k] = (m, v)
        return out, new_s

    ours, _ = _run_ours(optimizers.adabelief(lr, eps=eps))
    _moved(ours)
    _close(ours, _run_rule(rule), rtol=1e-4, atol=1e-5)


def test_yogi_matches_published_rule():
    b1, b2, eps, init, lr = 0.9, 0.999, 1e-3, 1e-6, 0.05

    def rule(g, p, s, t):
        s = s or {k: (np.full_like(v, init), np.full_like(v, init)) for k, v in p.items()}
        out, new_s = {}, {}
        for k in p:
            m, v = s[k]
            m = b1 * m + (1 - b1) * g[k]
            v = v - (1 - b2) * np.sign(v - g[k] ** 2) * g[k] ** 2
            m_hat, v_hat = m / (1 - b1 ** (t + 1)), v / (1 - b2 ** (t + 1))
            out[k] = p[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
            new_s[k] = (m, v)
        return out, new_s

    ours, _ = _run_ours(optimizers.yogi(lr))
    _moved(ours)
    _close(ours, _run_rule(rule), rtol=1e-4, atol=1e-5)


def test_lamb_matches_published_rule():
    b1, b2, eps, decay, lr = 0.9, 0.999, 1e-6, 0.01, 0.05

    def rule(g, p, s, t):
        s = s or {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in p.items()}
        out, new_s = {}, {}
        for k in p:
            m, v = s[k]
            m = b1 * m + (1 - b1) * g[k]
            v = b2 * v + (1 - b2) * g[k] ** 2
            m_hat, v_hat = m / (1 - b1 ** (t + 1)), v / (1 - b2 ** (t + 1))
            r = m_hat / (np.sqrt(v_hat) + eps) + decay * p[k]
            ratio = np.linalg.norm(p[k]) / np.linalg.norm(r)
            out[k] = p[k] - lr * ratio * r
            new_s[k] = (m, v)
        return out, new_s

    ours, _ = _run_ours(optimizers.lamb(lr, eps=eps, eps_root=0.0, decay=decay))
    _moved(ours)
    _close(ours, _run_rule(rule), rtol=1e-4, atol=1e-5)


def test_fromage_matches_published_rule():
    lr = 0.05

    def rule(g, p, s, t):
        out = {}
        for k in p:
            ratio = np.linalg.norm(p[k]) / np.linalg.norm(g[k])
            out[k] = (p[k] - lr * ratio * g[k]) / math.sqrt(1 + lr**2)
        return out, s

    ours, _ = _run_ours(optimizers.fromage(lr))
    _moved(ours)
    _close(ours, _run_rule(rule), rtol=1e-4, atol=1e-5)


def test_noisy_sgd_without_noise_is_sgd(torch):
    ours, _ = _run_ours(optimizers.noisy_sgd(0.1, eta=0.0))
    ref = _run_torch(lambda p: torch.optim.SGD(p, lr=0.1))
    _close(ours, ref)


def test_noisy_sgd_noise_has_published_variance():
    # Zero gradient: the update is -lr * noise, noise ~ N(0, eta / (1 + t) ** gamma).
    eta, gamma, lr = 0.5, 0.55, 2.0
    opt = optimizers.noisy_sgd(lr, eta=eta, gamma=gamma, seed=3)
    zeros = jnp.zeros(20000)
    state = opt.init(zeros)
    for t in range(3):
        u, state = opt.update(zeros, state, zeros)
        expected_std = lr * math.sqrt(eta / (1 + t) ** gamma)
        assert abs(float(jnp.std(u)) / expected_std - 1) < 0.03
        assert abs(float(jnp.mean(u))) < 0.05 * expected_std
    # Reproducible from the seed.
    u1, _ = opt.update(zeros, opt.init(zeros), zeros)
    u2, _ = optimizers.noisy_sgd(lr, eta=eta, gamma=gamma, seed=3).update(
        zeros, opt.init(zeros), zeros
    )
    np.testing.assert_array_equal(np.asarray(u1), np.asarray(u2))


# ---------------------------------------------------------------------------------------------
# Composition, schedules, run-time learning rate


def test_scale_by_adam_then_scale_equals_adam():
    lr = 0.03
    composed, _ = _run_ours(U.scale_by_adam().pipe(U.scale, -lr))
    chained, _ = _run_ours(optax.chain(U.scale_by_adam(), U.scale(-lr)))
    combinator, _ = _run_ours(U.scale(U.scale_by_adam(), -lr))
    adam, _ = _run_ours(optimizers.adam(lr))
    _moved(adam)
    for other in (composed, chained, combinator):
        _close(other, adam, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(optimizers.OPTIMIZERS))
def test_every_optimizer_injects_learning_rate_and_accepts_schedule(name):
    make = optimizers.OPTIMIZERS[name]
    params = {"w": jnp.asarray(W0), "b": jnp.asarray(B0)}
    grads = jax.grad(_loss_jax)(params)
    kwargs = {"eta": 0.0} if name == "noisy_sgd" else {}

    # A constant rate of 0.02 and a schedule that is constant at 0.02 give the same update.
    const = make(0.02, **kwargs)
    sched = make(schedules.constant(0.02), **kwargs)
    s_const, s_sched = const.init(params), sched.init(params)
    assert set(s_const.hyperparams) >= {"learning_rate", "learning_rate_scale"}
    np.testing.assert_allclose(float(s_const.hyperparams["learning_rate"]), 0.02, rtol=1e-6)
    u_const, _ = const.update(grads, s_const, params)
    u_sched, _ = sched.update(grads, s_sched, params)
    for k in params:
        np.testing.assert_allclose(np.asarray(u_const[k]), np.asarray(u_sched[k]), rtol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_scale_learning_rate_scales_updates(name):
    make = optimizers.OPTIMIZERS[name]
    params = {"w": jnp.asarray(W0), "b": jnp.asarray(B0)}
    grads = jax.grad(_loss_jax)(params)
    for lr in (0.02, schedules.exponential_decay(0.02, decay_rate=0.5)):
        opt = make(lr)
        state = opt.init(params)
        u_full, _ = opt.update(grads, state, params)
        scaled = jax.jit(optimizers.scale_learning_rate)(state, 0.25)
        u_scaled, new_state = jax.jit(opt.update)(grads, scaled, params)
        for k in params:
            np.testing.assert_allclose(
                np.asarray(u_scaled[k]), 0.25 * np.asarray(u_full[k]), rtol=1e-5
            )
        # The scale persists through updates.
        np.testing.assert_allclose(float(optimizers.learning_rate(new_state)), 0.005, rtol=1e-5)


def test_scale_learning_rate_on_plain_optax_state():
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    state = optimizers.scale_learning_rate(opt.init(jnp.zeros(2)), 0.5)
    np.testing.assert_allclose(float(state.hyperparams["learning_rate"]), 0.05)
    with pytest.raises(ValueError, match="no injected learning rate"):
        optimizers.scale_learning_rate(optax.sgd(0.1).init(jnp.zeros(2)), 0.5)
    sched = optax.inject_hyperparams(optax.sgd)(learning_rate=lambda c: 0.1)
    with pytest.raises(ValueError, match="schedule"):
        optimizers.scale_learning_rate(sched.init(jnp.zeros(2)), 0.5)


def test_axon_default_learning_rates():
    # AXON_API.md §17 defaults.
    expected = {
        "adabelief": 1e-3, "adagrad": 1e-3, "adam": 1e-3, "adamw": 1e-3, "lamb": 1e-2,
        "noisy_sgd": 1e-2, "radam": 1e-3, "rmsprop": 1e-2, "sgd": 1e-2, "yogi": 1e-2,
    }  # fmt: skip
    for name, lr in expected.items():
        state = optimizers.OPTIMIZERS[name]().init(jnp.zeros(1))
        np.testing.assert_allclose(float(optimizers.learning_rate(state)), lr, rtol=1e-6)


def test_get():
    assert isinstance(optimizers.get("adamw"), optax.GradientTransformation)
    t = optax.sgd(0.1)
    assert optimizers.get(t) is t
    with pytest.raises(ValueError, match="'adabelief', 'adagrad', 'adam'"):
        optimizers.get("adma")
    with pytest.raises(TypeError):
        optimizers.get(3)


def test_bad_options():
    with pytest.raises(ValueError, match="momentum"):
        optimizers.sgd(0.1, nesterov=True)
    with pytest.raises(ValueError, match="momentum"):
        optimizers.rmsprop(0.1, nesterov=True)
    with pytest.raises(TypeError, match="learning_rate"):
        optimizers.adam("fast")
    # numpy scalars and ints are numbers too
    for lr in (np.float32(0.5), np.int64(1), 2):
        state = optimizers.sgd(lr).init(jnp.zeros(1))
        np.testing.assert_allclose(float(optimizers.learning_rate(state)), float(lr))
