"""State hoisting in predict_fn (axon.compiler.hoisting, issue 17 item 4): the state-only work
runs once per state, and nothing a user sees changes (values, retraces, other states)."""

from __future__ import annotations

import gc
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon
from axon.compiler import hoisting


@pytest.fixture
def hoist_everything(monkeypatch):
    """Split programs however little state-only work they have (small test models)."""
    monkeypatch.setattr(hoisting, "MIN_BYTES", 0)


def _lstm(units: int = 8) -> axon.Axon:
    _, (_, h) = axon.lstm(axon.input("x", shape=(None, 5, 3)), units)
    return axon.dense(h, 2)


def _gru() -> axon.Axon:
    out, _ = axon.gru(axon.input("x", shape=(None, 5, 3)), 6)
    return out


def _conv_lstm() -> axon.Axon:
    out, _ = axon.conv_lstm(axon.input("x", shape=(None, 3, 6, 6, 2)), 4, kernel_size=3)
    return out


def _mixed_precision() -> axon.Axon:
    model = _lstm().pipe(axon.dense, 4)
    return axon.mixed_precision.apply_policy(model, axon.mixed_precision.create_policy(params="f32", compute="bf16"))


def _attention_block() -> axon.Axon:
    x = axon.input("x", shape=(None, 4, 8))
    y = axon.layer_norm(x).pipe(axon.multi_head_attention, num_heads=2)
    return axon.add(x, y).pipe(axon.dense, 16, activation="gelu")


def _conv_bn() -> axon.Axon:
    x = axon.input("x", shape=(None, 8, 8, 3)).pipe(axon.conv, 4, kernel_size=3).pipe(axon.batch_norm)
    return x.pipe(axon.max_pool, kernel_size=2).pipe(axon.flatten).pipe(axon.dense, 3)


MODELS = {
    "lstm": (_lstm, (2, 5, 3)),
    "gru": (_gru, (2, 5, 3)),
    "conv_lstm": (_conv_lstm, (2, 3, 6, 6, 2)),
    "mixed_precision_lstm": (_mixed_precision, (2, 5, 3)),
    "attention_block": (_attention_block, (2, 4, 8)),
    "conv_batch_norm": (_conv_bn, (2, 8, 8, 3)),
}


def _x(shape, seed=1):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_hoisted_predictions_equal_the_whole_program(name, hoist_everything):
    make, shape = MODELS[name]
    model, x = make(), _x(shape)
    init_fn, predict_fn = axon.build(model)
    _, whole_fn = axon.build(model, hoist_state=False)
    state = init_fn(axon.template(shape))
    got, want = predict_fn(state, x), whole_fn(state, x)
    assert got.dtype == want.dtype
    # the same operations; XLA may fuse the two programs differently (float rounding)
    np.testing.assert_allclose(np.asarray(got, np.float32), np.asarray(want, np.float32), rtol=1e-6, atol=1e-6)
    assert predict_fn.trace_count == 1
    np.testing.assert_array_equal(predict_fn(state, x), got)
    assert predict_fn.trace_count == 1


