"""Nested containers (dicts, lists, tuples) walked with ``jax.tree_util``; imports nothing
from axon.

One place for "find every leaf of a nested structure, with the path to it, and rebuild the
structure from new leaves", instead of a hand-written recursion per module. Only plain
containers (``dict``, ``list``, ``tuple`` and namedtuples) are entered; anything else, a
graph, an array, ``None``, is a leaf. As everywhere in ``jax.tree_util``, dict entries are
visited, and rebuilt, in sorted key order.

>>> paths, treedef = flatten_with_paths({"seq": "s", "state": ("c", "h")})
>>> paths
[(('seq',), 's'), (('state', 0), 'c'), (('state', 1), 'h')]
>>> unflatten(treedef, [p for p, _ in paths])
{'seq': ('seq',), 'state': (('state', 0), ('state', 1))}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax

__all__ = ["at_path", "fill_structure", "flatten_with_paths", "is_plain_leaf", "unflatten"]

Path = tuple[Any, ...]


def is_plain_leaf(value: Any) -> bool:
    """True for everything except plain containers (dicts, lists, tuples).

    >>> is_plain_leaf([1]), is_plain_leaf(None), is_plain_leaf("ab")
    (False, True, True)
    """
    return not isinstance(value, (dict, list, tuple))


def _plain_path(tree: Any, path: Any) -> Path:
    """A ``jax.tree_util`` key path as dict keys and sequence indices (a namedtuple field
    becomes its index, so the path also reads the plain tuple a namedtuple may become)."""
    keys = []
    for entry in path:
        if hasattr(entry, "name"):  # GetAttrKey: a namedtuple field
            key = type(tree)._fields.index(entry.name)
        else:  # DictKey, SequenceKey
            key = entry.key if hasattr(entry, "key") else entry.idx
        keys.append(key)
        tree = tree[key]
    return tuple(keys)


def flatten_with_paths(
    tree: Any, is_leaf: Callable[[Any], bool] = is_plain_leaf
) -> tuple[list[tuple[Path, Any]], Any]:
    """The leaves of ``tree`` with their paths, and its structure.

    Args:
        tree: Nested dicts, lists and tuples.
        is_leaf: Which values are leaves (default: everything but a plain container).

    Returns:
        ``([(path, leaf), ...], treedef)``: a path is a tuple of dict keys and sequence
        (also namedtuple) indices, as :func:`at_path` reads them; leaves come in
        ``jax.tree_util`` order (dict keys sorted). ``treedef`` rebuilds the structure with
        :func:`unflatten`.

    >>> flatten_with_paths([1, {"a": 2}])[0]
    [((0,), 1), ((1, 'a'), 2)]
    """
    keyed, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)
    return [(_plain_path(tree, path), leaf) for path, leaf in keyed], treedef


def unflatten(treedef: Any, leaves: Any) -> Any:
    """The structure ``treedef`` (from :func:`flatten_with_paths`) with new ``leaves``.

    >>> _, treedef = flatten_with_paths((1, [2, 3]))
    >>> unflatten(treedef, "abc")
    ('a', ['b', 'c'])
    """
    return jax.tree_util.tree_unflatten(treedef, list(leaves))


def at_path(tree: Any, path: Path) -> Any:
    """The entry of ``tree`` at ``path`` (dict keys and sequence indices).

    >>> at_path({"state": ("c", "h")}, ("state", 1))
    'h'
    """
    for key in path:
        tree = tree[key]
    return tree


def fill_structure(structure: Any, values: Any) -> Any:
    """A container node's ``structure`` (nested dicts/tuples/lists whose leaves are positions)
    with each position replaced by ``values[position]``.

    A container graph node stores the shape of its output as such a structure of parent
    positions; the compiler, the graph rewriter and the ONNX converters fill it with values,
    graphs or ONNX names.

    Args:
        structure: Nested dicts, tuples and lists of ints.
        values: What each position stands for.

    Returns:
        The same nesting with the values in place (a Mapping becomes a dict).

    >>> fill_structure({"a": 0, "b": (1, [0])}, ["x", "y"])
    {'a': 'x', 'b': ('y', ['x'])}
    """
    if isinstance(structure, int):
        return values[structure]
    if isinstance(structure, Mapping):
        return {k: fill_structure(v, values) for k, v in structure.items()}
    if isinstance(structure, tuple):
        return tuple(fill_structure(v, values) for v in structure)
    return [fill_structure(v, values) for v in structure]
