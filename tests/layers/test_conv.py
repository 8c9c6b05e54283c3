"""Functional conv layers against the seed's examples, PyTorch and hand-worked values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from axon import layers

RNG = np.random.default_rng(1234)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def t(a):
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.ascontiguousarray(np.asarray(a, dtype=np.float32)))


def to_last(a: np.ndarray) -> np.ndarray:
    """(N, C, s...) -> (N, s..., C)."""
    return np.moveaxis(a, 1, -1)


def kernel_to_last(k: np.ndarray) -> np.ndarray:
    """(O, I, k...) -> (k..., I, O)."""
    return np.moveaxis(np.moveaxis(k, 0, -1), 0, -2)


def torch_conv(x, w, b=None, *, stride=1, pads=None, dilation=1, groups=1):
    """torch conv{N}d on channels-first arrays with explicit (lo, hi) zero padding."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    nd = x.ndim - 2
    x = t(x)
    if pads is not None:
        flat = [p for lo_hi in reversed(pads) for p in lo_hi]
        x = F.pad(x, flat)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    return conv(
        x, t(w), None if b is None else t(b), stride=stride, dilation=dilation, groups=groups
    ).numpy()


def dilate(x: np.ndarray, rates) -> np.ndarray:
    """Insert rate - 1 zeros between the spatial elements of a channels-first array."""
    out_shape = list(x.shape[:2]) + [
        (n - 1) * r + 1 for n, r in zip(x.shape[2:], rates, strict=True)
    ]
    out = np.zeros(out_shape, x.dtype)
    out[(slice(None), slice(None), *(slice(None, None, r) for r in rates))] = x
    return out


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# --------------------------------------------------------------------------------------
# Seed examples (Axon.Layers docs)


def test_seed_conv_1d():
    x = jnp.array([[[0.1294, -0.6638, 1.0251]], [[0.9182, 1.1512, -1.6149]]])
    k = jnp.array([[[-1.5475, 1.2425]], [[0.1871, 0.5458]], [[-0.4488, 0.8879]]])
    b = jnp.array([0.7791, 0.1676, 1.5971])
    expected = [
        [
            [-0.24591797590255737, 3.08001708984375],
            [-0.1704912781715393, 0.6029025316238403],
            [0.9496372938156128, 2.80519962310791],
        ],
        [
            [0.7885514497756958, -3.0088953971862793],
            [0.9677201509475708, -0.4984228312969208],
            [2.207162380218506, -0.3534282445907593],
        ],
    ]
    out = layers.conv(x, k, b, channels="first")
    assert out.shape == (2, 3, 2) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, np.float32(expected), rtol=1e-6, atol=1e-6)


def test_seed_conv_2d():
    x = jnp.array([[[[-1.0476, -0.5041], [-0.9336, 1.5907]]]])
    k = jnp.array(
        [
            [[[0.7514, 0.7356], [1.3909, 0.6800]]],
            [[[-0.3450, 0.4551], [-0.6275, -0.9875]]],
            [[[1.8587, 0.4722], [0.6058, -1.0301]]],
        ]
    )
    b = jnp.array([1.9564, 0.2822, -0.5385])
    expected = [[[[0.5815491676330566]], [[-0.5707762241363525]], [[-4.927865028381348]]]]
    out = layers.conv(x, k, b, channels="first")
    assert out.shape == (1, 3, 1, 1)
    np.testing.assert_allclose(out, np.float32(expected), rtol=1e-6, atol=1e-6)


def test_seed_conv_3d():
    x = jnp.array([[[[[-0.6497], [1.0939]], [[-2.5465], [0.7801]]]]])
    k = jnp.array(
        [
            [[[[0.7390], [-0.0927]], [[-0.8675], [-0.9209]]]],
            [[[[-0.6638], [0.4341]], [[0.6368], [1.1846]]]],
        ]
    )
    b = jnp.array([-0.4101, 0.1776])
    expected = [[[[[0.49906185269355774]]], [[[0.38622811436653137]]]]]
    out = layers.conv(x, k, b, channels="first")
    assert out.shape == (1, 2, 1, 1, 1)
    np.testing.assert_allclose(out, np.float32(expected), rtol=1e-6, atol=1e-6)


