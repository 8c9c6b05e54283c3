"""The compiled part of a loop: the step function together with metric accumulation, one
step per call or ``k`` steps per call with ``lax.scan``, and the cache that keeps it with
the loop so that running the same loop again does not compile again.

>>> import jax.numpy as jnp
>>> program = StepProgram(lambda s, b: s + b, (), track_loss=False, outputs_only=())
>>> step, _ = program.functions(jit=True)
>>> state, metrics = step(jnp.zeros(()), program.metric_init(jnp.zeros(())), jnp.ones(()), jnp.int32(0))
>>> float(state), program.trace_count
(1.0, 1)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np

from axon.loop.metric_spec import MetricSpec

__all__ = ["ProgramCache", "StepProgram", "Unstacked"]


class StepProgram:
    """``step_fn`` and the metrics of a loop as two compiled functions.

    ``batch(step_state, metric_state, batch, i)`` runs one step; ``chunk(step_state,
    metric_state, stacked_batches, start)`` runs one step per leading index of
    ``stacked_batches``. Both return ``(step_state, metric_state)`` and donate their first
    two arguments' buffers. ``trace_count`` counts how often either was traced.

    Args:
        step_fn: ``step_fn(step_state, batch) -> step_state``.
        metrics: the tracked metrics.
        track_loss: whether the step state has a ``"loss"`` whose first non-finite value is
            recorded (a trainer).
        outputs_only: step-state fields that are outputs of a step and not read by the next
            one (a trainer's ``y_true``/``y_pred``): they are not carried into the next
            step, so a new batch shape does not make the previous one part of the next
            compilation.
        constrain: under a distribution, constrains the carried step state to the
            strategy's shardings inside the step, so its layout (and buffer donation) holds
            from one call to the next.
    """

    def __init__(
        self,
        step_fn: Callable[[Any, Any], Any],
        metrics: tuple[MetricSpec, ...],
        *,
        track_loss: bool,
        outputs_only: tuple[str, ...],
        constrain: Callable[[Any], Any] | None = None,
    ) -> None:
        self.step_fn = step_fn
        self.constrain = constrain
        self.metrics = metrics
        self.track_loss = track_loss
        self.outputs_only = outputs_only
        self.trace_count = 0
        self._jitted: tuple[Callable[..., Any], Callable[..., Any]] | None = None
        self._metric_shape_cache: dict[Any, list[tuple[tuple[int, ...], Any]]] = {}

    def functions(self, jit: bool) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """``(batch, chunk)``: compiled with ``jax.jit`` (once per program), or not."""
        if not jit:
            return self._batch_fn, self._chunk_fn
        if self._jitted is None:
            self._jitted = (
                jax.jit(self._batch_fn, donate_argnums=(0, 1)),
                jax.jit(self._chunk_fn, donate_argnums=(0, 1)),
            )
        return self._jitted

    def metric_init(self, step_state: Any) -> dict:
        """Zeroed metric accumulators (and the first-non-finite-loss index, -1)."""
        values = {}
        for spec, (shape, dtype) in zip(self.metrics, self._metric_shapes(step_state), strict=True):
            values[spec.name] = jnp.zeros(shape, dtype)
        out: dict[str, Any] = {"values": values}
        if self.track_loss:
            out["nonfinite"] = jnp.asarray(-1, jnp.int32)
        return out

    def _metric_shapes(self, step_state: Any) -> list[tuple[tuple[int, ...], Any]]:
        """Each metric's accumulator shape and dtype, found by abstract evaluation once per
        step-state structure (tracing it every epoch cost ~2 ms)."""
        leaves, treedef = jax.tree_util.tree_flatten(step_state)
        key = (treedef, tuple(map(_shape_and_dtype, leaves)))
        shapes = self._metric_shape_cache.get(key)
        if shapes is None:
            shapes = []
            for spec in self.metrics:
                out = jax.eval_shape(lambda s, spec=spec: spec.fn(*spec.transform(s)), step_state)
                shapes.append((out.shape, jnp.result_type(out.dtype, jnp.float32)))
            self._metric_shape_cache = {key: shapes}  # one structure at a time: no growth
        return shapes

    def carry(self, step_state: Any) -> Any:
        """The part of the step state the next step reads."""
        if self.outputs_only and isinstance(step_state, dict):
            return {k: v for k, v in step_state.items() if k not in self.outputs_only}
        return step_state

    def _accumulate(self, metric_state: dict, step_state: Any, i: Any) -> dict:
        values = {}
        for spec in self.metrics:
            value = spec.fn(*spec.transform(step_state))
            acc = metric_state["values"][spec.name]
            values[spec.name] = spec.accumulate(acc, jnp.asarray(value, acc.dtype), i).astype(acc.dtype)
        out: dict[str, Any] = {"values": values}
        if self.track_loss:
            bad = ~jnp.isfinite(step_state["loss"])
            prev = metric_state["nonfinite"]
            out["nonfinite"] = jnp.where((prev < 0) & bad, i.astype(jnp.int32), prev)
        return out

    def _one_step(self, step_state: Any, metric_state: dict, batch: Any, i: Any) -> tuple[Any, dict]:
        new = self.step_fn(step_state, batch)
        if self.constrain is not None:
            carried = self.carry(new)
            new = {**new, **self.constrain(carried)} if carried is not new else self.constrain(new)
        return new, self._accumulate(metric_state, new, i)

    def _batch_fn(self, step_state: Any, metric_state: dict, batch: Any, i: Any) -> tuple[Any, dict]:
        self.trace_count += 1
        return self._one_step(step_state, metric_state, batch, i)

    def _chunk_fn(self, step_state: Any, metric_state: dict, batches: Any, start: Any) -> tuple[Any, dict]:
        self.trace_count += 1
        if isinstance(batches, Unstacked):
            batches = batches.stack()
        k = jax.tree_util.tree_leaves(batches)[0].shape[0]

        def body(carry: tuple, xs: tuple) -> tuple:
            batch, i = xs
            new, metrics = self._one_step(*carry, batch, i)
            carried = self.carry(new)
            outputs = {name: v for name, v in new.items() if name not in carried} if carried is not new else None
            return (carried, metrics), outputs

        # XLA:CPU emits convolutions inside a rolled loop as naive loops instead of library
        # calls (jax-ml/jax#12868; a CNN step 15-25x slower), so on CPU a chunk whose step
        # convolves is unrolled: still one dispatch per chunk, at the cost of compiling k
        # copies of the step. Other steps stay rolled, where XLA reuses the step's buffers
        # across iterations (an unrolled MLP chunk ran 0.78x the rolled one, and compiled 5x
        # longer). The step is traced once here and the scan runs that trace.
        unroll = 1
        xs = (batches, start + jnp.arange(k, dtype=jnp.int32))
        if jax.default_backend() == "cpu":
            first = jax.tree_util.tree_map(lambda a: a[0], xs)
            closed, shapes = jax.make_jaxpr(body, return_shape=True)((step_state, metric_state), first)
            if _convolves(closed.jaxpr):
                unroll = k
            body = _as_function(closed, jax.tree_util.tree_structure(shapes))
        (s, m), outputs = jax.lax.scan(body, (step_state, metric_state), xs, unroll=unroll)
        if outputs:
            s = {**s, **jax.tree_util.tree_map(lambda a: a[-1], outputs)}
        return s, m


@jax.tree_util.register_pytree_node_class
class Unstacked:
    """A chunk's batches as they are, to be stacked inside the compiled chunk.

    On the CPU backend the chunk takes its ``k`` batches this way rather than stacked on
    the host: ``np.stack`` followed by the copy of the stacked array into the call cost
    0.3-1 ms per chunk of ten 128x784 float32 batches (a fresh multi-megabyte buffer each
    time), the same stack inside the program about 0.15 ms.

    >>> import numpy as np
    >>> Unstacked([(np.zeros(2), 1), (np.ones(2), 2)]).stack()[0].shape
    (2, 2)
    """

    def __init__(self, batches: list[Any]) -> None:
        self.batches = list(batches)

    def stack(self) -> Any:
        """The batches stacked along a new leading axis, leaf by leaf."""
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *self.batches)

    def tree_flatten(self) -> tuple[tuple[Any, ...], None]:
        return tuple(self.batches), None

    @classmethod
    def tree_unflatten(cls, _: None, children: tuple[Any, ...]) -> Unstacked:
        return cls(list(children))


def _shape_and_dtype(x: Any) -> tuple[tuple[int, ...], Any]:
    """A leaf's shape and dtype: read from an array's attributes (``jnp.result_type`` on
    every leaf of a ResNet's step state cost ~3 ms), else from NumPy (a Python scalar)."""
    try:
        return x.shape, x.dtype
    except AttributeError:
        return np.shape(x), np.result_type(x)


def _convolves(jaxpr: Any) -> bool:
    """Whether ``jaxpr`` (or a jaxpr nested in it: a scan, cond, pjit, custom-vjp body) has a convolution."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated":
            return True
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns") and _convolves(inner):
                    return True
    return False


def _as_function(closed: Any, out_tree: Any) -> Callable[..., Any]:
    """``closed`` (a traced ``body(carry, xs)``) as a function of the same pytrees again."""
    run = jax.extend.core.jaxpr_as_fun(closed)

    def body(carry: Any, xs: Any) -> Any:
        return jax.tree_util.tree_unflatten(out_tree, run(*jax.tree_util.tree_leaves((carry, xs))))

    return body


class ProgramCache:
    """Holds a loop's :class:`StepProgram` once made. A loop is immutable, so its program
    never changes; each loop made by a builder method starts with an empty cache.

    >>> cache = ProgramCache()
    >>> made = cache.get(lambda: "program"); made, cache.get(lambda: "other")
    ('program', 'program')
    """

    def __init__(self) -> None:
        self.program: Any = None

    def get(self, make: Callable[[], Any]) -> Any:
        """The cached program, made with ``make()`` the first time."""
        if self.program is None:
            self.program = make()
        return self.program

    def __repr__(self) -> str:
        return f"ProgramCache({'empty' if self.program is None else 'compiled'})"
