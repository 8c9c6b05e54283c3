"""Functional resize against the seed's examples, PyTorch and a NumPy reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from axon import layers

RNG = np.random.default_rng(99)


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


def both_layouts(x: np.ndarray, size, expected, tol=1e-5, **opts):
    close(layers.resize(x, size=size, channels="first", **opts), expected, tol)
    close(to_first(layers.resize(to_last(x), size=size, **opts)), expected, tol)


# --------------------------------------------------------------------------------------
# NumPy reference: separable resampling with a kernel, by its definition.


def _keys_cubic(x):
    x = np.abs(x)
    return np.where(
        x < 1, (1.5 * x - 2.5) * x * x + 1, np.where(x < 2, ((-0.5 * x + 2.5) * x - 4) * x + 2, 0)
    )


def _lanczos(a):
    def kernel(x):
        x = np.abs(x)
        return np.where(x < a, np.sinc(x) * np.sinc(x / a), 0.0)

    return kernel


KERNELS = {
    "bilinear": lambda x: np.maximum(0.0, 1 - np.abs(x)),
    "bicubic": _keys_cubic,
    "lanczos3": _lanczos(3),
    "lanczos5": _lanczos(5),
}


def weights(n_in: int, n_out: int, kernel, antialias: bool) -> np.ndarray:
    """(n_out, n_in): output pixel centres mapped back to the input, kernel widened by
    in/out when downsampling with antialias, weights normalised over the input pixels."""
    scale = n_in / n_out
    widen = max(scale, 1.0) if antialias else 1.0
    w = np.zeros((n_out, n_in))
    for i in range(n_out):
        centre = (i + 0.5) * scale - 0.5
        w[i] = kernel((np.arange(n_in) - centre) / widen)
        w[i] /= w[i].sum()
    return w


def numpy_resize(x: np.ndarray, size, method: str, antialias: bool) -> np.ndarray:
    """Channels-first reference."""
    wh = weights(x.shape[2], size[0], KERNELS[method], antialias)
    ww = weights(x.shape[3], size[1], KERNELS[method], antialias)
    return np.einsum("oh,nchw,pw->ncop", wh, x.astype(np.float64), ww)


# --------------------------------------------------------------------------------------
# Seed examples


def test_seed_nearest():
    img = jnp.arange(9.0).reshape(1, 1, 3, 3)
    out = layers.resize(img, size=(4, 4), channels="first")
    assert out.shape == (1, 1, 4, 4) and out.dtype == jnp.float32
    expected = [[0, 1, 1, 2], [3, 4, 4, 5], [3, 4, 4, 5], [6, 7, 7, 8]]
    np.testing.assert_array_equal(out[0, 0], np.float32(expected))


def test_seed_bad_method():
    img = jnp.arange(9.0).reshape(1, 1, 3, 3)
    with pytest.raises(ValueError, match=r"resize: expected method to be one of") as info:
        layers.resize(img, size=(4, 4), method="foo")
    message = str(info.value)
    assert "'foo'" in message
    for m in ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5"):
        assert repr(m) in message


# --------------------------------------------------------------------------------------
# Against torch and the reference

SIZES = [(14, 5), (4, 9)]  # up and down; down with one axis unchanged


@pytest.mark.parametrize("size", [*SIZES, (3, 13)])
def test_nearest_matches_torch_nearest_exact(size, torch):
    F = torch.nn.functional
    x = rand(2, 3, 7, 9)
    both_layouts(x, size, F.interpolate(t(x), size=size, mode="nearest-exact").numpy(), 0)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("antialias", [True, False])
def test_bilinear_matches_torch(size, antialias, torch):
    F = torch.nn.functional
    x = rand(2, 3, 7, 9)
    expected = F.interpolate(
        t(x), size=size, mode="bilinear", align_corners=False, antialias=antialias
    ).numpy()
    both_layouts(x, size, expected, method="bilinear", antialias=antialias)


@pytest.mark.parametrize("size", SIZES)
def test_bicubic_matches_torch_antialiased(size, torch):
    # torch's antialiased bicubic uses the Keys kernel with a = -0.5, as Axon does, for
    # upsampling too (torch's plain bicubic uses a = -0.75).
    F = torch.nn.functional
    x = rand(2, 3, 7, 9)
    expected = F.interpolate(
        t(x), size=size, mode="bicubic", align_corners=False, antialias=True
    ).numpy()
    both_layouts(x, size, expected, 1e-5, method="bicubic")


@pytest.mark.parametrize("method", ["bilinear", "bicubic", "lanczos3", "lanczos5"])
@pytest.mark.parametrize("antialias", [True, False])
def test_kernel_methods_match_numpy_reference(method, antialias):
    # Height upsampled (17 / 8), width downsampled (4 / 11).
    x = rand(1, 2, 8, 11)
    expected = numpy_resize(x, (17, 4), method, antialias)
    out = layers.resize(x, size=(17, 4), method=method, antialias=antialias, channels="first")
    close(out, expected, 1e-5)


def test_antialias_only_matters_when_downsampling():
    x = rand(1, 8, 9, 2)
    up_aa = layers.resize(x, size=(16, 18), method="lanczos3")
    up = layers.resize(x, size=(16, 18), method="lanczos3", antialias=False)
    close(up_aa, up, 1e-6)
    down_aa = layers.resize(x, size=(3, 4), method="lanczos3")
    down = layers.resize(x, size=(3, 4), method="lanczos3", antialias=False)
    assert not np.allclose(down_aa, down, atol=1e-2)


def test_bilinear_hand_values():
    x = jnp.array([0.0, 1.0]).reshape(1, 1, 2, 1)
    out = layers.resize(x, size=(1, 4), method="bilinear")
    close(out[0, 0, :, 0], [0.0, 0.25, 0.75, 1.0], 1e-7)
    # Downsampling 4 -> 2 with antialias: triangle of half-width 2 around 0.5 and 2.5.
    x = jnp.array([0.0, 1.0, 2.0, 3.0]).reshape(1, 1, 4, 1)
    out = layers.resize(x, size=(1, 2), method="bilinear")
    close(out[0, 0, :, 0], [1.25 / 1.75, 3 - 1.25 / 1.75], 1e-6)
    out = layers.resize(x, size=(1, 2), method="bilinear", antialias=False)
    close(out[0, 0, :, 0], [0.5, 2.5], 1e-7)


def test_resize_gradient_matches_torch(torch):
    F = torch.nn.functional
    x = rand(1, 2, 9, 7)
    tx = t(x).requires_grad_()
    cot = rand(1, 2, 4, 10)
    y = F.interpolate(tx, size=(4, 10), mode="bilinear", align_corners=False, antialias=True)
    (y * t(cot)).sum().backward()

    def loss(x):
        return jnp.sum(layers.resize(x, size=(4, 10), method="bilinear", channels="first") * cot)

    close(jax.jit(jax.grad(loss))(jnp.asarray(x)), tx.grad.numpy())


def test_resize_jit_identity_and_dtypes():
    x = rand(2, 5, 6, 3)
    f = lambda x: layers.resize(x, size=(7, 4), method="lanczos3")  # noqa: E731
    close(jax.jit(f)(x), f(x), 1e-6)
    same = layers.resize(jnp.asarray(x), size=(5, 6), method="bicubic")
    np.testing.assert_array_equal(same, x)
    xb = jnp.asarray(x, jnp.bfloat16)
    assert layers.resize(xb, size=(3, 3), method="bilinear").dtype == jnp.bfloat16
    # Integer images: interpolated in float, then cast back (truncated) like Nx.as_type.
    img = jnp.array([[[[0], [255]], [[255], [0]]]], jnp.uint8)  # (1, 2, 2, 1)
    out = layers.resize(img, size=(3, 3), method="bilinear")
    assert out.dtype == jnp.uint8
    f32 = layers.resize(img.astype(jnp.float32), size=(3, 3), method="bilinear")
    np.testing.assert_array_equal(out, np.trunc(np.asarray(f32)).astype(np.uint8))
    nearest = layers.resize(img, size=(4, 4))
    assert nearest.dtype == jnp.uint8
    np.testing.assert_array_equal(
        nearest[0, :, :, 0], np.kron([[0, 255], [255, 0]], np.ones((2, 2)))
    )


def test_resize_errors():
    x = np.ones((1, 4, 4, 3), np.float32)
    with pytest.raises(ValueError, match=r"resize: expected input to have rank 4, got rank 3"):
        layers.resize(np.ones((4, 4, 3)), size=(2, 2))
    with pytest.raises(ValueError, match=r"resize: expected channels"):
        layers.resize(x, size=(2, 2), channels="middle")
    with pytest.raises(ValueError, match=r"resize: expected size to be an int or a sequence of 2"):
        layers.resize(x, size=(2, 2, 2))
    with pytest.raises(ValueError, match=r"resize: expected size to be positive"):
        layers.resize(x, size=(0, 2))
    with pytest.raises(ValueError, match=r"resize: expected method to be one of .* got 'linear'"):
        layers.resize(x, size=(2, 2), method="linear")
    with pytest.raises(TypeError):
        layers.resize(x, (2, 2))  # size is keyword-only
    with pytest.raises(TypeError):
        layers.resize(x, size=(2, 2), align_corners=True)  # unknown option
