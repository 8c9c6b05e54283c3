"""ModelState: pytree behaviour, trainable/state/frozen views, update, freeze, repr."""

import jax
import jax.numpy as jnp
import numpy as np

import axon


def bn_model():
    return axon.input("x", shape=(None, 3)).pipe(axon.dense, 4).pipe(axon.batch_norm)


def test_init_records_parameters_and_state():
    state = axon.init(bn_model(), axon.template((2, 3)))
    assert ("batch_norm_0", "mean") in state.state_paths
    assert ("dense_0", "kernel") in state.parameter_paths
    assert sorted(state.trainable_parameters()) == ["batch_norm_0", "dense_0"]
    assert sorted(state.trainable_parameters()["batch_norm_0"]) == ["beta", "gamma"]
    assert sorted(state.trainable_state()["batch_norm_0"]) == ["mean", "var"]


def test_is_a_pytree_over_data_only():
    state = axon.init(bn_model(), axon.template((2, 3)))
    leaves = jax.tree_util.tree_leaves(state)
    assert len(leaves) == 6
    doubled = jax.tree_util.tree_map(lambda x: x * 2, state)
    assert isinstance(doubled, axon.ModelState)
    assert doubled.state_paths == state.state_paths
    np.testing.assert_array_equal(doubled["batch_norm_0"]["var"], 2 * np.ones(4))
    # passes through jit unchanged
    out = jax.jit(lambda s: s)(state)
    assert out.parameter_paths == state.parameter_paths


def test_freeze_and_unfreeze_with_path_predicates():
    state = axon.init(bn_model(), axon.template((2, 3)))
    frozen = state.freeze(lambda path: path[0] == "dense_0")
    assert sorted(frozen.trainable_parameters()) == ["batch_norm_0"]
    assert sorted(frozen.frozen_parameters()["dense_0"]) == ["bias", "kernel"]
    # freezing adds to the frozen set
    both = frozen.freeze(lambda path: path[-1] == "gamma")
    assert sorted(both.trainable_parameters()["batch_norm_0"]) == ["beta"]
    assert both.unfreeze().frozen_paths == frozenset()
    all_frozen = state.freeze()
    assert all_frozen.trainable_parameters() == {}
    assert sorted(all_frozen.frozen_state()["batch_norm_0"]) == ["mean", "var"]


def test_update_skips_frozen_state():
    state = axon.init(bn_model(), axon.template((2, 3))).freeze(lambda p: p == ("batch_norm_0", "mean"))
    new = state.update(state={"batch_norm_0": {"mean": jnp.ones(4), "var": jnp.zeros(4)}})
    np.testing.assert_array_equal(new["batch_norm_0"]["mean"], np.zeros(4))
    np.testing.assert_array_equal(new["batch_norm_0"]["var"], np.zeros(4))


def test_frozen_parameters_get_no_gradient_in_training():
    init_fn, predict_fn = axon.build(bn_model(), mode="train")
    state = init_fn(axon.template((2, 3))).freeze(lambda p: p[0] == "dense_0")
    grads = jax.grad(lambda p: jnp.sum(predict_fn(state.update(p), jnp.ones((2, 3))).prediction ** 2))(
        state.trainable_parameters()
    )
    assert "dense_0" not in grads


def test_plain_dicts_and_counts_and_repr():
    state = axon.ModelState({"d": {"kernel": jnp.ones((3, 4)), "bias": jnp.zeros(4)}})
    assert state.parameter_count == 16
    assert state.nbytes == 64
    text = repr(state)
    assert "parameters: 16 (64 B)" in text and "trainable parameters: 16 (64 B)" in text
    assert axon.ModelState.new(state) is state
    assert axon.ModelState.empty().data == {}


def test_merge():
    a = axon.ModelState({"x": {"w": jnp.ones(1)}})
    b = axon.ModelState({"y": {"w": jnp.zeros(1)}})
    merged = a.merge(b)
    assert sorted(merged.keys()) == ["x", "y"]
    summed = a.merge(a, lambda k, l, r: l + r)
    assert summed["x"]["w"].tolist() == [2.0]
