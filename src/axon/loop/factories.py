"""``trainer`` and ``evaluator``: ready-made loops for supervised training and evaluation.

>>> import axon, jax.numpy as jnp
>>> model = axon.input("x", shape=(None, 1)).pipe(axon.dense, 1)
>>> data = [(jnp.array([[1.0], [2.0]]), jnp.array([[2.0], [4.0]]))] * 10
>>> state = axon.loop.trainer(model, "mean_squared_error", axon.optimizers.sgd(0.2), log=0).run(data, epochs=20)
>>> round(float(axon.predict(model, state, jnp.array([[3.0]]))[0, 0]), 1)
6.0
"""

from __future__ import annotations

import dataclasses
from typing import Any

from axon.compiler import PredictFunction
from axon.loop.core import Loop
from axon.loop.steps import eval_step, resolve_model, train_step

__all__ = ["evaluator", "rebuild_trainer", "trainer"]

_NONFINITE = ("raise", "continue")


def _program(model: Any, mode: str, seed: int | None):
    _, predict_fn = resolve_model(model, mode, seed)
    return predict_fn if isinstance(predict_fn, PredictFunction) else None


def trainer(
    model: Any,
    loss: Any,
    optimizer: Any,
    *,
    seed: int | None = None,
    log: int = 50,
    loss_scale: Any = None,
    gradient_accumulation_steps: int = 1,
    on_nonfinite: str = "raise",
) -> Loop:
    """A training loop: ``run`` returns the trained :class:`axon.ModelState`.

    ``model`` is a graph (or an ``(init_fn, predict_fn)`` pair built in train mode);
    ``loss`` a name from :mod:`axon.losses` (mean reduction), a function
    ``loss(y_true, y_pred) -> scalar``, or a list of ``(loss, weight)`` for a
    multi-output model; ``optimizer`` a name or any optax transformation. The loop tracks
    ``"loss"`` (the epoch's running average) and shows progress every ``log`` iterations
    (``log=0`` is silent). ``loss_scale`` is ``"static"``, ``"dynamic"`` or a triple from
    :mod:`axon.loss_scale` (non-finite gradients then skip the update). A NaN or infinite
    loss raises :class:`axon.loop.NonFiniteLossError` naming the epoch and iteration, unless
    ``on_nonfinite="continue"``.

    >>> import axon, numpy as np
    >>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1)
    >>> x = np.ones((8, 2), np.float32); y = np.full((8, 1), 3.0, np.float32)
    >>> loop = axon.loop.trainer(model, "mean_squared_error", "adam", log=0)
    >>> final = loop.run((x, y), batch_size=4, epochs=2, return_state=True)
    >>> sorted(final.history), final.trace_count
    ([0, 1], 1)
    """
    if on_nonfinite not in _NONFINITE:
        raise ValueError(f"trainer: expected on_nonfinite to be one of {list(_NONFINITE)}, got {on_nonfinite!r}")
    if not isinstance(log, int) or isinstance(log, bool):
        raise TypeError(f"trainer: expected log to be an int (0 disables logging), got {log!r}")
    args = dict(model=model, loss=loss, optimizer=optimizer, seed=seed, loss_scale=loss_scale,
                gradient_accumulation_steps=gradient_accumulation_steps, lr_scale=False)
    init_fn, step_fn = train_step(model, loss, optimizer, seed=seed, loss_scale=loss_scale,
                                  gradient_accumulation_steps=gradient_accumulation_steps)
    config = {
        "train_args": args,
        "program": _program(model, "train", seed),
        "eval_program": _program(model, "inference", seed),
        "log": log,
        "seed": seed,
        "on_nonfinite": on_nonfinite,
    }
    loop = Loop(init_fn, step_fn, output_transform=lambda s: s.step_state["model_state"], kind="trainer", config=config)
    loop = loop.metric(lambda loss_value: loss_value, "loss", transform="loss")
    loss_metric = dataclasses.replace(loop.metrics[0], evaluate=step_fn.loss_fn)
    return dataclasses.replace(loop, metrics=(loss_metric,))


def rebuild_trainer(loop: Loop, **changes: Any) -> Loop:
    """The same trainer with different train-step arguments (used by handlers that need
    a different step, e.g. ``reduce_lr_on_plateau``)."""
    args = {**loop.config["train_args"], **changes}
    if args == loop.config["train_args"]:
        return loop
    init_fn, step_fn = train_step(**args)
    return dataclasses.replace(loop, init_fn=init_fn, step_fn=step_fn, config={**loop.config, "train_args": args})


def evaluator(model: Any, *, seed: int | None = None, log: int = 0) -> Loop:
    """An evaluation loop in inference mode: run it with the trained state as
    ``init_state``; ``run`` returns ``{epoch: {metric: value}}``.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 2, kernel_initializer="identity")
    >>> state = axon.init(model, axon.template((1, 2)))
    >>> data = [(jnp.array([[1.0, 0.0], [0.0, 1.0]]), jnp.array([[1.0, 0.0], [1.0, 0.0]]))]
    >>> axon.loop.evaluator(model).metric("accuracy", "acc").run(data, state)
    {0: {'acc': 0.5}}
    """
    init_fn, step_fn = eval_step(model, seed=seed)
    return Loop(init_fn, step_fn, output_transform=lambda s: s.history, kind="evaluator",
                config={"program": _program(model, "inference", seed), "log": log, "seed": seed})
