"""Inputs that used to give silently wrong results: out-of-vocabulary embedding ids (NaN
rows), rank-1 inputs to dense/flatten (an unbatched result), and an unknown activation
whose error did not name the layer."""

import jax.numpy as jnp
import numpy as np
import pytest

import axon


def test_embedding_clamps_out_of_range_ids_like_numpys_clipped_take():
    model = axon.input("ids", shape=(None, 6)).pipe(axon.embedding, 4, 3)
    state = axon.init(model, axon.template((1, 6), "s32"))
    ids = np.array([[-5, -1, 0, 3, 4, 1000]], dtype=np.int32)
    out = np.asarray(axon.predict(model, state, ids))
    kernel = np.asarray(state["embedding_0"]["kernel"])
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out, np.take(kernel, ids, axis=0, mode="clip"))
    np.testing.assert_array_equal(out[0, 5], kernel[-1])
    np.testing.assert_array_equal(out[0, 0], kernel[0])


@pytest.mark.parametrize("constructor", [lambda x: axon.dense(x, 2), axon.flatten])
def test_dense_and_flatten_reject_a_rank_1_input_naming_the_layer(constructor):
    model = constructor(axon.input("x"))
    name = model.node.op_name
    with pytest.raises(axon.CompileError, match=rf"'{name}_0'[\s\S]*{name}: expected an input of rank >= 2 \(batch, features\), got shape \(3,\)"):
        axon.init(model, axon.template((3,)))
    with pytest.raises(axon.CompileError, match=r"got shape \(3,\)"):
        axon.predict(model, axon.init(model, axon.template((1, 3))), jnp.ones(3))
    # rank 2 is fine: (batch, features)
    assert axon.get_output_shape(model, axon.template((4, 3)))[0] == 4


@pytest.mark.parametrize(
    ("build", "label"),
    [
        (lambda x: axon.dense(x, 2, activation="bogus"), "dense"),
        (lambda x: axon.dense(x, 2, activation="bogus", name="encoder"), "dense 'encoder'"),
        (lambda x: axon.bilinear(x, x, 2, activation="bogus"), "bilinear"),
        (lambda x: axon.conv(x, 2, activation="bogus"), "conv"),
        (lambda x: axon.conv_transpose(x, 2, activation="bogus", name="up"), "conv_transpose 'up'"),
        (lambda x: axon.depthwise_conv(x, 2, activation="bogus"), "depthwise_conv"),
        (lambda x: axon.activation(x, "bogus"), "activation"),
        (lambda x: axon.activation(x, "bogus", name="act"), "activation 'act'"),
    ],
)
def test_an_unknown_activation_names_the_layer(build, label):
    with pytest.raises(ValueError, match=rf"^{label}: unknown activation 'bogus'; expected a callable or one of: 'celu'"):
        build(axon.input("x", shape=(None, 4, 4, 3)))


def test_an_activation_that_is_not_a_name_or_function_names_the_layer():
    with pytest.raises(TypeError, match=r"^dense: expected an activation name or a callable, got int 3"):
        axon.dense(axon.input("x"), 2, activation=3)
