"""The ONNX export step of the layer conformance check (tests/conformance.py's
``check_onnx_export``) over every conformance case.

Every test module that calls ``check_layer`` is found, and each of its tests that does is
rerun here with ``check_layer`` reduced to: initialize, predict, export to ONNX and compare
onnxruntime's and the ONNX reference evaluator's outputs (``skip={"onnx": reason}`` opts a
case out). So a layer added to the conformance tests is exported without a change here;
the tests need onnx and onnxruntime (the ``reference`` marker), which CI installs for the
reference step."""

import importlib
import inspect
from pathlib import Path

import pytest

import axon
from tests.conformance import check_onnx_export

TESTS = Path(__file__).resolve().parent.parent
EXCLUDED = {"tests.test_conformance"}  # the harness's own tests, which feed it failing cases


def _modules():
    for path in sorted(TESTS.rglob("test_*.py")):
        name = ".".join(path.relative_to(TESTS.parent).with_suffix("").parts)
        if name not in EXCLUDED and "check_layer(" in path.read_text() and "tests.onnx" not in name:
            yield name


MODULES = tuple(_modules())


def _is_fixture(obj):
    return hasattr(obj, "_pytestfixturefunction") or type(obj).__name__ == "FixtureFunctionDefinition"


def _parameter_sets(fn):
    """``(id, kwargs)`` for each combination of the test's ``parametrize`` marks."""
    sets = [("", {})]
    for mark in getattr(fn, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names, values = mark.args[0], mark.args[1]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        expanded = []
        for i, value in enumerate(values):
            value = value.values if hasattr(value, "values") and hasattr(value, "marks") else value
            value = value if len(names) > 1 else (value,)
            expanded.append((f"{i}", dict(zip(names, value, strict=True))))
        sets = [(f"{a}-{b}".strip("-"), {**ka, **kb}) for a, ka in sets for b, kb in expanded]
    return sets


def _cases():
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if _is_fixture(obj):  # the module's own fixtures, for its tests' arguments
                globals().setdefault(name, obj)
        for name, fn in vars(module).items():
            if name.startswith("test_") and inspect.isfunction(fn) and "check_layer(" in inspect.getsource(fn):
                for case_id, kwargs in _parameter_sets(fn):
                    label = f"{module_name.rsplit('.', 1)[1]}::{name}" + (f"[{case_id}]" if case_id else "")
                    yield pytest.param(module_name, name, kwargs, id=label)


def _export_check_only(model, inputs, params=None, *, init_state=None, results=None, skip=None,
                       rtol=1e-5, atol=1e-5, **_):
    """``check_layer`` reduced to its ONNX export step (and the results the tests read)."""
    init_fn, predict_fn = axon.build(model)
    model_state = init_fn(inputs, init_state)
    out = predict_fn(model_state, inputs)
    if "onnx" not in (skip or {}):
        check_onnx_export(model, model_state, inputs, out, rtol=max(rtol, 1e-5), atol=max(atol, 1e-5),
                          batch_check="onnx_batch" not in (skip or {}))
    if results is not None:
        train_init, train_fn = axon.build(model, mode="train")
        train_state = train_init(inputs, model_state)
        results.update(inference=out, train=train_fn(train_state, inputs), train_state=train_state)
    return model_state


@pytest.mark.parametrize(("module_name", "test_name", "arguments"), list(_cases()))
def test_conformance_case_exports_to_onnx(module_name, test_name, arguments, onnx, onnxruntime, monkeypatch, request):
    module = importlib.import_module(module_name)
    monkeypatch.setattr(module, "check_layer", _export_check_only)
    fn = getattr(module, test_name)
    fn(**{name: arguments[name] if name in arguments else request.getfixturevalue(name)
          for name in inspect.signature(fn).parameters})
