"""The typed settings of the two ready-made loops, :func:`axon.loop.trainer` and
:func:`axon.loop.evaluator`: what the runner needs to know about them (which model
program checks the batches, how often to log, what to do on a non-finite loss).

>>> import axon
>>> t = axon.loop.trainer(axon.input("x", shape=(None, 2)).pipe(axon.dense, 1), "mean_squared_error", "sgd", log=0)
>>> type(t.settings).__name__, t.settings.log, t.settings.on_nonfinite
('TrainerConfig', 0, 'raise')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

from axon.compiler import PredictFunction

__all__ = ["EvaluatorConfig", "NonFinite", "TrainerConfig"]

NonFinite = Literal["raise", "continue"]


def _program(built: tuple[Callable[..., Any], Any]) -> PredictFunction | None:
    predict_fn = built[1]
    return predict_fn if isinstance(predict_fn, PredictFunction) else None


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """The settings of a training loop.

    Attributes:
        built: the model's ``(init_fn, predict_fn)``, built once in train mode.
        loss: the loss as given to ``trainer``.
        optimizer: the optimizer as given to ``trainer``.
        seed: the seed the model was built with (``None``: 0).
        log: log every ``log`` iterations (0: silent).
        loss_scale: the loss-scale option as given.
        gradient_accumulation_steps: apply updates every this many steps.
        on_nonfinite: ``"raise"`` or ``"continue"`` on a NaN or infinite loss.
        lr_scale: whether the optimizer carries an injected learning-rate scale (added by
            ``reduce_lr_on_plateau``).
        distribution: the strategy from :mod:`axon.distributed` the loop runs under, or
            ``None`` (one device).
        model: the model as given to ``trainer`` (a graph or a pair), for validation
            passes built in inference mode (``run(..., validation_split=)``).
        gradient_norms: whether each step records its gradients' norms
            (``Loop.tensorboard(..., gradient_norms=True)``; :mod:`axon.loop.gradient_norms`).
    """

    built: tuple[Callable[..., Any], Any]
    loss: Any
    optimizer: Any
    seed: int | None = None
    log: int = 50
    loss_scale: Any = None
    gradient_accumulation_steps: int = 1
    on_nonfinite: NonFinite = "raise"
    lr_scale: bool = False
    distribution: Any = None
    model: Any = None
    gradient_norms: bool = False

    @property
    def program(self) -> PredictFunction | None:
        """The compiled predict function whose ``check_inputs`` checks each batch's inputs."""
        return _program(self.built)


@dataclasses.dataclass(frozen=True)
class EvaluatorConfig:
    """The settings of an evaluation loop.

    Attributes:
        built: the model's ``(init_fn, predict_fn)``, built once in inference mode.
        seed: the seed the model was built with.
        log: log every ``log`` iterations (0: silent).
        distribution: the strategy the loop runs under, or ``None`` (one device).
    """

    built: tuple[Callable[..., Any], Any]
    seed: int | None = None
    log: int = 0
    distribution: Any = None

    @property
    def program(self) -> PredictFunction | None:
        """The compiled predict function whose ``check_inputs`` checks each batch's inputs."""
        return _program(self.built)
