"""A torchvision ResNet in plain numpy (float64, NCHW), over a ``state_dict`` in
torchvision's names: the torch-free reference for axon.models.resnet.

``state_dict(depth, num_classes, rng)`` makes random weights under exactly the keys and
shapes torchvision's ``resnet{depth}().state_dict()`` has; ``forward(sd, depth, x)`` is
torchvision's forward pass (eval mode) written from its source.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

LAYERS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3))}
EPS = 1e-5


def _convs(depth: int):
    """``(prefix, out, in, k)`` for every convolution and ``(prefix, channels)`` for every
    batch norm, in torchvision's module order."""
    kind, counts = LAYERS[depth]
    expansion = 1 if kind == "basic" else 4
    convs, bns = [("conv1", 64, 3, 7)], [("bn1", 64)]
    inplanes = 64
    for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), counts), start=1):
        for i in range(count):
            p = f"layer{stage}.{i}"
            plan = [(planes, inplanes, 3), (planes, planes, 3)] if kind == "basic" else \
                [(planes, inplanes, 1), (planes, planes, 3), (planes * 4, planes, 1)]
            for j, (o, c, k) in enumerate(plan, start=1):
                convs.append((f"{p}.conv{j}", o, c, k))
                bns.append((f"{p}.bn{j}", o))
            stride = 2 if stage > 1 and i == 0 else 1
            if i == 0 and (stride != 1 or inplanes != planes * expansion):
                convs.append((f"{p}.downsample.0", planes * expansion, inplanes, 1))
                bns.append((f"{p}.downsample.1", planes * expansion))
            inplanes = planes * expansion
    return convs, bns, inplanes


def state_dict(depth: int, num_classes: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    convs, bns, features = _convs(depth)
    sd: dict[str, np.ndarray] = {}
    for name, o, c, k in convs:
        sd[f"{name}.weight"] = rng.normal(0.0, np.sqrt(2.0 / (c * k * k)), (o, c, k, k))
    for name, n in bns:
        sd[f"{name}.weight"] = rng.uniform(0.5, 1.5, n)
        sd[f"{name}.bias"] = rng.normal(0.0, 0.2, n)
        sd[f"{name}.running_mean"] = rng.normal(0.0, 0.2, n)
        sd[f"{name}.running_var"] = rng.uniform(0.5, 1.5, n)
        sd[f"{name}.num_batches_tracked"] = np.array(7, np.int64)
    sd["fc.weight"] = rng.normal(0.0, 1.0 / np.sqrt(features), (num_classes, features))
    sd["fc.bias"] = rng.normal(0.0, 0.1, num_classes)
    return {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in sd.items()}


def _conv(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    windows = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwij,ocij->nohw", windows, w.astype(np.float64), optimize=True)


def _bn(x: np.ndarray, sd: dict, name: str) -> np.ndarray:
    def c(v):
        return sd[f"{name}.{v}"].astype(np.float64)[None, :, None, None]

    return (x - c("running_mean")) / np.sqrt(c("running_var") + EPS) * c("weight") + c("bias")


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _maxpool(x: np.ndarray) -> np.ndarray:  # kernel 3, stride 2, padding 1 (padding is -inf)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    return sliding_window_view(xp, (3, 3), axis=(2, 3))[:, :, ::2, ::2].max(axis=(-2, -1))


def forward(sd: dict[str, np.ndarray], depth: int, x: np.ndarray) -> np.ndarray:
    kind, counts = LAYERS[depth]
    x = _maxpool(_relu(_bn(_conv(x.astype(np.float64), sd["conv1.weight"], 2, 3), sd, "bn1")))
    for stage, count in enumerate(counts, start=1):
        for i in range(count):
            p = f"layer{stage}.{i}"
            stride = 2 if stage > 1 and i == 0 else 1
            identity = x
            if f"{p}.downsample.0.weight" in sd:
                identity = _bn(_conv(x, sd[f"{p}.downsample.0.weight"], stride, 0), sd, f"{p}.downsample.1")
            if kind == "basic":
                out = _relu(_bn(_conv(x, sd[f"{p}.conv1.weight"], stride, 1), sd, f"{p}.bn1"))
                out = _bn(_conv(out, sd[f"{p}.conv2.weight"], 1, 1), sd, f"{p}.bn2")
            else:
                out = _relu(_bn(_conv(x, sd[f"{p}.conv1.weight"], 1, 0), sd, f"{p}.bn1"))
                out = _relu(_bn(_conv(out, sd[f"{p}.conv2.weight"], stride, 1), sd, f"{p}.bn2"))
                out = _bn(_conv(out, sd[f"{p}.conv3.weight"], 1, 0), sd, f"{p}.bn3")
            x = _relu(out + identity)
    pooled = x.mean(axis=(2, 3))
    return pooled @ sd["fc.weight"].astype(np.float64).T + sd["fc.bias"]
