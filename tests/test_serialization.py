"""Serialization: round trips of every layer family, the file format, the registry, hostile
and corrupted input (with a hypothesis fuzz test), and parameters-only files."""

import importlib
import json
import os
import pickle
import pkgutil
import struct
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import axon
import axon.api
from axon import registry, serialization
from axon.serialization import SerializationError, StateMismatchError

RNG = np.random.default_rng(0)
JIT = False  # eager: these models are tiny, compiling them costs more than running them


def rand(*shape, dtype=np.float32):
    return RNG.normal(size=shape).astype(dtype)


def leaves_equal(a, b):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def assert_same_state(s1, s2):
    assert s1.paths() == s2.paths()
    leaves_equal(s1.data, s2.data)
    assert s1.parameter_paths == s2.parameter_paths
    assert s1.state_paths == s2.state_paths
    assert s1.frozen_paths == s2.frozen_paths


def predictions(model, state, inputs, modes):
    return {mode: axon.build(model, mode=mode, jit=JIT)[1](state, inputs) for mode in modes}


def roundtrip(model, template, inputs, *, modes=("inference", "train"), seed=0, state=None, expected=None):
    """Serialize/deserialize; the loaded model must give identical outputs (and identical
    updated state in train mode), the same layer names and the same bytes again."""
    if state is None:
        state = axon.build(model, mode="train", seed=seed, jit=JIT)[0](template)
    if expected is None:
        expected = predictions(model, state, inputs, modes)
    data = axon.serialize(model, state)
    loaded, loaded_state = axon.deserialize(data)
    assert_same_state(state, loaded_state)
    assert axon.properties(loaded) == axon.properties(model)
    assert axon.get_inputs(loaded) == axon.get_inputs(model)
    leaves_equal(expected, predictions(loaded, loaded_state, inputs, modes))
    # re-serializing the loaded model gives the same bytes (deterministic format)
    assert axon.serialize(loaded, loaded_state) == data
    return loaded, loaded_state, data


# --------------------------------------------------------------------------------------
# the seed example and basic properties


def test_seed_example_dense_zeros_relu_round_trips_and_predicts_zero():
    model = axon.input("input", shape=(None, 2)).pipe(axon.dense, 1, kernel_initializer="zeros", activation="relu")
    init_fn, _ = axon.build(model)
    params = init_fn(axon.template((1, 2), "f32"))
    serialized = axon.serialize(model, params)
    saved_model, saved_params = axon.deserialize(serialized)
    _, predict_fn = axon.build(saved_model)
    out = predict_fn(saved_params, jnp.array([[1.0, 1.0]]))
    assert out.dtype == jnp.float32 and out.tolist() == [[0.0]]


def test_file_is_plain_safetensors_with_versioned_axon_metadata(tmp_path):
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2)
    state = axon.init(model, axon.template((1, 3)))
    path = tmp_path / "model.axon"
    axon.save(path, model, state)
    tensors = safetensors.numpy.load_file(str(path))
    np.testing.assert_array_equal(tensors["dense_0.kernel"], np.asarray(state["dense_0"]["kernel"]))
    with safetensors.safe_open(str(path), "numpy") as f:
        meta = f.metadata()
    doc = json.loads(meta["axon"])
    assert list(meta) == ["axon"] and doc["format"] == "axon.model" and doc["version"] == 1
    graph = doc["graph"]
    assert [n["op"] for n in graph["nodes"]] == [{"special": "input"}, {"function": "axon.dense"}]  # permanent name
    assert graph["nodes"][1]["parameters"][0]["shape"] == [3, 2]
    assert graph["nodes"][1]["parameters"][0]["initializer"] == {"name": "axon.initializers.glorot_uniform", "options": {"scale": 1.0}}
    _loaded, loaded_state = axon.load(path)
    assert_same_state(state, loaded_state)
    assert not list(tmp_path.glob(".axon-*"))  # no temporary file left behind


def test_same_model_built_twice_gives_identical_bytes():
    def make():
        x = axon.input("x", shape=(None, 4))
        shared = axon.block(lambda v: axon.dense(v, 4))
        return axon.add(shared(x), shared(axon.relu(x))).pipe(axon.dense, 2)

    a, b = make(), make()
    sa = axon.init(a, axon.template((1, 4)))
    sb = axon.init(b, axon.template((1, 4)))
    assert axon.serialize(a, sa) == axon.serialize(b, sb)


def test_loaded_model_reinitializes_like_the_original():
    # initializers given by name are saved, so init with the same seed gives the same state
    model = (
        axon.input("x", shape=(None, 4))
        .pipe(axon.dense, 3, kernel_initializer="he_normal")
        .pipe(axon.batch_norm)
        .pipe(axon.dropout, rate=0.5)
        .pipe(axon.dropout, rate=0.5, seed=11)
        .pipe(axon.dense, 2, kernel_initializer="uniform", bias_initializer="ones")
    )
    template = axon.template((2, 4))
    state = axon.init(model, template, mode="train", seed=3)
    loaded, _ = axon.deserialize(axon.serialize(model, state))
    assert_same_state(state, axon.init(loaded, template, mode="train", seed=3))


