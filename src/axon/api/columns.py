"""``stack_columns``: turn a table of named columns into a ``(batch, n_columns)`` matrix.

Axon's ``stack_columns`` takes a struct or a DataFrame (Nx container) and stacks its
fields. In Python the layer's input is a graph whose value is a dict of arrays, one per
column, such as an :func:`axon.container` of inputs named after a table's columns; a pandas
``DataFrame`` (or any object with ``.columns`` and ``df[name]``) is accepted too when the
model runs without ``jax.jit`` (``axon.build(model, jit=False)``), since a DataFrame is not
a JAX value. To feed a DataFrame to a jitted model, give each column its own input and pass
``{name: df[name].to_numpy() for name in df.columns}``.

>>> import axon, jax.numpy as jnp
>>> table = axon.container({"age": axon.input("age"), "income": axon.input("income")})
>>> model = axon.stack_columns(table)
>>> axon.predict(model, {}, {"age": jnp.array([30, 40]), "income": jnp.array([1.5, 2.5])}).tolist()
[[30.0, 1.5], [40.0, 2.5]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from axon.api.core import check_graph, check_name, layer
from axon.graph import Axon
from axon.registry import register
from axon.typing_aliases import LayerName

__all__ = ["stack_columns"]


def _columns(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        return list(value.items())
    if hasattr(value, "columns") and hasattr(value, "__getitem__"):  # a DataFrame
        out = []
        for c in value.columns:
            col = value[c]
            out.append((c, col.to_numpy() if hasattr(col, "to_numpy") else col))
        return out
    raise TypeError(
        "stack_columns: expected the input's value to be a dict of arrays (one per column) or a "
        f"DataFrame, got {type(value).__name__}; join column inputs with axon.container({{...}})"
    )


@register("op", "axon.stack_columns")
def stack_columns_op(value: Any, *, ignore: tuple[Any, ...] = ()) -> jax.Array:
    """The op of :func:`stack_columns`: stack the columns of ``value`` (a dict of arrays or a
    DataFrame), except those named in ``ignore``, along a new last axis.

    Each column is ``(batch,)`` (it becomes one column of the output) or ``(batch, k)`` (its
    ``k`` values become ``k`` columns). The result is ``(batch, n_columns)`` in the columns'
    order, in the promoted floating dtype of the columns (at least float32).

    >>> import jax.numpy as jnp
    >>> stack_columns_op({"a": jnp.array([1, 2]), "b": jnp.array([0.5, 0.0]), "id": jnp.array([7, 8])},
    ...                  ignore=("id",)).tolist()
    [[1.0, 0.5], [2.0, 0.0]]
    """
    cols = [(k, jnp.asarray(v)) for k, v in _columns(value) if k not in ignore]
    if not cols:
        raise ValueError(f"stack_columns: no columns left to stack (ignored: {list(ignore)})")
    batch = {k: v.shape[0] if v.ndim else None for k, v in cols}
    bad = {k: tuple(v.shape) for k, v in cols if v.ndim not in (1, 2)}
    if bad:
        raise ValueError(f"stack_columns: expected every column to have shape (batch,) or (batch, k), got {bad}")
    if len(set(batch.values())) != 1:
        raise ValueError(f"stack_columns: columns have different batch sizes: {batch}")
    dtype = jnp.result_type(*(v.dtype for _, v in cols), jnp.float32)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.float32
    parts = [(v[:, None] if v.ndim == 1 else v).astype(dtype) for _, v in cols]
    return jnp.concatenate(parts, axis=-1)


def stack_columns(x: Axon, *, ignore: Sequence[Any] = (), name: LayerName = None) -> Axon:
    """Stack the columns of ``x``'s value (a dict of arrays, or a DataFrame when not jitted)
    into one ``(batch, n_columns)`` float array, leaving out the columns named in ``ignore``.

    Columns keep the dict's order (a container's declaration order, a DataFrame's column
    order); a ``(batch,)`` column gives one output column, a ``(batch, k)`` one gives ``k``.
    Integer and boolean columns are cast to float32. No parameters. As in Axon there is no
    ``meta`` option.

    Args:
        x: A graph whose value is a dict of arrays (e.g. an ``axon.container``) or a
            DataFrame.
        ignore: Names of columns to leave out. Default: none.
        name: The layer name (``None``: ``"stack_columns_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).

    Returns:
        The graph of the stacked columns, ``(batch, n_columns)`` float32.

    Raises:
        TypeError: ``x`` is not a graph or ``ignore`` is not a list of names.

    >>> import axon, jax.numpy as jnp
    >>> table = axon.container({"x": axon.input("x"), "label": axon.input("label")})
    >>> model = axon.stack_columns(table, ignore=["label"])
    >>> axon.predict(model, {}, {"x": jnp.array([1.0, 2.0]), "label": jnp.array([0, 1])}).shape
    (2, 1)
    """
    check_graph(x, "stack_columns")
    check_name(name, "stack_columns")
    if isinstance(ignore, (str, bytes)) or not isinstance(ignore, (Sequence, set, frozenset)):
        raise TypeError(f"stack_columns: expected ignore to be a list of column names, got {ignore!r}")
    return layer(stack_columns_op, [x], ignore=tuple(ignore), name=name, op_name="stack_columns")
