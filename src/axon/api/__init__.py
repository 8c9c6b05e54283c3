"""The graph constructors, one module per family (``core``, ``linear``, ``conv``, ...).

Everything public here is re-exported by :mod:`axon`; import it from there.
"""
