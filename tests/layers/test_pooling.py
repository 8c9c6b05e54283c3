"""Functional pooling layers against the seed's examples, PyTorch and NumPy references."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from axon import layers

RNG = np.random.default_rng(4321)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def t(a):
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.ascontiguousarray(np.asarray(a, dtype=np.float32)))


def to_last(a) -> np.ndarray:
    return np.moveaxis(np.asarray(a), 1, -1)


def to_first(a) -> np.ndarray:
    return np.moveaxis(np.asarray(a), -1, 1)


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def torch_pad(x: np.ndarray, pads, value: float = 0.0):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    flat = [p for lo_hi in reversed(pads) for p in lo_hi]
    return F.pad(t(x), flat, value=value)


def axon_same(ks, dil):
    """Axon's "same": (dilated) k - 1 in total, the smaller half first."""
    return [
        ((k - 1) * d // 2, (k - 1) * d - (k - 1) * d // 2) for k, d in zip(ks, dil, strict=True)
    ]


# --------------------------------------------------------------------------------------
# Seed examples (Axon.Layers docs)


def test_seed_max_pool():
    x = jnp.array(
        [
            [
                [0.051500000059604645, -0.7042999863624573, -0.32899999618530273],
                [-0.37130001187324524, 1.6191999912261963, -0.11829999834299088],
                [0.7099999785423279, 0.7282999753952026, -0.18639999628067017],
            ]
        ]
    )
    out = layers.max_pool(x, kernel_size=2, channels="first")
    expected = [[[0.051500000059604645], [1.6191999912261963], [0.7282999753952026]]]
    np.testing.assert_array_equal(out, np.float32(expected))


def test_seed_lp_pool():
    x = jnp.array(
        [[[0.9450, 0.4684, 1.8146], [1.2663, 0.4354, -0.0781], [-0.4759, 0.3251, 0.8742]]]
    )
    out = layers.lp_pool(x, kernel_size=2, norm=2, channels="first")
    expected = [[[1.0547149181365967], [1.3390626907348633], [0.5763426423072815]]]
    assert out.shape == (1, 3, 1)
    np.testing.assert_allclose(out, np.float32(expected), rtol=1e-6)


def test_seed_global_avg_pool():
    out = layers.global_avg_pool(jnp.arange(18.0).reshape(3, 2, 3), channels="first")
    np.testing.assert_array_equal(out, [[1.0, 4.0], [7.0, 10.0], [13.0, 16.0]])
    out = layers.global_avg_pool(
        jnp.arange(12.0).reshape(1, 3, 2, 2), channels="first", keep_axes=True
    )
    assert out.shape == (1, 3, 1, 1)
    np.testing.assert_array_equal(out, [[[[1.5]], [[5.5]], [[9.5]]]])


def test_seed_global_max_pool():
    out = layers.global_max_pool(jnp.arange(18.0).reshape(3, 2, 3), channels="first")
    np.testing.assert_array_equal(out, [[2.0, 5.0], [8.0, 11.0], [14.0, 17.0]])
    out = layers.global_max_pool(
        jnp.arange(12.0).reshape(1, 3, 2, 2), keep_axes=True, channels="first"
    )
    assert out.shape == (1, 3, 1, 1)
    np.testing.assert_array_equal(out, [[[[3.0]], [[7.0]], [[11.0]]]])


def test_seed_global_lp_pool():
    out = layers.global_lp_pool(jnp.arange(18.0).reshape(3, 2, 3), norm=1, channels="first")
    np.testing.assert_array_equal(out, [[3.0, 12.0], [21.0, 30.0], [39.0, 48.0]])
    x = jnp.arange(12.0).reshape(1, 3, 2, 2).astype(jnp.float16)
    out = layers.global_lp_pool(x, keep_axes=True, channels="first")
    assert out.dtype == jnp.float16 and out.shape == (1, 3, 1, 1)
    np.testing.assert_array_equal(out, np.float16([[[[3.7421875]], [[11.2265625]], [[19.125]]]]))


# --------------------------------------------------------------------------------------
# Windowed pooling against torch


SPATIAL = {1: (11,), 2: (9, 8), 3: (6, 7, 5)}

WINDOW_CASES = [
    # spatial rank, kernel_size, strides, padding, window_dilations
    (1, 2, None, "valid", 1),
    (2, 3, 2, "same", 1),
    (3, 2, 1, "same", 1),  # even window: padding (0, 1)
    (1, 3, 2, [(1, 1)], 2),
    (2, (2, 3), (1, 2), [(1, 0), (0, 2)], (2, 1)),
    (3, 2, (2, 1, 2), "valid", (1, 2, 1)),
    (2, 4, 3, "same", 2),
]


def _window_args(nd, kernel_size, strides, padding, dilations):
    ks = kernel_size if isinstance(kernel_size, tuple) else (kernel_size,) * nd
    st = ks if strides is None else strides if isinstance(strides, tuple) else (strides,) * nd
    dil = dilations if isinstance(dilations, tuple) else (dilations,) * nd
    if padding == "valid":
        pads = [(0, 0)] * nd
    elif padding == "same":
        pads = axon_same(ks, dil)
    else:
        pads = padding
    return ks, st, dil, pads


def _both_layouts(fn, x, expected, tol=1e-5, **opts):
    close(fn(x, channels="first", **opts), expected, tol)
    close(to_first(fn(to_last(x), **opts)), expected, tol)


@pytest.mark.parametrize("nd,kernel_size,strides,padding,dilations", WINDOW_CASES)
def test_max_pool_matches_torch(nd, kernel_size, strides, padding, dilations, torch):
    F = torch.nn.functional
    x = rand(2, 3, *SPATIAL[nd])
    ks, st, dil, pads = _window_args(nd, kernel_size, strides, padding, dilations)
    pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nd]
    expected = pool(torch_pad(x, pads, -np.inf), ks, st, dilation=dil).numpy()
    opts = dict(
        kernel_size=kernel_size, strides=strides, padding=padding, window_dilations=dilations
    )
    _both_layouts(layers.max_pool, x, expected, **opts)


