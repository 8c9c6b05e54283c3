"""The special graph constructors: ``input``, ``constant``, ``container``, ``layer``,
``param``, ``fn`` (Axon's ``nx``), ``optional``, ``or_else``, ``namespace`` and ``block``.

Every built-in layer is made with :func:`layer` and :func:`param`, exactly as a user makes
a custom layer:

>>> import axon, jax.numpy as jnp
>>> def scale(x, w):
...     return x * w
>>> x = axon.input("x", shape=(None, 3))
>>> w = axon.param("w", lambda s: (s[-1],), initializer="ones")
>>> model = axon.layer(scale, [x, w], op_name="scale")
>>> init_fn, predict_fn = axon.build(model)
>>> state = init_fn(axon.template((1, 3)))
>>> predict_fn(state, jnp.full((1, 3), 2.0)).tolist()
[[2.0, 2.0, 2.0]]
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import jax.numpy as jnp
import numpy as np

from axon import initializers as _initializers
from axon._dtypes import canonical_dtype
from axon.graph import Axon, Node, Parameter, creation_site, merge_nodes, next_id
from axon.registry import register
from axon.typing_aliases import Initializer, LayerMode, LayerName

__all__ = [
    "REMAT_POLICIES",
    "RematPolicy",
    "block",
    "constant",
    "container",
    "fn",
    "input",
    "layer",
    "namespace",
    "optional",
    "or_else",
    "param",
    "remat",
]

RematPolicy = Literal[
    "nothing_saveable", "dots_saveable", "dots_with_no_batch_dims_saveable", "everything_saveable"
]
REMAT_POLICIES: tuple[str, ...] = (
    "nothing_saveable", "dots_saveable", "dots_with_no_batch_dims_saveable", "everything_saveable"
)
"""The rematerialization policies a block accepts, by their permanent names (those of
``jax.checkpoint_policies``): what the forward pass keeps for the backward pass;
everything else is recomputed. ``nothing_saveable`` (what ``remat=True`` means) keeps
only the block's inputs; ``dots_saveable`` also keeps matrix-product results."""

_MODES = ("both", "train", "inference")
_KINDS = ("parameter", "state")
_RESERVED = ("name", "op_name", "mode", "global_options", "meta")


def check_name(name: Any, where: str) -> Any:
    """Validate a layer name: ``None``, a string (``"{n}"`` is replaced by the count) or a
    function ``(op_name, op_counts) -> str``."""
    if name is None or isinstance(name, str) or callable(name):
        return name
    raise TypeError(f"{where}: expected name to be None, a string or a function (op_name, op_counts) -> str, got {name!r}")


def check_graph(x: Any, where: str, what: str = "input") -> Axon:
    if not isinstance(x, Axon):
        raise TypeError(f"{where}: expected {what} to be an axon graph (axon.Axon), got {type(x).__name__}: {x!r}")
    return x


def _new(node_kwargs: dict, parents: Sequence[Axon]) -> Axon:
    nodes = merge_nodes(*parents)
    node = Node(id=next_id(), created_at=creation_site(), **node_kwargs)
    nodes[node.id] = node
    return Axon(nodes, node.id)


