"""The shared layer-conformance check every layer goes through (modelled on Keras's
``run_layer_test``).

``check_layer(model, inputs, params=..., expected=...)`` verifies, for one graph:

* init gives exactly the expected parameter names, shapes and dtypes;
* the inference output equals ``expected``, a reference computed independently by the
  caller (NumPy, torch, a hand-worked value, or the functional layer that is itself tested
  against those); ``expected`` may be a function of the initialized state (for values that
  depend on the drawn parameters);
* jit equals eager (inference and train mode);
* gradients of a scalar function of the output w.r.t. every trainable parameter (and the
  floating inputs) are finite;
* inference mode returns the prediction, train mode a ``TrainOutput`` whose state updates
  are declared state entries;
* a built ``predict_fn`` called twice with the same shapes traces (compiles) once;
* the inference ``predict_fn`` runs with its state-only work hoisted (``axon.build(hoist_state=)``,
  here with no size threshold, so that every layer's state-only equations are hoisted), and is
  compared with the eager and the train-mode programs, which run whole;
* ``axon.get_output_shape`` gives the shapes (and container structure) of the actual output;
* save/load round trips: ``axon.serialize``/``axon.deserialize`` (graph and state) and
  ``axon.save_state``/``axon.load_state`` (the parameters, to a file) give a model that
  predicts identically;
* a bfloat16-compute policy (``axon.mixed_precision``: parameters float32, compute and output
  bfloat16) run in train mode: floating outputs are bfloat16, floating parameters stay
  float32, state updates keep their entries' dtypes, integer arrays are untouched, and the
  prediction is close to the float32 one;
* ONNX export (:func:`check_onnx_export`, run for every ``check_layer`` call of the test
  suite by tests/onnx/test_export_conformance.py, a reference test that needs onnx and
  onnxruntime): ``axon.onnx.export`` writes a model that passes ``onnx.checker`` (full check)
  and that onnxruntime and ``onnx.reference.ReferenceEvaluator`` run to the inference output;
  a layer that cannot be exported must raise ``UnexportableLayersError`` for an op listed in
  ``axon.onnx.export_ops.NOT_EXPORTABLE``, options its converter rejects, or a user's op (the
  branches of a container output are exported one by one, so one such layer leaves the
  others checked).

A check that a layer legitimately cannot pass is opted out explicitly, with the reason:
``skip={"save": "a Python lambda cannot be saved"}`` (keys ``"expected"``, ``"save"``,
``"output_shape"``, ``"policy"``, ``"onnx"``, and ``"onnx_batch"``: only the export check's
run with the batch doubled, for a layer whose axis 0 is not a batch of independent examples).
Leaving out ``expected`` without a reason is an error.

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

import contextlib
import os
import tempfile
from collections.abc import Callable, Mapping
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


SKIPPABLE = ("expected", "save", "output_shape", "policy", "onnx", "onnx_batch")
BF16_POLICY = axon.mixed_precision.create_policy(params="f32", compute="bf16", output="bf16")


def check_layer(
    model: axon.Axon,
    inputs: Any,
    params: dict[str, tuple[tuple[int, ...], str]] | None = None,
    *,
    state: dict[str, tuple[tuple[int, ...], str]] | None = None,
    init_state: Any = None,
    expected: Any = None,
    results: dict | None = None,
    train_differs: bool = False,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    bf16_tol: float = 5e-2,
    skip: Mapping[str, str] | None = None,
) -> axon.ModelState:
    """Run the conformance checks; ``params``/``state`` map ``"layer/param"`` to
    ``(shape, dtype_name)`` and must match init exactly; ``expected`` (a pytree like the
    output, or a function of the inference state returning one) is compared with the
    inference output within ``rtol``/``atol``; ``bf16_tol`` bounds the bfloat16 policy run's
    difference from float32, relative to the output's largest magnitude; ``skip`` maps a
    check in ``SKIPPABLE`` to the reason the layer cannot pass it. Returns the inference state."""
    skip = dict(skip or {})
    unknown = set(skip) - set(SKIPPABLE)
    if unknown or not all(isinstance(r, str) and r.strip() for r in skip.values()):
        raise TypeError(f"check_layer: skip maps checks {SKIPPABLE} to a reason, got {skip!r}")
    if (expected is None) == ("expected" not in skip):
        raise TypeError("check_layer: give expected= (an independent reference) or skip={'expected': reason}, not both")
    init_fn, predict_fn = axon.build(model)
    model_state = init_fn(inputs, init_state)

    # 1. parameter names, shapes and dtypes
    if params is not None or state is not None:
        spec = {**(params or {}), **(state or {})}
        got = {k: (tuple(v.shape), str(v.dtype)) for k, v in _leaves_with_paths(model_state.data).items()}
        assert got == spec, f"init gave {got}, expected {spec}"
        trainable = set(_leaves_with_paths(model_state.trainable_parameters()))
        assert trainable == set(params or {}), f"trainable {trainable} != {set(params or {})}"

    # 2. jit equals eager, and compiles once; hoisting the state-only work changes no value
    with _hoisting_everything():
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

    # 5. the independent reference
    if expected is not None:
        want = expected(model_state) if callable(expected) else expected
        assert jax.tree_util.tree_structure(out) == jax.tree_util.tree_structure(want), (
            f"output structure {jax.tree_util.tree_structure(out)} != expected {jax.tree_util.tree_structure(want)}")
        for got, ref in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(want)):
            assert np.shape(got) == np.shape(ref), f"output shape {np.shape(got)} != expected {np.shape(ref)}"
        _assert_close(out, want, rtol, atol)

    # 6. get_output_shape agrees with the actual output, container structure included
    if "output_shape" not in skip:
        _check_output_shape(model, inputs, out)

    # 7. save/load round trips predict identically
    if "save" not in skip:
        _check_round_trips(model, model_state, inputs, out, predict_fn)

    # 8. a bfloat16-compute policy: dtypes of outputs, parameters and state updates
    if "policy" not in skip:
        _check_bf16_policy(model, inputs, train_state, result, bf16_tol)

    if results is not None:
        results.update(inference=out, train=result, train_state=train_state)
    return model_state


@contextlib.contextmanager
def _hoisting_everything() -> Any:
    """``predict_fn`` splits programs however little state-only work they have (the
    threshold that leaves small programs whole is lifted while it decides)."""
    from axon.compiler import hoisting

    previous, hoisting.MIN_BYTES = hoisting.MIN_BYTES, 0
    try:
        yield
    finally:
        hoisting.MIN_BYTES = previous


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple) and all(isinstance(d, int) for d in x)


def _check_output_shape(model: axon.Axon, inputs: Any, out: Any) -> None:
    shapes = axon.get_output_shape(model, inputs)
    got = jax.tree_util.tree_structure(shapes, is_leaf=_is_shape)
    want = jax.tree_util.tree_structure(out)
    assert got == want, f"get_output_shape structure {got} != the output's {want}"
    actual = [tuple(np.shape(leaf)) for leaf in jax.tree_util.tree_leaves(out)]
    assert jax.tree_util.tree_leaves(shapes, is_leaf=_is_shape) == actual, (
        f"get_output_shape gave {shapes}, the output has shapes {actual}")


def _assert_same_state(a: axon.ModelState, b: axon.ModelState) -> None:
    la, lb = _leaves_with_paths(a.data), _leaves_with_paths(b.data)
    assert set(la) == set(lb), f"round trip changed the state entries: {sorted(la)} != {sorted(lb)}"
    for k, v in la.items():
        assert v.dtype == lb[k].dtype and v.shape == lb[k].shape, f"round trip changed {k}"
        np.testing.assert_array_equal(np.asarray(v), np.asarray(lb[k]), err_msg=f"round trip changed {k}")
    assert a.state_paths == b.state_paths, f"round trip changed the state paths {a.state_paths} -> {b.state_paths}"


def _check_round_trips(model: axon.Axon, model_state: axon.ModelState, inputs: Any, out: Any,
                       predict_fn: Callable) -> None:
    # the whole model (graph + state) through bytes
    loaded_model, loaded_state = axon.deserialize(axon.serialize(model, model_state))
    _assert_same_state(model_state, loaded_state)
    _, loaded_predict = axon.build(loaded_model)
    _assert_close(loaded_predict(loaded_state, inputs), out, 0, 0)
    # the parameters alone through a file, checked against the model and used by it
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "state.safetensors")
        axon.save_state(path, model_state)
        reloaded = axon.load_state(path, model)
    _assert_same_state(model_state, reloaded)
    _assert_close(predict_fn(reloaded, inputs), out, 0, 0)


def _check_bf16_policy(model: axon.Axon, inputs: Any, train_state: axon.ModelState,
                       result: axon.TrainOutput, tol: float) -> None:
    policy = BF16_POLICY
    mp_model = axon.mixed_precision.apply_policy(model, policy)
    mp_init, mp_train = axon.build(mp_model, mode="train")
    mp_state = mp_init(inputs, train_state)
    before = _leaves_with_paths(train_state.data)
    for path, v in _leaves_with_paths(mp_state.data).items():
        want = policy.params if jnp.issubdtype(before[path].dtype, jnp.floating) else before[path].dtype
        assert v.dtype == want, f"bf16 policy: parameter {path} is {v.dtype}, expected {jnp.dtype(want).name}"
    mp_result = mp_train(mp_state, inputs)
    assert isinstance(mp_result, axon.TrainOutput)
    ref_leaves = jax.tree_util.tree_leaves(result.prediction)
    got_leaves = jax.tree_util.tree_leaves(mp_result.prediction)
    assert len(got_leaves) == len(ref_leaves)
    for got, ref in zip(got_leaves, ref_leaves):
        if jnp.issubdtype(ref.dtype, jnp.floating):
            assert got.dtype == policy.output, f"bf16 policy: output is {got.dtype}, expected bfloat16"
            g, r = np.asarray(got, np.float64), np.asarray(ref, np.float64)
            assert np.all(np.isfinite(g)), "bf16 policy: non-finite output"
            scale = max(1.0, float(np.max(np.abs(r), initial=0.0)))
            np.testing.assert_allclose(g, r, rtol=tol, atol=tol * scale, err_msg="bf16 policy: far from float32")
        else:
            assert got.dtype == ref.dtype, f"bf16 policy: a {ref.dtype} output became {got.dtype}"
    mp_paths = _leaves_with_paths(mp_state.data)
    for path, v in _leaves_with_paths(mp_result.state).items():
        assert v.dtype == mp_paths[path].dtype, (
            f"bf16 policy: the state update {path} is {v.dtype}, its entry is {mp_paths[path].dtype}")


def _branches(model: axon.Axon, out: Any) -> list[tuple[axon.Axon, Any]]:
    """``(graph, expected output)`` for each parent of a container output (else the model)."""
    node = model.node
    if node.op != "container":
        return [(model, out)]
    found: dict[int, Any] = {}

    def visit(struct: Any, value: Any) -> None:
        if isinstance(struct, int):
            found.setdefault(struct, value)
        elif isinstance(struct, dict):
            for k, v in struct.items():
                visit(v, value[k])
        else:
            for v, x in zip(struct, value, strict=True):
                visit(v, x)

    visit(node.opts["structure"], out)
    # each layer keeps the name it has in the whole model (so its parameters are found)
    from axon.graph import layer_names

    names = layer_names(model)
    nodes = {nid: n.replace(name=names[nid][1]) if nid in names else n for nid, n in model.nodes.items()}
    return [(axon.Axon(nodes, node.parents[i]), found[i]) for i in sorted(found)]


def check_onnx_export(model: axon.Axon, model_state: axon.ModelState, inputs: Any, out: Any, *,
                      rtol: float = 1e-5, atol: float = 1e-5, batch_check: bool = True) -> list[str]:
    """Export ``model`` (each branch of a container output on its own) with
    ``axon.onnx.export`` and compare onnxruntime's and the ONNX reference evaluator's
    outputs with ``out`` (and, with ``batch_check``, onnxruntime's outputs for the inputs
    repeated twice along the symbolic batch, for layers that treat axis 0 as a batch); returns the ``"layer (op)"`` of the branches that are deliberately
    not exportable."""
    import onnxruntime
    from onnx.reference import ReferenceEvaluator

    import axon.onnx
    from axon.onnx.export_graph import UnexportableLayersError
    from axon.onnx.export_ops import CONVERTERS, NOT_EXPORTABLE

    skipped = []
    for branch, want in _branches(model, out):
        names = list(axon.get_inputs(branch))
        if isinstance(inputs, dict):
            feeds = {k: inputs[k] for k in names if k in inputs}
            template: Any = feeds
        else:
            feeds, template = {names[0]: inputs}, inputs
        try:
            proto = axon.onnx.export(None, branch, model_state, template)
        except UnexportableLayersError as e:
            for layer, op, reason in e.layers:
                assert op in NOT_EXPORTABLE or op in CONVERTERS or not op.startswith("axon."), (
                    f"onnx export: layer {layer!r} has op {op}, which has no converter and is not listed in "
                    f"NOT_EXPORTABLE ({reason})")
                skipped.append(f"{layer} ({op})")
            continue
        feeds = {k: np.asarray(v) for k, v in feeds.items()}
        session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        want_leaves = [np.asarray(v) for v in jax.tree_util.tree_leaves(want)]
        for runner, got in (("onnxruntime", session.run(None, feeds)),
                            ("onnx.reference", ReferenceEvaluator(proto).run(None, feeds))):
            assert len(got) == len(want_leaves), f"onnx export ({runner}): {len(got)} outputs, expected {len(want_leaves)}"
            for g, w in zip(got, want_leaves, strict=True):
                assert g.shape == w.shape, f"onnx export ({runner}): output shape {g.shape} != {w.shape}"
                np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=rtol, atol=atol,
                                           err_msg=f"onnx export ({runner}) of {branch!r}")
        # the batch is symbolic: twice the inputs give twice the outputs (inference is per example)
        def batched(value_info):
            dims = value_info.type.tensor_type.shape.dim
            return bool(dims) and dims[0].dim_param == "batch"

        if batch_check and all(batched(i) for i in proto.graph.input):
            doubled = session.run(None, {k: np.concatenate([v, v]) for k, v in feeds.items()})
            for g, w, info in zip(doubled, want_leaves, proto.graph.output, strict=True):
                w = np.concatenate([w, w]) if batched(info) else w
                np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=rtol, atol=atol,
                                           err_msg=f"onnx export (onnxruntime, batch doubled) of {branch!r}")
    return skipped
