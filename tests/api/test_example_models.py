"""Example models built from axon's layers: a small CNN, an LSTM classifier and a two-block
transformer encoder. Each builds, initializes and predicts in both modes; its parameter
tree (layer -> parameter -> shape) is checked against one written out by hand, and its
inference output against the same model written in torch with the weights copied over."""

import jax.numpy as jnp
import numpy as np
import pytest

import axon

RNG = np.random.default_rng(3)


def x_of(*shape):
    return jnp.asarray(RNG.normal(size=shape).astype(np.float32))


def close(a, b, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=atol)


def t(a):
    torch = pytest.importorskip("torch")
    return torch.tensor(np.asarray(a), dtype=torch.float64)


def tree(data):
    """``{layer: {param: shape}}`` (nested groups as nested dicts)."""
    if hasattr(data, "shape"):
        return tuple(data.shape)
    return {k: tree(v) for k, v in data.items()}


def copy_(param, value) -> None:
    torch = pytest.importorskip("torch")
    with torch.no_grad():
        param.copy_(t(value))


# ---------------------------------------------------------------------------------------


def cnn() -> axon.Axon:
    return (
        axon.input("image", shape=(None, 8, 8, 1))
        .pipe(axon.conv, 4, kernel_size=3, padding="same")
        .pipe(axon.batch_norm)
        .pipe(axon.relu)
        .pipe(axon.max_pool, kernel_size=2)
        .pipe(axon.dropout, rate=0.25)
        .pipe(axon.flatten)
        .pipe(axon.dense, 3, activation="softmax")
    )


def test_cnn(torch):
    model = cnn()
    assert list(axon.properties(model)) == [
        "image", "conv_0", "batch_norm_0", "relu_0", "max_pool_0", "dropout_0", "flatten_0", "dense_0", "softmax_0"]
    init_fn, predict_fn = axon.build(model)
    images = x_of(3, 8, 8, 1)
    state = init_fn(images)
    assert tree(state.data) == {
        "conv_0": {"kernel": (3, 3, 1, 4), "bias": (4,)},
        "batch_norm_0": {"gamma": (4,), "beta": (4,), "mean": (4,), "var": (4,)},
        "dense_0": {"kernel": (64, 3), "bias": (3,)},
    }
    # running statistics that are not the identity, so that inference uses them
    state = state.update({"batch_norm_0": {"mean": x_of(4) * 0.1, "var": jnp.abs(x_of(4)) + 0.5,
                                           "beta": x_of(4), "gamma": x_of(4)}})
    probs = predict_fn(state, images)
    assert probs.shape == (3, 3)

    # torch, channels first; flattened in our (H, W, C) order
    p = state.data
    conv = torch.nn.Conv2d(1, 4, 3, padding=1).double()
    copy_(conv.weight, np.transpose(p["conv_0"]["kernel"], (3, 2, 0, 1)))
    copy_(conv.bias, p["conv_0"]["bias"])
    bn = torch.nn.BatchNorm2d(4).double().eval()
    for name in ("mean", "var"):
        getattr(bn, f"running_{name}").copy_(t(p["batch_norm_0"][name]))
    copy_(bn.weight, p["batch_norm_0"]["gamma"])
    copy_(bn.bias, p["batch_norm_0"]["beta"])
    with torch.no_grad():
        h = torch.nn.functional.max_pool2d(torch.relu(bn(conv(t(images).permute(0, 3, 1, 2)))), 2)
        logits = h.permute(0, 2, 3, 1).reshape(3, -1) @ t(p["dense_0"]["kernel"]) + t(p["dense_0"]["bias"])
    close(probs, torch.softmax(logits, -1).numpy())

    # train mode: batch statistics, dropout, and new batch-norm statistics and dropout key
    train_init, train_fn = axon.build(model, mode="train")
    train_state = train_init(images, state)
    assert tree(train_state.data) == {**tree(state.data), "dropout_0": {"key": (2,)}}
    out = train_fn(train_state, images)
    assert out.prediction.shape == (3, 3)
    close(out.prediction.sum(axis=1), np.ones(3))
    assert tree(out.state) == {"batch_norm_0": {"mean": (4,), "var": (4,)}, "dropout_0": {"key": (2,)}}
    pre = np.asarray(axon.layers.conv(images, p["conv_0"]["kernel"], p["conv_0"]["bias"], padding="same"))
    close(out.state["batch_norm_0"]["mean"], 0.9 * np.asarray(p["batch_norm_0"]["mean"]) + 0.1 * pre.mean(axis=(0, 1, 2)),
          1e-4, 1e-5)


# ---------------------------------------------------------------------------------------

VOCAB, EMB, UNITS, CLASSES, T = 12, 6, 5, 2, 6


