"""Round trips through axon.onnx: a torch model's ONNX file imported with
``axon.onnx.import_model`` and exported again with ``axon.onnx.export`` runs in onnxruntime to
the original file's outputs (import -> export loses nothing), and axon's transformer models
(``axon.models.gpt2``, ``axon.models.bert``) export and run in onnxruntime to axon's outputs."""

import jax
import jax.numpy as jnp
import numpy as np

import axon
import axon.models
import axon.onnx
from tests.onnx.test_import_torch import _cnn, _export, _resnet18

RNG = np.random.default_rng(0)


def _ort(onnxruntime, model, feeds):
    source = model if isinstance(model, str) else model.SerializeToString()
    session = onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run(None, {k: np.asarray(v) for k, v in feeds.items()})


def _import_export_matches_original(onnx, onnxruntime, path, feeds, *, dims=None, dynamic_batch=True):
    model, state = axon.onnx.import_model(path, dims=dims)
    template = {k: jnp.asarray(v) for k, v in feeds.items()}
    proto = axon.onnx.export(None, model, state, template, dynamic_batch=dynamic_batch)
    onnx.checker.check_model(proto, full_check=True)
    want = _ort(onnxruntime, str(path), feeds)
    got = _ort(onnxruntime, proto, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    # the exported parameters are the imported ones, by their state paths
    names = {i.name for i in proto.graph.initializer}
    assert all(".".join(p) in names for p in state.state_paths if len(p) == 2)
    return proto


def test_torch_cnn_imports_and_exports_back_losslessly(torch, onnx, onnxruntime, tmp_path):
    net = _cnn(torch)
    x = RNG.normal(size=(2, 3, 16, 16)).astype(np.float32)
    path = _export(torch, net, torch.from_numpy(x), tmp_path / "cnn.onnx")
    proto = _import_export_matches_original(onnx, onnxruntime, path, {"x": x})
    # the batch stays symbolic: another batch size runs
    x5 = RNG.normal(size=(5, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(_ort(onnxruntime, proto, {"x": x5})[0], _ort(onnxruntime, str(path), {"x": x5})[0],
                               rtol=1e-4, atol=1e-5)


def test_torch_resnet_imports_and_exports_back_losslessly(torch, onnx, onnxruntime, tmp_path):
    net = _resnet18(torch)
    x = RNG.normal(size=(2, 3, 32, 32)).astype(np.float32)
    path = _export(torch, net, torch.from_numpy(x), tmp_path / "resnet18.onnx")
    proto = _import_export_matches_original(onnx, onnxruntime, path, {"x": x})
    assert sum(n.op_type == "Conv" for n in proto.graph.node) == 20


def test_torch_transformer_encoder_imports_and_exports_back_losslessly(torch, onnx, onnxruntime, tmp_path):
    nn = torch.nn
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True)
    net = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    x = RNG.normal(size=(2, 6, 16)).astype(np.float32)
    path = _export(torch, net, torch.from_numpy(x), tmp_path / "encoder.onnx", dynamic_batch=False)
    _import_export_matches_original(onnx, onnxruntime, path, {"x": x}, dynamic_batch=False)


def _random_state(model, template, scale=0.3):
    """Parameters drawn far from the initializers' small values (logits far apart)."""
    state = axon.init(model, template)
    rng = np.random.default_rng(1)
    data = jax.tree_util.tree_map(lambda v: (rng.normal(size=np.shape(v)) * scale).astype(np.asarray(v).dtype), state.data)
    return axon.init(model, template, data)


def test_gpt2_exports_to_onnx(onnx, onnxruntime):
    config = axon.models.GPT2Config(vocab_size=64, n_positions=24, n_embd=16, n_layer=2, n_head=2)
    model = axon.models.gpt2(config)
    ids = RNG.integers(0, 64, (2, 7)).astype(np.int32)
    mask = np.ones((2, 7), np.int32)
    mask[1, :2] = 0  # left padding
    inputs = {"input_ids": jnp.asarray(ids), "attention_mask": jnp.asarray(mask)}
    state = _random_state(model, inputs)
    want = np.asarray(axon.predict(model, state, inputs))
    proto = axon.onnx.export(None, model, state, inputs)
    assert {"wte.kernel", "wpe.kernel"} <= {i.name for i in proto.graph.initializer}
    assert "lm_head.kernel" not in {i.name for i in proto.graph.initializer}  # tied: one table
    (got,) = _ort(onnxruntime, proto, {"input_ids": ids, "attention_mask": mask})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # without the optional mask
    no_mask = {"input_ids": jnp.asarray(ids)}
    (got,) = _ort(onnxruntime, axon.onnx.export(None, model, state, no_mask), {"input_ids": ids})
    np.testing.assert_allclose(got, np.asarray(axon.predict(model, state, no_mask)), rtol=1e-4, atol=1e-4)


def test_gpt2_decode_model_is_reported_not_exportable(onnx):
    config = axon.models.GPT2Config(vocab_size=64, n_positions=24, n_embd=16, n_layer=1, n_head=2)
    model = axon.models.gpt2(config, decode=True)
    inputs = {"input_ids": axon.template((1, 1), "int32"), "position": axon.template((), "int32"),
              "cache": axon.template((1, 2, 1, 8, 2, 8))}
    state = axon.init(model, inputs)
    from axon.onnx.export_graph import UnexportableLayersError

    try:
        axon.onnx.export(None, model, state, inputs)
    except UnexportableLayersError as e:
        assert [op for _, op, _ in e.layers] == ["axon.models.cached_self_attention"]
        assert "decode=False" in str(e)
    else:
        raise AssertionError("the decode model exported")


def test_bert_exports_to_onnx(onnx, onnxruntime):
    config = axon.models.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=24, max_position_embeddings=20, type_vocab_size=2)
    model = axon.models.bert(config)
    ids = RNG.integers(0, 50, (3, 6)).astype(np.int32)
    mask = np.ones((3, 6), np.int32)
    mask[1, 4:] = 0
    types = np.zeros((3, 6), np.int32)
    types[:, 3:] = 1
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    inputs = {k: jnp.asarray(v) for k, v in feeds.items()}
    state = _random_state(model, inputs)
    want = jax.tree_util.tree_leaves(axon.predict(model, state, inputs))
    got = _ort(onnxruntime, axon.onnx.export(None, model, state, inputs), feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-4, atol=1e-4)
    # the defaults of the optional inputs: attend everywhere, token type 0
    only_ids = {"input_ids": inputs["input_ids"]}
    got = _ort(onnxruntime, axon.onnx.export(None, model, state, only_ids), {"input_ids": ids})
    for g, w in zip(got, jax.tree_util.tree_leaves(axon.predict(model, state, only_ids)), strict=True):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-4, atol=1e-4)


