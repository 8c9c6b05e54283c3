"""The shared layer-conformance check every layer goes through.

``check_layer(model, inputs, params=...)`` verifies, for one graph:

* init gives exactly the expected parameter names, shapes and dtypes;
* jit equals eager (inference and train mode);
* gradients of a scalar function of the output w.r.t. every trainable parameter (and the
  floating inputs) are finite;
* inference mode returns the prediction, train mode a ``TrainOutput`` whose state updates
  are declared state entries;
* a built ``predict_fn`` called twice with the same shapes traces (compiles) once.

``init_state`` (optional) gives initial parameter values (e.g. copied from a reference
module), which ``init_fn`` must accept with exactly the declared shapes; without it the
layer's initializers draw them. The train-mode state starts from the inference state's
values (train-only state, such as dropout keys, is initialized afresh), which keeps the
check to one initialization compile. ``results`` (optional, a dict) receives the
inference output (``"inference"``), the train-mode ``TrainOutput`` (``"train"``) and the
train-mode state (``"train_state"``), so that a test can compare them with a reference
without building the model again.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import axon


def _leaves_with_paths(tree: Any) -> dict[str, Any]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {"/".join(str(getattr(k, "key", k)) for k in path): v for path, v in flat}


def _assert_close(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=atol)


def check_layer(
    model: axon.Axon,
    inputs: Any,
    params: dict[str, tuple[tuple[int, ...], str]] | None = None,
    *,
    state: dict[str, tuple[tuple[int, ...], str]] | None = None,
    init_state: Any = None,
    results: dict | None = None,
    train_differs: bool = False,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> axon.ModelState:
    """Run the conformance checks; ``params``/``state`` map ``"layer/param"`` to
    ``(shape, dtype_name)`` and must match init exactly. Returns the inference state."""
    init_fn, predict_fn = axon.build(model)
    model_state = init_fn(inputs, init_state)

    # 1. parameter names, shapes and dtypes
    if params is not None or state is not None:
        expected = {**(params or {}), **(state or {})}
        got = {k: (tuple(v.shape), str(v.dtype)) for k, v in _leaves_with_paths(model_state.data).items()}
        assert got == expected, f"init gave {got}, expected {expected}"
        trainable = set(_leaves_with_paths(model_state.trainable_parameters()))
        assert trainable == set(params or {}), f"trainable {trainable} != {set(params or {})}"

    # 2. jit equals eager, and compiles once
    out = predict_fn(model_state, inputs)
    out2 = predict_fn(model_state, inputs)
    assert predict_fn.trace_count == 1, f"predict_fn traced {predict_fn.trace_count} times for one shape"
    _assert_close(out, out2, 0, 0)
    _, eager_fn = axon.build(model, jit=False)
    _assert_close(out, eager_fn(model_state, inputs), rtol, atol)
    for leaf in jax.tree_util.tree_leaves(out):
        assert np.all(np.isfinite(np.asarray(leaf, np.float64))), "non-finite output"

    # 3. train mode: TrainOutput, declared state only, jit equals eager; and 4. finite
    # gradients w.r.t. trainable parameters and floating inputs (one compiled program)
    train_init, train_fn = axon.build(model, mode="train")
    train_state = train_init(inputs, model_state)
    trainable = train_state.trainable_parameters()
    float_inputs = {
        k: v for k, v in (inputs.items() if isinstance(inputs, dict) else {"__x": inputs}.items())
        if jnp.issubdtype(jnp.asarray(v).dtype, jnp.floating)
    }

    def loss(p, xs):
        feed = dict(inputs) if isinstance(inputs, dict) else inputs
        if isinstance(inputs, dict):
            feed.update(xs)
        elif "__x" in xs:
            feed = xs["__x"]
        result = train_fn(train_state.update(p), feed)
        return sum(jnp.sum(jnp.asarray(l, jnp.float32) ** 2) for l in jax.tree_util.tree_leaves(result.prediction)), result

    grad_fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))
    (_, result), (g_params, g_inputs) = grad_fn(trainable, float_inputs)
    assert isinstance(result, axon.TrainOutput)
    for path in _leaves_with_paths(result.state):
        assert tuple(path.split("/")) in train_state.state_paths, f"undeclared state update {path}"
    _, train_eager = axon.build(model, mode="train", jit=False)
    _assert_close(result, train_eager(train_state, inputs), rtol, atol)
    if not train_differs:
        _assert_close(result.prediction, out, rtol, atol)
    for name, g in {**_leaves_with_paths(g_params), **_leaves_with_paths(g_inputs)}.items():
        assert np.all(np.isfinite(np.asarray(g, np.float64))), f"non-finite gradient for {name}"
    if results is not None:
        results.update(inference=out, train=result, train_state=train_state)
    return model_state
