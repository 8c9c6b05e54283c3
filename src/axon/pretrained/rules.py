"""Mapping rules from a checkpoint's names to axon's ``"layer.param"`` paths, and the
transforms that turn a checkpoint tensor into the layout axon expects.

A :class:`Rule` is ``(pattern, target, transform)``: ``pattern`` is a regular expression that
must match the whole source key; ``target`` is a replacement template (``\\1`` or ``\\g<name>``
for the pattern's groups) naming the axon entry, or ``None`` to drop the key; ``transform``
is a registered transform's name (``"transpose"``, ``"reshape(2, -1)"``), a function
``array -> array``, or a list of them applied in order. The first rule that matches a key
wins.

A transform may return a dict ``{part: array}`` instead of one array (``"split_qkv"``): the
key then fills several entries, whose names come from the target's ``{}`` placeholder.

>>> import numpy as np
>>> rule = Rule(r"layer(\\d+)\\.weight", r"dense_\\1.kernel", "transpose")
>>> [(t, a.shape) for t, a in rule.apply("layer3.weight", np.zeros((4, 2)))]
[('dense_3.kernel', (2, 4))]
>>> split = Rule(r"qkv\\.weight", "attention_{}.kernel", ["split_qkv", "transpose"])
>>> [(t, a.shape) for t, a in split.apply("qkv.weight", np.zeros((6, 5)))]
[('attention_query.kernel', (5, 2)), ('attention_key.kernel', (5, 2)), ('attention_value.kernel', (5, 2))]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "TRANSFORMS",
    "Rule",
    "Transform",
    "compile_mapping",
    "parse_transform",
    "register_transform",
]

Transform = str | Callable[[np.ndarray], Any] | Sequence[str | Callable[[np.ndarray], Any]] | None
"""A transform: a registered name (with arguments, ``"reshape(2, -1)"``), a function, a list
of them applied in order, or ``None`` (the array as is)."""

TRANSFORMS: dict[str, Callable[..., Callable[[np.ndarray], Any]]] = {}
"""The registry of named transforms: ``name -> factory(*int_args, **int_kwargs) -> fn``."""


def register_transform(name: str) -> Callable[[Callable], Callable]:
    """Registers a transform factory under ``name``.

    The factory takes the integer arguments written after the name (``"name(1, axis=-1)"``)
    and returns ``fn(array) -> array`` (or ``-> {part: array}``).

    Args:
        name: the transform's name, an identifier not registered yet.

    Returns:
        A decorator that registers the factory and returns it unchanged.

    Raises:
        ValueError: ``name`` is not an identifier or is already registered.

    >>> @register_transform("negate_for_doc")
    ... def _negate():
    ...     return lambda a: -a
    >>> parse_transform("negate_for_doc")(np.ones(2)).tolist()
    [-1.0, -1.0]
    >>> del TRANSFORMS["negate_for_doc"]
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"register_transform: expected an identifier, got {name!r}")
    if name in TRANSFORMS:
        raise ValueError(f"register_transform: a transform named {name!r} is already registered")

    def decorate(factory: Callable) -> Callable:
        TRANSFORMS[name] = factory
        return factory

    return decorate


def _expect_ndim(a: np.ndarray, ndim: int | tuple[int, ...], what: str) -> None:
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if a.ndim not in allowed:
        raise ValueError(f"{what}: expected an array of rank {' or '.join(map(str, allowed))}, got shape {tuple(a.shape)}")


@register_transform("transpose")
def _transpose() -> Callable[[np.ndarray], np.ndarray]:
    """A 2-D transpose: torch ``Linear`` ``(out, in)`` -> axon ``dense`` ``(in, out)``."""

    def fn(a: np.ndarray) -> np.ndarray:
        _expect_ndim(a, 2, "transpose")
        return a.T

    return fn


@register_transform("permute")
def _permute(*axes: int) -> Callable[[np.ndarray], np.ndarray]:
    """``np.transpose(a, axes)``."""

    def fn(a: np.ndarray) -> np.ndarray:
        if sorted(axes) != list(range(a.ndim)):
            raise ValueError(f"permute{axes}: not a permutation of the axes of an array of shape {tuple(a.shape)}")
        return np.transpose(a, axes)

    return fn


@register_transform("conv_oihw_to_hwio")
def _conv_oihw_to_hwio() -> Callable[[np.ndarray], np.ndarray]:
    """A torch convolution kernel ``(out, in, *k)`` to axon's channels-last layout
    ``(*k, in, out)`` (any number of spatial axes). Axon's channels-first convolutions use
    torch's layout already: they need no transform."""

    def fn(a: np.ndarray) -> np.ndarray:
        _expect_ndim(a, (3, 4, 5), "conv_oihw_to_hwio")
        return np.transpose(a, (*range(2, a.ndim), 1, 0))

    return fn


