"""Weight-only int8 quantization of dense layers (experimental, for inference).

A dense kernel becomes a :class:`QTensor`: int8 values with one float scale per output
unit (symmetric, zero point 0), a quarter of the kernel's float32 bytes. The quantized
layer computes ``(x @ values) * scale + bias``: activations stay in floating point.

* :func:`quantize` = :func:`quantize_model` (every dense layer's op becomes
  :func:`quantized_dense`, names and options unchanged) plus :func:`quantize_model_state`
  (those layers' kernels become QTensors and their parameters are frozen).
* :func:`weight_only_quantized_dense` builds such a layer directly (``x`` a graph), or
  applies the functional op (``x`` an array).

>>> import axon, jax, jax.numpy as jnp
>>> model = axon.input("x", shape=(None, 16)).pipe(axon.dense, 8)
>>> state = axon.init(model, axon.template((1, 16)))
>>> qmodel, qstate = axon.quantization.quantize(model, state)
>>> qstate["dense_0"]["kernel"].value.dtype.name
'int8'
>>> x = jax.random.normal(jax.random.key(0), (4, 16))
>>> bool(jnp.allclose(axon.predict(qmodel, qstate, x), axon.predict(model, state, x), atol=0.05))
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from axon import initializers as _initializers
from axon import layers as _layers
from axon._dtypes import canonical_dtype
from axon.graph import Axon, Node
from axon.model_state import ModelState, get_path, set_path
from axon.registry import factory, register

__all__ = [
    "QTensor",
    "quantized_dense",
    "quantized_initializer",
    "quantize",
    "quantize_model",
    "quantize_model_state",
    "weight_only_quantized_dense",
]

_INT8_MIN, _INT8_MAX = -128, 127


@jax.tree_util.register_pytree_node_class
@dataclass(frozen=True)
class QTensor:
    """A quantized rank-2 tensor: ``value`` (int8, shape ``(in, out)``), ``scale`` (float,
    one per output column) and ``zero_point`` (int32, one per output column); the real
    value is ``(value - zero_point) * scale``. A pytree, so it passes through ``jax.jit``,
    a :class:`axon.ModelState` and :func:`axon.serialize` like an array.

    >>> import jax.numpy as jnp
    >>> q = QTensor.from_tensor(jnp.array([[1.0, -2.0], [0.5, 1.0]]))
    >>> q.value.dtype.name, q.value[1].tolist(), q.scale.tolist()
    ('int8', [64, 64], [0.007843..., 0.015686...])
    >>> q.dequantize()[1].tolist()
    [0.50196..., 1.00392...]
    """

    value: Any
    scale: Any
    zero_point: Any

    def tree_flatten(self):
        return (self.value, self.scale, self.zero_point), None

    @classmethod
    def tree_unflatten(cls, aux: Any, children: Any) -> QTensor:
        return cls(*children)

    @classmethod
    def from_tensor(cls, x: Any, dtype: Any = "int8") -> QTensor:
        """Quantize a rank-2 float tensor ``(in, out)`` symmetrically per output column:
        ``scale = max(|x[:, j]|) / 127.5`` (at least float32 epsilon), ``zero_point = 0``,
        ``value = clip(round(x / scale), -128, 127)`` (rounding half away from zero), as
        Axon does. Only ``dtype="int8"`` (Axon's ``{:s, 8}``) is supported.

        Args:
            x: a floating tensor, ``(in, out)``.
            dtype: the storage dtype; only ``"int8"`` (the default).

        Returns:
            A :class:`QTensor`.

        Raises:
            ValueError: another ``dtype``, a rank other than 2, or a non-floating ``x``.

        >>> QTensor.from_tensor(jnp.ones((3, 2))).value.tolist()
        [[127, 127], [127, 127], [127, 127]]
        """
        try:
            is_int8 = canonical_dtype(dtype) == np.int8
        except (TypeError, ValueError):
            is_int8 = False
        if not is_int8:
            raise ValueError(f"QTensor.from_tensor: only dtype='int8' is supported, got dtype={dtype!r}")
        x = jnp.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"QTensor.from_tensor: expected a rank-2 tensor (in, out), got shape {tuple(x.shape)} of rank {x.ndim}")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(f"QTensor.from_tensor: expected a floating tensor, got dtype {x.dtype}")
        work = x.astype(jnp.float32)
        max_abs = jnp.maximum(-jnp.minimum(work.min(axis=0), 0.0), jnp.maximum(work.max(axis=0), 0.0))
        eps = jnp.finfo(jnp.float32).eps
        scale = jnp.clip(max_abs / ((_INT8_MAX - _INT8_MIN) / 2), eps, jnp.finfo(jnp.float32).max)
        scaled = work / scale
        rounded = jnp.sign(scaled) * jnp.floor(jnp.abs(scaled) + 0.5)
        value = jnp.clip(rounded, _INT8_MIN, _INT8_MAX).astype(jnp.int8)
        return cls(value, scale, jnp.zeros(scale.shape, jnp.int32))

    def dequantize(self, dtype: Any = jnp.float32) -> jax.Array:
        """The real tensor ``(value - zero_point) * scale`` in ``dtype``.

        Args:
            dtype: the result's dtype (default float32).

        Returns:
            An array of the tensor's shape.

        >>> QTensor.from_tensor(jnp.array([[2.0], [-0.5]])).dequantize()[1].tolist()
        [-0.50196...]
        """
        return ((self.value.astype(jnp.float32) - self.zero_point.astype(jnp.float32)) * self.scale).astype(dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the real tensor (that of ``value``)."""
        return tuple(self.value.shape)

    @property
    def dtype(self) -> Any:
        """The storage dtype, int8."""
        return self.value.dtype

    @property
    def ndim(self) -> int:
        """The rank, 2."""
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of ``value``, ``scale`` and ``zero_point`` together.

        >>> QTensor.from_tensor(jnp.ones((256, 4))).nbytes  # 256*4 int8 + 4 f32 scales + 4 i32 zeros
        1056
        """
        return sum(int(np.prod(a.shape)) * a.dtype.itemsize for a in (self.value, self.scale, self.zero_point))

    def __repr__(self) -> str:
        return f"QTensor<s8{list(self.shape)}>"


def _dense_op(x: Any, kernel: QTensor, bias: Any = None) -> jax.Array:
    if not isinstance(kernel, QTensor):
        raise TypeError(
            f"weight_only_quantized_dense: expected the kernel to be a QTensor, got {type(kernel).__name__}; "
            "quantize the state with axon.quantization.quantize_model_state"
        )
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[-1] != kernel.shape[0]:
        raise ValueError(f"weight_only_quantized_dense: input of shape {tuple(x.shape)} does not fit a kernel of shape {kernel.shape}")
    dt = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    flat = x.reshape(-1, x.shape[-1]).astype(dt)
    out = flat @ kernel.value.astype(dt)
    zero = kernel.zero_point.astype(dt)
    out = (out - flat.sum(axis=-1, keepdims=True) * zero) * kernel.scale.astype(dt)
    out = out.reshape((*x.shape[:-1], kernel.shape[1]))
    if bias is not None:
        out = out + jnp.asarray(bias).astype(dt)
    return out


@register("op", "axon.quantization.weight_only_quantized_dense")
def quantized_dense(x: Any, kernel: QTensor, bias: Any = None) -> jax.Array:
    """The functional weight-only quantized dense op: ``(x @ value - sum(x) * zero_point) *
    scale + bias`` over the last axis of ``x`` (Axon's
    ``Axon.Quantization.Layers.weight_only_quantized_dense``).

    Args:
        x: the input, ``(..., in)``.
        kernel: the quantized kernel, ``(in, out)``.
        bias: ``()`` or ``(out,)``; ``None`` (default): no bias.

    Returns:
        ``(..., out)``, in ``x``'s floating dtype (float32 for integer inputs).

    Raises:
        TypeError: ``kernel`` is not a :class:`QTensor`.
        ValueError: the last axis of ``x`` does not match the kernel.

    >>> import jax.numpy as jnp
    >>> q = QTensor.from_tensor(jnp.array([[1.0, 2.0], [3.0, 4.0]]))
    >>> quantized_dense(jnp.array([[1.0, 1.0]]), q, jnp.array([0.5, 0.5])).tolist()
    [[4.5, 6.5]]
    """
    return _dense_op(x, kernel, bias)


@factory("initializer_factory", "axon.quantization.quantized")
def quantized_initializer(base: Any = "glorot_uniform") -> Callable[..., QTensor]:
    """Initializer factory: initialize with ``base`` (a name or an init function), then
    quantize to a :class:`QTensor`.

    Args:
        base: the float initializer: a name from :mod:`axon.initializers` or an init
            function (default ``"glorot_uniform"``).

    Returns:
        ``init(key, shape, dtype=float32) -> QTensor``.

    Raises:
        ValueError: an unknown initializer name.

    >>> import jax
    >>> quantized_initializer("ones")(jax.random.key(0), (2, 3)).value.tolist()
    [[127, 127, 127], [127, 127, 127]]
    """
    base_fn = _initializers.get(base)

    def init(key: Any, shape: Any, dtype: Any = jnp.float32) -> QTensor:
        return QTensor.from_tensor(base_fn(key, shape, dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.float32))

    return init


def weight_only_quantized_dense(
    x: Any,
    units: Any,
    bias: Any = None,
    *,
    use_bias: bool = True,
    kernel_initializer: Any = "glorot_uniform",
    bias_initializer: Any = "zeros",
    name: Any = None,
    meta: dict | None = None,
) -> Any:
    """A dense layer whose kernel is an int8 :class:`QTensor` (op name ``"dense"``, so it
    is named ``dense_<k>`` like the layer it replaces). Given a graph ``x``, returns a graph
    (``units`` output units; the kernel is initialized with ``kernel_initializer`` and then
    quantized). Given an array ``x``, applies the functional op: ``units`` is then the
    QTensor kernel and ``bias`` the optional bias.

    Args:
        x: a graph (builds a layer) or an array (applies the op).
        units: for a graph, the number of output units; for an array, the :class:`QTensor`
            kernel.
        bias: for an array only, the bias (default ``None``).
        use_bias: for a graph, add a bias parameter (default ``True``).
        kernel_initializer: for a graph, the float initializer of the kernel before
            quantization (default ``"glorot_uniform"``).
        bias_initializer: for a graph, the bias initializer (default ``"zeros"``).
        name: for a graph, the layer name; ``None`` (default): ``dense_<k>``.
        meta: for a graph, the layer's metadata; ``None`` (default): units and use_bias.

    Returns:
        A graph, or for an array the op's result (as :func:`quantized_dense`).

    Raises:
        ValueError: ``units`` is not a positive int (graph), or the input does not fit the
            kernel (array).
        TypeError: ``bias`` given with a graph, or a kernel that is not a :class:`QTensor`.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 4)).pipe(axon.quantization.weight_only_quantized_dense, 2)
    >>> state = axon.init(model, axon.template((1, 4)))
    >>> state["dense_0"]["kernel"]
    QTensor<s8[4, 2]>
    >>> axon.predict(model, state, jnp.ones((3, 4))).shape
    (3, 2)
    >>> q = QTensor.from_tensor(jnp.eye(2))
    >>> weight_only_quantized_dense(jnp.array([[1.0, 2.0]]), q).tolist()
    [[1.0, 2.0]]
    """
    if not isinstance(x, Axon):
        return _dense_op(x, units, bias)
    from axon.api.core import check_graph, layer, param

    check_graph(x, "weight_only_quantized_dense")
    if not isinstance(units, int) or isinstance(units, bool) or units < 1:
        raise ValueError(f"weight_only_quantized_dense: expected units to be a positive int, got {units!r}")
    if bias is not None:
        raise TypeError("weight_only_quantized_dense: bias is an argument of the functional op; for a graph use use_bias=")
    kernel = param("kernel", lambda s: (s[-1], units), initializer=quantized_initializer(kernel_initializer))
    inputs = [x, kernel]
    if use_bias:
        inputs.append(param("bias", (units,), initializer=bias_initializer))
    meta = {"units": units, "use_bias": use_bias} if meta is None else meta
    return layer(quantized_dense, inputs, name=name, op_name="dense", meta=meta)


# --------------------------------------------------------------------------------------
# Model rewrites
# --------------------------------------------------------------------------------------


def _is_dense(node: Node) -> bool:
    return callable(node.op) and node.op is _layers.dense


def _rewrite_graph(model: Axon, blocks: dict[int, Any]) -> Axon:
    from axon.api.core import Block

    nodes = {}
    for nid, node in model.nodes.items():
        if _is_dense(node):
            params = []
            for p in node.parameters:
                if p.name == "kernel" and p.children is None:
                    init = quantized_initializer(p.initializer) if p.initializer is not None else None
                    p = dataclasses.replace(p, initializer=init)
                params.append(p)
            node = node.replace(op=quantized_dense, parameters=tuple(params))
        elif node.op == "block":
            old = node.opts["block"]
            if old.id not in blocks:
                new = Block(old.fn, old.name)
                new.input_names = old.input_names
                new.graph = _rewrite_graph(old.graph, blocks) if old.graph is not None else None
                blocks[old.id] = new
            node = node.replace(opts={**node.opts, "block": blocks[old.id]})
        nodes[nid] = node
    return Axon(nodes, model.output)


def quantize_model(model: Axon) -> Axon:
    """``model`` with every dense layer (inside blocks and namespaces too) computing with
    an int8 kernel (:func:`quantized_dense`); names, options and structure are unchanged.
    Pair it with :func:`quantize_model_state`.

    Args:
        model: the graph.

    Returns:
        A new graph.

    Raises:
        TypeError: ``model`` is not a graph.

    >>> import axon
    >>> model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2, activation="relu")
    >>> q = axon.quantization.quantize_model(model)
    >>> axon.properties(q) == axon.properties(model), q.nodes[q.node.parents[0]].op is quantized_dense
    (True, True)
    """
    if not isinstance(model, Axon):
        raise TypeError(f"quantize_model: expected an axon graph (axon.Axon), got {type(model).__name__}")
    return _rewrite_graph(model, {})


def _dense_layer_paths(model: Axon) -> list[tuple[str, ...]]:
    """State paths of every dense (or already quantized dense) layer, blocks included."""
    from axon.graph import layer_names, topological_order

    found: list[tuple[str, ...]] = []

    def walk(graph: Axon, scope: tuple[str, ...], seen: set[int]) -> None:
        names = layer_names(graph)
        for nid in topological_order(graph):
            node = graph.nodes[nid]
            sc, name = names[nid]
            full = (*scope, *sc, name)
            if node.op == "block":
                blk = node.opts["block"]
                if blk.id not in seen:
                    seen.add(blk.id)
                    walk(blk.graph, full, seen)
            elif (_is_dense(node) or node.op is quantized_dense) and full not in found:
                found.append(full)

    walk(model, (), set())
    return found


def quantize_model_state(model: Axon, state: ModelState | Mapping[str, Any]) -> ModelState:
    """``state`` with the kernel of every dense layer of ``model`` replaced by
    ``QTensor.from_tensor(kernel)`` and those layers' parameters frozen (quantized
    weights are for inference).

    Args:
        model: the graph the state belongs to.
        state: its state, a ``ModelState`` or a nested dict.

    Returns:
        A new ``ModelState``.

    Raises:
        TypeError: ``model`` is not a graph.
        ValueError: a dense kernel that is not a rank-2 floating tensor.

    >>> import axon
    >>> model = axon.input("x", shape=(None, 4)).pipe(axon.dense, 2)
    >>> qs = axon.quantization.quantize_model_state(model, axon.init(model, axon.template((1, 4))))
    >>> type(qs["dense_0"]["kernel"]).__name__, sorted(".".join(p) for p in qs.frozen_paths)
    ('QTensor', ['dense_0.bias', 'dense_0.kernel'])
    """
    if not isinstance(model, Axon):
        raise TypeError(f"quantize_model_state: expected an axon graph (axon.Axon), got {type(model).__name__}")
    ms = state if isinstance(state, ModelState) else ModelState(state)
    data = _copy_tree(ms.data)
    layers = []
    for path in _dense_layer_paths(model):
        try:
            kernel = get_path(data, (*path, "kernel"))
        except (KeyError, TypeError):
            continue
        if not isinstance(kernel, QTensor):
            set_path(data, (*path, "kernel"), QTensor.from_tensor(kernel))
        layers.append(path)
    out = ModelState(data, ms.parameter_paths, ms.state_paths, ms.frozen_paths)
    return out.freeze(lambda p: any(p[: len(layer)] == layer and len(p) == len(layer) + 1 for layer in layers))


def _copy_tree(data: Mapping[str, Any]) -> dict:
    return {k: _copy_tree(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def quantize(model: Axon, state: ModelState | Mapping[str, Any]) -> tuple[Axon, ModelState]:
    """``(quantize_model(model), quantize_model_state(model, state))``.

    Args:
        model: the graph.
        state: its state, a ``ModelState`` or a nested dict.

    Returns:
        ``(quantized graph, quantized state)``.

    Raises:
        TypeError: ``model`` is not a graph.
        ValueError: as :func:`quantize_model_state`.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 4)).pipe(axon.dense, 2, kernel_initializer="ones")
    >>> qmodel, qstate = axon.quantization.quantize(model, axon.init(model, axon.template((1, 4))))
    >>> axon.predict(qmodel, qstate, jnp.ones((1, 4))).tolist()
    [[4.0, 4.0]]
    """
    return quantize_model(model), quantize_model_state(model, state)
