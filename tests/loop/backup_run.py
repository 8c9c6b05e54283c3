"""A training run for the backup tests, the same in the test process and in the subprocess
that is killed: ``python -m tests.loop.backup_run FOLDER KILL_AT SIGNAL EVERY`` sends itself
``SIGNAL`` after global step ``KILL_AT``."""

import os
import signal
import sys

import jax
import numpy as np

import axon

jax.config.update("jax_default_matmul_precision", "highest")  # as the root conftest

RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 4)).astype(np.float32)
Y = (X @ RNG.normal(size=(4, 1)) + 0.1).astype(np.float32)
VALIDATION = [(X[:16], Y[:16])]
EPOCHS = 4  # 6 steps per epoch (48 examples, batches of 8)


def trainer(folder, every="epoch", kill_at=None, sig=None):
    model = (
        axon.input("x", shape=(None, 4))
        .pipe(axon.dense, 8, activation="relu")
        .pipe(axon.dropout, rate=0.3)  # random keys in the state
        .pipe(axon.dense, 1)
    )
    t = (
        axon.loop.trainer(model, "mean_squared_error", axon.optimizers.adam(1e-2), log=0, seed=1)
        .metric("mean_absolute_error", "mae")
        .ema(0.9)
        .validate(model, VALIDATION)
        .early_stop("validation_loss", patience=50)
        .reduce_lr_on_plateau("loss", patience=1, factor=0.5)
        .log_to_csv(os.path.join(folder, "log.csv"))
        .log_to_jsonl(os.path.join(folder, "log.jsonl"))
        .backup_and_restore(os.path.join(folder, "backup"), keep=2, every=every)
    )
    if kill_at is not None:

        def kill(state):
            if int(state.step_state["i"]) == kill_at:
                os.kill(os.getpid(), sig)
            return "continue", state

        t = t.handle_event("iteration_completed", kill)
    return t


def run(t):
    return t.run((X, Y), batch_size=8, shuffle=True, seed=3, epochs=EPOCHS, return_state=True)


if __name__ == "__main__":
    folder, kill_at, sig, every = sys.argv[1:5]
    run(trainer(folder, every if every == "epoch" else int(every), int(kill_at), getattr(signal, sig)))
    sys.exit(0)  # not reached: the signal ends the run