@register_transform("reshape")
def _reshape(*shape: int) -> Callable[[np.ndarray], np.ndarray]:
    """``a.reshape(shape)`` (one ``-1`` allowed)."""
    if not shape:
        raise ValueError("reshape: expected the new shape, e.g. reshape(2, -1)")

    def fn(a: np.ndarray) -> np.ndarray:
        try:
            return a.reshape(shape)
        except ValueError as e:
            raise ValueError(f"reshape{shape}: cannot reshape an array of shape {tuple(a.shape)}") from e

    return fn


@register_transform("split_qkv")
def _split_qkv(axis: int = 0) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """A fused query/key/value tensor split into three equal parts along ``axis`` (default
    0: torch ``Linear``'s ``(3 * out, in)``; ``axis=-1`` for GPT-2's ``Conv1D`` ``(in, 3 * out)``),
    returned as ``{"query": ..., "key": ..., "value": ...}``."""

    def fn(a: np.ndarray) -> dict[str, np.ndarray]:
        if not -a.ndim <= axis < a.ndim or a.shape[axis] % 3:
            raise ValueError(f"split_qkv(axis={axis}): axis {axis} of shape {tuple(a.shape)} is not a multiple of 3")
        return dict(zip(("query", "key", "value"), np.split(a, 3, axis=axis)))

    return fn


_CALL = re.compile(r"\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*", re.S)
_ARG = re.compile(r"\s*(?:([A-Za-z_]\w*)\s*=\s*)?([+-]?\d+)\s*")


def parse_transform(spec: str) -> Callable[[np.ndarray], Any]:
    """The function a transform name stands for: ``"name"`` or ``"name(1, -1, axis=2)"``,
    integer arguments only (parsed, never evaluated).

    Args:
        spec: the transform, as written in a rule.

    Returns:
        ``fn(array) -> array`` (or ``-> {part: array}``).

    Raises:
        ValueError: an unknown name or arguments that are not integers.

    >>> parse_transform("reshape(2, -1)")(np.zeros(6)).shape
    (2, 3)
    >>> parse_transform("flip")
    Traceback (most recent call last):
    ValueError: unknown transform 'flip'; registered: conv_oihw_to_hwio, permute, reshape, split_qkv, transpose
    """
    m = _CALL.fullmatch(spec) if isinstance(spec, str) else None
    if m is None:
        raise ValueError(f"expected a transform like 'transpose' or 'reshape(2, -1)', got {spec!r}")
    name, arg_text = m.group(1), m.group(2)
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; registered: {', '.join(sorted(TRANSFORMS))}")
    args: list[int] = []
    kwargs: dict[str, int] = {}
    if arg_text is not None and arg_text.strip():
        for part in arg_text.split(","):
            a = _ARG.fullmatch(part)
            if a is None:
                raise ValueError(f"transform {spec!r}: arguments must be integers (or name=integer), got {part.strip()!r}")
            if a.group(1):
                kwargs[a.group(1)] = int(a.group(2))
            elif kwargs:
                raise ValueError(f"transform {spec!r}: a positional argument follows a keyword argument")
            else:
                args.append(int(a.group(2)))
    try:
        return TRANSFORMS[name](*args, **kwargs)
    except TypeError as e:
        raise ValueError(f"transform {spec!r}: {e}") from e


def _steps(transform: Transform) -> tuple[Callable[[np.ndarray], Any], ...]:
    if transform is None:
        return ()
    items = [transform] if isinstance(transform, str) or callable(transform) else list(transform)
    steps = []
    for t in items:
        if isinstance(t, str):
            steps.append(parse_transform(t))
        elif callable(t):
            steps.append(t)
        else:
            raise TypeError(f"expected a transform name, a function or a list of them, got {t!r}")
    return tuple(steps)


def _describe(transform: Transform) -> str:
    if transform is None:
        return "None"
    items = [transform] if isinstance(transform, str) or callable(transform) else list(transform)
    return "[" + ", ".join(t if isinstance(t, str) else getattr(t, "__name__", repr(t)) for t in items) + "]"


