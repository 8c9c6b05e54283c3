"""Pretrained weights: load checkpoints written under other libraries' names (torchvision,
Hugging Face, ...) into axon models, with declarative renaming rules and layout transforms.

A mapping is an ordered list of rules ``(pattern, target[, transform])``: the first rule
whose regular expression matches a checkpoint key whole renames it to an axon
``"layer.param"`` entry (``\\1`` for the pattern's groups; ``None`` drops the key) and
transforms it (``"transpose"``, ``"conv_oihw_to_hwio"``, ``"split_qkv"``,
``"reshape(...)"``, ``"permute(...)"`` or a function). :func:`load_weights` reads the
checkpoint one tensor at a time and reports every missing, unexpected or mismatched entry.

>>> import axon, numpy as np
>>> model = axon.input("x", shape=(None, 4)).pipe(axon.dense, 2, name="head")
>>> checkpoint = {"classifier.weight": np.ones((2, 4)), "classifier.bias": np.zeros(2)}
>>> rules = [(r"classifier\\.weight", "head.kernel", "transpose"), (r"classifier\\.bias", "head.bias")]
>>> state = axon.pretrained.load_weights(model, checkpoint, mapping=rules)
>>> state["head"]["kernel"].shape
(4, 2)

Needs nothing beyond axon for safetensors files and dicts of arrays; torch ``.bin``/``.pt``
files need torch (``pip install "axon-jax[torch]"``), imported only when such a file is read.
"""

from axon.pretrained.load import abstract_state, load_weights
from axon.pretrained.report import LoadError, LoadReport, Mismatch, TransformFailure
from axon.pretrained.rules import (
    TRANSFORMS,
    Rule,
    compile_mapping,
    parse_transform,
    register_transform,
)
from axon.pretrained.sources import Source, open_source

__all__ = [
    "TRANSFORMS",
    "LoadError",
    "LoadReport",
    "Mismatch",
    "Rule",
    "Source",
    "TransformFailure",
    "abstract_state",
    "compile_mapping",
    "load_weights",
    "open_source",
    "parse_transform",
    "register_transform",
]