def test_the_lstm_gate_kernels_are_concatenated_once_per_state(caplog):
    # a model big enough for the default threshold: 4 + 4 gate kernels of 128 units
    model, x = _lstm(units=128), _x((1, 5, 3))
    init_fn, predict_fn = axon.build(model, debug=True)
    state = init_fn(axon.template((1, 5, 3)))
    with caplog.at_level(logging.INFO, logger="axon"):
        out = predict_fn(state, x)
    assert any("hoisted 3 of" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    np.testing.assert_array_equal(out, axon.build(model, hoist_state=False)[1](state, x))
    split = hoisting.split(jax.make_jaxpr(predict_fn.apply)(state.data, x), len(jax.tree_util.tree_leaves(state.data)))
    assert [e.primitive.name for e in split.state_part.eqns] == ["concatenate"] * 3
    assert "concatenate" not in {e.primitive.name for e in split.rest.jaxpr.eqns}


def test_other_states_give_their_own_answers(hoist_everything):
    model, x = _lstm(), _x((2, 5, 3))
    init_a, predict_fn = axon.build(model, seed=0)
    init_b, _ = axon.build(model, seed=1)
    _, whole_fn = axon.build(model, hoist_state=False)
    a, b = init_a(axon.template((2, 5, 3))), init_b(axon.template((2, 5, 3)))
    for state in (a, b, a, b):
        np.testing.assert_allclose(predict_fn(state, x), whole_fn(state, x), rtol=1e-6, atol=1e-6)
    assert not np.allclose(predict_fn(a, x), predict_fn(b, x))
    # a new state object: a nested dict of the same arrays, then one with a changed kernel
    same = {layer: dict(params) for layer, params in a.data.items()}
    np.testing.assert_array_equal(predict_fn(same, x), predict_fn(a, x))
    changed = {layer: {k: v for k, v in params.items()} for layer, params in a.data.items()}
    changed["lstm_0"]["input_kernel"] = {k: v * 2 for k, v in changed["lstm_0"]["input_kernel"].items()}
    np.testing.assert_allclose(predict_fn(changed, x), whole_fn(changed, x), rtol=1e-6, atol=1e-6)
    assert not np.allclose(predict_fn(changed, x), predict_fn(a, x))
    assert predict_fn.trace_count == 1
    # another input shape is another signature: one more trace, same answers
    x3 = _x((3, 5, 3))
    np.testing.assert_allclose(predict_fn(a, x3), whole_fn(a, x3), rtol=1e-6, atol=1e-6)
    assert predict_fn.trace_count == 2


def test_the_residuals_of_a_dropped_state_are_freed(hoist_everything):
    model, x = _lstm(units=16), _x((2, 5, 3))
    init_fn, predict_fn = axon.build(model)
    _, whole_fn = axon.build(model, hoist_state=False)
    kept = init_fn(axon.template((2, 5, 3)))
    predict_fn(kept, x).block_until_ready()
    whole_fn(kept, x).block_until_ready()
    gc.collect()
    before = len(jax.live_arrays())
    for seed in range(6):  # more states than the cache keeps
        state = init_fn(axon.template((2, 5, 3)), {"dense_0": {"bias": jnp.full((2,), float(seed))}})
        predict_fn(state, x).block_until_ready()
    del state
    gc.collect()
    predict_fn(kept, x).block_until_ready()  # its residuals again (the cache kept 4 states)
    # only the kept state's residuals (and nothing of the dropped states) stay alive
    assert len(jax.live_arrays()) <= before


def test_hoist_state_false_train_mode_and_eager_run_the_whole_program(caplog):
    model, x = _lstm(units=128), _x((1, 5, 3))
    with caplog.at_level(logging.INFO, logger="axon"):
        for options in ({"hoist_state": False}, {"mode": "train"}, {"jit": False}):
            init_fn, predict_fn = axon.build(model, debug=True, **options)
            assert predict_fn.hoist_state is False
            predict_fn(init_fn(axon.template((1, 5, 3))), x)
    assert not any("hoisted" in r.getMessage() for r in caplog.records)
    assert axon.build(model)[1].hoist_state is True


def test_traced_and_numpy_states_take_the_whole_program(hoist_everything):
    model, x = _lstm(), _x((2, 5, 3))
    init_fn, predict_fn = axon.build(model)
    _, whole_fn = axon.build(model, hoist_state=False)
    state = init_fn(axon.template((2, 5, 3)))
    want = np.asarray(whole_fn(state, x))
    # inside the user's jit (tracers), under grad, with NumPy leaves, with a NumPy input
    np.testing.assert_allclose(jax.jit(predict_fn)(state.data, x), want, rtol=1e-6, atol=1e-6)
    grads = jax.grad(lambda d: predict_fn(d, x).sum())(state.data)
    assert np.isfinite(np.asarray(grads["lstm_0"]["hidden_kernel"]["whi"])).all()
    # a gradient with respect to the inputs, the state concrete: hoisted, differentiated through the rest
    grad_x = jax.grad(lambda x: predict_fn(state, x).sum())(x)
    np.testing.assert_allclose(grad_x, jax.grad(lambda x: whole_fn(state, x).sum())(x), rtol=1e-5, atol=1e-6)
    numpy_state = jax.tree_util.tree_map(np.asarray, state.data)
    np.testing.assert_allclose(predict_fn(numpy_state, x), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(predict_fn(state, np.asarray(x)), want, rtol=1e-6, atol=1e-6)
    # apply and lower trace the whole program, as before
    np.testing.assert_allclose(jax.jit(predict_fn.apply)(state, x), want, rtol=1e-6, atol=1e-6)
    compiled = predict_fn.lower(state, axon.template((2, 5, 3))).compile()
    np.testing.assert_allclose(compiled(state, {"x": x}), want, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# What split hoists and what it leaves


def _split(fn, state, *inputs):
    return hoisting.split(jax.make_jaxpr(fn)(state, *inputs), len(jax.tree_util.tree_leaves(state)))


def _names(jaxpr):
    return [e.primitive.name for e in jaxpr.eqns]


def test_split_leaves_views_broadcasts_to_large_shapes_and_effects_to_the_rest(hoist_everything):
    w = {"k": jnp.ones((16, 16)), "b": jnp.ones((16,))}
    x = jnp.ones((64, 16))

    # a reshape of a parameter is only a view: nothing worth precomputing
    assert _split(lambda w, x: x @ w["k"].reshape(16, 16) + w["b"], w, x) is None
    # a parameter broadcast to the batch's shape is 64x bigger than the parameter: the broadcast
    # is left to the rest, what it broadcasts is kept
    parts = _split(lambda w, x: x + jnp.broadcast_to(w["b"] * 2, (64, 16)), w, x)
    assert _names(parts.state_part) == ["mul"] and [v.aval.shape for v in parts.state_part.outvars] == [(16,)]
    assert "broadcast_in_dim" in _names(parts.rest.jaxpr)

    # the transpose is kept; the cheap broadcast of the bias to (64, 16) stays in the rest
    parts = _split(lambda w, x: x @ w["k"].T + jnp.broadcast_to(w["b"], (64, 16)), w, x)
    assert _names(parts.state_part) == ["transpose"]
    assert "broadcast_in_dim" in _names(parts.rest.jaxpr)

    # an equation with an effect (a debug print of a parameter) is never hoisted
    def printed(w, x):
        k = w["k"] * 2
        jax.debug.print("{}", k.sum())
        return x @ k

    parts = _split(printed, w, x)
    assert any(e.effects for e in parts.rest.jaxpr.eqns) and not any(e.effects for e in parts.state_part.eqns)
    assert _names(parts.state_part) == ["mul", "reduce_sum"]  # what it prints is computed once


def test_split_takes_nested_programs_whole(hoist_everything):
    w = {"k": jnp.ones((8, 8))}
    x = jnp.ones((3, 8))
    # a jitted function of the state only: hoisted as one equation
    parts = _split(lambda w, x: x @ jax.jit(lambda k: jnp.tanh(k) * 2)(w["k"]), w, x)
    assert _names(parts.state_part) == ["jit"]

    # a scan reading the state and the inputs: never split inside (its body's transpose and
    # cast stay in it); the transpose outside it is hoisted
    def scanned(w, x):
        kt = w["k"].T
        return jax.lax.scan(lambda c, xt: (jnp.tanh(c @ kt + xt @ w["k"].astype("bfloat16").astype("float32")), None),
                            x[0], x)[0]

    parts = _split(lambda w, x: scanned(w, x), w, x)
    assert _names(parts.state_part) == ["transpose"]
    assert "scan" in _names(parts.rest.jaxpr)
    (scan,) = [e for e in parts.rest.jaxpr.eqns if e.primitive.name == "scan"]
    assert "convert_element_type" in _names(scan.params["jaxpr"].jaxpr)


def test_split_keeps_residuals_within_the_size_of_the_state(hoist_everything):
    w = {"k": jnp.ones((32, 32))}
    x = jnp.ones((2, 32))
    # two transposes and a scaled copy: three residuals of the kernel's size, above the state's
    parts = _split(lambda w, x: x @ w["k"].T + x @ (w["k"] * 2) + x @ jnp.flip(w["k"], 0), w, x)
    kept = sum(v.aval.size for v in parts.state_part.outvars)
    assert kept <= w["k"].size and len(parts.state_part.outvars) == 1


def test_state_cache_forgets_a_state_when_its_arrays_are_freed():
    cache = hoisting.StateCache(size=2)
    arrays = [jnp.ones(2) * i for i in range(3)]
    for a in arrays:
        cache.put((id(a),), [a], a * 10)
    del a
    assert len(cache) == 2 and cache.get((id(arrays[0]),)) is None  # the oldest went first
    assert float(cache.get((id(arrays[2]),))[0]) == 20.0
    del arrays[2]
    gc.collect()
    assert len(cache) == 1


def test_a_distributed_state_is_hoisted_like_a_local_one():
    from tests.distributed.multidevice import run_on_devices

    result = run_on_devices(
        """
        import logging
        import jax, numpy as np
        import axon, axon.distributed as dist
        from axon.compiler import hoisting

        hoisting.MIN_BYTES = 0
        messages = []
        handler = logging.Handler()
        handler.emit = lambda record: messages.append(record.getMessage())
        logging.getLogger("axon").addHandler(handler)
        logging.getLogger("axon").setLevel(logging.INFO)
        _, (_, h) = axon.lstm(axon.input("x", shape=(None, 5, 3)), 16)
        model = axon.dense(h, 4)
        x = np.random.default_rng(0).standard_normal((8, 5, 3)).astype(np.float32)
        reference = axon.build(model, hoist_state=False)[1]
        result = {}
        for name, strategy in {"data": dist.DataParallel(), "fsdp": dist.FSDP(min_size=64)}.items():
            init_fn, predict_fn = axon.build(model, distribution=strategy, debug=True)
            messages.clear()
            state = init_fn(axon.template((8, 5, 3)))
            outs = [predict_fn(state, x), predict_fn(state, x)]
            want = np.asarray(reference(jax.device_get(state), x))
            result[name] = {
                "diffs": [float(np.max(np.abs(np.asarray(o) - want))) for o in outs],
                "traces": predict_fn.trace_count,
                "devices": len(outs[0].sharding.device_set),
                "hoisted": [m for m in messages if "hoisted" in m],
            }
        """
    )
    for name in ("data", "fsdp"):
        assert max(result[name]["diffs"]) < 1e-6, result
        assert result[name]["traces"] == 1 and result[name]["devices"] == 8, result
        assert [m.split(" of ")[0] for m in result[name]["hoisted"]] == ["axon: hoisted 3"], result


def test_a_model_with_nothing_to_hoist_is_analysed_once(caplog):
    model = axon.input("x", shape=(None, 4)).pipe(axon.dense, 3)  # a bias broadcast: only a view
    init_fn, predict_fn = axon.build(model, debug=True)
    state = init_fn(axon.template((2, 4)))
    with caplog.at_level(logging.INFO, logger="axon"):
        for batch in (2, 2, 3, 5):
            np.testing.assert_allclose(predict_fn(state, jnp.ones((batch, 4))),
                                       jnp.ones((batch, 4)) @ state["dense_0"]["kernel"] + state["dense_0"]["bias"],
                                       rtol=1e-6)
    assert [r.getMessage().split(" of ")[0] for r in caplog.records if "hoisted" in r.getMessage()] == ["axon: hoisted 0"]
    assert predict_fn.trace_count == 3


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_the_recurrent_gate_kernels_are_concatenated_outside_the_loop(name, hoist_everything):
    make, shape = MODELS[name]
    init_fn, predict_fn = axon.build(make())
    state = init_fn(axon.template(shape))
    parts = _split(predict_fn.apply, state.data, _x(shape))
    assert _names(parts.state_part).count("concatenate") == 3
    assert "concatenate" not in _names(parts.rest.jaxpr)
