"""Every op of the import table, one small ONNX model each (built with onnx.helper), imported
and compared with onnxruntime."""

import numpy as np
import pytest

import axon
import axon.onnx
from axon.onnx.importer import supported_ops

RNG = np.random.default_rng(0)
F = np.float32


def _r(*shape, positive=False):
    v = RNG.normal(size=shape).astype(F)
    return np.abs(v) + 0.5 if positive else v


def _i(*values):
    return np.array(values, np.int64)


# (case id, op type, inputs {name: array} fed at run time, initializers {name: array}, attributes, extra nodes)
CASES = [
    ("add", "Add", {"a": _r(2, 3), "b": _r(3)}, {}, {}),
    ("add_initializer", "Add", {"a": _r(2, 3)}, {"b": _r(3)}, {}),
    ("sub", "Sub", {"a": _r(2, 3)}, {"b": _r(2, 3)}, {}),
    ("mul", "Mul", {"a": _r(2, 3), "b": _r(2, 1)}, {}, {}),
    ("div", "Div", {"a": _r(2, 3), "b": _r(2, 3, positive=True)}, {}, {}),
    ("pow", "Pow", {"a": _r(2, 3, positive=True)}, {"b": np.array(2.5, F)}, {}),
    ("mod", "Mod", {"a": _r(2, 3)}, {"b": np.array(0.7, F)}, {"fmod": 1}),
    ("sqrt", "Sqrt", {"a": _r(2, 3, positive=True)}, {}, {}),
    ("exp", "Exp", {"a": _r(2, 3)}, {}, {}),
    ("log", "Log", {"a": _r(2, 3, positive=True)}, {}, {}),
    ("neg", "Neg", {"a": _r(2, 3)}, {}, {}),
    ("abs", "Abs", {"a": _r(2, 3)}, {}, {}),
    ("erf", "Erf", {"a": _r(2, 3)}, {}, {}),
    ("relu", "Relu", {"a": _r(2, 3)}, {}, {}),
    ("sigmoid", "Sigmoid", {"a": _r(2, 3)}, {}, {}),
    ("tanh", "Tanh", {"a": _r(2, 3)}, {}, {}),
    ("leaky_relu", "LeakyRelu", {"a": _r(2, 3)}, {}, {"alpha": 0.2}),
    ("elu", "Elu", {"a": _r(2, 3)}, {}, {"alpha": 0.7}),
    ("selu", "Selu", {"a": _r(2, 3)}, {}, {}),
    ("hard_sigmoid", "HardSigmoid", {"a": _r(2, 3)}, {}, {"alpha": 0.3, "beta": 0.4}),
    ("gelu", "Gelu", {"a": _r(2, 3)}, {}, {}),
    ("hard_swish", "HardSwish", {"a": _r(2, 3) * 4}, {}, {}),
    ("softplus", "Softplus", {"a": _r(2, 3)}, {}, {}),
    ("sum", "Sum", {"a": _r(2, 3), "b": _r(3), "c": _r(2, 1)}, {}, {}),
    ("reciprocal", "Reciprocal", {"a": _r(2, 3, positive=True)}, {}, {}),
    ("softmax", "Softmax", {"a": _r(2, 3, 4)}, {}, {"axis": 1}),
    ("log_softmax", "LogSoftmax", {"a": _r(2, 3)}, {}, {}),
    ("clip", "Clip", {"a": _r(2, 3)}, {"lo": np.array(-0.5, F), "hi": np.array(0.5, F)}, {}),
    ("where", "Where", {"c": RNG.normal(size=(2, 3)) > 0, "a": _r(2, 3), "b": _r(2, 3)}, {}, {}),
    ("equal", "Equal", {"a": _i(1, 2, 3).reshape(1, 3), "b": _i(1, 0, 3).reshape(1, 3)}, {}, {}),
    ("cast", "Cast", {"a": _r(2, 3) * 3}, {}, {"to": 6}),
    ("identity", "Identity", {"a": _r(2, 3)}, {}, {}),
    ("dropout", "Dropout", {"a": _r(2, 3)}, {}, {}),
    ("gemm", "Gemm", {"a": _r(2, 3)}, {"w": _r(4, 3), "c": _r(4)}, {"transB": 1, "alpha": 0.5, "beta": 2.0}),
    ("gemm_computed", "Gemm", {"a": _r(3, 2), "w": _r(3, 4)}, {}, {"transA": 1}),
    ("matmul", "MatMul", {"a": _r(2, 5, 3)}, {"w": _r(3, 4)}, {}),
    ("matmul_batched", "MatMul", {"a": _r(2, 5, 3), "b": _r(2, 3, 4)}, {}, {}),
    ("conv", "Conv", {"x": _r(1, 4, 7, 7)}, {"w": _r(6, 2, 3, 3), "b": _r(6)},
     {"strides": [2, 1], "pads": [1, 0, 1, 2], "dilations": [1, 2], "group": 2}),
    ("conv_same", "Conv", {"x": _r(1, 2, 7, 6)}, {"w": _r(3, 2, 3, 3)}, {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ("conv_transpose", "ConvTranspose", {"x": _r(1, 3, 4, 5)}, {"w": _r(3, 2, 3, 3), "b": _r(2)},
     {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 0]}),
    ("max_pool", "MaxPool", {"x": _r(1, 2, 7, 7)}, {}, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("max_pool_ceil", "MaxPool", {"x": _r(1, 2, 6, 6)}, {}, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ("avg_pool", "AveragePool", {"x": _r(1, 2, 6, 6)}, {}, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("avg_pool_include_pad", "AveragePool", {"x": _r(1, 2, 6, 6)}, {},
     {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    ("global_avg_pool", "GlobalAveragePool", {"x": _r(2, 3, 4, 5)}, {}, {}),
    ("global_max_pool", "GlobalMaxPool", {"x": _r(2, 3, 4, 5)}, {}, {}),
    ("batch_norm", "BatchNormalization", {"x": _r(2, 3, 4, 4)},
     {"s": _r(3), "bias": _r(3), "m": _r(3), "v": _r(3, positive=True)}, {"epsilon": 1e-3}),
    ("layer_norm", "LayerNormalization", {"x": _r(2, 3, 4)}, {"s": _r(4), "bias": _r(4)}, {"epsilon": 1e-5}),
    ("instance_norm", "InstanceNormalization", {"x": _r(2, 3, 4, 4)}, {"s": _r(3), "bias": _r(3)}, {}),
    ("flatten", "Flatten", {"x": _r(2, 3, 4)}, {}, {"axis": 2}),
    ("reshape", "Reshape", {"x": _r(2, 3, 4)}, {"shape": _i(0, -1, 2)}, {}),
    ("transpose", "Transpose", {"x": _r(2, 3, 4)}, {}, {"perm": [2, 0, 1]}),
    ("concat", "Concat", {"a": _r(2, 3), "b": _r(2, 2)}, {}, {"axis": 1}),
    ("slice", "Slice", {"x": _r(4, 6)}, {"st": _i(1, -1), "en": _i(4, -7), "ax": _i(0, 1), "sp": _i(2, -2)}, {}),
    ("squeeze", "Squeeze", {"x": _r(2, 1, 3)}, {"axes": _i(1)}, {}),
    ("unsqueeze", "Unsqueeze", {"x": _r(2, 3)}, {"axes": _i(0, -1)}, {}),
    ("gather_embedding", "Gather", {"i": _i(0, 2, 1, 2).reshape(2, 2)}, {"table": _r(3, 4)}, {}),
    ("gather_axis", "Gather", {"x": _r(2, 5, 3)}, {"i": _i(4, -1, 0)}, {"axis": 1}),
    ("expand", "Expand", {"x": _r(3, 1)}, {"shape": _i(2, 1, 4)}, {}),
    ("reduce_mean", "ReduceMean", {"x": _r(2, 3, 4)}, {}, {"axes": [1, 2], "keepdims": 0}),
    ("reduce_sum", "ReduceSum", {"x": _r(2, 3, 4)}, {"axes": _i(-1)}, {}),
    ("reduce_max", "ReduceMax", {"x": _r(2, 3, 4)}, {}, {"axes": [0]}),
    ("pad", "Pad", {"x": _r(2, 3)}, {"pads": _i(0, 2, 1, -1), "value": np.array(1.5, F)}, {"mode": "constant"}),
    ("pad_reflect", "Pad", {"x": _r(1, 2, 4)}, {"pads": _i(0, 0, 2, 0, 0, 1)}, {"mode": "reflect"}),
    ("resize_nearest", "Resize", {"x": _r(1, 2, 3, 4)}, {"roi": np.zeros(0, F), "scales": np.array([1, 1, 2, 2], F)},
     {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}),
    ("resize_linear", "Resize", {"x": _r(1, 2, 3, 4)}, {"roi": np.zeros(0, F), "scales": np.array([1, 1, 2, 3], F)},
     {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}),
]

INPUT_ORDER = {  # the node's input names, in ONNX's order ("" for a left-out optional one)
    "pow": ["a", "b"], "mod": ["a", "b"], "clip": ["a", "lo", "hi"], "where": ["c", "a", "b"], "gemm": ["a", "w", "c"],
    "gemm_computed": ["a", "w"], "matmul": ["a", "w"], "conv": ["x", "w", "b"], "conv_same": ["x", "w"],
    "conv_transpose": ["x", "w", "b"], "batch_norm": ["x", "s", "bias", "m", "v"], "layer_norm": ["x", "s", "bias"],
    "instance_norm": ["x", "s", "bias"], "reshape": ["x", "shape"], "slice": ["x", "st", "en", "ax", "sp"],
    "squeeze": ["x", "axes"], "unsqueeze": ["x", "axes"], "gather_embedding": ["table", "i"], "gather_axis": ["x", "i"],
    "expand": ["x", "shape"], "reduce_sum": ["x", "axes"], "pad": ["x", "pads", "value"], "pad_reflect": ["x", "pads"],
    "resize_nearest": ["x", "roi", "scales"], "resize_linear": ["x", "roi", "scales"], "add_initializer": ["a", "b"],
    "sub": ["a", "b"],
}


def _build(onnx, case):
    name, op_type, feeds, inits, attrs = case
    h, nh = onnx.helper, onnx.numpy_helper
    names = INPUT_ORDER.get(name, list(feeds) + list(inits))
    node = h.make_node(op_type, names, ["y"], name=f"{name}_node", **attrs)
    graph_inputs = [h.make_tensor_value_info(k, h.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in feeds.items()]
    out = h.make_tensor_value_info("y", onnx.TensorProto.UNDEFINED, None)
    graph = h.make_graph([node], name, graph_inputs, [out], [nh.from_array(v, k) for k, v in inits.items()])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 20 if op_type == "Gelu" else 17)])
    return onnx.shape_inference.infer_shapes(model)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_op_matches_onnxruntime(onnx, onnxruntime, case):
    model_proto = _build(onnx, case)
    feeds = case[2]
    session = onnxruntime.InferenceSession(model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, feeds)
    model, state = axon.onnx.import_model(model_proto)
    model, state = axon.deserialize(axon.serialize(model, state))  # every op of an imported graph can be saved
    got = np.asarray(axon.predict(model, state, {k: np.asarray(v) for k, v in feeds.items()}))
    assert got.shape == expected.shape
    if expected.dtype == np.bool_:
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected.astype(got.dtype), rtol=1e-5, atol=1e-5)


def test_every_op_of_the_table_has_a_case():
    covered = {c[1] for c in CASES} | {"Shape", "Constant", "ConstantOfShape", "Split", "LSTM", "GRU"}
    covered |= {"ReduceMin", "ReduceProd"}
    assert set(supported_ops()) <= covered, sorted(set(supported_ops()) - covered)


def test_shape_constant_split_chain(onnx, onnxruntime):
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape, ConstantOfShape and Split, as torch exports them."""
    h, nh, T = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    nodes = [
        h.make_node("Shape", ["x"], ["s"]),
        h.make_node("Constant", [], ["zero"], value=nh.from_array(np.array(0, np.int64))),
        h.make_node("Gather", ["s", "zero"], ["b"], axis=0),
        h.make_node("Unsqueeze", ["b", "ax0"], ["b1"]),
        h.make_node("Concat", ["b1", "rest"], ["target"], axis=0),
        h.make_node("Reshape", ["x", "target"], ["r"]),
        h.make_node("ConstantOfShape", ["cshape"], ["ones"], value=nh.from_array(np.array([1.0], F))),
        h.make_node("Add", ["r", "ones"], ["r1"]),
        h.make_node("Split", ["r1", "sizes"], ["y0", "y1"], axis=1),
        h.make_node("Sub", ["y0", "y1"], ["y"]),
    ]
    inits = [nh.from_array(_i(0), "ax0"), nh.from_array(_i(6), "rest"), nh.from_array(_i(1, 6), "cshape"),
             nh.from_array(_i(3, 3), "sizes")]
    graph = h.make_graph(nodes, "chain", [h.make_tensor_value_info("x", T.FLOAT, ["batch", 2, 3])],
                         [h.make_tensor_value_info("y", T.FLOAT, ["batch", 3])], inits)
    proto = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    x = _r(4, 2, 3)
    (expected,) = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    model, state = axon.onnx.import_model(proto)
    assert axon.get_inputs(model) == {"x": (None, 2, 3)}
    np.testing.assert_allclose(np.asarray(axon.predict(model, state, {"x": x})), expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(axon.predict(model, state, {"x": x[:1]})), expected[:1], rtol=1e-6)


def test_several_outputs_become_a_container_keyed_by_name(onnx, onnxruntime):
    h, T = onnx.helper, onnx.TensorProto
    nodes = [h.make_node("Relu", ["x"], ["pos"]), h.make_node("Neg", ["x"], ["neg"]),
             h.make_node("Shape", ["x"], ["size"])]
    graph = h.make_graph(nodes, "multi", [h.make_tensor_value_info("x", T.FLOAT, [2, 3])],
                         [h.make_tensor_value_info(n, T.FLOAT, [2, 3]) for n in ("pos", "neg")]
                         + [h.make_tensor_value_info("size", T.INT64, [2])])
    proto = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    x = _r(2, 3)
    expected = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    model, state = axon.onnx.import_model(proto)
    out = axon.predict(model, state, {"x": x})
    assert set(out) == {"pos", "neg", "size"}
    for name, ref in zip(["pos", "neg", "size"], expected):
        np.testing.assert_allclose(np.asarray(out[name]), ref)
