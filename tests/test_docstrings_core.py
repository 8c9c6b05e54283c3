"""Every public function of the functional core (activations, initializers, losses,
metrics, schedules, updates) documents each of its parameters in a Google-style
``Args:`` section, with ``Returns:`` and a runnable example, by the same rule as the
graph constructors (tests/api/test_docstrings.py). Initializer closures are private;
their factories are the public functions checked here."""

import inspect

import pytest

from axon import activations, initializers, losses, metrics, schedules, updates
from tests.api.test_docstrings import _section
from tests.api.test_docstrings import test_args_returns_and_example as check_docstring

MODULES = (activations, initializers, losses, metrics, schedules, updates)


def _public_functions():
    for module in MODULES:
        names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
        for name in sorted(names):
            obj = getattr(module, name)
            if inspect.isfunction(obj) and obj.__module__ == module.__name__:
                yield f"{module.__name__.removeprefix('axon.')}.{name}", obj
    yield "updates.Update.pipe", updates.identity().pipe  # bound, so ``self`` is not a parameter


FUNCTIONS = list(_public_functions())


def test_every_module_contributes_functions():
    modules = {name.split(".")[0] for name, _ in FUNCTIONS}
    assert modules == {m.__name__.removeprefix("axon.") for m in MODULES}
    assert len(FUNCTIONS) > 90


@pytest.mark.parametrize("name, fn", FUNCTIONS, ids=[name for name, _ in FUNCTIONS])
def test_args_returns_and_example(name, fn):
    if inspect.signature(fn).parameters:
        check_docstring(name, fn)
    else:  # nothing to describe: an empty Args: section is a warning in mkdocs --strict
        doc = inspect.getdoc(fn) or ""
        assert _section(doc, "Returns") is not None, f"{name}: no Returns: section"
        assert ">>>" in doc, f"{name}: no example"
        assert _section(doc, "Args") is None, f"{name}: takes no parameters but has an Args: section"


def test_checker_rejects_an_undocumented_parameter():
    def f(x, *, y=1):
        """Does nothing.

        Args:
            x: a value.

        Returns:
            None.

        >>> f(1)
        """

    with pytest.raises(AssertionError, match="parameter y is not described"):
        check_docstring("f", f)
