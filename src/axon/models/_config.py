"""Reading Hugging Face ``config.json`` files into the models' config dataclasses.

One helper, :func:`read_config`, shared by ``BertConfig`` and ``GPT2Config``: it keeps the
keys a dataclass declares, checks their types, rejects values the architecture does not
implement (each with the key, the value and what is supported), and ignores every other key
(tokenizer ids, training settings, ``architectures``...).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

# a check for one key: returns None when the value is supported, else what is supported
Check = Callable[[Any], str | None]


def one_of(*allowed: Any) -> Check:
    """A check accepting only the listed values."""

    def check(value: Any) -> str | None:
        return None if value in allowed else f"one of {list(allowed)}"

    return check


def read_config(
    cls: type[T],
    data: Mapping[str, Any],
    *,
    model_type: str,
    aliases: Mapping[str, str] | None = None,
    unsupported: Mapping[str, Check] | None = None,
) -> T:
    """Builds ``cls`` from a config mapping.

    Args:
        cls: the config dataclass.
        data: the parsed ``config.json``.
        model_type: the expected ``"model_type"`` (checked when the mapping has one).
        aliases: other key names for a field (``{"n_ctx": "n_positions"}``); the field's own
            name wins when both are present.
        unsupported: ``{key: check}`` for keys outside the dataclass whose values the
            architecture must not silently ignore.

    Returns:
        The config.

    Raises:
        TypeError: ``data`` is not a mapping, or a value has the wrong type.
        ValueError: a value is out of range or unsupported, or the model type differs.
    """
    where = cls.__name__
    if not isinstance(data, Mapping):
        raise TypeError(f"{where}.from_dict: expected a mapping (a parsed config.json), got {type(data).__name__}")
    found = data.get("model_type")
    if found is not None and found != model_type:
        raise ValueError(f"{where}: config.json has model_type {found!r}; expected {model_type!r}")
    for key, check in (unsupported or {}).items():
        if key in data:
            supported = check(data[key])
            if supported is not None:
                raise ValueError(f"{where}: {key}={data[key]!r} is not supported; expected {supported}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for alias, target in (aliases or {}).items():
        if alias in data and target not in data:
            values[target] = data[alias]
    values.update({k: v for k, v in data.items() if k in fields})
    return cls(**values)


def from_json(cls: type[T], path: str | os.PathLike) -> T:
    """Reads a ``config.json`` file and builds ``cls`` with ``cls.from_dict``.

    Raises:
        ValueError: the file is not valid JSON (or its value is not an object).
    """
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{cls.__name__}.from_json: {os.fspath(path)!r} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}.from_json: {os.fspath(path)!r} holds a {type(data).__name__}, not a JSON object")
    return cls.from_dict(data)  # type: ignore[attr-defined]


def check_positive_int(where: str, name: str, value: Any, *, allow_none: bool = False) -> None:
    """Raises unless ``value`` is a positive int (or ``None`` when allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: expected {name} to be a positive int, got {value!r}")


def check_positive_float(where: str, name: str, value: Any) -> None:
    """Raises unless ``value`` is a positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{where}: expected {name} to be a positive number, got {value!r}")
