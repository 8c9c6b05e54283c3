"""The public functions: models and states to and from bytes and files.

>>> import axon
>>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1)
>>> loaded, state = deserialize(serialize(model, axon.init(model, axon.template((1, 2)))))
>>> loaded, state.paths()
(<Axon inputs={'x': (None, 2)} output='dense_0' nodes=2>, [('dense_0', 'bias'), ('dense_0', 'kernel')])
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

from axon.graph import Axon
from axon.model_state import ModelState
from axon.serialization.container import (
    FORMAT_MODEL,
    FORMAT_STATE,
    TensorTable,
    pack,
    read_doc,
    read_file,
    unpack,
    write_file,
)
from axon.serialization.errors import expect_type, guard
from axon.serialization.graph_decoding import GraphDecoder
from axon.serialization.graph_encoding import GraphEncoder
from axon.serialization.state_check import fit_state
from axon.serialization.state_format import (
    as_state,
    decode_foreign_state,
    decode_state,
    encode_state,
)

__all__ = [
    "deserialize",
    "deserialize_state",
    "load",
    "load_state",
    "save",
    "save_state",
    "serialize",
    "serialize_state",
]


def serialize(model: Axon, state: ModelState | Mapping[str, Any] | None) -> bytes:
    """A model and its parameters as ``bytes`` (a safetensors container, see the module
    docs); the inverse of :func:`deserialize`. Raises :class:`SerializationError` when a
    layer function is not registered or an option cannot be saved.

    Args:
        model: the graph.
        state: its parameters and layer state (a ``ModelState`` or nested dict), or ``None``
            for the graph alone.

    Returns:
        The bytes.

    Raises:
        TypeError: ``model`` is not a graph.
        SerializationError: an unregistered layer function or an option that cannot be saved.

    >>> import axon
    >>> model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2)
    >>> data = axon.serialize(model, axon.init(model, axon.template((1, 3))))
    >>> isinstance(data, bytes)
    True
    """
    if not isinstance(model, Axon):
        raise TypeError(f"serialize: expected model to be an axon graph (axon.Axon), got {type(model).__name__}")
    ms = as_state(state, "serialize")
    tensors = TensorTable()
    state_json = encode_state(ms, tensors)  # first: state tensors keep their dotted names
    encoder = GraphEncoder(tensors, ms.data)
    graph = encoder.graph(model)
    graph["blocks"] = encoder.blocks
    if encoder.hooks:
        warnings.warn(f"serialize: hooks are not saved (layers {', '.join(encoder.hooks)})", stacklevel=2)
    return pack({"format": FORMAT_MODEL, "graph": graph, "state": state_json}, tensors.arrays)


def deserialize(data: bytes) -> tuple[Axon, ModelState]:
    """``(model, state)`` from bytes written by :func:`serialize`. Never runs code from the
    data: layer functions resolve through :func:`register_layer`'s registry. Invalid data
    raises :class:`SerializationError`.

    Args:
        data: bytes from :func:`serialize`.

    Returns:
        ``(model, state)``.

    Raises:
        SerializationError: the data is not a valid axon container, or names an unregistered
            layer function.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x").pipe(axon.relu)
    >>> loaded, state = axon.deserialize(axon.serialize(model, {}))
    >>> axon.predict(loaded, state, jnp.array([-1.0, 1.0])).tolist()
    [0.0, 1.0]
    """
    meta, tensors = unpack(data)
    doc = read_doc(meta, FORMAT_MODEL)

    def decode() -> tuple[Axon, ModelState]:
        graph_json = doc["graph"]
        state = decode_state(doc["state"], tensors)
        expect_type(graph_json, dict, "graph", "a graph object")
        blocks = expect_type(graph_json.get("blocks", []), list, "graph blocks", "a list")
        model = GraphDecoder(tensors, blocks).graph(graph_json, "graph")
        return model, state

    return guard(decode)


def serialize_state(state: ModelState | Mapping[str, Any]) -> bytes:
    """Parameters and layer state alone as ``bytes`` (a safetensors file whose tensors are
    named by their dotted paths); the inverse of :func:`deserialize_state`.

    Args:
        state: a ``ModelState`` or nested dict of arrays.

    Returns:
        The bytes.

    Raises:
        SerializationError: a leaf whose dtype cannot be saved.

    >>> import axon, jax.numpy as jnp
    >>> data = axon.serialization.serialize_state({"dense_0": {"kernel": jnp.ones((2, 2))}})
    >>> axon.serialization.deserialize_state(data)["dense_0"]["kernel"].tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    ms = as_state(state, "serialize_state")
    tensors = TensorTable()
    state_json = encode_state(ms, tensors)
    return pack({"format": FORMAT_STATE, "state": state_json}, tensors.arrays)


