"""``Loop``: an immutable description of a training or evaluation loop, and its runner.

Builder methods (``metric``, ``handle_event``, ``log``, ``validate``, ``early_stop``...)
return a new loop. ``run`` compiles the step function together with metric accumulation
into one XLA program (one per input shape; ``steps_per_execution=k`` runs ``k`` steps per
call with ``lax.scan``), donates the step state's buffers, and fires events between
compiled calls.

>>> import axon, jax.numpy as jnp
>>> counter = loop(lambda state, batch: state + 1, lambda batch, init: jnp.zeros(()))
>>> final = counter.run([(0, 0)] * 3, epochs=2, progress=False)
>>> int(final.step_state), final.epoch, final.status
(6, 2, 'completed')
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from axon.loop.data import DataSource, check_batch, prefetch
from axon.loop.filters import check_filter, matches
from axon.loop.state import EVENTS, ITERATION_EVENTS, LoopState

__all__ = ["Loop", "NonFiniteLossError", "loop"]

ACTIONS = ("continue", "halt_epoch", "halt_loop")


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch and iteration."""


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: Callable[..., Any]
    accumulate: Callable[[Any, Any, Any], Any]
    transform: Callable[[Any], tuple]
    evaluate: Callable[..., Any] | None = None  # how validation computes it from (y_true, y_pred)


def _running_average(acc, value, i):
    return acc + (value - acc) / (i + 1)


def _running_sum(acc, value, i):
    return acc + value


ACCUMULATORS = {"running_average": _running_average, "running_sum": _running_sum}


