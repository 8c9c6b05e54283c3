"""Graph analysis and the interpreter: a graph analysed once (:class:`Program`: execution
order, layer names, parameter paths, declared inputs) and run node by node inside a JAX
trace (:class:`Context` holds one run's settings and accumulators).

This is the compiler's inside; its public surface is :mod:`axon.compiler`
(``build``, ``InitFunction``, ``PredictFunction``...).

>>> import axon, jax.numpy as jnp
>>> program = Program(axon.input("x", shape=(None, 2)).pipe(axon.relu))
>>> program.input_spec
{'x': InputSpec(name='x', shape=(None, 2), optional=False)}
>>> program.run(Context("inference", False, {}, False), {}, {"x": jnp.array([[-1.0, 2.0]])}).tolist()
[[0.0, 2.0]]
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from axon._dtypes import is_float
from axon.compiler.creation import creator, path_salt
from axon.errors import CompileError, StateError
from axon.graph import Axon, Node, Parameter, layer_names, topological_order
from axon.mixed_precision import cast
from axon.model_state import get_path, set_path
from axon.tree import fill_structure
from axon.values import NONE, NoneValue, StatefulOutput

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

__all__ = ["Context", "InputSpec", "PlannedParam", "Program", "ShapePass", "abstract", "contains_propagating_none", "given_value",
           "run_initialize_hooks"]


class InputSpec(NamedTuple):
    """One input of a model as declared with ``axon.input``: its name, its declared shape
    (``None`` when no shape was declared; ``None`` entries mark dimensions of any size),
    and whether it is optional."""

    name: str
    shape: tuple[int | None, ...] | None
    optional: bool


class PlannedParam(NamedTuple):
    """One parameter found by an abstract initialization pass: where it goes, and either
    how to create it (``initializer``, ``shape``, ``dtype``) or, with ``initializer=None``,
    that its value is given (in ``init_state``) and cast to ``dtype``."""

    path: tuple[str, ...]
    initializer: Callable[..., Any] | None
    shape: tuple[int, ...]
    dtype: Any


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def given_value(given: Any, dtype: Any) -> Any:
    """A parameter value given in ``init_state`` as the model stores it: an array (from
    NumPy arrays and Python numbers), floating values cast to the parameter's ``dtype``.

    >>> given_value(np.ones(2), "bfloat16").dtype
    dtype(bfloat16)
    """
    value = jnp.asarray(given) if isinstance(given, (jax.Array, np.ndarray, np.generic, int, float)) else given
    if isinstance(value, jax.Array) and is_float(value.dtype) and value.dtype != dtype:
        value = value.astype(dtype)
    return value


def _user_stacklevel() -> int:
    """The ``stacklevel`` that attributes a warning to the first caller outside the axon
    package (the user's line), however deep inside axon it is raised."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


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



def contains_propagating_none(value: Any) -> bool:
    """Whether ``value`` (any pytree) holds a propagating ``NoneValue``: a value missing
    because an optional input it depends on was not given.

    >>> contains_propagating_none({"a": NoneValue(propagate=True)}), contains_propagating_none(NONE)
    (True, False)
    """
    return any(_is_propagating_none(v) for v in jax.tree_util.tree_leaves(value, is_leaf=lambda x: isinstance(x, NoneValue)))


def abstract(value: Any) -> Any:
    """``value`` with every array replaced by its ``jax.ShapeDtypeStruct`` (dict order kept).

    >>> import jax.numpy as jnp
    >>> abstract({"b": jnp.ones((2,)), "a": NONE})
    {'b': ShapeDtypeStruct(shape=(2,), dtype=float32), 'a': axon.NONE}
    """
    if isinstance(value, Mapping):
        return {k: abstract(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(abstract(v) for v in value)
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


def run_initialize_hooks(node: Node, mode: str, values: dict[str, Any]) -> None:
    """Run ``node``'s ``initialize`` hooks on its new parameters (``{name: value}``)."""
    _run_hooks(node, "initialize", mode, values)


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


class Program:
    """A graph analysed once: execution order, layer names, parameter paths, inputs."""

    def __init__(self, model: Axon, scope: tuple[str, ...] = ()):
        if not isinstance(model, Axon):
            raise TypeError(f"build: expected an axon graph (axon.Axon), got {type(model).__name__}: {model!r}")
        # the node table and the output id, not the graph object: a cached program must not
        # keep the user's graph alive (see axon.compiler.build_cache)
        self.nodes = model.nodes
        self.output = model.output
        self.scope = scope
        self.order = topological_order(model)
        self.names = layer_names(model)
        self.inputs: dict[str, Node] = {}
        self.sub_programs: dict[int, Program] = {}
        seen_params: dict[tuple[str, ...], int] = {}
        for nid in self.order:
            node = model.nodes[nid]
            sc, name = self.names[nid]
            if node.op == "input":
                self._add_input(name, node)
            elif node.op == "block":
                blk = node.opts["block"]
                if blk.id not in self.sub_programs:
                    self.sub_programs[blk.id] = Program(blk.graph, (*scope, *sc, name))
            for p in node.parameters:
                path = (*sc, name, p.name)
                other = seen_params.setdefault(path, nid)
                if other != nid:
                    raise ValueError(
                        f"build: two layers are both named {name!r} and have a parameter {p.name!r}; "
                        "give them distinct names"
                    )
        self.accepts_mode = {
            nid: _accepts_mode(self.nodes[nid].op)
            for nid in self.order
            if callable(self.nodes[nid].op)
        }
        self.required_inputs = tuple(n for n, node in self.inputs.items() if not node.opts.get("optional"))
        self.input_spec = {
            n: InputSpec(n, None if node.opts.get("shape") is None else tuple(node.opts["shape"]), bool(node.opts.get("optional")))
            for n, node in self.inputs.items()
        }

    # -- inputs -------------------------------------------------------------------------
    def _add_input(self, name: str, node: Node) -> None:
        """Register an input node. Inputs are identified by name, as in Axon: a second node
        with the same name, declared shape and optional flag is the same input (fed from
        the same value); one that declares something else is an error naming both."""
        first = self.inputs.get(name)
        if first is None:
            self.inputs[name] = node
            return
        declared = [(None if n.opts.get("shape") is None else tuple(n.opts["shape"]), bool(n.opts.get("optional")))
                    for n in (first, node)]
        if declared[0] != declared[1]:
            (shape_a, opt_a), (shape_b, opt_b) = declared
            raise ValueError(
                f"build: two inputs are named {name!r} but declare different inputs: shape {shape_a}"
                f"{' (optional)' if opt_a else ''} and shape {shape_b}{' (optional)' if opt_b else ''}; "
                "inputs with the same name must declare the same shape and optional flag"
            )

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

    def check_input_shapes(self, inputs: Mapping[str, Any], where: str, warned: set | None = None) -> None:
        """Warn (``UserWarning``) when an input's shape differs from its declared shape.

        Declared shapes are information, as in Axon (Keras 3 warns and proceeds too): the
        model still runs, and a layer that cannot compute on the actual shape fails with a
        ``CompileError`` naming the layer. Each ``(input, shape)`` pair is reported once per
        ``warned`` set (one per compiled function), not on every call.
        """
        for name, value in inputs.items():
            declared = self.inputs[name].opts.get("shape")
            shape = getattr(value, "shape", None)
            if declared is None or shape is None:
                continue
            shape = tuple(int(d) for d in shape)
            if len(declared) == len(shape) and all(d is None or d == s for d, s in zip(declared, shape)):
                continue
            if warned is not None:
                if (name, shape) in warned:
                    continue
                warned.add((name, shape))
            warnings.warn(
                f"{where}: input {name!r} has shape {shape}, but the model declares shape {tuple(declared)} "
                "(None marks a dimension of any size); running the model on the actual shape",
                UserWarning,
                stacklevel=_user_stacklevel(),
            )

    # -- execution ----------------------------------------------------------------------
    def run(self, ctx: Context, data: Mapping[str, Any], inputs: Mapping[str, Any]) -> Any:
        nodes = self.nodes
        values: dict[int, Any] = {}
        for nid in self.order:
            node = nodes[nid]
            scope, name = self.names[nid]
            values[nid] = self._run_node(ctx, node, (*self.scope, *scope), name, data, inputs, values)
            if ctx.record is not None:
                ctx.record[nid] = abstract(values[nid])
        return values[self.output]

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
            if any(contains_propagating_none(p) for p in parents):
                return NoneValue(propagate=True)
            return fill_structure(node.opts["structure"], parents)
        if op == "optional":
            return NONE if isinstance(parents[0], NoneValue) else parents[0]
        if op == "or_else":
            return parents[1] if isinstance(parents[0], NoneValue) else parents[0]
        if op == "namespace":
            return parents[0]
        if op == "block":
            if any(contains_propagating_none(p) for p in parents):
                return NoneValue(propagate=True)
            blk = node.opts["block"]
            sub = self.sub_programs[blk.id]
            block_inputs = dict(zip(blk.input_names, parents))
            if getattr(blk, "remat", None) is not None and not ctx.init:
                return _run_rematerialized(sub, blk.remat, ctx, data, block_inputs)
            return sub.run(ctx, data, block_inputs)
        return self._run_layer(ctx, node, scope, name, data, parents)

    def _run_layer(self, ctx, node: Node, scope, name, data, parents) -> Any:
        if node.mode != "both" and node.mode != ctx.mode:
            if ctx.init:  # entries of layers inactive in this mode are known, not unused
                for p in node.parameters:
                    ctx.used.update(k for k in ctx.given if k[: len(scope) + 2] == (*scope, name, p.name))
            return parents[0] if parents else NoneValue(propagate=True)
        if any(contains_propagating_none(p) for p in parents):
            return NoneValue(propagate=True)
        policy = node.policy
        try:
            param_values = [self._param_value(ctx, node, scope, name, p, parents, data) for p in node.parameters]
            stored = {p.name: v for p, v in zip(node.parameters, param_values) if p.kind == "state"}
            if policy is not None and policy.compute is not None:
                parents = [cast(policy, p, "compute") for p in parents]
                param_values = [cast(policy, p, "compute") for p in param_values]
            if ctx.init and node.hooks and node.parameters:
                if ctx.plan is not None:  # run once the parameters exist (init_hooks)
                    ctx.init_hooks.append((node, tuple((*scope, name, p.name) for p in node.parameters)))
                else:
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
            result = node.op(*args, **kwargs) if ctx.shapes is None else ctx.shapes.call(node, args, kwargs)
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
            if tuple(np.shape(given)) != shape:
                raise StateError(
                    f"the initial value given for parameter {'.'.join(path)!r} has shape {tuple(np.shape(given))}, "
                    f"but the model expects {shape}"
                )
            value = given_value(given, dtype)
            if ctx.plan is not None:
                ctx.plan.append(PlannedParam(path, None, shape, dtype))
        else:
            value = ctx.create(path, p.initializer, shape, dtype)
        set_path(ctx.params, path, value)
        return value


def _is_array(value: Any) -> bool:
    return isinstance(value, (jax.Array, np.ndarray)) or (hasattr(value, "shape") and hasattr(value, "dtype")
                                                          and not isinstance(value, jax.ShapeDtypeStruct))


def _run_rematerialized(sub: Program, policy: str, ctx: Context, data: Mapping[str, Any], inputs: dict) -> Any:
    """Run a block's program under ``jax.checkpoint`` with the named policy: its
    activations are recomputed in the backward pass instead of kept.

    The checkpointed function is pure: it takes the block's parameters and the arrays among
    its inputs, and returns the block's output and its layer-state updates (merged into
    ``ctx`` afterwards); everything else (NONE values, options) is closed over."""
    block_data: dict = {}
    try:
        set_path(block_data, sub.scope, get_path(data, sub.scope))
    except (KeyError, TypeError):
        block_data = {}  # the block has no parameters; the program reports missing ones itself
    leaves, treedef = jax.tree_util.tree_flatten(inputs, is_leaf=lambda v: isinstance(v, NoneValue))
    positions = [i for i, leaf in enumerate(leaves) if _is_array(leaf)]

    def run(block_data: dict, arrays: list) -> tuple[Any, dict]:
        filled = list(leaves)
        for i, a in zip(positions, arrays):
            filled[i] = a
        inner = Context(ctx.mode, False, ctx.global_options, ctx.print_values)
        out = sub.run(inner, block_data, jax.tree_util.tree_unflatten(treedef, filled))
        return out, inner.state_updates

    checkpointed = jax.checkpoint(run, policy=getattr(jax.checkpoint_policies, policy))
    out, updates = checkpointed(block_data, [leaves[i] for i in positions])
    for path, value in _leaf_items(updates):
        set_path(ctx.state_updates, path, value)
    return out


def _leaf_items(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out = []
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.extend(_leaf_items(v, (*prefix, k)))
        else:
            out.append(((*prefix, k), v))
    return out


class Context:
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
        # an abstract pass that plans parameter creation (InitFunction): every parameter is
        # appended to ``plan``, and layers' initialize hooks to ``init_hooks`` (to run once
        # the parameters exist); ``cached_creators`` makes initializer calls go through the
        # compiled per-(initializer, shape, dtype) programs of axon.compiler.creation
        self.plan: list[PlannedParam] | None = None
        self.init_hooks: list[tuple[Node, tuple[tuple[str, ...], ...]]] = []
        self.cached_creators = False
        # an abstract pass (only shapes are wanted): layer calls and parameter creations
        # whose abstract signature was seen before are not traced again (ShapePass)
        self.shapes: ShapePass | None = None


    def create(self, path: tuple[str, ...], initializer: Callable[..., Any], shape: tuple[int, ...], dtype: Any) -> Any:
        """The initial value of the parameter at ``path``: ``initializer(fold_in(base_key,
        path_salt(path)), shape, dtype)`` (see :mod:`axon.compiler.creation`)."""
        if self.plan is not None:
            self.plan.append(PlannedParam(path, initializer, shape, dtype))
        if self.cached_creators or self.plan is not None:
            make = creator(initializer, shape, dtype)
            if self.shapes is not None:
                return self.shapes.create(make, self.base_key, path_salt(path))
            return make(self.base_key, path_salt(path))
        return initializer(jax.random.fold_in(self.base_key, path_salt(path)), shape, dtype)


class ShapePass:
    """Reuses abstract results within one abstract pass over a model: a layer called again
    with the same op, options and argument shapes and dtypes (the 800 identical blocks of a
    deep residual network) is traced once; later calls get placeholders of the same shapes
    and dtypes (nothing is computed in an abstract pass, so only shapes matter).

    Calls whose options or arguments cannot be compared (arrays among the options,
    unhashable objects) and results that hold anything but plain arrays (weak-typed values,
    keys, Python objects) are traced every time, as without this cache.

    >>> import jax, jax.numpy as jnp
    >>> shapes, calls = ShapePass(), []
    >>> def double(x):
    ...     calls.append(1)
    ...     return x * 2
    >>> def run(x):
    ...     return shapes.call_function(double, x) + shapes.call_function(double, x)
    >>> jax.eval_shape(run, jax.ShapeDtypeStruct((3,), jnp.float32)).shape, len(calls)
    ((3,), 1)
    """

    def __init__(self) -> None:
        self._results: dict[Any, tuple[Any, tuple[tuple[tuple[int, ...], Any], ...]]] = {}
        self._options: dict[int, Any] = {}
        self._placeholders: dict[Any, Any] = {}

    def call(self, node: Node, args: list, kwargs: dict) -> Any:
        """``node.op(*args, **kwargs)``, or placeholders if this call was traced before."""
        options = self._options.get(id(node), _UNSET)
        if options is _UNSET:
            options = self._options[id(node)] = _freeze(kwargs)
        if options is None:
            return node.op(*args, **kwargs)
        return self._cached(("layer", node.op, options), node.op, args, kwargs)

    def call_function(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, or placeholders if ``fn`` was called on such arguments before."""
        return self._cached(("function", fn), fn, list(args), {})

    def create(self, make: Callable[[Any, int], Any], base_key: Any, salt: int) -> Any:
        """``make(base_key, salt)`` for a parameter-creation program (whose result's shape
        does not depend on the salt), or placeholders if ``make`` was called before."""
        return self._cached(("create", make), make, [base_key, salt], {}, signature_args=[base_key])

    def _cached(self, what: Any, fn: Callable[..., Any], args: list, kwargs: dict, signature_args: list | None = None) -> Any:
        leaves, treedef = jax.tree_util.tree_flatten(args if signature_args is None else signature_args)
        signature = []
        for leaf in leaves:
            if isinstance(leaf, jax.core.Tracer):
                signature.append(jax.typeof(leaf))
            elif isinstance(leaf, (jax.Array, np.ndarray)):
                return fn(*args, **kwargs)
            else:
                frozen = _freeze(leaf)
                if frozen is None:
                    return fn(*args, **kwargs)
                signature.append(frozen)
        try:
            key = (what, treedef, tuple(signature))
            found = self._results.get(key)
        except TypeError:  # an option or aval that cannot be hashed after all
            return fn(*args, **kwargs)
        if found is not None:
            out_tree, avals = found
            return jax.tree_util.tree_unflatten(out_tree, [self._placeholder(s, d) for s, d in avals])
        result = fn(*args, **kwargs)
        out_leaves, out_tree = jax.tree_util.tree_flatten(result)
        avals = []
        for leaf in out_leaves:
            if not isinstance(leaf, jax.core.Tracer):
                return result
            aval = jax.typeof(leaf)
            if getattr(aval, "weak_type", False) or not isinstance(aval.dtype, np.dtype):
                return result
            avals.append((tuple(aval.shape), aval.dtype))
        self._results[key] = (out_tree, tuple(avals))
        return result

    def _placeholder(self, shape: tuple[int, ...], dtype: Any) -> Any:
        # one per shape and dtype: values are never computed, so they may be shared
        value = self._placeholders.get((shape, dtype))
        if value is None:
            value = self._placeholders[(shape, dtype)] = jnp.zeros(shape, dtype)
        return value


_UNSET = object()


def _freeze(value: Any) -> Any:
    """A hashable stand-in for an option or a non-array argument (its type included, so
    ``1`` and ``1.0`` differ), or ``None`` when there is none."""
    if isinstance(value, Mapping):
        items = []
        for k, v in value.items():
            frozen = _freeze(v)
            if frozen is None:
                return None
            items.append((k, frozen))
        return ("mapping", type(value), tuple(items))
    if isinstance(value, (list, tuple)):
        items = [_freeze(v) for v in value]
        if any(v is None for v in items):
            return None
        return (type(value), tuple(items))
    if value is None:
        return ("none",)
    if isinstance(value, (jax.Array, np.ndarray, jax.core.Tracer)):
        return None
    try:
        hash(value)
    except TypeError:
        return None
    return (type(value), value)
