"""Functional recurrent layers against independent references.

LSTM and GRU are checked against ``torch.nn.LSTM``/``torch.nn.GRU`` (values and autograd
gradients) with the weights copied across; ConvLSTM against a small torch implementation of
the same equations; masking against a step-by-step torch loop and hand-worked cases.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from axon import layers
from axon.layers import recurrent as rnn

B, T, F, U = 2, 5, 3, 4
TOL = {"rtol": 1e-5, "atol": 1e-5}

LSTM_IK, LSTM_HK, LSTM_B = (
    ("wii", "wif", "wig", "wio"),
    ("whi", "whf", "whg", "who"),
    ("bi", "bf", "bg", "bo"),
)
GRU_IK, GRU_HK = ("wir", "wiz", "win"), ("whr", "whz", "whn")


def _grad(fn, argnums, unroll):
    """``jax.grad`` with aux; jitted for the scan (one compile) and eager for the Python loop
    (whose small ops hit JAX's per-primitive cache), which keeps this file fast."""
    g = jax.grad(fn, argnums=argnums, has_aux=True)
    return jax.jit(g) if unroll == "dynamic" else g


def _np(t):
    return t.detach().numpy()


def _torch_lstm(seed=0):
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    return torch.nn.LSTM(F, U, batch_first=True)


def _torch_gru(seed=0):
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    return torch.nn.GRU(F, U, batch_first=True)


def _lstm_params(m):
    """torch (i, f, g, o) row chunks -> Axon per-gate (in, out) kernels; the two biases summed."""
    wih = np.split(_np(m.weight_ih_l0), 4)
    whh = np.split(_np(m.weight_hh_l0), 4)
    b = np.split(_np(m.bias_ih_l0) + _np(m.bias_hh_l0), 4)
    ik = {k: jnp.asarray(w.T) for k, w in zip(LSTM_IK, wih, strict=True)}
    hk = {k: jnp.asarray(w.T) for k, w in zip(LSTM_HK, whh, strict=True)}
    bias = {k: jnp.asarray(v) for k, v in zip(LSTM_B, b, strict=True)}
    return ik, hk, bias


def _gru_params(m):
    """torch (r, z, n) chunks; br = b_ir + b_hr, bz = b_iz + b_hz, bin = b_in, bhn = b_hn."""
    wih = np.split(_np(m.weight_ih_l0), 3)
    whh = np.split(_np(m.weight_hh_l0), 3)
    bi = np.split(_np(m.bias_ih_l0), 3)
    bh = np.split(_np(m.bias_hh_l0), 3)
    ik = {k: jnp.asarray(w.T) for k, w in zip(GRU_IK, wih, strict=True)}
    hk = {k: jnp.asarray(w.T) for k, w in zip(GRU_HK, whh, strict=True)}
    bias = {
        "br": jnp.asarray(bi[0] + bh[0]),
        "bz": jnp.asarray(bi[1] + bh[1]),
        "bin": jnp.asarray(bi[2]),
        "bhn": jnp.asarray(bh[2]),
    }
    return ik, hk, bias


def _random_params(names_ik, names_hk, names_b, seed):
    """Per-gate kernels and biases drawn as torch draws them, U(-1/sqrt(U), 1/sqrt(U)), for the
    tests that need parameters but no torch reference."""
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(U)

    def draw(*shape):
        return jnp.asarray(rng.uniform(-bound, bound, size=shape).astype(np.float32))

    return ({k: draw(F, U) for k in names_ik}, {k: draw(U, U) for k in names_hk}, {k: draw(U) for k in names_b})


def _random_lstm_params(seed=0):
    return _random_params(LSTM_IK, LSTM_HK, LSTM_B, seed)


def _random_gru_params(seed=0):
    return _random_params(GRU_IK, GRU_HK, ("br", "bz", "bin", "bhn"), seed)


def _data(seed=1, shape=(B, T, F), state_shape=(B, U), n_state=2):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    states = [rng.standard_normal(state_shape).astype(np.float32) * 0.5 for _ in range(n_state)]
    return x, states


# ---------------------------------------------------------------------------------- LSTM / GRU


@pytest.mark.parametrize("unroll", ["static", "dynamic"])
def test_lstm_matches_torch_values_and_gradients(unroll, torch):
    m = _torch_lstm()
    x, (c0, h0) = _data()
    rng = np.random.default_rng(7)
    w_out, w_c, w_h = (
        rng.standard_normal(s).astype(np.float32) for s in [(B, T, U), (B, U), (B, U)]
    )

    # torch reference
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    c0t = torch.tensor(c0[None], requires_grad=True)
    out_t, (hn_t, cn_t) = m(xt, (h0t, c0t))
    loss_t = (
        (out_t * torch.tensor(w_out)).sum()
        + (cn_t[0] * torch.tensor(w_c)).sum()
        + (hn_t[0] * torch.tensor(w_h)).sum()
    )
    loss_t.backward()

    ik, hk, bias = _lstm_params(m)

    def loss(x, c0, h0, ik, hk, bias):
        out, (c, h) = layers.lstm(x, (c0, h0), 0, ik, hk, bias, unroll=unroll)
        return jnp.sum(out * w_out) + jnp.sum(c * w_c) + jnp.sum(h * w_h), (out, c, h)

    grads, (out, c, h) = _grad(loss, (0, 1, 2, 3, 4, 5), unroll)(
        jnp.asarray(x), jnp.asarray(c0), jnp.asarray(h0), ik, hk, bias
    )
    np.testing.assert_allclose(out, _np(out_t), **TOL)
    np.testing.assert_allclose(c, _np(cn_t[0]), **TOL)
    np.testing.assert_allclose(h, _np(hn_t[0]), **TOL)

    gx, gc0, gh0, gik, ghk, gb = grads
    np.testing.assert_allclose(gx, _np(xt.grad), **TOL)
    np.testing.assert_allclose(gc0, _np(c0t.grad[0]), **TOL)
    np.testing.assert_allclose(gh0, _np(h0t.grad[0]), **TOL)
    for k, g in zip(LSTM_IK, np.split(_np(m.weight_ih_l0.grad), 4), strict=True):
        np.testing.assert_allclose(gik[k], g.T, **TOL)
    for k, g in zip(LSTM_HK, np.split(_np(m.weight_hh_l0.grad), 4), strict=True):
        np.testing.assert_allclose(ghk[k], g.T, **TOL)
    for k, g in zip(LSTM_B, np.split(_np(m.bias_ih_l0.grad), 4), strict=True):
        np.testing.assert_allclose(gb[k], g, **TOL)


@pytest.mark.parametrize("unroll", ["static", "dynamic"])
def test_gru_matches_torch_values_and_gradients(unroll, torch):
    m = _torch_gru()
    x, (h0,) = _data(n_state=1)
    rng = np.random.default_rng(8)
    w_out, w_h = (rng.standard_normal(s).astype(np.float32) for s in [(B, T, U), (B, U)])

    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    out_t, hn_t = m(xt, h0t)
    ((out_t * torch.tensor(w_out)).sum() + (hn_t[0] * torch.tensor(w_h)).sum()).backward()

    ik, hk, bias = _gru_params(m)

    def loss(x, h0, ik, hk, bias):
        out, (h,) = layers.gru(x, (h0,), 0, ik, hk, bias, unroll=unroll)
        return jnp.sum(out * w_out) + jnp.sum(h * w_h), (out, h)

    (gx, gh0, gik, ghk, gb), (out, h) = _grad(loss, (0, 1, 2, 3, 4), unroll)(
        jnp.asarray(x), jnp.asarray(h0), ik, hk, bias
    )
    np.testing.assert_allclose(out, _np(out_t), **TOL)
    np.testing.assert_allclose(h, _np(hn_t[0]), **TOL)
    np.testing.assert_allclose(gx, _np(xt.grad), **TOL)
    np.testing.assert_allclose(gh0, _np(h0t.grad[0]), **TOL)
    for k, g in zip(GRU_IK, np.split(_np(m.weight_ih_l0.grad), 3), strict=True):
        np.testing.assert_allclose(gik[k], g.T, **TOL)
    for k, g in zip(GRU_HK, np.split(_np(m.weight_hh_l0.grad), 3), strict=True):
        np.testing.assert_allclose(ghk[k], g.T, **TOL)
    gbi = np.split(_np(m.bias_ih_l0.grad), 3)
    gbh = np.split(_np(m.bias_hh_l0.grad), 3)
    np.testing.assert_allclose(gb["br"], gbi[0], **TOL)
    np.testing.assert_allclose(gb["bz"], gbi[1], **TOL)
    np.testing.assert_allclose(gb["bin"], gbi[2], **TOL)
    np.testing.assert_allclose(gb["bhn"], gbh[2], **TOL)


def test_lstm_cell_one_step_matches_torch_lstm_cell(torch):
    m = _torch_lstm()
    cell = torch.nn.LSTMCell(F, U)
    with torch.no_grad():
        cell.weight_ih.copy_(m.weight_ih_l0)
        cell.weight_hh.copy_(m.weight_hh_l0)
        cell.bias_ih.copy_(m.bias_ih_l0)
        cell.bias_hh.copy_(m.bias_hh_l0)
    x, (c0, h0) = _data()
    h_t, c_t = cell(torch.tensor(x[:, 0]), (torch.tensor(h0), torch.tensor(c0)))
    out, (c, h) = layers.lstm_cell(jnp.asarray(x[:, 0]), (c0, h0), 0, *_lstm_params(m))
    np.testing.assert_allclose(out, _np(h_t), **TOL)
    np.testing.assert_allclose(h, _np(h_t), **TOL)
    np.testing.assert_allclose(c, _np(c_t), **TOL)


def test_no_bias_means_zero_bias():
    ik, hk, _ = _random_lstm_params()
    x, (c0, h0) = _data()
    zero = {k: jnp.zeros(U) for k in LSTM_B}
    a = layers.lstm(x, (c0, h0), 0, ik, hk)
    b = layers.lstm(x, (c0, h0), 0, ik, hk, zero)
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, **TOL), a, b)


