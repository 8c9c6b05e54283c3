"""The table of ONNX op types axon imports: ``OPS[op_type]`` is the function that adds one
node of that type to the import (``handler(ctx, node, attrs) -> outputs``); each module of
this package registers its handlers with :func:`handles`. The first line of a handler's
docstring says what the op becomes in axon (the docs' table of supported ops)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Handler = Callable[..., Any]
OPS: dict[str, Handler] = {}
DESCRIPTIONS: dict[str, str] = {}
"""What an op type becomes, where one handler serves several op types (else the first line
of the handler's docstring)."""


def handles(*op_types: str, describe: Mapping[str, str] | None = None) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``op_types``; ``describe`` gives
    per-op-type descriptions for the docs."""

    def register(f: Handler) -> Handler:
        for op_type in op_types:
            OPS[op_type] = f
        DESCRIPTIONS.update(describe or {})
        return f

    return register


def description(op_type: str) -> str:
    """What ``op_type`` becomes in axon (one line)."""
    text = DESCRIPTIONS.get(op_type) or (OPS[op_type].__doc__ or "").strip().splitlines()[0]
    return text.replace("``", "`").rstrip(".")
