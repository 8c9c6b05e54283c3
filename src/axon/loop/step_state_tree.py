"""The structure of a step state in a checkpoint, so that a loaded checkpoint gives back dicts,
tuples, lists and :class:`axon.ModelState` s (with their trainable/state/frozen sets).

The structure is JSON next to the flat list of arrays: ``{"leaf": i}`` (the i-th array, in
``jax.tree_util`` order), ``{"none": null}``, ``{"dict": [[key, tree], ...]}`` (string or
int keys), ``{"list": [tree, ...]}``, ``{"tuple": [tree, ...], "name": "ScaleByAdamState"}``
(a NamedTuple keeps its class name for reading only), ``{"model_state": tree,
"parameters": paths, "state": paths, "frozen": paths}`` and ``{"node": "TypeName",
"children": [tree, ...]}`` for any other pytree node. Loading never imports a class named
in the file: NamedTuples and other nodes come back as plain tuples of their children (a
loop resuming from the checkpoint puts the arrays back into its own structure).

>>> import jax.numpy as jnp
>>> from axon.model_state import ModelState
>>> tree, leaves = encode_tree({"model_state": ModelState({"d": {"b": jnp.zeros(2)}}), "n": (1, None)})
>>> tree["dict"][1]
['n', {'tuple': [{'leaf': 1}, {'none': None}]}]
>>> value = decode_tree(tree, leaves, "doc")
>>> type(value["model_state"]).__name__, value["n"]
('ModelState', (1, None))
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from typing import Any

import jax

from axon.model_state import ModelState
from axon.serialization.errors import SerializationError, expect, expect_path, expect_type, short

__all__ = ["decode_tree", "encode_tree", "tree_from_keys"]

_MAX_DEPTH = 100


def encode_tree(value: Any) -> tuple[dict, list[Any]]:
    """The JSON structure of the pytree ``value`` and its leaves, in ``jax.tree_util`` order.

    Args:
        value: a pytree (a step state).

    Returns:
        ``(tree, leaves)``: the structure as JSON and the leaves it refers to by position.
    """
    leaves: list[Any] = []
    return _encode(value, leaves), leaves


def _encode(v: Any, leaves: list[Any]) -> dict:
    if v is None:
        return {"none": None}
    if isinstance(v, ModelState):
        return {
            "model_state": _encode(v.data, leaves),
            "parameters": sorted(list(p) for p in v.parameter_paths),
            "state": sorted(list(p) for p in v.state_paths),
            "frozen": sorted(list(p) for p in v.frozen_paths),
        }
    children, _ = jax.tree_util.tree_flatten_with_path(v, is_leaf=lambda x: x is not v)
    if len(children) == 1 and children[0][0] == () and children[0][1] is v:  # a leaf
        leaves.append(v)
        return {"leaf": len(leaves) - 1}
    items = [child for _, child in children]
    if isinstance(v, Mapping):
        return {"dict": [[_dict_key(path[0]), _encode(child, leaves)] for path, child in children]}
    encoded = [_encode(child, leaves) for child in items]
    if isinstance(v, tuple) and hasattr(v, "_fields"):
        return {"tuple": encoded, "name": type(v).__name__}
    if isinstance(v, tuple):
        return {"tuple": encoded}
    if isinstance(v, list):
        return {"list": encoded}
    return {"node": type(v).__name__, "children": encoded}


def _dict_key(entry: Any) -> Any:
    key = getattr(entry, "key", entry)
    return key if isinstance(key, (str, int)) and not isinstance(key, bool) else repr(key)


def decode_tree(tree: Any, leaves: Sequence[Any], where: str) -> Any:
    """The value ``tree`` describes, with ``leaves`` in its leaf positions; every leaf must be
    used once, in order.

    Args:
        tree: the JSON structure, from a file.
        leaves: the arrays it refers to.
        where: how errors name the structure.

    Returns:
        Dicts, lists, tuples, ``None`` and :class:`axon.ModelState` s holding the leaves.

    Raises:
        SerializationError: a malformed structure, or one that does not use every leaf once.
    """
    used = [0]
    value = _decode(tree, leaves, where, used, 0)
    expect(used[0] == len(leaves), f"{where}: the structure holds {used[0]} arrays, the file {len(leaves)}")
    return value


def _decode(j: Any, leaves: Sequence[Any], where: str, used: list[int], depth: int) -> Any:
    expect(depth < _MAX_DEPTH, f"{where}: nested deeper than {_MAX_DEPTH} levels")
    expect_type(j, dict, where, "a structure object")
    kinds = [k for k in ("leaf", "none", "dict", "list", "tuple", "model_state", "node") if k in j]
    expect(len(kinds) == 1, f"{where}: expected exactly one of leaf/none/dict/list/tuple/model_state/node, got {short(sorted(j))}")
    kind = kinds[0]
    allowed = {"leaf": {"leaf"}, "none": {"none"}, "dict": {"dict"}, "list": {"list"}, "tuple": {"tuple", "name"},
               "model_state": {"model_state", "parameters", "state", "frozen"}, "node": {"node", "children"}}[kind]
    expect(set(j) <= allowed, f"{where}: unexpected key(s) {short(sorted(set(j) - allowed))}")
    if kind == "leaf":
        expect(j["leaf"] == used[0] and not isinstance(j["leaf"], bool),
               f"{where}: expected leaf {used[0]} (leaves in order), got {short(j['leaf'])}")
        expect(used[0] < len(leaves), f"{where}: leaf {used[0]} but the file has {len(leaves)} arrays")
        used[0] += 1
        return leaves[used[0] - 1]
    if kind == "none":
        expect(j["none"] is None, f"{where}: expected {{'none': null}}")
        return None
    if kind == "dict":
        out: dict = {}
        for pair in expect_type(j["dict"], list, where, "a list of [key, structure] pairs"):
            expect(isinstance(pair, list) and len(pair) == 2, f"{where}: expected [key, structure] pairs, got {short(pair)}")
            key = pair[0]
            expect(isinstance(key, (str, int)) and not isinstance(key, bool), f"{where}: dict key {short(key)} is not a str or int")
            expect(key not in out, f"{where}: dict key {short(key)} appears twice")
            out[key] = _decode(pair[1], leaves, f"{where}[{key!r}]", used, depth + 1)
        return out
    if kind == "model_state":
        data = _decode(j["model_state"], leaves, f"{where}.data", used, depth + 1)
        expect(isinstance(data, dict) and _str_keyed(data), f"{where}: a model state's data must be nested dicts of str keys")
        paths = {}
        for part in ("parameters", "state", "frozen"):
            items = expect_type(j.get(part, []), list, f"{where}.{part}", "a list of paths")
            paths[part] = [expect_path(p, f"{where}.{part}") for p in items]
        return ModelState(data, paths["parameters"], paths["state"], paths["frozen"])
    if kind == "node":
        expect_type(j["node"], str, where, "a node type name")
        items = expect_type(j.get("children"), list, where, "a list of children")
        return tuple(_decode(c, leaves, f"{where}[{i}]", used, depth + 1) for i, c in enumerate(items))
    if kind == "tuple" and "name" in j:
        expect_type(j["name"], str, where, "a NamedTuple name")
    items = expect_type(j[kind], list, where, f"a list of {kind} items")
    decoded = [_decode(c, leaves, f"{where}[{i}]", used, depth + 1) for i, c in enumerate(items)]
    return decoded if kind == "list" else tuple(decoded)


def _str_keyed(data: Mapping) -> bool:
    return all(isinstance(k, str) and (not isinstance(v, Mapping) or _str_keyed(v)) for k, v in data.items())


def tree_from_keys(keys: Sequence[str], model_state_meta: Any) -> dict | None:
    """The structure of a step state saved by format version 1, which kept only the
    ``jax.tree_util.keystr`` of each leaf: ``['name']`` is a dict key, ``[0]`` a tuple
    position, ``.field`` a NamedTuple field (a tuple position in order of appearance) and
    ``[<flat index 0>]`` under ``['model_state']`` the model state. Nodes without arrays
    were not saved and are missing. None when the keys do not parse.

    >>> tree_from_keys(["['a'][0]", "['a'][1]", "['b']"], None)
    {'dict': [['a', {'tuple': [{'leaf': 0}, {'leaf': 1}]}], ['b', {'leaf': 2}]]}
    """
    root: dict = {}
    try:
        for i, key in enumerate(keys):
            node = root
            parts = _parse_keystr(key)
            if parts is None:
                return None
            for part in parts:
                node = node.setdefault("children", {}).setdefault(part, {})
            expect(not node, "a leaf with children")
            node["leaf"] = i
    except SerializationError:
        return None
    return _as_tree(root, (), model_state_meta)


def _parse_keystr(key: str) -> list[tuple[str, Any]] | None:
    parts: list[tuple[str, Any]] = []
    i = 0
    while i < len(key):
        if key.startswith("[<flat index ", i):
            end = key.find(">]", i)
            if end < 0 or not key[i + 13 : end].isdigit():
                return None
            parts.append(("flat", int(key[i + 13 : end])))
            i = end + 2
        elif key.startswith("['", i) or key.startswith('["', i):
            end = _string_end(key, i + 1)
            if end is None or key[end + 1 : end + 2] != "]":
                return None
            parts.append(("key", ast.literal_eval(key[i + 1 : end + 1])))
            i = end + 2
        elif key.startswith("[", i):
            end = key.find("]", i)
            if end < 0 or not key[i + 1 : end].isdigit():
                return None
            parts.append(("index", int(key[i + 1 : end])))
            i = end + 1
        elif key.startswith(".", i):
            j = i + 1
            while j < len(key) and (key[j].isalnum() or key[j] == "_"):
                j += 1
            if j == i + 1:
                return None
            parts.append(("field", key[i + 1 : j]))
            i = j
        else:
            return None
    return parts


def _string_end(key: str, start: int) -> int | None:
    """The index of the quote closing the Python string literal that opens at ``start``."""
    quote, i = key[start], start + 1
    while i < len(key):
        if key[i] == "\\":
            i += 2
            continue
        if key[i] == quote:
            return i
        i += 1
    return None


def _as_tree(node: dict, path: tuple, meta: Any) -> dict:
    if "leaf" in node:
        return {"leaf": node["leaf"]}
    children = node["children"]
    kinds = {kind for kind, _ in children}
    expect(len(kinds) == 1, "mixed child kinds")
    kind = kinds.pop()
    if kind == "key":
        return {"dict": [[k, _as_tree(c, (*path, k), meta)] for (_, k), c in children.items()]}
    if kind == "flat" and path == ("model_state",) and meta is not None and list(children) == [("flat", 0)]:
        out = {"model_state": _as_tree(children[("flat", 0)], path, meta)}
        out.update({part: meta.get(part, []) for part in ("parameters", "state", "frozen")})
        return out
    if kind in ("index", "flat"):
        size = max(i for _, i in children) + 1
        return {"tuple": [_as_tree(children[(kind, i)], (*path, i), meta) if (kind, i) in children else {"none": None}
                          for i in range(size)]}
    return {"tuple": [_as_tree(c, (*path, name), meta) for (_, name), c in children.items()]}
