"""State hoisting: the part of an inference program that reads only the state, run once per
state instead of on every call.

An inference ``predict_fn`` redoes, on every call, the work that depends only on the
parameters: the LSTM's per-gate kernels concatenated into one matrix, parameter casts under
a mixed-precision policy, transposes. Inference runtimes precompute such work once per set
of weights (onnxruntime's weight prepacking, ``torch.jit.freeze``); axon does it at the
level of the traced program:

1. the forward pass is traced once per signature (state structure, shapes and dtypes,
   inputs) to a jaxpr;
2. :func:`split` walks its equations forward: an equation without effects whose operands
   are all state leaves, literals, constants or outputs of such equations belongs to the
   *state part* (an equation with a nested program, a ``scan`` or a ``custom_vjp_call``, is
   taken whole or not at all). The values the rest of the program reads from the state part
   are its *residuals*. A residual is given back to the rest (its equation recomputed on
   every call, as before) when keeping it would not pay or would cost memory: when it is
   only a view of its operand (a reshape, a same-size broadcast, a same-dtype conversion),
   when it depends on no state leaf (a constant), or when it is bigger than twice the state
   leaves it is computed from (a parameter broadcast to a large shape); and all residuals
   together stay within the size of the state; and a program whose residuals come to less
   than :data:`MIN_BYTES` is left whole (too little work to save);
3. :class:`Hoisted` compiles the state part and the rest separately; ``predict_fn`` computes
   the residuals once per state and keeps them in a :class:`StateCache` while the state's
   arrays live, recognised by the identity of its leaves (JAX arrays are immutable; a state
   with other arrays computes them anew), :data:`STATES_KEPT` states at a time. Only
   concrete JAX arrays identify a state (:func:`hoistable_leaf`): tracers and NumPy arrays
   take the whole program.

Only the public ``jax.extend.core`` jaxpr types and ``jax.core.eval_jaxpr`` are used; if
splitting fails on a program nobody foresaw, ``predict_fn`` logs a warning and runs it whole.

>>> import jax, jax.numpy as jnp
>>> def forward(w, x):
...     return x @ jnp.concatenate([w["a"], w["b"]], axis=1)
>>> w = {"a": jnp.ones((128, 64)), "b": jnp.ones((128, 64))}
>>> closed = jax.make_jaxpr(forward)(w, jnp.ones((1, 128)))
>>> parts = split(closed, n_state=2)
>>> [e.primitive.name for e in parts.state_part.eqns], [e.primitive.name for e in parts.rest.jaxpr.eqns]
(['concatenate'], ['dot_general'])
"""

from __future__ import annotations

import math
import operator
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.extend import core as jcore

__all__ = ["Hoisted", "Split", "StateCache", "hoistable_leaf", "split"]

RESIDUAL_FACTOR = 2
"""A residual may be at most this many times the bytes of the state leaves it is computed from."""

MIN_BYTES = 64 * 1024
"""Below this many bytes of residuals in all, a program is left whole: precomputing so little
saves less than the per-call bookkeeping costs (a batch norm's per-channel scales, say)."""

STATES_KEPT = 4
"""How many (state, input signature) pairs a ``predict_fn`` keeps residuals for (oldest dropped first)."""

# equations whose output is a view of their operand: nothing to gain from precomputing them
_VIEWS = frozenset({"reshape", "squeeze", "expand_dims", "copy", "copy_p"})


class Split(NamedTuple):
    """A program split into a state part and the rest.

    ``state_part`` computes the residuals from the state leaves numbered ``state_leaves``;
    ``rest`` takes the state leaves numbered ``rest_leaves``, then the residuals, then the
    inputs, and gives the program's outputs.
    """

    state_part: Any  # jax.extend.core.Jaxpr (its constvars are the original program's)
    rest: Any  # jax.extend.core.ClosedJaxpr
    consts: tuple
    state_leaves: tuple[int, ...]
    rest_leaves: tuple[int, ...]


def _nbytes(aval: Any) -> int | None:
    dtype = getattr(aval, "dtype", None)
    shape = getattr(aval, "shape", None)
    if shape is None or not isinstance(dtype, np.dtype):
        return None  # a token, a PRNG key array, ...: not a plain array
    return math.prod(shape) * dtype.itemsize


def _is_view(eqn: Any) -> bool:
    name = eqn.primitive.name
    if name in _VIEWS:
        return True
    if name in ("broadcast_in_dim", "convert_element_type") and len(eqn.invars) == 1:
        (x,), (y,) = eqn.invars, eqn.outvars
        return _nbytes(x.aval) == _nbytes(y.aval) and x.aval.dtype == y.aval.dtype
    return False


