"""Saving and loading models and parameters, safely: no pickle, no code from the file.

* :func:`serialize` / :func:`deserialize`: a model graph and its :class:`axon.ModelState`
  to and from ``bytes``; :func:`save` / :func:`load` do the same with a file.
* :func:`save_state` / :func:`load_state`: parameters alone (:func:`serialize_state` /
  :func:`deserialize_state` for bytes), checked against a model with ``load_state(path,
  model=...)`` or :func:`check_state`, which report missing, unexpected and mis-shaped
  entries (like torch's ``load_state_dict(strict=...)``).
* :func:`register_layer` (and :func:`register_initializer`): a saved graph refers to each
  layer function by a registered name. Every public function of :mod:`axon.layers` and
  :mod:`axon.activations` is registered (as ``"axon.layers.<name>"`` and
  ``"axon.activations.<name>"``), as is every module-level function of the ``axon.api``
  modules (the ops of the built-in graph constructors, as ``"axon.api.<module>.<name>"``
  unless registered by an explicit name); a custom layer function must be registered,
  under the same name, both in the program that saves and in the one that loads. Layers
  built with ``axon.fn(x, f)`` or ``axon.cond(x, cond_fn, ...)`` keep ``f``/``cond_fn`` in
  their options, so those functions must be registered too.

**File format** (version 1). A file is a plain `safetensors
<https://huggingface.co/docs/safetensors>`_ file, so any safetensors reader can list and
load its tensors. Its text metadata has one entry, ``"axon"``, a JSON document
``{"format": "axon.model" | "axon.state", "version": 1, "graph": ..., "state": ...}``
(``graph`` for models only); the same model and state always give the same bytes.

* ``graph``: ``{"output": i, "nodes": [...], "blocks": [...]}``. Nodes are listed
  parents first; each has ``id`` (its position), ``name`` (a string or null), ``op``
  (``{"special": "input"}`` or ``{"function": "<registered name>"}``), ``op_name``,
  ``parents``, ``args``, ``opts``, ``parameters`` (name, kind, dtype, frozen, concrete
  shape, initializer by name or null, children), ``mode``, ``global_options``, ``policy``
  and ``meta``. Option values are JSON with tags for what JSON lacks: ``{"$tuple": [...]}``,
  ``{"$dict": [[k, v], ...]}``, ``{"$float": "nan"}``, ``{"$tensor": key}`` (an array kept as
  a tensor of the file), ``{"$dtype": "float32"}``, ``{"$fn": name}``,
  ``{"$partial": ...}``, ``{"$init": ...}`` and ``{"$block": i}`` (an entry of ``blocks``,
  each a nested graph with its input names).
* ``state``: ``{"entries": [{"path": [...], "key": tensor_key}, ...], "parameters":
  [...], "state": [...], "frozen": [...]}``. Each entry names the exact path of one leaf
  (a list of strings, so layer names may contain any character; tensor keys are the path
  joined with ``"."`` only for readability); a quantized leaf has ``"qtensor": {"value": k,
  "scale": k, "zero_point": k}`` instead of ``"key"``, and a typed PRNG key adds
  ``"prng_impl"``.

Loading only parses: ops and initializers resolve through the registries, never by
importing a name from the file. A truncated, corrupted or hostile file raises
:class:`SerializationError` (a ``ValueError``). Shapes of parameters declared as functions
of the input shapes are stored as the concrete shapes found in the saved state, so a
loaded model initializes parameters of exactly those shapes. Hooks are not saved (a
warning names the layers); initializers given by name (``"glorot_uniform"``) are saved,
others are not (a loaded model then needs the saved values, which it has).

>>> import axon, jax.numpy as jnp
>>> model = axon.input("input", shape=(None, 2)).pipe(axon.dense, 1, kernel_initializer="zeros", activation="relu")
>>> init_fn, _ = axon.build(model)
>>> state = init_fn(axon.template((1, 2), "f32"))
>>> serialized = axon.serialize(model, state)
>>> saved_model, saved_state = axon.deserialize(serialized)
>>> _, predict_fn = axon.build(saved_model)
>>> predict_fn(saved_state, jnp.array([[1.0, 1.0]])).tolist()
[[0.0]]
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import math
import os
import struct
import sys
import tempfile
import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import safetensors
import safetensors.numpy

from axon._dtypes import canonical_dtype
from axon.graph import SPECIAL_OPS, Axon, Node, Parameter, layer_names, next_id, topological_order
from axon.model_state import ModelState, get_path, leaf_paths

__all__ = [
    "SerializationError",
    "StateMismatchError",
    "StateReport",
    "check_state",
    "deserialize",
    "deserialize_state",
    "load",
    "load_state",
    "register_initializer",
    "register_layer",
    "registered_layers",
    "save",
    "save_state",
    "serialize",
    "serialize_state",
]

FORMAT_MODEL = "axon.model"
FORMAT_STATE = "axon.state"
VERSION = 1
_MAX_HEADER = 100_000_000  # safetensors' own limit on the header size
_RESERVED_PREFIX = "axon."

Path = tuple[str, ...]


class SerializationError(ValueError):
    """A file or byte string that is not a valid axon model or state, or a model that
    cannot be saved (an unregistered layer function, an option of an unsupported type).

    >>> import axon
    >>> axon.deserialize(b"not a model")
    Traceback (most recent call last):
    ...
    axon.serialization.SerializationError: not an axon file: ...
    """


class StateMismatchError(SerializationError):
    """A loaded state that does not fit the model; ``.report`` is the :class:`StateReport`."""

    def __init__(self, message: str, report: StateReport):
        super().__init__(message)
        self.report = report


# ======================================================================================
# Registries
# ======================================================================================

_LAYERS: dict[str, Callable[..., Any]] = {}
_LAYER_NAMES: dict[int, str] = {}
_INITS: dict[str, tuple[str, Callable[..., Any]]] = {}
_INIT_NAMES: dict[int, str] = {}
_AUTO: dict[str, Callable[..., Any]] = {}
_AUTO_NAMES: dict[int, str] = {}
_AUTO_SIZE: list[int] = [-1]
_ALIASES: dict[int, tuple[str, Any]] = {}


def _check_registry_name(name: Any, where: str, builtin: bool) -> str:
    if not isinstance(name, str) or not name or name != name.strip():
        raise TypeError(f"{where}: expected name to be a non-empty string without surrounding spaces, got {name!r}")
    if not builtin and name.startswith(_RESERVED_PREFIX):
        raise ValueError(f"{where}: names starting with {_RESERVED_PREFIX!r} are reserved for axon's own layers, got {name!r}")
    return name


def _default_name(fn: Callable[..., Any], where: str) -> str:
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise TypeError(
            f"{where}: {fn!r} has no stable module-level name (a lambda or a nested function); "
            "pass a name: register_layer('my_project.my_layer', fn)"
        )
    return f"{module}.{qualname}"


def _register(table: dict, names: dict, name: str, fn: Any, overwrite: bool, where: str, builtin: bool = False) -> None:
    old = table.get(name)
    old_fn = old[1] if isinstance(old, tuple) else old
    new_fn = fn[1] if isinstance(fn, tuple) else fn
    if old is not None and old_fn is not new_fn and builtin:
        # the same axon module imported twice (doctest collection): both copies are one op
        _ALIASES[id(new_fn)] = (name, new_fn)
        return
    if old is not None and old_fn is not new_fn:
        if not overwrite:
            raise ValueError(f"{where}: the name {name!r} is already registered to {old_fn!r}; pass overwrite=True to replace it")
        names.pop(id(old_fn), None)
    table[name] = fn
    names.setdefault(id(new_fn), name)


def register_layer(
    name: str | Callable[..., Any] | None = None,
    fn: Callable[..., Any] | None = None,
    *,
    overwrite: bool = False,
) -> Any:
    """Register a layer function (or any function a graph holds, such as ``axon.fn``'s
    function or ``axon.cond``'s ``cond_fn``) under ``name``, so that models using it can be
    saved and loaded. Use it directly, ``register_layer("my.atan2", atan2)``, or as a
    decorator, with a name or bare (the name is then ``"<module>.<qualname>"``). Returns
    the function. Names starting with ``"axon."`` are reserved.

    >>> import axon, jax.numpy as jnp
    >>> @axon.register_layer("doc.scale_by_two")
    ... def scale_by_two(x):
    ...     return 2 * x
    >>> model = axon.layer(scale_by_two, [axon.input("x")])
    >>> loaded, state = axon.deserialize(axon.serialize(model, {}))
    >>> axon.predict(loaded, state, jnp.array([1.0])).tolist()
    [2.0]
    """
    return _register_decorator(name, fn, overwrite, builtin=False)


def register_builtin_layer(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering one of axon's own ops under ``name`` (``"axon.<...>"``)."""
    return _register_decorator(name, None, False, builtin=True)


def _register_decorator(name: Any, fn: Any, overwrite: bool, builtin: bool) -> Any:
    where = "register_layer"
    if callable(name) and fn is None:  # bare decorator
        fn, name = name, None
    if fn is not None:
        if not callable(fn):
            raise TypeError(f"{where}: expected fn to be a function, got {fn!r}")
        name = _default_name(fn, where) if name is None else name
        _register(_LAYERS, _LAYER_NAMES, _check_registry_name(name, where, builtin), fn, overwrite, where, builtin)
        return fn
    if name is not None:
        _check_registry_name(name, where, builtin)

    def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
        return _register_decorator(name, f, overwrite, builtin)

    return decorator


def register_initializer(name: str, fn: Callable[..., Any], *, overwrite: bool = False) -> Callable[..., Any]:
    """Register an initializer function ``init(key, shape, dtype)`` under ``name`` so that
    parameters using it keep their initializer when saved (named initializers such as
    ``"glorot_uniform"`` are always kept). Returns ``fn``.

    >>> import jax.numpy as jnp
    >>> from axon import serialization
    >>> def halves(key, shape, dtype=jnp.float32):
    ...     return jnp.full(shape, 0.5, dtype)
    >>> serialization.register_initializer("doc.halves", halves) is halves
    True
    """
    where = "register_initializer"
    if not callable(fn):
        raise TypeError(f"{where}: expected fn to be a function, got {fn!r}")
    _register(_INITS, _INIT_NAMES, _check_registry_name(name, where, False), ("function", fn), overwrite, where)
    return fn


def register_builtin_initializer(name: str, *, factory: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering one of axon's own initializers (or, with ``factory=True``, an
    initializer factory whose options are saved) under ``name``."""

    def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
        _register(_INITS, _INIT_NAMES, _check_registry_name(name, "register_initializer", True),
                  ("factory" if factory else "function", f), False, "register_initializer", True)
        return f

    return decorator


def tag_initializer(init: Callable[..., Any], name: str, options: Mapping[str, Any]) -> Callable[..., Any]:
    """Record that ``init`` was made by the registered factory ``name`` with ``options``,
    so that it can be saved and remade on load. Returns ``init``."""
    with contextlib.suppress(AttributeError, TypeError):
        init._axon_spec = (name, dict(options))  # type: ignore[attr-defined]
    return init


def _api_modules() -> list[Any]:
    return [m for name, m in sorted(sys.modules.items()) if name.startswith("axon.api.") and m is not None]


def _refresh_auto() -> None:
    """Register every public function of ``axon.layers`` and ``axon.activations``, and every
    module-level function of the ``axon.api`` modules (the ops of built-in constructors),
    under ``"axon.layers.<name>"``, ``"axon.activations.<name>"`` and
    ``"axon.api.<module>.<name>"``."""
    from axon import activations, layers

    found: dict[str, Callable[..., Any]] = {}
    for prefix, module in (("axon.layers.", layers), ("axon.activations.", activations)):
        for attr, value in sorted(vars(module).items()):
            if attr.startswith("_") or isinstance(value, type) or inspect.ismodule(value) or not callable(value):
                continue
            if not str(getattr(value, "__module__", "") or "").startswith("axon"):
                continue
            found[prefix + attr] = value
    for module in _api_modules():
        for attr, value in sorted(vars(module).items()):
            if inspect.isfunction(value) and value.__module__ == module.__name__:
                found.setdefault(f"{module.__name__}.{attr}", value)
    _AUTO.clear()
    _AUTO.update(found)
    _AUTO_NAMES.clear()
    for name, value in found.items():
        _AUTO_NAMES.setdefault(id(value), name)
    _AUTO_SIZE[0] = _auto_size()


def _auto_size() -> int:
    from axon import activations, layers

    return len(vars(layers)) + len(vars(activations)) + sum(len(vars(m)) for m in _api_modules())


def _auto_stale() -> bool:
    return _AUTO_SIZE[0] != _auto_size()


def _alias(fn: Any) -> str | None:
    alias = _ALIASES.get(id(fn))
    return alias[0] if alias is not None and alias[1] is fn else None


def _layer_name_of(fn: Any) -> str | None:
    name = _alias(fn)
    if name is not None and name in _LAYERS:
        return name
    name = _LAYER_NAMES.get(id(fn))
    if name is not None and _LAYERS.get(name) is fn:
        return name
    if _auto_stale():
        _refresh_auto()
    name = _AUTO_NAMES.get(id(fn))
    if name is not None and _AUTO.get(name) is fn:
        return name
    for name, f in _LAYERS.items():  # an overwritten name may hide an older mapping
        if f is fn:
            return name
    return None


def _layer_fn(name: str) -> Callable[..., Any] | None:
    if name in _LAYERS:
        return _LAYERS[name]
    if _auto_stale() or name not in _AUTO:
        _refresh_auto()
    return _AUTO.get(name)


def registered_layers() -> dict[str, Callable[..., Any]]:
    """Every registered layer function by name: axon's own and the user's.

    >>> import axon
    >>> fns = axon.serialization.registered_layers()
    >>> fns["axon.layers.dense"] is axon.layers.dense, fns["axon.activations.relu"] is axon.activations.relu
    (True, True)
    """
    _refresh_auto()
    return {**_AUTO, **_LAYERS}


def _register_named_initializers() -> None:
    from axon import initializers

    for name, factory in initializers.INITIALIZERS.items():
        if name not in _INITS:
            _INITS[name] = ("factory", factory)
    if "full" not in _INITS and hasattr(initializers, "full"):
        _INITS["full"] = ("factory", initializers.full)


# ======================================================================================
# Value encoding
# ======================================================================================

_DTYPES = {
    "BOOL": np.dtype(bool),
    "U8": np.dtype(np.uint8), "U16": np.dtype(np.uint16), "U32": np.dtype(np.uint32), "U64": np.dtype(np.uint64),
    "I8": np.dtype(np.int8), "I16": np.dtype(np.int16), "I32": np.dtype(np.int32), "I64": np.dtype(np.int64),
    "F16": np.dtype(np.float16), "BF16": np.dtype(ml_dtypes.bfloat16), "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64), "C64": np.dtype(np.complex64),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn), "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
}
_DTYPE_NAMES = {dt.name for dt in _DTYPES.values()}
_PRNG_IMPLS = ("threefry2x32", "rbg", "unsafe_rbg")


def _dtype_name(dtype: Any, where: str) -> str:
    try:
        name = canonical_dtype(dtype).name
    except (ValueError, TypeError) as e:
        raise SerializationError(f"{where}: unsupported dtype {dtype!r}") from e
    if name not in _DTYPE_NAMES:
        raise SerializationError(f"{where}: dtype {name} cannot be saved; supported: {sorted(_DTYPE_NAMES)}")
    return name


def _parse_dtype(name: Any, where: str) -> np.dtype:
    if not isinstance(name, str) or name not in _DTYPE_NAMES:
        raise SerializationError(f"{where}: expected a dtype name among {sorted(_DTYPE_NAMES)}, got {name!r}")
    return canonical_dtype(name)


def _host_array(value: Any, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception as e:
        raise SerializationError(f"{where}: cannot save a value of type {type(value).__name__}: {e}") from e
    if arr.dtype.name not in _DTYPE_NAMES:
        raise SerializationError(f"{where}: cannot save an array of dtype {arr.dtype}; supported: {sorted(_DTYPE_NAMES)}")
    return arr if arr.flags.c_contiguous else arr.copy(order="C")  # (ascontiguousarray makes 0-d arrays 1-d)


def _where(where: str, key: Any) -> str:
    return f"{where}[{key!r}]"


class _Encoder:
    """Collects the tensors and blocks of one file while encoding graph and state."""

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        self._state = state or {}
        self.tensors: dict[str, np.ndarray] = {}
        self.blocks: list[Any] = []
        self.block_index: dict[int, int] = {}
        self.hooks: list[str] = []
        self.graph_tensors = 0

    def key(self, wanted: str) -> str:
        key, n = wanted, 1
        while key in self.tensors or key == "__metadata__":
            n += 1
            key = f"{wanted}#{n}"
        return key

    def tensor(self, arr: np.ndarray, wanted: str) -> str:
        key = self.key(wanted)
        self.tensors[key] = arr
        return key

    # -- option values ---------------------------------------------------------------
    def value(self, v: Any, where: str) -> Any:
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            if math.isfinite(v):
                return v
            return {"$float": "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")}
        if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
            return {"$dtype": _dtype_name(v, where)}
        if isinstance(v, (np.ndarray, np.generic, jax.Array)):
            arr = _host_array(v, where)
            self.graph_tensors += 1
            key = self.tensor(arr, f"axon.graph.{self.graph_tensors - 1}")
            return {"$scalar": key} if isinstance(v, np.generic) else {"$tensor": key}
        if isinstance(v, list):
            return [self.value(x, _where(where, i)) for i, x in enumerate(v)]
        if isinstance(v, tuple):
            return {"$tuple": [self.value(x, _where(where, i)) for i, x in enumerate(v)]}
        if isinstance(v, Mapping):
            if all(isinstance(k, str) and not k.startswith("$") for k in v):
                return {k: self.value(x, _where(where, k)) for k, x in v.items()}
            return {"$dict": [[self.value(k, where), self.value(x, _where(where, k))] for k, x in v.items()]}
        if hasattr(v, "dtype") and not hasattr(v, "shape") and callable(v):  # jnp.float32 and friends
            try:
                return {"$dtype": _dtype_name(v, where)}
            except SerializationError:
                pass
        if callable(v):
            return self.function(v, where)
        raise SerializationError(
            f"{where}: cannot save a value of type {type(v).__name__} ({v!r}); options may hold None, bools, "
            "ints, floats, strings, lists, tuples, dicts, arrays, dtypes and registered functions"
        )

    def function(self, fn: Any, where: str) -> Any:
        spec = self.initializer(fn, where)
        if spec is not None:
            return {"$init": spec}
        name = _layer_name_of(fn)
        if name is not None:
            return {"$fn": name}
        if isinstance(fn, functools.partial):
            inner = _layer_name_of(fn.func)
            if inner is not None:
                return {"$partial": {"fn": inner, "args": self.value(list(fn.args), where),
                                     "kwargs": self.value(dict(fn.keywords), where)}}
        label = getattr(fn, "__qualname__", None) or repr(fn)
        module = getattr(fn, "__module__", None)
        raise SerializationError(
            f"{where}: the function {(module + '.') if module else ''}{label} is not registered, so the model "
            "cannot be saved; register it with axon.register_layer('a.unique.name', fn) (in the program that "
            "saves and in the one that loads), or save only the parameters with axon.save_state"
        )

    def initializer(self, init: Any, where: str) -> dict | None:
        if init is None:
            return None
        spec = getattr(init, "_axon_spec", None)
        if isinstance(spec, tuple) and len(spec) == 2:
            _register_named_initializers()
            name, options = spec
            if name in _INITS:
                try:
                    return {"name": name, "options": self.value(dict(options), _where(where, "initializer"))}
                except SerializationError:
                    return None  # options that cannot be saved (an unregistered function): not kept
        _register_named_initializers()
        name = _INIT_NAMES.get(id(init))
        if name is not None and _INITS.get(name, (None, None))[1] is init:
            return {"name": name}
        name = _alias(init)
        if name is not None and name in _INITS:
            return {"name": name}
        return None

    # -- graphs ----------------------------------------------------------------------
    def graph(self, model: Axon, state: Mapping[str, Any], scope: Path, renames: Mapping[str, str]) -> dict:
        order = topological_order(model)
        names = layer_names(model)
        index = {nid: i for i, nid in enumerate(order)}
        nodes = []
        for i, nid in enumerate(order):
            node = model.nodes[nid]
            sc, name = names[nid]
            full = (*scope, *sc, name)
            where = f"layer {'.'.join(full)!r} (op {node.op_name})"
            nodes.append(self.node(node, i, [index[p] for p in node.parents], full, where, state, renames))
        return {"output": index[model.output], "nodes": nodes}

    def node(self, node: Node, i: int, parents: list[int], full: Path, where: str, state, renames) -> dict:
        if node.name is not None and not isinstance(node.name, str):
            raise SerializationError(
                f"{where}: its name is a function, which cannot be saved; give the layer a string name "
                "(name='...' or a '{n}' template)"
            )
        name = renames.get(node.name, node.name) if node.op == "input" else node.name
        if node.hooks:
            self.hooks.append(".".join(full))
        self._check_extra_fields(node, where)
        if isinstance(node.op, str):
            if node.op not in SPECIAL_OPS:
                raise SerializationError(f"{where}: unknown special op {node.op!r}")
            op: dict = {"special": node.op}
            if node.op == "block":
                opts: Any = {"block": {"$block": self.block(node.opts["block"], full)}}
            else:
                opts = {k: self.value(v, _where(where, k)) for k, v in node.opts.items()}
        else:
            fname = _layer_name_of(node.op)
            if fname is None:
                self.function(node.op, where)  # raises the registration error
            op = {"function": fname}
            opts = {k: self.value(v, f"{where} option {k!r}") for k, v in node.opts.items()}
        policy = None
        if node.policy is not None:
            policy = {role: (None if getattr(node.policy, role, None) is None else _dtype_name(getattr(node.policy, role), where))
                      for role in ("params", "compute", "output")}
        return {
            "id": i,
            "name": name,
            "op": op,
            "op_name": node.op_name,
            "parents": parents,
            "args": list(node.args),
            "opts": opts,
            "parameters": [self.parameter(p, (*full, p.name), state, where) for p in node.parameters],
            "mode": node.mode,
            "global_options": list(node.global_options),
            "policy": policy,
            "meta": self.value(dict(node.meta), f"{where} meta"),
        }

    _KNOWN_FIELDS = frozenset({"id", "name", "op", "op_name", "parents", "parameters", "args", "opts", "mode",
                               "global_options", "policy", "hooks", "meta", "created_at"})

    def _check_extra_fields(self, node: Node, where: str) -> None:
        for f in dataclasses.fields(node):
            if f.name in self._KNOWN_FIELDS:
                continue
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
            value = getattr(node, f.name)
            if default is dataclasses.MISSING or value != default:
                warnings.warn(f"serialize: {where}: node field {f.name!r} is not saved", stacklevel=4)

    def block(self, blk: Any, scope: Path) -> int:
        if blk.id in self.block_index:
            return self.block_index[blk.id]
        k = len(self.blocks)
        self.block_index[blk.id] = k
        self.blocks.append(None)
        if blk.name is not None and not isinstance(blk.name, str):
            raise SerializationError(f"block {'.'.join(scope)!r}: its name is a function, which cannot be saved")
        inputs = [f"__block_{k}_{i}" for i in range(len(blk.input_names))]
        renames = dict(zip(blk.input_names, inputs))
        graph = self.graph(blk.graph, self._state, scope, renames)
        self.blocks[k] = {"name": blk.name, "inputs": inputs, "graph": graph}
        return k

    def parameter(self, p: Parameter, path: Path, state: Mapping[str, Any], where: str) -> dict:
        entry: dict = {"name": p.name, "kind": p.kind, "dtype": _dtype_name(p.dtype, where), "frozen": bool(p.frozen)}
        if p.children is not None:
            entry["children"] = [self.parameter(c, (*path, c.name), state, where) for c in p.children.values()]
            return entry
        shape = p.shape
        if callable(shape) or shape is None:
            shape = _shape_in_state(state, path)
        entry["shape"] = None if shape is None else [int(d) for d in shape]
        entry["initializer"] = self.initializer(p.initializer, f"{where} parameter {p.name!r}")
        return entry

    # -- state -----------------------------------------------------------------------
    def state(self, state: ModelState) -> dict:
        from axon.quantization import QTensor

        entries = []
        for path in leaf_paths(state.data):
            where = f"state entry {'.'.join(path)!r}"
            if not all(isinstance(k, str) and k for k in path):
                raise SerializationError(f"{where}: state keys must be non-empty strings, got path {path!r}")
            leaf = get_path(state.data, path)
            wanted = ".".join(path)
            if isinstance(leaf, QTensor):
                keys = {part: self.tensor(_host_array(getattr(leaf, part), where), f"{wanted}.{part}")
                        for part in ("value", "scale", "zero_point")}
                entries.append({"path": list(path), "qtensor": keys})
                continue
            entry: dict = {"path": list(path)}
            if hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
                entry["prng_impl"] = str(jax.random.key_impl(leaf))
                leaf = jax.random.key_data(leaf)
            if isinstance(leaf, Mapping):  # pragma: no cover - leaf_paths never yields mappings
                raise SerializationError(f"{where}: unexpected mapping")
            entry["key"] = self.tensor(_host_array(leaf, where), wanted)
            entries.append(entry)
        return {
            "entries": entries,
            "parameters": sorted(list(p) for p in state.parameter_paths),
            "state": sorted(list(p) for p in state.state_paths),
            "frozen": sorted(list(p) for p in state.frozen_paths),
        }


def _shape_in_state(state: Mapping[str, Any], path: Path) -> tuple[int, ...] | None:
    try:
        leaf = get_path(state, path)
    except (KeyError, TypeError, IndexError):
        return None
    if isinstance(leaf, Mapping) or not hasattr(leaf, "shape"):
        return None
    return tuple(int(d) for d in leaf.shape)


# ======================================================================================
# Decoding
# ======================================================================================


def _expect(cond: bool, message: str) -> None:
    if not cond:
        raise SerializationError(message)


def _expect_type(value: Any, types: Any, where: str, what: str) -> Any:
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,))):
        raise SerializationError(f"{where}: expected {what}, got {type(value).__name__} {_short(value)}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _str_list(value: Any, where: str) -> list[str]:
    _expect_type(value, list, where, "a list of strings")
    for v in value:
        _expect_type(v, str, where, "a list of strings")
    return value


def _path(value: Any, where: str) -> Path:
    _str_list(value, where)
    _expect(len(value) > 0 and all(value), f"{where}: expected a non-empty path of non-empty strings, got {_short(value)}")
    return tuple(value)


def _int(value: Any, where: str, low: int | None = None, high: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SerializationError(f"{where}: expected an int, got {_short(value)}")
    if (low is not None and value < low) or (high is not None and value >= high):
        raise SerializationError(f"{where}: expected an int in [{low}, {high}), got {value}")
    return value


class _LoadedBlockFn:
    """Stands in for the graph function of a loaded block (whose graph is already built)."""

    __name__ = "loaded"

    def __call__(self, *xs: Any) -> Any:  # pragma: no cover - never called: the graph exists
        raise RuntimeError("a loaded block's graph function is not available")


class _Decoder:
    def __init__(self, tensors: Mapping[str, np.ndarray], blocks: Any = None):
        self.tensors = tensors
        self.blocks_json = blocks if blocks is not None else []
        self.blocks: dict[int, Any] = {}
        self.loading: set[int] = set()

    def tensor(self, key: Any, where: str) -> np.ndarray:
        _expect_type(key, str, where, "a tensor key")
        if key not in self.tensors:
            raise SerializationError(f"{where}: the file has no tensor {key!r}")
        return self.tensors[key]

    def value(self, j: Any, where: str) -> Any:
        if j is None or isinstance(j, (bool, str, int, float)):
            return j
        if isinstance(j, list):
            return [self.value(x, _where(where, i)) for i, x in enumerate(j)]
        if not isinstance(j, dict):  # pragma: no cover - json.loads gives nothing else
            raise SerializationError(f"{where}: unexpected JSON value {_short(j)}")
        tags = [k for k in j if k.startswith("$")]
        if not tags:
            return {k: self.value(v, _where(where, k)) for k, v in j.items()}
        _expect(len(j) == 1, f"{where}: a tagged value must have exactly one key, got {sorted(j)}")
        tag, body = next(iter(j.items()))
        if tag == "$tuple":
            return tuple(self.value(_expect_type(body, list, where, "a list"), where))
        if tag == "$dict":
            out = {}
            for pair in _expect_type(body, list, where, "a list of [key, value] pairs"):
                _expect(isinstance(pair, list) and len(pair) == 2, f"{where}: expected [key, value] pairs, got {_short(pair)}")
                key = self.value(pair[0], where)
                try:
                    hash(key)
                except TypeError:
                    raise SerializationError(f"{where}: dict key {_short(key)} is not hashable") from None
                out[key] = self.value(pair[1], _where(where, key))
            return out
        if tag == "$float":
            _expect(body in ("nan", "inf", "-inf"), f"{where}: bad $float {_short(body)}")
            return float(body)
        if tag == "$tensor":
            return self.tensor(body, where)
        if tag == "$scalar":
            arr = self.tensor(body, where)
            _expect(arr.shape == (), f"{where}: a $scalar tensor must have shape (), got {arr.shape}")
            return arr[()]
        if tag == "$dtype":
            return _parse_dtype(body, where)
        if tag == "$fn":
            return self.function(body, where)
        if tag == "$partial":
            _expect_type(body, dict, where, "a $partial object")
            fn = self.function(body.get("fn"), where)
            args = self.value(body.get("args", []), where)
            kwargs = self.value(body.get("kwargs", {}), where)
            _expect(isinstance(args, list) and isinstance(kwargs, dict) and all(isinstance(k, str) for k in kwargs),
                    f"{where}: bad $partial arguments")
            return functools.partial(fn, *args, **kwargs)
        if tag == "$init":
            return self.initializer(body, where)
        if tag == "$block":
            return self.block(body, where)
        raise SerializationError(f"{where}: unknown tag {tag!r}")

    def function(self, name: Any, where: str) -> Callable[..., Any]:
        _expect_type(name, str, where, "a registered function name")
        fn = _layer_fn(name)
        if fn is None:
            raise SerializationError(
                f"{where}: the function {name!r} is not registered in this program; register it with "
                f"axon.register_layer({name!r}, fn) before loading"
            )
        return fn

    def initializer(self, j: Any, where: str) -> Callable[..., Any]:
        _register_named_initializers()
        _expect_type(j, dict, where, "an initializer spec")
        name = _expect_type(j.get("name"), str, where, "an initializer name")
        entry = _INITS.get(name)
        if entry is None:
            raise SerializationError(
                f"{where}: the initializer {name!r} is not registered in this program; register it with "
                f"axon.serialization.register_initializer({name!r}, fn) before loading"
            )
        kind, fn = entry
        if kind == "function":
            _expect("options" not in j, f"{where}: initializer {name!r} takes no options")
            return fn
        options = self.value(j.get("options", {}), where)
        _expect(isinstance(options, dict) and all(isinstance(k, str) for k in options),
                f"{where}: initializer options must be a dict")
        try:
            init = fn(**options)
        except (TypeError, ValueError) as e:
            raise SerializationError(f"{where}: cannot make initializer {name!r} with options {_short(options)}: {e}") from e
        if not callable(init):
            raise SerializationError(f"{where}: initializer factory {name!r} did not return a function")
        return tag_initializer(init, name, options)

    def block(self, k: Any, where: str) -> Any:
        from axon.api.core import Block

        _int(k, where, 0, len(self.blocks_json))
        if k in self.blocks:
            return self.blocks[k]
        if k in self.loading:
            raise SerializationError(f"{where}: block {k} contains itself")
        self.loading.add(k)
        j = _expect_type(self.blocks_json[k], dict, f"block {k}", "a block object")
        name = j.get("name")
        _expect(name is None or isinstance(name, str), f"block {k}: bad name {_short(name)}")
        inputs = _str_list(j.get("inputs"), f"block {k} inputs")
        _expect(len(set(inputs)) == len(inputs), f"block {k}: input names must be distinct")
        blk = Block(_LoadedBlockFn(), name)
        blk.input_names = tuple(f"__block_{blk.id}_{i}" for i in range(len(inputs)))
        blk.graph = self.graph(j.get("graph"), f"block {k}", dict(zip(inputs, blk.input_names)))
        self.loading.discard(k)
        self.blocks[k] = blk
        return blk

    def graph(self, j: Any, where: str, renames: Mapping[str, str] | None = None) -> Axon:
        _expect_type(j, dict, where, "a graph object")
        nodes_json = _expect_type(j.get("nodes"), list, where, "a list of nodes")
        _expect(len(nodes_json) > 0, f"{where}: the graph has no nodes")
        ids: list[int] = []
        nodes: dict[int, Node] = {}
        for i, nj in enumerate(nodes_json):
            node = self.node(nj, i, ids, f"{where} node {i}", renames or {})
            ids.append(node.id)
            nodes[node.id] = node
        output = _int(j.get("output"), f"{where} output", 0, len(ids))
        return Axon(nodes, ids[output])

    def node(self, j: Any, i: int, ids: list[int], where: str, renames: Mapping[str, str]) -> Node:
        from axon.api.core import _accepted_keywords
        from axon.mixed_precision import create_policy

        _expect_type(j, dict, where, "a node object")
        _expect(j.get("id", i) == i, f"{where}: expected id {i}, got {_short(j.get('id'))}")
        name = j.get("name")
        _expect(name is None or isinstance(name, str), f"{where}: a layer name must be a string or null, got {_short(name)}")
        op_name = _expect_type(j.get("op_name"), str, where, "an op_name string")
        _expect(bool(op_name), f"{where}: empty op_name")
        where = f"{where} ({op_name})"
        parents = [ids[_int(p, f"{where} parents", 0, i)] for p in _expect_type(j.get("parents", []), list, where, "a list of parents")]
        args = tuple(_str_list(j.get("args", []), f"{where} args"))
        _expect(all(a in ("layer", "parameter") for a in args), f"{where}: args must be 'layer' or 'parameter'")
        mode = j.get("mode", "both")
        _expect(mode in ("both", "train", "inference"), f"{where}: bad mode {_short(mode)}")
        global_options = tuple(_str_list(j.get("global_options", []), f"{where} global_options"))
        params = tuple(self.parameter(p, f"{where} parameter") for p in _expect_type(j.get("parameters", []), list, where, "a list of parameters"))
        _expect(len({p.name for p in params}) == len(params), f"{where}: parameter names must be unique")
        meta = self.value(j.get("meta", {}), f"{where} meta")
        _expect(isinstance(meta, dict), f"{where}: meta must be a dict")
        policy = j.get("policy")
        if policy is not None:
            _expect_type(policy, dict, where, "a policy object")
            roles = {r: (None if policy.get(r) is None else _parse_dtype(policy.get(r), f"{where} policy")) for r in ("params", "compute", "output")}
            try:
                policy = create_policy(**roles)
            except ValueError as e:
                raise SerializationError(f"{where}: bad policy: {e}") from e
        op_json = _expect_type(j.get("op"), dict, where, "an op object")
        opts_json = _expect_type(j.get("opts", {}), dict, where, "an opts object")
        if "special" in op_json:
            op: Any = op_json["special"]
            _expect(op in SPECIAL_OPS, f"{where}: unknown special op {_short(op)}")
            _expect(not params and not args, f"{where}: a {op} node has no parameters")
            opts = self.special_opts(op, opts_json, len(parents), where)
            if op == "input":
                _expect(isinstance(name, str) and bool(name), f"{where}: an input needs a name")
                name = renames.get(name, name)
            if op == "namespace":
                _expect(isinstance(name, str) and bool(name), f"{where}: a namespace needs a name")
        else:
            op = self.function(op_json.get("function"), where)
            _expect(args.count("layer") == len(parents) and args.count("parameter") == len(params),
                    f"{where}: args {list(args)} do not match {len(parents)} inputs and {len(params)} parameters")
            opts = {k: self.value(v, f"{where} option {k!r}") for k, v in opts_json.items()}
            accepted, var_kw = _accepted_keywords(op, len(args))
            unknown = [k for k in opts if k not in accepted and not var_kw]
            _expect(not unknown, f"{where}: option(s) {unknown} are not accepted by {op_json.get('function')!r}")
        return Node(id=next_id(), name=name, op=op, op_name=op_name, parents=tuple(parents), parameters=params,
                    args=args, opts=opts, mode=mode, global_options=global_options, policy=policy, meta=meta)

    def special_opts(self, op: str, opts_json: dict, n_parents: int, where: str) -> dict:
        expected_parents = {"input": 0, "constant": 0, "optional": 1, "or_else": 2, "namespace": 1}
        if op in expected_parents:
            _expect(n_parents == expected_parents[op], f"{where}: a {op} node has {expected_parents[op]} parents, got {n_parents}")
        if op == "input":
            _expect(set(opts_json) <= {"shape", "optional"}, f"{where}: unknown input options {sorted(opts_json)}")
            shape = self.value(opts_json.get("shape"), where)
            _expect(shape is None or (isinstance(shape, tuple) and all(
                d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 0) for d in shape)),
                f"{where}: an input shape must be a tuple of ints and None, got {_short(shape)}")
            optional = opts_json.get("optional", False)
            _expect(isinstance(optional, bool), f"{where}: optional must be a bool")
            return {"shape": shape, "optional": optional}
        if op == "constant":
            _expect(set(opts_json) == {"value"}, f"{where}: a constant has exactly the option 'value'")
            value = self.value(opts_json["value"], where)
            _expect(isinstance(value, np.ndarray) and (value.dtype.kind in "biufc" or value.dtype.name in _DTYPE_NAMES),
                    f"{where}: a constant's value must be a numeric tensor")
            return {"value": value}
        if op == "container":
            _expect(set(opts_json) == {"structure"}, f"{where}: a container has exactly the option 'structure'")
            structure = self.value(opts_json["structure"], where)
            _check_structure(structure, n_parents, where)
            return {"structure": structure}
        if op == "block":
            _expect(set(opts_json) == {"block"}, f"{where}: a block node has exactly the option 'block'")
            blk = self.value(opts_json["block"], where)
            from axon.api.core import Block

            _expect(isinstance(blk, Block), f"{where}: the block option must be a $block reference")
            _expect(n_parents == len(blk.input_names), f"{where}: the block takes {len(blk.input_names)} inputs, got {n_parents}")
            return {"block": blk}
        _expect(not opts_json, f"{where}: a {op} node has no options")
        return {}

    def parameter(self, j: Any, where: str) -> Parameter:
        _expect_type(j, dict, where, "a parameter object")
        name = _expect_type(j.get("name"), str, where, "a parameter name")
        _expect(bool(name), f"{where}: empty parameter name")
        where = f"{where} {name!r}"
        kind = j.get("kind", "parameter")
        _expect(kind in ("parameter", "state"), f"{where}: bad kind {_short(kind)}")
        dtype = _parse_dtype(j.get("dtype", "float32"), where)
        frozen = j.get("frozen", False)
        _expect(isinstance(frozen, bool), f"{where}: frozen must be a bool")
        if j.get("children") is not None:
            children = [self.parameter(c, where) for c in _expect_type(j["children"], list, where, "a list of children")]
            _expect(len({c.name for c in children}) == len(children), f"{where}: child names must be unique")
            return Parameter(name=name, shape=None, initializer=None, dtype=dtype, kind=kind, frozen=frozen,
                             children={c.name: c for c in children})
        shape_json = j.get("shape")
        if shape_json is None:
            shape: Any = _unsaved_shape(where)
        else:
            _expect_type(shape_json, list, where, "a shape list")
            shape = tuple(_int(d, f"{where} shape", 0) for d in shape_json)
        init_json = j.get("initializer")
        init = _unsaved_initializer(where) if init_json is None else self.initializer(init_json, f"{where} initializer")
        return Parameter(name=name, shape=shape, initializer=init, dtype=dtype, kind=kind, frozen=frozen)


def _check_structure(s: Any, n: int, where: str) -> None:
    if isinstance(s, int) and not isinstance(s, bool):
        _expect(0 <= s < n, f"{where}: container index {s} out of range for {n} inputs")
    elif isinstance(s, dict):
        for v in s.values():
            _check_structure(v, n, where)
    elif isinstance(s, (list, tuple)):
        for v in s:
            _check_structure(v, n, where)
    else:
        raise SerializationError(f"{where}: a container structure holds only dicts, tuples, lists and input indices, got {_short(s)}")


def _unsaved_shape(where: str) -> Callable[..., Any]:
    def shape(*input_shapes: Any) -> Any:
        raise ValueError(
            f"{where}: the shape of this parameter was not saved (the saved state had no value for it); "
            "pass its value in init_fn's init_state"
        )

    return shape


def _unsaved_initializer(where: str) -> Callable[..., Any]:
    def init(key: Any, shape: Any, dtype: Any = None) -> Any:
        raise ValueError(
            f"{where}: the initializer of this parameter was not saved (a custom function); pass its value "
            "in init_fn's init_state, or register the initializer with "
            "axon.serialization.register_initializer before saving"
        )

    return init


def _decode_state(j: Any, tensors: Mapping[str, np.ndarray]) -> ModelState:
    from axon.quantization import QTensor

    where = "state"
    _expect_type(j, dict, where, "a state object")
    data: dict = {}
    for i, e in enumerate(_expect_type(j.get("entries", []), list, where, "a list of entries")):
        w = f"state entry {i}"
        _expect_type(e, dict, w, "an entry object")
        path = _path(e.get("path"), f"{w} path")
        if "qtensor" in e:
            keys = _expect_type(e["qtensor"], dict, w, "a qtensor object")
            parts = {}
            for part in ("value", "scale", "zero_point"):
                _expect(part in keys, f"{w}: qtensor without {part!r}")
                parts[part] = _device_array(_tensor(tensors, keys[part], w))
            _expect(parts["value"].ndim == 2 and parts["value"].dtype == np.int8
                    and parts["scale"].shape == parts["value"].shape[-1:] and parts["zero_point"].shape == parts["scale"].shape,
                    f"{w}: inconsistent qtensor shapes or dtypes")
            leaf: Any = QTensor(**parts)
        else:
            arr = _tensor(tensors, e.get("key"), w)
            impl = e.get("prng_impl")
            if impl is not None:
                _expect(impl in _PRNG_IMPLS, f"{w}: unknown PRNG implementation {_short(impl)}")
                try:
                    leaf = jax.random.wrap_key_data(jnp.asarray(arr), impl=impl)
                except (TypeError, ValueError) as err:
                    raise SerializationError(f"{w}: bad PRNG key data: {err}") from err
            else:
                leaf = _device_array(arr)
        _set_new_path(data, path, leaf, w)
    lists = {}
    for field in ("parameters", "state", "frozen"):
        items = _expect_type(j.get(field, []), list, where, f"a list of {field} paths")
        lists[field] = [_path(p, f"state {field}") for p in items]
    return ModelState(data, lists["parameters"], lists["state"], lists["frozen"])


def _tensor(tensors: Mapping[str, np.ndarray], key: Any, where: str) -> np.ndarray:
    _expect_type(key, str, where, "a tensor key")
    if key not in tensors:
        raise SerializationError(f"{where}: the file has no tensor {key!r}")
    return tensors[key]


def _device_array(arr: np.ndarray) -> Any:
    if arr.dtype.itemsize == 8 and arr.dtype.kind in "iuf" and not jax.config.jax_enable_x64:
        return arr  # jax would truncate 64-bit values; keep them on the host
    if arr.dtype.kind == "c" and arr.dtype.itemsize == 16 and not jax.config.jax_enable_x64:
        return arr
    return jnp.asarray(arr)


def _set_new_path(data: dict, path: Path, value: Any, where: str) -> None:
    node = data
    for k in path[:-1]:
        node = node.setdefault(k, {})
        _expect(isinstance(node, dict), f"{where}: path {list(path)} runs through a value")
    _expect(path[-1] not in node, f"{where}: path {list(path)} appears twice or holds nested entries")
    node[path[-1]] = value


# ======================================================================================
# Container: safetensors with axon metadata
# ======================================================================================


def _pack(metadata: dict[str, str], tensors: dict[str, np.ndarray]) -> bytes:
    try:
        return safetensors.numpy.save(tensors, metadata=metadata)
    except Exception as e:
        raise SerializationError(f"cannot write the tensors: {e}") from e


def _unpack(data: Any) -> tuple[dict[str, str] | None, dict[str, np.ndarray]]:
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
    tensors = {}
    for name, info in raw:
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise SerializationError(f"tensor {name!r}: unsupported dtype {info['dtype']}")
        buf = info["data"]
        shape = tuple(int(d) for d in info["shape"])
        if len(buf) != math.prod(shape) * dtype.itemsize:
            raise SerializationError(f"tensor {name!r}: {len(buf)} bytes do not hold shape {shape} of {dtype}")
        if dtype == np.dtype(bool):
            arr = np.frombuffer(buf, np.uint8).reshape(shape) != 0
        else:
            arr = np.frombuffer(buf, dtype).reshape(shape).copy()
        tensors[name] = arr
    return meta, tensors


def _loads_json(text: str, what: str) -> Any:
    def reject(constant: str) -> Any:
        raise ValueError(f"invalid JSON constant {constant}")

    try:
        return json.loads(text, parse_constant=reject)
    except (ValueError, RecursionError) as e:
        raise SerializationError(f"corrupted file: bad {what} JSON: {e}") from e


def _dumps_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _read_doc(meta: dict[str, str] | None, expected: str | None) -> dict:
    """The axon document of a file's metadata, checked for format and version."""
    if not meta or "axon" not in meta:
        raise SerializationError(
            "not an axon file: a safetensors file without axon metadata (load plain tensors with "
            "axon.load_state, which reads any safetensors file)"
        )
    doc = _loads_json(meta["axon"], "metadata")
    if not isinstance(doc, dict):
        raise SerializationError("corrupted file: the axon metadata must be a JSON object")
    fmt = doc.get("format")
    if fmt not in (FORMAT_MODEL, FORMAT_STATE):
        raise SerializationError(f"not an axon file: unknown format {_short(fmt)}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SerializationError(f"corrupted file: bad format version {_short(version)}")
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


def _meta(doc: dict) -> dict[str, str]:
    return {"axon": _dumps_json({"format": doc["format"], "version": VERSION, **doc})}


def _guard(fn: Callable[[], Any]) -> Any:
    """Run a decoding step, turning any malformation into a SerializationError."""
    try:
        return fn()
    except SerializationError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError, OverflowError) as e:
        raise SerializationError(f"corrupted file: {type(e).__name__}: {e}") from e


def _as_state(state: Any, where: str) -> ModelState:
    if state is None:
        return ModelState.empty()
    if isinstance(state, ModelState):
        return state
    if isinstance(state, Mapping):
        return ModelState(state)
    raise TypeError(f"{where}: expected state to be an axon.ModelState or a nested dict, got {type(state).__name__}")


# ======================================================================================
# Public API
# ======================================================================================


def serialize(model: Axon, state: ModelState | Mapping[str, Any] | None) -> bytes:
    """A model and its parameters as ``bytes`` (a safetensors container, see the module
    docs); the inverse of :func:`deserialize`. Raises :class:`SerializationError` when a
    layer function is not registered or an option cannot be saved.

    >>> import axon
    >>> model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2)
    >>> data = axon.serialize(model, axon.init(model, axon.template((1, 3))))
    >>> isinstance(data, bytes)
    True
    """
    if not isinstance(model, Axon):
        raise TypeError(f"serialize: expected model to be an axon graph (axon.Axon), got {type(model).__name__}")
    ms = _as_state(state, "serialize")
    enc = _Encoder(ms.data)
    state_json = enc.state(ms)
    graph = enc.graph(model, ms.data, (), {})
    graph["blocks"] = enc.blocks
    if enc.hooks:
        warnings.warn(f"serialize: hooks are not saved (layers {', '.join(enc.hooks)})", stacklevel=2)
    return _pack(_meta({"format": FORMAT_MODEL, "graph": graph, "state": state_json}), enc.tensors)


def deserialize(data: bytes) -> tuple[Axon, ModelState]:
    """``(model, state)`` from bytes written by :func:`serialize`. Never runs code from the
    data: layer functions resolve through :func:`register_layer`'s registry. Invalid data
    raises :class:`SerializationError`.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x").pipe(axon.relu)
    >>> loaded, state = axon.deserialize(axon.serialize(model, {}))
    >>> axon.predict(loaded, state, jnp.array([-1.0, 1.0])).tolist()
    [0.0, 1.0]
    """
    meta, tensors = _unpack(data)
    doc = _read_doc(meta, FORMAT_MODEL)

    def decode() -> tuple[Axon, ModelState]:
        graph_json = doc["graph"]
        state = _decode_state(doc["state"], tensors)
        _expect_type(graph_json, dict, "graph", "a graph object")
        blocks = _expect_type(graph_json.get("blocks", []), list, "graph blocks", "a list")
        model = _Decoder(tensors, blocks).graph(graph_json, "graph")
        return model, state

    return _guard(decode)


def serialize_state(state: ModelState | Mapping[str, Any]) -> bytes:
    """Parameters and layer state alone as ``bytes`` (a safetensors file whose tensors are
    named by their dotted paths); the inverse of :func:`deserialize_state`.

    >>> import axon, jax.numpy as jnp
    >>> data = axon.serialization.serialize_state({"dense_0": {"kernel": jnp.ones((2, 2))}})
    >>> axon.serialization.deserialize_state(data)["dense_0"]["kernel"].tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    ms = _as_state(state, "serialize_state")
    enc = _Encoder()
    state_json = enc.state(ms)
    return _pack(_meta({"format": FORMAT_STATE, "state": state_json}), enc.tensors)


def deserialize_state(data: bytes) -> ModelState:
    """The :class:`axon.ModelState` in bytes written by :func:`serialize_state` or
    :func:`serialize`, or in any safetensors file (tensor names are then split at ``"."``
    into paths, and every entry is a trainable parameter).

    >>> import numpy as np, safetensors.numpy
    >>> data = safetensors.numpy.save({"dense_0.bias": np.zeros(2, np.float32)})
    >>> from axon import serialization
    >>> serialization.deserialize_state(data)["dense_0"]["bias"].tolist()
    [0.0, 0.0]
    """
    meta, tensors = _unpack(data)
    if not meta or "axon" not in meta:

        def foreign() -> ModelState:
            out: dict = {}
            for key, arr in tensors.items():
                _set_new_path(out, tuple(key.split(".")), _device_array(arr), f"tensor {key!r}")
            return ModelState(out)

        return _guard(foreign)
    doc = _read_doc(meta, None)
    return _guard(lambda: _decode_state(doc["state"], tensors))


def _write(path: str | os.PathLike, data: bytes) -> None:
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".axon-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read(path: str | os.PathLike) -> bytes:
    with open(os.fspath(path), "rb") as f:
        return f.read()


def save(path: str | os.PathLike, model: Axon, state: ModelState | Mapping[str, Any] | None) -> None:
    """Write ``model`` and ``state`` to the file ``path`` (atomically: a partly written
    file never replaces a good one); read it back with :func:`load`.

    >>> import axon, os, tempfile, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1, kernel_initializer="ones")
    >>> path = os.path.join(tempfile.mkdtemp(), "model.axon")
    >>> axon.save(path, model, axon.init(model, axon.template((1, 2))))
    >>> loaded, state = axon.load(path)
    >>> axon.predict(loaded, state, jnp.ones((1, 2))).tolist()
    [[2.0]]
    """
    _write(path, serialize(model, state))


def load(path: str | os.PathLike) -> tuple[Axon, ModelState]:
    """``(model, state)`` from a file written by :func:`save` (see :func:`deserialize`).

    >>> import axon, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "m.axon")
    >>> axon.save(path, axon.input("x").pipe(axon.tanh), {})
    >>> axon.load(path)[0]
    <Axon inputs={'x': None} output='tanh_0' nodes=2>
    """
    return deserialize(_read(path))


def save_state(path: str | os.PathLike, state: ModelState | Mapping[str, Any]) -> None:
    """Write parameters and layer state alone to the safetensors file ``path`` (tensors
    named by their dotted paths, readable by any safetensors tool); read it back with
    :func:`load_state`. Use it for models whose layer functions are not registered: the
    model is then rebuilt in code.

    >>> import axon, os, tempfile
    >>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 3)
    >>> state = axon.init(model, axon.template((1, 2)))
    >>> path = os.path.join(tempfile.mkdtemp(), "weights.safetensors")
    >>> axon.save_state(path, state)
    >>> axon.load_state(path, model)["dense_0"]["kernel"].shape
    (2, 3)
    """
    _write(path, serialize_state(state))


class StateReport(NamedTuple):
    """How a state fits a model: paths the model needs but the state lacks (``missing``),
    paths the model does not have (``unexpected``), and ``(path, expected_shape,
    actual_shape)`` for values of the wrong shape (``mismatched``).

    >>> StateReport([], [("extra", "w")], []).ok
    False
    """

    missing: list[Path]
    unexpected: list[Path]
    mismatched: list[tuple[Path, tuple[int, ...], tuple[int, ...]]]

    @property
    def ok(self) -> bool:
        """True when nothing is missing, unexpected or mis-shaped."""
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        parts = []
        if self.missing:
            parts.append("missing: " + ", ".join(".".join(p) for p in self.missing))
        if self.unexpected:
            parts.append("unexpected: " + ", ".join(".".join(p) for p in self.unexpected))
        if self.mismatched:
            parts.append("shape mismatch: " + ", ".join(f"{'.'.join(p)} (model {e}, state {a})" for p, e, a in self.mismatched))
        return "; ".join(parts) or "state matches the model"


def _model_parameters(model: Axon) -> dict[Path, tuple[Parameter, bool]]:
    """Every leaf parameter of ``model`` (blocks and namespaces included) by its state path,
    with whether the model always has it (layers of one mode only may lack it)."""
    out: dict[Path, tuple[Parameter, bool]] = {}
    seen_blocks: set[int] = set()

    def add(p: Parameter, path: Path, required: bool) -> None:
        if p.children is not None:
            for c in p.children.values():
                add(c, (*path, c.name), required)
        else:
            out.setdefault(path, (p, required))

    def walk(graph: Axon, scope: Path, required: bool) -> None:
        names = layer_names(graph)
        for nid in topological_order(graph):
            node = graph.nodes[nid]
            sc, name = names[nid]
            full = (*scope, *sc, name)
            if node.op == "block":
                blk = node.opts["block"]
                if blk.id not in seen_blocks:
                    seen_blocks.add(blk.id)
                    walk(blk.graph, full, required)
                continue
            for p in node.parameters:
                add(p, (*full, p.name), required and node.mode == "both")

    walk(model, (), True)
    return out


def check_state(model: Axon, state: ModelState | Mapping[str, Any], template: Any = None) -> StateReport:
    """Compare ``state`` with the parameters ``model`` declares: missing, unexpected and
    mis-shaped entries. Shapes that depend on the input are checked when ``template`` (the
    model's input template(s), as for ``init_fn``) is given.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 3)
    >>> report = axon.serialization.check_state(model, {"dense_0": {"kernel": jnp.ones((2, 4))}}, axon.template((1, 2)))
    >>> report.missing, report.mismatched
    ([('dense_0', 'bias')], [(('dense_0', 'kernel'), (2, 3), (2, 4))])
    """
    ms = _as_state(state, "check_state")
    declared = _model_parameters(model)
    shapes: dict[Path, tuple[int, ...]] = {p: tuple(param.shape) for p, (param, _) in declared.items()
                                             if isinstance(param.shape, tuple)}
    if template is not None:
        from axon.compiler import build

        init_fn, _ = build(model, mode="train", jit=False)
        abstract = jax.eval_shape(lambda: init_fn(template))
        for path in leaf_paths(abstract.data):
            shapes[path] = tuple(get_path(abstract.data, path).shape)
    have = {p: _leaf_shape(get_path(ms.data, p)) for p in leaf_paths(ms.data)}
    missing = [p for p, (_, required) in declared.items() if required and p not in have]
    unexpected = [p for p in have if p not in declared]
    mismatched = [(p, shapes[p], have[p]) for p in have if p in declared and p in shapes and have[p] is not None and shapes[p] != have[p]]
    return StateReport(missing, unexpected, mismatched)


def _leaf_shape(leaf: Any) -> tuple[int, ...] | None:
    shape = getattr(leaf, "shape", None)
    return None if shape is None else tuple(int(d) for d in shape)


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
    state = deserialize_state(_read(path))
    if model is None:
        return state
    if not isinstance(model, Axon):
        raise TypeError(f"load_state: expected model to be an axon graph (axon.Axon), got {type(model).__name__}")
    report = check_state(model, state, template)
    if not report.ok:
        if strict:
            raise StateMismatchError(f"the state does not fit the model: {report}", report)
        bad = set(report.unexpected) | {p for p, _, _ in report.mismatched}
        if bad:
            warnings.warn(f"load_state: dropping entries that do not fit the model: {report}", stacklevel=2)
        data: dict = {}
        for p in leaf_paths(state.data):
            if p not in bad:
                _set_new_path(data, p, get_path(state.data, p), "load_state")
        state = ModelState(data, state.parameter_paths - bad, state.state_paths - bad, state.frozen_paths - bad)
    declared = _model_parameters(model)
    kinds = {p: param.kind for p, (param, _) in declared.items()}
    paths = set(leaf_paths(state.data))
    parameter_paths = {p for p in paths if kinds.get(p, "parameter" if p in state.parameter_paths or p not in state.state_paths else "state") == "parameter"}
    state_paths = paths - parameter_paths
    frozen = (state.frozen_paths & paths) | {p for p, (param, _) in declared.items() if param.frozen and p in paths}
    return ModelState(state.data, parameter_paths, state_paths, frozen)