def _np_lstm(x, c, h, ik, hk, bias, gate, act):
    """Plain numpy loop of Axon's LSTM equations."""
    ik = {k: np.asarray(v) for k, v in ik.items()}
    hk = {k: np.asarray(v) for k, v in hk.items()}
    bias = {k: np.asarray(v) for k, v in bias.items()}
    outs = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        i = gate(xt @ ik["wii"] + h @ hk["whi"] + bias["bi"])
        f = gate(xt @ ik["wif"] + h @ hk["whf"] + bias["bf"])
        g = act(xt @ ik["wig"] + h @ hk["whg"] + bias["bg"])
        o = gate(xt @ ik["wio"] + h @ hk["who"] + bias["bo"])
        c = f * c + i * g
        h = o * act(c)
        outs.append(h)
    return np.stack(outs, 1), c, h


def test_lstm_activation_and_gate_options():
    ik, hk, bias = _random_lstm_params()
    x, (c0, h0) = _data()

    def relu(v):
        return np.maximum(v, 0)

    def hard_sigmoid(v):  # axon.activations.hard_sigmoid: clip(0.2 x + 0.5, 0, 1)
        return np.clip(0.2 * v + 0.5, 0, 1)

    ref = _np_lstm(x, c0, h0, ik, hk, bias, hard_sigmoid, relu)
    for unroll in ("static", "dynamic"):
        out, (c, h) = layers.lstm(
            x, (c0, h0), 0, ik, hk, bias, unroll=unroll, activation="relu", gate="hard_sigmoid"
        )
        for got, want in zip((out, c, h), ref, strict=True):
            np.testing.assert_allclose(got, want, **TOL)
    # callables are accepted too
    out, _ = layers.lstm(
        x,
        (c0, h0),
        0,
        ik,
        hk,
        bias,
        activation=jax.nn.relu,
        gate=lambda v: jnp.clip(0.2 * v + 0.5, 0, 1),
    )
    np.testing.assert_allclose(out, ref[0], **TOL)


