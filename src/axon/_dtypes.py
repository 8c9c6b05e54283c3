"""Dtype names: Axon's short forms (``"f32"``, ``"bf16"``, ``"s64"``) and numpy/JAX names.

>>> canonical_dtype("bf16").name, canonical_dtype("f32").name, canonical_dtype("s32").name
('bfloat16', 'float32', 'int32')
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

__all__ = ["canonical_dtype", "dtype_short_name", "is_float"]

_SHORT = {
    "f16": "float16",
    "bf16": "bfloat16",
    "f32": "float32",
    "f64": "float64",
    "s8": "int8",
    "s16": "int16",
    "s32": "int32",
    "s64": "int64",
    "i8": "int8",
    "i16": "int16",
    "i32": "int32",
    "i64": "int64",
    "u8": "uint8",
    "u16": "uint16",
    "u32": "uint32",
    "u64": "uint64",
    "pred": "bool",
}


def canonical_dtype(dtype: Any) -> np.dtype:
    """Return the numpy dtype for ``dtype`` (a dtype, a type, or a name such as ``"f32"``).

    >>> canonical_dtype(jnp.float16).name
    'float16'
    """
    if isinstance(dtype, str):
        dtype = _SHORT.get(dtype, dtype)
    try:
        return jnp.dtype(dtype)
    except TypeError as e:
        raise ValueError(
            f"unknown dtype {dtype!r}; use a numpy/JAX dtype or one of {sorted(_SHORT)}"
        ) from e


def dtype_short_name(dtype: Any) -> str:
    """Axon's short name of a dtype, used in tables and reprs.

    >>> dtype_short_name("float32"), dtype_short_name("bfloat16"), dtype_short_name("int64")
    ('f32', 'bf16', 's64')
    """
    name = canonical_dtype(dtype).name
    for short, long in _SHORT.items():
        if long == name and not short.startswith("i"):
            return short
    return name


def is_float(dtype: Any) -> bool:
    """True for floating dtypes (the ones mixed-precision policies cast).

    >>> is_float("bf16"), is_float("s32")
    (True, False)
    """
    return bool(jnp.issubdtype(canonical_dtype(dtype), jnp.floating))
