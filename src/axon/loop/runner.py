"""Running a loop: opening the data, initializing or restoring the state, the epoch loop
over chunks of steps, events and handlers, metrics history and progress display.

>>> import jax.numpy as jnp
>>> from axon.loop.program import StepProgram
>>> program = StepProgram(lambda s, b: s + 1, (), track_loss=False, outputs_only=())
>>> runner = Runner(program, lambda b, init: jnp.zeros(()), {}, None)
>>> state = runner.run([0, 0, 0], None, epochs=2)
>>> int(state.step_state), state.status
(6, 'completed')
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from axon.loop.backup import BackupConfig, BackupSession
from axon.loop.checkpoint import RawStepState, restore_step_state
from axon.loop.config import EvaluatorConfig, TrainerConfig
from axon.loop.data import BatchStream, DataSource, check_batch, read_chunks
from axon.loop.filters import matches
from axon.loop.metric_check import check_watched_metrics
from axon.loop.prefetch import check_prefetch, default_prefetch, prefetch_chunks
from axon.loop.program import StepProgram, Unstacked
from axon.loop.progress import Reporter
from axon.loop.state import ITERATION_EVENTS, LoopState

__all__ = ["ACTIONS", "NonFiniteLossError", "Runner"]

ACTIONS = ("continue", "halt_epoch", "halt_loop")
SKIPPED_UPDATES_WARNING = 25  # consecutive skipped updates that make a stalled run

Handlers = Mapping[str, tuple[tuple[Callable[..., Any], Any], ...]]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch and iteration."""


class _Halt(Exception):
    def __init__(self, action: str):
        self.action = action


def _fresh_copy(tree: Any) -> Any:
    """``tree`` with every array copied into fresh buffers (the step donates them, and
    init_state's arrays are the caller's). In one process the runtime copies them
    (``device_put(may_alias=False)``: an eager ``jnp.array(x, copy=True)`` compiles a program
    per shape); across processes each array is copied by such a program."""
    if jax.process_count() == 1:
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        arrays = [i for i, x in enumerate(leaves) if isinstance(x, jax.Array)]
        copies = jax.device_put([leaves[i] for i in arrays], [leaves[i].sharding for i in arrays], may_alias=False)
        for i, copy in zip(arrays, copies):
            leaves[i] = copy
        return jax.tree_util.tree_unflatten(treedef, leaves)
    return jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True) if isinstance(x, jax.Array) else x, tree)


