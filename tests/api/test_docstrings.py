"""Every public graph constructor (axon.api.*) and every optimizer documents each of its
parameters in a Google-style ``Args:`` section, with ``Returns:``, and keeps a runnable
example (the examples themselves run as doctests)."""

import inspect
import re

import pytest

import axon
from axon import optimizers


def _constructors():
    seen = set()
    for name in sorted(axon.__all__):
        obj = getattr(axon, name)
        if inspect.isfunction(obj) and obj.__module__.startswith("axon.api.") and obj not in seen:
            seen.add(obj)
            yield name, obj
    for name in sorted(optimizers.OPTIMIZERS):
        yield f"optimizers.{name}", optimizers.OPTIMIZERS[name]


def _section(doc: str, title: str) -> str | None:
    m = re.search(rf"^\s*{title}:\s*$(.*?)(?=^\s*(Args|Returns|Raises|Example|Examples):\s*$|^\s*>>>|\Z)", doc, re.M | re.S)
    return m.group(1) if m else None


@pytest.mark.parametrize("name, fn", list(_constructors()), ids=lambda v: v if isinstance(v, str) else "")
def test_args_returns_and_example(name, fn):
    doc = inspect.getdoc(fn) or ""
    args = _section(doc, "Args")
    assert args is not None, f"{name}: no Args: section"
    assert _section(doc, "Returns") is not None, f"{name}: no Returns: section"
    assert ">>>" in doc, f"{name}: no example"
    documented = set(re.findall(r"^\s{4}(\*{0,2}\w+)(?: \([^)]*\))?:", args, re.M))
    for p in inspect.signature(fn).parameters.values():
        shown = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        assert shown in documented, f"{name}: parameter {shown} is not described under Args:"
    extra = documented - {
        ({inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name)
        for p in inspect.signature(fn).parameters.values()
    }
    assert not extra, f"{name}: Args: describes parameters it does not have: {sorted(extra)}"
