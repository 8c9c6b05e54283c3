"""GPT-2: a decoder-only transformer with learned positions and a tied output layer.

:func:`gpt2` builds the model from a :class:`GPT2Config` (read from a Hugging Face
``config.json`` with :meth:`GPT2Config.from_json`); :func:`gpt2_weight_map` maps the names of
a Hugging Face ``GPT2LMHeadModel`` (or ``GPT2Model``) state dict onto its parameters, for
:func:`axon.pretrained.load_weights`. ``gpt2(config, decode=True)`` is the same network,
with the same parameter names, reading and writing a key/value cache; :func:`axon.models.generate`
runs it.

Layers are named after Hugging Face's modules with ``_`` for ``.``: ``wte``, ``wpe``,
``h_<i>_ln_1``, ``h_<i>_attn_c_attn`` (the fused query/key/value projection, kernel
``(D, 3·D)``, the layout of Hugging Face's ``Conv1D``, so no transpose is needed),
``h_<i>_attn_c_proj``, ``h_<i>_ln_2``, ``h_<i>_mlp_c_fc``, ``h_<i>_mlp_c_proj``, ``ln_f``.
The output layer ``lm_head`` multiplies by ``wte``'s table (weight tying): the model has one
parameter for both.

>>> import axon, axon.models
>>> config = axon.models.GPT2Config(vocab_size=50, n_positions=16, n_embd=8, n_layer=1, n_head=2)
>>> model = axon.models.gpt2(config)
>>> state = axon.init(model, {"input_ids": axon.template((1, 5), "int32")})
>>> axon.predict(model, state, {"input_ids": jnp.zeros((1, 5), "int32")}).shape
(1, 5, 50)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, Literal

import jax.numpy as jnp  # noqa: F401  (used by the doctests)

import axon
from axon.models import _config
from axon.models._transformer import (
    cached_self_attention_op,
    causal_self_attention_op,
    default_positions_op,
    gelu_tanh_op,
    select_op,
    tied_embedding_op,
    tied_logits_op,
)

__all__ = ["GPT2Config", "gpt2", "gpt2_weight_map"]

GPT2Activation = Literal["gelu_new", "gelu_pytorch_tanh", "gelu", "relu"]
_ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh", "gelu", "relu")

_UNSUPPORTED = {
    "scale_attn_weights": _config.one_of(True),
    "scale_attn_by_inverse_layer_idx": _config.one_of(False),
    "add_cross_attention": _config.one_of(False),
    "tie_word_embeddings": _config.one_of(True),
    "is_encoder_decoder": _config.one_of(False),
}


@dataclasses.dataclass(frozen=True)
class GPT2Config:
    """The hyperparameters of :func:`gpt2`, named as in Hugging Face's ``GPT2Config``
    (defaults: GPT-2 small).

    Attributes:
        vocab_size: The number of token ids.
        n_positions: The number of learned positions (the longest sequence).
        n_embd: The width ``D`` of the model.
        n_layer: The number of transformer blocks.
        n_head: The number of attention heads (``D`` must divide by it).
        n_inner: The width of the feed-forward layer; ``None``: ``4 · D``.
        activation_function: The feed-forward activation: ``"gelu_new"`` or
            ``"gelu_pytorch_tanh"`` (GELU's tanh approximation), ``"gelu"`` (exact) or ``"relu"``.
        layer_norm_epsilon: The layer norms' epsilon.
        bos_token_id: The id that starts a text (not used by the model).
        eos_token_id: The id that ends a text (:func:`axon.models.generate` may stop on it).

    >>> GPT2Config.from_dict({"n_embd": 64, "n_head": 4, "n_layer": 2, "vocab_size": 100,
    ...                       "architectures": ["GPT2LMHeadModel"]}).head_size
    16
    """

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None
    activation_function: GPT2Activation = "gelu_new"
    layer_norm_epsilon: float = 1e-5
    bos_token_id: int | None = 50256
    eos_token_id: int | None = 50256

    def __post_init__(self) -> None:
        where = "GPT2Config"
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            _config.check_positive_int(where, name, getattr(self, name))
        _config.check_positive_int(where, "n_inner", self.n_inner, allow_none=True)
        if self.n_embd % self.n_head:
            raise ValueError(f"{where}: n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if self.activation_function not in _ACTIVATIONS:
            raise ValueError(
                f"{where}: activation_function={self.activation_function!r} is not supported; "
                f"expected one of {list(_ACTIVATIONS)}"
            )
        _config.check_positive_float(where, "layer_norm_epsilon", self.layer_norm_epsilon)
        for name in ("bos_token_id", "eos_token_id"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{where}: expected {name} to be a non-negative int or None, got {value!r}")

    @property
    def head_size(self) -> int:
        """``n_embd // n_head``."""
        return self.n_embd // self.n_head

    @property
    def inner_size(self) -> int:
        """The feed-forward width: ``n_inner`` or ``4 · n_embd``."""
        return self.n_inner or 4 * self.n_embd

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GPT2Config:
        """A config from a parsed Hugging Face ``config.json``.

        Keys that are not fields are ignored (tokenizer, training and task settings), except
        those that change the architecture, whose unsupported values are rejected
        (``scale_attn_by_inverse_layer_idx=True``, ``add_cross_attention=True``,
        ``tie_word_embeddings=False``, ...). ``n_ctx`` is read as ``n_positions`` when that
        is absent.

        Args:
            data: The parsed JSON object.

        Returns:
            The config.

        Raises:
            TypeError: ``data`` is not a mapping.
            ValueError: ``model_type`` is not ``"gpt2"``, or a value is invalid or unsupported.

        >>> GPT2Config.from_dict({"model_type": "bert"})
        Traceback (most recent call last):
        ValueError: GPT2Config: config.json has model_type 'bert'; expected 'gpt2'
        """
        return _config.read_config(cls, data, model_type="gpt2", aliases={"n_ctx": "n_positions"}, unsupported=_UNSUPPORTED)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> GPT2Config:
        """A config from a Hugging Face ``config.json`` file (see :meth:`from_dict`).

        Args:
            path: The file.

        Returns:
            The config.

        Raises:
            ValueError: The file is not a JSON object, or a value is invalid or unsupported.

        >>> import json, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "config.json")
        >>> with open(path, "w") as f:
        ...     json.dump({"model_type": "gpt2", "n_layer": 2}, f)
        >>> GPT2Config.from_json(path).n_layer
        2
        """
        return _config.from_json(cls, path)


def _check_config(config: Any, where: str) -> GPT2Config:
    if not isinstance(config, GPT2Config):
        raise TypeError(f"{where}: expected a GPT2Config (e.g. GPT2Config.from_json(path)), got {type(config).__name__}")
    return config


def _select(x: axon.Axon, index: int, name: str) -> axon.Axon:
    return axon.layer(select_op, [x], index=index, name=name, op_name="select")


def _activation(x: axon.Axon, kind: str, name: str) -> axon.Axon:
    if kind in ("gelu_new", "gelu_pytorch_tanh"):
        return axon.layer(gelu_tanh_op, [x], name=name, op_name="gelu_tanh")
    return axon.activation(x, kind, name=name)


def gpt2(config: GPT2Config, *, decode: bool = False) -> axon.Axon:
    """GPT-2 (Radford et al., 2019): token and learned position embeddings, ``n_layer``
    pre-norm blocks (causal self-attention, then a feed-forward layer, each with a residual
    connection), a final layer norm and an output layer tied to the token embeddings.

    The input ``"input_ids"`` is ``(batch, T)`` integers; the output is the logits
    ``(batch, T, vocab_size)``. Optional inputs: ``"attention_mask"`` ``(batch, T)`` (1 or
    ``True`` = a real token, 0 = padding, which no token attends to) and ``"position_ids"``
    ``(batch, T)`` (default ``0 .. T - 1``; with left padding, Hugging Face numbers the real
    tokens from 0: ``cumsum(mask) - 1``). Parameters are initialized as Hugging Face does (normal with
    scale 0.02, layer norms at 1 and 0), and are named as listed in the module docstring.
    There is no dropout: the model is for inference and fine-tuning from loaded weights.

    With ``decode=True`` the model also takes ``"position"`` (a scalar int: the position of
    the first of the ``T`` tokens) and ``"cache"`` (``(n_layer, 2, batch, max_length,
    n_head, head_size)``, the keys and values of the earlier positions) and returns
    ``{"logits": ..., "cache": updated_cache}``: running a prompt at position 0 and then one
    token at a time gives the logits of the full model, each step costing one position.
    ``position + T`` must not exceed ``max_length`` (it cannot be checked inside a trace).
    Its ``"attention_mask"`` is over the cache's positions, ``(batch, max_length)``, and
    ``"position_ids"`` (default ``position .. position + T - 1``) are those of the new tokens.
    Its parameters are the same as the full model's.

    The model saves with :func:`axon.save` and loads with :func:`axon.load` in any program
    (loading imports :mod:`axon.models`, which registers the ops the model uses).

    Args:
        config: The hyperparameters.
        decode: Build the cached decoding model. Default ``False``.

    Returns:
        The model graph.

    Raises:
        TypeError: ``config`` is not a :class:`GPT2Config`, or ``decode`` is not a bool.

    >>> import axon, axon.models, jax.numpy as jnp
    >>> config = axon.models.GPT2Config(vocab_size=50, n_positions=16, n_embd=8, n_layer=2, n_head=2)
    >>> sorted(axon.init(axon.models.gpt2(config), {"input_ids": axon.template((1, 4), "int32")}).keys())[:4]
    ['h_0_attn_c_attn', 'h_0_attn_c_proj', 'h_0_ln_1', 'h_0_ln_2']
    """
    config = _check_config(config, "gpt2")
    if not isinstance(decode, bool):
        raise TypeError(f"gpt2: expected decode to be a bool, got {decode!r}")
    init = axon.initializers.normal(scale=0.02)
    d = config.n_embd
    ids = axon.input("input_ids", shape=(None, None))
    key_mask = axon.optional(axon.input("attention_mask", shape=(None, None), optional=True))
    cache = position = None
    if decode:
        position = axon.input("position", shape=())
        cache = axon.input("cache", shape=(config.n_layer, 2, None, None, config.n_head, config.head_size))
    wte = axon.layer(
        tied_embedding_op, [ids, axon.param("kernel", (config.vocab_size, d), initializer=init)],
        name="wte", op_name="tied_embedding",
    )
    table = _select(wte, 1, "wte_table")
    default_positions = axon.layer(default_positions_op, [ids] + ([position] if decode else []),
                                   max_positions=config.n_positions, name="default_positions",
                                   op_name="default_positions")
    positions = axon.or_else(axon.input("position_ids", shape=(None, None), optional=True), default_positions,
                             name="positions")
    wpe = axon.embedding(positions, config.n_positions, d, kernel_initializer=init, name="wpe")
    x = axon.add(_select(wte, 0, "wte_embeddings"), wpe, name="embeddings")
    eps = config.layer_norm_epsilon
    for i in range(config.n_layer):
        p = f"h_{i}_"
        h = axon.layer_norm(x, epsilon=eps, name=p + "ln_1")
        qkv = axon.dense(h, 3 * d, kernel_initializer=init, name=p + "attn_c_attn")
        if decode:
            attn = axon.layer(cached_self_attention_op, [qkv, cache, position, key_mask], num_heads=config.n_head,
                              layer_index=i, name=p + "attn", op_name="cached_self_attention")
            cache = _select(attn, 1, p + "attn_cache")
            attn = _select(attn, 0, p + "attn_output")
        else:
            attn = axon.layer(causal_self_attention_op, [qkv, key_mask], num_heads=config.n_head,
                              name=p + "attn", op_name="causal_self_attention")
        x = axon.add(x, axon.dense(attn, d, kernel_initializer=init, name=p + "attn_c_proj"), name=p + "attn_residual")
        h = axon.layer_norm(x, epsilon=eps, name=p + "ln_2")
        h = axon.dense(h, config.inner_size, kernel_initializer=init, name=p + "mlp_c_fc")
        h = _activation(h, config.activation_function, p + "mlp_act")
        x = axon.add(x, axon.dense(h, d, kernel_initializer=init, name=p + "mlp_c_proj"), name=p + "mlp_residual")
    x = axon.layer_norm(x, epsilon=eps, name="ln_f")
    meta = {"axon.models.gpt2": dataclasses.asdict(config), "decode": decode}  # plain values: the model saves
    logits = axon.layer(tied_logits_op, [x, table], name="lm_head", op_name="tied_logits",
                        meta=None if decode else meta)
    if decode:
        return axon.container({"logits": logits, "cache": cache}, name="outputs", meta=meta)
    return logits


_PREFIX = r"(?:transformer\.)?"


def gpt2_weight_map() -> list[tuple[str, str | None, Any]]:
    """The rules mapping a Hugging Face ``GPT2LMHeadModel``/``GPT2Model`` state dict onto
    :func:`gpt2`'s parameters, for :func:`axon.pretrained.load_weights`.

    Names may have the ``transformer.`` prefix (``GPT2LMHeadModel``) or not (``GPT2Model``).
    ``lm_head.weight`` is dropped (it is ``wte``'s table, tied), as are the attention
    layers' causal-mask buffers (``attn.bias``, ``attn.masked_bias``) of older checkpoints.
    Hugging Face's ``Conv1D`` stores weights ``(in, out)``, axon's dense layout, so no
    weight is transformed.

    Returns:
        A list of ``(pattern, target, transform)`` rules.

    >>> import re
    >>> rules = gpt2_weight_map()
    >>> [re.sub(p, t, "transformer.h.3.attn.c_attn.weight") for p, t, _ in rules
    ...  if t and re.fullmatch(p, "transformer.h.3.attn.c_attn.weight")]
    ['h_3_attn_c_attn.kernel']
    """
    block = _PREFIX + r"h\.(\d+)\."
    rules: list[tuple[str, str | None, Any]] = [
        (_PREFIX + r"wte\.weight", "wte.kernel", None),
        (_PREFIX + r"wpe\.weight", "wpe.kernel", None),
        (block + r"ln_([12])\.weight", r"h_\1_ln_\2.gamma", None),
        (block + r"ln_([12])\.bias", r"h_\1_ln_\2.beta", None),
    ]
    for module in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
        layer_name = r"h_\1_" + module.replace(".", "_")
        escaped = module.replace(".", r"\.")
        rules += [
            (block + escaped + r"\.weight", layer_name + ".kernel", None),
            (block + escaped + r"\.bias", layer_name + ".bias", None),
        ]
    rules += [
        (_PREFIX + r"ln_f\.weight", "ln_f.gamma", None),
        (_PREFIX + r"ln_f\.bias", "ln_f.beta", None),
        (r"lm_head\.weight", None, None),
        (block + r"attn\.(?:bias|masked_bias)", None, None),
    ]
    return rules
