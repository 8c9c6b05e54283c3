"""Implementations of the workloads, one module per framework. Importing a module
registers its implementations with :func:`benchmarks.harness.register`; the worker
imports only the one it runs, so a framework that is not installed costs nothing."""

#: implementation name -> (module, framework label)
MODULES: dict[str, tuple[str, str]] = {
    "axon_trainer": ("benchmarks.impls.axon_impl", "axon"),
    "axon_spe": ("benchmarks.impls.axon_impl", "axon"),
    "axon_build": ("benchmarks.impls.axon_impl", "axon"),
    "jax": ("benchmarks.impls.jax_impl", "jax"),
    "jax_scan": ("benchmarks.impls.jax_impl", "jax"),
    "flax_linen": ("benchmarks.impls.flax_impl", "flax"),
    "flax_nnx": ("benchmarks.impls.flax_impl", "flax"),
    "keras": ("benchmarks.impls.keras_impl", "keras"),
    "torch": ("benchmarks.impls.torch_impl", "torch"),
}
