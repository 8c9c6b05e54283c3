"""Mixed-precision policies: which dtype a layer keeps its parameters in, computes in and
outputs.

>>> policy = create_policy(params="f32", compute="bf16", output="f32")
>>> policy
Policy<p=f32 c=bf16 o=f32>
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from axon._dtypes import canonical_dtype, dtype_short_name, is_float

__all__ = ["Policy", "cast", "create_policy"]


@dataclass(frozen=True)
class Policy:
    """Dtypes for a layer's ``params``, ``compute`` and ``output``; ``None`` means no cast."""

    params: Any = None
    compute: Any = None
    output: Any = None

    def __repr__(self) -> str:
        parts = [
            f"{k}={dtype_short_name(v)}"
            for k, v in (("p", self.params), ("c", self.compute), ("o", self.output))
            if v is not None
        ]
        return f"Policy<{' '.join(parts)}>"


def create_policy(params: Any = None, compute: Any = None, output: Any = None) -> Policy:
    """A policy; each role is a dtype (``"bf16"``, ``jnp.float16``...) or ``None`` (no cast).

    >>> create_policy(compute="f16").compute.name
    'float16'
    """
    def norm(name: str, d: Any) -> Any:
        if d is None:
            return None
        dt = canonical_dtype(d)
        if not is_float(dt):
            raise ValueError(f"create_policy: {name} must be a floating dtype, got {dt.name}")
        return dt

    return Policy(norm("params", params), norm("compute", compute), norm("output", output))


def cast(policy: Policy, value: Any, role: str) -> Any:
    """Cast the floating arrays in ``value`` (any pytree) to the policy's dtype for ``role``
    (``"params"``, ``"compute"`` or ``"output"``); integer arrays are left untouched.

    >>> x = {"a": jnp.ones(2), "i": jnp.arange(2)}
    >>> out = cast(create_policy(compute="bf16"), x, "compute")
    >>> out["a"].dtype.name, out["i"].dtype.name
    ('bfloat16', 'int32')
    """
    if role not in ("params", "compute", "output"):
        raise ValueError(f"cast: role must be 'params', 'compute' or 'output', got {role!r}")
    dtype = getattr(policy, role)
    if dtype is None:
        return value

    def leaf(x: Any) -> Any:
        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating) and x.dtype != dtype:
            return x.astype(dtype)
        return x

    return jax.tree_util.tree_map(leaf, value)
