"""Tests for axon.initializers against jax.nn.initializers, numpy and sample statistics."""

from __future__ import annotations

import functools
import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from axon import initializers as init
from axon import registry

# Compiling a sampler for each new shape dominates the run time, and threefry (JAX's default
# PRNG) is the slowest to compile; "rbg" keys compile in a fraction of the time and go
# through exactly the same initializer code. Threefry keys are covered separately below.
KEY = jax.random.key(42, impl="rbg")
THREEFRY_KEY = jax.random.key(42)

# rank 2 (dense), rank 3 (conv1d, WIO), rank 4 (conv2d, HWIO)
SHAPES = [(5, 7), (3, 4, 6), (3, 3, 2, 5)]

# factory -> the jax.nn.initializers equivalent, same algorithm and fan rule (last two axes)
NAMED = {
    "lecun_uniform": (init.lecun_uniform, jax.nn.initializers.lecun_uniform),
    "lecun_normal": (init.lecun_normal, jax.nn.initializers.lecun_normal),
    "glorot_uniform": (init.glorot_uniform, jax.nn.initializers.glorot_uniform),
    "glorot_normal": (init.glorot_normal, jax.nn.initializers.glorot_normal),
    "he_uniform": (init.he_uniform, jax.nn.initializers.he_uniform),
    "he_normal": (init.he_normal, jax.nn.initializers.he_normal),
}
MODES = ["fan_in", "fan_out", "fan_avg"]
DISTRIBUTIONS = ["normal", "uniform", "truncated_normal"]


def _bits(x):
    x = np.asarray(x)
    return x.view(np.uint16 if x.dtype == jnp.bfloat16 else np.uint32)


def _assert_same_bits(ours, theirs):
    assert ours.shape == theirs.shape
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(_bits(ours), _bits(theirs))


def _jax_cases():
    """(id, ours, jax's, shape, dtype) for every bit-for-bit comparison."""
    cases = []
    for name, (ours, theirs) in NAMED.items():
        # jax's defaults: in_axis=-2, out_axis=-1, receptive field = the other axes (HWIO)
        for shape in SHAPES:
            cases.append((f"{name}-{shape}", ours(), theirs(), shape, jnp.float32))
        cases.append((f"{name}-bf16", ours(), theirs(), (3, 4, 6), jnp.bfloat16))
    for mode in MODES:
        for dist in DISTRIBUTIONS:
            ours = init.variance_scaling(scale=0.7, mode=mode, distribution=dist)
            theirs = jax.nn.initializers.variance_scaling(0.7, mode, dist)
            shape = SHAPES[-1]
            cases.append((f"vs-{mode}-{dist}-{shape}", ours, theirs, shape, jnp.float32))
    # Axon's low-rank fans: rank 0 -> (1, 1), rank 1 -> (n, n). jax.nn refuses rank < 2
    # with its default axes; with no in/out axes every axis is "receptive field", which
    # gives those same fans, so it is an independent reference for the rule.
    for dist in DISTRIBUTIONS:
        ours = init.variance_scaling(scale=3.0, mode="fan_avg", distribution=dist)
        theirs = jax.nn.initializers.variance_scaling(3.0, "fan_avg", dist, in_axis=(), out_axis=())
        for shape in [(), (9,)]:
            cases.append((f"low-rank-{dist}-{shape}", ours, theirs, shape, jnp.float32))
    cases.append(
        (
            "normal-zero-mean",
            init.normal(scale=0.3),
            jax.nn.initializers.normal(0.3),
            (5, 7),
            jnp.float32,
        )
    )
    return cases


JAX_CASES = _jax_cases()


@functools.cache
def _jax_results():
    """All comparisons in one jitted program (one compilation instead of ~80)."""

    @jax.jit
    def program(key):
        return {
            cid: (ours(key, shape, dtype), theirs(key, shape, dtype))
            for cid, ours, theirs, shape, dtype in JAX_CASES
        }

    return program(KEY)


