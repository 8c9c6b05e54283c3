"""Step functions: ``train_step`` and ``eval_step`` return ``(init_fn, step_fn)`` pairs.

``step_fn(step_state, (inputs, targets)) -> step_state`` is a pure function that the loop
compiles together with metric accumulation into one XLA program per step (or per chunk
of steps with ``steps_per_execution``).

>>> import axon, jax.numpy as jnp
>>> model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1)
>>> init_fn, step_fn = train_step(model, "mean_squared_error", "sgd")
>>> state = init_fn((jnp.ones((4, 2)), jnp.zeros((4, 1))), None)
>>> new = step_fn(state, (jnp.ones((4, 2)), jnp.zeros((4, 1))))
>>> sorted(new)
['i', 'loss', 'loss_scale_state', 'model_state', 'optimizer_state', 'y_pred', 'y_true']
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from axon import loss_scale as _ls
from axon import losses as _losses
from axon import optimizers as _optimizers
from axon.compiler import PredictFunction, build
from axon.graph import Axon
from axon.loop.data import check_batch
from axon.loop.gradient_norms import GRADIENT_NORMS_KEY, gradient_norms
from axon.loss_scale import all_finite
from axon.model_state import ModelState

__all__ = ["eval_step", "resolve_loss", "resolve_model", "train_step"]


def _optax_function(loss: Any) -> Callable[..., Any] | None:
    """``loss`` (or the function a ``functools.partial`` wraps) if it comes from optax."""
    fn = loss.func if isinstance(loss, functools.partial) else loss
    module = getattr(fn, "__module__", None) or ""
    return fn if module == "optax" or module.startswith("optax.") else None


def _wrap_optax_loss(loss: Callable[..., Any]) -> Callable[[Any, Any], jax.Array]:
    """optax's losses take ``(predictions, targets)`` and return per-example values: call
    them in that order and take the mean."""
    fn = _optax_function(loss)
    try:
        params = list(inspect.signature(loss).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover - optax's losses have signatures
        params = []
    required = [p for p in params if p.default is inspect.Parameter.empty
                and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if len(required) > 2:
        raise ValueError(
            f"trainer: the optax loss {fn.__name__} needs {len(required)} arguments "
            f"({', '.join(p.name for p in required)}); pass a function loss(y_true, y_pred) that calls it"
        )

    def optax_loss(y_true: Any, y_pred: Any) -> jax.Array:
        return jnp.mean(loss(y_pred, y_true))

    optax_loss.__name__ = f"optax_{fn.__name__}"
    return optax_loss


def resolve_loss(loss: Any) -> Callable[[Any, Any], jax.Array]:
    """A scalar loss ``fn(y_true, y_pred)`` from a name (mean reduction), a function, or a
    list of ``(loss, weight)`` pairs for a multi-output model (the i-th loss applies to the
    i-th output and target; the weighted sum is returned).

    A function is called ``loss(y_true, y_pred)``, Axon's order. optax's own losses
    (``optax.losses.softmax_cross_entropy``, ``optax.l2_loss``, ...; recognised by their
    module, also inside ``functools.partial``) take ``(predictions, targets)`` and return
    per-example values: they are called in their order, and the mean is taken.

    Args:
        loss: a name from :mod:`axon.losses`, a function, an optax loss, or a list of
            ``(loss, weight)`` pairs.

    Returns:
        ``fn(y_true, y_pred) -> scalar``.

    Raises:
        ValueError: a malformed list, or an optax loss that needs more than two arguments.
        TypeError: anything else.

    >>> import jax.numpy as jnp, optax
    >>> float(resolve_loss("mean_squared_error")(jnp.zeros((2, 1)), jnp.ones((2, 1))))
    1.0
    >>> float(resolve_loss(optax.l2_loss)(jnp.zeros((2, 1)), jnp.ones((2, 1))))  # 0.5 * (1 - 0)**2
    0.5
    """
    if isinstance(loss, str):
        fn = _losses.get(loss)
        return lambda y_true, y_pred: fn(y_true, y_pred, reduction="mean")
    if isinstance(loss, (list, tuple)):
        pairs = []
        for item in loss:
            if not (isinstance(item, (list, tuple)) and len(item) == 2):
                raise ValueError(f"trainer: a list of losses must hold (loss, weight) pairs, got {item!r}")
            pairs.append((resolve_loss(item[0]), float(item[1])))

        def weighted(y_true: Sequence[Any], y_pred: Sequence[Any]) -> jax.Array:
            if not isinstance(y_pred, (list, tuple)) or len(y_pred) != len(pairs):
                raise ValueError(
                    f"trainer: {len(pairs)} (loss, weight) pairs need a model with {len(pairs)} outputs in a tuple, "
                    f"got {type(y_pred).__name__}"
                )
            return sum(w * fn(t, p) for (fn, w), t, p in zip(pairs, y_true, y_pred))

        return weighted
    if callable(loss):
        return _wrap_optax_loss(loss) if _optax_function(loss) is not None else loss
    raise TypeError(f"trainer: expected loss to be a name, a function or a list of (loss, weight), got {loss!r}")


def resolve_optimizer(optimizer: Any) -> optax.GradientTransformation:
    """An optax transformation from a name (Axon's defaults) or the transformation itself."""
    return _optimizers.get(optimizer)


def resolve_model(
    model: Any, mode: str, seed: int | None, distribution: Any = None
) -> tuple[Callable[..., ModelState], PredictFunction]:
    """``(init_fn, predict_fn)`` from a graph (built in ``mode``, under ``distribution``) or
    such a pair."""
    if isinstance(model, Axon):
        return build(model, mode=mode, seed=0 if seed is None else seed, distribution=distribution)
    if isinstance(model, tuple) and len(model) == 2 and all(callable(f) for f in model):
        return model
    raise TypeError(f"expected model to be an axon graph or a pair (init_fn, predict_fn), got {type(model).__name__}")


def _forward(predict_fn: Any) -> Callable[[Any, Any], Any]:
    """The traced forward without the host-side input checks (they ran in the loop)."""
    if isinstance(predict_fn, PredictFunction):
        return predict_fn.apply
    return predict_fn


def _init_model_state(init_fn: Callable[..., Any], inputs: Any, init_state: Any) -> ModelState:
    templates = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.asarray(x).dtype), inputs)
    return init_fn(templates, init_state)


