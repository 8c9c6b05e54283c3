"""Option values to and from JSON, with tags for what JSON lacks.

``{"$tuple": [...]}``, ``{"$dict": [[k, v], ...]}`` (keys that are not plain strings),
``{"$float": "nan" | "inf" | "-inf"}``, ``{"$tensor": key}`` and ``{"$scalar": key}``
(arrays kept as tensors of the file), ``{"$dtype": name}``, ``{"$fn": name}`` (a registered
function), ``{"$partial": {"fn", "args", "kwargs"}}``, ``{"$init": {"name", "options"}}``
(an initializer) and ``{"$block": i}`` (handled by the graph decoder). Functions resolve
through :mod:`axon.serialization.registry` only.

>>> import math
>>> from axon.serialization.container import TensorTable
>>> encoded = ValueEncoder(TensorTable()).value({"k": (1, math.inf)}, "doc")
>>> encoded
{'k': {'$tuple': [1, {'$float': 'inf'}]}}
>>> ValueDecoder({}).value(encoded, "doc")
{'k': (1, inf)}
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from axon.serialization.container import TensorTable, tensor_at
from axon.serialization.dtypes import dtype_name, host_array, parse_dtype
from axon.serialization.errors import SerializationError, expect, expect_type, short
from axon.serialization.registry import (
    initializer_spec,
    layer_fn,
    layer_name_of,
    registered_initializer,
    tag_initializer,
)


def where_at(where: str, key: Any) -> str:
    """``where`` narrowed to the item ``key``.

    >>> where_at("layer 'dense_0'", "units")
    "layer 'dense_0'['units']"
    """
    return f"{where}[{key!r}]"


class ValueEncoder:
    """Encodes option values, storing their arrays in ``tensors`` as ``axon.graph.<n>``."""

    def __init__(self, tensors: TensorTable) -> None:
        self.tensors = tensors
        self.graph_tensors = 0

    def value(self, v: Any, where: str) -> Any:
        """The JSON form of the option value ``v``."""
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            if math.isfinite(v):
                return v
            return {"$float": "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")}
        if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
            return {"$dtype": dtype_name(v, where)}
        if isinstance(v, (np.ndarray, np.generic, jax.Array)):
            arr = host_array(v, where)
            self.graph_tensors += 1
            key = self.tensors.add(arr, f"axon.graph.{self.graph_tensors - 1}")
            return {"$scalar": key} if isinstance(v, np.generic) else {"$tensor": key}
        if isinstance(v, list):
            return [self.value(x, where_at(where, i)) for i, x in enumerate(v)]
        if isinstance(v, tuple):
            return {"$tuple": [self.value(x, where_at(where, i)) for i, x in enumerate(v)]}
        if isinstance(v, Mapping):
            if all(isinstance(k, str) and not k.startswith("$") for k in v):
                return {k: self.value(x, where_at(where, k)) for k, x in v.items()}
            return {"$dict": [[self.value(k, where), self.value(x, where_at(where, k))] for k, x in v.items()]}
        if hasattr(v, "dtype") and not hasattr(v, "shape") and callable(v):  # jnp.float32 and friends
            try:
                return {"$dtype": dtype_name(v, where)}
            except SerializationError:
                pass
        if callable(v):
            return self.function(v, where)
        raise SerializationError(
            f"{where}: cannot save a value of type {type(v).__name__} ({v!r}); options may hold None, bools, "
            "ints, floats, strings, lists, tuples, dicts, arrays, dtypes and registered functions"
        )

    def function(self, fn: Any, where: str) -> Any:
        """``$init``, ``$fn`` or ``$partial`` for a registered function; raises otherwise."""
        spec = self.initializer(fn, where)
        if spec is not None:
            return {"$init": spec}
        name = layer_name_of(fn)
        if name is not None:
            return {"$fn": name}
        if isinstance(fn, functools.partial):
            inner = layer_name_of(fn.func)
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
        """``{"name": ..., "options": ...}`` for an initializer that can be remade, else None."""
        spec = initializer_spec(init)
        if spec is None:
            return None
        name, options = spec
        if options is None:
            return {"name": name}
        try:
            return {"name": name, "options": self.value(options, where_at(where, "initializer"))}
        except SerializationError:
            return None  # options that cannot be saved (an unregistered function): not kept


class ValueDecoder:
    """Decodes option values, taking tagged arrays from ``tensors`` (the file's)."""

    def __init__(self, tensors: Mapping[str, np.ndarray]) -> None:
        self.tensors = tensors

    def value(self, j: Any, where: str) -> Any:
        """The option value encoded as the JSON ``j``."""
        if j is None or isinstance(j, (bool, str, int, float)):
            return j
        if isinstance(j, list):
            return [self.value(x, where_at(where, i)) for i, x in enumerate(j)]
        if not isinstance(j, dict):  # pragma: no cover - json.loads gives nothing else
            raise SerializationError(f"{where}: unexpected JSON value {short(j)}")
        tags = [k for k in j if k.startswith("$")]
        if not tags:
            return {k: self.value(v, where_at(where, k)) for k, v in j.items()}
        expect(len(j) == 1, f"{where}: a tagged value must have exactly one key, got {sorted(j)}")
        tag, body = next(iter(j.items()))
        decode = self._TAGS.get(tag)
        if decode is None:
            raise SerializationError(f"{where}: unknown tag {tag!r}")
        return decode(self, body, where)

    def _tuple(self, body: Any, where: str) -> tuple:
        return tuple(self.value(expect_type(body, list, where, "a list"), where))

    def _dict(self, body: Any, where: str) -> dict:
        out = {}
        for pair in expect_type(body, list, where, "a list of [key, value] pairs"):
            expect(isinstance(pair, list) and len(pair) == 2, f"{where}: expected [key, value] pairs, got {short(pair)}")
            key = self.value(pair[0], where)
            try:
                hash(key)
            except TypeError:
                raise SerializationError(f"{where}: dict key {short(key)} is not hashable") from None
            out[key] = self.value(pair[1], where_at(where, key))
        return out

    def _float(self, body: Any, where: str) -> float:
        expect(body in ("nan", "inf", "-inf"), f"{where}: bad $float {short(body)}")
        return float(body)

    def _tensor(self, body: Any, where: str) -> np.ndarray:
        return tensor_at(self.tensors, body, where)

    def _scalar(self, body: Any, where: str) -> Any:
        arr = tensor_at(self.tensors, body, where)
        expect(arr.shape == (), f"{where}: a $scalar tensor must have shape (), got {arr.shape}")
        return arr[()]

    def _dtype(self, body: Any, where: str) -> np.dtype:
        return parse_dtype(body, where)

    def _partial(self, body: Any, where: str) -> functools.partial:
        expect_type(body, dict, where, "a $partial object")
        fn = self.function(body.get("fn"), where)
        args = self.value(body.get("args", []), where)
        kwargs = self.value(body.get("kwargs", {}), where)
        expect(isinstance(args, list) and isinstance(kwargs, dict) and all(isinstance(k, str) for k in kwargs),
               f"{where}: bad $partial arguments")
        return functools.partial(fn, *args, **kwargs)

    def block(self, k: Any, where: str) -> Any:
        """The block ``k`` of the file; only a graph decoder has blocks."""
        raise SerializationError(f"{where}: unknown tag '$block'")

    def function(self, name: Any, where: str) -> Callable[..., Any]:
        """The function registered under ``name``, which this program must have."""
        expect_type(name, str, where, "a registered function name")
        fn = layer_fn(name)
        if fn is None:
            raise SerializationError(
                f"{where}: the function {name!r} is not registered in this program; register it with "
                f"axon.register_layer({name!r}, fn) before loading"
            )
        return fn

    def initializer(self, j: Any, where: str) -> Callable[..., Any]:
        """The initializer ``{"name": ..., "options": ...}``: a registered function, or a
        registered factory called with the options."""
        expect_type(j, dict, where, "an initializer spec")
        name = expect_type(j.get("name"), str, where, "an initializer name")
        entry = registered_initializer(name)
        if entry is None:
            raise SerializationError(
                f"{where}: the initializer {name!r} is not registered in this program; register it with "
                f"axon.serialization.register_initializer({name!r}, fn) before loading"
            )
        kind, fn = entry
        if kind == "function":
            expect("options" not in j, f"{where}: initializer {name!r} takes no options")
            return fn
        options = self.value(j.get("options", {}), where)
        expect(isinstance(options, dict) and all(isinstance(k, str) for k in options),
               f"{where}: initializer options must be a dict")
        try:
            init = fn(**options)
        except (TypeError, ValueError) as e:
            raise SerializationError(f"{where}: cannot make initializer {name!r} with options {short(options)}: {e}") from e
        if not callable(init):
            raise SerializationError(f"{where}: initializer factory {name!r} did not return a function")
        return tag_initializer(init, name, options)

    _TAGS: dict[str, Callable[[ValueDecoder, Any, str], Any]] = {
        "$tuple": _tuple,
        "$dict": _dict,
        "$float": _float,
        "$tensor": _tensor,
        "$scalar": _scalar,
        "$dtype": _dtype,
        "$fn": lambda self, body, where: self.function(body, where),
        "$partial": _partial,
        "$init": lambda self, body, where: self.initializer(body, where),
        "$block": lambda self, body, where: self.block(body, where),
    }
