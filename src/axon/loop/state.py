"""``LoopState``: everything a running loop knows, and what a checkpoint saves.

>>> s = LoopState(step_state={})
>>> s.epoch, s.iteration, s.status
(0, 0, None)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["EVENTS", "LoopState", "new_event_counts"]

EVENTS = (
    "started",
    "epoch_started",
    "iteration_started",
    "iteration_completed",
    "epoch_completed",
    "epoch_halted",
    "halted",
    "completed",
)
ITERATION_EVENTS = ("iteration_started", "iteration_completed")


def new_event_counts() -> dict[str, Any]:
    """Fresh event counters: a count per event, ``{"total", "epoch"}`` for iteration events.

    >>> new_event_counts()["iteration_completed"]
    {'total': 0, 'epoch': 0}
    """
    return {e: ({"total": 0, "epoch": 0} if e in ITERATION_EVENTS else 0) for e in EVENTS}


@dataclass
class LoopState:
    """The state of a loop run.

    * ``step_state``: what the step function carries (for a trainer: ``model_state``,
      ``optimizer_state``, ``loss_scale_state``, the last ``loss``, ``y_true``, ``y_pred``);
    * ``epoch`` / ``iteration``: 0-based position (iteration within the epoch);
    * ``max_epoch`` / ``max_iteration``: limits of the run (``max_iteration=-1``: no cap);
    * ``metrics``: running metric values of the current epoch (``name -> scalar array``);
    * ``history``: ``epoch -> {name: float}`` of finished epochs (validation included);
    * ``handler_metadata``: memory of handlers (best values for early stopping...);
    * ``times``: ``epoch -> seconds``; ``event_counts``; ``status``: ``None``, ``"completed"``
      or ``"halted"``; ``trace_count``: how many times the step function was traced.
    """

    step_state: Any
    epoch: int = 0
    max_epoch: int = 1
    iteration: int = 0
    max_iteration: int = -1
    metrics: dict[str, Any] = field(default_factory=dict)
    history: dict[int, dict[str, float]] = field(default_factory=dict)
    handler_metadata: dict[str, Any] = field(default_factory=dict)
    times: dict[int, float] = field(default_factory=dict)
    event_counts: dict[str, Any] = field(default_factory=new_event_counts)
    status: str | None = None
    trace_count: int = 0
