"""Issue 17's before/after table: the same benchmark for an older axon commit and this
checkout, workload by workload, alternating, on one machine.

    PYTHONPATH=$PWD/src python -m benchmarks.before_after --before 07f7f89 \\
        --workloads mlp,cnn,lstm,transformer --json-prefix results/cpu-2core-DATE-final

For each workload, ``python -m benchmarks.run`` runs first with the ``--before`` commit's
library (a temporary ``git worktree`` of it on ``PYTHONPATH``) and then with this checkout's,
both with this checkout's benchmark code, so only the library differs; each run has its own
hand-written JAX, Flax and PyTorch processes, so each row's ratios are within one run. The
two JSON files per workload are kept (``PREFIX-before-W.json``, ``PREFIX-after-W.json``) and
``--table-only`` rebuilds the table from them. Ratios are the harness's paired medians of
throughput (higher is better): wall time, with CPU time in brackets.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.run import _latency_rounds, _paired_ratio

ROOT = Path(__file__).resolve().parent.parent
PEERS = ("flax_linen", "torch")
FIRST_STEP = ("axon_trainer", "axon_spe", "jax", "flax_linen", "torch")
# issue 17's targets: (numerator, denominator, bound, workloads or None for all)
TARGETS = [
    ("axon_trainer", "jax", 0.97, None),
    ("axon_trainer", "flax_linen", 1.00, None),
    ("axon_trainer", "torch", 1.00, ("cnn", "lstm", "transformer")),
    ("axon_spe", "jax_scan", 0.95, None),
]
LATENCY_BOUND = 1.10


def run_one(src: Path, workload: str, args: argparse.Namespace, out: Path) -> None:
    """``benchmarks.run`` for one workload with the library in ``src``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), str(ROOT)]))
    cmd = [sys.executable, "-m", "benchmarks.run", "--workloads", workload, "--frameworks", args.frameworks,
           "--json", str(out)]
    if args.quick:
        cmd.append("--quick")
    if args.windows:
        cmd += ["--windows", str(args.windows)]
    if args.torch_threads:
        cmd += ["--torch-threads", str(args.torch_threads)]
    print(f"$ PYTHONPATH={src} {' '.join(cmd[1:])}", flush=True)
    subprocess.run(cmd, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def _ratio(res: dict[str, Any], num: str, den: str, key: str) -> float | None:
    if num not in res or den not in res or "skip" in res[num] or "skip" in res[den]:
        return None
    return _paired_ratio(res[num].get(key, []), res[den].get(key, []))


def _pair(res: dict[str, Any], num: str, den: str) -> tuple[float | None, float | None]:
    return _ratio(res, num, den, "throughput"), _ratio(res, num, den, "cpu_throughput")


def _fmt_pair(p: tuple[float | None, float | None]) -> str:
    wall, cpu = p
    if wall is None:
        return "—"
    return f"{wall:.2f} ({cpu:.2f})" if cpu is not None else f"{wall:.2f}"


def table(files: dict[str, dict[str, Path]]) -> str:
    """The markdown table (and the targets judged on the "after" runs) from the JSON files."""
    lines = [
        "| workload | run | axon commit | trainer × jax | trainer × flax_linen | trainer × torch | spe × jax_scan "
        "| batch-1 latency × jax | first step (s): trainer / spe / jax / linen / torch | CPU ms/step: trainer / spe / jax / linen / torch |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    checks = []
    for workload, runs in files.items():
        for label, path in runs.items():
            data = json.loads(path.read_text())
            res = data["workloads"][workload]["results"]
            summary = data["workloads"][workload]["summary"]
            commit = data.get("environment", {}).get("axon_commit", "?")
            latency = None
            if "axon_build" in res and "jax" in res and "skip" not in res["axon_build"]:
                latency = _paired_ratio(_latency_rounds(res["axon_build"]), _latency_rounds(res["jax"]))
            first = " / ".join(f"{summary[i]['first_step_s']:.1f}" if i in summary and "skip" not in summary[i] else "—"
                               for i in FIRST_STEP)
            cpu = " / ".join(f"{summary[i]['cpu_ms_per_step']:.2f}" if i in summary and "skip" not in summary[i] else "—"
                             for i in FIRST_STEP)
            lines.append(
                f"| {workload} | {label} | {commit} | {_fmt_pair(_pair(res, 'axon_trainer', 'jax'))} | "
                f"{_fmt_pair(_pair(res, 'axon_trainer', 'flax_linen'))} | {_fmt_pair(_pair(res, 'axon_trainer', 'torch'))} | "
                f"{_fmt_pair(_pair(res, 'axon_spe', 'jax_scan'))} | {'—' if latency is None else f'{latency:.2f}'} | "
                f"{first} | {cpu} |"
            )
            if label == "after":
                for num, den, bound, only in TARGETS:
                    if only is None or workload in only:
                        wall, cpu_r = _pair(res, num, den)
                        if wall is not None:
                            checks.append((workload, f"{num} ≥ {bound:.2f}× {den}", wall, cpu_r, bound, True))
                if latency is not None:
                    checks.append((workload, f"axon_build batch-1 latency ≤ {LATENCY_BOUND:.2f}× jax", latency, None,
                                   LATENCY_BOUND, False))
    lines += ["", "| workload | target (after) | wall | CPU time | holds (wall / CPU) |", "|---|---|---:|---:|---|"]
    for workload, what, wall, cpu_r, bound, higher in checks:
        def ok(r: float | None, bound: float = bound, higher: bool = higher) -> str:
            return "—" if r is None else ("yes" if (r >= bound if higher else r <= bound) else "**no**")

        lines.append(f"| {workload} | {what} | {wall:.3f} | {'—' if cpu_r is None else f'{cpu_r:.3f}'} | "
                     f"{ok(wall)} / {ok(cpu_r)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="07f7f89", help="the older commit (default: the one issue 17 was measured on)")
    parser.add_argument("--workloads", default="mlp,cnn,lstm,transformer")
    parser.add_argument("--frameworks", default="axon,jax,flax,torch")
    parser.add_argument("--quick", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--windows", type=int, default=None)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--json-prefix", type=Path, default=Path(tempfile.gettempdir()) / "axon-before-after")
    parser.add_argument("--table-only", action="store_true", help="only rebuild the table from existing JSON files")
    args = parser.parse_args(argv)
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    files = {w: {"before": Path(f"{args.json_prefix}-before-{w}.json"), "after": Path(f"{args.json_prefix}-after-{w}.json")}
             for w in workloads}
    if not args.table_only:
        tree = Path(tempfile.mkdtemp(prefix="axon-before-")) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), args.before], check=True)
        try:
            for w in workloads:
                run_one(tree / "src", w, args, files[w]["before"])
                run_one(ROOT / "src", w, args, files[w]["after"])
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    print(table(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
