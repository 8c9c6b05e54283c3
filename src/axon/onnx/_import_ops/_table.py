"""The table of ONNX op types axon imports: ``OPS[op_type]`` is the function that adds one
node of that type to the import (``handler(ctx, node, attrs) -> outputs``); each module of
this package registers its handlers with :func:`handles`. The first line of a handler's
docstring says what the op becomes in axon (the docs' table of supported ops)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Handler = Callable[..., Any]
OPS: dict[str, Handler] = {}


def handles(*op_types: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``op_types``."""

    def register(f: Handler) -> Handler:
        for op_type in op_types:
            OPS[op_type] = f
        return f

    return register
