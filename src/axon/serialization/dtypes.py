"""The dtypes a file can hold (safetensors' names, bf16 and float8 through ``ml_dtypes``),
and arrays moved to the host for writing and back to the device after reading.

>>> import jax.numpy as jnp
>>> dtype_name(jnp.bfloat16, "doc"), SAFETENSORS_DTYPES["F8_E4M3"].name
('bfloat16', 'float8_e4m3fn')
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from axon._dtypes import canonical_dtype
from axon._host import to_host
from axon.serialization.errors import SerializationError

SAFETENSORS_DTYPES = {
    "BOOL": np.dtype(bool),
    "U8": np.dtype(np.uint8), "U16": np.dtype(np.uint16), "U32": np.dtype(np.uint32), "U64": np.dtype(np.uint64),
    "I8": np.dtype(np.int8), "I16": np.dtype(np.int16), "I32": np.dtype(np.int32), "I64": np.dtype(np.int64),
    "F16": np.dtype(np.float16), "BF16": np.dtype(ml_dtypes.bfloat16), "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64), "C64": np.dtype(np.complex64),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn), "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
}
"""numpy dtype of each safetensors dtype code a file may use."""

DTYPE_NAMES = {dt.name for dt in SAFETENSORS_DTYPES.values()}
"""numpy names of the dtypes that can be saved."""


def dtype_name(dtype: Any, where: str) -> str:
    """The saved name of ``dtype`` (any spelling ``canonical_dtype`` accepts)."""
    try:
        name = canonical_dtype(dtype).name
    except (ValueError, TypeError) as e:
        raise SerializationError(f"{where}: unsupported dtype {dtype!r}") from e
    if name not in DTYPE_NAMES:
        raise SerializationError(f"{where}: dtype {name} cannot be saved; supported: {sorted(DTYPE_NAMES)}")
    return name


def parse_dtype(name: Any, where: str) -> np.dtype:
    """The dtype a file names, which must be one that can be saved."""
    if not isinstance(name, str) or name not in DTYPE_NAMES:
        raise SerializationError(f"{where}: expected a dtype name among {sorted(DTYPE_NAMES)}, got {name!r}")
    return canonical_dtype(name)


def host_array(value: Any, where: str) -> np.ndarray:
    """``value`` as a C-contiguous numpy array of a dtype that can be saved.

    >>> host_array(jnp.ones((2, 1)).T, "doc").flags.c_contiguous
    True
    """
    try:
        arr = to_host(value)
    except Exception as e:
        raise SerializationError(f"{where}: cannot save a value of type {type(value).__name__}: {e}") from e
    if arr.dtype.name not in DTYPE_NAMES:
        raise SerializationError(f"{where}: cannot save an array of dtype {arr.dtype}; supported: {sorted(DTYPE_NAMES)}")
    return arr if arr.flags.c_contiguous else arr.copy(order="C")  # (ascontiguousarray makes 0-d arrays 1-d)


def device_array(arr: np.ndarray) -> Any:
    """A loaded array on the device, unless JAX (without x64) would truncate its 64-bit values.

    >>> type(device_array(np.zeros(2, np.float32))).__name__, device_array(np.zeros(2, np.int64)).dtype
    ('ArrayImpl', dtype('int64'))
    """
    if arr.dtype.itemsize == 8 and arr.dtype.kind in "iuf" and not jax.config.jax_enable_x64:
        return arr  # jax would truncate 64-bit values; keep them on the host
    if arr.dtype.kind == "c" and arr.dtype.itemsize == 16 and not jax.config.jax_enable_x64:
        return arr
    return jnp.asarray(arr)
