"""Normalization layers against PyTorch (torch.nn.functional) and numpy formulas."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from axon.layers import batch_norm, group_norm, instance_norm, layer_norm, rms_norm
from axon.values import StatefulOutput

RTOL = 1e-5
ATOL = 1e-5


def _jit(fn, **options):
    """Compile once per test (much faster than eager op-by-op dispatch)."""
    return jax.jit(partial(fn, **options))


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _to_torch_first(x: np.ndarray, channel_index: int) -> np.ndarray:
    """Move the channel axis to position 1 (PyTorch layout)."""
    return np.moveaxis(x, channel_index, 1)


def _from_torch_first(y: np.ndarray, channel_index: int) -> np.ndarray:
    return np.moveaxis(y, 1, channel_index)


SHAPES = [
    ((8, 5), -1),
    ((8, 5), 1),
    ((4, 6, 3), -1),
    ((4, 3, 6), 1),
    ((2, 5, 4, 3), -1),
    ((2, 3, 5, 4), 1),
]


# ----------------------------------------------------------------------------- batch_norm


@pytest.mark.parametrize(("shape", "channel_index"), SHAPES)
def test_batch_norm_train_matches_torch(shape, channel_index, torch):
    F = torch.nn.functional
    rng = _rng(1)
    x = (rng.normal(size=shape) * 3.0 + 1.5).astype(np.float32)
    c = shape[channel_index]
    gamma = rng.normal(size=c).astype(np.float32)
    beta = rng.normal(size=c).astype(np.float32)
    mean = rng.normal(size=c).astype(np.float32)
    var = rng.uniform(0.5, 2.0, size=c).astype(np.float32)

    bn = _jit(batch_norm, channel_index=channel_index, momentum=0.1, mode="train")
    out = bn(jnp.asarray(x), gamma, beta, mean, var)
    assert isinstance(out, StatefulOutput)

    t_mean, t_var = torch.tensor(mean), torch.tensor(var)
    expected = F.batch_norm(
        torch.tensor(_to_torch_first(x, channel_index)),
        t_mean,
        t_var,
        torch.tensor(gamma),
        torch.tensor(beta),
        training=True,
        momentum=0.1,
        eps=1e-5,
    ).numpy()
    np.testing.assert_allclose(
        np.asarray(out.output), _from_torch_first(expected, channel_index), rtol=1e-4, atol=1e-4
    )
    # torch updated its running stats in place (unbiased variance, PyTorch momentum).
    np.testing.assert_allclose(np.asarray(out.state["mean"]), t_mean.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(np.asarray(out.state["var"]), t_var.numpy(), rtol=RTOL, atol=ATOL)


def test_batch_norm_running_stats_formula():
    # Hand-worked: channel values [0, 2, 4] -> batch mean 2, unbiased var 4.
    x = jnp.array([[0.0], [2.0], [4.0]])
    out = batch_norm(
        x, None, None, jnp.array([10.0]), jnp.array([1.0]), momentum=0.25, mode="train"
    )
    np.testing.assert_allclose(np.asarray(out.state["mean"]), [0.75 * 10.0 + 0.25 * 2.0])
    np.testing.assert_allclose(np.asarray(out.state["var"]), [0.75 * 1.0 + 0.25 * 4.0])
    # normalization uses the biased variance 8/3
    np.testing.assert_allclose(
        np.asarray(out.output)[:, 0],
        (np.array([0.0, 2.0, 4.0]) - 2.0) / np.sqrt(8 / 3 + 1e-5),
        rtol=1e-6,
    )


@pytest.mark.parametrize(("shape", "channel_index"), SHAPES)
def test_batch_norm_inference_matches_torch(shape, channel_index, torch):
    F = torch.nn.functional
    rng = _rng(2)
    x = rng.normal(size=shape).astype(np.float32)
    c = shape[channel_index]
    gamma, beta, mean = (rng.normal(size=c).astype(np.float32) for _ in range(3))
    var = rng.uniform(0.5, 2.0, size=c).astype(np.float32)
    y = _jit(batch_norm, channel_index=channel_index)(jnp.asarray(x), gamma, beta, mean, var)
    assert isinstance(y, jax.Array)
    expected = F.batch_norm(
        torch.tensor(_to_torch_first(x, channel_index)),
        torch.tensor(mean),
        torch.tensor(var),
        torch.tensor(gamma),
        torch.tensor(beta),
        training=False,
        eps=1e-5,
    ).numpy()
    np.testing.assert_allclose(
        np.asarray(y), _from_torch_first(expected, channel_index), rtol=RTOL, atol=ATOL
    )


def test_batch_norm_none_gamma_beta_equal_identity_affine():
    x = jnp.asarray(_rng(3).normal(size=(6, 4)), dtype=jnp.float32)
    m, v = jnp.zeros(4), jnp.ones(4)
    a = batch_norm(x, None, None, m, v, mode="train")
    b = batch_norm(x, jnp.ones(4), jnp.zeros(4), m, v, mode="train")
    np.testing.assert_allclose(np.asarray(a.output), np.asarray(b.output), rtol=1e-6)


def test_batch_norm_jit_and_grad_finite():
    x = jnp.asarray(_rng(4).normal(size=(8, 3)), dtype=jnp.float32)

    @jax.jit
    def loss(x, g, b):
        out = batch_norm(x, g, b, jnp.zeros(3), jnp.ones(3), mode="train")
        return jnp.sum(out.output**3)

    grads = jax.grad(loss, argnums=(0, 1, 2))(x, jnp.ones(3), jnp.zeros(3))
    assert all(bool(jnp.isfinite(g).all()) for g in grads)


def test_batch_norm_bf16_dtype_and_accuracy():
    rng = _rng(5)
    x32 = (rng.normal(size=(4096, 4)) + 3.0).astype(np.float32)
    xb = jnp.asarray(x32, dtype=jnp.bfloat16)
    mean, var = jnp.zeros(4, jnp.float32), jnp.ones(4, jnp.bfloat16)
    out = _jit(batch_norm, mode="train")(xb, None, None, mean, var)
    assert out.output.dtype == jnp.bfloat16
    assert out.state["mean"].dtype == jnp.float32
    assert out.state["var"].dtype == jnp.bfloat16
    xq = np.asarray(xb.astype(jnp.float32), dtype=np.float64)  # the values actually given
    ref = (xq - xq.mean(0)) / np.sqrt(xq.var(0) + 1e-5)
    np.testing.assert_allclose(np.asarray(out.output, dtype=np.float64), ref, atol=0.03, rtol=0.01)
    np.testing.assert_allclose(np.asarray(out.state["mean"]), 0.1 * xq.mean(0), rtol=1e-4)


def test_batch_norm_errors():
    x = jnp.ones((4, 3))
    with pytest.raises(ValueError, match="mode"):
        batch_norm(x, None, None, jnp.zeros(3), jnp.ones(3), mode="training")
    with pytest.raises(ValueError, match=r"gamma.*\(3,\)"):
        batch_norm(x, jnp.ones(4), None, jnp.zeros(3), jnp.ones(3))
    with pytest.raises(ValueError, match="channel_index"):
        batch_norm(x, None, None, jnp.zeros(3), jnp.ones(3), channel_index=2)


# -------------------------------------------------------------------------- instance_norm


@pytest.mark.parametrize(("shape", "channel_index"), [s for s in SHAPES if len(s[0]) >= 3])
def test_instance_norm_train_matches_torch(shape, channel_index, torch):
    F = torch.nn.functional
    rng = _rng(6)
    x = (rng.normal(size=shape) * 2.0 - 1.0).astype(np.float32)
    c = shape[channel_index]
    gamma, beta, mean = (rng.normal(size=c).astype(np.float32) for _ in range(3))
    var = rng.uniform(0.5, 2.0, size=c).astype(np.float32)
    inorm = _jit(instance_norm, channel_index=channel_index, mode="train")
    out = inorm(jnp.asarray(x), gamma, beta, mean, var)
    t_mean, t_var = torch.tensor(mean), torch.tensor(var)
    expected = F.instance_norm(
        torch.tensor(_to_torch_first(x, channel_index)),
        running_mean=t_mean,
        running_var=t_var,
        weight=torch.tensor(gamma),
        bias=torch.tensor(beta),
        use_input_stats=True,
        momentum=0.1,
        eps=1e-5,
    ).numpy()
    np.testing.assert_allclose(
        np.asarray(out.output), _from_torch_first(expected, channel_index), rtol=1e-4, atol=1e-4
    )
    assert out.state["mean"].shape == (c,) and out.state["var"].shape == (c,)
    np.testing.assert_allclose(np.asarray(out.state["mean"]), t_mean.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(np.asarray(out.state["var"]), t_var.numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("shape", "channel_index"), [((3, 7, 4), -1), ((2, 4, 5, 5), 1)])
def test_instance_norm_inference_matches_torch(shape, channel_index, torch):
    F = torch.nn.functional
    rng = _rng(7)
    x = rng.normal(size=shape).astype(np.float32)
    c = shape[channel_index]
    gamma, beta, mean = (rng.normal(size=c).astype(np.float32) for _ in range(3))
    var = rng.uniform(0.5, 2.0, size=c).astype(np.float32)
    y = _jit(instance_norm, channel_index=channel_index)(jnp.asarray(x), gamma, beta, mean, var)
    expected = F.instance_norm(
        torch.tensor(_to_torch_first(x, channel_index)),
        running_mean=torch.tensor(mean),
        running_var=torch.tensor(var),
        weight=torch.tensor(gamma),
        bias=torch.tensor(beta),
        use_input_stats=False,
        eps=1e-5,
    ).numpy()
    np.testing.assert_allclose(
        np.asarray(y), _from_torch_first(expected, channel_index), rtol=RTOL, atol=ATOL
    )


def test_instance_norm_requires_rank_3():
    with pytest.raises(ValueError, match="rank at least 3"):
        instance_norm(jnp.ones((2, 3)), None, None, jnp.zeros(3), jnp.ones(3))


# ----------------------------------------------------------------------------- layer_norm


@pytest.mark.parametrize(
    ("shape", "channel_index"), [((4, 7), -1), ((2, 3, 6), -1), ((2, 6, 3), 1)]
)
def test_layer_norm_matches_torch(shape, channel_index, torch):
    F = torch.nn.functional
    rng = _rng(8)
    x = (rng.normal(size=shape) * 4 + 2).astype(np.float32)
    c = shape[channel_index]
    gamma, beta = rng.normal(size=c).astype(np.float32), rng.normal(size=c).astype(np.float32)
    y = _jit(layer_norm, channel_index=channel_index)(jnp.asarray(x), gamma, beta)
    xt = torch.tensor(np.moveaxis(x, channel_index, -1))
    expected = F.layer_norm(xt, (c,), torch.tensor(gamma), torch.tensor(beta), eps=1e-5).numpy()
    np.testing.assert_allclose(
        np.asarray(y), np.moveaxis(expected, -1, channel_index), rtol=RTOL, atol=ATOL
    )


def test_layer_norm_bf16():
    x32 = (_rng(9).normal(size=(8, 2048)) + 5.0).astype(np.float32)
    xb = jnp.asarray(x32, dtype=jnp.bfloat16)
    y = _jit(layer_norm)(xb, None, None)
    assert y.dtype == jnp.bfloat16
    xq = np.asarray(xb.astype(jnp.float32), dtype=np.float64)
    ref = (xq - xq.mean(-1, keepdims=True)) / np.sqrt(xq.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(np.asarray(y, dtype=np.float64), ref, atol=0.03, rtol=0.01)


# ----------------------------------------------------------------------------- group_norm


@pytest.mark.parametrize(
    ("shape", "channel_index", "groups"),
    [
        ((3, 8), -1, 4),
        ((2, 5, 6), -1, 3),
        ((2, 6, 5), 1, 2),
        ((2, 4, 4, 8), -1, 2),
        ((2, 8, 3, 3), 1, 8),
    ],
)
def test_group_norm_matches_torch(shape, channel_index, groups, torch):
    F = torch.nn.functional
    rng = _rng(10)
    x = (rng.normal(size=shape) * 2 - 1).astype(np.float32)
    c = shape[channel_index]
    gamma, beta = rng.normal(size=c).astype(np.float32), rng.normal(size=c).astype(np.float32)
    gn = _jit(group_norm, num_groups=groups, channel_index=channel_index)
    y = gn(jnp.asarray(x), gamma, beta)
    expected = F.group_norm(
        torch.tensor(_to_torch_first(x, channel_index)),
        groups,
        torch.tensor(gamma),
        torch.tensor(beta),
        eps=1e-5,
    ).numpy()
    np.testing.assert_allclose(
        np.asarray(y), _from_torch_first(expected, channel_index), rtol=1e-4, atol=1e-5
    )


def test_group_norm_bf16_and_errors(torch):
    F = torch.nn.functional
    x32 = (_rng(11).normal(size=(2, 32, 32, 8)) - 4.0).astype(np.float32)
    xb = jnp.asarray(x32, dtype=jnp.bfloat16)
    y = group_norm(xb, jnp.ones(8, jnp.bfloat16), jnp.zeros(8, jnp.bfloat16), num_groups=2)
    assert y.dtype == jnp.bfloat16
    xq = torch.tensor(np.moveaxis(np.asarray(xb.astype(jnp.float32)), -1, 1), dtype=torch.float64)
    ref = np.moveaxis(F.group_norm(xq, 2, eps=1e-5).numpy(), 1, -1)
    np.testing.assert_allclose(np.asarray(y, dtype=np.float64), ref, atol=0.03, rtol=0.01)
    with pytest.raises(ValueError, match="num_groups"):
        group_norm(jnp.ones((2, 6)), None, None, num_groups=4)


# ------------------------------------------------------------------------------- rms_norm


def _rms_ref(x, gamma, eps, shift, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    return x / np.sqrt(np.mean(x**2, axis=axis, keepdims=True) + eps) * (shift + gamma)


@pytest.mark.parametrize(
    ("shift", "upcast"), [(0.0, "normalization"), (1.0, "all"), (0.5, "normalization")]
)
def test_rms_norm_matches_formula(shift, upcast):
    rng = _rng(12)
    x = rng.normal(size=(3, 4, 10)).astype(np.float32)
    gamma = rng.normal(size=10).astype(np.float32)
    y = _jit(rms_norm, shift=shift, upcast=upcast)(jnp.asarray(x), gamma)
    np.testing.assert_allclose(np.asarray(y), _rms_ref(x, gamma, 1e-6, shift), rtol=1e-5, atol=1e-6)


def test_rms_norm_channel_first():
    rng = _rng(13)
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    gamma = rng.normal(size=5).astype(np.float32)
    y = rms_norm(jnp.asarray(x), gamma, channel_index=1, epsilon=1e-3)
    ref = _rms_ref(x, gamma[None, :, None], 1e-3, 0.0, axis=1)
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-5, atol=1e-6)


def test_rms_norm_matches_torch(torch):
    F = torch.nn.functional
    if not hasattr(F, "rms_norm"):
        pytest.skip("torch without rms_norm")
    rng = _rng(14)
    x = rng.normal(size=(4, 16)).astype(np.float32)
    gamma = rng.normal(size=16).astype(np.float32)
    y = rms_norm(jnp.asarray(x), gamma, epsilon=1e-6)
    expected = F.rms_norm(torch.tensor(x), (16,), torch.tensor(gamma), eps=1e-6).numpy()
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("upcast", ["normalization", "all"])
def test_rms_norm_bf16(upcast):
    rng = _rng(15)
    x = jnp.asarray(rng.normal(size=(4, 1024)) * 30.0, dtype=jnp.bfloat16)
    gamma = jnp.asarray(rng.uniform(0.5, 1.5, size=1024), dtype=jnp.bfloat16)
    y = _jit(rms_norm, upcast=upcast, shift=1.0)(x, gamma)
    assert y.dtype == jnp.bfloat16
    ref = _rms_ref(
        np.asarray(x.astype(jnp.float32)), np.asarray(gamma.astype(jnp.float32)), 1e-6, 1.0
    )
    np.testing.assert_allclose(np.asarray(y, dtype=np.float64), ref, rtol=0.02, atol=0.02)
    with pytest.raises(ValueError, match="upcast"):
        rms_norm(x, gamma, upcast="none")