@dataclass(frozen=True)
class Rule:
    """One mapping rule: source keys that fully match ``pattern`` go to ``target``.

    Args:
        pattern: a regular expression matched against the whole source key.
        target: the axon entry, ``"layer.param"`` (as ``".".join`` of a ``ModelState`` path),
            with ``\\1``/``\\g<name>`` for the pattern's groups and, when the transform returns
            several parts, one ``{}`` that each part's name replaces; ``None`` drops the key.
        transform: a registered transform name, a function, a list of them, or ``None``.

    Raises:
        ValueError: an invalid pattern, an unknown transform, or a ``{}`` placeholder
            in a target that drops the key.

    >>> Rule(r"fc\\.weight", "fc.kernel", "transpose").target
    'fc.kernel'
    >>> Rule("(", "x")
    Traceback (most recent call last):
    ValueError: rule '(': invalid pattern: missing ), unterminated subpattern at position 0
    """

    pattern: str
    target: str | None
    transform: Transform = None
    _regex: re.Pattern = field(init=False, repr=False, compare=False)
    _steps: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str):
            raise TypeError(f"rule: expected the pattern to be a string, got {self.pattern!r}")
        if self.target is not None and not isinstance(self.target, str):
            raise TypeError(f"rule {self.pattern!r}: expected the target to be a string or None, got {self.target!r}")
        try:
            regex = re.compile(self.pattern)
        except re.error as e:
            raise ValueError(f"rule {self.pattern!r}: invalid pattern: {e}") from None
        try:
            steps = _steps(self.transform)
        except (ValueError, TypeError) as e:
            raise ValueError(f"rule {self.pattern!r}: {e}") from None
        object.__setattr__(self, "_regex", regex)
        object.__setattr__(self, "_steps", steps)

    def __str__(self) -> str:
        target = "None" if self.target is None else f"'{self.target}'"
        return f"Rule('{self.pattern}' -> {target}, transform={_describe(self.transform)})"

    def match(self, key: str) -> re.Match | None:
        """The full match of ``key`` against the pattern, or ``None``.

        Args:
            key: a source key.

        Returns:
            The ``re.Match``, or ``None`` when the pattern does not match all of ``key``.

        >>> Rule(r"a\\.(\\d+)", "b_\\1.w").match("a.7") is not None
        True
        """
        return self._regex.fullmatch(key)

    def apply(self, key: str, array: np.ndarray, match: re.Match | None = None) -> list[tuple[str, np.ndarray]]:
        """The ``(target, array)`` pairs that the source ``key`` holding ``array`` fills.

        Args:
            key: the source key (it must match the pattern).
            array: its value.
            match: the match of ``key``, when already computed.

        Returns:
            One pair, or one per part when the transform splits the array; ``[]`` when the
            rule drops the key.

        Raises:
            ValueError: ``key`` does not match, a transform fails, or the parts do not fit
                the target's ``{}`` placeholder.

        >>> Rule(r"x", None).apply("x", np.zeros(1))
        []
        """
        match = match or self.match(key)
        if match is None:
            raise ValueError(f"{self}: does not match {key!r}")
        if self.target is None:
            return []
        target = match.expand(self.target)
        value: Any = array
        for step in self._steps:
            if isinstance(value, Mapping):
                value = {part: step(v) for part, v in value.items()}
            else:
                value = step(value)
        if isinstance(value, Mapping):
            if target.count("{}") != 1:
                raise ValueError(
                    f"{self}: the transform split {key!r} into parts {sorted(value)}, so the target needs "
                    f"one '{{}}' for the part's name, got {target!r}"
                )
            return [(target.replace("{}", str(part)), _as_array(v, key)) for part, v in value.items()]
        if "{}" in target:
            raise ValueError(f"{self}: the target {target!r} has a '{{}}' but the transform returned one array")
        return [(target, _as_array(value, key))]


def _as_array(value: Any, key: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return np.asarray(value)
    raise ValueError(f"the transform of {key!r} returned {type(value).__name__}, not an array")


RuleLike = Rule | tuple


def compile_mapping(mapping: Sequence[RuleLike] | Mapping[str, Any]) -> list[Rule]:
    """Rules from ``[Rule | (pattern, target[, transform]), ...]`` (a dict ``{pattern:
    target}`` works for renames alone).

    Args:
        mapping: the rules, in priority order.

    Returns:
        A list of :class:`Rule`.

    Raises:
        TypeError: an entry is neither a ``Rule`` nor a 2- or 3-tuple.
        ValueError: an invalid rule.

    >>> [str(r) for r in compile_mapping([(r"w", "d.kernel", "transpose")])]
    ["Rule('w' -> 'd.kernel', transform=[transpose])"]
    """
    if isinstance(mapping, Mapping):
        mapping = list(mapping.items())
    if isinstance(mapping, (str, bytes)) or not isinstance(mapping, Sequence):
        raise TypeError(f"expected mapping to be a list of rules, got {type(mapping).__name__}")
    rules = []
    for i, entry in enumerate(mapping):
        if isinstance(entry, Rule):
            rules.append(entry)
        elif isinstance(entry, (tuple, list)) and len(entry) in (2, 3):
            rules.append(Rule(*entry))
        else:
            raise TypeError(f"mapping[{i}]: expected a Rule or a (pattern, target[, transform]) tuple, got {entry!r}")
    return rules
