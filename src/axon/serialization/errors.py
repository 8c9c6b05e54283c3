"""The errors of :mod:`axon.serialization`, and the checks that raise them while a file is parsed.

Every check names where in the file it failed (``where``) and shows the offending value
shortened, so a hostile or corrupted file fails with a readable :class:`SerializationError`.

>>> expect_int(3, "node 0 output", 0, 2)
Traceback (most recent call last):
...
axon.serialization.SerializationError: node 0 output: expected an int in [0, 2), got 3
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from axon.serialization.state_check import StateReport

Path = tuple[str, ...]
"""The path of one state entry: layer scopes, layer name, parameter name."""


class SerializationError(ValueError):
    """A file or byte string that is not a valid axon model or state, or a model that
    cannot be saved (an unregistered layer function, an option of an unsupported type).

    >>> import axon
    >>> axon.deserialize(b"not a model")
    Traceback (most recent call last):
    ...
    axon.serialization.SerializationError: not an axon file: ...
    """


class StateMismatchError(SerializationError):
    """A loaded state that does not fit the model; ``.report`` is the :class:`StateReport`."""

    def __init__(self, message: str, report: StateReport):
        super().__init__(message)
        self.report = report


# shown (and pickled) under the package that exports them, as before the package was split
SerializationError.__module__ = StateMismatchError.__module__ = "axon.serialization"


def expect(condition: bool, message: str) -> None:
    """Raise :class:`SerializationError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise SerializationError(message)


def expect_type(value: Any, types: Any, where: str, what: str) -> Any:
    """``value`` if it is an instance of ``types`` (a bool only where ``bool`` is named)."""
    bool_allowed = bool in (types if isinstance(types, tuple) else (types,))
    if not isinstance(value, types) or (isinstance(value, bool) and not bool_allowed):
        raise SerializationError(f"{where}: expected {what}, got {type(value).__name__} {short(value)}")
    return value


def short(value: Any) -> str:
    """``repr(value)``, cut to 80 characters.

    >>> short("x" * 100)[-5:]
    'xx...'
    """
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def expect_str_list(value: Any, where: str) -> list[str]:
    """``value`` if it is a list of strings."""
    expect_type(value, list, where, "a list of strings")
    for v in value:
        expect_type(v, str, where, "a list of strings")
    return value


def expect_path(value: Any, where: str) -> Path:
    """A state path from a non-empty list of non-empty strings."""
    expect_str_list(value, where)
    expect(len(value) > 0 and all(value), f"{where}: expected a non-empty path of non-empty strings, got {short(value)}")
    return tuple(value)


def expect_int(value: Any, where: str, low: int | None = None, high: int | None = None) -> int:
    """``value`` if it is an int (not a bool) in ``[low, high)``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise SerializationError(f"{where}: expected an int, got {short(value)}")
    if (low is not None and value < low) or (high is not None and value >= high):
        raise SerializationError(f"{where}: expected an int in [{low}, {high}), got {value}")
    return value


def guard(decode: Callable[[], Any]) -> Any:
    """Run a decoding step, turning any malformation into a :class:`SerializationError`.

    >>> guard(lambda: {}["graph"])
    Traceback (most recent call last):
    ...
    axon.serialization.SerializationError: corrupted file: KeyError: 'graph'
    """
    try:
        return decode()
    except SerializationError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError, OverflowError) as e:
        raise SerializationError(f"corrupted file: {type(e).__name__}: {e}") from e
