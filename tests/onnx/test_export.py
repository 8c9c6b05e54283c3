"""axon.onnx.export: models written op by op, checked by onnx.checker and run by onnxruntime
and the ONNX reference evaluator against axon's inference-mode prediction."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon
from axon import registry
from tests.conformance import check_onnx_export

RNG = np.random.default_rng(0)


def x_of(*shape):
    return jnp.asarray(RNG.normal(size=shape).astype(np.float32))


def build(model, inputs, init_state=None):
    init_fn, predict_fn = axon.build(model)
    state = init_fn(inputs, init_state)
    return state, predict_fn(state, inputs)


def export(model, state, template, **kw):
    import axon.onnx

    return axon.onnx.export(None, model, state, template, **kw)


def run_ort(onnxruntime, proto, feeds):
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {k: np.asarray(v) for k, v in feeds.items()})


def mnist_model():
    """The model of examples/mnist.py (the same constructors, in the same order)."""
    return (
        axon.input("image", shape=(None, 28, 28, 1))
        .pipe(axon.conv, 32, kernel_size=3)
        .pipe(axon.batch_norm)
        .pipe(axon.relu)
        .pipe(axon.max_pool, kernel_size=2)
        .pipe(axon.conv, 64, kernel_size=3)
        .pipe(axon.batch_norm)
        .pipe(axon.relu)
        .pipe(axon.max_pool, kernel_size=2)
        .pipe(axon.flatten)
        .pipe(axon.dropout, rate=0.5)
        .pipe(axon.dense, 128, activation="relu")
        .pipe(axon.dense, 10, activation="softmax")
    )


def _trained_like_state(model, template):
    """Initialized parameters with non-trivial batch-norm statistics (as after training)."""
    state, _ = build(model, jnp.zeros(template.shape, template.dtype))
    data = jax.tree_util.tree_map(np.asarray, state.data)
    for layer in ("batch_norm_0", "batch_norm_1"):
        c = data[layer]["mean"].shape[0]
        data[layer] = {**data[layer], "mean": RNG.normal(size=c).astype(np.float32) * 0.1,
                       "var": RNG.uniform(0.5, 2.0, size=c).astype(np.float32),
                       "gamma": RNG.uniform(0.5, 1.5, size=c).astype(np.float32),
                       "beta": RNG.normal(size=c).astype(np.float32) * 0.1}
    return axon.build(model)[0](jnp.zeros(template.shape, template.dtype), data)


# ---------------------------------------------------------------------------------------
# coverage of the registry


def _import_every_axon_module():
    """Import every module of the package, so that every op registered on import
    (``axon.models`` registers ``"axon.models.*"`` ones) is seen whatever ran before."""
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(axon.__path__, "axon."):
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as e:  # a module that needs a missing optional library
            if (e.name or "").startswith("axon"):
                raise


def test_every_axon_op_has_a_converter_or_a_reason():
    from axon.onnx.export_ops import CONVERTERS, NOT_EXPORTABLE

    _import_every_axon_module()
    assert "axon.models.causal_self_attention" in registry.names("op")
    ops = {name for name in registry.names("op") if name.startswith("axon.")}
    missing = sorted(ops - set(CONVERTERS) - set(NOT_EXPORTABLE))
    assert not missing, f"registered ops with neither an ONNX converter nor a reason in NOT_EXPORTABLE: {missing}"
    assert not set(CONVERTERS) & set(NOT_EXPORTABLE)
    assert set(CONVERTERS) <= ops and set(NOT_EXPORTABLE) <= ops, "a converter for an op that is not registered"
    for family in ("axon.dense", "axon.conv", "axon.conv_transpose", "axon.depthwise_conv", "axon.max_pool",
                   "axon.avg_pool", "axon.global_avg_pool", "axon.batch_norm", "axon.layer_norm", "axon.group_norm",
                   "axon.instance_norm", "axon.gelu", "axon.dropout", "axon.flatten", "axon.concatenate",
                   "axon.embedding", "axon.recurrent", "axon.multi_head_attention", "axon.resize"):
        assert family in CONVERTERS
    assert all(isinstance(r, str) and r for r in NOT_EXPORTABLE.values())


# ---------------------------------------------------------------------------------------
# the MNIST example's model


def test_mnist_model_round_trips_through_onnxruntime(onnx, onnxruntime, tmp_path):
    import axon.onnx

    model = mnist_model()
    template = axon.template((2, 28, 28, 1))
    state = _trained_like_state(model, template)
    path = tmp_path / "mnist.onnx"
    proto = axon.onnx.export(path, model, state, template)
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert [i.name for i in loaded.graph.input] == ["image"]
    assert [d.dim_param or d.dim_value for d in loaded.graph.input[0].type.tensor_type.shape.dim] == ["batch", 28, 28, 1]
    names = {i.name for i in proto.graph.initializer}
    assert {"conv_0.kernel", "conv_0.bias", "batch_norm_0.mean", "batch_norm_0.var", "dense_1.kernel"} <= names
    # another batch size than the template's: the batch is symbolic
    x = RNG.uniform(size=(5, 28, 28, 1)).astype(np.float32)
    _, predict_fn = axon.build(model)
    want = np.asarray(predict_fn(state, jnp.asarray(x)))
    (got,) = run_ort(onnxruntime, loaded, {"image": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert (got.argmax(-1) == want.argmax(-1)).all()


def test_mnist_model_round_trips_axon_onnx_axon(onnx):
    import axon.onnx

    if not hasattr(axon.onnx, "import_model"):
        pytest.skip("axon.onnx.import_model is not available yet")
    model = mnist_model()
    template = axon.template((2, 28, 28, 1))
    state = _trained_like_state(model, template)
    proto = axon.onnx.export(None, model, state, template)
    imported, imported_state = axon.onnx.import_model(proto.SerializeToString())
    x = RNG.uniform(size=(3, 28, 28, 1)).astype(np.float32)
    want = np.asarray(axon.build(model)[1](state, jnp.asarray(x)))
    got = axon.build(imported)[1](imported_state, {"image": jnp.asarray(x)})
    np.testing.assert_allclose(np.asarray(jax.tree_util.tree_leaves(got)[0]), want, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------
# layers and graph features the family tests do not reach


def test_static_batch_and_every_supported_opset(onnx, onnxruntime):
    import axon.onnx
    from axon.onnx.export_graph import MAX_OPSET, MIN_OPSET

    x = axon.input("x", shape=(None, 6, 6, 4))
    y = axon.layer_norm(axon.conv(x, 4, kernel_size=3, padding="same"))
    model = axon.container([
        axon.global_avg_pool(y),
        axon.resize(y, (9, 12), method="bilinear"),
        axon.log_sumexp(y, axis=(1, 2)),
        axon.softmax(y, axis=(1, 3)),
        axon.group_norm(y, 2),
    ])
    xv = x_of(2, 6, 6, 4)
    state, want = build(model, xv)
    for opset in range(MIN_OPSET, MAX_OPSET + 1):
        for dynamic in (True, False):
            proto = axon.onnx.export(None, model, state, xv, opset=opset, dynamic_batch=dynamic)
            assert proto.opset_import[0].version == opset
            got = run_ort(onnxruntime, proto, {"x": xv})
            for g, w in zip(got, jax.tree_util.tree_leaves(want), strict=True):
                np.testing.assert_allclose(g, np.asarray(w), rtol=1e-5, atol=1e-5)
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 6, 6, 4]


def test_blocks_namespaces_constants_and_optional_inputs(onnx, onnxruntime):
    x = axon.input("x", shape=(None, 3))
    extra = axon.input("extra", shape=(None, 3), optional=True)
    shared = axon.block(lambda v: axon.dense(v, 3))
    enc = axon.namespace(axon.dense(x, 3), "encoder")
    y = axon.add([shared(x), shared(axon.tanh(x)), enc])
    y = axon.multiply(y, axon.constant(np.array([1.0, 2.0, 3.0], np.float32)))
    model = axon.container({"y": y, "z": axon.relu(axon.or_else(extra, x)), "s": axon.split(y, 3)})
    xv = x_of(4, 3)
    state, want = build(model, {"x": xv})
    check_onnx_export(model, state, {"x": xv}, want)
    proto = export(model, state, {"x": xv})
    assert [o.name for o in proto.graph.output] == [f"container_0_{i}" for i in range(5)]
    assert {"block_0.dense_0.kernel", "encoder.dense_0.kernel"} <= {i.name for i in proto.graph.initializer}


def test_recurrent_with_initial_state_bidirectional_and_gru_options(onnx, onnxruntime):
    x = axon.input("x", shape=(None, 5, 3))
    h0 = axon.input("h0", shape=(None, 4))
    c0 = axon.input("c0", shape=(None, 4))
    seq, (c, h) = axon.lstm(x, (c0, h0), 4)
    gseq, (gh,) = axon.gru(x, (h0,), 4, use_bias=False)
    bi = axon.bidirectional(x, lambda v: axon.gru(v, 2)[0], axon.concatenate)
    model = axon.container([seq, c, h, gseq, gh, bi])
    inputs = {"x": x_of(2, 5, 3), "h0": x_of(2, 4), "c0": x_of(2, 4)}
    state, want = build(model, inputs)
    assert check_onnx_export(model, state, inputs, want) == []
    ops = [n.op_type for n in export(model, state, inputs).graph.node]
    assert ops.count("LSTM") == 1 and ops.count("GRU") == 3


def test_recurrent_layers_with_a_mask_are_unrolled(onnx, onnxruntime):
    x = axon.input("x", shape=(None, 4, 3))
    tokens = axon.input("t", shape=(None, 4))
    h0 = axon.input("h0", shape=(None, 5))
    m = axon.mask(tokens, 0)
    model = axon.container([axon.lstm(x, 5, mask=m)[0], axon.lstm(x, 5, mask=m)[1][0], axon.gru(x, 5, mask=m)[0],
                            axon.gru(x, (h0,), 5, mask=m, use_bias=False)[1][0]])
    inputs = {"x": x_of(2, 4, 3), "t": jnp.asarray([[1, 2, 0, 0], [3, 0, 1, 1]], jnp.int32), "h0": x_of(2, 5)}
    state, want = build(model, inputs)
    assert check_onnx_export(model, state, inputs, want) == []
    ops = {n.op_type for n in export(model, state, inputs).graph.node}
    assert "LSTM" not in ops and "GRU" not in ops and "Where" in ops


def test_conv_lstm_is_unrolled_with_convs(onnx, onnxruntime):
    x = axon.input("x", shape=(None, 3, 2, 5, 4))
    tokens = axon.input("t", shape=(None, 3))
    seq, (c, h) = axon.conv_lstm(x, 3, kernel_size=(3, 2), strides=(2, 1), padding="same")
    seq_m, (_, h_m) = axon.conv_lstm(x, 2, kernel_size=3, padding="valid", mask=axon.mask(tokens, 0))
    model = axon.container([seq, c, h, seq_m, h_m])
    inputs = {"x": x_of(2, 3, 2, 5, 4), "t": jnp.asarray([[1, 0, 2], [0, 0, 1]], jnp.int32)}
    state, want = build(model, inputs)
    assert check_onnx_export(model, state, inputs, want) == []


def test_recurrent_activations_map_to_onnx_activations(onnx, onnxruntime):
    # (onnx.reference's LSTM/GRU ignore the activations attribute: onnxruntime only)
    x = axon.input("x", shape=(None, 5, 3))
    model = axon.container([axon.gru(x, 4, activation="relu")[0], axon.lstm(x, 3, gate="hard_sigmoid")[1][1],
                            axon.lstm(x, 3, activation="softsign")[0]])
    xv = x_of(2, 5, 3)
    state, want = build(model, xv)
    got = run_ort(onnxruntime, export(model, state, xv), {"x": xv})
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-5, atol=1e-5)


def test_attention_with_masks(onnx, onnxruntime):
    q = axon.input("q", shape=(None, 4, 6))
    kv = axon.input("kv", shape=(None, 5, 8))
    pad = axon.input("m", shape=(None, 5))
    full = axon.input("m3", shape=(None, 4, 5))
    model = axon.container([
        axon.multi_head_attention(q, kv, kv, num_heads=2, key_size=3, value_size=5, output_size=7),
        axon.multi_head_attention(q, num_heads=3, causal=True, use_bias=False),
        axon.multi_head_attention(q, kv, num_heads=2, mask=pad),
        axon.multi_head_attention(q, kv, num_heads=2, mask=full),
    ])
    rows = np.random.default_rng(1).uniform(size=(2, 4, 5)) < 0.5
    rows[1, 2] = False  # a query with every key masked
    inputs = {"q": x_of(2, 4, 6), "kv": x_of(2, 5, 8), "m": jnp.asarray([[True, True, False, True, False], [False] * 5]),
              "m3": jnp.asarray(rows)}
    state, want = build(model, inputs)
    assert check_onnx_export(model, state, inputs, want) == []


def test_pools_and_convs_channels_first_with_dilations(onnx, onnxruntime):
    x = axon.input("x", shape=(None, 3, 9, 8))
    model = axon.container([
        axon.avg_pool(x, kernel_size=3, strides=2, padding="same", dilations=2, channels="first"),
        axon.lp_pool(x, kernel_size=2, norm=3, channels="first"),
        axon.max_pool(x, kernel_size=(3, 2), padding=[(1, 1), (0, 1)], dilations=(1, 2), channels="first"),
        axon.adaptive_avg_pool(x, output_size=(3, 4), channels="first"),
        axon.adaptive_max_pool(x, output_size=(3, 2), channels="first"),
        axon.global_max_pool(x, keep_axes=True, channels="first"),
        axon.conv(x, 4, kernel_size=2, input_dilation=2, kernel_dilation=(1, 2), strides=(2, 1), channels="first"),
        axon.conv(x, 2, kernel_size=3, padding=[(-1, 2), (1, -1)], channels="first"),
        axon.blur_pool(x, channels="first"),
        axon.batch_norm(x, channel_index=1),
    ])
    xv = jnp.abs(x_of(2, 3, 9, 8))
    state, want = build(model, xv)
    assert check_onnx_export(model, state, xv, want) == []


def test_resize_bicubic_and_antialiased_downsampling_from_opset_18(onnx, onnxruntime):
    from axon.onnx.export_graph import UnexportableLayersError

    x = axon.input("x", shape=(None, 5, 6, 2))
    f = axon.input("f", shape=(None, 2, 5, 6))
    model = axon.container([axon.resize(x, (10, 12), method="bicubic"), axon.resize(x, (4, 3), method="bicubic"),
                            axon.resize(f, (3, 4), method="bicubic", channels="first"),
                            axon.resize(x, (3, 4), method="bilinear", antialias=False)])
    inputs = {"x": x_of(2, 5, 6, 2), "f": x_of(2, 2, 5, 6)}
    state, want = build(model, inputs)
    proto = export(model, state, inputs, opset=18)
    for g, w in zip(run_ort(onnxruntime, proto, inputs), want, strict=True):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-5, atol=1e-5)
    with pytest.raises(UnexportableLayersError, match="needs opset 18"):
        export(model, state, inputs, opset=17)
    down = axon.resize(x, (4, 3), method="bilinear")
    with pytest.raises(UnexportableLayersError, match="antialiased bilinear downsampling"):
        export(down, {}, inputs["x"], opset=18)


def test_weight_only_quantized_dense(onnx, onnxruntime):
    from axon.quantization import quantize_model, quantize_model_state

    model = axon.input("x", shape=(None, 6)).pipe(axon.dense, 5, activation="tanh").pipe(axon.dense, 3)
    xv = x_of(4, 6)
    state, _ = build(model, xv)
    qmodel, qstate = quantize_model(model), quantize_model_state(model, state)
    want = axon.build(qmodel)[1](qstate, xv)
    assert check_onnx_export(qmodel, qstate, xv, want) == []
    names = {i.name for i in export(qmodel, qstate, xv).graph.initializer}
    assert {"dense_0.kernel.value", "dense_0.kernel.scale", "dense_0.kernel.zero_point"} <= names


# ---------------------------------------------------------------------------------------
# bad input


def test_unexportable_layers_are_all_listed(onnx):
    from axon.onnx.export_graph import UnexportableLayersError

    x = axon.input("x", shape=(None, 3))
    y = axon.fn(axon.dense(x, 3), lambda v: v * 2, name="doubler")
    y = axon.nx(y, jnp.sin) if hasattr(axon, "nx") else axon.fn(y, jnp.sin)
    z = axon.resize(axon.reshape(x, ("batch", 3, 1, 1)), (2, 2), method="lanczos3")
    model = axon.container([axon.dense(y, 2), z])
    xv = x_of(2, 3)
    state, _ = build(model, xv)
    with pytest.raises(UnexportableLayersError) as info:
        export(model, state, xv)
    layers = {(path, op) for path, op, _ in info.value.layers}
    assert ("doubler", "axon.fn") in layers and ("resize_0", "axon.resize") in layers
    assert len(layers) == 3, layers
    message = str(info.value)
    assert "3 layer(s) cannot be exported" in message and "'doubler' (op axon.fn)" in message
    assert "lanczos3" in message


def test_a_bfloat16_policy_is_reported(onnx):
    from axon.onnx.export_graph import UnexportableLayersError

    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2).pipe(axon.relu)
    policy = axon.mixed_precision.create_policy(params="f32", compute="bf16", output="bf16")
    mixed = axon.mixed_precision.apply_policy(model, policy)
    state, _ = build(mixed, x_of(1, 3))
    with pytest.raises(UnexportableLayersError, match=r"'dense_0' \(op axon.dense\): a mixed-precision policy"):
        export(mixed, state, axon.template((1, 3)))


@pytest.mark.parametrize("opset", [12, 22, 17.0, "17", True])
def test_unsupported_opsets_are_rejected(onnx, opset):
    model = axon.input("x", shape=(None, 3)).pipe(axon.relu)
    with pytest.raises(ValueError, match=r"opset to be an int from 13 to 21, got"):
        export(model, {}, axon.template((1, 3)), opset=opset)


def test_wrong_templates_and_states_are_rejected(onnx):
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2)
    state, _ = build(model, x_of(1, 3))
    with pytest.raises(ValueError, match=r"onnx.export: input 'x' has shape \(1, 4\), but the model declares \(None, 3\)"):
        export(model, state, axon.template((1, 4)))
    with pytest.raises(ValueError, match="onnx.export"):
        export(model, state, {"y": axon.template((1, 3))})
    with pytest.raises(ValueError, match=r"no value for parameter 'kernel' of layer 'dense_0'"):
        export(model, {}, axon.template((1, 3)))
    with pytest.raises(TypeError, match="axon graph"):
        export("model", state, axon.template((1, 3)))
    with pytest.raises(TypeError, match="dynamic_batch"):
        export(model, state, axon.template((1, 3)), dynamic_batch="yes")


def test_import_axon_does_not_import_onnx():
    import subprocess
    import sys

    code = "import sys, axon, axon.onnx; print('onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------
# the tensor ops of axon.layers.tensor: dtypes and edge cases, against NumPy


def _tensor_op_cases():
    from axon import layers

    f = np.array([[-7.5, -4.0, 3.25, 0.5], [2.0, -0.75, 9.0, -2.5]], np.float32)
    i = np.array([[-7, 7, -3, 8], [5, -6, 0, 1]], np.int32)
    j = np.array([[2, -2, 2, 3], [-3, 4, 1, -1]], np.int32)
    return [
        ("int_divide", layers.divide, [i, j], {}, np.trunc(i / j).astype(np.int32)),
        ("int_remainder", layers.remainder, [i, j], {}, np.mod(i, j)),
        ("int_fmod", layers.remainder, [i, j], {"fmod": True}, np.fmod(i, j)),
        ("float_remainder_signs", layers.remainder, [f, np.array([2.0, -2.0, 2.0, -0.5], np.float32)], {},
         np.mod(f, np.array([2.0, -2.0, 2.0, -0.5], np.float32))),
        ("int_power_float_exponent", layers.power, [np.abs(i), np.full((2, 4), 0.5, np.float32)], {},
         (np.abs(i).astype(np.float32) ** 0.5).astype(np.int32)),
        ("equal_int_float", layers.equal, [i, np.where(i > 0, i, 0.5).astype(np.float32)], {}, i == np.where(i > 0, i, 0.5)),
        ("clip_only_max", layers.clip, [f], {"max": 1.0}, np.minimum(f, 1.0)),
        ("clip_int", layers.clip, [i], {"min": -2, "max": 4}, np.clip(i, -2, 4)),
        ("where_int_condition", layers.where, [np.array([[0, 2, -1, 0]] * 2, np.int32), f, -f], {},
         np.where(np.array([[0, 2, -1, 0]] * 2) != 0, f, -f)),
        ("cast_to_int", layers.cast, [f], {"dtype": "int32"}, np.trunc(f).astype(np.int32)),
        ("cast_to_bool", layers.cast, [f * (np.abs(f) > 1)], {"dtype": "bool"}, (f * (np.abs(f) > 1)) != 0),
        ("cast_bool_to_float", layers.cast, [f > 0], {"dtype": "float32"}, (f > 0).astype(np.float32)),
        ("gather_out_of_range", layers.gather, [f, np.array([10, -1, -9, 0], np.int32)], {"axis": 1},
         np.take(f, [3, 3, 0, 0], axis=1)),
        ("reduce_prod", layers.reduce, [f], {"kind": "prod", "axes": (1,), "keepdims": True}, f.prod(1, keepdims=True)),
        ("reduce_min_int", layers.reduce, [i], {"kind": "min", "axes": (-1,), "keepdims": False}, i.min(-1)),
        ("reduce_mean_int", layers.reduce, [i], {"kind": "mean", "axes": None, "keepdims": False},
         np.float32(i.mean())),
        ("reduce_no_axes", layers.reduce, [f], {"kind": "sum", "axes": (), "keepdims": True}, f),
        ("slice_reversed", layers.slice_axes, [f], {"starts": (-1,), "ends": (-100,), "axes": (1,), "steps": (-1,)},
         f[:, -1:-100:-1]),
        ("slice_clamped", layers.slice_axes, [f], {"starts": (-10, 1), "ends": (10, 99), "axes": (0, 1)}, f[-10:10, 1:99]),
        ("pad_edge_cropped", layers.pad_axes, [f], {"pads": ((-1, 2), (1, -1)), "method": "edge"},
         np.pad(f[1:, :-1], [(0, 2), (1, 0)], mode="edge")),
        ("pad_crop_only", layers.pad_axes, [f], {"pads": ((0, -1), (-2, 0))}, f[:-1, 2:]),
        ("broadcast_up", layers.broadcast, [f[:, :1]], {"shape": (3, 1, 4)}, np.broadcast_to(f[:, :1], (3, 2, 4))),
        ("matmul_vector", layers.matmul, [f, np.arange(4, dtype=np.float32)], {}, f @ np.arange(4, dtype=np.float32)),
        ("negative_int", layers.negative, [i], {}, -i),
        ("absolute_int", layers.absolute, [i], {}, np.abs(i)),
        ("sqrt_int", layers.sqrt, [np.abs(i)], {}, np.sqrt(np.abs(i)).astype(np.float32)),
    ]


@pytest.mark.parametrize("case", _tensor_op_cases(), ids=lambda c: c[0])
def test_tensor_ops_dtypes_and_edge_cases(onnx, onnxruntime, case):
    from onnx.reference import ReferenceEvaluator

    _, fn, arrays, opts, expected = case
    xs = [axon.input(f"x{k}") for k in range(len(arrays))]
    model = axon.layer(fn, xs, op_name=fn.__name__, **opts)
    feeds = {f"x{k}": a for k, a in enumerate(arrays)}
    inputs = {k: jnp.asarray(v) for k, v in feeds.items()}
    ours = np.asarray(axon.predict(model, {}, inputs))
    np.testing.assert_allclose(ours, expected, rtol=1e-6)  # axon itself against NumPy
    proto = export(model, axon.init(model, inputs), inputs, dynamic_batch=False)
    for got in (run_ort(onnxruntime, proto, feeds)[0], ReferenceEvaluator(proto).run(None, feeds)[0]):
        assert got.dtype == ours.dtype and got.shape == ours.shape
        np.testing.assert_allclose(got, expected, rtol=1e-6)