def train_step(
    model: Any,
    loss: Any,
    optimizer: Any,
    *,
    seed: int | None = None,
    loss_scale: Any = None,
    gradient_accumulation_steps: int = 1,
    lr_scale: bool = False,
) -> tuple[Callable[..., dict], Callable[..., dict]]:
    """``(init_fn, step_fn)`` for supervised training.

    ``model`` is a graph (built in train mode) or an ``(init_fn, predict_fn)`` pair whose
    predict returns ``(prediction, new_layer_state)``; ``loss`` as in :func:`resolve_loss`;
    ``optimizer`` a name or any optax transformation. The step computes the gradient of
    the (scaled) loss w.r.t. the trainable parameters, unscales it, skips the update when
    it is not finite under dynamic loss scaling, applies the optimizer, and merges the
    layers' new state (batch-norm statistics, dropout keys). When the step state holds
    ``"gradient_norms"`` (:func:`axon.loop.gradient_norms.with_gradient_norms`), the step
    replaces it with the norms of its gradients. With
    ``gradient_accumulation_steps=n`` updates are applied every n steps on the mean
    gradient (``optax.MultiSteps``).

    >>> import axon, jax.numpy as jnp
    >>> init_fn, step_fn = train_step(axon.input("x").pipe(axon.dense, 1), "mean_squared_error", "sgd")
    >>> batch = (jnp.ones((2, 3)), jnp.zeros((2, 1)))
    >>> int(step_fn(init_fn(batch), batch)["i"])
    1
    """
    init_model, predict_fn = resolve_model(model, "train", seed)
    forward = _forward(predict_fn)
    loss_fn = resolve_loss(loss)
    tx = resolve_optimizer(optimizer)
    if lr_scale:
        tx = optax.chain(tx, optax.inject_hyperparams(optax.scale)(step_size=1.0))
    if not isinstance(gradient_accumulation_steps, int) or gradient_accumulation_steps < 1:
        raise ValueError(f"trainer: expected gradient_accumulation_steps to be a positive int, got {gradient_accumulation_steps!r}")
    if gradient_accumulation_steps > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=gradient_accumulation_steps)
    scaler = _resolve_loss_scale(loss_scale)

    def init_fn(batch: Any, init_state: Any = None) -> dict:
        inputs, targets = check_batch(batch, "trainer")
        model_state = _init_model_state(init_model, inputs, init_state)
        params = model_state.trainable_parameters()
        master = _master_copy(params)
        out = jax.eval_shape(lambda s, x: forward(s, x), model_state, inputs)
        y_pred = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), out[0])
        state = {
            "i": jnp.zeros((), jnp.int32),
            "loss": jnp.zeros((), jnp.float32),
            "model_state": model_state,
            "optimizer_state": tx.init(params if master is None else master),
            "loss_scale_state": scaler.init(),
            "y_true": jax.tree_util.tree_map(jnp.asarray, targets),
            "y_pred": y_pred,
        }
        if master is not None:
            state["master_params"] = master
        if scaler.skips_nonfinite:
            state["skipped_updates"] = jnp.zeros((), jnp.int32)
        return state

    def step_fn(step_state: dict, batch: Any) -> dict:
        inputs, targets = batch
        model_state: ModelState = step_state["model_state"]
        ls_state = step_state["loss_scale_state"]
        params = model_state.trainable_parameters()
        master = step_state.get("master_params")

        def objective(p):
            prediction, new_layer_state = forward(model_state.update(p), inputs)
            value = loss_fn(targets, prediction)
            if getattr(value, "shape", ()) != ():
                raise ValueError(
                    f"trainer: the loss must be a scalar, got shape {value.shape}; use reduction='mean' in a custom loss"
                )
            # scaled in float32: a float16 loss times a scale of 2**16 would overflow
            return scaler.scale(jnp.asarray(value, jnp.float32), ls_state), (value, prediction, new_layer_state)

        grads, (value, prediction, new_layer_state) = jax.grad(objective, has_aux=True)(params)
        if master is not None:
            # half-precision parameters: unscale and update in float32 (float16's range
            # loses small gradients and the optimizer's epsilon, e.g. Adam's 1e-8 is 0)
            grads = jax.tree_util.tree_map(lambda g, m: g.astype(m.dtype), grads, master)
        grads, new_ls_state, finite = scaler.unscale(grads, ls_state)
        reference = params if master is None else master
        updates, opt_state = tx.update(grads, step_state["optimizer_state"], reference)
        new_reference = optax.apply_updates(reference, updates)
        out = {}
        if GRADIENT_NORMS_KEY in step_state:  # asked for (axon.loop.gradient_norms)
            out[GRADIENT_NORMS_KEY] = gradient_norms(grads)
        if scaler.skips_nonfinite:
            finite = finite & all_finite(new_reference)
            new_reference = jax.tree_util.tree_map(lambda n, o: jnp.where(finite, n, o), new_reference, reference)
            opt_state = jax.tree_util.tree_map(lambda n, o: jnp.where(finite, n, o), opt_state, step_state["optimizer_state"])
            out["skipped_updates"] = jnp.where(finite, 0, step_state["skipped_updates"] + 1).astype(jnp.int32)
        if master is None:
            new_params = new_reference
        else:
            out["master_params"] = new_reference
            new_params = jax.tree_util.tree_map(lambda m, p: m.astype(p.dtype), new_reference, params)
        return {
            "i": step_state["i"] + 1,
            "loss": value.astype(jnp.float32),
            "model_state": model_state.update(new_params, new_layer_state),
            "optimizer_state": opt_state,
            "loss_scale_state": new_ls_state,
            "y_true": targets,
            "y_pred": prediction,
            **out,
        }

    return init_fn, step_fn


