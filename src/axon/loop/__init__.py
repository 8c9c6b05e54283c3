"""The training API: loops with events, handlers, metrics, validation, checkpoints,
early stopping and resume.

>>> import axon, jax.numpy as jnp
>>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 2)
>>> data = [(jnp.ones((8, 2)), jnp.zeros((8, 2)))] * 4
>>> state = (
...     axon.loop.trainer(model, "mean_squared_error", axon.optimizers.adam(1e-2), log=0)
...     .metric("mean_absolute_error", "mae")
...     .run(data, epochs=2)
... )
>>> isinstance(state, axon.ModelState)
True
"""

from axon.loop.backup import BackupMismatchError
from axon.loop.checkpoint import deserialize_state, load_checkpoint, serialize_state
from axon.loop.config import EvaluatorConfig, TrainerConfig
from axon.loop.core import Loop, NonFiniteLossError, loop
from axon.loop.factories import evaluator, trainer
from axon.loop.handlers import learning_rate_scale
from axon.loop.metric_check import adds_metrics
from axon.loop.sources import ArraySource, DictBatches
from axon.loop.state import EVENTS, LoopState
from axon.loop.steps import eval_step, train_step

__all__ = [
    "BackupMismatchError",
    "ArraySource",
    "DictBatches",
    "EVENTS",
    "EvaluatorConfig",
    "Loop",
    "LoopState",
    "NonFiniteLossError",
    "adds_metrics",
    "deserialize_state",
    "eval_step",
    "evaluator",
    "learning_rate_scale",
    "load_checkpoint",
    "loop",
    "serialize_state",
    "TrainerConfig",
    "train_step",
    "trainer",
]
