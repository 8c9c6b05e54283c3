"""Checking a state against the parameters a model declares (like torch's
``load_state_dict(strict=...)``): missing, unexpected and mis-shaped entries.

>>> import axon, jax.numpy as jnp
>>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 3)
>>> print(check_state(model, {"dense_0": {"kernel": jnp.ones((2, 3)), "scale": jnp.ones(1)}}))
missing: dense_0.bias; unexpected: dense_0.scale
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax

from axon.graph import Axon, Parameter
from axon.model_state import ModelState, get_path, leaf_paths
from axon.serialization.errors import Path, StateMismatchError
from axon.serialization.graph_encoding import leaf_shape, scoped_nodes
from axon.serialization.state_format import as_state, set_new_path


class StateReport(NamedTuple):
    """How a state fits a model: paths the model needs but the state lacks (``missing``),
    paths the model does not have (``unexpected``), and ``(path, expected_shape,
    actual_shape)`` for values of the wrong shape (``mismatched``).

    >>> StateReport([], [("extra", "w")], []).ok
    False
    """

    missing: list[Path]
    unexpected: list[Path]
    mismatched: list[tuple[Path, tuple[int, ...], tuple[int, ...]]]

    @property
    def ok(self) -> bool:
        """True when nothing is missing, unexpected or mis-shaped."""
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        parts = []
        if self.missing:
            parts.append("missing: " + ", ".join(".".join(p) for p in self.missing))
        if self.unexpected:
            parts.append("unexpected: " + ", ".join(".".join(p) for p in self.unexpected))
        if self.mismatched:
            parts.append("shape mismatch: " + ", ".join(f"{'.'.join(p)} (model {e}, state {a})" for p, e, a in self.mismatched))
        return "; ".join(parts) or "state matches the model"


StateReport.__module__ = "axon.serialization"


def model_parameters(model: Axon) -> dict[Path, tuple[Parameter, bool]]:
    """Every leaf parameter of ``model`` (blocks and namespaces included) by its state path,
    with whether the model always has it (layers of one mode only may lack it).

    >>> import axon
    >>> list(model_parameters(axon.input("x", shape=(None, 2)).pipe(axon.dense, 3)))
    [('dense_0', 'kernel'), ('dense_0', 'bias')]
    """
    out: dict[Path, tuple[Parameter, bool]] = {}
    seen_blocks: set[int] = set()

    def add(p: Parameter, path: Path, required: bool) -> None:
        if p.children is not None:
            for c in p.children.values():
                add(c, (*path, c.name), required)
        else:
            out.setdefault(path, (p, required))

    def walk(graph: Axon, scope: Path, required: bool) -> None:
        for _, node, full in scoped_nodes(graph, scope):
            if node.op == "block":
                blk = node.opts["block"]
                if blk.id not in seen_blocks:
                    seen_blocks.add(blk.id)
                    walk(blk.graph, full, required)
                continue
            for p in node.parameters:
                add(p, (*full, p.name), required and node.mode == "both")

    walk(model, (), True)
    return out


def check_state(model: Axon, state: ModelState | Mapping[str, Any], template: Any = None) -> StateReport:
    """Compare ``state`` with the parameters ``model`` declares: missing, unexpected and
    mis-shaped entries. Shapes that depend on the input are checked when ``template`` (the
    model's input template(s), as for ``init_fn``) is given.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 3)
    >>> report = axon.serialization.check_state(model, {"dense_0": {"kernel": jnp.ones((2, 4))}}, axon.template((1, 2)))
    >>> report.missing, report.mismatched
    ([('dense_0', 'bias')], [(('dense_0', 'kernel'), (2, 3), (2, 4))])
    """
    ms = as_state(state, "check_state")
    declared = model_parameters(model)
    shapes: dict[Path, tuple[int, ...]] = {p: tuple(param.shape) for p, (param, _) in declared.items()
                                             if isinstance(param.shape, tuple)}
    if template is not None:
        from axon.compiler import build

        init_fn, _ = build(model, mode="train", jit=False)
        abstract = jax.eval_shape(lambda: init_fn(template))
        for path in leaf_paths(abstract.data):
            shapes[path] = tuple(get_path(abstract.data, path).shape)
    have = {p: leaf_shape(get_path(ms.data, p)) for p in leaf_paths(ms.data)}
    missing = [p for p, (_, required) in declared.items() if required and p not in have]
    unexpected = [p for p in have if p not in declared]
    mismatched = [(p, shapes[p], have[p]) for p in have if p in declared and p in shapes and have[p] is not None and shapes[p] != have[p]]
    return StateReport(missing, unexpected, mismatched)


def fit_state(model: Axon, state: ModelState, template: Any, strict: bool) -> ModelState:
    """``state`` checked against ``model`` for :func:`axon.load_state`: a mismatch raises
    :class:`StateMismatchError` when ``strict``, else the unexpected and mis-shaped entries
    are dropped with a warning; entries are marked as parameters, layer state and frozen
    as the model declares them."""
    report = check_state(model, state, template)
    if not report.ok:
        if strict:
            raise StateMismatchError(f"the state does not fit the model: {report}", report)
        bad = set(report.unexpected) | {p for p, _, _ in report.mismatched}
        if bad:
            # stacklevel: fit_state, load_state, its caller
            warnings.warn(f"load_state: dropping entries that do not fit the model: {report}", stacklevel=3)
        data: dict = {}
        for p in leaf_paths(state.data):
            if p not in bad:
                set_new_path(data, p, get_path(state.data, p), "load_state")
        state = ModelState(data, state.parameter_paths - bad, state.state_paths - bad, state.frozen_paths - bad)
    declared = model_parameters(model)
    kinds = {p: param.kind for p, (param, _) in declared.items()}
    paths = set(leaf_paths(state.data))
    parameter_paths = {p for p in paths if kinds.get(p, "parameter" if p in state.parameter_paths or p not in state.state_paths else "state") == "parameter"}
    state_paths = paths - parameter_paths
    frozen = (state.frozen_paths & paths) | {p for p, (param, _) in declared.items() if param.frozen and p in paths}
    return ModelState(state.data, parameter_paths, state_paths, frozen)
