"""Weight-only int8 quantization: QTensor against a NumPy reference, model and state
rewrites, accuracy, memory, and serialization of quantized models."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy

import axon
from axon.quantization import (
    QTensor,
    quantize,
    quantize_model,
    quantize_model_state,
    quantized_dense,
    weight_only_quantized_dense,
)

RNG = np.random.default_rng(1)


def np_quantize(x):
    """Axon's symmetric per-output-channel int8 rule, in NumPy float32."""
    x = np.asarray(x, np.float32)
    max_abs = np.maximum(-np.minimum(x.min(axis=0), 0), np.maximum(x.max(axis=0), 0)).astype(np.float32)
    scale = np.clip(max_abs / np.float32(127.5), np.finfo(np.float32).eps, None).astype(np.float32)
    scaled = x / scale
    value = np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + np.float32(0.5)), -128, 127).astype(np.int8)
    return value, scale


def assert_quantized(actual, x):
    """``actual`` equals the reference, except by one step where ``x / scale`` sits on a
    rounding tie (the largest magnitude of each column maps to exactly 127.5, so float
    rounding decides between -127 and -128 there)."""
    value, scale = np_quantize(x)
    scaled = np.asarray(x, np.float32) / scale
    ties = np.abs(np.abs(scaled) % 1 - 0.5) < 1e-4
    actual = np.asarray(actual).astype(np.int64)
    diff = np.abs(actual - value)
    assert np.all(diff <= 1) and np.all(ties[diff == 1])


def mlp():
    return (
        axon.input("x", shape=(None, 64))
        .pipe(axon.dense, 32, activation="relu")
        .pipe(axon.layer_norm)
        .pipe(axon.dense, 10)
    )


def test_from_tensor_matches_the_numpy_reference():
    x = RNG.normal(size=(48, 16)).astype(np.float32)
    x[:, 3] = 0.0  # an all-zero column gets the smallest scale, not a division by zero
    q = QTensor.from_tensor(x)
    value, scale = np_quantize(x)
    assert_quantized(q.value, x)
    np.testing.assert_allclose(np.asarray(q.scale), scale, rtol=1e-6)  # XLA may divide via a reciprocal
    assert np.mean(np.asarray(q.value) == value) > 0.98
    assert q.value.dtype == jnp.int8 and q.scale.shape == (16,) and q.zero_point.tolist() == [0] * 16
    assert float(q.scale[3]) == np.finfo(np.float32).eps
    # hand-computed: column max 2.0 -> scale 2/127.5; 1.0 -> 63.75 -> 64
    small = QTensor.from_tensor(np.array([[2.0], [1.0], [-0.5]], np.float32))
    assert small.value[1:].tolist() == [[64], [-32]]
    assert abs(float(small.scale[0]) - 2 / 127.5) < 1e-9


def test_dequantize_error_is_at_most_half_a_step():
    x = RNG.normal(size=(100, 7)).astype(np.float32) * RNG.uniform(0.1, 10, size=7).astype(np.float32)
    q = QTensor.from_tensor(x)
    err = np.abs(np.asarray(q.dequantize()) - x)
    assert np.all(err <= np.asarray(q.scale) * 0.5 + 1e-6)
    assert q.dequantize(jnp.bfloat16).dtype == jnp.bfloat16


