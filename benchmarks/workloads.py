"""The workloads: model shapes, batch sizes, data and how many steps make a timing window.

Every implementation of a workload trains the same architecture on the same synthetic
data (a few distinct batches, drawn once from a fixed seed and cycled), with Adam at
learning rate 1e-3 and softmax cross-entropy on integer labels. Arrays are channels-last
(``NHWC``) except for PyTorch, which gets the same values transposed to ``NCHW``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["LEARNING_RATE", "WORKLOADS", "Workload", "get", "make_batches"]

LEARNING_RATE = 1e-3
NUM_DISTINCT_BATCHES = 4


@dataclasses.dataclass(frozen=True)
class Workload:
    """One benchmark workload.

    ``input_shape`` excludes the batch axis; ``dtype`` is the input's dtype (``int32``
    for token inputs); ``options`` are architecture knobs (widths, layers);
    ``steps_per_window`` is how many training steps one timing window runs (a multiple of
    ``spe``, the ``steps_per_execution`` used for the axon ``spe`` implementation).
    """

    name: str
    description: str
    batch_size: int
    input_shape: tuple[int, ...]
    num_classes: int = 10
    dtype: str = "float32"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    steps_per_window: int = 20
    spe: int = 10
    windows: int = 7
    warmup_windows: int = 1
    latency_calls: int = 200
    vocab: int = 0

    def quick(self) -> Workload:
        """The ``--quick`` variant: smaller, fewer windows (for development and CI-sized runs)."""
        changes: dict[str, Any] = {"windows": 3, "latency_calls": 30}
        changes.update(QUICK.get(self.name, {}))
        return dataclasses.replace(self, **changes)


WORKLOADS: dict[str, Workload] = {
    "mlp": Workload(
        "mlp", "MLP 784-512-512-10", batch_size=128, input_shape=(784,),
        steps_per_window=100, spe=10, windows=9,
    ),
    "cnn": Workload(
        "cnn", "CNN conv32-conv64-pool-128-10, 28x28x1", batch_size=128, input_shape=(28, 28, 1),
        steps_per_window=4, spe=2, windows=5, latency_calls=100,
    ),
    "lstm": Workload(
        "lstm", "LSTM 64x32 -> 128 units -> dense 10", batch_size=64, input_shape=(64, 32),
        steps_per_window=20, spe=10,
    ),
    "transformer": Workload(
        "transformer", "Transformer encoder, seq 128, width 128, 4 heads, 2 blocks", batch_size=32,
        input_shape=(128,), dtype="int32", vocab=1000,
        options={"width": 128, "heads": 4, "blocks": 2, "mlp": 512},
        steps_per_window=6, spe=3, latency_calls=100,
    ),
    "resnet18": Workload(
        "resnet18", "ResNet-18 (CIFAR stem), 32x32x3", batch_size=128, input_shape=(32, 32, 3),
        options={"widths": (64, 128, 256, 512)},
        steps_per_window=2, spe=2, windows=3, latency_calls=30,
    ),
}

# --quick: small enough that every workload and implementation finishes in minutes on two
# CPU cores (ResNet-18 at a quarter of its width and batch 16 is also the CPU stand-in for
# the full-size one, which needs an accelerator to finish in reasonable time)
QUICK: dict[str, dict[str, Any]] = {
    "mlp": {"steps_per_window": 40},
    "cnn": {"batch_size": 32, "steps_per_window": 6, "spe": 3},
    "lstm": {"batch_size": 16, "steps_per_window": 10, "spe": 5},
    "transformer": {"batch_size": 4, "steps_per_window": 6, "spe": 3},
    "resnet18": {"batch_size": 16, "options": {"widths": (16, 32, 64, 128)}, "steps_per_window": 4,
                 "spe": 2, "latency_calls": 30},
}


def get(name: str, quick: bool = False) -> Workload:
    """The workload called ``name`` (its quick variant with ``quick=True``)."""
    if name not in WORKLOADS:
        raise KeyError(f"unknown workload {name!r}; the workloads are {sorted(WORKLOADS)}")
    w = WORKLOADS[name]
    return w.quick() if quick else w


def make_batches(w: Workload, n: int = NUM_DISTINCT_BATCHES, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` distinct ``(inputs, labels)`` batches of ``w``: float inputs ~ N(0, 1) (or
    integer tokens below ``w.vocab``) and int32 labels below ``w.num_classes``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        shape = (w.batch_size, *w.input_shape)
        if w.dtype == "int32":
            x = rng.integers(0, w.vocab, size=shape, dtype=np.int32)
        else:
            x = rng.standard_normal(shape, dtype=np.float32)
        y = rng.integers(0, w.num_classes, size=(w.batch_size,), dtype=np.int32)
        out.append((x, y))
    return out


def single_example(w: Workload, seed: int = 1) -> np.ndarray:
    """One batch-1 input for latency measurements."""
    rng = np.random.default_rng(seed)
    shape = (1, *w.input_shape)
    if w.dtype == "int32":
        return rng.integers(0, w.vocab, size=shape, dtype=np.int32)
    return rng.standard_normal(shape, dtype=np.float32)
