"""Experiment logs as loop handlers: the rows behind ``Loop.log_to_csv`` and
``Loop.log_to_jsonl``, and the scalar values behind ``Loop.tensorboard``.

A row holds ``event`` (``"epoch"`` or ``"iteration"``), ``epoch``, ``iteration`` (the
iterations done in the epoch so far), every metric
and validation metric, ``learning_rate`` when the optimizer state carries one (an
``axon.optimizers`` optimizer, or any ``optax.inject_hyperparams`` optimizer with a
``learning_rate``; times the ``reduce_lr_on_plateau`` scale), and ``wall_time`` (Unix
seconds when the row was made).

>>> from axon.loop.state import LoopState
>>> row = log_row(LoopState(step_state={}, metrics={"loss": 0.5}), "epoch")
>>> {k: row[k] for k in ("event", "epoch", "iteration", "loss")}
{'event': 'epoch', 'epoch': 0, 'iteration': 0, 'loss': 0.5}
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from jax.tree_util import tree_leaves_with_path as jax_leaves_with_path

from axon import optimizers as _optimizers
from axon import plot as _plot
from axon._host import writes_files
from axon.loop.gradient_norms import GRADIENT_NORMS_KEY
from axon.loop.handlers import Action, learning_rate_scale
from axon.loop.state import LoopState

__all__ = [
    "Cadence",
    "FileLogger",
    "LateMetrics",
    "LivePlot",
    "RowKind",
    "TensorBoardLogger",
    "current_learning_rate",
    "global_step",
    "log_row",
    "metric_values",
]

RowKind = Literal["epoch", "iteration"]


def metric_values(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metric values as Python floats (a non-scalar metric as a nested list).

    >>> import jax.numpy as jnp
    >>> metric_values({"loss": jnp.asarray(0.25)})
    {'loss': 0.25}
    """
    out = {}
    for name, value in metrics.items():
        arr = np.asarray(value)
        out[name] = float(arr) if arr.shape == () else arr.tolist()
    return out


def current_learning_rate(state: LoopState) -> float | None:
    """The learning rate in effect, or ``None`` when the optimizer state exposes none.

    Args:
        state: a loop state; a trainer's step state has ``"optimizer_state"``.

    Returns:
        The rate of the latest update (times the ``reduce_lr_on_plateau`` scale), or ``None``.

    >>> import axon, jax.numpy as jnp
    >>> s = LoopState(step_state={"optimizer_state": axon.optimizers.adam(0.01).init(jnp.zeros(2))})
    >>> round(current_learning_rate(s), 6)
    0.01
    >>> current_learning_rate(LoopState(step_state={})) is None
    True
    """
    step_state = state.step_state
    if not isinstance(step_state, Mapping) or "optimizer_state" not in step_state:
        return None
    try:
        rate = float(np.asarray(_optimizers.learning_rate(step_state["optimizer_state"])))
    except ValueError:
        return None
    return rate * learning_rate_scale(state)


def log_row(state: LoopState, kind: RowKind) -> dict[str, Any]:
    """One log row from the loop state (see the module's documentation for the columns).

    Args:
        state: the loop state at ``epoch_completed`` or ``iteration_completed``.
        kind: ``"epoch"`` or ``"iteration"``.

    Returns:
        The row, a dict of plain Python values.
    """
    row: dict[str, Any] = {"event": kind, "epoch": state.epoch, "iteration": state.iteration}
    row.update(metric_values(state.metrics))
    rate = current_learning_rate(state)
    if rate is not None:
        row["learning_rate"] = rate
    row["wall_time"] = time.time()
    return row


def _position(row: Mapping[str, Any]) -> tuple[int, int, int]:
    """Where a row stands: ``(epoch, 0 for an iteration row / 1 for an epoch row, iteration)``."""
    return int(row["epoch"]), 1 if row["event"] == "epoch" else 0, int(row["iteration"])


