"""init_fn creates parameters one by one with cached compiled programs: the values follow the
documented key derivation (checked against jax.random and jax.nn.initializers directly, and
against a hand-written single jitted init), the number of compiled programs does not grow
with the number of identical layers, and init still works under jax.jit and eval_shape."""

import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon
from axon.compiler import creation


def salt(path):
    """The documented salt, written out independently: MD5 of the dotted path, first four
    bytes little-endian, 31 bits."""
    return int.from_bytes(hashlib.md5(".".join(path).encode()).digest()[:4], "little") & 0x7FFFFFFF


def key_for(seed, *path):
    return jax.random.fold_in(jax.random.PRNGKey(seed), salt(path))


def mlp(blocks=2, width=6):
    x = axon.input("x", shape=(None, width))
    h = x
    for _ in range(blocks):
        h = axon.add(h, axon.relu(axon.dense(h, width)))
    return h.pipe(axon.dense, 3, kernel_initializer="he_normal")


def test_values_follow_the_key_derivation_with_jax_initializers():
    seed = 5
    state = axon.build(mlp(), seed=seed)[0](axon.template((1, 6)))
    glorot = jax.nn.initializers.glorot_uniform()
    he = jax.nn.initializers.he_normal()  # a truncated normal, as axon's
    for i in range(2):
        name = f"dense_{i}"
        expected = glorot(key_for(seed, name, "kernel"), (6, 6), jnp.float32)
        np.testing.assert_array_equal(state[name]["kernel"], expected)
        np.testing.assert_array_equal(state[name]["bias"], np.zeros(6, np.float32))
    np.testing.assert_array_equal(state["dense_2"]["kernel"], he(key_for(seed, "dense_2", "kernel"), (6, 3), jnp.float32))


def test_values_equal_a_hand_written_single_jitted_init():
    # what init_fn compiled before: every initializer call in one jax.jit program
    @jax.jit
    def hand_init():
        glorot = jax.nn.initializers.glorot_uniform()
        return {
            "conv_0": {"kernel": jax.nn.initializers.he_normal()(key_for(0, "conv_0", "kernel"), (3, 3, 2, 4)),
                       "bias": jnp.zeros(4)},
            "dense_0": {"kernel": glorot(key_for(0, "dense_0", "kernel"), (64, 5)), "bias": jnp.zeros(5)},
        }

    model = (axon.input("img", shape=(None, 4, 4, 2)).pipe(axon.conv, 4, kernel_size=3, padding="same",
                                                           kernel_initializer="he_normal")
             .pipe(axon.flatten).pipe(axon.dense, 5))
    state = axon.build(model)[0]()
    expected = hand_init()
    for layer in expected:
        for name in expected[layer]:
            np.testing.assert_array_equal(state[layer][name], expected[layer][name])


def test_block_and_namespace_paths_are_the_keys():
    shared = axon.block(lambda z: axon.dense(z, 4, kernel_initializer=axon.initializers.uniform(scale=0.5)))
    x = axon.input("x", shape=(None, 4))
    model = axon.namespace(axon.add(shared(x), shared(axon.relu(x))), "enc")
    state = axon.build(model, seed=3)[0]()
    expected = jax.random.uniform(key_for(3, "enc", "block_0", "dense_0", "kernel"), (4, 4), jnp.float32, -0.5, 0.5)
    np.testing.assert_array_equal(state["enc"]["block_0"]["dense_0"]["kernel"], expected)


def test_identical_layers_share_one_compiled_program():
    before = len(creation._cache)
    axon.build(mlp(blocks=12, width=7))[0]()
    # glorot (7, 7), zeros (7,), he_normal (7, 3), zeros (3,): not one program per layer
    assert len(creation._cache) - before <= 4
    again = len(creation._cache)
    axon.build(mlp(blocks=30, width=7))[0]()  # a new graph with the same shapes compiles nothing
    assert len(creation._cache) == again


def test_attention_layers_share_their_programs():
    t = axon.input("t", shape=(None, 5, 8))
    h = t
    for _ in range(4):
        h = axon.multi_head_attention(h, num_heads=2)
    before = len(creation._cache)
    state = axon.build(h, seed=1)[0]()
    assert len(jax.tree_util.tree_leaves(state.data)) == 32
    assert len(creation._cache) - before <= 4


def test_the_abstract_pass_runs_once_per_signature():
    init_fn, _ = axon.build(mlp())
    a = init_fn(axon.template((1, 6)))
    b = init_fn(axon.template((1, 6)))
    assert init_fn.trace_count == 1
    for x, y in zip(jax.tree_util.tree_leaves(a.data), jax.tree_util.tree_leaves(b.data)):
        np.testing.assert_array_equal(x, y)
    init_fn(axon.template((1, 6)), {"dense_0": {"bias": np.ones(6, np.float32)}})
    assert init_fn.trace_count == 2
    with pytest.raises(ValueError, match=r"dense_0.bias.*shape \(5,\).*expects \(6,\)"):
        init_fn(axon.template((1, 6)), {"dense_0": {"bias": np.ones(5, np.float32)}})


def test_state_dicts_keep_the_jit_order():
    state = axon.build(mlp())[0]()
    assert list(state.keys()) == sorted(state.keys())
    assert list(state["dense_0"].keys()) == ["bias", "kernel"]


