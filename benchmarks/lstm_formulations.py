"""The quick LSTM workload's formulations, timed against each other in one process (issue 17).

    python -m benchmarks.lstm_formulations [--rounds 15] [--calls 100] [--torch]

Batch-1 forward (64 steps, 32 -> 128 units -> dense 10), microseconds per call, CPU and wall
time, median over ``--rounds`` interleaved rounds of ``--calls`` calls, ratio to the
hand-written forward of ``benchmarks/impls/jax_models.py``:

* ``predict_fn``, ``jit(apply)``: axon's;
* ``concat_scan``: the per-gate kernels concatenated, then the scan (what axon compiles to);
* ``per_gate``: 4 + 4 per-gate matmuls per step, no concatenation;
* ``per_gate_hoisted``: per-gate input projections before the loop, 4 hidden matmuls per step;
* ``prefused``: the scan on kernels fused beforehand (the hand-written model's layout).

Training (batch 16): forward + backward of the layer, milliseconds of CPU per call, for
``dynamic_unroll(lstm_cell)`` under autodiff (the old formulation), ``lstm(unroll="dynamic")``
(its hand-written backward) and, with ``--torch``, ``torch.nn.LSTM`` (one thread).
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import axon
from axon.layers import recurrent
from benchmarks import workloads
from benchmarks.impls import axon_models, jax_models

UNITS = 128
GATES = recurrent.GATED_CELLS["lstm"]


def _cell(z: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    i, f, g, o = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return c, jax.nn.sigmoid(o) * jnp.tanh(c)


def _scan(step: Callable, x: jax.Array, xs: Any = None) -> jax.Array:
    zeros = jnp.zeros((x.shape[0], UNITS), x.dtype)
    (_, h), _ = jax.lax.scan(step, (zeros, zeros), jnp.moveaxis(x, 1, 0) if xs is None else xs)
    return h


def _fused(lp: dict) -> tuple[jax.Array, jax.Array, jax.Array]:
    return (jnp.concatenate([lp["input_kernel"][k] for k in GATES.input_keys], -1),
            jnp.concatenate([lp["hidden_kernel"][k] for k in GATES.hidden_keys], -1),
            jnp.concatenate([lp["bias"][k] for k in GATES.input_bias]))


def concat_scan(p: dict, x: jax.Array) -> jax.Array:
    wi, wh, b = _fused(p["lstm_0"])
    h = _scan(lambda ch, xt: (_cell(xt @ wi + b + ch[1] @ wh, ch[0]), None), x)
    return h @ p["dense_0"]["kernel"] + p["dense_0"]["bias"]


def per_gate(p: dict, x: jax.Array) -> jax.Array:
    lp = p["lstm_0"]
    keys = list(zip(GATES.input_keys, GATES.hidden_keys, GATES.input_bias, strict=True))

    def step(ch, xt):
        z = [xt @ lp["input_kernel"][i] + lp["bias"][b] + ch[1] @ lp["hidden_kernel"][h] for i, h, b in keys]
        return _cell(jnp.concatenate(z, -1), ch[0]), None

    return _scan(step, x) @ p["dense_0"]["kernel"] + p["dense_0"]["bias"]


def per_gate_hoisted(p: dict, x: jax.Array) -> jax.Array:
    lp = p["lstm_0"]
    projected = [jnp.moveaxis(x @ lp["input_kernel"][i] + lp["bias"][b], 1, 0)
                 for i, b in zip(GATES.input_keys, GATES.input_bias, strict=True)]

    def step(ch, zs):
        z = [zx + ch[1] @ lp["hidden_kernel"][h] for zx, h in zip(zs, GATES.hidden_keys, strict=True)]
        return _cell(jnp.concatenate(z, -1), ch[0]), None

    return _scan(step, x, projected) @ p["dense_0"]["kernel"] + p["dense_0"]["bias"]


def prefused(fp: dict, x: jax.Array) -> jax.Array:
    wi, wh, b = fp["lstm"]["wi"], fp["lstm"]["wh"], fp["lstm"]["b"]
    h = _scan(lambda ch, xt: (_cell(xt @ wi + ch[1] @ wh + b, ch[0]), None), x)
    return h @ fp["out"]["kernel"] + fp["out"]["bias"]


def _interleave(fns: dict[str, Callable[[], Any]], rounds: int, calls: int) -> dict[str, tuple[float, float]]:
    for fn in fns.values():
        for _ in range(5):
            fn()
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    wall: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(calls):
                fn()
            cpu[name].append((time.process_time() - c0) / calls)
            wall[name].append((time.perf_counter() - w0) / calls)
    return {k: (float(np.median(cpu[k])), float(np.median(wall[k]))) for k in fns}


def forward(rounds: int, calls: int) -> None:
    w = workloads.get("lstm", quick=True)
    init_fn, predict_fn = axon.build(axon_models.MODELS["lstm"](w))
    x = jax.random.normal(jax.random.key(1), (1, *w.input_shape), jnp.float32)
    state = init_fn(axon.template((1, *w.input_shape)))
    p = state.data
    wi, wh, b = _fused(p["lstm_0"])
    fp = {"lstm": {"wi": wi, "wh": wh, "b": b}, "out": p["dense_0"]}
    applied = jax.jit(predict_fn.apply)
    fns: dict[str, Callable[[], Any]] = {
        "predict_fn": lambda: predict_fn(state, x).block_until_ready(),
        "jit(apply)": lambda: applied(p, x).block_until_ready(),
    }
    want = np.asarray(applied(p, x))
    for name, fn, params in (("concat_scan", concat_scan, p), ("per_gate", per_gate, p),
                             ("per_gate_hoisted", per_gate_hoisted, p), ("prefused", prefused, fp),
                             ("hand_written", lambda q, x: jax_models.lstm_apply(q, {}, x, False)[0], fp)):
        jitted = jax.jit(fn)
        np.testing.assert_allclose(np.asarray(jitted(params, x)), want, rtol=1e-5, atol=1e-6)
        fns[name] = functools.partial(lambda j, q: j(q, x).block_until_ready(), jitted, params)
    times = _interleave(fns, rounds, calls)
    base_cpu, base_wall = times["hand_written"]
    print("batch-1 forward: µs per call (CPU, wall) and × hand-written")
    for name, (c, wl) in times.items():
        print(f"  {name:18s} {c * 1e6:8.1f} ({c / base_cpu:.3f})  {wl * 1e6:8.1f} ({wl / base_wall:.3f})")


def training(rounds: int, with_torch: bool) -> None:
    batch, steps, features = 16, 64, 32
    rng = np.random.default_rng(0)
    ik = {k: jnp.asarray(rng.normal(size=(features, UNITS)) * 0.1, jnp.float32) for k in GATES.input_keys}
    hk = {k: jnp.asarray(rng.normal(size=(UNITS, UNITS)) * 0.1, jnp.float32) for k in GATES.hidden_keys}
    bias = {k: jnp.zeros((UNITS,), jnp.float32) for k in GATES.bias_keys}
    x = jnp.asarray(rng.normal(size=(batch, steps, features)), jnp.float32)
    zeros = (jnp.zeros((batch, UNITS)), jnp.zeros((batch, UNITS)))
    cell = functools.partial(recurrent.lstm_cell, gate_fn=jax.nn.sigmoid, activation_fn=jnp.tanh)

    def old(params):
        return jnp.sum(recurrent.dynamic_unroll(cell, x, zeros, None, *params)[1][1] ** 2)

    def new(params):
        return jnp.sum(recurrent.lstm(x, zeros, None, *params, unroll="dynamic")[1][1] ** 2)

    params = (ik, hk, bias)
    fns: dict[str, Callable[[], Any]] = {
        name: functools.partial(lambda g: jax.block_until_ready(g(params)), jax.jit(jax.grad(fn)))
        for name, fn in (("autodiff_of_scan", old), ("lstm_dynamic", new))
    }
    if with_torch:
        torch = __import__("torch")
        torch.set_num_threads(1)
        module = torch.nn.LSTM(features, UNITS, batch_first=True)
        tx = torch.randn(batch, steps, features)

        def torch_step() -> None:
            module.zero_grad()
            _, (h, _) = module(tx)
            (h ** 2).sum().backward()

        fns["torch"] = torch_step
    times = _interleave(fns, rounds, 10)
    print("training (batch 16): forward + backward, CPU ms per call")
    for name, (c, _) in times.items():
        print(f"  {name:18s} {c * 1e3:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--torch", action="store_true", help="also time torch.nn.LSTM")
    args = parser.parse_args()
    forward(args.rounds, args.calls)
    training(args.rounds, args.torch)


if __name__ == "__main__":
    main()