def test_seed_conv_transpose():
    x = jnp.arange(9.0).reshape(1, 3, 3)
    k = jnp.arange(36.0).reshape(6, 3, 2)
    expected = [
        [
            [40.0, 79.0, 94.0, 43.0],
            [94.0, 205.0, 256.0, 133.0],
            [148.0, 331.0, 418.0, 223.0],
            [202.0, 457.0, 580.0, 313.0],
            [256.0, 583.0, 742.0, 403.0],
            [310.0, 709.0, 904.0, 493.0],
        ]
    ]
    out = layers.conv_transpose(x, k, jnp.array(1.0), channels="first")
    np.testing.assert_array_equal(out, np.float32(expected))
    # The same example with channels last (input and kernel transposed).
    out_last = layers.conv_transpose(to_last(np.asarray(x)), kernel_to_last(np.asarray(k)), 1.0)
    np.testing.assert_array_equal(np.moveaxis(np.asarray(out_last), -1, 1), np.float32(expected))


# --------------------------------------------------------------------------------------
# conv against torch


def _spatial(nd: int) -> tuple[int, ...]:
    return {1: (11,), 2: (9, 8), 3: (6, 5, 7)}[nd]


def _ksize(nd: int) -> tuple[int, ...]:
    return {1: (3,), 2: (3, 2), 3: (2, 3, 2)}[nd]


CONV_CASES = [
    # spatial rank, strides, padding, kernel_dilation, groups
    (1, 1, "valid", 1, 1),
    (2, 2, "valid", 1, 1),
    (3, 1, "same", 1, 1),
    (1, 2, "same", 1, 2),
    (2, (2, 1), "same", (2, 1), 1),
    (3, 3, "explicit", 1, 1),
    (2, 1, "explicit", 2, 2),
    (1, 3, "valid", 2, 1),
    (3, 2, "valid", 2, 2),
]


