"""The registries through which a saved graph names its functions, never importing them.

* Layer functions: registered with :func:`register_layer` (the user's) or
  :func:`register_builtin_layer` (axon's, named ``"axon.<...>"``). Every public function of
  :mod:`axon.layers` and :mod:`axon.activations`, and every module-level function of the
  loaded ``axon.api`` modules, is registered automatically (see :func:`registered_layers`).
* Initializers: functions registered with :func:`register_initializer`, and factories
  (``axon.initializers``' and :func:`register_builtin_initializer`'s ``factory=True``)
  whose init functions carry ``__axon_initializer__ = (factory_name, options)`` and are
  remade on load as ``factory(**options)`` (see :func:`initializer_spec`).

>>> from axon import initializers
>>> initializer_spec(initializers.uniform(scale=0.1))
('uniform', {'scale': 0.1})
>>> registered_initializer("uniform")[0]
'factory'
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "initializer_spec",
    "layer_fn",
    "layer_name_of",
    "register_builtin_initializer",
    "register_builtin_layer",
    "register_initializer",
    "register_layer",
    "registered_initializer",
    "registered_layers",
    "tag_initializer",
]

_RESERVED_PREFIX = "axon."
INITIALIZER_ATTRIBUTE = "__axon_initializer__"
"""Attribute of an init function: ``(factory_name, options)`` of the factory that made it."""

_LAYERS: dict[str, Callable[..., Any]] = {}
_LAYER_NAMES: dict[int, str] = {}
_INITS: dict[str, tuple[str, Callable[..., Any]]] = {}
_INIT_NAMES: dict[int, str] = {}
_AUTO: dict[str, Callable[..., Any]] = {}
_AUTO_NAMES: dict[int, str] = {}
_AUTO_SIZE: list[int] = [-1]
_ALIASES: dict[int, tuple[str, Any]] = {}


# --------------------------------------------------------------------------------------
# registering


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
    parameters using it keep their initializer when saved (the initializers of
    ``axon.initializers``, by name or made by a factory, are always kept). Returns ``fn``.

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
    so that it can be saved and remade on load. Returns ``init``.

    >>> tag_initializer(lambda key, shape, dtype=None: None, "zeros", {}).__axon_initializer__
    ('zeros', {})
    """
    with contextlib.suppress(AttributeError, TypeError):
        setattr(init, INITIALIZER_ATTRIBUTE, (name, dict(options)))
    return init


# --------------------------------------------------------------------------------------
# automatic registration of axon's own functions


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


def _register_named_initializers() -> None:
    from axon import initializers

    for name, factory in initializers.INITIALIZERS.items():
        if name not in _INITS:
            _INITS[name] = ("factory", factory)
    if "full" not in _INITS and hasattr(initializers, "full"):
        _INITS["full"] = ("factory", initializers.full)


# --------------------------------------------------------------------------------------
# lookups


def _alias(fn: Any) -> str | None:
    alias = _ALIASES.get(id(fn))
    return alias[0] if alias is not None and alias[1] is fn else None


def layer_name_of(fn: Any) -> str | None:
    """The registered name of the layer function ``fn``, or None."""
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


def layer_fn(name: str) -> Callable[..., Any] | None:
    """The layer function registered under ``name``, or None."""
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


def initializer_spec(init: Any) -> tuple[str, dict[str, Any] | None] | None:
    """How to save the init function ``init``: ``(factory_name, options)`` for one made by a
    registered factory, ``(name, None)`` for a registered function, None otherwise."""
    if init is None:
        return None
    _register_named_initializers()
    spec = getattr(init, INITIALIZER_ATTRIBUTE, None)
    if isinstance(spec, tuple) and len(spec) == 2 and spec[0] in _INITS:
        return spec[0], dict(spec[1])
    name = _INIT_NAMES.get(id(init))
    if name is not None and _INITS.get(name, (None, None))[1] is init:
        return name, None
    name = _alias(init)
    if name is not None and name in _INITS:
        return name, None
    return None


def registered_initializer(name: str) -> tuple[str, Callable[..., Any]] | None:
    """``("function", init)`` or ``("factory", factory)`` registered under ``name``, or None."""
    _register_named_initializers()
    return _INITS.get(name)
