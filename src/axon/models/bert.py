"""BERT: a bidirectional transformer encoder with a pooler.

:func:`bert` builds the encoder from a :class:`BertConfig` (read from a Hugging Face
``config.json`` with :meth:`BertConfig.from_json`); :func:`bert_weight_map` maps the names of
a Hugging Face ``BertModel`` state dict (with or without the ``bert.`` prefix of the task
models) onto its parameters, for :func:`axon.pretrained.load_weights`.

Layers are named after Hugging Face's modules with ``_`` for ``.``:
``embeddings_word_embeddings``, ``embeddings_position_embeddings``,
``embeddings_token_type_embeddings``, ``embeddings_layer_norm``, and per layer ``i``
``encoder_layer_<i>_attention`` (an :func:`axon.multi_head_attention`),
``encoder_layer_<i>_attention_layer_norm``, ``encoder_layer_<i>_intermediate``,
``encoder_layer_<i>_output``, ``encoder_layer_<i>_output_layer_norm``; then ``pooler``.

>>> import axon, axon.models, jax.numpy as jnp
>>> config = axon.models.BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
...                                 num_attention_heads=2, intermediate_size=16, max_position_embeddings=16)
>>> model = axon.models.bert(config)
>>> state = axon.init(model, {"input_ids": axon.template((1, 5), "int32")})
>>> out = axon.predict(model, state, {"input_ids": jnp.zeros((1, 5), "int32")})
>>> out["last_hidden_state"].shape, out["pooler_output"].shape
((1, 5, 8), (1, 8))
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

import axon
from axon.models import _config
from axon.models._transformer import (
    all_true_op,
    first_token_op,
    gelu_tanh_op,
    not_zero_op,
    positions_op,
    zeros_like_op,
)

__all__ = ["BertConfig", "bert", "bert_weight_map"]

BertActivation = Literal["gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "tanh"]
_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "tanh")

_UNSUPPORTED = {
    "position_embedding_type": _config.one_of("absolute"),
    "is_decoder": _config.one_of(False),
    "add_cross_attention": _config.one_of(False),
    "is_encoder_decoder": _config.one_of(False),
}


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """The hyperparameters of :func:`bert`, named as in Hugging Face's ``BertConfig``
    (defaults: BERT-base).

    Attributes:
        vocab_size: The number of token ids.
        hidden_size: The width ``D`` of the model.
        num_hidden_layers: The number of encoder layers.
        num_attention_heads: The number of attention heads (``D`` must divide by it).
        intermediate_size: The width of the feed-forward layers.
        hidden_act: The feed-forward activation: ``"gelu"`` (exact), ``"gelu_new"`` or
            ``"gelu_pytorch_tanh"`` (tanh approximation), ``"relu"`` or ``"tanh"``.
        max_position_embeddings: The number of learned positions (the longest sequence).
        type_vocab_size: The number of token types (segments).
        layer_norm_eps: The layer norms' epsilon.
        add_pooling_layer: Whether the model has the pooler (``pooler_output``).
        pad_token_id: The padding id (not used by the model).

    >>> BertConfig.from_dict({"hidden_size": 64, "num_attention_heads": 4, "position_embedding_type": "relative_key"})
    Traceback (most recent call last):
    ValueError: BertConfig: position_embedding_type='relative_key' is not supported; expected one of ['absolute']
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: BertActivation = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    add_pooling_layer: bool = True
    pad_token_id: int | None = 0

    def __post_init__(self) -> None:
        where = "BertConfig"
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size"):
            _config.check_positive_int(where, name, getattr(self, name))
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"{where}: hidden_size={self.hidden_size} is not divisible by "
                f"num_attention_heads={self.num_attention_heads}"
            )
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(
                f"{where}: hidden_act={self.hidden_act!r} is not supported; expected one of {list(_ACTIVATIONS)}"
            )
        _config.check_positive_float(where, "layer_norm_eps", self.layer_norm_eps)
        if not isinstance(self.add_pooling_layer, bool):
            raise ValueError(f"{where}: expected add_pooling_layer to be a bool, got {self.add_pooling_layer!r}")

    @property
    def head_size(self) -> int:
        """``hidden_size // num_attention_heads``."""
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BertConfig:
        """A config from a parsed Hugging Face ``config.json``.

        Keys that are not fields are ignored (tokenizer, training and task settings), except
        those that change the architecture, whose unsupported values are rejected
        (``position_embedding_type`` other than ``"absolute"``, ``is_decoder=True``,
        ``add_cross_attention=True``).

        Args:
            data: The parsed JSON object.

        Returns:
            The config.

        Raises:
            TypeError: ``data`` is not a mapping.
            ValueError: ``model_type`` is not ``"bert"``, or a value is invalid or unsupported.

        >>> BertConfig.from_dict({"model_type": "bert", "num_hidden_layers": 2, "gradient_checkpointing": False}).num_hidden_layers
        2
        """
        return _config.read_config(cls, data, model_type="bert", unsupported=_UNSUPPORTED)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> BertConfig:
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
        ...     json.dump({"model_type": "bert", "hidden_size": 32, "num_attention_heads": 4}, f)
        >>> BertConfig.from_json(path).head_size
        8
        """
        return _config.from_json(cls, path)


def _activation(x: axon.Axon, kind: str, name: str) -> axon.Axon:
    if kind in ("gelu_new", "gelu_pytorch_tanh"):
        return axon.layer(gelu_tanh_op, [x], name=name, op_name="gelu_tanh")
    return axon.activation(x, kind, name=name)


def bert(config: BertConfig) -> axon.Axon:
    """BERT (Devlin et al., 2019): the encoder of Hugging Face's ``BertModel``.

    Inputs: ``"input_ids"`` ``(batch, T)`` integers; optional ``"attention_mask"``
    ``(batch, T)`` (1 or ``True`` = a real token, 0 = padding, which no token attends to;
    default: all real) and ``"token_type_ids"`` ``(batch, T)`` (default: all 0). The
    embeddings (token + position + token type, then a layer norm) go through
    ``num_hidden_layers`` post-norm layers (self-attention, then a feed-forward layer, each
    with a residual connection and a layer norm); the pooler is a dense layer with tanh on
    the first token's hidden state.

    The output is a container ``{"last_hidden_state": (batch, T, D), "pooler_output":
    (batch, D)}`` (without the pooler, ``add_pooling_layer=False``, only
    ``last_hidden_state``). There is no dropout. Parameters are initialized as Hugging Face
    does (normal with scale 0.02, layer norms at 1 and 0).

    Args:
        config: The hyperparameters.

    Returns:
        The model graph.

    Raises:
        TypeError: ``config`` is not a :class:`BertConfig`.

    >>> import axon, axon.models, jax.numpy as jnp
    >>> config = axon.models.BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
    ...                                 num_attention_heads=2, intermediate_size=16, add_pooling_layer=False)
    >>> inputs = {"input_ids": jnp.array([[5, 6, 0]]), "attention_mask": jnp.array([[1, 1, 0]])}
    >>> model = axon.models.bert(config)
    >>> axon.predict(model, axon.init(model, inputs), inputs)["last_hidden_state"].shape
    (1, 3, 8)
    """
    if not isinstance(config, BertConfig):
        raise TypeError(f"bert: expected a BertConfig (e.g. BertConfig.from_json(path)), got {type(config).__name__}")
    init = axon.initializers.normal(scale=0.02)
    d, eps = config.hidden_size, config.layer_norm_eps
    ids = axon.input("input_ids", shape=(None, None))
    given_mask = axon.input("attention_mask", shape=(None, None), optional=True)
    given_types = axon.input("token_type_ids", shape=(None, None), optional=True)
    everywhere = axon.layer(all_true_op, [ids], name="attend_everywhere", op_name="all_true")
    mask = axon.or_else(axon.layer(not_zero_op, [given_mask], name="attention_mask_bool", op_name="not_zero"),
                        everywhere, name="mask")
    types = axon.or_else(given_types, axon.layer(zeros_like_op, [ids], name="token_types_default", op_name="zeros_like"),
                         name="token_types")
    x = axon.add(
        [
            axon.embedding(ids, config.vocab_size, d, kernel_initializer=init, name="embeddings_word_embeddings"),
            axon.layer(positions_op, [ids, axon.param("kernel", (config.max_position_embeddings, d), initializer=init)],
                       name="embeddings_position_embeddings", op_name="positions"),
            axon.embedding(types, config.type_vocab_size, d, kernel_initializer=init,
                           name="embeddings_token_type_embeddings"),
        ],
        name="embeddings",
    )
    x = axon.layer_norm(x, epsilon=eps, name="embeddings_layer_norm")
    for i in range(config.num_hidden_layers):
        p = f"encoder_layer_{i}_"
        attn = axon.multi_head_attention(x, num_heads=config.num_attention_heads, mask=mask, kernel_initializer=init,
                                         name=p + "attention")
        x = axon.layer_norm(axon.add(x, attn, name=p + "attention_residual"), epsilon=eps, name=p + "attention_layer_norm")
        h = axon.dense(x, config.intermediate_size, kernel_initializer=init, name=p + "intermediate")
        h = _activation(h, config.hidden_act, p + "intermediate_act")
        h = axon.dense(h, d, kernel_initializer=init, name=p + "output")
        x = axon.layer_norm(axon.add(x, h, name=p + "output_residual"), epsilon=eps, name=p + "output_layer_norm")
    meta = {"axon.models.bert": dataclasses.asdict(config)}  # plain values: the model saves
    if not config.add_pooling_layer:
        return axon.container({"last_hidden_state": x}, name="outputs", meta=meta)
    first = axon.layer(first_token_op, [x], name="first_token", op_name="first_token")
    pooled = axon.tanh(axon.dense(first, d, kernel_initializer=init, name="pooler"), name="pooler_act")
    return axon.container({"last_hidden_state": x, "pooler_output": pooled}, name="outputs", meta=meta)


class _LinearToHeads:
    """A ``torch.nn.Linear`` weight ``(out, in)`` or bias ``(out,)`` to the per-head layout of
    :func:`axon.multi_head_attention`: ``(in, heads, head_size)`` / ``(heads, head_size)``
    for the query/key/value projections, ``(heads, head_size, out)`` for the output one."""

    def __init__(self, heads: int, output: bool):
        self.heads = heads
        self.output = output

    def __call__(self, array: Any) -> Any:
        a = np.asarray(array)
        if a.ndim == 1:
            return a.reshape(self.heads, -1) if not self.output else a
        if a.ndim != 2:
            raise ValueError(f"expected a Linear weight (out, in), got shape {tuple(a.shape)}")
        t = a.T
        return t.reshape(self.heads, -1, t.shape[1]) if self.output else t.reshape(t.shape[0], self.heads, -1)

    def __repr__(self) -> str:
        return f"linear_to_heads(heads={self.heads}, {'output' if self.output else 'input'})"


def bert_weight_map(config: BertConfig) -> list[tuple[str, str | None, Any]]:
    """The rules mapping a Hugging Face ``BertModel`` state dict onto :func:`bert`'s
    parameters, for :func:`axon.pretrained.load_weights`.

    Names may have the ``bert.`` prefix of the task models (``BertForSequenceClassification``
    ...; their heads are not mapped) or not. Linear weights ``(out, in)`` are transposed to
    axon's ``(in, out)``; the attention projections are also split per head (which is why
    the map needs the config). The ``embeddings.position_ids``/``token_type_ids`` buffers are
    dropped.

    Args:
        config: The model's hyperparameters.

    Returns:
        A list of ``(pattern, target, transform)`` rules.

    Raises:
        TypeError: ``config`` is not a :class:`BertConfig`.

    >>> import re
    >>> rules = bert_weight_map(BertConfig(num_hidden_layers=2))
    >>> [re.sub(p, t, "bert.encoder.layer.1.attention.self.query.bias") for p, t, _ in rules
    ...  if t and re.fullmatch(p, "bert.encoder.layer.1.attention.self.query.bias")]
    ['encoder_layer_1_attention.query_bias']
    """
    if not isinstance(config, BertConfig):
        raise TypeError(f"bert_weight_map: expected a BertConfig, got {type(config).__name__}")
    pre = r"(?:bert\.)?"
    emb = pre + r"embeddings\."
    layer = pre + r"encoder\.layer\.(\d+)\."
    into_heads = _LinearToHeads(config.num_attention_heads, output=False)
    out_of_heads = _LinearToHeads(config.num_attention_heads, output=True)
    rules: list[tuple[str, str | None, Any]] = [
        (emb + r"word_embeddings\.weight", "embeddings_word_embeddings.kernel", None),
        (emb + r"position_embeddings\.weight", "embeddings_position_embeddings.kernel", None),
        (emb + r"token_type_embeddings\.weight", "embeddings_token_type_embeddings.kernel", None),
        (emb + r"LayerNorm\.weight", "embeddings_layer_norm.gamma", None),
        (emb + r"LayerNorm\.bias", "embeddings_layer_norm.beta", None),
        (emb + r"(?:position_ids|token_type_ids)", None, None),
    ]
    for part in ("query", "key", "value"):
        rules += [
            (layer + rf"attention\.self\.{part}\.weight", rf"encoder_layer_\1_attention.{part}_kernel", into_heads),
            (layer + rf"attention\.self\.{part}\.bias", rf"encoder_layer_\1_attention.{part}_bias", into_heads),
        ]
    rules += [
        (layer + r"attention\.output\.dense\.weight", r"encoder_layer_\1_attention.output_kernel", out_of_heads),
        (layer + r"attention\.output\.dense\.bias", r"encoder_layer_\1_attention.output_bias", None),
        (layer + r"attention\.output\.LayerNorm\.weight", r"encoder_layer_\1_attention_layer_norm.gamma", None),
        (layer + r"attention\.output\.LayerNorm\.bias", r"encoder_layer_\1_attention_layer_norm.beta", None),
        (layer + r"intermediate\.dense\.weight", r"encoder_layer_\1_intermediate.kernel", "transpose"),
        (layer + r"intermediate\.dense\.bias", r"encoder_layer_\1_intermediate.bias", None),
        (layer + r"output\.dense\.weight", r"encoder_layer_\1_output.kernel", "transpose"),
        (layer + r"output\.dense\.bias", r"encoder_layer_\1_output.bias", None),
        (layer + r"output\.LayerNorm\.weight", r"encoder_layer_\1_output_layer_norm.gamma", None),
        (layer + r"output\.LayerNorm\.bias", r"encoder_layer_\1_output_layer_norm.beta", None),
    ]
    if config.add_pooling_layer:
        rules += [
            (pre + r"pooler\.dense\.weight", "pooler.kernel", "transpose"),
            (pre + r"pooler\.dense\.bias", "pooler.bias", None),
        ]
    return rules