def test_position_ops_with_an_offset_export(onnx, onnxruntime):
    from axon.models import _transformer

    ids = axon.input("ids", shape=(None, 3))
    offset = axon.input("offset", shape=())
    rows = axon.layer(_transformer.positions_op, [ids, axon.param("kernel", (8, 2)), offset], op_name="positions")
    positions = axon.layer(_transformer.default_positions_op, [ids, offset], op_name="default_positions")
    model = axon.container([rows, positions])
    table = np.arange(16, dtype=np.float32).reshape(8, 2)
    feeds = {"ids": np.zeros((1, 3), np.int32), "offset": np.array(4, np.int32)}
    inputs = {k: jnp.asarray(v) for k, v in feeds.items()}
    state = axon.init(model, inputs, {"positions_0": {"kernel": table}})
    proto = axon.onnx.export(None, model, state, inputs, dynamic_batch=False)
    for offset_value, first in ((4, 4), (7, 5)):  # an offset past the end: the rows are clamped to fit (as lax.dynamic_slice)
        feeds["offset"] = np.array(offset_value, np.int32)
        got_rows, got_positions = _ort(onnxruntime, proto, feeds)
        np.testing.assert_array_equal(got_rows, table[None, first:first + 3])
        np.testing.assert_array_equal(got_positions, np.arange(offset_value, offset_value + 3)[None])
        want = axon.predict(model, state, {k: jnp.asarray(v) for k, v in feeds.items()})
        np.testing.assert_array_equal(got_rows, np.asarray(want[0]))
