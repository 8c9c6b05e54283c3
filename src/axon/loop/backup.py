"""Preemption-safe runs (``Loop.backup_and_restore``): the run backs itself up into a folder
and, started again with the same folder, resumes from the latest backup.

A backup is a loop-state checkpoint (:mod:`axon.loop.checkpoint`, written atomically) named
after the position the run resumes at: ``backup_<epoch>_<iteration>.ckpt`` (the end of
epoch ``e`` is ``backup_<e+1>_0``; a backup taken after ``n`` iterations of epoch ``e`` is
``backup_<e>_<n>``). It holds the step state (parameters, layer state with the dropout
keys, optimizer and loss-scale state, the moving average), the counters, the metrics
history, the handlers' memory (early stopping, plateau, checkpoint bests) and, mid-epoch,
the epoch's metric accumulators. Resuming skips the batches of the interrupted epoch the
backup had already used, so a run that reads the same batches for an epoch each time
(a list, arrays with ``batch_size`` -- shuffled from ``seed`` and the epoch --, a function
returning a fresh iterator) ends bit-identical to one that was never interrupted.

A signal (``SIGTERM`` and ``SIGINT`` by default) no longer stops the process at once: the
run finishes the step under way, writes a backup, ends (its ``halted`` handlers run, logs
are closed), puts the previous signal handlers back and then acts on the signal as the
process would have (``SystemExit(128 + signal)`` for the default ``SIGTERM`` handler,
``KeyboardInterrupt`` for ``SIGINT``). A second signal of the same kind acts at once.

>>> import os, tempfile, jax.numpy as jnp, axon
>>> folder = tempfile.mkdtemp()
>>> counter = axon.loop.loop(lambda s, b: s + 1, lambda b, init: jnp.zeros(()))
>>> first = counter.backup_and_restore(folder).run([0] * 3, epochs=2, progress=False)
>>> os.listdir(folder)
['backup_00002_0000000.ckpt']
>>> again = counter.backup_and_restore(folder).run([0] * 3, epochs=3, progress=False)
>>> int(again.step_state), again.epoch  # resumed after epoch 1: one more epoch, 3 steps
(9, 3)
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal as signal_module
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from axon._host import writes_files
from axon.loop.checkpoint import (
    RawStepState,
    load_checkpoint,
    restore_step_state,
    serialize_state,
    write_atomic,
)
from axon.loop.state import LoopState
from axon.serialization.errors import SerializationError

__all__ = ["BackupConfig", "BackupMismatchError", "BackupSession", "backup_files", "backup_config"]

Every = Literal["epoch"] | int
_FILE = re.compile(r"^backup_(\d+)_(\d+)\.ckpt$")
_META = "backup"  # the handler-metadata key of a mid-epoch backup's extra counters
_SIGNALS = ("SIGTERM", "SIGINT")


class BackupMismatchError(ValueError):
    """The backup folder holds the state of a different loop (another model, optimizer or
    set of metrics); the message names the folder, the file and the differences."""


@dataclasses.dataclass(frozen=True)
class BackupConfig:
    """The options of ``Loop.backup_and_restore``.

    Attributes:
        path: the backup folder.
        keep: how many backups the folder keeps (the latest ones).
        every: ``"epoch"``: back up at each epoch's end; an int ``n``: also every ``n``
            iterations within an epoch.
        signals: the names of the signals that stop the run at the next step's end.
    """

    path: str
    keep: int = 1
    every: Every = "epoch"
    signals: tuple[str, ...] = _SIGNALS


def backup_config(path: Any, keep: Any, every: Any, signals: Any) -> BackupConfig:
    """Check ``Loop.backup_and_restore``'s options.

    Args:
        path: the folder (a path; a file there is an error when the run starts).
        keep: a positive int.
        every: ``"epoch"`` or a positive int.
        signals: signal names (``"SIGTERM"``, ``"SIGINT"``, ...), possibly empty.

    Returns:
        The config.

    Raises:
        TypeError: ``path`` is not a path.
        ValueError: a bad ``keep``, ``every`` or signal name.

    >>> backup_config("runs/a", 2, 100, ["SIGTERM"])
    BackupConfig(path='runs/a', keep=2, every=100, signals=('SIGTERM',))
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"backup_and_restore: expected path to be a folder path, got {path!r}")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"backup_and_restore: expected keep to be a positive int, got {keep!r}")
    if not (every == "epoch" or (isinstance(every, int) and not isinstance(every, bool) and every > 0)):
        raise ValueError(f"backup_and_restore: expected every to be 'epoch' or a positive int, got {every!r}")
    if isinstance(signals, str):
        signals = (signals,)
    names = tuple(signals)
    for name in names:
        if not (isinstance(name, str) and name.startswith("SIG") and isinstance(getattr(signal_module, name, None), int)):
            raise ValueError(f"backup_and_restore: unknown signal {name!r}; expected names such as 'SIGTERM', 'SIGINT'")
    return BackupConfig(os.fspath(path), keep, every, names)


