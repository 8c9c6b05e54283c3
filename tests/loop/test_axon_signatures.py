"""Issue 10.4: Axon's signatures where the README's mapping promises them: positional
``metric``, the deprecated ``handle``, ``log(device=)``, the evaluator logging by default,
``checkpoint(patience=)``."""

import io
import os

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import axon

X = np.array([[1.0, 2.0], [0.0, 1.0], [3.0, -1.0], [2.0, 2.0]], np.float32)
Y = np.array([[1.0], [0.0], [2.0], [1.0]], np.float32)


def counter_loop():
    return axon.loop.loop(lambda s, b: s + 1, lambda b, init: jnp.zeros((), jnp.int32))


def test_metric_accumulate_and_transform_positionally():
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1)
    batches = [(X[:2], Y[:2]), (X[2:], Y[2:])]
    t = axon.loop.trainer(model, "mean_squared_error", optax.sgd(0.0), log=0)
    t = t.metric("mean_absolute_error", "mae_sum", "running_sum", ["y_true", "y_pred"])
    final = t.run(batches, return_state=True)
    ms = final.step_state["model_state"]
    pred = X @ np.asarray(ms["dense_0"]["kernel"]) + np.asarray(ms["dense_0"]["bias"])
    expected = np.mean(np.abs(pred[:2] - Y[:2])) + np.mean(np.abs(pred[2:] - Y[2:]))
    np.testing.assert_allclose(final.history[0]["mae_sum"], expected, rtol=1e-5)
    # a function with accumulate and a transform function, positionally
    lp = counter_loop().metric(lambda s: s.astype(jnp.float32), "sum", "running_sum", lambda s: s)
    assert lp.run([0] * 4, progress=False).history[0] == {"sum": 10.0}


def test_handle_is_a_deprecated_alias_of_handle_event():
    seen = []
    with pytest.deprecated_call(match="handle_event"):
        lp = counter_loop().handle("epoch_completed", lambda s: (seen.append(s.epoch), ("continue", s))[1], {"every": 2})
    lp.run([0], epochs=3, progress=False)
    assert seen == [0, 2]


def test_log_device(capsys):
    message = lambda s: f"epoch {s.epoch}"  # noqa: E731
    counter_loop().log(message, event="epoch_completed", device="stderr").run([0], progress=False)
    counter_loop().log(message, event="epoch_completed", device="stdio").run([0], epochs=2, progress=False)
    out = capsys.readouterr()
    assert out.err == "epoch 0\n" and out.out == "epoch 0\nepoch 1\n"
    stream = io.StringIO()
    counter_loop().log(message, event="epoch_completed", device=stream).run([0], progress=False)
    assert stream.getvalue() == "epoch 0\n"
    with pytest.raises(ValueError, match="expected device to be 'stdio', 'stderr' or a text stream, got 'stdout'"):
        counter_loop().log(message, device="stdout")
    with pytest.raises(ValueError, match="not both"):
        counter_loop().log(message, device="stderr", file=stream)


def test_evaluator_logs_every_batch_by_default(capsys):
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1)
    state = axon.init(model, axon.template((1, 2)))
    data = [(X[:2], Y[:2]), (X[2:], Y[2:])]
    out = axon.loop.evaluator(model).metric("mean_absolute_error", "mae").run(data, state)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("Batch: 1/2, mae: ")
    assert lines[-1].startswith("Batch: 2/2, mae: ")
    assert float(lines[-1].split("mae: ")[1].split()[0]) == pytest.approx(out[0]["mae"], abs=1e-6)
    axon.loop.evaluator(model, log=0).run(data, state)
    axon.loop.evaluator(model).run(data, state, progress=False)
    assert capsys.readouterr().out == ""


def scripted(values):
    table = jnp.asarray(values, jnp.float32)
    return axon.loop.loop(lambda s, b: s + 1, lambda b, init: jnp.zeros((), jnp.int32)).metric(
        lambda s: table[s - 1], "score", lambda acc, v, i: v, lambda s: s
    )


def test_checkpoint_accepts_patience(tmp_path):
    path = str(tmp_path)
    final = scripted([3, 2, 2.5, 2.6, 2.7, 1]).checkpoint(
        path=path, criteria="score", mode="min", patience=2, file_pattern=lambda s: f"e{s.epoch}.ckpt"
    ).run([0], epochs=6, progress=False)
    # saved on each new best only
    assert sorted(os.listdir(path)) == ["e0.ckpt", "e1.ckpt", "e5.ckpt"]
    memory = final.handler_metadata["checkpoint"]
    assert memory["best"] == 1.0 and memory["since_last_improvement"] == 0
    with pytest.raises(ValueError, match="patience"):
        counter_loop().checkpoint(path=path, patience=-1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        counter_loop().checkpoint(path=path, patiense=2)
