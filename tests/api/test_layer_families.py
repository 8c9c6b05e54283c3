"""Every layer family through the shared conformance check, each graph layer compared with
an independent reference: its functional layer (itself tested against torch and NumPy in
tests/layers), torch (recurrent and attention layers, with copied weights) or NumPy.

Layers of one family share one graph (a container of branches), so each family builds and
compiles once."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon
from axon import layers
from tests.conformance import check_layer

RNG = np.random.default_rng(0)
F32, U32 = "float32", "uint32"


def x_of(*shape):
    return jnp.asarray(RNG.normal(size=shape).astype(np.float32))


def close(a, b, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=atol)


def values_for(spec, scale=0.5):
    """Random initial values (nested dicts) for a ``{"layer/param": (shape, dtype)}`` spec:
    nonzero biases exercise the bias paths, and giving values skips the (slow to compile on
    CPU) random initializers."""
    out = {}
    for path, (shape, dtype) in spec.items():
        *parents, leaf = path.split("/")
        d = out
        for p in parents:
            d = d.setdefault(p, {})
        d[leaf] = jnp.asarray(RNG.normal(size=shape) * scale, dtype)
    return out


# ---------------------------------------------------------------------------------------
# convolutions


def test_conv_family_channels_last():
    x = axon.input("x", shape=(None, 7, 7, 4))
    s = axon.input("s", shape=(None, 9, 3))
    v = axon.input("v", shape=(None, 4, 5, 6, 2))
    model = axon.container([
        axon.conv(x, 6, kernel_size=3, strides=2, padding="same", feature_group_size=2),
        axon.conv(x, 3, kernel_size=(2, 3), padding=[(1, 0), (2, 1)], kernel_dilation=2, input_dilation=(1, 2),
                  use_bias=False, activation="relu"),
        axon.conv(s, 4, kernel_size=3, strides=2),
        axon.conv_transpose(x, 5, kernel_size=3, strides=2, padding="same"),
        axon.conv_transpose(x, 2, kernel_size=2, kernel_dilation=2, use_bias=False),
        axon.depthwise_conv(x, 2, kernel_size=3, strides=(1, 2), padding="same"),
        axon.separable_conv2d(x, 2, kernel_size=(3, 2), strides=2, padding="valid"),
        axon.separable_conv3d(v, 1, kernel_size=(2, 3, 2), padding="same", use_bias=False),
    ])
    inputs = {"x": x_of(2, 7, 7, 4), "s": x_of(2, 9, 3), "v": x_of(2, 4, 5, 6, 2)}
    spec = {
        "conv_0/kernel": ((3, 3, 2, 6), F32), "conv_0/bias": ((6,), F32),
        "conv_1/kernel": ((2, 3, 4, 3), F32),
        "conv_2/kernel": ((3, 3, 4), F32), "conv_2/bias": ((4,), F32),
        "conv_transpose_0/kernel": ((3, 3, 4, 5), F32), "conv_transpose_0/bias": ((5,), F32),
        "conv_transpose_1/kernel": ((2, 2, 4, 2), F32),
        "depthwise_conv_0/kernel": ((3, 3, 1, 8), F32), "depthwise_conv_0/bias": ((8,), F32),
        "separable_conv2d_0/kernel_1": ((3, 1, 1, 8), F32), "separable_conv2d_0/kernel_2": ((1, 2, 1, 8), F32),
        "separable_conv2d_0/bias_1": ((8,), F32), "separable_conv2d_0/bias_2": ((8,), F32),
        "separable_conv3d_0/kernel_1": ((2, 1, 1, 1, 2), F32), "separable_conv3d_0/kernel_2": ((1, 3, 1, 1, 2), F32),
        "separable_conv3d_0/kernel_3": ((1, 1, 2, 1, 2), F32),
    }
    xv = inputs["x"]

    def refs(p):  # the functional layers, tested against torch in tests/layers/test_conv.py
        return [
            layers.conv(xv, p["conv_0"]["kernel"], p["conv_0"]["bias"], strides=2, padding="same", feature_group_size=2),
            jax.nn.relu(layers.conv(xv, p["conv_1"]["kernel"], padding=((1, 0), (2, 1)), kernel_dilation=2, input_dilation=(1, 2))),
            layers.conv(inputs["s"], p["conv_2"]["kernel"], p["conv_2"]["bias"], strides=2),
            layers.conv_transpose(xv, p["conv_transpose_0"]["kernel"], p["conv_transpose_0"]["bias"], strides=2, padding="same"),
            layers.conv_transpose(xv, p["conv_transpose_1"]["kernel"], kernel_dilation=2),
            layers.depthwise_conv(xv, p["depthwise_conv_0"]["kernel"], p["depthwise_conv_0"]["bias"], strides=(1, 2), padding="same"),
            layers.separable_conv2d(xv, *(p["separable_conv2d_0"][k] for k in ("kernel_1", "bias_1", "kernel_2", "bias_2")),
                                    strides=2),
            layers.separable_conv3d(inputs["v"], *(p["separable_conv3d_0"].get(k) for k in
                                                   ("kernel_1", "bias_1", "kernel_2", "bias_2", "kernel_3", "bias_3")),
                                    padding="same"),
        ]

    res = {}
    check_layer(model, inputs, spec, init_state=values_for(spec), expected=refs, results=res)
    assert list(axon.properties(model))[2:4] == ["conv_1", "relu_0"]
    out = res["inference"]
    assert [o.shape for o in out] == [(2, 4, 4, 6), (2, 6, 12, 3), (2, 4, 4), (2, 14, 14, 5), (2, 9, 9, 2),
                                      (2, 7, 4, 8), (2, 3, 3, 8), (2, 4, 5, 6, 2)]


def test_conv_family_channels_first():
    x = axon.input("x", shape=(None, 4, 6, 5))
    v = axon.input("v", shape=(None, 2, 3, 4, 5))
    model = axon.container([
        axon.conv(x, 8, kernel_size=3, strides=(2, 1), padding="same", feature_group_size=4, channels="first"),
        axon.conv_transpose(x, 3, kernel_size=(2, 3), strides=2, channels="first"),
        axon.depthwise_conv(x, 1, kernel_size=2, kernel_dilation=2, channels="first", use_bias=False),
        axon.separable_conv2d(x, 2, kernel_size=3, padding="same", channels="first", use_bias=False),
        axon.separable_conv3d(v, 2, kernel_size=2, strides=(1, 2, 1), channels="first"),
    ])
    inputs = {"x": x_of(2, 4, 6, 5), "v": x_of(2, 2, 3, 4, 5)}
    sep3 = {f"separable_conv3d_0/{k}_{i}": (s, F32) for i, s3 in enumerate([(4, 1, 2, 1, 1), (4, 1, 1, 2, 1), (4, 1, 1, 1, 2)], 1)
            for k, s in (("kernel", s3), ("bias", (4,)))}
    spec = {
        "conv_0/kernel": ((8, 1, 3, 3), F32), "conv_0/bias": ((8,), F32),
        "conv_transpose_0/kernel": ((3, 4, 2, 3), F32), "conv_transpose_0/bias": ((3,), F32),
        "depthwise_conv_0/kernel": ((4, 1, 2, 2), F32),
        "separable_conv2d_0/kernel_1": ((8, 1, 3, 1), F32), "separable_conv2d_0/kernel_2": ((8, 1, 1, 3), F32),
        **sep3,
    }
    xv = inputs["x"]

    def refs(p):
        return [
            layers.conv(xv, p["conv_0"]["kernel"], p["conv_0"]["bias"], strides=(2, 1), padding="same",
                        feature_group_size=4, channels="first"),
            layers.conv_transpose(xv, p["conv_transpose_0"]["kernel"], p["conv_transpose_0"]["bias"], strides=2, channels="first"),
            layers.depthwise_conv(xv, p["depthwise_conv_0"]["kernel"], kernel_dilation=2, channels="first"),
            layers.separable_conv2d(xv, p["separable_conv2d_0"]["kernel_1"], None, p["separable_conv2d_0"]["kernel_2"], None,
                                    padding="same", channels="first"),
            layers.separable_conv3d(inputs["v"], *(p["separable_conv3d_0"][f"{k}_{i}"] for i in (1, 2, 3) for k in ("kernel", "bias")),
                                    strides=(1, 2, 1), channels="first"),
        ]

    res = {}
    check_layer(model, inputs, spec, init_state=values_for(spec), expected=refs, results=res)
    assert [o.shape[1] for o in res["inference"]] == [8, 3, 4, 8, 4]


# ---------------------------------------------------------------------------------------
# pooling, normalization, dropout, resize


def test_all_pools():
    x = axon.input("x", shape=(None, 6, 6, 3))
    f = axon.input("f", shape=(None, 3, 6, 6))
    model = axon.container([
        axon.max_pool(x, kernel_size=2),
        axon.avg_pool(x, kernel_size=3, strides=2, padding="same"),
        axon.lp_pool(x, kernel_size=2, dilations=2, norm=3),
        axon.blur_pool(f, channels="first"),
        axon.adaptive_avg_pool(x, output_size=(3, 2)),
        axon.adaptive_max_pool(f, output_size=2, channels="first"),
        axon.adaptive_lp_pool(x, output_size=3, norm=2),
        axon.global_avg_pool(x),
        axon.global_max_pool(f, keep_axes=True, channels="first"),
        axon.global_lp_pool(x, norm=1),
    ])
    xv = jnp.abs(x_of(2, 6, 6, 3)) + 0.1  # lp pools of odd norm need non-negative inputs
    inputs = {"x": xv, "f": x_of(2, 3, 6, 6)}
    fv = inputs["f"]
    refs = [
        layers.max_pool(xv, kernel_size=2),
        layers.avg_pool(xv, kernel_size=3, strides=2, padding="same"),
        layers.lp_pool(xv, kernel_size=2, window_dilations=2, norm=3),
        layers.blur_pool(fv, channels="first"),
        layers.adaptive_avg_pool(xv, output_size=(3, 2)),
        layers.adaptive_max_pool(fv, output_size=2, channels="first"),
        layers.adaptive_lp_pool(xv, output_size=3),
        layers.global_avg_pool(xv),
        layers.global_max_pool(fv, keep_axes=True, channels="first"),
        layers.global_lp_pool(xv, norm=1),
    ]  # the functional pools, tested against torch in tests/layers/test_pooling.py
    res = {}
    check_layer(model, inputs, {}, expected=refs, results=res)
    out = res["inference"]
    # hand-checked values: global average / max over the spatial axes
    close(out[7], np.asarray(xv).mean(axis=(1, 2)))
    close(out[8], np.asarray(fv).max(axis=(2, 3), keepdims=True))


def test_all_norms_train_and_inference():
    x = axon.input("x", shape=(None, 4, 6))
    model = axon.container([
        axon.batch_norm(x),
        axon.instance_norm(x, channel_index=1, momentum=0.2),
        axon.layer_norm(x, epsilon=1e-3),
        axon.group_norm(x, 3),
        axon.rms_norm(x, shift=1.0),
    ])
    xv = x_of(3, 4, 6) * 2 + 1
    c6, c4 = ((6,), F32), ((4,), F32)
    params = {"batch_norm_0/gamma": c6, "batch_norm_0/beta": c6, "instance_norm_0/gamma": c4, "instance_norm_0/beta": c4,
              "layer_norm_0/gamma": c6, "layer_norm_0/beta": c6, "group_norm_0/gamma": c6, "group_norm_0/beta": c6,
              "rms_norm_0/gamma": c6}
    stats = {"batch_norm_0/mean": c6, "batch_norm_0/var": c6, "instance_norm_0/mean": c4, "instance_norm_0/var": c4}
    # random values (positive variances) so that gamma, beta and the running statistics all matter
    given = values_for({**params, **stats})
    for layer in ("batch_norm_0", "instance_norm_0"):
        given[layer]["var"] = jnp.abs(given[layer]["var"]) + 0.5
    p = given
    bn, inn = p["batch_norm_0"], p["instance_norm_0"]
    refs = [  # the functional layers, tested against torch in tests/layers/test_normalization.py
        layers.batch_norm(xv, bn["gamma"], bn["beta"], bn["mean"], bn["var"]),
        layers.instance_norm(xv, inn["gamma"], inn["beta"], inn["mean"], inn["var"], channel_index=1, momentum=0.2),
        layers.layer_norm(xv, p["layer_norm_0"]["gamma"], p["layer_norm_0"]["beta"], epsilon=1e-3),
        layers.group_norm(xv, p["group_norm_0"]["gamma"], p["group_norm_0"]["beta"], num_groups=3),
        layers.rms_norm(xv, p["rms_norm_0"]["gamma"], shift=1.0),
    ]
    res = {}
    check_layer(model, xv, params, state=stats, init_state=given, train_differs=True, expected=refs, results=res)
    # train mode: batch statistics and updated running statistics, as the functional layers give
    train = res["train"]
    bn_ref = layers.batch_norm(xv, bn["gamma"], bn["beta"], bn["mean"], bn["var"], mode="train")
    in_ref = layers.instance_norm(xv, inn["gamma"], inn["beta"], inn["mean"], inn["var"], channel_index=1,
                                  momentum=0.2, mode="train")
    close(train.prediction[0], bn_ref.output)
    close(train.prediction[1], in_ref.output)
    close(train.state["batch_norm_0"]["mean"], bn_ref.state["mean"])
    close(train.state["instance_norm_0"]["var"], in_ref.state["var"])
    # and the batch statistics by hand (NumPy): normalized over batch and time, per channel
    xn = np.asarray(xv, np.float64)
    mu, var = xn.mean(axis=(0, 1)), xn.var(axis=(0, 1))
    close(train.prediction[0], (xn - mu) / np.sqrt(var + 1e-5) * np.asarray(bn["gamma"]) + np.asarray(bn["beta"]), 1e-4, 1e-4)


def test_all_dropouts():
    x = axon.input("x", shape=(None, 4, 5, 6))
    model = axon.container([
        axon.dropout(x, rate=0.5),
        axon.alpha_dropout(x, rate=0.3),
        axon.feature_alpha_dropout(x, rate=0.4, channels="first"),
        axon.spatial_dropout(x, rate=0.25, seed=7),
    ])
    xv = x_of(2, 4, 5, 6)
    # inference: no state, and every dropout is the identity
    res = {}
    assert check_layer(model, xv, {}, train_differs=True, expected=[xv] * 4, results=res).data == {}
    for out in res["inference"]:
        np.testing.assert_array_equal(out, xv)
    # train: a uint32 key per layer; outputs are the functional layers' with those keys
    state, result = res["train_state"], res["train"]
    assert {k: (v["key"].shape, str(v["key"].dtype)) for k, v in state.data.items()} == dict.fromkeys(
        ["dropout_0", "alpha_dropout_0", "feature_alpha_dropout_0", "spatial_dropout_0"], ((2,), U32))
    assert state.state_paths == {(k, "key") for k in state.data}
    np.testing.assert_array_equal(state["spatial_dropout_0"]["key"], jax.random.PRNGKey(7))
    fns = [(layers.dropout, "dropout_0", {"rate": 0.5}), (layers.alpha_dropout, "alpha_dropout_0", {"rate": 0.3}),
           (layers.feature_alpha_dropout, "feature_alpha_dropout_0", {"rate": 0.4, "channels": "first"}),
           (layers.spatial_dropout, "spatial_dropout_0", {"rate": 0.25})]
    for got, (fn, name, opts) in zip(result.prediction, fns):
        ref = fn(xv, state[name]["key"], mode="train", **opts)
        close(got, ref.output)
        np.testing.assert_array_equal(result.state[name]["key"], ref.state["key"])  # advanced: new masks next step
        assert not np.array_equal(result.state[name]["key"], state[name]["key"])
    kept = np.asarray(result.prediction[0]) != 0
    assert 0.2 < kept.mean() < 0.8
    close(np.asarray(result.prediction[0])[kept], 2 * np.asarray(xv)[kept])  # kept values scaled by 1 / (1 - rate)


def test_resize_all_methods():
    x = axon.input("x", shape=(None, 5, 6, 2))
    f = axon.input("f", shape=(None, 2, 5, 6))
    methods = ["nearest", "bilinear", "bicubic", "lanczos3", "lanczos5"]
    model = axon.container(
        [axon.resize(x, (8, 3), method=m) for m in methods]
        + [axon.resize(x, 3, method="bilinear", antialias=False), axon.resize(f, (10, 12), method="bicubic", channels="first")]
    )
    inputs = {"x": x_of(2, 5, 6, 2), "f": x_of(2, 2, 5, 6)}
    # the functional resize, tested against torch and a NumPy reference in tests/layers/test_resize.py
    refs = [layers.resize(inputs["x"], size=(8, 3), method=m) for m in methods] + [
        layers.resize(inputs["x"], size=(3, 3), method="bilinear", antialias=False),
        layers.resize(inputs["f"], size=(10, 12), method="bicubic", channels="first"),
    ]
    res = {}
    check_layer(model, inputs, {}, expected=refs, results=res)
    out = res["inference"]
    # nearest by hand: input index floor((i + 0.5) * in / out)
    rows, cols = np.floor((np.arange(8) + 0.5) * 5 / 8).astype(int), np.floor((np.arange(3) + 0.5) * 6 / 3).astype(int)
    close(out[0], np.asarray(inputs["x"])[:, rows][:, :, cols])


def test_resize_validation():
    x = axon.input("x")
    with pytest.raises(ValueError, match="method"):
        axon.resize(x, (2, 2), method="area")
    with pytest.raises(ValueError, match="size"):
        axon.resize(x, (2, 0))
    with pytest.raises(ValueError, match="size"):
        axon.resize(x, (2, 2, 2))
    with pytest.raises(ValueError, match="channels"):
        axon.resize(x, 2, channels="middle")
    with pytest.raises(TypeError, match="unexpected keyword"):
        axon.resize(x, 2, align_corners=True)


# ---------------------------------------------------------------------------------------
# stack_columns and embedding


def test_stack_columns():
    cols = {"age": axon.input("age", shape=(None,)), "income": axon.input("income", shape=(None,)),
            "pair": axon.input("pair", shape=(None, 2)), "id": axon.input("id", shape=(None,))}
    model = axon.stack_columns(axon.container(cols), ignore=["id"])
    inputs = {"age": jnp.array([30, 41, 52], jnp.int32), "income": x_of(3), "pair": x_of(3, 2),
              "id": jnp.array([7, 8, 9], jnp.int32)}
    ref = np.column_stack([np.asarray(inputs["age"], np.float32), inputs["income"], inputs["pair"]])
    res = {}
    check_layer(model, inputs, {}, expected=ref, results=res)
    out = res["inference"]
    assert out.dtype == jnp.float32
    np.testing.assert_array_equal(out, ref)
    # a pandas DataFrame works when the model runs without jit
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"b": [1.0, 2.0], "a": [3, 4], "skip": [0, 0]})
    frame = axon.layer(lambda: df, [], op_name="frame")
    eager = axon.build(axon.stack_columns(frame, ignore=("skip",)), jit=False)[1]
    np.testing.assert_array_equal(eager({}, {}), [[1.0, 3.0], [2.0, 4.0]])
    with pytest.raises(TypeError, match="ignore"):
        axon.stack_columns(frame, ignore="skip")
    with pytest.raises(axon.CompileError, match="dict of arrays"):
        axon.predict(axon.stack_columns(axon.input("x")), {}, jnp.ones((2, 2)))


def test_embedding_with_integer_inputs():
    ids_in = axon.input("ids", shape=(None, 5))
    model = axon.container([
        axon.embedding(ids_in, 11, 3),
        axon.embedding(ids_in, 11, 2, kernel_initializer="normal", name="emb"),
    ])
    ids = jnp.asarray(RNG.integers(0, 11, size=(2, 5)), jnp.int32)
    res = {}
    state = check_layer(model, {"ids": ids}, {"embedding_0/kernel": ((11, 3), F32), "emb/kernel": ((11, 2), F32)},
                        expected=lambda s: [np.take(np.asarray(s[k]["kernel"]), np.asarray(ids), axis=0)
                                            for k in ("embedding_0", "emb")], results=res)
    out = res["inference"]
    np.testing.assert_array_equal(out[0], np.take(np.asarray(state["embedding_0"]["kernel"]), np.asarray(ids), axis=0))
    np.testing.assert_array_equal(out[1], np.take(np.asarray(state["emb"]["kernel"]), np.asarray(ids), axis=0))
