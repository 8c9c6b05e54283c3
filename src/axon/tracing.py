"""Tracing: the JAX program (a ``jax.core.ClosedJaxpr``) that initialization, the forward
pass or the backward pass of a model compiles to, for inspection and debugging.

Axon returns Nx expressions; the JAX counterpart is a jaxpr (``str(jaxpr)`` prints it,
``jaxpr.eqns`` lists its operations).

>>> import axon
>>> model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2, activation="relu")
>>> state = axon.init(model, axon.template((1, 3)))
>>> jaxpr = axon.trace_forward(model, axon.template((1, 3)), state)
>>> "dot_general" in str(jaxpr) and "max" in str(jaxpr)
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from axon.compiler import build
from axon.graph import Axon
from axon.model_state import ModelState

__all__ = ["trace_backward", "trace_forward", "trace_init"]


def _check_opts(opts: Mapping[str, Any], where: str, forbidden: tuple[str, ...]) -> dict:
    bad = [k for k in opts if k in forbidden]
    if bad:
        raise TypeError(f"{where}: option(s) {bad} cannot be set here (tracing always builds with jit=False"
                        f"{' and mode=' + repr('train') if 'mode' in forbidden else ''})")
    return dict(opts)


def _abstract_inputs(inputs: Any) -> Any:
    """Arrays and templates as ``jax.ShapeDtypeStruct`` (so they become jaxpr inputs)."""
    def leaf(v: Any) -> Any:
        if hasattr(v, "shape") and hasattr(v, "dtype"):
            return jax.ShapeDtypeStruct(tuple(v.shape), v.dtype)
        return v

    return jax.tree_util.tree_map(leaf, inputs)


def trace_init(model: Axon, template: Any, init_state: Any = None, **build_opts: Any) -> jax.core.ClosedJaxpr:
    """The jaxpr of ``init_fn(template, init_state)``.

    ``template`` is what ``init_fn`` takes (templates or arrays, one or a dict by input
    name); entries of ``init_state`` (a ``ModelState`` or nested dict, merged as in
    ``init_fn``) are the jaxpr's inputs. ``build_opts`` are :func:`axon.build`'s options
    (``seed``, ``mode``, ``global_layer_options``...), except ``jit``.

    Args:
        model: the graph.
        template: templates or arrays, one or a dict by input name.
        init_state: a ``ModelState`` or nested dict of given parameters; ``None`` (default):
            none.
        **build_opts: :func:`axon.build` options other than ``jit``.

    Returns:
        A ``jax.core.ClosedJaxpr``.

    Raises:
        TypeError: ``jit`` among ``build_opts``, or an ``init_state`` of another type.

    >>> import axon
    >>> model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2)
    >>> jaxpr = axon.trace_init(model, axon.template((1, 3)))
    >>> [tuple(v.aval.shape) for v in jaxpr.jaxpr.outvars]
    [(2,), (3, 2)]
    """
    opts = _check_opts(build_opts, "trace_init", ("jit",))
    init_fn, _ = build(model, jit=False, **opts)
    given = init_state.data if isinstance(init_state, ModelState) else (init_state or {})
    if not isinstance(given, Mapping):
        raise TypeError(f"trace_init: expected init_state to be a ModelState or a nested dict, got {type(init_state).__name__}")

    def run(given: Any) -> dict:
        if isinstance(init_state, ModelState):
            given = ModelState(given, init_state.parameter_paths, init_state.state_paths, init_state.frozen_paths)
        return init_fn(template, given).data

    return jax.make_jaxpr(run)(given)


def trace_forward(model: Axon, inputs: Any, state: Any, **build_opts: Any) -> jax.core.ClosedJaxpr:
    """The jaxpr of ``predict_fn(state, inputs)``; ``inputs`` may be arrays or templates.

    ``build_opts`` are :func:`axon.build`'s options except ``jit``; ``mode="train"``
    traces the training forward pass (its outputs are the prediction and the new state).

    Args:
        model: the graph.
        inputs: arrays or templates, one or a dict by input name.
        state: the model state (a ``ModelState`` or nested dict).
        **build_opts: :func:`axon.build` options other than ``jit``.

    Returns:
        A ``jax.core.ClosedJaxpr``.

    Raises:
        TypeError: ``jit`` among ``build_opts``.

    >>> import axon
    >>> model = axon.input("x", shape=(None, 4)).pipe(axon.dropout, rate=0.5)
    >>> state = axon.init(model, axon.template((1, 4)), mode="train")
    >>> inference = axon.trace_forward(model, axon.template((2, 4)), state)
    >>> train = axon.trace_forward(model, axon.template((2, 4)), state, mode="train")
    >>> "random_bits" in str(inference), "random_bits" in str(train), len(train.jaxpr.outvars)
    (False, True, 2)
    """
    opts = _check_opts(build_opts, "trace_forward", ("jit",))
    _, predict_fn = build(model, jit=False, **opts)
    return jax.make_jaxpr(lambda s, x: predict_fn(s, x))(state, _abstract_inputs(inputs))


def trace_backward(
    model: Axon,
    inputs: Any,
    state: Any,
    loss_fn: Callable[[Any, Any], jax.Array],
    **build_opts: Any,
) -> jax.core.ClosedJaxpr:
    """The jaxpr of the gradient, with respect to the trainable parameters, of
    ``loss_fn(y_true, y_pred)``, where ``y_pred`` is the model's train-mode prediction.

    As in Axon, ``loss_fn`` takes targets and predictions and must return a scalar; the
    targets are an input of the jaxpr with the prediction's shapes and dtypes. The jaxpr's
    inputs are ``(trainable_parameters, inputs, targets)`` (flattened) and its outputs
    the gradients, in the order of ``jax.tree_util.tree_leaves(state.trainable_parameters())``.
    The model is built in train mode; ``build_opts`` are :func:`axon.build`'s other options.

    Args:
        model: the graph.
        inputs: arrays or templates, one or a dict by input name.
        state: the model state (a ``ModelState`` or nested dict).
        loss_fn: ``loss_fn(y_true, y_pred) -> scalar``.
        **build_opts: :func:`axon.build` options other than ``jit`` and ``mode``.

    Returns:
        A ``jax.core.ClosedJaxpr``.

    Raises:
        TypeError: ``jit`` among ``build_opts``, or ``loss_fn`` is not callable.
        ValueError: ``loss_fn`` does not return a scalar.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 1)
    >>> state = axon.init(model, axon.template((1, 3)))
    >>> loss = lambda y, p: jnp.mean((y - p) ** 2)
    >>> jaxpr = axon.trace_backward(model, axon.template((4, 3)), state, loss)
    >>> [tuple(v.aval.shape) for v in jaxpr.jaxpr.outvars]
    [(1,), (3, 1)]
    """
    if not callable(loss_fn):
        raise TypeError(f"trace_backward: expected loss_fn to be a function (y_true, y_pred) -> scalar, got {loss_fn!r}")
    opts = _check_opts(build_opts, "trace_backward", ("jit", "mode"))
    _, predict_fn = build(model, jit=False, mode="train", **opts)
    model_state = ModelState.new(state) if not isinstance(state, ModelState) else state
    trainable = model_state.trainable_parameters()
    inputs = _abstract_inputs(inputs)

    def forward(params: Any, x: Any) -> Any:
        return predict_fn(model_state.update(params), x).prediction

    targets = jax.eval_shape(forward, trainable, inputs)

    def loss(params: Any, x: Any, y: Any) -> jax.Array:
        value = loss_fn(y, forward(params, x))
        if jnp.shape(value) != ():
            raise ValueError(f"trace_backward: loss_fn must return a scalar, got shape {jnp.shape(value)}")
        return value

    return jax.make_jaxpr(jax.grad(loss))(trainable, inputs, targets)