def test_initializers_made_by_factories_are_saved_by_name_and_options(tmp_path):
    # init functions from axon.initializers' factories, passed as functions, carry their
    # factory's name and options: they are saved and remade, sampling the same bits
    inits = axon.initializers
    model = (
        axon.input("x", shape=(None, 4))
        .pipe(axon.dense, 3, kernel_initializer=inits.uniform(scale=0.1), bias_initializer=inits.full(0.5))
        .pipe(axon.dense, 3, kernel_initializer=inits.variance_scaling(scale=0.7, mode="fan_out", distribution="uniform"),
              bias_initializer=inits.full(jnp.arange(3.0)))
        .pipe(axon.dense, 2, kernel_initializer=inits.orthogonal(distribution="uniform"),
              bias_initializer=inits.normal(mean=1.0, scale=0.5))
    )
    template = axon.template((2, 4))
    state = axon.init(model, template, seed=5)
    path = tmp_path / "inits.axon"
    axon.save(path, model, state)
    with safetensors.safe_open(str(path), "numpy") as f:
        graph = json.loads(f.metadata()["axon"])["graph"]
    specs = [p["initializer"] for node in graph["nodes"] for p in node["parameters"]]
    # (the factories' permanent names: "axon.initializers.<name>", see axon.registry)
    assert specs[:3] == [
        {"name": "axon.initializers.uniform", "options": {"scale": 0.1}},
        {"name": "axon.initializers.full", "options": {"value": 0.5}},
        {"name": "axon.initializers.variance_scaling",
         "options": {"scale": 0.7, "mode": "fan_out", "distribution": "uniform"}},
    ]
    assert specs[3]["name"] == "axon.initializers.full" and set(specs[3]["options"]["value"]) == {"$tensor"}
    assert specs[4:] == [
        {"name": "axon.initializers.orthogonal", "options": {"distribution": "uniform"}},
        {"name": "axon.initializers.normal", "options": {"mean": 1.0, "scale": 0.5}},
    ]
    loaded, loaded_state = axon.load(path)
    assert_same_state(state, loaded_state)
    # without the saved values, the loaded initializers remake the same parameters bit for bit
    assert_same_state(state, axon.init(loaded, template, seed=5))
    assert registry.made_by(loaded.node.parameters[0].initializer) == (
        "axon.initializers.orthogonal", {"distribution": "uniform"})
    assert axon.serialize(loaded, loaded_state) == path.read_bytes()


# --------------------------------------------------------------------------------------
# round trips of the layer families


def test_dense_bilinear_bias_embedding():
    a, b = axon.input("a", shape=(None, 3)), axon.input("b", shape=(None, 2))
    model = axon.container((
        axon.dense(a, 4, activation="tanh"),
        axon.dense(a, 2, use_bias=False, name="proj"),
        axon.bilinear(a, b, 3, activation="relu"),
        axon.bias(b),
    ))
    roundtrip(model, {"a": axon.template((2, 3)), "b": axon.template((2, 2))}, {"a": rand(2, 3), "b": rand(2, 2)},
              modes=("inference",))
    ids = axon.input("ids", shape=(None, 5)).pipe(axon.embedding, 10, 4)
    roundtrip(ids, axon.template((2, 5), "s32"), np.array([[1, 2, 3, 9, 0], [4, 4, 4, 4, 4]], np.int32),
              modes=("inference",))


def test_activations_with_options():
    x = axon.input("x", shape=(None, 6))
    outs = [axon.activation(x, name) for name in axon.activations.ACTIVATIONS]
    outs += [axon.leaky_relu(x, alpha=0.3), axon.softmax(x, axis=0), axon.celu(x, alpha=2.0)]
    roundtrip(axon.container(outs), axon.template((2, 6)), rand(2, 6), modes=("inference",))


def test_combinators_and_shape_layers():
    x = axon.input("x", shape=(None, 6))
    p, q, r = axon.split(x, [1, 2, 3], name=["p", "q", "r"])
    halves = axon.split(x, 2, axis=1)
    model = axon.container({
        "sum": axon.add([x, x, x]),
        "diff": axon.subtract(x, axon.constant(np.arange(6.0, dtype=np.float32))),
        "prod": axon.multiply(halves[0], halves[1]),
        "cat": axon.concatenate([p, r, q], axis=-1),
        "flat": axon.flatten(axon.reshape(x, ("batch", 2, "auto"))),
        "t": axon.transpose(axon.reshape(x, ("batch", 2, 3)), (0, 2, 1)),
        "pad": axon.pad(axon.reshape(x, ("batch", 2, 3)), [(1, 2)], 0.5),
        "nested": [(p, {"deep": (q,)}), r],
    })
    loaded, _, _ = roundtrip(model, axon.template((2, 6)), rand(2, 6), modes=("inference",))
    split_nodes = [n for n in loaded.nodes.values() if n.op_name == "split"]
    assert {(n.opts["index"], n.opts["sizes"]) for n in split_nodes} >= {(0, (1, 2, 3)), (1, 2)}


def test_normalization_layers_update_state_identically():
    x = axon.input("x", shape=(None, 4, 6))
    model = (
        x.pipe(axon.batch_norm, momentum=0.2)
        .pipe(axon.layer_norm, epsilon=1e-3)
        .pipe(axon.group_norm, 3)
        .pipe(axon.rms_norm, upcast="all", shift=0.5)
        .pipe(axon.instance_norm)
    )
    roundtrip(model, axon.template((3, 4, 6)), rand(3, 4, 6))


def test_dropout_family_in_train_mode():
    x = axon.input("x", shape=(None, 4, 4, 3))
    model = axon.container((
        axon.dropout(x, rate=0.5),
        axon.dropout(x, rate=0.3, seed=5),
        axon.alpha_dropout(x, rate=0.2),
        axon.feature_alpha_dropout(x, rate=0.2),
        axon.spatial_dropout(x, rate=0.4, channels="first"),
    ))
    loaded, _loaded_state, _ = roundtrip(model, axon.template((2, 4, 4, 3)), rand(2, 4, 4, 3))
    # a seeded key initializer is remade from its saved seed
    fresh = axon.init(loaded, axon.template((2, 4, 4, 3)), mode="train")
    assert fresh["dropout_1"]["key"].tolist() == [0, 5]


