"""Saving and loading models and parameters, safely: no pickle, no code from the file.

* :func:`serialize` / :func:`deserialize`: a model graph and its :class:`axon.ModelState`
  to and from ``bytes``; :func:`save` / :func:`load` do the same with a file.
* :func:`save_state` / :func:`load_state`: parameters alone (:func:`serialize_state` /
  :func:`deserialize_state` for bytes), checked against a model with ``load_state(path,
  model=...)`` or :func:`check_state`, which report missing, unexpected and mis-shaped
  entries (like torch's ``load_state_dict(strict=...)``).
* :func:`register_layer` (and :func:`register_initializer`): a saved graph refers to each
  function it holds by its permanent name in :mod:`axon.registry` (see the naming scheme
  there): axon's own ops are ``"axon.<name>"`` (``"axon.dense"``, ``"axon.relu"``), its
  initializer factories ``"axon.initializers.<name>"``; a custom layer function must be
  registered, under the same name, both in the program that saves and in the one that
  loads. Layers built with ``axon.fn(x, f)`` or ``axon.cond(x, cond_fn, ...)`` keep
  ``f``/``cond_fn`` in their options, so those functions must be registered too. Files
  saved by older releases, which named ops by module path (``"axon.layers.dense"``,
  ``"axon.api.conv.separable_conv2d_op"``), still load: :mod:`~axon.serialization.legacy_names`
  translates those names.

**File format** (version 1). A file is a plain `safetensors
<https://huggingface.co/docs/safetensors>`_ file, so any safetensors reader can list and
load its tensors. Its text metadata has one entry, ``"axon"``, a JSON document
``{"format": "axon.model" | "axon.state", "version": 1, "graph": ..., "state": ...}``
(``graph`` for models only); the same model and state always give the same bytes.

* ``graph``: ``{"output": i, "nodes": [...], "blocks": [...]}``. Nodes are listed
  parents first; each has ``id`` (its position), ``name`` (a string or null), ``op``
  (``{"special": "input"}`` or ``{"function": "<registered op name>"}``), ``op_name``,
  ``parents``, ``args``, ``opts``, ``parameters`` (name, kind, dtype, frozen, concrete
  shape, initializer by name or null, children), ``mode``, ``global_options``, ``policy``
  and ``meta``. Option values are JSON with tags for what JSON lacks: ``{"$tuple": [...]}``,
  ``{"$dict": [[k, v], ...]}``, ``{"$float": "nan"}``, ``{"$tensor": key}`` (an array kept as
  a tensor of the file), ``{"$dtype": "float32"}``, ``{"$fn": name}``,
  ``{"$partial": ...}``, ``{"$init": ...}`` and ``{"$block": i}`` (an entry of ``blocks``,
  each a nested graph with its input names).
* ``state``: ``{"entries": [{"path": [...], "key": tensor_key}, ...], "parameters":
  [...], "state": [...], "frozen": [...]}``. Each entry names the exact path of one leaf
  (a list of strings, so layer names may contain any character; tensor keys are the path
  joined with ``"."`` only for readability); a quantized leaf has ``"qtensor": {"value": k,
  "scale": k, "zero_point": k}`` instead of ``"key"``, and a typed PRNG key adds
  ``"prng_impl"``.

Loading only parses: ops and initializers resolve through the registries, never by
importing a name from the file. A truncated, corrupted or hostile file raises
:class:`SerializationError` (a ``ValueError``). Shapes of parameters declared as functions
of the input shapes are stored as the concrete shapes found in the saved state, so a
loaded model initializes parameters of exactly those shapes. Hooks are not saved (a
warning names the layers); initializers given by name (``"glorot_uniform"``) or made by a
factory of :mod:`axon.initializers` (``axon.initializers.uniform(scale=0.1)``) are saved,
other functions only if registered (otherwise a loaded model needs the saved values,
which it has).

Modules: :mod:`~axon.serialization.api` (the public functions),
:mod:`~axon.serialization.registry` (with :mod:`~axon.serialization.legacy_names`),
:mod:`~axon.serialization.codec` (option values),
:mod:`~axon.serialization.graph_encoding` / :mod:`~axon.serialization.graph_decoding`,
:mod:`~axon.serialization.state_format`, :mod:`~axon.serialization.state_check`,
:mod:`~axon.serialization.container` (safetensors), :mod:`~axon.serialization.dtypes` and
:mod:`~axon.serialization.errors`.

>>> import axon, jax.numpy as jnp
>>> model = axon.input("input", shape=(None, 2)).pipe(axon.dense, 1, kernel_initializer="zeros", activation="relu")
>>> init_fn, _ = axon.build(model)
>>> state = init_fn(axon.template((1, 2), "f32"))
>>> serialized = axon.serialize(model, state)
>>> saved_model, saved_state = axon.deserialize(serialized)
>>> _, predict_fn = axon.build(saved_model)
>>> predict_fn(saved_state, jnp.array([[1.0, 1.0]])).tolist()
[[0.0]]
"""

# Besides the names of __all__, the format constants and ``Path`` stay importable from here,
# as before the package was split. Axon's own modules register into axon.registry, never here.
from axon.serialization.api import (
    deserialize,
    deserialize_state,
    load,
    load_state,
    save,
    save_state,
    serialize,
    serialize_state,
)
from axon.serialization.container import FORMAT_MODEL as FORMAT_MODEL
from axon.serialization.container import FORMAT_STATE as FORMAT_STATE
from axon.serialization.container import VERSION as VERSION
from axon.serialization.errors import Path as Path
from axon.serialization.errors import SerializationError, StateMismatchError
from axon.serialization.registry import register_initializer, register_layer, registered_layers
from axon.serialization.state_check import StateReport, check_state

__all__ = [
    "SerializationError",
    "StateMismatchError",
    "StateReport",
    "check_state",
    "deserialize",
    "deserialize_state",
    "load",
    "load_state",
    "register_initializer",
    "register_layer",
    "registered_layers",
    "save",
    "save_state",
    "serialize",
    "serialize_state",
]