# ---------------------------------------------------------------------------------- masking


def _torch_masked_loop(cell, x, state, mask):
    """Step a torch cell, keeping the previous state where mask == 1."""
    torch = pytest.importorskip("torch")
    outs = []
    for t in range(x.shape[1]):
        new = cell(x[:, t], state)
        keep = torch.tensor(mask[:, t : t + 1] == 1)
        if isinstance(new, tuple):
            state = tuple(torch.where(keep, s, n) for s, n in zip(state, new, strict=True))
            outs.append(state[0])
        else:
            state = torch.where(keep, state, new)
            outs.append(state)
    return torch.stack(outs, 1), state


MASK = np.array([[0, 1, 1, 0, 1], [1, 0, 0, 1, 0]], dtype=np.int32)


@pytest.mark.parametrize("unroll", ["static", "dynamic"])
def test_masked_lstm_matches_torch_step_loop(unroll, torch):
    m = _torch_lstm()
    cell = torch.nn.LSTMCell(F, U)
    with torch.no_grad():
        for a, b in [
            ("weight_ih", "weight_ih_l0"),
            ("weight_hh", "weight_hh_l0"),
            ("bias_ih", "bias_ih_l0"),
            ("bias_hh", "bias_hh_l0"),
        ]:
            getattr(cell, a).copy_(getattr(m, b))
    x, (c0, h0) = _data()
    with torch.no_grad():
        out_t, (h_t, c_t) = _torch_masked_loop(
            cell, torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)), MASK
        )
    out, (c, h) = layers.lstm(x, (c0, h0), jnp.asarray(MASK), *_lstm_params(m), unroll=unroll)
    np.testing.assert_allclose(out, _np(out_t), **TOL)
    np.testing.assert_allclose(c, _np(c_t), **TOL)
    np.testing.assert_allclose(h, _np(h_t), **TOL)


