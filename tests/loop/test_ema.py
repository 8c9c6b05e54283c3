"""Loop.ema: the averaged parameters equal a numpy EMA of the recorded parameter trajectory
(every step, every n steps, several steps per compiled call), survive a checkpoint and
resume, work with reduce_lr_on_plateau attached later, and serve evaluation; bad input."""

import numpy as np
import pytest

import axon

RNG = np.random.default_rng(3)
X = RNG.normal(size=(24, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3).astype(np.float32)
BATCHES = [(X[i : i + 6], Y[i : i + 6]) for i in range(0, 24, 6)]


def model():
    return axon.input("x", shape=(None, 3)).pipe(axon.dense, 4, activation="tanh").pipe(axon.dense, 1)


def params_of(model_state):
    return {f"{layer}/{name}": np.asarray(v, np.float64)
            for layer, values in model_state.trainable_parameters().items() for name, v in values.items()}


def recording(loop_):
    """Record the parameters at the start and after every step (``steps_per_execution=1``)."""
    trajectory, averages = [], []

    def at_start(state):
        trajectory.append(params_of(state.step_state["model_state"]))
        return "continue", state

    def after_step(state):
        trajectory.append(params_of(state.step_state["model_state"]))
        averages.append(params_of(state.step_state["ema_model_state"]))
        return "continue", state

    return loop_.handle_event("started", at_start).handle_event("iteration_completed", after_step), trajectory, averages


def numpy_ema(trajectory, decay, every):
    average = dict(trajectory[0])
    out = []
    for t, params in enumerate(trajectory[1:], start=1):
        if t % every == 0:
            average = {k: decay * average[k] + (1 - decay) * params[k] for k in average}
        out.append(dict(average))
    return out


@pytest.mark.parametrize(("decay", "every"), [(0.9, 1), (0.75, 3)])
def test_ema_equals_a_numpy_ema_of_the_trajectory(decay, every):
    t = axon.loop.trainer(model(), "mean_squared_error", axon.optimizers.adam(0.05), log=0).ema(decay, every=every)
    t, trajectory, averages = recording(t)
    final = t.run(BATCHES, epochs=3, return_state=True)
    assert len(trajectory) == 13
    expected = numpy_ema(trajectory, decay, every)
    for got, want in zip(averages, expected):
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)
    # the average differs from the parameters (it is not a copy)
    last = params_of(final.step_state["model_state"])
    assert any(not np.allclose(last[k], expected[-1][k]) for k in last)


def test_ema_with_several_steps_per_compiled_call():
    base = axon.loop.trainer(model(), "mean_squared_error", axon.optimizers.sgd(0.1), log=0).ema(0.8)
    one, trajectory, _ = recording(base)
    one.run(BATCHES, epochs=2)
    expected = numpy_ema(trajectory, 0.8, 1)[-1]
    final = base.run(BATCHES, epochs=2, steps_per_execution=2, return_state=True)
    got = params_of(final.step_state["ema_model_state"])
    for k in expected:
        np.testing.assert_allclose(got[k], expected[k], rtol=1e-5, atol=1e-6)


def test_ema_is_checkpointed_and_resumed(tmp_path):
    t = axon.loop.trainer(model(), "mean_squared_error", axon.optimizers.sgd(0.1), log=0).ema(0.9)
    straight = t.run(BATCHES, epochs=2, return_state=True)
    t.checkpoint(path=str(tmp_path)).run(BATCHES, epochs=1)
    saved = axon.loop.load_checkpoint(str(tmp_path / "checkpoint_0_4.ckpt"))
    resumed = t.from_state(saved).run(BATCHES, epochs=1, return_state=True)
    a, b = params_of(straight.step_state["ema_model_state"]), params_of(resumed.step_state["ema_model_state"])
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-6, atol=1e-7)


