"""map_nodes, reduce_nodes, rewrite_nodes, pop_node, freeze/unfreeze.

References: the seed's examples (replace every relu with tanh, count relus, instrument
layers with hooks); numbers are checked against numpy forward passes written here.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon


def seed_model():
    return (
        axon.input("input", shape=(None, 784))
        .pipe(axon.dense, 128, activation="relu")
        .pipe(axon.batch_norm)
        .pipe(axon.dropout, rate=0.8)
        .pipe(axon.dense, 64)
        .pipe(axon.tanh)
        .pipe(axon.dense, 10)
        .pipe(axon.activation, "softmax")
    )


def relu_mlp():
    return (
        axon.input("x", shape=(None, 3))
        .pipe(axon.dense, 4, activation="relu")
        .pipe(axon.dense, 2, activation="relu")
    )


def numpy_mlp(state, x, act):
    d0, d1 = state["dense_0"], state["dense_1"]
    h = act(x @ np.asarray(d0["kernel"]) + np.asarray(d0["bias"]))
    return act(h @ np.asarray(d1["kernel"]) + np.asarray(d1["bias"]))


X = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)


# -- reduce_nodes ----------------------------------------------------------------------


def test_reduce_nodes_counts_relus_as_in_the_seed():
    count = axon.reduce_nodes(seed_model(), 0, lambda node, acc: acc + 1 if node.op_name == "relu" else acc)
    assert count == 1
    assert axon.reduce_nodes(relu_mlp(), 0, lambda node, acc: acc + (node.op_name == "relu")) == 2


def test_traversal_is_output_first_and_visits_shared_nodes_once():
    x = axon.input("x", shape=(None, 2))
    h = axon.relu(x)
    model = axon.add(axon.tanh(h), axon.sigmoid(h))  # diamond: h has two users
    order = axon.reduce_nodes(model, [], lambda node, acc: [*acc, node.op_name])
    assert order[0] == "add" and order[-1] == "input"
    assert sorted(order) == sorted(["add", "sigmoid", "tanh", "relu", "input"])
    # every node after all of its users
    assert order.index("relu") > order.index("tanh") and order.index("relu") > order.index("sigmoid")


# -- map_nodes -------------------------------------------------------------------------


def test_map_nodes_replaces_relu_with_tanh():
    model = relu_mlp()
    seen = []

    def swap(node):
        seen.append(node.id)
        if node.op_name == "relu":
            return node.replace(op=axon.activations.tanh, op_name="tanh")
        return node

    new = axon.map_nodes(model, swap)
    assert len(seen) == len(set(seen)) == 5
    assert axon.get_op_counts(new) == {"input": 1, "dense": 2, "tanh": 2}
    assert axon.get_op_counts(model) == {"input": 1, "dense": 2, "relu": 2}  # original unchanged
    state = axon.init(new, axon.template((1, 3)))
    np.testing.assert_allclose(axon.predict(new, state, X), numpy_mlp(state, X, np.tanh), rtol=1e-5, atol=1e-6)


def test_map_nodes_instruments_layers_with_hooks():
    seen = []
    model = relu_mlp()
    instrumented = axon.map_nodes(
        model,
        lambda node: axon.attach_hook(node, lambda v: seen.append(np.asarray(v).shape)) if node.op_name == "dense" else node,
    )
    state = axon.init(instrumented, axon.template((1, 3)))
    axon.predict(instrumented, state, X)
    jax.effects_barrier()
    assert seen == [(5, 4), (5, 2)]


def test_map_nodes_errors():
    with pytest.raises(TypeError, match="must return an axon.Node"):
        axon.map_nodes(relu_mlp(), lambda node: None)
    with pytest.raises(ValueError, match="not in the graph"):
        axon.map_nodes(relu_mlp(), lambda node: node.replace(parents=(10**9,)) if node.op_name == "dense" else node)
    with pytest.raises(TypeError, match="axon graph"):
        axon.map_nodes("model", lambda node: node)


# -- rewrite_nodes ---------------------------------------------------------------------


def to_tanh(node):
    if node.op_name == "relu":
        return lambda parents, output: axon.tanh(parents[0])
    return None


def test_rewrite_nodes_replaces_relu_with_a_new_tanh_layer():
    new = axon.rewrite_nodes(relu_mlp(), to_tanh)
    assert axon.properties(new) == {"x": "input", "dense_0": "dense", "tanh_0": "tanh", "dense_1": "dense", "tanh_1": "tanh"}
    assert len(new.nodes) == 5  # the relus are gone from the node table
    state = axon.init(new, axon.template((1, 3)))
    np.testing.assert_allclose(axon.predict(new, state, X), numpy_mlp(state, X, np.tanh), rtol=1e-5, atol=1e-6)


def test_rewrite_nodes_lora_style_branch_uses_the_original_node():
    def lora(node):
        if node.op_name != "dense" or node.name is not None:
            return None

        def rewriter(parents, output):
            down = axon.dense(parents[0], 1, use_bias=False, name=lambda op, counts: f"lora_down_{counts.get('lora', 0)}")
            up = axon.dense(down, 4, use_bias=False, kernel_initializer="zeros", name="lora_up")
            return axon.add(output, up)

        return rewriter

    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 4)
    new = axon.rewrite_nodes(model, lora)
    assert axon.get_op_counts(new) == {"input": 1, "dense": 3, "add": 1}
    state = axon.init(new, axon.template((1, 3)))
    assert set(state.keys()) == {"dense_0", "lora_down_0", "lora_up"}
    d = state["dense_0"]
    up = np.random.default_rng(1).normal(size=(1, 4)).astype(np.float32)
    state = state.update({"lora_up": {"kernel": jnp.asarray(up)}})
    expected = X @ np.asarray(d["kernel"]) + np.asarray(d["bias"]) + (X @ np.asarray(state["lora_down_0"]["kernel"])) @ up
    np.testing.assert_allclose(axon.predict(new, state, X), expected, rtol=1e-5, atol=1e-5)


def test_rewrite_nodes_can_remove_a_node_and_skip_others():
    model = relu_mlp()
    removed = axon.rewrite_nodes(model, lambda n: (lambda parents, output: parents[0]) if n.op_name == "relu" else None)
    assert axon.get_op_counts(removed) == {"input": 1, "dense": 2}
    state = axon.init(removed, axon.template((1, 3)))
    np.testing.assert_allclose(axon.predict(removed, state, X), numpy_mlp(state, X, lambda v: v), rtol=1e-5, atol=1e-6)
    same = axon.rewrite_nodes(model, lambda n: None)
    assert axon.properties(same) == axon.properties(model)
    identity = axon.rewrite_nodes(model, lambda n: lambda parents, output: output)
    assert axon.properties(identity) == axon.properties(model)


def test_rewrite_nodes_rewrites_a_node_used_twice_once():
    x = axon.input("x", shape=(None, 2))
    h = axon.relu(x)
    model = axon.add(h, h)
    new = axon.rewrite_nodes(model, to_tanh)
    assert axon.get_op_counts(new) == {"input": 1, "tanh": 1, "add": 1}
    out = axon.predict(new, {}, jnp.array([[0.5, -1.0]]))
    np.testing.assert_allclose(out, 2 * np.tanh([[0.5, -1.0]]), rtol=1e-6)


def test_rewrite_nodes_errors():
    with pytest.raises(TypeError, match="None or a function"):
        axon.rewrite_nodes(relu_mlp(), lambda n: "tanh")
    with pytest.raises(TypeError, match="must return an axon graph"):
        axon.rewrite_nodes(relu_mlp(), lambda n: (lambda parents, output: None))


# -- pop_node --------------------------------------------------------------------------


def test_pop_node_single_multiple_and_container():
    node, rest = axon.pop_node(seed_model())
    assert node.op_name == "softmax"
    assert isinstance(rest, axon.Axon) and rest.output_name == "dense_2"
    assert len(rest.nodes) == 8

    a, b = axon.input("a", shape=(None, 1)), axon.input("b", shape=(None, 1))
    node, rest = axon.pop_node(axon.add(a, b))
    assert node.op_name == "add"
    assert [g.output_name for g in rest] == ["a", "b"]

    node, rest = axon.pop_node(axon.container({"x": a, "y": (b, a)}))
    assert node.op_name == "container"
    assert rest["x"].output_name == "a" and rest["y"][0].output_name == "b" and rest["y"][1].output_name == "a"

    node, rest = axon.pop_node(a)
    assert node.op == "input" and rest == []


# -- freeze / unfreeze -----------------------------------------------------------------


def mlp3():
    return (
        axon.input("x", shape=(None, 3))
        .pipe(axon.dense, 4)
        .pipe(axon.relu)
        .pipe(axon.dense, 2)
    )


def frozen_layers(model):
    state = axon.init(model, axon.template((1, 3)))
    return sorted({p[0] for p in state.frozen_paths}), state


def grads(model, state):
    _, predict_fn = axon.build(model)

    def loss(params):
        return jnp.sum(predict_fn(state.update(params), X) ** 2)

    return jax.grad(loss)(state.trainable_parameters() | state.frozen_parameters())


def test_freeze_all_stops_gradients():
    model = axon.freeze(mlp3())
    layers, state = frozen_layers(model)
    assert layers == ["dense_0", "dense_1"]
    assert state.trainable_parameters() == {}
    g = grads(model, state)
    for leaf in jax.tree_util.tree_leaves(g):
        assert np.all(np.asarray(leaf) == 0)


def frozen_flags(model):
    """Layer names whose parameters are all frozen, read off the graph."""
    names = axon.graph.layer_names(model)
    return sorted(
        names[n.id][1]
        for n in (model.nodes[i] for i in axon.graph.topological_order(model))
        if n.parameters and all(p.frozen for p in n.parameters)
    )


def test_freeze_up_and_down_follow_axon_output_first_split():
    # output-first order: dense_1, relu_0, dense_0, x
    assert frozen_flags(axon.freeze(mlp3(), {"up": 1})) == ["dense_1"]
    assert frozen_flags(axon.freeze(mlp3(), {"up": 2})) == ["dense_1"]
    assert frozen_flags(axon.freeze(mlp3(), {"down": 2})) == ["dense_0"]
    assert frozen_flags(axon.freeze(mlp3(), {"down": 1})) == []
    assert frozen_flags(axon.freeze(mlp3(), {"up": 0})) == []
    assert frozen_flags(axon.freeze(mlp3(), {"up": 4})) == ["dense_0", "dense_1"]
    model = axon.freeze(mlp3(), {"down": 2})
    _, state = frozen_layers(model)
    g = grads(model, state)
    assert np.all(np.asarray(g["dense_0"]["kernel"]) == 0)
    assert np.any(np.asarray(g["dense_1"]["kernel"]) != 0)


def test_freeze_with_predicate_and_unfreeze():
    model = axon.freeze(mlp3(), lambda p: p.name == "kernel")
    _, state = frozen_layers(model)
    assert state.frozen_paths == {("dense_0", "kernel"), ("dense_1", "kernel")}
    _, state = frozen_layers(axon.unfreeze(model, {"up": 1}))
    assert state.frozen_paths == {("dense_0", "kernel")}
    _, state = frozen_layers(axon.unfreeze(model))
    assert state.frozen_paths == frozenset()


def test_freeze_reaches_into_blocks():
    shared = axon.block(lambda x: axon.dense(x, 3))
    x = axon.input("x", shape=(None, 3))
    model = axon.dense(axon.add(shared(x), shared(axon.relu(x))), 2)
    _, state = frozen_layers(axon.freeze(model, lambda p: True))
    assert ("block_0", "dense_0", "kernel") in state.frozen_paths
    _, state = frozen_layers(axon.freeze(model, {"up": 2}))  # dense_0 and add_0
    assert state.frozen_paths == {("dense_0", "kernel"), ("dense_0", "bias")}
    _, state = frozen_layers(axon.freeze(model, {"up": 3}))  # ... and the last block call
    assert {p[0] for p in state.frozen_paths} == {"dense_0", "block_0"}


def test_freeze_rejects_bad_specs():
    for spec in ("some", {"up": -1}, {"sideways": 1}, {"up": 1.5}, 3):
        with pytest.raises(ValueError, match="spec|non-negative"):
            axon.freeze(mlp3(), spec)
