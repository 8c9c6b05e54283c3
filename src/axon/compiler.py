"""The compiler: the one place where a graph becomes JAX code.

``build(model)`` returns ``(init_fn, predict_fn)``, two jit-compiled pure functions.
``init_fn(template, init_state=None)`` returns an :class:`axon.ModelState`;
``predict_fn(state, inputs)`` returns the model's output (in train mode, a
:class:`TrainOutput` with the prediction and the updated layer state).

>>> import axon, jax.numpy as jnp
>>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1, kernel_initializer="ones")
>>> init_fn, predict_fn = axon.build(model)
>>> state = init_fn(axon.template((1, 2)))
>>> predict_fn(state, jnp.array([[1.0, 2.0]])).tolist()
[[3.0]]
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import time
import warnings
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from axon._dtypes import canonical_dtype, is_float
from axon.errors import CompileError, StateError
from axon.graph import Axon, Node, Parameter, layer_names, topological_order
from axon.mixed_precision import cast
from axon.model_state import ModelState, get_path, leaf_paths, set_path
from axon.types import NONE, NoneValue, StatefulOutput

__all__ = ["InitFunction", "InputSpec", "PredictFunction", "TrainOutput", "build", "compile", "predict", "template"]

logger = logging.getLogger("axon")
_MODES = ("inference", "train")


class TrainOutput(NamedTuple):
    """What a train-mode ``predict_fn`` returns: the prediction and the new layer state
    (``{layer: {state_name: array}}``, to merge with ``ModelState.update(state=...)``)."""

    prediction: Any
    state: dict


class InputSpec(NamedTuple):
    """One input of a model as declared with ``axon.input``: its name, its declared shape
    (``None`` when no shape was declared; ``None`` entries mark dimensions of any size),
    and whether it is optional."""

    name: str
    shape: tuple[int | None, ...] | None
    optional: bool


def template(shape: tuple[int, ...], dtype: Any = "float32") -> jax.ShapeDtypeStruct:
    """An input template: a shape and a dtype, no data (Axon's ``Nx.template``).

    >>> template((1, 784), "f32")
    ShapeDtypeStruct(shape=(1, 784), dtype=float32)
    """
    if not isinstance(shape, (tuple, list)) or not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
        raise ValueError(f"template: expected shape to be a tuple of non-negative ints, got {shape!r}")
    return jax.ShapeDtypeStruct(tuple(int(d) for d in shape), canonical_dtype(dtype))


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _path_salt(path: tuple[str, ...]) -> int:
    digest = hashlib.md5(".".join(path).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _accepts_mode(op: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(op).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "mode" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _describe(value: Any) -> list[tuple[tuple[int, ...], str]]:
    out = []
    for leaf in jax.tree_util.tree_leaves(value):
        if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
            out.append((tuple(leaf.shape), str(leaf.dtype)))
    return out


def _shape_of(value: Any) -> Any:
    if isinstance(value, NoneValue):
        return None
    return jax.tree_util.tree_map(lambda v: tuple(v.shape), value)


def _is_propagating_none(v: Any) -> bool:
    return isinstance(v, NoneValue) and v.propagate


def _rebuild(struct: Any, values: list[Any]) -> Any:
    if isinstance(struct, int):
        return values[struct]
    if isinstance(struct, dict):
        return {k: _rebuild(v, values) for k, v in struct.items()}
    if isinstance(struct, tuple):
        return tuple(_rebuild(v, values) for v in struct)
    return [_rebuild(v, values) for v in struct]


def _contains_propagating_none(value: Any) -> bool:
    return any(_is_propagating_none(v) for v in jax.tree_util.tree_leaves(value, is_leaf=lambda x: isinstance(x, NoneValue)))


def _abstract(value: Any) -> Any:
    """``value`` with every array replaced by its ``jax.ShapeDtypeStruct`` (dict order kept)."""
    if isinstance(value, Mapping):
        return {k: _abstract(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_abstract(v) for v in value)
    return jax.tree_util.tree_map(
        lambda v: jax.ShapeDtypeStruct(v.shape, v.dtype) if hasattr(v, "shape") and hasattr(v, "dtype") else v,
        value,
        is_leaf=lambda v: isinstance(v, NoneValue),
    )


def _run_hooks(node: Node, event: str, mode: str, value: Any, init: bool = False) -> Any:
    if init and event != "initialize":
        return value
    hooks = [fn for (on, hmode, fn) in node.hooks if (on == event or on == "all") and hmode in ("both", mode)]
    if not hooks:
        return value
    if event == "backward":
        return _backward_hook(value, tuple(hooks))
    for fn in hooks:
        jax.debug.callback(fn, value, ordered=True)
    return value


def _backward_hook(value: Any, hooks: tuple[Callable[..., Any], ...]) -> Any:
    @jax.custom_vjp
    def identity(x):
        return x

    def fwd(x):
        return x, None

    def bwd(_, g):
        for fn in hooks:
            jax.debug.callback(fn, g)
        return (g,)

    identity.defvjp(fwd, bwd)
    return identity(value)


# --------------------------------------------------------------------------------------
# The graph program
# --------------------------------------------------------------------------------------


class _Program:
    """A graph analysed once: execution order, layer names, parameter paths, inputs."""

    def __init__(self, model: Axon, scope: tuple[str, ...] = ()):
        if not isinstance(model, Axon):
            raise TypeError(f"build: expected an axon graph (axon.Axon), got {type(model).__name__}: {model!r}")
        self.model = model
        self.scope = scope
        self.order = topological_order(model)
        self.names = layer_names(model)
        self.inputs: dict[str, Node] = {}
        self.sub_programs: dict[int, _Program] = {}
        seen_params: dict[tuple[str, ...], int] = {}
        for nid in self.order:
            node = model.nodes[nid]
            sc, name = self.names[nid]
            if node.op == "input":
                if name in self.inputs and self.inputs[name].id != nid:
                    raise ValueError(f"build: two different inputs are named {name!r}; input names must be unique")
                self.inputs[name] = node
            elif node.op == "block":
                blk = node.opts["block"]
                if blk.id not in self.sub_programs:
                    self.sub_programs[blk.id] = _Program(blk.graph, (*scope, *sc, name))
            for p in node.parameters:
                path = (*sc, name, p.name)
                other = seen_params.setdefault(path, nid)
                if other != nid:
                    raise ValueError(
                        f"build: two layers are both named {name!r} and have a parameter {p.name!r}; "
                        "give them distinct names"
                    )
        self.accepts_mode = {
            nid: _accepts_mode(model.nodes[nid].op)
            for nid in self.order
            if callable(model.nodes[nid].op)
        }
        self.required_inputs = tuple(n for n, node in self.inputs.items() if not node.opts.get("optional"))
        self.input_spec = {
            n: InputSpec(n, None if node.opts.get("shape") is None else tuple(node.opts["shape"]), bool(node.opts.get("optional")))
            for n, node in self.inputs.items()
        }

    # -- inputs -------------------------------------------------------------------------
    def normalize_inputs(self, inputs: Any, where: str) -> dict[str, Any]:
        names = self.inputs
        if isinstance(inputs, Mapping):
            unknown = [k for k in inputs if k not in names]
            if unknown:
                raise ValueError(f"{where}: unknown input name(s) {unknown}; the model's inputs are {sorted(names)}")
            missing = [k for k in self.required_inputs if k not in inputs]
            if missing:
                raise ValueError(f"{where}: missing input(s) {missing}; the model's inputs are {sorted(names)}")
            return dict(inputs)
        if len(names) == 1:
            (name,) = names
            return {name: inputs}
        if not names:
            raise ValueError(f"{where}: the model has no inputs; pass an empty dict")
        raise ValueError(
            f"{where}: the model has {len(names)} inputs {sorted(names)}; pass a dict mapping each input name to an array"
        )

    def check_input_shapes(self, inputs: Mapping[str, Any], where: str) -> None:
        for name, value in inputs.items():
            declared = self.inputs[name].opts.get("shape")
            shape = getattr(value, "shape", None)
            if declared is None or shape is None:
                continue
            if len(declared) != len(shape) or any(d is not None and d != s for d, s in zip(declared, shape)):
                raise ValueError(
                    f"{where}: input {name!r} has shape {tuple(shape)}, but the model declares shape {declared} "
                    "(None marks a dimension of any size)"
                )

    # -- execution ----------------------------------------------------------------------
    def run(self, ctx: _Context, data: Mapping[str, Any], inputs: Mapping[str, Any]) -> Any:
        nodes = self.model.nodes
        values: dict[int, Any] = {}
        for nid in self.order:
            node = nodes[nid]
            scope, name = self.names[nid]
            values[nid] = self._run_node(ctx, node, (*self.scope, *scope), name, data, inputs, values)
            if ctx.record is not None:
                ctx.record[nid] = _abstract(values[nid])
        out = values[self.model.output]
        return out

    def _run_node(self, ctx, node: Node, scope, name, data, inputs, values) -> Any:
        op = node.op
        parents = [values[p] for p in node.parents]
        if op == "input":
            if name in inputs:
                value = inputs[name]
                if not isinstance(value, NoneValue):
                    value = jnp.asarray(value) if not isinstance(value, jax.Array) else value
                return _run_hooks(node, "forward", ctx.mode, value, ctx.init)
            return NoneValue(propagate=True)
        if op == "constant":
            value = jnp.asarray(node.opts["value"])
            return cast(node.policy, value, "output") if node.policy is not None else value
        if op == "container":
            if any(_contains_propagating_none(p) for p in parents):
                return NoneValue(propagate=True)
            return _rebuild(node.opts["structure"], parents)
        if op == "optional":
            return NONE if isinstance(parents[0], NoneValue) else parents[0]
        if op == "or_else":
            return parents[1] if isinstance(parents[0], NoneValue) else parents[0]
        if op == "namespace":
            return parents[0]
        if op == "block":
            if any(_contains_propagating_none(p) for p in parents):
                return NoneValue(propagate=True)
            blk = node.opts["block"]
            sub = self.sub_programs[blk.id]
            return sub.run(ctx, data, dict(zip(blk.input_names, parents)))
        return self._run_layer(ctx, node, scope, name, data, parents)

    def _run_layer(self, ctx, node: Node, scope, name, data, parents) -> Any:
        if node.mode != "both" and node.mode != ctx.mode:
            if ctx.init:  # entries of layers inactive in this mode are known, not unused
                for p in node.parameters:
                    ctx.used.update(k for k in ctx.given if k[: len(scope) + 2] == (*scope, name, p.name))
            return parents[0] if parents else NoneValue(propagate=True)
        if any(_contains_propagating_none(p) for p in parents):
            return NoneValue(propagate=True)
        policy = node.policy
        try:
            param_values = [self._param_value(ctx, node, scope, name, p, parents, data) for p in node.parameters]
            stored = {p.name: v for p, v in zip(node.parameters, param_values) if p.kind == "state"}
            if policy is not None and policy.compute is not None:
                parents = [cast(policy, p, "compute") for p in parents]
                param_values = [cast(policy, p, "compute") for p in param_values]
            if ctx.init and node.hooks and node.parameters:
                _run_hooks(node, "initialize", ctx.mode, {p.name: v for p, v in zip(node.parameters, param_values)})
            parents = [_run_hooks(node, "pre_forward", ctx.mode, p, ctx.init) for p in parents]
            args, it_layer, it_param = [], iter(parents), iter(param_values)
            for kind in node.args:
                args.append(next(it_layer) if kind == "layer" else next(it_param))
            kwargs = dict(node.opts)
            if self.accepts_mode.get(node.id):
                kwargs["mode"] = ctx.mode
            for opt in node.global_options:
                if opt in ctx.global_options:
                    kwargs[opt] = ctx.global_options[opt]
            result = node.op(*args, **kwargs)
        except (CompileError, StateError):
            raise
        except Exception as e:
            raise CompileError(name if not scope else ".".join((*scope, name)), node.op_name, _describe(parents), node.created_at, e) from e
        if isinstance(result, StatefulOutput):
            self._record_state(ctx, node, scope, name, result.state, stored)
            result = result.output
        result = _run_hooks(node, "forward", ctx.mode, result, ctx.init)
        result = _run_hooks(node, "backward", ctx.mode, result, ctx.init)
        if policy is not None and policy.output is not None:
            result = cast(policy, result, "output")
        if ctx.print_values and not ctx.init:
            label = ".".join((*scope, name))
            for i, leaf in enumerate(jax.tree_util.tree_leaves(result)):
                suffix = f"[{i}]" if i else ""
                jax.debug.print(label + suffix + ": {x}", x=leaf, ordered=True)
        return result

    def _record_state(self, ctx, node: Node, scope, name, state: Mapping[str, Any], stored: Mapping[str, Any]) -> None:
        """Record a layer's state updates; a floating update keeps its entry's dtype (under a
        policy the layer computes in ``policy.compute``, the entry is in ``policy.params``)."""
        if ctx.mode != "train":
            return
        declared = {p.name for p in node.parameters if p.kind == "state"}
        for key, value in state.items():
            if key not in declared:
                raise CompileError(
                    name, node.op_name, [], node.created_at,
                    ValueError(f"the layer returned state {key!r}, but declares state parameters {sorted(declared)}"),
                )
            entry = stored.get(key)
            if hasattr(entry, "dtype") and hasattr(value, "dtype") and is_float(value.dtype) and value.dtype != entry.dtype:
                value = value.astype(entry.dtype)
            set_path(ctx.state_updates, (*scope, name, key), value)

    def _param_value(self, ctx, node: Node, scope, name, p: Parameter, parents, data) -> Any:
        path = (*scope, name, p.name)
        if ctx.init:
            value = self._init_param(ctx, node, path, p, parents)
        else:
            try:
                value = get_path(data, path)
            except (KeyError, TypeError):
                raise StateError(
                    f"no value for parameter {p.name!r} of layer {'.'.join((*scope, name))!r} in the model state; "
                    "was the state initialized for this model (and in this mode)?"
                ) from None
        if p.frozen:
            value = jax.lax.stop_gradient(value)
        return value

    def _init_param(self, ctx, node: Node, path, p: Parameter, parents) -> Any:
        if p.children is not None:
            return {c.name: self._init_param(ctx, node, (*path, c.name), c, parents) for c in p.children.values()}
        dtype = p.dtype
        if node.policy is not None and node.policy.params is not None and is_float(dtype):
            dtype = node.policy.params
        if p.kind == "state":
            ctx.state_paths.add(path)
        else:
            ctx.parameter_paths.add(path)
        if p.frozen:
            ctx.frozen_paths.add(path)
        if callable(p.shape):
            layer_inputs = [_shape_of(v) for v in parents]
            shape = p.shape(*layer_inputs)
            if not isinstance(shape, (tuple, list)):
                raise TypeError(f"the shape function of parameter {p.name!r} returned {shape!r}, expected a tuple")
            shape = tuple(int(d) for d in shape)
        else:
            shape = p.shape
        given = ctx.given.get(path, None)
        if given is not None:
            ctx.used.add(path)
            value = jnp.asarray(given) if isinstance(given, (jax.Array, np.ndarray, np.generic, int, float)) else given
            if tuple(getattr(value, "shape", ())) != shape:
                raise StateError(
                    f"the initial value given for parameter {'.'.join(path)!r} has shape {tuple(value.shape)}, "
                    f"but the model expects {shape}"
                )
            if isinstance(value, jax.Array) and is_float(value.dtype) and value.dtype != dtype:
                value = value.astype(dtype)
        else:
            key = jax.random.fold_in(ctx.base_key, _path_salt(path))
            value = p.initializer(key, shape, dtype)
        set_path(ctx.params, path, value)
        return value


class _Context:
    """Per-call execution settings and accumulators (lives only while tracing)."""

    def __init__(self, mode: str, init: bool, global_options: Mapping[str, Any], print_values: bool,
                 seed: int | None = None, given: Mapping[tuple[str, ...], Any] | None = None):
        self.mode = mode
        self.init = init
        self.global_options = global_options
        self.print_values = print_values
        self.base_key = jax.random.PRNGKey(seed) if init else None
        self.given = given or {}
        self.used: set[tuple[str, ...]] = set()
        self.params: dict = {}
        self.state_updates: dict = {}
        self.parameter_paths: set[tuple[str, ...]] = set()
        self.state_paths: set[tuple[str, ...]] = set()
        self.frozen_paths: set[tuple[str, ...]] = set()
        self.record: dict[int, Any] | None = None  # node id -> abstract output (trace_values)


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


class _CompiledFunction:
    """What ``init_fn`` and ``predict_fn`` share: the model's declared inputs and their checks.

    This is the compiler's public surface for its clients (the loop, graph tools, display):
    ``mode``, ``input_spec`` and ``check_inputs``; ``PredictFunction`` adds ``apply``.
    """

    _program: _Program
    mode: str

    @property
    def input_spec(self) -> dict[str, InputSpec]:
        """The model's inputs by name, as declared (``{name: InputSpec(name, shape, optional)}``).

        >>> import axon
        >>> _, predict_fn = axon.build(axon.input("x", shape=(None, 3)).pipe(axon.dense, 2))
        >>> predict_fn.input_spec["x"].shape
        (None, 3)
        """
        return dict(self._program.input_spec)

    def check_inputs(self, inputs: Any, where: str | None = None) -> dict[str, Any]:
        """Normalize ``inputs`` (one array for a one-input model, or a dict by input name) to a
        dict, check names and shapes against the declared inputs on the host, and return it.

        Args:
            inputs: an array (for a model with one input) or a dict mapping input names to arrays
                or templates.
            where: the name used in error messages (default: this function's name).

        Returns:
            A dict mapping each given input name to its value.

        Raises:
            ValueError: an unknown or missing input name, or inputs for a multi-input model not
                given as a dict.

        >>> import axon, jax.numpy as jnp
        >>> _, predict_fn = axon.build(axon.input("x", shape=(None, 3)).pipe(axon.dense, 2))
        >>> sorted(predict_fn.check_inputs(jnp.ones((2, 3))))
        ['x']
        """
        where = where or self._where
        normalized = self._program.normalize_inputs(inputs, where)
        self._program.check_input_shapes(normalized, where)
        return normalized


class InitFunction(_CompiledFunction):
    """``init_fn(template_or_arrays, init_state=None) -> ModelState``, jit-compiled once per
    input signature. ``trace_count`` counts how often it was traced."""

    _where = "init_fn"

    def __init__(self, program: _Program, *, mode: str, seed: int, jit: bool, global_options, debug: bool):
        self._program = program
        self.mode = mode
        self._seed = seed
        self._jit = jit
        self._global_options = global_options
        self._debug = debug
        self._meta: dict[Any, tuple] = {}
        self.trace_count = 0
        self._jitted = jax.jit(self._init, static_argnums=0) if jit else None

    def _init(self, spec: tuple, given: dict) -> dict:
        self.trace_count += 1
        start = time.perf_counter()
        ctx = _Context(self.mode, True, self._global_options, False, seed=self._seed,
                       given={tuple(p.split("\x1f")): v for p, v in given.items()})
        inputs = {name: jnp.zeros(shape, dtype) for name, shape, dtype in spec}
        self._program.run(ctx, {}, inputs)
        self._meta[(spec, tuple(sorted(given)))] = (
            frozenset(ctx.parameter_paths), frozenset(ctx.state_paths), frozenset(ctx.frozen_paths), frozenset(ctx.used)
        )
        if self._debug:
            logger.info("axon: traced init in %.1f ms", 1000 * (time.perf_counter() - start))
        return ctx.params

    def __call__(self, template_or_arrays: Any = None, init_state: Any = None) -> ModelState:
        if template_or_arrays is None:
            template_or_arrays = {}
        inputs = self.check_inputs(template_or_arrays)
        spec = []
        for name, value in sorted(inputs.items()):
            if not hasattr(value, "shape") or not hasattr(value, "dtype"):
                value = np.asarray(value)
            spec.append((name, tuple(int(d) for d in value.shape), canonical_dtype(value.dtype)))
        spec = tuple(spec)
        given_state = init_state if isinstance(init_state, ModelState) else None
        given_data = init_state.data if isinstance(init_state, ModelState) else (init_state or {})
        if not isinstance(given_data, Mapping):
            raise TypeError(f"init_fn: expected init_state to be a ModelState or a nested dict, got {type(init_state).__name__}")
        given = {"\x1f".join(p): get_path(given_data, p) for p in leaf_paths(given_data)}
        fn = self._jitted if self._jit else (lambda s, g: self._init(s, g))
        params = fn(spec, given)
        parameter_paths, state_paths, frozen_paths, used = self._meta[(spec, tuple(sorted(given)))]
        unknown = [p for p in (tuple(k.split("\x1f")) for k in given) if p not in used]
        if unknown:
            warnings.warn(
                "init_fn: the initial state has entries that the model does not use: "
                + ", ".join(".".join(p) for p in unknown),
                stacklevel=2,
            )
        if given_state is not None:
            frozen_paths = frozen_paths | (given_state.frozen_paths & (parameter_paths | state_paths))
        return ModelState(params, parameter_paths, state_paths, frozen_paths)


class PredictFunction(_CompiledFunction):
    """``predict_fn(state, inputs)``, jit-compiled once per input signature.

    ``trace_count`` counts how often it was traced (a second call with the same shapes
    does not trace again). It can be called inside the user's own ``jax.jit``/``jax.grad``.
    ``apply`` is the same forward pass without the host-side input checks, for callers that
    checked the inputs once already (``check_inputs``) and trace it into their own program.
    """

    _where = "predict_fn"

    def __init__(self, program: _Program, *, mode: str, jit: bool, global_options, print_values: bool, debug: bool):
        self._program = program
        self.mode = mode
        self._global_options = global_options
        self._print_values = print_values
        self._debug = debug
        self.trace_count = 0
        self._jitted = jax.jit(self._predict) if jit else None

    def _predict(self, state: Any, inputs: dict) -> Any:
        self.trace_count += 1
        start = time.perf_counter()
        data = state.data if isinstance(state, ModelState) else state
        ctx = _Context(self.mode, False, self._global_options, self._print_values)
        out = self._program.run(ctx, data, inputs)
        if _contains_propagating_none(out):
            raise ValueError(
                "the model's output is missing: an optional input it depends on was not given "
                f"(inputs given: {sorted(inputs)}); wrap the input with axon.optional or use axon.or_else"
            )
        if self._debug:
            logger.info("axon: traced predict in %.1f ms", 1000 * (time.perf_counter() - start))
        if self.mode == "train":
            return TrainOutput(out, ctx.state_updates)
        return out

    def __call__(self, state: Any, inputs: Any) -> Any:
        if not isinstance(state, (ModelState, Mapping)):
            raise TypeError(f"predict_fn: expected state to be a ModelState or a nested dict, got {type(state).__name__}")
        inputs = self.check_inputs(inputs)
        if self._jitted is not None:
            return self._jitted(state, inputs)
        return self._predict(state, inputs)

    def apply(self, state: Any, inputs: Any) -> Any:
        """Run the forward pass as traced code, without host-side checks or a jit of its own.

        Args:
            state: a :class:`axon.ModelState` or a nested dict of parameters.
            inputs: an array (one-input model) or a dict by input name.

        Returns:
            The model's output; in train mode a :class:`TrainOutput`.

        >>> import axon, jax, jax.numpy as jnp
        >>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1, kernel_initializer="ones")
        >>> init_fn, predict_fn = axon.build(model)
        >>> state = init_fn(axon.template((1, 2)))
        >>> jax.jit(predict_fn.apply)(state, jnp.ones((1, 2))).tolist()
        [[2.0]]
        """
        if not isinstance(inputs, Mapping):
            inputs = self._program.normalize_inputs(inputs, "apply")
        return self._predict(state, dict(inputs))

    def lower(self, state: Any, inputs: Any):
        """Lower for ahead-of-time compilation (``.compile()`` on the result)."""
        inputs = self._program.normalize_inputs(inputs, "predict_fn")
        return jax.jit(self._predict).lower(state, inputs)


def _check_build_options(mode: str, seed: Any, global_layer_options: Any) -> None:
    if mode not in _MODES:
        raise ValueError(f"build: expected mode to be one of {list(_MODES)}, got {mode!r}")
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise TypeError(f"build: expected seed to be an int, got {seed!r}")
    if not isinstance(global_layer_options, Mapping):
        raise TypeError(f"build: expected global_layer_options to be a dict, got {global_layer_options!r}")


def build(
    model: Axon,
    *,
    mode: str = "inference",
    seed: int = 0,
    jit: bool = True,
    print_values: bool = False,
    global_layer_options: Mapping[str, Any] | None = None,
    debug: bool = False,
) -> tuple[InitFunction, PredictFunction]:
    """Build ``model`` into ``(init_fn, predict_fn)``.

    ``mode="train"`` runs train-only layers (dropout) and makes ``predict_fn`` return a
    :class:`TrainOutput` with the updated layer state. Parameters are initialized
    deterministically from ``seed`` and each parameter's layer and name, so the same seed
    gives the same parameters however the graph was put together (Axon's default seed is
    the clock; axon's is 0, for reproducibility). ``global_layer_options`` reach the
    layers that declared them in ``axon.layer(global_options=...)``.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 3)).pipe(axon.dropout, rate=0.5)
    >>> _, predict_fn = axon.build(model, mode="train")
    >>> init_fn, _ = axon.build(model, mode="train")
    >>> out = predict_fn(init_fn(axon.template((2, 3))), jnp.ones((2, 3)))
    >>> out.prediction.shape, sorted(out.state["dropout_0"])
    ((2, 3), ['key'])
    """
    global_layer_options = dict(global_layer_options or {})
    _check_build_options(mode, seed, global_layer_options)
    start = time.perf_counter()
    program = _Program(model)
    if debug:
        logger.info("axon: analysed graph of %d nodes in %.1f ms", len(program.order), 1000 * (time.perf_counter() - start))
    init_fn = InitFunction(program, mode=mode, seed=int(seed), jit=jit, global_options=global_layer_options, debug=debug)
    predict_fn = PredictFunction(program, mode=mode, jit=jit, global_options=global_layer_options,
                                 print_values=print_values, debug=debug)
    return init_fn, predict_fn


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
    """Build ``model`` and run it once on ``inputs`` with ``state``.

    >>> import axon, jax.numpy as jnp
    >>> axon.predict(axon.input("x").pipe(axon.relu), {}, jnp.array([-1.0, 1.0])).tolist()
    [0.0, 1.0]
    """
    _, predict_fn = build(model, **opts)
    return predict_fn(state, inputs)


def init(model: Axon, template_or_arrays: Any, init_state: Any = None, **opts: Any) -> ModelState:
    """Build ``model`` and initialize it for ``template_or_arrays`` (``build(...)[0](...)``).

    >>> import axon
    >>> state = axon.init(axon.input("x", shape=(None, 2)).pipe(axon.dense, 3), axon.template((1, 2)))
    >>> state["dense_0"]["kernel"].shape
    (2, 3)
    """
    init_fn, _ = build(model, **opts)
    return init_fn(template_or_arrays, init_state)


def trace_values(
    model: Axon,
    inputs: Any,
    *,
    mode: str = "inference",
    global_layer_options: Mapping[str, Any] | None = None,
    where: str = "trace_values",
) -> tuple[dict, dict[int, Any]]:
    """Initialize ``model`` abstractly (under ``jax.eval_shape``, nothing is computed) for the
    input templates or arrays ``inputs``.

    Returns ``(params, outputs)``: the initialized parameter tree with
    ``jax.ShapeDtypeStruct`` leaves (dtypes follow the layers' policies), and a map from
    every executed node id (blocks' inner nodes included) to its output, arrays replaced
    by ``jax.ShapeDtypeStruct`` (``axon.NONE`` for a missing optional value). Used by
    ``axon.display``.

    >>> import axon
    >>> model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 5)
    >>> params, outputs = trace_values(model, axon.template((2, 3)))
    >>> params["dense_0"]["kernel"].shape, outputs[model.output].shape
    ((3, 5), (2, 5))
    """
    global_layer_options = dict(global_layer_options or {})
    _check_build_options(mode, 0, global_layer_options)
    program = _Program(model)
    normalized = program.normalize_inputs(inputs, where)
    program.check_input_shapes(normalized, where)
    structs = {}
    for k, v in normalized.items():
        if not isinstance(v, NoneValue):
            v = v if hasattr(v, "shape") and hasattr(v, "dtype") else np.asarray(v)
            structs[k] = jax.ShapeDtypeStruct(tuple(v.shape), v.dtype)
    record: dict[int, Any] = {}

    def run(values: dict) -> dict:
        ctx = _Context(mode, True, global_layer_options, False, seed=0)
        ctx.record = record
        program.run(ctx, {}, values)
        return ctx.params

    params = jax.eval_shape(run, structs)
    return params, record
