"""Type aliases for the options of axon's public functions (imports nothing from axon).

String options are ``typing.Literal`` types, so editors complete them and type checkers
catch misspellings; the run-time checks in each function stay the source of truth, and
tests keep the literals in step with the tables (``ActivationName`` with
``axon.activations.ACTIVATIONS``, ``InitializerName`` with ``axon.initializers``).

>>> from typing import get_args
>>> get_args(Channels)
('first', 'last')
>>> "relu" in get_args(ActivationName)
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeAlias

__all__ = [
    "Activation",
    "ActivationName",
    "Channels",
    "Initializer",
    "InitializerName",
    "LayerMode",
    "LayerName",
    "Padding",
    "PaddingName",
    "Reduction",
    "ResizeMethod",
    "RunMode",
    "Unroll",
]

ActivationName: TypeAlias = Literal[
    "celu",
    "elu",
    "exp",
    "gelu",
    "hard_sigmoid",
    "hard_silu",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "log_sumexp",
    "mish",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "softsign",
    "tanh",
]
"""The name of a built-in activation (``axon.activations.ACTIVATIONS``)."""

Activation: TypeAlias = ActivationName | Callable[..., Any]
"""An activation: a built-in's name or a function ``f(x) -> y``."""

InitializerName: TypeAlias = Literal[
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "identity",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "ones",
    "orthogonal",
    "uniform",
    "variance_scaling",
    "zeros",
]
"""The name of a built-in initializer made with its defaults (``axon.initializers``)."""

Initializer: TypeAlias = InitializerName | Callable[..., Any]
"""An initializer: a built-in's name, or a function ``init(key, shape, dtype) -> array``
(e.g. ``axon.initializers.normal(scale=0.1)``)."""

LayerName: TypeAlias = str | Callable[[str, Mapping[str, int]], str] | None
"""A layer name: ``None`` (``"{op_name}_{count}"``), a string (``"{n}"`` is replaced by the
count of layers of that op so far) or a function ``(op_name, op_counts) -> str``."""

Channels: TypeAlias = Literal["first", "last"]
"""Where the feature axis is: ``"last"`` (NHWC, the default) or ``"first"`` (NCHW)."""

PaddingName: TypeAlias = Literal["valid", "same"]
"""``"valid"`` (no padding) or ``"same"`` (output size ``ceil(input / stride)``)."""

Padding: TypeAlias = PaddingName | Sequence[tuple[int, int]]
"""A padding name, or one ``(low, high)`` pair per spatial dimension."""

Reduction: TypeAlias = Literal["none", "mean", "sum"]
"""How a loss reduces its per-sample values: keep them, average or sum them."""

LayerMode: TypeAlias = Literal["both", "train", "inference"]
"""In which compiled mode a layer exists (in the other it passes its input through)."""

RunMode: TypeAlias = Literal["inference", "train"]
"""The mode a functional layer runs in (dropout and batch norm behave differently)."""

ResizeMethod: TypeAlias = Literal["nearest", "bilinear", "bicubic", "lanczos3", "lanczos5"]
"""An image-resize interpolation method."""

Unroll: TypeAlias = Literal["dynamic", "static"]
"""How a recurrent layer loops over time: ``jax.lax.scan`` or a Python-unrolled loop."""
