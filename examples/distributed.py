"""Train the MNIST CNN data-parallel on every device, on one machine or many processes.

On a laptop, make 8 virtual CPU devices and train on all of them:

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python examples/distributed.py

The same script as 2 processes of 4 devices each, joined by ``jax.distributed`` (gloo on CPU):

    python -m axon.distributed.launch --nprocs 2 --devices-per-process 4 examples/distributed.py

Every process reads the same 4,000 digits; ``DataParallel`` gives each process, and each of its
devices, its own rows of every global batch, so the result equals a one-device run on the same
global batches. ``--strategy fsdp`` shards the parameters and optimizer state as well.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import axon.distributed as dist

if os.environ.get("AXON_NUM_PROCESSES"):  # started by the launcher: join the other processes first
    dist.initialize()

import jax
import numpy as np
from mnist import batches, build_model, load_digits

import axon


def main() -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch, split over every device")
    parser.add_argument("--strategy", choices=["dp", "fsdp"], default="dp")
    args = parser.parse_args()

    strategy = dist.DataParallel() if args.strategy == "dp" else dist.FSDP(min_size=2**12)
    n = jax.device_count()
    if dist.is_main_process():
        print(f"{dist.process_count()} process(es), {n} devices, strategy {type(strategy).__name__}, "
              f"global batch {args.batch_size} ({args.batch_size // n} per device)")
    (x_train, y_train), (x_test, y_test) = load_digits()
    # every batch must divide over the devices: trim the data to whole batches
    usable = len(x_train) // args.batch_size * args.batch_size
    x_train, y_train = x_train[:usable], y_train[:usable]

    model = build_model()
    start = time.perf_counter()
    state = (
        axon.loop.trainer(model, "categorical_cross_entropy", axon.optimizers.adam(2e-3), seed=0,
                          log=25 if dist.is_main_process() else 0, distribution=strategy)
        .metric("accuracy")
        .run((x_train, y_train), batch_size=args.batch_size, shuffle=True, epochs=args.epochs)
    )
    elapsed = time.perf_counter() - start
    kernel = state["dense_0"]["kernel"]
    results = (axon.loop.evaluator(model, log=0, distribution=strategy).metric("accuracy")
               .run(batches(x_test, y_test, 200), state))
    accuracy = results[0]["accuracy"]
    if dist.is_main_process():
        print(f"trained in {elapsed:.1f}s; dense_0.kernel {kernel.shape} is laid out as {kernel.sharding.spec}, "
              f"{np.prod(kernel.addressable_shards[0].data.shape)} of {kernel.size} values per device")
        print(f"held-out accuracy: {accuracy:.2%}")
    return accuracy


if __name__ == "__main__":
    main()
