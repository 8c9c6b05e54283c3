"""The public functions of the functional layers and of the tool modules (graph rewriting,
hooks, tracing, precision, quantization, model state, serialization, display) document every
parameter in a Google-style ``Args:`` section, with ``Returns:`` and a runnable example: the
check of ``tests/api/test_docstrings.py``, applied to these modules (their examples run as
doctests)."""

import importlib
import inspect
import types

import pytest

from tests.api.test_docstrings import test_args_returns_and_example as check_docstring

MODULES = [
    "axon.layers.attention",
    "axon.layers.conv",
    "axon.layers.dropout",
    "axon.layers.linear",
    "axon.layers.normalization",
    "axon.layers.pooling",
    "axon.layers.recurrent",
    "axon.layers.resize",
    "axon.layers.shape",
]


def _public_functions():
    """``(name, function)`` for each public function defined in ``MODULES`` and each public
    method of their public classes (methods bound to a placeholder, so ``self`` and ``cls``
    are not parameters to describe)."""
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, obj in sorted(vars(module).items()):
            if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
                continue
            if inspect.isfunction(obj):
                yield f"{module_name}.{name}", obj
            elif inspect.isclass(obj):
                for attr, member in sorted(vars(obj).items()):
                    if attr.startswith("_"):
                        continue
                    if isinstance(member, staticmethod):
                        yield f"{module_name}.{name}.{attr}", member.__func__
                    elif isinstance(member, classmethod):
                        yield f"{module_name}.{name}.{attr}", types.MethodType(member.__func__, obj)
                    elif inspect.isfunction(member):
                        yield f"{module_name}.{name}.{attr}", types.MethodType(member, object())


FUNCTIONS = list(_public_functions())


def test_every_module_has_public_functions():
    covered = {name.rsplit(".", 1)[0] for name, _ in FUNCTIONS} | {
        name.rsplit(".", 2)[0] for name, _ in FUNCTIONS
    }
    assert set(MODULES) <= covered


@pytest.mark.parametrize("name, fn", FUNCTIONS, ids=[name for name, _ in FUNCTIONS])
def test_args_returns_and_example(name, fn):
    check_docstring(name, fn)
