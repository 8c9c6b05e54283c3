"""Functional recurrent layers (pure JAX): cells, unrolls and whole-sequence layers.

Axon's layouts are kept: inputs are batch-major sequences ``(batch, time, features)``,
LSTM/GRU weights are dicts with one entry per gate (``input_kernel = {"wii", "wif", "wig",
"wio"}`` each ``(features, units)``, ``hidden_kernel = {"whi", ...}`` each ``(units, units)``,
``bias = {"bi", ...}`` each ``(units,)``), and a layer returns ``(output_sequence,
final_carry)`` with carry ``(c, h)`` for LSTMs and ``(h,)`` for GRUs.

A *mask* marks time steps to skip: where it is 1 the previous state is carried over unchanged
(and emitted as that step's output). It is ``0`` (or ``None``) for no masking, or a
``(batch, time)`` array of 0/1 such as :func:`mask_from_tokens` returns.

>>> import jax.numpy as jnp
>>> ik = {k: jnp.zeros((3, 4)) for k in ("wii", "wif", "wig", "wio")}
>>> hk = {k: jnp.zeros((4, 4)) for k in ("whi", "whf", "whg", "who")}
>>> state = (jnp.zeros((2, 4)), jnp.zeros((2, 4)))
>>> out, (c, h) = lstm(jnp.ones((2, 5, 3)), state, 0, ik, hk)
>>> out.shape, c.shape, h.shape
((2, 5, 4), (2, 4), (2, 4))
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from axon.activations import get as get_activation
from axon.layers._utils import normalize_padding, normalize_tuple
from axon.typing_aliases import Activation, Padding, Unroll

__all__ = [
    "conv_lstm",
    "conv_lstm_cell",
    "dynamic_unroll",
    "gru",
    "gru_cell",
    "lstm",
    "lstm_cell",
    "mask_from_tokens",
    "static_unroll",
]

Carry = tuple[jax.Array, ...]
CellFn = Callable[..., tuple[Any, Any]]


def _resolve_activation(fn: Activation, where: str, what: str) -> Callable[[jax.Array], jax.Array]:
    """A callable as is, or an :mod:`axon.activations` function by name."""
    if callable(fn):
        return fn
    if not isinstance(fn, str):
        raise ValueError(
            f"{where}: expected {what} to be an activation name or a callable, got {fn!r}"
        )
    try:
        return get_activation(fn)
    except ValueError as e:
        raise ValueError(f"{where}: {e} (option {what})") from None


def _check_unroll(where: str, unroll: str) -> None:
    if unroll not in ("static", "dynamic"):
        raise ValueError(f"{where}: expected unroll to be 'static' or 'dynamic', got {unroll!r}")


def _is_no_mask(mask: Any) -> bool:
    return mask is None or (isinstance(mask, (bool, int, float)) and not mask)


def _keep_masked(mask: Any, old: jax.Array, new: jax.Array) -> jax.Array:
    """``old`` where the per-example ``mask`` (scalar or ``(batch, 1)``) is nonzero, else ``new``."""
    if _is_no_mask(mask):
        return new
    m = jnp.asarray(mask)
    if m.ndim > 0:
        if m.size != new.shape[0]:
            raise ValueError(
                f"expected a step mask of shape ({new.shape[0]}, 1) (one value per example), got shape {m.shape}"
            )
        m = jnp.reshape(m, (new.shape[0],) + (1,) * (new.ndim - 1))
    return jnp.where(m != 0, old, new)


def _as_carry(where: str, carry: Any, n: int, what: str) -> Carry:
    if not isinstance(carry, (tuple, list)) or len(carry) != n:
        got = (
            f"a {type(carry).__name__} of length {len(carry)}"
            if isinstance(carry, (tuple, list))
            else repr(type(carry).__name__)
        )
        raise ValueError(
            f"{where}: expected the carry (hidden state) to be a tuple {what}, got {got}"
        )
    return tuple(jnp.asarray(c) for c in carry)


def _check_keys(where: str, name: str, params: Any, keys: Sequence[str]) -> None:
    if not isinstance(params, Mapping):
        raise ValueError(
            f"{where}: expected {name} to be a dict with keys {list(keys)}, got {type(params).__name__}"
        )
    missing = [k for k in keys if k not in params]
    if missing:
        raise ValueError(
            f"{where}: {name} is missing keys {missing}; expected keys {list(keys)}, got {sorted(params)}"
        )


def _check_gated(
    where: str,
    x: jax.Array,
    hidden: jax.Array,
    input_kernel: Mapping[str, jax.Array],
    hidden_kernel: Mapping[str, jax.Array],
    bias: Mapping[str, jax.Array] | None,
    keys: tuple[Sequence[str], Sequence[str], Sequence[str]],
) -> None:
    """Check the per-gate dicts and that their shapes agree with the input and hidden state."""
    ikeys, hkeys, bkeys = keys
    _check_keys(where, "input_kernel", input_kernel, ikeys)
    _check_keys(where, "hidden_kernel", hidden_kernel, hkeys)
    if bias is not None:
        _check_keys(where, "bias", bias, bkeys)
    units = hidden.shape[-1]
    features = x.shape[-1]
    for k in ikeys:
        if tuple(input_kernel[k].shape) != (features, units):
            raise ValueError(
                f"{where}: expected input_kernel[{k!r}] to have shape ({features}, {units}) "
                f"(features, units), got {tuple(input_kernel[k].shape)}"
            )
    for k in hkeys:
        if tuple(hidden_kernel[k].shape) != (units, units):
            raise ValueError(
                f"{where}: expected hidden_kernel[{k!r}] to have shape ({units}, {units}) "
                f"(units, units), got {tuple(hidden_kernel[k].shape)}"
            )
    if bias is not None:
        for k in bkeys:
            if tuple(jnp.shape(bias[k])) not in ((units,), ()):
                raise ValueError(
                    f"{where}: expected bias[{k!r}] to have shape ({units},), got {tuple(jnp.shape(bias[k]))}"
                )


def _gate_kernels(params: Mapping[str, jax.Array], keys: Sequence[str]) -> jax.Array:
    return jnp.concatenate([params[k] for k in keys], axis=-1)


def _gate_bias(bias: Mapping[str, jax.Array], keys: Sequence[str], units: int) -> jax.Array:
    return jnp.concatenate([jnp.broadcast_to(bias[k], (units,)) for k in keys])


# --------------------------------------------------------------------------------------------
# Cells


@dataclass(frozen=True)
class GatedCell:
    """The declarative description of a gated recurrent cell (one row of :data:`GATED_CELLS`).

    A step projects the input and the hidden state once per gate (``x·W_ik`` and
    ``h·W_hk`` for the gates ``k`` in order), adds the per-gate biases on the input side
    (``input_bias``) or the hidden side (``hidden_bias``, ``None`` = no bias there), and
    hands the per-gate projections to ``step(xs, hs, carry, gate_fn, activation_fn)``,
    which returns the new carry; the output is the carry's last entry (``h``).
    """

    name: str
    carry: tuple[str, ...]
    input_keys: tuple[str, ...]
    hidden_keys: tuple[str, ...]
    input_bias: tuple[str, ...]
    hidden_bias: tuple[str | None, ...]
    step: Callable[..., tuple[jax.Array, ...]]
    sums_projections: bool = False
    """The step uses each gate's two projections only as their sum ``x·W_ik + h·W_hk``
    (then ``step`` also accepts ``hs=None`` with the sums as ``xs``)."""

    @property
    def bias_keys(self) -> tuple[str, ...]:
        return self.input_bias + tuple(k for k in self.hidden_bias if k is not None)

    @property
    def keys(self) -> tuple[Sequence[str], Sequence[str], Sequence[str]]:
        return self.input_keys, self.hidden_keys, self.bias_keys

    @property
    def carry_text(self) -> str:
        return f"({', '.join(self.carry)}{',' if len(self.carry) == 1 else ''})"


def _lstm_step(xs, hs, carry, gate_fn, activation_fn):
    """``i, f, o = gate(x·Wi* + h·Wh* + b*)``, ``g = act(...)``, ``c' = f·c + i·g``, ``h' = o·act(c')``."""
    cell, _ = carry
    zi, zf, zg, zo = xs if hs is None else (xk + hk for xk, hk in zip(xs, hs, strict=True))
    i, f, g, o = gate_fn(zi), gate_fn(zf), activation_fn(zg), gate_fn(zo)
    new_c = f * cell + i * g
    return new_c, o * activation_fn(new_c)


def _gru_step(xs, hs, carry, gate_fn, activation_fn):
    """``r, z = gate(x·W* + b* + h·Wh*)``, ``n = act(x·Win + bin + r·(h·Whn + bhn))``, ``h' = (1 − z)·n + z·h``."""
    (hidden,) = carry
    (xr, xz, xn), (hr, hz, hn) = xs, hs
    r = gate_fn(xr + hr)
    z = gate_fn(xz + hz)
    n = activation_fn(xn + r * hn)
    return ((1.0 - z) * n + z * hidden,)


GATED_CELLS: dict[str, GatedCell] = {
    "lstm": GatedCell(
        name="lstm",
        carry=("c", "h"),
        input_keys=("wii", "wif", "wig", "wio"),
        hidden_keys=("whi", "whf", "whg", "who"),
        input_bias=("bi", "bf", "bg", "bo"),
        hidden_bias=(None, None, None, None),
        step=_lstm_step,
        sums_projections=True,
    ),
    "gru": GatedCell(
        name="gru",
        carry=("h",),
        input_keys=("wir", "wiz", "win"),
        hidden_keys=("whr", "whz", "whn"),
        input_bias=("br", "bz", "bin"),
        hidden_bias=(None, None, "bhn"),
        step=_gru_step,
    ),
}
"""The gated cells by name: their parameter keys (Axon's layout) and gate arithmetic."""


def _gated_cell(
    spec: GatedCell,
    x: jax.Array,
    carry: Any,
    mask: jax.Array | int | None,
    input_kernel: Mapping[str, jax.Array],
    hidden_kernel: Mapping[str, jax.Array],
    bias: Mapping[str, jax.Array] | None,
    gate_fn: Activation,
    activation_fn: Activation,
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """One step of the cell ``spec`` describes (the body of :func:`lstm_cell` and :func:`gru_cell`)."""
    where = f"{spec.name}_cell"
    carry = _as_carry(where, carry, len(spec.carry), spec.carry_text)
    hidden = carry[-1]
    _check_gated(where, x, hidden, input_kernel, hidden_kernel, bias, spec.keys)
    gate_fn = _resolve_activation(gate_fn, where, "gate_fn")
    activation_fn = _resolve_activation(activation_fn, where, "activation_fn")
    wi, wh, fused_bias = _fused_parameters(spec, input_kernel, hidden_kernel, bias, hidden.shape[-1])
    return _fused_step(spec, x, carry, mask, wi, wh, fused_bias, gate_fn, activation_fn)


def _fused_parameters(spec: GatedCell, input_kernel: Mapping[str, jax.Array], hidden_kernel: Mapping[str, jax.Array],
                      bias: Mapping[str, jax.Array] | None, units: int) -> tuple[jax.Array, jax.Array, Any]:
    """The per-gate kernels concatenated in gate order, the input-side biases likewise, and
    the hidden-side biases by name: what :func:`_fused_step` multiplies and adds."""
    wi = _gate_kernels(input_kernel, spec.input_keys)
    wh = _gate_kernels(hidden_kernel, spec.hidden_keys)
    if bias is None:
        return wi, wh, None
    return wi, wh, (_gate_bias(bias, spec.input_bias, units), {k: bias[k] for k in spec.hidden_bias if k is not None})


def _fused_step(spec: GatedCell, x: jax.Array, carry: Carry, mask: Any, wi: jax.Array, wh: jax.Array, fused_bias: Any,
                gate_fn: Callable, activation_fn: Callable) -> tuple[jax.Array, Carry]:
    """One step of the cell from :func:`_fused_parameters`' arrays (checked beforehand)."""
    n = len(spec.input_keys)
    zx = x @ wi
    zh = carry[-1] @ wh
    if fused_bias is not None:
        zx = zx + fused_bias[0]
    xs = jnp.split(zx, n, axis=-1)
    hs = jnp.split(zh, n, axis=-1)
    if fused_bias is not None:
        hs = [h if k is None else h + fused_bias[1][k] for h, k in zip(hs, spec.hidden_bias, strict=True)]
    new = spec.step(xs, hs, carry, gate_fn, activation_fn)
    new = tuple(_keep_masked(mask, old, value) for old, value in zip(carry, new, strict=True))
    return new[-1], new


def lstm_cell(
    x: jax.Array,
    carry: tuple[jax.Array, jax.Array],
    mask: jax.Array | int | None,
    input_kernel: Mapping[str, jax.Array],
    hidden_kernel: Mapping[str, jax.Array],
    bias: Mapping[str, jax.Array] | None = None,
    *,
    gate_fn: Activation = jax.nn.sigmoid,
    activation_fn: Activation = jnp.tanh,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """One LSTM step (Axon's ``lstm_cell``).

    ``i, f, o = gate(x·Wi* + h·Wh* + b*)``, ``g = act(x·Wig + h·Whg + bg)``,
    ``c' = f·c + i·g``, ``h' = o·act(c')``. Where ``mask`` is nonzero the previous ``(c, h)``
    is kept.

    Args:
        x: The step's input, ``(batch, features)``.
        carry: ``(c, h)``, each ``(batch, units)``.
        mask: ``(batch, 1)``, a scalar, or ``None``/``0``: nonzero keeps the previous state.
        input_kernel: ``{"wii", "wif", "wig", "wio"}``, each ``(features, units)``.
        hidden_kernel: ``{"whi", "whf", "whg", "who"}``, each ``(units, units)``.
        bias: ``{"bi", "bf", "bg", "bo"}``, each ``(units,)``, or ``None`` for no bias.
        gate_fn: The gates' activation (name or function). Default sigmoid.
        activation_fn: The candidate's and output's activation. Default tanh.

    Returns:
        ``(h', (c', h'))``.

    Raises:
        ValueError: A parameter dict lacks a key or has a wrongly shaped entry, the carry
            is not ``(c, h)``, or an activation name is unknown.

    >>> import jax.numpy as jnp
    >>> ik = {k: jnp.zeros((3, 2)) for k in ("wii", "wif", "wig", "wio")}
    >>> hk = {k: jnp.zeros((2, 2)) for k in ("whi", "whf", "whg", "who")}
    >>> h, (c, _) = lstm_cell(jnp.ones((1, 3)), (jnp.ones((1, 2)), jnp.zeros((1, 2))), 0, ik, hk)
    >>> c.tolist(), jnp.round(h, 4).tolist()  # c' = 0.5·1, h' = 0.5·tanh(0.5)
    ([[0.5, 0.5]], [[0.2311, 0.2311]])
    """
    return _gated_cell(
        GATED_CELLS["lstm"], x, carry, mask, input_kernel, hidden_kernel, bias, gate_fn, activation_fn
    )


def gru_cell(
    x: jax.Array,
    carry: tuple[jax.Array],
    mask: jax.Array | int | None,
    input_kernel: Mapping[str, jax.Array],
    hidden_kernel: Mapping[str, jax.Array],
    bias: Mapping[str, jax.Array] | None = None,
    *,
    gate_fn: Activation = jax.nn.sigmoid,
    activation_fn: Activation = jnp.tanh,
) -> tuple[jax.Array, tuple[jax.Array]]:
    """One GRU step (Axon's ``gru_cell``).

    ``r = gate(x·Wir + br + h·Whr)``, ``z = gate(x·Wiz + bz + h·Whz)``,
    ``n = act(x·Win + bin + r·(h·Whn + bhn))``, ``h' = (1 − z)·n + z·h``. Where ``mask`` is
    nonzero the previous ``h`` is kept. (This is PyTorch's GRU with ``br = b_ir + b_hr``,
    ``bz = b_iz + b_hz``, ``bin = b_in``, ``bhn = b_hn``.)

    Args:
        x: The step's input, ``(batch, features)``.
        carry: ``(h,)`` with ``h`` ``(batch, units)``.
        mask: ``(batch, 1)``, a scalar, or ``None``/``0``: nonzero keeps the previous state.
        input_kernel: ``{"wir", "wiz", "win"}``, each ``(features, units)``.
        hidden_kernel: ``{"whr", "whz", "whn"}``, each ``(units, units)``.
        bias: ``{"br", "bz", "bin", "bhn"}``, each ``(units,)``, or ``None`` for no bias.
        gate_fn: The gates' activation (name or function). Default sigmoid.
        activation_fn: The candidate's activation. Default tanh.

    Returns:
        ``(h', (h',))``.

    Raises:
        ValueError: A parameter dict lacks a key or has a wrongly shaped entry, the carry
            is not ``(h,)``, or an activation name is unknown.

    >>> import jax.numpy as jnp
    >>> ik = {k: jnp.zeros((3, 2)) for k in ("wir", "wiz", "win")}
    >>> hk = {k: jnp.zeros((2, 2)) for k in ("whr", "whz", "whn")}
    >>> h, (h2,) = gru_cell(jnp.ones((1, 3)), (jnp.ones((1, 2)),), 0, ik, hk)
    >>> h.tolist()  # z = 0.5, n = 0: h' = 0.5·h
    [[0.5, 0.5]]
    """
    return _gated_cell(
        GATED_CELLS["gru"], x, carry, mask, input_kernel, hidden_kernel, bias, gate_fn, activation_fn
    )


def _conv_options(
    where: str, strides: int | Sequence[int], padding: Any, n: int
) -> tuple[tuple[int, ...], Any]:
    try:
        strides = normalize_tuple(strides, n, "strides")
        padding = normalize_padding(padding, n)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None
    if any(s < 1 for s in strides):
        raise ValueError(f"{where}: expected strides to be positive, got {strides}")
    return strides, padding.upper() if isinstance(padding, str) else padding


def conv_lstm_cell(
    x: jax.Array,
    carry: tuple[jax.Array, jax.Array],
    mask: jax.Array | int | None,
    input_kernel: jax.Array,
    hidden_kernel: jax.Array,
    bias: jax.Array | None = None,
    *,
    strides: int | Sequence[int] = 1,
    padding: Padding = "same",
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """One ConvLSTM step (Axon's ``conv_lstm_cell``), channels first.

    ``gates = conv(x, input_kernel, strides, padding) + bias + conv(h, hidden_kernel)`` is split
    along the channel axis into ``i, g, f, o``; then ``c' = sigmoid(f + 1)·c +
    sigmoid(i)·tanh(g)`` and ``h' = sigmoid(o)·tanh(c')``.

    Shapes: ``x`` ``(batch, channels, *spatial)``; ``input_kernel``
    ``(4·units, channels, *kernel_size)``; ``hidden_kernel`` ``(4·units, units, *kernel_size)``;
    ``bias`` ``(4·units,)`` or ``None``; ``carry = (c, h)``, each ``(batch, 1, units, *out)``
    in Axon's layout (with its extra size-1 axis), or ``(batch, units, *out)``; ``out`` is the
    spatial size the input convolution produces. The new carry comes back in the layout it
    was given in; the output ``h'`` is always ``(batch, units, *out)``.

    Differences from Axon: ``strides`` and ``padding`` apply to the input convolution; the
    hidden-to-hidden convolution uses stride 1 and ``"same"`` padding, or the explicit
    ``(lo, hi)`` pairs when those are given (they must then keep the state's size). Axon
    applies both options to both convolutions, which only works when they keep the state's
    size; with stride 1 and ``"same"`` or size-keeping explicit padding the results are
    identical, and strided or ``"valid"`` inputs now work too. ``mask`` is honoured as in
    :func:`lstm_cell` (Axon ignores it; with the default mask ``0`` the results are equal).

    Args:
        x: the step's input, ``(batch, channels, *spatial)``.
        carry: ``(c, h)`` (see the shapes above).
        mask: ``(batch, 1)``, a scalar, or ``None``/``0``: nonzero keeps the previous state.
        input_kernel: ``(4·units, channels, *kernel_size)``.
        hidden_kernel: ``(4·units, units, *kernel_size)``.
        bias: ``(4·units,)``, or ``None`` (default) for no bias.
        strides: the input convolution's stride: an int or one per spatial axis (default 1).
        padding: the input convolution's padding: ``"same"`` (default), ``"valid"`` or
            ``(lo, hi)`` pairs.

    Returns:
        ``(h', (c', h'))``.

    Raises:
        ValueError: kernels, bias or carry of the wrong rank or shape, or a ``padding`` that
            does not keep the state's size for the hidden convolution.

    >>> import jax.numpy as jnp
    >>> c0 = h0 = jnp.zeros((2, 1, 4, 5, 5))
    >>> h, (c, _) = conv_lstm_cell(jnp.ones((2, 3, 5, 5)), (c0, h0), 0,
    ...                            jnp.zeros((16, 3, 3, 3)), jnp.zeros((16, 4, 3, 3)))
    >>> h.shape, c.shape
    ((2, 4, 5, 5), (2, 1, 4, 5, 5))
    """
    where = "conv_lstm_cell"
    cell, hidden = _as_carry(where, carry, 2, "(c, h)")
    x = jnp.asarray(x)
    input_kernel = jnp.asarray(input_kernel)
    hidden_kernel = jnp.asarray(hidden_kernel)
    n = x.ndim - 2
    if n < 1:
        raise ValueError(
            f"{where}: expected input of shape (batch, channels, *spatial), got shape {tuple(x.shape)}"
        )
    if (
        input_kernel.ndim != n + 2
        or input_kernel.shape[0] % 4
        or input_kernel.shape[1] != x.shape[1]
    ):
        raise ValueError(
            f"{where}: expected input_kernel of shape (4·units, {x.shape[1]}, *kernel_size) with {n} kernel "
            f"dimensions for input shape {tuple(x.shape)}, got {tuple(input_kernel.shape)}"
        )
    units = input_kernel.shape[0] // 4
    if hidden_kernel.ndim != n + 2 or hidden_kernel.shape[:2] != (4 * units, units):
        raise ValueError(
            f"{where}: expected hidden_kernel of shape ({4 * units}, {units}, *kernel_size), "
            f"got {tuple(hidden_kernel.shape)}"
        )
    if bias is not None and tuple(jnp.shape(bias)) not in ((4 * units,), ()):
        raise ValueError(
            f"{where}: expected bias of shape ({4 * units},), got {tuple(jnp.shape(bias))}"
        )
    if (
        cell.shape != hidden.shape
        or cell.ndim not in (n + 2, n + 3)
        or (cell.ndim == n + 3 and cell.shape[1] != 1)
    ):
        raise ValueError(
            f"{where}: expected c and h of equal shape (batch, 1, units, *spatial) or (batch, units, *spatial), "
            f"got {tuple(cell.shape)} and {tuple(hidden.shape)}"
        )
    strides, pad = _conv_options(where, strides, padding, n)

    rank_up = cell.ndim == n + 3
    if rank_up:
        cell, hidden = cell[:, 0], hidden[:, 0]

    gates = jax.lax.conv_general_dilated(x, input_kernel, strides, pad)
    if gates.shape[2:] != hidden.shape[2:] or hidden.shape[1] != units:
        raise ValueError(
            f"{where}: the input convolution gives gates of shape {tuple(gates.shape)} (units={units}), which does "
            f"not match the hidden state of shape {tuple(hidden.shape)} (without the size-1 axis)"
        )
    if bias is not None:
        gates = gates + jnp.reshape(jnp.broadcast_to(bias, (4 * units,)), (4 * units,) + (1,) * n)
    hidden_pad = "SAME" if isinstance(pad, str) else pad
    recurrent = jax.lax.conv_general_dilated(hidden, hidden_kernel, (1,) * n, hidden_pad)
    if recurrent.shape != gates.shape:
        raise ValueError(
            f"{where}: the hidden-to-hidden convolution with padding {padding!r} changes the state's "
            f"spatial size from {tuple(hidden.shape[2:])} to {tuple(recurrent.shape[2:])}; explicit "
            f"padding must add kernel_size - 1 per dimension"
        )
    gates = gates + recurrent
    i, g, f, o = jnp.split(gates, 4, axis=1)

    new_c = jax.nn.sigmoid(f + 1) * cell + jax.nn.sigmoid(i) * jnp.tanh(g)
    new_h = jax.nn.sigmoid(o) * jnp.tanh(new_c)
    new_c = _keep_masked(mask, cell, new_c)
    new_h = _keep_masked(mask, hidden, new_h)
    if rank_up:
        return new_h, (new_c[:, None], new_h[:, None])
    return new_h, (new_c, new_h)


# --------------------------------------------------------------------------------------------
# Unrolls


def _sequence_mask(where: str, mask: Any, inputs: jax.Array) -> jax.Array | None:
    """``None`` (no masking) or a ``(batch, time)`` array."""
    if _is_no_mask(mask):
        return None
    batch, time = inputs.shape[:2]
    m = jnp.asarray(mask)
    if m.ndim == 0 or m.shape == (batch, 1):
        return jnp.broadcast_to(m.reshape((1, 1)) if m.ndim == 0 else m, (batch, time))
    if m.shape != (batch, time):
        raise ValueError(
            f"{where}: expected mask to be a scalar, ({batch}, 1) or ({batch}, {time}) (batch, time), "
            f"got shape {tuple(m.shape)}"
        )
    return m


def _check_sequence(where: str, inputs: jax.Array) -> jax.Array:
    inputs = jnp.asarray(inputs)
    if inputs.ndim < 2 or inputs.shape[1] == 0:
        raise ValueError(
            f"{where}: expected an input sequence of shape (batch, time, ...) with at least one time step, "
            f"got shape {tuple(inputs.shape)}"
        )
    return inputs


def dynamic_unroll(
    cell_fn: CellFn,
    inputs: jax.Array,
    carry: Any,
    mask: jax.Array | int | None,
    input_kernel: Any,
    hidden_kernel: Any,
    bias: Any = None,
) -> tuple[Any, Any]:
    """Run ``cell_fn`` over the time axis (axis 1) with ``jax.lax.scan``.

    ``cell_fn(x_t, carry, mask_t, input_kernel, hidden_kernel, bias) -> (output_t, carry)`` is
    called once per step with ``x_t = inputs[:, t]`` and ``mask_t`` of shape ``(batch, 1)``
    (``None`` when unmasked). The loop is compiled once, whatever the sequence length, so it
    suits long sequences. Same values and gradients as :func:`static_unroll`.

    Shapes: ``inputs`` ``(batch, time, ...)``; ``mask`` a scalar, ``(batch, 1)`` or
    ``(batch, time)``. Returns ``(outputs, final_carry)`` with ``outputs``
    ``(batch, time, ...)``. The initial carry is cast to the dtype the cell produces.

    Args:
        cell_fn: the step function (as :func:`lstm_cell`).
        inputs: ``(batch, time, ...)``.
        carry: the initial carry, passed to the first step.
        mask: ``None``/``0``, a scalar, ``(batch, 1)`` or ``(batch, time)``; nonzero keeps the
            previous state at that step.
        input_kernel: passed to every step.
        hidden_kernel: passed to every step.
        bias: passed to every step (default ``None``).

    Returns:
        ``(outputs, final_carry)``, ``outputs`` ``(batch, time, ...)``.

    Raises:
        ValueError: ``inputs`` has no time axis, or a ``mask`` of another shape.

    >>> import jax.numpy as jnp
    >>> ik = {k: jnp.zeros((3, 4)) for k in ("wir", "wiz", "win")}
    >>> hk = {k: jnp.zeros((4, 4)) for k in ("whr", "whz", "whn")}
    >>> out, (h,) = dynamic_unroll(gru_cell, jnp.ones((2, 5, 3)), (jnp.ones((2, 4)),), 0, ik, hk, None)
    >>> out.shape, out[0, :, 0].tolist()  # h halves at each step
    ((2, 5, 4), [0.5, 0.25, 0.125, 0.0625, 0.03125])
    """
    where = "dynamic_unroll"
    inputs = _check_sequence(where, inputs)
    seq_mask = _sequence_mask(where, mask, inputs)
    xs = jnp.moveaxis(inputs, 1, 0)
    ms = None if seq_mask is None else jnp.moveaxis(seq_mask, 1, 0)[..., None]

    # Make the carry's dtypes what the cell returns, as lax.scan needs a fixed carry type.
    _, carry_out = jax.eval_shape(
        cell_fn, xs[0], carry, None if ms is None else ms[0], input_kernel, hidden_kernel, bias
    )
    if jax.tree.structure(carry_out) == jax.tree.structure(carry):
        carry = jax.tree.map(lambda c, s: jnp.asarray(c, s.dtype), carry, carry_out)

    def step(c: Any, xm: tuple[jax.Array, jax.Array | None]) -> tuple[Any, Any]:
        x_t, m_t = xm
        out, c = cell_fn(x_t, c, m_t, input_kernel, hidden_kernel, bias)
        return c, out

    carry, outputs = jax.lax.scan(step, carry, (xs, ms))
    return jax.tree.map(lambda y: jnp.moveaxis(y, 0, 1), outputs), carry


def static_unroll(
    cell_fn: CellFn,
    inputs: jax.Array,
    carry: Any,
    mask: jax.Array | int | None,
    input_kernel: Any,
    hidden_kernel: Any,
    bias: Any = None,
) -> tuple[Any, Any]:
    """Run ``cell_fn`` over the time axis (axis 1) with a Python loop.

    Every step is inlined into the traced computation, which suits short sequences. Same
    arguments, values and gradients as :func:`dynamic_unroll`.

    Args:
        cell_fn: the step function (as :func:`lstm_cell`).
        inputs: ``(batch, time, ...)``.
        carry: the initial carry, passed to the first step.
        mask: ``None``/``0``, a scalar, ``(batch, 1)`` or ``(batch, time)``; nonzero keeps the
            previous state at that step.
        input_kernel: passed to every step.
        hidden_kernel: passed to every step.
        bias: passed to every step (default ``None``).

    Returns:
        ``(outputs, final_carry)``, ``outputs`` ``(batch, time, ...)``.

    Raises:
        ValueError: ``inputs`` has no time axis, or a ``mask`` of another shape.

    >>> import jax.numpy as jnp
    >>> ik = {k: jnp.zeros((3, 4)) for k in ("wir", "wiz", "win")}
    >>> hk = {k: jnp.zeros((4, 4)) for k in ("whr", "whz", "whn")}
    >>> out, (h,) = static_unroll(gru_cell, jnp.ones((2, 5, 3)), (jnp.ones((2, 4)),), 0, ik, hk, None)
    >>> out.shape, h[0].tolist()
    ((2, 5, 4), [0.03125, 0.03125, 0.03125, 0.03125])
    """
    where = "static_unroll"
    inputs = _check_sequence(where, inputs)
    seq_mask = _sequence_mask(where, mask, inputs)
    outputs = []
    for t in range(inputs.shape[1]):
        m_t = None if seq_mask is None else seq_mask[:, t : t + 1]
        out, carry = cell_fn(inputs[:, t], carry, m_t, input_kernel, hidden_kernel, bias)
        outputs.append(out)
    return jax.tree.map(lambda *ys: jnp.stack(ys, axis=1), *outputs), carry


# --------------------------------------------------------------------------------------------
# Layers


def _unroll_fn(where: str, unroll: str) -> Callable[..., tuple[Any, Any]]:
    _check_unroll(where, unroll)
    return static_unroll if unroll == "static" else dynamic_unroll


def _check_rank3(where: str, x: jax.Array) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim != 3:
        raise ValueError(
            f"{where}: expected input of rank 3 (batch, time, features), got rank {x.ndim} with shape {tuple(x.shape)}"
        )
    return x


def _gated_layer(
    spec: GatedCell,
    cell_fn: CellFn,
    x: jax.Array,
    hidden_state: Any,
    mask: jax.Array | int | None,
    input_kernel: Mapping[str, jax.Array],
    hidden_kernel: Mapping[str, jax.Array],
    bias: Mapping[str, jax.Array] | None,
    unroll: Unroll,
    activation: Activation,
    gate: Activation,
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Check a whole-sequence call once, then unroll ``cell_fn`` (the body of :func:`lstm` and :func:`gru`)."""
    where = spec.name
    run = _unroll_fn(where, unroll)
    x = _check_rank3(where, x)
    carry = _as_carry(where, hidden_state, len(spec.carry), spec.carry_text)
    _check_gated(where, x, carry[-1], input_kernel, hidden_kernel, bias, spec.keys)
    cell = functools.partial(
        cell_fn,
        gate_fn=_resolve_activation(gate, where, "gate"),
        activation_fn=_resolve_activation(activation, where, "activation"),
    )
    seq_mask = _sequence_mask(where, mask, x)
    if unroll == "dynamic" and spec.sums_projections and all(k is None for k in spec.hidden_bias):
        return _summed_dynamic(spec, cell.keywords["gate_fn"], cell.keywords["activation_fn"], x, carry, seq_mask,
                              input_kernel, hidden_kernel, bias)
    if unroll == "dynamic":
        # the kernels concatenated once, before the loop rather than in its body (the same
        # values): an inference predict_fn then does it once per state (issue 17)
        wi, wh, fused_bias = _fused_parameters(spec, input_kernel, hidden_kernel, bias, carry[-1].shape[-1])
        step = functools.partial(_fused_step, spec, gate_fn=cell.keywords["gate_fn"],
                                 activation_fn=cell.keywords["activation_fn"])
        return dynamic_unroll(step, x, carry, mask, wi, wh, fused_bias)
    return run(cell, x, carry, mask, input_kernel, hidden_kernel, bias)


# --------------------------------------------------------------------------------------------
# The LSTM's dynamic unroll, with the kernels' gradients taken after the loop


def _summed_pointwise(spec: GatedCell, gate_fn: Callable, activation_fn: Callable, z: jax.Array, carry: Carry,
                      mask: jax.Array | None) -> Carry:
    """A step after its matmuls, from ``z = x·Wi + b + h·Wh`` (a cell that ``sums_projections``)."""
    new = spec.step(jnp.split(z, len(spec.input_keys), axis=-1), None, carry, gate_fn, activation_fn)
    return tuple(_keep_masked(mask, old, value) for old, value in zip(carry, new, strict=True))


def _zero_cotangent(x: jax.Array) -> Any:
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros_like(x)
    return np.zeros(x.shape, jax.dtypes.float0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _summed_scan(spec, gate_fn, activation_fn, xs, ms, carry, wi, wh, bx):
    """``lax.scan`` of the cell over ``xs`` ``(time, batch, features)``: ``(outputs, carry)``.

    The loop of ``dynamic_unroll(lstm_cell)`` (the same values, bit for bit), with a
    hand-written backward pass: the reverse loop carries only the state's cotangent and emits
    each step's pre-activation cotangent ``dz_t``; the kernels' gradients are then one matmul
    each over all steps (``Σ_t x_tᵀ·dz_t``, ``Σ_t h_{t-1}ᵀ·dz_t``), where autodiff of the loop
    accumulates a ``(units, 4·units)`` gradient with a small matmul at every step (issue 17).
    """
    return _summed_scan_fwd(spec, gate_fn, activation_fn, xs, ms, carry, wi, wh, bx)[0]


def _summed_step(spec, gate_fn, activation_fn, wi, wh, bx):
    """The loop body: ``(carry, (x_t, mask_t)) -> (carry', (h', z_t, carry))``."""

    def step(c, xm):
        x_t, m_t = xm
        z = x_t @ wi
        if bx is not None:
            z = z + bx
        z = z + c[-1] @ wh
        new = _summed_pointwise(spec, gate_fn, activation_fn, z, c, m_t)
        return new, (new[-1], z, c)

    return step


def _summed_scan_fwd(spec, gate_fn, activation_fn, xs, ms, carry, wi, wh, bx):
    step = _summed_step(spec, gate_fn, activation_fn, wi, wh, bx)
    final, (outputs, zs, previous) = jax.lax.scan(step, carry, (xs, ms))
    return (outputs, final), (xs, ms, wi, wh, bx, zs, previous)


def _summed_scan_bwd(spec, gate_fn, activation_fn, saved, cotangents):
    xs, ms, wi, wh, bx, zs, previous = saved
    d_outputs, d_final = cotangents

    def step(d_carry, r):
        z, c_prev, m_t, d_out = r
        d_carry = (*d_carry[:-1], d_carry[-1] + d_out)
        _, vjp = jax.vjp(lambda z, c: _summed_pointwise(spec, gate_fn, activation_fn, z, c, m_t), z, c_prev)
        dz, dc_prev = vjp(d_carry)
        dc_prev = (*dc_prev[:-1], dc_prev[-1] + (dz @ wh.T).astype(dc_prev[-1].dtype))
        return dc_prev, dz

    d_carry, dzs = jax.lax.scan(step, tuple(d_final), (zs, previous, ms, d_outputs), reverse=True)
    d_wi = jnp.einsum("tbf,tbk->fk", xs, dzs).astype(wi.dtype)
    d_wh = jnp.einsum("tbu,tbk->uk", previous[-1], dzs).astype(wh.dtype)
    d_bx = None if bx is None else dzs.sum(axis=(0, 1)).astype(bx.dtype)
    d_xs = (dzs @ wi.T).astype(xs.dtype)
    d_ms = None if ms is None else _zero_cotangent(ms)
    return d_xs, d_ms, d_carry, d_wi, d_wh, d_bx


_summed_scan.defvjp(_summed_scan_fwd, _summed_scan_bwd)


def _summed_dynamic(spec, gate_fn, activation_fn, x, carry, seq_mask, input_kernel, hidden_kernel, bias):
    """``dynamic_unroll(cell)`` of a cell that ``sums_projections``, through :func:`_summed_scan`."""
    units = carry[-1].shape[-1]
    wi = _gate_kernels(input_kernel, spec.input_keys)
    wh = _gate_kernels(hidden_kernel, spec.hidden_keys)
    bx = None if bias is None else _gate_bias(bias, spec.input_bias, units)
    xs = jnp.moveaxis(x, 1, 0)
    ms = None if seq_mask is None else jnp.moveaxis(seq_mask, 1, 0)[..., None]
    # the carry takes the dtype the step produces, as lax.scan needs a fixed carry type
    step = _summed_step(spec, gate_fn, activation_fn, wi, wh, bx)
    out, _ = jax.eval_shape(step, carry, (xs[0], None if ms is None else ms[0]))
    carry = tuple(jnp.asarray(c, s.dtype) for c, s in zip(carry, out, strict=True))
    outputs, final = _summed_scan(spec, gate_fn, activation_fn, xs, ms, carry, wi, wh, bx)
    return jnp.moveaxis(outputs, 0, 1), final


def lstm(
    x: jax.Array,
    hidden_state: tuple[jax.Array, jax.Array],
    mask: jax.Array | int | None,
    input_kernel: Mapping[str, jax.Array],
    hidden_kernel: Mapping[str, jax.Array],
    bias: Mapping[str, jax.Array] | None = None,
    *,
    unroll: Unroll = "static",
    activation: Activation = "tanh",
    gate: Activation = "sigmoid",
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """LSTM over a whole sequence: :func:`lstm_cell` unrolled along the time axis.

    Shapes: ``x`` ``(batch, time, features)``; ``hidden_state = (c, h)`` each
    ``(batch, units)``; ``mask`` ``0``/``None``, a scalar, or ``(batch, time)`` with 1 = skip
    the step (keep the previous state); kernels and bias as in :func:`lstm_cell` (``bias=None``
    means zero). Returns ``(output_sequence (batch, time, units), (c, h))``.

    Options: ``unroll`` ``"static"`` (Python loop, Axon's functional default) or
    ``"dynamic"`` (``lax.scan``); ``activation`` and ``gate``: names (``"tanh"``,
    ``"sigmoid"``, ``"relu"``, ``"hard_sigmoid"``, ...) or callables.

    ``unroll="dynamic"`` has a hand-written backward pass (the kernels' gradients are one
    matmul over all steps after the reverse loop, not one small matmul per step inside it;
    the same gradients to float rounding, ~1.3× faster on CPU): it supports reverse-mode
    differentiation (``jax.grad``, ``jax.vjp``, also nested) but not forward mode
    (``jax.jvp``, ``jax.jacfwd``); for those use ``unroll="static"`` or
    :func:`dynamic_unroll` with :func:`lstm_cell`.

    Args:
        x: ``(batch, time, features)``.
        hidden_state: ``(c, h)``, each ``(batch, units)``.
        mask: ``0``/``None``, a scalar, or ``(batch, time)``; 1 skips the step.
        input_kernel: as in :func:`lstm_cell`.
        hidden_kernel: as in :func:`lstm_cell`.
        bias: as in :func:`lstm_cell`; ``None`` (default): zero.
        unroll: ``"static"`` (default) or ``"dynamic"``.
        activation: the candidate's and output's activation (default ``"tanh"``).
        gate: the gates' activation (default ``"sigmoid"``).

    Returns:
        ``(outputs, (c, h))``, ``outputs`` ``(batch, time, units)``.

    Raises:
        ValueError: an unknown ``unroll`` or activation, or parameters as :func:`lstm_cell`
            rejects them.

    >>> import jax.numpy as jnp
    >>> ik = {k: jnp.full((3, 4), 0.1) for k in ("wii", "wif", "wig", "wio")}
    >>> hk = {k: jnp.zeros((4, 4)) for k in ("whi", "whf", "whg", "who")}
    >>> state = (jnp.zeros((2, 4)), jnp.zeros((2, 4)))
    >>> out, (c, h) = lstm(jnp.ones((2, 5, 3)), state, 0, ik, hk, unroll="dynamic")
    >>> out.shape, bool((out[:, -1] == h).all())
    ((2, 5, 4), True)
    """
    return _gated_layer(
        GATED_CELLS["lstm"], lstm_cell, x, hidden_state, mask, input_kernel, hidden_kernel, bias,
        unroll, activation, gate,
    )


def gru(
    x: jax.Array,
    hidden_state: tuple[jax.Array],
    mask: jax.Array | int | None,
    input_kernel: Mapping[str, jax.Array],
    hidden_kernel: Mapping[str, jax.Array],
    bias: Mapping[str, jax.Array] | None = None,
    *,
    unroll: Unroll = "static",
    activation: Activation = "tanh",
    gate: Activation = "sigmoid",
) -> tuple[jax.Array, tuple[jax.Array]]:
    """GRU over a whole sequence: :func:`gru_cell` unrolled along the time axis.

    Shapes: ``x`` ``(batch, time, features)``; ``hidden_state = (h,)`` with ``h``
    ``(batch, units)``; ``mask``, ``unroll``, ``activation``, ``gate`` as in :func:`lstm`;
    kernels and bias as in :func:`gru_cell`. Returns
    ``(output_sequence (batch, time, units), (h,))``.

    Args:
        x: ``(batch, time, features)``.
        hidden_state: ``(h,)``, ``h`` ``(batch, units)``.
        mask: ``0``/``None``, a scalar, or ``(batch, time)``; 1 skips the step.
        input_kernel: as in :func:`gru_cell`.
        hidden_kernel: as in :func:`gru_cell`.
        bias: as in :func:`gru_cell`; ``None`` (default): zero.
        unroll: ``"static"`` (default) or ``"dynamic"``.
        activation: the candidate's activation (default ``"tanh"``).
        gate: the gates' activation (default ``"sigmoid"``).

    Returns:
        ``(outputs, (h,))``, ``outputs`` ``(batch, time, units)``.

    Raises:
        ValueError: an unknown ``unroll`` or activation, or parameters as :func:`gru_cell`
            rejects them.

    >>> import jax.numpy as jnp
    >>> ik = {k: jnp.zeros((3, 4)) for k in ("wir", "wiz", "win")}
    >>> hk = {k: jnp.zeros((4, 4)) for k in ("whr", "whz", "whn")}
    >>> mask = jnp.array([[0, 1, 1, 0, 0], [0, 0, 0, 0, 0]])
    >>> out, (h,) = gru(jnp.ones((2, 5, 3)), (jnp.ones((2, 4)),), mask, ik, hk)
    >>> out[:, :, 0].tolist()  # masked steps keep the state
    [[0.5, 0.5, 0.5, 0.25, 0.125], [0.5, 0.25, 0.125, 0.0625, 0.03125]]
    """
    return _gated_layer(
        GATED_CELLS["gru"], gru_cell, x, hidden_state, mask, input_kernel, hidden_kernel, bias,
        unroll, activation, gate,
    )


def conv_lstm(
    x: jax.Array,
    hidden_state: tuple[jax.Array, jax.Array],
    mask: jax.Array | int | None,
    input_kernel: jax.Array,
    hidden_kernel: jax.Array,
    bias: jax.Array | None = None,
    *,
    unroll: Unroll = "static",
    strides: int | Sequence[int] = 1,
    padding: Padding = "same",
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """ConvLSTM over a whole sequence: :func:`conv_lstm_cell` unrolled along the time axis.

    Shapes: ``x`` ``(batch, time, channels, *spatial)`` (channels first in each step, as in
    Axon); ``hidden_state = (c, h)`` each ``(batch, 1, units, *out)`` (Axon's layout) or
    ``(batch, units, *out)``; ``input_kernel`` ``(4·units, channels, *kernel_size)``,
    ``hidden_kernel`` ``(4·units, units, *kernel_size)``, ``bias`` ``(4·units,)`` or ``None``.
    Returns ``(output_sequence (batch, time, units, *out), (c, h))``, the carry in the layout
    it was given in. ``strides``/``padding`` apply to the input convolution (see
    :func:`conv_lstm_cell`); ``mask`` and ``unroll`` as in :func:`lstm`.

    Args:
        x: ``(batch, time, channels, *spatial)``.
        hidden_state: ``(c, h)`` (see the shapes above).
        mask: ``0``/``None``, a scalar, or ``(batch, time)``; 1 skips the step.
        input_kernel: ``(4·units, channels, *kernel_size)``.
        hidden_kernel: ``(4·units, units, *kernel_size)``.
        bias: ``(4·units,)``, or ``None`` (default) for no bias.
        unroll: ``"static"`` (default) or ``"dynamic"``.
        strides: the input convolution's stride (default 1).
        padding: the input convolution's padding (default ``"same"``).

    Returns:
        ``(outputs, (c, h))``, ``outputs`` ``(batch, time, units, *out)``.

    Raises:
        ValueError: an unknown ``unroll``, or parameters as :func:`conv_lstm_cell` rejects them.

    >>> import jax.numpy as jnp
    >>> c0 = h0 = jnp.zeros((2, 1, 4, 8))
    >>> out, (c, h) = conv_lstm(jnp.ones((2, 5, 3, 8)), (c0, h0), 0,
    ...                         jnp.zeros((16, 3, 3)), jnp.zeros((16, 4, 3)), jnp.zeros(16))
    >>> out.shape, c.shape
    ((2, 5, 4, 8), (2, 1, 4, 8))
    """
    where = "conv_lstm"
    run = _unroll_fn(where, unroll)
    x = jnp.asarray(x)
    if x.ndim < 4:
        raise ValueError(
            f"{where}: expected input of rank at least 4 (batch, time, channels, *spatial), got rank {x.ndim} "
            f"with shape {tuple(x.shape)}"
        )
    carry = _as_carry(where, hidden_state, 2, "(c, h)")
    _conv_options(where, strides, padding, x.ndim - 3)
    _sequence_mask(where, mask, x)
    cell = functools.partial(conv_lstm_cell, strides=strides, padding=padding)
    return run(cell, x, carry, mask, input_kernel, hidden_kernel, bias)


def mask_from_tokens(x: jax.Array, eos_token: int | float) -> jax.Array:
    """Axon's ``mask`` layer: ``1`` where ``x == eos_token`` (steps to skip), else ``0``.

    Returns an int32 array of ``x``'s shape (Axon uses s64; int32 is JAX's default integer).
    For token ids ``(batch, time)`` this is the ``mask`` argument of :func:`lstm`/:func:`gru`.

    Args:
        x: the token ids, any shape.
        eos_token: the id that marks steps to skip.

    Returns:
        An int32 array shaped like ``x``.

    >>> import jax.numpy as jnp
    >>> mask_from_tokens(jnp.array([[5, 3, 0, 0]]), 0).tolist()
    [[0, 0, 1, 1]]
    """
    return (jnp.asarray(x) == eos_token).astype(jnp.int32)
