"""steps_per_execution on CPU unrolls a chunk only when its step convolves (XLA:CPU runs
convolutions in a rolled loop as naive loops, jax-ml/jax#12868); either way a chunk trains
exactly like single steps."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import axon
from axon.loop.program import _convolves


def test_convolves_finds_a_convolution_in_nested_jaxprs():
    w = jnp.ones((3, 3, 1, 2))

    def conv(x):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    x = jnp.ones((1, 5, 5, 1))
    assert _convolves(jax.make_jaxpr(conv)(x).jaxpr)
    assert _convolves(jax.make_jaxpr(jax.jit(conv))(x).jaxpr)  # inside a pjit
    assert _convolves(jax.make_jaxpr(jax.grad(lambda x: conv(x).sum()))(x).jaxpr)
    branches = jax.make_jaxpr(lambda x, p: jax.lax.cond(p, conv, lambda x: conv(x) * 2, x))(x, True)
    assert _convolves(branches.jaxpr)
    assert not _convolves(jax.make_jaxpr(lambda x: jnp.tanh(x @ jnp.ones((1, 2))))(x).jaxpr)


@pytest.mark.parametrize("kind", ["conv", "dense"])
def test_a_chunk_trains_like_single_steps(kind):
    rng = np.random.default_rng(0)
    x = axon.input("x", shape=(None, 6, 6, 1))
    if kind == "conv":
        x = x.pipe(axon.conv, 2, kernel_size=3).pipe(axon.max_pool, kernel_size=2)
    model = x.pipe(axon.flatten).pipe(axon.dense, 1)
    batches = [(rng.standard_normal((4, 6, 6, 1)).astype(np.float32), rng.standard_normal((4, 1)).astype(np.float32))
               for _ in range(4)]

    def run(k):
        lp = axon.loop.trainer(model, "mean_squared_error", optax.adam(1e-2), log=0)
        return lp.run(batches, epochs=1, steps_per_execution=k, return_state=True)

    one, chunked = run(1), run(4)
    for a, b in zip(jax.tree_util.tree_leaves(one.step_state["model_state"]),
                    jax.tree_util.tree_leaves(chunked.step_state["model_state"]), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert chunked.trace_count == 1
