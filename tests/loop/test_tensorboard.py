"""Loop.tensorboard: the event file read back with our own TFRecord parsing and
tensorboardX's protobuf classes, compared with the loop's history and the parameters; the
ImportError without tensorboardX."""

import builtins
import os
import struct

import numpy as np
import pytest

import axon

RNG = np.random.default_rng(1)
X = RNG.normal(size=(16, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)
BATCHES = [(X[i : i + 4], Y[i : i + 4]) for i in range(0, 16, 4)]


def read_events(log_dir):
    """Every event in the directory's event files: TFRecord framing (length, its CRC, the
    data, its CRC) parsed by hand, each record decoded as an ``Event`` protobuf."""
    event_pb2 = pytest.importorskip("tensorboardX.proto.event_pb2")
    events = []
    for name in sorted(os.listdir(log_dir)):
        assert name.startswith("events.out.tfevents")
        with open(os.path.join(log_dir, name), "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            record = data[pos + 12 : pos + 12 + length]
            pos += 12 + length + 4
            events.append(event_pb2.Event.FromString(record))
    assert pos == len(data)
    return events


def scalars(events):
    out = {}
    for e in events:
        for v in e.summary.value:
            if v.HasField("simple_value"):
                out.setdefault(v.tag, []).append((e.step, v.simple_value))
    return out


def test_scalars_histograms_and_table(tmp_path, tensorboardX):
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 1)
    params = {}

    def record(state):
        params[state.epoch] = {k: np.asarray(v) for k, v in state.step_state["model_state"]["dense_0"].items()}
        return "continue", state

    t = (
        axon.loop.trainer(model, "mean_squared_error", axon.optimizers.sgd(0.05), log=0)
        .validate(model, BATCHES[:1])
        .handle_event("epoch_completed", record)
        .tensorboard(tmp_path, every=2, histograms=True, model=model)
    )
    state = t.run(BATCHES, epochs=2, return_state=True)
    events = read_events(tmp_path)
    got = scalars(events)
    for name in ("loss", "validation_loss"):
        assert [s for s, _ in got[f"epoch/{name}"]] == [0, 1]
        assert [v for _, v in got[f"epoch/{name}"]] == pytest.approx([state.history[e][name] for e in (0, 1)], rel=1e-6)
    assert [v for _, v in got["epoch/learning_rate"]] == pytest.approx([0.05, 0.05])
    # every 2 iterations of 4 per epoch: global steps 2, 4, 6, 8
    assert [s for s, _ in got["iteration/loss"]] == [2, 4, 6, 8]
    histos = {(e.step, v.tag): v.histo for e in events for v in e.summary.value if v.HasField("histo")}
    for epoch in (0, 1):
        for name in ("kernel", "bias"):
            h, p = histos[(epoch, f"parameters/dense_0/{name}")], params[epoch][name].astype(np.float64)
            assert (h.num, h.min, h.max) == (p.size, pytest.approx(p.min()), pytest.approx(p.max()))
            assert h.sum == pytest.approx(p.sum(), rel=1e-6, abs=1e-9)
    texts = [v for e in events for v in e.summary.value if v.tag.startswith("model/table")]
    assert len(texts) == 1
    text = b"".join(texts[0].tensor.string_val).decode()
    assert "dense_0" in text and "Total Parameters: 4" in text


def test_only_the_main_process_writes(tmp_path, monkeypatch, tensorboardX):
    import jax

    monkeypatch.setattr(jax, "process_index", lambda: 1)
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 1)
    axon.loop.trainer(model, "mean_squared_error", "sgd", log=0).tensorboard(tmp_path / "tb").run(BATCHES)
    assert not os.path.exists(tmp_path / "tb")


def test_missing_tensorboardx_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_tensorboardx(name, *args, **kwargs):
        if name.startswith("tensorboardX"):
            raise ImportError("No module named 'tensorboardX'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboardx)
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 1)
    with pytest.raises(ImportError, match=r'pip install "axon-jax\[tensorboard\]"'):
        axon.loop.trainer(model, "mean_squared_error", "sgd", log=0).tensorboard("logs")


