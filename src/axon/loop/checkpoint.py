"""Loop-state files: JSON for counters, metrics history, handler memory and the structure of
the step state; safetensors for every array of the step state (parameters, layer state,
optimizer state, loss-scale state, random keys). Nothing is pickled and loading never runs
code.

Layout: ``b"AXONLOOP"`` + format version (u32) + JSON length (u64) + JSON + safetensors.
Version 2 adds the step state's structure (:mod:`axon.loop.step_state_tree`), so a loaded
checkpoint's ``step_state`` is made of dicts, tuples, lists and :class:`axon.ModelState` s;
version 1 files still load (their structure rebuilt from the saved tree paths).

>>> import jax.numpy as jnp
>>> from axon.loop.state import LoopState
>>> data = serialize_state(LoopState(step_state={"w": jnp.ones(2)}, epoch=3))
>>> restored = deserialize_state(data)
>>> restored.epoch, restored.step_state["w"].tolist()
(3, [1.0, 1.0])
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from safetensors.numpy import save as st_save

from axon._host import to_host
from axon.loop.checkpoint_header import FORMAT, check_header, field
from axon.loop.saved_step_state import RawStepState, as_saved, restore_step_state
from axon.loop.state import LoopState, new_event_counts
from axon.loop.step_state_tree import decode_tree, encode_tree, tree_from_keys
from axon.model_state import ModelState
from axon.serialization.container import unpack, write_file
from axon.serialization.dtypes import device_array
from axon.serialization.errors import SerializationError, expect, short

__all__ = [
    "READABLE_VERSIONS",
    "RawStepState",
    "deserialize_state",
    "load_checkpoint",
    "restore_step_state",
    "serialize_state",
    "write_atomic",
]

MAGIC = b"AXONLOOP"
VERSION = 2
READABLE_VERSIONS = (1, 2)
_HEADER = struct.Struct("<8sIQ")
_MAX_JSON = 64 * 1024 * 1024
_NATIVE = {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"}


def _encode(arr: np.ndarray) -> tuple[np.ndarray, str]:
    name = arr.dtype.name
    if name in _NATIVE:
        return np.array(arr, order="C", copy=True), name
    try:
        _stored_dtype(name, "serialize_state")
    except SerializationError:
        raise ValueError(f"serialize_state: cannot store arrays of dtype {name}") from None
    if arr.dtype.itemsize in (1, 2, 4, 8):  # bfloat16 and other ml_dtypes: store the bits
        return np.array(arr, order="C", copy=True).view(f"uint{8 * arr.dtype.itemsize}"), name
    raise ValueError(f"serialize_state: cannot store arrays of dtype {name}")


def _stored_dtype(name: str, where: str) -> np.dtype:
    """The dtype a checkpoint names: numpy's own or one of ``ml_dtypes`` (never ``object``)."""
    if name in _NATIVE or name == "complex64":
        return np.dtype(name)
    kind = getattr(ml_dtypes, name, None) if name.isidentifier() and not name.startswith("_") else None
    if isinstance(kind, type) and issubclass(kind, np.generic):
        return np.dtype(kind)
    raise SerializationError(f"{where}: unknown dtype {short(name)}")


def _decode(arr: np.ndarray, name: str, where: str) -> np.ndarray:
    """A stored tensor as the dtype the header names (other dtypes are stored as their bits)."""
    dtype = _stored_dtype(name, where)
    if name in _NATIVE:
        expect(arr.dtype == dtype, f"{where}: the header says {name}, the tensor is {arr.dtype}")
        return arr
    expect(arr.dtype == np.dtype(f"uint{8 * dtype.itemsize}"),
           f"{where}: the bits of {name} must be stored as uint{8 * dtype.itemsize}, got {arr.dtype}")
    return arr.view(dtype)


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.generic, jax.Array, np.ndarray)):
        arr = np.asarray(x)
        return arr.item() if arr.shape == () else arr.tolist()
    raise TypeError(f"serialize_state: handler metadata must be JSON data, got {type(x).__name__}")


