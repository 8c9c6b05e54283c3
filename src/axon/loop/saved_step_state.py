"""Step states read from a checkpoint: real dicts, tuples, lists and :class:`axon.ModelState` s
that also keep the arrays exactly as read, so that a loop resuming from the checkpoint puts
them back into its own structure (optax's NamedTuple states included).

>>> import jax.numpy as jnp
>>> saved = as_saved({"w": jnp.ones(2)}, ["['w']"], [jnp.ones(2)], None, None)
>>> isinstance(saved, dict), isinstance(saved, RawStepState), saved["w"].tolist()
(True, True, [1.0, 1.0])
>>> restored = restore_step_state(saved, {"w": jnp.zeros(2)})
>>> type(restored).__name__, restored["w"].tolist()
('dict', [1.0, 1.0])
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from axon.model_state import ModelState

__all__ = ["RawStepState", "SavedDict", "SavedList", "SavedModelState", "SavedTuple", "SavedValue", "as_saved", "restore_step_state"]


class RawStepState:
    """The base of every step state read from a checkpoint.

    Besides being the value itself (a :class:`SavedDict`, :class:`SavedTuple`,
    :class:`SavedList` or :class:`SavedModelState`; :class:`SavedValue` for anything else),
    it keeps the arrays as read: ``saved_keys`` (their ``jax.tree_util.keystr`` paths),
    ``saved_leaves``, ``saved_tree`` (the structure's JSON, None for an old file whose
    structure could not be rebuilt) and ``model_state_meta``. ``loop.from_state(state)``
    restores them into the loop's own structure (:func:`restore_step_state`), so edits of
    the loaded value do not change what a loop resumes from.
    """

    saved_keys: list[str]
    saved_leaves: list[Any]
    saved_tree: dict | None
    model_state_meta: dict | None

    def _keep(self, keys: list[str], leaves: list[Any], tree: dict | None, meta: dict | None) -> None:
        self.saved_keys, self.saved_leaves, self.saved_tree, self.model_state_meta = list(keys), list(leaves), tree, meta


class SavedDict(RawStepState, dict):
    """A dict step state read from a checkpoint (a pytree like a dict)."""


class SavedTuple(RawStepState, tuple):
    """A tuple (or NamedTuple) step state read from a checkpoint, as a plain tuple."""


class SavedList(RawStepState, list):
    """A list step state read from a checkpoint."""


class SavedModelState(RawStepState, ModelState):
    """A :class:`axon.ModelState` step state read from a checkpoint."""


class SavedValue(RawStepState):
    """Any other step state read from a checkpoint (an array, ``None``, a custom pytree node
    as the tuple of its children): ``value``."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"SavedValue({self.value!r})"


def as_saved(value: Any, keys: list[str], leaves: list[Any], tree: dict | None, meta: dict | None) -> RawStepState:
    """``value`` (a decoded step state) as a :class:`RawStepState` that keeps the saved arrays.

    Args:
        value: the step state rebuilt from the file (None when it could not be rebuilt).
        keys: the ``keystr`` paths of the saved arrays.
        leaves: the saved arrays, in ``jax.tree_util`` order.
        tree: the saved structure, or None.
        meta: the trainable/state/frozen paths of the step state's ``"model_state"``, or None.

    Returns:
        The value as one of the ``Saved*`` classes.
    """
    if type(value) is dict:
        saved: RawStepState = SavedDict(value)
    elif type(value) is tuple:
        saved = SavedTuple(value)
    elif type(value) is list:
        saved = SavedList(value)
    elif type(value) is ModelState:
        saved = SavedModelState(value.data, value.parameter_paths, value.state_paths, value.frozen_paths)
    else:
        saved = SavedValue(value)
    saved._keep(keys, leaves, tree, meta)
    return saved


def restore_step_state(raw: RawStepState, template: Any) -> Any:
    """Put the saved arrays of ``raw`` into the structure of ``template`` (the loop's own
    step state, e.g. from ``jax.eval_shape``): the tree paths and shapes must match; each
    array is copied to the device with the template's dtype.

    Args:
        raw: a step state read from a checkpoint.
        template: a pytree of the structure, shapes and dtypes to restore into.

    Returns:
        The step state in the template's structure.

    Raises:
        ValueError: the saved arrays do not fit the template.
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    keys = [jax.tree_util.keystr(path) for path, _ in flat]
    if keys != raw.saved_keys:
        missing = sorted(set(keys) - set(raw.saved_keys))
        unexpected = sorted(set(raw.saved_keys) - set(keys))
        raise ValueError(
            "from_state: the saved step state does not match this loop "
            f"(missing: {missing[:5]}, unexpected: {unexpected[:5]})"
        )
    leaves = []
    for (path, t), arr in zip(flat, raw.saved_leaves):
        if tuple(t.shape) != tuple(arr.shape):
            raise ValueError(
                f"from_state: saved array {jax.tree_util.keystr(path)} has shape {arr.shape}, this loop expects {t.shape}"
            )
        leaves.append(jnp.array(arr, dtype=t.dtype, copy=True))  # a copy: the loop donates its buffers
    restored = jax.tree_util.tree_unflatten(treedef, leaves)
    meta = raw.model_state_meta
    if meta and isinstance(restored, dict) and isinstance(restored.get("model_state"), ModelState):
        ms = restored["model_state"]
        restored["model_state"] = ms._with(frozen_paths={tuple(p) for p in meta.get("frozen", [])})
    return restored


jax.tree_util.register_pytree_with_keys(
    SavedDict,
    lambda d: ([(jax.tree_util.DictKey(k), d[k]) for k in sorted(d)], tuple(sorted(d))),
    lambda keys, children: dict(zip(keys, children)),
    flatten_func=lambda d: ([d[k] for k in sorted(d)], tuple(sorted(d))),
)
jax.tree_util.register_pytree_with_keys(
    SavedTuple,
    lambda t: ([(jax.tree_util.SequenceKey(i), x) for i, x in enumerate(t)], None),
    lambda _, children: tuple(children),
    flatten_func=lambda t: (list(t), None),
)
jax.tree_util.register_pytree_with_keys(
    SavedList,
    lambda t: ([(jax.tree_util.SequenceKey(i), x) for i, x in enumerate(t)], None),
    lambda _, children: list(children),
    flatten_func=lambda t: (list(t), None),
)
jax.tree_util.register_pytree_node(
    SavedModelState,
    lambda m: ModelState.tree_flatten(m),
    lambda aux, children: ModelState.tree_unflatten(aux, children),
)
