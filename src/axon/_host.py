"""Arrays to the host, and which process writes files, in single- and multi-process runs.

A ``jax.Array`` sharded over the devices of several processes is not fully addressable from
any one of them: :func:`to_host` gathers it (a collective, so every process must call it)
before it becomes a numpy array. Files are written by the main process only
(:func:`writes_files`), so that N processes saving one state make one file.

>>> import jax.numpy as jnp
>>> to_host(jnp.arange(3)).tolist(), writes_files()
([0, 1, 2], True)
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = ["to_host", "writes_files"]


def to_host(value: Any) -> np.ndarray:
    """``value`` as a numpy array; a ``jax.Array`` spread over several processes is gathered
    from all of them first (every process must make the same call).

    Args:
        value: an array-like.

    Returns:
        A numpy array with the global value.
    """
    if isinstance(value, jax.Array) and not value.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(value, tiled=True))
    return np.asarray(value)


def writes_files() -> bool:
    """Whether this process writes files: the main process (index 0) of a run.

    Returns:
        ``True`` in a single-process run and in process 0 of a multi-process run.
    """
    return jax.process_index() == 0
