"""Every core layer through the shared conformance check, and the seed's example values."""

import jax.numpy as jnp
import numpy as np
import pytest

import axon
from axon import layers
from tests.conformance import check_layer

RNG = np.random.default_rng(0)


def x_of(*shape):
    return jnp.asarray(RNG.normal(size=shape).astype(np.float32))


F32 = "float32"

ACTIVATION_CASES = [(name, {}) for name in axon.activations.ACTIVATIONS] + [
    ("leaky_relu", {"alpha": 0.2}),
    ("softmax", {"axis": 1}),
]


@pytest.mark.parametrize(("name", "opts"), ACTIVATION_CASES)
def test_activation_layers(name, opts):
    x = axon.input("x", shape=(None, 4))
    model = getattr(axon, name)(x, **opts)
    xv = x_of(2, 4)
    # the functional activations are tested against torch, jax.nn and scipy in test_activations.py
    check_layer(model, xv, {}, expected=getattr(axon.activations, name)(xv, **opts))
    np.testing.assert_allclose(
        axon.predict(model, {}, x_of(2, 4) * 0 + 0.5), getattr(axon.activations, name)(jnp.full((2, 4), 0.5), **opts)
    )


def test_dense_conformance():
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 5)
    x = x_of(2, 3)
    check_layer(model, x, {"dense_0/kernel": ((3, 5), F32), "dense_0/bias": ((5,), F32)},
                expected=lambda s: np.asarray(x) @ np.asarray(s["dense_0"]["kernel"]) + np.asarray(s["dense_0"]["bias"]))
    model = axon.input("x", shape=(None, 2, 3)).pipe(axon.dense, 5, use_bias=False)
    x = x_of(2, 2, 3)
    check_layer(model, x, {"dense_0/kernel": ((3, 5), F32)},
                expected=lambda s: np.einsum("bti,io->bto", x, s["dense_0"]["kernel"]))


def test_bilinear_conformance():
    model = axon.bilinear(axon.input("a", shape=(None, 2)), axon.input("b", shape=(None, 4)), 3)
    a, b = x_of(2, 2), x_of(2, 4)
    check_layer(
        model, {"a": a, "b": b},
        {"bilinear_0/kernel": ((3, 2, 4), F32), "bilinear_0/bias": ((3,), F32)},
        expected=lambda s: np.einsum("bi,oij,bj->bo", a, s["bilinear_0"]["kernel"], b) + np.asarray(s["bilinear_0"]["bias"]),
    )


def test_embedding_conformance():
    model = axon.input("ids", shape=(None, 4)).pipe(axon.embedding, 10, 3)
    ids = jnp.array([[1, 2, 4, 5], [4, 3, 2, 9]])
    check_layer(model, ids, {"embedding_0/kernel": ((10, 3), F32)},
                expected=lambda s: np.take(np.asarray(s["embedding_0"]["kernel"]), np.asarray(ids), axis=0))


def test_bias_conformance():
    x = x_of(2, 3)
    check_layer(axon.input("x", shape=(None, 3)).pipe(axon.bias), x, {"bias_0/bias": ((3,), F32)},
                expected=lambda s: np.asarray(x) + np.asarray(s["bias_0"]["bias"]))


@pytest.mark.parametrize("op", ["add", "subtract", "multiply"])
def test_elementwise_conformance(op):
    a, b = axon.input("a", shape=(None, 3)), axon.input("b", shape=(None, 3))
    model = getattr(axon, op)(a, b)
    xa, xb = x_of(2, 3), x_of(2, 3)
    ref = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply}[op](xa, xb)
    check_layer(model, {"a": xa, "b": xb}, {}, expected=ref)
    np.testing.assert_allclose(axon.predict(model, {}, {"a": xa, "b": xb}), ref, rtol=1e-6)


def test_concatenate_and_split_conformance():
    a, b = axon.input("a", shape=(None, 3)), axon.input("b", shape=(None, 2))
    xa, xb = x_of(2, 3), x_of(2, 2)
    check_layer(axon.concatenate([a, b]), {"a": xa, "b": xb}, {}, expected=np.concatenate([xa, xb], axis=-1))
    parts = axon.split(axon.input("x", shape=(None, 6)), [1, 2, 3], name=["p", "q", "r"])
    model = axon.container(parts)
    x = x_of(2, 6)
    state = check_layer(model, x, {}, expected=tuple(np.split(np.asarray(x), [1, 3], axis=-1)))
    out = axon.predict(model, state, jnp.arange(6.0).reshape(1, 6))
    assert [o.tolist() for o in out] == [[[0.0]], [[1.0, 2.0]], [[3.0, 4.0, 5.0]]]
    assert list(axon.properties(model))[1:4] == ["p", "q", "r"]


