"""The compiler's handling of inputs and of repeated one-call use: initialization from the
declared shapes, inputs identified by name, declared shapes as information (a warning, not
an error), the build cache behind axon.predict/axon.init, get_output_shape on the
compiler's abstract evaluation, and dict access to a train-mode result."""

import gc
import warnings
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon
from axon.compiler import BuildCache, TrainOutput, build_cache, cached_build, trace_values

# -- init_fn() from the declared shapes -------------------------------------------------


def test_init_fn_without_templates_uses_the_declared_shapes():
    x = axon.input("x", shape=(None, 3))
    y = axon.input("y", shape=(None, 2, 5))
    model = axon.concatenate(x.pipe(axon.dense, 4), y.pipe(axon.flatten).pipe(axon.dense, 6), axis=1)
    init_fn, predict_fn = axon.build(model)
    state = init_fn()
    # dense on 3 features -> 4 units; flatten of (2, 5) is 10 features -> 6 units
    assert state["dense_0"]["kernel"].shape == (3, 4)
    assert state["dense_0"]["bias"].shape == (4,)
    assert state["dense_1"]["kernel"].shape == (10, 6)
    assert state["dense_1"]["bias"].shape == (6,)
    # the same parameters as from explicit templates with None -> 1
    explicit = init_fn({"x": axon.template((1, 3)), "y": axon.template((1, 2, 5))})
    for layer in ("dense_0", "dense_1"):
        np.testing.assert_array_equal(state[layer]["kernel"], explicit[layer]["kernel"])
    out = predict_fn(state, {"x": jnp.ones((7, 3)), "y": jnp.ones((7, 2, 5))})
    assert out.shape == (7, 10)
    assert axon.init(model)["dense_1"]["kernel"].shape == (10, 6)


def test_init_fn_without_templates_names_an_input_with_no_declared_shape():
    model = axon.add(axon.input("a", shape=(None, 2)), axon.input("b")).pipe(axon.dense, 3)
    init_fn, _ = axon.build(model)
    with pytest.raises(ValueError, match="input 'b' declares no shape"):
        init_fn()


def test_init_fn_without_templates_leaves_out_optional_inputs_without_shape():
    values = axon.input("values", shape=(None, 2))
    mask = axon.input("mask", optional=True)
    bias = axon.input("bias", shape=(None, 2), optional=True)

    def masked(x, m, b):
        x = x if axon.is_none(m) else x * m
        return x if axon.is_none(b) else x + b

    model = axon.layer(masked, [values, axon.optional(mask), axon.optional(bias)]).pipe(axon.dense, 5)
    init_fn, _ = axon.build(model)
    assert sorted(init_fn.declared_templates()) == ["bias", "values"]
    assert init_fn()["dense_0"]["kernel"].shape == (2, 5)


# -- inputs identified by name ----------------------------------------------------------


def test_inputs_with_the_same_name_and_shape_are_one_input():
    # Axon's VAE notebook builds its encoder twice, each time from axon.input("image", ...)
    def encoder():
        return axon.input("image", shape=(None, 4)).pipe(axon.dense, 2, name="enc", kernel_initializer="ones")

    model = axon.add(encoder(), axon.fn(axon.input("image", shape=(None, 4)), lambda t: t.sum(axis=1, keepdims=True)))
    assert axon.get_inputs(model) == {"image": (None, 4)}
    init_fn, predict_fn = axon.build(model)
    state = init_fn()
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    expected = x @ np.ones((4, 2), np.float32) + x.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(predict_fn(state, x), expected)


def test_inputs_with_the_same_name_and_different_shapes_are_an_error():
    model = axon.add(axon.input("image", shape=(None, 4)), axon.input("image", shape=(None, 5)))
    with pytest.raises(ValueError, match=r"'image'.*shape \(None, 4\).*shape \(None, 5\)"):
        axon.build(model)
    model = axon.add(axon.input("image", shape=(None, 4)), axon.input("image", shape=(None, 4), optional=True))
    with pytest.raises(ValueError, match=r"'image'.*\(None, 4\) and shape \(None, 4\) \(optional\)"):
        axon.build(model)


# -- declared shapes are information ----------------------------------------------------


def test_a_shape_other_than_the_declared_one_warns_once_and_runs():
    model = axon.input("image", shape=(None, 1, 2, 2)).pipe(axon.flatten).pipe(axon.dense, 3, kernel_initializer="ones")
    init_fn, predict_fn = axon.build(model)
    state = init_fn()
    x = np.arange(6, dtype=np.float32).reshape(1, 2, 3)  # flattens to 6 features, the kernel expects 4
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(axon.CompileError, match="dense_0"):
            predict_fn(state, x)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert messages == [
        "predict_fn: input 'image' has shape (1, 2, 3), but the model declares shape (None, 1, 2, 2) "
        "(None marks a dimension of any size); running the model on the actual shape"
    ]
    # initialized on the actual shape, the flattened features match: it computes, and the
    # same (input, shape) pair is not reported again by the same function
    with pytest.warns(UserWarning, match=r"init_fn: input 'image' has shape \(1, 2, 3\)"):
        state = init_fn(x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outs = [predict_fn(state, x) for _ in range(3)]
        predict_fn(state, np.concatenate([x, x]))  # another shape: one more warning
    assert [str(w.message).split(", but")[0] for w in caught] == ["predict_fn: input 'image' has shape (2, 2, 3)"]
    assert caught[0].filename == __file__  # attributed to the caller's line
    with pytest.warns(UserWarning, match="declares shape") as through_predict:
        axon.predict(model, state, x)
    assert through_predict[0].filename == __file__
    np.testing.assert_allclose(outs[0], np.repeat(x.reshape(1, 6).sum(axis=1, keepdims=True), 3, axis=1))


def test_repeated_calls_skip_no_check_and_share_one_program_for_a_state_and_its_dict():
    # predict_fn's per-call fast path (a one-input model's array whose shape passed the checks
    # before) must behave like the full check: a new shape still warns once, a dict of inputs
    # still goes through the name checks, and a ModelState and its plain dict run one program
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2, kernel_initializer="ones")
    init_fn, predict_fn = axon.build(model)
    state = init_fn()
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outs = [predict_fn(state, x) for _ in range(3)] + [predict_fn(state.data, x)]
        predict_fn(state, x.reshape(2, 1, 3))  # another rank: warns once, and runs
        predict_fn(state, x.reshape(2, 1, 3))
    assert [str(w.message).split(", but")[0] for w in caught] == ["predict_fn: input 'x' has shape (2, 1, 3)"]
    assert predict_fn.trace_count == 2
    for out in outs:
        np.testing.assert_array_equal(out, np.array([[3.0, 3.0], [12.0, 12.0]]))
    with pytest.raises(ValueError, match=r"unknown input name\(s\) \['y'\]"):
        predict_fn(state, {"y": x})