def serialize_state(state: LoopState) -> bytes:
    """Serialize a :class:`LoopState` to bytes (see the module docs for the format).

    Args:
        state: the loop state; its step state is any pytree of arrays (a step state read
            from a checkpoint is written back as it was read).

    Returns:
        The checkpoint's bytes.

    Raises:
        ValueError: a step-state array of a dtype that cannot be stored.
        TypeError: handler metadata that is not JSON data.

    >>> from axon.loop.state import LoopState
    >>> serialize_state(LoopState(step_state={}))[:8]
    b'AXONLOOP'
    """
    if isinstance(state.step_state, RawStepState):
        raw = state.step_state
        keys, leaves, tree, ms_meta = raw.saved_keys, raw.saved_leaves, raw.saved_tree, raw.model_state_meta
    else:
        flat, _ = jax.tree_util.tree_flatten_with_path(state.step_state)
        keys = [jax.tree_util.keystr(path) for path, _ in flat]
        tree, leaves = encode_tree(state.step_state)
        if len(leaves) != len(keys):  # pragma: no cover - encode_tree follows jax's own flattening
            raise ValueError(f"serialize_state: the step state's structure has {len(leaves)} leaves, jax finds {len(keys)}")
        ms = state.step_state.get("model_state") if isinstance(state.step_state, dict) else None
        ms_meta = None
        if isinstance(ms, ModelState):
            ms_meta = {
                "parameters": sorted(list(p) for p in ms.parameter_paths),
                "state": sorted(list(p) for p in ms.state_paths),
                "frozen": sorted(list(p) for p in ms.frozen_paths),
            }
    tensors, dtypes = {}, []
    for i, leaf in enumerate(leaves):
        arr, name = _encode(to_host(leaf))
        tensors[f"s{i}"] = arr
        dtypes.append(name)
    metric_names = sorted(state.metrics)
    for i, name in enumerate(metric_names):
        arr, _ = _encode(np.asarray(state.metrics[name], np.float32))
        tensors[f"m{i}"] = arr
    header = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": state.epoch,
        "max_epoch": state.max_epoch,
        "iteration": state.iteration,
        "max_iteration": state.max_iteration,
        "status": state.status,
        "history": {str(k): v for k, v in state.history.items()},
        "times": {str(k): v for k, v in state.times.items()},
        "event_counts": state.event_counts,
        "handler_metadata": state.handler_metadata,
        "step_state": {"keys": keys, "dtypes": dtypes, "tree": tree},
        "model_state": ms_meta,
        "metrics": metric_names,
    }
    text = json.dumps(header, default=_json_default).encode()
    body = st_save(tensors) if tensors else b""
    return _HEADER.pack(MAGIC, VERSION, len(text)) + text + body


