"""axon.plot.history and Loop.plot: lines and labels read back from the Figure equal the
history; the PNG written at the end; the live chart in a (simulated) Jupyter kernel; errors."""

import builtins
import sys
import types

import numpy as np
import pytest

import axon

HISTORY = {
    0: {"loss": 1.0, "mae": 0.9, "validation_loss": 1.5},
    1: {"loss": 0.5, "mae": 0.6, "validation_loss": 0.8},
    2: {"loss": 0.25, "mae": 0.4, "validation_loss": 0.6},
}


def lines_of(ax):
    return {line.get_label(): (line.get_xdata().tolist(), line.get_ydata().tolist()) for line in ax.lines}


def trainer_and_data():
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 2)).astype(np.float32)
    data = [(x[:4], x[:4, :1] * 2), (x[4:], x[4:, :1] * 2)]
    t = axon.loop.trainer(model, "mean_squared_error", axon.optimizers.sgd(0.1), log=0).metric("mean_absolute_error", "mae")
    return t.validate(model, data[:1]), data


def test_history_lines_equal_the_history(matplotlib):
    fig = axon.plot.history(HISTORY)
    loss_ax, mae_ax = fig.axes
    assert loss_ax.get_title() == "loss" and mae_ax.get_title() == "mae"
    assert loss_ax.get_xlabel() == "epoch"
    assert lines_of(loss_ax) == {"train": ([0, 1, 2], [1.0, 0.5, 0.25]), "validation": ([0, 1, 2], [1.5, 0.8, 0.6])}
    assert lines_of(mae_ax) == {"train": ([0, 1, 2], [0.9, 0.6, 0.4])}
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["train", "validation"]


def test_history_of_a_loop_state_and_chosen_metrics(matplotlib):
    t, data = trainer_and_data()
    state = t.run(data, epochs=3, return_state=True)
    fig = axon.plot.history(state, "mae")
    (ax,) = fig.axes
    got = lines_of(ax)
    assert got["train"] == ([0, 1, 2], [state.history[e]["mae"] for e in range(3)])
    assert got["validation"] == ([0, 1, 2], [state.history[e]["validation_mae"] for e in range(3)])


def test_history_errors(matplotlib):
    with pytest.raises(ValueError, match=r"plot: metric 'acc' is not in the history; its metrics are \['loss', 'mae'\]"):
        axon.plot.history(HISTORY, ["loss", "acc"])
    with pytest.raises(TypeError, match="plot: expected a LoopState or a history"):
        axon.plot.history([1.0, 0.5])
    with pytest.raises(ValueError, match="no scalar values"):
        axon.plot.history({0: {"cm": [[1, 0], [0, 1]]}}, "cm")


def test_missing_matplotlib_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r'pip install "axon-jax\[plot\]"'):
        axon.plot.history(HISTORY)
    t, _ = trainer_and_data()
    with pytest.raises(ImportError, match=r'pip install "axon-jax\[plot\]"'):
        t.plot()


def test_loop_plot_writes_the_png_of_the_final_history(tmp_path, matplotlib):
    image = pytest.importorskip("matplotlib.image")
    t, data = trainer_and_data()
    png = tmp_path / "history.png"
    t.plot(["loss", "mae"], path=png).run(data, epochs=3)
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(png)
    assert pixels.ndim == 3 and pixels.shape[1] > pixels.shape[0] > 100  # two panels side by side


def fake_ipython(monkeypatch, with_kernel=True):
    """A stand-in for IPython with a running kernel: records what is displayed."""
    shown = []

    class Image:
        def __init__(self, data, format):
            self.data, self.format = data, format

    class Handle:
        def update(self, obj):
            shown.append(("update", obj))

    def display(obj, display_id=False):
        assert display_id is True
        shown.append(("display", obj))
        return Handle()

    ipython = types.ModuleType("IPython")
    shell = types.SimpleNamespace(kernel=object()) if with_kernel else types.SimpleNamespace()
    ipython.get_ipython = lambda: shell
    display_module = types.ModuleType("IPython.display")
    display_module.display = display
    display_module.Image = Image
    ipython.display = display_module
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)
    return shown


def live_plot_of(loop_):
    """The LivePlot behind a loop's plot handlers (its last drawn figure is ``.figure``)."""
    return loop_.handlers["epoch_completed"][-1][0].__self__


def test_loop_plot_updates_one_chart_live_in_a_kernel(monkeypatch, matplotlib):
    shown = fake_ipython(monkeypatch)
    t, data = trainer_and_data()
    t = t.plot("loss")
    state = t.run(data, epochs=3, return_state=True)
    assert [kind for kind, _ in shown] == ["display", "update", "update"]
    assert all(obj.format == "png" and obj.data[:4] == b"\x89PNG" for _, obj in shown)
    final = lines_of(live_plot_of(t).figure.axes[0])
    assert final["train"] == ([0, 1, 2], [state.history[e]["loss"] for e in range(3)])
    # validate is attached before plot: each redraw has its epoch's validation point
    assert final["validation"] == ([0, 1, 2], [state.history[e]["validation_loss"] for e in range(3)])
    # every=1: a redraw after each of the 2 iterations, the epoch's running loss as its point
    shown.clear()
    t, data = trainer_and_data()
    t = t.plot("loss", every=1)
    t.run(data, epochs=1)
    assert [kind for kind, _ in shown] == ["display", "update", "update"]


def test_loop_plot_draws_nothing_without_a_kernel(monkeypatch, tmp_path, matplotlib):
    shown = fake_ipython(monkeypatch, with_kernel=False)
    t, data = trainer_and_data()
    t.plot().run(data, epochs=2)
    assert shown == []


def test_loop_plot_bad_input(tmp_path):
    t, data = trainer_and_data()
    with pytest.raises(ValueError, match=r"plot: metric 'acc' is not tracked by this loop; its metrics are \['loss', 'mae'\]"):
        t.plot("acc")
    with pytest.raises(ValueError, match="plot: expected every to be 'epoch' or a positive int"):
        t.plot(every=0)
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="plot: cannot write the picture"):
        t.plot(path=tmp_path / "missing" / "x.png").run(data)
