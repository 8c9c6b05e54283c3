"""The gated-cell table of axon.layers.recurrent drives lstm/gru; bidirectional lives in its own module."""

import jax
import jax.numpy as jnp
import numpy as np

import axon
from axon import layers
from axon.api import bidirectional as bidirectional_module
from axon.api import recurrent as recurrent_api
from axon.layers.recurrent import GATED_CELLS

# Axon's parameter layouts (Axon.Layers.lstm / gru documentation)
AXON_KEYS = {
    "lstm": (("wii", "wif", "wig", "wio"), ("whi", "whf", "whg", "who"), ("bi", "bf", "bg", "bo")),
    "gru": (("wir", "wiz", "win"), ("whr", "whz", "whn"), ("br", "bz", "bin", "bhn")),
}


def test_table_rows_have_axon_layouts():
    assert set(GATED_CELLS) == {"lstm", "gru"}
    for kind, (ik, hk, bk) in AXON_KEYS.items():
        assert GATED_CELLS[kind].keys == (ik, hk, bk)
    assert GATED_CELLS["lstm"].carry == ("c", "h") and GATED_CELLS["gru"].carry == ("h",)


def test_graph_layers_declare_the_table_parameters():
    x = axon.input("x", shape=(None, 2, 3))
    for kind, make in (("lstm", axon.lstm), ("gru", axon.gru)):
        seq, _ = make(x, 4)
        state = axon.init(seq, axon.template((1, 2, 3)))
        params = state[f"{kind}_0"]
        ik, hk, bk = AXON_KEYS[kind]
        assert sorted(params["input_kernel"]) == sorted(ik)
        assert sorted(params["hidden_kernel"]) == sorted(hk)
        assert sorted(params["bias"]) == sorted(bk)


def test_gru_hidden_bias_sits_inside_the_reset_product():
    # n = tanh(x·Win + bin + r·(h·Whn + bhn)): with zero kernels, r = sigmoid(0) = 1/2,
    # z = 1/2, so h' = (1 - 1/2)·tanh(bin + bhn/2) + h/2 (hand-computed).
    ik = {k: jnp.zeros((1, 1)) for k in AXON_KEYS["gru"][0]}
    hk = {k: jnp.zeros((1, 1)) for k in AXON_KEYS["gru"][1]}
    bias = {"br": 0.0, "bz": 0.0, "bin": jnp.array([0.3]), "bhn": jnp.array([0.8])}
    h0 = jnp.array([[0.6]])
    h, _ = layers.gru_cell(jnp.ones((1, 1)), (h0,), 0, ik, hk, bias)
    np.testing.assert_allclose(h, 0.5 * np.tanh(0.3 + 0.8 / 2) + 0.3, rtol=1e-6)


def test_lstm_and_gru_share_the_driver_checks():
    x = jnp.ones((1, 2, 3))
    for kind, fn, carry in (("lstm", layers.lstm, (jnp.zeros((1, 4)),)), ("gru", layers.gru, jnp.zeros((1, 4)))):
        ik = {k: jnp.zeros((3, 4)) for k in AXON_KEYS[kind][0]}
        hk = {k: jnp.zeros((4, 4)) for k in AXON_KEYS[kind][1]}
        try:
            fn(x, carry, 0, ik, hk)
        except ValueError as e:
            assert str(e).startswith(f"{kind}: expected the carry")
        else:  # pragma: no cover
            raise AssertionError("a wrong carry was accepted")
    assert jax.tree_util.tree_structure(GATED_CELLS["gru"].carry) is not None


def test_bidirectional_has_its_own_module_and_keeps_its_old_names():
    assert axon.bidirectional is bidirectional_module.bidirectional
    assert recurrent_api.bidirectional is bidirectional_module.bidirectional
    assert recurrent_api.reverse_op is bidirectional_module.reverse_op
