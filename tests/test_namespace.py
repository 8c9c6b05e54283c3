"""The public namespace: ``dir(axon)`` lists the API, not the internal modules."""

import re
import types
from pathlib import Path

import axon

ROOT = Path(__file__).resolve().parents[1]

INTERNAL_MODULES = {
    "api",
    "compiler",
    "graph",
    "graph_ops",
    "graph_rewrite",
    "_dtypes",
    "types",
    "values",
    "errors",
    "hooks",
    "model_state",
    "tracing",
}
PUBLIC_MODULES = {
    "activations",
    "config",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "optimizers",
    "updates",
    "schedules",
    "loop",
    "display",
    "mixed_precision",
    "loss_scale",
    "quantization",
    "serialization",
    "distributed",
    "registry",
    "plot",
}


def test_dir_lists_public_modules_and_no_internal_ones():
    names = set(dir(axon))
    assert names >= PUBLIC_MODULES
    assert not names & INTERNAL_MODULES
    modules = {n for n in names if isinstance(getattr(axon, n), types.ModuleType)}
    assert modules == PUBLIC_MODULES


def test_every_name_in_all_resolves_and_dir_matches_all():
    for name in axon.__all__:
        assert hasattr(axon, name), name
    assert set(dir(axon)) == set(axon.__all__) | {"__version__"}
    assert not [n for n in axon.__all__ if n.startswith("_")]


def test_documented_names_are_listed():
    documented = {
        "input", "dense", "conv", "lstm", "gru", "bidirectional", "build", "predict", "init",
        "template", "Axon", "ModelState", "NONE", "is_none", "fn", "layer", "param", "save",
        "load", "relu", "softmax", "dropout", "batch_norm", "max_pool", "flatten",
        "get_output_shape", "freeze", "CompileError", "StateError", "SerializationError",
    }
    text = (ROOT / "README.md").read_text()
    used = set(re.findall(r"\baxon\.([A-Za-z_][A-Za-z0-9_]*)", text)) - {"foo"}
    assert used, "README mentions no axon names"
    # axon.onnx, axon.models, axon.pretrained: public subpackages imported on first use, so
    # not in dir(axon) (``import axon`` must not import them); they must still resolve
    lazy = set(axon._LAZY_MODULES)
    assert all(isinstance(getattr(axon, name), types.ModuleType) for name in used & lazy)
    missing = (documented | used) - set(dir(axon)) - lazy
    assert not missing


def test_internal_modules_stay_importable_as_attributes():
    # hidden from dir(), not removed: code and tests that import them keep working
    assert isinstance(axon.compiler, types.ModuleType)
    assert isinstance(axon.api, types.ModuleType)
