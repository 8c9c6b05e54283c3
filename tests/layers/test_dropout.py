"""Dropout layers: masks, scaling, keys and statistics (references: formulas and torch)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from axon.layers import alpha_dropout, dropout, dropout_key, feature_alpha_dropout, spatial_dropout
from axon.values import StatefulOutput

# SELU constants from Klambauer et al. (2017), and the alpha-dropout affine from the paper.
ALPHA = 1.6732632423543772848170429916717
LAMBDA = 1.0507009873554804934193349852946
ALPHA_P = -ALPHA * LAMBDA


def _affine(rate: float) -> tuple[float, float]:
    q = 1.0 - rate
    a = (q + ALPHA_P**2 * q * (1.0 - q)) ** -0.5
    return a, -a * ALPHA_P * (1.0 - q)


ALL = [
    partial(dropout, rate=0.3),
    partial(alpha_dropout, rate=0.3),
    partial(feature_alpha_dropout, rate=0.3),
    partial(spatial_dropout, rate=0.3),
]
IDS = ["dropout", "alpha_dropout", "feature_alpha_dropout", "spatial_dropout"]


def _train(fn, **options):
    return jax.jit(partial(fn, mode="train", **options))


@pytest.mark.parametrize("fn", ALL, ids=IDS)
def test_inference_is_identity(fn):
    x = jnp.arange(24.0).reshape(2, 3, 4)
    assert fn(x, dropout_key(0)) is x
    assert fn(x, None, mode="inference") is x


@pytest.mark.parametrize("fn", ALL, ids=IDS)
def test_train_returns_split_key_and_is_deterministic(fn):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 16, 8)), dtype=jnp.float32)
    key = dropout_key(42)
    f = jax.jit(partial(fn, mode="train"))
    out1, out2 = f(x, key), f(x, key)
    assert isinstance(out1, StatefulOutput)
    assert out1.output.shape == x.shape and out1.output.dtype == x.dtype
    np.testing.assert_array_equal(np.asarray(out1.output), np.asarray(out2.output))
    # The new key is the first half of jax.random.split(key); the mask came from the other.
    np.testing.assert_array_equal(
        np.asarray(out1.state["key"]), np.asarray(jax.random.split(key)[0])
    )
    out3 = f(x, out1.state["key"])
    assert not np.array_equal(np.asarray(out3.output), np.asarray(out1.output))


def test_dropout_fraction_and_scaling():
    rate = 0.3
    x = jnp.asarray(np.random.default_rng(1).uniform(1.0, 2.0, size=(512, 512)), dtype=jnp.float32)
    y = np.asarray(_train(dropout, rate=rate)(x, dropout_key(3)).output)
    dropped = y == 0
    # 262144 Bernoulli draws: std of the fraction ~ 0.0009
    assert abs(dropped.mean() - rate) < 0.006
    np.testing.assert_allclose(y[~dropped], np.asarray(x)[~dropped] / (1 - rate), rtol=1e-6)


def test_dropout_rate_zero_keeps_everything():
    x = jnp.ones((8, 8))
    np.testing.assert_array_equal(
        np.asarray(_train(dropout, rate=0.0)(x, dropout_key(0)).output), 1.0
    )


def test_dropout_noise_shape_broadcasts_mask():
    x = jnp.ones((64, 5, 7))
    y = np.asarray(_train(dropout, rate=0.5, noise_shape=(64, 1, None))(x, dropout_key(5)).output)
    assert (y == y[:, :1, :]).all()
    assert 0 < (y == 0).mean() < 1
    with pytest.raises(ValueError, match="noise_shape"):
        dropout(x, dropout_key(0), rate=0.5, noise_shape=(64, 2, 7), mode="train")
    with pytest.raises(ValueError, match="noise_shape"):
        dropout(x, dropout_key(0), rate=0.5, noise_shape=(64, 7), mode="train")


def test_dropout_bf16_keeps_dtype():
    x = jnp.ones((32, 32), dtype=jnp.bfloat16)
    y = _train(dropout, rate=0.5)(x, dropout_key(0)).output
    assert y.dtype == jnp.bfloat16
    assert set(np.unique(np.asarray(y, dtype=np.float32)).tolist()) <= {0.0, 2.0}


@pytest.mark.parametrize(
    ("shape", "channels"), [((64, 6, 6, 32), "last"), ((64, 32, 6, 6), "first")]
)
def test_spatial_dropout_drops_whole_feature_maps(shape, channels):
    rate = 0.4
    x = jnp.asarray(np.random.default_rng(2).uniform(1.0, 2.0, size=shape), dtype=jnp.float32)
    y = np.asarray(_train(spatial_dropout, rate=rate, channels=channels)(x, dropout_key(7)).output)
    spatial = (1, 2) if channels == "last" else (2, 3)
    zero_maps = (y == 0).all(axis=spatial)
    kept_maps = (y != 0).all(axis=spatial)
    assert (zero_maps | kept_maps).all()  # every (sample, channel) map is all dropped or all kept
    assert abs(zero_maps.mean() - rate) < 0.05  # 2048 maps: std ~ 0.011
    kept = np.broadcast_to(np.expand_dims(kept_maps, spatial), y.shape)
    np.testing.assert_allclose(y[kept], np.asarray(x)[kept] / (1 - rate), rtol=1e-6)


def test_alpha_dropout_formula_and_self_normalization():
    rate = 0.2
    a, b = _affine(rate)
    x = jnp.asarray(np.random.default_rng(3).standard_normal((1024, 1024)), dtype=jnp.float32)
    y = np.asarray(_train(alpha_dropout, rate=rate)(x, dropout_key(11)).output, dtype=np.float64)
    xn = np.asarray(x, dtype=np.float64)
    dropped_value = a * ALPHA_P + b
    dropped = np.isclose(y, dropped_value, rtol=0, atol=1e-6)
    assert abs(dropped.mean() - rate) < 0.005
    np.testing.assert_allclose(y[~dropped], a * xn[~dropped] + b, rtol=1e-5, atol=1e-5)
    # Zero mean, unit variance preserved on standard normal input (1M samples).
    assert abs(y.mean()) < 0.01
    assert abs(y.var() - 1.0) < 0.02


def test_alpha_dropout_matches_torch_statistics(torch):
    rate = 0.5
    x = np.random.default_rng(4).standard_normal((256, 1024)).astype(np.float32)
    y = np.asarray(_train(alpha_dropout, rate=rate)(jnp.asarray(x), dropout_key(1)).output)
    torch.manual_seed(0)
    t = torch.nn.functional.alpha_dropout(torch.tensor(x), p=rate, training=True).numpy()

    def most_common(v):
        values, counts = np.unique(v, return_counts=True)
        return values[counts.argmax()], counts.max() / v.size

    # Same dropped value (the most frequent output) in the same proportion, same moments.
    (yv, yf), (tv, tf) = most_common(y), most_common(t)
    np.testing.assert_allclose(yv, tv, atol=1e-5)
    assert abs(yf - tf) < 0.01
    assert abs(y.mean() - t.mean()) < 0.01 and abs(y.std() - t.std()) < 0.01


@pytest.mark.parametrize(("shape", "channels"), [((256, 8, 64), "last"), ((256, 64, 8), "first")])
def test_feature_alpha_dropout(shape, channels):
    rate = 0.3
    a, b = _affine(rate)
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    y = np.asarray(
        _train(feature_alpha_dropout, rate=rate, channels=channels)(
            jnp.asarray(x), dropout_key(2)
        ).output,
        dtype=np.float64,
    )
    spatial = 1 if channels == "last" else 2
    dropped_value = a * ALPHA_P + b
    dropped = np.isclose(y, dropped_value, rtol=0, atol=1e-6)
    dropped_maps = dropped.all(axis=spatial)
    # whole maps dropped (a kept map would need all 8 values hitting the exact dropped value)
    np.testing.assert_array_equal(
        dropped, np.broadcast_to(np.expand_dims(dropped_maps, spatial), y.shape)
    )
    assert abs(dropped_maps.mean() - rate) < 0.03  # 16384 maps
    np.testing.assert_allclose(
        y[~dropped], a * x.astype(np.float64)[~dropped] + b, rtol=1e-5, atol=1e-5
    )
    assert abs(y.mean()) < 0.03 and abs(y.var() - 1.0) < 0.05


@pytest.mark.parametrize("fn", [dropout, alpha_dropout, feature_alpha_dropout, spatial_dropout])
@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_rate_validation(fn, rate):
    with pytest.raises(ValueError, match="rate"):
        fn(jnp.ones((2, 3, 4)), dropout_key(0), rate=rate)


def test_other_errors():
    x = jnp.ones((2, 3, 4))
    with pytest.raises(ValueError, match="mode"):
        dropout(x, dropout_key(0), rate=0.5, mode="training")
    with pytest.raises(ValueError, match="key"):
        dropout(x, None, rate=0.5, mode="train")
    with pytest.raises(ValueError, match="key"):
        dropout(x, jnp.zeros((3,), jnp.float32), rate=0.5, mode="train")
    with pytest.raises(ValueError, match="rank at least 3"):
        spatial_dropout(jnp.ones((2, 3)), dropout_key(0), mode="train")
    with pytest.raises(ValueError, match="channels"):
        feature_alpha_dropout(x, dropout_key(0), channels="middle", mode="train")


def test_typed_keys_are_accepted():
    out = dropout(jnp.ones((4, 4)), jax.random.key(0), rate=0.5, mode="train")
    assert jnp.issubdtype(out.state["key"].dtype, jax.dtypes.prng_key)


def test_gradient_is_mask_over_keep_prob():
    x = jnp.asarray(np.random.default_rng(6).normal(size=(16, 16)), dtype=jnp.float32)
    key = dropout_key(9)
    f = _train(dropout, rate=0.25)
    g = np.asarray(jax.grad(lambda x: f(x, key).output.sum())(x))
    y = np.asarray(f(x, key).output)
    np.testing.assert_allclose(g, np.where(y != 0, 1 / 0.75, 0.0), rtol=1e-6)
