"""The convolution formulations that ``benchmarks/cnn_formulations.py`` times give the numbers of
``lax.conv_general_dilated`` and its autodiff (checked here against an independent numpy
correlation), so its timings compare like with like. Small shapes; no timing is asserted."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from benchmarks import cnn_formulations as cf


def _numpy_conv(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    kh, kw, _, co = k.shape
    b, h, w, _ = x.shape
    out = np.zeros((b, h - kh + 1, w - kw + 1, co), np.float64)
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("bhwc,co->bhwo", x[:, i:i + out.shape[1], j:j + out.shape[2]], k[i, j])
    return out


@pytest.fixture(scope="module", params=[1, 3])
def arrays(request):
    rng = np.random.default_rng(0)
    ci = request.param
    x = rng.standard_normal((2, 10, 8, ci)).astype(np.float32)  # even output sizes (Winograd tiles)
    k = rng.standard_normal((3, 3, ci, 5)).astype(np.float32)
    dy = rng.standard_normal((2, 8, 6, 5)).astype(np.float32)
    return x, k, dy


def test_forward_formulations_equal_a_numpy_correlation(arrays):
    x, k, _ = arrays
    want = _numpy_conv(x, k)
    for f in (cf.reference, cf.im2col, cf.taps, cf.winograd):
        np.testing.assert_allclose(np.asarray(jax.jit(f)(x, k)), want, rtol=1e-5, atol=1e-4, err_msg=f.__name__)


def test_gradient_formulations_equal_autodiff(arrays):
    x, k, dy = arrays
    _, vjp = jax.vjp(lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), "VALID", dimension_numbers=cf.DN), x, k)
    want_dx, want_dk = vjp(jnp.asarray(dy))
    # the kernel gradient against numpy too: sum over (b, h, w) of x[b, h+i, w+j] dy[b, h, w]
    np.testing.assert_allclose(
        np.asarray(want_dk),
        np.stack([[np.einsum("bhwc,bhwo->co", x[:, i:i + 8, j:j + 6], dy) for j in range(3)] for i in range(3)]),
        rtol=1e-4, atol=1e-4)
    for f in (cf.kernel_grad_reference, cf.kernel_grad_patches_cm, cf.kernel_grad_taps):
        np.testing.assert_allclose(np.asarray(f(x, dy, k.shape)), want_dk, rtol=1e-5, atol=1e-4, err_msg=f.__name__)
    for f in (cf.input_grad_reference, cf.input_grad_taps_pad):
        np.testing.assert_allclose(np.asarray(f(k, dy, x.shape)), want_dx, rtol=1e-5, atol=1e-4, err_msg=f.__name__)


def test_step_variants_give_the_same_gradients(arrays):
    # the custom_jvp / custom_vjp wrappers the --steps A/B uses differentiate like the plain conv
    x, k, dy = arrays

    def grads(conv):
        return jax.grad(lambda x, k: jnp.vdot(conv(x, k), dy), argnums=(0, 1))(x, k)

    want = grads(cf._lax)
    variants = {
        "patches_tangent": cf._jvp_with(cf._lax, cf._lax, cf._patches_tangent),
        "winograd_primal": cf._jvp_with(cf.winograd, cf._lax, cf._lax),
        "taps_pad_input_grad": cf._input_grad_taps_conv(),
    }
    for name, conv in variants.items():
        for g, w in zip(grads(conv), want, strict=True):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-4, err_msg=name)
    # forward mode is kept by the custom_jvp ones
    _, tangent = jax.jvp(variants["patches_tangent"], (x, k), (x, k))
    np.testing.assert_allclose(np.asarray(tangent), 2 * _numpy_conv(x, k), rtol=1e-5, atol=1e-3)