def test_registry():
    expected = {
        "zeros", "ones", "identity", "uniform", "normal", "lecun_uniform", "lecun_normal",
        "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "variance_scaling",
        "orthogonal",
    }  # fmt: skip
    assert set(init.INITIALIZERS) == expected
    for name, factory in init.INITIALIZERS.items():
        assert getattr(init, name) is factory
    assert "full" not in init.INITIALIZERS


# ---------------------------------------------------------------------------------------
# variance scaling family: bit-for-bit against jax.nn.initializers


@pytest.mark.parametrize("case", JAX_CASES, ids=lambda c: c[0])
def test_matches_jax_initializers_bit_for_bit(case):
    cid, _, _, shape, dtype = case
    ours, theirs = _jax_results()[cid]
    assert ours.shape == shape
    assert ours.dtype == dtype
    _assert_same_bits(ours, theirs)


def test_eager_call_with_threefry_keys_matches_jax():
    # outside jit, with JAX's default PRNG: a typed key and an old-style uint32 key
    _assert_same_bits(
        init.glorot_uniform()(THREEFRY_KEY, (3, 4, 6)),
        jax.nn.initializers.glorot_uniform()(THREEFRY_KEY, (3, 4, 6)),
    )
    legacy = jax.random.PRNGKey(1)
    _assert_same_bits(
        init.glorot_uniform()(legacy, (3, 4, 6)),
        jax.nn.initializers.glorot_uniform()(legacy, (3, 4, 6)),
    )


# hand-computed variances from Axon's fan rule: id -> (factory, shape, variance)
VARIANCE_CASES = {
    "lecun_normal-hwio": (init.lecun_normal(), (3, 3, 64, 32), 1 / (9 * 64)),
    "he_normal-rank3": (init.he_normal(), (5, 80, 40), 2 / (5 * 80)),
    "glorot_normal-dense": (init.glorot_normal(), (200, 100), 1 / 150),
    "fan_out-normal": (init.variance_scaling(scale=4.0, mode="fan_out"), (300, 50), 4 / 50),
    "glorot_uniform-hwio": (init.glorot_uniform(scale=0.5), (3, 3, 32, 64), 0.5 / (9 * 48)),
    "fan_avg-uniform": (
        init.variance_scaling(mode="fan_avg", distribution="uniform"),
        (50, 400),
        1 / 225,
    ),
    # fans of a rank-1 shape (n,) are (n, n)
    "he_uniform-rank1": (init.he_uniform(), (20000,), 2 / 20000),
}
NORMAL_CASES = [(0.0, 0.01), (1.5, 0.2), (-3.0, 2.0)]


@functools.cache
def _samples():
    """Large samples for the statistical checks, drawn in one jitted program."""
    cases = {cid: (f, shape) for cid, (f, shape, _) in VARIANCE_CASES.items()}
    cases["truncated"] = (init.he_normal(), (256, 256))
    cases["untruncated"] = (init.variance_scaling(scale=2.0, distribution="normal"), (256, 256))
    cases["uniform"] = (init.uniform(scale=0.05), (100, 100))
    cases["uniform-default"] = (init.uniform(), (10000,))
    for mean, scale in NORMAL_CASES:
        cases[f"normal-{mean}-{scale}"] = (init.normal(mean=mean, scale=scale), (200, 100))
    program = jax.jit(lambda key: {cid: f(key, shape) for cid, (f, shape) in cases.items()})
    return {cid: np.asarray(v, np.float64) for cid, v in program(KEY).items()}


@pytest.mark.parametrize("cid", list(VARIANCE_CASES))
def test_variance_from_samples(cid):
    _, shape, variance = VARIANCE_CASES[cid]
    w = _samples()[cid]
    assert w.shape == shape
    assert w.std() == pytest.approx(math.sqrt(variance), rel=0.04)
    assert abs(w.mean()) < 4 * math.sqrt(variance / w.size)


def test_rank_one_uniform_limit():
    # he_uniform on (n,): limit sqrt(3 * 2 / n)
    w = _samples()["he_uniform-rank1"]
    limit = math.sqrt(6 / w.size)
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit


