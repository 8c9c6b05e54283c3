"""Tests for axon.activations against PyTorch, jax.nn, scipy and hand-computed values."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf, logsumexp

from axon import activations as act

SHAPES = [(7,), (3, 5), (2, 3, 4)]
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_GAMMA = 1.0507009873554804934193349852946


def _np_softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _np_hard_sigmoid(x, alpha, beta):
    return np.clip(alpha * x + beta, 0.0, 1.0)


# name -> (kwargs for axon, torch reference taking torch.nn.functional and a float64 tensor)
TORCH_REFS = {
    "celu": ({}, lambda F, t: F.celu(t)),
    "elu": ({}, lambda F, t: F.elu(t)),
    "exp": ({}, lambda F, t: t.exp()),
    "gelu": ({}, lambda F, t: F.gelu(t, approximate="none")),
    "hard_sigmoid": ({"alpha": 1 / 6}, lambda F, t: F.hardsigmoid(t)),
    "hard_silu": ({"alpha": 1 / 6}, lambda F, t: F.hardswish(t)),
    "hard_tanh": ({}, lambda F, t: F.hardtanh(t)),
    "leaky_relu": ({}, lambda F, t: F.leaky_relu(t, 0.01)),
    "linear": ({}, lambda F, t: t),
    "log_sumexp": ({}, lambda F, t: t.logsumexp(dim=-1, keepdim=True)),
    "log_sigmoid": ({}, lambda F, t: F.logsigmoid(t)),
    "log_softmax": ({}, lambda F, t: F.log_softmax(t, dim=-1)),
    "mish": ({}, lambda F, t: F.mish(t)),
    "relu": ({}, lambda F, t: F.relu(t)),
    "relu6": ({}, lambda F, t: F.relu6(t)),
    "sigmoid": ({}, lambda F, t: t.sigmoid()),
    "silu": ({}, lambda F, t: F.silu(t)),
    "selu": ({}, lambda F, t: F.selu(t)),
    "softmax": ({}, lambda F, t: F.softmax(t, dim=-1)),
    "softplus": ({}, lambda F, t: F.softplus(t)),
    "softsign": ({}, lambda F, t: F.softsign(t)),
    "tanh": ({}, lambda F, t: t.tanh()),
}

# name -> jax.nn reference, where jax.nn has the same function and defaults
JAX_REFS = {
    "celu": jax.nn.celu,
    "elu": jax.nn.elu,
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "hard_tanh": jax.nn.hard_tanh,
    "log_sumexp": lambda x: jax.nn.logsumexp(x, axis=-1, keepdims=True),
    "log_sigmoid": jax.nn.log_sigmoid,
    "log_softmax": jax.nn.log_softmax,
    "mish": jax.nn.mish,
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "sigmoid": jax.nn.sigmoid,
    "silu": jax.nn.silu,
    "selu": jax.nn.selu,
    "softmax": jax.nn.softmax,
    "softplus": jax.nn.softplus,
    "softsign": jax.nn.soft_sign,
}


def _input(shape, seed=0, scale=3.0):
    x = np.random.default_rng(seed).normal(size=shape) * scale
    # keep away from the kinks (0, ±1, ±2.5 for hard_sigmoid with alpha=0.2, ±3, 6) so that
    # finite-precision inputs never sit on a point where the derivative is undefined
    for kink in (0.0, 1.0, -1.0, 2.5, -2.5, 3.0, -3.0, 6.0):
        near = np.abs(x - kink) < 1e-3
        x[near] += 0.01
    return x.astype(np.float32)


def _torch_value_and_vjp(torch, ref, x, cotangent):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = ref(torch.nn.functional, t)
    (y * torch.tensor(cotangent, dtype=torch.float64)).sum().backward()
    return y.detach().numpy(), t.grad.numpy()


AXISWISE = ("softmax", "log_softmax", "log_sumexp")

# Compiling is what costs time here, so each group of checks below is computed by one
# jitted program (built on first use and cached) and the parametrized tests read from it.


@functools.cache
def _results():
    """Per activation: f32 values and VJPs for three ranks (ours and jax.nn's), vmap, bf16."""
    xs = [_input(shape, seed=i) for i, shape in enumerate(SHAPES)]
    cots = {}
    for name in act.ACTIVATIONS:
        out_shapes = [(*s[:-1], 1) if name == "log_sumexp" else s for s in SHAPES]
        cots[name] = [
            np.random.default_rng(10 + i).normal(size=s).astype(np.float32)
            for i, s in enumerate(out_shapes)
        ]

    def one(name, xs, cots):
        fn = functools.partial(act.ACTIVATIONS[name], **TORCH_REFS[name][0])
        jref = JAX_REFS.get(name)
        res = {"y": [], "g": [], "y_ref": [], "g_ref": []}
        for x, c in zip(xs, cots, strict=True):
            y, vjp = jax.vjp(fn, x)
            res["y"].append(y)
            res["g"].append(vjp(c)[0])
            if jref is not None and x.ndim == 3:
                y, vjp = jax.vjp(jref, x)
                res["y_ref"].append(y)
                res["g_ref"].append(vjp(c)[0])
        if name not in AXISWISE:
            res["vmap"] = jax.vmap(fn)(xs[1])
        x16 = xs[1].astype(jnp.bfloat16)
        res["y16"] = fn(x16)
        res["y16_as_f32"] = fn(x16.astype(jnp.float32))
        return res

    program = jax.jit(lambda xs, cots: {n: one(n, xs, cots[n]) for n in act.ACTIVATIONS})
    res = program([jnp.asarray(x) for x in xs], jax.tree.map(jnp.asarray, cots))
    dtypes = {n: r["y16"].dtype for n, r in res.items()}
    return xs, cots, jax.tree.map(np.asarray, res), dtypes


@pytest.mark.parametrize("name", sorted(TORCH_REFS))
def test_forward_and_gradient_match_torch(name, torch):
    xs, cots, res, _ = _results()
    ref = TORCH_REFS[name][1]
    r = res[name]
    for x, c, y, g in zip(xs, cots[name], r["y"], r["g"], strict=True):
        ty, tg = _torch_value_and_vjp(torch, ref, x, c)
        assert y.shape == ty.shape
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, ty, rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(g, tg, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("name", sorted(JAX_REFS))
def test_forward_and_gradient_match_jax_nn(name):
    r = _results()[2][name]
    assert len(r["y_ref"]) == 1  # rank 3 only; the torch test covers every rank
    for y, g, y_ref, g_ref in zip(r["y"][2:], r["g"][2:], r["y_ref"], r["g_ref"], strict=True):
        np.testing.assert_allclose(y, y_ref, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(set(act.ACTIVATIONS) - set(AXISWISE)))
def test_vmap_agrees_with_batched_call(name):
    r = _results()[2][name]
    np.testing.assert_allclose(r["vmap"], r["y"][1], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(act.ACTIVATIONS))
def test_bfloat16_in_bfloat16_out(name):
    _, _, res, dtypes = _results()
    assert dtypes[name] == jnp.bfloat16
    r = res[name]
    np.testing.assert_allclose(r["y16"].astype(np.float32), r["y16_as_f32"], rtol=3e-2, atol=3e-2)


def test_hand_computed_values():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0], np.float32)

    @jax.jit
    def program(x):
        return {
            "gelu": act.gelu(x),
            "hard_sigmoid": act.hard_sigmoid(x),
            "hard_silu": act.hard_silu(x),
            "hard_tanh": act.hard_tanh(x),
            "softsign": act.softsign(x),
            "leaky_relu": act.leaky_relu(x),
            "relu6": act.relu6(x * 3.5),
            "exp": act.exp(x),
            "selu": act.selu(x),
            "log_sumexp": act.log_sumexp(jnp.log(jnp.array([[1.0, 3.0]]))),
        }

    out = program(jnp.asarray(x))
    close = np.testing.assert_allclose
    close(out["gelu"], x * (1 + erf(x / math.sqrt(2))) / 2, rtol=1e-6, atol=1e-7)
    close(out["hard_sigmoid"], [0.1, 0.4, 0.5, 0.6, 0.9], rtol=1e-6)
    close(out["hard_silu"], [-0.2, -0.2, 0.0, 0.3, 1.8], rtol=1e-6)
    close(out["hard_tanh"], [-1.0, -0.5, 0.0, 0.5, 1.0])
    close(out["softsign"], [-2 / 3, -1 / 3, 0.0, 1 / 3, 2 / 3], rtol=1e-6)
    close(out["leaky_relu"], [-0.02, -0.005, 0.0, 0.5, 2.0], rtol=1e-6)
    close(out["relu6"], [0.0, 0.0, 0.0, 1.75, 6.0])
    close(out["exp"], np.exp(x), rtol=1e-6)
    close(out["selu"], SELU_GAMMA * np.where(x > 0, x, SELU_ALPHA * np.expm1(x)), rtol=1e-6)
    close(out["log_sumexp"], [[math.log(4.0)]], rtol=1e-6)
    xj = jnp.asarray(x)
    assert act.linear(xj) is xj


