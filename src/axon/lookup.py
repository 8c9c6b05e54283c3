"""Resolve a name-or-object option against a table of built-ins (one error message shape).

Used by the ``get`` functions of ``axon.activations``, ``initializers``, ``losses``,
``metrics`` and ``optimizers``. Imports nothing from axon.

>>> table = {"relu": abs, "gelu": round}
>>> lookup("relu", table, kind="activation") is abs
True
>>> lookup(len, table, kind="activation") is len
True
>>> lookup("rellu", table, kind="activation")
Traceback (most recent call last):
...
ValueError: unknown activation 'rellu' (did you mean 'relu'?); expected a callable or one of: 'gelu', 'relu'
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["lookup", "unknown_name_message"]

T = TypeVar("T")


def unknown_name_message(kind: str, name: str, names: Any, accepts: str = "a callable") -> str:
    """The message for an unknown ``name``: the closest known name, then every known name.

    Args:
        kind: What is looked up (``"activation"``, ``"loss"``, ...).
        name: The name that was not found.
        names: The known names.
        accepts: What else is accepted in place of a name, or ``""`` for nothing.

    Returns:
        ``"unknown KIND 'NAME' (did you mean 'CLOSE'?); expected ACCEPTS or one of: 'a', 'b'"``
        (the suggestion is the most similar name, else the first name ``NAME`` begins;
        none when nothing is close).

    >>> unknown_name_message("loss", "mse", ["huber", "mean_squared_error"], "")
    "unknown loss 'mse'; expected one of: 'huber', 'mean_squared_error'"
    """
    known = sorted(names)
    close = difflib.get_close_matches(name, known, n=1) or [n for n in known if n.startswith(name)][:1]
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listed = ", ".join(repr(n) for n in known)
    either = f"{accepts} or " if accepts else ""
    return f"unknown {kind} {name!r}{hint}; expected {either}one of: {listed}"


def lookup(
    value: str | T,
    table: Mapping[str, Any],
    *,
    kind: str,
    accepts: str = "a callable",
    is_accepted: Callable[[Any], bool] = callable,
) -> Any:
    """``table[value]`` for a name, ``value`` itself when ``is_accepted(value)``.

    Args:
        value: A name in ``table``, or an object passed through unchanged.
        table: The built-ins by name.
        kind: What is looked up, for error messages (``"activation"``).
        accepts: What ``is_accepted`` accepts, for error messages.
        is_accepted: Which non-string values pass through (default: any callable).

    Returns:
        The table entry for a name, else ``value`` unchanged.

    Raises:
        ValueError: ``value`` is a string that is not in ``table`` (the message suggests the
            closest name and lists all of them).
        TypeError: ``value`` is neither a string nor accepted.

    >>> lookup(3, {"a": 1}, kind="metric")
    Traceback (most recent call last):
    ...
    TypeError: expected a metric name or a callable, got int 3; accepted names: 'a'
    """
    if isinstance(value, str):
        try:
            return table[value]
        except KeyError:
            raise ValueError(unknown_name_message(kind, value, table, accepts)) from None
    if is_accepted(value):
        return value
    names = ", ".join(repr(n) for n in sorted(table))
    raise TypeError(
        f"expected {'an' if kind[:1] in 'aeiou' else 'a'} {kind} name or {accepts}, got {type(value).__name__} {value!r}; "
        f"accepted names: {names}"
    )
