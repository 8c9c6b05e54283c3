"""Small value types shared by the functional API and the compiler.

``StatefulOutput`` is what a layer returns when it also updates layer state (batch-norm
running statistics, dropout keys). ``NoneValue`` is Axon's ``%Axon.None{}``: the value a
missing optional input takes (``axon.NONE`` is the non-propagating instance).

>>> import jax.numpy as jnp
>>> out = StatefulOutput(jnp.ones(2), {"mean": jnp.zeros(2)})
>>> sorted(out.state)
['mean']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax

__all__ = ["NONE", "NoneValue", "StatefulOutput", "is_none"]


@jax.tree_util.register_pytree_node_class
@dataclass(frozen=True)
class StatefulOutput:
    """A layer output together with new values for the layer's state entries.

    ``state`` maps state-parameter names (``"mean"``, ``"var"``, ``"key"``) to new arrays.
    In train mode the compiler collects them into the updated model state.

    >>> import jax.numpy as jnp
    >>> StatefulOutput(jnp.zeros(1), {"key": jnp.zeros(2)}).output.shape
    (1,)
    """

    output: Any
    state: dict

    def tree_flatten(self):
        return (self.output, self.state), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)


@jax.tree_util.register_pytree_node_class
@dataclass(frozen=True)
class NoneValue:
    """The value of a missing optional input (Axon's ``%Axon.None{}``).

    A *propagating* NoneValue makes every layer that consumes it produce NoneValue too;
    ``axon.optional`` turns it into a non-propagating one that the layer receives and can
    test with ``axon.is_none``.

    >>> is_none(NONE), is_none(1.0)
    (True, False)
    """

    propagate: bool = True

    def tree_flatten(self):
        return (), self.propagate

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(aux)

    def __repr__(self) -> str:
        return "axon.NONE" if not self.propagate else "axon.NoneValue(propagate=True)"


NONE = NoneValue(propagate=False)


def is_none(value: Any) -> bool:
    """True when ``value`` is a missing optional value.

    >>> is_none(NoneValue())
    True
    """
    return isinstance(value, NoneValue)
