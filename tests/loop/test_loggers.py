"""Loop.log_to_csv / log_to_jsonl: rows read back with the csv and json modules and compared
with the loop's history and with hand-computed values; resume without duplicates; widened
headers; main process only; bad input."""

import csv
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import axon

RNG = np.random.default_rng(0)
X = RNG.normal(size=(32, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3).astype(np.float32)
BATCHES = [(X[i : i + 8], Y[i : i + 8]) for i in range(0, 32, 8)]


def linear_model():
    return axon.input("x", shape=(None, 3)).pipe(axon.dense, 1)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def counting_loop():
    """A loop whose state counts steps; metric ``count`` is the running average of the
    counter after each step (1, 2, 3, ...), so its values are known by hand."""
    lp = axon.loop.loop(lambda s, b: s + 1, lambda b, init: jnp.zeros((), jnp.float32))
    return lp.metric(lambda s: s, "count", transform=lambda s: (s,))


def test_csv_rows_equal_history_with_validation_and_learning_rate(tmp_path):
    path = tmp_path / "log.csv"
    model = linear_model()
    t = (
        axon.loop.trainer(model, "mean_squared_error", axon.optimizers.sgd(0.05), log=0)
        .metric("mean_absolute_error", "mae")
        .validate(model, BATCHES[:2])
        .log_to_csv(path)
    )
    state = t.run(BATCHES, epochs=3, return_state=True)
    rows = read_csv(path)
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert list(rows[0]) == ["event", "epoch", "iteration", "loss", "mae", "validation_loss", "validation_mae",
                             "learning_rate", "wall_time"]
    for row in rows:
        assert row["event"] == "epoch" and row["iteration"] == "4"
        expected = state.history[int(row["epoch"])]
        for name in ("loss", "mae", "validation_loss", "validation_mae"):
            assert float(row[name]) == pytest.approx(expected[name], rel=1e-6), name
        assert float(row["learning_rate"]) == pytest.approx(0.05)
    times = [float(r["wall_time"]) for r in rows]
    assert times == sorted(times) and times[0] > 1.6e9


def test_jsonl_every_n_iterations_hand_computed(tmp_path):
    path = tmp_path / "log.jsonl"
    counting_loop().log_to_jsonl(path, every=2).run([0] * 5, epochs=2, progress=False)
    rows = read_jsonl(path)
    got = [(r["event"], r["epoch"], r["iteration"], r["count"]) for r in rows]
    # epoch 0: counter 1..5, running averages 1.5 (2 steps), 2.5 (4 steps), 3.0 (5 steps);
    # epoch 1: counter 6..10, averages 6.5, 7.5, 8.0
    assert got == [
        ("iteration", 0, 2, 1.5), ("iteration", 0, 4, 2.5), ("epoch", 0, 5, 3.0),
        ("iteration", 1, 2, 6.5), ("iteration", 1, 4, 7.5), ("epoch", 1, 5, 8.0),
    ]
    assert all("learning_rate" not in r for r in rows)  # a custom loop has no optimizer


def test_every_with_several_steps_per_call_logs_when_a_multiple_is_passed(tmp_path):
    path = tmp_path / "log.jsonl"
    counting_loop().log_to_jsonl(path, every=2).run([0] * 6, steps_per_execution=3, progress=False)
    assert [(r["event"], r["iteration"]) for r in read_jsonl(path)] == [
        ("iteration", 3), ("iteration", 6), ("epoch", 6),
    ]


def test_learning_rate_of_an_optax_inject_hyperparams_optimizer(tmp_path):
    path = tmp_path / "log.jsonl"
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=0.003)
    axon.loop.trainer(linear_model(), "mean_squared_error", opt, log=0).log_to_jsonl(path).run(BATCHES, epochs=2)
    assert [r["learning_rate"] for r in read_jsonl(path)] == pytest.approx([0.003, 0.003])


def test_learning_rate_follows_reduce_lr_on_plateau(tmp_path):
    path = tmp_path / "log.jsonl"
    batch = [(np.ones((2, 1), np.float32), np.ones((2, 1), np.float32))]
    model = axon.input("x", shape=(None, 1)).pipe(axon.dense, 1)
    # a zero gradient scale keeps the loss flat: the plateau halves the rate after every epoch
    opt = optax.chain(optax.scale(0.0), optax.inject_hyperparams(optax.sgd)(learning_rate=0.4))
    t = axon.loop.trainer(model, "mean_squared_error", opt, log=0).reduce_lr_on_plateau("loss", patience=1, factor=0.5)
    t.log_to_jsonl(path).run(batch, epochs=3)
    assert [r["learning_rate"] for r in read_jsonl(path)] == pytest.approx([0.4, 0.2, 0.1])


