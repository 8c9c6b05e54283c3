"""Built-in handlers, available as ``Loop`` methods: ``log``, ``validate``, ``monitor``,
``early_stop``, ``checkpoint``, ``reduce_lr_on_plateau``.

>>> import axon
>>> t = axon.loop.trainer(axon.input("x").pipe(axon.dense, 1), "mean_squared_error", "sgd", log=0)
>>> t.early_stop("loss", patience=2).handlers["epoch_completed"][0][1]
'always'
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

import jax.numpy as jnp
import numpy as np

from axon.loop.checkpoint import serialize_state, write_atomic
from axon.loop.core import Loop
from axon.loop.state import LoopState

__all__ = ["checkpoint", "early_stop", "log", "monitor", "reduce_lr_on_plateau", "validate"]

_MODES = ("min", "max")


def log(
    loop: Loop,
    message_fn: Callable[[LoopState], str],
    *,
    event: str = "iteration_completed",
    filter: Any = "always",
    file: TextIO | None = None,
) -> Loop:
    """Write ``message_fn(state)`` on ``event``. An exception inside ``message_fn`` is
    reported and halts the loop.

    >>> import axon, io
    >>> out = io.StringIO()
    >>> l = axon.loop.loop(lambda s, b: s, lambda b, i: 0).log(lambda s: f"epoch {s.epoch}", event="epoch_completed", file=out)
    >>> _ = l.run([(0, 0)], epochs=2, progress=False); out.getvalue()
    'epoch 0\\nepoch 1\\n'
    """

    def handler(state: LoopState):
        try:
            message = message_fn(state)
        except Exception as e:  # report and halt, as Axon does
            print(f"log handler failed: {type(e).__name__}: {e}", file=sys.stderr)
            return "halt_loop", state
        print(message, file=file or sys.stdout, flush=True)
        return "continue", state

    return loop.handle_event(event, handler, filter)


def validate(
    loop: Loop,
    model: Any,
    validation_data: Any,
    *,
    event: str = "epoch_completed",
    filter: Any = "always",
    batch_size: int | None = None,
) -> Loop:
    """Evaluate the current model state on ``validation_data`` with the metrics attached
    so far (the loss too, for a trainer) and add them to the epoch's metrics as
    ``validation_<name>``.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 1)).pipe(axon.dense, 1)
    >>> data = [(jnp.ones((4, 1)), jnp.zeros((4, 1)))]
    >>> t = axon.loop.trainer(model, "mean_squared_error", "sgd", log=0).validate(model, data)
    >>> sorted(t.run(data, return_state=True).history[0])
    ['loss', 'validation_loss']
    """
    from axon.loop.core import Loop as _Loop
    from axon.loop.steps import eval_step

    init_fn, step_fn = eval_step(model, seed=loop.config.get("seed"))
    evaluator = _Loop(init_fn, step_fn, output_transform=lambda s: s.history, kind="evaluator",
                      config={"program": loop.config.get("eval_program")})
    for spec in loop.metrics:
        if spec.evaluate is not None:
            evaluator = evaluator.metric(spec.evaluate, spec.name)

    def handler(state: LoopState):
        model_state = state.step_state["model_state"]
        result = evaluator.run(validation_data, model_state, batch_size=batch_size, progress=False, return_state=True)
        values = result.history[0]
        state.metrics = {**state.metrics, **{f"validation_{k}": jnp.asarray(v) for k, v in values.items()}}
        return "continue", state

    return loop.handle_event(event, handler, filter)


def _check_mode(mode: Any, where: str) -> Callable[[float, float], bool]:
    if mode == "min":
        return lambda new, best: new < best
    if mode == "max":
        return lambda new, best: new > best
    if callable(mode):
        return lambda new, best: bool(mode(new))
    raise ValueError(f"{where}: expected mode to be 'min', 'max' or a predicate, got {mode!r}")


def _metric_value(state: LoopState, metric: str, where: str) -> float:
    if metric not in state.metrics:
        raise ValueError(f"{where}: metric {metric!r} is not tracked; tracked metrics are {sorted(state.metrics)}")
    return float(np.asarray(state.metrics[metric]))


def monitor(
    loop: Loop,
    metric: str,
    fn: Callable[[LoopState], Any],
    name: str,
    *,
    event: str = "epoch_completed",
    filter: Any = "always",
    mode: Any = "min",
    patience: int = 3,
) -> Loop:
    """Track the best value of ``metric`` in ``state.handler_metadata[name]``; when it has
    not improved for ``patience`` events, call ``fn(state) -> (action, state)`` and start
    counting again. ``mode`` is ``"min"``, ``"max"`` or a predicate on the value.

    >>> import axon, jax.numpy as jnp
    >>> stalled = []
    >>> l = axon.loop.loop(lambda s, b: s + 1, lambda b, init: jnp.zeros(()))
    >>> l = l.metric(lambda s: jnp.ones(()), "flat", transform=lambda s: s)
    >>> l = l.monitor("flat", lambda s: (stalled.append(s.epoch), ("continue", s))[1], "watch", patience=2)
    >>> _ = l.run([(0, 0)], epochs=5, progress=False); stalled
    [2, 4]
    """
    improved = _check_mode(mode, "monitor")
    if not isinstance(patience, int) or patience < 0:
        raise ValueError(f"monitor: expected patience to be a non-negative int, got {patience!r}")

    def handler(state: LoopState):
        value = _metric_value(state, metric, "monitor")
        memory = state.handler_metadata.setdefault(name, {"best": None, "since_last_improvement": 0})
        if memory["best"] is None or improved(value, memory["best"]):
            memory["best"] = value
            memory["since_last_improvement"] = 0
            return "continue", state
        memory["since_last_improvement"] += 1
        if memory["since_last_improvement"] >= patience:
            memory["since_last_improvement"] = 0
            return fn(state)
        return "continue", state

    return loop.handle_event(event, handler, filter)


def early_stop(
    loop: Loop, metric: str, *, event: str = "epoch_completed", filter: Any = "always", mode: Any = "min", patience: int = 3
) -> Loop:
    """Halt the loop when ``metric`` has not improved for ``patience`` epochs.

    >>> import axon
    >>> t = axon.loop.trainer(axon.input("x").pipe(axon.dense, 1), "mean_squared_error", "sgd", log=0)
    >>> len(t.early_stop("validation_loss", mode="min").handlers["epoch_completed"])
    1
    """
    return monitor(loop, metric, lambda s: ("halt_loop", s), "early_stop", event=event, filter=filter, mode=mode, patience=patience)


def checkpoint(
    loop: Loop,
    *,
    path: str = "checkpoint",
    file_pattern: Callable[[LoopState], str] | None = None,
    event: str = "epoch_completed",
    filter: Any = "always",
    criteria: str | None = None,
    mode: Any = "min",
) -> Loop:
    """Save the whole loop state (parameters, layer and optimizer state, counters, random
    keys, handler memory) to ``path/checkpoint_<epoch>_<iteration>.ckpt`` (or
    ``file_pattern(state)``), atomically. With ``criteria`` (a metric name) it saves only
    when that metric reaches a new best value. Resume with
    ``loop.from_state(axon.loop.load_checkpoint(file))``.

    >>> import axon, os, tempfile, jax.numpy as jnp
    >>> path = tempfile.mkdtemp()
    >>> l = axon.loop.loop(lambda s, b: s + 1, lambda b, init: jnp.zeros(())).checkpoint(path=path)
    >>> _ = l.run([(0, 0)] * 3, epochs=2, progress=False); sorted(os.listdir(path))
    ['checkpoint_0_3.ckpt', 'checkpoint_1_3.ckpt']
    """
    pattern = file_pattern or (lambda s: f"checkpoint_{s.epoch}_{s.iteration}.ckpt")
    improved = _check_mode(mode, "checkpoint")

    def save(state: LoopState) -> None:
        filename = pattern(state)
        if not isinstance(filename, str):
            raise TypeError(f"checkpoint: file_pattern must return a string, got {filename!r}")
        state.handler_metadata.setdefault("checkpoint", {})["last"] = os.path.join(path, filename)
        write_atomic(os.path.join(path, filename), serialize_state(state))

    def handler(state: LoopState):
        if criteria is not None:
            value = _metric_value(state, criteria, "checkpoint")
            memory = state.handler_metadata.setdefault("checkpoint", {})
            best = memory.get("best")
            if best is not None and not improved(value, best):
                return "continue", state
            memory["best"] = value
        save(state)
        return "continue", state

    return loop.handle_event(event, handler, filter)


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


def learning_rate_scale(state: LoopState) -> float:
    """The current learning-rate multiplier set by ``reduce_lr_on_plateau`` (1.0 at start)."""

    def find(s):
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


def reduce_lr_on_plateau(
    loop: Loop,
    metric: str,
    *,
    event: str = "epoch_completed",
    filter: Any = "always",
    mode: Any = "min",
    patience: int = 3,
    factor: float = 0.1,
) -> Loop:
    """Multiply the learning rate by ``factor`` when ``metric`` has not improved for
    ``patience`` epochs. Works with any optax optimizer (the trainer adds an injected
    learning-rate scale after it), including ones driven by a schedule.

    >>> import axon, numpy as np, optax
    >>> model = axon.input("x", shape=(None, 1)).pipe(axon.dense, 1)
    >>> t = axon.loop.trainer(model, "mean_squared_error", optax.sgd(0.0), log=0)
    >>> t = t.reduce_lr_on_plateau("loss", patience=1, factor=0.5)
    >>> final = t.run([(np.ones((2, 1)), np.ones((2, 1)))], epochs=3, return_state=True)
    >>> axon.loop.learning_rate_scale(final)
    0.25
    """
    if loop.kind != "trainer":
        raise ValueError("reduce_lr_on_plateau: needs a loop made by axon.loop.trainer")
    if not 0 < factor < 1:
        raise ValueError(f"reduce_lr_on_plateau: expected 0 < factor < 1, got {factor!r}")
    from axon.loop.factories import rebuild_trainer

    loop = rebuild_trainer(loop, lr_scale=True)

    def reduce(state: LoopState):
        opt_state, found = _scale_learning_rate(state.step_state["optimizer_state"], factor)
        if not found:  # pragma: no cover - the trainer always adds the scale
            raise ValueError("reduce_lr_on_plateau: no learning-rate scale in the optimizer state")
        state.step_state = {**state.step_state, "optimizer_state": opt_state}
        return "continue", state

    return monitor(loop, metric, reduce, "reduce_lr", event=event, filter=filter, mode=mode, patience=patience)


for _fn in (log, validate, monitor, early_stop, checkpoint, reduce_lr_on_plateau):
    setattr(Loop, _fn.__name__, _fn)
del _fn
