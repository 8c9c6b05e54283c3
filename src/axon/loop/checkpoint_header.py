"""The JSON header of a loop checkpoint, checked field by field before anything uses it.

A checkpoint comes from a file, so every field is checked for its type and range here,
once, before the reader builds a :class:`~axon.loop.state.LoopState`: a malformed header
raises :class:`~axon.serialization.SerializationError` naming the field, never a
``TypeError`` or ``AttributeError`` later when a loop resumes from it.

>>> check_header({"format": "axon-loop-state", "version": 1}, version=1)
Traceback (most recent call last):
...
axon.serialization.SerializationError: checkpoint header: missing field(s) ['epoch', 'max_epoch', ...]
"""

from __future__ import annotations

import re
from typing import Any

from axon.loop.state import EVENTS, ITERATION_EVENTS
from axon.serialization.errors import SerializationError, expect, expect_path, expect_type, short

__all__ = ["FORMAT", "check_header", "field"]

FORMAT = "axon-loop-state"
"""The ``format`` field of every loop checkpoint."""

_FIELDS = (
    "format", "version", "epoch", "max_epoch", "iteration", "max_iteration", "status", "history", "times",
    "event_counts", "handler_metadata", "step_state", "model_state", "metrics",
)
_EPOCH_KEY = re.compile(r"0|[1-9][0-9]{0,17}")
_STATUSES = (None, "completed", "halted")
_MAX_NESTING = 64


def field(name: str) -> str:
    """How an error names the header field ``name``.

    >>> field("history")
    "checkpoint header field 'history'"
    """
    return f"checkpoint header field {name!r}"


def check_header(header: Any, version: int) -> dict:
    """``header`` if it is a well-formed checkpoint header of format ``version``; raises
    :class:`SerializationError` naming the first malformed field otherwise.

    Args:
        header: the parsed JSON header of a checkpoint file.
        version: the format version the file's prefix declares.

    Returns:
        ``header`` itself.

    Raises:
        SerializationError: a field is missing, unknown, of the wrong type or out of range.
    """
    expect_type(header, dict, "checkpoint header", "a JSON object")
    missing = [f for f in _FIELDS if f not in header]
    expect(not missing, f"checkpoint header: missing field(s) {missing}")
    unknown = sorted(set(header) - set(_FIELDS))
    expect(not unknown, f"checkpoint header: unknown field(s) {short(unknown)}")
    expect(header["format"] == FORMAT, f"{field('format')}: expected {FORMAT!r}, got {short(header['format'])}")
    expect(header["version"] == version,
           f"{field('version')}: expected {version} (the version of the file's prefix), got {short(header['version'])}")
    for name, low in (("epoch", 0), ("max_epoch", 0), ("iteration", 0), ("max_iteration", -1)):
        _int(header[name], field(name), low)
    expect(header["status"] in _STATUSES if isinstance(header["status"], (str, type(None))) else False,
           f"{field('status')}: expected one of {list(_STATUSES)}, got {short(header['status'])}")
    _epoch_dict(header["history"], "history", "a dict of epoch -> dict of metric values", _metric_values)
    _epoch_dict(header["times"], "times", "a dict of epoch -> seconds", _number)
    _event_counts(header["event_counts"])
    _handler_metadata(header["handler_metadata"])
    names = expect_type(header["metrics"], list, field("metrics"), "a list of metric names")
    for name in names:
        expect_type(name, str, field("metrics"), "a list of metric names")
    expect(len(set(names)) == len(names), f"{field('metrics')}: metric names repeat: {short(names)}")
    _model_state_meta(header["model_state"])
    _step_state(header["step_state"])
    return header


def _step_state(value: Any) -> None:
    where = field("step_state")
    expect_type(value, dict, where, "a dict with 'keys' and 'dtypes'")
    unknown = sorted(set(value) - {"keys", "dtypes", "tree"})
    expect(not unknown, f"{where}: unknown key(s) {short(unknown)}")
    for part in ("keys", "dtypes"):
        items = expect_type(value.get(part), list, f"{where}[{part!r}]", "a list of strings")
        for item in items:
            expect_type(item, str, f"{where}[{part!r}]", "a list of strings")
    expect(len(value["keys"]) == len(value["dtypes"]),
           f"{where}: {len(value['keys'])} keys but {len(value['dtypes'])} dtypes")


