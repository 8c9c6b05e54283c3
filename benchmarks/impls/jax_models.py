"""The workloads written by hand in JAX: parameters as nested dicts, pure ``apply``
functions, no library but ``jax`` itself. Used by the hand-written baselines
(:mod:`benchmarks.impls.jax_impl`).

``init(workload, key) -> (params, state)`` and
``apply(params, state, x, train) -> (logits, new_state)``; ``state`` holds batch-norm
running statistics (empty for models without batch norm).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from benchmarks.workloads import Workload

Params = dict[str, Any]
Apply = Callable[[Params, Params, jax.Array, bool], tuple[jax.Array, Params]]

_DN = ("NHWC", "HWIO", "NHWC")


def _glorot(key: jax.Array, shape: tuple[int, ...], fan_in: int, fan_out: int) -> jax.Array:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, jnp.float32, -limit, limit)


def dense_init(key: jax.Array, n_in: int, n_out: int) -> Params:
    return {"kernel": _glorot(key, (n_in, n_out), n_in, n_out), "bias": jnp.zeros((n_out,))}


def dense(p: Params, x: jax.Array) -> jax.Array:
    return x @ p["kernel"] + p["bias"]


def conv_init(key: jax.Array, k: int, c_in: int, c_out: int, bias: bool = True) -> Params:
    p = {"kernel": _glorot(key, (k, k, c_in, c_out), k * k * c_in, k * k * c_out)}
    if bias:
        p["bias"] = jnp.zeros((c_out,))
    return p


def conv(p: Params, x: jax.Array, stride: int = 1, padding: str = "VALID") -> jax.Array:
    y = jax.lax.conv_general_dilated(x, p["kernel"], (stride, stride), padding, dimension_numbers=_DN)
    return y + p["bias"] if "bias" in p else y


def max_pool(x: jax.Array, k: int) -> jax.Array:
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, k, k, 1), (1, k, k, 1), "VALID")


def bn_init(c: int) -> tuple[Params, Params]:
    return {"gamma": jnp.ones((c,)), "beta": jnp.zeros((c,))}, {"mean": jnp.zeros((c,)), "var": jnp.ones((c,))}


def batch_norm(p: Params, s: Params, x: jax.Array, train: bool, momentum: float = 0.1,
               eps: float = 1e-5) -> tuple[jax.Array, Params]:
    """Batch norm over all axes but the last; running statistics as in PyTorch."""
    if train:
        axes = tuple(range(x.ndim - 1))
        mean = x.mean(axes)
        var = x.var(axes)
        n = x.size // x.shape[-1]
        new = {"mean": (1 - momentum) * s["mean"] + momentum * mean,
               "var": (1 - momentum) * s["var"] + momentum * var * n / max(n - 1, 1)}
    else:
        mean, var, new = s["mean"], s["var"], s
    y = (x - mean) * jax.lax.rsqrt(var + eps) * p["gamma"] + p["beta"]
    return y, new


def layer_norm_init(c: int) -> Params:
    return {"gamma": jnp.ones((c,)), "beta": jnp.zeros((c,))}


def layer_norm(p: Params, x: jax.Array, eps: float = 1e-5) -> jax.Array:
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * p["gamma"] + p["beta"]


# --------------------------------------------------------------------------------------
# W1 MLP


def mlp_init(w: Workload, key: jax.Array) -> tuple[Params, Params]:
    k1, k2, k3 = jax.random.split(key, 3)
    return {"d0": dense_init(k1, w.input_shape[0], 512), "d1": dense_init(k2, 512, 512),
            "d2": dense_init(k3, 512, w.num_classes)}, {}


def mlp_apply(p: Params, s: Params, x: jax.Array, train: bool) -> tuple[jax.Array, Params]:
    x = jax.nn.relu(dense(p["d0"], x))
    x = jax.nn.relu(dense(p["d1"], x))
    return dense(p["d2"], x), s


# --------------------------------------------------------------------------------------
# W2 CNN


def cnn_init(w: Workload, key: jax.Array) -> tuple[Params, Params]:
    k = jax.random.split(key, 4)
    h, wd, c = w.input_shape
    flat = ((h - 4) // 2) * ((wd - 4) // 2) * 64
    return {"c0": conv_init(k[0], 3, c, 32), "c1": conv_init(k[1], 3, 32, 64),
            "d0": dense_init(k[2], flat, 128), "d1": dense_init(k[3], 128, w.num_classes)}, {}


def cnn_apply(p: Params, s: Params, x: jax.Array, train: bool) -> tuple[jax.Array, Params]:
    x = jax.nn.relu(conv(p["c0"], x))
    x = jax.nn.relu(conv(p["c1"], x))
    x = max_pool(x, 2).reshape(x.shape[0], -1)
    x = jax.nn.relu(dense(p["d0"], x))
    return dense(p["d1"], x), s


# --------------------------------------------------------------------------------------
# W3 LSTM


LSTM_UNITS = 128


def lstm_init(w: Workload, key: jax.Array) -> tuple[Params, Params]:
    k1, k2, k3 = jax.random.split(key, 3)
    f, u = w.input_shape[-1], LSTM_UNITS
    # four gates fused into one (features, 4·units) and one (units, 4·units) matrix,
    # each gate's block initialized as its own (in, units) matrix
    wi = jnp.concatenate([_glorot(k, (f, u), f, u) for k in jax.random.split(k1, 4)], axis=1)
    wh = jnp.concatenate([_glorot(k, (u, u), u, u) for k in jax.random.split(k2, 4)], axis=1)
    return {"lstm": {"wi": wi, "wh": wh, "b": jnp.zeros((4 * u,))},
            "out": dense_init(k3, u, w.num_classes)}, {}


def lstm_apply(p: Params, s: Params, x: jax.Array, train: bool) -> tuple[jax.Array, Params]:
    lp = p["lstm"]
    b = x.shape[0]
    u = lp["wh"].shape[0]

    def cell(carry, x_t):
        c, h = carry
        z = x_t @ lp["wi"] + h @ lp["wh"] + lp["b"]
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (c, h), None

    zeros = jnp.zeros((b, u), x.dtype)
    (_, h), _ = jax.lax.scan(cell, (zeros, zeros), jnp.swapaxes(x, 0, 1))
    return dense(p["out"], h), s


# --------------------------------------------------------------------------------------
# W4 transformer encoder (pre-LN)


def transformer_init(w: Workload, key: jax.Array) -> tuple[Params, Params]:
    o = w.options
    d, heads, hidden = o["width"], o["heads"], o["mlp"]
    hd = d // heads
    keys = iter(jax.random.split(key, 4 + 6 * o["blocks"]))
    p: Params = {"embed": {"kernel": jax.random.uniform(next(keys), (w.vocab, d), jnp.float32, -0.05, 0.05)}}
    for i in range(o["blocks"]):
        p[f"block{i}"] = {
            "ln0": layer_norm_init(d), "ln1": layer_norm_init(d),
            "q": _glorot(next(keys), (d, heads, hd), d, d), "k": _glorot(next(keys), (d, heads, hd), d, d),
            "v": _glorot(next(keys), (d, heads, hd), d, d), "o": _glorot(next(keys), (heads, hd, d), d, d),
            "qb": jnp.zeros((heads, hd)), "kb": jnp.zeros((heads, hd)), "vb": jnp.zeros((heads, hd)),
            "ob": jnp.zeros((d,)),
            "fc0": dense_init(next(keys), d, hidden), "fc1": dense_init(next(keys), hidden, d),
        }
    p["ln"] = layer_norm_init(d)
    p["out"] = dense_init(next(keys), d, w.num_classes)
    return p, {}


def transformer_apply(p: Params, s: Params, x: jax.Array, train: bool) -> tuple[jax.Array, Params]:
    h = jnp.take(p["embed"]["kernel"], x, axis=0)
    i = 0
    while f"block{i}" in p:
        bp = p[f"block{i}"]
        y = layer_norm(bp["ln0"], h)
        q = jnp.einsum("btd,dnh->btnh", y, bp["q"]) + bp["qb"]
        k = jnp.einsum("btd,dnh->btnh", y, bp["k"]) + bp["kb"]
        v = jnp.einsum("btd,dnh->btnh", y, bp["v"]) + bp["vb"]
        a = jax.nn.dot_product_attention(q, k, v)
        h = h + jnp.einsum("btnh,nhd->btd", a, bp["o"]) + bp["ob"]
        y = layer_norm(bp["ln1"], h)
        h = h + dense(bp["fc1"], jax.nn.gelu(dense(bp["fc0"], y), approximate=False))
        i += 1
    h = layer_norm(p["ln"], h).mean(axis=1)
    return dense(p["out"], h), s


# --------------------------------------------------------------------------------------
# W5 ResNet-18 (CIFAR stem: 3x3 conv, no max-pool)


def _block_init(key: jax.Array, c_in: int, c_out: int, stride: int) -> tuple[Params, Params]:
    k = jax.random.split(key, 3)
    p: Params = {"c0": conv_init(k[0], 3, c_in, c_out, bias=False), "c1": conv_init(k[1], 3, c_out, c_out, bias=False)}
    s: Params = {}
    p["bn0"], s["bn0"] = bn_init(c_out)
    p["bn1"], s["bn1"] = bn_init(c_out)
    if stride != 1 or c_in != c_out:
        p["proj"] = conv_init(k[2], 1, c_in, c_out, bias=False)
        p["bnp"], s["bnp"] = bn_init(c_out)
    return p, s


def resnet_init(w: Workload, key: jax.Array) -> tuple[Params, Params]:
    widths = w.options["widths"]
    keys = iter(jax.random.split(key, 10))
    p: Params = {"stem": conv_init(next(keys), 3, w.input_shape[-1], widths[0], bias=False)}
    s: Params = {}
    p["bn"], s["bn"] = bn_init(widths[0])
    c_in = widths[0]
    for i, c in enumerate(widths):
        for j in range(2):
            stride = 2 if (i > 0 and j == 0) else 1
            p[f"s{i}b{j}"], s[f"s{i}b{j}"] = _block_init(next(keys), c_in, c, stride)
            c_in = c
    p["out"] = dense_init(next(keys), c_in, w.num_classes)
    return p, s


def resnet_apply(p: Params, s: Params, x: jax.Array, train: bool) -> tuple[jax.Array, Params]:
    new: Params = {}
    x = conv(p["stem"], x, padding="SAME")
    x, new["bn"] = batch_norm(p["bn"], s["bn"], x, train)
    x = jax.nn.relu(x)
    i = 0
    while f"s{i}b0" in p:
        for j in range(2):
            name = f"s{i}b{j}"
            bp, bs, ns = p[name], s[name], {}
            stride = 2 if (i > 0 and j == 0) else 1
            y = conv(bp["c0"], x, stride, "SAME")
            y, ns["bn0"] = batch_norm(bp["bn0"], bs["bn0"], y, train)
            y = jax.nn.relu(y)
            y = conv(bp["c1"], y, 1, "SAME")
            y, ns["bn1"] = batch_norm(bp["bn1"], bs["bn1"], y, train)
            if "proj" in bp:
                x = conv(bp["proj"], x, stride, "VALID")
                x, ns["bnp"] = batch_norm(bp["bnp"], bs["bnp"], x, train)
            x = jax.nn.relu(x + y)
            new[name] = ns
        i += 1
    x = x.mean(axis=(1, 2))
    return dense(p["out"], x), new


MODELS: dict[str, tuple[Callable[[Workload, jax.Array], tuple[Params, Params]], Apply]] = {
    "mlp": (mlp_init, mlp_apply),
    "cnn": (cnn_init, cnn_apply),
    "lstm": (lstm_init, lstm_apply),
    "transformer": (transformer_init, transformer_apply),
    "resnet18": (resnet_init, resnet_apply),
}
