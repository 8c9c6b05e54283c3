"""Optional dependencies, imported only by the function that needs them.

A missing extra raises an ImportError that names the feature and the ``pip install`` that
brings it, so that ``import axon`` never needs onnx, tensorboardX, matplotlib or torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, *, extra: str, feature: str, package: str | None = None) -> ModuleType:
    """Imports an optional dependency, or raises an ImportError naming its extra.

    Args:
        module: the module to import, for example ``"onnx"`` or ``"tensorboardX"``.
        extra: the axon extra that installs it, for example ``"onnx"``.
        feature: what needs it, named first in the error (``"onnx.import_model"``).
        package: the PyPI name when it differs from the module's.

    Returns:
        The imported module.

    Raises:
        ImportError: the module is not installed.

    >>> require("json", extra="none", feature="demo").dumps([1])
    '[1]'
    >>> require("no_such_module_xyz", extra="onnx", feature="onnx.export")
    Traceback (most recent call last):
    ImportError: onnx.export: needs no_such_module_xyz; install it with pip install "axon-jax[onnx]" (or pip install no_such_module_xyz)
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f'{feature}: needs {module}; install it with pip install "axon-jax[{extra}]" '
            f"(or pip install {package or module.split('.')[0]})"
        ) from e
