"""The container: a safetensors file whose metadata ``"axon"`` is a versioned JSON document.

:func:`pack` writes the document and the tensors; :func:`unpack` reads them back from
untrusted bytes, checking the header and every tensor before use; :func:`read_doc` checks
the document's format and version. :func:`write_file` replaces a file atomically.

>>> import numpy as np
>>> tensors = TensorTable()
>>> tensors.add(np.zeros(2, np.float32), "w")
'w'
>>> meta, arrays = unpack(pack({"format": FORMAT_STATE, "state": {}}, tensors.arrays))
>>> read_doc(meta, None)
{'format': 'axon.state', 'version': 1, 'state': {}}
>>> arrays["w"].tolist()
[0.0, 0.0]
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy

from axon.serialization.dtypes import SAFETENSORS_DTYPES
from axon.serialization.errors import SerializationError, expect_type, short

FORMAT_MODEL = "axon.model"
FORMAT_STATE = "axon.state"
VERSION = 1
_MAX_HEADER = 100_000_000  # safetensors' own limit on the header size


class TensorTable:
    """The tensors of one file under distinct keys (``"w"``, then ``"w#2"``, ...).

    >>> import numpy as np
    >>> table = TensorTable()
    >>> table.add(np.ones(1), "w"), table.add(np.ones(1), "w"), table.add(np.ones(1), "__metadata__")
    ('w', 'w#2', '__metadata__#2')
    """

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def add(self, arr: np.ndarray, wanted: str) -> str:
        """Store ``arr`` under ``wanted``, or under ``wanted#n`` if taken; returns the key."""
        key, n = wanted, 1
        while key in self.arrays or key == "__metadata__":
            n += 1
            key = f"{wanted}#{n}"
        self.arrays[key] = arr
        return key


def tensor_at(tensors: Mapping[str, np.ndarray], key: Any, where: str) -> np.ndarray:
    """The tensor a document refers to by ``key``, which the file must hold."""
    expect_type(key, str, where, "a tensor key")
    if key not in tensors:
        raise SerializationError(f"{where}: the file has no tensor {key!r}")
    return tensors[key]


def dumps_json(value: Any) -> str:
    """Compact JSON without NaN or infinities (the codec tags those)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def loads_json(text: str, what: str) -> Any:
    """Parse JSON from a file, rejecting ``NaN``/``Infinity`` constants."""

    def reject(constant: str) -> Any:
        raise ValueError(f"invalid JSON constant {constant}")

    try:
        return json.loads(text, parse_constant=reject)
    except (ValueError, RecursionError) as e:
        raise SerializationError(f"corrupted file: bad {what} JSON: {e}") from e


def pack(doc: dict, tensors: dict[str, np.ndarray]) -> bytes:
    """A safetensors file of ``tensors`` with ``doc`` (``format`` first, then ``version``)
    as its ``"axon"`` metadata."""
    metadata = {"axon": dumps_json({"format": doc["format"], "version": VERSION, **doc})}
    try:
        return safetensors.numpy.save(tensors, metadata=metadata)
    except Exception as e:
        raise SerializationError(f"cannot write the tensors: {e}") from e


def unpack(data: Any) -> tuple[dict[str, str] | None, dict[str, np.ndarray]]:
    """The metadata and tensors of safetensors bytes, each checked before use."""
    if isinstance(data, memoryview):
        data = data.tobytes()
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    if len(data) < 10:
        raise SerializationError(f"not an axon file: {len(data)} bytes is too short for a safetensors header")
    (n,) = struct.unpack("<Q", bytes(data[:8]))
    if n > _MAX_HEADER or n > len(data) - 8 or data[8:9] != b"{":
        raise SerializationError(
            "not an axon file: expected a safetensors container (an 8-byte header length, then a JSON header); "
            f"got a declared header length of {n} for {len(data)} bytes starting with {bytes(data[:12])!r}"
        )
    try:
        raw = safetensors.deserialize(bytes(data))
        header = json.loads(bytes(data[8 : 8 + n]).decode("utf-8"))
    except Exception as e:  # SafetensorError, UnicodeDecodeError, json errors
        raise SerializationError(f"corrupted file: {e}") from e
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())):
        raise SerializationError("corrupted file: the safetensors metadata must map strings to strings")
    return meta, {name: _checked_array(name, info) for name, info in raw}


def _checked_array(name: str, info: Mapping[str, Any]) -> np.ndarray:
    dtype = SAFETENSORS_DTYPES.get(info["dtype"])
    if dtype is None:
        raise SerializationError(f"tensor {name!r}: unsupported dtype {info['dtype']}")
    buf = info["data"]
    shape = tuple(int(d) for d in info["shape"])
    if len(buf) != math.prod(shape) * dtype.itemsize:
        raise SerializationError(f"tensor {name!r}: {len(buf)} bytes do not hold shape {shape} of {dtype}")
    if dtype == np.dtype(bool):
        return np.frombuffer(buf, np.uint8).reshape(shape) != 0
    return np.frombuffer(buf, dtype).reshape(shape).copy()


def read_doc(meta: dict[str, str] | None, expected: str | None) -> dict:
    """The axon document of a file's metadata, checked for format and version (and, with
    ``expected=FORMAT_MODEL``, for holding a model)."""
    if not meta or "axon" not in meta:
        raise SerializationError(
            "not an axon file: a safetensors file without axon metadata (load plain tensors with "
            "axon.load_state, which reads any safetensors file)"
        )
    doc = loads_json(meta["axon"], "metadata")
    if not isinstance(doc, dict):
        raise SerializationError("corrupted file: the axon metadata must be a JSON object")
    fmt = doc.get("format")
    if fmt not in (FORMAT_MODEL, FORMAT_STATE):
        raise SerializationError(f"not an axon file: unknown format {short(fmt)}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SerializationError(f"corrupted file: bad format version {short(version)}")
    if version > VERSION:
        raise SerializationError(
            f"the file has format version {version}, written by a newer axon; this axon reads versions up to {VERSION}"
        )
    if expected == FORMAT_MODEL and fmt != FORMAT_MODEL:
        raise SerializationError(
            "the file holds parameters only (written by axon.save_state); load it with "
            "axon.load_state(path) and rebuild the model in code"
        )
    if "state" not in doc or (fmt == FORMAT_MODEL and "graph" not in doc):
        raise SerializationError("corrupted file: the axon metadata lacks its graph or state")
    return doc


def write_file(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a partly written file never replaces a good one."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".axon-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_file(path: str | os.PathLike) -> bytes:
    """The bytes of the file ``path``."""
    with open(os.fspath(path), "rb") as f:
        return f.read()