def test_hard_sigmoid_uses_keras_defaults_not_axons_beta():
    # Axon's beta=0.2 would give 0.2 at the origin; the decided definition is centred.
    assert float(act.hard_sigmoid(jnp.array(0.0))) == 0.5
    assert float(act.hard_sigmoid(jnp.array(0.0), beta=0.2)) == pytest.approx(0.2)
    x = _input((20,))
    np.testing.assert_allclose(
        act.hard_sigmoid(jnp.asarray(x), alpha=0.3, beta=0.4),
        _np_hard_sigmoid(x, 0.3, 0.4),
        rtol=1e-6,
        atol=1e-7,
    )
    np.testing.assert_allclose(
        act.hard_silu(jnp.asarray(x), alpha=0.3, beta=0.4),
        x * _np_hard_sigmoid(x, 0.3, 0.4),
        rtol=1e-6,
        atol=1e-7,
    )


OPTION_VARIANTS = [
    ("celu", {"alpha": 0.5}, lambda F, t: F.celu(t, 0.5)),
    ("celu", {"alpha": 2.0}, lambda F, t: F.celu(t, 2.0)),
    ("celu", {"alpha": -1.5}, lambda F, t: F.celu(t, -1.5)),
    ("elu", {"alpha": 0.5}, lambda F, t: F.elu(t, 0.5)),
    ("elu", {"alpha": 2.0}, lambda F, t: F.elu(t, 2.0)),
    ("leaky_relu", {"alpha": 0.2}, lambda F, t: F.leaky_relu(t, 0.2)),
    ("leaky_relu", {"alpha": 1.5}, lambda F, t: F.leaky_relu(t, 1.5)),
    ("selu", {"alpha": 1.0, "gamma": 2.0}, lambda F, t: 2.0 * F.elu(t, 1.0)),
    ("selu", {"alpha": 0.5, "gamma": 1.0}, lambda F, t: F.elu(t, 0.5)),
    ("softmax", {"axis": 0}, lambda F, t: F.softmax(t, dim=0)),
    ("softmax", {"axis": -2}, lambda F, t: F.softmax(t, dim=-2)),
    ("softmax", {"axis": 2}, lambda F, t: F.softmax(t, dim=2)),
    ("log_softmax", {"axis": 0}, lambda F, t: F.log_softmax(t, dim=0)),
    ("log_softmax", {"axis": 1}, lambda F, t: F.log_softmax(t, dim=1)),
    ("log_sumexp", {"axis": 0}, lambda F, t: t.logsumexp(dim=0, keepdim=True)),
    ("log_sumexp", {"axis": (0, 2)}, lambda F, t: t.logsumexp(dim=(0, 2), keepdim=True)),
]