@pytest.mark.parametrize("nd,strides,padding,dilation,groups", CONV_CASES)
def test_conv_matches_torch(nd, strides, padding, dilation, groups, torch):
    cin, cout = 4, 6
    ks = _ksize(nd)
    x = rand(2, cin, *_spatial(nd))
    k = rand(cout, cin // groups, *ks)
    b = rand(cout)
    if padding == "explicit":
        pads = [(1, 2), (0, 1), (2, 0)][:nd]
        opt = pads
    elif padding == "same":
        # Axon's rule: (dilated) k - 1 in total, the smaller half first, whatever the strides.
        dil = dilation if isinstance(dilation, tuple) else (dilation,) * nd
        pads = [
            ((q - 1) * d // 2, (q - 1) * d - (q - 1) * d // 2) for q, d in zip(ks, dil, strict=True)
        ]
        opt = "same"
    else:
        pads = [(0, 0)] * nd
        opt = "valid"
    expected = torch_conv(x, k, b, stride=strides, pads=pads, dilation=dilation, groups=groups)

    first = layers.conv(
        x,
        k,
        b,
        strides=strides,
        padding=opt,
        kernel_dilation=dilation,
        feature_group_size=groups,
        channels="first",
    )
    close(first, expected)
    last = layers.conv(
        to_last(x),
        kernel_to_last(k),
        b,
        strides=strides,
        padding=opt,
        kernel_dilation=dilation,
        feature_group_size=groups,
    )
    close(np.moveaxis(np.asarray(last), -1, 1), expected)


@pytest.mark.parametrize("nd", [1, 2])
def test_conv_same_stride_1_equals_torch_same(nd, torch):
    # torch's own padding="same" (stride 1) gives the same split as Axon's rule.
    F = torch.nn.functional
    x = rand(1, 3, *_spatial(nd))
    k = rand(5, 3, *[4] * nd)  # even kernel: asymmetric padding
    conv = {1: F.conv1d, 2: F.conv2d}[nd]
    expected = conv(t(x), t(k), padding="same", dilation=2).numpy()
    out = layers.conv(x, k, padding="same", kernel_dilation=2, channels="first")
    assert out.shape == (x.shape[0], 5, *x.shape[2:])
    close(out, expected)


@pytest.mark.parametrize("strides", [1, 2, 3])
def test_conv_same_output_is_ceil(strides):
    x = jnp.ones((1, 10, 7, 2))
    out = layers.conv(x, jnp.ones((3, 4, 2, 1)), strides=strides, padding="same")
    assert out.shape == (1, -(-10 // strides), -(-7 // strides), 1)


@pytest.mark.parametrize("nd", [1, 2])
def test_conv_input_dilation(nd, torch):
    # Input dilation = zeros inserted between input elements, then an ordinary conv.
    x = rand(2, 3, *_spatial(nd))
    k = rand(4, 3, *_ksize(nd))
    rates = (2, 3)[:nd]
    pads = [(1, 0), (2, 1)][:nd]
    expected = torch_conv(dilate(x, rates), k, stride=2, pads=pads)
    out = layers.conv(x, k, strides=2, padding=pads, input_dilation=rates, channels="first")
    close(out, expected)
    out_last = layers.conv(
        to_last(x), kernel_to_last(k), strides=2, padding=pads, input_dilation=rates
    )
    close(np.moveaxis(np.asarray(out_last), -1, 1), expected)


def test_conv_batch_group_size(torch):
    # batch_group_size=G: the batch is split into G contiguous groups; group g is convolved
    # with the g-th block of output channels, and the blocks are concatenated.
    n, cin, cout, g = 4, 3, 6, 2
    x = rand(n, cin, 7)
    k = rand(cout, cin, 3)
    blocks = [
        torch_conv(x[i * n // g : (i + 1) * n // g], k[i * cout // g : (i + 1) * cout // g])
        for i in range(g)
    ]
    expected = np.concatenate(blocks, axis=1)
    out = layers.conv(x, k, batch_group_size=g, channels="first")
    assert out.shape == (n // g, cout, 5)
    close(out, expected)


def test_conv_bias_forms():
    x = rand(2, 5, 5, 3)
    k = rand(3, 3, 3, 4)
    base = np.asarray(layers.conv(x, k))
    close(layers.conv(x, k, 2.5), base + 2.5)
    b = rand(4)
    close(layers.conv(x, k, b), base + b)
    xf, kf = np.moveaxis(x, -1, 1), np.moveaxis(np.moveaxis(k, -1, 0), -1, 1)
    close(layers.conv(xf, kf, b, channels="first"), np.moveaxis(base + b, -1, 1))


@pytest.mark.parametrize("channels", ["first", "last"])
def test_conv_gradients_match_torch(channels, torch):
    F = torch.nn.functional
    x = rand(2, 4, 9, 8)
    k = rand(6, 2, 3, 2)
    b = rand(6)
    cot = rand(2, 6, 4, 4)
    opts = dict(strides=2, padding=[(1, 2), (0, 1)], kernel_dilation=(2, 1), feature_group_size=2)

    tx, tk, tb = (t(a).requires_grad_() for a in (x, k, b))
    y = F.conv2d(F.pad(tx, [0, 1, 1, 2]), tk, tb, stride=2, dilation=(2, 1), groups=2)
    assert y.shape == cot.shape
    (y * t(cot)).sum().backward()

    if channels == "first":
        xs, ks, c = x, k, cot
    else:
        xs, ks, c = to_last(x), kernel_to_last(k), to_last(cot)

    def loss(xs, ks, b):
        return jnp.sum(layers.conv(xs, ks, b, channels=channels, **opts) * c)

    gx, gk, gb = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(
        jnp.asarray(xs), jnp.asarray(ks), jnp.asarray(b)
    )
    if channels == "last":
        gx, gk = (
            np.moveaxis(np.asarray(gx), -1, 1),
            np.moveaxis(np.moveaxis(np.asarray(gk), -1, 0), -1, 1),
        )
    close(gx, tx.grad.numpy(), 1e-4)
    close(gk, tk.grad.numpy(), 1e-4)
    close(gb, tb.grad.numpy(), 1e-4)


def test_conv_jit_matches_eager():
    x, k, b = rand(2, 7, 6, 4), rand(3, 3, 2, 6), rand(6)
    opts = dict(strides=(2, 1), padding="same", kernel_dilation=(1, 2), feature_group_size=2)
    eager = layers.conv(x, k, b, **opts)
    jitted = jax.jit(lambda x, k, b: layers.conv(x, k, b, **opts))(x, k, b)
    close(jitted, eager, 1e-6)


def test_conv_dtype_follows_inputs():
    x = jnp.ones((1, 4, 4, 2), jnp.bfloat16)
    k = jnp.ones((2, 2, 2, 3), jnp.bfloat16)
    assert layers.conv(x, k).dtype == jnp.bfloat16
    assert (
        layers.conv(jnp.ones((1, 4, 2), jnp.int32), jnp.ones((2, 2, 1), jnp.int32)).dtype
        == jnp.float32
    )


# --------------------------------------------------------------------------------------
# conv_transpose


def torch_conv_transpose_ref(x, k, b, strides, pads, dilation):
    """Axon's conv_transpose (channels first, kernel (out, in, k...)) through torch.

    torch.conv_transpose with the spatially flipped kernel, laid out (in, out, k...), is
    the stride-dilated input padded by d * (k - 1) on both sides, correlated with ``k``;
    Axon's (lo, hi) padding of the dilated input is then a crop (and, past d * (k - 1), an
    output_padding extension) of that result.
    """
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    nd = x.ndim - 2
    ks = k.shape[2:]
    w = np.flip(k, axis=tuple(range(2, 2 + nd))).swapaxes(0, 1)
    eff = [(q - 1) * dilation + 1 for q in ks]
    out_pad = [max(0, hi - (e - 1)) for (_, hi), e in zip(pads, eff, strict=True)]
    assert all(lo <= e - 1 for (lo, _), e in zip(pads, eff, strict=True))
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[nd]
    full = fn(
        t(x), t(w), t(b), stride=strides, dilation=dilation, output_padding=tuple(out_pad)
    ).numpy()
    index = [slice(None), slice(None)]
    for n, (lo, hi), e in zip(x.shape[2:], pads, eff, strict=True):
        length = (n - 1) * strides + 1 + lo + hi - e + 1
        index.append(slice(e - 1 - lo, e - 1 - lo + length))
    return full[tuple(index)]


def keras_padding(k, s, padding):
    """The explicit padding of Axon.Shape.conv_transpose_padding, for the reference."""
    if padding == "valid":
        total = k + s - 2 + max(k - s, 0)
        return (k - 1, total - (k - 1))
    total = k + s - 2
    lo = k - 1 if s > k - 1 else -(-total // 2)
    return (lo, total - lo)


TRANSPOSE_CASES = [
    # spatial rank, kernel size, strides, padding, kernel dilation
    (1, 3, 1, "valid", 1),
    (2, 3, 2, "valid", 1),
    (3, 2, 3, "valid", 1),  # k < s
    (2, 3, 2, "same", 1),
    (1, 4, 2, "same", 1),
    (2, 2, 3, "same", 1),
    (3, 3, 2, "valid", 2),
    (1, 3, 2, "same", 2),
    (2, 3, 2, [(1, 2), (0, 1)], 1),
    (3, 3, 2, [(2, 2), (1, 0), (0, 3)], 1),
]


@pytest.mark.parametrize("nd,ksize,strides,padding,dilation", TRANSPOSE_CASES)
def test_conv_transpose_matches_torch(nd, ksize, strides, padding, dilation, torch):
    spatial = {1: (5,), 2: (4, 3), 3: (3, 2, 3)}[nd]
    x = rand(2, 3, *spatial)
    k = rand(4, 3, *[ksize] * nd)
    b = rand(4)
    eff = (ksize - 1) * dilation + 1
    if isinstance(padding, str):
        pads = [keras_padding(eff, strides, padding)] * nd
        opt = padding
        # Keras' documented output sizes.
        size = (
            (lambda n: n * strides + max(eff - strides, 0))
            if padding == "valid"
            else (lambda n: n * strides)
        )
        expected_shape = (2, 4, *[size(n) for n in spatial])
    else:
        pads = opt = padding
        expected_shape = None
    expected = torch_conv_transpose_ref(x, k, b, strides, pads, dilation)
    if expected_shape is not None:
        assert expected.shape == expected_shape

    first = layers.conv_transpose(
        x, k, b, strides=strides, padding=opt, kernel_dilation=dilation, channels="first"
    )
    assert first.shape == expected.shape
    close(first, expected, 1e-4)
    last = layers.conv_transpose(
        to_last(x), kernel_to_last(k), b, strides=strides, padding=opt, kernel_dilation=dilation
    )
    close(np.moveaxis(np.asarray(last), -1, 1), expected, 1e-4)


def test_conv_transpose_is_the_gradient_of_a_strided_conv():
    # For "valid" padding with k >= s, conv_transpose with the flipped, in/out-swapped kernel
    # is the adjoint (vector-Jacobian product) of the strided conv, as in every framework.
    x = rand(1, 9, 8, 3)
    k = rand(3, 3, 3, 5)  # HWIO of the forward conv
    y, vjp = jax.vjp(lambda x: layers.conv(x, k, strides=2), jnp.asarray(x))
    g = rand(*y.shape)
    (expected,) = vjp(jnp.asarray(g))
    kt = np.flip(k, axis=(0, 1)).swapaxes(2, 3)  # (k, k, out, in): maps 5 -> 3 channels
    out = layers.conv_transpose(g, kt, strides=2)  # 4 * 2 + 1 = 9, 3 * 2 + 1 = 7
    close(out, np.asarray(expected)[:, :9, :7], 1e-4)


def test_conv_transpose_jit_matches_eager():
    x, k = rand(1, 4, 4, 2), rand(3, 3, 2, 3)
    f = lambda x, k: layers.conv_transpose(x, k, None, strides=2, padding="same")  # noqa: E731
    close(jax.jit(f)(x, k), f(x, k), 1e-6)


# --------------------------------------------------------------------------------------
# depthwise and separable


@pytest.mark.parametrize("nd,mult", [(1, 3), (2, 1), (3, 2)])
def test_depthwise_conv_matches_torch(nd, mult, torch):
    c = 3
    x = rand(2, c, *_spatial(nd))
    k = rand(c * mult, 1, *_ksize(nd))
    b = rand(c * mult)
    expected = torch_conv(x, k, b, stride=2, pads=[(1, 1)] * nd, dilation=2, groups=c)
    opts = dict(strides=2, padding=[(1, 1)] * nd, kernel_dilation=2)
    close(layers.depthwise_conv(x, k, b, channels="first", **opts), expected)
    last = layers.depthwise_conv(to_last(x), kernel_to_last(k), b, **opts)
    assert last.shape[1:-1] == expected.shape[2:] and last.shape[-1] == c * mult
    close(np.moveaxis(np.asarray(last), -1, 1), expected)


def test_depthwise_conv_input_dilation_and_same(torch):
    x, k = rand(1, 2, 6, 5), rand(4, 1, 3, 3)
    expected = torch_conv(dilate(x, (2, 2)), k, pads=[(1, 1), (1, 1)], groups=2)
    out = layers.depthwise_conv(x, k, input_dilation=2, padding="same", channels="first")
    close(out, expected)


def test_separable_conv2d_chained_with_biases(torch):
    # strides 1, "valid": a depthwise conv over H, then one over W (Axon's definition).
    c, m = 3, 2
    x = rand(2, c, 7, 6)
    k1, k2 = rand(c * m, 1, 3, 1), rand(c * m, 1, 1, 2)
    b1, b2 = rand(c * m), rand(c * m)
    expected = torch_conv(torch_conv(x, k1, b1, groups=c), k2, b2, groups=c * m)
    close(layers.separable_conv2d(x, k1, b1, k2, b2, channels="first"), expected)
    last = layers.separable_conv2d(to_last(x), kernel_to_last(k1), b1, kernel_to_last(k2), b2)
    close(np.moveaxis(np.asarray(last), -1, 1), expected)
    # "same" padding keeps the spatial size.
    same = layers.separable_conv2d(x, k1, b1, k2, b2, padding="same", channels="first")
    assert same.shape == (2, c * m, 7, 6)


@pytest.mark.parametrize("padding", ["same", [(2, 0), (1, 1)]])
def test_separable_conv2d_per_axis_options(padding, torch):
    # Without the inner bias, the two 1-d convs are one depthwise conv with the outer-product
    # kernel; each axis gets its own stride and padding.
    c, m = 2, 2
    x = rand(1, c, 9, 10)
    k1, k2 = rand(c * m, 1, 3, 1), rand(c * m, 1, 1, 4)
    b2 = rand(c * m)
    outer = k1 * k2  # (c*m, 1, 3, 4)
    pads = [(1, 1), (1, 2)] if padding == "same" else padding
    expected = torch_conv(x, outer, b2, stride=(2, 3), pads=pads, groups=c)
    out = layers.separable_conv2d(
        x, k1, None, k2, b2, strides=(2, 3), padding=padding, channels="first"
    )
    close(out, expected)


def test_separable_conv3d_matches_outer_product_kernel(torch):
    c, m = 2, 1
    x = rand(1, c, 5, 6, 7)
    k1, k2, k3 = rand(c * m, 1, 2, 1, 1), rand(c * m, 1, 1, 3, 1), rand(c * m, 1, 1, 1, 2)
    b3 = rand(c * m)
    expected = torch_conv(x, k1 * k2 * k3, b3, stride=(1, 2, 1), groups=c)
    out = layers.separable_conv3d(
        x, k1, None, k2, None, k3, b3, strides=(1, 2, 1), channels="first"
    )
    close(out, expected)
    b1, b2 = rand(c * m), rand(c * m)
    chained = torch_conv(
        torch_conv(torch_conv(x, k1, b1, groups=c), k2, b2, groups=c), k3, b3, groups=c
    )
    last = layers.separable_conv3d(
        to_last(x), kernel_to_last(k1), b1, kernel_to_last(k2), b2, kernel_to_last(k3), b3
    )
    close(np.moveaxis(np.asarray(last), -1, 1), chained)


# --------------------------------------------------------------------------------------
# Errors


def test_conv_errors():
    x = np.ones((1, 5, 5, 4))
    with pytest.raises(ValueError, match=r"conv: expected input to have rank at least 3"):
        layers.conv(np.ones((5, 4)), np.ones((3, 4, 2)))
    with pytest.raises(
        ValueError, match=r"conv: expected kernel to have the input's rank 4.*\(3, 4, 2\)"
    ):
        layers.conv(x, np.ones((3, 4, 2)))
    with pytest.raises(ValueError, match=r"conv: kernel input channels .* got 3 .*\(3, 3, 3, 2\)"):
        layers.conv(x, np.ones((3, 3, 3, 2)))
    with pytest.raises(ValueError, match=r"divisible by feature_group_size=3"):
        layers.conv(x, np.ones((3, 3, 1, 3)), feature_group_size=3)
    with pytest.raises(ValueError, match=r"kernel output channels \(3.*feature_group_size=2"):
        layers.conv(x, np.ones((3, 3, 2, 3)), feature_group_size=2)
    with pytest.raises(ValueError, match=r"batch size \(1.*batch_group_size=2"):
        layers.conv(x, np.ones((3, 3, 4, 2)), batch_group_size=2)
    with pytest.raises(ValueError, match=r"conv: expected padding"):
        layers.conv(x, np.ones((3, 3, 4, 2)), padding="full")
    with pytest.raises(ValueError, match=r"conv: expected 2 \(lo, hi\) padding pairs"):
        layers.conv(x, np.ones((3, 3, 4, 2)), padding=[(1, 1)])
    with pytest.raises(ValueError, match=r"conv: expected channels"):
        layers.conv(x, np.ones((3, 3, 4, 2)), channels="middle")
    with pytest.raises(ValueError, match=r"conv: expected strides to be positive"):
        layers.conv(x, np.ones((3, 3, 4, 2)), strides=0)
    with pytest.raises(ValueError, match=r"conv: expected strides to be an int or a sequence of 2"):
        layers.conv(x, np.ones((3, 3, 4, 2)), strides=(1, 1, 1))
    with pytest.raises(ValueError, match=r"conv: the \(dilated\) kernel of size 7 does not fit"):
        layers.conv(x, np.ones((3, 3, 4, 2)), kernel_dilation=3)
    with pytest.raises(
        ValueError, match=r"conv: expected bias to have shape \(\) or \(2,\), got shape \(3,\)"
    ):
        layers.conv(x, np.ones((3, 3, 4, 2)), np.ones(3))
    with pytest.raises(TypeError):
        layers.conv(x, np.ones((3, 3, 4, 2)), dilation=2)  # unknown option


def test_conv_transpose_and_depthwise_errors():
    x = np.ones((1, 5, 5, 4))
    with pytest.raises(ValueError, match=r"conv_transpose: kernel input channels"):
        layers.conv_transpose(x, np.ones((3, 3, 2, 4)))
    with pytest.raises(TypeError):
        layers.conv_transpose(x, np.ones((3, 3, 4, 4)), input_dilation=2)
    with pytest.raises(
        ValueError, match=r"depthwise_conv: expected kernel of layout \(k\.\.\., 1, in \* m\)"
    ):
        layers.depthwise_conv(x, np.ones((3, 3, 4, 8)))
    with pytest.raises(
        ValueError, match=r"depthwise_conv: expected kernel of layout \(in \* m, 1, k\.\.\.\)"
    ):
        layers.depthwise_conv(np.ones((1, 4, 5, 5)), np.ones((6, 1, 3, 3)), channels="first")
    with pytest.raises(ValueError, match=r"separable_conv2d: expected input to have rank 4"):
        layers.separable_conv2d(
            np.ones((1, 5, 4)), np.ones((3, 1, 4)), None, np.ones((3, 1, 4)), None
        )
    with pytest.raises(
        ValueError, match=r"separable_conv2d: kernel_1 must span spatial axis 0 only"
    ):
        layers.separable_conv2d(x, np.ones((3, 3, 1, 4)), None, np.ones((1, 3, 1, 4)), None)
    with pytest.raises(ValueError, match=r"separable_conv3d: expected kernel_3 to have rank 5"):
        layers.separable_conv3d(
            np.ones((1, 4, 4, 4, 2)),
            np.ones((2, 1, 1, 1, 2)),
            None,
            np.ones((1, 2, 1, 1, 2)),
            None,
            np.ones((1, 2, 1, 2)),
            None,
        )
