"""early_stop(restore_best=True) against hand-made metric trajectories (custom loop and
trainer, with and without EMA, across a backup and resume); checkpoint(keep_best=n);
watched metrics checked before the first step."""

import os
import signal
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import axon

RNG = np.random.default_rng(5)
X = RNG.normal(size=(16, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-1.0], [0.5]], np.float32)).astype(np.float32)
BATCHES = [(X[i : i + 4], Y[i : i + 4]) for i in range(0, 16, 4)]  # 4 steps per epoch


def scripted(values):
    """A custom loop whose 'model_state' counts epochs (one batch per epoch) and whose
    'score' in epoch e is values[e]."""
    table = jnp.asarray(values, jnp.float32)
    lp = axon.loop.loop(lambda s, b: {"model_state": s["model_state"] + 1}, lambda b, i: {"model_state": jnp.zeros(())})
    return lp.metric(lambda s: table[s["model_state"].astype(jnp.int32) - 1], "score", transform=lambda s: (s,))


@pytest.mark.parametrize(
    ("mode", "values", "best_epoch", "stop_epoch"),
    [
        ("min", [5, 4, 1, 3, 2, 4, 6, 7], 2, 5),  # after epoch 2: 3 epochs without a lower value
        ("max", [1, 3, 2, 9, 8, 8.5, 7, 1], 3, 6),
    ],
)
def test_restore_best_on_stop(mode, values, best_epoch, stop_epoch):
    final = scripted(values).early_stop("score", mode=mode, patience=3, restore_best=True).run(
        [0], epochs=8, progress=False
    )
    assert final.status == "halted" and final.epoch == stop_epoch
    # the model state after epoch e is e + 1 (one step per epoch)
    assert float(final.step_state["model_state"]) == best_epoch + 1
    assert final.handler_metadata["early_stop"]["best_epoch"] == best_epoch
    plain = scripted(values).early_stop("score", mode=mode, patience=3).run([0], epochs=8, progress=False)
    assert float(plain.step_state["model_state"]) == stop_epoch + 1


def test_restore_best_when_the_run_completes_without_stopping():
    final = scripted([3, 1, 2, 2.5]).early_stop("score", patience=5, restore_best=True).run([0], epochs=4, progress=False)
    assert final.status == "completed" and float(final.step_state["model_state"]) == 2.0


