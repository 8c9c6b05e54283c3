"""axon.pretrained.load_weights: rules, transforms, dtypes and the report of problems.

References are numpy: each expected array is built from the source array by hand (explicit
index arithmetic or numpy calls), never copied from axon's output.
"""

from __future__ import annotations

import re

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import axon
from axon.pretrained import LoadError, LoadReport, Rule, load_weights, parse_transform

RNG = np.random.default_rng(0)


def _dense_model(units: int = 3, features: int = 4):
    return axon.input("x", shape=(None, features)).pipe(axon.dense, units, name="fc")


def _torch_dense(units: int = 3, features: int = 4) -> dict[str, np.ndarray]:
    return {"fc.weight": RNG.standard_normal((units, features)).astype(np.float32),
            "fc.bias": RNG.standard_normal(units).astype(np.float32)}


FC_RULES = [(r"fc\.weight", "fc.kernel", "transpose"), (r"fc\.bias", "fc.bias")]


# -- rules and transforms --------------------------------------------------------------------

def test_groups_fill_the_target_and_the_first_matching_rule_wins():
    w = RNG.standard_normal((2, 3, 3, 3)).astype(np.float32)
    model = axon.input("x", shape=(None, 3, 8, 8)).pipe(
        axon.conv, 2, kernel_size=3, channels="first", use_bias=False, name="layer1_0_conv1")
    rules = [
        Rule(r"layer(\d+)\.(\d+)\.conv(\d)\.weight", r"layer\1_\2_conv\3.kernel"),
        Rule(r".*", None),  # never reached for the key above
    ]
    state = load_weights(model, {"layer1.0.conv1.weight": w, "extra.thing": np.ones(1)}, mapping=rules)
    np.testing.assert_array_equal(state["layer1_0_conv1"]["kernel"], w)


def test_a_none_target_drops_the_key_and_mapping_none_uses_axon_names():
    model = _dense_model()
    sd = _torch_dense()
    state = load_weights(model, {**sd, "fc.num_batches_tracked": np.int64(3)},
                         mapping=[(r".*num_batches_tracked", None), *FC_RULES])
    np.testing.assert_array_equal(state["fc"]["kernel"], sd["fc.weight"].T)
    same = load_weights(model, {"fc.kernel": sd["fc.weight"].T, "fc.bias": sd["fc.bias"]}, mapping=None)
    np.testing.assert_array_equal(same["fc"]["kernel"], sd["fc.weight"].T)


def test_conv_oihw_to_hwio_moves_every_element():
    a = RNG.standard_normal((5, 3, 2, 4))
    out = parse_transform("conv_oihw_to_hwio")(a)
    assert out.shape == (2, 4, 3, 5)
    for o, i, h, w in np.ndindex(*a.shape):
        assert out[h, w, i, o] == a[o, i, h, w]
    assert parse_transform("conv_oihw_to_hwio")(np.zeros((6, 2, 3))).shape == (3, 2, 6)  # 1-d conv


