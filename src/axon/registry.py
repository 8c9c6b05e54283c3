"""Permanent names for the functions a saved model refers to: a leaf module (it imports
nothing from axon), so every other module may register into it.

A saved file names each op and initializer by a registered name, never by where the
function happens to live, so code can move between modules without breaking a file.
There is one table per *kind*:

* ``"op"``: functions a graph holds: a layer's op or a function kept in its options
  (``axon.fn``'s function, ``axon.cond``'s predicate, an activation).
* ``"initializer"``: init functions ``init(key, shape, dtype)`` saved by name alone.
* ``"initializer_factory"``: functions of options returning an init function; an init
  function they make is saved as the factory's name and its options, and remade on load
  as ``factory(**options)`` (see :func:`factory` and :func:`made_by`).

**Naming scheme.** Names starting with ``"axon."`` belong to axon and are registered
explicitly where the function is defined or used, never derived from a module path:

* ``"axon.<name>"``: every functional layer ``axon.layers.<name>`` (``"axon.dense"``,
  ``"axon.conv"``, ``"axon.separable_conv2d"``), every activation
  ``axon.activations.<name>`` (``"axon.relu"``), and the graph-only ops of the built-in
  constructors (``"axon.fn"``, ``"axon.cond"``, ``"axon.recurrent"``,
  ``"axon.separable_conv2d_op"``, ``"axon.stack_columns"``, ...).
* ``"axon.initializers.<name>"``: the factories of :mod:`axon.initializers`
  (``"axon.initializers.glorot_uniform"``); other built-in initializers are
  ``"axon.<name>"`` (``"axon.build_seed_key"``, ``"axon.seeded_key"``).
* ``"axon.quantization.<name>"``: the quantization op and initializer factory.

Where they are registered: :mod:`axon.activations` registers its activations,
:mod:`axon.initializers` its factories (one decorator each), and each ``axon.api`` module
the functional layers and graph ops its constructors use (a table at its end, or a
decorator on the op). A graph op that adapts a functional layer has a name of its own: the
``separable_conv2d`` layer holds ``"axon.separable_conv2d_op"`` (kernels first, then
biases), while ``"axon.separable_conv2d"`` is the functional layer. Files saved before
these names existed (ops named by module path, such as ``"axon.layers.dense"``) are
translated when loaded, in one place: :mod:`axon.serialization.legacy_names`.

A user's function is registered under a name of their own (``"my_project.atan2"``) with
``axon.register_layer``; the ``"axon."`` prefix is reserved. A name is permanent: once
files are saved with it, it must keep meaning the same function.

>>> from axon import registry
>>> def double(x):
...     return 2 * x
>>> registry.register("op", "doc.registry.double", double) is double
True
>>> registry.lookup("op", "doc.registry.double") is double, registry.name_of("op", double)
(True, 'doc.registry.double')
>>> registry.lookup("op", "doc.registry.doubel")
Traceback (most recent call last):
...
axon.registry.UnknownNameError: no op is registered as 'doc.registry.doubel'; close matches: 'doc.registry.double'
>>> @registry.factory("initializer_factory", "doc.registry.constant")
... def constant(value=0.0):
...     return lambda key, shape, dtype=None: value
>>> registry.made_by(constant(value=2.0))
('doc.registry.constant', {'value': 2.0})
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import inspect
import sys
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

__all__ = [
    "KINDS",
    "RESERVED_PREFIX",
    "DuplicateNameError",
    "Kind",
    "UnknownNameError",
    "factory",
    "find",
    "lookup",
    "made_by",
    "mark_made_by",
    "name_of",
    "names",
    "register",
    "register_all",
    "register_initializer",
    "register_layer",
    "unregister",
]

Kind = Literal["op", "initializer", "initializer_factory"]
KINDS: tuple[str, ...] = ("op", "initializer", "initializer_factory")
RESERVED_PREFIX = "axon."
"""Names starting with this prefix belong to axon's own functions."""

MADE_BY_ATTRIBUTE = "__axon_made_by__"
"""Attribute of an object made by a registered factory: ``(factory_name, options)``."""

F = TypeVar("F", bound=Callable[..., Any])


class UnknownNameError(LookupError):
    """No object of the kind is registered under the name (the message lists close
    matches)."""


class DuplicateNameError(ValueError):
    """The name is already registered to a different object."""


_TABLES: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
_NAMES: dict[str, dict[int, tuple[str, Any]]] = {kind: {} for kind in KINDS}
"""Per kind, ``id(obj) -> (name, obj)`` (the object is kept so that its id stays unique)."""


