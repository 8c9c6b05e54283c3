"""axon.tree: the jax.tree_util-based walker of nested containers, and bidirectional built on it."""

from collections import namedtuple

import jax.numpy as jnp
import numpy as np
import pytest

import axon
from axon.tree import at_path, flatten_with_paths, unflatten

Pair = namedtuple("Pair", "first second")


def test_paths_reach_every_leaf_and_unflatten_rebuilds():
    tree = {"b": [1, (2, 3)], "a": Pair(4, {"z": 5}), "n": None}
    leaves, treedef = flatten_with_paths(tree)
    assert sorted(leaf for _, leaf in leaves if leaf is not None) == [1, 2, 3, 4, 5]
    assert (("n",), None) in leaves  # None is a leaf, not an empty container
    for path, leaf in leaves:
        assert at_path(tree, path) is leaf
    rebuilt = unflatten(treedef, [leaf for _, leaf in leaves])
    assert rebuilt == tree and isinstance(rebuilt["a"], Pair) and isinstance(rebuilt["b"][1], tuple)


def test_a_bare_leaf_has_the_empty_path():
    leaves, treedef = flatten_with_paths("graph")
    assert leaves == [((), "graph")]
    assert unflatten(treedef, ["other"]) == "other"


def _predict(model, x):
    state = axon.init(model, axon.template(x.shape))
    return axon.predict(model, state, x)


def test_bidirectional_dict_and_namedtuple_outputs():
    x = axon.input("x", shape=(None, 3, 2))

    def fwd(v):
        return {"same": v, "pair": Pair(v, axon.fn(v, lambda a: a * 2))}

    out = axon.bidirectional(x, fwd, axon.add)
    assert set(out) == {"same", "pair"} and isinstance(out["pair"], Pair)
    data = jnp.arange(6.0).reshape(1, 3, 2)
    got = _predict(axon.container({"s": out["same"], "p": out["pair"].second}), data)
    # forward + un-reversed backward of an identity is 2·x; of 2·x is 4·x
    np.testing.assert_allclose(got["s"], 2 * np.asarray(data))
    np.testing.assert_allclose(got["p"], 4 * np.asarray(data))


def test_bidirectional_rejects_non_graph_leaves():
    x = axon.input("x", shape=(None, 3, 2))
    with pytest.raises(TypeError, match=r"found (NoneType: )?None"):
        axon.bidirectional(x, lambda v: (v, None), axon.add)
    with pytest.raises(TypeError, match=r"found (int: )?3"):
        axon.bidirectional(x, lambda v: [v, 3], axon.add)
