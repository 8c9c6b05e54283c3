"""The ONNX op handlers of ``axon.onnx.import_model``, one small function per op type
(grouped by family), collected in :data:`OPS`."""

from axon.onnx._import_ops import conv, elementwise, linear, normalization, recurrent, shape  # noqa: F401  (they register)
from axon.onnx._import_ops._table import OPS

__all__ = ["OPS"]
