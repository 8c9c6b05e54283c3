"""axon.schedules against their closed-form formulas (written here in numpy/math)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from axon import schedules

STEPS = np.arange(0, 40)


def _values(sched, steps=STEPS):
    return np.array([float(sched(int(s))) for s in steps])


def test_constant():
    np.testing.assert_allclose(
        _values(schedules.constant(0.3)), np.full(len(STEPS), 0.3), rtol=1e-6
    )


@pytest.mark.parametrize("staircase", [False, True])
@pytest.mark.parametrize("begin", [0, 5])
def test_exponential_decay(staircase, begin):
    init, rate, k = 0.2, 0.7, 6
    sched = schedules.exponential_decay(
        init, decay_rate=rate, transition_steps=k, transition_begin=begin, staircase=staircase
    )
    expected = []
    for t in STEPS:
        d = t - begin
        p = math.floor(d / k) if staircase else d / k
        expected.append(init if d <= 0 else init * rate**p)
    np.testing.assert_allclose(_values(sched), expected, rtol=1e-5)


def test_exponential_decay_defaults():
    sched = schedules.exponential_decay(0.01)
    np.testing.assert_allclose(float(sched(25)), 0.01 * 0.95 ** (25 / 10), rtol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.25])
def test_cosine_decay(alpha):
    init, k = 0.5, 17
    sched = schedules.cosine_decay(init, decay_steps=k, alpha=alpha)
    expected = [
        init * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * min(t, k) / k)) + alpha) for t in STEPS
    ]
    np.testing.assert_allclose(_values(sched), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("power", [1, 2, 0.5])
def test_polynomial_decay(power):
    init, end, k, begin = 0.4, 0.01, 12, 3
    sched = schedules.polynomial_decay(
        init, end_value=end, power=power, transition_steps=k, transition_begin=begin
    )
    expected = [(init - end) * (1 - min(max(t - begin, 0), k) / k) ** power + end for t in STEPS]
    np.testing.assert_allclose(_values(sched), expected, rtol=1e-5)


def test_polynomial_decay_defaults():
    # Axon defaults: end_value=1e-3, power=2, transition_steps=10.
    sched = schedules.polynomial_decay(0.1)
    np.testing.assert_allclose(float(sched(5)), (0.1 - 1e-3) * 0.5**2 + 1e-3, rtol=1e-6)


@pytest.mark.parametrize("warmup", [0, 1, 7])
def test_linear_decay(warmup):
    init, steps = 0.3, 25
    sched = schedules.linear_decay(init, warmup=warmup, steps=steps)
    expected = []
    for t in STEPS:
        if t < warmup:
            expected.append(init * t / max(1, warmup))
        else:
            expected.append(init * max(0.0, (steps - t) / max(1, steps - warmup)))
    np.testing.assert_allclose(_values(sched), expected, rtol=1e-5, atol=1e-7)


def test_schedules_jit_and_array_steps():
    sched = schedules.cosine_decay(1.0, decay_steps=8)
    out = jax.jit(jax.vmap(sched))(jnp.arange(9))
    expected = [0.5 * (1 + math.cos(math.pi * t / 8)) for t in range(9)]
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: schedules.exponential_decay(0.1, transition_steps=0),
        lambda: schedules.cosine_decay(0.1, decay_steps=-1),
        lambda: schedules.polynomial_decay(0.1, transition_steps=0),
        lambda: schedules.polynomial_decay(0.1, transition_begin=-1),
        lambda: schedules.linear_decay(0.1, warmup=10, steps=10),
        lambda: schedules.linear_decay(0.1, warmup=-1),
    ],
)
def test_bad_options_raise(make):
    with pytest.raises(ValueError):
        make()