@dataclasses.dataclass(frozen=True)
class Loop:
    """A loop: ``init_fn(batch, init_state) -> step_state``, ``step_fn(step_state, batch)
    -> step_state``, an ``output_transform`` for what ``run`` returns, metrics and event
    handlers. Make one with :func:`loop`, :func:`axon.loop.trainer` or
    :func:`axon.loop.evaluator`.
    """

    init_fn: Callable[[Any, Any], Any]
    step_fn: Callable[[Any, Any], Any]
    output_transform: Callable[[LoopState], Any] = lambda state: state
    metrics: tuple[MetricSpec, ...] = ()
    handlers: Mapping[str, tuple[tuple[Callable[..., Any], Any], ...]] = dataclasses.field(
        default_factory=lambda: {e: () for e in EVENTS}
    )
    attached_state: LoopState | None = None
    kind: str = "loop"
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    # -- builders -------------------------------------------------------------------------
    def metric(
        self,
        metric: str | Callable[..., Any],
        name: str | None = None,
        *,
        accumulate: str | Callable[[Any, Any, Any], Any] = "running_average",
        transform: Sequence[str] | Callable[[Any], Any] | None = None,
    ) -> Loop:
        """Track a metric, by name from :mod:`axon.metrics` or as a function (then ``name``
        is required). ``accumulate`` is ``"running_average"`` (per epoch, the default),
        ``"running_sum"`` or ``fn(acc, value, i)``; ``transform`` maps the step state to
        the metric's arguments (default ``(y_true, y_pred)``), or names step-state fields.

        >>> import axon
        >>> t = axon.loop.trainer(axon.input("x").pipe(axon.dense, 1), "mean_squared_error", "sgd")
        >>> [m.name for m in t.metric("mean_absolute_error", "mae").metrics]
        ['loss', 'mae']
        """
        if isinstance(metric, str):
            from axon import metrics as _metrics

            fn = _metrics.get(metric)
            name = name or metric
        elif callable(metric):
            if name is None:
                raise ValueError("metric: a metric given as a function needs a name, e.g. loop.metric(fn, 'my_metric')")
            fn = metric
        else:
            raise TypeError(f"metric: expected a metric name or function, got {metric!r}")
        if isinstance(accumulate, str):
            if accumulate not in ACCUMULATORS:
                raise ValueError(f"metric: expected accumulate to be one of {list(ACCUMULATORS)} or a function, got {accumulate!r}")
            acc_fn = ACCUMULATORS[accumulate]
        elif callable(accumulate):
            acc_fn = accumulate
        else:
            raise TypeError(f"metric: expected accumulate to be a name or a function, got {accumulate!r}")
        if transform is None:
            fields: Sequence[str] = ("y_true", "y_pred")
            tf = lambda s: tuple(s[f] for f in fields)  # noqa: E731
        elif isinstance(transform, str):
            tf = lambda s: (s[transform],)  # noqa: E731
        elif isinstance(transform, (list, tuple)):
            keys = tuple(transform)
            tf = lambda s: tuple(s[f] for f in keys)  # noqa: E731
        elif callable(transform):
            def tf(s):
                out = transform(s)
                return tuple(out) if isinstance(out, (list, tuple)) else (out,)
        else:
            raise TypeError(f"metric: expected transform to be field names or a function, got {transform!r}")
        evaluate = fn if transform is None else None
        specs = [m for m in self.metrics if m.name != name]
        if len(specs) != len(self.metrics):
            warnings.warn(f"metric {name!r} is already attached; the new one replaces it", stacklevel=2)
        return dataclasses.replace(self, metrics=(*specs, MetricSpec(name, fn, acc_fn, tf, evaluate)))

    def handle_event(self, event: str | Sequence[str], handler: Callable[[LoopState], Any], filter: Any = "always") -> Loop:
        """Run ``handler(state) -> (action, state)`` on ``event`` (a name, a list, or
        ``"all"`` for the six run events), when ``filter`` matches (see
        :mod:`axon.loop.filters`). ``action`` is ``"continue"``, ``"halt_epoch"`` or
        ``"halt_loop"``. Handlers run in the order they were attached.

        >>> import axon
        >>> l = loop(lambda s, b: s).handle_event("epoch_completed", lambda s: ("continue", s), {"every": 2})
        >>> len(l.handlers["epoch_completed"])
        1
        """
        events = list(EVENTS[:6]) if event == "all" else [event] if isinstance(event, str) else list(event)
        for e in events:
            if e not in EVENTS:
                raise ValueError(f"handle_event: unknown event {e!r}; events are {list(EVENTS)}")
        if not callable(handler):
            raise TypeError(f"handle_event: expected a handler function, got {handler!r}")
        filter = check_filter(filter)
        handlers = dict(self.handlers)
        for e in events:
            handlers[e] = (*handlers[e], (handler, filter))
        return dataclasses.replace(self, handlers=handlers)

    def from_state(self, state: LoopState) -> Loop:
        """Resume from a saved ``LoopState`` (e.g. a checkpoint): training continues with
        the next epoch after the last completed one, ``epochs`` more epochs."""
        if not isinstance(state, LoopState):
            raise TypeError(f"from_state: expected a LoopState, got {type(state).__name__}")
        return dataclasses.replace(self, attached_state=state)

    # the handlers live in handlers.py; they are bound as methods below
    def __repr__(self) -> str:
        handlers = {e: len(h) for e, h in self.handlers.items() if h}
        return f"<axon.loop.Loop {self.kind} metrics={[m.name for m in self.metrics]} handlers={handlers}>"

    # -- running --------------------------------------------------------------------------
    def run(
        self,
        data: Any,
        init_state: Any = None,
        *,
        epochs: int = 1,
        iterations: int | None = None,
        jit: bool = True,
        batch_size: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
        steps_per_execution: int = 1,
        progress: bool | None = None,
        return_state: bool = False,
    ) -> Any:
        """Run the loop over ``data`` for ``epochs`` epochs (``iterations`` caps the batches
        per epoch) and return ``output_transform(final_state)`` — or the final
        :class:`LoopState` with ``return_state=True``.

        ``data`` is a re-iterable of ``(inputs, targets)`` batches, a function returning an
        iterator, or ``(inputs, targets)`` arrays with ``batch_size`` (``shuffle`` reshuffles
        every epoch from ``seed``). ``steps_per_execution=k`` runs k steps per compiled call
        (iteration events and metrics then follow each chunk). ``progress`` overrides the
        trainer's progress display (``False`` silences it).
        """
        runner = self.__dict__.get("_runner")
        if runner is None:
            runner = _Runner(self)
            object.__setattr__(self, "_runner", runner)
        runner.progress = progress
        state = runner.run(
            data, init_state, epochs=epochs, iterations=iterations, jit=jit, batch_size=batch_size,
            shuffle=shuffle, seed=seed, steps_per_execution=steps_per_execution,
        )
        return state if return_state else self.output_transform(state)


