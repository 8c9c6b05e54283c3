"""The registry of permanent names (axon.registry), and a model file saved by the previous
release (tests/data, made by tests/data/make_legacy_model.py at commit df7f6d6) loading
with today's code."""

import ast
import json
import pathlib
import struct

import jax.numpy as jnp
import numpy as np
import pytest

import axon
from axon import registry
from axon.model_state import get_path
from axon.serialization import SerializationError
from axon.serialization.legacy_names import legacy_initializer_name, legacy_op_name

DATA = pathlib.Path(__file__).parent / "data"
SRC = pathlib.Path(axon.__file__).parent


# --------------------------------------------------------------------------------------
# the registry


def test_registry_is_a_leaf_module():
    tree = ast.parse((SRC / "registry.py").read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m and (m == "axon" or m.startswith("axon."))], imported


def test_register_lookup_name_of_and_unregister():
    def f(x):
        return x

    def g(x):
        return x

    assert registry.register("op", "tests.registry.basic", f) is f
    assert registry.register("op", "tests.registry.basic", f) is f  # the same object again: fine
    assert registry.lookup("op", "tests.registry.basic") is f
    assert registry.name_of("op", f) == "tests.registry.basic"
    assert registry.name_of("initializer", f) is None  # one table per kind
    with pytest.raises(registry.DuplicateNameError, match=r"'tests.registry.basic' is already registered.*overwrite"):
        registry.register("op", "tests.registry.basic", g)
    assert issubclass(registry.DuplicateNameError, ValueError)
    registry.register("op", "tests.registry.basic", g, overwrite=True)
    assert registry.lookup("op", "tests.registry.basic") is g
    assert registry.name_of("op", f) is None and registry.name_of("op", g) == "tests.registry.basic"
    registry.unregister("op", "tests.registry.basic")
    assert registry.name_of("op", g) is None
    with pytest.raises(registry.UnknownNameError):
        registry.lookup("op", "tests.registry.basic")


def test_an_object_may_have_two_names_and_name_of_gives_the_first():
    def h(x):
        return x

    registry.register("op", "tests.registry.first", h)
    registry.register("op", "tests.registry.second", h)
    assert registry.name_of("op", h) == "tests.registry.first"
    registry.unregister("op", "tests.registry.first")
    assert registry.name_of("op", h) == "tests.registry.second"
    registry.unregister("op", "tests.registry.second")


def test_unknown_names_and_kinds_raise_clear_errors():
    with pytest.raises(registry.UnknownNameError, match=r"no op is registered as 'axon.dens'; close matches: 'axon.dense'"):
        registry.lookup("op", "axon.dens")
    with pytest.raises(registry.UnknownNameError, match=r"no initializer factory is registered as 'axon.initializers.glorot'.*"
                       r"'axon.initializers.glorot_\w+'"):
        registry.lookup("initializer_factory", "axon.initializers.glorot")
    with pytest.raises(registry.UnknownNameError, match=r"registered as 'zzzz'$"):  # no close match: none listed
        registry.lookup("op", "zzzz")
    with pytest.raises(ValueError, match=r"kind to be one of \['op', 'initializer', 'initializer_factory'\], got 'layer'"):
        registry.register("layer", "tests.registry.x", len)
    with pytest.raises(TypeError, match="non-empty string"):
        registry.register("op", " padded ", len)


def test_the_same_function_loaded_twice_is_one_op():
    # doctest collection may import a module a second time under another name: its
    # functions are new objects of the same definition, and both copies have the name
    source = "def twin(x):\n    return x\n"
    first, second = {}, {}
    exec(compile(source, "tests/registry_twin.py", "exec"), first)
    exec(compile(source, "tests/registry_twin.py", "exec"), second)
    registry.register("op", "tests.registry.twin", first["twin"])
    registry.register("op", "tests.registry.twin", second["twin"])
    assert registry.lookup("op", "tests.registry.twin") is first["twin"]
    assert registry.name_of("op", second["twin"]) == "tests.registry.twin"
    # a different function of the same name is not a copy
    exec(compile("def twin(x):\n    return -x\n", "tests/other_file.py", "exec"), third := {})
    with pytest.raises(registry.DuplicateNameError):
        registry.register("op", "tests.registry.twin", third["twin"])
    registry.unregister("op", "tests.registry.twin")


