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


@pytest.fixture(scope="session")
def onnx():
    """The onnx module; the test is skipped when onnx is not installed."""
    return pytest.importorskip("onnx")


@pytest.fixture(scope="session")
def onnxruntime():
    """The onnxruntime module; the test is skipped when it is not installed."""
    return pytest.importorskip("onnxruntime")


@pytest.fixture(scope="session")
def transformers():
    """The transformers module (with torch); the test is skipped when either is missing."""
    pytest.importorskip("torch")
    return pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def tensorboardX():
    """The tensorboardX module; the test is skipped when it is not installed."""
    return pytest.importorskip("tensorboardX")


@pytest.fixture(scope="session")
def grain():
    """The grain module; the test is skipped when it is not installed."""
    return pytest.importorskip("grain")


@pytest.fixture(scope="session")
def datasets():
    """Hugging Face's datasets module; the test is skipped when it is not installed."""
    return pytest.importorskip("datasets")


@pytest.fixture(scope="session")
def matplotlib():
    """The matplotlib module (Agg backend); the test is skipped when it is not installed."""
    module = pytest.importorskip("matplotlib")
    module.use("Agg")
    return module


@pytest.fixture(scope="session")
def nbclient():
    """The nbclient module, to execute notebooks; the test is skipped unless nbclient,
    nbformat and ipykernel (the kernel) are all installed."""
    pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    return pytest.importorskip("nbclient")


REFERENCE_FIXTURES = frozenset(
    {"onnx", "onnxruntime", "transformers", "tensorboardX", "grain", "datasets", "matplotlib", "nbclient"}
)
"""Fixtures of the test-only references other than torch; their tests are marked ``reference``."""


def pytest_collection_modifyitems(config, items):
    """Mark the tests that use the ``torch`` fixture ``torch``, and those that use another
    reference fixture (onnx, onnxruntime, transformers, tensorboardX, grain, datasets,
    matplotlib, nbclient) ``reference``."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "torch" in names:
            item.add_marker(pytest.mark.torch)
        if names & REFERENCE_FIXTURES:
            item.add_marker(pytest.mark.reference)