def loop(
    step_fn: Callable[[Any, Any], Any],
    init_fn: Callable[[Any, Any], Any] | None = None,
    output_transform: Callable[[LoopState], Any] | None = None,
) -> Loop:
    """A loop from a step function ``step_fn(step_state, batch) -> step_state`` and an
    optional ``init_fn(first_batch, init_state) -> step_state`` (default: the given
    ``init_state``). ``run`` returns ``output_transform(state)`` (default: the state).

    >>> import jax.numpy as jnp
    >>> total = loop(lambda s, b: s + b[0], lambda b, init: jnp.zeros(())).run([(1.0, None), (2.0, None)], progress=False)
    >>> float(total.step_state)
    3.0
    """
    if not callable(step_fn):
        raise TypeError(f"loop: expected step_fn to be a function, got {step_fn!r}")
    init_fn = init_fn or (lambda batch, init_state: init_state)
    return Loop(init_fn=init_fn, step_fn=step_fn, output_transform=output_transform or (lambda s: s))


# --------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------


class _Halt(Exception):
    def __init__(self, action: str):
        self.action = action


class _Runner:
    """Runs a loop; its compiled step functions are cached with the loop, so running the
    same loop again (a validation pass every epoch) does not compile again."""

    def __init__(self, loop: Loop):
        self.loop = loop
        self.progress: bool | None = None
        self.trace_count = 0
        self.has_loss = False
        self._jitted: tuple | None = None
        # On CPU, device memory is host memory: the compiled step takes NumPy batches as they
        # are, copying them in C++ far faster than jax.device_put does (about 0.4 ms less host
        # time per step for a 128x784 float32 batch; benchmarks/profile_loop.py).
        self._put = _as_is if jax.default_backend() == "cpu" else jax.device_put

    # -- compiled pieces ------------------------------------------------------------------
    def _metric_init(self, step_state: Any) -> dict:
        values = {}
        for spec in self.loop.metrics:
            shape = jax.eval_shape(lambda s, spec=spec: spec.fn(*spec.transform(s)), step_state)
            values[spec.name] = jnp.zeros(shape.shape, jnp.result_type(shape.dtype, jnp.float32))
        out = {"values": values}
        if self.has_loss:
            out["nonfinite"] = jnp.asarray(-1, jnp.int32)
        return out

    def _accumulate(self, metric_state: dict, step_state: Any, i: Any) -> dict:
        values = {}
        for spec in self.loop.metrics:
            value = spec.fn(*spec.transform(step_state))
            acc = metric_state["values"][spec.name]
            values[spec.name] = spec.accumulate(acc, jnp.asarray(value, acc.dtype), i).astype(acc.dtype)
        out = {"values": values}
        if self.has_loss:
            bad = ~jnp.isfinite(step_state["loss"])
            prev = metric_state["nonfinite"]
            out["nonfinite"] = jnp.where((prev < 0) & bad, i.astype(jnp.int32), prev)
        return out

    def _one_step(self, step_state, metric_state, batch, i):
        new = self.loop.step_fn(step_state, batch)
        return new, self._accumulate(metric_state, new, i)

    def _carry(self, step_state: Any) -> Any:
        """The part of the step state the next step needs: a trainer's or evaluator's
        ``y_true``/``y_pred`` are outputs only, so a new batch shape does not make the
        previous batch's shapes part of the next compilation."""
        if self.loop.kind in ("trainer", "evaluator") and isinstance(step_state, dict):
            return {k: v for k, v in step_state.items() if k not in ("y_true", "y_pred")}
        return step_state

    def _batch_fn(self, step_state, metric_state, batch, i):
        self.trace_count += 1
        return self._one_step(step_state, metric_state, batch, i)

    def _chunk_fn(self, step_state, metric_state, batches, start):
        self.trace_count += 1
        k = jax.tree_util.tree_leaves(batches)[0].shape[0]

        def body(carry, xs):
            batch, i = xs
            new, metrics = self._one_step(*carry, batch, i)
            carried = self._carry(new)
            outputs = {k: v for k, v in new.items() if k not in carried} if carried is not new else None
            return (carried, metrics), outputs

        # XLA:CPU emits convolutions inside a rolled loop as naive loops instead of library
        # calls (jax-ml/jax#12868; a CNN step 15-25x slower), so on CPU the chunk is unrolled:
        # still one dispatch per chunk, at the cost of compiling k copies of the step.
        unroll = k if jax.default_backend() == "cpu" else 1
        (s, m), outputs = jax.lax.scan(
            body, (step_state, metric_state), (batches, start + jnp.arange(k, dtype=jnp.int32)), unroll=unroll
        )
        if outputs:
            s = {**s, **jax.tree_util.tree_map(lambda a: a[-1], outputs)}
        return s, m

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
        for handler, flt in self.loop.handlers.get(event, ()):
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

    # -- data -----------------------------------------------------------------------------
    def _prepare(self, batch: Any) -> tuple[Any, Any]:
        """A batch as host arrays, inputs by name (checked against the model's inputs)."""
        inputs, targets = _host_arrays(check_batch(batch, "run"))
        program = self.loop.config.get("program")
        if program is not None:
            inputs = program.check_inputs(inputs, "run")
        return inputs, targets

    def _convert(self, batch: Any) -> Any:
        return self._put(self._prepare(batch))

    def _chunks(self, batches, k: int):
        buf = []
        for b in batches:
            buf.append(self._prepare(b))
            if len(buf) == k:
                yield buf
                buf = []
        if buf:
            yield buf

    # -- main -----------------------------------------------------------------------------
    def run(self, data, init_state, *, epochs, iterations, jit, batch_size, shuffle, seed, steps_per_execution) -> LoopState:
        if not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"run: expected epochs to be a non-negative int, got {epochs!r}")
        if iterations is not None and (not isinstance(iterations, int) or iterations < 1):
            raise ValueError(f"run: expected iterations to be a positive int or None, got {iterations!r}")
        if not isinstance(steps_per_execution, int) or steps_per_execution < 1:
            raise ValueError(f"run: expected steps_per_execution to be a positive int, got {steps_per_execution!r}")
        source = DataSource(data, batch_size=batch_size, shuffle=shuffle, seed=seed)
        loop_ = self.loop
        attached = loop_.attached_state

        first_iter = source.epoch(0)
        try:
            first_batch = next(iter(first_iter))
        except StopIteration:
            raise ValueError("run: the data is empty: it yielded no batch") from None
        first_inputs, first_targets = self._prepare(first_batch)
        if attached is not None:
            state = dataclasses.replace(attached)
            state.step_state = self._restore_step_state(attached.step_state, (first_inputs, first_targets))
            completed = state.event_counts["epoch_completed"] + state.event_counts["epoch_halted"]
            state.epoch = max(state.epoch, completed)
            state.iteration = 0
            state.max_epoch = state.epoch + epochs
            state.status = None
        else:
            step_state = loop_.init_fn((first_inputs, first_targets), init_state)
            step_state = jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True) if isinstance(x, jax.Array) else x, step_state)
            state = LoopState(step_state=step_state, max_epoch=epochs)
        state.max_iteration = -1 if iterations is None else iterations
        self.has_loss = isinstance(state.step_state, Mapping) and "loss" in state.step_state and loop_.kind == "trainer"
        self.state = state
        reporter = self._reporter(source)
        # the iterator opened to peek at the first batch serves the first epoch too (a data
        # function is called, and a DataLoader starts its workers, once per epoch); a resumed
        # run starting later than epoch 0 needs that epoch's own batches instead
        first_rest = first_iter if source.one_shot or state.epoch == 0 else None

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
            if jit:
                if self._jitted is None:
                    self._jitted = (
                        jax.jit(self._batch_fn, donate_argnums=(0, 1)),
                        jax.jit(self._chunk_fn, donate_argnums=(0, 1)),
                    )
                batch_fn, chunk_fn = self._jitted
            else:
                batch_fn, chunk_fn = self._batch_fn, self._chunk_fn
            try:
                state = self._fire(state, "started")
                while state.epoch < state.max_epoch:
                    state = self._run_epoch(state, source, batch_fn, chunk_fn, steps_per_execution, first_batch, first_rest, reporter)
                    first_batch, first_rest = None, None
                state.status = "completed"
                state = self._fire(state, "completed")
            except _Halt:
                state = self.state
                state.status = "halted"
                state = self._fire(state, "halted")
            finally:
                if reporter is not None:
                    reporter.close()
        state.trace_count = self.trace_count
        return state

    def _restore_step_state(self, saved: Any, batch: Any) -> Any:
        from axon.loop.checkpoint import RawStepState, restore_step_state

        if isinstance(saved, RawStepState):
            template = jax.eval_shape(lambda: self.loop.init_fn(batch, None))
            return restore_step_state(saved, template)
        return saved

    def _reporter(self, source):
        log = self.loop.config.get("log", 0)
        if self.progress is False or not log or log <= 0:
            return None
        from axon.loop.progress import Reporter

        return Reporter(self.loop.kind, log, source.num_batches())

    def _run_epoch(self, state, source, batch_fn, chunk_fn, k, first_batch, first_rest, reporter) -> LoopState:
        start = time.perf_counter()
        metric_state = self._metric_init(state.step_state)
        state.metrics = dict(metric_state["values"])
        state.iteration = 0
        try:
            state = self._fire(state, "epoch_started")
            if reporter is not None:
                reporter.epoch_started(state)
            if first_rest is not None:
                batches = _chain([first_batch], first_rest)
            else:
                batches = source.epoch(state.epoch)
            seen = 0
            cap = state.max_iteration
            if cap > 0:
                batches = _take(batches, cap)
            iteration_handlers = any(self.loop.handlers[e] for e in ITERATION_EVENTS)
            if k == 1:
                for batch in prefetch(batches, self._convert):
                    if iteration_handlers:
                        state = self._fire(state, "iteration_started")
                    else:
                        _count(state, "iteration_started")
                    state.step_state, metric_state = batch_fn(self._carry(state.step_state), metric_state, batch, np.int32(state.iteration))
                    state.iteration += 1
                    seen += 1
                    state.metrics = metric_state["values"]
                    if iteration_handlers:
                        state = self._fire(state, "iteration_completed")
                    else:
                        _count(state, "iteration_completed")
                    if reporter is not None:
                        reporter.iteration(state, 1)
            else:
                for chunk in self._chunks(batches, k):
                    if iteration_handlers:
                        state = self._fire(state, "iteration_started")
                    else:
                        _count(state, "iteration_started")
                    if len(chunk) == k:
                        stacked = self._put(jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *chunk))
                        state.step_state, metric_state = chunk_fn(self._carry(state.step_state), metric_state, stacked, np.int32(state.iteration))
                    else:
                        for j, batch in enumerate(chunk):
                            state.step_state, metric_state = batch_fn(self._carry(state.step_state), metric_state, self._put(batch), np.int32(state.iteration + j))
                    state.iteration += len(chunk)
                    seen += len(chunk)
                    state.metrics = metric_state["values"]
                    if iteration_handlers:
                        state = self._fire(state, "iteration_completed")
                    else:
                        _count(state, "iteration_completed")
                    if reporter is not None:
                        reporter.iteration(state, len(chunk))
            if seen == 0:
                if source.one_shot or (state.epoch > 0 and not source.arrays):
                    raise ValueError(
                        f"run: the data yielded no batch in epoch {state.epoch}; a one-shot iterator or generator "
                        "can only be used for one epoch: pass a list, a re-iterable dataset, or a function returning "
                        "a fresh iterator"
                    )
                raise ValueError("run: the data is empty: it yielded no batch")
            self._check_finite(state, metric_state)
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
        return state

    def _check_finite(self, state: LoopState, metric_state: dict) -> None:
        if not self.has_loss:
            return
        bad = int(metric_state["nonfinite"])
        if bad >= 0 and self.loop.config.get("on_nonfinite", "raise") == "raise":
            raise NonFiniteLossError(
                f"the loss became NaN or infinite at epoch {state.epoch}, iteration {bad}; "
                "lower the learning rate, check the data, or pass on_nonfinite='continue' to the trainer"
            )