def lstm_classifier() -> axon.Axon:
    ids = axon.input("ids", shape=(None, T))
    x = axon.embedding(ids, VOCAB, EMB)
    _, (_, h) = axon.lstm(x, UNITS, mask=axon.mask(ids, 0))
    return axon.dense(h, CLASSES, activation="softmax")


def test_lstm_classifier(torch):
    model = lstm_classifier()
    assert list(axon.properties(model)) == [
        "ids", "embedding_0", "mask_0", "lstm_0", "lstm_0_h_hidden_state", "dense_0", "softmax_0"]
    lengths = [6, 3, 1]  # trailing zeros are padding
    ids = np.zeros((3, T), np.int32)
    for row, n in enumerate(lengths):
        ids[row, :n] = RNG.integers(1, VOCAB, size=n)

    torch.manual_seed(0)
    emb, rnn, head = torch.nn.Embedding(VOCAB, EMB).double(), torch.nn.LSTM(EMB, UNITS, batch_first=True).double(), \
        torch.nn.Linear(UNITS, CLASSES).double()
    wi, wh, bi, bh = (np.split(a.detach().numpy(), 4) for a in (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0))
    given = {
        "embedding_0": {"kernel": emb.weight.detach().numpy()},
        "lstm_0": {
            "input_kernel": {k: w.T for k, w in zip(("wii", "wif", "wig", "wio"), wi)},
            "hidden_kernel": {k: w.T for k, w in zip(("whi", "whf", "whg", "who"), wh)},
            "bias": {k: a + b for k, a, b in zip(("bi", "bf", "bg", "bo"), bi, bh)},
        },
        "dense_0": {"kernel": head.weight.detach().numpy().T, "bias": head.bias.detach().numpy()},
    }
    init_fn, predict_fn = axon.build(model)
    state = init_fn(axon.template((3, T), "int32"), given)  # initialized from torch's weights
    gates = {"wii", "wif", "wig", "wio"}
    assert tree(state.data) == {
        "embedding_0": {"kernel": (VOCAB, EMB)},
        "lstm_0": {"input_kernel": dict.fromkeys(gates, (EMB, UNITS)),
                   "hidden_kernel": {"whi": (UNITS, UNITS), "whf": (UNITS, UNITS), "whg": (UNITS, UNITS), "who": (UNITS, UNITS)},
                   "bias": {"bi": (UNITS,), "bf": (UNITS,), "bg": (UNITS,), "bo": (UNITS,)}},
        "dense_0": {"kernel": (UNITS, CLASSES), "bias": (CLASSES,)},
    }
    probs = predict_fn(state, ids)
    # torch: a packed sequence stops at each example's length; the masked LSTM carries its state
    with torch.no_grad():
        packed = torch.nn.utils.rnn.pack_padded_sequence(emb(torch.tensor(ids, dtype=torch.long)), lengths,
                                                         batch_first=True, enforce_sorted=False)
        _, (h_n, _) = rnn(packed)
        ref = torch.softmax(head(h_n[0]), -1)
    close(probs, ref.numpy())
    # saved and loaded, the model gives the same probabilities
    loaded_model, loaded_state = axon.deserialize(axon.serialize(model, state))
    close(axon.predict(loaded_model, loaded_state, ids), probs)
    # train mode: no layer state to update; same prediction
    _, train_fn = axon.build(model, mode="train")
    out = train_fn(state, ids)
    assert out.state == {}
    close(out.prediction, probs)


# ---------------------------------------------------------------------------------------

D, HEADS, FF = 8, 2, 16


def encoder_block(x: axon.Axon, pad_mask: axon.Axon) -> axon.Axon:
    """A post-norm transformer encoder block (torch's TransformerEncoderLayer)."""
    attn = axon.multi_head_attention(x, num_heads=HEADS, mask=pad_mask, dropout_rate=0.1)
    x = axon.layer_norm(axon.add(x, axon.dropout(attn, rate=0.1)))
    ff = x.pipe(axon.dense, FF, activation="relu").pipe(axon.dropout, rate=0.1).pipe(axon.dense, D)
    return axon.layer_norm(axon.add(x, axon.dropout(ff, rate=0.1)))


def transformer() -> axon.Axon:
    ids = axon.input("ids", shape=(None, T))
    pad_mask = axon.fn(ids, lambda v: v != 0)  # True = attend
    x = axon.embedding(ids, VOCAB, D)
    for _ in range(2):
        x = encoder_block(x, pad_mask)
    first = axon.fn(x, lambda v: v[:, 0], op_name="first_token")
    return axon.container({"sequence": x, "logits": axon.dense(first, CLASSES)})