def split(closed: Any, n_state: int) -> Split | None:
    """Split ``closed`` (a ``jax.extend.core.ClosedJaxpr`` whose first ``n_state`` inputs are
    the state's leaves) into its state part and the rest.

    Args:
        closed: the traced program.
        n_state: how many of its leading inputs are state leaves.

    Returns:
        A :class:`Split`, or ``None`` when there is nothing worth precomputing.

    >>> import jax, jax.numpy as jnp
    >>> closed = jax.make_jaxpr(lambda w, x: x * w)(jnp.ones(3), jnp.ones(3))
    >>> split(closed, n_state=1) is None
    True
    """
    jaxpr = closed.jaxpr
    state_vars = jaxpr.invars[:n_state]
    leaf_bytes = {v: _nbytes(v.aval) or 0 for v in state_vars}
    # forward pass: which equations read only the state, and the state leaves each value comes from
    sources: dict[Any, frozenset] = {v: frozenset([v]) for v in state_vars}
    sources.update((v, frozenset()) for v in jaxpr.constvars)
    hoistable = [False] * len(jaxpr.eqns)
    producer: dict[Any, int] = {}
    for i, eqn in enumerate(jaxpr.eqns):
        if eqn.effects:
            continue
        operands = [v for v in eqn.invars if not isinstance(v, jcore.Literal)]
        if not all(v in sources for v in operands):
            continue
        hoistable[i] = True
        origin = frozenset().union(*(sources[v] for v in operands))
        for v in eqn.outvars:
            if not isinstance(v, jcore.DropVar):
                sources[v] = origin
                producer[v] = i
    total_state = sum(leaf_bytes.values())
    # in_state: the equations whose results the state part hands to the rest. An equation
    # given back to the rest may still be computed in the state part too, for its consumers
    # there (a view, a constant: cheap to compute twice).
    in_state = list(hoistable)

    def residuals() -> list:
        """The state part's values that the rest reads, in a fixed order."""
        found: dict[Any, None] = {}
        for i, eqn in enumerate(jaxpr.eqns):
            if not in_state[i]:
                for v in eqn.invars:
                    if not isinstance(v, jcore.Literal) and v in producer and in_state[producer[v]]:
                        found[v] = None
        for v in jaxpr.outvars:
            if not isinstance(v, jcore.Literal) and v in producer and in_state[producer[v]]:
                found[v] = None
        return list(found)

    def worth_keeping(v: Any) -> bool:
        size = _nbytes(v.aval)
        origin = sources[v]
        return (size is not None and bool(origin) and not _is_view(jaxpr.eqns[producer[v]])
                and size <= RESIDUAL_FACTOR * sum(leaf_bytes[s] for s in origin))

    while True:  # give equations back to the rest until every residual is worth keeping
        kept = residuals()
        dropped = [v for v in kept if not worth_keeping(v)]
        if not dropped and sum(_nbytes(v.aval) for v in kept) > total_state:
            dropped = [max(kept, key=lambda v: _nbytes(v.aval))]
        if not dropped:
            break
        for v in dropped:
            in_state[producer[v]] = False
    if not kept or sum(_nbytes(v.aval) for v in kept) < MIN_BYTES:
        return None
    # the state part: only the equations the kept residuals need
    needed = set(kept)
    state_eqns = []
    for i in reversed(range(len(jaxpr.eqns))):
        eqn = jaxpr.eqns[i]
        if hoistable[i] and any(v in needed for v in eqn.outvars):
            state_eqns.append(eqn)
            needed.update(v for v in eqn.invars if not isinstance(v, jcore.Literal))
    state_eqns.reverse()
    rest_eqns = [eqn for i, eqn in enumerate(jaxpr.eqns) if not in_state[i]]
    read_by_rest = set()
    for eqn in rest_eqns:
        read_by_rest.update(v for v in eqn.invars if not isinstance(v, jcore.Literal))
    read_by_rest.update(v for v in jaxpr.outvars if not isinstance(v, jcore.Literal))
    state_leaves = tuple(i for i, v in enumerate(state_vars) if v in needed)
    rest_leaves = tuple(i for i, v in enumerate(state_vars) if v in read_by_rest)
    state_in = [state_vars[i] for i in state_leaves]
    rest_in = [state_vars[i] for i in rest_leaves] + kept + list(jaxpr.invars[n_state:])
    state_part = jcore.Jaxpr(jaxpr.constvars, state_in, kept, state_eqns, debug_info=_debug_info("state part", state_in, kept))
    rest = jcore.Jaxpr(jaxpr.constvars, rest_in, jaxpr.outvars, rest_eqns, jaxpr.effects,
                       debug_info=_debug_info("rest", rest_in, jaxpr.outvars))
    return Split(state_part, jcore.ClosedJaxpr(rest, closed.consts), tuple(closed.consts), state_leaves, rest_leaves)


def _debug_info(what: str, invars: Sequence[Any], outvars: Sequence[Any]) -> Any:
    return jcore.DebugInfo(f"axon predict_fn ({what})", "axon.compiler.hoisting",
                           tuple(f"in{i}" for i in range(len(invars))), tuple(f"out{i}" for i in range(len(outvars))))


