"""axon.loop: events, filters, halting, metrics, validation, monitors, checkpoints, resume,
compilation counts, steps_per_execution, data sources and error cases."""

import io
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import axon
from axon.loop import LoopState

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 3)).astype(np.float32)
W = np.array([[1.0], [-2.0], [0.5]], np.float32)
Y = X @ W + 0.3
BATCHES = [(X[i : i + 16], Y[i : i + 16]) for i in range(0, 64, 16)]


def linear_model():
    return axon.input("x", shape=(None, 3)).pipe(axon.dense, 1)


def counter_loop():
    return axon.loop.loop(lambda s, b: s + 1, lambda b, init: jnp.zeros((), jnp.int32))


def recorder(events, name):
    def handler(state):
        events.append((name, state.epoch, state.iteration))
        return "continue", state

    return handler


# -- events and filters -------------------------------------------------------------------


def test_event_order_and_counts():
    events = []
    lp = counter_loop()
    for e in axon.loop.EVENTS:
        lp = lp.handle_event(e, recorder(events, e))
    state = lp.run([(0, 0)] * 2, epochs=2, progress=False)
    names = [e[0] for e in events]
    assert names == [
        "started",
        "epoch_started", "iteration_started", "iteration_completed", "iteration_started", "iteration_completed", "epoch_completed",
        "epoch_started", "iteration_started", "iteration_completed", "iteration_started", "iteration_completed", "epoch_completed",
        "completed",
    ]
    assert state.event_counts["iteration_completed"] == {"total": 4, "epoch": 0}
    assert state.event_counts["epoch_completed"] == 2
    assert state.status == "completed"
    assert int(state.step_state) == 4


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("always", [1, 2, 3, 4, 5, 6]),
        ("first", [1]),
        ({"every": 2}, [1, 3, 5]),
        ({"before": 3}, [1, 2]),
        ({"after": 4}, [5, 6]),
        ({"once": 4}, [4]),
        ({"every": 2, "after": 1}, [3, 5]),
        ({"every": ("epoch", 2)}, [1, 3, 4, 6]),
        (lambda state, event: state.iteration == 3, [3, 6]),
    ],
)
def test_filters(flt, expected):
    seen = []

    def handler(state):
        seen.append(state.event_counts["iteration_completed"]["total"])
        return "continue", state

    counter_loop().handle_event("iteration_completed", handler, flt).run([(0, 0)] * 3, epochs=2, progress=False)
    assert seen == expected


def test_bad_filters_and_events_are_rejected():
    with pytest.raises(ValueError, match="unknown filter condition"):
        counter_loop().handle_event("epoch_completed", lambda s: ("continue", s), {"evry": 2})
    with pytest.raises(ValueError, match="unknown event 'epoch_done'"):
        counter_loop().handle_event("epoch_done", lambda s: ("continue", s))


def test_handlers_must_return_action_and_state():
    lp = counter_loop().handle_event("epoch_completed", lambda s: s)
    with pytest.raises(ValueError, match="must return \\(action, state\\)"):
        lp.run([(0, 0)], progress=False)
    lp = counter_loop().handle_event("epoch_completed", lambda s: ("stop", s))
    with pytest.raises(ValueError, match="continue"):
        lp.run([(0, 0)], progress=False)


def test_halt_epoch_and_halt_loop():
    events = []

    def halt_epoch_at_2(state):
        return ("halt_epoch" if state.iteration == 2 else "continue"), state

    lp = counter_loop().handle_event("iteration_completed", halt_epoch_at_2)
    for e in ("epoch_halted", "epoch_completed", "halted", "completed"):
        lp = lp.handle_event(e, recorder(events, e))
    state = lp.run([(0, 0)] * 5, epochs=2, progress=False)
    assert [e[0] for e in events] == ["epoch_halted", "epoch_halted", "completed"]
    assert int(state.step_state) == 4 and state.status == "completed"

    events.clear()
    lp = counter_loop().handle_event("iteration_completed", lambda s: ("halt_loop" if s.iteration == 3 else "continue", s))
    lp = lp.handle_event("halted", recorder(events, "halted")).handle_event("completed", recorder(events, "completed"))
    state = lp.run([(0, 0)] * 5, epochs=3, progress=False)
    assert [e[0] for e in events] == ["halted"]
    assert state.status == "halted" and int(state.step_state) == 3


