"""One-call forms of :func:`build`: :func:`compile` (ahead of time), :func:`predict`,
:func:`init` (both through the build cache, so repeated calls do not build or trace
again) and :func:`trace_values` (abstract evaluation: every node's output shape, nothing
computed).

>>> import axon, jax.numpy as jnp
>>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1, kernel_initializer="ones")
>>> state = init(model, axon.template((1, 2)))
>>> predict(model, state, jnp.array([[1.0, 2.0]])).tolist()
[[3.0]]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from axon.compiler.cache import cached_build
from axon.compiler.functions import Mode, build, check_build_options
from axon.compiler.program import Context, Program, ShapePass
from axon.graph import Axon
from axon.model_state import ModelState
from axon.values import NoneValue

__all__ = ["compile", "init", "predict", "trace_values"]

def compile(
    model: Axon,
    template_or_arrays: Any,
    init_state: Any = None,
    **opts: Any,
) -> tuple[ModelState, Callable[..., Any]]:
    """Initialize and compile ahead of time for the shapes of ``template_or_arrays``.

    Returns ``(state, compiled_predict)``; ``compiled_predict(state, inputs)`` runs the
    executable compiled for exactly those shapes and dtypes.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 3)
    >>> state, run = axon.compile(model, axon.template((4, 2)))
    >>> run(state, jnp.ones((4, 2))).shape
    (4, 3)
    """
    init_fn, predict_fn = build(model, **opts)
    state = init_fn(template_or_arrays, init_state)
    inputs = predict_fn.check_inputs(template_or_arrays, "compile")
    inputs = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in inputs.items()}
    compiled = predict_fn.lower(state, inputs).compile()

    def run(state: Any, inputs: Any) -> Any:
        return compiled(state, predict_fn.check_inputs(inputs, "compiled predict"))

    return state, run


def predict(model: Axon, state: Any, inputs: Any, **opts: Any) -> Any:
    """Run ``model`` on ``inputs`` with ``state`` (``build(model, **opts)[1](state, inputs)``).

    The built functions are cached per graph and options (:mod:`axon.compiler.cache`),
    so calling this in a loop costs what calling a built ``predict_fn`` costs: one trace per
    input signature, not one per call.

    Args:
        model: the graph.
        state: a :class:`axon.ModelState` or a nested dict of parameters.
        inputs: an array (one-input model) or a dict by input name.
        **opts: :func:`axon.build`'s options.

    Returns:
        The model's output (in train mode a :class:`TrainOutput`).

    Raises:
        ValueError: bad inputs or options; ``CompileError`` names a layer that failed.

    >>> import axon, jax.numpy as jnp
    >>> axon.predict(axon.input("x").pipe(axon.relu), {}, jnp.array([-1.0, 1.0])).tolist()
    [0.0, 1.0]
    """
    _, predict_fn = cached_build(model, **opts)
    return predict_fn(state, inputs)


def init(model: Axon, template_or_arrays: Any = None, init_state: Any = None, **opts: Any) -> ModelState:
    """Initialize ``model`` for ``template_or_arrays`` (``build(model, **opts)[0](...)``),
    through the same build cache as :func:`predict`.

    Args:
        model: the graph.
        template_or_arrays: input templates or arrays; ``None`` uses the declared shapes.
        init_state: entries to use instead of initializing them.
        **opts: :func:`axon.build`'s options.

    Returns:
        The initialized :class:`axon.ModelState`.

    Raises:
        ValueError: bad inputs or options; ``CompileError`` names a layer that failed.

    >>> import axon
    >>> state = axon.init(axon.input("x", shape=(None, 2)).pipe(axon.dense, 3), axon.template((1, 2)))
    >>> state["dense_0"]["kernel"].shape
    (2, 3)
    """
    init_fn, _ = cached_build(model, **opts)
    return init_fn(template_or_arrays, init_state)


def trace_values(
    model: Axon,
    inputs: Any,
    *,
    mode: Mode = "inference",
    global_layer_options: Mapping[str, Any] | None = None,
    where: str = "trace_values",
) -> tuple[dict, dict[int, Any]]:
    """Initialize ``model`` abstractly (under ``jax.eval_shape``, nothing is computed) for the
    input templates or arrays ``inputs``.

    Returns ``(params, outputs)``: the initialized parameter tree with
    ``jax.ShapeDtypeStruct`` leaves (dtypes follow the layers' policies), and a map from
    every executed node id (blocks' inner nodes included) to its output, arrays replaced
    by ``jax.ShapeDtypeStruct`` (an ``axon.NoneValue`` for a missing optional value). Used by
    ``axon.display`` and ``axon.get_output_shape``.

    Args:
        model: the graph.
        inputs: input templates or arrays (one, or a dict by input name).
        mode: ``"inference"`` or ``"train"``.
        global_layer_options: as in :func:`axon.build`.
        where: the name used in error messages and warnings.

    Returns:
        ``(params, outputs)`` as above.

    Raises:
        ValueError: bad inputs or options; ``CompileError`` names a layer that failed.

    >>> import axon
    >>> model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 5)
    >>> params, outputs = trace_values(model, axon.template((2, 3)))
    >>> params["dense_0"]["kernel"].shape, outputs[model.output].shape
    ((3, 5), (2, 5))
    """
    global_layer_options = dict(global_layer_options or {})
    check_build_options(mode, 0, global_layer_options)
    program = Program(model)
    normalized = program.normalize_inputs(inputs, where)
    program.check_input_shapes(normalized, where, set())
    structs = {}
    for k, v in normalized.items():
        if not isinstance(v, NoneValue):
            v = v if hasattr(v, "shape") and hasattr(v, "dtype") else np.asarray(v)
            structs[k] = jax.ShapeDtypeStruct(tuple(v.shape), v.dtype)
    record: dict[int, Any] = {}

    def run(values: dict) -> dict:
        ctx = Context(mode, True, global_layer_options, False, seed=0)
        ctx.record = record
        ctx.cached_creators = True  # each initializer traced once per shape, not once per layer
        ctx.shapes = ShapePass()  # and each layer once per op, options and input shapes
        program.run(ctx, {}, values)
        return ctx.params

    params = jax.eval_shape(run, structs)
    return params, record
