"""Training, evaluation, saving and resuming under DataParallel, FSDP and ModelParallel on 8
forced CPU devices, against the same run on one device."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import axon
from tests.distributed.multidevice import SRC, run_on_devices

COMMON = """
import warnings
import jax, numpy as np
import axon, axon.distributed as dist

rng = np.random.default_rng(0)
x = rng.normal(size=(64, 16)).astype(np.float32)
y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 64)]
images = rng.normal(size=(32, 8, 8, 1)).astype(np.float32)
labels = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 32)]

def mlp():
    return (axon.input("x", shape=(None, 16)).pipe(axon.dense, 256, activation="relu")
            .pipe(axon.batch_norm).pipe(axon.dense, 4, activation="softmax"))

def cnn():
    return (axon.input("image", shape=(None, 8, 8, 1)).pipe(axon.conv, 16, kernel_size=3, activation="relu")
            .pipe(axon.max_pool, kernel_size=2).pipe(axon.flatten).pipe(axon.dense, 4, activation="softmax"))

def leaves(tree):
    return [np.asarray(v) for v in jax.tree_util.tree_leaves(tree)]

def max_rel(a, b):
    return max(float(np.max(np.abs(u - v) / (np.abs(v) + 1e-6))) if u.size else 0.0 for u, v in zip(leaves(a), leaves(b)))

def max_abs(a, b):
    return max(float(np.max(np.abs(u - v))) if u.size else 0.0 for u, v in zip(leaves(a), leaves(b)))
"""


def test_strategies_train_and_evaluate_like_one_device():
    result = run_on_devices(COMMON + """
result = {}
strategies = {
    "dp": dist.DataParallel(),
    "fsdp": dist.FSDP(min_size=512),
    "mp": dist.ModelParallel(dist.mesh({"data": 2, "model": 4}),
                             [(r"dense_0\\.kernel", (None, "model")), (r"dense_1\\.kernel", ("model", None))]),
}
for model_name, make, data in (("mlp", mlp, (x, y)), ("cnn", cnn, (images, labels))):
    model = make()
    def train(d, k=1):
        return (axon.loop.trainer(model, "categorical_cross_entropy", axon.optimizers.adam(1e-2), log=0, distribution=d)
                .metric("accuracy").run(data, batch_size=16, epochs=2, steps_per_execution=k, return_state=True))
    ref = train(None)
    ref_ms = ref.step_state["model_state"]
    ref_eval = axon.loop.evaluator(model, log=0).metric("accuracy").run([data], ref_ms)
    for name, d in strategies.items():
        if model_name == "cnn" and name == "mp":
            continue
        for k in (1, 2):
            st = train(d, k)
            ms = st.step_state["model_state"]
            result[f"{model_name}/{name}/{k}/abs"] = max_abs(ms, ref_ms)
            result[f"{model_name}/{name}/{k}/loss"] = [st.history[1]["loss"], ref.history[1]["loss"]]
        ev = axon.loop.evaluator(model, log=0, distribution=d).metric("accuracy").run([data], ms)
        result[f"{model_name}/{name}/eval"] = [ev[0]["accuracy"], ref_eval[0]["accuracy"]]
        if model_name == "mlp":
            kernel = ms["dense_0"]["kernel"]
            result[f"{name}/kernel_shards"] = sorted({tuple(s.data.shape) for s in kernel.addressable_shards})
            opt = st.step_state["optimizer_state"]
            mu = [leaf for leaf in jax.tree_util.tree_leaves(opt) if getattr(leaf, "shape", ()) == (16, 256)][0]
            result[f"{name}/mu_shards"] = sorted({tuple(s.data.shape) for s in mu.addressable_shards})
"""
    )
    for key, value in result.items():
        if key.endswith("/abs"):
            assert value < 1e-5, (key, value)
        elif key.endswith("/loss") or key.endswith("/eval"):
            assert value[0] == pytest.approx(value[1], rel=1e-5), (key, value)
    # DP replicates: every device holds the whole 16x256 kernel; FSDP: each holds 1/8 of it
    # (256 is its largest dimension that 8 divides), and Adam's moments follow it; the model
    # parallel rule splits it over the 4-device model axis
    assert result["dp/kernel_shards"] == [[16, 256]]
    assert result["fsdp/kernel_shards"] == [[16, 32]] and result["fsdp/mu_shards"] == [[16, 32]]
    assert result["mp/kernel_shards"] == [[16, 64]] and result["mp/mu_shards"] == [[16, 64]]


def test_init_under_a_strategy_gives_the_single_device_values_already_sharded():
    result = run_on_devices(COMMON + """
