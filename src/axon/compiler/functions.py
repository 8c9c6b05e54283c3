"""The compiled functions: :func:`build` turns a graph into ``(init_fn, predict_fn)``,
an :class:`InitFunction` and a :class:`PredictFunction` sharing one analysed
:class:`~axon.compiler.program.Program`.

>>> import axon, jax.numpy as jnp
>>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1, kernel_initializer="ones")
>>> init_fn, predict_fn = build(model)
>>> predict_fn(init_fn(), jnp.array([[1.0, 2.0]])).tolist()
[[3.0]]
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from axon._dtypes import canonical_dtype
from axon.compiler import hoisting
from axon.compiler.creation import creator, path_salt
from axon.compiler.placement import Distribution, check_distribution
from axon.compiler.program import (
    Context,
    InputSpec,
    PlannedParam,
    Program,
    ShapePass,
    contains_propagating_none,
    given_value,
    run_initialize_hooks,
)
from axon.errors import MissingOutputError
from axon.graph import Axon
from axon.mixed_precision import cast
from axon.model_state import ModelState, get_path, leaf_paths, set_path

__all__ = ["MODES", "Mode", "InitFunction", "PredictFunction", "TrainOutput", "build", "check_build_options", "template"]

logger = logging.getLogger("axon")
_PLACEMENT_CACHE_SIZE = 8  # state layouts a distributed predict_fn remembers
MODES = ("inference", "train")
_PLAIN = object()  # PredictFunction._call_hoisted: take the plain path
Mode = Literal["inference", "train"]


class TrainOutput(NamedTuple):
    """What a train-mode ``predict_fn`` returns: the prediction and the new layer state
    (``{layer: {state_name: array}}``, to merge with ``ModelState.update(state=...)``).

    Axon returns a map ``%{prediction: ..., state: ...}``; besides attribute access and
    unpacking, ``result["prediction"]`` and ``result["state"]`` work as on that map.

    >>> out = TrainOutput([1.0], {"dropout_0": {}})
    >>> out["prediction"] is out.prediction is out[0]
    True
    >>> out["loss"]
    Traceback (most recent call last):
    ...
    KeyError: "TrainOutput has no key 'loss'; its keys are 'prediction' and 'state'"
    """

    prediction: Any
    state: dict

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            if key not in self._fields:
                raise KeyError(f"TrainOutput has no key {key!r}; its keys are 'prediction' and 'state'")
            return getattr(self, key)
        return tuple.__getitem__(self, key)


def template(shape: tuple[int, ...], dtype: Any = "float32") -> jax.ShapeDtypeStruct:
    """An input template: a shape and a dtype, no data (Axon's ``Nx.template``).

    >>> template((1, 784), "f32")
    ShapeDtypeStruct(shape=(1, 784), dtype=float32)
    """
    if not isinstance(shape, (tuple, list)) or not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
        raise ValueError(f"template: expected shape to be a tuple of non-negative ints, got {shape!r}")
    return jax.ShapeDtypeStruct(tuple(int(d) for d in shape), canonical_dtype(dtype))


class _CompiledFunction:
    """What ``init_fn`` and ``predict_fn`` share: the model's declared inputs and their checks.

    This is the compiler's public surface for its clients (the loop, graph tools, display):
    ``mode``, ``input_spec`` and ``check_inputs``; ``PredictFunction`` adds ``apply``.
    """

    _program: Program
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
        dict, check names against the declared inputs on the host, and return it. An input
        whose shape differs from its declared shape is not an error (declared shapes are
        information, as in Axon): a ``UserWarning`` names both shapes, once per function and
        ``(input, shape)``.

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
        self._program.check_input_shapes(normalized, where, self._warned_shapes)
        return normalized


class _InitPlan(NamedTuple):
    """What an abstract pass over the model found for one input signature: the parameters
    in the order the layers create them, their tree structure, the layers' initialize
    hooks, the path sets of the state, and the shardings under a distribution."""

    params: tuple[PlannedParam, ...]
    treedef: Any
    hooks: tuple
    parameter_paths: frozenset
    state_paths: frozenset
    frozen_paths: frozenset
    used: frozenset
    shardings: Any


def _signature(value: Any) -> tuple:
    return (tuple(np.shape(value)), str(getattr(value, "dtype", type(value).__name__)))


class InitFunction(_CompiledFunction):
    """``init_fn(template_or_arrays, init_state=None) -> ModelState``.

    The model is evaluated abstractly once per input signature (shapes only: which
    parameters exist, with which shapes and dtypes; ``trace_count`` counts these passes),
    then each parameter is created by a small compiled program shared by every parameter
    with the same initializer, shape and dtype (:mod:`axon.compiler.creation`), so the
    cost grows linearly with the model. Under a distribution each program creates its
    parameter already laid out. With ``jit=False`` the whole model runs eagerly instead.
    """

    _where = "init_fn"

    def __init__(self, program: Program, *, mode: str, seed: int, jit: bool, global_options, debug: bool,
                 distribution: Distribution | None = None):
        self._program = program
        self._warned_shapes: set[tuple[str, tuple[int, ...]]] = set()
        self.mode = mode
        self.distribution = distribution
        self._seed = seed
        self._jit = jit
        self._global_options = global_options
        self._debug = debug
        self._meta: dict[Any, tuple] = {}
        self._plans: dict[Any, _InitPlan] = {}
        self.trace_count = 0

    def _context(self, given: dict) -> Context:
        return Context(self.mode, True, self._global_options, False, seed=self._seed,
                       given={tuple(p.split("\x1f")): v for p, v in given.items()})

    def _init(self, spec: tuple, given: dict) -> dict:
        """The whole model run in init mode (eagerly, for ``jit=False``)."""
        self.trace_count += 1
        ctx = self._context(given)
        inputs = {name: jnp.zeros(shape, dtype) for name, shape, dtype in spec}
        self._program.run(ctx, {}, inputs)
        self._meta[(spec, tuple(sorted(given)))] = (
            frozenset(ctx.parameter_paths), frozenset(ctx.state_paths), frozenset(ctx.frozen_paths), frozenset(ctx.used)
        )
        return ctx.params

    def _plan(self, spec: tuple, given: dict) -> _InitPlan:
        """The creation plan for ``spec`` and the given entries (made once per signature)."""
        key = (spec, tuple((k, _signature(v)) for k, v in sorted(given.items())))
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        start = time.perf_counter()
        found: dict[str, Any] = {}

        def run(given: dict) -> dict:
            ctx = self._context(given)
            ctx.plan = []
            ctx.shapes = ShapePass()
            inputs = {name: jnp.zeros(shape, dtype) for name, shape, dtype in spec}
            self._program.run(ctx, {}, inputs)
            found["ctx"] = ctx
            return ctx.params

        self.trace_count += 1
        abstract = jax.eval_shape(run, given)
        ctx = found["ctx"]
        shardings = self.distribution.state_shardings(abstract) if self.distribution is not None else None
        plan = _InitPlan(
            tuple(ctx.plan), jax.tree_util.tree_structure(abstract), tuple(ctx.init_hooks),
            frozenset(ctx.parameter_paths), frozenset(ctx.state_paths), frozenset(ctx.frozen_paths), frozenset(ctx.used),
            shardings,
        )
        self._plans[key] = plan
        if self._debug:
            logger.info("axon: planned init (%d parameters) in %.1f ms", len(plan.params), 1000 * (time.perf_counter() - start))
        return plan

    def _create(self, plan: _InitPlan, given: dict) -> dict:
        """Every parameter of ``plan``, each made by its cached compiled program."""
        start = time.perf_counter()
        base_key = jax.random.PRNGKey(self._seed)
        params: dict = {}
        for entry in plan.params:
            sharding = get_path(plan.shardings, entry.path) if plan.shardings is not None else None
            if entry.initializer is None:
                value = given_value(given["\x1f".join(entry.path)], entry.dtype)
                if sharding is not None:
                    value = jax.device_put(value, sharding)
            else:
                value = creator(entry.initializer, entry.shape, entry.dtype, sharding)(base_key, path_salt(entry.path))
            set_path(params, entry.path, value)
        for node, paths in plan.hooks:
            policy = node.policy
            values = {}
            for path in paths:
                value = get_path(params, path)
                if policy is not None and policy.compute is not None:
                    value = cast(policy, value, "compute")
                values[path[-1]] = value
            run_initialize_hooks(node, self.mode, values)
        params = jax.tree_util.tree_unflatten(plan.treedef, jax.tree_util.tree_leaves(params))
        if self._debug:
            logger.info("axon: created %d parameters in %.1f ms", len(plan.params), 1000 * (time.perf_counter() - start))
        return params

    def declared_templates(self) -> dict[str, jax.ShapeDtypeStruct]:
        """A float32 template for each input from its declared shape (``None`` dimensions
        taken as 1), as Keras builds a model from its declared shapes. Optional inputs that
        declare no shape are left out.

        Returns:
            A dict mapping input names to ``jax.ShapeDtypeStruct`` templates.

        Raises:
            ValueError: a required input declares no shape (name it and pass templates).

        >>> import axon
        >>> init_fn, _ = axon.build(axon.input("x", shape=(None, 3)).pipe(axon.dense, 2))
        >>> init_fn.declared_templates()
        {'x': ShapeDtypeStruct(shape=(1, 3), dtype=float32)}
        """
        templates = {}
        for name, spec in self._program.input_spec.items():
            if spec.shape is None:
                if spec.optional:
                    continue
                raise ValueError(
                    f"{self._where}: input {name!r} declares no shape, so the model cannot be initialized "
                    f"from its declared shapes; pass templates, e.g. {self._where}({{{name!r}: axon.template(shape)}}), "
                    f"or declare it: axon.input({name!r}, shape=...)"
                )
            templates[name] = template(tuple(1 if d is None else int(d) for d in spec.shape))
        return templates

    def __call__(self, template_or_arrays: Any = None, init_state: Any = None) -> ModelState:
        """Initialize the model's parameters and state.

        Args:
            template_or_arrays: input templates or arrays (one for a one-input model, or a dict
                by input name); ``None`` initializes from the inputs' declared shapes
                (:meth:`declared_templates`).
            init_state: a ``ModelState`` or nested dict whose entries are used instead of
                initializing them (merged, as Axon's ``init_fn(template, init_state)``).

        Returns:
            The initialized :class:`axon.ModelState`.

        Raises:
            ValueError: unknown or missing inputs, or (with no templates) an input that
                declares no shape.

        >>> import axon
        >>> init_fn, _ = axon.build(axon.input("x", shape=(None, 3)).pipe(axon.dense, 2))
        >>> init_fn()["dense_0"]["kernel"].shape
        (3, 2)
        """
        if template_or_arrays is None:
            template_or_arrays = self.declared_templates()
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
        if self._jit or self.distribution is not None:
            plan = self._plan(spec, given)
            params = self._create(plan, given)
            parameter_paths, state_paths, frozen_paths, used = plan.parameter_paths, plan.state_paths, plan.frozen_paths, plan.used
        else:
            params = self._init(spec, given)
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

    With ``hoist_state`` (inference mode, jitted), the work that reads only the state (an
    LSTM's gate kernels concatenated, parameter casts under a mixed-precision policy) runs
    once per state instead of on every call (:mod:`axon.compiler.hoisting`).
    """

    _where = "predict_fn"

    def __init__(self, program: Program, *, mode: str, jit: bool, global_options, print_values: bool, debug: bool,
                 distribution: Distribution | None = None, hoist_state: bool = True):
        self._program = program
        self._warned_shapes: set[tuple[str, tuple[int, ...]]] = set()
        self.mode = mode
        self.distribution = distribution
        self._global_options = global_options
        self._print_values = print_values
        self._debug = debug
        self.trace_count = 0
        self._jitted = jax.jit(self._predict) if jit else None
        # shapes a one-input model's array input already passed check_inputs with (the
        # per-call fast path of __call__: same result, without re-checking on every call)
        self._checked_shapes: set[tuple[int, ...]] = set()
        # under a distribution: the state's shardings by (tree structure, leaf shapes)
        self._state_shardings: dict[Any, list] = {}
        # state hoisting (inference, jitted): per signature, the split program or the whole one
        self.hoist_state = bool(hoist_state) and jit and mode == "inference"
        self._hoisted: dict[Any, hoisting.Hoisted | None] = {}  # by signature
        self._by_state = hoisting.StateCache()  # (program, residuals) by state identity and input signature
        self._plain_inputs: set = set()  # input signatures with nothing to hoist: the plain path
        # False once the first program split had nothing worth hoisting: every later call then
        # takes the plain path at once (each line of Python on the per-call path costs several
        # times its warm-loop time between two XLA calls; other signatures of the same model
        # are assumed alike: at worst a missed saving, never a different result)
        self._hoisting = self.hoist_state

    def _predict(self, state: Any, inputs: dict) -> Any:
        self.trace_count += 1
        start = time.perf_counter()
        data = state.data if isinstance(state, ModelState) else state
        ctx = Context(self.mode, False, self._global_options, self._print_values)
        out = self._program.run(ctx, data, inputs)
        if contains_propagating_none(out):
            raise MissingOutputError(
                "the model's output is missing: an optional input it depends on was not given "
                f"(inputs given: {sorted(inputs)}); wrap the input with axon.optional or use axon.or_else"
            )
        if self._debug:
            logger.info("axon: traced predict in %.1f ms", 1000 * (time.perf_counter() - start))
        if self.mode == "train":
            return TrainOutput(out, ctx.state_updates)
        return out

    def __call__(self, state: Any, inputs: Any) -> Any:
        """Run the model: check ``inputs`` on the host, then the jit-compiled forward pass.

        Args:
            state: a :class:`axon.ModelState` or a nested dict of parameters.
            inputs: an array (one-input model) or a dict by input name.

        Returns:
            The model's output; in train mode a :class:`TrainOutput`.

        Raises:
            TypeError: ``state`` is neither a ``ModelState`` nor a dict.
            ValueError: unknown or missing inputs; ``MissingOutputError`` when the output
                depends on an optional input that was not given; ``StateError`` when the
                state lacks a parameter; ``CompileError`` names a layer that failed.

        >>> import axon, jax.numpy as jnp
        >>> init_fn, predict_fn = axon.build(axon.input("x", shape=(None, 2)).pipe(axon.relu))
        >>> predict_fn(init_fn(), jnp.array([[-1.0, 1.0]])).tolist()
        [[0.0, 1.0]]
        """
        if not isinstance(state, (ModelState, Mapping)):
            raise TypeError(f"predict_fn: expected state to be a ModelState or a nested dict, got {type(state).__name__}")
        inputs = self._checked_call_inputs(inputs)
        if self._hoisting:
            out = self._call_hoisted(state, inputs)
            if out is not _PLAIN:
                return out
        if self.distribution is not None:
            inputs = self.distribution.shard_batch(inputs)
            state = self._placed_state(state)
        if self._jitted is not None:
            # the forward pass reads only the state's arrays: passing them without the
            # ModelState wrapper spares jit a Python-level flatten on every call
            return self._jitted(state.data if isinstance(state, ModelState) else state, inputs)
        return self._predict(state, inputs)

    def _call_hoisted(self, state: Any, inputs: dict) -> Any:
        """The forward pass with its state-only part run once per state, or ``_PLAIN`` for the
        plain path (nothing worth hoisting, or a state that is not concrete JAX arrays)."""
        data = state.data if isinstance(state, ModelState) else state
        try:
            if len(inputs) == 1:  # the common case, without a pytree flatten
                ((name, x),) = inputs.items()
                input_leaves = [x]
                inputs_key = (name, x.shape, x.dtype, getattr(x, "weak_type", False))
            else:
                input_leaves, input_tree = jax.tree_util.tree_flatten(inputs)
                inputs_key = (input_tree, *[(x.shape, x.dtype, getattr(x, "weak_type", False)) for x in input_leaves])
        except AttributeError:  # an input that is not an array: the plain path converts it
            return _PLAIN
        if inputs_key in self._plain_inputs:
            return _PLAIN
        leaves, treedef = jax.tree_util.tree_flatten(data)
        key = (tuple(map(id, leaves)), treedef, inputs_key)
        found = self._by_state.get(key)
        if found is None:
            found = self._hoist_state(key, state, inputs, leaves)
            if found is None:
                return _PLAIN
        program, residuals = found
        if self.distribution is not None:
            input_leaves = jax.tree_util.tree_leaves(self.distribution.shard_batch(inputs))
            leaves = self._placed_leaves(state)
        return program(leaves, residuals, input_leaves)

    def _placed_leaves(self, state: Any) -> list:
        placed = self._placed_state(state)
        return jax.tree_util.tree_leaves(placed.data if isinstance(placed, ModelState) else placed)

    def _hoist_state(self, key: tuple, state: Any, inputs: dict, leaves: list) -> tuple | None:
        """A state not seen with these inputs: split the program for the signature (once per
        signature) and compute the state's residuals. ``None`` for the plain path: nothing
        to hoist for these inputs (remembered, so later calls skip all this), a state that
        cannot be recognised again (tracers, NumPy arrays), or residuals that would be
        tracers (a call inside someone's trace)."""
        if not all(map(hoisting.hoistable_leaf, leaves)):
            return None
        _, treedef, inputs_key = key
        signature = (treedef, inputs_key, *[(x.shape, x.dtype, x.weak_type) for x in leaves])
        program = self._hoisted.get(signature, False)
        if program is False:
            program = self._hoisted[signature] = self._split(state, inputs, len(leaves))
        if program is None:
            self._plain_inputs.add(inputs_key)
            if not any(self._hoisted.values()):
                self._hoisting = False
            return None
        placed = leaves if self.distribution is None else self._placed_leaves(state)
        residuals = program.residuals(placed)
        if any(isinstance(r, jax.core.Tracer) for r in residuals):
            return None
        self._by_state.put(key, leaves, (program, residuals))
        return program, residuals

    def _split(self, state: Any, inputs: dict, n_state: int) -> hoisting.Hoisted | None:
        """Trace the forward pass for one signature (the trace ``jit`` reuses) and split it."""
        if self.distribution is not None:  # as the plain path calls it
            state, inputs = self._placed_state(state), self.distribution.shard_batch(inputs)
        traced = self._jitted.trace(state.data if isinstance(state, ModelState) else state, inputs)
        try:
            parts = hoisting.split(traced.jaxpr, n_state)
        except Exception as e:  # an unforeseen program: run it whole
            logger.warning("axon: predict_fn could not split off its state-only work (%s); running it whole", e)
            parts = None
        if self._debug:
            logger.info("axon: hoisted %d of %d equations out of predict",
                        0 if parts is None else len(parts.state_part.eqns), len(traced.jaxpr.eqns))
        return None if parts is None else hoisting.Hoisted(parts, jax.tree_util.tree_structure(traced.out_info))

    def _placed_state(self, state: Any) -> Any:
        """``state`` laid out by the distribution: the shardings are worked out once per
        state structure and leaf shapes (the strategy's ``state_shardings``), not per call."""
        leaves, treedef = jax.tree_util.tree_flatten(state)
        key = (treedef, tuple(tuple(np.shape(leaf)) for leaf in leaves))
        shardings = self._state_shardings.get(key)
        if shardings is None:
            shardings = treedef.flatten_up_to(self.distribution.state_shardings(state))
            if len(self._state_shardings) >= _PLACEMENT_CACHE_SIZE:
                self._state_shardings.pop(next(iter(self._state_shardings)))
            self._state_shardings[key] = shardings
        return jax.tree_util.tree_unflatten(treedef, jax.device_put(leaves, shardings))

    def _checked_call_inputs(self, inputs: Any) -> dict[str, Any]:
        """``check_inputs(inputs)``, skipped for a one-input model's array whose shape
        already passed it (nothing to warn about or reject again)."""
        names = self._program.inputs
        if len(names) == 1 and not isinstance(inputs, Mapping):
            shape = getattr(inputs, "shape", None)
            if type(shape) is tuple:
                if shape not in self._checked_shapes:
                    self.check_inputs(inputs)
                    self._checked_shapes.add(shape)
                (name,) = names
                return {name: inputs}
        return self.check_inputs(inputs)

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

    def lower(self, state: Any, inputs: Any) -> Any:
        """Lower for ahead-of-time compilation (``.compile()`` on the result).

        Args:
            state: a ``ModelState`` or nested dict (arrays or ``jax.ShapeDtypeStruct``).
            inputs: arrays or templates (one, or a dict by input name).

        Returns:
            A ``jax.stages.Lowered``.

        >>> import axon
        >>> init_fn, predict_fn = axon.build(axon.input("x", shape=(None, 2)).pipe(axon.relu))
        >>> compiled = predict_fn.lower(init_fn(), axon.template((4, 2))).compile()
        >>> compiled(init_fn(), {"x": jax.numpy.ones((4, 2))}).shape
        (4, 2)
        """
        inputs = self._program.normalize_inputs(inputs, "predict_fn")
        return jax.jit(self._predict).lower(state, inputs)


def check_build_options(mode: str, seed: Any, global_layer_options: Any) -> None:
    """Check :func:`build`'s options.

    Args:
        mode: ``"inference"`` or ``"train"``.
        seed: an int (or ``None``).
        global_layer_options: a dict.

    Raises:
        ValueError: an unknown mode.
        TypeError: a seed that is not an int, or options that are not a dict.

    >>> check_build_options("eval", 0, {})
    Traceback (most recent call last):
    ...
    ValueError: build: expected mode to be one of ['inference', 'train'], got 'eval'
    """
    if mode not in MODES:
        raise ValueError(f"build: expected mode to be one of {list(MODES)}, got {mode!r}")
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise TypeError(f"build: expected seed to be an int, got {seed!r}")
    if not isinstance(global_layer_options, Mapping):
        raise TypeError(f"build: expected global_layer_options to be a dict, got {global_layer_options!r}")


def build(
    model: Axon,
    *,
    mode: Mode = "inference",
    seed: int = 0,
    jit: bool = True,
    print_values: bool = False,
    global_layer_options: Mapping[str, Any] | None = None,
    debug: bool = False,
    distribution: Distribution | None = None,
    hoist_state: bool = True,
) -> tuple[InitFunction, PredictFunction]:
    """Build ``model`` into ``(init_fn, predict_fn)``.

    ``mode="train"`` runs train-only layers (dropout) and makes ``predict_fn`` return a
    :class:`TrainOutput` with the updated layer state. Parameters are initialized
    deterministically from ``seed`` and each parameter's layer and name, so the same seed
    gives the same parameters however the graph was put together (Axon's default seed is
    the clock; axon's is 0, for reproducibility). ``global_layer_options`` reach the
    layers that declared them in ``axon.layer(global_options=...)``.

    Args:
        model: the graph.
        mode: ``"inference"`` or ``"train"``.
        seed: the seed parameters are initialized from.
        jit: ``False`` runs ``init_fn``/``predict_fn`` eagerly (for debugging).
        print_values: print every layer's output when ``predict_fn`` runs.
        global_layer_options: options passed to the layers that declared them.
        debug: log the time spent analysing the graph and tracing.
        distribution: a strategy from :mod:`axon.distributed` (``DataParallel``, ``FSDP``,
            ``ModelParallel``): ``init_fn`` then creates every parameter already laid out
            on the strategy's mesh (same values as without it, for the same seed), and
            ``predict_fn`` splits its inputs over the data axis and places the state.
        hoist_state: in inference mode, run the work of ``predict_fn`` that reads only the
            state (an LSTM's per-gate kernels concatenated into one matrix, parameter casts
            under a mixed-precision policy, ...) once per state instead of on every call,
            keeping the results while the state's arrays live (a few states at a time; see
            :mod:`axon.compiler.hoisting`). ``False`` runs the whole program on every call.
            Only calls with concrete JAX arrays are split; ``apply``, ``lower`` and calls
            inside the user's own ``jax.jit`` trace the whole program as before.

    Returns:
        ``(init_fn, predict_fn)``: an :class:`InitFunction` and a :class:`PredictFunction`.

    Raises:
        TypeError: ``model`` is not a graph, a bad option type, or a ``distribution`` that is
            not a strategy.
        ValueError: an unknown mode, two inputs with one name that declare different
            shapes, or two layers with one name and parameter.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 3)).pipe(axon.dropout, rate=0.5)
    >>> _, predict_fn = axon.build(model, mode="train")
    >>> init_fn, _ = axon.build(model, mode="train")
    >>> out = predict_fn(init_fn(axon.template((2, 3))), jnp.ones((2, 3)))
    >>> out.prediction.shape, sorted(out.state["dropout_0"])
    ((2, 3), ['key'])
    """
    global_layer_options = dict(global_layer_options or {})
    check_build_options(mode, seed, global_layer_options)
    distribution = check_distribution(distribution, "build")
    start = time.perf_counter()
    program = Program(model)
    if debug:
        logger.info("axon: analysed graph of %d nodes in %.1f ms", len(program.order), 1000 * (time.perf_counter() - start))
    init_fn = InitFunction(program, mode=mode, seed=int(seed), jit=jit, global_options=global_layer_options, debug=debug,
                           distribution=distribution)
    predict_fn = PredictFunction(program, mode=mode, jit=jit, global_options=global_layer_options,
                                 print_values=print_values, debug=debug, distribution=distribution,
                                 hoist_state=hoist_state)
    return init_fn, predict_fn


