"""Graph construction, naming, repr, containers, optional inputs, blocks and namespaces."""

import jax.numpy as jnp
import numpy as np
import pytest

import axon


def seed_model():
    # The model of the seed's "Model Creation" section, without batch_norm/dropout
    # (those are covered with their layer families).
    return (
        axon.input("input", shape=(None, 784))
        .pipe(axon.dense, 128, activation="relu")
        .pipe(axon.dense, 64)
        .pipe(axon.tanh)
        .pipe(axon.dense, 10)
        .pipe(axon.activation, "softmax")
    )


def test_names_follow_axon_parents_first_counting():
    assert list(axon.properties(seed_model())) == [
        "input", "dense_0", "relu_0", "dense_1", "tanh_0", "dense_2", "softmax_0",
    ]


def test_repr_like_axon_inspect():
    assert repr(seed_model()) == "<Axon inputs={'input': (None, 784)} output='softmax_0' nodes=7>"


def test_names_are_counted_parents_first_left_to_right():
    a = axon.input("a").pipe(axon.dense, 1)  # named when the graph is built
    b = axon.input("b").pipe(axon.dense, 1)
    model = axon.add(b, a)
    names = axon.properties(model)
    # b's branch is visited first, so its dense is dense_0
    assert list(names) == ["b", "dense_0", "a", "dense_1", "add_0"]


def test_given_names_templates_and_functions():
    x = axon.input("x")
    y = axon.dense(x, 2, name="encoder")
    z = axon.dense(y, 2, name="block_{n}")
    w = axon.dense(z, 2, name=lambda op, counts: f"{op}-{counts.get(op, 0)}")
    assert list(axon.properties(w)) == ["x", "encoder", "block_1", "dense-2"]
    with pytest.raises(TypeError, match="name"):
        axon.dense(x, 2, name=3)


def test_same_seed_same_parameters_whatever_the_build_order():
    def make(order):
        x = axon.input("x", shape=(None, 3))
        a = axon.dense(x, 4, name="a")
        b = axon.dense(x, 4, name="b")
        return axon.add(a, b) if order else axon.add(b, a)

    s1 = axon.init(make(True), axon.template((1, 3)), seed=7)
    s2 = axon.init(make(False), axon.template((1, 3)), seed=7)
    s3 = axon.init(make(True), axon.template((1, 3)), seed=8)
    np.testing.assert_array_equal(s1["a"]["kernel"], s2["a"]["kernel"])
    assert not np.array_equal(s1["a"]["kernel"], s1["b"]["kernel"])
    assert not np.array_equal(s1["a"]["kernel"], s3["a"]["kernel"])


def test_graphs_are_immutable_and_share_structure():
    x = axon.input("x")
    y = axon.dense(x, 2)
    assert len(x.nodes) == 1 and len(y.nodes) == 2
    with pytest.raises(TypeError):
        y.nodes[0] = None  # type: ignore[index]
    with pytest.raises(TypeError, match="cannot be iterated"):
        _a, _b = y


def test_multiple_inputs_by_name_and_errors():
    inp1 = axon.input("input_0", shape=(None, 1))
    inp2 = axon.input("input_1", shape=(None, 1))
    model = axon.add(inp1, inp2)
    init_fn, predict_fn = axon.build(model)
    state = init_fn({"input_0": axon.template((1, 1)), "input_1": axon.template((1, 1))})
    out = predict_fn(state, {"input_0": jnp.array([[1.0]]), "input_1": jnp.array([[2.0]])})
    assert out.tolist() == [[3.0]]
    with pytest.raises(ValueError, match=r"unknown input name\(s\) \['input_2'\].*\['input_0', 'input_1'\]"):
        predict_fn(state, {"input_0": jnp.ones((1, 1)), "input_2": jnp.ones((1, 1))})
    with pytest.raises(ValueError, match=r"missing input\(s\) \['input_1'\]"):
        predict_fn(state, {"input_0": jnp.ones((1, 1))})
    with pytest.raises(ValueError, match="has 2 inputs"):
        predict_fn(state, jnp.ones((1, 1)))
    # a shape other than the declared one is information, not an error (Axon runs it; Keras
    # warns): a warning naming both shapes, and the computation runs
    with pytest.warns(UserWarning, match=r"shape \(1, 3\).*declares shape \(None, 1\)"):
        out = predict_fn(state, {"input_0": jnp.ones((1, 3)), "input_1": jnp.ones((1, 1))})
    assert out.tolist() == [[2.0, 2.0, 2.0]]


def test_only_used_inputs_are_required():
    inp1 = axon.input("input_0", shape=(None, 1))
    inp2 = axon.input("input_1", shape=(None, 1))
    model = axon.add(inp2, inp2)
    assert axon.get_inputs(model) == {"input_1": (None, 1)}
    assert axon.predict(model, {}, jnp.array([[2.0]])).tolist() == [[4.0]]
    del inp1


def test_container_seed_example():
    inp1 = axon.input("input_0", shape=(None, 1))
    inp2 = axon.input("input_1", shape=(None, 2))
    model = axon.container({"a": inp1, "b": inp2})
    out = axon.predict(model, {}, {"input_0": jnp.array([[1.0]]), "input_1": jnp.array([[1.0, 2.0]])})
    assert out["a"].tolist() == [[1.0]]
    assert out["b"].tolist() == [[1.0, 2.0]]


def test_nested_containers_keep_their_structure():
    inp1 = axon.input("input_0", shape=(None, 1))
    inp2 = axon.input("input_1", shape=(None, 1))
    model = axon.container(({"foo": (inp1, {"bar": inp2})}, [inp1]))
    out = axon.predict(model, {}, {"input_0": jnp.ones((1, 1)), "input_1": jnp.zeros((1, 1))})
    assert isinstance(out, tuple) and isinstance(out[1], list)
    assert out[0]["foo"][1]["bar"].tolist() == [[0.0]]
    with pytest.raises(TypeError, match="nested dicts, tuples and lists"):
        axon.container({"a": 1})


