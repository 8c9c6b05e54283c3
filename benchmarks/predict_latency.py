"""Batch-1 ``predict_fn`` latency with and without state hoisting, against the hand-written
jitted forward of ``benchmarks/impls/jax_models.py``, in one process (issue 17, item 4).

    python -m benchmarks.predict_latency [--workloads lstm,mlp] [--rounds 21] [--calls 100] [--bf16] [--json PATH]

For each workload (``--quick`` sizes): ``axon`` is ``predict_fn(state, x)`` as built by
default (state-only work hoisted, see ``axon.build(hoist_state=)``), ``axon_plain`` the same
with ``hoist_state=False``, ``jax`` the hand-written forward. Microseconds per call, CPU and
wall time, median over ``--rounds`` interleaved rounds of ``--calls`` calls (in a new random
order every round), and the median of the per-round ratios to ``jax``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

import axon
from benchmarks import workloads
from benchmarks.impls import axon_models, jax_models


def _variants(name: str, bf16: bool = False) -> dict[str, Callable[[], Any]]:
    w = workloads.get(name, quick=True)
    x = jax.numpy.asarray(workloads.single_example(w))
    fns: dict[str, Callable[[], Any]] = {}
    outputs = {}
    model = axon_models.MODELS[name](w)
    if bf16:
        policy = axon.mixed_precision.create_policy(params="f32", compute="bf16", output="f32")
        model = axon.mixed_precision.apply_policy(model, policy)
    for label, options in (("axon", {}), ("axon_plain", {"hoist_state": False})):
        init_fn, predict_fn = axon.build(model, **options)
        state = init_fn(axon.template(tuple(x.shape), str(x.dtype)))
        outputs[label] = np.asarray(predict_fn(state, x))
        fns[label] = (lambda f, s: lambda: f(s, x).block_until_ready())(predict_fn, state)
    np.testing.assert_allclose(outputs["axon"], outputs["axon_plain"], rtol=1e-2 if bf16 else 1e-5, atol=1e-6)
    init, apply = jax_models.MODELS[name]
    params, st = init(w, jax.random.key(0))
    forward = jax.jit(lambda p, s, x: apply(p, s, x, False)[0])
    fns["jax"] = lambda: forward(params, st, x).block_until_ready()
    return fns


def _interleave(fns: dict[str, Callable[[], Any]], rounds: int, calls: int) -> dict[str, dict[str, float]]:
    for fn in fns.values():
        for _ in range(10):
            fn()
    names = list(fns)
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    wall: dict[str, list[float]] = {k: [] for k in fns}
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        # a new order every round: each variant follows every other one alike (the one that
        # runs after another model finds its parameters out of the caches)
        for name in rng.permutation(names):
            fn = fns[name]
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(calls):
                fn()
            cpu[name].append((time.process_time() - c0) / calls)
            wall[name].append((time.perf_counter() - w0) / calls)
    out = {}
    for k in fns:
        out[k] = {
            "cpu_us": 1e6 * float(np.median(cpu[k])), "wall_us": 1e6 * float(np.median(wall[k])),
            # paired per-round ratios to the hand-written forward
            "cpu_x_jax": float(np.median(np.array(cpu[k]) / np.array(cpu["jax"]))),
            "wall_x_jax": float(np.median(np.array(wall[k]) / np.array(wall["jax"]))),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="lstm,mlp")
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--bf16", action="store_true",
                        help="axon's models under a bfloat16-compute policy (the hand-written one stays float32)")
    parser.add_argument("--json", default=None, help="write the figures to this file")
    args = parser.parse_args()
    results = {}
    for name in args.workloads.split(","):
        times = _interleave(_variants(name, args.bf16), args.rounds, args.calls)
        results[name] = times
        print(f"{name}: µs per call, CPU (× jax) / wall (× jax)")
        for label, t in times.items():
            print(f"  {label:11s} {t['cpu_us']:9.1f} ({t['cpu_x_jax']:.3f})  {t['wall_us']:9.1f} ({t['wall_x_jax']:.3f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": args.rounds, "calls": args.calls, "bf16": args.bf16, "jax": jax.__version__,
                       "devices": str(jax.devices()), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