def eval_step(model: Any, *, seed: int | None = None) -> tuple[Callable[..., dict], Callable[..., dict]]:
    """``(init_fn, step_fn)`` for evaluation in inference mode; the step state holds
    ``model_state``, ``y_true`` and ``y_pred``.

    >>> import axon, jax.numpy as jnp
    >>> init_fn, step_fn = eval_step(axon.input("x").pipe(axon.dense, 4))
    >>> batch = (jnp.ones((2, 3)), jnp.zeros((2, 4)))
    >>> step_fn(init_fn(batch), batch)["y_pred"].shape
    (2, 4)
    """
    init_model, predict_fn = resolve_model(model, "inference", seed)
    forward = _forward(predict_fn)

    def init_fn(batch: Any, init_state: Any = None) -> dict:
        inputs, targets = check_batch(batch, "evaluator")
        model_state = _init_model_state(init_model, inputs, init_state)
        out = jax.eval_shape(forward, model_state, inputs)
        return {
            "model_state": model_state,
            "y_true": jax.tree_util.tree_map(jnp.asarray, targets),
            "y_pred": jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), out),
        }

    def step_fn(step_state: dict, batch: Any) -> dict:
        inputs, targets = batch
        return {"model_state": step_state["model_state"], "y_true": targets, "y_pred": forward(step_state["model_state"], inputs)}

    return init_fn, step_fn


