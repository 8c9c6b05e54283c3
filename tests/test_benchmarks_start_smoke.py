"""Smoke tests of the start-up and remat benchmark scripts (no timings asserted)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from benchmarks import first_step, init_scaling, remat_memory


def test_init_scaling_measures_every_phase():
    out = init_scaling.measure(2)
    assert out["parameters"] == 2 * 2 + 2 and out["nodes"] == 1 + 3 * 2 + 1
    for key in ("build", "init", "first_step", "as_table"):
        assert out[f"{key}_s"] >= 0 and out[f"{key}_cpu_s"] >= 0


def test_saved_residuals_are_counted_without_the_arguments():
    def f(w):
        h = jnp.sin(jnp.ones((8, 4)) @ w)  # keeps x and cos(x @ w), two 8x4 float32, for the backward pass
        return jnp.sum(h)

    assert remat_memory._residual_bytes(f, jnp.ones((4, 4))) == 2 * 8 * 4 * 4
    assert remat_memory._residual_bytes(jax.checkpoint(f), jnp.ones((4, 4))) < 2 * 8 * 4 * 4


@pytest.mark.parametrize(("message", "expected"), [
    ("Finished XLA compilation of jit(step) in 1.5 sec", ("compile", "jit(step)", 1.5)),
    ("Finished tracing _init for jit in 0.25 sec", ("trace", "_init", 0.25)),
    ("Finished jaxpr to MLIR module conversion jit(create) in 2e-3 sec", ("lower", "jit(create)", 0.002)),
])
def test_first_step_reads_jax_compile_logs(message, expected):
    m = first_step._EVENT.search(message)
    assert (first_step._KIND[m.group(1)], m.group(2), float(m.group(3))) == expected