def test_fn_layer_applies_jax_code_and_accesses_containers():
    a, b = axon.input("a"), axon.input("b")
    first = axon.fn(axon.container((a, b)), lambda t: t[0] * 2)
    assert axon.predict(first, {}, {"a": jnp.array([1.0]), "b": jnp.array([5.0])}).tolist() == [2.0]
    assert first.node.op_name == "nx"


def test_optional_inputs_nullify_downstream_unless_optional():
    values = axon.input("values", shape=(None, 2))
    mask = axon.input("mask", shape=(None, 2), optional=True)

    def apply_optional_mask(x, m):
        return x if axon.is_none(m) else x * m

    masked = axon.layer(apply_optional_mask, [values, axon.optional(mask)])
    model = masked.pipe(axon.dense, 1, kernel_initializer="ones")
    init_fn, predict_fn = axon.build(model)
    state = init_fn({"values": axon.template((1, 2))})
    x = jnp.array([[1.0, 2.0]])
    assert predict_fn(state, {"values": x}).tolist() == [[3.0]]
    assert predict_fn(state, {"values": x, "mask": jnp.array([[1.0, 0.0]])}).tolist() == [[1.0]]

    # without axon.optional the missing mask nullifies the whole output
    plain = axon.multiply(values, mask).pipe(axon.dense, 1)
    init2, predict2 = axon.build(plain)
    s2 = init2({"values": axon.template((1, 2))})
    assert "dense_0" not in s2  # layers after a missing input are not initialized
    with pytest.raises(ValueError, match="output is missing"):
        predict2(s2, {"values": x})
    assert axon.get_output_shape(plain, {"values": axon.template((1, 2))}) is axon.NONE


def test_or_else():
    a = axon.input("a", optional=True)
    b = axon.input("b")
    model = axon.or_else(a, b)
    assert axon.predict(model, {}, {"b": jnp.array([2.0])}).tolist() == [2.0]
    assert axon.predict(model, {}, {"a": jnp.array([1.0]), "b": jnp.array([2.0])}).tolist() == [1.0]


def test_constant_layers():
    inp = axon.input("input", shape=(None, 3))
    model = axon.add(inp, axon.constant(np.arange(3.0).reshape(1, 3)))
    assert axon.predict(model, {}, jnp.ones((2, 3))).tolist() == [[1.0, 2.0, 3.0]] * 2
    with pytest.raises(TypeError, match="numeric"):
        axon.constant("abc")


def test_namespace_scopes_names_and_parameters():
    base = axon.input("x", shape=(None, 2)).pipe(axon.dense, 3).pipe(axon.dense, 3)
    encoder = axon.namespace(base, "encoder")
    model = encoder.pipe(axon.dense, 1)
    state = axon.init(model, axon.template((1, 2)))
    assert sorted(state.keys()) == ["dense_0", "encoder"]
    assert sorted(state["encoder"].keys()) == ["dense_0", "dense_1"]
    assert state["dense_0"]["kernel"].shape == (3, 1)
    # a fixed starting point for the namespace is merged in
    given = {"encoder": {"dense_0": {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)}}}
    init_fn, _ = axon.build(model)
    s2 = init_fn(axon.template((1, 2)), given)
    np.testing.assert_array_equal(s2["encoder"]["dense_0"]["kernel"], np.ones((2, 3)))


def test_block_shares_parameters_across_calls():
    shared = axon.block(lambda x: axon.dense(x, 2, kernel_initializer="ones"))
    x = axon.input("x", shape=(None, 2))
    model = axon.container((shared(x), shared(axon.constant(jnp.ones((1, 2))))))
    init_fn, predict_fn = axon.build(model)
    state = init_fn(axon.template((1, 2)))
    assert list(state.keys()) == ["block_0"]
    assert list(state["block_0"].keys()) == ["dense_0"]
    updated = state.update({"block_0": {"dense_0": {"kernel": 2 * jnp.ones((2, 2))}}})
    a, b = predict_fn(updated, jnp.full((1, 2), 3.0))
    assert a.tolist() == [[12.0, 12.0]] and b.tolist() == [[4.0, 4.0]]
    with pytest.raises(TypeError, match="expected 1 inputs"):
        shared(x, x)


def test_multi_input_block():
    blk = axon.block(lambda a, b: axon.add(axon.dense(a, 2), axon.dense(b, 2)))
    x = axon.input("x", shape=(None, 3))
    y = axon.input("y", shape=(None, 3))
    state = axon.init(blk(x, y), {"x": axon.template((1, 3)), "y": axon.template((1, 3))})
    assert sorted(state["block_0"].keys()) == ["dense_0", "dense_1"]


def test_layer_rejects_unknown_options_and_bad_inputs():
    def op(x, *, alpha=1.0):
        return x * alpha

    x = axon.input("x")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['beta'\].*\['alpha'\]"):
        axon.layer(op, [x], beta=2)
    with pytest.raises(TypeError, match="must be an axon graph or an axon.param"):
        axon.layer(op, [x, 3])
    with pytest.raises(ValueError, match="mode"):
        axon.layer(op, [x], mode="training")


def test_pipe_passes_arguments():
    y = axon.input("x", shape=(None, 4)).pipe(axon.dense, 3, use_bias=False, name="proj")
    assert [p.name for p in axon.get_parameters(y)] == ["kernel"]
    assert y.output_name == "proj"
