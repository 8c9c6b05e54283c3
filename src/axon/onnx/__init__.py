"""ONNX interchange: import ONNX models as axon graphs, export axon graphs to ONNX.

Needs the ``onnx`` extra (``pip install "axon-jax[onnx]"``); nothing here is imported by
``import axon`` until it is used.
"""

from axon.onnx.export_graph import export
from axon.onnx.importer import import_model

__all__ = ["export", "import_model"]
