"""``Loop``: an immutable description of a training or evaluation loop.

Builder methods (``metric``, ``handle_event``, ``log``, ``validate``, ``early_stop``...)
return a new loop. ``run`` compiles the step function together with metric accumulation
into one XLA program (one per input shape; ``steps_per_execution=k`` runs ``k`` steps per
call with ``lax.scan``), donates the step state's buffers, and fires events between
compiled calls (see :mod:`axon.loop.runner`).

>>> import axon, jax.numpy as jnp
>>> counter = loop(lambda state, batch: state + 1, lambda batch, init: jnp.zeros(()))
>>> final = counter.run([(0, 0)] * 3, epochs=2, progress=False)
>>> int(final.step_state), final.epoch, final.status
(6, 2, 'completed')
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TextIO

from axon import plot as plot_module
from axon.compiler import build
from axon.display import as_table_str
from axon.graph import Axon
from axon.loop.backup import BackupConfig, backup_config
from axon.loop.best import BestModelState
from axon.loop.config import EvaluatorConfig, TrainerConfig
from axon.loop.ema import is_ema_step, with_ema
from axon.loop.filters import Filter, check_filter
from axon.loop.gradient_norms import record_gradient_norms, with_gradient_norms
from axon.loop.handlers import (
    Handler,
    Mode,
    check_mode,
    check_patience,
    checkpoint_handler,
    log_handler,
    monitor_handler,
    reduce_lr_action,
    validate_handler,
)
from axon.loop.loggers import FileLogger, LivePlot, TensorBoardLogger
from axon.loop.metric_spec import Accumulate, MetricSpec, metric_spec
from axon.loop.program import ProgramCache, StepProgram
from axon.loop.runner import NonFiniteLossError, Runner
from axon.loop.state import EVENTS, LoopState
from axon.loop.steps import eval_step, resolve_model, train_step
from axon.loop.validation_split import with_validation_split

__all__ = ["Loop", "NonFiniteLossError", "loop"]

Event = Literal[
    "started", "epoch_started", "iteration_started", "iteration_completed",
    "epoch_completed", "epoch_halted", "halted", "completed",
]


def _no_handlers() -> Mapping[str, tuple[tuple[Callable[..., Any], Any], ...]]:
    return {e: () for e in EVENTS}


@dataclasses.dataclass(frozen=True)
class Loop:
    """A loop: ``init_fn(batch, init_state) -> step_state``, ``step_fn(step_state, batch)
    -> step_state``, an ``output_transform`` for what ``run`` returns, metrics and event
    handlers. Make one with :func:`loop`, :func:`axon.loop.trainer` or
    :func:`axon.loop.evaluator`.

    Attributes:
        init_fn: makes the first step state from the first batch and ``run``'s ``init_state``.
        step_fn: one step.
        output_transform: what ``run`` returns, from the final :class:`LoopState`.
        metrics: the tracked metrics, in the order they were attached.
        handlers: ``event -> ((handler, filter), ...)``.
        attached_state: a state to resume from (see :meth:`from_state`).
        settings: a trainer's or evaluator's settings; ``None`` for a custom loop.
        backup: the options of :meth:`backup_and_restore`, or ``None``.
        compiled: the cache of the compiled step (each new loop starts with an empty one).
    """

    init_fn: Callable[[Any, Any], Any]
    step_fn: Callable[[Any, Any], Any]
    output_transform: Callable[[LoopState], Any] = lambda state: state
    metrics: tuple[MetricSpec, ...] = ()
    handlers: Mapping[str, tuple[tuple[Callable[..., Any], Any], ...]] = dataclasses.field(default_factory=_no_handlers)
    attached_state: LoopState | None = None
    settings: TrainerConfig | EvaluatorConfig | None = None
    backup: BackupConfig | None = None
    compiled: ProgramCache = dataclasses.field(default_factory=ProgramCache, init=False, repr=False, compare=False)

    @property
    def kind(self) -> Literal["loop", "trainer", "evaluator"]:
        """``"trainer"``, ``"evaluator"`` or ``"loop"`` (a custom loop)."""
        if isinstance(self.settings, TrainerConfig):
            return "trainer"
        if isinstance(self.settings, EvaluatorConfig):
            return "evaluator"
        return "loop"

    def __repr__(self) -> str:
        handlers = {e: len(h) for e, h in self.handlers.items() if h}
        return f"<axon.loop.Loop {self.kind} metrics={[m.name for m in self.metrics]} handlers={handlers}>"

    # -- metrics and events ---------------------------------------------------------------
    def metric(
        self,
        metric: str | Callable[..., Any],
        name: str | None = None,
        accumulate: Accumulate | Callable[[Any, Any, Any], Any] = "running_average",
        transform: str | Sequence[str] | Callable[[Any], Any] | None = None,
    ) -> Loop:
        """Track a metric; the arguments are Axon's, positionally or by name.

        Args:
            metric: a name from :mod:`axon.metrics`, or a function (then ``name`` is required).
            name: the metric's name (default: the metric's own name).
            accumulate: ``"running_average"`` (per epoch, the default), ``"running_sum"`` or
                ``fn(acc, value, i)``.
            transform: maps the step state to the metric's arguments: step-state field
                name(s), or a function (default ``("y_true", "y_pred")``).

        Returns:
            A new loop with the metric (a metric with the same name is replaced, with a warning).

        Raises:
            ValueError: a function without a name, or an unknown accumulator.
            TypeError: arguments of the wrong kind.

        >>> import axon
        >>> t = axon.loop.trainer(axon.input("x").pipe(axon.dense, 1), "mean_squared_error", "sgd")
        >>> [m.name for m in t.metric("mean_absolute_error", "mae").metrics]
        ['loss', 'mae']
        >>> [m.name for m in t.metric("mean_absolute_error", "mae_sum", "running_sum").metrics]
        ['loss', 'mae_sum']
        """
        spec = metric_spec(metric, name, accumulate, transform, where="metric")
        specs = [m for m in self.metrics if m.name != spec.name]
        if len(specs) != len(self.metrics):
            warnings.warn(f"metric {spec.name!r} is already attached; the new one replaces it", stacklevel=2)
        return dataclasses.replace(self, metrics=(*specs, spec))

    def handle_event(
        self,
        event: Event | Literal["all"] | Sequence[Event],
        handler: Handler,
        filter: Filter = "always",
    ) -> Loop:
        """Run ``handler(state) -> (action, state)`` on ``event``.

        Handlers run in the order they were attached; ``action`` is ``"continue"``,
        ``"halt_epoch"`` or ``"halt_loop"``.

        Args:
            event: an event name, a list of them, or ``"all"`` for the six run events.
            handler: the handler.
            filter: when it runs (see :mod:`axon.loop.filters`).

        Returns:
            A new loop with the handler.

        Raises:
            ValueError: an unknown event or filter.
            TypeError: ``handler`` is not callable.

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

    def handle(
        self,
        event: Event | Literal["all"] | Sequence[Event],
        handler: Handler,
        filter: Filter = "always",
    ) -> Loop:
        """Deprecated alias of :meth:`handle_event` (Axon's hidden ``Loop.handle``).

        Args:
            event: an event name, a list of them, or ``"all"``.
            handler: the handler.
            filter: when it runs.

        Returns:
            A new loop with the handler.

        >>> import warnings
        >>> with warnings.catch_warnings(record=True):
        ...     warnings.simplefilter("always")
        ...     l = loop(lambda s, b: s).handle("completed", lambda s: ("continue", s))
        >>> len(l.handlers["completed"])
        1
        """
        warnings.warn("Loop.handle is deprecated; use Loop.handle_event", DeprecationWarning, stacklevel=2)
        return self.handle_event(event, handler, filter)

    def from_state(self, state: LoopState) -> Loop:
        """Resume from a saved state.

        Training continues with the next epoch after the last completed one, for ``run``'s
        ``epochs`` more epochs.

        Args:
            state: a :class:`LoopState`, e.g. from :func:`axon.loop.load_checkpoint`.

        Returns:
            A new loop that starts from ``state``.

        Raises:
            TypeError: ``state`` is not a ``LoopState``.

        >>> import jax.numpy as jnp
        >>> counter = loop(lambda s, b: s + 1, lambda b, init: jnp.zeros(()))
        >>> first = counter.run([0, 0], progress=False)
        >>> int(counter.from_state(first).run([0, 0], progress=False).step_state)
        4
        """
        if not isinstance(state, LoopState):
            raise TypeError(f"from_state: expected a LoopState, got {type(state).__name__}")
        return dataclasses.replace(self, attached_state=state)

    def backup_and_restore(
        self,
        path: str | os.PathLike,
        *,
        keep: int = 1,
        every: Literal["epoch"] | int = "epoch",
        signals: Sequence[str] = ("SIGTERM", "SIGINT"),
    ) -> Loop:
        """Make the run preemption-safe (Keras' ``BackupAndRestore``): it backs itself up
        into ``path`` and, run again with the same folder, resumes from the latest backup.

        If ``path`` holds a backup, ``run`` resumes from the latest one: the step state
        (parameters, layer state and random keys, optimizer, loss scale, moving average),
        the epoch and iteration, the metrics history, the handlers' memory (early stopping
        and plateau counters, checkpoint bests) and, for a backup taken mid-epoch, the
        epoch's metric accumulators; the batches of the interrupted epoch it had used are
        skipped. Otherwise the run starts fresh. ``run``'s ``epochs`` counts the epochs of
        the whole run, those before the interruption included. A backup is written at each
        epoch's end (and every ``every`` iterations), atomically, and the folder keeps the
        latest ``keep``. A run resumed this way ends bit-identical to an uninterrupted one
        when each epoch reads the same batches each time (a list, arrays with
        ``batch_size`` -- shuffled from ``seed`` and the epoch --, a function returning a
        fresh iterator); a one-shot iterator starts over in a new process. CSV and JSON
        Lines logs continue without duplicate rows.

        On one of ``signals`` (received by the main thread), the run finishes the step under
        way, writes a backup, ends as halted (its ``halted`` handlers run), puts the
        previous signal handlers back and then does what the signal would have done:
        ``SystemExit(143)`` for ``SIGTERM`` (``128 + signal`` for any signal under its
        default handler), ``KeyboardInterrupt`` for ``SIGINT``. A second signal of the same
        kind acts at once. The backups stay after the run: running again with the same
        folder continues from the last one (with no epochs left, ``run`` returns at once).
        In a multi-process run only process 0 writes, and every process stops at the same
        step.

        Args:
            path: the backup folder (made if missing); use one folder per experiment.
            keep: how many backups to keep (the latest).
            every: ``"epoch"``, or also back up every this many iterations within an epoch.
            signals: the signals that stop the run cleanly (``()``: none).

        Returns:
            A new loop that backs up and restores.

        Raises:
            TypeError: ``path`` is not a path.
            ValueError: a bad ``keep``, ``every`` or signal name; (when run) ``path`` is a
                file.
            axon.loop.BackupMismatchError: (when run, before the first step) the folder
                holds another loop's backup (another model, optimizer or metrics).

        >>> import axon, os, tempfile, numpy as np
        >>> folder = tempfile.mkdtemp()
        >>> model = axon.input("x", shape=(None, 1)).pipe(axon.dense, 1)
        >>> t = axon.loop.trainer(model, "mean_squared_error", "adam", log=0).backup_and_restore(folder, keep=2)
        >>> data = [(np.ones((2, 1)), np.ones((2, 1)))] * 3
        >>> _ = t.run(data, epochs=3); sorted(os.listdir(folder))
        ['backup_00002_0000000.ckpt', 'backup_00003_0000000.ckpt']
        >>> final = t.run(data, epochs=4, return_state=True)  # resumes: one more epoch
        >>> sorted(final.history), int(final.step_state["i"])
        ([0, 1, 2, 3], 12)
        """
        return dataclasses.replace(self, backup=backup_config(path, keep, every, signals))

    # -- built-in handlers ----------------------------------------------------------------
    def log(
        self,
        message_fn: Callable[[LoopState], str],
        *,
        event: Event = "iteration_completed",
        filter: Filter = "always",
        device: Literal["stdio", "stderr"] | TextIO = "stdio",
        file: TextIO | None = None,
    ) -> Loop:
        """Write ``message_fn(state)`` on ``event``.

        An exception inside ``message_fn`` is reported and halts the loop, as in Axon.

        Args:
            message_fn: makes the message from the loop state.
            event: when to write.
            filter: see :mod:`axon.loop.filters`.
            device: where to write, as Axon's option: ``"stdio"`` (standard output, the
                default), ``"stderr"``, or a text stream (anything with ``write``).
            file: a text stream; the same as passing it as ``device``.

        Raises:
            ValueError: an unknown ``device``, or both ``device`` and ``file``.
            TypeError: ``message_fn`` is not callable.

        Returns:
            A new loop with the handler.

        >>> import axon, io
        >>> out = io.StringIO()
        >>> l = axon.loop.loop(lambda s, b: s, lambda b, i: 0).log(lambda s: f"epoch {s.epoch}", event="epoch_completed", file=out)
        >>> _ = l.run([(0, 0)], epochs=2, progress=False); out.getvalue()
        'epoch 0\\nepoch 1\\n'
        """
        if not callable(message_fn):
            raise TypeError(f"log: expected message_fn to be a function, got {message_fn!r}")
        if file is not None:
            if not (isinstance(device, str) and device == "stdio"):
                raise ValueError("log: pass the stream as device= or file=, not both")
            device = file
        return self.handle_event(event, log_handler(message_fn, _log_stream(device)), filter)

    def validate(
        self,
        model: Any,
        validation_data: Any,
        *,
        event: Event = "epoch_completed",
        filter: Filter = "always",
        batch_size: int | None = None,
    ) -> Loop:
        """Evaluate the current model state on ``validation_data`` with the metrics attached
        so far (the loss too, for a trainer) and add them to the epoch's metrics as
        ``validation_<name>``.

        Args:
            model: the model (a graph, built once here in inference mode, or an
                ``(init_fn, predict_fn)`` pair).
            validation_data: batches, as for :meth:`run`.
            event: when to validate.
            filter: see :mod:`axon.loop.filters`.
            batch_size: with arrays ``(inputs, targets)`` as ``validation_data``.

        Returns:
            A new loop with the handler.

        >>> import axon, jax.numpy as jnp
        >>> model = axon.input("x", shape=(None, 1)).pipe(axon.dense, 1)
        >>> data = [(jnp.ones((4, 1)), jnp.zeros((4, 1)))]
        >>> t = axon.loop.trainer(model, "mean_squared_error", "sgd", log=0).validate(model, data)
        >>> sorted(t.run(data, return_state=True).history[0])
        ['loss', 'validation_loss']
        """
        seed = self.settings.seed if self.settings is not None else None
        distribution = self.settings.distribution if self.settings is not None else None
        built = resolve_model(model, "inference", seed, distribution)
        init_fn, step_fn = eval_step(built)
        evaluator = Loop(init_fn, step_fn, output_transform=lambda s: s.history,
                         settings=EvaluatorConfig(built, seed, log=0, distribution=distribution))
        for spec in self.metrics:
            if spec.evaluate is not None:
                evaluator = evaluator.metric(spec.evaluate, spec.name)

        def evaluate(model_state: Any) -> dict[str, float]:
            result = evaluator.run(validation_data, model_state, batch_size=batch_size, progress=False, return_state=True)
            return result.history[0]

        names = [spec.name for spec in self.metrics if spec.evaluate is not None]
        return self.handle_event(event, validate_handler(evaluate, names), filter)

    def monitor(
        self,
        metric: str,
        fn: Handler,
        name: str,
        *,
        event: Event = "epoch_completed",
        filter: Filter = "always",
        mode: Mode = "min",
        patience: int = 3,
    ) -> Loop:
        """Call ``fn(state) -> (action, state)`` when ``metric`` has not improved for
        ``patience`` events, then start counting again.

        The best value and the count are kept in ``state.handler_metadata[name]``.

        Args:
            metric: the metric's name.
            fn: what to do when it stalls.
            name: the key in ``state.handler_metadata``.
            event: when to check.
            filter: see :mod:`axon.loop.filters`.
            mode: ``"min"``, ``"max"`` or a predicate on the value (improved when true).
            patience: events without improvement before ``fn`` runs.

        Returns:
            A new loop with the handler.

        Raises:
            ValueError: a bad ``mode`` or ``patience``; (when run, before the first step) a
                metric the loop will not have: one it does not track, nor a handler
                attached before adds (``validate``; a handler of your own that adds metrics
                declares them with :func:`axon.loop.adds_metrics`).

        >>> import axon, jax.numpy as jnp
        >>> stalled = []
        >>> l = axon.loop.loop(lambda s, b: s + 1, lambda b, init: jnp.zeros(()))
        >>> l = l.metric(lambda s: jnp.ones(()), "flat", transform=lambda s: s)
        >>> l = l.monitor("flat", lambda s: (stalled.append(s.epoch), ("continue", s))[1], "watch", patience=2)
        >>> _ = l.run([(0, 0)], epochs=5, progress=False); stalled
        [2, 4]
        """
        check_mode(mode, "monitor")
        check_patience(patience, "monitor")
        return self.handle_event(event, monitor_handler(metric, fn, name, mode, patience), filter)

    def early_stop(
        self,
        metric: str,
        *,
        event: Event = "epoch_completed",
        filter: Filter = "always",
        mode: Mode = "min",
        patience: int = 3,
        restore_best: bool = False,
    ) -> Loop:
        """Halt the loop when ``metric`` has not improved for ``patience`` epochs.

        With ``restore_best=True`` (Keras' ``restore_best_weights``) the run returns the
        model state of the epoch with the best value of ``metric``: a copy of it is kept
        (on the device) at each new best and put back when the run ends -- when early
        stopping halts it, and also when it completes or another handler halts it (Keras
        restores only when it stops early; here the returned state is the best epoch's
        however the run ends). With :meth:`ema` the copy is of the averaged state too
        (what validation measured). The optimizer state and the counters stay the last
        epoch's; ``state.handler_metadata["early_stop"]["best_epoch"]`` names the epoch.
        :meth:`backup_and_restore` backs the copy up with the rest of the state.

        Args:
            metric: the metric's name (e.g. ``"validation_loss"``); it must be tracked by
                the loop or added by a handler attached before (``validate``), else
                ``run`` raises before the first step.
            event: when to check.
            filter: see :mod:`axon.loop.filters`.
            mode: ``"min"``, ``"max"`` or a predicate.
            patience: events without improvement before halting.
            restore_best: return the best epoch's model state.

        Returns:
            A new loop with the handler.

        Raises:
            ValueError: a bad ``mode`` or ``patience``; (when run, before the first step)
                a metric the loop will not have.
            TypeError: ``restore_best`` is not a bool.

        >>> import axon, jax.numpy as jnp
        >>> t = axon.loop.trainer(axon.input("x").pipe(axon.dense, 1), "mean_squared_error", "sgd", log=0)
        >>> len(t.early_stop("validation_loss", mode="min").handlers["epoch_completed"])
        1
        >>> scores = jnp.array([3.0, 1.0, 2.0, 2.5, 2.7])  # the best epoch is 1
        >>> lp = axon.loop.loop(lambda s, b: {"model_state": s["model_state"] + 1}, lambda b, i: {"model_state": jnp.zeros(())})
        >>> lp = lp.metric(lambda s: scores[s["model_state"].astype(int) - 1], "score", transform=lambda s: (s,))
        >>> final = lp.early_stop("score", patience=2, restore_best=True).run([0], epochs=5, progress=False)
        >>> final.epoch, float(final.step_state["model_state"]), final.handler_metadata["early_stop"]["best_epoch"]
        (3, 2.0, 1)
        """
        check_mode(mode, "early_stop")
        check_patience(patience, "early_stop")
        if not isinstance(restore_best, bool):
            raise TypeError(f"early_stop: expected restore_best to be a bool, got {restore_best!r}")
        if not restore_best:
            handler = monitor_handler(metric, _halt_loop, "early_stop", mode, patience, where="early_stop")
            return self.handle_event(event, handler, filter)
        best = BestModelState("early_stop")
        handler = monitor_handler(metric, _halt_loop, "early_stop", mode, patience, where="early_stop", on_improve=best.keep)
        loop_ = self.handle_event("started", best.started).handle_event(event, handler, filter)
        return loop_.handle_event(["completed", "halted"], best.ended)

    def checkpoint(
        self,
        *,
        path: str = "checkpoint",
        file_pattern: Callable[[LoopState], str] | None = None,
        event: Event = "epoch_completed",
        filter: Filter = "always",
        criteria: str | None = None,
        mode: Mode = "min",
        patience: int = 3,
        keep_best: int | None = None,
    ) -> Loop:
        """Save the whole loop state (parameters, layer and optimizer state, counters,
        random keys, handler memory) atomically.

        Resume with ``loop.from_state(axon.loop.load_checkpoint(file))``. With ``criteria``
        a checkpoint is saved only when the metric reaches a new best value, as Axon's
        documentation says ("the min score metric will be considered best when deciding to
        save"); the best value and the events since it are kept in
        ``state.handler_metadata["checkpoint"]`` (``"best"``, ``"since_last_improvement"``).
        With ``criteria`` and ``keep_best=n`` a checkpoint is saved when the metric ranks
        among the ``n`` best values so far, and the file pushed out of the ``n`` best is
        deleted: the folder holds the ``n`` best epochs (``keep_best=1``: Keras'
        ``save_best_only``, in one file per best); ``handler_metadata["checkpoint"]
        ["kept"]`` lists ``[value, file]`` best first.

        Args:
            path: the directory.
            file_pattern: the file name from the state (default
                ``checkpoint_<epoch>_<iteration>.ckpt``).
            event: when to save.
            filter: see :mod:`axon.loop.filters`.
            criteria: a metric name: save only when it reaches a new best value. It must be
                tracked by the loop or added by a handler attached before (``validate``),
                else ``run`` raises before the first step.
            mode: ``"min"``, ``"max"`` or a predicate, for ``criteria`` (``"min"`` or
                ``"max"`` with ``keep_best``).
            patience: Axon's option, "number of given events to wait for improvement"
                (default 3), accepted for Axon's code. It does not change which checkpoints
                are written (every new best is); ``since_last_improvement`` counts towards
                it and restarts at 0 after ``patience`` events without improvement, as
                ``monitor`` counts. Use ``early_stop(criteria, patience=...)`` to stop.
            keep_best: with ``criteria``, keep the checkpoints of this many best values.

        Returns:
            A new loop with the handler.

        Raises:
            ValueError: a bad ``mode``, ``patience`` or ``keep_best``, or ``keep_best``
                without ``criteria``; (when run, before the first step) a ``criteria`` the
                loop will not have.

        >>> import axon, os, tempfile, jax.numpy as jnp
        >>> path = tempfile.mkdtemp()
        >>> l = axon.loop.loop(lambda s, b: s + 1, lambda b, init: jnp.zeros(())).checkpoint(path=path)
        >>> _ = l.run([(0, 0)] * 3, epochs=2, progress=False); sorted(os.listdir(path))
        ['checkpoint_0_3.ckpt', 'checkpoint_1_3.ckpt']
        >>> scores = jnp.array([3.0, 1.0, 2.0, 0.5, 2.5])  # the two best: epochs 3 and 1
        >>> lp = axon.loop.loop(lambda s, b: s + 1, lambda b, init: jnp.zeros((), jnp.int32))
        >>> lp = lp.metric(lambda s: scores[s - 1], "score", transform=lambda s: (s,))
        >>> best = tempfile.mkdtemp()
        >>> _ = lp.checkpoint(path=best, criteria="score", keep_best=2).run([0], epochs=5, progress=False)
        >>> sorted(os.listdir(best))
        ['checkpoint_1_1.ckpt', 'checkpoint_3_1.ckpt']
        """
        check_mode(mode, "checkpoint")
        check_patience(patience, "checkpoint")
        if file_pattern is not None and not callable(file_pattern):
            raise TypeError(f"checkpoint: expected file_pattern to be a function of the state, got {file_pattern!r}")
        if keep_best is not None:
            if isinstance(keep_best, bool) or not isinstance(keep_best, int) or keep_best < 1:
                raise ValueError(f"checkpoint: expected keep_best to be a positive int or None, got {keep_best!r}")
            if criteria is None:
                raise ValueError("checkpoint: keep_best needs criteria, the metric that ranks the checkpoints")
            if mode not in ("min", "max"):
                raise ValueError(f"checkpoint: keep_best ranks values by mode 'min' or 'max', got {mode!r}")
        pattern = file_pattern or _default_checkpoint_file
        handler = checkpoint_handler(path, pattern, criteria, mode, patience, keep_best)
        return self.handle_event(event, handler, filter)

    def reduce_lr_on_plateau(
        self,
        metric: str,
        *,
        event: Event = "epoch_completed",
        filter: Filter = "always",
        mode: Mode = "min",
        patience: int = 3,
        factor: float = 0.1,
    ) -> Loop:
        """Multiply the learning rate by ``factor`` when ``metric`` has not improved for
        ``patience`` epochs.

        Works with any optax optimizer (the trainer adds an injected learning-rate scale
        after it), including ones driven by a schedule.

        Args:
            metric: the metric's name.
            event: when to check.
            filter: see :mod:`axon.loop.filters`.
            mode: ``"min"``, ``"max"`` or a predicate.
            patience: events without improvement before reducing.
            factor: the multiplier, in (0, 1).

        Returns:
            A new trainer with the handler.

        Raises:
            ValueError: not a trainer, or a bad ``factor``, ``mode`` or ``patience``; (when
                run, before the first step) a metric the loop will not have.

        >>> import axon, numpy as np, optax
        >>> model = axon.input("x", shape=(None, 1)).pipe(axon.dense, 1)
        >>> t = axon.loop.trainer(model, "mean_squared_error", optax.sgd(0.0), log=0)
        >>> t = t.reduce_lr_on_plateau("loss", patience=1, factor=0.5)
        >>> final = t.run([(np.ones((2, 1)), np.ones((2, 1)))], epochs=3, return_state=True)
        >>> axon.loop.learning_rate_scale(final)
        0.25
        """
        config = self.settings
        if not isinstance(config, TrainerConfig):
            raise ValueError("reduce_lr_on_plateau: needs a loop made by axon.loop.trainer")
        if not 0 < factor < 1:
            raise ValueError(f"reduce_lr_on_plateau: expected 0 < factor < 1, got {factor!r}")
        check_mode(mode, "reduce_lr_on_plateau")
        check_patience(patience, "reduce_lr_on_plateau")
        loop_ = self
        if not config.lr_scale:
            config = dataclasses.replace(config, lr_scale=True)
            init_fn, step_fn = train_step(
                config.built, config.loss, config.optimizer, seed=config.seed, loss_scale=config.loss_scale,
                gradient_accumulation_steps=config.gradient_accumulation_steps, lr_scale=True,
            )
            loop_ = dataclasses.replace(self, init_fn=init_fn, step_fn=step_fn, settings=config)
        handler = monitor_handler(metric, reduce_lr_action(factor), "reduce_lr", mode, patience, where="reduce_lr_on_plateau")
        return loop_.handle_event(event, handler, filter)

    def ema(self, decay: float = 0.999, *, every: int = 1) -> Loop:
        """Keep an exponential moving average of the trainable parameters, inside the
        compiled step (no extra host work or dispatch per step).

        The average starts at the initial parameters; after every ``every``-th step it
        becomes ``decay * average + (1 - decay) * parameters`` (``optax.incremental_update``,
        in float32 at least). It is ``state.step_state["ema_model_state"]``: a
        :class:`axon.ModelState` with the averaged parameters and the current layer state
        (batch-norm statistics), checkpointed and resumed with the rest of the state.
        The average is what the trainer evaluates and returns: :meth:`validate` measures
        it, ``run`` returns it (the trained parameters stay in
        ``run(..., return_state=True).step_state["model_state"]``), and
        ``early_stop(..., restore_best=True)`` keeps its best epoch. Use it like any model
        state: ``axon.predict(model, state, x)``.

        Args:
            decay: the decay, in [0, 1) (0.999: about the last 1000 updates).
            every: update the average after every this many steps.

        Returns:
            A new trainer that keeps the average.

        Raises:
            ValueError: not a trainer, a bad ``decay`` or ``every``, or an average already kept.

        >>> import axon, numpy as np
        >>> model = axon.input("x", shape=(None, 1)).pipe(axon.dense, 1, kernel_initializer="zeros")
        >>> t = axon.loop.trainer(model, "mean_squared_error", axon.optimizers.sgd(0.5), log=0).ema(0.5)
        >>> final = t.run([(np.ones((1, 1)), np.ones((1, 1)))], return_state=True)
        >>> w = final.step_state["model_state"]["dense_0"]["kernel"]
        >>> ema_w = final.step_state["ema_model_state"]["dense_0"]["kernel"]
        >>> float(w[0, 0]), float(ema_w[0, 0])  # one step: w = 0 - 0.5 * 2 * (0 - 1); average 0.5 * 0 + 0.5 * 1
        (1.0, 0.5)
        >>> float(t.run([(np.ones((1, 1)), np.ones((1, 1)))])["dense_0"]["kernel"][0, 0])  # run returns the average
        0.5
        """
        config = self.settings
        if not isinstance(config, TrainerConfig):
            raise ValueError("ema: needs a loop made by axon.loop.trainer")
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < 1:
            raise ValueError(f"ema: expected 0 <= decay < 1, got {decay!r}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"ema: expected every to be a positive int, got {every!r}")
        if is_ema_step(self.step_fn):
            raise ValueError("ema: this trainer already keeps a moving average")
        # built with the learning-rate scale reduce_lr_on_plateau adds (a multiplication by
        # 1.0, exact), so that attaching reduce_lr_on_plateau later keeps this step function
        config = dataclasses.replace(config, lr_scale=True)
        init_fn, step_fn = train_step(
            config.built, config.loss, config.optimizer, seed=config.seed, loss_scale=config.loss_scale,
            gradient_accumulation_steps=config.gradient_accumulation_steps, lr_scale=True,
        )
        init_fn, step_fn = with_ema(init_fn, step_fn, float(decay), every)
        return dataclasses.replace(self, init_fn=init_fn, step_fn=step_fn, settings=config)

    # -- experiment logs ------------------------------------------------------------------
    def log_to_csv(self, path: str | os.PathLike, *, every: int | None = None) -> Loop:
        """Write one CSV row per epoch (and, with ``every=n``, one per ``n`` iterations).

        Columns: ``event`` (``"epoch"`` or ``"iteration"``), ``epoch``, ``iteration``, every
        metric, every validation metric, ``learning_rate`` when the optimizer exposes one
        (see :mod:`axon.loop.loggers`) and ``wall_time`` (Unix seconds). The header is fixed
        by the first row; a column that appears later (a metric first computed on a later
        epoch) widens the file once, earlier rows leaving it empty.

        A run that starts at epoch 0 starts the file over; a resumed run
        (:meth:`from_state`, e.g. from a checkpoint) appends, skipping rows of epochs (and
        iterations) the file already holds, so a log has one row per epoch however often the
        run was resumed. In multi-process runs only process 0 writes. Validation metrics
        are in the epoch's row when :meth:`validate` is attached *before* this logger
        (handlers run in the order they were attached); otherwise a ``RuntimeWarning``
        names the metrics left out.

        Args:
            path: the CSV file (its directory must exist).
            every: also write a row every this many iterations (``None``: epoch rows only).

        Returns:
            A new loop with the logger.

        Raises:
            ValueError: ``every`` is not a positive int; (when run) the directory is missing.
            PermissionError: (when run) the file cannot be written.

        >>> import axon, csv, os, tempfile, numpy as np
        >>> model = axon.input("x", shape=(None, 1)).pipe(axon.dense, 1)
        >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
        >>> t = axon.loop.trainer(model, "mean_squared_error", axon.optimizers.sgd(0.1), log=0).log_to_csv(path)
        >>> _ = t.run([(np.ones((2, 1)), np.ones((2, 1)))], epochs=2)
        >>> rows = list(csv.DictReader(open(path)))
        >>> [(r["epoch"], r["learning_rate"]) for r in rows], list(rows[0])
        ([('0', '0.1'), ('1', '0.1')], ['event', 'epoch', 'iteration', 'loss', 'learning_rate', 'wall_time'])
        """
        return self._file_logger(path, "csv", every, "log_to_csv")

    def log_to_jsonl(self, path: str | os.PathLike, *, every: int | None = None) -> Loop:
        """Write one JSON object per line per epoch (and, with ``every=n``, per ``n``
        iterations); the fields, resume and multi-process behaviour are :meth:`log_to_csv`'s
        (non-scalar metrics are lists; rows need not share their fields).

        Args:
            path: the JSON Lines file (its directory must exist).
            every: also write a row every this many iterations (``None``: epoch rows only).

        Returns:
            A new loop with the logger.

        Raises:
            ValueError: ``every`` is not a positive int; (when run) the directory is missing.
            PermissionError: (when run) the file cannot be written.

        >>> import json, os, tempfile, jax.numpy as jnp
        >>> path = os.path.join(tempfile.mkdtemp(), "log.jsonl")
        >>> l = loop(lambda s, b: s + 1, lambda b, i: jnp.zeros(())).log_to_jsonl(path, every=2)
        >>> _ = l.run([0] * 4, epochs=1, progress=False)
        >>> [(r["event"], r["iteration"]) for r in map(json.loads, open(path))]
        [('iteration', 2), ('iteration', 4), ('epoch', 4)]
        """
        return self._file_logger(path, "jsonl", every, "log_to_jsonl")

    def tensorboard(
        self,
        log_dir: str | os.PathLike,
        *,
        every: int | None = None,
        histograms: bool = False,
        model: Axon | None = None,
        gradient_norms: bool = False,
    ) -> Loop:
        """Write a TensorBoard event file (with ``tensorboardX``, the ``tensorboard`` extra;
        no TensorFlow).

        Scalars ``epoch/<metric>`` for every metric and validation metric and
        ``epoch/learning_rate`` (when the optimizer exposes one) at each epoch's end, the
        epoch as the step; with ``every=n`` also ``iteration/<metric>`` every ``n``
        iterations, the global step as the step. ``histograms=True`` adds
        ``parameters/<layer>/<name>`` histograms of the trainable parameters at each
        epoch's end. Given the ``model`` graph, the model table
        (:func:`axon.display.as_table_str`, for the shapes its inputs declare) is written
        once as the text ``model/table``; it is skipped when an input declares no shape. In
        multi-process runs only process 0 writes. Validation metrics are logged when
        :meth:`validate` is attached before this logger (otherwise a ``RuntimeWarning``
        names the metrics left out).

        Args:
            log_dir: the directory for the event files (made if missing).
            every: also write iteration scalars every this many iterations (``None``:
                epoch scalars only).
            histograms: write parameter histograms every epoch.
            model: the graph, for the model table.
            gradient_norms: (a trainer) also write ``epoch/gradient_norm/global`` and
                ``epoch/gradient_norm/<layer>`` (and the ``iteration/`` ones with ``every``):
                the L2 norms of the latest step's gradients, over all trainable parameters
                and per layer, which the train step computes from the gradients it already
                has (:mod:`axon.loop.gradient_norms`; no second backward pass).

        Returns:
            A new loop with the logger.

        Raises:
            ImportError: ``tensorboardX`` is not installed (``pip install "axon-jax[tensorboard]"``).
            ValueError: bad ``every``; (when run) ``log_dir`` is a file.
            PermissionError: (when run) ``log_dir`` cannot be written.

        >>> import axon, os, tempfile, numpy as np
        >>> model = axon.input("x", shape=(None, 1)).pipe(axon.dense, 1)
        >>> t = axon.loop.trainer(model, "mean_squared_error", "sgd", log=0)
        >>> log_dir = tempfile.mkdtemp()
        >>> t = t.tensorboard(log_dir, histograms=True, model=model)  # doctest: +SKIP
        >>> _ = t.run([(np.ones((2, 1)), np.ones((2, 1)))], epochs=2)
        >>> os.listdir(log_dir)[0].startswith("events.out.tfevents")  # doctest: +SKIP
        True
        """
        _check_every(every, "tensorboard")
        if not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(f"tensorboard: expected log_dir to be a directory path, got {log_dir!r}")
        if not isinstance(histograms, bool):
            raise TypeError(f"tensorboard: expected histograms to be a bool, got {histograms!r}")
        if not isinstance(gradient_norms, bool):
            raise TypeError(f"tensorboard: expected gradient_norms to be a bool, got {gradient_norms!r}")
        if gradient_norms and not isinstance(self.settings, TrainerConfig):
            raise ValueError("tensorboard: gradient_norms=True needs a loop made by axon.loop.trainer")
        if model is not None and not isinstance(model, Axon):
            raise TypeError(f"tensorboard: expected model to be an axon graph, got {type(model).__name__}")
        try:
            from tensorboardX import SummaryWriter
        except ImportError as e:
            raise ImportError(
                'tensorboard: needs tensorboardX; install it with pip install "axon-jax[tensorboard]" '
                "(or pip install tensorboardX)"
            ) from e
        table = None if model is None else functools.partial(_model_table, model)
        logger = TensorBoardLogger(SummaryWriter, os.fspath(log_dir), every, histograms, table, gradient_norms)
        loop_ = self
        if gradient_norms:
            loop_ = record_gradient_norms(self)
        loop_ = loop_.handle_event("started", logger.started).handle_event("epoch_completed", logger.epoch_completed)
        if every is not None:
            loop_ = loop_.handle_event("iteration_completed", logger.iteration_completed)
        loop_ = loop_.handle_event(["epoch_started", "completed", "halted"], logger.late.check)
        return loop_.handle_event(["completed", "halted"], logger.closed)

    def plot(
        self,
        metrics: str | Sequence[str] | None = None,
        *,
        every: Literal["epoch"] | int = "epoch",
        path: str | os.PathLike | None = None,
    ) -> Loop:
        """Plot the metrics while the loop runs (Axon's ``kino_vega_lite_plot``, with
        matplotlib: the ``plot`` extra).

        In Jupyter (IPython importable and a kernel running) one chart, drawn by
        :func:`axon.plot.history`, updates in place (an ``IPython.display`` handle) after each
        epoch, or every ``every`` iterations with the current epoch's running values as its
        last point. With ``path`` a PNG of the final history is written when the run ends
        (for terminals and scripts). Only the main process draws.

        Args:
            metrics: a metric name or names (each also draws its ``validation_`` curve);
                ``None``: every metric.
            every: ``"epoch"``, or redraw every this many iterations.
            path: a PNG file to write at the end (its directory must exist), or ``None``.

        Returns:
            A new loop with the plot.

        Raises:
            ImportError: matplotlib is not installed (``pip install "axon-jax[plot]"``).
            ValueError: a metric the loop does not track, or a bad ``every``.

        >>> import axon, os, tempfile, numpy as np
        >>> model = axon.input("x", shape=(None, 1)).pipe(axon.dense, 1)
        >>> png = os.path.join(tempfile.mkdtemp(), "history.png")
        >>> t = axon.loop.trainer(model, "mean_squared_error", "sgd", log=0)
        >>> t = t.plot("loss", path=png)  # doctest: +SKIP
        >>> _ = t.run([(np.ones((2, 1)), np.ones((2, 1)))], epochs=2)
        >>> open(png, "rb").read(4) == b"\\x89PNG"  # doctest: +SKIP
        True
        """
        names = None if metrics is None else [metrics] if isinstance(metrics, str) else list(metrics)
        tracked = [m.name for m in self.metrics]
        for name in names or ():
            base = name[len("validation_"):] if isinstance(name, str) and name.startswith("validation_") else name
            if base not in tracked:
                raise ValueError(f"plot: metric {name!r} is not tracked by this loop; its metrics are {tracked}")
        if not (every == "epoch" or (isinstance(every, int) and not isinstance(every, bool) and every > 0)):
            raise ValueError(f"plot: expected every to be 'epoch' or a positive int, got {every!r}")
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"plot: expected path to be a file path, got {path!r}")
        plot_module.require_matplotlib()
        live = LivePlot(names, None if path is None else os.fspath(path), None if every == "epoch" else every)
        loop_ = self.handle_event("started", live.started).handle_event("epoch_completed", live.epoch_completed)
        if every != "epoch":
            loop_ = loop_.handle_event("iteration_completed", live.iteration_completed)
        return loop_.handle_event(["completed", "halted"], live.finished)

    def _file_logger(self, path: Any, fmt: Literal["csv", "jsonl"], every: int | None, where: str) -> Loop:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"{where}: expected path to be a file path, got {path!r}")
        _check_every(every, where)
        logger = FileLogger(path, fmt, where, every)
        loop_ = self.handle_event("started", logger.started).handle_event("epoch_completed", logger.epoch_completed)
        if every is not None:
            loop_ = loop_.handle_event("iteration_completed", logger.iteration_completed)
        return loop_.handle_event(["epoch_started", "completed", "halted"], logger.late.check)

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
        validation_split: float = 0.0,
        prefetch: int | None = None,
    ) -> Any:
        """Run the loop over ``data``.

        Args:
            data: a re-iterable of batches (a trainer's and evaluator's are ``(inputs,
                targets)``), a function returning an iterator, or ``(inputs, targets)``
                arrays with ``batch_size``.
            init_state: passed to ``init_fn`` (a trainer's or evaluator's model state).
            epochs: how many epochs.
            iterations: the most batches per epoch (``None``: all).
            jit: compile the step (``False`` runs it eagerly, for debugging).
            batch_size: split arrays ``(inputs, targets)`` into batches of this size.
            shuffle: reshuffle the arrays every epoch, from ``seed``.
            seed: the shuffling seed.
            steps_per_execution: run k steps per compiled call (iteration events and
                metrics then follow each chunk).
            progress: ``False`` silences a trainer's or evaluator's progress display.
            return_state: return the final :class:`LoopState` instead of
                ``output_transform(state)``.
            validation_split: (a trainer, arrays with ``batch_size``) hold out this last
                fraction of the arrays, before shuffling, as Keras does, and evaluate it at
                every epoch's end as ``validation_<metric>``, before the other epoch handlers
                (:mod:`axon.loop.validation_split`).
            prefetch: read and prepare up to this many chunks of batches ahead on a
                background thread (:mod:`axon.loop.prefetch`); 0 reads them in the loop;
                ``None`` (the default) chooses: 0 for arrays or a list of batches already in
                memory on the CPU backend (a thread would only cost time there), else 2
                (:func:`axon.loop.prefetch.default_prefetch`).
                The results are the same either way.

        Returns:
            ``output_transform(final_state)``, or the final state.

        Raises:
            ValueError: bad options, empty data, or (a trainer) a non-finite loss
                (:class:`NonFiniteLossError`).

        >>> import jax.numpy as jnp
        >>> counter = loop(lambda s, b: s + 1, lambda b, init: jnp.zeros(()))
        >>> counter.run([0] * 5, iterations=2, epochs=2, return_state=True).history
        {0: {}, 1: {}}
        """
        program = self.compiled.get(self._make_program)
        handlers = self.handlers
        if validation_split:
            data, handlers = with_validation_split(self, data, validation_split, batch_size)
        init_fn = with_gradient_norms(self.init_fn) if getattr(self.settings, "gradient_norms", False) else self.init_fn
        runner = Runner(program, init_fn, handlers, self.settings, self.attached_state, progress, backup=self.backup)
        state = runner.run(
            data, init_state, epochs=epochs, iterations=iterations, jit=jit, batch_size=batch_size,
            shuffle=shuffle, seed=seed, steps_per_execution=steps_per_execution, prefetch=prefetch,
        )
        return state if return_state else self.output_transform(state)

    def _make_program(self) -> StepProgram:
        supervised = self.settings is not None
        return StepProgram(
            self.step_fn,
            self.metrics,
            track_loss=isinstance(self.settings, TrainerConfig),
            outputs_only=("y_true", "y_pred") if supervised else (),
            constrain=self.settings.distribution.constrain if supervised and self.settings.distribution else None,
        )


