"""Progress reporting for ``run``: a live rich progress bar on a terminal, an output updated
in place in a Jupyter notebook (:mod:`axon.loop.notebook`), one plain line per logged step
otherwise (logs, CI).

>>> import io
>>> from axon.loop.state import LoopState
>>> out = io.StringIO()
>>> r = Reporter(1, 2, show_epoch=True, file=out)
>>> s = LoopState(step_state={}, metrics={"loss": 0.5})
>>> r.epoch_started(s); s.iteration = 1; r.iteration(s, 1)
>>> out.getvalue().strip()
'Epoch: 0, Batch: 1/2, loss: 0.5000000'
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from axon.loop.format import format_metrics as _metrics_text
from axon.loop.notebook import NotebookBar, in_notebook
from axon.loop.state import LoopState

__all__ = ["Reporter"]


class Reporter:
    """Shows epoch, batch and metric values every ``log`` iterations and at epoch ends.

    Args:
        log: show a line every ``log`` iterations.
        total: the number of batches per epoch, if known.
        show_epoch: start lines with the epoch (a trainer) or not (an evaluator).
        file: where to write plain lines (default: standard output, with a live progress bar
            when it is a terminal, or an output updated in place in a Jupyter kernel).
    """

    def __init__(self, log: int, total: int | None, *, show_epoch: bool = True, file: TextIO | None = None):
        self.show_epoch = show_epoch
        self.log = log
        self.total = total
        self.file = file or sys.stdout
        self.live = file is None and self.file.isatty()
        self.notebook = file is None and not self.live and in_notebook()
        self._bar: NotebookBar | None = None
        self._progress = None
        self._task = None
        self._last = 0

    def _line(self, state: LoopState, metrics: dict[str, Any]) -> str:
        batch = f"{state.iteration}/{self.total}" if self.total else f"{state.iteration}"
        head = f"Epoch: {state.epoch}, Batch: {batch}" if self.show_epoch else f"Batch: {batch}"
        text = _metrics_text(metrics)
        return f"{head}, {text}" if text else head

    def epoch_started(self, state: LoopState) -> None:
        self._last = 0
        if self.notebook:
            self._bar = NotebookBar(f"Epoch {state.epoch}" if self.show_epoch else "Eval", self.total)
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.close()
            self._progress = Progress(
                TextColumn("[bold]Epoch {task.fields[epoch]}" if self.show_epoch else "[bold]Eval"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[metrics]}"),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("epoch", total=self.total, epoch=state.epoch, metrics="")

    def iteration(self, state: LoopState, n: int) -> None:
        if state.iteration // self.log <= self._last // self.log and self._last != 0:
            if self._progress is not None and self._task is not None:
                self._progress.update(self._task, completed=state.iteration)
            if self._bar is not None:
                self._bar.update(state.iteration)
            return
        if self._bar is not None:
            self._last = state.iteration
            self._bar.update(state.iteration, _metrics_text(state.metrics))
            return
        if self._progress is None and self.total is not None and state.iteration >= self.total:
            return  # the epoch summary line follows
        self._last = state.iteration
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=state.iteration, metrics=_metrics_text(state.metrics))
        else:
            print(self._line(state, state.metrics), file=self.file, flush=True)

    def epoch_completed(self, state: LoopState) -> None:
        metrics = state.history.get(state.epoch, state.metrics)
        seconds = state.times.get(state.epoch)
        suffix = f" ({seconds:.1f}s)" if seconds is not None else ""
        if self._bar is not None:
            self._bar.update(state.iteration, _metrics_text(metrics), total=state.iteration, force=True)
            self._bar = None
        elif self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=state.iteration, total=state.iteration, metrics=_metrics_text(metrics) + suffix)
            self.close()
        else:
            print(self._line(state, metrics) + suffix, file=self.file, flush=True)

    def close(self) -> None:
        self._bar = None
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None
