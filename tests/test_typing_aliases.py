"""The Literal aliases of axon.typing_aliases list exactly the options the code accepts, and
the public constructors use them instead of ``str``/``Any``."""

import inspect
from typing import get_args

import pytest

import axon
from axon import activations, initializers, losses
from axon import typing_aliases as T
from axon.api import core, recurrent, resize


def test_literals_match_the_tables():
    assert set(get_args(T.ActivationName)) == set(activations.ACTIVATIONS)
    assert set(get_args(T.InitializerName)) == set(initializers.INITIALIZERS) - {"full"}
    assert set(get_args(T.Reduction)) == set(losses.REDUCTIONS)
    assert set(get_args(T.ResizeMethod)) == set(resize.METHODS)
    assert set(get_args(T.LayerMode)) == set(core._MODES)
    assert set(get_args(T.Unroll)) == set(recurrent._UNROLLS)
    assert set(get_args(T.Channels)) == {"first", "last"}
    assert set(get_args(T.PaddingName)) == {"valid", "same"}


def test_every_literal_value_is_accepted():
    x = axon.input("x", shape=(None, 4, 4, 2))
    for name in get_args(T.ActivationName):
        assert activations.get(name) is activations.ACTIVATIONS[name]
    for name in get_args(T.InitializerName):
        assert callable(initializers.get(name))
    for channels in get_args(T.Channels):
        for padding in get_args(T.PaddingName):
            axon.conv(x, 3, kernel_size=2, padding=padding, channels=channels)
    for method in get_args(T.ResizeMethod):
        axon.resize(x, (8, 8), method=method)
    for mode in get_args(T.LayerMode):
        axon.layer(lambda v: v, [x], mode=mode)
    for reduction in get_args(T.Reduction):
        losses.mean_squared_error([[1.0]], [[0.0]], reduction=reduction)


# Parameter name -> the alias its annotation must use (annotations are strings here,
# because every module uses ``from __future__ import annotations``).
EXPECTED = {
    "activation": {"Activation", "Activation | None"},
    "gate": {"Activation"},
    "channels": {"Channels"},
    "padding": {"Padding"},
    "name": {"LayerName", "str"},  # str: input/param/namespace names, which are required
    "reduction": {"Reduction"},
    "unroll": {"Unroll"},
    "method": {"ResizeMethod"},
}


def _public_functions():
    for n in axon.__all__:
        obj = getattr(axon, n)
        if inspect.isfunction(obj) and n != "register_layer":  # its name is a registry key
            yield n, obj
    for n in losses.__all__:
        obj = getattr(losses, n)
        if inspect.isfunction(obj) and n != "get":
            yield f"losses.{n}", obj


@pytest.mark.parametrize("fname, f", list(_public_functions()), ids=lambda v: v if isinstance(v, str) else "")
def test_public_signatures_use_the_aliases(fname, f):
    for p in inspect.signature(f).parameters.values():
        if p.name in EXPECTED:
            assert p.annotation in EXPECTED[p.name], f"{fname}({p.name}: {p.annotation})"
        if p.name.endswith("initializer"):
            assert p.annotation in ("Initializer", "Initializer | None"), f"{fname}({p.name}: {p.annotation})"
