"""Bad input to axon.onnx.import_model: clear errors naming the node, op and values."""

import numpy as np
import pytest

import axon.onnx
from axon.onnx.importer import OnnxImportError


def _model(onnx, nodes, inputs, outputs, initializers=(), opset=17):
    h = onnx.helper
    graph = h.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])


def _relu_model(onnx, opset=17):
    h, T = onnx.helper, onnx.TensorProto
    return _model(onnx, [h.make_node("Relu", ["x"], ["y"], name="act")], [h.make_tensor_value_info("x", T.FLOAT, [1, 4])],
                  [h.make_tensor_value_info("y", T.FLOAT, [1, 4])], opset=opset)


def test_truncated_file(onnx, tmp_path):
    data = _relu_model(onnx).SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(OnnxImportError, match="not an ONNX model|not a valid ONNX model"):
        axon.onnx.import_model(path)


def test_non_onnx_bytes(onnx, tmp_path):
    with pytest.raises(OnnxImportError, match="not an ONNX model|not a valid ONNX model"):
        axon.onnx.import_model(b"PK\x03\x04 this is a zip file, not a model")
    path = tmp_path / "model.onnx"
    path.write_text("import os; os.system('echo pwned')")
    with pytest.raises(OnnxImportError):
        axon.onnx.import_model(path)


def test_missing_file_and_bad_source(onnx, tmp_path):
    with pytest.raises(OnnxImportError, match="no ONNX file"):
        axon.onnx.import_model(tmp_path / "nope.onnx")
    with pytest.raises(TypeError, match="path, bytes or an onnx.ModelProto"):
        axon.onnx.import_model(42)
    with pytest.raises(TypeError, match="dims"):
        axon.onnx.import_model(_relu_model(onnx), dims={"batch": "one"})


def test_unknown_dims_are_rejected(onnx):
    h, T = onnx.helper, onnx.TensorProto
    m = _model(onnx, [h.make_node("Relu", ["x"], ["y"])], [h.make_tensor_value_info("x", T.FLOAT, ["batch", 4])],
               [h.make_tensor_value_info("y", T.FLOAT, ["batch", 4])])
    with pytest.raises(OnnxImportError, match=r"dims names \['bacth'\], which no input uses; .* \['batch'\]"):
        axon.onnx.import_model(m, dims={"bacth": 2})
    model, _ = axon.onnx.import_model(m, dims={"batch": 2})
    assert axon.get_inputs(model) == {"x": (2, 4)}


def test_opset_below_13(onnx):
    with pytest.raises(OnnxImportError, match="opset 12 .* opset 13 or later"):
        axon.onnx.import_model(_relu_model(onnx, opset=12))


def test_unsupported_ops_are_all_listed_with_counts(onnx):
    h, T = onnx.helper, onnx.TensorProto
    nodes = [
        h.make_node("Relu", ["x"], ["a"]),
        h.make_node("Sin", ["a"], ["b"]),
        h.make_node("Cos", ["b"], ["c"]),
        h.make_node("Sin", ["c"], ["d"]),
        h.make_node("Custom", ["d"], ["y"], domain="my.ops"),
    ]
    m = _model(onnx, nodes, [h.make_tensor_value_info("x", T.FLOAT, [1, 4])], [h.make_tensor_value_info("y", T.FLOAT, [1, 4])])
    m.opset_import.append(h.make_opsetid("my.ops", 1))
    with pytest.raises(OnnxImportError) as info:
        axon.onnx.import_model(m)
    message = str(info.value)
    assert "3 op type(s)" in message
    assert "Sin (2 nodes)" in message and "Cos (1 node)" in message and "my.ops:Custom (1 node)" in message


def test_unresolvable_dynamic_shape_names_the_node(onnx):
    h, T = onnx.helper, onnx.TensorProto
    # the reshape target is a model input: only known when the model runs
    nodes = [h.make_node("Reshape", ["x", "shape"], ["y"], name="reshape_by_input")]
    m = _model(onnx, nodes, [h.make_tensor_value_info("x", T.FLOAT, ["batch", 4]), h.make_tensor_value_info("shape", T.INT64, [2])],
               [h.make_tensor_value_info("y", T.FLOAT, ["a", "b"])])
    with pytest.raises(OnnxImportError, match=r"node 'reshape_by_input' \(Reshape\): the target shape \(input 'shape'\) must be known"):
        axon.onnx.import_model(m)


