"""Loop.backup_and_restore: a run killed with SIGTERM or SIGKILL in a subprocess and resumed
ends bit-identical to an uninterrupted run (every leaf of the step state, optimizer and
moving average included; history and handler memory too), with one log row per epoch;
keep=N pruning; signal handlers put back; a mismatched folder fails before the first step;
bad input."""

import csv
import json
import os
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon
from tests.loop import backup_run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("straight")
    return backup_run.run(backup_run.trainer(str(folder))), folder


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def leaves(step_state):
    return [(jax.tree_util.keystr(p), np.asarray(v)) for p, v in jax.tree_util.tree_leaves_with_path(step_state)]


def assert_bit_identical(a, b):
    la, lb = leaves(a), leaves(b)
    assert [k for k, _ in la] == [k for k, _ in lb]
    assert any("optimizer_state" in k for k, _ in la) and any("ema_model_state" in k for k, _ in la)
    for (key, x), (_, y) in zip(la, lb):
        assert x.dtype == y.dtype and np.array_equal(x, y), key


def kill_in_subprocess(folder, kill_at, sig, every):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "src")]), "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, "-m", "tests.loop.backup_run", str(folder), str(kill_at), sig, str(every)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    return done


@pytest.mark.parametrize(
    ("sig", "every", "kill_at", "latest"),
    [
        ("SIGTERM", "epoch", 15, "backup_00002_0000003.ckpt"),  # epoch 2, 3rd step: a backup at that step
        # epoch 2, 3rd step: the latest backup is epoch 1's end (the one before, its 4th step): epoch 2 runs again
        ("SIGKILL", 4, 15, "backup_00002_0000000.ckpt"),
    ],
)
def test_killed_and_resumed_run_is_bit_identical(tmp_path, uninterrupted, sig, every, kill_at, latest):
    done = kill_in_subprocess(tmp_path, kill_at, sig, every)
    expected_rc = 128 + signal.SIGTERM if sig == "SIGTERM" else -signal.SIGKILL
    assert done.returncode == expected_rc, done.stderr[-3000:]
    backups = sorted(os.listdir(tmp_path / "backup"))
    assert backups[-1] == latest and len(backups) <= 2
    rows_before = read_csv(tmp_path / "log.csv")
    assert [r["epoch"] for r in rows_before] == ["0", "1"]

    resumed = backup_run.run(backup_run.trainer(str(tmp_path), every))
    reference, ref_folder = uninterrupted
    assert resumed.status == "completed" and resumed.epoch == backup_run.EPOCHS
    assert_bit_identical(resumed.step_state, reference.step_state)
    assert resumed.history == reference.history
    assert resumed.handler_metadata == reference.handler_metadata
    # the same events, except one more "started": the resumed run is a second run
    assert {**resumed.event_counts, "started": 1} == reference.event_counts and resumed.event_counts["started"] == 2

    # exactly one row per epoch, with the uninterrupted run's values
    rows = read_csv(tmp_path / "log.csv")
    ref_rows = read_csv(ref_folder / "log.csv")
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    drop = ("wall_time",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows] == [
        {k: v for k, v in r.items() if k not in drop} for r in ref_rows
    ]
    jsonl = read_jsonl(tmp_path / "log.jsonl")
    assert [r["epoch"] for r in jsonl] == [0, 1, 2, 3]
    assert [r["validation_loss"] for r in jsonl] == [reference.history[e]["validation_loss"] for e in range(4)]


def counter(folder, **options):
    lp = axon.loop.loop(lambda s, b: s + 1, lambda b, init: jnp.zeros((), jnp.float32))
    lp = lp.metric(lambda s: s, "count", transform=lambda s: (s,))
    return lp.backup_and_restore(str(folder), **options)


def test_keep_prunes_to_the_latest_backups(tmp_path):
    counter(tmp_path, keep=3, every=2).run([0] * 5, epochs=3, progress=False)
    # per epoch: backups after 2 and 4 iterations and at the epoch's end
    assert sorted(os.listdir(tmp_path)) == ["backup_00002_0000004.ckpt", "backup_00003_0000000.ckpt"] or sorted(
        os.listdir(tmp_path)
    ) == ["backup_00002_0000002.ckpt", "backup_00002_0000004.ckpt", "backup_00003_0000000.ckpt"]
    assert len(os.listdir(tmp_path)) == 3
    counter(tmp_path / "one", keep=1).run([0] * 5, epochs=3, progress=False)
    assert os.listdir(tmp_path / "one") == ["backup_00003_0000000.ckpt"]


def test_resume_counts_epochs_of_the_whole_run_and_returns_at_once_when_done(tmp_path):
    first = counter(tmp_path).run([0] * 3, epochs=2, progress=False)
    assert int(first.step_state) == 6
    again = counter(tmp_path).run([0] * 3, epochs=2, progress=False)
    assert int(again.step_state) == 6 and again.history == first.history and again.status == "completed"
    more = counter(tmp_path).run([0] * 3, epochs=3, progress=False)
    assert int(more.step_state) == 9 and sorted(more.history) == [0, 1, 2]
    # running average of the counter in epoch 2: (7 + 8 + 9) / 3, by hand
    assert more.history[2]["count"] == pytest.approx(8.0)