def test_no_learning_rate_column_when_the_optimizer_exposes_none(tmp_path):
    path = tmp_path / "log.csv"
    axon.loop.trainer(linear_model(), "mean_squared_error", optax.sgd(0.1), log=0).log_to_csv(path).run(BATCHES)
    assert "learning_rate" not in read_csv(path)[0]


def test_resume_from_an_older_checkpoint_never_duplicates_rows(tmp_path):
    csv_path, jsonl_path, ckpt = tmp_path / "log.csv", tmp_path / "log.jsonl", tmp_path / "ckpt"
    base = axon.loop.trainer(linear_model(), "mean_squared_error", axon.optimizers.sgd(0.05), log=0)
    t = base.checkpoint(path=str(ckpt)).log_to_csv(csv_path).log_to_jsonl(jsonl_path, every=2)
    first = t.run(BATCHES, epochs=3, return_state=True)
    # the job "dies" after epoch 2 was logged, and resumes from the checkpoint of epoch 0
    saved = axon.loop.load_checkpoint(str(ckpt / "checkpoint_0_4.ckpt"))
    resumed = t.from_state(saved).run(BATCHES, epochs=3, return_state=True)
    rows = read_csv(csv_path)
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    # epochs 0-2 are the first run's rows; epoch 3 is new
    for row in rows[:3]:
        assert float(row["loss"]) == pytest.approx(first.history[int(row["epoch"])]["loss"], rel=1e-6)
    assert float(rows[3]["loss"]) == pytest.approx(resumed.history[3]["loss"], rel=1e-6)
    positions = [(r["event"], r["epoch"], r["iteration"]) for r in read_jsonl(jsonl_path)]
    assert len(positions) == len(set(positions)) == 4 * 3
    # a fresh run (epoch 0) starts the file over
    base.log_to_csv(csv_path).run(BATCHES, epochs=1)
    assert [r["epoch"] for r in read_csv(csv_path)] == ["0"]


def test_a_metric_appearing_later_widens_the_csv_header(tmp_path):
    path = tmp_path / "log.csv"

    def add_late_metric(state):
        if state.epoch >= 1:
            state.metrics = {**state.metrics, "late": jnp.asarray(float(state.epoch) * 10)}
        return "continue", state

    counting_loop().handle_event("epoch_completed", add_late_metric).log_to_csv(path).run([0] * 2, epochs=3, progress=False)
    rows = read_csv(path)
    assert list(rows[0]) == ["event", "epoch", "iteration", "count", "late", "wall_time"]
    assert [r["late"] for r in rows] == ["", "10.0", "20.0"]
    assert [float(r["count"]) for r in rows] == [1.5, 3.5, 5.5]


def test_only_the_main_process_writes(tmp_path, monkeypatch):
    path = tmp_path / "log.csv"
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    counting_loop().log_to_csv(path).run([0] * 2, progress=False)
    assert not os.path.exists(path)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="log_to_csv: expected every to be a positive int"):
        counting_loop().log_to_csv(tmp_path / "x.csv", every=0)
    with pytest.raises(TypeError, match="log_to_jsonl: expected path"):
        counting_loop().log_to_jsonl(3)
    steps = []
    lp = axon.loop.loop(lambda s, b: steps.append(1) or s, lambda b, i: 0)
    with pytest.raises(ValueError, match="log_to_jsonl: the directory .*missing.* does not exist"):
        lp.log_to_jsonl(tmp_path / "missing" / "x.jsonl").run([0], jit=False, progress=False)
    assert steps == []  # the error comes before the first step


def test_a_logger_attached_before_validate_warns_naming_the_missing_metrics(tmp_path):
    path = tmp_path / "log.csv"
    model = linear_model()
    t = axon.loop.trainer(model, "mean_squared_error", "sgd", log=0).log_to_csv(path).validate(model, BATCHES[:1])
    with pytest.warns(RuntimeWarning, match=r"log_to_csv: \['validation_loss'\] were added to epoch 0's metrics"):
        t.run(BATCHES, epochs=2)
    assert "validation_loss" not in read_csv(path)[0]