def deserialize_state(data: bytes) -> LoopState:
    """Read bytes written by :func:`serialize_state`. The step state comes back as the
    dicts, tuples, lists and :class:`axon.ModelState` s it was made of (NamedTuples, such as
    optax's states, as plain tuples), its arrays on the device: ``state.step_state
    ["model_state"]`` of a trainer's checkpoint is the model's state, ready for
    ``axon.predict``. It is also a :class:`RawStepState` that keeps the arrays as read, so
    ``loop.from_state(state)`` resumes exactly (restoring the loop's own structure).

    Args:
        data: the bytes of a checkpoint.

    Returns:
        The :class:`LoopState` the bytes hold.

    Raises:
        TypeError: ``data`` is not bytes.
        SerializationError: (a ``ValueError``) the bytes are not a well-formed checkpoint: a
            bad prefix, header or tensor; the message names the part of the file.

    >>> deserialize_state(serialize_state(LoopState(step_state={}, epoch=1))).epoch
    1
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"deserialize_state: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _HEADER.size:
        raise SerializationError("checkpoint: not an axon loop state (too short)")
    magic, version, n = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SerializationError("checkpoint: not an axon loop state (bad magic bytes)")
    if version not in READABLE_VERSIONS:
        raise SerializationError(
            f"checkpoint: unsupported format version {version} (this axon reads versions {list(READABLE_VERSIONS)})"
        )
    if n > min(_MAX_JSON, len(data) - _HEADER.size):
        raise SerializationError(f"checkpoint: truncated or corrupted file (a header of {n} bytes in {len(data)} bytes)")
    try:
        header = json.loads(data[_HEADER.size : _HEADER.size + n].decode("utf-8"))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise SerializationError(f"checkpoint header: not valid UTF-8 JSON: {e}") from None
    check_header(header, version)
    tensors = _read_tensors(data[_HEADER.size + n :], header)
    keys, dtypes = header["step_state"]["keys"], header["step_state"]["dtypes"]
    arrays = [_decode(tensors[f"s{i}"], dtypes[i], f"checkpoint tensor 's{i}' ({keys[i]})") for i in range(len(keys))]
    metrics = {}
    for i, name in enumerate(header["metrics"]):
        arr = tensors[f"m{i}"]
        expect(arr.dtype == np.float32, f"checkpoint tensor 'm{i}' (metric {name!r}): expected float32, got {arr.dtype}")
        metrics[name] = arr
    tree = _checked_tree(header, version, arrays)
    # everything is checked (on the host): now the arrays go to the device
    leaves = [device_array(a) for a in arrays]
    value = decode_tree(tree, leaves, "step state") if tree is not None else None
    counts = new_event_counts()
    counts.update(header["event_counts"])
    return LoopState(
        step_state=as_saved(value, keys, leaves, tree, header["model_state"]),
        epoch=header["epoch"],
        max_epoch=header["max_epoch"],
        iteration=header["iteration"],
        max_iteration=header["max_iteration"],
        metrics={name: jnp.asarray(arr) for name, arr in metrics.items()},
        history={int(k): v for k, v in header["history"].items()},
        handler_metadata=header["handler_metadata"],
        times={int(k): float(v) for k, v in header["times"].items()},
        event_counts=counts,
        status=header["status"],
    )


def _checked_tree(header: dict, version: int, arrays: list[np.ndarray]) -> dict | None:
    """The structure of the step state, checked against its arrays: the header's (format 2),
    or for format 1 the one its tree paths describe (None where they describe none)."""
    tree = header["step_state"].get("tree")
    if tree is not None:
        decode_tree(tree, arrays, f"{field('step_state')}['tree']")
        return tree
    if version != 1:
        return None
    tree = tree_from_keys(header["step_state"]["keys"], header["model_state"])  # best effort
    if tree is None:
        return None
    try:
        decode_tree(tree, arrays, "version 1 step state")
    except SerializationError:
        return None
    return tree


def _read_tensors(body: bytes, header: dict) -> dict[str, np.ndarray]:
    """The tensors of a checkpoint's safetensors part: exactly those the header names."""
    expected = {f"s{i}" for i in range(len(header["step_state"]["keys"]))} | {f"m{i}" for i in range(len(header["metrics"]))}
    if not body:
        tensors: dict[str, np.ndarray] = {}
    else:
        try:
            _, tensors = unpack(body)
        except SerializationError as e:
            raise SerializationError(f"checkpoint tensors: {e}") from None
    missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    expect(not missing, f"checkpoint tensors: the header names tensors {short(missing)} the file lacks")
    expect(not unexpected, f"checkpoint tensors: the file has tensors {short(unexpected)} the header does not name")
    return tensors


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` (creating its folder) through a temporary file and a
    rename, so a crash never leaves a half-written checkpoint; a temporary file left by a
    killed writer is removed by the next write into the folder
    (:func:`axon.serialization.container.write_file`).

    Args:
        path: the file to write.
        data: its new contents.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_file(path, data)


def load_checkpoint(path: str) -> LoopState:
    """Read a checkpoint file written by ``Loop.checkpoint`` (see :func:`deserialize_state`).

    Args:
        path: the checkpoint file.

    Returns:
        The :class:`LoopState` it holds.

    Raises:
        SerializationError: (a ``ValueError``) the file is not a well-formed checkpoint.

    >>> import tempfile, os
    >>> from axon.loop.state import LoopState
    >>> p = os.path.join(tempfile.mkdtemp(), "c.ckpt")
    >>> write_atomic(p, serialize_state(LoopState(step_state={}, epoch=2)))
    >>> load_checkpoint(p).epoch
    2
    """
    with open(path, "rb") as f:
        return deserialize_state(f.read())
