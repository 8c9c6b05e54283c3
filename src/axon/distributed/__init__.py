"""``axon.distributed``: many devices and many processes, on ``jax.sharding`` and
``jax.distributed``.

- :func:`initialize`, :func:`process_index`, :func:`process_count`,
  :func:`is_main_process`: the multi-process runtime (JAX's own: gloo on CPU, NCCL on GPU).
- :func:`mesh`: a device mesh with named axes (``{"data": -1}``, ``{"data": 2, "model": 4}``).
- :class:`DataParallel`, :class:`FSDP`, :class:`ModelParallel`: where the state and the
  batches live; pass one as ``distribution=`` to ``axon.build`` or ``axon.loop.trainer``.
- ``python -m axon.distributed.launch --nprocs N script.py``: a local launcher.

This package is a client of the core: nothing in ``axon.graph``, ``axon.api``,
``axon.compiler`` or ``axon.layers`` imports it.

>>> import axon.distributed as dist
>>> dist.mesh({"data": -1}).axis_names
('data',)
"""

from axon.distributed.mesh import mesh
from axon.distributed.runtime import (
    DistributedError,
    initialize,
    is_main_process,
    process_count,
    process_index,
)
from axon.distributed.strategies import FSDP, DataParallel, Distribution, ModelParallel, leaf_path

__all__ = [
    "FSDP",
    "DataParallel",
    "Distribution",
    "DistributedError",
    "ModelParallel",
    "initialize",
    "is_main_process",
    "leaf_path",
    "mesh",
    "process_count",
    "process_index",
]