def test_bad_input(tmp_path, tensorboardX):
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 1)
    t = axon.loop.trainer(model, "mean_squared_error", "sgd", log=0)
    with pytest.raises(ValueError, match="tensorboard: expected every to be a positive int"):
        t.tensorboard(tmp_path, every=-1)
    with pytest.raises(ValueError, match="gradient_norms=True needs a loop made by axon.loop.trainer"):
        axon.loop.evaluator(model).tensorboard(tmp_path, gradient_norms=True)
    with pytest.raises(TypeError, match="expected gradient_norms to be a bool"):
        t.tensorboard(tmp_path, gradient_norms="yes")
    with pytest.raises(TypeError, match="tensorboard: expected model to be an axon graph"):
        t.tensorboard(tmp_path, model="dense")
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ValueError, match="tensorboard: log_dir .* is a file"):
        t.tensorboard(a_file).run(BATCHES)


def test_gradient_norms_equal_jax_grad_on_the_same_batch_and_parameters(tmp_path, tensorboardX):
    import jax
    import jax.numpy as jnp

    model = (
        axon.input("x", shape=(None, 3))
        .pipe(axon.dense, 4, activation="tanh")
        .pipe(axon.dense, 1, name="head")
    )
    before = []

    def record(state):  # the parameters the step about to run starts from
        before.append(jax.tree_util.tree_map(lambda a: np.array(a, copy=True), state.step_state["model_state"].trainable_parameters()))
        return "continue", state

    t = (
        axon.loop.trainer(model, "mean_squared_error", axon.optimizers.adam(0.05), log=0)
        .handle_event("iteration_started", record)
        .tensorboard(tmp_path, every=3, gradient_norms=True)
        .ema(0.9)  # rebuilding the step afterwards keeps the norms
    )
    t.run(BATCHES, epochs=2)
    got = scalars(read_events(tmp_path))

    def loss(params, x, y):
        h = jnp.tanh(x @ params["dense_0"]["kernel"] + params["dense_0"]["bias"])
        pred = h @ params["head"]["kernel"] + params["head"]["bias"]
        return jnp.mean((pred - y) ** 2)

    def norms(step):  # step: 1-based global step; its batch and its starting parameters
        x, y = BATCHES[(step - 1) % len(BATCHES)]
        grads = jax.grad(loss)(before[step - 1], x, y)
        layer = {name: float(np.sqrt(sum(np.sum(np.asarray(g, np.float64) ** 2) for g in grads[name].values()))) for name in grads}
        return {"global": float(np.sqrt(sum(v**2 for v in layer.values()))), **layer}

    assert len(before) == 8
    for name in ("global", "dense_0", "head"):
        epoch = got[f"epoch/gradient_norm/{name}"]
        assert [s for s, _ in epoch] == [0, 1]
        assert [v for _, v in epoch] == pytest.approx([norms(4)[name], norms(8)[name]], rel=1e-5)
        iteration = got[f"iteration/gradient_norm/{name}"]
        # every 3 iterations of each 4-iteration epoch: global steps 3 and 4 + 3
        assert [s for s, _ in iteration] == [3, 7]
        assert [v for _, v in iteration] == pytest.approx([norms(3)[name], norms(7)[name]], rel=1e-5)
    assert not any(tag.startswith("epoch/gradient_norm") for tag in scalars(read_events(_plain_run(tmp_path))))


def _plain_run(tmp_path):
    log_dir = tmp_path / "plain"
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 1)
    axon.loop.trainer(model, "mean_squared_error", "sgd", log=0).tensorboard(log_dir).run(BATCHES)
    return log_dir


def test_missing_parent_directories_are_made(tmp_path, tensorboardX):
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 1)
    axon.loop.trainer(model, "mean_squared_error", "sgd", log=0).tensorboard(tmp_path / "runs" / "a").run(BATCHES)
    assert scalars(read_events(tmp_path / "runs" / "a"))["epoch/loss"][0][0] == 0
