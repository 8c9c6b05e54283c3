"""Checkpoint readers: a safetensors file, a sharded safetensors checkpoint, a torch state
dict, or a dict of arrays, each seen as named tensors read one at a time.

Safetensors files are read with plain reads into one fresh array per tensor, not through a
memory map: pages of a mapped file stay in the process's resident memory once touched, so
mapping a checkpoint makes loading it cost about twice its size (measured: 2.3x for a 200 MB
file); reading tensor by tensor keeps the peak near the size of the loaded state. The file's
header is checked (offsets inside the file, sizes that match shapes and dtypes) before any
tensor is read.

Torch ``.bin``/``.pt`` files are read with ``torch.load(weights_only=True, mmap=True)`` when
torch is installed: nothing but tensors and plain containers is unpickled, so a file that
holds code or other objects is refused, never executed. Without torch such a file cannot be
read (axon has no pickle reader of its own, on purpose): the error names the ``pip install``.

>>> import numpy as np
>>> src = open_source({"w": np.ones((2, 3), np.float32)})
>>> src.names(), src.read("w").shape
(['w'], (2, 3))
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

from axon._extras import require
from axon.pretrained.report import LoadError
from axon.serialization.dtypes import SAFETENSORS_DTYPES

__all__ = [
    "ArraySource",
    "SafetensorsSource",
    "ShardedSource",
    "Source",
    "TorchSource",
    "open_source",
]

_MAX_HEADER = 100 * 1024 * 1024
_INDEX_NAMES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_SINGLE_NAMES = ("model.safetensors", "pytorch_model.bin")


class Source:
    """Named tensors read one at a time: ``names()`` lists them, ``read(key)`` returns one as
    a numpy array."""

    name: str = "source"

    def names(self) -> list[str]:
        """The tensor names, in the checkpoint's order.

        Returns:
            A list of strings.

        >>> Source().names()
        []
        """
        return []

    def read(self, key: str) -> np.ndarray:
        """One tensor as a numpy array (read now; nothing is cached).

        Args:
            key: a name from :meth:`names`.

        Returns:
            The array.

        Raises:
            KeyError: an unknown key.

        >>> Source().read("w")
        Traceback (most recent call last):
        KeyError: "source has no tensor 'w'"
        """
        raise KeyError(f"{self.name} has no tensor {key!r}")

    def __contains__(self, key: object) -> bool:
        return key in self.names()


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in tree.items():
        if not isinstance(k, str):
            raise LoadError(f"expected string keys in the state dict, got {k!r} under {prefix or 'the top level'!r}")
        if isinstance(v, Mapping):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _torch_to_numpy(t: Any) -> np.ndarray:
    t = t.detach().cpu()
    name = str(t.dtype).removeprefix("torch.")
    special = {"bfloat16": ("int16", ml_dtypes.bfloat16), "float8_e4m3fn": ("uint8", ml_dtypes.float8_e4m3fn),
               "float8_e5m2": ("uint8", ml_dtypes.float8_e5m2)}
    if name in special:
        raw, dtype = special[name]
        import torch  # the tensor's own module: torch is installed

        return t.view(getattr(torch, raw)).numpy().view(dtype)
    return t.numpy()


def as_numpy(value: Any, key: str) -> np.ndarray:
    """A numpy, jax or torch array (or a Python number) as a numpy array.

    Args:
        value: the value.
        key: its name, for the error.

    Returns:
        A numpy array (no copy where the value is already one).

    Raises:
        LoadError: the value is not an array.

    >>> as_numpy(1.5, "x").dtype
    dtype('float64')
    >>> as_numpy("text", "x")
    Traceback (most recent call last):
    axon.pretrained.report.LoadError: 'x' is a str, not an array
    """
    if isinstance(value, np.ndarray):
        return value
    if type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach"):
        return _torch_to_numpy(value)
    if (hasattr(value, "shape") and hasattr(value, "dtype")) or isinstance(value, (bool, int, float, np.generic)):
        return np.asarray(value)
    raise LoadError(f"{key!r} is a {type(value).__name__}, not an array")


class ArraySource(Source):
    """A dict of arrays (numpy, jax or torch; nested dicts are joined with ``"."``)."""

    def __init__(self, tensors: Mapping[str, Any], name: str = "the dict of arrays"):
        self.name = name
        self._tensors = dict(_flatten(tensors))

    def names(self) -> list[str]:
        """The keys of the dict (nested keys joined with ``"."``).

        Returns:
            A list of strings.

        >>> ArraySource({"a": {"b": 1}}).names()
        ['a.b']
        """
        return list(self._tensors)

    def __contains__(self, key: object) -> bool:
        return key in self._tensors

    def read(self, key: str) -> np.ndarray:
        """The value under ``key`` as a numpy array.

        Args:
            key: a key from :meth:`names`.

        Returns:
            The array.

        Raises:
            KeyError: an unknown key.
            LoadError: the value is not an array.

        >>> ArraySource({"a": [1, 2]}).read("a")
        Traceback (most recent call last):
        axon.pretrained.report.LoadError: 'a' is a list, not an array
        """
        if key not in self._tensors:
            raise KeyError(f"{self.name} has no tensor {key!r}")
        return as_numpy(self._tensors[key], key)


class SafetensorsSource(Source):
    """One safetensors file: the header is read and checked when opened, each tensor is
    read from disk by :meth:`read`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.name = str(self.path)
        self._entries, self._data_start = _read_header(self.path)

    def names(self) -> list[str]:
        """The tensor names in the file, in the order of their data.

        Returns:
            A list of strings.

        >>> import tempfile, safetensors.numpy
        >>> path = tempfile.mkdtemp() + "/w.safetensors"
        >>> safetensors.numpy.save_file({"b": np.zeros(1), "a": np.zeros(2)}, path)
        >>> SafetensorsSource(path).names()
        ['a', 'b']
        """
        return list(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def read(self, key: str) -> np.ndarray:
        """Reads one tensor from the file.

        Args:
            key: a name from :meth:`names`.

        Returns:
            A new numpy array.

        Raises:
            KeyError: an unknown key.
            LoadError: the file ends before the tensor's data.

        >>> import tempfile, safetensors.numpy
        >>> path = tempfile.mkdtemp() + "/w.safetensors"
        >>> safetensors.numpy.save_file({"w": np.arange(3, dtype=np.int32)}, path)
        >>> SafetensorsSource(path).read("w").tolist()
        [0, 1, 2]
        """
        if key not in self._entries:
            raise KeyError(f"{self.name} has no tensor {key!r}")
        dtype, shape, begin, end = self._entries[key]
        out = np.empty(shape, dtype)
        with open(self.path, "rb") as f:
            f.seek(self._data_start + begin)
            view = memoryview(out.reshape(-1).view(np.uint8)) if out.size else memoryview(b"")
            got = f.readinto(view) if out.size else 0
        if got != end - begin:
            raise LoadError(f"{self.name}: the file ends inside tensor {key!r} (read {got} of {end - begin} bytes)")
        return out


def _read_header(path: Path) -> tuple[dict[str, tuple[np.dtype, tuple[int, ...], int, int]], int]:
    where = str(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise LoadError(f"{where}: not a safetensors file (only {len(head)} bytes)")
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER or 8 + n > size:
            raise LoadError(f"{where}: not a safetensors file (header length {n} for a file of {size} bytes)")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LoadError(f"{where}: not a safetensors file (its header is not JSON: {e})") from None
    if not isinstance(header, dict):
        raise LoadError(f"{where}: not a safetensors file (its header is not a JSON object)")
    data_size = size - 8 - n
    entries = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype = SAFETENSORS_DTYPES[info["dtype"]]
            shape = tuple(info["shape"])
            begin, end = info["data_offsets"]
            ok = all(isinstance(d, int) and d >= 0 for d in (*shape, begin, end))
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise LoadError(f"{where}: tensor {key!r} has an invalid header entry {info!r}")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if not begin <= end <= data_size or end - begin != nbytes:
            raise LoadError(
                f"{where}: tensor {key!r} ({info['dtype']} {list(shape)}, {nbytes} bytes) has data offsets "
                f"[{begin}, {end}] that do not fit its size or the file's {data_size} data bytes"
            )
        entries[key] = (dtype, shape, begin, end)
    entries = dict(sorted(entries.items(), key=lambda kv: kv[1][2]))
    return entries, 8 + n


def _is_torch_file(path: Path) -> bool:
    with open(path, "rb") as f:
        magic = f.read(4)
    return magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80"


def _unpickler_reason(error: Exception) -> str:
    """The line of torch's weights-only error that says what was refused (its advice to load
    with ``weights_only=False`` is left out: that would run the file's code)."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        reason = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
        reason = " ".join(reason.split(". Please use", 1)[0].split())
        if reason:
            return reason
    return " ".join(text.split()[:12]) or type(error).__name__


class TorchSource(ArraySource):
    """A torch ``state_dict`` file (``.bin``/``.pt``), read with ``torch.load(weights_only=True)``,
    memory-mapped where the file's format allows it."""

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        torch = require(
            "torch", extra="torch", feature=f"axon.pretrained.load_weights (reading the torch checkpoint {path})"
        )
        try:
            try:
                obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:
                if "mmap" not in str(e):
                    raise
                obj = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
        except pickle.UnpicklingError as e:
            raise LoadError(
                f"{path}: refused: the file holds objects other than tensors and plain containers, which "
                f"torch.load(weights_only=True) does not load (nothing from the file was executed): {_unpickler_reason(e)}"
            ) from None
        if not isinstance(obj, Mapping):
            raise LoadError(f"{path}: expected a state dict (a dict of tensors), got a {type(obj).__name__}")
        self.path = path
        super().__init__(obj, name=str(path))


class ShardedSource(Source):
    """A checkpoint split into several files by an index (``model.safetensors.index.json`` or
    ``pytorch_model.bin.index.json``: ``{"weight_map": {key: file}}``); each shard is opened
    when one of its tensors is first read."""

    def __init__(self, index: str | os.PathLike):
        self.path = Path(index)
        self.name = str(self.path)
        try:
            weight_map = json.loads(self.path.read_text())["weight_map"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise LoadError(f"{self.name}: not a checkpoint index (expected JSON with a 'weight_map'): {e}") from None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise LoadError(f"{self.name}: expected 'weight_map' to map tensor names to file names")
        folder = self.path.parent
        self._files = {}
        for file in dict.fromkeys(weight_map.values()):
            shard = (folder / file).resolve()
            if shard.parent != folder.resolve():
                raise LoadError(f"{self.name}: shard {file!r} is not a file next to the index")
            if not shard.is_file():
                raise LoadError(f"{self.name}: shard {file!r} is missing (looked for {shard})")
            self._files[file] = shard
        self._map = dict(sorted(weight_map.items(), key=lambda kv: list(self._files).index(kv[1])))
        self._open: tuple[str, Source] | None = None

    def names(self) -> list[str]:
        """The keys of the index's weight map, grouped by shard.

        Returns:
            A list of strings.

        >>> import json, tempfile, safetensors.numpy
        >>> folder = tempfile.mkdtemp()
        >>> safetensors.numpy.save_file({"b": np.ones(2)}, folder + "/part-2.safetensors")
        >>> safetensors.numpy.save_file({"a": np.zeros(1)}, folder + "/part-1.safetensors")
        >>> index = {"weight_map": {"b": "part-2.safetensors", "a": "part-1.safetensors"}}
        >>> _ = open(folder + "/model.safetensors.index.json", "w").write(json.dumps(index))
        >>> ShardedSource(folder + "/model.safetensors.index.json").names()
        ['b', 'a']
        """
        return list(self._map)

    def _shard(self, file: str) -> Source:
        if self._open is None or self._open[0] != file:
            self._open = (file, _open_file(self._files[file]))
        return self._open[1]

    def read(self, key: str) -> np.ndarray:
        """One tensor, from the shard the index names for it.

        Args:
            key: a key from :meth:`names`.

        Returns:
            The array.

        Raises:
            KeyError: an unknown key.
            LoadError: the shard does not hold the tensor.

        >>> import json, tempfile, safetensors.numpy
        >>> folder = tempfile.mkdtemp()
        >>> safetensors.numpy.save_file({"w": np.arange(3.0)}, folder + "/part-1.safetensors")
        >>> _ = open(folder + "/index.json", "w").write(json.dumps({"weight_map": {"w": "part-1.safetensors"}}))
        >>> ShardedSource(folder + "/index.json").read("w").tolist()
        [0.0, 1.0, 2.0]
        """
        if key not in self._map:
            raise KeyError(f"{self.name} has no tensor {key!r}")
        shard = self._shard(self._map[key])
        if key not in shard:
            raise LoadError(f"{self.name}: the index puts {key!r} in {self._map[key]!r}, which does not hold it")
        return shard.read(key)


def _open_file(path: Path) -> Source:
    if path.suffix == ".json":
        return ShardedSource(path)
    if path.suffix == ".safetensors" or not _is_torch_file(path):
        return SafetensorsSource(path)
    return TorchSource(path)


def open_source(source: Any) -> Source:
    """The :class:`Source` for a checkpoint: a safetensors file, a checkpoint index
    (``*.index.json``), a folder holding one of ``model.safetensors.index.json``,
    ``model.safetensors``, ``pytorch_model.bin.index.json``, ``pytorch_model.bin``, a torch
    ``.bin``/``.pt`` file, or a dict of arrays.

    Args:
        source: a path (str or ``os.PathLike``), a dict of arrays, or a ``Source``.

    Returns:
        A ``Source``.

    Raises:
        LoadError: a missing file, or a folder without a known checkpoint file.
        ImportError: a torch file without torch installed.

    >>> open_source("/no/such/file.safetensors")
    Traceback (most recent call last):
    axon.pretrained.report.LoadError: no checkpoint at /no/such/file.safetensors
    """
    if isinstance(source, Source):
        return source
    if isinstance(source, Mapping):
        return ArraySource(source)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"expected the source to be a path or a dict of arrays, got {type(source).__name__}"
        )
    path = Path(source)
    if path.is_dir():
        for name in (*_INDEX_NAMES, *_SINGLE_NAMES):
            if (path / name).is_file():
                return _open_file(path / name)
        raise LoadError(f"{path}: a folder without any of {', '.join((*_INDEX_NAMES, *_SINGLE_NAMES))}")
    if not path.is_file():
        raise LoadError(f"no checkpoint at {path}")
    return _open_file(path)
