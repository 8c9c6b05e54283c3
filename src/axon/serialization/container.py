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
import re
import socket
import struct
import tempfile
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy

from axon._host import writes_files
from axon.serialization.dtypes import SAFETENSORS_DTYPES
from axon.serialization.errors import SerializationError, expect_type, short

FORMAT_MODEL = "axon.model"
FORMAT_STATE = "axon.state"
VERSION = 1
_MAX_HEADER = 100_000_000  # safetensors' own limit on the header size
MAX_RANK = 32
"""The most dimensions a tensor of a file may have."""
MAX_EMPTY_EXTENT = 2**31 - 1
"""The most elements an empty tensor would have with its zero dimensions taken as 1: a file
cannot declare a zero-size tensor of enormous dimensions (such a shape makes XLA hang)."""


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
    """The metadata and tensors of safetensors bytes (``data``), each checked on the host before use:
    the header is a JSON object, every tensor has a known dtype, at most :data:`MAX_RANK`
    non-negative dimensions, data offsets inside the file that hold exactly its bytes (an
    empty tensor: dimensions within :data:`MAX_EMPTY_EXTENT`). Anything else raises
    :class:`SerializationError`; nothing is allocated beyond the size of ``data``.

    >>> import json, struct
    >>> header = json.dumps({"t": {"dtype": "F32", "shape": [0, 2**60], "data_offsets": [0, 0]}}).encode()
    >>> unpack(struct.pack("<Q", len(header)) + header)
    Traceback (most recent call last):
    ...
    axon.serialization.SerializationError: tensor 't': an empty tensor of shape [0, 1152921504606846976] ...
    """
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
        header = json.loads(bytes(data[8 : 8 + n]).decode("utf-8"))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise SerializationError(f"corrupted file: bad safetensors header: {e}") from e
    if not isinstance(header, dict):
        raise SerializationError(f"corrupted file: the safetensors header must be a JSON object, got {short(header)}")
    meta = header.get("__metadata__")
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())):
        raise SerializationError("corrupted file: the safetensors metadata must map strings to strings")
    body_size = len(data) - 8 - n
    for name, info in header.items():
        if name != "__metadata__":
            _check_entry(name, info, body_size)
    try:
        raw = safetensors.deserialize(bytes(data))
    except Exception as e:  # SafetensorError (overlapping or missing bytes, duplicate names, ...)
        raise SerializationError(f"corrupted file: {e}") from e
    except BaseException as e:  # a panic in safetensors' Rust code is a BaseException
        if isinstance(e, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        raise SerializationError(f"corrupted file: {type(e).__name__}: {e}") from e
    return meta, {name: _checked_array(name, info) for name, info in raw}


def _check_entry(name: str, info: Any, body_size: int) -> None:
    """One tensor of a safetensors header, checked before the file is parsed further."""
    where = f"tensor {name!r}"
    expect_type(info, dict, where, "a tensor entry object")
    code = info.get("dtype")
    dtype = SAFETENSORS_DTYPES.get(code) if isinstance(code, str) else None
    if dtype is None:
        raise SerializationError(f"{where}: unsupported dtype {short(info.get('dtype'))}")
    shape = expect_type(info.get("shape"), list, where, "a shape list")
    if len(shape) > MAX_RANK:
        raise SerializationError(f"{where}: {len(shape)} dimensions; a tensor may have at most {MAX_RANK}")
    for d in shape:
        if not isinstance(d, int) or isinstance(d, bool) or d < 0:
            raise SerializationError(f"{where}: expected a shape of non-negative ints, got {short(shape)}")
    offsets = info.get("data_offsets")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= body_size):
        raise SerializationError(f"{where}: data offsets {short(offsets)} are not inside the {body_size} bytes of tensor data")
    nbytes = offsets[1] - offsets[0]
    if 0 in shape:
        extent = math.prod(d for d in shape if d)
        if extent > MAX_EMPTY_EXTENT or nbytes:
            raise SerializationError(
                f"{where}: an empty tensor of shape {short(shape)} must have no data and its other dimensions must "
                f"multiply to at most {MAX_EMPTY_EXTENT}"
            )
    elif math.prod(shape) * dtype.itemsize != nbytes:  # Python ints: no overflow
        raise SerializationError(f"{where}: {nbytes} bytes do not hold shape {short(shape)} of {dtype}")


