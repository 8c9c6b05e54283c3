"""One implementation of one workload, in its own process, driven by the coordinator.

``python -m benchmarks.worker IMPL WORKLOAD [--quick]``. JSON lines go to the original
standard output (the control channel; anything the libraries print is sent to standard
error). Before each piece of timed work the worker says ``waiting`` and blocks until it
reads ``go`` on standard input (:class:`benchmarks.harness.Channel`). In order it sends:

1. ``ready`` with ``first_step_s`` after setup (or ``skip`` with a reason, and exits);
2. one ``window`` per warm-up and timed training window;
3. ``trained`` once batch-1 inference is compiled (``latency``: whether it measures it);
4. one ``latency`` per latency round, if it measures latency;
5. ``done`` with the peak memory and the last loss, and exits.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
import time
import traceback

from benchmarks.harness import REGISTRY, Channel, Gate, current_rss_mb, memory_report
from benchmarks.impls import MODULES
from benchmarks.workloads import get

LATENCY_ROUNDS = 5
LATENCY_WARMUP = 10


def main(argv: list[str] | None = None) -> int:
    """Run the protocol described in the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("impl", choices=sorted(MODULES))
    parser.add_argument("workload")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--windows", type=int, default=None)
    args = parser.parse_args(argv)

    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # library output must not reach the channel
    sys.stdout = sys.stderr
    ch = Channel(sys.stdin, out)
    w = get(args.workload, args.quick)
    if args.windows is not None:
        w = dataclasses.replace(w, windows=args.windows)
    try:
        importlib.import_module(MODULES[args.impl][0])
        if "jax" in sys.modules:  # start the backend outside the timed setup, as torch does at import
            sys.modules["jax"].devices()
        impl = REGISTRY[args.impl](w)
        baseline = current_rss_mb()
        t0 = time.perf_counter()
        impl.setup()
        first_step = time.perf_counter() - t0
    except ImportError as e:
        ch.send({"event": "skip", "reason": f"not installed ({e})"})
        return 0
    except Exception as e:
        traceback.print_exc()
        ch.send({"event": "skip", "reason": f"failed: {type(e).__name__}: {e}"})
        return 1
    ch.send({"event": "ready", "first_step_s": first_step})

    impl.train_windows(w.warmup_windows + w.windows, w.steps_per_window, Gate(ch, w.steps_per_window))

    ch.wait()
    predict = impl.predict_fn()
    compile_s = None
    if predict is not None:
        t0 = time.perf_counter()
        predict()
        compile_s = time.perf_counter() - t0
        for _ in range(LATENCY_WARMUP):
            predict()
    ch.send({"event": "trained", "latency": predict is not None, "predict_compile_s": compile_s})
    if predict is not None:
        for _ in range(LATENCY_ROUNDS):
            ch.wait()
            times = []
            for _ in range(w.latency_calls):
                t0 = time.perf_counter()
                predict()
                times.append(time.perf_counter() - t0)
            ch.send({"event": "latency", "times": times})

    ch.wait()
    ch.send({"event": "done", "loss": impl.loss(), **memory_report(impl, baseline)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
