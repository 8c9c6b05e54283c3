"""The names files saved before the permanent registry (axon up to commit ``df7f6d6``) used,
translated once, here, to today's registered names.

Those files named axon's ops by module path: ``"axon.layers.<name>"``,
``"axon.activations.<name>"`` and ``"axon.api.<module>.<function>"``, and axon's
initializer factories by bare name (``"glorot_uniform"``, with options). A name that is
registered today is never translated, so a user's own registrations keep their meaning.

>>> legacy_op_name("axon.api.conv.separable_conv2d_op"), legacy_op_name("axon.layers.dense")
('axon.separable_conv2d_op', 'axon.dense')
>>> legacy_initializer_name("variance_scaling"), legacy_initializer_name("my.init")
('axon.initializers.variance_scaling', None)
"""

from __future__ import annotations

_OP_PREFIXES = ("axon.layers.", "axon.activations.")
"""Old prefixes of the functional layers and activations, now ``"axon.<name>"``."""

_API_OPS = {
    "axon.api.conv.separable_conv2d_op": "axon.separable_conv2d_op",
    "axon.api.conv.separable_conv3d_op": "axon.separable_conv3d_op",
    "axon.api.columns.stack_columns_op": "axon.stack_columns",
}
"""The old names of the ops of ``axon.api`` that had no explicit name (the others, such as
``"axon.fn"`` or ``"axon.recurrent"``, were saved under the names they still have)."""

_INITIALIZER_FACTORIES = frozenset({
    "zeros", "ones", "full", "identity", "uniform", "normal", "variance_scaling", "orthogonal",
    "lecun_uniform", "lecun_normal", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
})
"""Old names of the factories of ``axon.initializers``, now ``"axon.initializers.<name>"``."""


def legacy_op_name(name: str) -> str | None:
    """Today's name of the op an old file called ``name``, or None if it had no other."""
    if name in _API_OPS:
        return _API_OPS[name]
    for prefix in _OP_PREFIXES:
        if name.startswith(prefix) and "." not in name[len(prefix):]:
            return "axon." + name[len(prefix):]
    return None


def legacy_initializer_name(name: str) -> str | None:
    """Today's name of the initializer (factory) an old file called ``name``, or None."""
    return "axon.initializers." + name if name in _INITIALIZER_FACTORIES else None
