"""The quick transformer's training step: axon's trainer step against Flax Linen's, in one
process, interleaved, by CPU time (issue 17, item 2).

    python -m benchmarks.transformer_vs_linen [--repeats 15] [--steps 10]

Compiles three steps for ``benchmarks.workloads``' quick transformer (batch 4, sequence 128,
width 128, 4 heads, 2 blocks):

* ``linen``: the ``flax_linen`` benchmark implementation's jitted, donating optax step;
* ``axon_before``: ``axon.loop.steps.train_step`` (what ``axon.loop.trainer`` compiles) with
  axon's two formulations before issue 17's item 2: layer norm differentiated by autodiff, and
  the attention scale on the logits (``axon.layers.attention._scale_the_query`` false);
* ``axon_autodiff_ln``: only the layer norm as before;
* ``axon``: axon as it is (layer norm's derivative written out, a float32 query scaled).

and prints each one's bytes accessed (XLA's cost analysis) and the median CPU and wall
milliseconds per step over ``--repeats`` interleaved windows of ``--steps`` steps, with the
ratio to Linen (higher is better). On a shared machine read the CPU-time ratios.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import jax.numpy as jnp

import axon
import axon.layers.attention as attention
import axon.layers.normalization as normalization
from axon.loop.steps import train_step
from benchmarks.impls.axon_impl import loss_fn
from benchmarks.impls.axon_models import MODELS
from benchmarks.impls.flax_impl import FlaxLinen
from benchmarks.versus_linen import time_against_linen
from benchmarks.workloads import LEARNING_RATE, get


def _autodiff_layer_norm(x: jax.Array, gamma: Any, beta: Any, axis: int, epsilon: float) -> jax.Array:
    """The layer norm's values, left to autodiff (axon's formulation before issue 17)."""
    mu = jnp.mean(x, axis=axis, keepdims=True)
    v = jnp.mean(jnp.square(x - mu), axis=axis, keepdims=True)
    return normalization._scale_shift((x - mu) * jax.lax.rsqrt(v + epsilon), gamma, beta)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)

    w = get("transformer", quick=True)
    linen = FlaxLinen(w)
    linen.setup()
    x, y = linen.batches[0]
    compiled = linen.step.lower(linen.params, linen.batch_stats, linen.opt_state, x, y).compile()
    print(f"linen: {compiled.cost_analysis()['bytes accessed'] / 1e6:.1f} MB accessed")

    steps: dict[str, Any] = {}
    states: dict[str, Any] = {}
    written_out, scale_the_query = normalization._layer_norm, attention._scale_the_query
    variants = (
        ("axon_before", _autodiff_layer_norm, lambda *_: False),
        ("axon_autodiff_ln", _autodiff_layer_norm, scale_the_query),
        ("axon", written_out, scale_the_query),
    )
    try:
        for name, layer_norm, scale_query in variants:
            # both read when the step is traced, below
            normalization._layer_norm, attention._scale_the_query = layer_norm, scale_query
            init_fn, step_fn = train_step(MODELS["transformer"](w), loss_fn, axon.optimizers.adam(LEARNING_RATE))
            state = init_fn((x, y))
            compiled = jax.jit(step_fn, donate_argnums=0).lower(state, (x, y)).compile()
            print(f"{name}: {compiled.cost_analysis()['bytes accessed'] / 1e6:.1f} MB accessed")
            steps[name], states[name] = compiled, compiled(state, (x, y))
    finally:
        normalization._layer_norm, attention._scale_the_query = written_out, scale_the_query

    time_against_linen(linen, steps, states, (x, y), repeats=args.repeats, steps_per_window=args.steps,
                       rotate=False, width=17)

if __name__ == "__main__":
    main()
