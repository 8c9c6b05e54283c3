"""Recurrent graph layers (``mask``, ``lstm``, ``gru``, ``conv_lstm``, ``bidirectional``)
through the shared conformance check, compared with torch (``nn.LSTM``/``nn.GRU`` and
their cells, with copied weights; ConvLSTM written with ``torch.nn.functional.conv2d`` from
Axon's cell equations).

Part of the layer-family conformance suite (split from test_layer_families.py to keep each
file fast)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon
from axon import layers
from tests.conformance import check_layer

RNG = np.random.default_rng(1)
F32, U32 = "float32", "uint32"
B, T, F = 2, 4, 3


def x_of(*shape):
    return jnp.asarray(RNG.normal(size=shape).astype(np.float32))


def close(a, b, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=atol)


def t(a):
    torch = pytest.importorskip("torch")
    return torch.tensor(np.asarray(a), dtype=torch.float64)


def j(a):
    return jnp.asarray(a.detach().numpy(), jnp.float32)


def lstm_params(w_ih, w_hh, b_ih, b_hh):
    """Axon's per-gate LSTM parameters from torch's (gate order i, f, g, o)."""
    wi, wh, bi, bh = (np.split(a.detach().numpy(), 4) for a in (w_ih, w_hh, b_ih, b_hh))
    return {
        "input_kernel": {k: jnp.asarray(w.T) for k, w in zip(("wii", "wif", "wig", "wio"), wi)},
        "hidden_kernel": {k: jnp.asarray(w.T) for k, w in zip(("whi", "whf", "whg", "who"), wh)},
        "bias": {k: jnp.asarray(a + b) for k, a, b in zip(("bi", "bf", "bg", "bo"), bi, bh)},
    }


def gru_params(w_ih, w_hh, b_ih, b_hh):
    """Axon's per-gate GRU parameters from torch's (gate order r, z, n)."""
    wi, wh, bi, bh = (np.split(a.detach().numpy(), 3) for a in (w_ih, w_hh, b_ih, b_hh))
    return {
        "input_kernel": {k: jnp.asarray(w.T) for k, w in zip(("wir", "wiz", "win"), wi)},
        "hidden_kernel": {k: jnp.asarray(w.T) for k, w in zip(("whr", "whz", "whn"), wh)},
        "bias": {"br": jnp.asarray(bi[0] + bh[0]), "bz": jnp.asarray(bi[1] + bh[1]),
                 "bin": jnp.asarray(bi[2]), "bhn": jnp.asarray(bh[2])},
    }


def spec_of(layer, kind, features, units, use_bias=True):
    keys = {"lstm": (("wii", "wif", "wig", "wio"), ("whi", "whf", "whg", "who"), ("bi", "bf", "bg", "bo")),
            "gru": (("wir", "wiz", "win"), ("whr", "whz", "whn"), ("br", "bz", "bin", "bhn"))}[kind]
    spec = {f"{layer}/input_kernel/{k}": ((features, units), F32) for k in keys[0]}
    spec.update({f"{layer}/hidden_kernel/{k}": ((units, units), F32) for k in keys[1]})
    if use_bias:
        spec.update({f"{layer}/bias/{k}": ((units,), F32) for k in keys[2]})
    return spec


def masked_torch_loop(cell, x, state, mask):
    """A torch cell stepped over time; where mask = 1 the previous state is kept (Axon)."""
    torch = pytest.importorskip("torch")
    outs = []
    for step in range(x.shape[1]):
        new = cell(x[:, step], state if isinstance(cell, torch.nn.LSTMCell) else state[0])
        new = new if isinstance(new, tuple) else (new,)
        keep = mask[:, step : step + 1].bool()
        state = tuple(torch.where(keep, old, n) for old, n in zip(state, new))
        outs.append(state[0])
    return torch.stack(outs, 1), state


@pytest.fixture(scope="module")
def torch_modules(torch):
    torch.manual_seed(0)
    return {
        "lstm": torch.nn.LSTM(F, 4, batch_first=True).double(),
        "lstm_cell": torch.nn.LSTMCell(F, 4).double(),
        "gru": torch.nn.GRU(F, 3, batch_first=True).double(),
        "gru_cell": torch.nn.GRUCell(F, 3).double(),
    }


def test_lstm_and_gru_against_torch(torch_modules, torch):
    tm = torch_modules
    x = axon.input("x", shape=(None, T, F))
    ids = axon.input("ids", shape=(None, T))
    c0, h0, g0 = (axon.input(n, shape=(None, u)) for n, u in (("c0", 4), ("h0", 4), ("g0", 3)))
    skip = axon.mask(ids, 0)
    seq_a, (c_a, h_a) = axon.lstm(x, 4, unroll="static")
    seq_b, (c_b, h_b) = axon.lstm(x, (c0, h0), 4, mask=skip)
    seq_c, (h_c,) = axon.gru(x, 3)
    seq_d, (h_d,) = axon.gru(x, (g0,), 3, unroll="static", mask=skip)
    model = axon.container([seq_a, c_a, h_a, seq_b, c_b, h_b, seq_c, h_c, seq_d, h_d])
    token_ids = np.array([[3, 0, 4, 0], [1, 2, 0, 5]])
    inputs = {"x": x_of(B, T, F), "ids": jnp.asarray(token_ids, jnp.int32), "c0": x_of(B, 4), "h0": x_of(B, 4),
              "g0": x_of(B, 3)}
    lstm, cell, gru, gcell = tm["lstm"], tm["lstm_cell"], tm["gru"], tm["gru_cell"]
    init_state = {
        "lstm_0": lstm_params(lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0),
        "lstm_1": lstm_params(cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh),
        "gru_0": gru_params(gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0),
        "gru_1": gru_params(gcell.weight_ih, gcell.weight_hh, gcell.bias_ih, gcell.bias_hh),
    }
    spec = {**spec_of("lstm_0", "lstm", F, 4), **spec_of("lstm_1", "lstm", F, 4),
            **spec_of("gru_0", "gru", F, 3), **spec_of("gru_1", "gru", F, 3)}
    xt = t(inputs["x"])
    mask = torch.tensor(token_ids == 0, dtype=torch.float64)
    with torch.no_grad():
        seq, (h_n, c_n) = lstm(xt)
        refs = [seq, c_n[0], h_n[0]]
        seq, (h, c) = masked_torch_loop(cell, xt, (t(inputs["h0"]), t(inputs["c0"])), mask)
        refs += [seq, c, h]
        seq, h_n = gru(xt)
        refs += [seq, h_n[0]]
        seq, (h,) = masked_torch_loop(gcell, xt, (t(inputs["g0"]),), mask)
        refs += [seq, h]
    res = {}
    check_layer(model, inputs, spec, init_state=init_state, expected=[r.numpy() for r in refs], results=res)
    out = res["inference"]
    # masked steps carry the state: step 1 of example 0 repeats step 0
    np.testing.assert_array_equal(out[3][0, 1], out[3][0, 0])


def test_recurrent_naming_and_structure():
    x = axon.input("x", shape=(None, T, F))
    seq, (c, h) = axon.lstm(x, 4)
    assert list(axon.properties(axon.container((seq, c, h)))) == [
        "x", "lstm_0", "lstm_0_output_sequence", "lstm_0_c_hidden_state", "lstm_0_h_hidden_state", "container_0"]
    seq2, (h2,) = axon.gru(seq, 2, name="decoder")
    names = axon.properties(axon.container((seq2, h2)))
    assert names["decoder"] == "gru" and names["decoder_output_sequence"] == "gru_output_sequence"
    assert "decoder_hidden_state" in names
    state = axon.init(seq2, axon.template((B, T, F)))
    assert set(state.keys()) == {"lstm_0", "decoder"}
    assert set(state.trainable_parameters()["decoder"]) == {"input_kernel", "hidden_kernel", "bias"}
    # default initializers: glorot_uniform kernels, zero biases; no state without recurrent_initializer
    kernel = np.asarray(state["decoder"]["input_kernel"]["wir"])
    limit = np.sqrt(6 / (4 + 2))
    assert kernel.shape == (4, 2) and np.all(np.abs(kernel) <= limit) and np.any(kernel != 0)
    assert all(np.all(np.asarray(b) == 0) for b in state["decoder"]["bias"].values())
    assert state.state_paths == set()
    with pytest.raises(TypeError, match="cannot be iterated"):
        _seq, _state = axon.lstm(x, 4)[0]


def test_random_initial_state_from_key():
    x = axon.input("x", shape=(None, T, F))
    seq, (c, _) = axon.lstm(x, 4, recurrent_initializer="normal", seed=3, use_bias=False)
    model = axon.container((seq, c))
    xv = x_of(B, T, F)
    spec = spec_of("lstm_0", "lstm", F, 4, use_bias=False)
    init_state = {"lstm_0": {"input_kernel": {k: x_of(F, 4) for k in ("wii", "wif", "wig", "wio")},
                             "hidden_kernel": {k: x_of(4, 4) * 0.5 for k in ("whi", "whf", "whg", "who")}}}
    # the initial (c, h) are drawn from the key with the initializer: check against the functional layer
    new_key, sub = jax.random.split(jax.random.PRNGKey(3))
    kc, kh = jax.random.split(sub)
    draw = axon.initializers.normal()
    c0, h0 = draw(kc, (B, 4), jnp.float32), draw(kh, (B, 4), jnp.float32)
    p = init_state["lstm_0"]
    run = jax.jit(lambda c, h: layers.lstm(xv, (c, h), None, p["input_kernel"], p["hidden_kernel"], None))
    ref_seq, (ref_c, _) = run(c0, h0)
    res = {}
    state = check_layer(model, xv, spec, state={"lstm_0/key": ((2,), U32)}, init_state=init_state,
                        expected=(ref_seq, ref_c), results=res)
    np.testing.assert_array_equal(state["lstm_0"]["key"], jax.random.PRNGKey(3))
    out = res["inference"]
    assert not np.allclose(out[1], run(0 * c0, 0 * h0)[1][0])  # not the zero state
    # train mode draws the same state and advances the key (the next step draws another state)
    step = res["train"]
    np.testing.assert_array_equal(step.state["lstm_0"]["key"], new_key)
    close(step.prediction[0], ref_seq)


def conv_lstm_torch(x, w_i, w_h, b, c, h):
    """Axon's ConvLSTM cell unrolled, written with torch: gates = conv(x, Wi) + b + conv(h, Wh)
    ('same' padding, stride 1) split into i, g, f, o; c' = σ(f + 1)·c + σ(i)·tanh(g);
    h' = σ(o)·tanh(c')."""
    torch = pytest.importorskip("torch")
    outs = []
    for step in range(x.shape[1]):
        gates = torch.nn.functional.conv2d(x[:, step], w_i, b, padding="same")
        gates = gates + torch.nn.functional.conv2d(h, w_h, padding="same")
        i, g, f, o = torch.chunk(gates, 4, dim=1)
        c = torch.sigmoid(f + 1) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs, 1), c, h


def test_conv_lstm_against_torch(torch):
    x = axon.input("x", shape=(None, 2, 2, 5, 5))
    c0, h0 = axon.input("c0", shape=(None, 1, 3, 5, 5)), axon.input("h0", shape=(None, 1, 3, 5, 5))
    seq_a, (c_a, h_a) = axon.conv_lstm(x, 3, kernel_size=3, unroll="static")
    seq_b, (c_b, h_b) = axon.conv_lstm(x, (c0, h0), 3, kernel_size=3, use_bias=False)
    model = axon.container([seq_a, c_a, h_a, seq_b, c_b, h_b])
    inputs = {"x": x_of(B, 2, 2, 5, 5), "c0": x_of(B, 1, 3, 5, 5), "h0": x_of(B, 1, 3, 5, 5)}
    spec = {"conv_lstm_0/input_kernel": ((12, 2, 3, 3), F32), "conv_lstm_0/hidden_kernel": ((12, 3, 3, 3), F32),
            "conv_lstm_0/bias": ((12,), F32),
            "conv_lstm_1/input_kernel": ((12, 2, 3, 3), F32), "conv_lstm_1/hidden_kernel": ((12, 3, 3, 3), F32)}
    init_state = {"conv_lstm_0": {"input_kernel": x_of(12, 2, 3, 3) * 0.3, "hidden_kernel": x_of(12, 3, 3, 3) * 0.3,
                                  "bias": x_of(12) * 0.3},
                  "conv_lstm_1": {"input_kernel": x_of(12, 2, 3, 3) * 0.3, "hidden_kernel": x_of(12, 3, 3, 3) * 0.3}}
    p0, p1 = init_state["conv_lstm_0"], init_state["conv_lstm_1"]
    zeros = torch.zeros(B, 3, 5, 5, dtype=torch.float64)
    xt = t(inputs["x"])
    seq, c, h = conv_lstm_torch(xt, t(p0["input_kernel"]), t(p0["hidden_kernel"]), t(p0["bias"]), zeros, zeros)
    refs = [seq, c[:, None], h[:, None]]
    seq, c, h = conv_lstm_torch(xt, t(p1["input_kernel"]), t(p1["hidden_kernel"]), None,
                                t(inputs["c0"])[:, 0], t(inputs["h0"])[:, 0])
    refs += [seq, c[:, None], h[:, None]]
    res = {}
    check_layer(model, inputs, spec, init_state=init_state, expected=[r.numpy() for r in refs], results=res)
    assert [o.shape for o in res["inference"][:3]] == [(B, 2, 3, 5, 5), (B, 1, 3, 5, 5), (B, 1, 3, 5, 5)]


def test_bidirectional_lstm_against_torch(torch):
    x = axon.input("x", shape=(None, T, F))
    seq, (c, h) = axon.bidirectional(x, lambda v: axon.lstm(v, 4), axon.concatenate, name="bi")
    model = axon.container((seq, c, h))
    torch.manual_seed(1)
    ref = torch.nn.LSTM(F, 4, batch_first=True, bidirectional=True).double()
    with torch.no_grad():  # Axon shares one parameter set between the directions
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(ref, name + "_reverse").copy_(getattr(ref, name))
    init_state = {"bi": {"lstm_0": lstm_params(ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0, ref.bias_hh_l0)}}
    spec = {f"bi/{k}": v for k, v in spec_of("lstm_0", "lstm", F, 4).items()}
    xv = x_of(B, T, F)
    with torch.no_grad():
        r_seq, (r_h, r_c) = ref(t(xv))
    # (B, T, 2·units): forward then un-reversed backward outputs; final states concatenated
    refs = (r_seq.numpy(), torch.cat([r_c[0], r_c[1]], -1).numpy(), torch.cat([r_h[0], r_h[1]], -1).numpy())
    state = check_layer(model, xv, spec, init_state=init_state, expected=refs)
    assert list(state.keys()) == ["bi"]


def test_bidirectional_with_a_single_graph_and_add():
    x = axon.input("x", shape=(None, 4, 2))
    model = axon.bidirectional(x, lambda v: axon.dense(v, 3), axon.add)
    xv = x_of(1, 4, 2)

    def expected(state):  # per-step dense: reversing, applying and un-reversing is the same
        k, b = np.asarray(state["block_0"]["dense_0"]["kernel"]), np.asarray(state["block_0"]["dense_0"]["bias"])
        return 2 * (np.asarray(xv) @ k + b)

    check_layer(model, xv, {"block_0/dense_0/kernel": ((2, 3), F32), "block_0/dense_0/bias": ((3,), F32)},
                expected=expected)


def test_gru_conv_lstm_and_bidirectional_gru_against_the_functional_layers():
    # the recurrent family without torch: the functional layers (tested against torch in
    # tests/layers/test_recurrent.py) as the reference
    x = axon.input("x", shape=(None, T, F))
    ids = axon.input("ids", shape=(None, T))
    v = axon.input("v", shape=(None, 2, 1, 3, 3))
    seq_g, (h_g,) = axon.gru(x, 3, mask=axon.mask(ids, 0))
    seq_c, (c_c, h_c) = axon.conv_lstm(v, 2, kernel_size=(2, 2), padding="same")
    seq_b, (h_b,) = axon.bidirectional(x, lambda s: axon.gru(s, 2, unroll="static"), axon.concatenate, name="bi")
    model = axon.container([seq_g, h_g, seq_c, c_c, h_c, seq_b, h_b])
    token_ids = np.array([[3, 0, 4, 0], [1, 2, 0, 5]])
    inputs = {"x": x_of(B, T, F), "ids": jnp.asarray(token_ids, jnp.int32), "v": x_of(B, 2, 1, 3, 3)}
    spec = {**spec_of("gru_0", "gru", F, 3), **{f"bi/{k}": s for k, s in spec_of("gru_0", "gru", F, 2).items()},
            "conv_lstm_0/input_kernel": ((8, 1, 2, 2), F32), "conv_lstm_0/hidden_kernel": ((8, 2, 2, 2), F32),
            "conv_lstm_0/bias": ((8,), F32)}
    init_state = {}
    for path, (shape, _) in spec.items():
        *parents, leaf = path.split("/")
        d = init_state
        for name in parents:
            d = d.setdefault(name, {})
        d[leaf] = x_of(*shape) * 0.5
    xv, mask = inputs["x"], jnp.asarray(token_ids == 0, jnp.int32)
    g, c, bg = init_state["gru_0"], init_state["conv_lstm_0"], init_state["bi"]["gru_0"]
    zeros = jnp.zeros
    r_seq_g, (r_h_g,) = layers.gru(xv, (zeros((B, 3)),), mask, g["input_kernel"], g["hidden_kernel"], g["bias"])
    r_seq_c, (r_c_c, r_h_c) = layers.conv_lstm(inputs["v"], (zeros((B, 1, 2, 3, 3)),) * 2, 0, c["input_kernel"],
                                               c["hidden_kernel"], c["bias"], padding="same")
    fwd_seq, (fwd_h,) = layers.gru(xv, (zeros((B, 2)),), 0, bg["input_kernel"], bg["hidden_kernel"], bg["bias"])
    bwd_seq, (bwd_h,) = layers.gru(xv[:, ::-1], (zeros((B, 2)),), 0, bg["input_kernel"], bg["hidden_kernel"], bg["bias"])
    refs = [r_seq_g, r_h_g, r_seq_c, r_c_c, r_h_c,
            jnp.concatenate([fwd_seq, bwd_seq[:, ::-1]], -1), jnp.concatenate([fwd_h, bwd_h], -1)]
    check_layer(model, inputs, spec, init_state=init_state, expected=refs)


def test_recurrent_validation():
    x = axon.input("x", shape=(None, T, F))
    c, h = axon.input("c"), axon.input("h")
    with pytest.raises(ValueError, match="units"):
        axon.lstm(x, 0)
    with pytest.raises(TypeError, match="missing units"):
        axon.lstm(x, (c, h))
    with pytest.raises(TypeError, match=r"tuple \(c, h\)"):
        axon.lstm(x, (c,), 4)
    with pytest.raises(TypeError, match=r"tuple \(h,\)"):
        axon.gru(x, h, 4)
    with pytest.raises(ValueError, match="unroll"):
        axon.gru(x, 4, unroll="scan")
    with pytest.raises(ValueError, match="unknown activation"):
        axon.lstm(x, 4, activation="tanhh")
    with pytest.raises(ValueError, match="seed only applies"):
        axon.lstm(x, 4, seed=1)
    with pytest.raises(ValueError, match="cannot be combined"):
        axon.lstm(x, (c, h), 4, recurrent_initializer="normal")
    with pytest.raises(ValueError, match="recurrent_initializer"):
        axon.gru(x, 4, recurrent_initializer="orthogonall")
    with pytest.raises(TypeError, match="mask"):
        axon.lstm(x, 4, mask=np.zeros((2, 5)))
    with pytest.raises(TypeError, match="unexpected keyword"):
        axon.lstm(x, 4, return_sequences=True)
    with pytest.raises(ValueError, match="kernel_size"):
        axon.conv_lstm(x, 4, kernel_size=0)
    with pytest.raises(ValueError, match="padding"):
        axon.conv_lstm(x, 4, padding="full")
    with pytest.raises(TypeError, match="eos_token"):
        axon.mask(x, "0")
    with pytest.raises(TypeError, match="merge_fn"):
        axon.bidirectional(x, lambda v: v, None)
    with pytest.raises(TypeError, match="must return a graph"):
        axon.bidirectional(x, lambda v: v, lambda a, b: None)
    with pytest.raises(axon.CompileError, match=r"shape \(batch, time, features\)"):
        axon.init(axon.lstm(axon.input("y"), 4)[0], axon.template((2, 3)))