def test_two_dynamic_sizes_in_one_reshape(onnx):
    h, T = onnx.helper, onnx.TensorProto
    nodes = [
        h.make_node("Shape", ["x"], ["s"], name="shape", start=0, end=2),
        h.make_node("Mul", ["s", "t"], ["target"], name="times"),  # (batch, 4 * time)
        h.make_node("Reshape", ["x", "target"], ["z"], name="two_dynamic"),
    ]
    t = onnx.numpy_helper.from_array(np.array([1, 4], np.int64), "t")
    m = _model(onnx, nodes, [h.make_tensor_value_info("x", T.FLOAT, ["batch", "time", 4])],
               [h.make_tensor_value_info("z", T.FLOAT, ["a", 4])], [t])
    with pytest.raises(OnnxImportError, match=r"'two_dynamic' \(Reshape\).*dims="):
        axon.onnx.import_model(m)
    model, _ = axon.onnx.import_model(m, dims={"batch": 2})  # fixing one size resolves it
    assert axon.get_inputs(model) == {"x": (2, None, 4)}
    assert axon.predict(model, {}, {"x": np.zeros((2, 3, 4), np.float32)}).shape == (2, 12)


def test_external_data_outside_the_model_folder(onnx, tmp_path):
    h, T = onnx.helper, onnx.TensorProto
    w = onnx.numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    m = _model(onnx, [h.make_node("MatMul", ["x", "w"], ["y"])], [h.make_tensor_value_info("x", T.FLOAT, [1, 4])],
               [h.make_tensor_value_info("y", T.FLOAT, [1, 4])], [w])
    folder = tmp_path / "model"
    folder.mkdir()
    onnx.save_model(m, str(folder / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin",
                    size_threshold=0)
    _, state = axon.onnx.import_model(folder / "m.onnx")  # inside the folder: fine
    np.testing.assert_allclose(np.asarray(state["w"]["kernel"]), np.ones((4, 4)))
    proto = onnx.load(str(folder / "m.onnx"), load_external_data=False)
    for entry in proto.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../secret.bin"
    (tmp_path / "secret.bin").write_bytes(np.ones(16, np.float32).tobytes())
    onnx.save_model(proto, str(folder / "evil.onnx"))
    with pytest.raises(OnnxImportError, match="outside the model's folder"):
        axon.onnx.import_model(folder / "evil.onnx")
    with pytest.raises(OnnxImportError, match="external files"):
        axon.onnx.import_model(proto)


def test_a_constant_of_dynamic_shape_only_broadcasts(onnx):
    h, T = onnx.helper, onnx.TensorProto
    nodes = [
        h.make_node("Shape", ["x"], ["s"]),
        h.make_node("ConstantOfShape", ["s"], ["ones"], name="ones", value=onnx.numpy_helper.from_array(np.array([2.0], np.float32))),
        h.make_node("Mul", ["x", "ones"], ["y"], name="scale"),  # broadcasting: fine
        h.make_node("Concat", ["y", "ones"], ["z"], name="join", axis=1),  # needs the real size: an error
    ]
    m = _model(onnx, nodes[:3], [h.make_tensor_value_info("x", T.FLOAT, ["batch", 3])], [h.make_tensor_value_info("y", T.FLOAT, ["batch", 3])])
    model, state = axon.onnx.import_model(m)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(np.asarray(axon.predict(model, state, {"x": x})), 2 * x)
    m = _model(onnx, nodes, [h.make_tensor_value_info("x", T.FLOAT, ["batch", 3])], [h.make_tensor_value_info("z", T.FLOAT, ["batch", 6])])
    with pytest.raises(OnnxImportError, match=r"node 'join' \(Concat\): input 'ones' is a constant whose shape depends on dynamic"):
        axon.onnx.import_model(m)


def test_a_dynamic_size_used_as_data_raises(onnx):
    """x / sqrt(seq_len) with a dynamic sequence length: the size is unknown when importing."""
    h, T = onnx.helper, onnx.TensorProto
    nodes = [
        h.make_node("Shape", ["x"], ["s"]),
        h.make_node("Gather", ["s", "one"], ["n"], axis=0),
        h.make_node("Cast", ["n"], ["nf"], to=T.FLOAT),
        h.make_node("Sqrt", ["nf"], ["root"]),
        h.make_node("Div", ["x", "root"], ["y"], name="scale_by_length"),
    ]
    one = onnx.numpy_helper.from_array(np.array(1, np.int64), "one")
    m = _model(onnx, nodes, [h.make_tensor_value_info("x", T.FLOAT, [2, "seq"])], [h.make_tensor_value_info("y", T.FLOAT, [2, "seq"])],
               [one])
    with pytest.raises(OnnxImportError, match=r"'scale_by_length' \(Div\): a value computed from dynamic input sizes"):
        axon.onnx.import_model(m)
    model, state = axon.onnx.import_model(m, dims={"seq": 4})
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(np.asarray(axon.predict(model, state, {"x": x})), x / 2.0)
