"""The quick ResNet-18's training step: axon's trainer step against Flax Linen's, in one
process, interleaved, by CPU time (issue 17: axon >= 1.0x Linen on every workload).

    python -m benchmarks.resnet_vs_linen [--repeats 15] [--steps 4] [--hlo DIR] [--full]

Compiles three steps for ``benchmarks.workloads``' quick ResNet-18 (batch 16, 32x32x3,
widths 16-32-64-128; ``--full``: the full-size workload, batch 128, widths 64-512):

* ``linen``: the ``flax_linen`` benchmark implementation's jitted, donating optax step;
* ``axon_before``: ``axon.loop.steps.train_step`` (what ``axon.loop.trainer`` compiles) with
  train-mode batch norm differentiated by autodiff (axon's formulation before this change);
* ``axon``: axon as it is (batch norm's derivative written out).

and prints each one's bytes accessed and flops (XLA's cost analysis), the number of fusions in
its optimized HLO, and the median CPU and wall milliseconds per step over ``--repeats``
interleaved windows of ``--steps`` steps, with the ratio to Linen (higher is better). On a
shared machine read the CPU-time ratios. ``--hlo DIR`` writes each optimized HLO there.
"""

from __future__ import annotations

import argparse
import pathlib
import re
from typing import Any

import jax
import jax.numpy as jnp

import axon
import axon.layers.normalization as normalization
from axon.loop.steps import train_step
from benchmarks.impls.axon_impl import loss_fn
from benchmarks.impls.axon_models import MODELS
from benchmarks.impls.flax_impl import FlaxLinen
from benchmarks.versus_linen import time_against_linen
from benchmarks.workloads import LEARNING_RATE, get


def _autodiff_batch_normalize(
    x: jax.Array, gamma: Any, beta: Any, axes: tuple[int, ...], epsilon: float
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Train-mode batch norm's values, left to autodiff (axon's formulation before)."""
    mu = jnp.mean(x, axis=axes, keepdims=True)
    v = jnp.mean(jnp.square(x - mu), axis=axes, keepdims=True)
    return normalization._normalize(x, mu, v, gamma, beta, epsilon), mu, v


def _describe(name: str, compiled: Any, hlo_dir: pathlib.Path | None) -> None:
    cost = compiled.cost_analysis()
    text = compiled.as_text()
    entry = text[text.index("\nENTRY"):]
    fusions = len(re.findall(r" fusion\(", entry))
    print(f"{name}: {cost['bytes accessed'] / 1e6:.1f} MB accessed, {cost['flops'] / 1e9:.3f} GFLOP, "
          f"{fusions} fusions, {entry.count(' convolution(')} convolutions, {entry.count(' copy(')} copies")
    if hlo_dir is not None:
        hlo_dir.mkdir(parents=True, exist_ok=True)
        (hlo_dir / f"{name}.hlo").write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--hlo", type=pathlib.Path, default=None, help="write the optimized HLOs here")
    parser.add_argument("--full", action="store_true", help="the full-size workload instead of the quick one")
    args = parser.parse_args(argv)

    w = get("resnet18", quick=not args.full)
    linen = FlaxLinen(w)
    linen.setup()
    x, y = linen.batches[0]
    _describe("linen", linen.step.lower(linen.params, linen.batch_stats, linen.opt_state, x, y).compile(), args.hlo)

    steps: dict[str, Any] = {}
    states: dict[str, Any] = {}
    written_out = normalization._batch_normalize
    try:
        for name, batch_normalize in (("axon_before", _autodiff_batch_normalize), ("axon", written_out)):
            normalization._batch_normalize = batch_normalize  # read when the step is traced, below
            init_fn, step_fn = train_step(MODELS["resnet18"](w), loss_fn, axon.optimizers.adam(LEARNING_RATE))
            state = init_fn((x, y))
            compiled = jax.jit(step_fn, donate_argnums=0).lower(state, (x, y)).compile()
            _describe(name, compiled, args.hlo)
            steps[name], states[name] = compiled, compiled(state, (x, y))
    finally:
        normalization._batch_normalize = written_out

    time_against_linen(linen, steps, states, (x, y), repeats=args.repeats, steps_per_window=args.steps,
                       rotate=True, width=12)

if __name__ == "__main__":
    main()