def test_shape_layers_conformance():
    x = x_of(2, 3, 4)
    xn = np.asarray(x)
    check_layer(axon.flatten(axon.input("x", shape=(None, 3, 4))), x, {}, expected=xn.reshape(2, 12))
    check_layer(axon.reshape(axon.input("x"), ("batch", 12)), x, {}, expected=xn.reshape(2, 12))
    check_layer(axon.transpose(axon.input("x"), (0, 2, 1)), x, {}, expected=xn.transpose(0, 2, 1))
    check_layer(axon.pad(axon.input("x"), [(1, 2)], 0.5), x, {},
                expected=np.pad(xn, [(0, 0), (1, 2), (0, 0)], constant_values=0.5))
    np.testing.assert_allclose(axon.predict(axon.transpose(axon.input("x")), {}, x), np.transpose(np.asarray(x)))
    padded = axon.predict(axon.pad(axon.input("x"), [(1, 2)], 0.5), {}, x)
    np.testing.assert_allclose(padded, np.pad(np.asarray(x), [(0, 0), (1, 2), (0, 0)], constant_values=0.5))


def test_cond_conformance():
    x = axon.input("x", shape=(None, 3))
    model = axon.cond(x, lambda v: jnp.mean(v) > 0, axon.relu(x), axon.tanh(x))
    xv = x_of(2, 3)
    xn = np.asarray(xv)
    check_layer(model, xv, {}, expected=np.maximum(xn, 0) if xn.mean() > 0 else np.tanh(xn),
                skip={"save": "the predicate is a Python lambda, which is not a registered function"})
    pos, neg = jnp.full((1, 3), 2.0), jnp.full((1, 3), -2.0)
    assert axon.predict(model, {}, pos).tolist() == [[2.0] * 3]
    np.testing.assert_allclose(axon.predict(model, {}, neg), np.tanh(neg))


def test_custom_layer_with_state_conformance():
    def counter(x, count, *, mode="inference"):
        if mode == "train":
            return axon.StatefulOutput(x + count, {"count": count + 1})
        return x + count

    x = axon.input("x", shape=(None, 2))
    model = axon.layer(counter, [x, axon.param("count", (), initializer="zeros", kind="state")], op_name="counter")
    x = x_of(2, 2)
    check_layer(model, x, {}, state={"counter_0/count": ((), F32)}, expected=x,  # count starts at 0
                skip={"save": "counter is a local function, not a registered layer"})


@axon.register_layer("tests.core_layers.cube")
def _cube(v):
    return v**3


def test_graph_building_blocks_conformance():
    # block (shared parameters), namespace, activation by name, an n-ary add, a registered
    # axon.fn, a constant, and or_else with a missing optional input, in one graph
    x = axon.input("x", shape=(None, 3))
    extra = axon.input("extra", shape=(None, 3), optional=True)
    shared = axon.block(lambda v: axon.dense(v, 3))
    enc = axon.namespace(axon.dense(x, 3), "encoder")
    y = axon.fn(axon.add([shared(x), shared(axon.activation(x, "tanh")), enc]), _cube)
    y = axon.multiply(y, axon.constant(np.array([1.0, 2.0, 3.0], np.float32)))
    # (or_else only selects a graph, like a container: its result is the input's, not cast by a
    # policy; the relu after it is a layer, whose output the bf16 policy casts)
    model = axon.container([y, axon.relu(axon.or_else(extra, x))])
    xv = x_of(2, 3)

    def expected(s):
        xn = np.asarray(xv, np.float64)
        bk, bb, ek, eb = (np.asarray(s[k]["dense_0"][p], np.float64)
                          for k in ("block_0", "encoder") for p in ("kernel", "bias"))
        total = (xn @ bk + bb) + (np.tanh(xn) @ bk + bb) + (xn @ ek + eb)
        return [total**3 * np.array([1.0, 2.0, 3.0]), np.maximum(xn, 0)]

    spec = {f"{k}/dense_0/{p}": (shape, F32) for k in ("block_0", "encoder") for p, shape in (("kernel", (3, 3)), ("bias", (3,)))}
    check_layer(model, {"x": xv}, spec, expected=expected, rtol=1e-4, atol=1e-5)


