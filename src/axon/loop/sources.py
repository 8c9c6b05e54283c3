"""Data from where users keep it, as ``(inputs, targets)`` batches for ``Loop.run``.

* :class:`ArraySource`: random access to the examples of ``(inputs, targets)`` arrays, one
  example per index; a ``grain`` data source (``grain.MapDataset.source(ArraySource(...))``
  or ``grain.DataLoader(data_source=ArraySource(...), ...)``) and a torch map-style
  ``Dataset``. It reads only the rows asked for, so it serves memory-mapped arrays larger
  than memory.
* :class:`DictBatches`: batches that are dicts of columns (Hugging Face ``datasets``, a
  ``grain`` pipeline of dict records, anything yielding ``{column: array}``) mapped to
  ``(inputs, targets)``: inputs by the model's input names, targets as one array or a tuple.

Arrays with ``batch_size=`` (memory maps included), torch ``DataLoader``s and ``grain``
datasets of ``(inputs, targets)`` tuples need no adapter: pass them to ``run`` as they are.

>>> import numpy as np
>>> source = ArraySource({"x": np.arange(6.0).reshape(3, 2)}, np.arange(3))
>>> len(source), source[1]
(3, ({'x': array([2., 3.])}, np.int64(1)))
>>> batches = DictBatches([{"pixels": np.ones((2, 4)), "label": np.zeros(2)}], inputs={"image": "pixels"}, targets="label")
>>> [(sorted(x), y.shape) for x, y in batches]
[(['image'], (2,))]
"""

from __future__ import annotations

import collections.abc as cabc
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from axon.loop.data import _leading

__all__ = ["ArraySource", "DictBatches"]


class ArraySource:
    """Random access to the examples of ``(inputs, targets)`` arrays: ``source[i]`` is
    ``(inputs[i], targets[i])`` (a dict of inputs gives a dict), ``len(source)`` the number of
    examples.

    It follows grain's ``RandomAccessDataSource`` protocol and torch's map-style
    ``Dataset`` protocol, and indexes the arrays one row at a time, so ``numpy.memmap``
    arrays (or HDF5/zarr datasets) are read from disk only where a batch needs them.

    Args:
        inputs: an array, or a dict of arrays by the model's input names.
        targets: an array, or a tuple/dict of arrays (one per output).

    Raises:
        ValueError: the arrays do not all have the same number of examples.

    >>> import numpy as np
    >>> source = ArraySource(np.arange(8.0).reshape(4, 2), np.arange(4))
    >>> len(source), source[3]
    (4, (array([6., 7.]), np.int64(3)))
    """

    def __init__(self, inputs: Any, targets: Any) -> None:
        self.inputs = inputs
        self.targets = targets
        self.size = _leading((inputs, targets))

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        index = int(index)
        if not -self.size <= index < self.size:
            raise IndexError(f"ArraySource: index {index} is out of range for {self.size} examples")
        return jax.tree_util.tree_map(lambda a: a[index], (self.inputs, self.targets))

    def __repr__(self) -> str:
        return f"ArraySource({self.size} examples)"


def _column(batch: Mapping[str, Any], name: str, role: str) -> Any:
    try:
        return batch[name]
    except KeyError:
        raise KeyError(
            f"DictBatches: the {role} column {name!r} is not in the batch; its columns are {sorted(batch)}"
        ) from None


