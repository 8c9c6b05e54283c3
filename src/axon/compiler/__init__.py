"""The compiler: the one place where a graph becomes JAX code.

``build(model)`` returns ``(init_fn, predict_fn)``, two jit-compiled pure functions.
``init_fn(template, init_state=None)`` returns an :class:`axon.ModelState`;
``predict_fn(state, inputs)`` returns the model's output (in train mode, a
:class:`TrainOutput` with the prediction and the updated layer state).

The package is split by concern: :mod:`~axon.compiler.program` analyses a graph and
interprets it (inside a JAX trace); :mod:`~axon.compiler.functions` holds :func:`build`
and the compiled functions it returns (their public surface: ``mode``, ``input_spec``,
``check_inputs``, ``PredictFunction.apply``); :mod:`~axon.compiler.cache` keeps
built functions per graph; :mod:`~axon.compiler.shortcuts` has the one-call forms
(``predict``, ``init``, ``compile``, ``trace_values``).

>>> import axon, jax.numpy as jnp
>>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1, kernel_initializer="ones")
>>> init_fn, predict_fn = axon.build(model)
>>> state = init_fn(axon.template((1, 2)))
>>> predict_fn(state, jnp.array([[1.0, 2.0]])).tolist()
[[3.0]]
"""

from axon.compiler.cache import BuildCache, build_cache, cached_build
from axon.compiler.functions import (
    InitFunction,
    Mode,
    PredictFunction,
    TrainOutput,
    build,
    template,
)
from axon.compiler.program import InputSpec
from axon.compiler.shortcuts import compile, init, predict, trace_values

__all__ = [
    "BuildCache",
    "InitFunction",
    "InputSpec",
    "Mode",
    "PredictFunction",
    "TrainOutput",
    "build",
    "build_cache",
    "cached_build",
    "compile",
    "init",
    "predict",
    "template",
    "trace_values",
]
