"""Mixed-precision policies: which dtype a layer keeps its parameters in, computes in and
outputs.

A layer with a policy initializes its floating parameters in ``policy.params``, casts its
floating inputs and parameters to ``policy.compute`` before running, and casts its output to
``policy.output`` (a constant is cast to ``policy.output``). Integer arrays are never cast.
Numerically sensitive functions (softmax, log-softmax, log-sum-exp, the normalizations)
compute in float32 internally when given half-precision inputs and return the input dtype.

>>> policy = create_policy(params="f32", compute="bf16", output="f32")
>>> policy
Policy<p=f32 c=bf16 o=f32>
>>> import axon
>>> model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2).pipe(axon.softmax)
>>> mp_model = apply_policy(model, policy, only=["dense"])
>>> [n.policy is not None for n in (mp_model.nodes[i] for i in sorted(mp_model.nodes))]
[False, True, False]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from axon._dtypes import canonical_dtype, dtype_short_name, is_float

if TYPE_CHECKING:
    from axon.graph import Axon, Node

__all__ = ["Policy", "apply_policy", "cast", "create_policy"]


@dataclass(frozen=True)
class Policy:
    """Dtypes for a layer's ``params``, ``compute`` and ``output``; ``None`` means no cast."""

    params: Any = None
    compute: Any = None
    output: Any = None

    def __repr__(self) -> str:
        parts = [
            f"{k}={dtype_short_name(v)}"
            for k, v in (("p", self.params), ("c", self.compute), ("o", self.output))
            if v is not None
        ]
        return f"Policy<{' '.join(parts)}>"


def create_policy(params: Any = None, compute: Any = None, output: Any = None) -> Policy:
    """A policy; each role is a dtype (``"bf16"``, ``jnp.float16``...) or ``None`` (no cast).

    Args:
        params: the dtype parameters are stored in; ``None`` (default): as initialized.
        compute: the dtype layers compute in (inputs and parameters are cast to it); ``None``
            (default): no cast.
        output: the dtype of each layer's output; ``None`` (default): no cast.

    Returns:
        A :class:`Policy`.

    Raises:
        ValueError: a dtype that is not floating (an unknown name is rejected too).

    >>> create_policy(compute="f16").compute.name
    'float16'
    """
    def norm(name: str, d: Any) -> Any:
        if d is None:
            return None
        dt = canonical_dtype(d)
        if not is_float(dt):
            raise ValueError(f"create_policy: {name} must be a floating dtype, got {dt.name}")
        return dt

    return Policy(norm("params", params), norm("compute", compute), norm("output", output))


def cast(policy: Policy, value: Any, role: str) -> Any:
    """Cast the floating arrays in ``value`` (any pytree) to the policy's dtype for ``role``
    (``"params"``, ``"compute"`` or ``"output"``); integer arrays are left untouched.

    Args:
        policy: the policy.
        value: any pytree of arrays.
        role: ``"params"``, ``"compute"`` or ``"output"``.

    Returns:
        ``value`` with its floating arrays cast (unchanged when the role's dtype is ``None``).

    Raises:
        ValueError: an unknown ``role``.

    >>> x = {"a": jnp.ones(2), "i": jnp.arange(2)}
    >>> out = cast(create_policy(compute="bf16"), x, "compute")
    >>> out["a"].dtype.name, out["i"].dtype.name
    ('bfloat16', 'int32')
    """
    if role not in ("params", "compute", "output"):
        raise ValueError(f"cast: role must be 'params', 'compute' or 'output', got {role!r}")
    dtype = getattr(policy, role)
    if dtype is None:
        return value

    def leaf(x: Any) -> Any:
        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating) and x.dtype != dtype:
            return x.astype(dtype)
        return x

    return jax.tree_util.tree_map(leaf, value)


def _op_names(value: Any, what: str) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"apply_policy: expected {what} to be a list of op names (e.g. ['dense', 'conv']), got {value!r}")
    return frozenset(value)


def apply_policy(
    model: Axon,
    policy: Policy,
    *,
    only: Iterable[str] | None = None,
    except_: Iterable[str] | None = None,
    predicate: Callable[[Node], bool] | None = None,
    **kwargs: Any,
) -> Axon:
    """Set ``policy`` on the layers of ``model``: all of them, or those whose op name is in
    ``only``, or all but those whose op name is in ``except_``, or those for which
    ``predicate(node)`` is true (at most one of the three). Layers inside blocks are
    included.

    Axon's ``except:`` option is spelled ``except_`` (``except`` is a Python keyword);
    ``**{"except": [...]}`` is accepted too. Axon's ``only``/``except`` compare the node's
    op; here they compare its op name (``"dense"``, ``"batch_norm"``...), which is what
    identifies a layer kind in Python.

    Args:
        model: the graph.
        policy: a policy from :func:`create_policy`.
        only: op names of the layers to set; ``None`` (default): not used.
        except_: op names of the layers to leave out; ``None`` (default): not used.
        predicate: ``predicate(node) -> bool``, true for the layers to set; ``None`` (default):
            not used.
        **kwargs: only ``except`` (Axon's spelling of ``except_``).

    Returns:
        A new graph.

    Raises:
        TypeError: ``model`` is not a graph, ``policy`` is not a policy, an unknown option,
            more than one selector, or a selector of the wrong type.

    >>> import axon, jax.numpy as jnp
    >>> model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2).pipe(axon.batch_norm)
    >>> mp = apply_policy(model, create_policy(params="bf16", compute="bf16", output="bf16"), except_=["batch_norm"])
    >>> state = axon.init(mp, axon.template((1, 3)))
    >>> state["dense_0"]["kernel"].dtype.name, state["batch_norm_0"]["gamma"].dtype.name
    ('bfloat16', 'float32')
    """
    from axon.graph import Axon
    from axon.graph_rewrite import map_all_nodes

    if not isinstance(model, Axon):
        raise TypeError(f"apply_policy: expected an axon graph (axon.Axon), got {type(model).__name__}: {model!r}")
    if not isinstance(policy, Policy):
        raise TypeError(f"apply_policy: expected a policy from axon.mixed_precision.create_policy, got {policy!r}")
    unknown = [k for k in kwargs if k != "except"]
    if unknown:
        raise TypeError(f"apply_policy: unknown option(s) {unknown}; accepted: only, except_ (or 'except'), predicate")
    if "except" in kwargs:
        if except_ is not None:
            raise TypeError("apply_policy: give either except_ or 'except', not both")
        except_ = kwargs["except"]
    given = [name for name, v in (("only", only), ("except_", except_), ("predicate", predicate)) if v is not None]
    if len(given) > 1:
        raise TypeError(f"apply_policy: give at most one of only, except_ and predicate, got {given}")
    if only is not None:
        names = _op_names(only, "only")

        def select(node: Node) -> bool:
            return node.op_name in names
    elif except_ is not None:
        excluded = _op_names(except_, "except_")

        def select(node: Node) -> bool:
            return node.op_name not in excluded
    elif predicate is not None:
        if not callable(predicate):
            raise TypeError(f"apply_policy: expected predicate to be a function Node -> bool, got {predicate!r}")
        select = predicate
    else:

        def select(node: Node) -> bool:
            return True

    return map_all_nodes(model, lambda node: node.replace(policy=policy) if select(node) else node)
