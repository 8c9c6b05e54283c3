"""steps_per_execution on CPU: a chunk whose step convolves is unrolled (XLA:CPU runs
convolutions in a rolled loop as naive loops); any other chunk stays a rolled scan, compiled
once instead of k times. Both give the numbers of k single steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon
from axon.loop.program import StepProgram
from axon.loop.steps import train_step

K = 3


def chunk_scan(model, batch):
    init_fn, step_fn = train_step(model, "mean_squared_error", "sgd")
    program = StepProgram(step_fn, (), track_loss=True, outputs_only=("y_true", "y_pred"))
    _, chunk = program.functions(jit=False)
    state = init_fn(batch)
    stacked = jax.tree_util.tree_map(lambda a: jnp.stack([a] * K), batch)
    jaxpr = jax.make_jaxpr(chunk)(program.carry(state), program.metric_init(state), stacked, jnp.int32(0))
    (scan,) = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "scan"]
    return scan.params


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the unrolling is CPU-only")
def test_dense_chunk_is_rolled_and_conv_chunk_unrolled():
    dense = axon.input("x", shape=(None, 4)).pipe(axon.dense, 2)
    assert chunk_scan(dense, (jnp.ones((2, 4)), jnp.zeros((2, 2))))["unroll"] == 1
    conv = axon.input("x", shape=(None, 5, 5, 1)).pipe(axon.conv, 2, kernel_size=3).pipe(axon.flatten)
    assert chunk_scan(conv, (jnp.ones((2, 5, 5, 1)), jnp.zeros((2, 18))))["unroll"] == K


@pytest.mark.parametrize("conv", [False, True])
def test_chunks_train_like_single_steps(conv):
    rng = np.random.default_rng(0)
    if conv:
        model = axon.input("x", shape=(None, 5, 5, 1)).pipe(axon.conv, 2, kernel_size=3).pipe(axon.flatten)
        x, y = rng.normal(size=(6, 5, 5, 1)).astype(np.float32), rng.normal(size=(6, 18)).astype(np.float32)
    else:
        model = axon.input("x", shape=(None, 4)).pipe(axon.dense, 2)
        x, y = rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(6, 2)).astype(np.float32)
    batches = [(x[i : i + 2], y[i : i + 2]) for i in range(0, 6, 2)]

    def run(k):
        loop = axon.loop.trainer(model, "mean_squared_error", "sgd", log=0)
        return loop.run(batches, epochs=2, steps_per_execution=k)

    for a, b in zip(jax.tree_util.tree_leaves(run(1).data), jax.tree_util.tree_leaves(run(K).data)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
