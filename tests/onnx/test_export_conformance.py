"""The ONNX export check of tests/conformance.py over every conformance case.

``check_layer`` runs the ONNX check itself when onnx and onnxruntime are installed; CI
installs them only for the reference tests, so this module reruns each test that calls
``check_layer`` (the layer-family and core-layer tests: the same case list) with a
``check_layer`` that only initializes, predicts and checks the ONNX export. A new layer
added to those tests is covered here without a change."""

import importlib
import inspect

import pytest

import axon
from tests.conformance import check_onnx_export

MODULES = (
    "tests.api.test_core_layers",
    "tests.api.test_layer_families",
    "tests.api.test_layer_families_attention",
    "tests.api.test_layer_families_recurrent",
)


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
        check_onnx_export(model, model_state, inputs, out, rtol=max(rtol, 1e-5), atol=max(atol, 1e-5))
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