model = axon.input("x", shape=(None, 64)).pipe(axon.dense, 512).pipe(axon.dense, 10)
ref = axon.init(model)
init_fn, predict_fn = axon.build(model, distribution=dist.FSDP(min_size=1024))
state = init_fn()
kernel = state["dense_0"]["kernel"]
out = predict_fn(state, np.ones((16, 64), np.float32))
result = {"equal": max_abs(state, ref) == 0.0, "spec": str(kernel.sharding.spec),
          "shard": list(kernel.addressable_shards[0].data.shape),
          "predict": float(np.max(np.abs(np.asarray(out) - np.asarray(axon.predict(model, ref, np.ones((16, 64), np.float32)))))),
          "table": axon.display.as_table_str(model, axon.template((1, 64)), state=state),
          "plain_table": axon.display.as_table_str(model, axon.template((1, 64)), state=ref)}
"""
    )
    assert result["equal"]
    assert result["spec"] == "P(None, 'data')" and result["shard"] == [64, 64]
    assert result["predict"] < 1e-5
    # the table shows each parameter's layout when the state spans devices, and only then
    header = result["table"].splitlines()[2]
    assert "Sharding" in header and "kernel: P(None, 'data')" in result["table"] and "bias: P()" in result["table"]
    assert "Sharding" not in result["plain_table"]


def test_distributed_predict_works_out_the_state_shardings_once_per_layout():
    result = run_on_devices(COMMON + """
import dataclasses

calls = []

@dataclasses.dataclass(frozen=True)
class Counting(dist.FSDP):
    def state_shardings(self, tree):
        calls.append(1)
        return super().state_shardings(tree)

model = axon.input("x", shape=(None, 64)).pipe(axon.dense, 512).pipe(axon.dense, 10)
ref = axon.init(model)
init_fn, predict_fn = axon.build(model, distribution=Counting(min_size=1024))
state = init_fn()
after_init = len(calls)
batch = np.ones((16, 64), np.float32)
outs = [predict_fn(state, batch), predict_fn(state, batch), predict_fn(ref, batch)]  # ref: one device
after_predicts = len(calls)
host = jax.tree_util.tree_map(np.asarray, ref.data)  # a plain dict of host arrays: another structure
outs.append(predict_fn(host, batch))
expected = np.asarray(axon.predict(model, ref, batch))
result = {"init": after_init, "predicts": after_predicts - after_init, "dict": len(calls) - after_predicts,
          "diffs": [float(np.max(np.abs(np.asarray(o) - expected))) for o in outs]}
"""
    )
    # the shardings of a state layout are worked out once: three calls with one structure and
    # shapes (sharded or not), one more for a plain dict; the results are unchanged
    assert result["predicts"] == 1 and result["dict"] == 1
    assert max(result["diffs"]) < 1e-5


def test_fsdp_state_saved_restores_on_one_device_and_on_a_2x4_mesh(tmp_path):
    path = tmp_path / "fsdp.safetensors"
    result = run_on_devices(COMMON + f"""
model = mlp()
state = (axon.loop.trainer(model, "categorical_cross_entropy", "adam", log=0, distribution=dist.FSDP(min_size=512))
         .run((x, y), batch_size=16, epochs=1))
axon.save_state({str(path)!r}, state)
loaded = axon.load_state({str(path)!r})
mp = dist.ModelParallel(dist.mesh({{"data": 2, "model": 4}}), [(r"dense_0\\.kernel", (None, "model"))])
on_mesh = mp.place_state(loaded)
result = {{"one_device": max_abs(loaded, state), "mesh": max_abs(on_mesh, state),
          "spec": str(on_mesh["dense_0"]["kernel"].sharding.spec)}}
