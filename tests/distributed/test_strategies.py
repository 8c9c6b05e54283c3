"""Meshes and strategies on 8 forced CPU devices: which leaves are sharded how, and errors."""

from __future__ import annotations

import numpy as np
import pytest

import axon.distributed as dist
from tests.distributed.multidevice import run_on_devices


def test_mesh_sizes_and_strategy_shardings_on_eight_devices():
    result = run_on_devices(
        """
        import jax, numpy as np, optax
        import axon, axon.distributed as dist
        from jax.sharding import PartitionSpec as P

        result = {}
        m = dist.mesh({"data": 2, "model": -1})
        result["mesh"] = dict(m.shape)
        result["types"] = [str(t) for t in m.axis_types]

        model = axon.input("x", shape=(None, 64)).pipe(axon.dense, 512).pipe(axon.dense, 10)
        state = axon.init(model, axon.template((1, 64)))
        fsdp = dist.FSDP(min_size=1024)
        sh = fsdp.state_shardings(state)
        result["fsdp"] = {f"{l}.{p}": str(sh.data[l][p].spec) for l in sh.data for p in sh.data[l]}
        placed = jax.device_put(state, sh)
        k = placed["dense_0"]["kernel"]
        result["fsdp_shard_shapes"] = sorted({tuple(s.data.shape) for s in k.addressable_shards})
        result["fsdp_shard_count"] = len(k.addressable_shards)

        opt = optax.adam(1e-3).init(state.trainable_parameters())
        osh = fsdp.state_shardings(opt)
        result["fsdp_mu"] = str(osh[0].mu["dense_0"]["kernel"].spec)

        mp = dist.ModelParallel(m, [(r"dense_0\\.kernel", (None, "model")), (r"dense_1\\.kernel", ("model", None))])
        msh = mp.state_shardings(state)
        result["mp"] = {f"{l}.{p}": str(msh.data[l][p].spec) for l in msh.data for p in msh.data[l]}
        result["mp_nu"] = str(mp.state_shardings(opt)[0].nu["dense_1"]["kernel"].spec)

        dp = dist.DataParallel(m)
        x = dp.shard_batch(np.arange(16 * 3, dtype=np.float32).reshape(16, 3))
        result["dp_batch"] = [str(x.sharding.spec), sorted({tuple(s.data.shape) for s in x.addressable_shards})]
        result["dp_values"] = np.asarray(x).tolist() == np.arange(48, dtype=np.float32).reshape(16, 3).tolist()
        try:
            dp.shard_batch(np.zeros((3, 2)))
        except dist.DistributedError as e:
            result["indivisible"] = str(e)
        """
    )
    assert result["mesh"] == {"data": 2, "model": 4}
    assert all("Auto" in t for t in result["types"])
    # dense_0.kernel is 64x512 = 32768 >= 1024: split on its largest divisible dim (512) over 8 devices
    assert result["fsdp"]["dense_0.kernel"] == "P(None, 'data')"
    assert result["fsdp"]["dense_0.bias"] == "P()"  # 512 elements < min_size
    assert result["fsdp"]["dense_1.kernel"] == "P('data', None)"  # 512x10: 512 divides by 8
    assert result["fsdp_shard_shapes"] == [[64, 64]] and result["fsdp_shard_count"] == 8
    assert result["fsdp_mu"] == "P(None, 'data')"
    assert result["mp"]["dense_0.kernel"] == "P(None, 'model')"
    assert result["mp"]["dense_1.kernel"] == "P('model', None)"
    assert result["mp"]["dense_0.bias"] == "P()"
    assert result["mp_nu"] == "P('model', None)"
    assert result["dp_batch"] == ["P('data',)", [[8, 3]]]
    assert result["dp_values"]
    assert "3 rows" in result["indivisible"] and "'data'" in result["indivisible"] and "size 2" in result["indivisible"]


def test_model_parallel_errors_name_the_parameter_and_axis():
    result = run_on_devices(
        """
        import warnings
        import axon, axon.distributed as dist
        result = {}
        m = dist.mesh({"data": 2, "model": 4})
        try:
            dist.ModelParallel(m, [(r"kernel", (None, "tensor"))])
        except dist.DistributedError as e:
            result["unknown_axis"] = str(e)
        state = axon.init(axon.input("x", shape=(None, 3)).pipe(axon.dense, 6), axon.template((1, 3)))
        try:
            dist.ModelParallel(m, [(r"dense_0\\.kernel", (None, "model"))]).state_shardings(state)
        except dist.DistributedError as e:
            result["indivisible"] = str(e)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            dist.ModelParallel(m, [(r"conv_\\d+", (None, "model"))]).state_shardings(state)
        result["unmatched"] = [str(x.message) for x in w]
        """
    )
    assert "'tensor'" in result["unknown_axis"] and "('data', 'model')" in result["unknown_axis"]
    assert "'dense_0.kernel'" in result["indivisible"] and "(3, 6)" in result["indivisible"] and "6" in result["indivisible"]
    assert len(result["unmatched"]) == 1 and "conv_\\d+" in result["unmatched"][0] and "dense_0.kernel" in result["unmatched"][0]


def test_mesh_rejects_bad_axes():
    with pytest.raises(dist.DistributedError, match="at most one axis"):
        dist.mesh({"a": -1, "b": -1})
    with pytest.raises(dist.DistributedError, match="positive size"):
        dist.mesh({"a": 0})
    with pytest.raises(dist.DistributedError, match="need 3 devices"):
        dist.mesh({"a": 3}, devices=[object()])
    with pytest.raises(dist.DistributedError, match="mesh"):
        dist.DataParallel(mesh="data")


def test_initialize_reads_the_launcher_environment_and_checks_it(monkeypatch):
    from axon.distributed import runtime

    monkeypatch.setenv(runtime.ENV_NUM_PROCESSES, "two")
    with pytest.raises(dist.DistributedError, match="AXON_NUM_PROCESSES"):
        runtime._settings_from_env(__import__("os").environ)
    env = {runtime.ENV_COORDINATOR: "127.0.0.1:1234", runtime.ENV_NUM_PROCESSES: "4", runtime.ENV_PROCESS_ID: "2",
           runtime.ENV_LOCAL_DEVICE_IDS: "0,1"}
    assert runtime._settings_from_env(env) == {
        "coordinator_address": "127.0.0.1:1234", "num_processes": 4, "process_id": 2, "local_device_ids": [0, 1]}


def test_initialize_after_jax_started_says_what_to_do():
    import jax.numpy as jnp

    np.asarray(jnp.ones(1))  # JAX's backend is running in this test process
    with pytest.raises(dist.DistributedError, match="first thing in the program"):
        dist.initialize(coordinator_address="127.0.0.1:1", num_processes=2, process_id=0)
