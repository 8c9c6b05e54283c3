"""The public functions of the functional layers and of the tool modules (graph ops and
rewriting, hooks, tracing, precision, loss scaling, quantization, model state,
serialization, display) document every parameter in a Google-style ``Args:`` section, with
``Returns:`` and a runnable example: the check of ``tests/api/test_docstrings.py``, applied
to these modules (the examples themselves run as doctests)."""

import importlib
import inspect
import types

import pytest

from tests.api.test_docstrings import _section
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
    "axon.graph_ops",
    "axon.graph_rewrite",
    "axon.hooks",
    "axon.tracing",
    "axon.mixed_precision",
    "axon.loss_scale",
    "axon.quantization",
    "axon.model_state",
    "axon.serialization.api",
    "axon.display",
    "axon.pretrained.load",
    "axon.pretrained.rules",
    "axon.pretrained.sources",
    "axon.models.resnet",
    "axon.models.bert",
    "axon.models.gpt2",
    "axon.models.generate",
    "axon.models._transformer",
]

# JAX's pytree protocol, called by JAX rather than by users
PROTOCOL_METHODS = {"tree_flatten", "tree_unflatten"}


def _public_names(module):
    names = getattr(module, "__all__", None)
    return sorted(names) if names is not None else sorted(n for n in vars(module) if not n.startswith("_"))


def _public_functions():
    """``(name, function)`` for each public function defined in ``MODULES`` (``__all__``
    where the module has one) and each public method of their public classes; methods are
    bound to a placeholder, so ``self`` and ``cls`` are not parameters to describe."""
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in _public_names(module):
            obj = getattr(module, name)
            if getattr(obj, "__module__", None) != module_name:
                continue
            if inspect.isfunction(obj):
                yield f"{module_name}.{name}", obj
            elif inspect.isclass(obj):
                for attr, member in sorted(vars(obj).items()):
                    if attr.startswith("_") or attr in PROTOCOL_METHODS:
                        continue
                    if isinstance(member, staticmethod):
                        yield f"{module_name}.{name}.{attr}", member.__func__
                    elif isinstance(member, classmethod):
                        yield f"{module_name}.{name}.{attr}", types.MethodType(member.__func__, obj)
                    elif inspect.isfunction(member):
                        yield f"{module_name}.{name}.{attr}", types.MethodType(member, object())


FUNCTIONS = list(_public_functions())


def test_every_module_is_checked():
    checked = {name.rsplit(".", 1)[0] for name, _ in FUNCTIONS} | {name.rsplit(".", 2)[0] for name, _ in FUNCTIONS}
    assert set(MODULES) <= checked


@pytest.mark.parametrize("name, fn", FUNCTIONS, ids=[name for name, _ in FUNCTIONS])
def test_args_returns_and_example(name, fn):
    if inspect.signature(fn).parameters:
        check_docstring(name, fn)
    else:  # nothing to describe under Args:
        doc = inspect.getdoc(fn) or ""
        assert _section(doc, "Returns") is not None, f"{name}: no Returns: section"
        assert ">>>" in doc, f"{name}: no example"


def test_the_check_rejects_an_undescribed_parameter():
    def half_documented(x, y):
        """Add.

        Args:
            x: a number.

        Returns:
            The sum.

        >>> half_documented(1, 2)
        3
        """
        return x + y

    with pytest.raises(AssertionError, match="parameter y is not described"):
        check_docstring("half_documented", half_documented)
