"""Reading the next batches on a background thread while the current step runs
(``Loop.run(..., prefetch=n)``).

One thread per epoch reads chunks of batches from the epoch's :class:`BatchStream`
(as :func:`axon.loop.data.read_chunks` does: never past the epoch's cap), makes
each ready for the device (host arrays, input checks, stacking, ``device_put``) and puts it
in a queue of at most ``depth`` chunks. The loop takes chunks from the queue in order, so a
run gives the same batches in the same order, and the same results, with or without
prefetching. An exception raised while reading or preparing a batch is raised in the
loop, where the batch would have been used. When the epoch ends early (a handler halts
it, or an error), the thread is stopped and joined, and every batch it read but the loop
did not use goes back to the stream in order (a one-shot iterator loses none).

>>> from axon.loop.data import BatchStream, chunk_reader
>>> stream = BatchStream(iter(range(10)))
>>> chunks = prefetch_chunks(stream, 2, None, list, depth=2)
>>> next(chunks), next(chunks)
([0, 1], [2, 3])
>>> chunks.close(); stream.used, next(stream)
(4, 4)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

from axon.loop.data import BatchStream, chunk_reader

__all__ = ["check_prefetch", "default_prefetch", "prefetch_chunks"]

_POLL_SECONDS = 0.05  # how often a blocked reader looks whether it should stop
_INTERRUPT_JOIN_SECONDS = 1.0  # how long an interrupted loop waits for the reader


class _Failed:
    """An exception raised in the reader, carried to the loop."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


def check_prefetch(prefetch: Any) -> int | None:
    """``prefetch`` as a non-negative int, or ``None`` (chosen per run by
    :func:`default_prefetch`); ``ValueError`` otherwise.

    >>> check_prefetch(2), check_prefetch(None)
    (2, None)
    """
    if prefetch is None:
        return None
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
        raise ValueError(
            f"run: expected prefetch to be a non-negative int (0: no background reading) or None (automatic), got {prefetch!r}"
        )
    return prefetch


def default_prefetch(data: Any, *, arrays: bool, backend: str, distributed: bool) -> int:
    """The depth ``prefetch=None`` means for a run: 0 (no reader thread) when the batches are
    already in host memory and the device is the CPU, else 2.

    On the CPU backend a step takes NumPy batches as they are, so a reader thread can only
    hide reading and preparing batches; for arrays in memory (``(x, y)`` with
    ``batch_size``, not memory-mapped) or a list/tuple of batches that is next to nothing,
    and handing each batch between two threads cost ~4% of an MLP step
    (``benchmarks/README.md``). Generators, data loaders, memory maps, accelerators and
    distributed runs keep the thread.

    Args:
        data: the data given to ``run``.
        arrays: whether it is ``(inputs, targets)`` arrays with ``batch_size``.
        backend: ``jax.default_backend()``.
        distributed: whether batches are laid out over several devices.

    Returns:
        The number of chunks to read ahead.

    >>> import numpy as np
    >>> x = np.zeros((8, 2))
    >>> default_prefetch((x, x), arrays=True, backend="cpu", distributed=False)
    0
    >>> default_prefetch(iter([]), arrays=False, backend="cpu", distributed=False)
    2
    >>> default_prefetch((x, x), arrays=True, backend="gpu", distributed=False)
    2
    """
    if backend != "cpu" or distributed:
        return 2
    if arrays:
        leaves = jax.tree_util.tree_leaves(data)
        return 2 if any(isinstance(leaf, np.memmap) for leaf in leaves) else 0
    return 0 if isinstance(data, (list, tuple)) else 2


def prefetch_chunks(
    stream: BatchStream, k: int, limit: int | None, convert: Callable[[list[Any]], Any], *, depth: int
) -> Iterator[Any]:
    """Chunks of up to ``k`` batches from ``stream`` (at most ``limit`` in all), each
    converted with ``convert(batches)`` on a background thread, up to ``depth`` chunks
    ahead of the one in use.

    Close the iterator (``contextlib.closing``) when done: that stops and joins the thread
    and gives the batches read but not used back to ``stream``.

    Args:
        stream: where the batches come from.
        k: batches per chunk.
        limit: the most batches to read (``None``: until the stream ends).
        convert: makes a chunk ready for the device (runs on the thread).
        depth: the most chunks waiting in the queue (at least 1).

    Returns:
        An iterator of converted chunks, in the stream's order.

    Raises:
        Exception: whatever reading the stream or ``convert`` raised, when the chunk it
            concerned would have been used.
    """
    if depth < 1:
        raise ValueError(f"prefetch_chunks: expected depth >= 1, got {depth}")
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    held: list[list[Any]] = []  # a chunk the reader took but could not queue (stopped)

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    read = chunk_reader(stream, k, limit)

    def reader() -> None:
        try:
            while not stop.is_set():
                chunk = read()
                if not chunk:
                    put(_DONE)
                    return
                if not put((chunk, convert(chunk))):
                    held.append(chunk)
                    return
        except BaseException as e:  # carried to the loop, raised there
            put(_Failed(e))
        finally:
            if held:  # read but never queued: it goes back before the queued ones do
                stream.unread(held[0])

    thread = threading.Thread(target=reader, name="axon-prefetch", daemon=True)
    thread.start()
    interrupted = False
    try:
        while True:
            try:
                item = ready.get()
            except BaseException:  # Ctrl-C while waiting for data
                interrupted = True
                raise
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item[1]
    finally:
        stop.set()
        if interrupted:
            # the reader may be blocked inside the user's data source: do not wait for it
            # (a daemon thread), and give nothing back: the run is over
            thread.join(_INTERRUPT_JOIN_SECONDS)
        else:
            thread.join()
            _give_back(stream, ready)


def _give_back(stream: BatchStream, ready: queue.Queue[Any]) -> None:
    """Put the batches of the chunks still queued back into ``stream``, in order."""
    left: list[Any] = []
    while True:
        try:
            item = ready.get_nowait()
        except queue.Empty:
            break
        if isinstance(item, tuple):
            left.extend(item[0])
    if left:
        stream.unread(left)