def test_factory_products_carry_the_name_and_every_option():
    @registry.factory("initializer_factory", "tests.registry.scaled")
    def scaled(value, *, scale=2.0):
        """Doc kept."""
        return lambda key, shape, dtype=jnp.float32: jnp.full(shape, value * scale, dtype)

    made = scaled(3.0)
    assert registry.made_by(made) == ("tests.registry.scaled", {"value": 3.0, "scale": 2.0})
    assert registry.made_by(scaled(1.0, scale=0.5)) == ("tests.registry.scaled", {"value": 1.0, "scale": 0.5})
    assert registry.lookup("initializer_factory", "tests.registry.scaled") is scaled
    assert scaled.__doc__ == "Doc kept." and scaled.__name__ == "scaled"
    with pytest.raises(TypeError):  # bad options raise the factory's own error
        scaled(1.0, bad=2)
    assert registry.made_by(lambda: None) is None
    registry.unregister("initializer_factory", "tests.registry.scaled")


def test_builtin_names_follow_the_documented_scheme():
    ops = registry.names("op")
    assert ops["axon.dense"] is axon.layers.dense
    assert ops["axon.separable_conv2d"] is axon.layers.separable_conv2d
    assert ops["axon.relu"] is axon.activations.relu
    assert ops["axon.fn"] is axon.api.core.apply_fn
    # (the doctests of axon's modules register functions of theirs as "doc.*": left out)
    assert all(name.startswith("axon.") for name in ops
               if registry.lookup("op", name).__module__.startswith("axon.") and not name.startswith("doc."))
    factories = registry.names("initializer_factory")
    for name in [*axon.initializers.INITIALIZERS, "full"]:
        assert factories["axon.initializers." + name] is getattr(axon.initializers, name)
    assert registry.made_by(axon.initializers.get("he_normal")) == ("axon.initializers.he_normal", {"scale": 2.0})


def test_register_layer_is_the_users_way_in():
    def user_op(x):
        return x + 1

    assert axon.register_layer("tests.registry.user_op", user_op) is user_op
    assert registry.lookup("op", "tests.registry.user_op") is user_op
    with pytest.raises(ValueError, match="reserved"):
        axon.register_layer("axon.user_op", user_op)
    with pytest.raises(ValueError, match="reserved"):
        axon.serialization.register_initializer("axon.my_init", lambda key, shape, dtype=None: None)
    registry.unregister("op", "tests.registry.user_op")


def test_loading_an_unknown_op_lists_close_matches():
    def registered_op(x):
        return x

    axon.register_layer("tests.registry.close_op", registered_op)
    data = axon.serialize(axon.layer(registered_op, [axon.input("x")]), {})
    registry.unregister("op", "tests.registry.close_op")
    axon.register_layer("tests.registry.close_opp", registered_op)
    try:
        with pytest.raises(SerializationError, match=r"'tests.registry.close_op' is not registered in this program "
                           r"\(close matches: 'tests.registry.close_opp'\); register it"):
            axon.deserialize(data)
    finally:
        registry.unregister("op", "tests.registry.close_opp")


# --------------------------------------------------------------------------------------
# names of the previous release


