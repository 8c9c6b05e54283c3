"""Recurrent layers: ``mask``, ``lstm``, ``gru``, ``conv_lstm``, ``bidirectional``.

Inputs are batch-major sequences ``(batch, time, features)`` (``conv_lstm``:
``(batch, time, channels, *spatial)``, channels first in every step, as in Axon). A
recurrent layer returns a pair of graphs ``(output_sequence, hidden_state)``, with
``hidden_state = (c, h)`` for ``lstm``/``conv_lstm`` and ``(h,)`` for ``gru``, the final
state. The initial state is given positionally, ``axon.lstm(x, (c, h), units)``, or left
out: then it is zero (Axon draws a random one; see below).

Parameters are Axon's nested dicts: LSTM ``input_kernel = {wii, wif, wig, wio}`` each
``(features, units)``, ``hidden_kernel = {whi, whf, whg, who}`` each ``(units, units)``,
``bias = {bi, bf, bg, bo}`` each ``(units,)``; GRU ``{wir, wiz, win}``, ``{whr, whz, whn}``
and ``{br, bz, bin, bhn}``; ConvLSTM plain arrays ``input_kernel (4·units, channels, *k)``,
``hidden_kernel (4·units, units, *k)``, ``bias (4·units,)``.

Naming (Axon's): the main node is ``lstm_<k>`` (or ``name``) and holds the parameters;
the outputs are parameter-free nodes ``lstm_<j>_output_sequence``,
``lstm_<j>_c_hidden_state``, ``lstm_<j>_h_hidden_state`` (GRU ``gru_<j>_hidden_state``), or
``<name>_output_sequence``... when a string ``name`` is given. ``j`` counts output nodes of
the same kind, so it equals the layer's ``k`` whenever every layer's outputs are used in
order; give layers names to make the pairing explicit.

Differences from Axon, on purpose:

* The default initial state is **zero** (PyTorch's and Keras' default). Axon draws a
  random one (``recurrent_initializer=:glorot_uniform``) and redraws it every training
  step. Passing ``recurrent_initializer=`` restores that: the initial state is then drawn
  with that initializer from the layer's ``key`` state (seeded by ``seed=`` or, without it,
  by the build seed and the layer's name), advanced on every training step and kept fixed
  in inference. The key lives on the main node (Axon puts it on extra
  ``recurrent_state`` nodes).
* ``mask`` is ``None`` (no masking) or a graph of shape ``(batch, time)``, 1 = skip the step
  (keep the previous state), such as :func:`mask` makes; Axon's default is
  ``Axon.constant(0)``.
* A hidden state is ``(batch, units)`` (Axon: ``(batch, 1, units)``); a ConvLSTM state keeps
  Axon's ``(batch, 1, units, *spatial)``.

>>> import axon
>>> x = axon.input("seq", shape=(None, 10, 3))
>>> seq, (c, h) = axon.lstm(x, 8)
>>> axon.get_output_shape(axon.container((seq, (c, h))), axon.template((2, 10, 3)))
((2, 10, 8), ((2, 8), (2, 8)))
>>> list(axon.properties(h))
['seq', 'lstm_0', 'lstm_0_h_hidden_state']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, overload

import jax
import jax.numpy as jnp

from axon import initializers as _initializers
from axon import layers
from axon.activations import get as _get_activation
from axon.api.bidirectional import bidirectional, leaf_op, reverse_op, unreverse_op  # noqa: F401 (moved there)
from axon.api.core import check_graph, check_name, layer, param
from axon.api.dropout import key_param
from axon.graph import Axon
from axon.layers._utils import normalize_padding, normalize_tuple
from axon.layers.recurrent import GATED_CELLS
from axon.registry import register, register_all
from axon.typing_aliases import Activation, Initializer, LayerName, Padding, RunMode, Unroll
from axon.values import StatefulOutput

__all__ = ["bidirectional", "conv_lstm", "gru", "lstm", "mask"]

_UNROLLS = ("dynamic", "static")
_STATE_NAMES = {**{kind: cell.carry for kind, cell in GATED_CELLS.items()}, "conv_lstm": ("c", "h")}
_GATED_LAYERS = {"lstm": layers.lstm, "gru": layers.gru}


# --------------------------------------------------------------------------------------
# mask


def mask(x: Axon, eos_token: int | float, *, name: LayerName = None, meta: dict | None = None) -> Axon:
    """A ``(batch, time)`` int32 mask that is 1 where ``x == eos_token`` (steps a recurrent
    layer skips) and 0 elsewhere (see :func:`axon.layers.mask_from_tokens`).

    Args:
        x: The graph of token ids, ``(batch, time)``.
        eos_token: The id that marks steps to skip (e.g. padding).
        name: The layer name (``None``: ``"mask_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The mask graph, int32 of ``x``'s shape.

    Raises:
        TypeError: ``eos_token`` is not a number.

    >>> import axon, jax.numpy as jnp
    >>> ids = axon.input("ids", shape=(None, 4))
    >>> axon.predict(axon.mask(ids, 0), {}, jnp.array([[5, 3, 0, 0]])).tolist()
    [[0, 0, 1, 1]]
    """
    check_graph(x, "mask")
    if isinstance(eos_token, bool) or not isinstance(eos_token, (int, float)):
        raise TypeError(f"mask: expected eos_token to be a number, got {eos_token!r}")
    return layer(layers.mask_from_tokens, [x], eos_token=eos_token, name=check_name(name, "mask"), op_name="mask", meta=meta)


# --------------------------------------------------------------------------------------
# ops (module level, so that models using them can be saved)


def _draw_state(kind: str, key: jax.Array, shape: tuple[int, ...], dtype: Any, initializer: Any, mode: str):
    """Initial states drawn with ``initializer`` from the layer's ``key``; returns the
    states and the key to store (advanced only in train mode)."""
    init = _initializers.get(initializer)
    new_key, sub = jax.random.split(key)
    keys = jax.random.split(sub, len(_STATE_NAMES[kind]))
    states = tuple(jnp.asarray(init(k, shape, dtype), dtype) for k in keys)
    return states, (new_key if mode == "train" else None)


def _zero_state_shape(kind: str, x: jax.Array, units: int, conv: Mapping[str, Any] | None) -> tuple[int, ...]:
    if kind != "conv_lstm":
        return (x.shape[0], units)
    n = x.ndim - 3
    ks = normalize_tuple(conv["kernel_size"], n, "kernel_size")
    step = jax.ShapeDtypeStruct((x.shape[0], x.shape[2], *x.shape[3:]), jnp.float32)
    kernel = jax.ShapeDtypeStruct((4 * units, x.shape[2], *ks), jnp.float32)
    pad = conv["padding"]
    out = jax.eval_shape(
        lambda a, k: jax.lax.conv_general_dilated(
            a, k, normalize_tuple(conv["strides"], n, "strides"), pad.upper() if isinstance(pad, str) else pad
        ),
        step, kernel,
    )
    return (x.shape[0], 1, units, *out.shape[2:])


@register("op", "axon.recurrent")
def recurrent_op(
    *arrays: Any,
    kind: str,
    layout: tuple[str, ...],
    units: int,
    unroll: Unroll = "dynamic",
    activation: Any = "tanh",
    gate: Any = "sigmoid",
    recurrent_initializer: Initializer | None = None,
    conv: Mapping[str, Any] | None = None,
    mode: RunMode = "inference",
) -> Any:
    """The op of :func:`lstm`, :func:`gru` and :func:`conv_lstm` graph layers.

    ``arrays`` are named by ``layout`` (from ``x``, ``c``, ``h``, ``mask``,
    ``input_kernel``, ``hidden_kernel``, ``bias``, ``key``); a missing ``c``/``h`` is zero,
    or drawn with ``recurrent_initializer`` from ``key``. Calls :func:`axon.layers.lstm`,
    :func:`axon.layers.gru` or :func:`axon.layers.conv_lstm` and returns
    ``(output_sequence, hidden_state)`` (with the advanced key as state in train mode when
    the initial state is drawn).

    >>> import jax.numpy as jnp
    >>> ik = {k: jnp.zeros((3, 2)) for k in ("wir", "wiz", "win")}
    >>> hk = {k: jnp.zeros((2, 2)) for k in ("whr", "whz", "whn")}
    >>> seq, (h,) = recurrent_op(jnp.ones((1, 4, 3)), ik, hk, kind="gru", units=2,
    ...                          layout=("x", "input_kernel", "hidden_kernel"))
    >>> seq.shape, h.tolist()
    ((1, 4, 2), [[0.0, 0.0]])
    """
    a = dict(zip(layout, arrays, strict=True))
    x = a["x"]
    names = _STATE_NAMES[kind]
    new_key = None
    if names[0] in a:
        state = tuple(a[n] for n in names)
    else:
        if x.ndim < 3:
            raise ValueError(f"{kind}: expected an input of shape (batch, time, ...), got shape {tuple(x.shape)}")
        shape = _zero_state_shape(kind, x, units, conv)
        dtype = jax.tree_util.tree_leaves(a["input_kernel"])[0].dtype
        if recurrent_initializer is None:
            state = tuple(jnp.zeros(shape, dtype) for _ in names)
        else:
            state, new_key = _draw_state(kind, a["key"], shape, dtype, recurrent_initializer, mode)
    mask_value = a.get("mask")
    if kind == "conv_lstm":
        out = layers.conv_lstm(
            x, state, mask_value, a["input_kernel"], a["hidden_kernel"], a.get("bias"), unroll=unroll,
            strides=conv["strides"], padding=conv["padding"],
        )
    else:
        out = _GATED_LAYERS[kind](
            x, state, mask_value, a["input_kernel"], a["hidden_kernel"], a.get("bias"), unroll=unroll,
            activation=activation, gate=gate,
        )
    out = (out[0], tuple(out[1]))
    if new_key is not None:
        return StatefulOutput(out, {"key": new_key})
    return out


@register("op", "axon.recurrent_output")
def recurrent_output(value: Any, *, index: int | None = None) -> jax.Array:
    """The output nodes of a recurrent layer: the output sequence (``index=None``) or entry
    ``index`` of the final hidden state of ``value = (output_sequence, hidden_state)``.

    >>> recurrent_output(("seq", ("c", "h")), index=1)
    'h'
    """
    return value[0] if index is None else value[1][index]


# --------------------------------------------------------------------------------------
# constructors


def _check_units(units: Any, where: str) -> int:
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise ValueError(f"{where}: expected units to be a positive int, got {units!r}")
    return units


def _split_state_and_units(where: str, hidden_state: Any, units: Any, n: int) -> tuple[tuple[Axon, ...] | None, int]:
    if units is None:
        if isinstance(hidden_state, (tuple, list)):
            raise TypeError(f"{where}: missing units; call {where}(x, hidden_state, units) or {where}(x, units)")
        return None, _check_units(hidden_state, where)
    if hidden_state is None:
        return None, _check_units(units, where)
    what = "(c, h)" if n == 2 else "(h,)"
    if not isinstance(hidden_state, (tuple, list)) or len(hidden_state) != n:
        raise TypeError(f"{where}: expected the initial hidden state to be a tuple {what} of graphs, got {hidden_state!r}")
    for g in hidden_state:
        check_graph(g, where, "each initial hidden state")
    return tuple(hidden_state), _check_units(units, where)


def _check_activation(value: Any, where: str, what: str) -> Any:
    if callable(value):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{where}: expected {what} to be an activation name or a function, got {value!r}")
    try:
        _get_activation(value)
    except ValueError as e:
        raise ValueError(f"{where}: {e} (option {what})") from None
    return value


def _check_common(
    where: str, x: Any, state: Any, unroll: Any, use_bias: Any, mask_graph: Any, recurrent_initializer: Any, seed: Any
) -> None:
    check_graph(x, where)
    if state is not None and (recurrent_initializer is not None or seed is not None):
        raise ValueError(
            f"{where}: recurrent_initializer and seed choose how the initial state is drawn, "
            "so they cannot be combined with a given initial state"
        )
    if seed is not None and recurrent_initializer is None:
        raise ValueError(f"{where}: seed only applies with a recurrent_initializer (the default initial state is zero)")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"{where}: expected seed to be an int, got {seed!r}")
    if unroll not in _UNROLLS:
        raise ValueError(f"{where}: expected unroll to be 'dynamic' or 'static', got {unroll!r}")
    if not isinstance(use_bias, bool):
        raise TypeError(f"{where}: expected use_bias to be a bool, got {use_bias!r}")
    if mask_graph is not None:
        check_graph(mask_graph, where, "mask")
    if recurrent_initializer is not None:
        try:
            _initializers.get(recurrent_initializer)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: invalid recurrent_initializer: {e}") from None


def _outputs(kind: str, main: Axon, name: Any) -> tuple[Axon, tuple[Axon, ...]]:
    def node(suffix: str, op_name: str, index: int | None) -> Axon:
        out_name = f"{name}_{suffix}" if isinstance(name, str) else f"{kind}_{{n}}_{suffix}"
        return layer(recurrent_output, [main], index=index, name=out_name, op_name=op_name)

    seq = node("output_sequence", f"{kind}_output_sequence", None)
    states = _STATE_NAMES[kind]
    if len(states) == 1:
        return seq, (node("hidden_state", f"{kind}_hidden_state", 0),)
    return seq, tuple(node(f"{s}_hidden_state", f"{kind}_{s}_hidden_state", i) for i, s in enumerate(states))


def _recurrent(
    kind: str,
    x: Axon,
    hidden_state: tuple[Axon, ...] | None,
    units: int,
    params: list[Any],
    *,
    mask_graph: Axon | None,
    recurrent_initializer: Any,
    seed: int | None,
    name: Any,
    meta: dict | None,
    **opts: Any,
) -> tuple[Axon, tuple[Axon, ...]]:
    check_name(name, kind)
    inputs: list[Any] = [x]
    names = ["x"]
    if hidden_state is not None:
        inputs.extend(hidden_state)
        names.extend(_STATE_NAMES[kind])
    if mask_graph is not None:
        inputs.append(mask_graph)
        names.append("mask")
    for p in params:
        inputs.append(p)
        names.append(p.name)
    if hidden_state is None and recurrent_initializer is not None:
        inputs.append(key_param(seed))
        names.append("key")
    main = layer(
        recurrent_op, inputs, kind=kind, layout=tuple(names), units=units,
        recurrent_initializer=recurrent_initializer if hidden_state is None else None,
        name=name, op_name=kind, meta=meta, **opts,
    )
    return _outputs(kind, main, name)


def _gated(
    kind: str, x: Axon, hidden_state: Any, units: Any, *, activation: Any, gate: Any, unroll: str, use_bias: bool,
    kernel_initializer: Any, bias_initializer: Any, recurrent_initializer: Any, seed: int | None,
    mask_graph: Axon | None, name: Any, meta: dict | None,
) -> tuple[Axon, tuple[Axon, ...]]:
    state, units = _split_state_and_units(kind, hidden_state, units, len(_STATE_NAMES[kind]))
    _check_common(kind, x, state, unroll, use_bias, mask_graph, recurrent_initializer, seed)
    activation = _check_activation(activation, kind, "activation")
    gate = _check_activation(gate, kind, "gate")
    ikeys, hkeys, bkeys = GATED_CELLS[kind].keys

    def input_shape(s, *_):
        if len(s) != 3:
            raise ValueError(f"{kind}: expected an input of shape (batch, time, features), got shape {s}")
        return (s[-1], units)

    params = [
        param("input_kernel", dict.fromkeys(ikeys, input_shape), initializer=kernel_initializer),
        param("hidden_kernel", dict.fromkeys(hkeys, (units, units)), initializer=kernel_initializer),
    ]
    if use_bias:
        params.append(param("bias", dict.fromkeys(bkeys, (units,)), initializer=bias_initializer))
    return _recurrent(
        kind, x, state, units, params, mask_graph=mask_graph, recurrent_initializer=recurrent_initializer, seed=seed,
        name=name, meta=meta, unroll=unroll, activation=activation, gate=gate,
    )


@overload
def lstm(x: Axon, units: int, **opts: Any) -> tuple[Axon, tuple[Axon, Axon]]: ...
@overload
def lstm(x: Axon, hidden_state: tuple[Axon, Axon], units: int, **opts: Any) -> tuple[Axon, tuple[Axon, Axon]]: ...


def lstm(
    x: Axon,
    hidden_state: tuple[Axon, Axon] | int | None = None,
    units: int | None = None,
    *,
    activation: Activation = "tanh",
    gate: Activation = "sigmoid",
    unroll: Unroll = "dynamic",
    use_bias: bool = True,
    kernel_initializer: Initializer = "glorot_uniform",
    bias_initializer: Initializer = "zeros",
    recurrent_initializer: Initializer | None = None,
    seed: int | None = None,
    mask: Axon | None = None,
    name: LayerName = None,
    meta: dict | None = None,
) -> tuple[Axon, tuple[Axon, Axon]]:
    """A long short-term memory layer: ``lstm(x, units)`` or ``lstm(x, (c, h), units)``.

    ``x`` is ``(batch, time, features)``; returns ``(output_sequence, (c, h))``: graphs of
    shapes ``(batch, time, units)``, ``(batch, units)``, ``(batch, units)``. Gates
    ``i, f, o = gate(...)``, ``g = activation(...)``, ``c' = f·c + i·g``,
    ``h' = o·activation(c')`` (see :func:`axon.layers.lstm_cell`). ``unroll="dynamic"``
    loops with ``lax.scan`` (compiled once for any length; its backward pass is hand-written,
    so reverse-mode only: for ``jax.jvp``/``jax.jacfwd`` through the layer use ``"static"``,
    see :func:`axon.layers.lstm`), ``"static"`` inlines every step.
    ``mask``: a ``(batch, time)`` graph, 1 = skip the step. Without an initial state the
    state starts at zero, or is drawn with ``recurrent_initializer`` (see the module notes).
    Parameters ``input_kernel {wii, wif, wig, wio}`` ``(features, units)``,
    ``hidden_kernel {whi, whf, whg, who}`` ``(units, units)``, ``bias {bi, bf, bg, bo}``
    ``(units,)``.

    Args:
        x: The input sequence graph (see above).
        hidden_state: The initial state ``(c, h)`` of graphs, or ``units`` when it is left
            out (``lstm(x, units)``).
        units: The number of hidden units (the state's size).
        activation: The candidate's and output's activation (name or function). Default
            ``"tanh"``.
        gate: The gates' activation. Default ``"sigmoid"``.
        unroll: ``"dynamic"`` (default; ``lax.scan``, compiled once for any length) or
            ``"static"`` (every step inlined).
        use_bias: Whether to add a trainable bias. Default ``True``.
        kernel_initializer: The kernel's initializer (a name from ``axon.initializers``
            or ``init(key, shape, dtype)``). Default ``"glorot_uniform"``.
        bias_initializer: The bias's initializer. Default ``"zeros"``.
        recurrent_initializer: Draw the initial state with this initializer instead of
            zeros (only without ``hidden_state``; see the module notes). Default ``None``.
        seed: Seed of the key the initial state is drawn from (with
            ``recurrent_initializer``). Default ``None``: the build seed and layer name.
        mask: A ``(batch, time)`` graph, 1 = skip the step (keep the previous state), such
            as :func:`mask` makes. Default ``None``: no masking.
        name: The layer name (``None``: ``"lstm_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        ``(output_sequence, hidden_state)``: graphs of the outputs at every step and of the
        final state ``(c, h)``.

    Raises:
        TypeError: An input is not a graph, ``units`` is missing, or an option has the
            wrong type.
        ValueError: ``units``, ``unroll`` or an activation name is invalid, or
            ``recurrent_initializer``/``seed`` are combined with a given state.

    >>> import axon, jax.numpy as jnp
    >>> seq, (c, h) = axon.lstm(axon.input("x", shape=(None, 5, 3)), 4, kernel_initializer="ones")
    >>> model = axon.container({"seq": seq, "h": h})
    >>> out = axon.predict(model, axon.init(model, axon.template((2, 5, 3))), jnp.ones((2, 5, 3)))
    >>> out["seq"].shape, out["h"].shape, bool((out["seq"][:, -1] == out["h"]).all())
    ((2, 5, 4), (2, 4), True)
    """
    return _gated(
        "lstm", x, hidden_state, units, activation=activation, gate=gate, unroll=unroll, use_bias=use_bias,
        kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
        recurrent_initializer=recurrent_initializer, seed=seed, mask_graph=mask, name=name, meta=meta,
    )


@overload
def gru(x: Axon, units: int, **opts: Any) -> tuple[Axon, tuple[Axon]]: ...
@overload
def gru(x: Axon, hidden_state: tuple[Axon], units: int, **opts: Any) -> tuple[Axon, tuple[Axon]]: ...


def gru(
    x: Axon,
    hidden_state: tuple[Axon] | int | None = None,
    units: int | None = None,
    *,
    activation: Activation = "tanh",
    gate: Activation = "sigmoid",
    unroll: Unroll = "dynamic",
    use_bias: bool = True,
    kernel_initializer: Initializer = "glorot_uniform",
    bias_initializer: Initializer = "zeros",
    recurrent_initializer: Initializer | None = None,
    seed: int | None = None,
    mask: Axon | None = None,
    name: LayerName = None,
    meta: dict | None = None,
) -> tuple[Axon, tuple[Axon]]:
    """A gated recurrent unit layer: ``gru(x, units)`` or ``gru(x, (h,), units)``.

    ``x`` is ``(batch, time, features)``; returns ``(output_sequence, (h,))`` of shapes
    ``(batch, time, units)`` and ``(batch, units)``. ``r, z = gate(...)``,
    ``n = activation(x·Win + bin + r·(h·Whn + bhn))``, ``h' = (1 − z)·n + z·h`` (see
    :func:`axon.layers.gru_cell`; PyTorch's GRU). Options as in :func:`lstm`. Parameters
    ``input_kernel {wir, wiz, win}`` ``(features, units)``, ``hidden_kernel {whr, whz, whn}``
    ``(units, units)``, ``bias {br, bz, bin, bhn}`` ``(units,)``.

    Args:
        x: The input sequence graph (see above).
        hidden_state: The initial state ``(h,)`` of graphs, or ``units`` when it is left
            out (``gru(x, units)``).
        units: The number of hidden units (the state's size).
        activation: The candidate's and output's activation (name or function). Default
            ``"tanh"``.
        gate: The gates' activation. Default ``"sigmoid"``.
        unroll: ``"dynamic"`` (default; ``lax.scan``, compiled once for any length) or
            ``"static"`` (every step inlined).
        use_bias: Whether to add a trainable bias. Default ``True``.
        kernel_initializer: The kernel's initializer (a name from ``axon.initializers``
            or ``init(key, shape, dtype)``). Default ``"glorot_uniform"``.
        bias_initializer: The bias's initializer. Default ``"zeros"``.
        recurrent_initializer: Draw the initial state with this initializer instead of
            zeros (only without ``hidden_state``; see the module notes). Default ``None``.
        seed: Seed of the key the initial state is drawn from (with
            ``recurrent_initializer``). Default ``None``: the build seed and layer name.
        mask: A ``(batch, time)`` graph, 1 = skip the step (keep the previous state), such
            as :func:`mask` makes. Default ``None``: no masking.
        name: The layer name (``None``: ``"gru_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        ``(output_sequence, hidden_state)``: graphs of the outputs at every step and of the
        final state ``(h,)``.

    Raises:
        TypeError: An input is not a graph, ``units`` is missing, or an option has the
            wrong type.
        ValueError: ``units``, ``unroll`` or an activation name is invalid, or
            ``recurrent_initializer``/``seed`` are combined with a given state.

    >>> import axon
    >>> seq, (h,) = axon.gru(axon.input("x", shape=(None, 5, 3)), 4, name="enc")
    >>> [n.op_name for n in (seq.node, h.node)], h.output_name
    (['gru_output_sequence', 'gru_hidden_state'], 'enc_hidden_state')
    """
    return _gated(
        "gru", x, hidden_state, units, activation=activation, gate=gate, unroll=unroll, use_bias=use_bias,
        kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
        recurrent_initializer=recurrent_initializer, seed=seed, mask_graph=mask, name=name, meta=meta,
    )


def conv_lstm(
    x: Axon,
    hidden_state: tuple[Axon, Axon] | int | None = None,
    units: int | None = None,
    *,
    kernel_size: int | tuple[int, ...] = 1,
    strides: int | tuple[int, ...] = 1,
    padding: Padding = "same",
    unroll: Unroll = "dynamic",
    use_bias: bool = True,
    kernel_initializer: Initializer = "glorot_uniform",
    bias_initializer: Initializer = "zeros",
    recurrent_initializer: Initializer | None = None,
    seed: int | None = None,
    mask: Axon | None = None,
    name: LayerName = None,
    meta: dict | None = None,
) -> tuple[Axon, tuple[Axon, Axon]]:
    """A convolutional LSTM layer: ``conv_lstm(x, units)`` or ``conv_lstm(x, (c, h), units)``.

    ``x`` is ``(batch, time, channels, *spatial)`` (channels first per step, as in Axon);
    returns ``(output_sequence, (c, h))`` with the sequence ``(batch, time, units, *out)``
    and the states ``(batch, 1, units, *out)`` (Axon's layout; a given initial state may
    also be ``(batch, units, *out)``). ``kernel_size``, ``strides`` and ``padding`` apply to
    the input convolution, the hidden-to-hidden one keeps the state's size (see
    :func:`axon.layers.conv_lstm_cell`). Parameters ``input_kernel``
    ``(4·units, channels, *kernel_size)``, ``hidden_kernel`` ``(4·units, units, *kernel_size)``,
    ``bias`` ``(4·units,)``. Other options as in :func:`lstm`.

    Args:
        x: The input sequence graph (see above).
        hidden_state: The initial state ``(c, h)`` of graphs, or ``units`` when it is left
            out (``conv_lstm(x, units)``).
        units: The number of hidden units (the state's size).
        kernel_size: The convolution window per spatial dimension. Default ``1``.
        strides: The input convolution's step per spatial dimension. Default ``1``.
        padding: ``"valid"`` (none), ``"same"`` (output size ``ceil(input / stride)``) or one
            ``(low, high)`` pair per spatial dimension. Default ``"same"``.
        unroll: ``"dynamic"`` (default; ``lax.scan``, compiled once for any length) or
            ``"static"`` (every step inlined).
        use_bias: Whether to add a trainable bias. Default ``True``.
        kernel_initializer: The kernel's initializer (a name from ``axon.initializers``
            or ``init(key, shape, dtype)``). Default ``"glorot_uniform"``.
        bias_initializer: The bias's initializer. Default ``"zeros"``.
        recurrent_initializer: Draw the initial state with this initializer instead of
            zeros (only without ``hidden_state``; see the module notes). Default ``None``.
        seed: Seed of the key the initial state is drawn from (with
            ``recurrent_initializer``). Default ``None``: the build seed and layer name.
        mask: A ``(batch, time)`` graph, 1 = skip the step (keep the previous state), such
            as :func:`mask` makes. Default ``None``: no masking.
        name: The layer name (``None``: ``"conv_lstm_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        ``(output_sequence, hidden_state)``: graphs of the outputs at every step and of the
        final state ``(c, h)``.

    Raises:
        TypeError: An input is not a graph, ``units`` is missing, or an option has the
            wrong type.
        ValueError: ``units``, ``unroll`` or an activation name is invalid, or
            ``recurrent_initializer``/``seed`` are combined with a given state.

    >>> import axon
    >>> seq, (c, h) = axon.conv_lstm(axon.input("x", shape=(None, 4, 2, 6, 6)), 3, kernel_size=3)
    >>> axon.get_output_shape(axon.container((seq, h)), axon.template((1, 4, 2, 6, 6)))
    ((1, 4, 3, 6, 6), (1, 1, 3, 6, 6))
    """
    kind = "conv_lstm"
    state, units = _split_state_and_units(kind, hidden_state, units, 2)
    _check_common(kind, x, state, unroll, use_bias, mask, recurrent_initializer, seed)
    for what, value in (("kernel_size", kernel_size), ("strides", strides)):
        vals = (value,) if isinstance(value, int) else tuple(value) if isinstance(value, (tuple, list)) else None
        if not vals or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in vals):
            raise ValueError(f"conv_lstm: expected {what} to be a positive int or a tuple of them, got {value!r}")
    if isinstance(padding, str):
        if padding.lower() not in ("valid", "same"):
            raise ValueError(f"conv_lstm: expected padding to be 'same', 'valid' or a list of (lo, hi) pairs, got {padding!r}")
    elif not isinstance(padding, (tuple, list)) or not all(
        isinstance(p, (tuple, list)) and len(p) == 2 and all(isinstance(v, int) for v in p) for p in padding
    ):
        raise ValueError(f"conv_lstm: expected padding to be 'same', 'valid' or a list of (lo, hi) pairs, got {padding!r}")
    padding = normalize_padding(padding, 0 if isinstance(padding, str) else len(padding))
    kernel_size = kernel_size if isinstance(kernel_size, int) else tuple(kernel_size)
    strides = strides if isinstance(strides, int) else tuple(strides)

    def spatial(s) -> tuple[int, ...]:
        if len(s) < 4:
            raise ValueError(f"conv_lstm: expected an input of shape (batch, time, channels, *spatial), got shape {s}")
        return normalize_tuple(kernel_size, len(s) - 3, "kernel_size")

    params = [
        param("input_kernel", lambda s, *_: (4 * units, s[2], *spatial(s)), initializer=kernel_initializer),
        param("hidden_kernel", lambda s, *_: (4 * units, units, *spatial(s)), initializer=kernel_initializer),
    ]
    if use_bias:
        params.append(param("bias", (4 * units,), initializer=bias_initializer))
    conv = {"kernel_size": kernel_size, "strides": strides, "padding": padding}
    return _recurrent(
        kind, x, state, units, params, mask_graph=mask, recurrent_initializer=recurrent_initializer, seed=seed,
        name=name, meta=meta, unroll=unroll, conv=conv,
    )


# functional layers (axon.layers) as ops with permanent names "axon.<name>" (see axon.registry)
register_all("op", {
    "axon.conv_lstm": layers.conv_lstm,
    "axon.conv_lstm_cell": layers.conv_lstm_cell,
    "axon.dynamic_unroll": layers.dynamic_unroll,
    "axon.gru": layers.gru,
    "axon.gru_cell": layers.gru_cell,
    "axon.lstm": layers.lstm,
    "axon.lstm_cell": layers.lstm_cell,
    "axon.mask_from_tokens": layers.mask_from_tokens,
    "axon.static_unroll": layers.static_unroll,
})
