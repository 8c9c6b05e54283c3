"""The built-in event handlers behind ``Loop.log``, ``validate``, ``monitor``,
``early_stop``, ``checkpoint`` and ``reduce_lr_on_plateau``: each function here makes a
handler ``handler(state) -> (action, state)``; the ``Loop`` methods check their options and
attach them.

>>> import io
>>> from axon.loop.state import LoopState
>>> out = io.StringIO()
>>> log_handler(lambda s: f"epoch {s.epoch}", lambda: out)(LoopState(step_state={}))[0], out.getvalue()
('continue', 'epoch 0\\n')
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, Literal, TextIO

import jax.numpy as jnp
import numpy as np

from axon._host import writes_files
from axon.loop.checkpoint import serialize_state, write_atomic
from axon.loop.ema import evaluated_model_state
from axon.loop.metric_check import adds_metrics, watches
from axon.loop.state import LoopState

__all__ = [
    "Handler",
    "Mode",
    "checkpoint_handler",
    "check_mode",
    "learning_rate_scale",
    "log_handler",
    "monitor_handler",
    "reduce_lr_action",
    "validate_handler",
]

Action = Literal["continue", "halt_epoch", "halt_loop"]
Handler = Callable[[LoopState], tuple[Action, LoopState]]
Mode = Literal["min", "max"] | Callable[[float], bool]


def log_handler(message_fn: Callable[[LoopState], str], stream: Callable[[], TextIO]) -> Handler:
    """Write ``message_fn(state)`` and a newline to ``stream()``; an exception inside
    ``message_fn`` is reported on standard error and halts the loop, as in Axon.

    Args:
        message_fn: makes the message from the loop state.
        stream: returns where to write.

    Returns:
        The handler.
    """

    def handler(state: LoopState) -> tuple[Action, LoopState]:
        try:
            message = message_fn(state)
        except Exception as e:  # report and halt, as Axon does
            print(f"log handler failed: {type(e).__name__}: {e}", file=sys.stderr)
            return "halt_loop", state
        print(message, file=stream(), flush=True)
        return "continue", state

    return handler


def validate_handler(evaluate: Callable[[Any], dict[str, float]], names: Sequence[str] = ()) -> Handler:
    """Add ``validation_<name>`` metrics computed by ``evaluate(model_state)`` to the
    current metrics.

    Args:
        evaluate: runs an evaluation with a model state and returns the metric values by
            name; it gets the step state's ``model_state``, or its moving average
            (``ema_model_state``, ``Loop.ema``) when there is one.
        names: the names of the metrics ``evaluate`` gives (for the check that watched
            metrics exist, :mod:`axon.loop.metric_check`).

    Returns:
        The handler.
    """

    def handler(state: LoopState) -> tuple[Action, LoopState]:
        values = evaluate(evaluated_model_state(state.step_state))
        state.metrics = {**state.metrics, **{f"validation_{k}": jnp.asarray(v) for k, v in values.items()}}
        return "continue", state

    return adds_metrics(handler, [f"validation_{n}" for n in names])


def check_mode(mode: Any, where: str) -> Callable[[float, float], bool]:
    """``improved(new, best)`` for ``mode`` ``"min"``, ``"max"`` or a predicate on the value.

    Args:
        mode: ``"min"``, ``"max"`` or ``fn(value) -> bool``.
        where: the name used in error messages.

    Returns:
        The comparison.

    Raises:
        ValueError: any other ``mode``.

    >>> check_mode("max", "monitor")(2.0, 1.0)
    True
    """
    if mode == "min":
        return lambda new, best: new < best
    if mode == "max":
        return lambda new, best: new > best
    if callable(mode):
        return lambda new, best: bool(mode(new))
    raise ValueError(f"{where}: expected mode to be 'min', 'max' or a predicate, got {mode!r}")


def check_patience(patience: Any, where: str) -> int:
    """``patience`` if it is a non-negative int, else a ``ValueError`` naming ``where``.

    >>> check_patience(3, "early_stop")
    3
    """
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
        raise ValueError(f"{where}: expected patience to be a non-negative int, got {patience!r}")
    return patience


def _metric_value(state: LoopState, metric: str, where: str) -> float:
    if metric not in state.metrics:
        raise ValueError(f"{where}: metric {metric!r} is not tracked; tracked metrics are {sorted(state.metrics)}")
    return float(np.asarray(state.metrics[metric]))


def monitor_handler(
    metric: str,
    fn: Handler,
    name: str,
    mode: Any,
    patience: int,
    *,
    where: str = "monitor",
    on_improve: Callable[[LoopState], None] | None = None,
) -> Handler:
    """Track the best value of ``metric`` in ``state.handler_metadata[name]``; after
    ``patience`` events without improvement call ``fn(state)`` and count again.

    Args:
        metric: the metric's name in ``state.metrics``.
        fn: what to do when the metric stalls.
        name: the key in ``state.handler_metadata``.
        mode: ``"min"``, ``"max"`` or a predicate.
        patience: events without improvement before ``fn`` runs.
        where: the method's name, for error messages.
        on_improve: called with the state when the metric reaches a new best value.

    Returns:
        The handler.
    """
    improved = check_mode(mode, where)

    def handler(state: LoopState) -> tuple[Action, LoopState]:
        value = _metric_value(state, metric, where)
        memory = state.handler_metadata.setdefault(name, {"best": None, "since_last_improvement": 0})
        if memory["best"] is None or improved(value, memory["best"]):
            memory["best"] = value
            memory["since_last_improvement"] = 0
            if on_improve is not None:
                on_improve(state)
            return "continue", state
        memory["since_last_improvement"] += 1
        if memory["since_last_improvement"] >= patience:
            memory["since_last_improvement"] = 0
            return fn(state)
        return "continue", state

    return watches(handler, metric, where)


def checkpoint_handler(
    path: str,
    file_pattern: Callable[[LoopState], str],
    criteria: str | None,
    mode: Any,
    patience: int = 3,
    keep_best: int | None = None,
) -> Handler:
    """Save the loop state to ``path/file_pattern(state)`` atomically; with ``criteria``,
    only when that metric reaches a new best value, or with ``keep_best=n`` when it ranks
    among the ``n`` best so far (the file pushed out of the ``n`` best is deleted).

    Args:
        path: the directory.
        file_pattern: the file name from the state.
        criteria: a metric name, or ``None`` to save on every event.
        mode: ``"min"``, ``"max"`` or a predicate, for ``criteria`` (``"min"`` or
            ``"max"`` with ``keep_best``).
        patience: events without improvement after which ``since_last_improvement``
            restarts at 0 (it does not change which checkpoints are written).
        keep_best: keep the files of the ``n`` best values of ``criteria`` (their values
            and files are ``handler_metadata["checkpoint"]["kept"]``, best first).

    Returns:
        The handler.
    """
    improved = check_mode(mode, "checkpoint")

    def file_of(state: LoopState) -> str:
        filename = file_pattern(state)
        if not isinstance(filename, str):
            raise TypeError(f"checkpoint: file_pattern must return a string, got {filename!r}")
        return os.path.join(path, filename)

    def save(state: LoopState, file: str) -> None:
        state.handler_metadata.setdefault("checkpoint", {})["last"] = file
        write_atomic(file, serialize_state(state))

    def ranked(state: LoopState, memory: dict, value: float) -> tuple[str, list[str]] | None:
        """The file to write and the files to delete, or None when ``value`` is not among
        the ``keep_best`` best."""
        kept = memory.get("kept", [])
        if len(kept) >= keep_best and not improved(value, kept[-1][0]):
            return None
        file = file_of(state)
        kept = sorted([*(k for k in kept if k[1] != file), [value, file]], key=lambda k: k[0], reverse=mode == "max")
        memory["kept"] = kept[:keep_best]
        return file, [f for _, f in kept[keep_best:] if f != file]

    def handler(state: LoopState) -> tuple[Action, LoopState]:
        pushed_out: list[str] = []
        if criteria is not None:
            value = _metric_value(state, criteria, "checkpoint")
            memory = state.handler_metadata.setdefault("checkpoint", {})
            best = memory.get("best")
            new_best = best is None or improved(value, best)
            if new_best:
                memory["best"] = value
                memory["since_last_improvement"] = 0
            else:
                waited = memory.get("since_last_improvement", 0) + 1
                memory["since_last_improvement"] = 0 if waited >= patience else waited
            if keep_best is not None:
                chosen = ranked(state, memory, value)
                if chosen is None:
                    return "continue", state
                file, pushed_out = chosen
            elif not new_best:
                return "continue", state
            else:
                file = file_of(state)
        else:
            file = file_of(state)
        save(state, file)
        if writes_files():
            for old in pushed_out:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(old)
        return "continue", state

    return handler if criteria is None else watches(handler, criteria, "checkpoint")


def _is_lr_scale(opt_state: Any) -> bool:
    hp = getattr(opt_state, "hyperparams", None)
    return isinstance(opt_state, tuple) and isinstance(hp, dict) and "step_size" in hp


def _scale_learning_rate(opt_state: Any, factor: float) -> tuple[Any, bool]:
    """Multiply the trainer's injected learning-rate scale by ``factor``."""
    if _is_lr_scale(opt_state):
        hp = dict(opt_state.hyperparams)
        hp["step_size"] = hp["step_size"] * factor
        return opt_state._replace(hyperparams=hp), True
    if isinstance(opt_state, tuple):
        items, found = [], False
        for item in reversed(opt_state):
            if not found:
                item, found = _scale_learning_rate(item, factor)
            items.append(item)
        items.reverse()
        rebuilt = type(opt_state)(*items) if hasattr(opt_state, "_fields") else tuple(items)
        return rebuilt, found
    return opt_state, False