@pytest.mark.parametrize(("old", "new"), [
    ("axon.layers.dense", "axon.dense"),
    ("axon.activations.relu", "axon.relu"),
    ("axon.api.conv.separable_conv2d_op", "axon.separable_conv2d_op"),
    ("axon.api.conv.separable_conv3d_op", "axon.separable_conv3d_op"),
    ("axon.api.columns.stack_columns_op", "axon.stack_columns"),
])
def test_old_op_names_translate_to_registered_ones(old, new):
    assert legacy_op_name(old) == new
    assert registry.lookup("op", new) is axon.serialization.registry.layer_fn(old)


def test_old_initializer_names_translate_and_others_do_not():
    for name in [*axon.initializers.INITIALIZERS, "full"]:
        assert registry.lookup("initializer_factory", legacy_initializer_name(name)) is getattr(axon.initializers, name)
    assert legacy_initializer_name("my.init") is None
    assert legacy_op_name("axon.layers.dense.extra") is None and legacy_op_name("my.dense") is None


def _graph_names(data):
    (n,) = struct.unpack("<Q", data[:8])
    graph = json.loads(json.loads(data[8 : 8 + n])["__metadata__"]["axon"])["graph"]
    found = set()

    def walk(j, key=None):
        if isinstance(j, dict):
            if key in ("$init", "initializer") and "name" in j:
                found.add(("initializer", j["name"]))
            for k, v in j.items():
                if k in ("function", "$fn") and isinstance(v, str):
                    found.add(("op", v))
                walk(v, k)
        elif isinstance(j, list):
            for v in j:
                walk(v, key)

    walk(graph)
    return found


def test_a_model_saved_by_the_previous_release_loads_and_predicts_as_it_did(tmp_path):
    path = DATA / "legacy_model_df7f6d6.axon"
    old_names = _graph_names(path.read_bytes())
    # the file really is old: module-path op names and bare initializer names
    assert {("op", "axon.api.conv.separable_conv2d_op"), ("op", "axon.layers.dense"),
            ("op", "axon.activations.relu"), ("initializer", "variance_scaling")} <= old_names
    model, state = axon.load(path)
    inputs = dict(np.load(DATA / "legacy_model_inputs.npz"))
    expected = np.load(DATA / "legacy_model_expected.npy")  # computed by the previous release
    np.testing.assert_allclose(np.asarray(axon.predict(model, state, inputs)), expected, rtol=1e-5, atol=1e-6)
    # its initializers (with options) were translated: initializing with the seed the old
    # release used gives the parameters it saved
    templates = {k: axon.template(v.shape, v.dtype) for k, v in inputs.items()}
    fresh = axon.init(model, templates, seed=7)
    assert fresh.paths() == state.paths()
    for p in state.paths():
        np.testing.assert_allclose(np.asarray(get_path(fresh.data, p)), np.asarray(get_path(state.data, p)), rtol=1e-6, err_msg=str(p))
    # saved again, it names only today's registered axon.* functions
    again = tmp_path / "again.axon"
    axon.save(again, model, state)
    names = _graph_names(again.read_bytes())
    assert names and all(name.startswith("axon.") for _, name in names), names
    for kind, name in names:
        assert name in registry.names(kind) or name in registry.names("initializer_factory")
    assert ("op", "axon.separable_conv2d_op") in names
    assert ("initializer", "axon.initializers.variance_scaling") in names


def test_loading_an_unknown_initializer_lists_close_matches():
    def ones_like(key, shape, dtype=jnp.float32):
        return jnp.ones(shape, dtype)

    axon.serialization.register_initializer("tests.registry.ones_init", ones_like)
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1, kernel_initializer=ones_like)
    data = axon.serialize(model, None)
    registry.unregister("initializer", "tests.registry.ones_init")
    axon.serialization.register_initializer("tests.registry.ones_initt", ones_like)
    try:
        with pytest.raises(SerializationError, match=r"initializer 'tests.registry.ones_init' is not registered in this "
                           r"program \(close matches: 'tests.registry.ones_initt'[^)]*\); register it"):
            axon.deserialize(data)
    finally:
        registry.unregister("initializer", "tests.registry.ones_initt")
