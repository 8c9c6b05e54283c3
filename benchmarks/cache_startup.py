"""The persistent compilation cache: ``examples/mnist.py`` run several times on one cache folder.

Each run is a fresh process (``python -m benchmarks.cache_startup --child``) with
``AXON_COMPILATION_CACHE`` set to a new temporary folder shared by the runs. Inside it,
``jax.monitoring`` listeners record every compilation event (tracing, lowering, XLA
compilation or loading from the cache) with its end time, and a handler on the loop's
``iteration_completed`` event records when the first training step finished. Reported per
run: the XLA compile (or cache load) seconds spent before the first training step ends,
tracing and lowering seconds over the same span, the number of programs, the wall time to
the first step and for the whole script, and the process's CPU time.

    PYTHONPATH=$PWD/src python -m benchmarks.cache_startup --runs 3 --json out.json

Issue 17's target: the second run starts training after under a second of compile time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mnist.py"
EVENTS = {
    "/jax/core/compile/backend_compile_duration": "compile",
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/compilation_cache/cache_retrieval_time_sec": "cache_load",
}


def child(epochs: int, out: str) -> None:
    """Run the example once in this process and write what was measured to ``out``."""
    import jax

    records: list[tuple[str, float, float]] = []

    def listener(event: str, duration: float, **_: object) -> None:
        if event in EVENTS:
            records.append((EVENTS[event], duration, time.perf_counter()))

    jax.monitoring.register_event_duration_secs_listener(listener)
    import axon
    from axon.loop.core import Loop

    first_step: list[float] = []
    original_run = Loop.run

    def run(self, *args, **kwargs):
        def mark(state):
            if not first_step:
                first_step.append(time.perf_counter())
            return "continue", state

        return original_run(self.handle_event("iteration_completed", mark), *args, **kwargs)

    Loop.run = run
    start = time.perf_counter()
    sys.argv = [str(EXAMPLE), "--epochs", str(epochs), "--output", os.path.join(tempfile.mkdtemp(), "m.axon")]
    try:
        runpy.run_path(str(EXAMPLE), run_name="__main__")
    finally:
        Loop.run = original_run
    end = time.perf_counter()
    boundary = first_step[0] if first_step else end
    before = [r for r in records if r[2] <= boundary]

    def total(kind: str, rs: list[tuple[str, float, float]]) -> float:
        return sum(d for k, d, _ in rs if k == kind)

    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "cache_dir": axon.config.compilation_cache_dir() and str(axon.config.compilation_cache_dir()),
        "to_first_step_s": boundary - start,
        "script_s": end - start,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "before_first_step": {
            "compile_s": total("compile", before),
            "cache_load_s": total("cache_load", before),
            "trace_s": total("trace", before),
            "lower_s": total("lower", before),
            "programs": sum(1 for k, _, _ in before if k == "compile"),
            "loaded_from_cache": sum(1 for k, _, _ in before if k == "cache_load"),
        },
        "whole_script": {
            "compile_s": total("compile", records),
            "programs": sum(1 for k, _, _ in records if k == "compile"),
            "loaded_from_cache": sum(1 for k, _, _ in records if k == "cache_load"),
        },
    }
    Path(out).write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.epochs, args.child)
        return
    cache = tempfile.mkdtemp(prefix="axon-cache-bench-")
    env = dict(os.environ, AXON_COMPILATION_CACHE=cache)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH")) if p)
    runs = []
    for i in range(args.runs):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            out = f.name
        subprocess.run(
            [sys.executable, "-m", "benchmarks.cache_startup", "--child", out, "--epochs", str(args.epochs)],
            env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
        )
        r = json.loads(Path(out).read_text())
        os.unlink(out)
        runs.append(r)
        b = r["before_first_step"]
        print(
            f"run {i + 1}: before the first step {b['compile_s']:.2f} s XLA compile/load "
            f"({b['programs']} programs, {b['loaded_from_cache']} from the cache, load {b['cache_load_s']:.2f} s), "
            f"trace {b['trace_s']:.2f} s, lower {b['lower_s']:.2f} s; first step at {r['to_first_step_s']:.1f} s, "
            f"script {r['script_s']:.1f} s, CPU {r['cpu_s']:.1f} s",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"load_average": os.getloadavg(), "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
