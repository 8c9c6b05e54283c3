"""Event filters: when a handler attached to an event actually runs.

A filter is ``"always"``, ``"first"``, a dict of conditions that must all hold
(``{"every": n}``, ``{"before": n}``, ``{"after": n}``, ``{"once": n}``; ``n`` counts all
firings of the event, or ``("epoch", n)`` counts within the current epoch for iteration
events), or a function ``fn(state, event) -> bool``. ``every=n`` fires on the 1st,
(n+1)-th, ... occurrence, as in Axon.

>>> from axon.loop.state import LoopState
>>> s = LoopState(step_state={})
>>> s.event_counts["epoch_completed"] = 3
>>> matches({"every": 2}, s, "epoch_completed"), matches({"after": 2}, s, "epoch_completed")
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

__all__ = ["Filter", "check_filter", "matches"]

Filter = Literal["always", "first"] | Mapping[str, Any] | Callable[[Any, str], bool]
"""What a handler's ``filter`` can be: ``"always"``, ``"first"``, a dict of conditions, or a
predicate ``fn(state, event) -> bool``."""

_CONDITIONS = ("every", "before", "after", "once")


def check_filter(filter: Any) -> Any:
    """Validate a filter when it is attached (errors name what is accepted).

    >>> check_filter({"every": 2})
    {'every': 2}
    """
    if filter in ("always", "first") or callable(filter):
        return filter
    if isinstance(filter, Mapping):
        unknown = [k for k in filter if k not in _CONDITIONS]
        if unknown or not filter:
            raise ValueError(f"unknown filter condition(s) {unknown}; accepted: {list(_CONDITIONS)}")
        for key, value in filter.items():
            n = value[1] if isinstance(value, tuple) else value
            scope = value[0] if isinstance(value, tuple) else "total"
            if scope not in ("total", "epoch") or not isinstance(n, int) or isinstance(n, bool):
                raise ValueError(f"filter {key!r}: expected an int or ('total'|'epoch', int), got {value!r}")
            if key == "every" and n < 1:
                raise ValueError(f"filter 'every': expected a positive int, got {n}")
        return dict(filter)
    raise ValueError(
        "expected filter to be 'always', 'first', a dict of every/before/after/once, "
        f"or a function (state, event) -> bool; got {filter!r}"
    )


def _count(state: Any, event: str, scope: str) -> int:
    count = state.event_counts[event]
    if isinstance(count, dict):
        return count[scope]
    return count


def matches(filter: Any, state: Any, event: str) -> bool:
    """Whether a handler with ``filter`` runs for this firing of ``event``."""
    if filter == "always":
        return True
    if filter == "first":
        return _count(state, event, "total") == 1
    if callable(filter) and not isinstance(filter, Mapping):
        return bool(filter(state, event))
    for key, value in filter.items():
        scope, n = value if isinstance(value, tuple) else ("total", value)
        count = _count(state, event, scope)
        if key == "every":
            ok = (count - 1) % n == 0
        elif key == "before":
            ok = count < n
        elif key == "after":
            ok = count > n
        else:
            ok = count == n
        if not ok:
            return False
    return True