@pytest.mark.parametrize("unroll", ["static", "dynamic"])
def test_masked_gru_matches_torch_step_loop(unroll, torch):
    m = _torch_gru()
    cell = torch.nn.GRUCell(F, U)
    with torch.no_grad():
        for a, b in [
            ("weight_ih", "weight_ih_l0"),
            ("weight_hh", "weight_hh_l0"),
            ("bias_ih", "bias_ih_l0"),
            ("bias_hh", "bias_hh_l0"),
        ]:
            getattr(cell, a).copy_(getattr(m, b))
    x, (h0,) = _data(n_state=1)
    with torch.no_grad():
        out_t, h_t = _torch_masked_loop(cell, torch.tensor(x), torch.tensor(h0), MASK)
    out, (h,) = layers.gru(x, (h0,), jnp.asarray(MASK), *_gru_params(m), unroll=unroll)
    np.testing.assert_allclose(out, _np(out_t), **TOL)
    np.testing.assert_allclose(h, _np(h_t), **TOL)


def test_masked_step_keeps_previous_state_by_hand():
    ik, hk, bias = _random_lstm_params()
    x, (c0, h0) = _data()
    mask = np.zeros((B, T), np.int32)
    mask[0, 2] = 1
    out, (c, h) = layers.lstm(x, (c0, h0), mask, ik, hk, bias)
    plain, _ = layers.lstm(x, (c0, h0), 0, ik, hk, bias)
    # example 0: step 2 repeats step 1's output; example 1 is untouched
    np.testing.assert_array_equal(out[0, 2], out[0, 1])
    np.testing.assert_array_equal(out[0, :2], plain[0, :2])
    np.testing.assert_array_equal(out[1], plain[1])
    # masking everything keeps the initial state throughout
    out, (c, h) = layers.lstm(x, (c0, h0), 1, ik, hk, bias, unroll="dynamic")
    np.testing.assert_array_equal(c, c0)
    np.testing.assert_array_equal(h, h0)
    np.testing.assert_array_equal(out, np.broadcast_to(h0[:, None], (B, T, U)))
    # a masked first step of the GRU is the initial state, a (B, 1) mask applies to every step
    gik, ghk, gb = _random_gru_params()
    out, (h,) = layers.gru(x, (h0,), np.array([[1], [0]]), gik, ghk, gb)
    np.testing.assert_array_equal(out[0], np.broadcast_to(h0[0], (T, U)))
    assert not np.allclose(out[1, 0], h0[1])