def test_blocks_nested_blocks_and_namespaces():
    inner = axon.block(lambda v: axon.dense(v, 3, activation="relu"), name="inner")
    outer = axon.block(lambda a, b: axon.add(inner(a), inner(b)).pipe(axon.dense, 3))
    x = axon.input("x", shape=(None, 3))
    y = axon.input("y", shape=(None, 3))
    enc = axon.namespace(axon.dense(outer(x, y), 3).pipe(axon.layer_norm), "encoder")
    model = axon.container((enc, outer(y, x), axon.namespace(axon.dense(enc, 2), "head")))
    template = {"x": axon.template((2, 3)), "y": axon.template((2, 3))}
    loaded, state, _ = roundtrip(model, template, {"x": rand(2, 3), "y": rand(2, 3)})
    assert sorted(state.keys()) == ["encoder", "head"]  # the block is named where first used
    assert sorted(state["encoder"]["block_0"].keys()) == ["dense_0", "inner"]
    # the loaded blocks still share parameters between their calls
    blocks = {id(n.opts["block"]) for n in loaded.nodes.values() if n.op == "block"}
    assert len(blocks) == 1


def test_optional_inputs_or_else_and_fn_with_registered_function():
    values = axon.input("values", shape=(None, 2))
    mask = axon.input("mask", shape=(None, 2), optional=True)
    masked = axon.layer(apply_optional_mask, [values, axon.optional(mask)], op_name="masked")
    model = axon.container((
        masked.pipe(axon.dense, 1),
        axon.or_else(mask, values),
        axon.fn(values, jnp.square, op_name="square"),
    ))
    template = {"values": axon.template((1, 2))}
    x = {"values": rand(1, 2)}
    roundtrip(model, template, x)
    state = axon.init(model, template)
    roundtrip(model, template, {**x, "mask": np.array([[1.0, 0.0]], np.float32)}, state=state)


@axon.register_layer("tests.serialization.apply_optional_mask")
def apply_optional_mask(x, m):
    return x if axon.is_none(m) else x * m


axon.register_layer("tests.serialization.square", jnp.square)


@axon.register_layer
def positive_mean(v):
    return jnp.mean(v) > 0


def test_cond_with_registered_predicate_and_custom_layers_with_state():
    x = axon.input("x", shape=(None, 3))
    model = axon.cond(x, positive_mean, axon.relu(x), axon.tanh(x))
    roundtrip(model, axon.template((1, 3)), np.array([[1.0, -2.0, 3.0]], np.float32))
    roundtrip(model, axon.template((1, 3)), np.array([[-1.0, -2.0, 3.0]], np.float32))
    counter = axon.layer(
        count_calls, [x, axon.param("count", (), initializer="zeros", kind="state")], op_name="counter", step=2.0
    )
    roundtrip(counter, axon.template((1, 3)), rand(1, 3))


@axon.register_layer("tests.serialization.count_calls")
def count_calls(x, count, *, step=1.0, mode="inference"):
    if mode == "train":
        return axon.StatefulOutput(x + count, {"count": count + step})
    return x + count


def test_bfloat16_parameters_constants_and_policies(tmp_path):
    from axon.mixed_precision import create_policy

    x = axon.input("x", shape=(None, 3))
    d = axon.dense(x, 4)
    node = d.node.replace(policy=create_policy(params="bf16", compute="bf16", output="f32"))
    d = axon.Axon({**d.nodes, node.id: node}, node.id)
    model = axon.add(d, axon.constant(jnp.arange(4.0, dtype=jnp.bfloat16)))
    state = axon.init(model, axon.template((2, 3)))
    assert state["dense_0"]["kernel"].dtype == jnp.bfloat16
    loaded, loaded_state, data = roundtrip(model, axon.template((2, 3)), rand(2, 3), state=state)
    assert loaded_state["dense_0"]["kernel"].dtype == jnp.bfloat16
    assert loaded.nodes[loaded.node.parents[0]].policy == node.policy
    path = tmp_path / "bf16.axon"
    path.write_bytes(data)
    leaves_equal(axon.load(path)[1].data, state.data)
    # a whole state in bf16, with other dtypes beside it
    odd = axon.ModelState({"l": {
        "bf": jnp.asarray(rand(3, 2), jnp.bfloat16), "h": jnp.asarray(rand(2), jnp.float16),
        "u": jnp.arange(3, dtype=jnp.uint32), "i8": jnp.array([-3, 4], jnp.int8), "b": jnp.array([True, False]),
        "scalar": jnp.asarray(1.5), "empty": jnp.zeros((0, 3)),
    }})
    assert_same_state(odd, serialization.deserialize_state(serialization.serialize_state(odd)))
    axon.save_state(tmp_path / "odd.safetensors", odd)
    assert_same_state(odd, axon.load_state(tmp_path / "odd.safetensors"))


