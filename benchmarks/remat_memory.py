"""Activation memory of the transformer workload's training step with and without remat.

    python -m benchmarks.remat_memory [--quick] [--blocks N]

The transformer workload (``benchmarks.workloads``: pre-LN encoder blocks, 4-head
attention, MLP 512 gelu) with each encoder block built as ``axon.block(...,
remat=policy)``. For each policy, the training step (loss, gradients, Adam update) is
reported by the activations the forward pass keeps for the backward pass (JAX's saved
residuals, parameters left out: what remat reduces), and by XLA's memory analysis of the
compiled training step (loss, gradients, Adam update): its temporary buffers
(``temp_size_in_bytes``, every intermediate at XLA's peak). It also times the compiled step
(median of 5, CPU time) to show the recomputation's cost.

On CPU, XLA's default concurrency-optimized scheduler runs the recomputation as early as
it can, which keeps the recomputed activations alive as long as the originals: the
compiled temporaries shrink only with
``XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import re
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.ad_checkpoint import print_saved_residuals

import axon
from benchmarks.workloads import get

_ITEMSIZE = {"f64": 8, "f32": 4, "bf16": 2, "f16": 2, "i64": 8, "i32": 4, "u32": 4, "i8": 1, "u8": 1, "bool": 1}


def encoder(w, remat):
    o = w.options

    def layer(h):
        y = axon.layer_norm(h)
        h = axon.add(h, axon.multi_head_attention(y, num_heads=o["heads"]))
        y = axon.layer_norm(h).pipe(axon.dense, o["mlp"], activation="gelu").pipe(axon.dense, o["width"])
        return axon.add(h, y)

    h = axon.input("x", shape=(None, *w.input_shape)).pipe(axon.embedding, w.vocab, o["width"])
    for i in range(o["blocks"]):
        h = axon.block(layer, name=f"encoder_{i}", remat=remat)(h)
    return axon.layer_norm(h).pipe(axon.global_avg_pool).pipe(axon.dense, w.num_classes)


def _residual_bytes(loss, params) -> int:
    """Bytes of the activations the forward pass keeps for the backward pass (JAX's saved
    residuals of ``loss`` at ``params``, the parameters themselves left out)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        print_saved_residuals(loss, params)
    total = 0
    for line in buf.getvalue().splitlines():
        m = re.match(r"(\w+)\[([\d,]*)\] (.*)", line)
        if m is None or m.group(3).startswith("from the argument"):
            continue
        dims = [int(d) for d in m.group(2).split(",") if d]
        total += math.prod(dims) * _ITEMSIZE.get(m.group(1), 4)
    return total


def measure(w, remat) -> dict:
    """Compile the training step of the workload with ``remat``; its memory and step time."""
    init_fn, predict_fn = axon.build(encoder(w, remat), mode="train")
    tx = optax.adam(1e-3)
    state = init_fn(axon.template((w.batch_size, *w.input_shape), w.dtype))
    opt_state = tx.init(state.trainable_parameters())
    rng = np.random.default_rng(0)
    x = rng.integers(0, w.vocab, size=(w.batch_size, *w.input_shape)).astype(np.int32)
    y = rng.integers(0, w.num_classes, size=(w.batch_size,)).astype(np.int32)

    def step(state, opt_state, x, y):
        params = state.trainable_parameters()

        def loss(p):
            out = predict_fn.apply(state.update(p), x)
            return optax.softmax_cross_entropy_with_integer_labels(out.prediction, y).mean()

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return state.update(optax.apply_updates(params, updates)), opt_state, value

    def loss(p):
        out = predict_fn.apply(state.update(p), x)
        return optax.softmax_cross_entropy_with_integer_labels(out.prediction, y).mean()

    residuals = _residual_bytes(loss, state.trainable_parameters())
    compiled = jax.jit(step).lower(state, opt_state, x, y).compile()
    mem = compiled.memory_analysis()
    times = []
    for _ in range(6):
        t0 = time.process_time()
        jax.block_until_ready(compiled(state, opt_state, x, y))
        times.append(time.process_time() - t0)
    return {"residual_mb": residuals / 2**20, "temp_mb": mem.temp_size_in_bytes / 2**20, "args_mb": mem.argument_size_in_bytes / 2**20,
            "step_cpu_ms": 1000 * statistics.median(times[1:])}


def main(argv: list[str] | None = None) -> int:
    """Print a Markdown table: policy, temporary memory, arguments, step CPU time."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--blocks", type=int, default=None)
    args = parser.parse_args(argv)
    w = get("transformer", args.quick)
    if args.blocks is not None:
        w = type(w)(**{**w.__dict__, "options": {**w.options, "blocks": args.blocks}})
    print(f"transformer: batch {w.batch_size}, sequence {w.input_shape[0]}, width {w.options['width']}, "
          f"{w.options['blocks']} blocks; jax {jax.__version__} on {jax.devices()[0].platform}")
    flags = os.environ.get("XLA_FLAGS", "")
    print(f"XLA_FLAGS={flags!r}")
    print("| remat | saved activations (MiB) | vs no remat | compiled step temporaries (MiB) | vs no remat | step CPU ms |")
    print("|---|---:|---:|---:|---:|---:|")
    base = None
    for remat in (False, "dots_saveable", True):
        r = measure(w, remat)
        base = base or r
        print(f"| {remat} | {r['residual_mb']:.1f} | {r['residual_mb'] / base['residual_mb']:.2f}× | {r['temp_mb']:.1f} | "
              f"{r['temp_mb'] / base['temp_mb']:.2f}× | {r['step_cpu_ms']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    jnp.zeros(())
    raise SystemExit(main())