def _log_stream(device: Any) -> Callable[[], TextIO]:
    """The stream for ``log``'s ``device``, looked up when writing (so that a replaced
    ``sys.stdout``, as pytest's capture or a notebook's, is honoured)."""
    if isinstance(device, str):
        if device == "stdio":
            return lambda: sys.stdout
        if device == "stderr":
            return lambda: sys.stderr
        raise ValueError(f"log: expected device to be 'stdio', 'stderr' or a text stream, got {device!r}")
    if not callable(getattr(device, "write", None)):
        raise ValueError(f"log: expected device to be 'stdio', 'stderr' or a text stream, got {device!r}")
    return lambda: device


def _model_table(model: Axon) -> str:
    """The model table for the shapes the model's inputs declare (``ValueError`` when one
    declares none)."""
    templates = build(model)[0].declared_templates()
    return as_table_str(model, templates)


def _check_every(every: Any, where: str) -> None:
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise ValueError(f"{where}: expected every to be a positive int or None, got {every!r}")


def _halt_loop(state: LoopState) -> tuple[Literal["halt_loop"], LoopState]:
    return "halt_loop", state


def _default_checkpoint_file(state: LoopState) -> str:
    return f"checkpoint_{state.epoch}_{state.iteration}.ckpt"


def loop(
    step_fn: Callable[[Any, Any], Any],
    init_fn: Callable[[Any, Any], Any] | None = None,
    output_transform: Callable[[LoopState], Any] | None = None,
) -> Loop:
    """A custom loop.

    Args:
        step_fn: ``step_fn(step_state, batch) -> step_state``; a batch can be anything.
        init_fn: ``init_fn(first_batch, init_state) -> step_state`` (default: ``run``'s
            ``init_state``).
        output_transform: what ``run`` returns, from the final :class:`LoopState`
            (default: the state).

    Returns:
        The loop.

    Raises:
        TypeError: ``step_fn`` is not callable.

    >>> import jax.numpy as jnp
    >>> total = loop(lambda s, b: s + b[0], lambda b, init: jnp.zeros(())).run([(1.0, None), (2.0, None)], progress=False)
    >>> float(total.step_state)
    3.0
    """
    if not callable(step_fn):
        raise TypeError(f"loop: expected step_fn to be a function, got {step_fn!r}")
    return Loop(init_fn=init_fn or _given_state, step_fn=step_fn, output_transform=output_transform or _identity)


def _given_state(batch: Any, init_state: Any) -> Any:
    return init_state


def _identity(state: LoopState) -> LoopState:
    return state
