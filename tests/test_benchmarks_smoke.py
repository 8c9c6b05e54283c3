"""Smoke test of benchmarks/: one workload, 2 steps, the axon and hand-written JAX
implementations, in this process. Quick (a few seconds); no timing is asserted."""

from __future__ import annotations

import dataclasses
import math

import pytest
from benchmarks import run, workloads
from benchmarks.harness import REGISTRY, Gate
from benchmarks.impls import axon_impl, jax_impl  # noqa: F401  (registers the implementations)

IMPLS = ["jax", "axon_trainer", "axon_build"]  # the others are exercised by the benchmark runs


@pytest.fixture(scope="module")
def workload() -> workloads.Workload:
    w = workloads.get("mlp", quick=True)
    return dataclasses.replace(w, batch_size=8, steps_per_window=2, spe=2, windows=1, warmup_windows=0)


@pytest.mark.parametrize("impl", IMPLS)
def test_implementation_trains_two_steps(impl: str, workload: workloads.Workload) -> None:
    bench = REGISTRY[impl](workload)
    bench.setup()
    gate = Gate(steps=2)
    bench.train_windows(1, 2, gate)
    assert len(gate.times) == 1 and gate.times[0] > 0
    assert math.isfinite(bench.loss())
    predict = bench.predict_fn()
    if predict is not None:
        predict()


def test_summary_and_targets_from_recorded_results() -> None:
    fake = {
        "jax": {"first_step_s": 1.0, "windows": [1.0, 1.0], "throughput": [100.0, 100.0],
                "cpu_throughput": [50.0, 50.0], "cpu": [2.0, 2.0], "steps": 10,
                "latency": [{"median": 0.001, "p10": 0.001, "p90": 0.001, "n": 2}], "peak_rss_mb": 300.0,
                "loss": 1.0},
        "axon_trainer": {"first_step_s": 1.0, "windows": [1.0, 1.0], "throughput": [99.0, 95.0],
                         "cpu_throughput": [50.0, 50.0], "cpu": [2.0, 2.0], "steps": 10,
                         "latency": [], "peak_rss_mb": 300.0, "loss": 1.0},
        "keras": {"skip": "not installed"},
    }
    rows = run.summarize("mlp", fake)
    assert rows["axon_trainer"]["vs_jax"] == pytest.approx(0.97)
    assert rows["keras"] == {"skip": "not installed"}
    checks = run.check_targets({"mlp": fake})
    assert [c["holds"] for c in checks] == [True]
    table = run.format_tables({"mlp": fake}, {"mlp": workloads.get("mlp")})
    assert "axon_trainer" in table and "skipped: not installed" in table


def test_framework_selection_always_includes_the_baseline() -> None:
    assert run._select("torch") == ["jax", "torch"]
    assert run._select("axon")[0] == "jax"
    with pytest.raises(SystemExit):
        run._select("tensorflow")
