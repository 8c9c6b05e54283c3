"""How the time to a model's first training step scales with its size.

    python -m benchmarks.init_scaling [--blocks 50,200,800] [--repeats 3] [--json out.json]

A residual MLP of ``n`` blocks (``h = h + relu(dense(h))``, width 32: 3 nodes and 2
parameters a block, so 50/200/800 blocks are about 150/600/2,400 nodes). Each measurement
runs in a fresh process (no compile caches shared; the persistent compilation cache is
off), repeats are interleaved across sizes, and the median is reported, wall and CPU
seconds, for:

* ``build``: ``axon.build(model, mode="train")``;
* ``init``: ``init_fn(template)`` to the last parameter ready;
* ``first step``: a fresh ``axon.loop.trainer(...).run`` of one step (its init, tracing,
  compilation and the step; nothing shared with the two lines above);
* ``as_table``: ``axon.display.as_table(model, template)``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 32


def _timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def measure(blocks: int) -> dict:
    """Build, init, first step and as_table times for a residual MLP of ``blocks`` blocks."""
    import jax
    import numpy as np

    import axon

    jax.devices()  # start the backend outside the timings
    jax.block_until_ready(jax.numpy.zeros(()) + 1)
    x = axon.input("x", shape=(None, WIDTH))
    h = x
    for _ in range(blocks):
        h = axon.add(h, axon.relu(axon.dense(h, WIDTH)))
    model = h.pipe(axon.dense, 10)
    template = axon.template((1, WIDTH))
    out = {"blocks": blocks, "nodes": len(model.nodes)}
    (init_fn, _), out["build_s"], out["build_cpu_s"] = _timed(lambda: axon.build(model, mode="train"))
    state, out["init_s"], out["init_cpu_s"] = _timed(lambda: jax.block_until_ready(init_fn(template)))
    out["parameters"] = len(jax.tree_util.tree_leaves(state.data))
    rng = np.random.default_rng(0)
    batch = (rng.normal(size=(16, WIDTH)).astype(np.float32), rng.integers(0, 10, size=(16,)).astype(np.int32))
    def first_step():
        return jax.block_until_ready(loop.run([batch], epochs=1, return_state=True).step_state["loss"])

    def loss(y_true, y_pred):
        return axon.losses.categorical_cross_entropy(y_true, y_pred, from_logits=True, sparse=True, reduction="mean")

    # a deep residual MLP without normalization overflows; timing, not training, is measured
    loop = axon.loop.trainer(model, loss, axon.optimizers.adam(1e-3), log=0, on_nonfinite="continue")
    _, out["first_step_s"], out["first_step_cpu_s"] = _timed(first_step)
    _, out["as_table_s"], out["as_table_cpu_s"] = _timed(lambda: axon.display.as_table(model, template))
    return out


def main(argv: list[str] | None = None) -> int:
    """Run every size ``--repeats`` times, each in a fresh process; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", default="50,200,800")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.one)))
        return 0
    sizes = [int(b) for b in args.blocks.split(",")]
    env = dict(os.environ, AXON_COMPILATION_CACHE="off")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH")]))
    runs: dict[int, list[dict]] = {n: [] for n in sizes}
    for r in range(args.repeats):
        for n in sizes if r % 2 == 0 else reversed(sizes):
            proc = subprocess.run([sys.executable, "-m", "benchmarks.init_scaling", "--one", str(n)], cwd=ROOT, env=env,
                                  capture_output=True, text=True, check=True)
            runs[n].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"  {n} blocks, repeat {r + 1}: {runs[n][-1]}", file=sys.stderr, flush=True)
    keys = ["build", "init", "first_step", "as_table"]
    print("| nodes | parameters | " + " | ".join(f"{k.replace('_', ' ')} (s) wall / CPU" for k in keys) + " |")
    print("|---:|---:|" + "---:|" * len(keys))
    for n in sizes:
        rows = runs[n]
        cells = [f"{statistics.median(r[k + '_s'] for r in rows):.2f} / {statistics.median(r[k + '_cpu_s'] for r in rows):.2f}"
                 for k in keys]
        print(f"| {rows[0]['nodes']} | {rows[0]['parameters']} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