def backup_files(path: str) -> list[tuple[tuple[int, int], str]]:
    """The backups in ``path``: ``((epoch, iteration), file)`` from the earliest to the
    latest (an empty list when the folder is missing).

    >>> backup_files("/nonexistent-folder")
    []
    """
    if not os.path.isdir(path):
        return []
    found = []
    for name in os.listdir(path):
        match = _FILE.match(name)
        if match:
            found.append(((int(match[1]), int(match[2])), os.path.join(path, name)))
    return sorted(found)


def _file_name(epoch: int, iteration: int) -> str:
    return f"backup_{epoch:05d}_{iteration:07d}.ckpt"


class BackupSession:
    """One run's backups: restoring at the start, writing at epoch ends (and every ``n``
    iterations), pruning, and turning signals into a backup and a clean stop. The runner
    calls :meth:`restore` before the first step, :meth:`resume_epoch` when an epoch starts,
    :meth:`iteration_done` and :meth:`epoch_done` after each compiled call and epoch, runs
    the loop inside :meth:`handling_signals` and calls :meth:`deliver` once it is over.

    Handlers that keep arrays of their own between events (``early_stop(...,
    restore_best=True)``'s copy of the best model state) are bound methods of an object with
    ``kept()``, ``template(step_state)`` and ``restore_kept(value)``: what ``kept()`` returns
    is backed up with the step state (as its entry ``"kept/<n>"``) and given back before
    the run starts.

    Args:
        config: the options.
        handlers: the loop's handlers, ``event -> ((handler, filter), ...)``.
    """

    def __init__(self, config: BackupConfig, handlers: Mapping[str, Sequence[tuple[Any, Any]]] | None = None) -> None:
        self.config = config
        keepers: dict[int, Any] = {}
        for pairs in (handlers or {}).values():
            for handler, _ in pairs:
                owner = getattr(handler, "__self__", None)
                if owner is not None and callable(getattr(owner, "restore_kept", None)):
                    keepers.setdefault(id(owner), owner)
        self.keepers = list(keepers.values())
        self.requested: int | None = None  # the signal number that asked to stop
        self.previous: dict[int, Any] = {}  # the handlers replaced while the loop runs
        self.active = False
        self.resume: tuple[int, int, dict[str, Any], int] | None = None  # epoch, iteration, metrics, nonfinite
        self.last_saved: tuple[int, int] | None = None
        self._mark = (-1, 0)

    # -- restoring ------------------------------------------------------------------------
    def restore(self, state: LoopState, place: Callable[[Any], Any], metric_template: dict | None = None) -> LoopState:
        """The state to start from: ``state`` (a fresh run) when the folder holds no backup,
        else the latest backup's state, checked against ``state``'s step state.

        Args:
            state: the run's initial state (its step state is the template).
            place: lays the restored step state out as the run needs (a distribution's).
            metric_template: the loop's zeroed metric accumulators (``{"values": ...}``).

        Returns:
            The state to run from (``max_epoch`` is ``state``'s: ``epochs`` counts the
            epochs of the whole run, those before the interruption included).

        Raises:
            ValueError: ``path`` is a file.
            BackupMismatchError: the backup is another loop's.
            SerializationError: the latest backup is not a readable checkpoint.
        """
        path = self.config.path
        if os.path.exists(path) and not os.path.isdir(path):
            raise ValueError(f"backup_and_restore: {path!r} is a file, expected a folder for the backups")
        files = backup_files(path)
        if not files:
            return state
        (epoch, iteration), file = files[-1]
        try:
            saved = load_checkpoint(file)
        except SerializationError as e:
            raise SerializationError(f"backup_and_restore: cannot read the latest backup {file!r}: {e}") from None
        template, kept_keys = self._template(saved, state.step_state)
        step_state = self._restored_step_state(saved, template, file)
        metadata = dict(saved.handler_metadata)
        extra = metadata.pop(_META, {})
        if iteration > 0:
            metrics = self._restored_metrics(saved, metric_template, file)
            self.resume = (epoch, iteration, metrics, int(extra.get("nonfinite", -1)))
        for i, key in kept_keys:  # everything checked: the keepers take their copies back
            self.keepers[i].restore_kept(step_state.pop(key))
        self.last_saved = (epoch, iteration)
        return LoopState(
            step_state=place(step_state),
            epoch=epoch,
            max_epoch=state.max_epoch,
            iteration=iteration,
            max_iteration=state.max_iteration,
            history=dict(saved.history),
            handler_metadata=metadata,
            times=dict(saved.times),
            event_counts=saved.event_counts,
        )

    def _template(self, saved: LoopState, step_state: Any) -> tuple[Any, list[tuple[int, str]]]:
        """The loop's step state, with the entries of the keepers the backup holds."""
        raw_keys = getattr(saved.step_state, "saved_keys", [])
        kept_keys = [(i, f"kept/{i}") for i in range(len(self.keepers))
                     if any(k.startswith(f"['kept/{i}']") for k in raw_keys)]
        if not kept_keys or not isinstance(step_state, Mapping):
            return step_state, []
        template = dict(step_state)
        for i, key in kept_keys:
            template[key] = self.keepers[i].template(step_state)
        return template, kept_keys

    def _mismatch(self, file: str, detail: str) -> BackupMismatchError:
        return BackupMismatchError(
            f"backup_and_restore: the backup {file!r} in {self.config.path!r} was written by a different loop "
            f"(another model, optimizer or metrics): {detail}. Use another folder for this run, or delete the old "
            "backups to start over"
        )

    def _restored_step_state(self, saved: LoopState, template: Any, file: str) -> Any:
        raw = saved.step_state
        if not isinstance(raw, RawStepState):  # pragma: no cover - load_checkpoint always gives one
            raise self._mismatch(file, "it holds no step state")
        flat = jax.tree_util.tree_flatten_with_path(template)[0]
        keys = [jax.tree_util.keystr(p) for p, _ in flat]
        if keys != raw.saved_keys:
            missing = sorted(set(keys) - set(raw.saved_keys))
            unexpected = sorted(set(raw.saved_keys) - set(keys))
            raise self._mismatch(file, f"this loop's state has {missing[:5]} the backup lacks, the backup has "
                                       f"{unexpected[:5]} this loop lacks")
        for key, (_, want), got in zip(keys, flat, raw.saved_leaves):
            want_shape = tuple(np.shape(want))
            want_dtype = jax.dtypes.canonicalize_dtype(getattr(want, "dtype", None) or np.result_type(want))
            if tuple(got.shape) != want_shape or jax.dtypes.canonicalize_dtype(got.dtype) != want_dtype:
                raise self._mismatch(file, f"{key} is {got.dtype}{list(got.shape)} in the backup, this loop has "
                                           f"{want_dtype}{list(want_shape)}")
        return restore_step_state(raw, template)

    def _restored_metrics(self, saved: LoopState, template: dict | None, file: str) -> dict[str, Any]:
        values = (template or {}).get("values", {})
        if sorted(values) != sorted(saved.metrics):
            raise self._mismatch(file, f"its metrics are {sorted(saved.metrics)}, this loop's are {sorted(values)}")
        return {name: jnp.asarray(saved.metrics[name], zero.dtype) for name, zero in values.items()}

    def resume_epoch(self, state: LoopState, metric_state: dict, batches: Iterator[Any]) -> tuple[dict, int]:
        """When ``state.epoch`` is the epoch a mid-epoch backup was taken in: skip the
        batches it had used, and give back its metric accumulators.

        Args:
            state: the loop state at the epoch's start (its ``iteration`` is set here).
            metric_state: the zeroed accumulators.
            batches: the epoch's batches.

        Returns:
            ``(metric_state, skipped)``: ``skipped`` is 0 when the epoch starts afresh.

        Raises:
            ValueError: the epoch has fewer batches than the backup had used.
        """
        if self.resume is None or self.resume[0] != state.epoch:
            return metric_state, 0
        epoch, iteration, metrics, nonfinite = self.resume
        self.resume = None
        for used in range(iteration):
            try:
                next(batches)
            except StopIteration:
                raise ValueError(
                    f"backup_and_restore: the backup was taken after {iteration} batches of epoch {epoch}, but the "
                    f"data now has only {used} batches in that epoch: resume with the same data"
                ) from None
        state.iteration = iteration
        restored = {**metric_state, "values": metrics}
        if "nonfinite" in metric_state:
            restored["nonfinite"] = jnp.asarray(nonfinite, jnp.int32)
        self._mark = (epoch, iteration)
        return restored, iteration

    # -- writing --------------------------------------------------------------------------
    def _save(self, state: LoopState, epoch: int, iteration: int, metric_state: dict | None) -> None:
        if self.last_saved == (epoch, iteration):
            return
        metadata = dict(state.handler_metadata)
        metrics: dict[str, Any] = {}
        if iteration > 0 and metric_state is not None:
            metrics = dict(metric_state["values"])
            metadata[_META] = {"nonfinite": int(metric_state.get("nonfinite", -1))}
        step_state = state.step_state
        kept = {f"kept/{i}": k.kept() for i, k in enumerate(self.keepers) if k.kept() is not None}
        if kept and isinstance(step_state, Mapping):
            step_state = {**step_state, **kept}
        saved = dataclasses.replace(state, step_state=step_state, epoch=epoch, iteration=iteration, metrics=metrics,
                                    handler_metadata=metadata, status=None)
        data = serialize_state(saved)  # every process: gathering sharded arrays is collective
        self.last_saved = (epoch, iteration)
        if not writes_files():
            return
        write_atomic(os.path.join(self.config.path, _file_name(epoch, iteration)), data)
        for _, old in backup_files(self.config.path)[: -self.config.keep]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(old)

    def iteration_done(self, state: LoopState, metric_state: dict) -> bool:
        """After a compiled call: back up every ``every`` iterations, or when a signal asked
        to stop (then the answer is ``True``: halt the loop).

        Args:
            state: the loop state after the call.
            metric_state: the epoch's metric accumulators.

        Returns:
            Whether to halt the loop now.
        """
        due = False
        every = self.config.every
        if isinstance(every, int):
            epoch, previous = self._mark
            previous = previous if epoch == state.epoch else 0
            due = state.iteration // every != previous // every
        self._mark = (state.epoch, state.iteration)
        stop = self._stop_requested()
        if due or stop:
            self._save(state, state.epoch, state.iteration, metric_state)
        return stop

    def epoch_done(self, state: LoopState) -> bool:
        """After an epoch (``state.epoch`` already counts it): back up; ``True`` when a
        signal asked to stop.

        Args:
            state: the loop state after the epoch.

        Returns:
            Whether to halt the loop now.
        """
        self._save(state, state.epoch, 0, None)
        return self._stop_requested() and state.epoch < state.max_epoch

    # -- signals --------------------------------------------------------------------------
    def _stop_requested(self) -> bool:
        stop = self.requested is not None
        if jax.process_count() > 1:  # pragma: no cover - multi-process runs
            from jax.experimental import multihost_utils

            # every process stops at the same step (a backup gathers arrays from all of them)
            stop = bool(np.any(multihost_utils.process_allgather(np.asarray(stop))))
        return stop

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.requested == signum:  # asked twice: act at once
            self._restore_handlers()
            self._act(signum, self.previous.get(signum), frame)
            return
        self.requested = signum

    @contextlib.contextmanager
    def handling_signals(self) -> Iterator[None]:
        """Catch the configured signals while the loop runs (from the main thread only;
        elsewhere Python cannot install signal handlers), then put the previous handlers back."""
        if self.config.signals and threading.current_thread() is threading.main_thread():
            for name in self.config.signals:
                number = getattr(signal_module, name)
                previous = signal_module.getsignal(number)
                if previous is signal_module.SIG_IGN:
                    continue
                self.previous[number] = previous
                signal_module.signal(number, self._on_signal)
            self.active = True
        try:
            yield
        finally:
            self._restore_handlers()

    def _restore_handlers(self) -> None:
        if self.active:
            for number, previous in self.previous.items():
                signal_module.signal(number, signal_module.SIG_DFL if previous is None else previous)
            self.active = False

    def deliver(self) -> None:
        """After the run, with the previous handlers back: act on the signal that stopped
        it (nothing when none did).

        Raises:
            SystemExit: ``128 + signal`` for a signal whose handler was the default one.
            KeyboardInterrupt: for ``SIGINT`` under Python's default handler.
        """
        if self.requested is None:
            return
        signum, self.requested = self.requested, None
        self._act(signum, self.previous.get(signum), None)

    @staticmethod
    def _act(signum: int, previous: Any, frame: Any) -> None:
        """Do what ``previous`` (the handler the run replaced) does for ``signum``."""
        if callable(previous):
            previous(signum, frame)
        elif previous is not signal_module.SIG_IGN:  # the default action: end the process
            raise SystemExit(128 + signum)