# -- trainer: metrics, validation, compilation --------------------------------------------


def test_trainer_metrics_are_per_epoch_running_averages():
    seen = []

    def capture(state):
        seen.append((float(state.metrics["loss"]), float(state.metrics["mae"])))
        return "continue", state

    lp = (
        axon.loop.trainer(linear_model(), "mean_squared_error", optax.sgd(0.0), log=0)
        .metric("mean_absolute_error", "mae")
        .handle_event("iteration_completed", capture)
    )
    state = lp.run(BATCHES, epochs=2, return_state=True)
    params = state.step_state["model_state"]
    pred = X @ np.asarray(params["dense_0"]["kernel"]) + np.asarray(params["dense_0"]["bias"])
    # with a zero learning rate the parameters never change: per-batch values are exact
    per_batch_mse = [np.mean((pred[i : i + 16] - Y[i : i + 16]) ** 2) for i in range(0, 64, 16)]
    per_batch_mae = [np.mean(np.abs(pred[i : i + 16] - Y[i : i + 16])) for i in range(0, 64, 16)]
    for k in range(4):
        np.testing.assert_allclose(seen[k][0], np.mean(per_batch_mse[: k + 1]), rtol=1e-5)
        np.testing.assert_allclose(seen[4 + k][1], np.mean(per_batch_mae[: k + 1]), rtol=1e-5)
    np.testing.assert_allclose(state.history[0]["loss"], np.mean(per_batch_mse), rtol=1e-5)
    np.testing.assert_allclose(state.history[1]["loss"], np.mean(per_batch_mse), rtol=1e-5)


def test_running_sum_and_custom_accumulators():
    lp = (
        counter_loop()
        .metric(lambda s: s.astype(jnp.float32), "sum", accumulate="running_sum", transform=lambda s: s)
        .metric(lambda s: s.astype(jnp.float32), "max", accumulate=lambda acc, v, i: jnp.maximum(acc, v), transform=lambda s: s)
    )
    state = lp.run([(0, 0)] * 4, progress=False)
    assert state.history[0] == {"sum": 10.0, "max": 4.0}
    with pytest.raises(ValueError, match="needs a name"):
        counter_loop().metric(lambda a, b: a)


def test_trainer_learns_and_compiles_the_step_once():
    lp = axon.loop.trainer(linear_model(), "mean_squared_error", optax.adam(0.1), log=0)
    state = lp.run(BATCHES, epochs=30, return_state=True)
    assert state.trace_count == 1
    params = state.step_state["model_state"]
    np.testing.assert_allclose(np.asarray(params["dense_0"]["kernel"]), W, atol=0.05)
    np.testing.assert_allclose(np.asarray(params["dense_0"]["bias"]), [0.3], atol=0.05)
    # a new batch shape compiles once more
    lp2 = axon.loop.trainer(linear_model(), "mean_squared_error", "adam", log=0)
    state = lp2.run([(X[:16], Y[:16]), (X[:8], Y[:8]), (X[:16], Y[:16])], epochs=2, return_state=True)
    assert state.trace_count == 2


