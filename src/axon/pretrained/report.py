"""What loading a checkpoint found: entries the model needs that the checkpoint lacks,
keys nothing uses, shape or dtype mismatches, transforms that failed.

>>> report = LoadReport(missing=["dense_0.bias"], unexpected=["fc.extra"])
>>> report.ok
False
>>> print(report)
2 problems loading the weights:
  missing (in the model, not filled by the checkpoint): dense_0.bias
  unexpected (in the checkpoint, used by no entry): fc.extra
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["LoadError", "LoadReport", "Mismatch", "TransformFailure"]


class LoadError(ValueError):
    """A checkpoint that cannot be loaded as asked; ``report`` holds the
    :class:`LoadReport` when the problems are about its entries (``None`` otherwise).

    >>> isinstance(LoadError("x"), ValueError)
    True
    """

    def __init__(self, message: str, report: LoadReport | None = None):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class Mismatch:
    """A checkpoint tensor whose shape or dtype (after its transform) does not fit the entry.

    >>> str(Mismatch("fc.weight", "fc.kernel", ((512, 10), "float32"), ((10, 512), "float32")))
    'fc.kernel from fc.weight: expected (512, 10) float32, got (10, 512) float32'
    """

    key: str
    target: str
    expected: tuple[tuple[int, ...], str]
    got: tuple[tuple[int, ...], str]
    reason: str = ""

    def __str__(self) -> str:
        (es, ed), (gs, gd) = self.expected, self.got
        why = f" ({self.reason})" if self.reason else ""
        return f"{self.target} from {self.key}: expected {es} {ed}, got {gs} {gd}{why}"


@dataclass(frozen=True)
class TransformFailure:
    """A rule whose transform raised on a key.

    >>> str(TransformFailure("w", "Rule('w' -> 'd.kernel', transform=[transpose])", "bad rank"))
    "w by Rule('w' -> 'd.kernel', transform=[transpose]): bad rank"
    """

    key: str
    rule: str
    error: str
    target: str = ""

    def __str__(self) -> str:
        return f"{self.key} by {self.rule}: {self.error}"


@dataclass
class LoadReport:
    """The problems found while loading (all empty: the checkpoint filled the model exactly).

    Attributes:
        missing: model entries (``"layer.param"``) no checkpoint key filled.
        unexpected: checkpoint keys that no rule matched, or whose target is not an entry of
            the model (``"key -> target"``).
        mismatched: :class:`Mismatch` es of shape or dtype.
        failed: :class:`TransformFailure` s.
        duplicates: entries filled by more than one key (``"target <- key1, key2"``).
        loaded: the number of entries filled.
    """

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[Mismatch] = field(default_factory=list)
    failed: list[TransformFailure] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    loaded: int = 0

    @property
    def ok(self) -> bool:
        """Whether nothing went wrong (no missing, unexpected, mismatched, failed or duplicate
        entries)."""
        return not (self.missing or self.unexpected or self.mismatched or self.failed or self.duplicates)

    def __str__(self) -> str:
        if self.ok:
            return f"loaded {self.loaded} entries, no problems"
        sections = [
            ("missing (in the model, not filled by the checkpoint)", self.missing),
            ("unexpected (in the checkpoint, used by no entry)", self.unexpected),
            ("shape/dtype mismatches", self.mismatched),
            ("failed transforms", self.failed),
            ("filled by more than one key", self.duplicates),
        ]
        count = sum(len(items) for _, items in sections)
        lines = [f"{count} problem{'s' if count != 1 else ''} loading the weights:"]
        for title, items in sections:
            if not items:
                continue
            if all(isinstance(i, str) for i in items) and len(items) <= 20:
                lines.append(f"  {title}: {', '.join(items)}")
            else:
                lines.append(f"  {title}:")
                lines.extend(f"    {i}" for i in items[:50])
                if len(items) > 50:
                    lines.append(f"    ... and {len(items) - 50} more")
        return "\n".join(lines)
