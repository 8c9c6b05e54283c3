"""Loss scaling: identity, static and dynamic (schedule checked against hand-computed
sequences and a plain-Python reference of the documented rule)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from axon import loss_scale
from axon.loss_scale import LossScale, all_finite

GOOD = {"w": jnp.array([2.0, -4.0]), "b": jnp.array(8.0)}


def step(unscale, state, finite):
    grads = {"w": jnp.array([1.0, 2.0]) if finite is True else jnp.array([1.0, finite])}
    return unscale(grads, state)[1]


def run(ls, pattern):
    """Scales and counters after each unscale; pattern holds True (finite) or a bad value."""
    state, scales, counters = ls.init(), [], []
    for finite in pattern:
        state = step(ls.unscale, state, finite)
        scales.append(float(state["loss_scale"]))
        counters.append(int(state["counter"]))
    return scales, counters


def test_identity_is_a_triple_that_changes_nothing():
    ls = loss_scale.identity(anything=1)
    assert isinstance(ls, LossScale) and isinstance(ls, tuple) and len(ls) == 3
    init, scale, unscale = ls
    state = init()
    assert state == {}
    assert scale(GOOD, state) is GOOD
    grads, new_state = unscale(GOOD, state)
    assert grads is GOOD and new_state is state


def test_static_scales_and_unscales_deeply_and_keeps_its_state():
    init, scale, unscale = loss_scale.static()
    state = init()
    assert float(state["loss_scale"]) == 2.0**15
    init, scale, unscale = loss_scale.static(init_scale=4.0)
    state = init()
    scaled = scale(GOOD, state)
    assert scaled["w"].tolist() == [8.0, -16.0] and scaled["b"].tolist() == 32.0
    grads, new_state = unscale(GOOD, state)
    assert grads["w"].tolist() == [0.5, -1.0] and grads["b"].tolist() == 2.0
    assert float(new_state["loss_scale"]) == 4.0
    # non-finite gradients do not change a static scale
    _, new_state = unscale({"w": jnp.array([jnp.inf])}, state)
    assert float(new_state["loss_scale"]) == 4.0


def test_scaling_keeps_dtypes_and_leaves_integers_alone():
    init, scale, unscale = loss_scale.dynamic(init_scale=2.0**10)
    state = init()
    tree = {"h": jnp.ones(2, jnp.float16), "bf": jnp.ones(2, jnp.bfloat16), "n": jnp.arange(3)}
    scaled = scale(tree, state)
    assert scaled["h"].dtype == jnp.float16 and scaled["bf"].dtype == jnp.bfloat16
    assert scaled["h"].tolist() == [1024.0, 1024.0] and scaled["n"].tolist() == [0, 1, 2]
    back, _ = unscale(scaled, state)
    assert back["h"].dtype == jnp.float16 and back["h"].tolist() == [1.0, 1.0]


def test_dynamic_defaults_and_initial_state():
    init, _, _ = loss_scale.dynamic()
    state = init()
    assert float(state["loss_scale"]) == 2.0**15 and int(state["counter"]) == 0
    assert state["loss_scale"].dtype == jnp.float32 and state["counter"].dtype == jnp.int32


def test_dynamic_grows_after_period_finite_steps():
    # period 3: the scale doubles on the 3rd, 6th, ... consecutive finite step
    scales, counters = run(loss_scale.dynamic(init_scale=4.0, period=3, factor=2), [True] * 7)
    assert scales == [4.0, 4.0, 8.0, 8.0, 8.0, 16.0, 16.0]
    assert counters == [1, 2, 0, 1, 2, 0, 1]
    scales, _ = run(loss_scale.dynamic(init_scale=1.0, period=1, factor=3), [True] * 3)
    assert scales == [3.0, 9.0, 27.0]


def test_dynamic_shrinks_on_inf_and_nan_and_resets_the_counter():
    ls = loss_scale.dynamic(init_scale=64.0, period=2, factor=2)
    scales, counters = run(ls, [True, jnp.inf, True, True, jnp.nan, -jnp.inf, True, True])
    assert scales == [64.0, 32.0, 32.0, 64.0, 32.0, 16.0, 16.0, 32.0]
    assert counters == [1, 0, 1, 0, 0, 0, 1, 0]


def test_dynamic_never_goes_below_the_minimum():
    ls = loss_scale.dynamic(init_scale=8.0, period=5, factor=2, min_loss_scale=2.0)
    scales, _ = run(ls, [jnp.nan] * 4)
    assert scales == [4.0, 2.0, 2.0, 2.0]
    ls = loss_scale.dynamic(init_scale=3.0, period=5, factor=2, min_loss_scale=1)
    assert run(ls, [jnp.inf] * 3)[0] == [1.5, 1.0, 1.0]


def test_dynamic_growth_stops_at_overflow():
    big = float(np.finfo(np.float32).max) / 1.5
    scales, _ = run(loss_scale.dynamic(init_scale=big, period=1, factor=2), [True, True])
    assert scales == [np.float32(big)] * 2


def test_dynamic_unscale_divides_the_gradients_by_the_current_scale():
    init, scale, unscale = loss_scale.dynamic(init_scale=8.0, period=1)
    state = init()
    grads, state = unscale(scale(GOOD, state), state)
    assert grads["w"].tolist() == [2.0, -4.0] and float(state["loss_scale"]) == 16.0
    grads, _ = unscale({"w": jnp.array([32.0, jnp.nan])}, state)
    assert grads["w"][0].tolist() == 2.0 and math.isnan(grads["w"][1].tolist())


def reference(pattern, init_scale, period, factor, min_scale):
    """The documented rule, in plain Python floats."""
    scale, counter, out = init_scale, 0, []
    for finite in pattern:
        if finite:
            if counter == period - 1:
                grown = np.float32(scale * factor)
                scale = float(grown) if np.isfinite(grown) else scale
            counter = (counter + 1) % period
        else:
            scale, counter = max(min_scale, scale / factor), 0
        out.append(scale)
    return out


@settings(max_examples=40, deadline=None)
@given(
    pattern=st.lists(st.booleans(), min_size=1, max_size=12),
    period=st.integers(1, 4),
    factor=st.sampled_from([1.0, 2.0, 4.0]),
    min_scale=st.sampled_from([1.0, 0.25]),
)
def test_dynamic_matches_a_plain_reference_under_jit(pattern, period, factor, min_scale):
    init, _, unscale = loss_scale.dynamic(init_scale=16.0, period=period, factor=factor, min_loss_scale=min_scale)

    def body(state, finite):
        grads = {"w": jnp.where(finite, jnp.ones(2), jnp.array([1.0, jnp.inf]))}
        _, state = unscale(grads, state)
        return state, state["loss_scale"]

    _, scales = jax.jit(lambda s, p: jax.lax.scan(body, s, p))(init(), jnp.array(pattern))
    np.testing.assert_allclose(np.asarray(scales), reference(pattern, 16.0, period, factor, min_scale), rtol=0)


def test_all_finite():
    assert bool(all_finite(GOOD)) and bool(all_finite({})) and bool(all_finite([jnp.arange(3)]))
    assert not bool(all_finite({"a": GOOD, "b": [jnp.array([1.0, jnp.nan])]}))
    assert not bool(all_finite((jnp.array(-jnp.inf, jnp.bfloat16),)))
    assert bool(jax.jit(all_finite)({"x": jnp.ones(3)}))
    assert not bool(jax.jit(all_finite)({"x": jnp.array([jnp.inf])}))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"init_scale": 0}, "init_scale"),
        ({"init_scale": float("inf")}, "init_scale"),
        ({"period": 0}, "period"),
        ({"period": 2.5}, "period"),
        ({"factor": 0.5}, "factor"),
        ({"min_loss_scale": -1}, "min_loss_scale"),
    ],
)
def test_dynamic_validates_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        loss_scale.dynamic(**kwargs)


def test_static_validates_options():
    with pytest.raises(ValueError, match="init_scale"):
        loss_scale.static(init_scale=-2)
