"""Worker-side pieces shared by every implementation: the implementation interface, the
timing gate that lets the coordinator interleave windows, and memory measurement.

An implementation trains one workload. The worker times :meth:`Implementation.setup`
(model construction, initialization, compilation and the first training step, blocking
until it has finished: the *time to first step*), then asks it to run timing windows
(:meth:`Implementation.train_windows`), each bracketed by :meth:`Gate.start` and
:meth:`Gate.stop`, and finally measures batch-1 inference with
:meth:`Implementation.predict_fn`.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from benchmarks.workloads import Workload, make_batches, single_example

__all__ = ["Channel", "Gate", "Implementation", "memory_report", "register"]

REGISTRY: dict[str, Callable[[Workload], Implementation]] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: make an implementation available to the worker as ``name``."""

    def wrap(cls: type) -> type:
        REGISTRY[name] = cls
        cls.impl_name = name
        return cls

    return wrap


class Channel:
    """The worker's side of the control channel: JSON lines out, ``go`` lines in.

    :meth:`wait` says ``waiting`` and blocks until the coordinator says ``go``: the
    coordinator lets exactly one worker run at a time, so no worker's timed work
    overlaps another's (their idle processes cost nothing). Without streams (the smoke
    test) it neither waits nor sends.
    """

    def __init__(self, inp: IO[str] | None = None, out: IO[str] | None = None):
        self.inp, self.out = inp, out

    def send(self, message: dict[str, Any]) -> None:
        """Write one JSON line to the coordinator."""
        if self.out is not None:
            self.out.write(json.dumps(message) + "\n")
            self.out.flush()

    def wait(self) -> None:
        """Block until the coordinator's go."""
        if self.inp is None:
            return
        self.send({"event": "waiting"})
        line = self.inp.readline()
        if line.strip() != "go":
            raise SystemExit(f"worker: expected 'go' from the coordinator, got {line!r}")


class Gate:
    """Brackets one timing window: ``start`` waits for the coordinator's go, then starts
    the clock; ``stop`` (called once the window's work has finished) reports it: wall
    seconds and the process's CPU seconds (all threads), which other processes' load on a
    shared machine disturbs much less than wall time."""

    def __init__(self, channel: Channel | None = None, steps: int = 0):
        self.channel = channel or Channel()
        self.steps = steps
        self.times: list[float] = []
        self._t0 = self._c0 = 0.0

    def start(self) -> None:
        self.channel.wait()
        self._c0 = time.process_time()
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        dt = time.perf_counter() - self._t0
        cpu = time.process_time() - self._c0
        self.times.append(dt)
        self.channel.send({"event": "window", "seconds": dt, "cpu_seconds": cpu, "steps": self.steps})


class Implementation:
    """One way of training one workload. Subclasses set ``framework`` and implement
    ``setup``, ``train_windows``, ``predict_fn`` and ``loss``.

    ``self.batches`` holds the workload's distinct batches (NumPy, channels last); a
    window of ``steps`` steps uses batch ``i % len(self.batches)`` at step ``i``.
    """

    impl_name = "?"
    framework = "?"

    def __init__(self, workload: Workload):
        self.w = workload
        self.batches = make_batches(workload)
        self.example = single_example(workload)

    def setup(self) -> None:
        """Build, initialize, compile and run one training step; block until done."""
        raise NotImplementedError

    def train_windows(self, n: int, steps: int, gate: Gate) -> None:
        """Run ``n`` windows of ``steps`` training steps, calling ``gate.start()`` before
        and ``gate.stop()`` after each, once the work is finished (blocking)."""
        raise NotImplementedError

    def predict_fn(self) -> Callable[[], Any]:
        """A function that runs batch-1 inference on ``self.example`` and blocks."""
        raise NotImplementedError

    def loss(self) -> float:
        """The last training loss (a sanity check that every implementation trains)."""
        raise NotImplementedError

    def device_memory(self) -> dict[str, Any]:
        """Accelerator memory statistics, where the framework reports them."""
        return {}


def peak_rss_mb() -> float:
    """This process's resident-set high-water mark in MiB (``ru_maxrss``; KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float:
    """This process's current resident set in MiB (Linux ``/proc``; else the peak)."""
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except OSError:
        return peak_rss_mb()


def jax_device_memory() -> dict[str, Any]:
    """Peak bytes in use on the first JAX device, where its backend reports it (GPU/TPU)."""
    import jax

    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return {}
    stats = dev.memory_stats() or {}
    return {k: stats[k] for k in ("peak_bytes_in_use", "bytes_in_use", "bytes_limit") if k in stats}


def memory_report(impl: Implementation, baseline_mb: float) -> dict[str, Any]:
    """Peak RSS, the RSS after imports (``baseline``) and any device statistics."""
    return {"peak_rss_mb": peak_rss_mb(), "baseline_rss_mb": baseline_mb, **impl.device_memory()}


def cycle(batches: list[Any], steps: int) -> list[Any]:
    """``steps`` batches taken from ``batches`` in turn."""
    return [batches[i % len(batches)] for i in range(steps)]