def test_validation_metrics_are_prefixed():
    model = linear_model()
    lp = axon.loop.trainer(model, "mean_squared_error", optax.sgd(0.0), log=0).metric("mean_absolute_error", "mae")
    lp = lp.validate(model, BATCHES[:2])
    state = lp.run(BATCHES, return_state=True)
    assert sorted(state.history[0]) == ["loss", "mae", "validation_loss", "validation_mae"]
    params = state.step_state["model_state"]
    pred = X[:32] @ np.asarray(params["dense_0"]["kernel"]) + np.asarray(params["dense_0"]["bias"])
    expected = np.mean([np.mean((pred[i : i + 16] - Y[i : i + 16]) ** 2) for i in (0, 16)])
    np.testing.assert_allclose(state.history[0]["validation_loss"], expected, rtol=1e-5)


def test_evaluator_returns_metrics_per_epoch():
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 2, kernel_initializer="identity")
    state = axon.init(model, axon.template((1, 2)))
    data = [(np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]], np.float32), np.array([[1, 0], [1, 0], [1, 0], [0, 1]], np.float32))]
    out = axon.loop.evaluator(model).metric("accuracy").run(data, state)
    assert out == {0: {"accuracy": 0.75}}


# -- monitors -----------------------------------------------------------------------------


def scripted_metric(values):
    """A loop whose 'score' metric takes the given value in each epoch."""
    table = jnp.asarray(values, jnp.float32)
    return axon.loop.loop(lambda s, b: s + 1, lambda b, init: jnp.zeros((), jnp.int32)).metric(
        lambda s: table[s - 1], "score", accumulate=lambda acc, v, i: v, transform=lambda s: s
    )


@pytest.mark.parametrize(
    ("mode", "values", "stop_epoch"),
    [("min", [5, 4, 4.5, 4.2, 4.1, 1, 1, 1], 4), ("max", [1, 2, 1.5, 1.9, 1.8, 9, 9, 9], 4)],
)
def test_early_stop(mode, values, stop_epoch):
    state = scripted_metric(values).early_stop("score", mode=mode, patience=3).run([(0, 0)], epochs=8, progress=False)
    assert state.status == "halted"
    assert state.epoch == stop_epoch
    assert state.handler_metadata["early_stop"]["best"] == (4 if mode == "min" else 2)


@pytest.mark.parametrize("mode", ["min", "max"])
def test_reduce_lr_on_plateau_scales_any_optax_optimizer(mode):
    schedule = optax.exponential_decay(0.1, 1, 0.99)
    model = linear_model()
    lp = axon.loop.trainer(model, "mean_squared_error", optax.sgd(schedule), log=0)
    flat = (lambda s: jnp.zeros(())) if mode == "min" else (lambda s: jnp.ones(()))
    lp = lp.metric(flat, "flat", transform=lambda s: s).reduce_lr_on_plateau("flat", mode=mode, patience=2, factor=0.5)
    state = lp.run(BATCHES[:1], epochs=5, return_state=True)
    # never improves after epoch 0: reduced after epochs 2 and 4
    assert axon.loop.learning_rate_scale(state) == pytest.approx(0.25)


# -- checkpoints and resume ---------------------------------------------------------------


def test_checkpoint_files_contents_and_resume_equality(tmp_path):
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 8, activation="relu").pipe(axon.dropout, rate=0.3).pipe(axon.dense, 1)

    def trainer():
        return axon.loop.trainer(model, "mean_squared_error", optax.adam(1e-2), seed=3, log=0)

    full = trainer().run((X, Y), batch_size=16, shuffle=True, epochs=4, return_state=True)
    path = str(tmp_path / "ckpt")
    trainer().checkpoint(path=path).run((X, Y), batch_size=16, shuffle=True, epochs=2)
    assert sorted(os.listdir(path)) == ["checkpoint_0_4.ckpt", "checkpoint_1_4.ckpt"]
    saved = axon.loop.load_checkpoint(os.path.join(path, "checkpoint_1_4.ckpt"))
    assert saved.epoch == 1 and saved.iteration == 4
    assert saved.event_counts["epoch_completed"] == 2
    assert set(saved.history) == {0, 1}
    resumed = trainer().from_state(saved).run((X, Y), batch_size=16, shuffle=True, epochs=2, return_state=True)
    assert resumed.epoch == 4
    a = jax.tree_util.tree_leaves(full.step_state["model_state"])
    b = jax.tree_util.tree_leaves(resumed.step_state["model_state"])
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    for x, y in zip(jax.tree_util.tree_leaves(full.step_state["optimizer_state"]), jax.tree_util.tree_leaves(resumed.step_state["optimizer_state"])):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_checkpoint_with_criteria_saves_on_new_best(tmp_path):
    path = str(tmp_path)
    scripted_metric([3, 2, 2.5, 1, 4]).checkpoint(path=path, criteria="score", file_pattern=lambda s: f"e{s.epoch}.ckpt").run(
        [(0, 0)], epochs=5, progress=False
    )
    assert sorted(os.listdir(path)) == ["e0.ckpt", "e1.ckpt", "e3.ckpt"]


