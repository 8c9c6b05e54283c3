"""PyTorch eager, as its tutorials show: ``nn.Module`` models (``NCHW`` images),
``torch.optim.Adam``, ``F.cross_entropy``, and a Python loop of
``zero_grad``/``backward``/``step``. Batches are converted from the shared NumPy data
once, outside the timing. Batch-1 inference runs in ``eval`` mode under
``torch.inference_mode``. ``AXON_BENCH_TORCH_THREADS`` (``run --torch-threads``) sets
``torch.set_num_threads``: on a loaded shared machine, OpenMP's spinning barriers make the
default (one thread per core) many times slower than one thread."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.harness import Gate, Implementation, register
from benchmarks.workloads import LEARNING_RATE, Workload


class MLP(nn.Module):
    def __init__(self, w: Workload):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(w.input_shape[0], 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                                 nn.Linear(512, w.num_classes))

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    def __init__(self, w: Workload):
        super().__init__()
        h, wd, c = w.input_shape
        self.net = nn.Sequential(
            nn.Conv2d(c, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(((h - 4) // 2) * ((wd - 4) // 2) * 64, 128), nn.ReLU(), nn.Linear(128, w.num_classes),
        )

    def forward(self, x):
        return self.net(x)


class LSTM(nn.Module):
    def __init__(self, w: Workload):
        super().__init__()
        self.rnn = nn.LSTM(w.input_shape[-1], 128, batch_first=True)
        self.out = nn.Linear(128, w.num_classes)

    def forward(self, x):
        return self.out(self.rnn(x)[0][:, -1])


class Transformer(nn.Module):
    def __init__(self, w: Workload):
        super().__init__()
        o = w.options
        self.embed = nn.Embedding(w.vocab, o["width"])
        layer = nn.TransformerEncoderLayer(o["width"], o["heads"], o["mlp"], dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, o["blocks"], norm=nn.LayerNorm(o["width"]),
                                             enable_nested_tensor=False)
        self.out = nn.Linear(o["width"], w.num_classes)

    def forward(self, x):
        return self.out(self.encoder(self.embed(x)).mean(dim=1))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c: int, stride: int):
        super().__init__()
        self.c0 = nn.Conv2d(c_in, c, 3, stride, 1, bias=False)
        self.bn0 = nn.BatchNorm2d(c)
        self.c1 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.proj = None
        if stride != 1 or c_in != c:
            self.proj = nn.Sequential(nn.Conv2d(c_in, c, 1, stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        y = F.relu(self.bn0(self.c0(x)))
        y = self.bn1(self.c1(y))
        return F.relu((x if self.proj is None else self.proj(x)) + y)


class ResNet18(nn.Module):
    def __init__(self, w: Workload):
        super().__init__()
        widths = w.options["widths"]
        self.stem = nn.Sequential(nn.Conv2d(w.input_shape[-1], widths[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        blocks, c_in = [], widths[0]
        for i, c in enumerate(widths):
            for j in range(2):
                blocks.append(BasicBlock(c_in, c, 2 if (i > 0 and j == 0) else 1))
                c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Linear(c_in, w.num_classes)

    def forward(self, x):
        return self.out(self.blocks(self.stem(x)).mean(dim=(2, 3)))


MODELS = {"mlp": MLP, "cnn": CNN, "lstm": LSTM, "transformer": Transformer, "resnet18": ResNet18}


def _device() -> torch.device:
    """CUDA when PyTorch sees a GPU (the JAX implementations run there too), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _to_torch(x: np.ndarray, device: torch.device) -> torch.Tensor:
    if x.ndim == 4:  # NHWC -> NCHW
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    t = torch.from_numpy(x)
    t = t.long() if t.dtype == torch.int32 else t
    return t.to(device)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@register("torch")
class Torch(Implementation):
    framework = "torch"

    def setup(self) -> None:
        threads = os.environ.get("AXON_BENCH_TORCH_THREADS")
        if threads:
            torch.set_num_threads(int(threads))
        torch.manual_seed(0)
        self.device = _device()
        if self.device.type == "cuda":
            # JAX's default float32 matmul precision on NVIDIA GPUs uses TF32; PyTorch's does
            # not unless asked, so ask, and let cuDNN pick its fastest convolution algorithms.
            torch.set_float32_matmul_precision("high")
            torch.backends.cudnn.benchmark = True
        self.tbatches = [
            (_to_torch(x, self.device), torch.from_numpy(y).long().to(self.device)) for x, y in self.batches
        ]
        self.model = MODELS[self.w.name](self.w).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE)
        self.model.train()
        self.value = self._step(*self.tbatches[0])

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def train_windows(self, n: int, steps: int, gate: Gate) -> None:
        self.model.train()
        batches = self.tbatches
        for _ in range(n):
            gate.start()
            for i in range(steps):
                value = self._step(*batches[i % len(batches)])
            self.value = value
            float(value)
            gate.stop()

    def predict_fn(self) -> Callable[[], Any] | None:
        model = self.model
        model.eval()
        x = _to_torch(self.example, self.device)
        device = self.device

        def predict() -> Any:
            with torch.inference_mode():
                out = model(x)
            _synchronize(device)
            return out

        return predict

    def loss(self) -> float:
        return float(self.value)

    def device_memory(self) -> dict[str, Any]:
        if torch.cuda.is_available():
            return {"torch_max_memory_allocated": torch.cuda.max_memory_allocated()}
        return {}
