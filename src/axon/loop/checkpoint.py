"""Loop-state files: JSON for counters, metrics history and handler memory; safetensors
for every array of the step state (parameters, layer state, optimizer state, loss-scale
state, random keys). Nothing is pickled and loading never runs code.

Layout: ``b"AXONLOOP"`` + format version (u32) + JSON length (u64) + JSON + safetensors.

>>> import jax.numpy as jnp
>>> from axon.loop.state import LoopState
>>> data = serialize_state(LoopState(step_state={"w": jnp.ones(2)}, epoch=3))
>>> restored = deserialize_state(data)
>>> restored.epoch, restored.step_state.keys
(3, ["['w']"])
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from safetensors.numpy import save as st_save

from axon.loop.checkpoint_header import FORMAT, check_header
from axon.loop.state import LoopState, new_event_counts
from axon.model_state import ModelState
from axon.serialization.container import unpack, write_file
from axon.serialization.errors import SerializationError, expect, short

__all__ = ["RawStepState", "deserialize_state", "load_checkpoint", "restore_step_state", "serialize_state", "write_atomic"]

MAGIC = b"AXONLOOP"
VERSION = 1
_HEADER = struct.Struct("<8sIQ")
_MAX_JSON = 64 * 1024 * 1024
_NATIVE = {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"}


@dataclass
class RawStepState:
    """A step state read from a file before its structure is known: ``keys`` (tree paths)
    and ``arrays``. Resuming a loop restores it into the loop's own structure."""

    keys: list[str]
    arrays: list[np.ndarray]
    model_state_meta: dict | None = None


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

    >>> from axon.loop.state import LoopState
    >>> serialize_state(LoopState(step_state={}))[:8]
    b'AXONLOOP'
    """
    if isinstance(state.step_state, RawStepState):
        keys, leaves, ms_meta = state.step_state.keys, state.step_state.arrays, state.step_state.model_state_meta
    else:
        flat, _ = jax.tree_util.tree_flatten_with_path(state.step_state)
        keys = [jax.tree_util.keystr(path) for path, _ in flat]
        leaves = [leaf for _, leaf in flat]
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
        arr, name = _encode(np.asarray(leaf))
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
        "step_state": {"keys": keys, "dtypes": dtypes},
        "model_state": ms_meta,
        "metrics": metric_names,
    }
    text = json.dumps(header, default=_json_default).encode()
    body = st_save(tensors) if tensors else b""
    return _HEADER.pack(MAGIC, VERSION, len(text)) + text + body


def deserialize_state(data: bytes) -> LoopState:
    """Read bytes written by :func:`serialize_state`. The step state comes back as a
    :class:`RawStepState` until a loop resumes from it (``loop.from_state(state)``),
    which restores it into the loop's own structure.

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
    if version != VERSION:
        raise SerializationError(f"checkpoint: unsupported format version {version} (this axon reads {VERSION})")
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
        metrics[name] = jnp.asarray(arr)
    counts = new_event_counts()
    counts.update(header["event_counts"])
    return LoopState(
        step_state=RawStepState(keys, arrays, header["model_state"]),
        epoch=header["epoch"],
        max_epoch=header["max_epoch"],
        iteration=header["iteration"],
        max_iteration=header["max_iteration"],
        metrics=metrics,
        history={int(k): v for k, v in header["history"].items()},
        handler_metadata=header["handler_metadata"],
        times={int(k): float(v) for k, v in header["times"].items()},
        event_counts=counts,
        status=header["status"],
    )


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
    expect(not missing and not unexpected,
           f"checkpoint tensors: the header names tensors {short(missing)} the file lacks, or the file has "
           f"tensors {short(unexpected)} the header does not name")
    return tensors


def restore_step_state(raw: RawStepState, template: Any) -> Any:
    """Put the arrays of ``raw`` into the structure of ``template`` (shapes must match)."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    keys = [jax.tree_util.keystr(path) for path, _ in flat]
    if keys != raw.keys:
        missing = sorted(set(keys) - set(raw.keys))
        unexpected = sorted(set(raw.keys) - set(keys))
        raise ValueError(
            "from_state: the saved step state does not match this loop "
            f"(missing: {missing[:5]}, unexpected: {unexpected[:5]})"
        )
    leaves = []
    for (path, t), arr in zip(flat, raw.arrays):
        if tuple(t.shape) != tuple(arr.shape):
            raise ValueError(
                f"from_state: saved array {jax.tree_util.keystr(path)} has shape {arr.shape}, this loop expects {t.shape}"
            )
        leaves.append(jnp.asarray(arr, dtype=t.dtype))
    restored = jax.tree_util.tree_unflatten(treedef, leaves)
    meta = raw.model_state_meta
    if meta and isinstance(restored, dict) and isinstance(restored.get("model_state"), ModelState):
        ms = restored["model_state"]
        restored["model_state"] = ms._with(frozen_paths={tuple(p) for p in meta.get("frozen", [])})
    return restored


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` (creating its folder) through a temporary file and a
    rename, so a crash never leaves a half-written checkpoint."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_file(path, data)


def load_checkpoint(path: str) -> LoopState:
    """Read a checkpoint file written by ``Loop.checkpoint``.

    >>> import tempfile, os
    >>> from axon.loop.state import LoopState
    >>> p = os.path.join(tempfile.mkdtemp(), "c.ckpt")
    >>> write_atomic(p, serialize_state(LoopState(step_state={}, epoch=2)))
    >>> load_checkpoint(p).epoch
    2
    """
    with open(path, "rb") as f:
        return deserialize_state(f.read())
