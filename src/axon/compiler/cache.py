"""A bounded cache of built functions, weakly keyed on the graph.

Axon graphs are immutable, so a graph built once with the same options builds to the same
``(init_fn, predict_fn)``: :func:`axon.predict` and :func:`axon.init` reuse them instead of
building (and tracing) again on every call. The cache holds at most ``maxsize`` entries
(least recently used first out) and never keeps a graph alive: an entry disappears with
its graph.

>>> import axon, jax.numpy as jnp
>>> model = axon.input("x", shape=(None, 2)).pipe(axon.relu)
>>> cached_build(model) is cached_build(model)
True
>>> cached_build(model) is cached_build(model, mode="train")
False
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Any

from axon.compiler.functions import InitFunction, PredictFunction, build
from axon.graph import Axon

__all__ = ["BuildCache", "build_cache", "cached_build"]

_Built = tuple[InitFunction, PredictFunction]


_BUILD_SIGNATURE = inspect.signature(build)


def _options_key(opts: Mapping[str, Any]) -> Hashable | None:
    """A hashable key for :func:`build`'s options with their defaults filled in (so
    ``mode="inference"`` and no ``mode`` are one entry), or ``None`` when the options are
    not accepted or a value is not hashable (then the build is not cached)."""
    try:
        bound = _BUILD_SIGNATURE.bind(None, **opts)
    except TypeError:
        return None
    bound.apply_defaults()
    items = []
    for name, value in bound.arguments.items():
        if name == "model":
            continue
        if name == "global_layer_options":
            value = dict(value or {})
        if isinstance(value, Mapping):
            value = ("__mapping__", tuple(sorted(value.items(), key=lambda kv: str(kv[0]))))
        items.append((name, value))
    key = tuple(items)
    try:
        hash(key)
    except TypeError:
        return None
    return key


class BuildCache:
    """An LRU map ``(graph, build options) -> (init_fn, predict_fn)`` that holds its graphs
    weakly.

    Args:
        maxsize: the most entries kept (each graph and option set is one entry).

    >>> cache = BuildCache(maxsize=2)
    >>> import axon
    >>> model = axon.input("x").pipe(axon.relu)
    >>> cache.get(model, {}) is cache.get(model, {}), len(cache)
    (True, 1)
    """

    def __init__(self, maxsize: int = 64):
        if not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"BuildCache: expected maxsize to be a positive int, got {maxsize!r}")
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple[int, Hashable], tuple[weakref.ref, _Built]] = OrderedDict()
        self._pending: list[int] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._purge()
            return len(self._entries)

    def clear(self) -> None:
        """Drop every entry.

        >>> cache = BuildCache()
        >>> cache.clear(); len(cache)
        0
        """
        with self._lock:
            self._entries.clear()
            self._pending.clear()

    def get(self, model: Axon, opts: Mapping[str, Any]) -> _Built:
        """``build(model, **opts)``, built once per graph and option set while both are cached.

        Args:
            model: the graph.
            opts: :func:`axon.build`'s keyword options.

        Returns:
            ``(init_fn, predict_fn)``.

        Raises:
            TypeError, ValueError: as :func:`axon.build`.

        >>> import axon
        >>> model = axon.input("x").pipe(axon.relu)
        >>> BuildCache().get(model, {"mode": "train"})[1].mode
        'train'
        """
        options = _options_key(opts)
        if options is None or not isinstance(model, Axon):
            return build(model, **opts)
        key = (id(model), options)
        with self._lock:
            self._purge()
            entry = self._entries.get(key)
            if entry is not None and entry[0]() is model:
                self._entries.move_to_end(key)
                return entry[1]
        built = build(model, **opts)
        with self._lock:
            self._entries[key] = (weakref.ref(model, self._forget_callback(id(model))), built)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return built

    def _forget_callback(self, model_id: int):
        # runs when a graph dies, possibly inside the garbage collector: only note the id
        # (list.append is atomic); the entries are dropped on the next use of the cache
        pending = self._pending

        def forget(_ref: weakref.ref) -> None:
            pending.append(model_id)

        return forget

    def _purge(self) -> None:
        while self._pending:
            model_id = self._pending.pop()
            for key in [k for k, (r, _) in self._entries.items() if k[0] == model_id and r() is None]:
                del self._entries[key]


build_cache = BuildCache()
"""The process-wide cache used by :func:`axon.predict` and :func:`axon.init`."""


def cached_build(model: Axon, **opts: Any) -> _Built:
    """:func:`axon.build` through the process-wide :data:`build_cache`: the same graph and
    options give the same ``(init_fn, predict_fn)`` (so their jit caches and
    ``trace_count`` are shared with :func:`axon.predict` and :func:`axon.init`).

    Args:
        model: the graph.
        **opts: :func:`axon.build`'s options.

    Returns:
        ``(init_fn, predict_fn)``.

    Raises:
        TypeError, ValueError: as :func:`axon.build`.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 2)).pipe(axon.relu)
    >>> for _ in range(3):
    ...     _ = axon.predict(model, {}, jnp.ones((1, 2)))
    >>> cached_build(model)[1].trace_count
    1
    """
    return build_cache.get(model, opts)
