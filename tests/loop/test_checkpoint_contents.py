"""A checkpoint opened for its contents: ``deserialize_state(data).step_state["model_state"]``
is a real ModelState that predicts like the trained one; old (version 1) files still load and
resume bit for bit."""

import json
import os
import struct

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import axon
from axon.loop import LoopState

RNG = np.random.default_rng(1)
X = RNG.normal(size=(32, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-1.0], [2.0]], np.float32)).astype(np.float32)
_PREFIX = struct.Struct("<8sIQ")


def _model():
    return axon.input("x", shape=(None, 3)).pipe(axon.dense, 4).pipe(axon.batch_norm).pipe(axon.relu).pipe(axon.dense, 1)


def _trainer(model):
    return axon.loop.trainer(model, "mean_squared_error", optax.adam(1e-2), seed=0, log=0)


def test_a_checkpoint_gives_back_a_model_state_that_predicts(tmp_path):
    model = _model()
    final = _trainer(model).checkpoint(path=str(tmp_path)).run((X, Y), batch_size=8, epochs=1, return_state=True)
    (name,) = os.listdir(tmp_path)
    loaded = axon.loop.load_checkpoint(str(tmp_path / name))
    ms = loaded.step_state["model_state"]
    assert type(ms) is not dict and isinstance(ms, axon.ModelState)
    trained = final.step_state["model_state"]
    assert ms.parameter_paths == trained.parameter_paths and ms.state_paths == trained.state_paths
    assert ("batch_norm_0", "mean") in ms.state_paths
    for a, b in zip(jax.tree_util.tree_leaves(trained), jax.tree_util.tree_leaves(ms)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the checkpoint's state predicts exactly like the trained one, and like numpy on its values
    x = X[:5]
    expected = np.asarray(axon.predict(model, trained, x))
    got = np.asarray(axon.predict(model, ms, x))
    np.testing.assert_array_equal(got, expected)
    p = {k: {n: np.asarray(v, np.float64) for n, v in layer.items()} for k, layer in ms.data.items()}
    h = x @ p["dense_0"]["kernel"] + p["dense_0"]["bias"]
    bn = p["batch_norm_0"]
    h = (h - bn["mean"]) / np.sqrt(bn["var"] + 1e-5) * bn["gamma"] + bn["beta"]
    ref = np.maximum(h, 0) @ p["dense_1"]["kernel"] + p["dense_1"]["bias"]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    # the optimizer state comes back as plain tuples of the same arrays
    opt = loaded.step_state["optimizer_state"]
    assert isinstance(opt, tuple)
    flat_opt = jax.tree_util.tree_leaves(opt)
    assert len(flat_opt) == len(jax.tree_util.tree_leaves(final.step_state["optimizer_state"]))
    # a loaded step state is a pytree like the dict it was
    assert jax.tree_util.tree_structure(jax.tree_util.tree_map(lambda a: 0, loaded.step_state["model_state"])) == \
        jax.tree_util.tree_structure(jax.tree_util.tree_map(lambda a: 0, trained))


def test_a_custom_loop_state_of_tuples_and_scalars():
    def init(batch, state):
        return (jnp.zeros(2), {"g": jnp.ones(()), "d": [jnp.zeros(1), None]})

    def step(state, batch):
        a, b = state
        return (a + 1, {"g": b["g"] * 2, "d": [b["d"][0] - 1, None]})

    final = axon.loop.loop(step, init).run([(np.ones(2), np.ones(2))] * 3, epochs=1, return_state=True, progress=False)
    loaded = axon.loop.deserialize_state(axon.loop.serialize_state(final))
    a, b = loaded.step_state
    assert a.tolist() == [3.0, 3.0] and float(b["g"]) == 8.0 and b["d"][0].tolist() == [-3.0] and b["d"][1] is None
    scalar = axon.loop.deserialize_state(axon.loop.serialize_state(LoopState(step_state=jnp.int32(4))))
    assert int(scalar.step_state.value) == 4
    # a loaded step state is written back as it was read, and is a pytree of plain containers
    again = axon.loop.deserialize_state(axon.loop.serialize_state(loaded))
    assert again.step_state[1]["d"][0].tolist() == [-3.0] and again.step_state.saved_keys == loaded.step_state.saved_keys
    mapped = jax.tree_util.tree_map(lambda v: v * 0, loaded.step_state)
    assert type(mapped) is tuple and type(mapped[1]) is dict and mapped[0].tolist() == [0.0, 0.0]


def _as_version_1(data):
    """The same checkpoint as format version 1 wrote it (no structure in the header)."""
    magic, _, n = _PREFIX.unpack_from(data)
    header = json.loads(data[_PREFIX.size : _PREFIX.size + n])
    header["version"] = 1
    del header["step_state"]["tree"]
    text = json.dumps(header).encode()
    return _PREFIX.pack(magic, 1, len(text)) + text + data[_PREFIX.size + n :]


def test_version_1_checkpoints_still_load_and_resume_bit_for_bit():
    model = _model()
    after_one = _trainer(model).run((X, Y), batch_size=8, epochs=1, return_state=True)
    new = axon.loop.serialize_state(after_one)
    old = _as_version_1(new)
    loaded_old, loaded_new = axon.loop.deserialize_state(old), axon.loop.deserialize_state(new)
    ms = loaded_old.step_state["model_state"]
    assert isinstance(ms, axon.ModelState) and ms.state_paths == after_one.step_state["model_state"].state_paths
    np.testing.assert_array_equal(np.asarray(axon.predict(model, ms, X[:3])),
                                  np.asarray(axon.predict(model, after_one.step_state["model_state"], X[:3])))
    full = _trainer(model).run((X, Y), batch_size=8, epochs=2, return_state=True)
    for loaded in (loaded_old, loaded_new):
        resumed = _trainer(model).from_state(loaded).run((X, Y), batch_size=8, epochs=1, return_state=True)
        for a, b in zip(jax.tree_util.tree_leaves(full.step_state), jax.tree_util.tree_leaves(resumed.step_state)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the loop copied the arrays it resumed from: the loaded state is still readable
    assert np.isfinite(np.asarray(loaded_new.step_state["model_state"]["dense_0"]["kernel"])).all()


def test_a_structure_that_does_not_fit_its_arrays_is_rejected():
    data = axon.loop.serialize_state(LoopState(step_state={"w": jnp.ones(2), "v": jnp.ones(1)}))
    magic, version, n = _PREFIX.unpack_from(data)
    header = json.loads(data[_PREFIX.size : _PREFIX.size + n])
    header["step_state"]["tree"] = {"dict": [["v", {"leaf": 0}]]}
    text = json.dumps(header).encode()
    with pytest.raises(axon.serialization.SerializationError, match=r"field 'step_state'\['tree'\]: the structure holds 1 arrays, the file 2"):
        axon.loop.deserialize_state(_PREFIX.pack(magic, version, len(text)) + text + data[_PREFIX.size + n :])
