"""``early_stop(..., restore_best=True)``: keep a copy of the model state of the epoch with
the best monitored value, and put it back when the run ends.

The copy is the step state's ``"model_state"`` (and ``"ema_model_state"`` with
``Loop.ema``), copied on the device when the metric reaches a new best value (the loop
donates its buffers, so a reference would not survive the next step). It is put back when
early stopping halts the loop and when the run completes, so the state a run returns is the
best epoch's however the run ends (Keras restores only when it stops early); the optimizer
state and counters stay those of the last epoch. ``state.handler_metadata["early_stop"]["best_epoch"]`` names the epoch. With
``Loop.backup_and_restore`` the copy is part of the backups (:meth:`BestModelState.kept`).

>>> import jax.numpy as jnp
>>> from axon.loop.state import LoopState
>>> best = BestModelState("early_stop")
>>> state = LoopState(step_state={"model_state": jnp.ones(2), "i": 1}, epoch=3)
>>> best.keep(state)
>>> state.step_state = {"model_state": jnp.zeros(2), "i": 2}
>>> best.put_back(state).step_state["model_state"].tolist(), state.handler_metadata
([1.0, 1.0], {'early_stop': {'best_epoch': 3, 'restored': True}})
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import jax
import jax.numpy as jnp

from axon.loop.ema import EMA_KEY
from axon.loop.state import LoopState

__all__ = ["BestModelState"]

_KEYS = ("model_state", EMA_KEY)


def _copy(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True) if isinstance(x, jax.Array) else x, tree)


class BestModelState:
    """The best epoch's model state of one run; its methods are the loop handlers.

    Args:
        name: the key in ``state.handler_metadata`` (``"early_stop"``).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.best: dict[str, Any] | None = None
        self.restored = False  # the copy came from a backup, for this run

    def started(self, state: LoopState) -> tuple[Literal["continue"], LoopState]:
        """A new run: forget the last run's copy (not one just restored from a backup)."""
        if not self.restored:
            self.best = None
        self.restored = False
        return "continue", state

    def keep(self, state: LoopState) -> None:
        """Copy the current model state (a new best value)."""
        step_state = state.step_state
        self.best = {k: _copy(step_state[k]) for k in _KEYS if k in step_state}
        state.handler_metadata.setdefault(self.name, {})["best_epoch"] = state.epoch

    def put_back(self, state: LoopState) -> LoopState:
        """The state with the best epoch's model state (unchanged when none was kept)."""
        memory = state.handler_metadata.setdefault(self.name, {})
        if self.best is not None:
            state.step_state = {**state.step_state, **_copy(self.best)}
            memory["restored"] = True
        elif memory.get("best_epoch") is not None:
            warnings.warn(
                f"early_stop(restore_best=True): the best epoch ({memory['best_epoch']}) was before this run resumed "
                "(Loop.from_state) and its model state was not kept; the state is the last epoch's. "
                "Loop.backup_and_restore keeps it across interruptions",
                RuntimeWarning,
                stacklevel=2,
            )
        return state

    def ended(self, state: LoopState) -> tuple[Literal["continue"], LoopState]:
        """At the run's end (completed, or halted by early stopping or another handler):
        put the best state back."""
        return "continue", self.put_back(state)

    # -- backups --------------------------------------------------------------------------
    def kept(self) -> dict[str, Any] | None:
        """The copy, for a backup (``None`` before the first improvement)."""
        return self.best

    def template(self, step_state: Any) -> dict[str, Any]:
        """What a copy of ``step_state`` looks like, to read one from a backup."""
        return {k: step_state[k] for k in _KEYS if k in step_state}

    def restore_kept(self, kept: dict[str, Any] | None) -> None:
        """Take back the copy a backup held, for the run about to start."""
        self.best = kept
        self.restored = True