@pytest.mark.parametrize("nd,kernel_size,strides,padding,dilations", WINDOW_CASES)
def test_avg_pool_matches_torch(nd, kernel_size, strides, padding, dilations, torch):
    # Axon divides by the window size, padding included: a conv with a (dilated) box filter.
    F = torch.nn.functional
    x = rand(2, 3, *SPATIAL[nd])
    ks, st, dil, pads = _window_args(nd, kernel_size, strides, padding, dilations)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    box = torch.full((3, 1, *ks), 1.0 / np.prod(ks))
    expected = conv(torch_pad(x, pads), box, stride=st, dilation=dil, groups=3).numpy()
    opts = dict(
        kernel_size=kernel_size, strides=strides, padding=padding, window_dilations=dilations
    )
    _both_layouts(layers.avg_pool, x, expected, **opts)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_avg_pool_is_count_include_pad(nd, torch):
    F = torch.nn.functional
    x = rand(1, 2, *SPATIAL[nd])
    pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]
    expected = pool(t(x), 3, 2, padding=1, count_include_pad=True).numpy()
    out = layers.avg_pool(x, kernel_size=3, strides=2, padding=[(1, 1)] * nd, channels="first")
    close(out, expected)


@pytest.mark.parametrize("nd,norm", [(1, 2), (2, 3), (3, 2), (2, 1.5)])
def test_lp_pool_matches_torch(nd, norm, torch):
    F = torch.nn.functional
    x = np.abs(rand(2, 3, *SPATIAL[nd])) + 0.1  # positive: torch takes sign * |s| ** (1/p)
    pool = {1: F.lp_pool1d, 2: F.lp_pool2d, 3: F.lp_pool3d}[nd]
    expected = pool(t(x), norm, 2, 2).numpy()
    _both_layouts(layers.lp_pool, x, expected, 1e-4, kernel_size=2, norm=norm)
    # strides != kernel_size
    expected = pool(t(x), norm, 3, 1).numpy()
    close(layers.lp_pool(x, kernel_size=3, strides=1, norm=norm, channels="first"), expected, 1e-4)


