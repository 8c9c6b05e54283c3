"""axon.models.gpt2 and axon.models.generate against Hugging Face's GPT2LMHeadModel, the key/value
cache against the full model, and the config reader's and generate's argument checks."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon
import axon.models
from axon.models import _transformer
from tests.conformance import check_layer

SMALL = dict(vocab_size=96, n_positions=48, n_embd=32, n_layer=2, n_head=4)
TINY = dict(vocab_size=64, n_positions=24, n_embd=16, n_layer=1, n_head=2)  # quick compiles, axon-only tests


def _torch_gpt2(transformers, **overrides):
    import torch

    torch.manual_seed(0)
    config = transformers.GPT2Config(**{**SMALL, **overrides}, bos_token_id=None, eos_token_id=None)
    model = transformers.GPT2LMHeadModel(config).eval()
    # larger weights than the 0.02 default: logits far apart, so greedy choices are not near-ties
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.mul_(5.0)
    return model


def _save_safetensors(model, path):
    from safetensors.torch import save_file

    save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}, str(path))
    return str(path)


def _axon_gpt2(torch_model, source):
    config = axon.models.GPT2Config.from_dict(torch_model.config.to_dict())
    model = axon.models.gpt2(config)
    state = axon.pretrained.load_weights(model, source, mapping=axon.models.gpt2_weight_map(),
                                         template={"input_ids": axon.template((1, 8), "int32")})
    return config, model, state


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_gpt2_logits_match_transformers(transformers, tmp_path, fmt):
    import torch

    reference = _torch_gpt2(transformers)
    if fmt == "safetensors":
        source = _save_safetensors(reference, tmp_path / "model.safetensors")
    else:
        source = str(tmp_path / "pytorch_model.bin")
        torch.save(reference.state_dict(), source)
    _, model, state = _axon_gpt2(reference, source)
    assert "lm_head" not in state  # tied: the output layer reads wte's table
    ids = np.random.default_rng(0).integers(0, SMALL["vocab_size"], (2, 11))
    with torch.no_grad():
        expected = reference(torch.tensor(ids)).logits.numpy()
    got = axon.predict(model, state, {"input_ids": jnp.asarray(ids, jnp.int32)})
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-4)


def test_gpt2_greedy_generation_matches_transformers(transformers, tmp_path):
    import torch

    reference = _torch_gpt2(transformers)
    _, model, state = _axon_gpt2(reference, _save_safetensors(reference, tmp_path / "model.safetensors"))
    prompt = np.array([[5, 17, 42, 8], [90, 3, 3, 61]])
    with torch.no_grad():
        expected = reference.generate(
            torch.tensor(prompt), attention_mask=torch.ones(prompt.shape, dtype=torch.long), max_new_tokens=20,
            do_sample=False, pad_token_id=0,
        ).numpy()
    assert expected.shape == (2, 24)
    got = axon.models.generate(model, state, prompt, 20)
    np.testing.assert_array_equal(np.asarray(got), expected)
    # the python-loop and uncached paths give the same tokens
    np.testing.assert_array_equal(np.asarray(axon.models.generate(model, state, prompt, 20, loop="python")), expected)
    np.testing.assert_array_equal(np.asarray(axon.models.generate(model, state, prompt, 20, use_cache=False)), expected)


def test_gpt2_left_padded_generation_and_masked_logits_match_transformers(transformers):
    import torch

    reference = _torch_gpt2(transformers)
    _, model, state = _axon_gpt2(reference, {k: v.numpy() for k, v in reference.state_dict().items()})
    prompt = np.array([[0, 0, 0, 17, 42, 8], [90, 3, 3, 61, 5, 9]])  # row 0: a 3-token prompt padded on the left
    mask = np.array([[0, 0, 0, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        expected = reference.generate(torch.tensor(prompt), attention_mask=torch.tensor(mask), max_new_tokens=12,
                                      do_sample=False, pad_token_id=0).numpy()
        positions = np.maximum(mask.cumsum(1) - 1, 0)
        logits = reference(torch.tensor(prompt), attention_mask=torch.tensor(mask),
                           position_ids=torch.tensor(positions)).logits.numpy()
    np.testing.assert_array_equal(np.asarray(axon.models.generate(model, state, prompt, 12, attention_mask=mask)),
                                  expected)
    got = axon.predict(model, state, {"input_ids": jnp.asarray(prompt, jnp.int32), "attention_mask": jnp.asarray(mask),
                                      "position_ids": jnp.asarray(positions, jnp.int32)})
    real = mask.astype(bool)  # a pad's output is unspecified (no key to attend to)
    np.testing.assert_allclose(np.asarray(got)[real], logits[real], rtol=1e-4, atol=1e-4)


def test_gpt2_hf_config_json(transformers, tmp_path):
    hf = transformers.GPT2Config(**SMALL, n_inner=40, activation_function="gelu", layer_norm_epsilon=1e-6)
    hf.save_pretrained(tmp_path)
    config = axon.models.GPT2Config.from_json(tmp_path / "config.json")
    assert (config.vocab_size, config.n_positions, config.n_embd, config.n_layer, config.n_head) == (96, 48, 32, 2, 4)
    assert (config.inner_size, config.activation_function, config.layer_norm_epsilon) == (40, "gelu", 1e-6)


def _qkv_model(decode: bool):
    qkv = axon.input("qkv", shape=(None, None, 12))
    mask = axon.optional(axon.input("mask", shape=(None, None), optional=True))
    if not decode:
        return axon.layer(_transformer.causal_self_attention_op, [qkv, mask], num_heads=2,
                          op_name="causal_self_attention")
    cache = axon.input("cache", shape=(1, 2, None, None, 2, 2))
    position = axon.input("position", shape=())
    return axon.layer(_transformer.cached_self_attention_op, [qkv, cache, position, mask], num_heads=2,
                      layer_index=0, op_name="cached_self_attention")


def _numpy_causal_attention(qkv, num_heads, start=0, past_k=None, past_v=None, key_mask=None):
    """Reference: softmax(q k^T / sqrt(h)) v per head; query i (at start + i) sees the keys j <= start + i
    that key_mask keeps."""
    b, t, three_d = qkv.shape
    d = three_d // 3
    h = d // num_heads
    q, k, v = (a.reshape(b, t, num_heads, h) for a in np.split(qkv, 3, axis=-1))
    if past_k is not None:
        k, v = np.concatenate([past_k, k], 1), np.concatenate([past_v, v], 1)
    logits = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(h)
    allowed = np.arange(k.shape[1])[None, :] <= (start + np.arange(t))[:, None]
    if key_mask is not None:
        allowed = allowed & key_mask[:, None, None, : k.shape[1]].astype(bool)
    logits = np.where(allowed, logits, -np.inf)
    with np.errstate(invalid="ignore"):  # a query with no key (a left pad) is NaN here, and never compared
        w = np.exp(logits - logits.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
    return np.einsum("bnts,bsnh->btnh", w, v).reshape(b, t, d)


def test_causal_self_attention_conformance():
    rng = np.random.default_rng(1)
    qkv = rng.normal(size=(2, 5, 12)).astype(np.float32)
    check_layer(_qkv_model(False), {"qkv": jnp.asarray(qkv)}, params={}, expected=_numpy_causal_attention(qkv, 2))
    mask = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])  # left padding: the real queries see only real keys
    got = axon.predict(_qkv_model(False), {}, {"qkv": jnp.asarray(qkv), "mask": jnp.asarray(mask)})
    np.testing.assert_allclose(np.asarray(got)[0, 2:], _numpy_causal_attention(qkv, 2, key_mask=mask)[0, 2:],
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got)[1], _numpy_causal_attention(qkv, 2)[1], rtol=1e-5, atol=1e-5)


def test_cached_self_attention_conformance():
    rng = np.random.default_rng(1)
    new = rng.normal(size=(2, 2, 12)).astype(np.float32)
    # positions 0..2 cached, 2 new tokens at positions 3, 4 (cache of length 6); row 0's position 0 is a pad
    past = rng.normal(size=(2, 2, 3, 2, 2)).astype(np.float32)  # (k|v, B, 3, heads, head)
    cache = np.zeros((1, 2, 2, 6, 2, 2), np.float32)
    cache[0, :, :, :3] = past
    key_mask = np.array([[0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    want_out = _numpy_causal_attention(new, 2, start=3, past_k=past[0], past_v=past[1], key_mask=key_mask)
    want_cache = cache.copy()
    want_cache[0, 0, :, 3:5] = new[..., 4:8].reshape(2, 2, 2, 2)
    want_cache[0, 1, :, 3:5] = new[..., 8:].reshape(2, 2, 2, 2)
    inputs = {"qkv": jnp.asarray(new), "cache": jnp.asarray(cache), "position": jnp.int32(3),
              "mask": jnp.asarray(key_mask)}
    check_layer(_qkv_model(True), inputs, params={}, expected=(want_out, want_cache))


def test_tied_head_has_one_parameter_and_gets_both_gradients():
    config = axon.models.GPT2Config(**TINY)
    model = axon.models.gpt2(config)
    state = axon.init(model, {"input_ids": axon.template((1, 6), "int32")})
    assert "lm_head" not in state and state["wte"]["kernel"].shape == (64, 16)
    ids = jnp.array([[1, 2, 3]], jnp.int32)
    _, predict = axon.build(model)
    table = state["wte"]["kernel"]

    def loss(table):
        params = {**state.data, "wte": {"kernel": table}}
        return predict.apply(params, {"input_ids": ids})[0, -1, 7]

    # ids 1..3 reach it through the embedding, and row 7 through the output layer (7 is not an input id)
    grad = np.asarray(jax.jit(jax.grad(loss))(table))
    assert np.abs(grad[7]).sum() > 0 and np.abs(grad[1]).sum() > 0 and np.abs(grad[50]).sum() == 0


def test_cached_decoding_equals_full_model():
    config = axon.models.GPT2Config(**SMALL)
    model, decode = axon.models.gpt2(config), axon.models.gpt2(config, decode=True)
    state = axon.init(model, {"input_ids": axon.template((1, 6), "int32")})
    ids = jnp.asarray(np.random.default_rng(2).integers(0, 96, (2, 9)), jnp.int32)
    full = np.asarray(axon.predict(model, state, {"input_ids": ids}))
    cache = jnp.zeros((2, 2, 2, 12, 4, 8))
    out = axon.predict(decode, state, {"input_ids": ids[:, :5], "position": jnp.int32(0), "cache": cache})
    logits = [np.asarray(out["logits"])]
    for i in range(5, 9):
        out = axon.predict(decode, state, {"input_ids": ids[:, i:i + 1], "position": jnp.int32(i), "cache": out["cache"]})
        logits.append(np.asarray(out["logits"]))
    np.testing.assert_allclose(np.concatenate(logits, axis=1), full, rtol=1e-5, atol=1e-5)


def test_generate_sampling_is_reproducible_and_top_k_1_is_greedy():
    config = axon.models.GPT2Config(**TINY)
    model = axon.models.gpt2(config)
    state = axon.init(model, {"input_ids": axon.template((1, 6), "int32")})
    prompt = jnp.array([[4, 5, 6]])
    a = axon.models.generate(model, state, prompt, 6, temperature=1.5, key=jax.random.key(3))
    b = axon.models.generate(model, state, prompt, 6, temperature=1.5, key=jax.random.key(3))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    greedy = np.asarray(axon.models.generate(model, state, prompt, 6))[0]
    # top_k=1 samples the most likely token: greedy; with an eos id, a sequence repeats it once produced
    eos = int(greedy[5])
    top1 = axon.models.generate(model, state, prompt, 6, temperature=0.7, top_k=1, key=jax.random.key(4),
                                eos_token_id=eos)
    first = 3 + list(greedy[3:]).index(eos)
    expected = np.concatenate([greedy[:first], np.full(9 - first, eos)])
    np.testing.assert_array_equal(np.asarray(top1)[0], expected)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(max_new_tokens=60), "n_positions=48"),
        (dict(temperature=-1.0), "temperature"),
        (dict(temperature=1.0), "needs an explicit key"),
        (dict(key=jax.random.key(0)), "key is only used when sampling"),
        (dict(top_k=3), "top_k only applies"),
        (dict(temperature=1.0, key=jax.random.key(0), top_k=500), "top_k=500"),
        (dict(prompt_ids=np.array([[1.5]])), "integer prompt_ids"),
        (dict(prompt_ids=np.array([[1, 200]])), r"prompt ids must be in \[0, 96\)"),
        (dict(prompt_ids=np.zeros((1, 0), int)), "length >= 1"),
        (dict(eos_token_id=96), "eos_token_id=96"),
        (dict(loop="while"), "loop"),
        (dict(attention_mask=np.array([[1, 0]])), "left-padded"),
        (dict(attention_mask=np.array([[1, 1, 1]])), "attention_mask of the prompt's shape"),
        (dict(attention_mask=np.array([[2, 1]])), "only 0/1"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs, match):
    config = axon.models.GPT2Config(**SMALL)
    args = {"prompt_ids": np.array([[1, 2]]), "max_new_tokens": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        axon.models.generate(config, {}, **args)


def test_generate_rejects_other_models():
    with pytest.raises(TypeError, match="made by axon.models.gpt2"):
        axon.models.generate(axon.input("x"), {}, np.array([[1]]), 1)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"model_type": "bert"}, "model_type 'bert'"),
        ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx=True is not supported"),
        ({"add_cross_attention": True}, "add_cross_attention"),
        ({"tie_word_embeddings": False}, "tie_word_embeddings"),
        ({"activation_function": "swish"}, "activation_function='swish'"),
        ({"n_embd": 30, "n_head": 4}, "not divisible"),
        ({"n_layer": 0}, "n_layer to be a positive int"),
        ({"layer_norm_epsilon": -1}, "layer_norm_epsilon"),
    ],
)
def test_gpt2_config_rejects_unsupported_values(data, match):
    with pytest.raises(ValueError, match=match):
        axon.models.GPT2Config.from_dict(data)


def test_gpt2_config_reads_n_ctx_and_ignores_other_keys(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"n_ctx": 64, "architectures": ["GPT2LMHeadModel"], "summary_type": "cls_index"}))
    assert axon.models.GPT2Config.from_json(path).n_positions == 64
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a JSON object"):
        axon.models.GPT2Config.from_json(path)
    with pytest.raises(TypeError, match="GPT2Config"):
        axon.models.gpt2({"n_layer": 2})


def test_gpt2_rejects_a_sequence_longer_than_its_positions():
    model = axon.models.gpt2(axon.models.GPT2Config(**TINY))
    with pytest.raises(ValueError, match="25 tokens is longer than the 24 learned positions"):
        axon.get_output_shape(model, {"input_ids": axon.template((1, 25), "int32")})


def test_gpt2_saves_and_loads_with_its_config(tmp_path):
    config = axon.models.GPT2Config(**TINY)
    model = axon.models.gpt2(config)
    state = axon.init(model, {"input_ids": axon.template((1, 4), "int32")})
    axon.save(tmp_path / "gpt2.axon", model, state)
    loaded, loaded_state = axon.load(tmp_path / "gpt2.axon")
    ids = jnp.array([[1, 2, 3]])
    np.testing.assert_array_equal(np.asarray(axon.predict(loaded, loaded_state, {"input_ids": ids})),
                                  np.asarray(axon.predict(model, state, {"input_ids": ids})))
    assert axon.models.GPT2Config(**loaded.node.meta["axon.models.gpt2"]) == config


def test_a_saved_gpt2_loads_in_a_program_that_never_imported_axon_models(tmp_path):
    config = axon.models.GPT2Config(**TINY)
    model = axon.models.gpt2(config)
    state = axon.init(model, {"input_ids": axon.template((1, 4), "int32")})
    axon.save(tmp_path / "gpt2.axon", model, state)
    ids = np.array([[1, 2, 3]])
    np.save(tmp_path / "expected.npy", np.asarray(axon.predict(model, state, {"input_ids": ids})))
    script = (
        "import sys, numpy as np, axon\n"
        "assert 'axon.models' not in sys.modules\n"
        f"m, s = axon.load({str(tmp_path / 'gpt2.axon')!r})\n"
        "out = np.asarray(axon.predict(m, s, {'input_ids': np.array([[1, 2, 3]])}))\n"
        f"np.testing.assert_array_equal(out, np.load({str(tmp_path / 'expected.npy')!r}))\n"
        "print('ok')\n"
    )
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