def _host_arrays(batch: Any) -> Any:
    """Arrays from other libraries (torch tensors, tf tensors, lists) become numpy arrays;
    JAX and numpy arrays pass through untouched."""

    def convert(a: Any) -> Any:
        if isinstance(a, (jax.Array, np.ndarray, np.generic, int, float)):
            return a
        if hasattr(a, "numpy") and callable(a.numpy):  # torch / tf tensors
            return a.numpy()
        return np.asarray(a)

    return jax.tree_util.tree_map(convert, batch)


def _as_is(x: Any) -> Any:
    return x


def _count(state: LoopState, event: str) -> None:
    counts = state.event_counts[event]
    counts["total"] += 1
    counts["epoch"] += 1


def _to_floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        arr = np.asarray(v)
        out[k] = float(arr) if arr.shape == () else arr.tolist()
    return out


def _chain(*iterables):
    for it in iterables:
        yield from it


def _take(it, n):
    for i, x in enumerate(it):
        if i >= n:
            return
        yield x


def format_value(v: Any) -> str:
    """Format a metric for logs: 7 decimals (3 for bfloat16), NaN/Inf spelled out."""
    arr = np.asarray(v)
    if arr.shape != ():
        raise ValueError(f"cannot log a non-scalar metric of shape {arr.shape}; reduce it (e.g. reduction='mean')")
    x = float(arr)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    return f"{x:.3f}" if arr.dtype == jnp.bfloat16 else f"{x:.7f}"