def test_mask_from_tokens():
    tokens = jnp.array([[4, 7, 0, 0], [1, 0, 2, 0]])
    mask = layers.mask_from_tokens(tokens, 0)
    assert mask.dtype == jnp.int32
    assert mask.tolist() == [[0, 0, 1, 1], [0, 1, 0, 1]]


# ---------------------------------------------------------------------------------- unrolls


def _assert_tree_close(a, b, **tol):
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, **(tol or TOL)), a, b)


def _check_static_equals_dynamic(cell, x, carry, mask, ik, hk, bias):
    """Values and gradients (w.r.t. inputs, carry and parameters) of both unrolls agree."""

    def run(unroll):
        unroll_fn = layers.static_unroll if unroll == "static" else layers.dynamic_unroll

        def loss(x, carry, ik, hk, bias):
            out, new_carry = unroll_fn(cell, x, carry, mask, ik, hk, bias)
            return jnp.sum(jnp.sin(out)) + sum(jnp.sum(c**2) for c in new_carry), (out, new_carry)

        return _grad(loss, (0, 1, 2, 3, 4), unroll)(x, carry, ik, hk, bias)

    (gs, vs), (gd, vd) = run("static"), run("dynamic")
    _assert_tree_close(vs, vd)
    _assert_tree_close(gs, gd)


def test_static_and_dynamic_unroll_agree_lstm_gru():
    x, (c0, h0) = _data()
    mask = jnp.asarray(MASK)
    _check_static_equals_dynamic(
        layers.lstm_cell, jnp.asarray(x), (c0, h0), mask, *_random_lstm_params()
    )
    _check_static_equals_dynamic(
        layers.gru_cell, jnp.asarray(x), (jnp.asarray(h0),), mask, *_random_gru_params()
    )


def test_unrolls_accept_pytree_outputs_and_custom_cells():
    def cell(x, carry, mask, ik, hk, bias):
        (s,) = carry
        s = s + x @ ik
        return {"s": s, "x": x}, (s,)

    x = jnp.arange(12.0).reshape(1, 4, 3)
    ik = jnp.ones((3, 2))
    for fn in (layers.static_unroll, layers.dynamic_unroll):
        out, (s,) = fn(cell, x, (jnp.zeros((1, 2)),), 0, ik, None, None)
        assert out["x"].shape == (1, 4, 3)
        # running sums of the row sums 3, 12, 21, 30
        assert out["s"][0, :, 0].tolist() == [3.0, 15.0, 36.0, 66.0]
        assert s.tolist() == [[66.0, 66.0]]


def test_dynamic_unroll_casts_carry_to_the_cell_dtype():
    ik, hk, bias = _random_gru_params()
    x, (h0,) = _data(n_state=1)
    out_d, (h_d,) = layers.gru(
        x, (jnp.asarray(h0, jnp.bfloat16),), 0, ik, hk, bias, unroll="dynamic"
    )
    out_s, (h_s,) = layers.gru(
        x, (jnp.asarray(h0, jnp.bfloat16),), 0, ik, hk, bias, unroll="static"
    )
    assert h_d.dtype == h_s.dtype == jnp.float32
    _assert_tree_close((out_d, h_d), (out_s, h_s))