def test_frozen_paths_and_typed_prng_keys_survive():
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 2).pipe(axon.dense, 1)
    state = axon.init(model, axon.template((1, 2))).freeze(lambda p: p[0] == "dense_0")
    _, loaded = axon.deserialize(axon.serialize(model, state))
    assert loaded.frozen_paths == {("dense_0", "kernel"), ("dense_0", "bias")}
    typed = axon.ModelState({"rng": {"key": jax.random.key(42)}}, state_paths=[("rng", "key")])
    back = serialization.deserialize_state(serialization.serialize_state(typed))
    assert jax.dtypes.issubdtype(back["rng"]["key"].dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(jax.random.key_data(back["rng"]["key"]), jax.random.key_data(jax.random.key(42)))


def test_names_with_dots_and_odd_characters():
    x = axon.input("in.put/0", shape=(None, 2))
    model = axon.dense(axon.dense(x, 2, name="a.b"), 2, name="a").pipe(axon.dense, 1, name="a.b#2")
    _loaded, state, _ = roundtrip(model, axon.template((1, 2)), rand(1, 2))
    assert sorted(state.keys()) == ["a", "a.b", "a.b#2"]


RECIPES = {
    # name: (build(x_vec, x_seq, x_img, x_vol, ids), which input template set)
    "bilinear": lambda i: axon.bilinear(i["vec"], i["vec"], 2),
    "embedding": lambda i: axon.embedding(i["ids"], 10, 3),
    "add": lambda i: axon.add(i["vec"], i["vec"]),
    "subtract": lambda i: axon.subtract(i["vec"], i["vec"]),
    "multiply": lambda i: axon.multiply(i["vec"], i["vec"]),
    "concatenate": lambda i: axon.concatenate(i["vec"], i["vec"]),
    "split": lambda i: axon.container(axon.split(i["vec"], 2)),
    "cond": lambda i: axon.cond(i["vec"], positive_mean, i["vec"], axon.relu(i["vec"])),
    "dense": lambda i: axon.dense(i["vec"], 3),
    "bias": lambda i: axon.bias(i["vec"]),
    "group_norm": lambda i: axon.group_norm(i["img"], 3),
    "reshape": lambda i: axon.reshape(i["vec"], ("batch", 2, 2)),
    "transpose": lambda i: axon.transpose(i["seq"], (0, 2, 1)),
    "pad": lambda i: axon.pad(i["img"], [(1, 1), (0, 2)]),
    "conv": lambda i: axon.conv(i["img"], 2, kernel_size=3, padding="same", activation="relu"),
    "conv_transpose": lambda i: axon.conv_transpose(i["img"], 2, kernel_size=2, strides=2),
    "depthwise_conv": lambda i: axon.depthwise_conv(i["img"], 2, kernel_size=3),
    "separable_conv2d": lambda i: axon.separable_conv2d(i["img"], 2, kernel_size=3),
    "separable_conv3d": lambda i: axon.separable_conv3d(i["vol"], 1, kernel_size=2),
    "max_pool": lambda i: axon.max_pool(i["img"], kernel_size=2),
    "avg_pool": lambda i: axon.avg_pool(i["img"], kernel_size=2),
    "lp_pool": lambda i: axon.lp_pool(i["img"], kernel_size=2),
    "adaptive_avg_pool": lambda i: axon.adaptive_avg_pool(i["img"], output_size=(2, 2)),
    "adaptive_max_pool": lambda i: axon.adaptive_max_pool(i["img"], output_size=(2, 2)),
    "adaptive_lp_pool": lambda i: axon.adaptive_lp_pool(i["img"], output_size=(2, 2)),
    "resize": lambda i: axon.resize(i["img"], (3, 5), method="bilinear"),
    "lstm": lambda i: axon.container(axon.lstm(i["seq"], 3)),
    "gru": lambda i: axon.container(axon.gru(i["seq"], 3, recurrent_initializer="glorot_uniform")),
    "conv_lstm": lambda i: axon.container(axon.conv_lstm(i["cseq"], 2, kernel_size=3)),
    "activation": lambda i: axon.activation(i["vec"], "leaky_relu", alpha=0.2),
    "multi_head_attention": lambda i: axon.multi_head_attention(i["seq"], num_heads=2, key_size=2, causal=True),
    "bidirectional": lambda i: axon.container(axon.bidirectional(i["seq"], lambda s: axon.lstm(s, 2)[0], axon.add)),
    "mask": lambda i: axon.mask(i["ids"], 0),
    "stack_columns": lambda i: axon.stack_columns(axon.container({"a": i["vec"], "b": i["vec"]})),
}
SPECIAL = {"block", "constant", "container", "fn", "input", "layer", "namespace", "optional", "or_else", "param"}


def _constructors():
    names = []
    for info in pkgutil.iter_modules(axon.api.__path__):
        module = importlib.import_module(f"axon.api.{info.name}")
        names += [n for n in getattr(module, "__all__", ()) if n not in SPECIAL and callable(getattr(axon, n, None))]
    return sorted(set(names))


@pytest.mark.parametrize("name", _constructors())
def test_every_builtin_constructor_round_trips(name):
    inputs = {
        "vec": axon.input("vec", shape=(None, 4)),
        "seq": axon.input("seq", shape=(None, 3, 4)),
        "img": axon.input("img", shape=(None, 4, 4, 3)),
        "vol": axon.input("vol", shape=(None, 3, 3, 3, 2)),
        "cseq": axon.input("cseq", shape=(None, 2, 2, 3, 3)),
        "ids": axon.input("ids", shape=(None, 5)),
    }
    data = {
        "vec": rand(2, 4), "seq": rand(2, 3, 4), "img": rand(2, 4, 4, 3), "vol": rand(2, 3, 3, 3, 2),
        "cseq": rand(2, 2, 2, 3, 3), "ids": np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 0]], np.int32),
    }
    templates = {k: axon.template(v.shape, v.dtype) for k, v in data.items()}
    constructor = getattr(axon, name)
    candidates = [RECIPES[name]] if name in RECIPES else [
        lambda i, key=key: constructor(i[key]) for key in ("vec", "seq", "img")
    ]
    for recipe in candidates:
        try:
            model = recipe(inputs)
            used = axon.get_inputs(model)
            state = axon.build(model, mode="train", jit=JIT)[0]({k: templates[k] for k in used})
            expected = predictions(model, state, {k: data[k] for k in used}, ("inference", "train"))
        except Exception:
            continue
        break
    else:
        pytest.skip(f"no recipe builds {name!r}; add one to RECIPES")
    _, _, saved = roundtrip(model, {k: templates[k] for k in used}, {k: data[k] for k in used}, state=state,
                            expected=expected)
    # the file names only registered functions: axon's by their permanent "axon.*" names
    for kind, fn_name in saved_names(saved_doc(saved)["graph"]):
        assert fn_name in registry.names(kind) or (kind == "initializer" and fn_name in registry.names("initializer_factory"))
        assert fn_name.startswith("axon.") or fn_name in USER_FUNCTIONS, (kind, fn_name)
    # the same file written with the names of the previous release loads and predicts the same,
    # and saves again under today's names
    legacy, legacy_state = axon.deserialize(with_legacy_names(saved))
    leaves_equal(expected, predictions(legacy, legacy_state, {k: data[k] for k in used}, ("inference", "train")))
    assert axon.serialize(legacy, legacy_state) == saved


