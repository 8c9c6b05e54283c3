"""``ModelState``: a model's parameters and layer state as one pytree.

``data`` is a nested dict ``{layer: {name: array}}`` (blocks and namespaces nest deeper).
Alongside it the state records, as sets of leaf paths, which entries are trainable
parameters, which are layer state (batch-norm statistics, dropout keys) and which are
frozen. It is a registered pytree over ``data`` only, so ``jax.tree_util``, optax and
``jax.jit`` work on it unchanged.

>>> import jax.numpy as jnp
>>> s = ModelState({"dense_0": {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)}})
>>> s.parameter_count
9
>>> s.freeze(lambda path: path[-1] == "bias").trainable_parameters()["dense_0"].keys()
dict_keys(['kernel'])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, KeysView, Mapping
from typing import Any

import jax
import numpy as np

__all__ = ["ModelState"]

Path = tuple[str, ...]


def _is_leaf_value(v: Any) -> bool:
    return not isinstance(v, Mapping)


def leaf_paths(data: Mapping[str, Any], prefix: Path = ()) -> list[Path]:
    """All leaf paths of a nested dict, in insertion order."""
    out: list[Path] = []
    for k, v in data.items():
        if isinstance(v, Mapping):
            out.extend(leaf_paths(v, (*prefix, k)))
        else:
            out.append((*prefix, k))
    return out


def get_path(data: Mapping[str, Any], path: Path) -> Any:
    for k in path:
        data = data[k]
    return data


def set_path(data: dict, path: Path, value: Any) -> None:
    for k in path[:-1]:
        data = data.setdefault(k, {})
    data[path[-1]] = value


def select(data: Mapping[str, Any], keep: Callable[[Path], bool], prefix: Path = ()) -> dict:
    """The sub-tree of ``data`` whose leaf paths satisfy ``keep`` (empty dicts pruned)."""
    out: dict = {}
    for k, v in data.items():
        path = (*prefix, k)
        if isinstance(v, Mapping):
            sub = select(v, keep, path)
            if sub:
                out[k] = sub
        elif keep(path):
            out[k] = v
    return out


def deep_merge(lhs: Mapping[str, Any], rhs: Mapping[str, Any], fn: Callable | None = None) -> dict:
    """Recursive merge; on a leaf conflict ``fn(key, l, r)`` decides (default: ``r``)."""
    out = dict(lhs)
    for k, r in rhs.items():
        l = out.get(k)
        if isinstance(l, Mapping) and isinstance(r, Mapping):
            out[k] = deep_merge(l, r, fn)
        elif k in out and fn is not None:
            out[k] = fn(k, l, r)
        else:
            out[k] = r
    return out


def _format_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _size_and_bytes(data: Mapping[str, Any]) -> tuple[int, int]:
    size = nbytes = 0
    for leaf in jax.tree_util.tree_leaves(data):
        size += int(np.prod(getattr(leaf, "shape", ())))
        nbytes += int(getattr(leaf, "nbytes", 0))
    return size, nbytes


@jax.tree_util.register_pytree_node_class
class ModelState:
    """Parameters and layer state of a model, with trainable/state/frozen bookkeeping.

    Build one with ``init_fn`` (which fills in all metadata) or from a plain nested dict
    (every leaf is then a trainable parameter). Instances are immutable: ``update``,
    ``freeze`` and ``unfreeze`` return new states.

    >>> import jax.numpy as jnp
    >>> s = ModelState({"bn": {"gamma": jnp.ones(2), "mean": jnp.zeros(2)}}, state_paths=[("bn", "mean")])
    >>> sorted(s.trainable_parameters()["bn"]), sorted(s.trainable_state()["bn"])
    (['gamma'], ['mean'])
    """

    __slots__ = ("data", "frozen_paths", "parameter_paths", "state_paths")

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        parameter_paths: Iterable[Path] | None = None,
        state_paths: Iterable[Path] = (),
        frozen_paths: Iterable[Path] = (),
    ):
        data = {} if data is None else data
        if isinstance(data, ModelState):
            raise TypeError("ModelState(data) expects a nested dict; use the ModelState itself")
        self.data = dict(data)
        states = frozenset(tuple(p) for p in state_paths)
        if parameter_paths is None:
            parameter_paths = [p for p in leaf_paths(self.data) if p not in states]
        self.parameter_paths = frozenset(tuple(p) for p in parameter_paths)
        self.state_paths = states
        self.frozen_paths = frozenset(tuple(p) for p in frozen_paths)

    # -- pytree ---------------------------------------------------------------------------
    def tree_flatten(self):
        return (self.data,), (self.parameter_paths, self.state_paths, self.frozen_paths)

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.data = children[0]
        obj.parameter_paths, obj.state_paths, obj.frozen_paths = aux
        return obj

    # -- constructors ---------------------------------------------------------------------
    @classmethod
    def new(cls, data: Mapping[str, Any] | ModelState) -> ModelState:
        """Wrap a plain parameter dict (a ``ModelState`` passes through unchanged).

        Args:
            data: a nested dict (every leaf a trainable parameter) or a ``ModelState``.

        Returns:
            A ``ModelState``.

        >>> ModelState.new({}).parameter_count
        0
        """
        return data if isinstance(data, ModelState) else cls(data)

    @classmethod
    def empty(cls) -> ModelState:
        """A state with no entries.

        Returns:
            A ``ModelState`` with empty ``data``.

        >>> ModelState.empty().data
        {}
        """
        return cls({})

    def _with(self, data=None, parameter_paths=None, state_paths=None, frozen_paths=None) -> ModelState:
        obj = object.__new__(ModelState)
        obj.data = self.data if data is None else data
        obj.parameter_paths = self.parameter_paths if parameter_paths is None else frozenset(parameter_paths)
        obj.state_paths = self.state_paths if state_paths is None else frozenset(state_paths)
        obj.frozen_paths = self.frozen_paths if frozen_paths is None else frozenset(frozen_paths)
        return obj

    # -- views ----------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def keys(self) -> KeysView[str]:
        """Top-level (layer) names.

        Returns:
            A view of the keys of ``data``.

        >>> import jax.numpy as jnp
        >>> list(ModelState({"dense_0": {"kernel": jnp.ones((1, 1))}}).keys())
        ['dense_0']
        """
        return self.data.keys()

    def paths(self) -> list[Path]:
        """Every leaf path of ``data``.

        Returns:
            A list of key tuples, in insertion order.

        >>> import jax.numpy as jnp
        >>> ModelState({"d": {"kernel": jnp.ones(1), "bias": jnp.zeros(1)}}).paths()
        [('d', 'kernel'), ('d', 'bias')]
        """
        return leaf_paths(self.data)

    def trainable_parameters(self) -> dict:
        """Parameters that are not frozen: what the optimizer updates.

        Returns:
            A nested dict of those entries (layers without any left out).

        >>> import jax.numpy as jnp
        >>> ModelState({"d": {"w": jnp.ones(1)}}).trainable_parameters()
        {'d': {'w': Array([1.], dtype=float32)}}
        """
        keep = self.parameter_paths - self.frozen_paths
        return select(self.data, keep.__contains__)

    def frozen_parameters(self) -> dict:
        """Parameters that are frozen.

        Returns:
            A nested dict of those entries (layers without any left out).

        >>> import jax.numpy as jnp
        >>> s = ModelState({"a": {"w": jnp.ones(1)}, "b": {"w": jnp.ones(1)}})
        >>> list(s.freeze(lambda p: p[0] == "b").frozen_parameters())
        ['b']
        """
        keep = self.frozen_paths & self.parameter_paths
        return select(self.data, keep.__contains__)

    def trainable_state(self) -> dict:
        """Layer state that layers may update (not frozen).

        Returns:
            A nested dict of those entries (layers without any left out).

        >>> import jax.numpy as jnp
        >>> s = ModelState({"bn": {"gamma": jnp.ones(1), "mean": jnp.zeros(1)}}, state_paths=[("bn", "mean")])
        >>> s.trainable_state()
        {'bn': {'mean': Array([0.], dtype=float32)}}
        """
        keep = self.state_paths - self.frozen_paths
        return select(self.data, keep.__contains__)

    def frozen_state(self) -> dict:
        """Layer state that is frozen (kept as is in training).

        Returns:
            A nested dict of those entries (layers without any left out).

        >>> import jax.numpy as jnp
        >>> s = ModelState({"bn": {"gamma": jnp.ones(1), "mean": jnp.zeros(1)}}, state_paths=[("bn", "mean")])
        >>> s.freeze().frozen_state()
        {'bn': {'mean': Array([0.], dtype=float32)}}
        """
        keep = self.frozen_paths & self.state_paths
        return select(self.data, keep.__contains__)

    # -- transforms -----------------------------------------------------------------------
    def update(self, parameters: Mapping[str, Any] | None = None, state: Mapping[str, Any] | None = None) -> ModelState:
        """New state with ``parameters`` and (non-frozen) ``state`` values merged in.

        Args:
            parameters: a nested dict of values to merge in, or ``None`` (default).
            state: a nested dict of layer-state values; frozen entries are skipped. ``None``
                (default): none.

        Returns:
            A new ``ModelState`` with the same bookkeeping.

        >>> import jax.numpy as jnp
        >>> s = ModelState({"d": {"w": jnp.zeros(1)}})
        >>> s.update({"d": {"w": jnp.ones(1)}})["d"]["w"].tolist()
        [1.0]
        """
        data = self.data
        if parameters:
            data = deep_merge(data, parameters)
        if state:
            data = deep_merge(data, select(state, lambda p: p not in self.frozen_paths))
        return self._with(data=data)

    def merge(self, other: ModelState | Mapping[str, Any], fn: Callable[[str, Any, Any], Any] | None = None) -> ModelState:
        """Deep-merge another state's data into this one (``fn(key, l, r)`` resolves conflicts).

        Args:
            other: a ``ModelState`` (its parameter, state and frozen paths are added too) or a
                nested dict.
            fn: ``fn(key, mine, theirs) -> value`` for a leaf in both; ``None`` (default):
                theirs.

        Returns:
            A new ``ModelState``.

        >>> import jax.numpy as jnp
        >>> s = ModelState({"a": {"w": jnp.ones(1)}})
        >>> merged = s.merge({"a": {"w": jnp.full(1, 2.0)}}, lambda k, l, r: l + r)
        >>> merged["a"]["w"].tolist()
        [3.0]
        """
        other_data = other.data if isinstance(other, ModelState) else other
        merged = self._with(data=deep_merge(self.data, other_data, fn))
        if isinstance(other, ModelState):
            merged = merged._with(
                parameter_paths=self.parameter_paths | other.parameter_paths,
                state_paths=self.state_paths | other.state_paths,
                frozen_paths=self.frozen_paths | other.frozen_paths,
            )
        return merged

    def freeze(self, mask: Callable[[Path], bool] | None = None) -> ModelState:
        """Freeze the entries whose path satisfies ``mask`` (all when ``None``).

        Frozen parameters get no gradient updates and frozen state is not updated in
        training. Unlike Axon, freezing adds to the frozen set instead of replacing it.

        Args:
            mask: ``mask(path) -> bool`` over leaf paths (tuples of keys); ``None`` (default):
                every entry.

        Returns:
            A new ``ModelState``.

        >>> import jax.numpy as jnp
        >>> s = ModelState({"a": {"w": jnp.ones(1)}, "b": {"w": jnp.ones(1)}})
        >>> sorted(s.freeze(lambda p: p[0] == "a").frozen_parameters())
        ['a']
        """
        chosen = [p for p in self.paths() if mask is None or mask(p)]
        return self._with(frozen_paths=self.frozen_paths | set(chosen))

    def unfreeze(self, mask: Callable[[Path], bool] | None = None) -> ModelState:
        """Unfreeze the entries whose path satisfies ``mask`` (all when ``None``).

        Args:
            mask: ``mask(path) -> bool`` over leaf paths (tuples of keys); ``None`` (default):
                every entry.

        Returns:
            A new ``ModelState``.

        >>> import jax.numpy as jnp
        >>> ModelState({"a": {"w": jnp.ones(1)}}).freeze().unfreeze().frozen_paths
        frozenset()
        """
        keep = {p for p in self.frozen_paths if not (mask is None or mask(p))}
        return self._with(frozen_paths=keep)

    # -- sizes ----------------------------------------------------------------------------
    @property
    def parameter_count(self) -> int:
        """Number of scalar values in trainable and frozen parameters."""
        return _size_and_bytes(select(self.data, self.parameter_paths.__contains__))[0]

    @property
    def nbytes(self) -> int:
        """Bytes taken by every array in the state."""
        return _size_and_bytes(self.data)[1]

    def __repr__(self) -> str:
        params = _size_and_bytes(select(self.data, self.parameter_paths.__contains__))
        trainable = _size_and_bytes(self.trainable_parameters())
        state = _size_and_bytes(select(self.data, self.state_paths.__contains__))
        frozen = _size_and_bytes(select(self.data, self.frozen_paths.__contains__))
        return (
            "ModelState<\n"
            f"  layers: {len(self.data)}\n"
            f"  parameters: {params[0]:,} ({_format_bytes(params[1])})\n"
            f"  trainable parameters: {trainable[0]:,} ({_format_bytes(trainable[1])})\n"
            f"  state: {state[0]:,} ({_format_bytes(state[1])})\n"
            f"  frozen: {frozen[0]:,} ({_format_bytes(frozen[1])})\n"
            ">"
        )

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__