def _check_kind(kind: Any, where: str) -> str:
    if kind not in _TABLES:
        raise ValueError(f"{where}: expected kind to be one of {list(KINDS)}, got {kind!r}")
    return kind


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name or name != name.strip():
        raise TypeError(f"{where}: expected name to be a non-empty string without surrounding spaces, got {name!r}")
    return name


def _definition(obj: Any) -> tuple[Any, ...] | None:
    """Where ``obj`` was defined (file, line, qualified name), for functions only."""
    code = getattr(inspect.unwrap(obj), "__code__", None) if callable(obj) else None
    if code is None:
        return None
    return code.co_filename, code.co_firstlineno, getattr(obj, "__qualname__", None)


def _same_definition(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are one source function loaded twice (a module imported
    under two names, as doctest collection may do)."""
    da = _definition(a)
    return da is not None and da == _definition(b)


def register(kind: Kind, name: str, obj: Any = None, *, overwrite: bool = False) -> Any:
    """Register ``obj`` under ``name`` in the table of ``kind``; returns ``obj``. Without
    ``obj``, returns a decorator that registers the function it decorates.

    Registering the same object again under its name does nothing. An object may have
    several names (:func:`name_of` gives the first).

    Args:
        kind: ``"op"``, ``"initializer"`` or ``"initializer_factory"``.
        name: The permanent name (see the naming scheme above).
        obj: The object to register, or None for the decorator form.
        overwrite: Replace an object already registered under ``name``.

    Returns:
        ``obj``, or a decorator when ``obj`` is None.

    Raises:
        ValueError: ``kind`` is unknown.
        TypeError: ``name`` is not a non-empty string.
        DuplicateNameError: ``name`` is registered to a different object and ``overwrite``
            is False.

    >>> from axon import registry
    >>> @registry.register("op", "doc.registry.negate")
    ... def negate(x):
    ...     return -x
    >>> registry.register("op", "doc.registry.negate", abs)
    Traceback (most recent call last):
    ...
    axon.registry.DuplicateNameError: the op name 'doc.registry.negate' is already registered to ...; pass overwrite=True to replace it
    """
    where = "register"
    _check_kind(kind, where)
    _check_name(name, where)
    if obj is None:
        return functools.partial(register, kind, name, overwrite=overwrite)
    table, names = _TABLES[kind], _NAMES[kind]
    old = table.get(name)
    if old is not None and old is not obj:
        if _same_definition(old, obj) and not overwrite:
            names.setdefault(id(obj), (name, obj))  # a second copy of the same function
            return obj
        if not overwrite:
            raise DuplicateNameError(
                f"the {kind} name {name!r} is already registered to {old!r}; pass overwrite=True to replace it"
            )
        _forget(kind, name, old)
    table[name] = obj
    names.setdefault(id(obj), (name, obj))
    return obj


def register_all(kind: Kind, entries: Mapping[str, Any]) -> None:
    """Register every ``name: obj`` of ``entries`` (as :func:`register`).

    >>> from axon import registry
    >>> registry.register_all("op", {"doc.registry.ident": id})
    >>> registry.name_of("op", id)
    'doc.registry.ident'
    """
    for name, obj in entries.items():
        register(kind, name, obj)


def _forget(kind: str, name: str, obj: Any) -> None:
    names = _NAMES[kind]
    for key in [k for k, (n, o) in names.items() if n == name]:
        del names[key]
    other = next((n for n, o in _TABLES[kind].items() if o is obj and n != name), None)
    if other is not None:
        names[id(obj)] = (other, obj)


def unregister(kind: Kind, name: str) -> None:
    """Remove ``name`` from the table of ``kind`` (tests; a saved name is permanent).

    Raises:
        UnknownNameError: ``name`` is not registered.

    >>> from axon import registry
    >>> registry.register("op", "doc.registry.tmp", len) is len
    True
    >>> registry.unregister("op", "doc.registry.tmp")
    >>> registry.name_of("op", len) is None
    True
    """
    obj = lookup(kind, name)
    del _TABLES[kind][name]
    _forget(kind, name, obj)


def _close_matches(kind: str, name: str) -> str:
    matches = difflib.get_close_matches(name, list(_TABLES[kind]), n=3, cutoff=0.6)
    if not matches:
        return ""
    return "; close matches: " + ", ".join(repr(m) for m in matches)


def lookup(kind: Kind, name: str) -> Any:
    """The object registered under ``name`` in the table of ``kind``.

    Args:
        kind: ``"op"``, ``"initializer"`` or ``"initializer_factory"``.
        name: A registered name.

    Returns:
        The registered object.

    Raises:
        UnknownNameError: nothing is registered under ``name``; the message lists close
            matches.

    >>> import axon
    >>> from axon import registry
    >>> registry.lookup("op", "axon.dense") is axon.layers.dense
    True
    """
    obj = find(kind, name)
    if obj is None:
        kind_label = kind.replace("_", " ")
        raise UnknownNameError(f"no {kind_label} is registered as {name!r}{_close_matches(kind, str(name))}")
    return obj


def find(kind: Kind, name: Any) -> Any | None:
    """The object registered under ``name`` in the table of ``kind``, or None (no error, no
    copy of the table: the check for one name).

    Args:
        kind: ``"op"``, ``"initializer"`` or ``"initializer_factory"``.
        name: The name to look for (anything that is not a string is never registered).

    Returns:
        The registered object, or None.

    >>> import axon
    >>> from axon import registry
    >>> registry.find("op", "axon.dense") is axon.layers.dense, registry.find("op", "axon.nope")
    (True, None)
    """
    table = _TABLES[_check_kind(kind, "find")]
    if not isinstance(name, str):
        return None
    obj = table.get(name)
    if obj is None:
        provider = _provider_of(name)
        if provider is not None and provider not in sys.modules:
            importlib.import_module(provider)
            obj = table.get(name)
    return obj


PROVIDERS: dict[str, str] = {"axon.models.": "axon.models"}
"""Name prefixes of ops registered by axon packages that ``import axon`` does not import,
and the package that registers them: looking up such a name imports the package first, so
that ``axon.load`` of a saved GPT-2 works in a program that never imported
:mod:`axon.models`. Imported by name (importlib), so this module still imports nothing from
axon."""


def _provider_of(name: str) -> str | None:
    for prefix, module in PROVIDERS.items():
        if name.startswith(prefix):
            return module
    return None


def name_of(kind: Kind, obj: Any) -> str | None:
    """The registered name of ``obj`` in the table of ``kind``, or None.

    >>> import axon
    >>> from axon import registry
    >>> registry.name_of("op", axon.activations.relu), registry.name_of("op", print)
    ('axon.relu', None)
    """
    entry = _NAMES[_check_kind(kind, "name_of")].get(id(obj))
    return entry[0] if entry is not None and entry[1] is obj else None


def names(kind: Kind) -> dict[str, Any]:
    """Every registered ``name: object`` of ``kind`` (a copy).

    >>> import axon
    >>> from axon import registry
    >>> registry.names("initializer_factory")["axon.initializers.zeros"] is axon.initializers.zeros
    True
    """
    return dict(_TABLES[_check_kind(kind, "names")])


def mark_made_by(obj: Any, factory_name: str, options: Mapping[str, Any]) -> Any:
    """Record on ``obj`` that the factory registered as ``factory_name`` made it with
    ``options`` (objects that take no attributes are left as they are). Returns ``obj``.

    >>> from axon import registry
    >>> registry.made_by(registry.mark_made_by(lambda: 0, "doc.registry.f", {"a": 1}))
    ('doc.registry.f', {'a': 1})
    """
    with contextlib.suppress(AttributeError, TypeError):
        setattr(obj, MADE_BY_ATTRIBUTE, (factory_name, dict(options)))
    return obj


def made_by(obj: Any) -> tuple[str, dict[str, Any]] | None:
    """``(factory_name, options)`` of the registered factory that made ``obj``, or None.

    >>> from axon import initializers, registry
    >>> registry.made_by(initializers.uniform(scale=0.1))
    ('axon.initializers.uniform', {'scale': 0.1})
    >>> registry.made_by(print) is None
    True
    """
    spec = getattr(obj, MADE_BY_ATTRIBUTE, None)
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str) and isinstance(spec[1], dict):
        return spec[0], dict(spec[1])
    return None


def factory(kind: Kind, name: str) -> Callable[[F], F]:
    """Decorator: register a factory under ``name`` in the table of ``kind``; whatever it
    returns carries ``(name, options)`` (every argument bound by name, defaults included),
    so that it can be remade as ``factory(**options)``.

    Args:
        kind: Usually ``"initializer_factory"``.
        name: The factory's permanent name.

    Returns:
        A decorator returning the registered factory (a wrapper of the decorated one).

    >>> from axon import registry
    >>> @registry.factory("initializer_factory", "doc.registry.filled")
    ... def filled(value, *, scale=1.0):
    ...     return lambda key, shape, dtype=None: value * scale
    >>> registry.made_by(filled(3))
    ('doc.registry.filled', {'value': 3, 'scale': 1.0})
    >>> registry.lookup("initializer_factory", "doc.registry.filled") is filled
    True
    """
    _check_kind(kind, "factory")
    _check_name(name, "factory")

    def decorator(f: F) -> F:
        signature = inspect.signature(f)

        @functools.wraps(f)
        def make(*args: Any, **kwargs: Any) -> Any:
            product = f(*args, **kwargs)  # first, so that bad options raise the factory's errors
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return mark_made_by(product, name, bound.arguments)

        register(kind, name, make)
        return make  # type: ignore[return-value]

    return decorator


# --------------------------------------------------------------------------------------
# the user's registrations


def _user_name(name: Any, where: str) -> str:
    _check_name(name, where)
    if name.startswith(RESERVED_PREFIX):
        raise ValueError(f"{where}: names starting with {RESERVED_PREFIX!r} are reserved for axon's own functions, got {name!r}")
    return name


def _default_name(fn: Callable[..., Any], where: str) -> str:
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise TypeError(
            f"{where}: {fn!r} has no stable module-level name (a lambda or a nested function); "
            "pass a name: register_layer('my_project.my_layer', fn)"
        )
    return f"{module}.{qualname}"


def register_layer(
    name: str | Callable[..., Any] | None = None,
    fn: Callable[..., Any] | None = None,
    *,
    overwrite: bool = False,
) -> Any:
    """Register a layer function (or any function a graph holds, such as ``axon.fn``'s
    function or ``axon.cond``'s ``cond_fn``) as an op named ``name``, so that models using
    it can be saved and loaded. Use it directly, ``register_layer("my.atan2", atan2)``, or
    as a decorator, with a name or bare (the name is then ``"<module>.<qualname>"``).

    Args:
        name: The permanent name (not starting with ``"axon."``), or the function itself
            (bare decorator).
        fn: The function, or None for the decorator forms.
        overwrite: Replace a function already registered under ``name``.

    Returns:
        ``fn``, or a decorator registering the function it decorates.

    Raises:
        TypeError: ``fn`` is not a function, ``name`` is not a non-empty string, or the
            bare form is used on a lambda or nested function.
        ValueError: ``name`` starts with ``"axon."``, or is already registered to another
            function (:class:`DuplicateNameError`) and ``overwrite`` is False.

    >>> import axon, jax.numpy as jnp
    >>> @axon.register_layer("doc.scale_by_two")
    ... def scale_by_two(x):
    ...     return 2 * x
    >>> model = axon.layer(scale_by_two, [axon.input("x")])
    >>> loaded, state = axon.deserialize(axon.serialize(model, {}))
    >>> axon.predict(loaded, state, jnp.array([1.0])).tolist()
    [2.0]
    """
    where = "register_layer"
    if callable(name) and fn is None:  # bare decorator
        fn, name = name, None
    if fn is not None:
        if not callable(fn):
            raise TypeError(f"{where}: expected fn to be a function, got {fn!r}")
        name = _default_name(fn, where) if name is None else name
        return register("op", _user_name(name, where), fn, overwrite=overwrite)
    if name is not None:
        _user_name(name, where)

    def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
        return register_layer(name, f, overwrite=overwrite)

    return decorator


def register_initializer(name: str, fn: Callable[..., Any], *, overwrite: bool = False) -> Callable[..., Any]:
    """Register an init function ``init(key, shape, dtype)`` under ``name``, so that
    parameters using it keep their initializer when saved (axon's initializers, by name or
    made by a factory of ``axon.initializers``, are always kept).

    Args:
        name: The permanent name (not starting with ``"axon."``).
        fn: The init function.
        overwrite: Replace a function already registered under ``name``.

    Returns:
        ``fn``.

    Raises:
        TypeError: ``fn`` is not a function or ``name`` not a non-empty string.
        ValueError: ``name`` starts with ``"axon."`` or is registered to another function.

    >>> import jax.numpy as jnp
    >>> from axon import registry
    >>> def halves(key, shape, dtype=jnp.float32):
    ...     return jnp.full(shape, 0.5, dtype)
    >>> registry.register_initializer("doc.halves", halves) is halves
    True
    """
    where = "register_initializer"
    if not callable(fn):
        raise TypeError(f"{where}: expected fn to be a function, got {fn!r}")
    return register("initializer", _user_name(name, where), fn, overwrite=overwrite)