def test_pool_output_size_same_is_ceil():
    for strides in (1, 2, 3):
        out = layers.max_pool(
            jnp.ones((1, 10, 7, 1)), kernel_size=3, strides=strides, padding="same"
        )
        assert out.shape == (1, -(-10 // strides), -(-7 // strides), 1)


def test_pool_gradients_match_torch(torch):
    F = torch.nn.functional
    x = rand(2, 3, 8, 9)
    tx = t(x).requires_grad_()
    cot = rand(2, 3, 4, 5)
    y = F.max_pool2d(F.pad(tx, [1, 1, 1, 1], value=-np.inf), 3, 2) + F.avg_pool2d(
        F.pad(tx, [1, 1, 1, 1]), 3, 2
    )
    (y * t(cot)).sum().backward()

    def loss(x):
        opts = dict(kernel_size=3, strides=2, padding="same", channels="first")
        return jnp.sum((layers.max_pool(x, **opts) + layers.avg_pool(x, **opts)) * cot)

    close(jax.jit(jax.grad(loss))(jnp.asarray(x)), tx.grad.numpy())


def test_pool_jit_matches_eager_and_dtypes():
    x = rand(2, 6, 6, 3)
    f = lambda x: layers.lp_pool(x, kernel_size=2, strides=1, padding="same", norm=2)  # noqa: E731
    close(jax.jit(f)(x), f(x), 1e-6)
    xi = jnp.arange(24, dtype=jnp.int32).reshape(1, 4, 6, 1)
    assert layers.max_pool(xi, kernel_size=2, padding="same").dtype == jnp.int32
    np.testing.assert_array_equal(
        layers.max_pool(xi, kernel_size=2)[0, :, :, 0], [[7, 9, 11], [19, 21, 23]]
    )
    assert layers.avg_pool(xi, kernel_size=2).dtype == jnp.float32
    assert (
        layers.max_pool(jnp.ones((1, 4, 4, 1), jnp.bfloat16), kernel_size=2).dtype == jnp.bfloat16
    )
    assert (
        layers.avg_pool(jnp.ones((1, 4, 4, 1), jnp.bfloat16), kernel_size=2).dtype == jnp.bfloat16
    )


# --------------------------------------------------------------------------------------
# blur_pool


def test_blur_pool_hand_values():
    # A constant image: interior unchanged, edges keep 12/16, corners 9/16.
    out = layers.blur_pool(jnp.full((1, 4, 5, 2), 2.0))
    assert out.shape == (1, 4, 5, 2)
    expected = np.full((4, 5), 2.0)
    expected[0, :] = expected[-1, :] = expected[:, 0] = expected[:, -1] = 1.5
    expected[0, 0] = expected[0, -1] = expected[-1, 0] = expected[-1, -1] = 2.0 * 9 / 16
    close(out[0, :, :, 0], expected)
    close(out[0, :, :, 1], expected)
    # A single impulse spreads into the binomial filter itself.
    x = np.zeros((1, 1, 5, 5), np.float32)
    x[0, 0, 2, 2] = 16.0
    out = layers.blur_pool(x, channels="first")
    close(out[0, 0, 1:4, 1:4], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    assert float(jnp.sum(out)) == 16.0


def test_blur_pool_matches_torch(torch):
    F = torch.nn.functional
    x = rand(2, 3, 7, 6)
    filt = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
    expected = F.conv2d(t(x), filt.expand(3, 1, 3, 3), padding=1, groups=3).numpy()
    _both_layouts(layers.blur_pool, x, expected)


# --------------------------------------------------------------------------------------
# Adaptive pooling


ADAPTIVE_CASES = [
    # input spatial, output_size (input a multiple of output: equals torch)
    ((8,), 4),
    ((9,), (3,)),
    ((8, 6), (4, 3)),
    ((6, 6), 1),
    ((4, 6, 6), (2, 3, 6)),
]


@pytest.mark.parametrize("spatial,output_size", ADAPTIVE_CASES)
def test_adaptive_pools_match_torch_for_multiples(spatial, output_size, torch):
    F = torch.nn.functional
    nd = len(spatial)
    x = rand(2, 3, *spatial)
    avg = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[nd]
    mx = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}[nd]
    _both_layouts(
        layers.adaptive_avg_pool, x, avg(t(x), output_size).numpy(), output_size=output_size
    )
    _both_layouts(
        layers.adaptive_max_pool, x, mx(t(x), output_size).numpy(), output_size=output_size
    )


def adaptive_ref(x: np.ndarray, out: tuple[int, ...], reduce) -> np.ndarray:
    """Axon's rule, written out: stride = in // out, window = in - (out - 1) * stride."""
    sizes = x.shape[2:]
    strides = [s // o for s, o in zip(sizes, out, strict=True)]
    windows = [s - (o - 1) * st for s, o, st in zip(sizes, out, strides, strict=True)]
    y = np.zeros(x.shape[:2] + tuple(out), np.float64)
    for idx in itertools.product(*(range(o) for o in out)):
        sl = tuple(
            slice(i * st, i * st + w) for i, st, w in zip(idx, strides, windows, strict=True)
        )
        block = x[(slice(None), slice(None), *sl)].reshape(x.shape[0], x.shape[1], -1)
        y[(slice(None), slice(None), *idx)] = reduce(block)
    return y


def test_adaptive_pools_non_multiple_follow_axon_rule(torch):
    F = torch.nn.functional
    x = np.abs(rand(2, 3, 10, 7)) + 0.1
    out = (4, 3)  # 10 -> stride 2, window 4; 7 -> stride 2, window 3
    mean = adaptive_ref(x, out, lambda b: b.mean(-1))
    _both_layouts(layers.adaptive_avg_pool, x, mean, output_size=out)
    _both_layouts(
        layers.adaptive_max_pool, x, adaptive_ref(x, out, lambda b: b.max(-1)), output_size=out
    )
    lp3 = adaptive_ref(x, out, lambda b: (b**3).sum(-1) ** (1 / 3))
    _both_layouts(layers.adaptive_lp_pool, x, lp3, 1e-4, output_size=out, norm=3)
    # ... which is not PyTorch's rule for these sizes (documented deviation).
    assert not np.allclose(
        layers.adaptive_avg_pool(x, output_size=out, channels="first"),
        F.adaptive_avg_pool2d(t(x), out).numpy(),
    )


def test_adaptive_lp_pool_matches_torch_lp_pool_for_multiples(torch):
    F = torch.nn.functional
    x = np.abs(rand(1, 2, 8, 6)) + 0.1
    expected = F.lp_pool2d(t(x), 2, (2, 3)).numpy()
    close(layers.adaptive_lp_pool(x, output_size=(4, 2), channels="first"), expected, 1e-4)


def test_adaptive_output_size_none_is_identity():
    x = rand(1, 5, 4, 2)
    close(layers.adaptive_avg_pool(x), x, 0)
    close(layers.adaptive_max_pool(x, output_size=None), x, 0)


# --------------------------------------------------------------------------------------
# Global pooling


@pytest.mark.parametrize("shape", [(2, 5, 3), (2, 4, 3, 3), (1, 3, 2, 4, 2)])
def test_global_pools_match_numpy(shape):
    x = np.abs(rand(*shape)) + 0.1
    axes = tuple(range(2, len(shape)))
    cases = [
        (layers.global_avg_pool, {}, lambda a, k: a.mean(axes, keepdims=k)),
        (layers.global_max_pool, {}, lambda a, k: a.max(axes, keepdims=k)),
        (layers.global_lp_pool, {}, lambda a, k: np.sqrt((a**2).sum(axes, keepdims=k))),
        (
            layers.global_lp_pool,
            {"norm": 3},
            lambda a, k: ((a**3).sum(axes, keepdims=k)) ** (1 / 3),
        ),
    ]
    for fn, opts, ref in cases:
        close(fn(x, channels="first", **opts), ref(x, False), 1e-5)
        close(fn(to_last(x), **opts), ref(x, False), 1e-5)
        kept = fn(to_last(x), keep_axes=True, **opts)
        assert kept.shape == (shape[0], *([1] * len(axes)), shape[1])
        close(to_first(kept), ref(x, True), 1e-5)


# --------------------------------------------------------------------------------------
# Errors


def test_pool_errors():
    x = np.ones((1, 5, 5, 2), np.float32)
    with pytest.raises(ValueError, match=r"max_pool: expected input to have rank at least 3"):
        layers.max_pool(np.ones((5, 2)), kernel_size=2)
    with pytest.raises(
        ValueError, match=r"avg_pool: expected kernel_size to be an int or a sequence of 2"
    ):
        layers.avg_pool(x, kernel_size=(2, 2, 2))
    with pytest.raises(
        ValueError, match=r"max_pool: the \(dilated\) window of size 7 does not fit"
    ):
        layers.max_pool(x, kernel_size=4, window_dilations=2)
    with pytest.raises(ValueError, match=r"lp_pool: expected padding"):
        layers.lp_pool(x, kernel_size=2, padding="full")
    with pytest.raises(ValueError, match=r"lp_pool: expected norm to be a non-zero number"):
        layers.lp_pool(x, kernel_size=2, norm=0)
    with pytest.raises(ValueError, match=r"max_pool: expected strides to be positive"):
        layers.max_pool(x, kernel_size=2, strides=0)
    with pytest.raises(ValueError, match=r"max_pool: expected channels"):
        layers.max_pool(x, kernel_size=2, channels="middle")
    with pytest.raises(TypeError):
        layers.max_pool(x)  # kernel_size is required
    with pytest.raises(TypeError):
        layers.max_pool(x, kernel_size=2, dilations=2)  # unknown option
    with pytest.raises(
        ValueError, match=r"adaptive_avg_pool: output_size \(6, 2\) must not exceed"
    ):
        layers.adaptive_avg_pool(x, output_size=(6, 2))
    with pytest.raises(ValueError, match=r"adaptive_max_pool: expected output_size to be positive"):
        layers.adaptive_max_pool(x, output_size=0)
    with pytest.raises(ValueError, match=r"blur_pool: expected input to have rank 4"):
        layers.blur_pool(np.ones((1, 5, 2)))
    with pytest.raises(
        ValueError, match=r"global_avg_pool: expected input to have rank at least 3"
    ):
        layers.global_avg_pool(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"global_lp_pool: expected channels"):
        layers.global_lp_pool(x, channels="middle")