def test_init_works_under_jit_and_eval_shape_and_jit_false():
    init_fn, _ = axon.build(mlp(), seed=2)
    eager = init_fn().data
    jitted = jax.jit(lambda: init_fn(axon.template((1, 6))).data)()
    shapes = jax.eval_shape(lambda: init_fn(axon.template((1, 6))).data)
    debug = axon.build(mlp(), seed=2, jit=False)[0]().data
    for a, b, c, d in zip(*(jax.tree_util.tree_leaves(t) for t in (eager, jitted, shapes, debug))):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, d)
        assert (c.shape, c.dtype) == (a.shape, a.dtype)


def test_given_values_are_cast_and_traced_through_jit():
    init_fn, _ = axon.build(mlp())
    kernel = jnp.full((6, 6), 2.0, jnp.bfloat16)

    @jax.jit
    def with_given(k):
        return init_fn(axon.template((1, 6)), {"dense_1": {"kernel": k}}).data

    state = with_given(kernel)
    assert state["dense_1"]["kernel"].dtype == jnp.float32
    np.testing.assert_array_equal(state["dense_1"]["kernel"], np.full((6, 6), 2.0, np.float32))


def test_initialize_hooks_see_the_created_values():
    from axon.hooks import attach_hook

    seen = []
    y = attach_hook(axon.input("x").pipe(axon.dense, 2), lambda p: seen.append({k: np.asarray(v) for k, v in p.items()}),
                    on="initialize")
    state = axon.build(y)[0](axon.template((1, 3)))
    jax.effects_barrier()
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0]["kernel"], state["dense_0"]["kernel"])


def test_unregistered_and_unhashable_initializers_still_work():
    class Fill:  # unhashable: defines __eq__ only
        def __eq__(self, other):
            return isinstance(other, Fill)

        __hash__ = None

        def __call__(self, key, shape, dtype=jnp.float32):
            return jnp.full(shape, 0.25, dtype)

    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 3, kernel_initializer=Fill(),
                                                   bias_initializer=lambda k, s, d=jnp.float32: jax.random.normal(k, s, d))
    state = axon.build(model, seed=4)[0]()
    np.testing.assert_array_equal(state["dense_0"]["kernel"], np.full((2, 3), 0.25, np.float32))
    np.testing.assert_array_equal(state["dense_0"]["bias"], jax.random.normal(key_for(4, "dense_0", "bias"), (3,)))


@pytest.mark.parametrize("shape", [(2, 3, 4)])
def test_multi_dimensional_draws_match_jax_random_bit_for_bit(shape):
    # creation draws threefry bits flat and reshapes them (a faster compile on CPU); the
    # values must be the ones jax.random gives for the shaped draw, in every dtype and for
    # initializers that call jax.random themselves, inside their own jit or with new-style keys
    def user_init(key, shape, dtype=jnp.float32):
        bits = jax.random.bits(key, shape)
        typed = jax.random.wrap_key_data(key)
        per_key = jax.vmap(lambda k: jax.random.normal(k, shape))(jax.random.split(key, 2))  # a batch of keys
        return (jax.jit(jax.random.normal, static_argnums=1)(key, shape) + jax.random.uniform(typed, shape)
                + (bits % 7).astype(jnp.float32) + per_key[0] * per_key[1]).astype(dtype)

    key = jax.random.PRNGKey(11)
    cases = [(jax.nn.initializers.he_normal(), "float32"), (jax.nn.initializers.glorot_uniform(), "bfloat16"),
             (user_init, "float32")]
    for init, dtype in cases:
        made = creation.creator(init, shape, dtype)(key, 3)
        expected = jax.jit(lambda k, init=init, dtype=dtype: init(jax.random.fold_in(k, 3), shape, dtype))(key)
        assert made.dtype == expected.dtype and made.shape == shape
        np.testing.assert_array_equal(np.asarray(made, np.float32), np.asarray(expected, np.float32))
    bits = creation.creator(lambda k, s, d: jax.random.bits(k, s, d), shape, jnp.uint8)(key, 3)
    np.testing.assert_array_equal(bits, jax.random.bits(jax.random.fold_in(key, 3), shape, jnp.uint8))


def test_repeated_layers_are_traced_once_per_op_options_and_shapes():
    calls = []

    def scale(x, w, factor=1.0):
        calls.append((tuple(x.shape), factor))
        return jnp.concatenate([x, x * factor], axis=-1) @ w

    def block(h, factor, width):
        w = axon.param("w", lambda s: (2 * s[-1], width), initializer="ones")
        return axon.layer(scale, [h, w], op_name="scale", factor=factor)

    h = axon.input("x", shape=(None, 2))
    for factor, width in [(2.0, 2), (2.0, 2), (2.0, 3), (3.0, 3), (3.0, 3), (3, 3)]:
        h = block(h, factor, width)
    state = axon.build(h)[0](axon.template((1, 2)))
    # traced once per distinct (options, argument shapes): the second and fifth blocks reuse
    # the first's and the fourth's; the third differs by its parameter's shape, the last by
    # its option's type (the int 3 is not the float 3.0)
    assert calls == [((1, 2), 2.0), ((1, 2), 2.0), ((1, 3), 3.0), ((1, 3), 3)]
    assert [type(f) for _, f in calls] == [float, float, float, int]
    assert [state[f"scale_{i}"]["w"].shape for i in range(6)] == [(4, 2), (4, 2), (4, 3), (6, 3), (6, 3), (6, 3)]
