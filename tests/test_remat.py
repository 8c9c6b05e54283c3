"""Rematerialized blocks (axon.remat, block(remat=...)): the same outputs and gradients as
without remat (checked against a hand-written JAX model too), a checkpoint in the jaxpr,
layer state still updated, options saved and loaded, bad policies rejected."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon


def two_layer(x):
    return axon.dense(axon.gelu(axon.dense(x, 8, name="up")), 4, name="down")


def model(remat):
    x = axon.input("x", shape=(None, 4))
    blk = axon.block(two_layer, name="mlp", remat=remat)
    return axon.add(blk(x), blk(axon.tanh(x))).pipe(axon.dense, 1, name="head")


def loss_and_grads(m, x):
    init_fn, predict_fn = axon.build(m)
    state = init_fn(axon.template((1, 4)))

    def loss(p):
        return jnp.sum(predict_fn(state.update(p), x) ** 2)

    return state, jax.value_and_grad(loss)(state.trainable_parameters()), loss


X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)


@pytest.mark.parametrize("policy", [True, "dots_saveable"])
def test_gradients_equal_without_remat_and_a_hand_written_model(policy):
    state, (value, grads), _ = loss_and_grads(model(False), X)
    _, (value_r, grads_r), _ = loss_and_grads(model(policy), X)
    assert float(value_r) == pytest.approx(float(value), rel=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(grads_r)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)

    # independent reference: the same network written with jax.numpy
    def hand(p, x):
        def mlp(h):
            h = jax.nn.gelu(h @ p["mlp"]["up"]["kernel"] + p["mlp"]["up"]["bias"], approximate=False)
            return h @ p["mlp"]["down"]["kernel"] + p["mlp"]["down"]["bias"]

        y = mlp(x) + mlp(jnp.tanh(x))
        return jnp.sum((y @ p["head"]["kernel"] + p["head"]["bias"]) ** 2)

    ref_value, ref_grads = jax.value_and_grad(hand)(state.data, X)
    assert float(value_r) == pytest.approx(float(ref_value), rel=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(ref_grads), jax.tree_util.tree_leaves(grads_r)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_the_jaxpr_holds_a_checkpoint_only_with_remat():
    for remat, expected in ((False, False), (True, True)):
        state, _, loss = loss_and_grads(model(remat), X)
        text = str(jax.make_jaxpr(jax.grad(loss))(state.trainable_parameters()))
        assert ("checkpoint" in text or "remat" in text) == expected


def test_layer_state_is_updated_inside_a_rematerialized_block():
    x = axon.input("x", shape=(None, 3))
    norm = axon.remat(lambda h: axon.batch_norm(axon.dense(h, 3)), name="normed")
    m = norm(x)
    init_fn, predict_fn = axon.build(m, mode="train")
    state = init_fn(axon.template((4, 3)))
    ref_fn = axon.build(axon.block(lambda h: axon.batch_norm(axon.dense(h, 3)), name="normed")(x), mode="train")[1]
    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    out, ref = predict_fn(state, data), ref_fn(state, data)
    np.testing.assert_allclose(out.prediction, ref.prediction, rtol=1e-6)
    new_mean = out.state["normed"]["batch_norm_0"]["mean"]
    np.testing.assert_allclose(new_mean, ref.state["normed"]["batch_norm_0"]["mean"], rtol=1e-6)
    assert not np.allclose(new_mean, state["normed"]["batch_norm_0"]["mean"])


def test_save_and_load_keep_the_policy(tmp_path):
    m = model("dots_saveable")
    state = axon.init(m, axon.template((1, 4)))
    path = tmp_path / "m.axon"
    axon.save(path, m, state)
    loaded, loaded_state = axon.load(path)
    blocks = [n.opts["block"] for n in loaded.nodes.values() if n.op == "block"]
    assert {b.remat for b in blocks} == {"dots_saveable"}
    fresh, _, loss = loss_and_grads(loaded, X)
    text = str(jax.make_jaxpr(jax.grad(loss))(fresh.trainable_parameters()))
    assert "checkpoint" in text or "remat" in text
    np.testing.assert_allclose(axon.predict(loaded, loaded_state, X), axon.predict(m, state, X), rtol=1e-6)
    plain = model(False)
    axon.save(tmp_path / "p.axon", plain, state)
    assert {n.opts["block"].remat for n in axon.load(tmp_path / "p.axon")[0].nodes.values() if n.op == "block"} == {None}


def test_bad_policies_are_rejected():
    with pytest.raises(ValueError, match="remat.*nothing_saveable"):
        axon.block(two_layer, remat="everything")
    with pytest.raises(ValueError, match="policy"):
        axon.remat(two_layer, policy=True)