class LateMetrics:
    """Notices metrics added to an epoch after a logger wrote it (a ``validate`` attached
    after the logger: handlers of one event run in the order they were attached) and warns
    once per run, naming them.

    Args:
        where: the logger's name, for the warning.

    >>> import warnings
    >>> late = LateMetrics("log_to_csv")
    >>> late.written(LoopState(step_state={}, metrics={"loss": 1.0}))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = late.check(LoopState(step_state={}, history={0: {"loss": 1.0, "validation_loss": 2.0}}))
    >>> "validation_loss" in str(caught[0].message)
    True
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self.logged: tuple[int, set[str]] | None = None
        self.warned = False

    def reset(self) -> None:
        """Forget the last epoch (a new run)."""
        self.logged, self.warned = None, False

    def written(self, state: LoopState) -> None:
        """Remember the metrics the epoch's row had."""
        self.logged = (state.epoch, set(state.metrics))

    def check(self, state: LoopState) -> tuple[Action, LoopState]:
        """The handler: compare the last logged epoch's history with what was logged."""
        if self.logged is None or self.warned:
            return "continue", state
        epoch, names = self.logged
        late = sorted(set(state.history.get(epoch, {})) - names)
        if late:
            self.warned = True
            warnings.warn(
                f"{self.where}: {late} were added to epoch {epoch}'s metrics after this logger wrote them, so "
                f"they are not logged; attach {self.where} after validate (handlers run in the order they were "
                "attached)",
                RuntimeWarning,
                stacklevel=2,
            )
        return "continue", state


class Cadence:
    """When an ``every``-iterations handler is due: the iteration count reached or passed a
    multiple of ``every`` since the last call (one compiled call may run several steps).

    >>> c = Cadence(4)
    >>> [c.due(LoopState(step_state=None, epoch=0, iteration=i)) for i in (2, 4, 6, 9)]
    [False, True, False, True]
    """

    def __init__(self, every: int | None) -> None:
        self.every = every
        self.reset()

    def reset(self) -> None:
        """Start over (a new run)."""
        self.previous = (-1, 0)

    def due(self, state: LoopState) -> bool:
        """Whether ``state``'s iteration crossed a multiple of ``every`` (never without one)."""
        epoch, previous = self.previous
        previous = previous if epoch == state.epoch else 0
        self.previous = (state.epoch, state.iteration)
        return bool(self.every) and state.iteration // self.every != previous // self.every


class FileLogger:
    """Writes log rows to a CSV or JSON Lines file; its methods are the loop handlers.

    On ``started``: a run that starts at the beginning of epoch 0 starts the file over; a
    resumed run (``Loop.from_state``, ``Loop.backup_and_restore``) keeps it and skips every row at or before the last one in the
    file (its last epoch row, or its last iteration row of a later epoch), so a log has one
    row per epoch however often the run was interrupted and resumed. Only the main process
    (``jax.process_index() == 0``) writes.

    CSV columns are fixed by the first row; when a later row has a column the file lacks
    (a metric that appears later, e.g. validation on some epochs only), the file is
    rewritten once with the widened header, earlier rows leaving the new column empty.

    Args:
        path: the file.
        fmt: ``"csv"`` or ``"jsonl"``.
        where: the name used in error messages.
        every: with ``iteration_completed``, write a row each time the epoch's iteration
            count reaches a multiple of ``every`` (or passes one, when a compiled call runs
            several steps); ``None``: epoch rows only.
    """

    def __init__(self, path: str | os.PathLike, fmt: Literal["csv", "jsonl"], where: str, every: int | None = None) -> None:
        self.path = os.fspath(path)
        self.fmt = fmt
        self.where = where
        self.cadence = Cadence(every)
        self.late = LateMetrics(where)
        self.columns: list[str] | None = None
        self.last: tuple[int, int, int] | None = None

    # -- handlers -------------------------------------------------------------------------
    def started(self, state: LoopState) -> tuple[Action, LoopState]:
        """Open the log: check the directory, start over or read the last logged row."""
        self.late.reset()
        if not writes_files():
            return "continue", state
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise ValueError(f"{self.where}: the directory {directory!r} of the log file does not exist")
        if not os.access(directory, os.W_OK) or (os.path.exists(self.path) and not os.access(self.path, os.W_OK)):
            raise PermissionError(f"{self.where}: cannot write the log file {self.path!r}")
        self.columns, self.last = None, None
        self.cadence.reset()
        if (state.epoch == 0 and state.iteration == 0) or not os.path.exists(self.path):
            open(self.path, "w").close()
            return "continue", state
        rows = self._read()
        if rows:
            self.last = max(_position(r) for r in rows)
            if self.fmt == "csv":
                with open(self.path, newline="") as f:
                    self.columns = next(csv.reader(f))
        return "continue", state

    def epoch_completed(self, state: LoopState) -> tuple[Action, LoopState]:
        """Write the epoch's row."""
        self.late.written(state)
        return self._write(state, "epoch")

    def iteration_completed(self, state: LoopState) -> tuple[Action, LoopState]:
        """Write an iteration row when the iteration count reaches a multiple of ``every``."""
        if not self.cadence.due(state):
            return "continue", state
        return self._write(state, "iteration")

    # -- files ----------------------------------------------------------------------------
    def _write(self, state: LoopState, kind: RowKind) -> tuple[Action, LoopState]:
        if not writes_files():
            return "continue", state
        row = log_row(state, kind)
        position = _position(row)
        if self.last is not None and position <= self.last:
            return "continue", state
        self.last = position
        if self.fmt == "jsonl":
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")
            return "continue", state
        cells = {k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()}
        if self.columns is None:
            self.columns = list(row)
            with open(self.path, "w", newline="") as f:
                writer = csv.DictWriter(f, self.columns)
                writer.writeheader()
                writer.writerow(cells)
            return "continue", state
        new = [k for k in row if k not in self.columns]
        if new:
            self._widen(new)
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns, restval="").writerow(cells)
        return "continue", state

    def _widen(self, new: list[str]) -> None:
        """Rewrite the CSV file with ``new`` columns added before ``wall_time``."""
        rows = self._read()
        end = self.columns.index("wall_time") if "wall_time" in self.columns else len(self.columns)
        self.columns = [*self.columns[:end], *new, *self.columns[end:]]
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)

    def _read(self) -> list[dict[str, Any]]:
        with open(self.path, newline="") as f:
            if self.fmt == "jsonl":
                return [json.loads(line) for line in f if line.strip()]
            return list(csv.DictReader(f))