# -- the build cache behind axon.predict / axon.init ------------------------------------


def _traced_counter():
    traces = []

    def identity(x):
        traces.append(1)  # runs once per trace, never per call of the compiled function
        return x

    return traces, identity


def test_repeated_predict_traces_once():
    traces, identity = _traced_counter()
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2).pipe(axon.fn, identity)
    state = axon.init(model, axon.template((1, 3)))
    again = axon.init(model, axon.template((1, 3)))
    assert len(traces) == 1 and cached_build(model)[0].trace_count == 1
    np.testing.assert_array_equal(state["dense_0"]["kernel"], again["dense_0"]["kernel"])
    traces.clear()
    x = np.ones((4, 3), np.float32)
    outs = [axon.predict(model, state, x) for _ in range(5)]
    assert len(traces) == 1
    assert cached_build(model)[1].trace_count == 1
    kernel, bias = np.asarray(state["dense_0"]["kernel"]), np.asarray(state["dense_0"]["bias"])
    np.testing.assert_allclose(outs[-1], x @ kernel + bias, rtol=1e-6)
    # other options are another entry; the same options again are not
    axon.predict(model, state, x, mode="train")
    axon.predict(model, state, x, global_layer_options={})
    assert len(traces) == 2


def test_the_build_cache_is_bounded():
    cache = BuildCache(maxsize=3)
    models = [axon.input("x").pipe(axon.relu) for _ in range(5)]
    built = [cache.get(m, {}) for m in models]
    assert len(cache) == 3
    assert cache.get(models[-1], {}) is built[-1]  # recent entries stay
    assert cache.get(models[0], {}) is not built[0]  # the oldest was evicted and is built again
    keep = [axon.input("x", shape=(None, 1)).pipe(axon.relu) for _ in range(build_cache.maxsize + 5)]
    for m in keep:
        axon.predict(m, {}, jnp.ones((1, 1)))
    assert len(build_cache) <= build_cache.maxsize


def test_the_build_cache_does_not_keep_a_graph_alive():
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 2)
    state = axon.init(model)
    axon.predict(model, state, jnp.ones((1, 2)))
    before = len(build_cache)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
    assert len(build_cache) == before - 1


# -- get_output_shape on trace_values ---------------------------------------------------


def test_get_output_shape_agrees_with_trace_values_and_detects_missing_outputs_by_value():
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 5).pipe(axon.dropout, rate=0.5)
    _, outputs = trace_values(model, axon.template((2, 3)))
    assert axon.get_output_shape(model, axon.template((2, 3))) == tuple(outputs[model.output].shape) == (2, 5)
    assert axon.get_output_shape(model, axon.template((2, 3)), mode="train") == (2, 5)

    # one abstract evaluation (trace_values'), not an init trace followed by a predict trace
    traces, identity = _traced_counter()
    counted = model.pipe(axon.fn, identity)
    assert axon.get_output_shape(counted, axon.template((2, 3))) == (2, 5)
    assert len(traces) == 1

    # a layer's own error that mentions "output is missing" is that layer's error, not a
    # missing optional output
    def broken(x):
        raise ValueError("the output is missing a dimension")

    with pytest.raises(axon.CompileError, match="output is missing a dimension"):
        axon.get_output_shape(axon.input("x").pipe(axon.fn, broken), axon.template((1, 2)))

    mask = axon.input("mask", optional=True)
    model = axon.container({"a": axon.input("x", shape=(None, 2)), "m": axon.optional(mask)})
    assert axon.get_output_shape(model, {"x": axon.template((1, 2))}) == {"a": (1, 2), "m": axon.NONE}
    assert axon.get_output_shape(axon.multiply(axon.input("x"), mask), {"x": axon.template((1, 2))}) is axon.NONE


# -- a train-mode result as a map -------------------------------------------------------


def test_train_output_by_key():
    model = axon.input("x", shape=(None, 3)).pipe(axon.dropout, rate=0.5)
    init_fn, predict_fn = axon.build(model, mode="train")
    result = predict_fn(init_fn(axon.template((1, 3))), jnp.ones((2, 3)))
    assert isinstance(result, TrainOutput)
    assert result["prediction"] is result.prediction is result[0]
    assert result["state"] is result.state is result[1]
    prediction, state = result
    assert prediction is result.prediction and sorted(state["dropout_0"]) == ["key"]
    assert result[-1] is result.state and result[:1] == (result.prediction,)
    with pytest.raises(KeyError, match="'prediction' and 'state'"):
        result["loss"]
    # still a pytree (jit returns it)
    again = jax.jit(lambda r: r)(result)
    assert isinstance(again, TrainOutput) and again["prediction"].shape == (2, 3)