def _master_copy(params: Any) -> Any:
    """Float32 copies of the parameters when any of them is in half precision (float16 or
    bfloat16), else ``None``: the optimizer then keeps its state and the parameters'
    running values in float32 and the model gets them rounded to their own dtype."""
    leaves = jax.tree_util.tree_leaves(params)
    half = [leaf for leaf in leaves if jnp.issubdtype(leaf.dtype, jnp.floating) and jnp.dtype(leaf.dtype).itemsize < 4]
    if not half:
        return None
    return jax.tree_util.tree_map(
        lambda p: p.astype(jnp.float32) if jnp.issubdtype(p.dtype, jnp.floating) and jnp.dtype(p.dtype).itemsize < 4 else p,
        params,
    )


class _Scaler:
    """Adapter over ``axon.loss_scale`` triples (or none)."""

    def __init__(self, init, scale, unscale, skips_nonfinite):
        self.init, self.scale, self._unscale, self.skips_nonfinite = init, scale, unscale, skips_nonfinite

    def unscale(self, grads, state):
        finite = all_finite(grads) if self.skips_nonfinite else None
        grads, state = self._unscale(grads, state)
        return grads, state, finite


def _resolve_loss_scale(loss_scale: Any) -> _Scaler:
    if loss_scale is None or loss_scale == "identity":
        return _Scaler(lambda: {}, lambda x, s: x, lambda g, s: (g, s), False)
    if isinstance(loss_scale, str):
        if loss_scale not in ("static", "dynamic"):
            raise ValueError(f"trainer: expected loss_scale to be 'identity', 'static', 'dynamic' or a loss-scale triple, got {loss_scale!r}")
        loss_scale = getattr(_ls, loss_scale)()
    if isinstance(loss_scale, tuple) and len(loss_scale) == 3 and all(callable(f) for f in loss_scale):
        init, scale, unscale = loss_scale
        return _Scaler(init, scale, unscale, True)
    raise TypeError(f"trainer: expected loss_scale to be a name or an (init, scale, unscale) triple, got {loss_scale!r}")
