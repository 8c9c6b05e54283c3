"""Benchmark axon against hand-written JAX and the libraries users would pick instead.

    python -m benchmarks.run [--quick] [--json out.json] [--workloads mlp,cnn]
                             [--frameworks axon,jax,flax,keras,torch]

Every (implementation, workload) pair runs in a fresh subprocess
(:mod:`benchmarks.worker`), so no framework's compilation caches, thread pools or
allocator state affect another's. Processes are started one at a time (time to first
step is measured alone), then their timing windows are interleaved round by round, one
process running at a time, so that load from other processes on a shared machine falls
on every implementation alike. Throughput is the median over windows; each ratio is the
median over rounds of the paired per-round ratio against hand-written JAX (``jax``).

Implementations: ``jax`` (hand-written jitted step + optax), ``jax_scan`` (the same step
``lax.scan``-ned over a window of device-resident batches: the compute floor),
``axon_trainer`` (``axon.loop.trainer(...).run``, ``log=0``), ``axon_spe`` (the same with
``steps_per_execution=k``), ``axon_build`` (``axon.build`` in the user's own ``jax.jit``
step), ``flax_linen``, ``flax_nnx``, ``keras`` (Keras 3 on JAX, ``fit``) and ``torch``
(PyTorch eager), where installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.impls import MODULES
from benchmarks.workloads import WORKLOADS, Workload, get

__all__ = ["main", "run_workload", "summarize"]

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["jax", "jax_scan", "axon_trainer", "axon_spe", "axon_build", "flax_linen", "flax_nnx", "keras", "torch"]
FRAMEWORKS = sorted({fw for _, fw in MODULES.values()})
BASELINE = "jax"

# targets (see the module docstring of benchmarks/README.md)
THROUGHPUT_TARGET = 0.97  # axon_trainer / jax
SPE_TARGET = 0.90  # axon_spe / jax_scan
PEER_TARGET = 1.00  # axon_trainer / each of flax_linen, flax_nnx, keras
LATENCY_TARGET = 1.10  # axon_build predict_fn / hand-written jitted forward


class WorkerError(RuntimeError):
    """A worker process ended without finishing the protocol."""


class Worker:
    """The coordinator's handle on one worker process."""

    def __init__(self, impl: str, workload: str, quick: bool, log_dir: Path, windows: int | None = None):
        self.impl = impl
        self.log_path = log_dir / f"{workload}-{impl}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in close())
        env = dict(os.environ, KERAS_BACKEND="jax", PYTHONUNBUFFERED="1")
        # first steps compile cold, as hand-written JAX's do (axon's persistent compilation
        # cache would load a previous run's programs); AXON_COMPILATION_CACHE=... overrides
        env.setdefault("AXON_COMPILATION_CACHE", "off")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "benchmarks.worker", impl, workload] + (["--quick"] if quick else [])
        if windows is not None:
            cmd += ["--windows", str(windows)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     text=True, cwd=ROOT, env=env)

    def read(self) -> list[dict[str, Any]]:
        """Messages up to the worker's next ``waiting`` (or its exit)."""
        assert self.proc.stdout is not None
        messages = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                return messages
            msg = json.loads(line)
            if msg["event"] == "waiting":
                return messages
            messages.append(msg)

    def go(self, expect: str) -> dict[str, Any]:
        """Let the worker run its next piece of work; return the message ``expect``."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise WorkerError(f"{self.impl}: the worker exited; see {self.log_path}") from None
        for msg in self.read():
            if msg["event"] == expect:
                return msg
        raise WorkerError(f"{self.impl}: expected {expect!r} from the worker; see {self.log_path}")

    def close(self) -> None:
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def _rotated(items: list[Any], r: int) -> list[Any]:
    r %= max(len(items), 1)
    return items[r:] + items[:r]


def run_workload(w: Workload, impls: list[str], quick: bool, log_dir: Path, windows: int | None = None,
                 echo: bool = True) -> dict[str, Any]:
    """Run ``impls`` on workload ``w`` (``windows`` overrides its number of timed windows,
    in the workers too); return the raw results by implementation."""
    results: dict[str, Any] = {}
    workers: list[Worker] = []

    def say(msg: str) -> None:
        if echo:
            print(msg, file=sys.stderr, flush=True)

    try:
        for impl in impls:  # one at a time: compilation is timed alone
            worker = Worker(impl, w.name, quick, log_dir, windows)
            messages = worker.read()
            ready = next((m for m in messages if m["event"] in ("ready", "skip")), None)
            if ready is None or ready["event"] == "skip":
                reason = ready["reason"] if ready else f"the worker died; see {worker.log_path}"
                results[impl] = {"skip": reason}
                say(f"  {w.name:12s} {impl:13s} skipped: {reason}")
                worker.close()
                continue
            results[impl] = {"first_step_s": ready["first_step_s"], "windows": [], "cpu": [], "latency": []}
            say(f"  {w.name:12s} {impl:13s} first step {ready['first_step_s']:.2f} s")
            workers.append(worker)
        rounds = w.warmup_windows + w.windows
        for r in range(rounds):
            for worker in _rotated(workers, r):
                msg = worker.go("window")
                if r >= w.warmup_windows:
                    results[worker.impl]["windows"].append(msg["seconds"])
                    results[worker.impl]["cpu"].append(msg["cpu_seconds"])
        latency_workers = []
        for worker in workers:
            msg = worker.go("trained")
            results[worker.impl]["predict_compile_s"] = msg["predict_compile_s"]
            if msg["latency"]:
                latency_workers.append(worker)
        from benchmarks.worker import LATENCY_ROUNDS

        for r in range(LATENCY_ROUNDS):
            for worker in _rotated(latency_workers, r):
                times = sorted(worker.go("latency")["times"])
                results[worker.impl]["latency"].append(
                    {"median": statistics.median(times), "p10": times[len(times) // 10],
                     "p90": times[(9 * len(times)) // 10], "n": len(times)})
        for worker in workers:
            done = worker.go("done")
            done.pop("event")
            results[worker.impl].update(done)
    finally:
        for worker in workers:
            if worker.proc.poll() is None and worker.proc.stdin is not None:
                worker.proc.stdin.close()
            worker.close()
    for impl, res in results.items():
        if "windows" in res:
            res["throughput"] = [w.batch_size * w.steps_per_window / s for s in res["windows"]]
            res["cpu_throughput"] = [w.batch_size * w.steps_per_window / s for s in res["cpu"]]
            res["steps"] = w.steps_per_window
            say(f"  {w.name:12s} {impl:13s} {statistics.median(res['throughput']):10.1f} samples/s")
    return results


# --------------------------------------------------------------------------------------
# summaries


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _paired_ratio(a: list[float], b: list[float]) -> float | None:
    """Median over rounds of ``a[r] / b[r]``."""
    n = min(len(a), len(b))
    return statistics.median(a[i] / b[i] for i in range(n)) if n else None


def _latency_rounds(res: dict[str, Any]) -> list[float]:
    return [r["median"] for r in res.get("latency", [])]


def summarize(workload: str, results: dict[str, Any]) -> dict[str, Any]:
    """Per implementation: median throughput, paired ratio to ``jax``, first step,
    median batch-1 latency and its paired ratio, peak RSS."""
    base = results.get(BASELINE, {})
    rows = {}
    for impl, res in results.items():
        if "skip" in res:
            rows[impl] = {"skip": res["skip"]}
            continue
        lat = _latency_rounds(res)
        rows[impl] = {
            "samples_per_s": _median(res["throughput"]),
            "vs_jax": _paired_ratio(res["throughput"], base.get("throughput", [])),
            "cpu_ms_per_step": 1000 * statistics.median(res["cpu"]) / res["steps"],
            "cpu_vs_jax": _paired_ratio(res["cpu_throughput"], base.get("cpu_throughput", [])),
            "first_step_s": res["first_step_s"],
            "latency_ms": 1000 * statistics.median(lat) if lat else None,
            "latency_vs_jax": _paired_ratio(lat, _latency_rounds(base)) if lat else None,
            "peak_rss_mb": res.get("peak_rss_mb"),
            "loss": res.get("loss"),
        }
    return rows


def check_targets(all_results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets of issue 7, each with the measured ratio and whether it holds.

    Throughput targets are judged on wall-clock throughput (the paired median ratio) and,
    separately, on CPU time (``holds_cpu``), which other processes' load disturbs less.
    """
    checks = []

    def add(workload: str, what: str, num: str, den: str, target: float, higher: bool, key: str = "throughput") -> None:
        res = all_results[workload]
        if "skip" in res.get(num, {"skip": 1}) or "skip" in res.get(den, {"skip": 1}):
            return
        cpu_ratio = None
        if key == "throughput":
            ratio = _paired_ratio(res[num]["throughput"], res[den]["throughput"])
            cpu_ratio = _paired_ratio(res[num].get("cpu_throughput", []), res[den].get("cpu_throughput", []))
        else:
            ratio = _paired_ratio(_latency_rounds(res[num]), _latency_rounds(res[den]))
        if ratio is None:
            return

        def judge(r: float | None) -> bool | None:
            return None if r is None else (r >= target if higher else r <= target)

        checks.append({"workload": workload, "target": what, "ratio": ratio, "cpu_ratio": cpu_ratio,
                       "bound": target, "higher_is_better": higher, "holds": judge(ratio),
                       "holds_cpu": judge(cpu_ratio)})

    for name in all_results:
        add(name, "axon_trainer ≥ 0.97× jax throughput", "axon_trainer", "jax", THROUGHPUT_TARGET, True)
        add(name, "axon_build ≥ 0.97× jax throughput", "axon_build", "jax", THROUGHPUT_TARGET, True)
        add(name, "axon_spe ≥ 0.90× jax_scan throughput", "axon_spe", "jax_scan", SPE_TARGET, True)
        for peer in ("flax_linen", "flax_nnx", "keras"):
            add(name, f"axon_trainer ≥ {peer} throughput", "axon_trainer", peer, PEER_TARGET, True)
        add(name, "axon predict_fn batch-1 latency ≤ 1.10× jitted jax forward", "axon_build", "jax",
            LATENCY_TARGET, False, key="latency")
    return checks


