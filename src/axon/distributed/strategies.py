"""Distribution strategies: where a model's state and its batches live on a mesh.

Three plain frozen dataclasses, each accepting a user :class:`jax.sharding.Mesh` (default:
every device on one ``"data"`` axis):

- :class:`DataParallel`: the batch is split over ``axis``; the state is replicated.
- :class:`FSDP`: the batch is split as in data parallelism, and every parameter (and
  optimizer-state leaf) of at least ``min_size`` elements is sharded over ``axis`` on its
  largest dimension that the axis divides; smaller leaves are replicated.
- :class:`ModelParallel`: ``rules`` map ``"layer.param"`` paths (regular expressions, first
  match wins) to partition specs; unmatched leaves are replicated; the batch is split over
  ``batch_axis``.

A strategy turns a state's paths into shardings (:meth:`state_shardings`) and places batches
(:meth:`shard_batch`); ``axon.build``/``axon.loop`` take one through ``distribution=``.

>>> import jax, numpy as np
>>> dp = DataParallel()
>>> x = dp.shard_batch(np.zeros((2 * jax.device_count(), 3), np.float32))
>>> x.shape[0] == 2 * jax.device_count(), x.sharding.spec
(True, P('data',))
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from axon.distributed.mesh import mesh as make_mesh
from axon.distributed.runtime import DistributedError

__all__ = ["FSDP", "DataParallel", "Distribution", "ModelParallel", "leaf_path"]

Path = tuple[str, ...]


def leaf_path(keypath: Sequence[Any]) -> Path:
    """A ``jax.tree_util`` key path as a tuple of strings (dict keys, attribute names, indices).

    >>> import jax
    >>> [leaf_path(p) for p, _ in jax.tree_util.tree_flatten_with_path({"dense_0": {"kernel": 1}})[0]]
    [('dense_0', 'kernel')]
    """
    out = []
    for k in keypath:
        if isinstance(k, jax.tree_util.DictKey):
            out.append(str(k.key))
        elif isinstance(k, jax.tree_util.GetAttrKey):
            out.append(k.name)
        elif isinstance(k, jax.tree_util.SequenceKey):
            out.append(str(k.idx))
        elif isinstance(k, jax.tree_util.FlattenedIndexKey):
            out.append(str(k.key))
        else:  # pragma: no cover - future key types
            out.append(str(k))
    return tuple(out)


def _state_leaves(tree: Any) -> list[tuple[Path, Any]]:
    """(path, leaf) for a pytree; a ModelState contributes its ``data`` paths, not index keys."""
    from axon.model_state import ModelState

    def is_leaf(x):
        return isinstance(x, ModelState)

    out = []
    for keypath, leaf in jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)[0]:
        prefix = leaf_path(keypath)
        if isinstance(leaf, ModelState):
            for kp, v in jax.tree_util.tree_flatten_with_path(leaf.data)[0]:
                out.append(((*prefix, *leaf_path(kp)), v))
        else:
            out.append((prefix, leaf))
    return out


def _shape(leaf: Any) -> tuple[int, ...]:
    return tuple(getattr(leaf, "shape", np.shape(leaf)))


class Distribution:
    """What every strategy provides; subclasses decide each leaf's partition spec."""

    mesh: Mesh | None

    # -- the mesh and the batch -------------------------------------------------------------
    def get_mesh(self) -> Mesh:
        """The mesh this strategy runs on (its own, or every device on the batch axis)."""
        if self.mesh is not None:
            return self.mesh
        return make_mesh({self.batch_axis: -1})

    @property
    def batch_axis(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _check_axis(self, axis: str, where: str) -> None:
        names = self.get_mesh().axis_names
        if axis not in names:
            raise DistributedError(f"{type(self).__name__}: {where} {axis!r} is not an axis of the mesh {tuple(names)}")

    def batch_sharding(self, ndim: int = 1, leading: int = 0) -> NamedSharding:
        """The sharding of a batch array: dimension ``leading`` split over the batch axis.

        Args:
            ndim: the array's rank.
            leading: stacked dimensions before the batch dimension (a chunk of ``k``
                batches for ``steps_per_execution`` has one).

        Returns:
            A ``NamedSharding`` on this strategy's mesh.
        """
        self._check_axis(self.batch_axis, "batch axis")
        if ndim <= leading:
            return NamedSharding(self.get_mesh(), PartitionSpec())
        return NamedSharding(self.get_mesh(), PartitionSpec(*([None] * leading), self.batch_axis))

    def replicated(self) -> NamedSharding:
        """A sharding that keeps a full copy on every device."""
        return NamedSharding(self.get_mesh(), PartitionSpec())

    def shard_batch(self, batch: Any, leading: int = 0) -> Any:
        """Place a global batch (a pytree of host arrays) split over the batch axis.

        Every process passes the same global batch; each keeps the rows of its own devices
        (``jax.make_array_from_process_local_data``), so a numpy-array data set gives every
        process its share with no code of the user's. A batch must divide evenly: axon does
        not pad and mask silently.

        Args:
            batch: a pytree of arrays whose dimension ``leading`` is the global batch size.
            leading: stacked dimensions before the batch dimension.

        Returns:
            The same pytree of global ``jax.Array`` s, split over the batch axis.

        Raises:
            DistributedError: the batch size does not divide by the batch axis's size.
        """
        mesh = self.get_mesh()
        self._check_axis(self.batch_axis, "batch axis")
        size = mesh.shape[self.batch_axis]

        def place(x):
            if not isinstance(x, jax.Array):
                x = np.asarray(x)
            if x.ndim <= leading:
                return jax.device_put(x, self.replicated())
            rows = x.shape[leading]
            if rows % size:
                raise DistributedError(
                    f"{type(self).__name__}: a batch of {rows} rows does not divide over the mesh axis "
                    f"{self.batch_axis!r} of size {size}; use a batch size that is a multiple of {size}"
                )
            sharding = self.batch_sharding(x.ndim, leading)
            if jax.process_count() == 1 or isinstance(x, jax.Array):
                return jax.device_put(x, sharding)
            return _process_local(x, sharding, leading)

        return jax.tree_util.tree_map(place, batch)

    # -- the state -------------------------------------------------------------------------
    def spec_for(self, path: Path, shape: tuple[int, ...]) -> PartitionSpec:  # pragma: no cover - overridden
        raise NotImplementedError

    def place_state(self, tree: Any) -> Any:
        """``tree`` (a ModelState, an optimizer state, ...) placed with :meth:`state_shardings`:
        host arrays, single-device arrays or arrays laid out for another mesh all end up
        with this strategy's layout and unchanged values.

        Args:
            tree: a pytree of arrays (a ``ModelState`` keeps its trainable/state/frozen sets).

        Returns:
            The same pytree with ``jax.Array`` leaves sharded by this strategy.
        """
        return jax.device_put(tree, self.state_shardings(tree))

    def constrain(self, tree: Any) -> Any:
        """Inside a traced function: ``tree`` with each leaf constrained to its sharding
        (``jax.lax.with_sharding_constraint``), so a compiled step keeps the state's layout
        from one call to the next."""
        return jax.lax.with_sharding_constraint(tree, self.state_shardings(tree))

    def state_shardings(self, tree: Any) -> Any:
        """A pytree of ``NamedSharding`` matching ``tree`` (a ModelState, an optimizer state, a
        step state, or a dict of them), one per leaf, from each leaf's path and shape.

        Optimizer-state leaves that mirror a parameter (optax's ``mu``, ``nu``, ...) are
        found by their path's suffix and shape and follow that parameter's sharding.
        """
        mesh = self.get_mesh()
        leaves = _state_leaves(tree)
        specs = [NamedSharding(mesh, self.spec_for(path, _shape(leaf))) for path, leaf in leaves]
        return _unflatten_like(tree, specs)


def _unflatten_like(tree: Any, values: list[Any]) -> Any:
    from axon.model_state import ModelState

    it = iter(values)

    def rebuild(x):
        if isinstance(x, ModelState):
            data = jax.tree_util.tree_map(lambda _: next(it), x.data)
            return x._with(data=data)
        return next(it)

    return jax.tree_util.tree_map(rebuild, tree, is_leaf=lambda x: isinstance(x, ModelState))


def _process_local(x: np.ndarray, sharding: NamedSharding, leading: int = 0) -> jax.Array:
    """The process's rows of the global batch ``x`` (along dimension ``leading``), assembled
    into one global array. Rows go to processes in order, as the mesh's devices do."""
    n, pid = jax.process_count(), jax.process_index()
    per = x.shape[leading] // n
    index = [slice(None)] * x.ndim
    index[leading] = slice(pid * per, (pid + 1) * per)
    return jax.make_array_from_process_local_data(sharding, x[tuple(index)], x.shape)


def _check_mesh(mesh: Any, name: str) -> None:
    if mesh is not None and not isinstance(mesh, Mesh):
        raise DistributedError(f"{name}: expected mesh to be a jax.sharding.Mesh or None, got {type(mesh).__name__}")


@dataclasses.dataclass(frozen=True)
class DataParallel(Distribution):
    """Split each batch over ``axis``; keep a full copy of the state on every device.

    Args:
        mesh: a ``jax.sharding.Mesh`` (default: every device on one ``axis`` axis).
        axis: the mesh axis the batch is split over.

    >>> DataParallel().spec_for(("dense_0", "kernel"), (784, 128))
    P()
    """

    mesh: Mesh | None = None
    axis: str = "data"

    def __post_init__(self):
        _check_mesh(self.mesh, "DataParallel")

    @property
    def batch_axis(self) -> str:
        return self.axis

    def spec_for(self, path: Path, shape: tuple[int, ...]) -> PartitionSpec:
        return PartitionSpec()


@dataclasses.dataclass(frozen=True)
class FSDP(Distribution):
    """Fully sharded data parallelism: the batch split as in :class:`DataParallel`, and every
    state leaf of at least ``min_size`` elements sharded over ``axis`` on its largest
    dimension that the axis size divides (smaller or indivisible leaves are replicated).

    Args:
        mesh: a ``jax.sharding.Mesh`` (default: every device on one ``axis`` axis).
        axis: the mesh axis the batch and the parameters are split over.
        min_size: leaves with fewer elements stay replicated (default 4096).

    >>> FSDP().spec_for(("dense_0", "bias"), (128,))  # smaller than min_size: replicated
    P()
    """

    mesh: Mesh | None = None
    axis: str = "data"
    min_size: int = 2**12

    def __post_init__(self):
        _check_mesh(self.mesh, "FSDP")
        if not isinstance(self.min_size, int) or self.min_size < 0:
            raise DistributedError(f"FSDP: expected min_size to be a non-negative int, got {self.min_size!r}")

    @property
    def batch_axis(self) -> str:
        return self.axis

    def spec_for(self, path: Path, shape: tuple[int, ...]) -> PartitionSpec:
        self._check_axis(self.axis, "axis")
        size = self.get_mesh().shape[self.axis]
        if not shape or int(np.prod(shape)) < self.min_size or size == 1:
            return PartitionSpec()
        candidates = [i for i, d in enumerate(shape) if d % size == 0 and d >= size]
        if not candidates:
            return PartitionSpec()
        dim = max(candidates, key=lambda i: (shape[i], -i))
        return PartitionSpec(*[self.axis if i == dim else None for i in range(len(shape))])


Rule = tuple[str, Any]


@dataclasses.dataclass(frozen=True)
class ModelParallel(Distribution):
    """Shard parameters by rules on their ``"layer.param"`` path; split batches over
    ``batch_axis``.

    ``rules`` is a sequence of ``(regex, spec)``: the first regex that ``re.search``-es a
    leaf's dotted path decides its spec (a ``PartitionSpec`` or a tuple of axis names and
    ``None``). Optimizer-state leaves follow the parameter whose path ends theirs.
    Unmatched leaves are replicated.

    Args:
        mesh: the ``jax.sharding.Mesh`` (required: rules name its axes).
        rules: ``[(regex, PartitionSpec | tuple), ...]``.
        batch_axis: the mesh axis batches are split over.

    Raises:
        DistributedError: a rule names an axis the mesh lacks, or a rule's regex is invalid.

    >>> from axon.distributed import mesh
    >>> mp = ModelParallel(mesh({"data": 1, "model": -1}), [(r"dense_\\d+\\.kernel", (None, "model"))])
    >>> mp.spec_for(("dense_0", "kernel"), (4, 8 * mp.get_mesh().shape["model"]))
    P(None, 'model')
    """

    mesh: Mesh | None = None
    rules: Sequence[Rule] = ()
    batch_axis: str = "data"  # type: ignore[assignment]

    def __post_init__(self):
        _check_mesh(self.mesh, "ModelParallel")
        if self.mesh is None:
            raise DistributedError("ModelParallel: a mesh is required, e.g. axon.distributed.mesh({'data': 2, 'model': 4})")
        compiled = []
        for i, rule in enumerate(self.rules):
            if not (isinstance(rule, (tuple, list)) and len(rule) == 2):
                raise DistributedError(f"ModelParallel: rule {i} must be a (regex, spec) pair, got {rule!r}")
            pattern, spec = rule
            try:
                regex = re.compile(pattern)
            except (re.error, TypeError) as e:
                raise DistributedError(f"ModelParallel: rule {i} has an invalid regex {pattern!r}: {e}") from None
            spec = spec if isinstance(spec, PartitionSpec) else PartitionSpec(*spec)
            for entry in spec:
                for axis in entry if isinstance(entry, tuple) else (entry,):
                    if axis is not None and axis not in self.mesh.axis_names:
                        raise DistributedError(
                            f"ModelParallel: rule {pattern!r} names axis {axis!r}, "
                            f"but the mesh's axes are {tuple(self.mesh.axis_names)}"
                        )
            compiled.append((regex, spec))
        object.__setattr__(self, "_compiled", tuple(compiled))

    def _match(self, path: Path) -> tuple[int, PartitionSpec] | None:
        dotted = ".".join(path)
        for i, (regex, spec) in enumerate(self._compiled):
            if regex.search(dotted):
                return i, spec
        return None

    def spec_for(self, path: Path, shape: tuple[int, ...]) -> PartitionSpec:
        found = self._match(path)
        return PartitionSpec() if found is None else self._checked(path, shape, found[1])

    def _checked(self, path: Path, shape: tuple[int, ...], spec: PartitionSpec) -> PartitionSpec:
        """``spec`` for the leaf at ``path``, after checking it fits ``shape`` on the mesh."""
        if len(spec) > len(shape):
            raise DistributedError(
                f"ModelParallel: parameter {'.'.join(path)!r} of shape {shape} has rank {len(shape)}, "
                f"but its rule gives a spec of rank {len(spec)}: {spec}"
            )
        mesh_shape = self.get_mesh().shape
        for dim, entry in zip(shape, spec):
            axes = entry if isinstance(entry, tuple) else (entry,)
            n = int(np.prod([mesh_shape[a] for a in axes if a is not None]))
            if dim % n:
                raise DistributedError(
                    f"ModelParallel: parameter {'.'.join(path)!r} of shape {shape}: dimension {dim} does not "
                    f"divide over mesh axis {entry!r} of size {n}"
                )
        return spec

    def state_shardings(self, tree: Any) -> Any:
        leaves = _state_leaves(tree)
        rules = {path: self._match(path) for path, _ in leaves}  # each path matched once
        shapes = {path: _shape(leaf) for path, leaf in leaves}
        mesh = self.get_mesh()
        specs = []
        for path, shape in shapes.items():
            owner = path if rules[path] is not None else None
            if owner is None:
                # an optimizer-state leaf follows the parameter whose path ends its own
                owner = next((path[k:] for k in range(1, len(path))
                              if rules.get(path[k:]) is not None and shapes[path[k:]] == shape), None)
            spec = PartitionSpec() if owner is None else self._checked(owner, shape, rules[owner][1])
            specs.append(NamedSharding(mesh, spec))
        used = {found[0] for found in rules.values() if found is not None}
        unused = [self.rules[i][0] for i in range(len(self.rules)) if i not in used]
        if unused and leaves:
            warnings.warn(
                f"ModelParallel: rule(s) {', '.join(unused)} matched no parameter; the paths are: "
                + ", ".join(".".join(p) for p, _ in leaves[:50]),
                stacklevel=2,
            )
        return _unflatten_like(tree, specs)