class Runner:
    """Runs a loop once (``run``); the compiled step lives in ``program`` (cached with the
    loop), everything else belongs to this run.

    Args:
        program: the loop's compiled step and metrics.
        init_fn: ``init_fn(first_batch, init_state) -> step_state``.
        handlers: event handlers by event, ``(handler, filter)`` pairs.
        settings: a trainer's or evaluator's settings; ``None`` for a custom loop (its
            batches can be anything; a trainer's and evaluator's are ``(inputs, targets)``).
        attached_state: a state to resume from (``Loop.from_state``).
        progress: ``False`` silences the progress display.
        backup: ``Loop.backup_and_restore``'s options, or ``None``.
    """

    def __init__(
        self,
        program: StepProgram,
        init_fn: Callable[[Any, Any], Any],
        handlers: Handlers,
        settings: TrainerConfig | EvaluatorConfig | None,
        attached_state: LoopState | None = None,
        progress: bool | None = None,
        backup: BackupConfig | None = None,
    ) -> None:
        self.program = program
        self.backup = BackupSession(backup, handlers) if backup is not None else None
        self.init_fn = init_fn
        self.handlers = handlers
        self.settings = settings
        self.attached_state = attached_state
        self.progress = progress
        self.state: LoopState | None = None
        self.prefetch = 0
        self.check_program = settings.program if settings is not None else None
        self._warned_skips = False
        # On CPU, device memory is host memory: the compiled step takes NumPy batches as they
        # are, copying them in C++ far faster than jax.device_put does (about 0.4 ms less host
        # time per step for a 128x784 float32 batch; benchmarks/profile_loop.py).
        self._put = _as_is if jax.default_backend() == "cpu" else jax.device_put
        self._put_stacked = self._put
        self.distribution = getattr(settings, "distribution", None)
        # Likewise, on CPU a chunk's batches go in unstacked and are stacked in the program.
        self._stack_in_program = jax.default_backend() == "cpu" and self.distribution is None
        if self.distribution is not None:
            self._put = self.distribution.shard_batch
            self._put_stacked = functools.partial(self.distribution.shard_batch, leading=1)

    # -- events ---------------------------------------------------------------------------
    def _fire(self, state: LoopState, event: str) -> LoopState:
        counts = state.event_counts
        if event in ITERATION_EVENTS:
            counts[event]["total"] += 1
            counts[event]["epoch"] += 1
        else:
            counts[event] += 1
        if event in ("epoch_completed", "epoch_halted"):
            for e in ITERATION_EVENTS:
                counts[e]["epoch"] = 0
        halt = None
        for handler, flt in self.handlers.get(event, ()):
            if not matches(flt, state, event):
                continue
            result = handler(state)
            if not (isinstance(result, tuple) and len(result) == 2 and result[0] in ACTIONS):
                raise ValueError(
                    f"event handler {getattr(handler, '__name__', handler)!r} for {event!r} must return "
                    f"(action, state) with action one of {list(ACTIONS)}, got {result!r}"
                )
            action, state = result
            if not isinstance(state, LoopState):
                raise ValueError(f"event handler for {event!r} returned {type(state).__name__} as the state, expected LoopState")
            if action == "halt_loop":
                halt = "halt_loop"
            elif action == "halt_epoch" and halt is None:
                halt = "halt_epoch"
        self.state = state
        if halt is not None and event not in ("halted", "completed", "epoch_halted"):
            raise _Halt(halt)
        return state

    def _iteration_event(self, state: LoopState, event: str, fire: bool) -> LoopState:
        if fire:
            return self._fire(state, event)
        counts = state.event_counts[event]
        counts["total"] += 1
        counts["epoch"] += 1
        return state

    # -- data -----------------------------------------------------------------------------
    def _prepare(self, batch: Any) -> Any:
        """A batch as host arrays; a trainer's or evaluator's as ``(inputs, targets)`` with
        the inputs by name, checked against the model's inputs."""
        if self.settings is None:
            return _host_arrays(batch)
        inputs, targets = _host_arrays(check_batch(batch, "run"))
        if self.check_program is not None:
            inputs = self.check_program.check_inputs(inputs, "run")
        return inputs, targets

    def _to_device(self, raw: list[Any], k: int) -> tuple[bool, Any]:
        """``(True, stacked batches)`` for a full chunk of k > 1 steps, else ``(False,
        [batch, ...])`` (one compiled call per batch)."""
        chunk = [self._prepare(b) for b in raw]
        if k > 1 and len(chunk) == k:
            if self._stack_in_program:
                return True, Unstacked(chunk)
            stacked = jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *chunk)
            return True, self._put_stacked(stacked)
        return False, [self._put(b) for b in chunk]

    def _chunks(self, batches: BatchStream, k: int, limit: int | None) -> Any:
        """The epoch's chunks made ready for the device: on a background thread up to
        ``prefetch`` chunks ahead (:mod:`axon.loop.prefetch`), or one chunk ahead here."""
        convert = functools.partial(self._to_device, k=k)
        if self.prefetch > 0:
            return prefetch_chunks(batches, k, limit, convert, depth=self.prefetch)
        return read_chunks(batches, k, limit, convert)

    # -- main -----------------------------------------------------------------------------
    def run(
        self,
        data: Any,
        init_state: Any,
        *,
        epochs: int = 1,
        iterations: int | None = None,
        jit: bool = True,
        batch_size: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
        steps_per_execution: int = 1,
        prefetch: int | None = None,
    ) -> LoopState:
        """Run; the arguments are those of :meth:`axon.loop.Loop.run`. Returns the final state."""
        prefetch = check_prefetch(prefetch)
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
            raise ValueError(f"run: expected epochs to be a non-negative int, got {epochs!r}")
        if iterations is not None and (not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1):
            raise ValueError(f"run: expected iterations to be a positive int or None, got {iterations!r}")
        if not isinstance(steps_per_execution, int) or isinstance(steps_per_execution, bool) or steps_per_execution < 1:
            raise ValueError(f"run: expected steps_per_execution to be a positive int, got {steps_per_execution!r}")
        check_watched_metrics([m.name for m in self.program.metrics], self.handlers)
        source = DataSource(data, batch_size=batch_size, shuffle=shuffle, seed=seed)
        if prefetch is None:
            prefetch = default_prefetch(data, arrays=source.arrays, backend=jax.default_backend(),
                                        distributed=self.distribution is not None)
        self.prefetch = prefetch

        first_stream: BatchStream | None = source.epoch(0)
        try:
            first_batch = next(first_stream)
        except StopIteration:
            raise ValueError("run: the data is empty: it yielded no batch") from None
        first_stream.unread([first_batch])
        first = self._prepare(first_batch)
        state = self._initial_state(first, init_state, epochs)
        state.max_iteration = -1 if iterations is None else iterations
        if self.backup is not None:  # before the first step: a mismatched backup loses no work
            state = self.backup.restore(state, self._place, self.program.metric_init(state.step_state))
        self.state = state
        reporter = self._reporter(source)
        # the stream opened to peek at the first batch serves the first epoch too (a data
        # function is called, and a DataLoader starts its workers, once per epoch); a resumed
        # run starting later than epoch 0 needs that epoch's own batches instead
        if not (source.one_shot or state.epoch == 0):
            first_stream = None
        batch_fn, chunk_fn = self.program.functions(jit)

        signals = self.backup.handling_signals() if self.backup is not None else contextlib.nullcontext()
        with warnings.catch_warnings(), signals:
            warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
            try:
                state = self._fire(state, "started")
                while state.epoch < state.max_epoch:
                    batches = first_stream if first_stream is not None else source.epoch(state.epoch)
                    first_stream = None
                    state = self._run_epoch(state, source, batches, batch_fn, chunk_fn, steps_per_execution, reporter)
                state.status = "completed"
                state = self._fire(state, "completed")
            except _Halt:
                state = self.state
                state.status = "halted"
                state = self._fire(state, "halted")
            finally:
                if reporter is not None:
                    reporter.close()
        state.trace_count = self.program.trace_count
        if self.backup is not None:
            self.backup.deliver()  # the signal that stopped the run, if one did
        return state

    def _initial_state(self, first: Any, init_state: Any, epochs: int) -> LoopState:
        attached = self.attached_state
        if attached is None:
            step_state = self.init_fn(first, init_state)
            step_state = _fresh_copy(step_state)
            return LoopState(step_state=self._place(step_state), max_epoch=epochs)
        state = dataclasses.replace(attached)
        saved = attached.step_state
        if isinstance(saved, RawStepState):
            template = jax.eval_shape(lambda: self.init_fn(first, None))
            saved = restore_step_state(saved, template)
        state.step_state = self._place(saved)
        completed = state.event_counts["epoch_completed"] + state.event_counts["epoch_halted"]
        state.epoch = max(state.epoch, completed)
        state.iteration = 0
        state.max_epoch = state.epoch + epochs
        state.status = None
        return state

    def _place(self, step_state: Any) -> Any:
        """The step state laid out by the distribution (unchanged without one)."""
        if self.distribution is None:
            return step_state
        return self.distribution.place_state(step_state)

    def _reporter(self, source: DataSource) -> Reporter | None:
        log = self.settings.log if self.settings is not None else 0
        if self.progress is False or not log or log <= 0:
            return None
        return Reporter(log, source.num_batches(), show_epoch=isinstance(self.settings, TrainerConfig))

    def _run_epoch(self, state: LoopState, source: DataSource, batches: BatchStream, batch_fn: Callable[..., Any],
                   chunk_fn: Callable[..., Any], k: int, reporter: Reporter | None) -> LoopState:
        """One epoch: ``k`` steps per compiled call (k = 1: one step per call); iteration
        events and metrics follow each call."""
        start = time.perf_counter()
        metric_state = self.program.metric_init(state.step_state)
        state.metrics = dict(metric_state["values"])
        state.iteration = 0
        carry = self.program.carry
        try:
            skipped = 0
            if self.backup is not None:  # resuming a backup taken mid-epoch
                metric_state, skipped = self.backup.resume_epoch(state, metric_state, batches)
            if not skipped:
                state = self._fire(state, "epoch_started")
            if reporter is not None:
                reporter.epoch_started(state)
            limit = state.max_iteration - skipped if state.max_iteration > 0 else None
            fire = any(self.handlers.get(e) for e in ITERATION_EVENTS)
            used_before = batches.used
            # closing the chunks gives a chunk read ahead back to the stream (an epoch that
            # stops early loses no batch of a one-shot iterator)
            with contextlib.closing(self._chunks(batches, k, limit)) as chunks:
                for stacked, chunk in chunks:
                    state = self._iteration_event(state, "iteration_started", fire)
                    if stacked:
                        state.step_state, metric_state = chunk_fn(carry(state.step_state), metric_state, chunk, np.int32(state.iteration))
                        n = k
                    else:
                        for j, batch in enumerate(chunk):
                            state.step_state, metric_state = batch_fn(carry(state.step_state), metric_state, batch, np.int32(state.iteration + j))
                        n = len(chunk)
                    state.iteration += n
                    state.metrics = metric_state["values"]
                    state = self._iteration_event(state, "iteration_completed", fire)
                    if reporter is not None:
                        reporter.iteration(state, n)
                    if self.backup is not None and self.backup.iteration_done(state, metric_state):
                        self.state = state
                        raise _Halt("halt_loop")
            if state.iteration == 0:
                raise ValueError(self._no_batch_message(source, state.epoch, used_before))
            self._check_finite(state, metric_state)
            self._check_skipped_updates(state)
            state.metrics = metric_state["values"]
            state.times[state.epoch] = time.perf_counter() - start
            state.history[state.epoch] = _to_floats(state.metrics)
            state = self._fire(state, "epoch_completed")
            state.history[state.epoch] = {**_to_floats(state.metrics), **state.history[state.epoch]}
            if reporter is not None:
                reporter.epoch_completed(state)
        except _Halt as h:
            state = self.state
            if h.action == "halt_loop":
                state.history.setdefault(state.epoch, _to_floats(state.metrics))
                raise
            self._check_finite(state, metric_state)
            state.history.setdefault(state.epoch, _to_floats(state.metrics))
            state.times.setdefault(state.epoch, time.perf_counter() - start)
            self._fire(state, "epoch_halted")
            state = self.state
        state.epoch += 1
        if self.backup is not None and self.backup.epoch_done(state):
            self.state = state
            raise _Halt("halt_loop")
        return state

    @staticmethod
    def _no_batch_message(source: DataSource, epoch: int, used_before: int) -> str:
        if source.one_shot:
            return (
                f"run: the data iterator ran out: it yielded no batch for epoch {epoch}, after {used_before} "
                "batch(es) in the epochs before. A one-shot iterator or generator is read once, across all "
                "epochs: pass a list, a re-iterable dataset, a function returning a fresh iterator, or an endless "
                "generator with iterations= (batches per epoch)"
            )
        if epoch > 0 and not source.arrays:
            return (
                f"run: the data yielded no batch in epoch {epoch} although it did in an earlier epoch: iterating "
                "it again did not start over (is it a one-shot iterator inside an iterable?); pass a list, a "
                "re-iterable dataset, or a function returning a fresh iterator"
            )
        return "run: the data is empty: it yielded no batch"

    def _check_skipped_updates(self, state: LoopState) -> None:
        """Warn (once per run) when loss scaling has skipped every update lately: training
        has stalled, and the loss alone does not say why."""
        step_state = state.step_state
        if self._warned_skips or not isinstance(step_state, Mapping) or "skipped_updates" not in step_state:
            return
        skipped, steps = int(step_state["skipped_updates"]), int(step_state["i"])
        if not (skipped >= SKIPPED_UPDATES_WARNING or (skipped >= 2 and skipped == steps)):
            return
        self._warned_skips = True
        scale = step_state["loss_scale_state"].get("loss_scale")
        scale_text = f"the loss scale is now {float(scale):g}" if scale is not None else "with loss scaling"
        model_state = step_state["model_state"]
        bad = [
            "/".join(str(getattr(k, "key", k)) for k in path)
            for path, leaf in jax.tree_util.tree_leaves_with_path(model_state.trainable_parameters())
            if jnp.issubdtype(leaf.dtype, jnp.inexact) and not bool(jnp.all(jnp.isfinite(leaf)))
        ]
        if bad:
            cause = f"the parameters are no longer finite ({', '.join(bad[:3])})"
        else:
            cause = (
                "the gradients (or the updates they give) are NaN or infinite even after scaling down: the loss's "
                "gradient is not finite (e.g. sqrt or log at 0), or the model's low-precision computation overflows"
            )
        warnings.warn(
            f"trainer: the last {skipped} updates (of {steps} steps) were all skipped because they were not finite; "
            f"{scale_text}. Cause: {cause}. Training makes no progress; check the loss and data, lower the "
            "learning rate, or compute in float32/bfloat16",
            RuntimeWarning,
            stacklevel=2,
        )

    def _check_finite(self, state: LoopState, metric_state: dict) -> None:
        if not isinstance(self.settings, TrainerConfig):
            return
        bad = int(metric_state["nonfinite"])
        if bad >= 0 and self.settings.on_nonfinite == "raise":
            raise NonFiniteLossError(
                f"the loss became NaN or infinite at epoch {state.epoch}, iteration {bad}; "
                "lower the learning rate, check the data, or pass on_nonfinite='continue' to the trainer"
            )


def _host_arrays(batch: Any) -> Any:
    """Arrays from other libraries (torch tensors, tf tensors, lists) become numpy arrays;
    JAX and numpy arrays pass through untouched."""

    def convert(a: Any) -> Any:
        if isinstance(a, np.memmap):  # read from disk here (on the prefetch thread), not in the step
            return np.array(a)
        if isinstance(a, (jax.Array, np.ndarray, np.generic, int, float)):
            return a
        if hasattr(a, "numpy") and callable(a.numpy):  # torch / tf tensors
            return a.numpy()
        return np.asarray(a)

    return jax.tree_util.tree_map(convert, batch)


def _as_is(x: Any) -> Any:
    return x


def _to_floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        arr = np.asarray(v)
        out[k] = float(arr) if arr.shape == () else arr.tolist()
    return out