def test_serialized_state_rejects_garbage():
    state = LoopState(step_state={"w": jnp.ones(3, jnp.bfloat16)}, handler_metadata={"m": {"best": 1.5}})
    data = axon.loop.serialize_state(state)
    back = axon.loop.deserialize_state(data)
    assert back.handler_metadata == {"m": {"best": 1.5}}
    assert back.step_state["w"].dtype == jnp.bfloat16
    for bad in (b"", b"garbage" * 10, data[:20], b"\x80\x04\x95" + data[3:], data[:-5]):
        with pytest.raises(ValueError):
            axon.loop.deserialize_state(bad)


# -- execution: steps_per_execution, data sources, errors ---------------------------------


def test_steps_per_execution_gives_the_same_training():
    def run(k):
        lp = axon.loop.trainer(linear_model(), "mean_squared_error", optax.adam(1e-2), log=0)
        return lp.run(BATCHES, epochs=2, steps_per_execution=k, return_state=True)

    one, four, three = run(1), run(4), run(3)
    for other in (four, three):
        for x, y in zip(jax.tree_util.tree_leaves(one.step_state["model_state"]), jax.tree_util.tree_leaves(other.step_state["model_state"])):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
        assert other.history[1]["loss"] == pytest.approx(one.history[1]["loss"], rel=1e-5)
    assert four.event_counts["iteration_completed"]["total"] == 2  # one event per chunk
    assert four.trace_count == 1


def test_nan_loss_names_epoch_and_iteration():
    bad = [(X[:16], Y[:16]), (X[:16], Y[:16]), (X[:16] * np.nan, Y[:16]), (X[:16], Y[:16])]
    lp = axon.loop.trainer(linear_model(), "mean_squared_error", "sgd", log=0)
    with pytest.raises(axon.loop.NonFiniteLossError, match="epoch 0, iteration 2"):
        lp.run(bad)
    lp = axon.loop.trainer(linear_model(), "mean_squared_error", "sgd", log=0, on_nonfinite="continue")
    assert isinstance(lp.run(bad), axon.ModelState)


def test_data_sources():
    lp = counter_loop()
    assert int(lp.run(lambda: iter([(0, 0)] * 3), epochs=2, progress=False).step_state) == 6
    gen = ((0, 0) for _ in range(3))
    with pytest.raises(ValueError, match="one-shot iterator"):
        lp.run(gen, epochs=2, progress=False)
    with pytest.raises(ValueError, match="empty"):
        lp.run([], progress=False)
    with pytest.raises(ValueError, match="pair \\(inputs, targets\\)"):
        axon.loop.trainer(linear_model(), "mean_squared_error", "sgd", log=0).run([X[:4]])
    state = lp.run((np.zeros((10, 1)), np.zeros(10)), batch_size=4, progress=False)
    assert int(state.step_state) == 3
    state = lp.run([(0, 0)] * 5, epochs=2, iterations=2, progress=False)
    assert int(state.step_state) == 4