def _int(value: Any, where: str, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise SerializationError(f"{where}: expected an int >= {low}, got {type(value).__name__} {short(value)}")
    return value


def _number(value: Any, where: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise SerializationError(f"{where}: expected a number, got {type(value).__name__} {short(value)}")


def _metric_values(value: Any, where: str) -> None:
    expect_type(value, dict, where, "a dict of metric name -> value")
    for name, v in value.items():
        _metric_value(v, f"{where}[{name!r}]", 0)


def _metric_value(value: Any, where: str, depth: int) -> None:
    """A number (NaN and infinities included) or nested lists of numbers (a non-scalar metric)."""
    if isinstance(value, list) and depth < _MAX_NESTING:
        for v in value:
            _metric_value(v, where, depth + 1)
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise SerializationError(f"{where}: expected a metric value (a number or a list of numbers), got {short(value)}")


def _epoch_dict(value: Any, name: str, what: str, check: Any) -> None:
    where = field(name)
    expect_type(value, dict, where, what)
    for k, v in value.items():
        expect(bool(_EPOCH_KEY.fullmatch(k)), f"{where}: expected epoch numbers as keys, got {short(k)}")
        check(v, f"{where}[{k}]")


def _event_counts(value: Any) -> None:
    where = field("event_counts")
    expect_type(value, dict, where, "a dict of event -> count")
    expect(sorted(value) == sorted(EVENTS), f"{where}: expected the events {list(EVENTS)}, got {short(sorted(value))}")
    for event in EVENTS:
        count = value[event]
        if event in ITERATION_EVENTS:
            expect(isinstance(count, dict) and sorted(count) == ["epoch", "total"],
                   f"{where}[{event!r}]: expected {{'total': int, 'epoch': int}}, got {short(count)}")
            _int(count["total"], f"{where}[{event!r}]['total']", 0)
            _int(count["epoch"], f"{where}[{event!r}]['epoch']", 0)
        else:
            _int(count, f"{where}[{event!r}]", 0)


def _handler_metadata(value: Any) -> None:
    """Handler memory: JSON data under string names; the fields the built-in handlers read
    (``best``, ``since_last_improvement``, ``last``) must have the types they expect."""
    where = field("handler_metadata")
    expect_type(value, dict, where, "a dict of handler name -> memory")
    for name, memory in value.items():
        w = f"{where}[{name!r}]"
        _json_data(memory, w, 0)
        if name in ("checkpoint", "early_stop", "reduce_lr_on_plateau"):
            expect_type(memory, dict, w, "a dict")
        if not isinstance(memory, dict):
            continue
        if "best" in memory and memory["best"] is not None:
            _metric_value(memory["best"], f"{w}['best']", 0)
        if "since_last_improvement" in memory:
            _int(memory["since_last_improvement"], f"{w}['since_last_improvement']", 0)
        if "last" in memory:
            expect_type(memory["last"], str, f"{w}['last']", "a file path")


def _json_data(value: Any, where: str, depth: int) -> None:
    """JSON data (anything ``json.loads`` gives) nested at most ``_MAX_NESTING`` deep."""
    expect(depth < _MAX_NESTING, f"{where}: nested deeper than {_MAX_NESTING} levels")
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for v in children:
        _json_data(v, where, depth + 1)


def _model_state_meta(value: Any) -> None:
    where = field("model_state")
    if value is None:
        return
    expect_type(value, dict, where, "null or a dict of path lists")
    unknown = sorted(set(value) - {"parameters", "state", "frozen"})
    expect(not unknown, f"{where}: unknown key(s) {short(unknown)}")
    for kind, paths in value.items():
        for p in expect_type(paths, list, f"{where}[{kind!r}]", "a list of paths"):
            expect_path(p, f"{where}[{kind!r}]")
