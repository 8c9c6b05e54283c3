"""build/init/predict/compile: modes, state merging, errors, tracing counts, global options,
hooks and print_values."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon


def mlp():
    return axon.input("x", shape=(None, 3)).pipe(axon.dense, 4, activation="relu").pipe(axon.dense, 2)


def test_init_shapes_and_reference_forward():
    init_fn, predict_fn = axon.build(mlp())
    state = init_fn(axon.template((1, 3)))
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    d0, d1 = state["dense_0"], state["dense_1"]
    expected = np.maximum(x @ np.asarray(d0["kernel"]) + np.asarray(d0["bias"]), 0) @ np.asarray(d1["kernel"]) + np.asarray(d1["bias"])
    np.testing.assert_allclose(predict_fn(state, x), expected, rtol=1e-5, atol=1e-6)


def test_init_accepts_real_arrays_and_dicts():
    init_fn, _ = axon.build(mlp())
    a = init_fn(jnp.ones((7, 3)))
    b = init_fn({"x": axon.template((1, 3))})
    np.testing.assert_array_equal(a["dense_0"]["kernel"], b["dense_0"]["kernel"])


def test_predict_compiles_once_per_shape():
    init_fn, predict_fn = axon.build(mlp())
    state = init_fn(axon.template((1, 3)))
    for _ in range(3):
        predict_fn(state, jnp.ones((2, 3)))
    assert predict_fn.trace_count == 1
    predict_fn(state, jnp.ones((5, 3)))
    assert predict_fn.trace_count == 2
    init_fn(axon.template((1, 3)))
    assert init_fn.trace_count == 1


def test_predict_works_inside_user_jit_and_grad():
    init_fn, predict_fn = axon.build(mlp())
    state = init_fn(axon.template((1, 3)))

    @jax.jit
    def loss(params, x):
        return jnp.sum(predict_fn(state.update(params), x) ** 2)

    grads = jax.grad(loss)(state.trainable_parameters(), jnp.ones((2, 3)))
    assert set(grads) == {"dense_0", "dense_1"}
    eps = 1e-3
    k = np.asarray(state["dense_1"]["bias"]).copy()
    k[0] += eps
    bumped = state.update({"dense_1": {"bias": jnp.asarray(k)}})
    numeric = (loss(bumped.trainable_parameters(), jnp.ones((2, 3))) - loss(state.trainable_parameters(), jnp.ones((2, 3)))) / eps
    np.testing.assert_allclose(grads["dense_1"]["bias"][0], numeric, rtol=2e-2)


def test_partial_initial_state_is_merged_and_unknown_keys_warn():
    init_fn, _ = axon.build(mlp())
    given = {"dense_0": {"kernel": jnp.ones((3, 4))}}
    state = init_fn(axon.template((1, 3)), given)
    np.testing.assert_array_equal(state["dense_0"]["kernel"], np.ones((3, 4)))
    assert state["dense_1"]["kernel"].shape == (4, 2)
    with pytest.warns(UserWarning, match="does not use: dense_9.kernel"):
        init_fn(axon.template((1, 3)), {"dense_9": {"kernel": jnp.ones(1)}})
    with pytest.raises(ValueError, match=r"dense_0.kernel.*shape \(2, 2\).*expects \(3, 4\)"):
        init_fn(axon.template((1, 3)), {"dense_0": {"kernel": jnp.ones((2, 2))}})


def test_initial_state_is_cast_to_the_parameter_dtype():
    init_fn, _ = axon.build(mlp())
    state = init_fn(axon.template((1, 3)), {"dense_0": {"kernel": jnp.ones((3, 4), jnp.bfloat16)}})
    assert state["dense_0"]["kernel"].dtype == jnp.float32


def test_train_mode_returns_prediction_and_state():
    model = axon.input("x", shape=(None, 2)).pipe(axon.batch_norm)
    init_fn, predict_fn = axon.build(model, mode="train")
    state = init_fn(axon.template((4, 2)))
    x = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    out = predict_fn(state, x)
    assert isinstance(out, axon.TrainOutput)
    pred, new_state = out
    # batch statistics: mean [4, 5], unbiased var 20/3; momentum 0.1 from mean 0 and var 1
    np.testing.assert_allclose(new_state["batch_norm_0"]["mean"], [0.4, 0.5], rtol=1e-6)
    np.testing.assert_allclose(new_state["batch_norm_0"]["var"], [0.9 + 0.1 * 20 / 3] * 2, rtol=1e-6)
    np.testing.assert_allclose(pred.mean(axis=0), [0.0, 0.0], atol=1e-6)
    merged = state.update(state=new_state)
    np.testing.assert_allclose(merged["batch_norm_0"]["mean"], [0.4, 0.5], rtol=1e-6)


def test_dropout_is_removed_in_inference_and_keys_advance_in_training():
    model = axon.input("x", shape=(None, 64)).pipe(axon.dropout, rate=0.5)
    state = axon.init(model, axon.template((1, 64)))
    assert "dropout_0" not in state
    x = jnp.ones((1, 64))
    assert axon.predict(model, state, x).tolist() == x.tolist()
    init_fn, predict_fn = axon.build(model, mode="train", seed=3)
    s = init_fn(axon.template((1, 64)))
    a = predict_fn(s, x)
    b = predict_fn(s.update(state=a.state), x)
    assert not np.array_equal(a.prediction, b.prediction)
    a2 = axon.build(model, mode="train", seed=3)[1](axon.build(model, mode="train", seed=3)[0](axon.template((1, 64))), x)
    np.testing.assert_array_equal(a.prediction, a2.prediction)


def test_layer_errors_name_the_layer_op_shapes_and_creation_site():
    x = axon.input("x", shape=(None, 3))
    bad = axon.layer(lambda a: a @ jnp.ones((5, 2)), [x], name="matmul", op_name="matmul")  # line of creation
    with pytest.raises(axon.CompileError) as info:
        axon.predict(bad, {}, jnp.ones((2, 3)))
    message = str(info.value)
    assert "'matmul'" in message and "op matmul" in message
    assert "float32[2, 3]" in message
    assert "test_compiler.py:" in message
    assert isinstance(info.value.__cause__, TypeError)


def test_missing_parameter_is_a_clear_error():
    _, predict_fn = axon.build(mlp())
    with pytest.raises(ValueError, match="no value for parameter 'kernel' of layer 'dense_0'"):
        predict_fn({}, jnp.ones((1, 3)))


def test_unknown_activation_and_initializer_names_list_choices():
    x = axon.input("x")
    with pytest.raises(ValueError, match="relu"):
        axon.dense(x, 2, activation="rellu")
    with pytest.raises(ValueError, match="glorot_uniform"):
        axon.dense(x, 2, kernel_initializer="glorot")
    with pytest.raises(ValueError, match="mode"):
        axon.build(mlp(), mode="training")


def test_global_layer_options_reach_declaring_layers_only():
    seen = {}

    def op(x, *, scale=1.0, mode="inference"):
        seen["scale"] = scale
        return x * scale

    x = axon.input("x")
    model = axon.layer(op, [x], global_options=["scale"])
    assert axon.predict(model, {}, jnp.ones(1), global_layer_options={"scale": 3.0}).tolist() == [3.0]
    other = axon.layer(op, [x])
    assert axon.predict(other, {}, jnp.ones(1), global_layer_options={"scale": 3.0}).tolist() == [1.0]


def test_mode_is_passed_to_layers_that_accept_it():
    def op(x, *, mode):
        return x + (1.0 if mode == "train" else 0.0)

    model = axon.layer(op, [axon.input("x")])
    assert axon.predict(model, {}, jnp.zeros(1)).tolist() == [0.0]
    assert axon.predict(model, {}, jnp.zeros(1), mode="train").prediction.tolist() == [1.0]


def test_train_only_and_inference_only_layers():
    x = axon.input("x")
    plus = axon.layer(lambda v: v + 1, [x], mode="train")
    assert axon.predict(plus, {}, jnp.zeros(1)).tolist() == [0.0]
    assert axon.predict(plus, {}, jnp.zeros(1), mode="train").prediction.tolist() == [1.0]


def test_compile_ahead_of_time():
    state, run = axon.compile(mlp(), axon.template((4, 3)))
    ref = axon.predict(mlp(), state, jnp.ones((4, 3)))
    np.testing.assert_allclose(run(state, jnp.ones((4, 3))), ref, rtol=1e-6)


def test_hooks_run_in_attachment_order_and_modes():
    from axon.hooks import attach_hook

    events = []
    x = axon.input("x")
    y = axon.dense(x, 1, kernel_initializer="ones")
    y = attach_hook(y, lambda v: events.append("first"), on="forward")
    y = attach_hook(y, lambda v: events.append("second"), on="forward")
    y = attach_hook(y, lambda v: events.append("train-only"), on="forward", mode="train")
    y = attach_hook(y, lambda p: events.append(("init", sorted(p))), on="initialize")
    init_fn, predict_fn = axon.build(y)
    state = init_fn(axon.template((1, 2)))
    jax.effects_barrier()
    assert events == [("init", ["bias", "kernel"])]
    events.clear()
    predict_fn(state, jnp.ones((1, 2)))
    jax.effects_barrier()
    assert events == ["first", "second"]


def test_backward_hook_sees_the_output_gradient():
    from axon.hooks import attach_hook

    grads = []
    x = axon.input("x")
    y = attach_hook(axon.dense(x, 1, kernel_initializer="ones"), lambda g: grads.append(np.asarray(g)), on="backward")
    init_fn, predict_fn = axon.build(y, mode="train")
    state = init_fn(axon.template((1, 2)))
    jax.grad(lambda p: 3.0 * jnp.sum(predict_fn(state.update(p), jnp.ones((1, 2))).prediction))(state.trainable_parameters())
    jax.effects_barrier()
    assert len(grads) == 1 and grads[0].tolist() == [[3.0]]


def test_print_values(capfd):
    model = axon.input("x").pipe(axon.relu)
    axon.predict(model, {}, jnp.array([-1.0, 2.0]), print_values=True)
    jax.effects_barrier()
    out = capfd.readouterr().out
    assert "relu_0: [0. 2.]" in out


def test_unknown_init_state_type():
    init_fn, _ = axon.build(mlp())
    with pytest.raises(TypeError, match="init_state"):
        init_fn(axon.template((1, 3)), [1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        init_fn(axon.template((1, 3)), None)


def test_init_accepts_a_state_with_quantized_leaves():
    model = axon.input("x", shape=(None, 4)).pipe(axon.dense, 3)
    state = axon.init(model, axon.template((1, 4)))
    qmodel, qstate = axon.quantization.quantize(model, state)
    init_fn, predict_fn = axon.build(qmodel)
    again = init_fn(axon.template((1, 4)), qstate)
    x = jnp.ones((2, 4))
    np.testing.assert_array_equal(predict_fn(again, x), predict_fn(qstate, x))