def test_conv_kernel_loads_into_a_channels_last_conv_with_torch_semantics():
    # y[n, o, i, j] = sum_{c, u, v} x[n, c, i+u, j+v] w[o, c, u, v]  (torch's conv2d, valid, stride 1)
    w = RNG.standard_normal((2, 3, 3, 3)).astype(np.float32)
    x = RNG.standard_normal((1, 3, 5, 5)).astype(np.float32)
    want = np.zeros((1, 2, 3, 3), np.float32)
    for o, i, j in np.ndindex(2, 3, 3):
        want[0, o, i, j] = np.sum(x[0, :, i:i + 3, j:j + 3] * w[o])
    model = axon.input("x", shape=(None, 5, 5, 3)).pipe(axon.conv, 2, kernel_size=3, use_bias=False, name="c")
    state = load_weights(model, {"c.weight": w}, mapping=[(r"c\.weight", "c.kernel", "conv_oihw_to_hwio")])
    got = axon.build(model)[1](state, x.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(np.asarray(got).transpose(0, 3, 1, 2), want, rtol=1e-5, atol=1e-5)


def test_split_qkv_fills_three_targets_through_the_placeholder():
    features, units = 4, 2
    fused = RNG.standard_normal((3 * units, features)).astype(np.float32)  # torch Linear (3*out, in)
    x = axon.input("x", shape=(None, features))
    model = axon.container([axon.dense(x, units, name=f"attn_{n}") for n in ("query", "key", "value")])
    state = load_weights(model, {"attn.in_proj_weight": fused, **{f"attn.{n}.b": np.zeros(units) for n in "qkv"}},
                         mapping=[(r"attn\.in_proj_weight", "attn_{}.kernel", ["split_qkv", "transpose"]),
                                  (r"attn\.(.)\.b", r"attn_\1.bias"),], strict=False)[0]
    for i, n in enumerate(("query", "key", "value")):
        np.testing.assert_array_equal(state[f"attn_{n}"]["kernel"], fused[i * units:(i + 1) * units].T)
    conv1d = RNG.standard_normal((features, 3 * units))  # GPT-2's Conv1D (in, 3*out)
    parts = parse_transform("split_qkv(axis=-1)")(conv1d)
    np.testing.assert_array_equal(parts["value"], conv1d[:, 2 * units:])


def test_reshape_and_permute_are_parsed_never_evaluated():
    a = np.arange(24.0)
    np.testing.assert_array_equal(parse_transform("reshape(2, -1, 4)")(a), a.reshape(2, 3, 4))
    np.testing.assert_array_equal(parse_transform(" permute(2,0,1) ")(a.reshape(2, 3, 4)),
                                  np.transpose(a.reshape(2, 3, 4), (2, 0, 1)))
    for bad in ("reshape(2*3)", "reshape(__import__('os').getpid())", "reshape(x=1, 2)", "transpose()("):
        with pytest.raises(ValueError):
            parse_transform(bad)
    with pytest.raises(ValueError, match="unknown transform 'eval'"):
        Rule("w", "fc.kernel", "eval(1)")


def test_a_function_transform_is_applied():
    sd = _torch_dense()
    state = load_weights(_dense_model(), sd, mapping=[(r"fc\.weight", "fc.kernel", lambda w: 2 * w.T),
                                                      (r"fc\.bias", "fc.bias")])
    np.testing.assert_allclose(state["fc"]["kernel"], 2 * sd["fc.weight"].T)


def test_invalid_rules_are_rejected_when_the_mapping_is_built():
    with pytest.raises(ValueError, match=re.escape("rule '(': invalid pattern")):
        load_weights(_dense_model(), {}, mapping=[("(", "fc.kernel")])
    with pytest.raises(TypeError, match=re.escape("mapping[0]: expected a Rule or a (pattern, target[, transform])")):
        load_weights(_dense_model(), {}, mapping=["fc.weight"])


# -- the report ---------------------------------------------------------------------------------

def test_strict_lists_every_problem_in_one_error_naming_keys_and_shapes():
    model = axon.input("x", shape=(None, 4)).pipe(axon.dense, 3, name="fc").pipe(axon.dense, 2, name="out")
    source = {
        "fc.weight": np.zeros((3, 5), np.float32),  # shape mismatch once transposed: (5, 3) vs (4, 3)
        "fc.bias": np.zeros(3, np.float32),
        "head.weight": np.zeros((2, 3), np.float32),  # maps to a layer the model does not have
        "stray": np.zeros(1, np.float32),  # no rule
        "out.weight": np.zeros(7, np.float32),  # its transform fails (1-d transpose)
    }
    rules = [*FC_RULES, (r"head\.weight", "classifier.kernel"), (r"out\.weight", "out.kernel", "transpose")]
    with pytest.raises(LoadError) as info:
        load_weights(model, source, mapping=rules)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "out.bias" in message  # missing
    assert "stray" in message and "head.weight -> classifier.kernel" in message  # unexpected
    assert "fc.kernel from fc.weight: expected (4, 3) float32, got (5, 3) float32" in message
    assert "out.weight by Rule('out\\.weight' -> 'out.kernel', transform=[transpose])" in message
    assert "expected an array of rank 2, got shape (7,)" in message
    report = info.value.report
    assert report.missing == ["out.bias"]  # the mismatched and failed entries are not listed twice
    assert sorted(report.unexpected) == ["head.weight -> classifier.kernel", "stray"]
    assert [(m.key, m.expected, m.got) for m in report.mismatched] == [
        ("fc.weight", ((4, 3), "float32"), ((5, 3), "float32"))]
    assert [f.key for f in report.failed] == ["out.weight"]


def test_non_strict_returns_the_report_and_initializes_what_is_missing():
    sd = _torch_dense()
    state, report = load_weights(_dense_model(), {"fc.weight": sd["fc.weight"]}, mapping=FC_RULES, strict=False)
    assert isinstance(report, LoadReport) and report.missing == ["fc.bias"] and report.loaded == 1
    np.testing.assert_array_equal(state["fc"]["kernel"], sd["fc.weight"].T)
    np.testing.assert_array_equal(state["fc"]["bias"], np.zeros(3))  # dense's bias initializer: zeros
    full, ok = load_weights(_dense_model(), sd, mapping=FC_RULES, strict=False)
    np.testing.assert_array_equal(full["fc"]["bias"], sd["fc.bias"])
    assert ok.ok and str(ok) == "loaded 2 entries, no problems"


def test_two_keys_filling_one_entry_is_an_error():
    sd = _torch_dense()
    with pytest.raises(LoadError, match=r"filled by more than one key: fc.bias <- fc.bias, fc.bias2"):
        load_weights(_dense_model(), {**sd, "fc.bias2": sd["fc.bias"]},
                     mapping=[*FC_RULES, (r"fc\.bias2", "fc.bias")])


def test_a_model_state_template_keeps_the_entries_the_checkpoint_lacks():
    model = _dense_model()
    base = axon.build(model)[0]()
    state, report = load_weights(model, {"fc.bias": np.full(3, 7.0)}, mapping=FC_RULES, template=base, strict=False)
    np.testing.assert_array_equal(state["fc"]["kernel"], base["fc"]["kernel"])
    np.testing.assert_array_equal(state["fc"]["bias"], [7.0, 7.0, 7.0])
    assert report.missing == ["fc.kernel"]


def test_batch_norm_statistics_load_as_layer_state():
    model = axon.input("x", shape=(None, 3)).pipe(axon.batch_norm, name="bn")
    sd = {"bn.weight": np.array([1.0, 2, 3]), "bn.bias": np.array([0.5, 0, -0.5]),
          "bn.running_mean": np.array([1.0, -1, 0]), "bn.running_var": np.array([4.0, 1, 0.25])}
    rules = [(r"bn\.weight", "bn.gamma"), (r"bn\.bias", "bn.beta"), (r"bn\.running_mean", "bn.mean"),
             (r"bn\.running_var", "bn.var")]
    state = load_weights(model, sd, mapping=rules)
    assert state.state_paths == {("bn", "mean"), ("bn", "var")}
    x = np.array([[3.0, 1.0, 1.0]], np.float32)
    want = (x - sd["bn.running_mean"]) / np.sqrt(sd["bn.running_var"] + 1e-5) * sd["bn.weight"] + sd["bn.bias"]
    np.testing.assert_allclose(axon.build(model)[1](state, x), want, rtol=1e-5)


# -- dtypes ---------------------------------------------------------------------------------------

def test_floats_are_cast_to_the_models_dtype():
    sd = {"fc.weight": RNG.standard_normal((3, 4)), "fc.bias": np.ones(3, np.float16)}  # float64, float16
    state = load_weights(_dense_model(), sd, mapping=FC_RULES)
    assert state["fc"]["kernel"].dtype == jnp.float32 and state["fc"]["bias"].dtype == jnp.float32
    np.testing.assert_array_equal(state["fc"]["kernel"], sd["fc.weight"].T.astype(np.float32))
    bf16 = {"fc.weight": sd["fc.weight"].astype(ml_dtypes.bfloat16), "fc.bias": np.ones(3, ml_dtypes.bfloat16)}
    state = load_weights(_dense_model(), bf16, mapping=FC_RULES)
    np.testing.assert_array_equal(state["fc"]["kernel"], bf16["fc.weight"].T.astype(np.float32))


def test_lossy_casts_are_refused_and_reported():
    template = axon.ModelState({"emb": {"ids": jnp.zeros(3, jnp.int8), "w": jnp.zeros(2, jnp.float32)}})
    rules = [(r"ids", "emb.ids"), (r"w", "emb.w")]
    state = load_weights(None, {"ids": np.array([1, -2, 3], np.int64), "w": np.ones(2)}, mapping=rules,
                         template=template)
    assert state["emb"]["ids"].dtype == jnp.int8 and state["emb"]["ids"].tolist() == [1, -2, 3]
    with pytest.raises(LoadError, match=r"emb.ids from ids: expected \(3,\) int8, got \(3,\) int64 "
                                        r"\(values in \[1, 300\] do not fit int8\)"):
        load_weights(None, {"ids": np.array([1, 2, 300]), "w": np.ones(2)}, mapping=rules, template=template)
    with pytest.raises(LoadError, match=r"float to integer would truncate"):
        load_weights(None, {"ids": np.ones(3), "w": np.ones(2)}, mapping=rules, template=template)
    with pytest.raises(LoadError, match=r"complex to real"):
        load_weights(None, {"ids": np.ones(3, np.int8), "w": np.ones(2, np.complex64)}, mapping=rules,
                     template=template)