def _checked_array(name: str, info: Mapping[str, Any]) -> np.ndarray:
    """One tensor's bytes as a numpy array (host memory only), its size checked again."""
    dtype = SAFETENSORS_DTYPES.get(info["dtype"])
    if dtype is None:
        raise SerializationError(f"tensor {name!r}: unsupported dtype {info['dtype']}")
    buf = info["data"]
    shape = tuple(int(d) for d in info["shape"])
    if len(shape) > MAX_RANK or len(buf) != math.prod(shape) * dtype.itemsize:
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


STALE_TEMP_SECONDS = 3600
"""A temporary file of :func:`write_file` whose writer cannot be checked (another host, an
old name without a process id) is removed once it is this many seconds old."""
_TEMP_PREFIX = ".axon-"
_TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"\.axon-(?:(?P<host>[A-Za-z0-9.]{1,32})-(?P<pid>[0-9]{1,10})-)?[a-z0-9_]{8}\.tmp")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "", socket.gethostname())[:32] or "host"


def write_file(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a partly written file never replaces a good one.
    In a multi-process run only the main process writes (every process may call it).

    The data goes to a temporary file ``.axon-<host>-<pid>-<random>.tmp`` next to ``path``,
    then replaces ``path`` in one rename. A writer killed before the rename leaves its
    temporary file behind; every write first removes such leftovers of its folder (see
    :func:`remove_stale_temp_files`).

    Args:
        path: the file to write.
        data: its new contents.

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> write_file(os.path.join(folder, "a.bin"), b"data")
    >>> os.listdir(folder)
    ['a.bin']
    """
    path = os.fspath(path)
    if not writes_files():
        return  # in a multi-process run the main process writes the one file
    directory = os.path.dirname(os.path.abspath(path))
    remove_stale_temp_files(directory)
    fd, tmp = tempfile.mkstemp(prefix=f"{_TEMP_PREFIX}{_host()}-{os.getpid()}-", suffix=_TEMP_SUFFIX, dir=directory)
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


def remove_stale_temp_files(directory: str | os.PathLike, now: float | None = None) -> list[str]:
    """Remove the temporary files that killed writers of :func:`write_file` left in
    ``directory``. Only files named as ``write_file`` names them are touched, and only when
    their writer is gone: a process of this host that no longer runs, or (for a file of
    another host, or of an axon that did not put the process id in the name) a file not
    modified for :data:`STALE_TEMP_SECONDS`. Files that cannot be removed are left alone.

    Args:
        directory: the folder to clean.
        now: the current time (``time.time()`` when None).

    Returns:
        The names of the removed files.

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> dead = os.path.join(folder, f".axon-{_host()}-999999999-abcd1234.tmp")
    >>> open(dead, "wb").close()
    >>> remove_stale_temp_files(folder), os.listdir(folder)
    (['.axon-...-999999999-abcd1234.tmp'], [])
    """
    now = time.time() if now is None else now
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    host = _host()
    for name in names:
        match = _TEMP_NAME.fullmatch(name)
        if match is None:
            continue
        full = os.path.join(directory, name)
        try:
            if match["pid"] is not None and match["host"] == host and os.name == "posix":
                stale = not _process_alive(int(match["pid"]))
            else:
                stale = now - os.stat(full).st_mtime > STALE_TEMP_SECONDS
            if stale:
                os.unlink(full)
                removed.append(name)
        except OSError:  # gone already, or not ours to remove
            continue
    return removed


def _process_alive(pid: int) -> bool:
    """Whether the process ``pid`` of this host exists (POSIX only: signal 0 checks, sends nothing)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process (or no such pid at all)
        return False
    except OSError:
        return True  # another user's process, or one the system cannot check: keep its file
    return True


def read_file(path: str | os.PathLike) -> bytes:
    """The bytes of the file ``path``."""
    with open(os.fspath(path), "rb") as f:
        return f.read()