def _fmt(v: Any, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def format_tables(all_results: dict[str, dict[str, Any]], workloads: dict[str, Workload]) -> str:
    """Markdown tables: one per workload, then the targets."""
    lines = []
    for name, results in all_results.items():
        w = workloads[name]
        lines.append(f"\n### {name}: {w.description}, batch {w.batch_size}"
                     f" ({w.windows} windows × {w.steps_per_window} steps, spe k={w.spe})\n")
        lines.append("| implementation | samples/s | × jax | CPU ms/step | × jax (CPU) | first step (s) "
                     "| batch-1 latency (ms) | × jax | peak RSS (MB) | loss |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        rows = summarize(name, results)
        for impl in [i for i in ORDER if i in rows]:
            r = rows[impl]
            if "skip" in r:
                lines.append(f"| {impl} | skipped: {r['skip']} | | | | | | | | |")
                continue
            lines.append(
                f"| {impl} | {_fmt(r['samples_per_s'], '.0f')} | {_fmt(r['vs_jax'], '.3f')} | "
                f"{_fmt(r['cpu_ms_per_step'], '.2f')} | {_fmt(r['cpu_vs_jax'], '.3f')} | "
                f"{_fmt(r['first_step_s'], '.2f')} | {_fmt(r['latency_ms'], '.3f')} | {_fmt(r['latency_vs_jax'], '.3f')} | "
                f"{_fmt(r['peak_rss_mb'], '.0f')} | {_fmt(r['loss'], '.3f')} |"
            )
    checks = check_targets(all_results)
    if checks:
        lines.append("\n### Targets\n")
        lines.append("| workload | target | ratio (wall) | holds | ratio (CPU time) | holds (CPU) |")
        lines.append("|---|---|---:|:---:|---:|:---:|")

        def yes(v: bool | None) -> str:
            return "—" if v is None else "yes" if v else "**no**"

        for c in checks:
            lines.append(f"| {c['workload']} | {c['target']} | {c['ratio']:.3f} | {yes(c['holds'])} | "
                         f"{_fmt(c['cpu_ratio'], '.3f')} | {yes(c['holds_cpu'])} |")
    return "\n".join(lines)


def _environment() -> dict[str, Any]:
    env: dict[str, Any] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    try:
        import jax

        env["jax"] = jax.__version__
        env["device"] = str(jax.devices()[0].device_kind)
    except Exception:  # pragma: no cover - jax is a dependency
        pass
    env.update(_axon_source())
    return env


def _axon_source() -> dict[str, Any]:
    """Which axon the workers import (``PYTHONPATH`` may point at another checkout) and,
    when it is a git checkout, its commit: a before/after comparison says what it compared."""
    import importlib.util
    import subprocess

    spec = importlib.util.find_spec("axon")
    if spec is None or spec.origin is None:
        return {}
    folder = os.path.dirname(spec.origin)
    out: dict[str, Any] = {"axon_source": folder}
    try:
        commit = subprocess.run(["git", "-C", folder, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", folder, "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, timeout=10, check=True).stdout.strip()
        out["axon_commit"] = commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def _select(frameworks: str | None) -> list[str]:
    if not frameworks:
        return list(ORDER)
    wanted = {f.strip() for f in frameworks.split(",") if f.strip()}
    unknown = wanted - set(FRAMEWORKS) - set(ORDER)
    if unknown:
        raise SystemExit(f"unknown framework(s)/implementation(s) {sorted(unknown)}; "
                         f"frameworks: {FRAMEWORKS}; implementations: {ORDER}")
    impls = [i for i in ORDER if i in wanted or MODULES[i][1] in wanted]
    if BASELINE not in impls:
        impls.insert(0, BASELINE)  # ratios need the baseline measured in the same run
    return impls


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and few windows")
    parser.add_argument("--json", type=Path, help="write every measurement to this file")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated, from {list(WORKLOADS)}")
    parser.add_argument("--frameworks", default=None,
                        help=f"comma-separated frameworks {FRAMEWORKS} or implementations {ORDER} (jax is always included)")
    parser.add_argument("--windows", type=int, default=None, help="timed windows per implementation (overrides the workload's)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads for the torch worker (default: torch's own, one per core)")
    parser.add_argument("--log-dir", type=Path, default=None, help="where the workers' logs go (default: a temporary folder)")
    args = parser.parse_args(argv)

    if args.torch_threads is not None:
        os.environ["AXON_BENCH_TORCH_THREADS"] = str(args.torch_threads)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    for n in names:
        get(n)
    impls = _select(args.frameworks)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="axon-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    workloads = {n: get(n, args.quick) for n in names}
    if args.windows is not None:
        workloads = {n: dataclasses.replace(w, windows=args.windows) for n, w in workloads.items()}
    print(f"implementations: {', '.join(impls)}; worker logs in {log_dir}", file=sys.stderr)
    all_results: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for name in names:
        all_results[name] = run_workload(workloads[name], impls, args.quick, log_dir, args.windows)
    env = _environment()
    env["wall_s"] = round(time.perf_counter() - t0, 1)
    print(f"\n{env}")
    print(format_tables(all_results, workloads))
    if args.json:
        payload = {
            "environment": env,
            "quick": args.quick,
            "workloads": {n: {"spec": {k: v for k, v in vars(workloads[n]).items()}, "results": all_results[n],
                              "summary": summarize(n, all_results[n])} for n in names},
            "targets": check_targets(all_results),
        }
        args.json.write_text(json.dumps(payload, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
