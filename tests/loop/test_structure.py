"""The loop's structure: handler methods declared on ``Loop``, typed settings, no import
cycle inside ``axon.loop`` (function-local imports included), no hidden mutation of a
frozen object, the model built once per mode."""

import ast
import dataclasses
import inspect
import pathlib

import numpy as np
import pytest

import axon
from axon.loop import Loop
from axon.loop.config import EvaluatorConfig, TrainerConfig

LOOP_DIR = pathlib.Path(axon.loop.__file__).parent


def _imports(path: pathlib.Path) -> set[str]:
    """Every ``axon.loop.*`` module imported anywhere in the file (function-local too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("axon.loop.") and (LOOP_DIR / f"{name.split('.')[2]}.py").exists():
                found.add(name.split(".")[2])
    return found


def test_no_import_cycle_in_the_loop_package():
    graph = {p.stem: _imports(p) - {p.stem} for p in LOOP_DIR.glob("*.py") if p.stem != "__init__"}

    def reaches(start, target, seen):
        for nxt in graph.get(start, ()):
            if nxt == target:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reaches(nxt, target, seen):
                    return True
        return False

    cycles = [m for m in graph if reaches(m, m, set())]
    assert cycles == []


def test_handler_methods_are_declared_on_loop_with_docstrings():
    for name in ("metric", "handle_event", "handle", "log", "validate", "monitor", "early_stop", "checkpoint",
                 "reduce_lr_on_plateau", "from_state", "run"):
        method = Loop.__dict__.get(name)
        assert method is not None, name
        assert "Args:" in inspect.getdoc(method) and ">>>" in inspect.getdoc(method), name
        assert "return" in inspect.get_annotations(method), name


def test_no_setattr_hacks_in_the_loop_package():
    for path in LOOP_DIR.glob("*.py"):
        text = path.read_text()
        assert "object.__setattr__" not in text, path.name
        assert "setattr(Loop" not in text, path.name


def test_settings_are_typed_and_frozen():
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1)
    t = axon.loop.trainer(model, "mean_squared_error", "sgd", log=0, on_nonfinite="continue")
    e = axon.loop.evaluator(model)
    assert isinstance(t.settings, TrainerConfig) and t.settings.on_nonfinite == "continue"
    assert isinstance(e.settings, EvaluatorConfig) and e.settings.log == 1
    assert axon.loop.loop(lambda s, b: s).settings is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.settings.log = 3
    assert not hasattr(Loop, "config")


def test_compiled_step_is_cached_per_loop_and_reused():
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1)
    t = axon.loop.trainer(model, "mean_squared_error", "sgd", log=0)
    data = [(np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32))]
    t.run(data)
    final = t.run(data, return_state=True)
    assert final.trace_count == 1  # the second run reuses the first run's program
    assert t.metric("mean_absolute_error", "mae").compiled.program is None  # a new loop starts empty


def test_trainer_with_validation_builds_the_model_once_per_mode(monkeypatch):
    from axon.loop import steps

    built = []
    real_build = steps.build

    def counting_build(model, **kw):
        built.append(kw.get("mode"))
        return real_build(model, **kw)

    monkeypatch.setattr(steps, "build", counting_build)
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1)
    data = [(np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32))]
    t = axon.loop.trainer(model, "mean_squared_error", "sgd", log=0)
    assert built == ["train"]
    t = t.reduce_lr_on_plateau("loss").validate(model, data)
    t.run(data, epochs=2)
    assert built == ["train", "inference"]