def test_truncated_normal_bounds_and_std():
    # a standard normal truncated to [-2, 2] has std 0.8796...; rescaled to std sqrt(var)
    var = 2 / 256
    w = _samples()["truncated"]
    bound = 2 * math.sqrt(var) / 0.87962566103423978
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert np.abs(w).max() > 0.98 * bound
    assert w.std() == pytest.approx(math.sqrt(var), rel=0.02)
    # the untruncated normal reaches past 2 truncated standard deviations
    assert np.abs(_samples()["untruncated"]).max() > 1.3 * bound


def test_zero_sized_fans_do_not_divide_by_zero():
    # variance = scale / max(denominator, 1)
    assert init.glorot_uniform()(KEY, (0, 4)).shape == (0, 4)
    assert init.he_normal()(KEY, (3, 0, 2)).shape == (3, 0, 2)


# ---------------------------------------------------------------------------------------
# uniform / normal


def test_uniform_is_symmetric_around_zero():
    # Axon's uniform is U(-scale, scale); jax.nn.initializers.uniform is U(0, scale)
    scale = 0.05
    w = _samples()["uniform"]
    assert w.min() >= -scale
    assert w.max() < scale
    assert w.min() < -0.99 * scale
    assert w.max() > 0.99 * scale
    assert w.std() == pytest.approx(scale / math.sqrt(3), rel=0.02)
    assert abs(w.mean()) < 4 * scale / math.sqrt(3) / 100


def test_uniform_default_scale():
    w = _samples()["uniform-default"]
    assert np.abs(w).max() <= 0.01
    assert np.abs(w).max() > 0.0099


@pytest.mark.parametrize(("mean", "scale"), NORMAL_CASES)
def test_normal_statistics(mean, scale):
    w = _samples()[f"normal-{mean}-{scale}"]
    assert w.mean() == pytest.approx(mean, abs=4 * scale / math.sqrt(w.size))
    assert w.std() == pytest.approx(scale, rel=0.02)


@pytest.mark.parametrize(
    "factory", [init.uniform(), init.normal(), init.glorot_uniform(), init.orthogonal()]
)
def test_random_initializers_keep_dtype_and_are_deterministic(factory):
    a = factory(KEY, (5, 7), jnp.bfloat16)
    assert a.dtype == jnp.bfloat16
    assert a.shape == (5, 7)
    np.testing.assert_array_equal(_bits(factory(KEY, (5, 7))), _bits(factory(KEY, (5, 7))))
    other = jax.random.key(7, impl="rbg")
    assert not np.array_equal(np.asarray(factory(KEY, (5, 7))), np.asarray(factory(other, (5, 7))))
    assert factory(KEY, (5, 7)).dtype == jnp.float32  # the default


def test_init_functions_work_under_jit():
    f = init.glorot_normal()
    jitted = jax.jit(f, static_argnums=(1, 2))
    _assert_same_bits(jitted(KEY, (5, 7), jnp.float32), f(KEY, (5, 7)))


@pytest.mark.parametrize(
    "factory", [init.uniform(), init.normal(), init.he_uniform(), init.orthogonal()]
)
def test_random_initializers_reject_integer_dtypes(factory):
    with pytest.raises(ValueError, match="floating"):
        factory(KEY, (3, 3), jnp.int32)


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (init.uniform(), "uniform"),
        (init.he_normal(), "he_normal"),
        (init.orthogonal(), "orthogonal"),
    ],
)
def test_random_initializers_need_a_key(factory, name):
    with pytest.raises(ValueError, match=f"{name}: .*PRNG key"):
        factory(None, (3, 3))


# ---------------------------------------------------------------------------------------
# constant initializers


