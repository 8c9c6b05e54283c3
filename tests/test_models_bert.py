"""axon.models.bert against Hugging Face's BertModel (padding masks, token types, pooler), its
weight map and its config reader."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import axon
import axon.models

SMALL = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
             max_position_embeddings=40, type_vocab_size=2)


def _torch_bert(transformers, **overrides):
    import torch

    torch.manual_seed(0)
    config = transformers.BertConfig(**{**SMALL, **overrides})
    config._attn_implementation = "eager"
    return transformers.BertModel(config, add_pooling_layer=config.to_dict().get("add_pooling_layer", True)).eval()


def test_bert_matches_transformers_with_padding(transformers, tmp_path):
    import torch
    from safetensors.torch import save_file

    reference = _torch_bert(transformers, hidden_act="gelu")
    config = axon.models.BertConfig.from_dict(reference.config.to_dict())
    model = axon.models.bert(config)
    states = []
    for prefix in ("", "bert."):  # BertModel's names, and those of the task models
        path = str(tmp_path / f"model{prefix}safetensors")
        save_file({prefix + k: v.contiguous() for k, v in reference.state_dict().items()}, path)
        template = {"input_ids": axon.template((1, 7), "int32")}
        states.append(axon.pretrained.load_weights(model, path, mapping=axon.models.bert_weight_map(config),
                                                   template=template))
    state = states[1]
    for a, b in zip(jax.tree_util.tree_leaves(states[0]), jax.tree_util.tree_leaves(state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    rng = np.random.default_rng(0)
    ids = rng.integers(1, SMALL["vocab_size"], (3, 9))
    mask = np.ones((3, 9), np.int64)
    mask[1, 6:] = 0  # padding at the end of two rows
    mask[2, 3:] = 0
    types = np.zeros((3, 9), np.int64)
    types[:, 4:] = 1
    with torch.no_grad():
        expected = reference(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                             token_type_ids=torch.tensor(types))
    got = axon.predict(model, state, {"input_ids": jnp.asarray(ids, jnp.int32), "attention_mask": jnp.asarray(mask),
                                      "token_type_ids": jnp.asarray(types, jnp.int32)})
    np.testing.assert_allclose(np.asarray(got["last_hidden_state"]), expected.last_hidden_state.numpy(),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(got["pooler_output"]), expected.pooler_output.numpy(), rtol=1e-4, atol=1e-4)
    # without the optional inputs: no padding, token type 0
    with torch.no_grad():
        plain = reference(input_ids=torch.tensor(ids)).last_hidden_state.numpy()
    got = axon.predict(model, state, {"input_ids": jnp.asarray(ids, jnp.int32)})
    np.testing.assert_allclose(np.asarray(got["last_hidden_state"]), plain, rtol=1e-4, atol=1e-4)


def test_bert_without_pooler_and_tanh_gelu_from_bin(transformers, tmp_path):
    import torch

    reference = _torch_bert(transformers, hidden_act="gelu_new", num_hidden_layers=1, add_pooling_layer=False)
    path = tmp_path / "pytorch_model.bin"
    torch.save(reference.state_dict(), path)
    reference.config.save_pretrained(tmp_path)
    config = axon.models.BertConfig.from_json(tmp_path / "config.json")
    assert (config.hidden_act, config.num_hidden_layers) == ("gelu_new", 1)
    config = axon.models.BertConfig(**{**config.__dict__, "add_pooling_layer": False})
    model = axon.models.bert(config)
    state = axon.pretrained.load_weights(model, path, mapping=axon.models.bert_weight_map(config),
                                         template={"input_ids": axon.template((1, 7), "int32")})
    assert "pooler" not in state
    ids = np.random.default_rng(1).integers(0, SMALL["vocab_size"], (2, 6))
    with torch.no_grad():
        expected = reference(input_ids=torch.tensor(ids)).last_hidden_state.numpy()
    got = axon.predict(model, state, {"input_ids": jnp.asarray(ids, jnp.int32)})
    assert set(got) == {"last_hidden_state"}
    np.testing.assert_allclose(np.asarray(got["last_hidden_state"]), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"position_embedding_type": "relative_key_query"}, "position_embedding_type='relative_key_query'"),
        ({"is_decoder": True}, "is_decoder=True is not supported"),
        ({"model_type": "gpt2"}, "model_type 'gpt2'"),
        ({"hidden_act": "mish"}, "hidden_act='mish'"),
        ({"hidden_size": 30}, "not divisible"),
        ({"vocab_size": "many"}, "vocab_size to be a positive int"),
        ({"layer_norm_eps": 0}, "layer_norm_eps"),
    ],
)
def test_bert_config_rejects_unsupported_values(data, match):
    with pytest.raises(ValueError, match=match):
        axon.models.BertConfig.from_dict(data)


def test_bert_config_ignores_irrelevant_keys(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "bert", "hidden_size": 64, "num_attention_heads": 8,
                                "hidden_dropout_prob": 0.1, "classifier_dropout": None, "use_cache": True}))
    config = axon.models.BertConfig.from_json(path)
    assert (config.hidden_size, config.head_size, config.vocab_size) == (64, 8, 30522)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        axon.models.BertConfig.from_json(path)
    with pytest.raises(TypeError, match="BertConfig"):
        axon.models.bert(axon.models.GPT2Config())
    with pytest.raises(TypeError, match="BertConfig"):
        axon.models.bert_weight_map(None)
