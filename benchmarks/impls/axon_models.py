"""The workloads as axon graphs (outputs are logits), built only from axon's public
layer constructors."""

from __future__ import annotations

from collections.abc import Callable

import axon
from benchmarks.workloads import Workload


def mlp(w: Workload) -> axon.Axon:
    return (
        axon.input("x", shape=(None, *w.input_shape))
        .pipe(axon.dense, 512, activation="relu")
        .pipe(axon.dense, 512, activation="relu")
        .pipe(axon.dense, w.num_classes)
    )


def cnn(w: Workload) -> axon.Axon:
    return (
        axon.input("x", shape=(None, *w.input_shape))
        .pipe(axon.conv, 32, kernel_size=3, activation="relu")
        .pipe(axon.conv, 64, kernel_size=3, activation="relu")
        .pipe(axon.max_pool, kernel_size=2)
        .pipe(axon.flatten)
        .pipe(axon.dense, 128, activation="relu")
        .pipe(axon.dense, w.num_classes)
    )


def lstm(w: Workload) -> axon.Axon:
    x = axon.input("x", shape=(None, *w.input_shape))
    _, (_, h) = axon.lstm(x, 128)
    return axon.dense(h, w.num_classes)


def transformer(w: Workload) -> axon.Axon:
    o = w.options
    h = axon.input("x", shape=(None, *w.input_shape)).pipe(axon.embedding, w.vocab, o["width"])
    for _ in range(o["blocks"]):
        y = axon.layer_norm(h)
        h = axon.add(h, axon.multi_head_attention(y, num_heads=o["heads"]))
        y = axon.layer_norm(h).pipe(axon.dense, o["mlp"], activation="gelu").pipe(axon.dense, o["width"])
        h = axon.add(h, y)
    return axon.layer_norm(h).pipe(axon.global_avg_pool).pipe(axon.dense, w.num_classes)


def _conv_bn(x: axon.Axon, units: int, kernel_size: int, strides: int, relu: bool) -> axon.Axon:
    x = axon.conv(x, units, kernel_size=kernel_size, strides=strides,
                  padding="same" if kernel_size > 1 else "valid", use_bias=False)
    x = axon.batch_norm(x)
    return axon.relu(x) if relu else x


def resnet18(w: Workload) -> axon.Axon:
    widths = w.options["widths"]
    x = axon.input("x", shape=(None, *w.input_shape))
    x = _conv_bn(x, widths[0], 3, 1, True)
    c_in = widths[0]
    for i, c in enumerate(widths):
        for j in range(2):
            stride = 2 if (i > 0 and j == 0) else 1
            y = _conv_bn(x, c, 3, stride, True)
            y = _conv_bn(y, c, 3, 1, False)
            shortcut = _conv_bn(x, c, 1, stride, False) if (stride != 1 or c_in != c) else x
            x = axon.relu(axon.add(shortcut, y))
            c_in = c
    return x.pipe(axon.global_avg_pool).pipe(axon.dense, w.num_classes)


MODELS: dict[str, Callable[[Workload], axon.Axon]] = {
    "mlp": mlp, "cnn": cnn, "lstm": lstm, "transformer": transformer, "resnet18": resnet18,
}