def global_step(state: LoopState) -> int:
    """Steps done in the whole run: a trainer's step counter ``step_state["i"]``, else the
    count of ``iteration_completed`` events.

    >>> global_step(LoopState(step_state={"i": 7}))
    7
    """
    step_state = state.step_state
    if isinstance(step_state, Mapping) and "i" in step_state:
        return int(np.asarray(step_state["i"]))
    return int(state.event_counts["iteration_completed"]["total"])


def _path_name(path: tuple[Any, ...]) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


class TensorBoardLogger:
    """Writes a TensorBoard event file with a ``tensorboardX.SummaryWriter``; its methods
    are the loop handlers.

    Scalars: ``epoch/<metric>`` (every metric and validation metric, and
    ``epoch/learning_rate``) at each epoch's end with the epoch as the step; with
    ``every=n``, ``iteration/<metric>`` and ``iteration/learning_rate`` every ``n``
    iterations with the global step. With ``histograms``, ``parameters/<layer>/<name>`` at
    each epoch's end. With ``table`` (the model table's text), ``model/table`` once at the
    start. Only the main process writes.

    Args:
        writer_class: ``tensorboardX.SummaryWriter``.
        log_dir: the directory for the event files.
        every: iteration scalars every this many iterations (``None``: epoch scalars only).
        histograms: write parameter histograms.
        table: a function returning the model table as text, or ``None`` (it may raise
            ``ValueError`` when the table cannot be made: then none is written).
        gradient_norms: write ``<prefix>/gradient_norm/global`` and
            ``<prefix>/gradient_norm/<layer>``, the norms of the latest step's gradients
            (the step state's ``"gradient_norms"``, :mod:`axon.loop.gradient_norms`), with
            the other scalars.
    """

    def __init__(self, writer_class: Any, log_dir: str, every: int | None, histograms: bool,
                 table: Any = None, gradient_norms: bool = False) -> None:
        self.gradient_norms = gradient_norms
        self.writer_class = writer_class
        self.log_dir = log_dir
        self.cadence = Cadence(every)
        self.histograms = histograms
        self.table = table
        self.writer: Any = None
        self.late = LateMetrics("tensorboard")

    def started(self, state: LoopState) -> tuple[Action, LoopState]:
        """Open the writer (the directory is made if missing); write the model table."""
        self.cadence.reset()
        self.late.reset()
        if not writes_files():
            return "continue", state
        if os.path.exists(self.log_dir) and not os.path.isdir(self.log_dir):
            raise ValueError(f"tensorboard: log_dir {self.log_dir!r} is a file, not a directory")
        existing = os.path.abspath(self.log_dir)  # the directory, or its nearest existing parent
        while not os.path.exists(existing) and os.path.dirname(existing) != existing:
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise ValueError(f"tensorboard: cannot make log_dir {self.log_dir!r}: {existing!r} is a file")
        if not os.access(existing, os.W_OK):
            raise PermissionError(f"tensorboard: cannot write to log_dir {self.log_dir!r}")
        self.writer = self.writer_class(self.log_dir)
        if self.table is not None:
            try:
                text = self.table()
            except ValueError:
                text = None
            if text:
                self.writer.add_text("model/table", "```\n" + text + "\n```", 0)
        return "continue", state

    def epoch_completed(self, state: LoopState) -> tuple[Action, LoopState]:
        """Write the epoch's scalars (and histograms) and flush."""
        if self.writer is None:
            return "continue", state
        self.late.written(state)
        self._scalars(state, "epoch", state.epoch)
        if self.histograms and isinstance(state.step_state, Mapping) and "model_state" in state.step_state:
            params = state.step_state["model_state"].trainable_parameters()
            for path, leaf in jax_leaves_with_path(params):
                self.writer.add_histogram(f"parameters/{_path_name(path)}", np.asarray(leaf, np.float64), state.epoch)
        self.writer.flush()
        return "continue", state

    def iteration_completed(self, state: LoopState) -> tuple[Action, LoopState]:
        """Write the iteration scalars when the iteration count reaches a multiple of ``every``."""
        if not self.cadence.due(state) or self.writer is None:
            return "continue", state
        self._scalars(state, "iteration", global_step(state))
        return "continue", state

    def closed(self, state: LoopState) -> tuple[Action, LoopState]:
        """Close the writer at the end of the run."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        return "continue", state

    def _scalars(self, state: LoopState, prefix: str, step: int) -> None:
        for name, value in metric_values(state.metrics).items():
            if isinstance(value, float):
                self.writer.add_scalar(f"{prefix}/{name}", value, step)
        rate = current_learning_rate(state)
        if rate is not None:
            self.writer.add_scalar(f"{prefix}/learning_rate", rate, step)
        norms = state.step_state.get(GRADIENT_NORMS_KEY) if isinstance(state.step_state, Mapping) else None
        if self.gradient_norms and norms is not None:
            for name, value in norms.items():
                self.writer.add_scalar(f"{prefix}/gradient_norm/{name}", float(np.asarray(value)), step)


def _notebook_display() -> Any:
    """``show(figure, handle) -> handle`` drawing into one Jupyter output when a kernel is
    running (the figure as a PNG ``IPython.display.Image``, which every frontend renders
    whatever matplotlib backend is set), else ``None``."""
    try:
        import IPython
        from IPython.display import Image, display
    except ImportError:
        return None
    shell = IPython.get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return None

    def show(figure: Any, handle: Any) -> Any:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        image = Image(data=buffer.getvalue(), format="png")
        if handle is None:
            return display(image, display_id=True)
        handle.update(image)
        return handle

    return show


class LivePlot:
    """The handlers behind ``Loop.plot``: redraw :func:`axon.plot.history` in a Jupyter
    output (one display handle, updated in place) and write a PNG at the end.

    Args:
        metrics: the metrics to plot (``None``: all).
        path: the PNG file written when the run ends, or ``None``.
        every: with ``iteration_completed``, redraw every this many iterations (the current
            epoch's running values as its point); ``None``: at each epoch's end only.
    """

    def __init__(self, metrics: list[str] | None, path: str | None, every: int | None) -> None:
        self.metrics = metrics
        self.path = path
        self.cadence = Cadence(every)
        self.display: Any = None
        self.handle: Any = None
        self.figure: Any = None

    def started(self, state: LoopState) -> tuple[Action, LoopState]:
        """Find the notebook (if any); check the PNG's directory."""
        self.handle = None
        self.cadence.reset()
        self.display = _notebook_display() if writes_files() else None
        if self.path is not None and writes_files():
            directory = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
                raise ValueError(f"plot: cannot write the picture {self.path!r}: its directory is missing or not writable")
        return "continue", state

    def epoch_completed(self, state: LoopState) -> tuple[Action, LoopState]:
        """Redraw with the finished epoch."""
        return self._redraw(state)

    def iteration_completed(self, state: LoopState) -> tuple[Action, LoopState]:
        """Redraw when the iteration count reaches a multiple of ``every``."""
        if not self.cadence.due(state):
            return "continue", state
        return self._redraw(state)

    def finished(self, state: LoopState) -> tuple[Action, LoopState]:
        """Write the PNG (when asked) from the final history."""
        if self.path is not None and writes_files() and state.history:
            _plot.history(state.history, self.metrics).savefig(self.path, format="png")
        return "continue", state

    def _redraw(self, state: LoopState) -> tuple[Action, LoopState]:
        if self.display is None:
            return "continue", state
        current = {**state.history.get(state.epoch, {}), **metric_values(state.metrics)}
        self.figure = _plot.history({**state.history, state.epoch: current}, self.metrics)
        self.handle = self.display(self.figure, self.handle)
        return "continue", state