def test_transformer_encoder(torch):
    model = transformer()
    lengths = [6, 4]
    ids = np.zeros((2, T), np.int32)
    for row, n in enumerate(lengths):
        ids[row, :n] = RNG.integers(1, VOCAB, size=n)

    torch.manual_seed(0)
    emb = torch.nn.Embedding(VOCAB, D).double()
    blocks = [torch.nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.1, batch_first=True).double().eval()
              for _ in range(2)]
    head = torch.nn.Linear(D, CLASSES).double()
    given = {"embedding_0": {"kernel": emb.weight.detach().numpy()},
             "dense_4": {"kernel": head.weight.detach().numpy().T, "bias": head.bias.detach().numpy()}}
    for i, blk in enumerate(blocks):
        sa, e = blk.self_attn, D
        wq, wk, wv = np.split(sa.in_proj_weight.detach().numpy(), 3)
        bq, bk, bv = np.split(sa.in_proj_bias.detach().numpy(), 3)
        given[f"multi_head_attention_{i}"] = {
            **{f"{n}_kernel": w.T.reshape(e, HEADS, e // HEADS) for n, w in (("query", wq), ("key", wk), ("value", wv))},
            **{f"{n}_bias": b.reshape(HEADS, e // HEADS) for n, b in (("query", bq), ("key", bk), ("value", bv))},
            "output_kernel": sa.out_proj.weight.detach().numpy().T.reshape(HEADS, e // HEADS, e),
            "output_bias": sa.out_proj.bias.detach().numpy(),
        }
        given[f"dense_{2 * i}"] = {"kernel": blk.linear1.weight.detach().numpy().T, "bias": blk.linear1.bias.detach().numpy()}
        given[f"dense_{2 * i + 1}"] = {"kernel": blk.linear2.weight.detach().numpy().T, "bias": blk.linear2.bias.detach().numpy()}
        for j, norm in ((2 * i, blk.norm1), (2 * i + 1, blk.norm2)):
            with torch.no_grad():
                norm.weight.normal_()
                norm.bias.normal_()
            given[f"layer_norm_{j}"] = {"gamma": norm.weight.detach().numpy(), "beta": norm.bias.detach().numpy()}

    init_fn, predict_fn = axon.build(model)
    state = init_fn(axon.template((2, T), "int32"), given)
    mha = {"query_kernel": (D, HEADS, D // HEADS), "key_kernel": (D, HEADS, D // HEADS),
           "value_kernel": (D, HEADS, D // HEADS), "output_kernel": (HEADS, D // HEADS, D),
           "query_bias": (HEADS, D // HEADS), "key_bias": (HEADS, D // HEADS), "value_bias": (HEADS, D // HEADS),
           "output_bias": (D,), "key": (2,)}  # the attention-dropout key is state in both modes
    norm = {"gamma": (D,), "beta": (D,)}
    ff1, ff2 = {"kernel": (D, FF), "bias": (FF,)}, {"kernel": (FF, D), "bias": (D,)}
    assert tree(state.data) == {
        "embedding_0": {"kernel": (VOCAB, D)},
        "multi_head_attention_0": mha, "layer_norm_0": norm, "dense_0": ff1, "dense_1": ff2, "layer_norm_1": norm,
        "multi_head_attention_1": mha, "layer_norm_2": norm, "dense_2": ff1, "dense_3": ff2, "layer_norm_3": norm,
        "dense_4": {"kernel": (D, CLASSES), "bias": (CLASSES,)},
    }
    out = predict_fn(state, ids)
    with torch.no_grad():
        h = emb(torch.tensor(ids, dtype=torch.long))
        for blk in blocks:
            h = blk(h, src_key_padding_mask=torch.tensor(ids == 0))
        logits = head(h[:, 0])
    valid = ids != 0  # torch may leave padded positions undefined
    close(np.asarray(out["sequence"])[valid], h.numpy()[valid], 1e-4, 1e-5)
    close(out["logits"], logits.numpy(), 1e-4, 1e-5)

    # train mode: attention and residual dropout draw from per-layer keys, advanced each step
    train_init, train_fn = axon.build(model, mode="train")
    train_state = train_init(axon.template((2, T), "int32"), state)
    keys = {k for k, v in train_state.data.items() if "key" in v}
    assert keys == {"multi_head_attention_0", "multi_head_attention_1"} | {f"dropout_{i}" for i in range(6)}
    step = train_fn(train_state, ids)
    assert set(step.state) == keys
    assert step.prediction["logits"].shape == (2, CLASSES)
    assert not np.allclose(step.prediction["logits"], out["logits"])
    assert all(not np.array_equal(step.state[k]["key"], train_state[k]["key"]) for k in keys)