def reduce_lr_action(factor: float) -> Handler:
    """Multiply the trainer's learning-rate scale (in the optimizer state) by ``factor``.

    Args:
        factor: the multiplier.

    Returns:
        The action, for :func:`monitor_handler`.

    Raises:
        ValueError: (when run) the optimizer state has no learning-rate scale.
    """

    def reduce(state: LoopState) -> tuple[Action, LoopState]:
        opt_state, found = _scale_learning_rate(state.step_state["optimizer_state"], factor)
        if not found:  # pragma: no cover - the trainer always adds the scale
            raise ValueError("reduce_lr_on_plateau: no learning-rate scale in the optimizer state")
        state.step_state = {**state.step_state, "optimizer_state": opt_state}
        return "continue", state

    return reduce


def learning_rate_scale(state: LoopState) -> float:
    """The current learning-rate multiplier set by ``reduce_lr_on_plateau`` (1.0 at start).

    Args:
        state: a trainer's loop state.

    Returns:
        The multiplier.

    >>> learning_rate_scale(LoopState(step_state={"optimizer_state": ()}))
    1.0
    """

    def find(s: Any) -> float | None:
        if _is_lr_scale(s):
            return float(s.hyperparams["step_size"])
        if isinstance(s, tuple):
            for item in reversed(s):
                v = find(item)
                if v is not None:
                    return v
        return None

    value = find(state.step_state["optimizer_state"])
    return 1.0 if value is None else value
