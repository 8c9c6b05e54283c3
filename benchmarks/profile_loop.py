"""Where the axon trainer's per-step host time goes, measured on a model so small that
compute is negligible (dense 16→16, batch 8), so what remains is overhead.

    python -m benchmarks.profile_loop [--steps 2000] [--repeats 7] [--cprofile]

Prints microseconds per step (median and best over ``--repeats`` interleaved repeats) for:

* ``hand_optax``: a hand-written jitted, donating step with ``optax.adam``, NumPy batches;
* ``hand_axon_adam``: the same with ``axon.optimizers.adam`` (``inject_hyperparams``);
* ``trainer_step_direct``: the trainer's own compiled step (``_Runner._jitted[0]``) called
  in a bare loop on device-resident batches: the cost of the step program and its dispatch;
* ``trainer_run``: ``axon.loop.trainer(...).run`` (``log=0``);
* ``trainer_run_device_put``: the same with the runner's per-batch ``jax.device_put``
  forced (what the runner did on CPU before it passed NumPy batches to the compiled step
  as they are);
* ``trainer_step_only``: ``trainer``'s ``step_fn`` alone, jitted with donation, on
  device-resident batches (no metric accumulation, no runner);
* ``trainer_run_spe10``: ``steps_per_execution=10``;
* ``device_put_only``: ``jax.device_put((x, y))`` of one batch, alone.

``--cprofile`` adds a cProfile of one ``trainer_run``.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import axon

B, F = 8, 16


def _loss(y: jax.Array, logits: jax.Array) -> jax.Array:
    return axon.losses.categorical_cross_entropy(y, logits, from_logits=True, sparse=True, reduction="mean")


def _hand(tx: optax.GradientTransformation, batches: list[Any], n: int) -> Callable[[], float]:
    params = {"w": jnp.zeros((F, F)), "b": jnp.zeros(F)}

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(p, o, x, y):
        def f(p):
            return optax.softmax_cross_entropy_with_integer_labels(x @ p["w"] + p["b"], y).mean()

        v, g = jax.value_and_grad(f)(p)
        u, o = tx.update(g, o, p)
        return optax.apply_updates(p, u), o, v

    box = [params, tx.init(params)]

    def run() -> float:
        p, o = box
        t = time.perf_counter()
        for i in range(n):
            p, o, v = step(p, o, *batches[i % len(batches)])
        v.block_until_ready()
        box[:] = [p, o]
        return (time.perf_counter() - t) / n

    return run


def measure(steps: int = 2000, repeats: int = 7, cprofile: bool = False) -> dict[str, tuple[float, float]]:
    """``{name: (median_us, best_us)}`` per step for each variant in the module docstring."""
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((B, F), dtype=np.float32), rng.integers(0, F, B, dtype=np.int32)) for _ in range(4)]
    data = [batches[i % 4] for i in range(steps)]
    model = axon.input("x", shape=(None, F)).pipe(axon.dense, F)
    loop = axon.loop.trainer(model, _loss, axon.optimizers.adam(1e-3), log=0)
    state = loop.run(data[:10], epochs=1)
    loop.run(data[:10], state, epochs=1, steps_per_execution=10)
    runner = loop.compiled.program
    batch_fn = runner.functions(jit=True)[0]
    res = loop.run(data[:3], state, epochs=1, return_state=True)
    box = [runner.carry(res.step_state), runner.metric_init(res.step_state)]
    dev = [jax.device_put(b) for b in batches]
    step_only = jax.jit(loop.step_fn, donate_argnums=(0,))
    only = [jax.tree_util.tree_map(jnp.copy, runner.carry(res.step_state))]

    def timed_run(**kw: Any) -> Callable[[], float]:
        def run() -> float:
            t = time.perf_counter()
            loop.run(data, state, epochs=1, **kw)
            return (time.perf_counter() - t) / steps

        return run

    def trainer_step_direct() -> float:
        ss, ms = box
        t = time.perf_counter()
        for i in range(steps):
            new, ms = batch_fn(ss, ms, dev[i % 4], np.int32(i))
            ss = runner.carry(new)
        jax.block_until_ready(ms)
        box[:] = [ss, ms]
        return (time.perf_counter() - t) / steps

    def trainer_step_only() -> float:
        ss = only[0]
        t = time.perf_counter()
        for i in range(steps):
            ss = runner.carry(step_only(ss, dev[i % 4]))
        jax.block_until_ready(ss)
        only[0] = ss
        return (time.perf_counter() - t) / steps

    def trainer_run_device_put() -> float:
        from axon.loop import runner as runner_module

        had = runner_module._as_is
        runner_module._as_is = jax.device_put
        try:
            return timed_run()()
        finally:
            runner_module._as_is = had

    def device_put_only() -> float:
        x, y = batches[0]
        t = time.perf_counter()
        for _ in range(steps):
            jax.device_put((x, y))
        return (time.perf_counter() - t) / steps

    variants: dict[str, Callable[[], float]] = {
        "hand_optax": _hand(optax.adam(1e-3), batches, steps),
        "hand_axon_adam": _hand(axon.optimizers.adam(1e-3), batches, steps),
        "trainer_step_only": trainer_step_only,
        "trainer_step_direct": trainer_step_direct,
        "trainer_run": timed_run(),
        "trainer_run_device_put": trainer_run_device_put,
        "trainer_run_spe10": timed_run(steps_per_execution=10),
        "device_put_only": device_put_only,
    }
    for f in variants.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for k, f in variants.items():
            times[k].append(f())
    if cprofile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(timed_run())
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    return {k: (1e6 * statistics.median(v), 1e6 * min(v)) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args(argv)
    out = measure(args.steps, args.repeats, args.cprofile)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, batch {B}x{F}, {args.steps} steps x {args.repeats}")
    print(f"{'variant':28s} {'median us/step':>15s} {'best us/step':>13s}")
    for k, (med, best) in out.items():
        print(f"{k:28s} {med:15.1f} {best:13.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