USER_FUNCTIONS = {"tests.test_serialization.positive_mean"}
"""The functions this module registers that the recipes use."""

LEGACY_API_OPS = {
    "axon.separable_conv2d_op": "axon.api.conv.separable_conv2d_op",
    "axon.separable_conv3d_op": "axon.api.conv.separable_conv3d_op",
    "axon.stack_columns": "axon.api.columns.stack_columns_op",
}


def saved_doc(data):
    """The axon document of a saved file, read with nothing but json and struct."""
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(json.loads(data[8 : 8 + n])["__metadata__"]["axon"])


def saved_names(j, found=None):
    """``{(kind, name)}`` of every function a saved graph names: ops and initializers."""
    found = set() if found is None else found
    if isinstance(j, dict):
        for key, value in j.items():
            if key in ("function", "$fn"):
                found.add(("op", value))
            elif key == "$partial":
                found.add(("op", value["fn"]))
            elif key in ("$init", "initializer") and isinstance(value, dict):
                found.add(("initializer", value["name"]))
            saved_names(value, found)
    elif isinstance(j, list):
        for value in j:
            saved_names(value, found)
    return found


def _legacy_name(key, name):
    """The name the previous release (df7f6d6) saved for today's ``name``."""
    if key in ("$init", "initializer"):
        return name.removeprefix("axon.initializers.")
    short = name.removeprefix("axon.")
    if name in LEGACY_API_OPS:
        return LEGACY_API_OPS[name]
    if short in axon.activations.ACTIVATIONS:
        return "axon.activations." + short
    if "." not in short and callable(getattr(axon.layers, short, None)):
        return "axon.layers." + short
    return name


def _rename(j, key=None):
    if isinstance(j, dict):
        out = {k: _rename(v, k) for k, v in j.items()}
        if key in ("$init", "initializer") and "name" in j:
            out["name"] = _legacy_name(key, j["name"])
        if key == "$partial":
            out["fn"] = _legacy_name("$fn", j["fn"])
        return out
    if isinstance(j, list):
        return [_rename(v, key) for v in j]
    if key in ("function", "$fn") and isinstance(j, str):
        return _legacy_name(key, j)
    return j


def with_legacy_names(data):
    """``data`` with every function named as the previous release named it."""
    doc = saved_doc(data)
    doc["graph"] = _rename(doc["graph"])
    return safetensors.numpy.save(safetensors.numpy.load(data), metadata={"axon": json.dumps(doc)})


def test_registry_covers_every_functional_layer_and_activation():
    # every functional layer and activation is an op named "axon.<name>" (see axon.registry)
    registered = serialization.registered_layers()
    for module in (axon.layers, axon.activations):
        for name in dir(module):
            value = getattr(module, name)
            if name.startswith("_") or name == "get" or isinstance(value, type) or not callable(value):
                continue
            if str(getattr(value, "__module__", "")).startswith(module.__name__):  # its own, not imported helpers
                assert registered.get("axon." + name) is value, name


# --------------------------------------------------------------------------------------
# registry and save-time errors


def test_unregistered_functions_raise_clear_errors_at_serialize_time():
    x = axon.input("x")

    def my_op(v):
        return v

    for model in (
        axon.layer(my_op, [x]),
        axon.fn(x, lambda v: v + 1),
        axon.cond(x, lambda v: v.sum() > 0, x, x),
        axon.activation(x, lambda v: v),
    ):
        with pytest.raises(SerializationError, match=r"not registered.*register_layer.*save_state"):
            axon.serialize(model, {})
    with pytest.raises(SerializationError, match="name is a function"):
        axon.serialize(axon.dense(x, 1, name=lambda op, counts: "d"), {})


def test_register_layer_forms_and_conflicts():
    def f(v):
        return v

    def g(v):
        return v

    assert axon.register_layer("tests.registry.f", f) is f
    assert axon.register_layer("tests.registry.f", f) is f  # same function again: fine
    with pytest.raises(ValueError, match="already registered"):
        axon.register_layer("tests.registry.f", g)
    axon.register_layer("tests.registry.f", g, overwrite=True)
    assert serialization.registered_layers()["tests.registry.f"] is g
    with pytest.raises(ValueError, match="reserved"):
        axon.register_layer("axon.layers.dense", f)
    with pytest.raises(TypeError, match="no stable module-level name"):
        axon.register_layer(lambda v: v)
    with pytest.raises(TypeError, match="name"):
        axon.register_layer("", f)
    assert serialization.registered_layers()["tests.test_serialization.positive_mean"] is positive_mean


