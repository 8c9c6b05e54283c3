"""The tensor ops of axon.layers.tensor: NumPy/SciPy references, and each one as a registered
layer through the shared conformance harness (save/load included)."""

import numpy as np
import pytest
import scipy.special

import axon
from axon import layers, registry
from tests.conformance import check_layer

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 3, 4)).astype(np.float32)
Y = RNG.normal(size=(2, 3, 4)).astype(np.float32)
POS = np.abs(X) + 0.5


def _layer(fn, n_inputs=1, **opts):
    xs = [axon.input(f"x{i}") for i in range(n_inputs)]
    return axon.layer(fn, xs, op_name=fn.__name__, **opts)


def _feed(*arrays):
    return {f"x{i}": a for i, a in enumerate(arrays)}


# (id, op, inputs, options, NumPy reference)
CASES = [
    ("divide", layers.divide, [X, POS], {}, X / POS),
    ("power", layers.power, [POS, Y], {}, POS ** Y),
    ("remainder", layers.remainder, [X, POS], {}, np.mod(X, POS)),
    ("remainder_fmod", layers.remainder, [X, POS], {"fmod": True}, np.fmod(X, POS)),
    ("matmul", layers.matmul, [X, Y.transpose(0, 2, 1)], {}, X @ Y.transpose(0, 2, 1)),
    ("sqrt", layers.sqrt, [POS], {}, np.sqrt(POS)),
    ("log", layers.log, [POS], {}, np.log(POS)),
    ("negative", layers.negative, [X], {}, -X),
    ("absolute", layers.absolute, [X], {}, np.abs(X)),
    ("erf", layers.erf, [X], {}, scipy.special.erf(X)),
    ("clip", layers.clip, [X], {"min": -0.5, "max": 0.25}, np.clip(X, -0.5, 0.25)),
    ("where", layers.where, [X > 0, X, Y], {}, np.where(X > 0, X, Y)),
    ("cast", layers.cast, [X * 3], {"dtype": "int32"}, (X * 3).astype(np.int32)),
    ("gather", layers.gather, [X, np.array([[3, -1], [0, 1]], np.int32)], {"axis": 2},
     np.take(X, [[3, 3], [0, 1]], axis=2)),
    ("slice_axes", layers.slice_axes, [X], {"starts": (1, 3), "ends": (3, 0), "axes": (1, 2), "steps": (1, -2)},
     X[:, 1:3, 3:0:-2]),
    ("broadcast", layers.broadcast, [X[:, :1]], {"shape": (5, 1, 1, 4)}, np.broadcast_to(X[:, :1], (5, 2, 1, 4))),
    ("reduce_mean", layers.reduce, [X], {"kind": "mean", "axes": (0, 2), "keepdims": False}, X.mean(axis=(0, 2))),
    ("reduce_max", layers.reduce, [X], {"kind": "max", "axes": None, "keepdims": True}, X.max(keepdims=True)),
    ("pad_axes", layers.pad_axes, [X], {"pads": ((0, 1), (2, -1), (1, 1)), "value": 2.0},
     np.pad(X[:, :2], [(0, 1), (2, 0), (1, 1)], constant_values=2.0)),
    ("pad_axes_reflect", layers.pad_axes, [X], {"pads": ((0, 0), (1, 1), (2, 0)), "method": "reflect"},
     np.pad(X, [(0, 0), (1, 1), (2, 0)], mode="reflect")),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_functional_op_matches_numpy(case):
    _, fn, arrays, opts, expected = case
    np.testing.assert_allclose(np.asarray(fn(*arrays, **opts)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_layer_conformance(case):
    name, fn, arrays, opts, expected = case
    model = _layer(fn, len(arrays), **opts)
    skip = {"policy": "integer output"} if name == "cast" else {}
    if name in ("gather", "broadcast", "pad_axes"):  # the indices, the new leading axis, the padded axis 0
        skip["onnx_batch"] = "axis 0 is data here, not a batch of independent examples"
    check_layer(model, _feed(*arrays), {}, expected=expected, rtol=1e-5, atol=1e-5, skip=skip or None)
    assert registry.name_of("op", fn) == f"axon.{fn.__name__}"


def test_equal_and_integer_divide():
    a, b = np.array([-7, 7, 3], np.int32), np.array([2, 2, 3], np.int32)
    assert layers.divide(a, b).tolist() == [-3, 3, 1]  # truncated toward zero, as C and ONNX
    assert layers.equal(a, b).tolist() == [False, False, True]


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="kind"):
        layers.reduce(X, kind="median")
    with pytest.raises(ValueError, match="one \\(before, after\\) pair per axis"):
        layers.pad_axes(X, pads=((1, 1),))
    with pytest.raises(ValueError, match="method"):
        layers.pad_axes(X, pads=((0, 0),) * 3, method="wrap")
    with pytest.raises(ValueError, match="equal lengths"):
        layers.slice_axes(X, starts=(0,), ends=(1, 2), axes=(0,))
    with pytest.raises(ValueError, match="non-zero"):
        layers.slice_axes(X, starts=(0,), ends=(1,), axes=(0,), steps=(0,))
