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

from axon.compiler.placement import check_distribution
from axon.loop.config import EvaluatorConfig, NonFinite, TrainerConfig
from axon.loop.core import Loop
from axon.loop.ema import evaluated_model_state
from axon.loop.state import LoopState
from axon.loop.steps import eval_step, resolve_loss, resolve_model, train_step

__all__ = ["evaluator", "trainer"]

_NONFINITE = ("raise", "continue")


def _model_state(state: LoopState) -> Any:
    return evaluated_model_state(state.step_state)


def _history(state: LoopState) -> Any:
    return state.history


def _loss_value(loss_value: Any) -> Any:
    return loss_value


def _check_log(log: Any, where: str) -> int:
    if not isinstance(log, int) or isinstance(log, bool):
        raise TypeError(f"{where}: expected log to be an int (0 disables logging), got {log!r}")
    return log


def trainer(
    model: Any,
    loss: Any,
    optimizer: Any,
    *,
    seed: int | None = None,
    log: int = 50,
    loss_scale: Any = None,
    gradient_accumulation_steps: int = 1,
    on_nonfinite: NonFinite = "raise",
    distribution: Any = None,
) -> Loop:
    """A training loop: ``run`` returns the trained :class:`axon.ModelState`.

    The model is built once, in train mode. The loop tracks ``"loss"`` (the epoch's running
    average).

    Args:
        model: a graph, or an ``(init_fn, predict_fn)`` pair built in train mode.
        loss: a name from :mod:`axon.losses` (mean reduction), a function
            ``loss(y_true, y_pred) -> scalar`` (Axon's argument order), or a list of
            ``(loss, weight)`` for a multi-output model. optax's own losses
            (``optax.losses.softmax_cross_entropy``, ``optax.l2_loss``,
            ``optax.sigmoid_binary_cross_entropy``, ...) take ``(predictions, targets)``
            instead: they are recognised and called as ``mean(loss(y_pred, y_true))``; an
            optax loss that needs more arguments (``ctc_loss``) is rejected: wrap it in your
            own ``loss(y_true, y_pred)``.
        optimizer: a name from :mod:`axon.optimizers` or any optax transformation.
        seed: the seed for parameter initialization and random layers (default 0).
        log: show progress every ``log`` iterations (0 is silent).
        loss_scale: ``"static"``, ``"dynamic"`` or a triple from :mod:`axon.loss_scale`
            (non-finite gradients then skip the update).
        gradient_accumulation_steps: apply the mean gradient every this many steps.
        on_nonfinite: ``"raise"``: a NaN or infinite loss raises
            :class:`axon.loop.NonFiniteLossError` naming the epoch and iteration;
            ``"continue"``: keep going.
        distribution: a strategy from :mod:`axon.distributed` (``DataParallel``, ``FSDP``,
            ``ModelParallel``): parameters are created laid out on its mesh, every batch is
            split over its data axis, and each step is one compiled program over the
            global batch (the loss and the metrics are means over the global batch).
            Validation (``Loop.validate``) runs under the same strategy.

    Returns:
        The training loop.

    Raises:
        ValueError: a bad option.
        TypeError: an argument of the wrong kind.

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
    _check_log(log, "trainer")
    distribution = check_distribution(distribution, "trainer")
    built = resolve_model(model, "train", seed, distribution)
    config = TrainerConfig(
        built=built, loss=loss, optimizer=optimizer, seed=seed, log=log, loss_scale=loss_scale,
        gradient_accumulation_steps=gradient_accumulation_steps, on_nonfinite=on_nonfinite,
        distribution=distribution, model=model,
    )
    init_fn, step_fn = train_step(built, loss, optimizer, seed=seed, loss_scale=loss_scale,
                                  gradient_accumulation_steps=gradient_accumulation_steps)
    loop = Loop(init_fn, step_fn, output_transform=_model_state, settings=config)
    loop = loop.metric(_loss_value, "loss", transform="loss")
    loss_metric = dataclasses.replace(loop.metrics[0], evaluate=resolve_loss(loss))
    return dataclasses.replace(loop, metrics=(loss_metric,))


def evaluator(model: Any, *, seed: int | None = None, log: int = 1, distribution: Any = None) -> Loop:
    """An evaluation loop in inference mode: run it with the trained state as ``init_state``.

    Like Axon's, it shows ``Batch: i/n, metric: value ...`` after every batch by default
    (a live progress bar on a terminal); ``log=0`` (or ``run(..., progress=False)``)
    silences it.

    Args:
        model: a graph (built once here, in inference mode) or an ``(init_fn, predict_fn)``
            pair.
        seed: the seed for parameter initialization when no state is given.
        log: show progress every ``log`` iterations (default 1, every batch, as Axon; 0 is
            silent).
        distribution: a strategy from :mod:`axon.distributed`: batches are split over its
            data axis and the state is placed on its mesh; metrics are over the global batch.

    Returns:
        The evaluation loop; its ``run`` returns ``{epoch: {metric: value}}``.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 2, kernel_initializer="identity")
    >>> state = axon.init(model, axon.template((1, 2)))
    >>> data = [(jnp.array([[1.0, 0.0], [0.0, 1.0]]), jnp.array([[1.0, 0.0], [1.0, 0.0]]))]
    >>> axon.loop.evaluator(model, log=0).metric("accuracy", "acc").run(data, state)
    {0: {'acc': 0.5}}
    """
    _check_log(log, "evaluator")
    distribution = check_distribution(distribution, "evaluator")
    built = resolve_model(model, "inference", seed, distribution)
    init_fn, step_fn = eval_step(built)
    return Loop(init_fn, step_fn, output_transform=_history, settings=EvaluatorConfig(built, seed, log, distribution))
