"""Shared by the same-process A/B scripts against Flax Linen (``transformer_vs_linen``,
``resnet_vs_linen``): compiled training steps run in turn, timed by CPU and wall clock."""

from __future__ import annotations

import collections
import statistics
import time
from collections.abc import Mapping
from typing import Any

import jax


def time_against_linen(linen: Any, steps: Mapping[str, Any], states: dict[str, Any], batch: tuple[Any, Any], *,
                       repeats: int, steps_per_window: int, rotate: bool = True, width: int = 12) -> None:
    """Time Linen's step and each compiled axon step (``steps[name](states[name], batch)``) in
    interleaved windows of ``steps_per_window`` steps, ``repeats`` times (rotating the order
    when ``rotate``), and print each one's median CPU and wall ms per step with the ratio
    Linen / it (higher is better)."""
    x, y = batch

    def window(name: str) -> tuple[float, float]:
        c0, t0 = time.process_time(), time.perf_counter()
        if name == "linen":
            for _ in range(steps_per_window):
                linen.params, linen.batch_stats, linen.opt_state, out = linen.step(
                    linen.params, linen.batch_stats, linen.opt_state, x, y)
        else:
            for _ in range(steps_per_window):
                states[name] = out = steps[name](states[name], (x, y))
        jax.block_until_ready(out)
        return ((time.process_time() - c0) / steps_per_window * 1e3,
                (time.perf_counter() - t0) / steps_per_window * 1e3)

    names = ["linen", *steps]
    times: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    for r in range(repeats):
        shift = r % len(names) if rotate else 0
        for name in names[shift:] + names[:shift]:
            times[name].append(window(name))
    cpu = {n: statistics.median(c for c, _ in times[n]) for n in names}
    wall = {n: statistics.median(t for _, t in times[n]) for n in names}
    for n in names:
        print(f"{n:{width}s} CPU {cpu[n]:6.2f} ms/step (linen / this {cpu['linen'] / cpu[n]:.3f})   "
              f"wall {wall[n]:6.2f} ms/step ({wall['linen'] / wall[n]:.3f})")