def scored_trainer(values, *, ema=None):
    """A trainer whose metric 'score' is values[epoch] (4 steps per epoch), recording the
    parameters (and moving average) at each epoch's end."""
    table = jnp.asarray(values, jnp.float32)
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2, activation="tanh").pipe(axon.dense, 1)
    t = axon.loop.trainer(model, "mean_squared_error", axon.optimizers.adam(0.05), log=0)
    if ema is not None:
        t = t.ema(ema)
    t = t.metric(lambda i: table[(i - 1) // 4], "score", accumulate=lambda acc, v, i: v, transform=lambda s: (s["i"],))
    recorded = {}

    def record(state):
        key = "ema_model_state" if ema is not None else "model_state"
        recorded[state.epoch] = params(state.step_state[key])
        return "continue", state

    return t.handle_event("epoch_completed", record), recorded


def params(model_state):
    return {f"{l}/{n}": np.asarray(v) for l, d in model_state.trainable_parameters().items() for n, v in d.items()}


@pytest.mark.parametrize("ema", [None, 0.5])
def test_trainer_restore_best_returns_the_best_epochs_state(ema):
    t, recorded = scored_trainer([4.0, 2.0, 3.0, 1.5, 3.5, 4.5, 5.0], ema=ema)
    t = t.early_stop("score", patience=2, restore_best=True)
    final = t.run(BATCHES, epochs=7, return_state=True)
    assert final.epoch == 5 and final.handler_metadata["early_stop"]["best_epoch"] == 3
    returned = params(final.step_state["ema_model_state" if ema else "model_state"])
    for k, v in recorded[3].items():
        assert np.array_equal(returned[k], v), k
    assert any(not np.array_equal(returned[k], recorded[5][k]) for k in returned)
    if ema:  # the trained parameters are the best epoch's too
        assert int(final.step_state["i"]) == 24


def test_restore_best_survives_a_backup_and_resume(tmp_path):
    values = [4.0, 1.0, 3.0, 2.0, 2.5, 2.2]  # best epoch 1; no stop with patience 9

    def make(kill_at=None):
        t, _ = scored_trainer(values)
        t = t.early_stop("score", patience=9, restore_best=True).backup_and_restore(tmp_path / "b")
        if kill_at is not None:
            def kill(state):
                if int(state.step_state["i"]) == kill_at:
                    os.kill(os.getpid(), signal.SIGTERM)
                return "continue", state

            t = t.handle_event("iteration_completed", kill)
        return t

    straight, _ = scored_trainer(values)
    straight = straight.early_stop("score", patience=9, restore_best=True).run(BATCHES, epochs=6, return_state=True)
    with pytest.raises(SystemExit):
        make(kill_at=14).run(BATCHES, epochs=6)  # epoch 3: after the best epoch
    resumed = make().run(BATCHES, epochs=6, return_state=True)
    a, b = params(straight.step_state["model_state"]), params(resumed.step_state["model_state"])
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert resumed.handler_metadata["early_stop"]["best_epoch"] == 1


def test_restore_best_warns_when_the_best_state_was_before_a_from_state_resume(tmp_path):
    lp = scripted([1, 3, 4, 5]).early_stop("score", patience=9, restore_best=True).checkpoint(path=str(tmp_path))
    lp.run([0], epochs=2, progress=False)
    saved = axon.loop.load_checkpoint(str(tmp_path / "checkpoint_1_1.ckpt"))
    with pytest.warns(RuntimeWarning, match=r"best epoch \(0\) was before this run resumed"):
        final = lp.from_state(saved).run([0], epochs=2, progress=False)
    assert float(final.step_state["model_state"]) == 4.0


def test_restore_best_bad_input():
    with pytest.raises(TypeError, match="early_stop: expected restore_best to be a bool, got 1"):
        scripted([1]).early_stop("score", restore_best=1)


# -- checkpoint(keep_best=) ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "values", "kept"),
    [
        ("min", [3, 1, 2, 0.5, 2.5, 0.7], [(3, 0.5), (5, 0.7), (1, 1.0)]),
        ("max", [3, 1, 2, 0.5, 2.5, 0.7], [(0, 3.0), (4, 2.5), (2, 2.0)]),
    ],
)
def test_checkpoint_keep_best(tmp_path, mode, values, kept):
    lp = scripted(values).checkpoint(path=str(tmp_path), criteria="score", mode=mode, keep_best=3,
                                     file_pattern=lambda s: f"e{s.epoch}.ckpt")
    final = lp.run([0], epochs=len(values), progress=False)
    assert sorted(os.listdir(tmp_path)) == sorted(f"e{e}.ckpt" for e, _ in kept)
    memory = final.handler_metadata["checkpoint"]
    assert [os.path.basename(f) for _, f in memory["kept"]] == [f"e{e}.ckpt" for e, _ in kept]
    assert [v for v, _ in memory["kept"]] == pytest.approx([v for _, v in kept])  # float32 values
    # each file holds its epoch's state
    for e, v in kept:
        state = axon.loop.load_checkpoint(str(tmp_path / f"e{e}.ckpt"))
        assert state.epoch == e and float(state.metrics["score"]) == pytest.approx(v)


def test_checkpoint_keep_best_one_is_save_best_only(tmp_path):
    scripted([3, 2, 4, 1, 5]).checkpoint(path=str(tmp_path), criteria="score", keep_best=1).run(
        [0], epochs=5, progress=False
    )
    assert os.listdir(tmp_path) == ["checkpoint_3_1.ckpt"]


def test_checkpoint_keep_best_bad_input(tmp_path):
    lp = scripted([1])
    with pytest.raises(ValueError, match="checkpoint: keep_best needs criteria"):
        lp.checkpoint(path=str(tmp_path), keep_best=2)
    with pytest.raises(ValueError, match="checkpoint: expected keep_best to be a positive int or None, got 0"):
        lp.checkpoint(path=str(tmp_path), criteria="score", keep_best=0)
    with pytest.raises(ValueError, match="checkpoint: keep_best ranks values by mode 'min' or 'max'"):
        lp.checkpoint(path=str(tmp_path), criteria="score", keep_best=2, mode=lambda v: v > 1)


# -- watched metrics are checked before the first step -------------------------------------
def counting(loop_):
    steps = []
    return loop_.handle_event("iteration_started", lambda s: (steps.append(1), ("continue", s))[1]), steps


@pytest.mark.parametrize(
    ("attach", "message"),
    [
        (lambda t: t.early_stop("los"), r"early_stop: metric 'los' is not tracked by this loop; its metrics are \['loss'\]"),
        (lambda t: t.checkpoint(criteria="acc", keep_best=2), "checkpoint: metric 'acc' is not tracked"),
        (lambda t: t.checkpoint(criteria="acc"), "checkpoint: metric 'acc' is not tracked"),
        (lambda t: t.reduce_lr_on_plateau("lr"), "reduce_lr_on_plateau: metric 'lr' is not tracked"),
        (lambda t: t.monitor("x", lambda s: ("continue", s), "watch"), "monitor: metric 'x' is not tracked"),
        (lambda t: t.early_stop("validation_loss"), "validation metrics come from Loop.validate"),
    ],
)
def test_unknown_watched_metric_fails_before_the_first_step(tmp_path, monkeypatch, attach, message):
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 1)
    monkeypatch.chdir(tmp_path)  # checkpoint's default folder
    t, steps = counting(attach(axon.loop.trainer(model, "mean_squared_error", "sgd", log=0)))
    with pytest.raises(ValueError, match=message):
        t.run(BATCHES)
    assert steps == [] and os.listdir(tmp_path) == []


def test_watched_validation_metric_needs_validate_attached_before():
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 1)
    t = axon.loop.trainer(model, "mean_squared_error", "sgd", log=0).metric("mean_absolute_error", "mae")
    late, steps = counting(t.early_stop("validation_mae").validate(model, BATCHES[:1]))
    with pytest.raises(ValueError, match="added by a handler attached after early_stop.*attach early_stop after validate"):
        late.run(BATCHES)
    assert steps == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        final = t.validate(model, BATCHES[:1]).early_stop("validation_mae").run(BATCHES, return_state=True)
    assert "validation_mae" in final.history[0]


def test_a_handler_that_declares_its_metrics_can_be_watched():
    def add(state):
        state.metrics = {**state.metrics, "custom": jnp.asarray(1.0)}
        return "continue", state

    lp = scripted([1, 2]).handle_event("epoch_completed", axon.loop.adds_metrics(add, ["custom"]))
    final = lp.early_stop("custom", patience=1).run([0], epochs=2, progress=False)
    assert final.handler_metadata["early_stop"]["best"] == 1.0