@pytest.mark.parametrize(
    "x, kwargs, match",
    [
        (np.ones(3, np.float32), {}, "rank-2"),
        (np.ones((2, 2, 2), np.float32), {}, "rank-2"),
        (np.ones((2, 2), np.int32), {}, "floating"),
        (np.ones((2, 2), np.float32), {"dtype": "int4"}, "only dtype='int8'"),
        (np.ones((2, 2), np.float32), {"dtype": "uint8"}, "only dtype='int8'"),
    ],
)
def test_from_tensor_errors(x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        QTensor.from_tensor(x, **kwargs)
    QTensor.from_tensor(np.ones((2, 2), np.float32), dtype="s8")


def test_qtensor_is_a_pytree_and_a_quarter_of_the_bytes():
    kernel = RNG.normal(size=(256, 64)).astype(np.float32)
    q = QTensor.from_tensor(kernel)
    assert len(jax.tree_util.tree_leaves(q)) == 3
    assert q.value.nbytes * 4 == kernel.nbytes
    assert q.nbytes == kernel.nbytes // 4 + 64 * 4 + 64 * 4
    doubled = jax.jit(lambda t: jax.tree_util.tree_map(lambda a: a * 2, t))(q)
    assert isinstance(doubled, QTensor) and doubled.value.dtype == jnp.int8
    assert q.shape == (256, 64) and q.ndim == 2 and q.dtype == jnp.int8 and repr(q) == "QTensor<s8[256, 64]>"


def test_functional_op_against_numpy():
    x = RNG.normal(size=(2, 3, 8)).astype(np.float32)
    w = RNG.normal(size=(8, 5)).astype(np.float32)
    b = RNG.normal(size=(5,)).astype(np.float32)
    q = QTensor.from_tensor(w)
    value, scale = np.asarray(q.value), np.asarray(q.scale)
    expected = (x.astype(np.float64) @ value.astype(np.float64)) * scale + b
    np.testing.assert_allclose(np.asarray(weight_only_quantized_dense(x, q, b)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(quantized_dense(x, q)), expected - b, rtol=1e-5, atol=1e-5)
    # a non-zero zero point is honoured: (value - zero_point) * scale
    shifted = QTensor(q.value, q.scale, jnp.full((5,), 3, jnp.int32))
    expected_shifted = (x.astype(np.float64) @ (value.astype(np.float64) - 3)) * scale
    np.testing.assert_allclose(np.asarray(quantized_dense(x, shifted)), expected_shifted, rtol=1e-5, atol=1e-4)
    with pytest.raises(TypeError, match="QTensor"):
        quantized_dense(x, w)
    with pytest.raises(ValueError, match="does not fit"):
        quantized_dense(np.ones((2, 3), np.float32), q)


def test_quantize_model_keeps_names_and_rewrites_every_dense_layer():
    shared = axon.block(lambda v: axon.dense(v, 4, name="inner"))
    x = axon.input("x", shape=(None, 4))
    model = axon.namespace(axon.dense(shared(x), 4), "enc").pipe(shared).pipe(axon.dense, 2, activation="tanh")
    q = quantize_model(model)
    assert axon.properties(q) == axon.properties(model)
    ops = [n for n in q.nodes.values() if n.op_name == "dense"]
    assert ops and all(n.op is quantized_dense for n in ops)
    block_nodes = [n for n in q.nodes.values() if n.op == "block"]
    assert len({id(n.opts["block"]) for n in block_nodes}) == 1  # still one shared block
    inner = block_nodes[0].opts["block"].graph
    assert [n.op for n in inner.nodes.values() if n.op_name == "dense"] == [quantized_dense]
    # the original model is untouched
    assert all(n.op is axon.layers.dense for n in model.nodes.values() if n.op_name == "dense")
    assert [n.meta for n in ops if n.meta] == [n.meta for n in model.nodes.values() if n.op_name == "dense" and n.meta]


def test_quantize_model_state_quantizes_kernels_and_freezes_those_layers():
    model = mlp()
    state = axon.init(model, axon.template((1, 64)))
    qstate = quantize_model_state(model, state)
    for layer in ("dense_0", "dense_1"):
        kernel = qstate[layer]["kernel"]
        assert isinstance(kernel, QTensor)
        assert_quantized(kernel.value, state[layer]["kernel"])
        assert qstate[layer]["bias"] is state[layer]["bias"]
    assert qstate.frozen_paths == {(layer, p) for layer in ("dense_0", "dense_1") for p in ("kernel", "bias")}
    assert qstate["layer_norm_0"] is not None and ("layer_norm_0", "gamma") not in qstate.frozen_paths
    assert not isinstance(state["dense_0"]["kernel"], QTensor)  # input not modified
    # idempotent, and a plain dict works too
    again = quantize_model_state(model, qstate)
    assert again["dense_0"]["kernel"] is qstate["dense_0"]["kernel"]
    plain = quantize_model_state(model, state.data)
    assert isinstance(plain["dense_1"]["kernel"], QTensor)
    # the kernels take a quarter of the memory
    f32 = sum(state[layer]["kernel"].nbytes for layer in ("dense_0", "dense_1"))
    assert sum(qstate[layer]["kernel"].value.nbytes for layer in ("dense_0", "dense_1")) * 4 == f32


def test_quantized_predictions_stay_close_to_float():
    model = mlp()
    state = axon.init(model, axon.template((1, 64)), seed=4)
    qmodel, qstate = quantize(model, state)
    x = RNG.normal(size=(32, 64)).astype(np.float32)
    expected = np.asarray(axon.predict(model, state, x))
    got = np.asarray(axon.predict(qmodel, qstate, x))
    rel = np.linalg.norm(got - expected) / np.linalg.norm(expected)
    assert rel < 1e-2, rel
    # and match an independent NumPy forward pass with the quantized weights
    h = x.astype(np.float64)
    q0, q1 = qstate["dense_0"]["kernel"], qstate["dense_1"]["kernel"]
    v0, s0 = np.asarray(q0.value, np.float64), np.asarray(q0.scale, np.float64)
    h = np.maximum(h @ v0 * s0 + np.asarray(state["dense_0"]["bias"]), 0)
    h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5)
    h = h * np.asarray(state["layer_norm_0"]["gamma"]) + np.asarray(state["layer_norm_0"]["beta"])
    v1, s1 = np.asarray(q1.value, np.float64), np.asarray(q1.scale, np.float64)
    np.testing.assert_allclose(got, h @ v1 * s1 + np.asarray(state["dense_1"]["bias"]), rtol=1e-4, atol=1e-4)


def test_weight_only_quantized_dense_constructor():
    x = axon.input("x", shape=(None, 6))
    model = weight_only_quantized_dense(x, 3, kernel_initializer="ones").pipe(
        weight_only_quantized_dense, 2, use_bias=False
    )
    assert axon.properties(model) == {"x": "input", "dense_0": "dense", "dense_1": "dense"}
    state = axon.init(model, axon.template((1, 6)))
    assert isinstance(state["dense_0"]["kernel"], QTensor) and "bias" not in state["dense_1"]
    assert state["dense_0"]["kernel"].value.tolist() == [[127] * 3] * 6
    out = axon.predict(model, state, np.ones((2, 6), np.float32))
    assert out.shape == (2, 2)
    with pytest.raises(ValueError, match="units"):
        weight_only_quantized_dense(x, 0)


def test_quantized_models_round_trip_through_serialization(tmp_path):
    model = mlp()
    state = axon.init(model, axon.template((1, 64)))
    qmodel, qstate = quantize(model, state)
    path = tmp_path / "q.axon"
    axon.save(path, qmodel, qstate)
    loaded, loaded_state = axon.load(path)
    kernel = loaded_state["dense_0"]["kernel"]
    assert isinstance(kernel, QTensor) and kernel.value.dtype == jnp.int8
    np.testing.assert_array_equal(np.asarray(kernel.value), np.asarray(qstate["dense_0"]["kernel"].value))
    assert loaded_state.frozen_paths == qstate.frozen_paths
    x = RNG.normal(size=(4, 64)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(axon.predict(loaded, loaded_state, x)), np.asarray(axon.predict(qmodel, qstate, x)))
    # the file stores the int8 values: a quarter of the float kernels' bytes
    tensors = safetensors.numpy.load_file(str(path))
    assert tensors["dense_0.kernel.value"].dtype == np.int8
    assert tensors["dense_0.kernel.value"].nbytes * 4 == state["dense_0"]["kernel"].nbytes
    assert tensors["dense_0.kernel.scale"].shape == (32,)
    # a quantized constructor's initializer is saved too: a loaded model initializes the same
    built = weight_only_quantized_dense(axon.input("x", shape=(None, 3)), 2)
    fresh = axon.init(built, axon.template((1, 3)), seed=5)
    reloaded, _ = axon.deserialize(axon.serialize(built, fresh))
    again = axon.init(reloaded, axon.template((1, 3)), seed=5)
    np.testing.assert_array_equal(np.asarray(again["dense_0"]["kernel"].value), np.asarray(fresh["dense_0"]["kernel"].value))