def test_seed_functional_examples():
    # dense, bilinear, embedding, flatten examples from the Axon.Layers seed documentation
    out = layers.dense(jnp.array([[1.0, 0.5, 1.0, 0.5], [0.0, 0.0, 0.0, 0.0]]), jnp.array([[0.2], [0.3], [0.5], [0.8]]), jnp.array([1.0]))
    np.testing.assert_allclose(out, [[2.25], [1.0]], rtol=1e-6)
    out = layers.bilinear(jnp.arange(6.0).reshape(3, 2), jnp.arange(12.0).reshape(3, 4), jnp.arange(8.0).reshape(1, 2, 4), jnp.array(1.0))
    assert out.tolist() == [[39.0], [455.0], [1319.0]]
    kernels = jnp.array([
        [0.46299999952316284, 0.5562999844551086, 0.18170000612735748],
        [0.9801999926567078, 0.09780000150203705, 0.5333999991416931],
        [0.6980000138282776, 0.9240999817848206, 0.23479999601840973],
        [0.31929999589920044, 0.42250001430511475, 0.7865999937057495],
        [0.5519000291824341, 0.5662999749183655, 0.20559999346733093],
        [0.1898999959230423, 0.9311000108718872, 0.8356000185012817],
        [0.6383000016212463, 0.8794000148773193, 0.5282999873161316],
        [0.9523000121116638, 0.7597000002861023, 0.08250000327825546],
        [0.6622999906539917, 0.02329999953508377, 0.8205999732017517],
        [0.9855999946594238, 0.36419999599456787, 0.5372999906539917],
    ])
    ids = jnp.array([[1, 2, 4, 5], [4, 3, 2, 9]])
    out = layers.embedding(ids, kernels)
    assert out.shape == (2, 4, 3)
    np.testing.assert_array_equal(out[0, 0], kernels[1])
    np.testing.assert_array_equal(out[1, 3], kernels[9])
    assert layers.flatten(jnp.arange(4.0).reshape(1, 2, 2)).tolist() == [[0.0, 1.0, 2.0, 3.0]]


def test_seed_model_creation_example():
    model = (
        axon.input("input", shape=(None, 784))
        .pipe(axon.dense, 128, activation="relu")
        .pipe(axon.batch_norm)
        .pipe(axon.dropout, rate=0.8)
        .pipe(axon.dense, 64)
        .pipe(axon.tanh)
        .pipe(axon.dense, 10)
        .pipe(axon.activation, "softmax")
    )
    assert repr(model) == "<Axon inputs={'input': (None, 784)} output='softmax_0' nodes=9>"
    assert list(axon.properties(model)) == [
        "input", "dense_0", "relu_0", "batch_norm_0", "dropout_0", "dense_1", "tanh_0", "dense_2", "softmax_0"
    ]
    state = axon.init(model, axon.template((1, 784), "f32"))
    shapes = {f"{k}/{p}": tuple(v.shape) for k, d in state.data.items() for p, v in d.items()}
    assert shapes == {
        "dense_0/kernel": (784, 128), "dense_0/bias": (128,),
        "batch_norm_0/gamma": (128,), "batch_norm_0/beta": (128,),
        "batch_norm_0/mean": (128,), "batch_norm_0/var": (128,),
        "dense_1/kernel": (128, 64), "dense_1/bias": (64,),
        "dense_2/kernel": (64, 10), "dense_2/bias": (10,),
    }
    out = axon.predict(model, state, jnp.ones((3, 784)))
    np.testing.assert_allclose(out.sum(axis=1), np.ones(3), rtol=1e-5)
    assert axon.get_op_counts(axon.input("input", shape=(None, 1)).pipe(axon.dense, 2)) == {"input": 1, "dense": 1}
    assert axon.get_op_counts(axon.input("input", shape=(None, 1)).pipe(axon.tanh).pipe(axon.tanh)) == {"input": 1, "tanh": 2}


def test_launch_post_residual_and_nx_examples():
    def residual(x, units):
        return x.pipe(axon.dense, units, activation="relu").pipe(axon.add, x)

    def mish(x):
        return x * jnp.tanh(axon.activations.softplus(x))

    model = (
        axon.input("input", shape=(None, 784))
        .pipe(axon.dense, 128, activation="relu")
        .pipe(residual, 128)
        .pipe(axon.fn, mish)
        .pipe(axon.fn, lambda v: jnp.maximum(v, 0))
        .pipe(axon.dense, 10, activation="softmax")
    )
    state = axon.init(model, axon.template((1, 784)))
    assert sorted(state.keys()) == ["dense_0", "dense_1", "dense_2"]
    assert axon.predict(model, state, jnp.ones((2, 784))).shape == (2, 10)
