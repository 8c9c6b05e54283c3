"""The progress display in Jupyter: one output per epoch, updated in place.

In a running IPython kernel the loop's progress is an ``IPython.display`` handle: one
``display_data`` output per epoch (an HTML ``<progress>`` bar with the batch count, the
elapsed time and the metrics, and the same line as plain text), then
``update_display_data`` messages as the epoch runs. It needs nothing but IPython (which
every kernel has), writes no terminal escape codes, and the saved notebook keeps the
final line of each epoch.

Why not rich's or tqdm's notebook support: both draw with ``ipywidgets``. Measured by
executing a notebook with ``nbclient`` (a 200-step bar, without ipywidgets, which axon does
not depend on): rich's ``Progress`` warns "install ipywidgets" and leaves an empty output;
``tqdm.auto`` falls back to its text bar, 205 ``stream`` messages and 28 KB of ``\\r``-joined
text saved in the notebook; a display handle sends 1 ``display_data`` and 200
``update_display_data`` messages, saves 258 bytes, and costs about 0.3 ms per update. With
ipywidgets, widget state is not saved in the notebook by default, so a saved notebook would
show no progress at all.

>>> in_notebook()
False
"""

from __future__ import annotations

import html
import sys
import time
from typing import Any

__all__ = ["NotebookBar", "in_notebook"]

MIN_INTERVAL = 0.1  # seconds between two updates that show only the batch count


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter (IPython) kernel.

    Returns:
        ``True`` in a kernel (Jupyter, VS Code, Colab), ``False`` in a terminal or script
        (IPython's terminal shell included).
    """
    ipython = sys.modules.get("IPython")  # a kernel has imported it; never import it here
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class _Line:
    """What one update shows: HTML for notebooks, plain text for the rest."""

    def __init__(self, label: str, completed: int, total: int | None, elapsed: float, metrics: str) -> None:
        self.label, self.completed, self.total, self.elapsed, self.metrics = label, completed, total, elapsed, metrics

    def _count(self) -> str:
        return f"{self.completed}/{self.total}" if self.total else f"{self.completed}"

    def __repr__(self) -> str:
        text = f"{self.label} {self._count()} [{self.elapsed:.1f}s]"
        return f"{text} {self.metrics}" if self.metrics else text

    def _repr_html_(self) -> str:
        bar = (
            f'<progress value="{self.completed}" max="{self.total}" style="width:20em;vertical-align:middle"></progress>'
            if self.total
            else ""
        )
        metrics = f" {html.escape(self.metrics)}" if self.metrics else ""
        return (
            f'<div style="font-family:monospace"><b>{html.escape(self.label)}</b> {bar} '
            f"{self._count()} [{self.elapsed:.1f}s]{metrics}</div>"
        )


class NotebookBar:
    """One epoch's progress output in a notebook.

    Args:
        label: the text before the bar (``"Epoch 3"``, ``"Eval"``).
        total: the number of batches, if known.
        display: ``IPython.display.display`` (given in tests).
    """

    def __init__(self, label: str, total: int | None, display: Any = None) -> None:
        if display is None:
            from IPython.display import display
        self.label = label
        self.total = total
        self.start = time.perf_counter()
        self.last = 0.0
        self.metrics = ""
        self.handle = display(self._line(0), display_id=True)

    def _line(self, completed: int) -> _Line:
        return _Line(self.label, completed, self.total, time.perf_counter() - self.start, self.metrics)

    def update(self, completed: int, metrics: str | None = None, *, total: int | None = None, force: bool = False) -> None:
        """Show ``completed`` batches (and new metrics text); updates that change only the
        count are sent at most every ``MIN_INTERVAL`` seconds."""
        now = time.perf_counter()
        if metrics is None and not force and now - self.last < MIN_INTERVAL:
            return
        if metrics is not None:
            self.metrics = metrics
        if total is not None:
            self.total = total
        self.last = now
        self.handle.update(self._line(completed))