@pytest.mark.parametrize("key", [None, KEY])
def test_constant_initializers_ignore_the_key(key):
    np.testing.assert_array_equal(init.zeros()(key, (2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(init.ones()(key, (4,)), np.ones(4))
    np.testing.assert_array_equal(init.full(2.5)(key, (2, 2)), np.full((2, 2), 2.5))
    np.testing.assert_array_equal(init.identity()(key, (3, 3)), np.eye(3))


def test_constant_initializers_dtypes_and_shapes():
    z = init.zeros()(None, (2, 3), jnp.bfloat16)
    assert z.dtype == jnp.bfloat16
    assert z.shape == (2, 3)
    o = init.ones()(None, (), jnp.int32)
    assert o.dtype == jnp.int32
    assert o.shape == ()
    assert int(o) == 1
    assert init.zeros()(None, (3,)).dtype == jnp.float32
    f = init.full(7)(None, (2,), jnp.int8)
    assert f.dtype == jnp.int8
    assert f.tolist() == [7, 7]
    np.testing.assert_array_equal(init.full([1.0, 2.0, 3.0])(None, (2, 3)), [[1, 2, 3], [1, 2, 3]])
    with pytest.raises(ValueError, match="broadcast"):
        init.full([1.0, 2.0])(None, (2, 3))


def test_identity():
    np.testing.assert_array_equal(init.identity()(None, (2, 4)), np.eye(2, 4))
    np.testing.assert_array_equal(init.identity()(None, (4, 2)), np.eye(4, 2))
    assert init.identity()(None, (3, 3), jnp.bfloat16).dtype == jnp.bfloat16
    for shape in [(), (3,), (2, 2, 2)]:
        with pytest.raises(ValueError, match="rank-2"):
            init.identity()(None, shape)


# ---------------------------------------------------------------------------------------
# orthogonal


# every shape flattens to a (m, n) with max(m, n) = 6, so one QR size is compiled
ORTHO_SHAPES = [(6, 4), (4, 6), (6, 6), (2, 3, 4), (2, 2, 6), (1, 2, 3, 5), (1, 6), (6, 1)]


@pytest.mark.parametrize("shape", ORTHO_SHAPES, ids=str)
@pytest.mark.parametrize("distribution", ["normal", "uniform"])
def test_orthogonal_is_orthonormal(shape, distribution):
    w = init.orthogonal(distribution=distribution)(KEY, shape)
    assert w.shape == shape
    assert w.dtype == jnp.float32
    m = np.asarray(w, np.float64).reshape(-1, shape[-1])
    rows, cols = m.shape
    # tall (or square): orthonormal columns; wide: orthonormal rows
    gram = m.T @ m if rows >= cols else m @ m.T
    np.testing.assert_allclose(gram, np.eye(min(rows, cols)), atol=1e-5)


def test_orthogonal_bfloat16():
    w = init.orthogonal()(KEY, (6, 6), jnp.bfloat16)
    assert w.dtype == jnp.bfloat16
    m = np.asarray(w, np.float64)
    np.testing.assert_allclose(m.T @ m, np.eye(6), atol=5e-2)


def test_orthogonal_is_uniformly_distributed():
    # Haar-distributed orthogonal matrices have E[trace] = 0 and Q[0, 0] symmetric about 0.
    # A plain QR without the sign correction gives a strongly negative trace.
    keys = jax.random.split(jax.random.key(3, impl="rbg"), 2000)
    f = init.orthogonal()
    q = np.asarray(jax.jit(jax.vmap(lambda k: f(k, (6, 6))))(keys), np.float64)
    assert abs(np.trace(q, axis1=1, axis2=2).mean()) < 0.12
    assert 0.45 < (q[:, 0, 0] > 0).mean() < 0.55
    assert np.mean(q**2) == pytest.approx(1 / 6, rel=1e-4)


@pytest.mark.parametrize("shape", [(), (5,)], ids=str)
def test_orthogonal_needs_rank_two(shape):
    with pytest.raises(ValueError, match="rank >= 2"):
        init.orthogonal()(KEY, shape)


# ---------------------------------------------------------------------------------------
# options and lookup


@pytest.mark.parametrize(
    ("make", "option", "value"),
    [
        (lambda: init.variance_scaling(mode="fan_geo_avg"), "mode", "fan_geo_avg"),
        (lambda: init.variance_scaling(mode="in"), "mode", "in"),
        (lambda: init.variance_scaling(distribution="gaussian"), "distribution", "gaussian"),
        (
            lambda: init.orthogonal(distribution="truncated_normal"),
            "distribution",
            "truncated_normal",
        ),
    ],
)
def test_bad_options_raise_at_factory_time(make, option, value):
    with pytest.raises(ValueError) as info:
        make()
    msg = str(info.value)
    assert option in msg
    assert repr(value) in msg
    accepted = (
        MODES
        if option == "mode"
        else (["normal", "uniform"] if "orthogonal" in msg else DISTRIBUTIONS)
    )
    for a in accepted:
        assert repr(a) in msg


@pytest.mark.parametrize(
    "make",
    [
        lambda: init.uniform(scale=-1.0),
        lambda: init.normal(scale=-0.1),
        lambda: init.he_normal(scale=-2.0),
        lambda: init.variance_scaling(scale=-1.0),
    ],
)
def test_negative_scale_raises(make):
    with pytest.raises(ValueError, match="scale"):
        make()


@pytest.mark.parametrize(
    "factory", [init.uniform, init.normal, init.glorot_uniform, init.variance_scaling]
)
def test_options_are_keyword_only(factory):
    with pytest.raises(TypeError):
        factory(0.5)


def test_get_by_name_uses_defaults():
    _assert_same_bits(
        init.get("glorot_uniform")(KEY, (6, 4)), jax.nn.initializers.glorot_uniform()(KEY, (6, 4))
    )
    np.testing.assert_array_equal(init.get("zeros")(None, (2,)), [0.0, 0.0])
    for name in init.INITIALIZERS:
        shape = (6, 4)
        out = init.get(name)(KEY, shape)
        assert out.shape == shape, name
        assert out.dtype == jnp.float32, name
    # uniform's default scale is Axon's 0.01
    assert float(jnp.abs(init.get("uniform")(KEY, (6, 4))).max()) <= 0.01


def test_get_passes_callables_through():
    jax_init = jax.nn.initializers.he_normal()
    assert init.get(jax_init) is jax_init
    ours = init.orthogonal()
    assert init.get(ours) is ours

    def custom(key, shape, dtype=jnp.float32):
        return jnp.full(shape, 3.0, dtype)

    assert init.get(custom) is custom
    # an uncalled factory is called with its defaults, as its name would be
    _assert_same_bits(
        init.get(init.lecun_normal)(KEY, (6, 4)), jax.nn.initializers.lecun_normal()(KEY, (6, 4))
    )


def test_get_rejects_full_and_unknown_names():
    for value in ("full", init.full):
        with pytest.raises(ValueError, match=r"full\(value\)"):
            init.get(value)
    with pytest.raises(ValueError) as info:
        init.get("xavier_uniform")
    msg = str(info.value)
    assert "'xavier_uniform'" in msg
    listed = msg.split("one of: ")[1].split(", ")
    assert listed == [repr(n) for n in sorted(init.INITIALIZERS)]
    with pytest.raises(TypeError, match="int"):
        init.get(3)


# ---------------------------------------------------------------------------------------
# nameable init functions (saved by axon.serialization as factory name + options)


@pytest.mark.parametrize("name", sorted([*init.INITIALIZERS, "full"]))
def test_init_functions_carry_their_factory_and_options(name):
    factory = getattr(init, name)
    made = factory(0.25) if name == "full" else factory()
    factory_name, options = registry.made_by(made)
    assert factory_name == "axon.initializers." + name
    assert list(options) == list(inspect.signature(factory).parameters)  # defaults included
    _assert_same_bits(made(KEY, (4, 3)), factory(**options)(KEY, (4, 3)))


def test_init_function_options_are_the_given_ones():
    assert registry.made_by(init.uniform(scale=0.1)) == ("axon.initializers.uniform", {"scale": 0.1})
    assert registry.made_by(init.he_normal()) == ("axon.initializers.he_normal", {"scale": 2.0})
    assert registry.made_by(init.full(value=[1.0, 2.0])) == ("axon.initializers.full", {"value": [1.0, 2.0]})
    assert registry.made_by(init.variance_scaling(mode="fan_avg")) == (
        "axon.initializers.variance_scaling",
        {"scale": 1.0, "mode": "fan_avg", "distribution": "normal"},
    )
    # each call makes a new init function with its own options
    a, b = init.normal(mean=1.0), init.normal(mean=2.0)
    assert registry.made_by(a)[1]["mean"] == 1.0 and registry.made_by(b)[1]["mean"] == 2.0