@functools.cache
def _option_results():
    x = _input((2, 3, 4), seed=4)

    def program(x, cots):
        out = []
        for (name, kwargs, _), c in zip(OPTION_VARIANTS, cots, strict=True):
            y, vjp = jax.vjp(functools.partial(act.ACTIVATIONS[name], **kwargs), x)
            out.append((y, vjp(c)[0]))
        return out

    shapes = [
        jax.eval_shape(functools.partial(act.ACTIVATIONS[n], **k), x) for n, k, _ in OPTION_VARIANTS
    ]
    rng = np.random.default_rng(5)
    cots = [rng.normal(size=s.shape).astype(np.float32) for s in shapes]
    res = jax.jit(program)(jnp.asarray(x), [jnp.asarray(c) for c in cots])
    return x, cots, jax.tree.map(np.asarray, res)


@pytest.mark.parametrize(
    "index",
    range(len(OPTION_VARIANTS)),
    ids=lambda i: f"{OPTION_VARIANTS[i][0]}-{OPTION_VARIANTS[i][1]}",
)
def test_option_variants_match_torch(index, torch):
    x, cots, res = _option_results()
    y, grad = res[index]
    ty, tgrad = _torch_value_and_vjp(torch, OPTION_VARIANTS[index][2], x, cots[index])
    np.testing.assert_allclose(y, ty, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(grad, tgrad, rtol=2e-5, atol=2e-5)


TUPLE_AXES = [(0, 1), (1, 2), (-1, 0), (0, 1, 2), [2, 1]]


def test_tuple_axes_match_numpy_and_scipy():
    x = _input((2, 3, 4), seed=6).astype(np.float64)

    @jax.jit
    def program(x):
        return [
            (act.softmax(x, axis=a), act.log_softmax(x, axis=a), act.log_sumexp(x, axis=a))
            for a in TUPLE_AXES
        ]

    for axis, (sm, lsm, lse) in zip(TUPLE_AXES, program(jnp.asarray(x, jnp.float32)), strict=True):
        ax = tuple(axis)
        np.testing.assert_allclose(sm, _np_softmax(x, ax), rtol=1e-5, atol=1e-7)
        # the softmax over several axes sums to one over those axes
        np.testing.assert_allclose(np.sum(np.asarray(sm), axis=ax), 1.0, rtol=1e-6)
        ref = logsumexp(x, axis=ax, keepdims=True)
        np.testing.assert_allclose(lsm, x - ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(lse, ref, rtol=1e-6)
        assert lse.shape == ref.shape


def test_softmax_family_is_stable_for_large_logits():
    x = jnp.array([[1000.0, 0.0, -1000.0], [-1e30, 1e30, 0.0]])

    @jax.jit
    def program(x):
        grads = [
            jax.grad(lambda v, fn=fn: jnp.sum(fn(v)[..., :1]))(x)
            for fn in (act.softmax, act.log_softmax, act.log_sumexp)
        ]
        return {
            "softmax": act.softmax(x),
            "log_softmax": act.log_softmax(x),
            "lse_big": act.log_sumexp(jnp.array([1000.0, 1000.0])),
            "lse_neg_inf": act.log_sumexp(jnp.array([-jnp.inf, -jnp.inf])),
            "grads": grads,
            "lse_grad": jax.grad(lambda v: act.log_sumexp(v)[0])(jnp.array([1.0, 2.0, 3.0])),
        }

    out = program(x)
    np.testing.assert_allclose(out["softmax"], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(out["log_softmax"][0], [0.0, -1000.0, -2000.0])
    np.testing.assert_allclose(out["lse_big"], [1000.0 + math.log(2.0)], rtol=1e-7)
    for g in out["grads"]:
        assert bool(jnp.all(jnp.isfinite(g)))
    # an all -inf slice: log_sumexp is -inf (as scipy), not NaN
    assert float(out["lse_neg_inf"][0]) == -math.inf
    # the max shift cancels exactly, so the gradient is still the softmax
    np.testing.assert_allclose(
        out["lse_grad"], _np_softmax(np.array([1.0, 2.0, 3.0]), -1), rtol=1e-6
    )


def test_elementwise_functions_are_stable_for_large_inputs():
    names = ("celu", "elu", "selu", "softplus", "log_sigmoid", "mish", "silu", "sigmoid")

    @jax.jit
    def program(x):
        return {
            "values": {n: act.ACTIVATIONS[n](x) for n in names},
            "grads": {n: jax.vmap(jax.grad(act.ACTIVATIONS[n]))(x) for n in names},
            "celu_half": jax.vmap(jax.grad(lambda v: act.celu(v, alpha=0.5)))(x),
        }

    out = program(jnp.array([-1000.0, -100.0, 100.0, 1000.0]))
    v = out["values"]
    np.testing.assert_allclose(v["softplus"], [0.0, 0.0, 100.0, 1000.0], atol=1e-30)
    np.testing.assert_allclose(v["log_sigmoid"], [-1000.0, -100.0, 0.0, 0.0], atol=1e-30)
    np.testing.assert_allclose(v["sigmoid"], [0.0, 0.0, 1.0, 1.0], atol=1e-30)
    np.testing.assert_allclose(v["mish"], [0.0, 0.0, 100.0, 1000.0], atol=1e-30)
    for name, g in out["grads"].items():
        assert bool(jnp.all(jnp.isfinite(g))), (name, g)
    np.testing.assert_allclose(out["grads"]["elu"], [0.0, 0.0, 1.0, 1.0], atol=1e-30)
    np.testing.assert_allclose(out["celu_half"], [0.0, 0.0, 1.0, 1.0], atol=1e-30)


def test_gradients_at_kinks():
    @jax.jit
    def program():
        def d(f, at):
            return jax.grad(f)(jnp.float32(at))

        return {
            "relu@0": d(act.relu, 0.0),  # Axon: 0 at x <= 0
            "relu@1e-3": d(act.relu, 1e-3),
            "relu6@0": d(act.relu6, 0.0),
            "relu6@6": d(act.relu6, 6.0),
            "relu6@3": d(act.relu6, 3.0),
            # x > 0 selects the identity branch, so at 0 the slope is alpha (as in PyTorch)
            "leaky_relu@0": d(lambda v: act.leaky_relu(v, alpha=0.3), 0.0),
            "softplus@0": d(act.softplus, 0.0),
            "softsign@0": d(act.softsign, 0.0),
            "celu@0": d(act.celu, 0.0),
            "relu(nan)": act.relu(jnp.float32(jnp.nan)),
        }

    out = {k: float(v) for k, v in program().items()}
    assert out["relu@0"] == 0.0
    assert out["relu@1e-3"] == 1.0
    assert out["relu6@0"] == 0.0
    assert out["relu6@6"] == 0.0
    assert out["relu6@3"] == 1.0
    assert out["leaky_relu@0"] == pytest.approx(0.3)
    assert out["softplus@0"] == pytest.approx(0.5)
    assert out["softsign@0"] == pytest.approx(1.0)
    assert out["celu@0"] == pytest.approx(1.0)
    # NaN propagates through relu rather than being masked to 0
    assert math.isnan(out["relu(nan)"])


ARRAY_OPTIONS = [
    ("celu", {"alpha": 2.0}),
    ("elu", {"alpha": 0.5}),
    ("leaky_relu", {"alpha": 0.1}),
    ("selu", {"alpha": 1.5, "gamma": 1.1}),
    ("hard_sigmoid", {"alpha": 0.3, "beta": 0.4}),
]


def test_array_options_keep_dtype_and_work_under_jit():
    x32 = jnp.asarray(_input((5,), seed=8))
    x16 = x32.astype(jnp.bfloat16)

    @jax.jit
    def program(opts):
        out = []
        for (name, _), kw in zip(ARRAY_OPTIONS, opts, strict=True):
            fn = act.ACTIVATIONS[name]
            out.append((fn(x16, **kw), fn(x32, **kw)))
        return out

    opts = [{k: jnp.asarray(v, jnp.float32) for k, v in kw.items()} for _, kw in ARRAY_OPTIONS]
    for (name, kw), (y16, y32) in zip(ARRAY_OPTIONS, program(opts), strict=True):
        assert y16.dtype == jnp.bfloat16, name
        np.testing.assert_allclose(y32, act.ACTIVATIONS[name](x32, **kw), rtol=1e-6)


def test_integer_inputs_are_promoted_to_float():
    x = jnp.array([-1, 0, 2])
    assert act.sigmoid(x).dtype == jnp.float32
    assert act.relu(x).dtype == jnp.float32
    np.testing.assert_allclose(
        act.softmax(x), _np_softmax(np.array([-1.0, 0.0, 2.0]), -1), rtol=1e-6
    )


@pytest.mark.parametrize("alpha", [0.0, 0, np.float32(0.0), jnp.array(0.0)], ids=repr)
def test_celu_rejects_zero_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        act.celu(jnp.ones(3), alpha=alpha)


def test_numpy_scalar_options_do_not_promote_dtype():
    x = jnp.ones(3, jnp.bfloat16)
    assert act.elu(x, alpha=np.float64(0.5)).dtype == jnp.bfloat16
    assert act.leaky_relu(x, alpha=np.float32(0.1)).dtype == jnp.bfloat16
    assert act.selu(x, gamma=np.float64(1.1)).dtype == jnp.bfloat16


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "log_sumexp"])
@pytest.mark.parametrize("axis", [2, -3, (0, 0), (0, 5), (), 1.0])
def test_bad_axis_raises(name, axis):
    with pytest.raises(ValueError, match=name):
        act.ACTIVATIONS[name](jnp.ones((2, 3)), axis=axis)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("celu", 2.0),
        ("elu", 2.0),
        ("leaky_relu", 0.1),
        ("selu", 1.0),
        ("softmax", 0),
        ("hard_sigmoid", 0.1),
    ],
)
def test_options_are_keyword_only(name, value):
    with pytest.raises(TypeError):
        act.ACTIVATIONS[name](jnp.ones((2, 3)), value)


def test_get_passes_callables_through_and_rejects_unknown_names():
    def custom(x):
        return x * 2

    assert act.get(custom) is custom
    assert act.get("gelu") is act.gelu
    with pytest.raises(ValueError) as info:
        act.get("sofmax")
    msg = str(info.value)
    assert "'sofmax'" in msg
    listed = msg.split("one of: ")[1].split(", ")
    assert listed == [repr(n) for n in sorted(act.ACTIVATIONS)]
    with pytest.raises(TypeError, match="int"):
        act.get(3)
