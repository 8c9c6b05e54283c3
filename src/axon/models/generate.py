"""Autoregressive generation with a key/value cache: :func:`generate`.

The prompt runs once through ``gpt2(config, decode=True)`` (the prefill), which fills the
cache with its keys and values; each new token then runs through the same model as one
position, reading the cache instead of recomputing the sequence. The whole loop is one
compiled function (``lax.fori_loop`` over the steps), built once per model configuration,
shapes and sampling options.

>>> import axon, axon.models, jax.numpy as jnp
>>> config = axon.models.GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=2, n_head=2)
>>> model = axon.models.gpt2(config)
>>> state = axon.init(model, {"input_ids": axon.template((1, 4), "int32")})
>>> axon.models.generate(model, state, jnp.array([[1, 2, 3]]), 5).shape
(1, 8)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import axon
from axon.models.gpt2 import GPT2Config, gpt2

__all__ = ["generate"]

Loop = Literal["fori", "python"]


def _config_of(model: Any) -> GPT2Config:
    if isinstance(model, GPT2Config):
        return model
    config = model.node.meta.get("axon.models.gpt2") if isinstance(model, axon.Axon) else None
    if not isinstance(config, dict):
        raise TypeError(
            "generate: expected a model made by axon.models.gpt2(config) (or its GPT2Config), "
            f"got {type(model).__name__}"
        )
    return GPT2Config(**config)


@functools.lru_cache(maxsize=16)
def _apply_fns(config: GPT2Config) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The traced forward passes of the decoding and of the full model."""
    _, decode = axon.build(gpt2(config, decode=True))
    _, full = axon.build(gpt2(config))
    return decode.apply, full.apply


