"""The tensor ops of :mod:`axon.layers.tensor` (``divide``, ``matmul``, ``where``, ``gather``,
``slice_axes``, ``reduce``, ...) as registered ops ``"axon.<name>"``: a graph uses them through
``axon.layer(axon.layers.<name>, [...], **options)`` and can be saved.

>>> import axon, jax.numpy as jnp
>>> x = axon.input("x", shape=(None, 3))
>>> y = axon.layer(axon.layers.reduce, [x], kind="max", axes=(1,), keepdims=False, op_name="reduce")
>>> axon.predict(y, {}, jnp.array([[1.0, 5.0, 2.0]])).tolist()
[5.0]
"""

from __future__ import annotations

from axon.layers import tensor
from axon.registry import register_all

__all__: list[str] = []

# functional layers (axon.layers) as ops with permanent names "axon.<name>" (see axon.registry)
register_all("op", {f"axon.{name}": getattr(tensor, name) for name in tensor.__all__})
