"""axon: Axon's deep-learning API for Python, on JAX.

Build a model as an immutable graph, compile it to ``init_fn``/``predict_fn``, train it
with ``axon.loop``:

>>> import axon, jax.numpy as jnp
>>> model = (
...     axon.input("input", shape=(None, 784))
...     .pipe(axon.dense, 128, activation="relu")
...     .pipe(axon.dense, 10, activation="softmax")
... )
>>> model
<Axon inputs={'input': (None, 784)} output='softmax_0' nodes=5>
>>> init_fn, predict_fn = axon.build(model)
>>> state = init_fn(axon.template((1, 784), "f32"))
>>> predict_fn(state, jnp.ones((2, 784))).shape
(2, 10)

Name mapping from Elixir: ``Axon.nx`` is :func:`axon.fn`; ``%Axon.None{}`` is
:data:`axon.NONE` (test with :func:`axon.is_none`); ``Nx.template`` is :func:`axon.template`.
"""

__version__ = "0.1.0"

import sys as _sys

from axon import (
    activations,
    config,
    display,
    distributed,
    initializers,
    layers,
    loop,
    loss_scale,
    losses,
    metrics,
    mixed_precision,
    optimizers,
    plot,
    quantization,
    registry,
    schedules,
    serialization,
    updates,
)
from axon.api.activation import *
from axon.api.attention import *
from axon.api.columns import *
from axon.api.combinators import *
from axon.api.conv import *
from axon.api.core import (
    Block,
    block,
    constant,
    container,
    fn,
    input,
    layer,
    namespace,
    optional,
    or_else,
    param,
    remat,
)
from axon.api.dropout import *
from axon.api.linear import *
from axon.api.normalization import *
from axon.api.pooling import *
from axon.api.recurrent import *
from axon.api.resize import *
from axon.api.shape import *
from axon.api.tensor import *
from axon.compiler import TrainOutput, build, compile, init, predict, template
from axon.errors import CompileError, StateError
from axon.graph import Axon, Node, Parameter
from axon.graph_ops import *
from axon.graph_rewrite import freeze, map_nodes, pop_node, reduce_nodes, rewrite_nodes, unfreeze
from axon.hooks import attach_hook
from axon.model_state import ModelState
from axon.serialization import (
    SerializationError,
    deserialize,
    load,
    load_state,
    register_layer,
    save,
    save_state,
    serialize,
)
from axon.tracing import trace_backward, trace_forward, trace_init
from axon.values import NONE, NoneValue, StatefulOutput, is_none

# The public namespace: the public submodules, the names the graph API modules export
# with ``*``, and the names imported explicitly above. Internal modules (``api``,
# ``compiler``, ``graph``, ...) stay importable as ``axon.compiler`` but are not listed.
_PUBLIC_MODULES = (
    "activations",
    "config",
    "display",
    "distributed",
    "initializers",
    "layers",
    "loop",
    "loss_scale",
    "losses",
    "metrics",
    "mixed_precision",
    "optimizers",
    "plot",
    "quantization",
    "registry",
    "schedules",
    "serialization",
    "updates",
)
_STAR_MODULES = (
    "axon.api.activation",
    "axon.api.attention",
    "axon.api.columns",
    "axon.api.combinators",
    "axon.api.conv",
    "axon.api.dropout",
    "axon.api.linear",
    "axon.api.normalization",
    "axon.api.pooling",
    "axon.api.recurrent",
    "axon.api.resize",
    "axon.api.shape",
    "axon.api.tensor",
    "axon.graph_ops",
)
_EXPLICIT = (
    "Axon",
    "Block",
    "CompileError",
    "ModelState",
    "NONE",
    "Node",
    "NoneValue",
    "Parameter",
    "SerializationError",
    "StateError",
    "StatefulOutput",
    "TrainOutput",
    "attach_hook",
    "block",
    "build",
    "compile",
    "constant",
    "container",
    "deserialize",
    "fn",
    "freeze",
    "init",
    "input",
    "is_none",
    "layer",
    "load",
    "load_state",
    "map_nodes",
    "namespace",
    "optional",
    "or_else",
    "param",
    "pop_node",
    "predict",
    "reduce_nodes",
    "register_layer",
    "remat",
    "rewrite_nodes",
    "save",
    "save_state",
    "serialize",
    "template",
    "trace_backward",
    "trace_forward",
    "trace_init",
    "unfreeze",
)
__all__ = sorted(
    {*_PUBLIC_MODULES, *_EXPLICIT, *(n for m in _STAR_MODULES for n in _sys.modules[m].__all__)}
)


config._configure_from_environment()  # JAX's persistent compilation cache (AXON_COMPILATION_CACHE)


def __dir__() -> list[str]:
    """``dir(axon)``: the public API (``__all__``) and ``__version__``, no internal modules."""
    return [*__all__, "__version__"]


_LAZY_MODULES = ("models", "onnx", "pretrained")
"""Subpackages built on the core, imported on first use as ``axon.<name>`` (or ``import axon.<name>``)."""


def __getattr__(name: str):
    """``axon.pretrained``, ``axon.models`` and ``axon.onnx``, imported when first used."""
    if name in _LAZY_MODULES:
        import importlib

        return importlib.import_module(f"axon.{name}")
    raise AttributeError(f"module 'axon' has no attribute {name!r}")
