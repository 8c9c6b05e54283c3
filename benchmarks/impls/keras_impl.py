"""Keras 3 on the JAX backend, as its guides show: a functional model, ``compile`` with
Adam and sparse categorical cross-entropy on logits (XLA-compiled), and ``fit``. One epoch
is one timing window (a callback opens and closes it; ``on_epoch_end`` reads the loss,
which waits for the epoch's last step). Batch-1 inference uses ``predict_on_batch``."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import layers

from benchmarks.harness import Gate, Implementation, cycle, jax_device_memory, register
from benchmarks.workloads import LEARNING_RATE, Workload

if keras.backend.backend() != "jax":  # pragma: no cover - set before keras was imported elsewhere
    raise ImportError(f"keras is using the {keras.backend.backend()!r} backend, not jax")


def _bn() -> layers.Layer:
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5)


def keras_model(w: Workload) -> keras.Model:
    o = w.options
    inp = keras.Input(shape=w.input_shape, batch_size=None, dtype=w.dtype)
    if w.name == "mlp":
        x = layers.Dense(512, activation="relu")(inp)
        x = layers.Dense(512, activation="relu")(x)
    elif w.name == "cnn":
        x = layers.Conv2D(32, 3, activation="relu")(inp)
        x = layers.Conv2D(64, 3, activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Flatten()(x)
        x = layers.Dense(128, activation="relu")(x)
    elif w.name == "lstm":
        x = layers.LSTM(128)(inp)
    elif w.name == "transformer":
        x = layers.Embedding(w.vocab, o["width"])(inp)
        for _ in range(o["blocks"]):
            y = layers.LayerNormalization(epsilon=1e-5)(x)
            y = layers.MultiHeadAttention(o["heads"], o["width"] // o["heads"])(y, y)
            x = layers.Add()([x, y])
            y = layers.LayerNormalization(epsilon=1e-5)(x)
            y = layers.Dense(o["mlp"], activation="gelu")(y)
            y = layers.Dense(o["width"])(y)
            x = layers.Add()([x, y])
        x = layers.LayerNormalization(epsilon=1e-5)(x)
        x = layers.GlobalAveragePooling1D()(x)
    elif w.name == "resnet18":
        widths = o["widths"]
        x = layers.Conv2D(widths[0], 3, padding="same", use_bias=False)(inp)
        x = layers.ReLU()(_bn()(x))
        c_in = widths[0]
        for i, c in enumerate(widths):
            for j in range(2):
                s = 2 if (i > 0 and j == 0) else 1
                y = layers.Conv2D(c, 3, strides=s, padding="same", use_bias=False)(x)
                y = layers.ReLU()(_bn()(y))
                y = _bn()(layers.Conv2D(c, 3, padding="same", use_bias=False)(y))
                if s != 1 or c_in != c:
                    x = _bn()(layers.Conv2D(c, 1, strides=s, use_bias=False)(x))
                x = layers.ReLU()(layers.Add()([x, y]))
                c_in = c
        x = layers.GlobalAveragePooling2D()(x)
    else:
        raise KeyError(w.name)
    return keras.Model(inp, layers.Dense(w.num_classes)(x))


class _Windows(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.gate: Gate | None = None
        self.last_loss = float("nan")

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        if self.gate is not None:
            self.gate.start()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.last_loss = float(logs["loss"])  # waits for the last step
        if self.gate is not None:
            self.gate.stop()


@register("keras")
class Keras(Implementation):
    framework = "keras"

    def setup(self) -> None:
        keras.utils.set_random_seed(0)
        self.model = keras_model(self.w)
        self.model.compile(
            optimizer=keras.optimizers.Adam(LEARNING_RATE),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        self.callback = _Windows()
        x, y = self.batches[0]
        self.model.fit(x, y, batch_size=self.w.batch_size, epochs=1, shuffle=False, verbose=0, callbacks=[self.callback])

    def train_windows(self, n: int, steps: int, gate: Gate) -> None:
        xs, ys = zip(*cycle(self.batches, steps))
        x, y = np.concatenate(xs), np.concatenate(ys)
        self.callback.gate = gate
        try:
            self.model.fit(x, y, batch_size=self.w.batch_size, epochs=n, shuffle=False, verbose=0,
                           callbacks=[self.callback])
        finally:
            self.callback.gate = None

    def predict_fn(self) -> Callable[[], Any] | None:
        model, x = self.model, self.example
        return lambda: model.predict_on_batch(x)

    def loss(self) -> float:
        return self.callback.last_loss

    def device_memory(self) -> dict[str, Any]:
        return jax_device_memory()
