"""Where the time to the first training step goes, per implementation.

    python -m benchmarks.first_step [--workloads mlp,transformer] [--impls jax,axon_trainer,axon_spe,axon_build]
                                    [--repeats 3] [--quick] [--cache DIR]

Each (implementation, workload) runs its ``setup()`` (build, initialize, compile, one step;
what ``benchmarks.run`` reports as *first step*) in a fresh process, with JAX's compile
logging on. Reported: wall and CPU seconds of the setup, and the seconds JAX spent
tracing, lowering to MLIR and compiling with XLA, summed over every program it built
(how many programs, and the slowest ones by name). Repeats are interleaved across
implementations; medians are shown.

``--cache DIR`` turns on the persistent compilation cache in ``DIR`` for every process
(``AXON_COMPILATION_CACHE``): run twice to see a warm second run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_EVENT = re.compile(r"Finished (tracing|jaxpr to MLIR module conversion|XLA compilation) (?:of )?(.*?) (?:for jit )?in ([0-9.e-]+) sec")
_KIND = {"tracing": "trace", "jaxpr to MLIR module conversion": "lower", "XLA compilation": "compile"}


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.events: list[tuple[str, str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        m = _EVENT.search(record.getMessage())
        if m:
            self.events.append((_KIND[m.group(1)], m.group(2), float(m.group(3))))


def measure(impl: str, workload: str, quick: bool) -> dict:
    """Time ``impl``'s setup on ``workload`` and collect JAX's compile events."""
    import importlib

    import jax

    from benchmarks.harness import REGISTRY
    from benchmarks.impls import MODULES
    from benchmarks.workloads import get

    importlib.import_module(MODULES[impl][0])
    jax.devices()
    collect = _Collect()
    logging.getLogger("jax").addHandler(collect)
    jax.config.update("jax_log_compiles", True)
    logging.getLogger("jax").setLevel(logging.DEBUG)
    logging.getLogger("jax").propagate = False
    w = get(workload, quick)
    obj = REGISTRY[impl](w)
    c0, t0 = time.process_time(), time.perf_counter()
    obj.setup()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    jax.config.update("jax_log_compiles", False)
    totals = {k: sum(s for kind, _, s in collect.events if kind == k) for k in ("trace", "lower", "compile")}
    compiles = sorted(((s, n) for kind, n, s in collect.events if kind == "compile"), reverse=True)
    return {"impl": impl, "workload": workload, "wall_s": wall, "cpu_s": cpu, **{f"{k}_s": v for k, v in totals.items()},
            "programs": len(compiles), "slowest": [(n, round(s, 3)) for s, n in compiles[:4]],
            "all": [(k, n, round(s, 4)) for k, n, s in collect.events]}


def main(argv: list[str] | None = None) -> int:
    """Run every pair ``--repeats`` times in fresh processes; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="mlp,transformer")
    parser.add_argument("--impls", default="jax,axon_trainer,axon_spe,axon_build")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cache", default=None, help="persistent compilation cache folder (default: off)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--one", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.one[0], args.one[1], args.quick)))
        return 0
    env = dict(os.environ, AXON_COMPILATION_CACHE=args.cache or "off", KERAS_BACKEND="jax")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH")]))
    pairs = [(w, i) for w in args.workloads.split(",") for i in args.impls.split(",")]
    runs: dict[tuple[str, str], list[dict]] = {p: [] for p in pairs}
    for r in range(args.repeats):
        for w, i in pairs if r % 2 == 0 else reversed(pairs):
            cmd = [sys.executable, "-m", "benchmarks.first_step", "--one", i, w] + (["--quick"] if args.quick else [])
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"{i} on {w} failed")
            runs[(w, i)].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"  {w} {i} repeat {r + 1}: {runs[(w, i)][-1]}", file=sys.stderr, flush=True)
    print("| workload | implementation | first step (s) wall / CPU | trace (s) | lower (s) | XLA compile (s) | programs | slowest compiles (s) |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for (w, i), rows in runs.items():
        med = {k: statistics.median(r[k] for r in rows) for k in ("wall_s", "cpu_s", "trace_s", "lower_s", "compile_s", "programs")}
        slow = ", ".join(f"{n} {s}" for n, s in rows[-1]["slowest"][:3])
        print(f"| {w} | {i} | {med['wall_s']:.2f} / {med['cpu_s']:.2f} | {med['trace_s']:.2f} | {med['lower_s']:.2f} | "
              f"{med['compile_s']:.2f} | {med['programs']:.0f} | {slow} |")
    if args.json:
        Path(args.json).write_text(json.dumps({f"{w}/{i}": rows for (w, i), rows in runs.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
