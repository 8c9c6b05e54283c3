"""Errors raised by the graph API and the compiler.

``CompileError`` and ``StateError`` are ``ValueError`` subclasses, so ``except ValueError``
catches them too.

>>> err = CompileError("dense_0", "dense", [((1, 3), "float32")], "model.py:12", ValueError("bad"))
>>> print(str(err).splitlines()[0])
error while building layer 'dense_0' (op dense), created at model.py:12:
"""

from __future__ import annotations

__all__ = ["CompileError", "MissingOutputError", "StateError"]


class CompileError(ValueError):
    """A failure inside a layer while a model was initialized, traced or run.

    The message names the layer, its op, the shapes and dtypes of its inputs and the file
    and line where the user created the layer; the original exception is chained as
    ``__cause__`` and kept in ``.cause``.
    """

    def __init__(self, layer: str, op_name: str, inputs: list, created_at: str | None, cause: BaseException):
        self.layer = layer
        self.op_name = op_name
        self.inputs = inputs
        self.created_at = created_at
        self.cause = cause
        where = f", created at {created_at}" if created_at else ""
        shapes = ", ".join(f"{dtype}{list(shape)}" for shape, dtype in inputs) or "none"
        message = (
            f"error while building layer {layer!r} (op {op_name}){where}:\n"
            f"  inputs: {shapes}\n"
            f"  {type(cause).__name__}: {cause}"
        )
        super().__init__(message)

    def __reduce__(self):
        return (CompileError, (self.layer, self.op_name, self.inputs, self.created_at, self.cause))


class StateError(ValueError):
    """A model state that does not fit the model (missing or mis-shaped entries).

    >>> issubclass(StateError, ValueError)
    True
    """


class MissingOutputError(ValueError):
    """The model's output depends on an optional input that was not given (the output is a
    propagating ``axon.NoneValue``); wrap the input with ``axon.optional`` or use
    ``axon.or_else``.

    >>> issubclass(MissingOutputError, ValueError)
    True
    """