def deserialize_state(data: bytes) -> ModelState:
    """The :class:`axon.ModelState` in bytes written by :func:`serialize_state` or
    :func:`serialize`, or in any safetensors file (tensor names are then split at ``"."``
    into paths, and every entry is a trainable parameter).

    Args:
        data: safetensors bytes.

    Returns:
        A ``ModelState``.

    Raises:
        SerializationError: the data is not a valid safetensors file.

    >>> import numpy as np, safetensors.numpy
    >>> data = safetensors.numpy.save({"dense_0.bias": np.zeros(2, np.float32)})
    >>> from axon import serialization
    >>> serialization.deserialize_state(data)["dense_0"]["bias"].tolist()
    [0.0, 0.0]
    """
    meta, tensors = unpack(data)
    if not meta or "axon" not in meta:
        return guard(lambda: decode_foreign_state(tensors))
    doc = read_doc(meta, None)
    return guard(lambda: decode_state(doc["state"], tensors))


def save(path: str | os.PathLike, model: Axon, state: ModelState | Mapping[str, Any] | None) -> None:
    """Write ``model`` and ``state`` to the file ``path`` (atomically: a partly written
    file never replaces a good one); read it back with :func:`load`.

    Args:
        path: the file to write (its directory must exist).
        model: the graph.
        state: its parameters and layer state, or ``None`` for the graph alone.

    Returns:
        None.

    Raises:
        TypeError: ``model`` is not a graph.
        SerializationError: as :func:`serialize`.
        OSError: the file cannot be written.

    >>> import axon, os, tempfile, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1, kernel_initializer="ones")
    >>> path = os.path.join(tempfile.mkdtemp(), "model.axon")
    >>> axon.save(path, model, axon.init(model, axon.template((1, 2))))
    >>> loaded, state = axon.load(path)
    >>> axon.predict(loaded, state, jnp.ones((1, 2))).tolist()
    [[2.0]]
    """
    write_file(path, serialize(model, state))


def load(path: str | os.PathLike) -> tuple[Axon, ModelState]:
    """``(model, state)`` from a file written by :func:`save` (see :func:`deserialize`).

    Args:
        path: a file written by :func:`save`.

    Returns:
        ``(model, state)``.

    Raises:
        SerializationError: as :func:`deserialize`.
        OSError: the file cannot be read.

    >>> import axon, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "m.axon")
    >>> axon.save(path, axon.input("x").pipe(axon.tanh), {})
    >>> axon.load(path)[0]
    <Axon inputs={'x': None} output='tanh_0' nodes=2>
    """
    return deserialize(read_file(path))


def save_state(path: str | os.PathLike, state: ModelState | Mapping[str, Any]) -> None:
    """Write parameters and layer state alone to the safetensors file ``path`` (tensors
    named by their dotted paths, readable by any safetensors tool); read it back with
    :func:`load_state`. Use it for models whose layer functions are not registered: the
    model is then rebuilt in code.

    Args:
        path: the file to write (its directory must exist).
        state: a ``ModelState`` or nested dict of arrays.

    Returns:
        None.

    Raises:
        SerializationError: as :func:`serialize_state`.
        OSError: the file cannot be written.

    >>> import axon, os, tempfile
    >>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 3)
    >>> state = axon.init(model, axon.template((1, 2)))
    >>> path = os.path.join(tempfile.mkdtemp(), "weights.safetensors")
    >>> axon.save_state(path, state)
    >>> axon.load_state(path, model)["dense_0"]["kernel"].shape
    (2, 3)
    """
    write_file(path, serialize_state(state))


def load_state(
    path: str | os.PathLike,
    model: Axon | None = None,
    template: Any = None,
    *,
    strict: bool = True,
) -> ModelState:
    """Read parameters and layer state from ``path`` (written by :func:`save_state` or
    :func:`save`, or any safetensors file). With a ``model``, check the state against it
    (see :func:`check_state`; ``template`` adds the checks of input-dependent shapes):
    with ``strict=True`` any missing, unexpected or mis-shaped entry raises
    :class:`StateMismatchError` (its ``.report`` lists them); with ``strict=False`` the
    unexpected and mis-shaped entries are dropped with a warning, and missing ones are left
    for ``init_fn(template, state)`` to initialize. Entries the model declares as layer
    state are marked so.

    Args:
        path: a safetensors file.
        model: the graph to check the state against; ``None`` (default): no check.
        template: input templates for the checks of input-dependent shapes; ``None``
            (default): those are skipped.
        strict: raise on any mismatch (default ``True``), or drop what does not fit with a
            warning.

    Returns:
        A ``ModelState``.

    Raises:
        TypeError: ``model`` is not a graph.
        StateMismatchError: with ``strict=True``, the state does not fit the model.
        SerializationError: the file is not valid safetensors.
        OSError: the file cannot be read.

    >>> import axon, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> axon.save_state(path, axon.init(axon.input("x", shape=(None, 2)).pipe(axon.dense, 3), axon.template((1, 2))))
    >>> bigger = axon.input("x", shape=(None, 2)).pipe(axon.dense, 3).pipe(axon.dense, 1)
    >>> axon.load_state(path, bigger)
    Traceback (most recent call last):
    ...
    axon.serialization.StateMismatchError: the state does not fit the model: missing: dense_1.kernel, dense_1.bias
    >>> sorted(axon.load_state(path, bigger, strict=False).keys())
    ['dense_0']
    """
    state = deserialize_state(read_file(path))
    if model is None:
        return state
    if not isinstance(model, Axon):
        raise TypeError(f"load_state: expected model to be an axon graph (axon.Axon), got {type(model).__name__}")
    return fit_state(model, state, template, strict)
