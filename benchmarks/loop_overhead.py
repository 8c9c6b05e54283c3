"""What the loop's experiment features cost per training step on the MLP workload
(784-512-512-10, batch 128, adam): background prefetch, the CSV and TensorBoard loggers,
and TensorBoard gradient norms, as a percentage of the time of a plain step.

    python -m benchmarks.loop_overhead [--steps 100] [--epochs 3] [--repeats 5]

Each configuration is one trainer, compiled once (a warm-up run), then timed over
``--repeats`` runs of ``--epochs`` epochs of ``--steps`` steps each; the configurations are
interleaved (every repeat runs each once, in a rotating order) so that load on a shared
machine falls on all of them alike. Printed:

* end to end: milliseconds per step (median and best over the repeats) and the median's
  and best's difference from ``plain`` (``prefetch=0``, no handler), in percent. On a busy
  machine this difference is mostly noise;
* the loggers' own time: every handler call is timed (after waiting for the step in
  flight, which is the step's time, not the handler's), and its total (per run, and per
  epoch without the run's start and end: opening and closing the files) is given in
  milliseconds and as a percentage of the run's step time (``plain``'s median), which
  noise on the machine hardly changes. The waiting itself (a logger with ``every=`` reads
  the metrics, so the host stops queueing steps ahead) shows only end to end.

* ``plain``: ``prefetch=0``, no logger;
* ``prefetch``: ``prefetch=2`` (the default);
* ``loggers``: ``log_to_csv`` + ``tensorboard`` (epoch rows and scalars), ``prefetch=0``;
* ``loggers_every10``: the same with ``every=10`` (a row and scalars every 10 steps);
* ``all``: ``prefetch=2``, both loggers with ``every=10`` and ``gradient_norms=True``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import jax

import axon
from benchmarks import workloads


def _model() -> axon.Axon:
    return (
        axon.input("x", shape=(None, 784))
        .pipe(axon.dense, 512, activation="relu")
        .pipe(axon.dense, 512, activation="relu")
        .pipe(axon.dense, 10)
    )


def _loss(y, logits):
    return axon.losses.categorical_cross_entropy(y, logits, from_logits=True, sparse=True, reduction="mean")


def configurations(logs: str) -> dict[str, tuple[axon.loop.Loop, int]]:
    """``name -> (trainer, prefetch)``."""
    model = _model()

    def trainer() -> axon.loop.Loop:
        return axon.loop.trainer(model, _loss, axon.optimizers.adam(1e-3), log=0)

    def loggers(name: str, every: int | None, norms: bool = False) -> axon.loop.Loop:
        return (
            trainer()
            .log_to_csv(os.path.join(logs, f"{name}.csv"), every=every)
            .tensorboard(os.path.join(logs, name), every=every, gradient_norms=norms)
        )

    return {
        "plain": (trainer(), 0),
        "prefetch": (trainer(), 2),
        "loggers": (loggers("loggers", None), 0),
        "loggers_every10": (loggers("every10", 10), 0),
        "all": (loggers("all", 10, norms=True), 2),
    }


class HandlerClock:
    """Wraps a loop's handlers to add up the time spent in them: in all, and in the
    ``epoch_completed``/``iteration_completed`` ones (the per-epoch part)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.per_epoch = 0.0

    def timed(self, loop: axon.loop.Loop) -> axon.loop.Loop:
        handlers = {event: tuple((self._wrap(h, event), f) for h, f in hs) for event, hs in loop.handlers.items()}
        return dataclasses.replace(loop, handlers=handlers)

    def _wrap(self, handler: Callable, event: str) -> Callable:
        def timed(state):
            # the step's own time is not the handler's: wait for it first (a handler that
            # reads a metric would wait for it inside)
            jax.block_until_ready(state.step_state)
            start = time.perf_counter()
            try:
                return handler(state)
            finally:
                spent = time.perf_counter() - start
                self.total += spent
                if event in ("epoch_completed", "iteration_completed"):
                    self.per_epoch += spent

        return timed


def measure(steps: int, epochs: int, repeats: int) -> tuple[dict[str, list[float]], dict[str, HandlerClock]]:
    """Seconds per step of each configuration (one value per repeat), and each
    configuration's handler clock over the timed runs."""
    w = workloads.get("mlp")
    batches = workloads.make_batches(w, n=steps)
    with tempfile.TemporaryDirectory() as logs:
        configs = configurations(logs)
        clocks = {name: HandlerClock() for name in configs}
        runs: dict[str, Callable[[], None]] = {
            name: (lambda t=clocks[name].timed(t), p=p: t.run(batches, epochs=epochs, prefetch=p))
            for name, (t, p) in configs.items()
        }
        for run in runs.values():  # compile
            run()
        for clock in clocks.values():
            clock.total = clock.per_epoch = 0.0
        times: dict[str, list[float]] = {name: [] for name in runs}
        names = list(runs)
        for r in range(repeats):
            for name in names[r % len(names):] + names[: r % len(names)]:
                start = time.perf_counter()
                runs[name]()
                times[name].append((time.perf_counter() - start) / (steps * epochs))
    return times, clocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times, clocks = measure(args.steps, args.epochs, args.repeats)
    base_median, base_best = statistics.median(times["plain"]), min(times["plain"])
    print(f"MLP 784-512-512-10, batch 128; {args.epochs} epochs x {args.steps} steps, {args.repeats} interleaved repeats")
    print(f"{'configuration':<18}{'median ms':>10}{'best ms':>9}{'median %':>10}{'best %':>8}")
    for name, values in times.items():
        median, best = statistics.median(values), min(values)
        print(
            f"{name:<18}{median * 1e3:>10.3f}{best * 1e3:>9.3f}"
            f"{(median / base_median - 1) * 100:>+10.1f}{(best / base_best - 1) * 100:>+8.1f}"
        )
    print("all runs (ms/step):", {k: [round(v * 1e3, 2) for v in vs] for k, vs in times.items()})
    print()
    print("time in the loggers' handlers, against plain's median step time:")
    run_steps = base_median * args.steps * args.epochs
    print(f"{'configuration':<18}{'ms/run':>8}{'% of run':>10}{'ms/epoch':>10}{'% of epoch':>12}")
    for name, clock in clocks.items():
        if name in ("plain", "prefetch"):
            continue
        per_run = clock.total / args.repeats
        per_epoch = clock.per_epoch / (args.repeats * args.epochs)
        print(
            f"{name:<18}{per_run * 1e3:>8.2f}{per_run / run_steps * 100:>10.2f}"
            f"{per_epoch * 1e3:>10.2f}{per_epoch / (base_median * args.steps) * 100:>12.2f}"
        )


if __name__ == "__main__":
    main()