def _pick(logits: jax.Array, key: jax.Array | None, step: Any, temperature: Any, top_k: int | None) -> jax.Array:
    """The next token from the last position's logits ``(B, V)``: argmax, or a sample."""
    logits = logits.astype(jnp.float32)
    if key is None:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = logits / temperature
    if top_k is not None:
        kth = lax.top_k(logits, top_k)[0][:, -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return jax.random.categorical(jax.random.fold_in(key, step), logits, axis=-1).astype(jnp.int32)


def _finish(token: jax.Array, done: jax.Array, eos: int | None) -> tuple[jax.Array, jax.Array]:
    if eos is None:
        return token, done
    token = jnp.where(done, eos, token)
    return token, done | (token == eos)


def _layout(prompt_mask: jax.Array, steps: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """For a left-padded prompt's mask ``(B, P)``: the mask over all ``P + steps`` positions,
    the prompt's position ids (real tokens numbered from 0, pads 0, as Hugging Face does)
    and the number of real tokens per row."""
    b = prompt_mask.shape[0]
    key_mask = jnp.concatenate([prompt_mask, jnp.ones((b, steps), prompt_mask.dtype)], axis=1)
    prompt_positions = jnp.maximum(jnp.cumsum(prompt_mask, axis=1) - 1, 0).astype(jnp.int32)
    return key_mask, prompt_positions, prompt_mask.sum(axis=1).astype(jnp.int32)


def _cached(config: GPT2Config, steps: int, top_k: int | None, eos: int | None, loop: Loop):
    decode, _ = _apply_fns(config)

    def prefill(state, prompt, prompt_mask, key, temperature, cache):
        key_mask, positions, real = _layout(prompt_mask, steps)
        out = decode(state, {"input_ids": prompt, "position": jnp.int32(0), "cache": cache,
                             "attention_mask": key_mask, "position_ids": positions})
        token, done = _finish(_pick(out["logits"][:, -1], key, 0, temperature, top_k),
                              jnp.zeros(prompt.shape[0], bool), eos)
        return token, done, out["cache"], key_mask, real

    def step(state, token, done, offset, key_mask, real, key, temperature, cache, i):
        out = decode(state, {"input_ids": token[:, None], "position": offset, "cache": cache,
                             "attention_mask": key_mask, "position_ids": (real + i - 1)[:, None]})
        token, done = _finish(_pick(out["logits"][:, -1], key, i, temperature, top_k), done, eos)
        return token, done, out["cache"]

    if loop == "fori":
        def run(state, prompt, prompt_mask, key, temperature):
            b, p = prompt.shape
            cache = _empty_cache(config, b, p + steps, state)
            token, done, cache, key_mask, real = prefill(state, prompt, prompt_mask, key, temperature, cache)
            tokens = jnp.zeros((b, steps), jnp.int32).at[:, 0].set(token)

            def body(i, carry):
                tokens, token, done, cache = carry
                token, done, cache = step(state, token, done, p + i - 1, key_mask, real, key, temperature, cache, i)
                return tokens.at[:, i].set(token), token, done, cache

            tokens = lax.fori_loop(1, steps, body, (tokens, token, done, cache))[0]
            return jnp.concatenate([prompt, tokens], axis=1)

        return jax.jit(run)

    jit_prefill = jax.jit(prefill)
    jit_step = jax.jit(step, donate_argnums=(8,))

    def run_python(state, prompt, prompt_mask, key, temperature):
        b, p = prompt.shape
        cache = _empty_cache(config, b, p + steps, state)
        token, done, cache, key_mask, real = jit_prefill(state, prompt, prompt_mask, key, temperature, cache)
        tokens = [token]
        for i in range(1, steps):
            token, done, cache = jit_step(state, token, done, jnp.int32(p + i - 1), key_mask, real, key, temperature,
                                          cache, jnp.int32(i))
            tokens.append(token)
        return jnp.concatenate([prompt, jnp.stack(tokens, axis=1)], axis=1)

    return run_python


def _uncached(config: GPT2Config, steps: int, top_k: int | None, eos: int | None):
    _, full = _apply_fns(config)

    def run(state, prompt, prompt_mask, key, temperature):
        b, p = prompt.shape
        key_mask, prompt_positions, real = _layout(prompt_mask, steps)
        positions = jnp.concatenate([prompt_positions, real[:, None] + jnp.arange(steps, dtype=jnp.int32)], axis=1)
        ids = jnp.concatenate([prompt, jnp.zeros((b, steps), jnp.int32)], axis=1)

        def body(i, carry):
            ids, done = carry
            # causal: the zeros after p + i do not matter
            logits = full(state, {"input_ids": ids, "attention_mask": key_mask, "position_ids": positions})
            last = lax.dynamic_index_in_dim(logits, p + i - 1, axis=1, keepdims=False)
            token, done = _finish(_pick(last, key, i, temperature, top_k), done, eos)
            return lax.dynamic_update_index_in_dim(ids, token, p + i, axis=1), done

        return lax.fori_loop(0, steps, body, (ids, jnp.zeros(b, bool)))[0]

    return jax.jit(run)


@functools.lru_cache(maxsize=32)
def _runner(config: GPT2Config, steps: int, top_k: int | None, eos: int | None, use_cache: bool, loop: Loop):
    return _cached(config, steps, top_k, eos, loop) if use_cache else _uncached(config, steps, top_k, eos)


def _empty_cache(config: GPT2Config, batch: int, length: int, state: Any) -> jax.Array:
    dtype = jnp.result_type(state["wte"]["kernel"])
    return jnp.zeros((config.n_layer, 2, batch, length, config.n_head, config.head_size), dtype)


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"generate: expected {name} to be an int >= {low}, got {value!r}")
    return int(value)


def generate(
    model: axon.Axon | GPT2Config,
    state: Any,
    prompt_ids: Any,
    max_new_tokens: int,
    *,
    temperature: float = 0.0,
    key: jax.Array | None = None,
    top_k: int | None = None,
    eos_token_id: int | None = None,
    attention_mask: Any = None,
    use_cache: bool = True,
    loop: Loop = "fori",
) -> jax.Array:
    """Continue ``prompt_ids`` by ``max_new_tokens`` tokens with a GPT-2 model.

    With ``temperature=0`` (default) each token is the most likely one (greedy decoding, as
    Hugging Face's ``generate(do_sample=False)``); with ``temperature > 0`` tokens are drawn
    from ``softmax(logits / temperature)`` (only among the ``top_k`` most likely when given)
    with the explicit ``key``. With ``eos_token_id``, a sequence that has produced it is
    continued with it (Hugging Face stops once every sequence has, so its output is a prefix
    of this one). Prompts of different lengths are padded on the left and given an
    ``attention_mask`` (0 = padding), as for Hugging Face: pads are attended by no token and
    each row's real tokens are numbered from position 0.

    ``use_cache=True`` (default) runs the prompt once and then one position per token through
    a key/value cache; ``use_cache=False`` runs the whole sequence for every token (a
    reference, and the baseline of ``benchmarks/gpt2_generate.py``). ``loop="fori"``
    (default) compiles the whole loop into one function; ``loop="python"`` runs a compiled
    step per token from Python (slower on CPU: see the benchmark).

    Args:
        model: A model made by :func:`axon.models.gpt2` (either form), or its config.
        state: Its parameters (e.g. from :func:`axon.pretrained.load_weights`).
        prompt_ids: The prompt, ``(batch, P)`` or ``(P,)`` integer ids, ``P >= 1`` (every
            row the same length).
        max_new_tokens: How many tokens to add, ``>= 1``; ``P + max_new_tokens`` must not
            exceed ``n_positions``.
        temperature: ``0`` for greedy decoding, ``> 0`` to sample. Default ``0.0``.
        key: A ``jax.random`` key; required when sampling, rejected otherwise.
        top_k: Sample among the ``top_k`` most likely tokens only (sampling only). Default
            ``None``: all.
        eos_token_id: The id that ends a sequence. Default ``None``: none.
        attention_mask: ``(batch, P)`` (or ``(P,)``) of 0/1 or bools for left-padded
            prompts: zeros, then ones (at least one per row). Default ``None``: all real.
        use_cache: Use the key/value cache. Default ``True``.
        loop: ``"fori"`` or ``"python"`` (cached decoding only). Default ``"fori"``.

    Returns:
        The prompt followed by the new tokens, ``(batch, P + max_new_tokens)`` int32 (or
        ``(P + max_new_tokens,)`` for a 1-d prompt).

    Raises:
        TypeError: ``model`` is not a GPT-2 model, or ``key`` is not a key.
        ValueError: An argument is out of range, a prompt id is outside the vocabulary, the
            sequence would exceed ``n_positions``, or the mask is not a left padding.

    >>> import axon, axon.models, jax, jax.numpy as jnp
    >>> config = axon.models.GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=1, n_head=2)
    >>> model = axon.models.gpt2(config)
    >>> state = axon.init(model, {"input_ids": axon.template((1, 4), "int32")})
    >>> out = axon.models.generate(model, state, jnp.array([7, 8]), 3, temperature=0.8, key=jax.random.key(0))
    >>> out.shape, out[:2].tolist()
    ((5,), [7, 8])
    """
    config = _config_of(model)
    steps = _check_int(max_new_tokens, "max_new_tokens", 1)
    prompt = np.asarray(prompt_ids)
    if prompt.dtype.kind not in "iu":
        raise ValueError(f"generate: expected integer prompt_ids, got dtype {prompt.dtype}")
    squeeze = prompt.ndim == 1
    prompt = prompt[None] if squeeze else prompt
    if prompt.ndim != 2 or prompt.shape[0] < 1 or prompt.shape[1] < 1:
        raise ValueError(f"generate: expected prompt_ids of shape (batch, length) or (length,) with length >= 1, "
                         f"got {tuple(np.shape(prompt_ids))}")
    if prompt.min() < 0 or prompt.max() >= config.vocab_size:
        raise ValueError(f"generate: prompt ids must be in [0, {config.vocab_size}), "
                         f"got values from {prompt.min()} to {prompt.max()}")
    if prompt.shape[1] + steps > config.n_positions:
        raise ValueError(f"generate: a prompt of {prompt.shape[1]} tokens plus max_new_tokens={steps} exceeds "
                         f"the model's n_positions={config.n_positions}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
        raise ValueError(f"generate: expected temperature to be a number >= 0, got {temperature!r}")
    sampling = temperature > 0
    if sampling and key is None:
        raise ValueError("generate: sampling (temperature > 0) needs an explicit key, e.g. key=jax.random.key(0)")
    if not sampling and key is not None:
        raise ValueError("generate: key is only used when sampling; pass temperature > 0 or leave key out")
    if key is not None and not (isinstance(key, jax.Array) and (jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
                                                                or (key.dtype == jnp.uint32 and key.shape == (2,)))):
        raise TypeError(f"generate: expected key to be a jax.random key, got {key!r}")
    if top_k is not None:
        if not sampling:
            raise ValueError("generate: top_k only applies when sampling (temperature > 0)")
        top_k = _check_int(top_k, "top_k", 1)
        if top_k > config.vocab_size:
            raise ValueError(f"generate: top_k={top_k} exceeds the vocabulary size {config.vocab_size}")
    if eos_token_id is not None:
        eos_token_id = _check_int(eos_token_id, "eos_token_id", 0)
        if eos_token_id >= config.vocab_size:
            raise ValueError(f"generate: eos_token_id={eos_token_id} is outside the vocabulary of {config.vocab_size}")
    if attention_mask is None:
        prompt_mask = np.ones(prompt.shape, np.int32)
    else:
        prompt_mask = np.asarray(attention_mask)
        prompt_mask = prompt_mask[None] if squeeze else prompt_mask
        if prompt_mask.shape != prompt.shape:
            raise ValueError(f"generate: expected attention_mask of the prompt's shape {tuple(np.shape(prompt_ids))}, "
                             f"got {tuple(np.shape(attention_mask))}")
        if not np.isin(prompt_mask, (0, 1)).all():
            raise ValueError("generate: expected attention_mask to hold only 0/1 (or False/True)")
        prompt_mask = prompt_mask.astype(np.int32)
        if (np.diff(prompt_mask, axis=1) < 0).any() or not prompt_mask[:, -1].all():
            raise ValueError("generate: expected a left-padded attention_mask (zeros, then ones, at least one per row); "
                             "pad prompts of different lengths on the left")
    if not isinstance(use_cache, bool):
        raise TypeError(f"generate: expected use_cache to be a bool, got {use_cache!r}")
    if loop not in ("fori", "python"):
        raise ValueError(f"generate: expected loop to be 'fori' or 'python', got {loop!r}")
    run = _runner(config, steps, top_k, eos_token_id, use_cache, loop)
    out = run(state, jnp.asarray(prompt, jnp.int32), jnp.asarray(prompt_mask), key,
              jnp.float32(temperature if sampling else 1.0))
    return out[0] if squeeze else out