def input(
    name: str,
    shape: tuple[int | None, ...] | None = None,
    *,
    optional: bool = False,
    meta: Mapping[str, Any] | None = None,
) -> Axon:
    """A model input, identified by ``name``; ``None`` in ``shape`` marks a dynamic size.

    An ``optional`` input may be left out when the model runs: it then takes the value
    ``axon.NONE`` and every layer that depends on it (unless through ``axon.optional``)
    yields nothing.

    Args:
        name: The input's name: the key of its value when the model runs.
        shape: The shape, ``None`` for a dynamic size (usually the batch); ``None`` for
            an unknown shape. Used by ``init``/``get_output_shape`` and checked at run time.
        optional: Whether the input may be left out (see above). Default ``False``.
        meta: Free-form metadata kept on the node.

    Returns:
        The input graph.

    Raises:
        TypeError: ``name`` is not a non-empty string.
        ValueError: ``shape`` is not a tuple of non-negative ints and ``None``.

    >>> import axon
    >>> axon.input("pixels", shape=(None, 28, 28, 1))
    <Axon inputs={'pixels': (None, 28, 28, 1)} output='pixels' nodes=1>
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"input: expected name to be a non-empty string, got {name!r}")
    if shape is not None:
        if not isinstance(shape, (tuple, list)) or not all(d is None or (isinstance(d, int) and d >= 0) for d in shape):
            raise ValueError(f"input {name!r}: expected shape to be a tuple of ints and None, got {shape!r}")
        shape = tuple(shape)
    return _new(
        dict(name=name, op="input", op_name="input", opts={"shape": shape, "optional": bool(optional)}, meta=dict(meta or {})),
        [],
    )


def constant(value: Any, *, name: LayerName = None, meta: Mapping[str, Any] | None = None) -> Axon:
    """A constant array in the graph (cast by the layer's output policy).

    Args:
        value: An array or a number (a Python float becomes float32).
        name: The layer name (``None``: ``"constant_<count>"``; a string, in which ``"{n}"``
            is the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The constant's graph.

    Raises:
        TypeError: ``value`` is not numeric.

    >>> import axon, numpy as np
    >>> c = axon.constant(np.arange(3.0))
    >>> axon.predict(c, {}, {}).tolist()
    [0.0, 1.0, 2.0]
    """
    try:
        arr = np.asarray(value)
    except Exception as e:  # pragma: no cover - numpy raises many kinds
        raise TypeError(f"constant: expected an array or a number, got {value!r}") from e
    if arr.dtype.kind not in "biufc" and not jnp.issubdtype(arr.dtype, jnp.floating):  # bfloat16 has kind "V"
        raise TypeError(f"constant: expected a numeric array or number, got {value!r} (dtype {arr.dtype})")
    if arr.dtype == np.float64 and not isinstance(value, np.ndarray):
        arr = arr.astype(np.float32)
    return _new(
        dict(name=check_name(name, "constant"), op="constant", op_name="constant", opts={"value": arr}, meta=dict(meta or {})),
        [],
    )


def _structure(value: Any, parents: list[Axon]) -> Any:
    if isinstance(value, Axon):
        parents.append(value)
        return len(parents) - 1
    if isinstance(value, Mapping):
        return {k: _structure(v, parents) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_structure(v, parents) for v in value)
    if isinstance(value, list):
        return [_structure(v, parents) for v in value]
    raise TypeError(f"container: expected nested dicts, tuples and lists of axon graphs, found {type(value).__name__}: {value!r}")


def container(structure: Any, *, name: LayerName = None, meta: Mapping[str, Any] | None = None) -> Axon:
    """Join graphs in nested dicts, tuples and lists into one node (multi-output models).

    Args:
        structure: Nested dicts, tuples and lists whose leaves are graphs.
        name: The layer name (``None``: ``"container_<count>"``; a string, in which ``"{n}"``
            is the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        A graph whose value has the structure of ``structure`` with each graph's value.

    Raises:
        TypeError: A leaf is not a graph.

    >>> import axon, jax.numpy as jnp
    >>> a, b = axon.input("input_0", shape=(None, 1)), axon.input("input_1", shape=(None, 2))
    >>> out = axon.predict(axon.container({"a": a, "b": b}), {}, {"input_0": jnp.ones((1, 1)), "input_1": jnp.ones((1, 2))})
    >>> out["a"].shape, out["b"].shape
    ((1, 1), (1, 2))
    """
    parents: list[Axon] = []
    struct = _structure(structure, parents)
    return _new(
        dict(
            name=check_name(name, "container"),
            op="container",
            op_name="container",
            parents=tuple(p.output for p in parents),
            opts={"structure": struct},
            meta=dict(meta or {}),
        ),
        parents,
    )


def param(
    name: str,
    shape: tuple[int, ...] | Callable[..., tuple[int, ...]] | Mapping[str, Any],
    *,
    initializer: Initializer = "glorot_uniform",
    dtype: Any = "float32",
    kind: Literal["parameter", "state"] = "parameter",
) -> Parameter:
    """Declare a trainable parameter (``kind="parameter"``) or layer state (``kind="state"``)
    for :func:`layer`.

    ``shape`` is a tuple, or a function receiving the shapes of the layer's inputs and
    returning a tuple, or a dict ``{child: shape or Parameter}`` for a group whose value
    reaches the layer as a dict. ``initializer`` is a name from ``axon.initializers`` or a
    function ``init(key, shape, dtype)``.

    Args:
        name: The parameter's name in the layer's state (unique within the layer).
        shape: A tuple, a function of the layer's input shapes returning one, or a dict of
            child shapes or parameters (a parameter group).
        initializer: A name from ``axon.initializers`` or ``init(key, shape, dtype)``.
            Default ``"glorot_uniform"``.
        dtype: The parameter's dtype (before any mixed-precision policy). Default float32.
        kind: ``"parameter"`` (trained) or ``"state"`` (updated by the layer in train
            mode, e.g. running statistics). Default ``"parameter"``.

    Returns:
        An ``axon.Parameter`` to list in :func:`layer`'s inputs.

    Raises:
        TypeError: ``name`` is not a non-empty string.
        ValueError: ``kind`` or ``shape`` is invalid, or ``initializer`` is unknown.

    >>> import axon
    >>> axon.param("kernel", lambda s: (s[-1], 8)).kind
    'parameter'
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"param: expected name to be a non-empty string, got {name!r}")
    if kind not in _KINDS:
        raise ValueError(f"param {name!r}: expected kind to be one of {list(_KINDS)}, got {kind!r}")
    init = _initializers.get(initializer)
    dt = canonical_dtype(dtype)
    if isinstance(shape, Mapping):
        children = {}
        for child, spec in shape.items():
            if isinstance(spec, Parameter):
                children[child] = spec if spec.name == child else Parameter(**{**spec.__dict__, "name": child})
            else:
                children[child] = param(child, spec, initializer=initializer, dtype=dtype, kind=kind)
        return Parameter(name=name, shape=None, initializer=None, dtype=dt, kind=kind, children=children)
    if not callable(shape):
        if not isinstance(shape, (tuple, list)) or not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
            raise ValueError(f"param {name!r}: expected shape to be a tuple of non-negative ints or a function of the input shapes, got {shape!r}")
        shape = tuple(int(d) for d in shape)
    return Parameter(name=name, shape=shape, initializer=init, dtype=dt, kind=kind)


def _accepted_keywords(op: Callable[..., Any], n_positional: int = 0) -> tuple[set[str], bool]:
    """Keyword options ``op`` accepts once its first ``n_positional`` arguments are bound."""
    try:
        sig = inspect.signature(op)
    except (TypeError, ValueError):
        return set(), True
    names, var_kw, skipped = set(), False, 0
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            var_kw = True
        elif p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and skipped < n_positional:
            skipped += 1
        elif p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            names.add(p.name)
        elif p.kind is inspect.Parameter.POSITIONAL_ONLY:
            skipped += 1
    return names, var_kw


def layer(
    op: Callable[..., Any],
    inputs: Sequence[Axon | Parameter] | Axon,
    *,
    name: LayerName = None,
    op_name: str = "custom",
    mode: LayerMode = "both",
    global_options: Sequence[str] = (),
    meta: Mapping[str, Any] | None = None,
    **opts: Any,
) -> Axon:
    """A layer applying ``op`` to graph inputs and parameters, in the order given.

    At run time ``op`` is called with arrays in the order of ``inputs`` and with ``opts``
    as keyword arguments; it also receives ``mode="inference"|"train"`` when its signature
    accepts a ``mode`` keyword, and the build-time global options it declares in
    ``global_options``. It may return an array, a container of arrays, or an
    ``axon.StatefulOutput`` to update its ``kind="state"`` parameters in train mode.
    ``mode="train"`` (or ``"inference"``) makes the layer exist only in that mode; in the
    other it passes its first input through.

    Args:
        op: The function computing the layer (pure JAX).
        inputs: Graphs and ``axon.param`` parameters, in the order ``op`` takes them (a
            single graph may be given alone).
        name: The layer name (``None``: ``"<op_name>_<count>"``; a string, in which ``"{n}"``
            is the count; or a function ``(op_name, op_counts) -> str``).
        op_name: The op's name in layer names, displays and errors. Default ``"custom"``.
        mode: ``"both"`` (default), or ``"train"``/``"inference"`` to make the layer exist
            only in that mode.
        global_options: Names of build-time global options ``op`` receives.
        meta: Free-form metadata kept on the node.
        **opts: Keyword options passed to ``op`` on every call.

    Returns:
        The layer's graph.

    Raises:
        TypeError: ``op`` is not callable, an input is neither a graph nor a parameter, or
            an option is not one ``op`` accepts.
        ValueError: ``mode`` is unknown or parameter names repeat.

    >>> import axon, jax.numpy as jnp
    >>> x = axon.input("x")
    >>> y = axon.layer(lambda x, *, power: x ** power, [x], power=3, op_name="cube")
    >>> axon.predict(y, {}, jnp.array([2.0])).tolist()
    [8.0]
    """
    if not callable(op):
        raise TypeError(f"layer: expected op to be a function, got {op!r}")
    if isinstance(inputs, (Axon, Parameter)):
        inputs = [inputs]
    if mode not in _MODES:
        raise ValueError(f"layer: expected mode to be one of {list(_MODES)}, got {mode!r}")
    if not isinstance(op_name, str) or not op_name:
        raise TypeError(f"layer: expected op_name to be a non-empty string, got {op_name!r}")
    graphs, params, args = [], [], []
    for i, inp in enumerate(inputs):
        if isinstance(inp, Axon):
            graphs.append(inp)
            args.append("layer")
        elif isinstance(inp, Parameter):
            params.append(inp)
            args.append("parameter")
        else:
            raise TypeError(f"layer {op_name}: input {i} must be an axon graph or an axon.param, got {type(inp).__name__}: {inp!r}")
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise ValueError(f"layer {op_name}: parameter names must be unique, got {names}")
    accepted, var_kw = _accepted_keywords(op, len(args))
    unknown = [k for k in opts if k not in accepted] if not var_kw else []
    if unknown:
        raise TypeError(
            f"layer {op_name}: unknown option(s) {unknown} for {getattr(op, '__name__', op)!r}; "
            f"it accepts {sorted(accepted - {'mode'}) or 'no keyword options'}"
        )
    return _new(
        dict(
            name=check_name(name, op_name),
            op=op,
            op_name=op_name,
            parents=tuple(g.output for g in graphs),
            parameters=tuple(params),
            args=tuple(args),
            opts=dict(opts),
            mode=mode,
            global_options=tuple(global_options),
            meta=dict(meta or {}),
        ),
        graphs,
    )


def fn(x: Axon, f: Callable[[Any], Any], *, name: LayerName = None, op_name: str = "nx") -> Axon:
    """Apply a parameter-free JAX function to a graph's value (Axon's ``Axon.nx``).
    To save a model with such a layer, register ``f`` with ``axon.register_layer``.

    Args:
        x: The input graph.
        f: A function of one array (or container) value, traced by JAX.
        name: The layer name (``None``: ``"nx_<count>"``; a string, in which ``"{n}"``
            is the count; or a function ``(op_name, op_counts) -> str``).
        op_name: The op's name. Default ``"nx"``.

    Returns:
        The graph of ``f(x)``.

    Raises:
        TypeError: ``x`` is not a graph or ``f`` is not callable.

    >>> import axon, jax.numpy as jnp
    >>> y = axon.fn(axon.input("x"), lambda v: jnp.maximum(v, 0))
    >>> axon.predict(y, {}, jnp.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    check_graph(x, "fn")
    if not callable(f):
        raise TypeError(f"fn: expected f to be a function, got {f!r}")
    return layer(apply_fn, [x], fn=f, name=name, op_name=op_name)


@register("op", "axon.fn")
def apply_fn(value: Any, *, fn: Callable[[Any], Any]) -> Any:
    """The op of :func:`fn` layers: ``fn(value)`` (``fn`` is kept in the layer's options,
    so a model using it can be saved once ``fn`` is registered with ``axon.register_layer``).

    >>> import jax.numpy as jnp
    >>> apply_fn(jnp.array([1.0, -1.0]), fn=jnp.abs).tolist()
    [1.0, 1.0]
    """
    return fn(value)


def optional(x: Axon, *, name: LayerName = None, meta: Mapping[str, Any] | None = None) -> Axon:
    """Let a layer receive ``axon.NONE`` when ``x`` is missing instead of being skipped.

    Args:
        x: A graph that may be missing (it depends on an optional input).
        name: The layer name (``None``: ``"optional_<count>"``; a string, in which ``"{n}"``
            is the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of ``x``'s value, or ``axon.NONE`` when it is missing.

    >>> import axon, jax.numpy as jnp
    >>> mask = axon.input("mask", optional=True)
    >>> y = axon.layer(lambda m: jnp.zeros(1) if axon.is_none(m) else m, [axon.optional(mask)])
    >>> axon.predict(y, {}, {}).tolist()
    [0.0]
    """
    check_graph(x, "optional")
    return _new(
        dict(name=check_name(name, "optional"), op="optional", op_name="optional", parents=(x.output,), meta=dict(meta or {})),
        [x],
    )


def or_else(a: Axon, b: Axon, *, name: LayerName = None, meta: Mapping[str, Any] | None = None) -> Axon:
    """``a`` unless it is missing (``axon.NONE``), else ``b``.

    Args:
        a: The preferred graph (it may depend on an optional input).
        b: The fallback graph.
        name: The layer name (``None``: ``"or_else_<count>"``; a string, in which ``"{n}"``
            is the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of ``a``'s value, or of ``b``'s when ``a`` is missing.

    >>> import axon, jax.numpy as jnp
    >>> y = axon.or_else(axon.input("a", optional=True), axon.constant(jnp.zeros(2)))
    >>> axon.predict(y, {}, {}).tolist()
    [0.0, 0.0]
    """
    check_graph(a, "or_else", "a")
    check_graph(b, "or_else", "b")
    return _new(
        dict(name=check_name(name, "or_else"), op="or_else", op_name="or_else", parents=(a.output, b.output), meta=dict(meta or {})),
        [a, b],
    )


def namespace(x: Axon, name: str) -> Axon:
    """Scope every layer behind ``x`` under ``name``: their names are counted afresh and
    their parameters nest under ``state[name]``, so a sub-model keeps the same parameter
    layout in any model it is part of.

    Args:
        x: The sub-model's output graph.
        name: The namespace: the key of the sub-model's parameters in the state.

    Returns:
        The graph of ``x``'s value, scoped.

    Raises:
        TypeError: ``name`` is not a non-empty string.

    >>> import axon
    >>> base = axon.input("x", shape=(None, 2)).pipe(axon.dense, 3).pipe(axon.namespace, "encoder")
    >>> state = axon.build(base.pipe(axon.dense, 1))[0](axon.template((1, 2)))
    >>> sorted(state.keys()), sorted(state["encoder"].keys())
    (['dense_0', 'encoder'], ['dense_0'])
    """
    check_graph(x, "namespace")
    if not isinstance(name, str) or not name:
        raise TypeError(f"namespace: expected name to be a non-empty string, got {name!r}")
    return _new(dict(name=name, op="namespace", op_name="namespace", parents=(x.output,)), [x])


def check_remat(remat: Any, where: str) -> str | None:
    """``remat`` as a policy name (``True``: ``"nothing_saveable"``) or ``None`` (off).

    Args:
        remat: ``False``/``None``, ``True`` or a name in :data:`REMAT_POLICIES`.
        where: the caller's name for the message.

    Returns:
        The policy name, or ``None``.

    Raises:
        ValueError: an unknown policy.

    >>> check_remat(True, "block"), check_remat(False, "block")
    ('nothing_saveable', None)
    """
    if remat is None or remat is False:
        return None
    if remat is True:
        return "nothing_saveable"
    if isinstance(remat, str) and remat in REMAT_POLICIES:
        return remat
    raise ValueError(f"{where}: expected remat to be True, False or one of {list(REMAT_POLICIES)}, got {remat!r}")


class Block:
    """A reusable sub-graph with shared parameters, returned by :func:`block`.
    ``remat`` is the rematerialization policy name, or ``None``."""

    def __init__(self, f: Callable[..., Any], name: LayerName, remat: Any = None):
        self.id = next_id()
        self.fn = f
        self.name = check_name(name, "block")
        self.remat = check_remat(remat, "block")
        self.graph: Axon | None = None
        self.input_names: tuple[str, ...] = ()

    def __call__(self, *xs: Axon) -> Axon:
        if len(xs) == 1 and isinstance(xs[0], (list, tuple)):
            xs = tuple(xs[0])
        for x in xs:
            check_graph(x, "block")
        if self.graph is None:
            self.input_names = tuple(f"__block_{self.id}_{i}" for i in range(len(xs)))
            out = self.fn(*[input(n) for n in self.input_names])
            self.graph = out if isinstance(out, Axon) else container(out)
        elif len(xs) != len(self.input_names):
            raise TypeError(f"block: expected {len(self.input_names)} inputs (as in its first call), got {len(xs)}")
        return _new(
            dict(name=self.name, op="block", op_name="block", parents=tuple(x.output for x in xs), opts={"block": self}),
            list(xs),
        )

    def __repr__(self) -> str:
        return f"<axon.block {getattr(self.fn, '__name__', 'fn')}>"


def block(f: Callable[..., Any], *, name: LayerName = None, remat: bool | RematPolicy = False) -> Block:
    """Turn a graph function into a block: every call applies the same layers with the
    same (shared) parameters, nested under the block's name.

    With ``remat`` the block's activations are rematerialized: in a gradient computation
    the forward pass keeps only the block's inputs (or what the policy names) and the
    backward pass recomputes the rest (``jax.checkpoint``), trading compute for memory.
    Values and gradients are unchanged.

    Args:
        f: A function from one or more graphs to a graph (or a container of graphs).
        name: The block's name (``None``: ``"block_<count>"``): the key of its parameters.
        remat: ``True`` (keep nothing but the inputs), a policy name from
            :data:`REMAT_POLICIES`, or ``False`` (default).

    Returns:
        An ``axon.Block``; call it on graphs like ``f``.

    Raises:
        TypeError: ``f`` is not callable.
        ValueError: an unknown ``remat`` policy.

    >>> import axon
    >>> shared = axon.block(lambda x: axon.dense(x, 4))
    >>> x = axon.input("x", shape=(None, 4))
    >>> model = axon.add(shared(x), shared(axon.relu(x)))
    >>> state = axon.build(model)[0](axon.template((1, 4)))
    >>> list(state.keys()), list(state["block_0"].keys())
    (['block_0'], ['dense_0'])
    """
    if not callable(f):
        raise TypeError(f"block: expected a function from graphs to a graph, got {f!r}")
    return Block(f, name, remat)


def remat(f: Callable[..., Any], *, name: LayerName = None, policy: RematPolicy = "nothing_saveable") -> Block:
    """A block whose activations are rematerialized in the backward pass:
    ``block(f, name=name, remat=policy)``.

    Args:
        f: A function from one or more graphs to a graph (or a container of graphs).
        name: The block's name (``None``: ``"block_<count>"``).
        policy: what the forward pass keeps, from :data:`REMAT_POLICIES`.

    Returns:
        An ``axon.Block`` with ``remat`` set.

    Raises:
        TypeError: ``f`` is not callable.
        ValueError: an unknown policy.

    >>> import axon
    >>> mlp = axon.remat(lambda x: axon.dense(axon.relu(axon.dense(x, 8)), 4))
    >>> model = mlp(axon.input("x", shape=(None, 4)))
    >>> mlp.remat, sorted(axon.build(model)[0]()["block_0"])
    ('nothing_saveable', ['dense_0', 'dense_1'])
    """
    if policy is True or policy is False or policy is None:
        raise ValueError(f"remat: expected policy to be one of {list(REMAT_POLICIES)}, got {policy!r}")
    return block(f, name=name, remat=policy)
