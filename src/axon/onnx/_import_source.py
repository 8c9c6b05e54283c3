"""Reading an ONNX model for import: a path, bytes or an ``onnx.ModelProto``, checked before
anything is built. Nothing in the file is executed: it is parsed as protobuf data, its
external tensors are read only from files inside the model's folder, and its opset must be
13 or later."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from axon.onnx._import_context import OnnxImportError

MIN_OPSET = 13
DEFAULT_DOMAINS = ("", "ai.onnx")


def _fail(message: str) -> OnnxImportError:
    return OnnxImportError(f"onnx.import_model: {message}")


def load(onnx: Any, source: Any) -> Any:
    """The checked ``ModelProto`` of ``source`` (a path, bytes or a ``ModelProto``)."""
    base_dir: Path | None = None
    if isinstance(source, onnx.ModelProto):
        model = source
    elif isinstance(source, (bytes, bytearray, memoryview)):
        model = _parse(onnx, bytes(source), "the given bytes")
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise _fail(f"no ONNX file at {str(path)!r}")
        model = _parse(onnx, path.read_bytes(), repr(str(path)))
        base_dir = path.resolve().parent
    else:
        raise TypeError(f"onnx.import_model: expected source to be a path, bytes or an onnx.ModelProto, got {type(source).__name__}")
    _check_opset(model)
    _load_external_data(onnx, model, base_dir)
    _check_model(onnx, model)
    return model


def _parse(onnx: Any, data: bytes, what: str) -> Any:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError and friends
        raise _fail(f"{what} is not an ONNX model (truncated or another format: {len(data)} bytes do not parse as an ONNX ModelProto: {e})") from e
    if not model.graph.node and not model.graph.output:
        raise _fail(f"{what} is not an ONNX model (truncated or another format: {len(data)} bytes hold no graph)")
    return model


def _check_opset(model: Any) -> None:
    opsets = {o.domain: o.version for o in model.opset_import}
    default = [opsets[d] for d in DEFAULT_DOMAINS if d in opsets]
    if not default:
        raise _fail(f"the model declares no opset for the default ONNX domain (opset_import: {opsets})")
    if default[0] < MIN_OPSET:
        raise _fail(f"the model uses opset {default[0]} of the default ONNX domain; axon imports opset {MIN_OPSET} or later "
                    f"(convert it with onnx.version_converter.convert_version(model, {MIN_OPSET}))")


def _check_model(onnx: Any, model: Any) -> None:
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise _fail(f"the model is not a valid ONNX model (truncated or corrupt?): {e}") from e


def _load_external_data(onnx: Any, model: Any, base_dir: Path | None) -> None:
    from onnx import external_data_helper as helper

    tensors = [t for t in helper._get_all_tensors(model) if helper.uses_external_data(t)]
    if not tensors:
        return
    if base_dir is None:
        names = [t.name for t in tensors]
        raise _fail(f"initializers {names} keep their data in external files; import the model from its file path so they can be found")
    for tensor in tensors:
        info = helper.ExternalDataInfo(tensor)
        location = Path(info.location)
        target = (base_dir / location).resolve()
        if location.is_absolute() or base_dir not in target.parents:
            raise _fail(f"initializer {tensor.name!r} refers to external data {info.location!r} outside the model's folder {str(base_dir)!r}")
        if not target.is_file():
            raise _fail(f"initializer {tensor.name!r} refers to external data {info.location!r}, which does not exist in {str(base_dir)!r}")
    helper.load_external_data_for_model(model, str(base_dir))
