"""A :class:`axon.ModelState` to and from the tensors of a file.

``{"entries": [{"path": [...], "key": k}, ...], "parameters": [...], "state": [...],
"frozen": [...]}``: each entry names the exact path of one leaf (layer names may hold any
character; tensor keys are the path joined with ``"."`` only for readability). A quantized
leaf has ``"qtensor": {"value": k, "scale": k, "zero_point": k}`` instead of ``"key"``,
and a typed PRNG key adds ``"prng_impl"``. A safetensors file without axon metadata is
read with :func:`decode_foreign_state`.

>>> import jax.numpy as jnp
>>> from axon.serialization.container import TensorTable
>>> tensors = TensorTable()
>>> doc = encode_state(as_state({"dense_0": {"bias": jnp.zeros(2)}}, "doc"), tensors)
>>> doc["entries"], sorted(tensors.arrays)
([{'path': ['dense_0', 'bias'], 'key': 'dense_0.bias'}], ['dense_0.bias'])
>>> decode_state(doc, tensors.arrays)["dense_0"]["bias"].tolist()
[0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from axon.model_state import ModelState, get_path, leaf_paths
from axon.serialization.container import TensorTable, tensor_at
from axon.serialization.dtypes import device_array, host_array
from axon.serialization.errors import (
    Path,
    SerializationError,
    expect,
    expect_path,
    expect_type,
    short,
)

_PRNG_IMPLS = ("threefry2x32", "rbg", "unsafe_rbg")
_QTENSOR_PARTS = ("value", "scale", "zero_point")


def as_state(state: Any, where: str) -> ModelState:
    """``state`` (None, a ModelState or a nested dict) as a :class:`axon.ModelState`."""
    if state is None:
        return ModelState.empty()
    if isinstance(state, ModelState):
        return state
    if isinstance(state, Mapping):
        return ModelState(state)
    raise TypeError(f"{where}: expected state to be an axon.ModelState or a nested dict, got {type(state).__name__}")


def encode_state(state: ModelState, tensors: TensorTable) -> dict:
    """The JSON of ``state``, its leaves added to ``tensors``."""
    from axon.quantization import QTensor

    entries = []
    for path in leaf_paths(state.data):
        where = f"state entry {'.'.join(path)!r}"
        if not all(isinstance(k, str) and k for k in path):
            raise SerializationError(f"{where}: state keys must be non-empty strings, got path {path!r}")
        leaf = get_path(state.data, path)
        wanted = ".".join(path)
        if isinstance(leaf, QTensor):
            keys = {part: tensors.add(host_array(getattr(leaf, part), where), f"{wanted}.{part}")
                    for part in _QTENSOR_PARTS}
            entries.append({"path": list(path), "qtensor": keys})
            continue
        entry: dict = {"path": list(path)}
        if hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            entry["prng_impl"] = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        if isinstance(leaf, Mapping):  # pragma: no cover - leaf_paths never yields mappings
            raise SerializationError(f"{where}: unexpected mapping")
        entry["key"] = tensors.add(host_array(leaf, where), wanted)
        entries.append(entry)
    return {
        "entries": entries,
        "parameters": sorted(list(p) for p in state.parameter_paths),
        "state": sorted(list(p) for p in state.state_paths),
        "frozen": sorted(list(p) for p in state.frozen_paths),
    }


def decode_state(j: Any, tensors: Mapping[str, np.ndarray]) -> ModelState:
    """The state encoded as ``j``, its leaves taken from ``tensors`` (the file's)."""
    where = "state"
    expect_type(j, dict, where, "a state object")
    data: dict = {}
    for i, e in enumerate(expect_type(j.get("entries", []), list, where, "a list of entries")):
        w = f"state entry {i}"
        expect_type(e, dict, w, "an entry object")
        path = expect_path(e.get("path"), f"{w} path")
        leaf = _decode_qtensor(e["qtensor"], tensors, w) if "qtensor" in e else _decode_leaf(e, tensors, w)
        set_new_path(data, path, leaf, w)
    lists = {}
    for field in ("parameters", "state", "frozen"):
        items = expect_type(j.get(field, []), list, where, f"a list of {field} paths")
        lists[field] = [expect_path(p, f"state {field}") for p in items]
    return ModelState(data, lists["parameters"], lists["state"], lists["frozen"])


def _decode_qtensor(keys: Any, tensors: Mapping[str, np.ndarray], where: str) -> Any:
    from axon.quantization import QTensor

    expect_type(keys, dict, where, "a qtensor object")
    parts = {}
    for part in _QTENSOR_PARTS:
        expect(part in keys, f"{where}: qtensor without {part!r}")
        parts[part] = device_array(tensor_at(tensors, keys[part], where))
    expect(parts["value"].ndim == 2 and parts["value"].dtype == np.int8
           and parts["scale"].shape == parts["value"].shape[-1:] and parts["zero_point"].shape == parts["scale"].shape,
           f"{where}: inconsistent qtensor shapes or dtypes")
    return QTensor(**parts)


def _decode_leaf(entry: dict, tensors: Mapping[str, np.ndarray], where: str) -> Any:
    arr = tensor_at(tensors, entry.get("key"), where)
    impl = entry.get("prng_impl")
    if impl is None:
        return device_array(arr)
    expect(impl in _PRNG_IMPLS, f"{where}: unknown PRNG implementation {short(impl)}")
    try:
        return jax.random.wrap_key_data(jnp.asarray(arr), impl=impl)
    except (TypeError, ValueError) as err:
        raise SerializationError(f"{where}: bad PRNG key data: {err}") from err


def decode_foreign_state(tensors: Mapping[str, np.ndarray]) -> ModelState:
    """The state of a plain safetensors file: names split at ``"."`` into paths, every
    entry a trainable parameter.

    >>> import numpy as np
    >>> decode_foreign_state({"dense_0.bias": np.zeros(2, np.float32)}).paths()
    [('dense_0', 'bias')]
    """
    out: dict = {}
    for key, arr in tensors.items():
        set_new_path(out, tuple(key.split(".")), device_array(arr), f"tensor {key!r}")
    return ModelState(out)


def set_new_path(data: dict, path: Path, value: Any, where: str) -> None:
    """Store ``value`` at ``path`` of the nested dict ``data``; the path must be new.

    >>> data = {}
    >>> set_new_path(data, ("a", "b"), 1, "doc")
    >>> data
    {'a': {'b': 1}}
    >>> set_new_path(data, ("a",), 2, "doc")
    Traceback (most recent call last):
    ...
    axon.serialization.SerializationError: doc: path ['a'] appears twice or holds nested entries
    """
    node = data
    for k in path[:-1]:
        node = node.setdefault(k, {})
        expect(isinstance(node, dict), f"{where}: path {list(path)} runs through a value")
    expect(path[-1] not in node, f"{where}: path {list(path)} appears twice or holds nested entries")
    node[path[-1]] = value
