"""The serializer's view of :mod:`axon.registry`: the names a saved graph uses for its ops
and initializers, and the names files saved by older releases used (translated by
:mod:`~axon.serialization.legacy_names` when loading).

* Ops: every function a graph holds is saved by its registered ``"op"`` name.
* Initializers: an init function made by a registered factory is saved as
  ``(factory_name, options)`` and remade on load as ``factory(**options)``; a registered
  init function by its name alone (see :func:`initializer_spec`).

>>> from axon import initializers
>>> initializer_spec(initializers.uniform(scale=0.1))
('axon.initializers.uniform', {'scale': 0.1})
>>> registered_initializer("uniform")[0]  # the name files saved by older releases used
'factory'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from axon import registry
from axon.registry import register_initializer, register_layer
from axon.serialization.legacy_names import legacy_initializer_name, legacy_op_name

__all__ = [
    "initializer_spec",
    "layer_fn",
    "layer_name_of",
    "register_initializer",
    "register_layer",
    "registered_initializer",
    "registered_layers",
    "tag_initializer",
]


def layer_name_of(fn: Any) -> str | None:
    """The registered op name of ``fn``, or None.

    >>> import axon
    >>> layer_name_of(axon.layers.dense), layer_name_of(print)
    ('axon.dense', None)
    """
    return registry.name_of("op", fn)


def layer_fn(name: str) -> Callable[..., Any] | None:
    """The op registered under ``name`` (or under the name that replaced ``name``, a name
    of an older release), or None.

    >>> import axon
    >>> layer_fn("axon.api.conv.separable_conv2d_op") is layer_fn("axon.separable_conv2d_op")
    True
    """
    if not isinstance(name, str):
        return None
    fn = registry.find("op", name)
    if fn is None:
        new = legacy_op_name(name)
        fn = None if new is None else registry.find("op", new)
    return fn


def registered_layers() -> dict[str, Callable[..., Any]]:
    """Every registered op by name: axon's own and the user's.

    >>> import axon
    >>> ops = axon.serialization.registered_layers()
    >>> ops["axon.dense"] is axon.layers.dense, ops["axon.relu"] is axon.activations.relu
    (True, True)
    """
    return registry.names("op")


def initializer_spec(init: Any) -> tuple[str, dict[str, Any] | None] | None:
    """How to save the init function ``init``: ``(factory_name, options)`` for one made by a
    registered factory, ``(name, None)`` for a registered function, None otherwise.

    >>> import axon
    >>> initializer_spec(axon.initializers.get("zeros")), initializer_spec(print)
    (('axon.initializers.zeros', {}), None)
    """
    if init is None:
        return None
    made = registry.made_by(init)
    if made is not None and registry.find("initializer_factory", made[0]) is not None:
        return made
    name = registry.name_of("initializer", init)
    return None if name is None else (name, None)


def registered_initializer(name: str) -> tuple[str, Callable[..., Any]] | None:
    """``("function", init)`` or ``("factory", factory)`` registered under ``name`` (or
    under the name that replaced ``name``, a name of an older release), or None."""
    for candidate in (name, legacy_initializer_name(name)):
        if candidate is None:
            continue
        function = registry.find("initializer", candidate)
        if function is not None:
            return "function", function
        factory = registry.find("initializer_factory", candidate)
        if factory is not None:
            return "factory", factory
    return None


def tag_initializer(init: Callable[..., Any], name: str, options: Mapping[str, Any]) -> Callable[..., Any]:
    """Record that ``init`` was made by the factory registered as ``name`` (or the name that
    replaced it) with ``options``, so that it is saved under today's name. Returns ``init``.

    >>> tag_initializer(lambda key, shape, dtype=None: None, "zeros", {}).__axon_made_by__
    ('axon.initializers.zeros', {})
    """
    if registry.find("initializer_factory", name) is None:
        name = legacy_initializer_name(name) or name
    return registry.mark_made_by(init, name, options)