def test_multi_input_dict_batches_and_multi_output_losses():
    a, b = axon.input("a", shape=(None, 2)), axon.input("b", shape=(None, 2))
    model = axon.container((axon.dense(a, 1, name="left"), axon.dense(b, 1, name="right")))
    data = [({"a": X[:16, :2], "b": X[:16, 1:]}, (Y[:16], 2 * Y[:16]))]
    loss = [("mean_squared_error", 1.0), ("mean_absolute_error", 0.5)]
    state = axon.loop.trainer(model, loss, optax.sgd(0.0), log=0).run(data, return_state=True)
    ms = state.step_state["model_state"]
    pl = X[:16, :2] @ np.asarray(ms["left"]["kernel"]) + np.asarray(ms["left"]["bias"])
    pr = X[:16, 1:] @ np.asarray(ms["right"]["kernel"]) + np.asarray(ms["right"]["bias"])
    expected = np.mean((pl - Y[:16]) ** 2) + 0.5 * np.mean(np.abs(pr - 2 * Y[:16]))
    np.testing.assert_allclose(state.history[0]["loss"], expected, rtol=1e-5)


def test_gradient_accumulation_matches_a_big_batch():
    big = [(X[:32], Y[:32])]
    small = [(X[:16], Y[:16]), (X[16:32], Y[16:32])]
    one = axon.loop.trainer(linear_model(), "mean_squared_error", optax.sgd(0.1), log=0).run(big)
    acc = axon.loop.trainer(linear_model(), "mean_squared_error", optax.sgd(0.1), log=0, gradient_accumulation_steps=2).run(small)
    for x, y in zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(acc)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)


def test_init_state_is_not_consumed_by_buffer_donation():
    model = linear_model()
    start = axon.init(model, axon.template((1, 3)))
    axon.loop.trainer(model, "mean_squared_error", "sgd", log=0).run(BATCHES, start)
    assert np.isfinite(np.asarray(start["dense_0"]["kernel"])).all()  # still readable


def test_plain_progress_lines(capsys):
    axon.loop.trainer(linear_model(), "mean_squared_error", "sgd", log=2).run(BATCHES, epochs=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("Epoch: 0, Batch: 1/4, loss: ")
    assert lines[1].startswith("Epoch: 0, Batch: 2/4, loss: ")
    assert lines[-1].startswith("Epoch: 0, Batch: 4/4, loss: ") and lines[-1].endswith("s)")
    out = io.StringIO()
    counter_loop().log(lambda s: f"epoch {s.epoch}", event="epoch_completed", file=out).run([(0, 0)], epochs=2, progress=False)
    assert out.getvalue() == "epoch 0\nepoch 1\n"


def test_bad_run_options():
    lp = counter_loop()
    with pytest.raises(ValueError, match="epochs"):
        lp.run([(0, 0)], epochs=-1)
    with pytest.raises(ValueError, match="steps_per_execution"):
        lp.run([(0, 0)], steps_per_execution=0)
    with pytest.raises(ValueError, match="on_nonfinite"):
        axon.loop.trainer(linear_model(), "mean_squared_error", "sgd", on_nonfinite="ignore")


def test_torch_dataloader_batches(torch):
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(Y))
    loader = torch.utils.data.DataLoader(dataset, batch_size=16, shuffle=False)
    lp = axon.loop.trainer(linear_model(), "mean_squared_error", optax.sgd(0.0), log=0)
    state = lp.run(loader, epochs=2, return_state=True)
    ms = state.step_state["model_state"]
    pred = X @ np.asarray(ms["dense_0"]["kernel"]) + np.asarray(ms["dense_0"]["bias"])
    np.testing.assert_allclose(state.history[1]["loss"], np.mean([np.mean((pred[i : i + 16] - Y[i : i + 16]) ** 2) for i in range(0, 64, 16)]), rtol=1e-5)
