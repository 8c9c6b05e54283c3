"""Scaling under axon.distributed: steps/s and per-device state bytes for 1, 2, 4 and 8
devices, DataParallel against FSDP, with a hand-written ``jax.jit`` step on the same mesh and
shardings as the baseline.

    python -m benchmarks.distributed_scaling [--devices 1,2,4,8] [--steps 30] [--json out.json]

On a CPU the devices are virtual (``XLA_FLAGS=--xla_force_host_platform_device_count=N``, one
subprocess per count), so the memory figures are right and the speed is not meaningful: N
virtual devices share the same cores. On a GPU machine the devices are real; run it there
with ``--devices`` up to the GPU count (``--real-devices``).

Per-device bytes are the parameters plus the optimizer state held by device 0; the target is
FSDP <= 1/N of the single-device bytes + 5%. The DP overhead is the axon trainer's step time
over the hand-written step's (target <= 3%).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

WORKER = textwrap.dedent('''
    import json, sys, time
    import jax, jax.numpy as jnp, numpy as np, optax
    import axon, axon.distributed as dist

    steps, batch, width = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    n = jax.device_count()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, 784)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    data = [(x, y)] * steps
    model = (axon.input("x", shape=(None, 784)).pipe(axon.dense, width, activation="relu")
             .pipe(axon.dense, width, activation="relu").pipe(axon.dense, 10))

    def per_device_bytes(tree):
        device = jax.devices()[0]
        total = 0
        for leaf in jax.tree_util.tree_leaves(tree):
            for shard in leaf.addressable_shards:
                if shard.device == device:
                    total += shard.data.nbytes
        return total

    def loss(y_true, logits):
        return axon.losses.categorical_cross_entropy(y_true, logits, from_logits=True, reduction="mean")

    out = {"devices": n}
    for name, strategy in (("dp", dist.DataParallel()), ("fsdp", dist.FSDP())):
        trainer = axon.loop.trainer(model, loss, optax.adam(1e-3), log=0, distribution=strategy)
        final = trainer.run(data[:2], epochs=1, return_state=True)   # compile
        state = final.step_state
        out[name + "_bytes"] = per_device_bytes((state["model_state"], state["optimizer_state"]))
        start = time.perf_counter()
        trainer.run(data, epochs=1)
        out[name + "_steps_per_s"] = steps / (time.perf_counter() - start)

    # hand-written: the same model in plain JAX, one jit with the DP shardings
    strategy = dist.DataParallel()
    init_fn, predict_fn = axon.build(model, distribution=strategy)
    params = init_fn().data
    tx = optax.adam(1e-3)
    opt = tx.init(params)
    params, opt = strategy.place_state(params), strategy.place_state(opt)
    apply = predict_fn.apply

    def step(p, o, xb, yb):
        value, grads = jax.value_and_grad(lambda q: loss(yb, apply(q, xb)))(p)
        updates, o = tx.update(grads, o, p)
        return optax.apply_updates(p, updates), o, value

    jitted = jax.jit(step, donate_argnums=(0, 1), out_shardings=(strategy.state_shardings(params),
                     strategy.state_shardings(opt), strategy.replicated()))
    xb, yb = strategy.shard_batch((x, y))
    params, opt, _ = jitted(params, opt, xb, yb)
    start = time.perf_counter()
    for _ in range(steps):
        xb, yb = strategy.shard_batch((x, y))
        params, opt, value = jitted(params, opt, xb, yb)
    value.block_until_ready()
    out["hand_dp_steps_per_s"] = steps / (time.perf_counter() - start)
    print("RESULT=" + json.dumps(out))
''')


def run_one(n: int, steps: int, batch: int, width: int, real: bool) -> dict:
    env = dict(os.environ)
    if not real:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n}"
        env["JAX_PLATFORMS"] = "cpu"
    else:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(n))
    proc = subprocess.run([sys.executable, "-c", WORKER, str(steps), str(batch), str(width)],
                          env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{n} devices failed:\n{proc.stderr[-4000:]}")
    line = [s for s in proc.stdout.splitlines() if s.startswith("RESULT=")][-1]
    return json.loads(line[len("RESULT="):])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1,2,4,8")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--real-devices", action="store_true", help="use the machine's own devices (GPUs)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    rows = [run_one(int(n), args.steps, args.batch, args.width, args.real_devices) for n in args.devices.split(",")]
    base = rows[0]
    print(f"{'devices':>7} | {'DP steps/s':>10} | {'hand DP':>8} | {'DP/hand':>7} | {'FSDP steps/s':>12} | "
          f"{'DP bytes/dev':>12} | {'FSDP bytes/dev':>14} | {'FSDP vs 1/N':>11}")
    for r in rows:
        ideal = base["fsdp_bytes"] / r["devices"]
        print(f"{r['devices']:>7} | {r['dp_steps_per_s']:>10.1f} | {r['hand_dp_steps_per_s']:>8.1f} | "
              f"{r['dp_steps_per_s'] / r['hand_dp_steps_per_s']:>7.2f} | {r['fsdp_steps_per_s']:>12.1f} | "
              f"{r['dp_bytes']:>12,} | {r['fsdp_bytes']:>14,} | {r['fsdp_bytes'] / ideal:>11.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