def test_loading_needs_the_function_registered():
    def tmp_op(v):
        return v * 3

    axon.register_layer("tests.loading.tmp_op", tmp_op)
    data = axon.serialize(axon.layer(tmp_op, [axon.input("x")]), {})
    registry.unregister("op", "tests.loading.tmp_op")
    with pytest.raises(SerializationError, match=r"'tests.loading.tmp_op' is not registered.*register_layer"):
        axon.deserialize(data)


def test_hooks_are_dropped_with_a_warning():
    model = axon.attach_hook(axon.input("x").pipe(axon.relu), print)
    with pytest.warns(UserWarning, match="hooks are not saved.*relu_0"):
        data = axon.serialize(model, {})
    loaded, _ = axon.deserialize(data)
    assert loaded.node.hooks == ()


def test_custom_initializers_are_not_saved_but_values_are():
    def halves(key, shape, dtype=jnp.float32):
        return jnp.full(shape, 0.5, dtype)

    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 2, kernel_initializer=halves)
    state = axon.init(model, axon.template((1, 2)))
    loaded, loaded_state = axon.deserialize(axon.serialize(model, state))
    init_fn = axon.build(loaded)[0]
    leaves_equal(init_fn(axon.template((1, 2)), loaded_state).data, state.data)
    with pytest.raises(axon.CompileError, match="initializer of this parameter was not saved"):
        init_fn(axon.template((1, 2)))


def test_shapes_missing_from_the_state_fail_clearly_at_init():
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 2)
    loaded, state = axon.deserialize(axon.serialize(model, None))
    assert state.paths() == []
    assert loaded.node.parameters[1].shape == (2,)  # fixed shapes are always saved
    with pytest.raises(axon.CompileError, match="shape of this parameter was not saved"):
        axon.init(loaded, axon.template((1, 2)))


# --------------------------------------------------------------------------------------
# hostile and corrupted input


def _valid_blob():
    x = axon.input("x", shape=(None, 3))
    blk = axon.block(lambda v: axon.dense(v, 3))
    model = axon.container({"a": blk(x).pipe(axon.batch_norm), "b": axon.add(x, axon.constant(np.ones(3, np.float32)))})
    return axon.serialize(model, axon.init(model, axon.template((2, 3)), mode="train"))


VALID = _valid_blob()


def _header(data):
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _rebuild(header, body):
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def _with_meta(text):
    header, body = _header(VALID)
    header["__metadata__"]["axon"] = text(header["__metadata__"]["axon"]) if callable(text) else text
    return _rebuild(header, body)


def _doc_edit(fn):
    def edit(text):
        doc = json.loads(text)
        fn(doc)
        return json.dumps(doc)

    return _with_meta(edit)


def _graph_edit(fn):
    return _doc_edit(lambda doc: fn(doc["graph"]))


def _state_edit(fn):
    return _doc_edit(lambda doc: fn(doc["state"]))


def _find(graph, what):
    for i, node in enumerate(graph["nodes"]):
        if node["op_name"] == what:
            return i
    raise AssertionError(what)


def _node_edit(op_name, path, value):
    return _graph_edit(lambda g: _set(g["nodes"][_find(g, op_name)], path, value))


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


