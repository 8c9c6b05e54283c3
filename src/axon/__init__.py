"""axon: Axon's deep-learning API for Python, on JAX."""

__version__ = "0.1.0"

from axon import layers
from axon.types import NONE, NoneValue, StatefulOutput, is_none
