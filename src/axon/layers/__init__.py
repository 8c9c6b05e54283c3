"""Functional layers: pure JAX functions with Axon's parameter layouts.

These are what the graph API compiles to; they can be used on their own inside any
``jax.jit``/``jax.grad`` code. Every function takes arrays first and options as keywords;
layers that behave differently in training accept ``mode="inference"|"train"``.
Channels are last by default (``channels="last"``, NHWC inputs and HWIO kernels).

>>> import jax.numpy as jnp
>>> from axon import layers
>>> layers.dense(jnp.ones((2, 3)), jnp.ones((3, 4))).shape
(2, 4)
"""

from axon.layers.attention import *
from axon.layers.conv import *
from axon.layers.dropout import *
from axon.layers.linear import *
from axon.layers.normalization import *
from axon.layers.pooling import *
from axon.layers.recurrent import *
from axon.layers.resize import *
from axon.layers.shape import *
from axon.layers.tensor import *