HOSTILE = {
    "empty": b"",
    "random": bytes(RNG.integers(0, 256, 300, dtype=np.uint8)),
    "pickle": pickle.dumps({"model": [1, 2, 3]}),
    "huge_length": struct.pack("<Q", 2**62) + b"{}" + b"\0" * 20,
    "truncated": VALID[: len(VALID) // 2],
    "truncated_header": VALID[:40],
    "trailing": VALID + b"junk",
    "plain_safetensors": safetensors.numpy.save({"a": np.zeros(2, np.float32)}),
    "bad_json": _with_meta("{not json"),
    "nan_in_json": _with_meta(lambda t: t.replace('"output":', '"x":NaN,"output":', 1)),
    "deep_json": _with_meta("[" * 100000 + "]" * 100000),
    "newer_version": _doc_edit(lambda d: d.update(version=99)),
    "string_version": _doc_edit(lambda d: d.update(version="1")),
    "unknown_format": _doc_edit(lambda d: d.update(format="pickle")),
    "no_graph": _doc_edit(lambda d: d.pop("graph")),
    "graph_not_object": _doc_edit(lambda d: d.update(graph=[1, 2])),
    "metadata_not_object": _with_meta("[1, 2]"),
    "unknown_special": _graph_edit(lambda g: _set(g, ["nodes", 0, "op"], {"special": "exec"})),
    "unknown_function": _node_edit("add", ["op"], {"function": "os.system"}),
    "forward_parent": _node_edit("batch_norm", ["parents"], [5]),
    "self_parent": _graph_edit(lambda g: _set(g["nodes"][_find(g, "batch_norm")], ["parents"], [_find(g, "batch_norm")])),
    "bad_output": _graph_edit(lambda g: _set(g, ["output"], 1000)),
    "unknown_option": _node_edit("add", ["opts"], {"evil": 1}),
    "object_dtype": _node_edit("batch_norm", ["parameters", 0, "dtype"], "O"),
    "negative_shape": _node_edit("batch_norm", ["parameters", 0, "shape"], [-1]),
    "bool_shape": _node_edit("batch_norm", ["parameters", 0, "shape"], [True]),
    "unknown_tag": _graph_edit(lambda g: _set(g, ["nodes", 0, "opts", "shape"], {"$eval": "1"})),
    "missing_tensor": _node_edit("constant", ["opts", "value"], {"$tensor": "nope"}),
    "constant_not_tensor": _node_edit("constant", ["opts", "value"], "rm -rf"),
    "input_shape_string": _node_edit("input", ["opts", "shape"], "big"),
    "self_block": _graph_edit(lambda g: _set(g, ["blocks", 0, "graph", "nodes", 1], {
        "id": 1, "name": None, "op": {"special": "block"}, "op_name": "block", "parents": [0], "opts": {"block": {"$block": 0}},
    })),
    "container_index": _node_edit("container", ["opts", "structure", "a"], 7),
    "container_bool": _node_edit("container", ["opts", "structure", "a"], True),
    "args_mismatch": _node_edit("batch_norm", ["args"], ["layer"]),
    "bad_mode": _node_edit("batch_norm", ["mode"], "always"),
    "bad_policy": _node_edit("batch_norm", ["policy"], {"params": "int8"}),
    "bad_initializer": _node_edit("batch_norm", ["parameters", 0, "initializer"], {"name": "builtins.eval"}),
    "bad_initializer_options": _node_edit("batch_norm", ["parameters", 0, "initializer"], {"name": "uniform", "options": {"evil": 1}}),
    "callable_name": _node_edit("batch_norm", ["name"], {"$fn": "axon.layers.dense"}),
    "state_not_object": _doc_edit(lambda d: d.update(state="{")),
    "state_path_clash": _state_edit(lambda st_: st_["entries"].append({"path": [st_["entries"][0]["path"][0]], "key": st_["entries"][0]["key"]})),
    "state_duplicate": _state_edit(lambda st_: st_["entries"].append(st_["entries"][0])),
    "state_missing_tensor": _state_edit(lambda st_: st_["entries"][0].update(key="zzz")),
    "state_bad_path": _state_edit(lambda st_: st_["entries"][0].update(path=[])),
    "state_path_not_strings": _state_edit(lambda st_: st_["entries"][0].update(path=[1, 2])),
    "state_bad_qtensor": _state_edit(lambda st_: st_["entries"][0].update(qtensor={"value": st_["entries"][0]["key"]})),
    "state_bad_prng": _state_edit(lambda st_: st_["entries"][0].update(prng_impl="evil")),
    "state_bad_frozen": _state_edit(lambda st_: st_.update(frozen=[[3]])),
}


def _shape_lie():
    header, body = _header(VALID)
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = [s + 1 for s in header[name]["shape"]] or [2]
    return _rebuild(header, body)


HOSTILE["tensor_shape_lie"] = _shape_lie()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_and_corrupted_files_raise_serialization_error(name):
    before = dict(serialization.registered_layers())
    with pytest.raises(SerializationError) as info:
        axon.deserialize(HOSTILE[name])
    assert isinstance(info.value, ValueError) and str(info.value)
    assert serialization.registered_layers() == before  # loading has no side effects


def test_specific_messages():
    with pytest.raises(SerializationError, match="not an axon file"):
        axon.deserialize(HOSTILE["pickle"])
    with pytest.raises(SerializationError, match="newer axon"):
        axon.deserialize(HOSTILE["newer_version"])
    with pytest.raises(SerializationError, match="'os.system' is not registered"):
        axon.deserialize(HOSTILE["unknown_function"])
    with pytest.raises(SerializationError, match="contains itself"):
        axon.deserialize(HOSTILE["self_block"])
    with pytest.raises(SerializationError, match=r"option\(s\) \['evil'\]"):
        axon.deserialize(HOSTILE["unknown_option"])
    with pytest.raises(SerializationError, match="parameters only"):
        axon.deserialize(serialization.serialize_state({"a": {"b": jnp.ones(1)}}))
    with pytest.raises(TypeError, match="expected bytes"):
        axon.deserialize("a string")


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_fuzz_random_and_mutated_bytes(data):
    kind = data.draw(st.sampled_from(["random", "flip", "truncate", "splice", "metadata"]))
    if kind == "random":
        blob = data.draw(st.binary(max_size=512))
    elif kind == "flip":
        blob = bytearray(VALID)
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] = data.draw(st.integers(0, 255))
        blob = bytes(blob)
    elif kind == "truncate":
        blob = VALID[: data.draw(st.integers(0, len(VALID) - 1))]
    elif kind == "splice":
        i = data.draw(st.integers(0, len(VALID)))
        blob = VALID[:i] + data.draw(st.binary(min_size=1, max_size=16)) + VALID[i:]
    else:
        header, body = _header(VALID)
        text = header["__metadata__"]["axon"]
        i = data.draw(st.integers(0, len(text) - 1))
        header["__metadata__"]["axon"] = text[:i] + data.draw(st.text(max_size=4)) + text[i + 1 :]
        blob = _rebuild(header, body)
    try:
        model, state = axon.deserialize(blob)
    except SerializationError:
        return
    assert isinstance(model, axon.Axon) and isinstance(state, axon.ModelState)


# --------------------------------------------------------------------------------------
# parameters alone


def _model(units=3):
    return axon.input("x", shape=(None, 2)).pipe(axon.dense, units).pipe(axon.batch_norm)