class DictBatches:
    """Batches of columns (``{column: array}``) as ``(inputs, targets)`` pairs.

    Re-iterable: each pass over it (each epoch) iterates ``data`` again. With a Hugging
    Face ``datasets.Dataset`` and ``batch_size`` the batches are
    ``data.iter(batch_size=batch_size, drop_last_batch=drop_remainder)`` (format the dataset
    with ``.with_format("numpy")`` for NumPy columns); otherwise ``data`` is iterated as it
    is and must yield dict batches.

    Args:
        data: a re-iterable of dict batches, or a ``datasets.Dataset`` with ``batch_size``.
        inputs: the input column(s): a column name (one input array), a list of names (a
            dict keyed by those names) or a dict ``{model input name: column}``.
        targets: the target column(s): a column name (one array) or a list of names (a
            tuple of arrays, one per output).
        batch_size: batch a ``datasets.Dataset`` (one with an ``iter`` method) this size.
        drop_remainder: with ``batch_size``, drop the last, smaller batch.

    Raises:
        TypeError: ``inputs`` or ``targets`` of the wrong kind, or ``batch_size`` for data
            without an ``iter(batch_size=...)`` method.
        KeyError: (when iterated) a column that is not in a batch, naming the batch's columns.

    >>> import numpy as np
    >>> rows = [{"a": np.ones((2, 3)), "b": np.zeros((2, 1)), "y": np.arange(2)}]
    >>> x, y = next(iter(DictBatches(rows, inputs=["a", "b"], targets="y")))
    >>> {k: v.shape for k, v in x.items()}, y.tolist()
    ({'a': (2, 3), 'b': (2, 1)}, [0, 1])
    """

    def __init__(
        self,
        data: Any,
        *,
        inputs: str | Sequence[str] | Mapping[str, str],
        targets: str | Sequence[str],
        batch_size: int | None = None,
        drop_remainder: bool = False,
    ) -> None:
        self.data = data
        self.inputs = self._check_columns(inputs, "inputs")
        self.targets = self._check_columns(targets, "targets")
        if isinstance(targets, Mapping):
            raise TypeError("DictBatches: expected targets to be a column name or a list of names, got a dict")
        if batch_size is not None:
            if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
                raise TypeError(f"DictBatches: expected batch_size to be a positive int, got {batch_size!r}")
            if not callable(getattr(data, "iter", None)):
                raise TypeError(
                    f"DictBatches: batch_size needs a datasets.Dataset (with an iter(batch_size=...) method), got "
                    f"{type(data).__name__}; batch the data yourself or pass batch_size=None"
                )
        elif not isinstance(data, cabc.Iterable):
            raise TypeError(f"DictBatches: expected data to be an iterable of dict batches, got {type(data).__name__}")
        self.batch_size = batch_size
        self.drop_remainder = drop_remainder

    @staticmethod
    def _check_columns(columns: Any, role: str) -> Any:
        if isinstance(columns, str):
            return columns
        if isinstance(columns, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in columns.items()):
            return dict(columns)
        if isinstance(columns, Sequence) and columns and all(isinstance(c, str) for c in columns):
            return list(columns)
        raise TypeError(
            f"DictBatches: expected {role} to be a column name, a list of names or a dict of names, got {columns!r}"
        )

    def __len__(self) -> int:
        if not isinstance(self.data, cabc.Sized):
            raise TypeError("DictBatches: the number of batches is unknown")
        if self.batch_size is None:
            return len(self.data)
        n = len(self.data)
        return n // self.batch_size if self.drop_remainder else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        if self.batch_size is not None:
            batches = self.data.iter(batch_size=self.batch_size, drop_last_batch=self.drop_remainder)
        else:
            batches = iter(self.data)
        for batch in batches:
            if not isinstance(batch, Mapping):
                raise TypeError(f"DictBatches: expected each batch to be a dict of columns, got {type(batch).__name__}")
            yield self._inputs(batch), self._targets(batch)

    def _inputs(self, batch: Mapping[str, Any]) -> Any:
        if isinstance(self.inputs, str):
            return np.asarray(_column(batch, self.inputs, "input"))
        if isinstance(self.inputs, dict):
            return {name: np.asarray(_column(batch, col, "input")) for name, col in self.inputs.items()}
        return {col: np.asarray(_column(batch, col, "input")) for col in self.inputs}

    def _targets(self, batch: Mapping[str, Any]) -> Any:
        if isinstance(self.targets, str):
            return np.asarray(_column(batch, self.targets, "target"))
        return tuple(np.asarray(_column(batch, col, "target")) for col in self.targets)

    def __repr__(self) -> str:
        return f"DictBatches(inputs={self.inputs!r}, targets={self.targets!r}, batch_size={self.batch_size})"