@pytest.mark.parametrize(("sig", "raised"), [("SIGTERM", SystemExit), ("SIGINT", KeyboardInterrupt)])
def test_signal_writes_a_backup_stops_cleanly_and_puts_handlers_back(tmp_path, sig, raised):
    number = getattr(signal, sig)
    before = signal.getsignal(number)
    events = []

    def send(state):
        if state.event_counts["iteration_completed"]["total"] == 4:
            os.kill(os.getpid(), number)
        return "continue", state

    lp = counter(tmp_path).handle_event("iteration_completed", send)
    lp = lp.handle_event("halted", lambda s: (events.append(("halted", s.epoch, s.iteration)), ("continue", s))[1])
    with pytest.raises(raised) as info:
        lp.run([0] * 3, epochs=3, progress=False)
    if raised is SystemExit:
        assert info.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(number) is before
    assert events == [("halted", 1, 1)]  # the step under way finished: epoch 1, 1 iteration
    assert sorted(os.listdir(tmp_path)) == ["backup_00001_0000001.ckpt"]
    resumed = counter(tmp_path).run([0] * 3, epochs=3, progress=False)
    assert int(resumed.step_state) == 9
    straight = counter(tmp_path / "straight").run([0] * 3, epochs=3, progress=False)
    assert resumed.history == straight.history
    assert {**resumed.event_counts, "started": 1} == straight.event_counts


def test_a_folder_of_another_model_fails_before_the_first_step(tmp_path):
    x, y = np.ones((4, 3), np.float32), np.ones((4, 1), np.float32)
    small = axon.input("x", shape=(None, 3)).pipe(axon.dense, 1)
    axon.loop.trainer(small, "mean_squared_error", "adam", log=0).backup_and_restore(tmp_path).run([(x, y)])
    steps = []
    bigger = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2).pipe(axon.dense, 1)
    t = axon.loop.trainer(bigger, "mean_squared_error", "adam", log=0).backup_and_restore(tmp_path)
    t = t.handle_event("iteration_started", lambda s: (steps.append(1), ("continue", s))[1])
    with pytest.raises(axon.loop.BackupMismatchError, match="backup_00001_0000000.ckpt.*different loop.*dense_1"):
        t.run([(x, y)])
    assert steps == []
    sgd = axon.loop.trainer(small, "mean_squared_error", "sgd", log=0).backup_and_restore(tmp_path)
    with pytest.raises(axon.loop.BackupMismatchError, match="optimizer"):
        sgd.run([(x, y)])


def test_bad_input(tmp_path):
    lp = axon.loop.loop(lambda s, b: s)
    with pytest.raises(ValueError, match="backup_and_restore: expected keep to be a positive int, got 0"):
        lp.backup_and_restore(tmp_path, keep=0)
    with pytest.raises(ValueError, match="backup_and_restore: expected every to be 'epoch' or a positive int, got 'step'"):
        lp.backup_and_restore(tmp_path, every="step")
    with pytest.raises(ValueError, match="backup_and_restore: unknown signal 'TERM'"):
        lp.backup_and_restore(tmp_path, signals=["TERM"])
    with pytest.raises(TypeError, match="backup_and_restore: expected path to be a folder path"):
        lp.backup_and_restore(3)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, expected a folder"):
        counter(tmp_path / "file").run([0], progress=False)


def test_a_run_in_another_thread_backs_up_without_touching_signals(tmp_path):
    import threading

    seen, results = [], []

    def watch(state):
        seen.append(signal.getsignal(signal.SIGTERM))
        return "continue", state

    def work():
        results.append(counter(tmp_path).handle_event("iteration_completed", watch).run([0] * 2, epochs=2, progress=False))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert int(results[0].step_state) == 4 and os.listdir(tmp_path) == ["backup_00002_0000000.ckpt"]
    assert seen and all(h is signal.getsignal(signal.SIGTERM) for h in seen)  # never replaced


def test_a_mid_epoch_backup_of_other_metrics_fails_before_the_first_step(tmp_path):
    def send(state):
        if state.event_counts["iteration_completed"]["total"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return "continue", state

    with pytest.raises(SystemExit):
        counter(tmp_path).handle_event("iteration_completed", send).run([0] * 3, epochs=2, progress=False)
    assert os.listdir(tmp_path) == ["backup_00000_0000002.ckpt"]
    other = axon.loop.loop(lambda s, b: s + 1, lambda b, init: jnp.zeros((), jnp.float32))
    other = other.metric(lambda s: s, "total", "running_sum", transform=lambda s: (s,)).backup_and_restore(tmp_path)
    with pytest.raises(axon.loop.BackupMismatchError, match=r"its metrics are \['count'\], this loop's are \['total'\]"):
        other.run([0] * 3, epochs=2, progress=False)


def test_logs_after_a_stop_in_the_first_epoch_have_every_row_once(tmp_path):
    def send(state):
        if state.event_counts["iteration_completed"]["total"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return "continue", state

    log = tmp_path / "log.jsonl"
    with pytest.raises(SystemExit):
        counter(tmp_path / "b").log_to_jsonl(log, every=1).handle_event("iteration_completed", send).run(
            [0] * 3, epochs=2, progress=False
        )
    counter(tmp_path / "b").log_to_jsonl(log, every=1).run([0] * 3, epochs=2, progress=False)
    rows = read_jsonl(log)
    assert [(r["event"], r["epoch"], r["iteration"]) for r in rows] == [
        ("iteration", 0, 1), ("iteration", 0, 2), ("iteration", 0, 3), ("epoch", 0, 3),
        ("iteration", 1, 1), ("iteration", 1, 2), ("iteration", 1, 3), ("epoch", 1, 3),
    ]
    # running averages of the counter, by hand: epoch 0 sees 1, 2, 3; epoch 1 sees 4, 5, 6
    assert [r["count"] for r in rows] == [1.0, 1.5, 2.0, 2.0, 4.0, 4.5, 5.0, 5.0]