np.savez({str(tmp_path / "ref.npz")!r}, **{{f"l{{i}}": v for i, v in enumerate(leaves(state))}})
"""
    )
    assert result["one_device"] == 0.0 and result["mesh"] == 0.0
    assert result["spec"] == "P(None, 'model')"
    # and this single-device process reads the same values
    ref = np.load(tmp_path / "ref.npz")
    loaded = axon.load_state(str(path))
    import jax

    for i, leaf in enumerate(jax.tree_util.tree_leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(leaf), ref[f"l{i}"])


def test_resume_from_a_checkpoint_under_fsdp_is_bit_identical(tmp_path):
    result = run_on_devices(COMMON + f"""
model = mlp()
def trainer():
    return axon.loop.trainer(model, "categorical_cross_entropy", "adam", log=0, distribution=dist.FSDP(min_size=512))
full = trainer().run((x, y), batch_size=16, epochs=2)
trainer().checkpoint(path={str(tmp_path)!r}, event="epoch_completed").run((x, y), batch_size=16, epochs=1)
files = sorted(f for f in __import__("os").listdir({str(tmp_path)!r}) if not f.startswith("."))
saved = axon.loop.deserialize_state(open(__import__("os").path.join({str(tmp_path)!r}, files[-1]), "rb").read())
resumed = trainer().from_state(saved).run((x, y), batch_size=16, epochs=1)
result = {{"diff": max_abs(resumed, full), "files": files,
          "spec": str(resumed["dense_0"]["kernel"].sharding.spec)}}
"""
    )
    assert result["diff"] == 0.0, result
    assert result["spec"] == "P(None, 'data')"


def test_bad_distribution_input_is_clear():
    result = run_on_devices(COMMON + """
result = {}
try:
    (axon.loop.trainer(mlp(), "categorical_cross_entropy", "adam", log=0, distribution=dist.DataParallel())
     .run((x[:12], y[:12]), batch_size=12, epochs=1))
except dist.DistributedError as e:
    result["batch"] = str(e)
try:
    axon.build(mlp(), distribution="data")
except TypeError as e:
    result["type"] = str(e)
"""
    )
    assert "12 rows" in result["batch"] and "'data'" in result["batch"] and "size 8" in result["batch"]
    assert "expected distribution to be a strategy from axon.distributed" in result["type"]


def test_two_processes_train_and_checkpoint_like_one(tmp_path):
    """Two processes (2 CPU devices each) joined by jax.distributed train with DataParallel
    on the same global batches as a one-process run, and checkpoint from the main process."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(f"""
        import axon.distributed as dist
        dist.initialize()
        import numpy as np, axon
        rng = np.random.default_rng(0)
        x = rng.normal(size=(64, 16)).astype(np.float32)
        y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 64)]
        model = axon.input("x", shape=(None, 16)).pipe(axon.dense, 32, activation="relu").pipe(axon.dense, 4, activation="softmax")
        state = (axon.loop.trainer(model, "categorical_cross_entropy", axon.optimizers.adam(1e-2), log=0,
                                   distribution=dist.FSDP(min_size=64))
                 .checkpoint(path={str(tmp_path / "ckpt")!r}, event="epoch_completed")
                 .run((x, y), batch_size=16, epochs=2))
        axon.save_state({str(tmp_path / "final.safetensors")!r}, state)
        print("done", dist.process_index())
    """))
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "axon.distributed.launch", "--nprocs", "2", "--devices-per-process", "2", str(script)],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "[rank 0] done 0" in proc.stdout and "[rank 1] done 1" in proc.stdout
    checkpoints = sorted(os.listdir(tmp_path / "ckpt"))
    assert len([f for f in checkpoints if not f.startswith(".")]) == 2

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 16)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 64)]
    model = axon.input("x", shape=(None, 16)).pipe(axon.dense, 32, activation="relu").pipe(axon.dense, 4, activation="softmax")
    ref = axon.loop.trainer(model, "categorical_cross_entropy", axon.optimizers.adam(1e-2), log=0).run((x, y), batch_size=16, epochs=2)
    got = axon.load_state(str(tmp_path / "final.safetensors"))
    for layer in ("dense_0", "dense_1"):
        for name in ("kernel", "bias"):
            np.testing.assert_allclose(np.asarray(got[layer][name]), np.asarray(ref[layer][name]), rtol=1e-5, atol=1e-6)