def test_jit_equals_eager():
    x, (c0, h0) = _data()
    mask = jnp.asarray(MASK)
    params = _random_lstm_params()
    for unroll in ("static", "dynamic"):
        f = functools.partial(layers.lstm, unroll=unroll)
        _assert_tree_close(jax.jit(f)(x, (c0, h0), mask, *params), f(x, (c0, h0), mask, *params))
    f = functools.partial(layers.gru, unroll="dynamic")
    params = _random_gru_params()
    _assert_tree_close(jax.jit(f)(x, (h0,), mask, *params), f(x, (h0,), mask, *params))


# ---------------------------------------------------------------------------------- ConvLSTM


def _same_pads(size, k, s):
    total = max((-(-size // s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _torch_conv(x, w, strides, pads):
    """Channels-first convolution with explicit (lo, hi) pads, any spatial rank."""
    torch = pytest.importorskip("torch")
    flat = [p for lo_hi in reversed(pads) for p in lo_hi]
    conv = {
        1: torch.nn.functional.conv1d,
        2: torch.nn.functional.conv2d,
        3: torch.nn.functional.conv3d,
    }[x.dim() - 2]
    return conv(torch.nn.functional.pad(x, flat), w, stride=strides)


def _torch_conv_lstm(x, c, h, wi, wh, b, mask, strides, padding):
    """Axon's ConvLSTM equations, one torch step at a time; carry (B, units, *spatial)."""
    torch = pytest.importorskip("torch")
    k = wi.shape[2:]
    n = len(k)
    size = x.shape[3:]
    if padding == "same":
        pads = [_same_pads(size[d], k[d], strides[d]) for d in range(n)]
    elif padding == "valid":
        pads = [(0, 0)] * n
    else:
        pads = padding
    # the hidden-to-hidden convolution: stride 1, "same" unless explicit pads are given
    hpads = (
        padding
        if isinstance(padding, list)
        else [_same_pads(c.shape[2 + d], k[d], 1) for d in range(n)]
    )
    outs = []
    for t in range(x.shape[1]):
        gates = (
            _torch_conv(x[:, t], wi, strides, pads)
            + b.reshape((-1,) + (1,) * n)
            + _torch_conv(h, wh, (1,) * n, hpads)
        )
        i, g, f, o = torch.chunk(gates, 4, dim=1)
        new_c = torch.sigmoid(f + 1) * c + torch.sigmoid(i) * torch.tanh(g)
        new_h = torch.sigmoid(o) * torch.tanh(new_c)
        keep = torch.tensor(mask[:, t] == 1).reshape((-1,) + (1,) * (n + 1))
        c, h = torch.where(keep, c, new_c), torch.where(keep, h, new_h)
        outs.append(h)
    return torch.stack(outs, 1), c, h


CONV_CASES = [
    # (spatial, kernel, strides, padding, masked, unrolls, axon_layout)
    ((6, 5), (3, 3), (1, 1), "same", True, ("static", "dynamic"), True),
    ((7, 6), (3, 2), (2, 1), "valid", False, ("dynamic",), True),
    ((8,), (3,), (2,), [(2, 0)], True, ("static",), False),
]


@pytest.mark.parametrize(
    ("spatial", "ksize", "strides", "padding", "masked", "unrolls", "axon_layout"), CONV_CASES
)
def test_conv_lstm_matches_torch_reference(
    spatial, ksize, strides, padding, masked, unrolls, axon_layout, torch
):
    C, units, T = 2, 3, 3  # few steps: compile time grows with the unrolled length
    rng = np.random.default_rng(3)
    pads = [(0, 0)] * len(spatial) if padding == "valid" else padding
    if padding == "same":
        out_sp = tuple(-(-s // st) for s, st in zip(spatial, strides, strict=True))
    else:
        out_sp = tuple(
            (s + lo + hi - k) // st + 1
            for s, (lo, hi), k, st in zip(spatial, pads, ksize, strides, strict=True)
        )
    x = rng.standard_normal((B, T, C, *spatial)).astype(np.float32)
    wi = (rng.standard_normal((4 * units, C, *ksize)) * 0.3).astype(np.float32)
    wh = (rng.standard_normal((4 * units, units, *ksize)) * 0.3).astype(np.float32)
    b = (rng.standard_normal(4 * units) * 0.1).astype(np.float32)
    c0, h0 = ((rng.standard_normal((B, units, *out_sp)) * 0.5).astype(np.float32) for _ in range(2))
    mask = MASK[:, :T] if masked else np.zeros((B, T), np.int32)
    w_out = rng.standard_normal((B, T, units, *out_sp)).astype(np.float32)

    tt = [torch.tensor(a, requires_grad=True) for a in (x, c0, h0, wi, wh, b)]
    out_t, c_t, h_t = _torch_conv_lstm(*tt, mask, strides, padding)
    ((out_t * torch.tensor(w_out)).sum() + (c_t**2).sum() + h_t.sum()).backward()

    # Axon's carry layout has an extra size-1 axis: (batch, 1, units, *spatial)
    def lay(a):
        return a[:, None] if axon_layout else a

    def unlay(a):
        return a[:, 0] if axon_layout else a

    results = []
    for unroll in unrolls:

        def loss(x, c0, h0, wi, wh, b, unroll=unroll):
            out, (c, h) = layers.conv_lstm(
                x,
                (c0, h0),
                jnp.asarray(mask) if masked else 0,
                wi,
                wh,
                b,
                unroll=unroll,
                strides=strides,
                padding=padding,
            )
            return jnp.sum(out * w_out) + jnp.sum(unlay(c) ** 2) + jnp.sum(h), (out, c, h)

        grad_fn = jax.jit(jax.grad(loss, argnums=tuple(range(6)), has_aux=True))
        grads, (out, c, h) = grad_fn(x, lay(c0), lay(h0), wi, wh, b)
        assert c.shape == h.shape == lay(c0).shape
        np.testing.assert_allclose(out, _np(out_t), **TOL)
        np.testing.assert_allclose(unlay(c), _np(c_t), **TOL)
        np.testing.assert_allclose(unlay(h), _np(h_t), **TOL)
        np.testing.assert_allclose(grads[0], _np(tt[0].grad), **TOL)
        np.testing.assert_allclose(unlay(grads[1]), _np(tt[1].grad), **TOL)
        np.testing.assert_allclose(unlay(grads[2]), _np(tt[2].grad), **TOL)
        for g, ref in zip(grads[3:], tt[3:], strict=True):
            np.testing.assert_allclose(g, _np(ref.grad), rtol=1e-4, atol=1e-4)
        results.append((grads, out, c, h))
    if len(results) == 2:  # static and dynamic unrolls agree with each other, values and gradients
        _assert_tree_close(results[0], results[1])


def test_conv_lstm_without_bias_and_forget_bias_of_one():
    # zero kernels: i = o = sigmoid(0), g = 0, f = sigmoid(1) -> c' = sigmoid(1)·c, h' = 0.5·tanh(c')
    c0 = jnp.full((1, 1, 2, 3), 2.0)
    out, (c, _) = layers.conv_lstm(
        jnp.ones((1, 1, 1, 3)), (c0, c0), 0, jnp.zeros((8, 1, 1)), jnp.zeros((8, 2, 1))
    )
    sig1 = 1 / (1 + np.exp(-1.0))
    np.testing.assert_allclose(c, np.full((1, 1, 2, 3), 2.0 * sig1), rtol=1e-6)
    np.testing.assert_allclose(out[:, 0], np.full((1, 2, 3), 0.5 * np.tanh(2.0 * sig1)), rtol=1e-6)


# ---------------------------------------------------------------------------------- errors


def test_option_and_shape_errors():
    ik, hk, bias = _random_lstm_params()
    gik, ghk, gb = _random_gru_params()
    x, (c0, h0) = _data()
    with pytest.raises(
        ValueError, match=r"lstm: expected unroll to be 'static' or 'dynamic', got 'fast'"
    ):
        layers.lstm(x, (c0, h0), 0, ik, hk, bias, unroll="fast")
    with pytest.raises(ValueError, match=r"gru: expected unroll .* got 'scan'"):
        layers.gru(x, (h0,), 0, gik, ghk, gb, unroll="scan")
    with pytest.raises(
        ValueError, match=r"lstm: expected input of rank 3 \(batch, time, features\), got rank 2"
    ):
        layers.lstm(x[:, 0], (c0, h0), 0, ik, hk, bias)
    with pytest.raises(ValueError, match=r"gru: expected input of rank 3"):
        layers.gru(x[..., None], (h0,), 0, gik, ghk, gb)
    with pytest.raises(
        ValueError, match=r"lstm: unknown activation 'swishy'.*\(option activation\)"
    ):
        layers.lstm(x, (c0, h0), 0, ik, hk, bias, activation="swishy")
    with pytest.raises(ValueError, match=r"lstm: expected the carry .* \(c, h\)"):
        layers.lstm(x, (h0,), 0, ik, hk, bias)
    with pytest.raises(ValueError, match=r"gru: expected the carry .* \(h,\)"):
        layers.gru(x, h0, 0, gik, ghk, gb)
    with pytest.raises(ValueError, match=r"lstm: input_kernel is missing keys \['wio'\]"):
        layers.lstm(x, (c0, h0), 0, {k: v for k, v in ik.items() if k != "wio"}, hk, bias)
    with pytest.raises(
        ValueError, match=r"lstm: expected input_kernel\['wii'\] to have shape \(3, 4\)"
    ):
        layers.lstm(x, (c0, h0), 0, {**ik, "wii": jnp.zeros((2, 4))}, hk, bias)
    with pytest.raises(
        ValueError, match=r"lstm: expected mask to be a scalar, \(2, 1\) or \(2, 5\)"
    ):
        layers.lstm(x, (c0, h0), jnp.zeros((2, 4)), ik, hk, bias)
    with pytest.raises(ValueError, match=r"conv_lstm: expected input of rank at least 4"):
        layers.conv_lstm(x, (c0, h0), 0, jnp.zeros((16, 3, 1)), jnp.zeros((16, 4, 1)))
    with pytest.raises(ValueError, match=r"conv_lstm: expected unroll"):
        layers.conv_lstm(
            x[..., None], (c0, h0), 0, jnp.zeros((16, 3, 1)), jnp.zeros((16, 4, 1)), unroll="x"
        )
    with pytest.raises(ValueError, match=r"conv_lstm_cell: the hidden-to-hidden convolution"):
        s = jnp.zeros((B, 1, 4, 5))
        layers.conv_lstm(
            jnp.ones((B, T, 3, 4)),
            (s, s),
            0,
            jnp.zeros((16, 3, 3)),
            jnp.zeros((16, 4, 3)),
            padding=[(2, 1)],
        )
    with pytest.raises(
        ValueError, match=r"conv_lstm_cell: the input convolution gives gates of shape"
    ):
        s = jnp.zeros((B, 1, 4, 2))
        layers.conv_lstm(
            jnp.ones((B, T, 3, 4)), (s, s), 0, jnp.zeros((16, 3, 1)), jnp.zeros((16, 4, 1))
        )


def test_public_names():
    for name in rnn.__all__:
        assert getattr(layers, name) is getattr(rnn, name)
