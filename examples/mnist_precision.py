"""Mixed precision and int8 weights on the MNIST CNN of ``examples/mnist.py``.

Trains the same CNN twice on the bundled digits — in float32, and with a bfloat16
compute policy and dynamic loss scaling — then quantizes the float32 model's dense
weights to int8, and prints the held-out accuracy of all three and the bytes of the dense
kernels.

    pip install -e ".[examples]" && python examples/mnist_precision.py
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp
import numpy as np
from mnist import batches, build_model, load_digits

import axon


def train(model: axon.Axon, data, epochs: int, loss_scale=None) -> axon.ModelState:
    (x_train, y_train), _ = data
    steps = epochs * -(-len(x_train) // 32)
    optimizer = axon.optimizers.adam(axon.schedules.cosine_decay(2e-3, decay_steps=steps))
    loop = axon.loop.trainer(model, "categorical_cross_entropy", optimizer, seed=0, log=0, loss_scale=loss_scale)
    return loop.run((x_train, y_train), batch_size=32, shuffle=True, epochs=epochs)


def held_out_accuracy(model: axon.Axon, state: axon.ModelState, data) -> float:
    _, (x_test, y_test) = data
    return axon.loop.evaluator(model).metric("accuracy").run(batches(x_test, y_test, 250), state)[0]["accuracy"]


def dense_kernel_bytes(state: axon.ModelState) -> int:
    total = 0
    for layer in ("dense_0", "dense_1"):
        kernel = state[layer]["kernel"]
        total += kernel.value.nbytes + kernel.scale.nbytes if isinstance(kernel, axon.quantization.QTensor) else kernel.nbytes
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    data = load_digits()

    model = build_model()
    state = train(model, data, args.epochs)
    f32 = held_out_accuracy(model, state, data)

    policy = axon.mixed_precision.create_policy(params="f32", compute="bf16", output="f32")
    bf16_model = axon.mixed_precision.apply_policy(build_model(), policy, except_=["softmax", "batch_norm"])
    bf16_state = train(bf16_model, data, args.epochs, loss_scale="dynamic")
    bf16 = held_out_accuracy(bf16_model, bf16_state, data)

    q_model, q_state = axon.quantization.quantize(model, state)
    int8 = held_out_accuracy(q_model, q_state, data)

    print(f"float32 training:           held-out accuracy {f32:.2%}")
    print(f"bfloat16 compute training:  held-out accuracy {bf16:.2%}")
    print(f"int8 dense weights:         held-out accuracy {int8:.2%}")
    print(f"dense kernels: {dense_kernel_bytes(state):,} bytes in float32, {dense_kernel_bytes(q_state):,} bytes quantized")
    sample = jnp.asarray(data[1][0][:8])
    agree = np.mean(np.argmax(axon.predict(model, state, sample), 1) == np.argmax(axon.predict(q_model, q_state, sample), 1))
    print(f"float32 and int8 predictions agree on {agree:.0%} of 8 samples")


if __name__ == "__main__":
    main()