def test_save_state_and_load_state_with_reports(tmp_path):
    template = axon.template((2, 2))
    state = axon.init(_model(), template)
    path = tmp_path / "w.safetensors"
    axon.save_state(path, state)
    assert_same_state(state, axon.load_state(path))
    assert_same_state(state, axon.load_state(path, _model(), template))

    bigger = _model().pipe(axon.dense, 1)
    with pytest.raises(StateMismatchError, match="missing: dense_1.kernel, dense_1.bias") as info:
        axon.load_state(path, bigger)
    assert info.value.report.missing == [("dense_1", "kernel"), ("dense_1", "bias")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        partial = axon.load_state(path, bigger, strict=False)  # nothing to drop: no warning
    filled = axon.build(bigger)[0](template, partial)  # the missing entries are initialized
    leaves_equal(filled["dense_0"], state["dense_0"])
    assert filled["dense_1"]["kernel"].shape == (3, 1)

    wider = _model(units=4)
    report = serialization.check_state(wider, state, template)
    assert sorted(report.mismatched) == [
        (("batch_norm_0", p), (4,), (3,)) for p in ("beta", "gamma", "mean", "var")
    ] + [(("dense_0", "bias"), (4,), (3,)), (("dense_0", "kernel"), (2, 4), (2, 3))]
    assert not report.missing and not report.unexpected and not report.ok
    # without a template only the fixed shapes are checked (dense's kernel depends on the input)
    assert serialization.check_state(wider, state).mismatched == [(("dense_0", "bias"), (4,), (3,))]
    with pytest.warns(UserWarning, match="dropping"):
        dropped = axon.load_state(path, wider, template, strict=False)
    assert dropped.paths() == []

    other = axon.input("x", shape=(None, 2)).pipe(axon.dense, 3, name="renamed")
    report = serialization.check_state(other, state)
    assert ("renamed", "kernel") in report.missing and ("batch_norm_0", "var") in report.unexpected
    assert "missing: renamed.kernel" in str(report)


def test_load_state_reads_model_files_and_foreign_safetensors(tmp_path):
    template = axon.template((2, 2))
    model = _model()
    state = axon.init(model, template)
    axon.save(tmp_path / "m.axon", model, state)
    assert_same_state(state, axon.load_state(tmp_path / "m.axon", model))
    # a safetensors file written by another tool: paths from dotted names, kinds from the model
    foreign = {".".join(p): np.asarray(v) for p, v in ((p, state.data[p[0]][p[1]]) for p in state.paths())}
    safetensors.numpy.save_file(foreign, str(tmp_path / "foreign.safetensors"))
    loaded = axon.load_state(tmp_path / "foreign.safetensors", model)
    assert loaded.state_paths == {("batch_norm_0", "mean"), ("batch_norm_0", "var")}
    leaves_equal(loaded.data, state.data)
    with pytest.raises(SerializationError, match="not an axon file"):
        axon.load(tmp_path / "foreign.safetensors")


# --------------------------------------------------------------------------------------
# files that must fail fast: bounded ranks and dimensions, checked on the host

_HANG_CHECK = r"""
import faulthandler, sys, time
faulthandler.dump_traceback_later(float(sys.argv[2]), exit=True)  # a hang in C code still ends the process
import axon
from axon.serialization import SerializationError
path = sys.argv[1]
for name, read in [("load_state", axon.load_state), ("load", axon.load)]:
    start = time.perf_counter()
    try:
        read(path)
    except SerializationError as e:
        print(name, "SerializationError", round(time.perf_counter() - start, 3), e)
    else:
        print(name, "LOADED")
"""


def _empty_tensor_file(shape, dtype="F32"):
    header = json.dumps({"a": {"dtype": dtype, "shape": shape, "data_offsets": [0, 0]}}, separators=(",", ":")).encode()
    return struct.pack("<Q", len(header)) + header


def test_a_76_byte_file_of_an_empty_tensor_with_enormous_dimensions_fails_fast(tmp_path):
    import subprocess
    import sys

    data = _empty_tensor_file([0, 9_999_999_999_999])
    assert len(data) == 76
    path = tmp_path / "hostile.safetensors"
    path.write_bytes(data)
    # the reads run in a child process whose watchdog ends it after 2 s of reading (+ import time)
    proc = subprocess.run([sys.executable, "-c", _HANG_CHECK, str(path), "60"], capture_output=True, text=True, timeout=120, env=_child_env())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["load_state", "SerializationError"], ["load", "SerializationError"]], proc.stdout
    for line in lines:
        assert float(line.split()[2]) < 2.0, line
        assert "empty tensor of shape [0, 9999999999999]" in line


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ([0] * 33, "33 dimensions; a tensor may have at most 32"),
        ([0, 2**31, 1], "must multiply to at most 2147483647"),
        ([0, 2**16, 2**16], "must multiply to at most 2147483647"),
        ([-1], "non-negative ints"),
        ([2**64], "do not hold shape"),
        ([1.5], "non-negative ints"),
    ],
)
def test_shapes_outside_the_bounds_are_rejected_on_the_host(shape, message):
    data = _empty_tensor_file(shape)
    for read in (serialization.deserialize_state, axon.deserialize):
        with pytest.raises(SerializationError, match=message):
            read(data)


def test_empty_tensors_within_the_bounds_still_load():
    state = serialization.deserialize_state(safetensors.numpy.save({"e": np.zeros((0, 4096), np.float32)}))
    assert state["e"].shape == (0, 4096)
    assert serialization.deserialize_state(_empty_tensor_file([0, 2**31 - 1]))["a"].shape == (0, 2**31 - 1)
    header = json.dumps({"a": {"dtype": "F32", "shape": [2**30], "data_offsets": [0, 2**32]}}).encode()
    with pytest.raises(SerializationError, match="offsets .* are not inside the 0 bytes"):
        serialization.deserialize_state(struct.pack("<Q", len(header)) + header)


def _child_env():
    """The environment of a child Python that imports this axon (wherever it is imported from)."""
    src = os.path.dirname(os.path.dirname(axon.__file__))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
