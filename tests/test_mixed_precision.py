"""Mixed precision: create_policy, cast, apply_policy (only / except / predicate), the
dtypes each layer keeps, computes in and outputs, integer inputs left alone, and float32
internals of softmax and the normalizations.

References: the policy semantics of AXON_API §13 (params initialized in ``params``,
inputs and params cast to ``compute``, output cast to ``output``, integers untouched),
numpy float64 computations of the same functions.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon
from axon.mixed_precision import apply_policy, cast, create_policy

BF16 = jnp.dtype(jnp.bfloat16)
F16 = jnp.dtype(jnp.float16)
F32 = jnp.dtype(jnp.float32)


def mlp():
    return (
        axon.input("x", shape=(None, 4))
        .pipe(axon.dense, 8, activation="relu")
        .pipe(axon.batch_norm)
        .pipe(axon.dropout, rate=0.5)
        .pipe(axon.dense, 3)
        .pipe(axon.softmax)
    )


def layer_outputs(model, state, x):
    """Output dtype of every layer, by running the graph that ends at it."""
    names = axon.graph.layer_names(model)
    out = {}
    for nid in axon.graph.topological_order(model):
        sub = axon.Axon(model.nodes, nid)
        out[names[nid][1]] = axon.predict(sub, state, x).dtype
    return out


# -- policies and cast -----------------------------------------------------------------


def test_create_policy_and_repr():
    assert repr(create_policy()) == "Policy<>"
    assert repr(create_policy(params="f32", compute="bf16", output="f16")) == "Policy<p=f32 c=bf16 o=f16>"
    assert create_policy(compute=jnp.bfloat16).compute == BF16
    with pytest.raises(ValueError, match="floating"):
        create_policy(compute="s32")


def test_cast_containers_leaves_integers():
    policy = create_policy(params="f16", compute="bf16", output="f32")
    tree = {"a": jnp.ones(2, F32), "b": (jnp.arange(3), [jnp.zeros((1, 2), F16)]), "c": jnp.array([True])}
    out = cast(policy, tree, "compute")
    assert out["a"].dtype == BF16
    assert out["b"][0].dtype == jnp.dtype("int32")
    assert out["b"][1][0].dtype == BF16
    assert out["c"].dtype == jnp.dtype(bool)
    assert cast(policy, tree, "params")["a"].dtype == F16
    assert cast(create_policy(), tree, "output") is tree  # no dtype for the role: unchanged
    with pytest.raises(ValueError, match="role"):
        cast(policy, tree, "weights")


# -- apply_policy ----------------------------------------------------------------------


def test_full_bf16_policy_dtypes_per_layer():
    policy = create_policy(params="bf16", compute="bf16", output="bf16")
    model = apply_policy(mlp(), policy)
    state = axon.init(model, axon.template((2, 4)), mode="train")
    assert state["dense_0"]["kernel"].dtype == BF16
    assert state["batch_norm_0"]["mean"].dtype == BF16  # state is initialized in params too
    assert state["dropout_0"]["key"].dtype == jnp.dtype("uint32")  # integers never cast
    x = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    outs = layer_outputs(model, state, x)
    assert outs["x"] == F32  # inputs are not layers: they keep the given dtype
    assert all(outs[name] == BF16 for name in ("dense_0", "relu_0", "batch_norm_0", "dropout_0", "dense_1", "softmax_0"))


def test_compute_policy_keeps_params_and_output_in_f32():
    policy = create_policy(params="f32", compute="bf16", output="f32")
    model = apply_policy(mlp(), policy)
    seen = {}
    model = axon.map_nodes(
        model,
        lambda n: axon.attach_hook(n, lambda v, name=n.op_name: seen.setdefault(name, v.dtype)) if n.op_name == "dense" else n,
    )
    state = axon.init(model, axon.template((2, 4)))
    assert state["dense_0"]["kernel"].dtype == F32
    out = axon.predict(model, state, np.ones((2, 4), np.float32))
    jax.effects_barrier()
    assert seen["dense"] == BF16  # the forward hook sees the op's result, in compute dtype
    assert out.dtype == F32


def test_only_except_and_predicate_select_layers():
    policy = create_policy(params="bf16")
    cases = {
        "only": apply_policy(mlp(), policy, only=["dense"]),
        "except_": apply_policy(mlp(), policy, except_=["dense"]),
        "except": apply_policy(mlp(), policy, **{"except": ["dense"]}),
        "predicate": apply_policy(mlp(), policy, predicate=lambda node: node.op_name == "batch_norm"),
    }
    dtypes = {}
    for key, model in cases.items():
        # abstract init (shapes and dtypes only, nothing compiled)
        state = jax.eval_shape(lambda m=model: axon.init(m, axon.template((2, 4))).data)
        dtypes[key] = (state["dense_0"]["kernel"].dtype, state["batch_norm_0"]["gamma"].dtype)
    assert dtypes == {
        "only": (BF16, F32),
        "except_": (F32, BF16),
        "except": (F32, BF16),
        "predicate": (F32, BF16),
    }


def test_apply_policy_errors():
    policy = create_policy(compute="bf16")
    with pytest.raises(TypeError, match="at most one"):
        apply_policy(mlp(), policy, only=["dense"], except_=["relu"])
    with pytest.raises(TypeError, match="unknown option"):
        apply_policy(mlp(), policy, exclude=["dense"])
    with pytest.raises(TypeError, match="list of op names"):
        apply_policy(mlp(), policy, only="dense")
    with pytest.raises(TypeError, match="policy"):
        apply_policy(mlp(), "bf16")
    with pytest.raises(TypeError, match="either"):
        apply_policy(mlp(), policy, except_=["a"], **{"except": ["b"]})


def test_integer_inputs_are_never_cast():
    model = axon.input("ids", shape=(None, 3)).pipe(axon.embedding, 10, 4).pipe(axon.dense, 2)
    model = apply_policy(model, create_policy(params="bf16", compute="bf16", output="bf16"))
    state = axon.init(model, axon.template((1, 3), "s32"))
    ids = jnp.array([[1, 2, 9]], dtype=jnp.int32)
    out = axon.predict(model, state, ids)
    assert out.dtype == BF16
    kernel = np.asarray(state["embedding_0"]["kernel"], np.float32)
    emb = axon.predict(axon.Axon(model.nodes, model.node.parents[0]), state, ids)
    np.testing.assert_array_equal(np.asarray(emb, np.float32), kernel[[1, 2, 9]][None])


def test_policy_reaches_block_layers_and_constants():
    shared = axon.block(lambda x: axon.dense(x, 2))
    x = axon.input("x", shape=(None, 2))
    model = axon.add(shared(x), axon.constant(np.ones((1, 2), np.float32)))
    model = apply_policy(model, create_policy(params="bf16", output="f16"))
    state = axon.init(model, axon.template((1, 2)))
    assert state["block_0"]["dense_0"]["kernel"].dtype == BF16
    const = axon.Axon(model.nodes, model.node.parents[1])
    assert axon.predict(const, state, {}).dtype == F16


def test_mixed_precision_gradients_reach_f32_params():
    model = axon.input("x", shape=(None, 4)).pipe(axon.dense, 8, activation="relu").pipe(axon.dense, 3)
    model = apply_policy(model, create_policy(params="f32", compute="bf16", output="f32"))
    init_fn, predict_fn = axon.build(model, mode="train")
    state = init_fn(axon.template((4, 4)))
    x = np.random.default_rng(0).normal(size=(4, 4)).astype(np.float32)

    def loss(params):
        return jnp.sum(predict_fn(state.update(params), x).prediction[:, 0])

    grads = jax.grad(loss)(state.trainable_parameters())
    assert grads["dense_0"]["kernel"].dtype == F32
    assert np.all(np.isfinite(np.asarray(grads["dense_0"]["kernel"])))


# -- numerically sensitive ops compute in float32 ---------------------------------------


def test_softmax_family_upcasts_half_precision():
    x = (np.random.default_rng(0).normal(size=(4, 300)) * 8).astype(np.float32)
    xb = jnp.asarray(x, BF16)
    x64 = np.asarray(xb, np.float64)  # the bf16 values, exactly
    ref = np.exp(x64 - x64.max(-1, keepdims=True))
    ref = ref / ref.sum(-1, keepdims=True)
    out = axon.activations.softmax(xb)
    assert out.dtype == BF16
    # computed in f32, rounded once to bf16: within one bf16 rounding (2^-8 relative)
    np.testing.assert_allclose(np.asarray(out, np.float64), ref, rtol=2**-8, atol=1e-6)
    lse = axon.activations.log_sumexp(xb)
    ref_lse = np.log(np.exp(x64 - x64.max(-1, keepdims=True)).sum(-1, keepdims=True)) + x64.max(-1, keepdims=True)
    assert lse.dtype == BF16
    np.testing.assert_allclose(np.asarray(lse, np.float64), ref_lse, rtol=2**-8)
    ls = axon.activations.log_softmax(xb)
    assert ls.dtype == BF16
    np.testing.assert_allclose(np.asarray(ls, np.float64), x64 - ref_lse, rtol=2**-7, atol=0.07)
    for fn in (axon.activations.softmax, axon.activations.log_softmax, axon.activations.log_sumexp):
        eqns = jax.make_jaxpr(fn)(xb).jaxpr.eqns
        exps = [e for e in eqns if e.primitive.name == "exp"]
        assert exps and all(e.outvars[0].aval.dtype == F32 for e in exps)


def test_batch_norm_under_bf16_policy_matches_f32_reference():
    model = apply_policy(axon.input("x", shape=(None, 16)).pipe(axon.batch_norm),
                         create_policy(params="bf16", compute="bf16", output="bf16"))
    init_fn, predict_fn = axon.build(model, mode="train")
    state = init_fn(axon.template((64, 16)))
    x = (np.random.default_rng(0).normal(size=(64, 16)) * 3 + 100).astype(np.float32)
    xb = np.asarray(jnp.asarray(x, BF16), np.float64)
    out = predict_fn(state, jnp.asarray(x, BF16)).prediction
    assert out.dtype == BF16
    ref = (xb - xb.mean(0)) / np.sqrt(xb.var(0) + 1e-5)  # gamma = 1, beta = 0
    # large mean, small spread: only float32 statistics keep this within bf16 rounding
    np.testing.assert_allclose(np.asarray(out, np.float64), ref, atol=0.05)


def test_state_updates_keep_their_entries_dtype_under_a_compute_policy():
    # params f32, compute bf16: the layer computes its update in bf16, the state entry is f32
    # and stays f32 after a train step (found by tests/conformance.py's policy run)
    def counter(x, count, *, mode="inference"):
        return axon.StatefulOutput(x + count, {"count": count + 1}) if mode == "train" else x + count

    x = axon.input("x", shape=(None, 2))
    model = axon.layer(counter, [x, axon.param("count", (), initializer="zeros", kind="state")], op_name="counter")
    model = axon.container([model, axon.batch_norm(x)])
    mp = apply_policy(model, create_policy(params="f32", compute="bf16", output="bf16"))
    init_fn, step = axon.build(mp, mode="train")
    state = init_fn(jnp.ones((3, 2)))
    out = step(state, jnp.arange(6.0).reshape(3, 2))
    assert [p.dtype for p in out.prediction] == [BF16, BF16]
    assert out.state["counter_0"]["count"].dtype == F32 and float(out.state["counter_0"]["count"]) == 1.0
    assert {k: v.dtype for k, v in out.state["batch_norm_0"].items()} == {"mean": F32, "var": F32}
