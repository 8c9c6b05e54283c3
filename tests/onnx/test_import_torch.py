"""axon.onnx.import_model on torch models exported with torch.onnx.export(dynamo=False): the
imported axon model predicts what onnxruntime and torch predict, and behaves as any axon model
(gradients, one compile per shape, as_table, save/load, fine-tuning)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon
import axon.onnx

RTOL, ATOL = 1e-4, 1e-5


def _export(torch, module, example, path, *, dynamic_batch=True, input_name="x"):
    module.eval()
    dynamic_axes = {input_name: {0: "batch"}, "y": {0: "batch"}} if dynamic_batch else None
    torch.onnx.export(module, (example,), str(path), input_names=[input_name], output_names=["y"],
                      dynamic_axes=dynamic_axes, opset_version=17, dynamo=False, do_constant_folding=False)
    return path


def _check_against_references(torch, onnxruntime, module, path, x, *, dims=None, input_name="x", rtol=RTOL, atol=ATOL):
    model, state = axon.onnx.import_model(path, dims=dims)
    ours = np.asarray(axon.predict(model, state, {input_name: jnp.asarray(x)}))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (ort,) = session.run(None, {input_name: x})
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, ort, rtol=rtol, atol=atol)
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol)
    return model, state


def _assert_round_trip(model, state, inputs, tmp_path):
    """axon.save / axon.load give a model that predicts the same (every op of it is registered)."""
    axon.save(tmp_path / "model.axon", model, state)
    model2, state2 = axon.load(tmp_path / "model.axon")
    np.testing.assert_array_equal(np.asarray(axon.predict(model2, state2, inputs)), np.asarray(axon.predict(model, state, inputs)))


def _cnn(torch):
    nn = torch.nn
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )
    with torch.no_grad():  # non-trivial running statistics
        for m in net:
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return net


def test_cnn_with_batch_norm(torch, onnx, onnxruntime, tmp_path):
    net = _cnn(torch)
    x = np.random.default_rng(0).normal(size=(2, 3, 16, 16)).astype(np.float32)
    path = _export(torch, net, torch.from_numpy(x), tmp_path / "cnn.onnx")
    model, state = _check_against_references(torch, onnxruntime, net, path, x)
    assert axon.get_inputs(model) == {"x": (None, 3, 16, 16)}
    ops = axon.get_op_counts(model)
    assert ops["conv"] == 2 and ops["batch_norm"] == 2 and ops["dense"] == 1, ops
    # batch-norm layers are named after their torch modules; their running statistics are layer state
    assert set(state.state_paths) == {("1", "mean"), ("1", "var"), ("5", "mean"), ("5", "var")}
    np.testing.assert_allclose(np.asarray(state["1"]["mean"]), net[1].running_mean.numpy())
    table = axon.display.as_table(model, axon.template((1, 3, 16, 16)))
    assert "conv" in str(table)


def test_gradients_compile_once_save_load_and_fine_tune(torch, onnx, onnxruntime, tmp_path):
    net = _cnn(torch)
    x = np.random.default_rng(1).normal(size=(4, 3, 16, 16)).astype(np.float32)
    model, state = axon.onnx.import_model(_export(torch, net, torch.from_numpy(x), tmp_path / "cnn.onnx"))
    _, predict_fn = axon.build(model)
    # gradients through the imported model are finite and not all zero
    grads = jax.grad(lambda s: jnp.sum(predict_fn(s, jnp.asarray(x)) ** 2))(state)
    leaves = jax.tree_util.tree_leaves(grads.trainable_parameters())
    assert all(bool(jnp.isfinite(g).all()) for g in leaves)
    assert any(float(jnp.abs(g).sum()) > 0 for g in leaves)
    # a jit-compiled imported model compiles once per shape
    # the compiled imported model compiles once per input shape
    for batch in (4, 4, 2, 2):
        predict_fn(state, jnp.asarray(x[:batch]))
    assert predict_fn.trace_count == 2
    traces = []
    user_jit = jax.jit(lambda s, v: (traces.append(v.shape), predict_fn(s, v))[1])  # inside the user's own jit too
    for batch in (4, 4, 2):
        np.testing.assert_allclose(user_jit(state, jnp.asarray(x[:batch])), predict_fn(state, jnp.asarray(x[:batch])),
                                   rtol=1e-5, atol=1e-6)
    assert traces == [(4, 3, 16, 16), (2, 3, 16, 16)]
    # save / load round trip
    axon.save(tmp_path / "model.axon", model, state)
    model2, state2 = axon.load(tmp_path / "model.axon")
    np.testing.assert_allclose(axon.predict(model2, state2, jnp.asarray(x)), predict_fn(state, jnp.asarray(x)), rtol=1e-6, atol=1e-6)
    # one fine-tuning step changes the parameters
    labels = jax.nn.one_hot(jnp.arange(4) % 10, 10)
    loss = lambda y, p: axon.losses.categorical_cross_entropy(y, p, from_logits=True, reduction="mean")  # noqa: E731
    trainer = axon.loop.trainer(model, loss, axon.optimizers.sgd(0.1), log=0)
    tuned = trainer.run([(jnp.asarray(x), labels)], state, epochs=1, progress=False)
    before = jax.tree_util.tree_leaves(state.trainable_parameters())
    after = jax.tree_util.tree_leaves(tuned.trainable_parameters())
    assert any(not np.allclose(a, b) for a, b in zip(before, after))


def _resnet18(torch, num_classes=10):
    nn = torch.nn

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    class ResNet18(nn.Module):  # torchvision.models.resnet18's layout
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            widths, cin, stages = (64, 128, 256, 512), 64, []
            for i, w in enumerate(widths):
                stages.append(nn.Sequential(BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)))
                cin = w
            self.layer1, self.layer2, self.layer3, self.layer4 = stages
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    torch.manual_seed(0)
    net = ResNet18()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net


def test_resnet18(torch, onnx, onnxruntime, tmp_path):
    net = _resnet18(torch)
    x = np.random.default_rng(2).normal(size=(2, 3, 32, 32)).astype(np.float32)
    path = _export(torch, net, torch.from_numpy(x), tmp_path / "resnet18.onnx")
    model, state = _check_against_references(torch, onnxruntime, net, path, x, rtol=1e-4, atol=1e-4)
    assert "layer1_0_conv1" in state and state["layer1_0_conv1"]["kernel"].shape == (64, 64, 3, 3)
    assert axon.get_op_counts(model)["conv"] == 20


def test_mlp(torch, onnx, onnxruntime, tmp_path):
    nn = torch.nn
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 3), nn.LogSoftmax(-1))
    x = np.random.default_rng(3).normal(size=(5, 6)).astype(np.float32)
    path = _export(torch, net, torch.from_numpy(x), tmp_path / "mlp.onnx")
    model, state = _check_against_references(torch, onnxruntime, net, path, x)
    assert axon.get_op_counts(model)["dense"] == 3
    assert state["0"]["kernel"].shape == (6, 16)


def _recurrent_classifier(torch, kind, bidirectional=False, num_layers=1):
    nn = torch.nn

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(nn, kind)(input_size=4, hidden_size=8, batch_first=True, bidirectional=bidirectional,
                                         num_layers=num_layers)
            self.head = nn.Linear(16 if bidirectional else 8, 3)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out[:, -1])

    torch.manual_seed(0)
    return Classifier()


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_recurrent_classifier(torch, onnx, onnxruntime, tmp_path, kind):
    net = _recurrent_classifier(torch, kind)
    x = np.random.default_rng(4).normal(size=(2, 5, 4)).astype(np.float32)
    path = _export(torch, net, torch.from_numpy(x), tmp_path / f"{kind}.onnx")  # torch makes the zero state from the batch size
    model, _ = _check_against_references(torch, onnxruntime, net, path, x)
    assert axon.get_op_counts(model)[kind.lower()] == 1
    assert axon.get_inputs(model) == {"x": (None, 5, 4)}


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_bidirectional_two_layer_recurrent_classifier(torch, onnx, onnxruntime, tmp_path, kind):
    net = _recurrent_classifier(torch, kind, bidirectional=True, num_layers=2)
    x = np.random.default_rng(8).normal(size=(3, 6, 4)).astype(np.float32)
    path = _export(torch, net, torch.from_numpy(x), tmp_path / f"bi{kind}.onnx")
    model, state = _check_against_references(torch, onnxruntime, net, path, x)
    assert axon.get_op_counts(model)[kind.lower()] == 4
    _assert_round_trip(model, state, {"x": x}, tmp_path)


def test_transformer_encoder(torch, onnx, onnxruntime, tmp_path):
    nn = torch.nn
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True)
    net = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    x = np.random.default_rng(5).normal(size=(2, 6, 16)).astype(np.float32)
    path = _export(torch, net, torch.from_numpy(x), tmp_path / "encoder.onnx", dynamic_batch=False)
    model, state = _check_against_references(torch, onnxruntime, net, path, x, rtol=1e-4, atol=1e-4)
    assert axon.get_op_counts(model)["layer_norm"] == 4
    grads = jax.grad(lambda s: jnp.sum(axon.predict(model, s, jnp.asarray(x)) ** 2))(state)
    leaves = jax.tree_util.tree_leaves(grads.trainable_parameters())
    assert leaves and all(bool(jnp.isfinite(g).all()) for g in leaves)


def test_transfer_learning_pop_node_freeze(torch, onnx, tmp_path):
    """Replace the imported head with a new axon layer and train it with the backbone frozen."""
    net = _cnn(torch)
    x = np.random.default_rng(6).normal(size=(4, 3, 16, 16)).astype(np.float32)
    model, state = axon.onnx.import_model(_export(torch, net, torch.from_numpy(x), tmp_path / "cnn.onnx"))
    head, backbone = axon.pop_node(model)
    assert head.op_name == "dense"
    new_model = axon.dense(backbone, 3, name="new_head")
    init_fn, _ = axon.build(new_model)
    backbone_state = axon.ModelState({k: v for k, v in state.data.items() if k != head.name},
                                     state_paths=[p for p in state.state_paths if p[0] != head.name])
    new_state = init_fn(axon.template((1, 3, 16, 16)), backbone_state).freeze(lambda path: path[0] != "new_head")
    assert set(new_state.trainable_parameters()) == {"new_head"}
    loss = lambda y, p: axon.losses.categorical_cross_entropy(y, p, from_logits=True, reduction="mean")  # noqa: E731
    trainer = axon.loop.trainer(new_model, loss, axon.optimizers.sgd(0.1), log=0)
    tuned = trainer.run([(jnp.asarray(x), jax.nn.one_hot(jnp.arange(4) % 3, 3))], new_state, epochs=1, progress=False)
    np.testing.assert_array_equal(np.asarray(tuned["0"]["kernel"]), np.asarray(state["0"]["kernel"]))
    assert not np.allclose(np.asarray(tuned["new_head"]["kernel"]), np.asarray(new_state["new_head"]["kernel"]))


def test_bert_style_encoder_with_token_ids(torch, onnx, onnxruntime, tmp_path):
    """Token embeddings plus sliced position embeddings, a GELU transformer encoder and a pooled head;
    dynamic batch and sequence axes. The position slice needs the sequence length: fixed with dims."""
    nn = torch.nn

    class Bert(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(50, 16)
            self.pos = nn.Parameter(torch.randn(1, 12, 16) * 0.1)
            layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True, activation="gelu")
            self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.norm, self.head = nn.LayerNorm(16), nn.Linear(16, 3)

        def forward(self, ids):
            h = self.enc(self.tok(ids) + self.pos[:, : ids.shape[1]])
            return self.head(self.norm(h).mean(1))

    torch.manual_seed(0)
    net = Bert().eval()
    ids = np.random.default_rng(7).integers(0, 50, (3, 7)).astype(np.int64)
    path = tmp_path / "bert.onnx"
    torch.onnx.export(net, (torch.from_numpy(ids),), str(path), input_names=["ids"], output_names=["y"],
                      dynamic_axes={"ids": {0: "batch", 1: "seq"}}, opset_version=17, dynamo=False)
    with pytest.raises(axon.onnx.importer.OnnxImportError, match=r"\(Slice\): the slice bounds .* dims="):
        axon.onnx.import_model(path)
    model, state = _check_against_references(torch, onnxruntime, net, path, ids, dims={"seq": 7}, input_name="ids",
                                              rtol=1e-4, atol=1e-4)
    _assert_round_trip(model, state, {"ids": ids}, tmp_path)
    assert axon.get_inputs(model) == {"ids": (None, 7)}
    assert axon.get_op_counts(model)["embedding"] == 1
    # the sliced position table stays a trainable parameter
    _, state = axon.onnx.import_model(path, dims={"seq": 7})
    pos = [v for layer in state.trainable_parameters().values() for k, v in layer.items() if k == "pos"]
    assert len(pos) == 1
    np.testing.assert_allclose(np.asarray(pos[0]), net.pos.detach().numpy()[:, :7])


def test_mobilenet_style_blocks(torch, onnx, onnxruntime, tmp_path):
    """MobileNetV2/V3 pieces: depthwise convolutions, ReLU6, Hardswish, squeeze-excitation with Hardsigmoid."""
    nn = torch.nn

    class SqueezeExcite(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.pool, self.fc1, self.fc2 = nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1)
            self.relu, self.gate = nn.ReLU(), nn.Hardsigmoid()

        def forward(self, x):
            return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))

    def block(cin, cout, stride, act):
        hidden = cin * 4
        return nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), act(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), act(),
            SqueezeExcite(hidden), nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.Hardswish(),
        block(8, 8, 1, nn.ReLU6), block(8, 16, 2, nn.Hardswish),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(16, 5),
    ).eval()
    x = np.random.default_rng(9).normal(size=(2, 3, 16, 16)).astype(np.float32)
    path = _export(torch, net, torch.from_numpy(x), tmp_path / "mobilenet.onnx")
    model, _ = _check_against_references(torch, onnxruntime, net, path, x)
    ops = axon.get_op_counts(model)
    assert ops["conv"] == 11 and ops["hard_silu"] >= 2 and ops["hard_sigmoid"] == 2, ops
