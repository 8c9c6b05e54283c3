"""Root conftest: shared by the test suite and the doctests of src/axon.

Torch is an optional, test-only reference (the ``test-reference`` extra). A test that
compares with torch takes the ``torch`` fixture, which skips that one test when torch is
not installed and marks it ``torch`` (``pytest -m torch`` runs only those,
``-m "not torch"`` the rest). ``AXON_TEST_BLOCK_TORCH=1`` hides an installed torch, to check
that the suite passes on a machine without it (xdist workers inherit the variable).
"""

import importlib.abc
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")


class _HideTorch(importlib.abc.MetaPathFinder):
    """Makes ``import torch`` (and its submodules) fail as if torch were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by AXON_TEST_BLOCK_TORCH=1)", name=name)
        return None


if os.environ.get("AXON_TEST_BLOCK_TORCH") == "1":
    if "torch" in sys.modules:
        raise RuntimeError("AXON_TEST_BLOCK_TORCH=1, but torch was imported before the root conftest")
    sys.meta_path.insert(0, _HideTorch())

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture(scope="session")
def torch():
    """The torch module; the test is skipped when torch is not installed."""
    return pytest.importorskip("torch")


def pytest_collection_modifyitems(config, items):
    """Mark every test that uses the ``torch`` fixture with the ``torch`` marker."""
    for item in items:
        if "torch" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.torch)