class Hoisted:
    """A program compiled as its state part and the rest.

    ``residuals(leaves)`` runs the state part on the state's leaves; calling it with the
    state's leaves, the residuals and the inputs' leaves runs the rest and returns the
    program's output (a pytree of structure ``out_tree``).

    >>> import jax, jax.numpy as jnp
    >>> w = [jnp.ones((128, 64)), jnp.ones((128, 64))]
    >>> closed = jax.make_jaxpr(lambda a, b, x: {"y": x @ jnp.concatenate([a, b], 1)})(*w, jnp.ones((1, 128)))
    >>> program = Hoisted(split(closed, n_state=2), jax.tree_util.tree_structure({"y": 0}))
    >>> residuals = program.residuals(w)  # once per state
    >>> [r.shape for r in residuals], program(w, residuals, [jnp.ones((1, 128))])["y"].shape
    ([(128, 128)], (1, 128))
    """

    def __init__(self, parts: Split, out_tree: Any):
        self.parts = parts
        rest = parts.rest

        def run_rest(leaves: Sequence[Any], residuals: Sequence[Any], inputs: Sequence[Any]) -> Any:
            out = jax.core.eval_jaxpr(rest.jaxpr, rest.consts, *leaves, *residuals, *inputs)
            return jax.tree_util.tree_unflatten(out_tree, out)

        self._state_part = jax.jit(lambda consts, leaves: jax.core.eval_jaxpr(parts.state_part, consts, *leaves))
        self._rest = jax.jit(run_rest)
        self._state_leaves = _picker(parts.state_leaves)
        self._rest_leaves = _picker(parts.rest_leaves)

    def residuals(self, leaves: Sequence[Any]) -> tuple:
        """The state part's results (the residuals) for the state whose leaves are ``leaves``.

        Args:
            leaves: all the state's leaves, in the traced program's order.

        Returns:
            The residuals, a tuple of arrays.
        """
        return tuple(self._state_part(self.parts.consts, self._state_leaves(leaves)))

    def __call__(self, leaves: Sequence[Any], residuals: tuple, input_leaves: Sequence[Any]) -> Any:
        """Run the rest of the program.

        Args:
            leaves: all the state's leaves (the rest reads those it needs).
            residuals: what :meth:`residuals` gave for this state.
            input_leaves: the inputs' leaves.

        Returns:
            The program's output.
        """
        return self._rest(self._rest_leaves(leaves), residuals, input_leaves)


def _picker(indices: tuple[int, ...]) -> Callable[[Sequence[Any]], tuple]:
    if not indices:
        return lambda leaves: ()
    get = operator.itemgetter(*indices)
    return (lambda leaves: (get(leaves),)) if len(indices) == 1 else get


class StateCache:
    """What was worked out for a few states, recognised by the identity of their leaves.

    ``get(key)`` with ``key = (tuple(map(id, leaves)), *rest)``: an id identifies a leaf
    only while it lives, so every entry holds weak references to its leaves and is dropped
    as soon as one of them is freed; a live entry's ids therefore name the very arrays it
    was made for. At most ``size`` entries are kept (the oldest goes first).

    >>> import jax.numpy as jnp
    >>> cache, leaves = StateCache(2), [jnp.ones(2)]
    >>> key = (tuple(map(id, leaves)), "signature")
    >>> cache.put(key, leaves, "residuals")
    >>> cache.get(key)
    'residuals'
    >>> del leaves
    >>> cache.get(key) is None
    True
    """

    def __init__(self, size: int = STATES_KEPT):
        self.size = size
        self._values: dict[Any, Any] = {}
        self._refs: dict[Any, tuple] = {}
        self.get = self._values.get

    def __len__(self) -> int:
        return len(self._values)

    def put(self, key: Any, leaves: Sequence[Any], value: Any) -> None:
        """Keep ``value`` for the state whose leaves are ``leaves``, dropping the oldest entry
        when full.

        Args:
            key: the lookup key, which must begin with ``tuple(map(id, leaves))``'s information
                (the ids are only meaningful while the leaves live).
            leaves: the arrays whose lifetime bounds the entry's.
            value: what to keep.
        """
        cache_ref = weakref.ref(self)

        def forget(_: Any) -> None:  # a leaf was freed: its id may be reused, drop the entry
            cache = cache_ref()
            if cache is not None:
                cache._values.pop(key, None)
                cache._refs.pop(key, None)

        refs = tuple(weakref.ref(leaf, forget) for leaf in leaves)
        while len(self._values) >= self.size:
            oldest = next(iter(self._values))
            del self._values[oldest], self._refs[oldest]
        self._values[key] = value
        self._refs[key] = refs


def hoistable_leaf(leaf: Any) -> bool:
    """Whether a state leaf may identify a state: a concrete, live JAX array (not a tracer,
    whose value is unknown; not a NumPy array, which can change in place).

    >>> import jax.numpy as jnp, numpy as np
    >>> hoistable_leaf(jnp.ones(2)), hoistable_leaf(np.ones(2))
    (True, False)
    """
    return isinstance(leaf, jax.Array) and not isinstance(leaf, jax.core.Tracer) and not leaf.is_deleted()
