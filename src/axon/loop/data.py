"""Feeding data to a loop: re-iterable batch sources, arrays with ``batch_size``, and
reading chunks of batches one chunk ahead without losing or over-reading any.

>>> import numpy as np
>>> src = DataSource((np.zeros((10, 2)), np.zeros(10)), batch_size=4, shuffle=False, seed=0)
>>> [b[0].shape[0] for b in src.epoch(0)]
[4, 4, 2]
"""

from __future__ import annotations

import collections.abc as cabc
import functools
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

__all__ = ["BatchStream", "DataSource", "check_batch", "read_chunks"]


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _leading(x: Any) -> int:
    leaves = jax.tree_util.tree_leaves(x)
    if not leaves:
        raise ValueError("data: the inputs contain no arrays")
    sizes = {int(np.shape(leaf)[0]) for leaf in leaves}
    if len(sizes) != 1:
        raise ValueError(f"data: all arrays must have the same number of examples, got sizes {sorted(sizes)}")
    return sizes.pop()


class DataSource:
    """Batches for each epoch from one of:

    * arrays ``(inputs, targets)`` (``inputs`` an array or a dict of arrays) with
      ``batch_size`` (and ``shuffle``, reshuffled every epoch from ``seed``);
    * a re-iterable of ``(inputs, targets)`` batches (a list, a torch ``DataLoader``, a
      grain or tf.data dataset);
    * a function returning a fresh iterator (a generator factory);
    * a one-shot iterator or generator (an endless one with ``iterations=``, as Axon's
      ``Stream.repeatedly``): one :class:`BatchStream` over it serves every epoch, each
      epoch going on where the last one stopped; the loop never closes it and never reads a
      batch it does not use.
    """

    def __init__(self, data: Any, *, batch_size: int | None = None, shuffle: bool = False, seed: int = 0):
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.arrays = batch_size is not None
        self.one_shot = False
        if self.arrays:
            if not isinstance(batch_size, int) or batch_size < 1:
                raise ValueError(f"run: expected batch_size to be a positive int, got {batch_size!r}")
            if not (isinstance(data, tuple) and len(data) == 2):
                raise ValueError("run: with batch_size, data must be a pair (inputs, targets) of arrays")
            self.size = _leading(data[0])
            if _leading(data[1]) != self.size:
                raise ValueError(
                    f"run: inputs have {self.size} examples but targets have {_leading(data[1])}"
                )
        elif isinstance(data, cabc.Iterator):
            self.one_shot = True
            self._stream = BatchStream(data)
        elif not (callable(data) or isinstance(data, cabc.Iterable)):
            raise TypeError(
                "run: expected data to be an iterable of (inputs, targets) batches, a function returning "
                f"an iterator, or arrays with batch_size=; got {type(data).__name__}"
            )
        elif shuffle:
            raise ValueError("run: shuffle=True needs arrays with batch_size=; shuffle your own iterable instead")

    def __len__(self) -> int:
        if self.arrays:
            return -(-self.size // self.batch_size)
        if isinstance(self.data, cabc.Sized):
            return len(self.data)
        raise TypeError("the number of batches is unknown")

    def num_batches(self) -> int | None:
        try:
            return len(self)
        except TypeError:
            return None

    def epoch(self, epoch: int) -> BatchStream:
        """The batches of one epoch (for a one-shot iterator: the one stream over it)."""
        if self.one_shot:
            return self._stream
        if self.arrays:
            return BatchStream(self._array_batches(epoch))
        if callable(self.data) and not isinstance(self.data, cabc.Iterable):
            it = self.data()
            if not isinstance(it, cabc.Iterable):
                raise TypeError(f"run: the data function returned {type(it).__name__}, expected an iterator of batches")
            return BatchStream(iter(it))
        return BatchStream(iter(self.data))

    def _array_batches(self, epoch: int) -> Iterator[Any]:
        inputs, targets = self.data
        order = np.arange(self.size)
        if self.shuffle:
            order = np.random.default_rng((self.seed, epoch)).permutation(self.size)
        for start in range(0, self.size, self.batch_size):
            idx = order[start : start + self.batch_size]
            if self.shuffle:
                take: Callable[[Any], Any] = functools.partial(_gather, idx=idx)
            else:
                take = functools.partial(_slice, start=start, stop=start + self.batch_size)
            yield jax.tree_util.tree_map(take, inputs), jax.tree_util.tree_map(take, targets)


class BatchStream:
    """An iterator over batches that can take back batches read but not used (``unread``),
    so that a batch read ahead is not lost when an epoch stops early. It never closes the
    iterator it reads from, and counts the batches used (``used``).

    >>> stream = BatchStream(iter([1, 2, 3]))
    >>> next(stream), next(stream)
    (1, 2)
    >>> stream.unread([2]); list(stream), stream.used
    ([2, 3], 3)
    """

    def __init__(self, iterator: Iterator[Any]) -> None:
        self._iterator = iterator
        self._back: list[Any] = []
        self.used = 0

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Any:
        batch = self._back.pop() if self._back else next(self._iterator)
        self.used += 1
        return batch

    def unread(self, batches: list[Any]) -> None:
        """Give back ``batches`` (in the order they were read): they are read again next."""
        self._back.extend(reversed(batches))
        self.used -= len(batches)


def _gather(a: Any, idx: np.ndarray) -> Any:
    """The rows ``idx`` of ``a``, reading only those rows: a NumPy array (a memory map
    too) is indexed directly; another array-like (an HDF5 or zarr dataset) with the rows in
    increasing order, then put back in ``idx``'s order."""
    if isinstance(a, np.ndarray):
        return a[idx]
    order = np.argsort(idx, kind="stable")
    rows = np.asarray(a[idx[order]])
    out = np.empty_like(rows)
    out[order] = rows
    return out


def _slice(a: Any, start: int, stop: int) -> Any:
    return a[start:stop]


def check_batch(batch: Any, where: str) -> tuple[Any, Any]:
    """A batch must be a pair ``(inputs, targets)``."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError(
        f"{where}: each batch must be a pair (inputs, targets) where inputs is an array or a dict by input name; "
        f"got {type(batch).__name__}" + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
    )


def chunk_reader(stream: BatchStream, k: int, limit: int | None) -> Callable[[], list[Any]]:
    """A function returning the next chunk of up to ``k`` batches of ``stream``, never more
    than ``limit`` batches over all calls (checked before each read, so exactly the batches
    returned are taken from the stream); an empty list at the end.

    >>> read = chunk_reader(BatchStream(iter(range(5))), 2, 3)
    >>> read(), read(), read()
    ([0, 1], [2], [])
    """
    left = [limit]

    def read() -> list[Any]:
        chunk: list[Any] = []
        while len(chunk) < k and (left[0] is None or left[0] > 0):
            try:
                chunk.append(next(stream))
            except StopIteration:
                break
            if left[0] is not None:
                left[0] -= 1
        return chunk

    return read


def read_chunks(stream: BatchStream, k: int, limit: int | None, convert: Callable[[list[Any]], Any]) -> Iterator[Any]:
    """Chunks of up to ``k`` batches from ``stream`` (at most ``limit`` batches in all),
    each converted with ``convert(batches)`` one chunk before it is used (the next chunk is
    sent to the device while the current one runs).

    Exactly the batches used are read: the cap is checked before reading, and a chunk read
    ahead but not used (the epoch stopped early) goes back to the stream.

    Args:
        stream: where the batches come from.
        k: batches per chunk.
        limit: the most batches to read (``None``: until the stream ends).
        convert: makes a chunk ready for the device.

    Returns:
        An iterator of converted chunks.

    >>> stream = BatchStream(iter(range(10)))
    >>> chunks = read_chunks(stream, 2, 5, list)
    >>> next(chunks), next(chunks)
    ([0, 1], [2, 3])
    >>> chunks.close(); stream.used, next(stream)
    (4, 4)
    """
    read = chunk_reader(stream, k, limit)
    pending = read()
    try:
        ready = convert(pending) if pending else None
        while pending:
            current = ready
            pending = read()
            ready = convert(pending) if pending else None
            yield current
    finally:
        if pending:
            stream.unread(pending)