def test_ema_survives_reduce_lr_on_plateau_attached_later_and_serves_evaluation():
    net = model()
    t = axon.loop.trainer(net, "mean_squared_error", axon.optimizers.sgd(0.1), log=0).ema(0.5)
    t = t.reduce_lr_on_plateau("loss", patience=1)
    final = t.run(BATCHES, epochs=2, return_state=True)
    ema_state = final.step_state["ema_model_state"]
    assert isinstance(ema_state, axon.ModelState)
    # evaluation with the averaged state: the evaluator's metric equals numpy's on its predictions
    predictions = np.asarray(axon.predict(net, ema_state, X))
    result = axon.loop.evaluator(net, log=0).metric("mean_absolute_error", "mae").run([(X, Y)], ema_state)
    assert result[0]["mae"] == pytest.approx(float(np.mean(np.abs(predictions - Y))), rel=1e-5)
    assert not np.allclose(predictions, np.asarray(axon.predict(net, final.step_state["model_state"], X)))


def test_ema_bad_input():
    t = axon.loop.trainer(model(), "mean_squared_error", "sgd", log=0)
    with pytest.raises(ValueError, match="ema: expected 0 <= decay < 1, got 1.0"):
        t.ema(1.0)
    with pytest.raises(ValueError, match="ema: expected every to be a positive int, got 0"):
        t.ema(every=0)
    with pytest.raises(ValueError, match="ema: this trainer already keeps a moving average"):
        t.ema().ema()
    with pytest.raises(ValueError, match="ema: needs a loop made by axon.loop.trainer"):
        axon.loop.loop(lambda s, b: s).ema()


def test_ema_under_data_parallel_and_fsdp_equals_one_device():
    from tests.distributed.multidevice import run_on_devices

    result = run_on_devices(
        """
        import numpy as np, axon, axon.distributed as dist
        rng = np.random.default_rng(0)
        x = rng.normal(size=(32, 8)).astype(np.float32); y = rng.normal(size=(32, 4)).astype(np.float32)
        data = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8)]
        net = axon.input("x", shape=(None, 8)).pipe(axon.dense, 16).pipe(axon.dense, 4)

        def ema(distribution):
            t = axon.loop.trainer(net, "mean_squared_error", "adam", log=0, distribution=distribution).ema(0.9)
            s = t.run(data, epochs=2, return_state=True).step_state["ema_model_state"]
            return {f"{l}/{n}": np.asarray(v) for l, d in s.trainable_parameters().items() for n, v in d.items()}

        ref = ema(None)
        result = {type(s).__name__: max(float(np.max(np.abs(ema(s)[k] - ref[k]))) for k in ref)
                  for s in (dist.DataParallel(), dist.FSDP())}
        """,
        n=2,
    )
    assert result["DataParallel"] < 1e-5 and result["FSDP"] < 1e-5


def numpy_forward(params, x):
    hidden = np.tanh(x @ params["dense_0/kernel"] + params["dense_0/bias"])
    return hidden @ params["dense_1/kernel"] + params["dense_1/bias"]


def test_validation_and_the_returned_state_use_the_average():
    net = model()
    validation = [(X[:12], Y[:12])]
    t = axon.loop.trainer(net, "mean_squared_error", axon.optimizers.adam(0.05), log=0).ema(0.8)
    t = t.validate(net, validation)
    t, trajectory, _ = recording(t)
    final = t.run(BATCHES, epochs=2, return_state=True)
    expected = numpy_ema(trajectory, 0.8, 1)
    for epoch in range(2):
        average = expected[4 * epoch + 3]  # after the epoch's 4th step
        want = float(np.mean((numpy_forward(average, X[:12].astype(np.float64)) - Y[:12]) ** 2))
        assert final.history[epoch]["validation_loss"] == pytest.approx(want, rel=1e-5)
        trained = params_of(final.step_state["model_state"]) if epoch == 1 else None
        if trained is not None:  # the trained parameters would give another loss
            other = float(np.mean((numpy_forward(trained, X[:12].astype(np.float64)) - Y[:12]) ** 2))
            assert other != pytest.approx(want, rel=1e-3)
    returned = t.run(BATCHES, epochs=2)
    got = params_of(returned)
    for k in expected[-1]:
        np.testing.assert_allclose(got[k], expected[-1][k], rtol=1e-5, atol=1e-6)
