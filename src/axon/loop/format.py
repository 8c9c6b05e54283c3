"""Formatting metric values for logs and progress lines.

>>> import numpy as np
>>> format_value(np.float32(0.5)), format_value(float("nan"))
('0.5000000', 'NaN')
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np

__all__ = ["format_metrics", "format_value"]


def format_value(v: Any) -> str:
    """Format a scalar metric for logs: 7 decimals (3 for bfloat16), NaN/Inf spelled out.

    Args:
        v: a scalar (Python number, NumPy or JAX array of shape ``()``).

    Returns:
        The value as text.

    Raises:
        ValueError: ``v`` is not a scalar.

    >>> format_value(2), format_value(float("-inf"))
    ('2.0000000', '-Inf')
    """
    arr = np.asarray(v)
    if arr.shape != ():
        raise ValueError(f"cannot log a non-scalar metric of shape {arr.shape}; reduce it (e.g. reduction='mean')")
    x = float(arr)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    return f"{x:.3f}" if arr.dtype == jnp.bfloat16 else f"{x:.7f}"


def format_metrics(metrics: dict[str, Any]) -> str:
    """``"name: value name: value ..."`` for a dict of scalar metrics.

    Args:
        metrics: metric values by name.

    Returns:
        The metrics as one line of text.

    >>> format_metrics({"loss": 0.25, "acc": 1})
    'loss: 0.2500000 acc: 1.0000000'
    """
    return " ".join(f"{k}: {format_value(v)}" for k, v in metrics.items())
