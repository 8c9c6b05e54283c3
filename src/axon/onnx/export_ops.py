"""The table of ONNX converters :func:`axon.onnx.export` uses, keyed by registered op name
(``"axon.dense"``), and the ops that deliberately have none, with the reason.

A converter is ``convert(builder, layer) -> value``: it emits ONNX nodes through the
:class:`~axon.onnx.export_builder.Builder` for one :class:`~axon.onnx.export_builder.Layer`
and returns the name of the tensor it made (or a tuple of names for a layer with several
outputs). A converter raises :class:`~axon.onnx.export_builder.NotExportable` for options
ONNX cannot express.

>>> "axon.conv" in CONVERTERS, "axon.fn" in NOT_EXPORTABLE
(True, True)
"""

from __future__ import annotations

from axon.onnx.export_ops_basic import CONVERTERS as _BASIC
from axon.onnx.export_ops_models import CONVERTERS as _MODELS
from axon.onnx.export_ops_models import NOT_EXPORTABLE as _MODELS_NOT_EXPORTABLE
from axon.onnx.export_ops_sequence import CONVERTERS as _SEQUENCE
from axon.onnx.export_ops_spatial import CONVERTERS as _SPATIAL
from axon.onnx.export_ops_tensor import CONVERTERS as _TENSOR

__all__ = ["CONVERTERS", "NOT_EXPORTABLE"]

CONVERTERS = {**_BASIC, **_SPATIAL, **_SEQUENCE, **_TENSOR, **_MODELS}
"""Registered op name -> converter."""

NOT_EXPORTABLE: dict[str, str] = {
    "axon.fn": "it runs an arbitrary Python function, which cannot be written as ONNX nodes",
    "axon.cond": "its predicate is a Python function (ONNX If needs a graph)",
    "axon.stack_columns": "it stacks the columns of a dict or DataFrame input",
    "axon.conv_lstm": "a functional layer; the conv_lstm graph layer (op axon.recurrent) is exported",
    "axon.dropout_key": "it makes a random key, not a layer output",
    # functional layers whose graph layers use another op (axon.recurrent,
    # axon.multi_head_attention, axon.separable_conv*_op): reached only through axon.layer
    "axon.lstm": "a functional layer; the lstm graph layer (op axon.recurrent) is exported",
    "axon.gru": "a functional layer; the gru graph layer (op axon.recurrent) is exported",
    "axon.lstm_cell": "a single recurrent step, used only inside an unroll",
    "axon.gru_cell": "a single recurrent step, used only inside an unroll",
    "axon.conv_lstm_cell": "a single recurrent step, used only inside an unroll",
    "axon.dynamic_unroll": "it loops over a Python cell function",
    "axon.static_unroll": "it loops over a Python cell function",
    "axon.dot_product_attention": "a functional layer; the multi_head_attention graph layer is exported",
    "axon.separable_conv2d": "a functional layer; the separable_conv2d graph layer (op axon.separable_conv2d_op) is exported",
    "axon.separable_conv3d": "a functional layer; the separable_conv3d graph layer (op axon.separable_conv3d_op) is exported",
    **_MODELS_NOT_EXPORTABLE,
}
"""Registered op name -> why it has no converter (every other ``"axon."`` op has one)."""
