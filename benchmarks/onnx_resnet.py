"""Imported ResNet-18 inference: axon (``axon.onnx.import_model`` + ``axon.build``, jitted)
against onnxruntime on the same ONNX file, on the CPU, at batch 1 and 32.

    python -m benchmarks.onnx_resnet                      # 224x224 images, batches 1 and 32
    python -m benchmarks.onnx_resnet --image 64 --rounds 5

The model is torchvision's ResNet-18 layout with random weights (written here: torchvision is
not a dependency), exported by ``torch.onnx.export(dynamo=False)`` with a dynamic batch. Each
round times one call of each runtime, interleaved, after a warm-up call (axon's includes
compilation); the table reports medians and ``axon / ort`` as a throughput ratio (above 1:
axon faster). Needs torch, onnx and onnxruntime. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def resnet18(torch, num_classes: int = 1000):
    """torchvision.models.resnet18's layout, random weights, inference mode."""
    nn = torch.nn

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
            self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + identity)

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
            self.relu, self.maxpool = nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
            stages, cin = [], 64
            for i, w in enumerate((64, 128, 256, 512)):
                stages.append(nn.Sequential(BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)))
                cin = w
            self.layer1, self.layer2, self.layer3, self.layer4 = stages
            self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(512, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    torch.manual_seed(0)
    return ResNet18().eval()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=int, default=224, help="image height and width (default 224)")
    parser.add_argument("--batches", default="1,32", help="comma-separated batch sizes (default 1,32)")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per batch size (default 7)")
    args = parser.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np
    import onnxruntime
    import torch

    import axon
    import axon.onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "resnet18.onnx")
        torch.onnx.export(resnet18(torch), (torch.zeros(1, 3, args.image, args.image),), path, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, opset_version=17,
                          dynamo=False)
        start = time.perf_counter()
        model, state = axon.onnx.import_model(path)
        import_s = time.perf_counter() - start
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    _, predict_fn = axon.build(model)
    state = jax.device_put(state)

    results = {"import_s": import_s, "batches": {}}
    print(f"ResNet-18, {args.image}x{args.image}, CPU ({os.cpu_count()} cores); import took {import_s:.2f} s")
    print(f"{'batch':>5} {'axon ms':>9} {'ort ms':>9} {'axon/ort':>9}  (throughput ratio; >1: axon faster)")
    for batch in [int(b) for b in args.batches.split(",")]:
        x = np.random.default_rng(0).normal(size=(batch, 3, args.image, args.image)).astype(np.float32)
        xj = jnp.asarray(x)
        ours = np.asarray(predict_fn(state, xj))  # warm-up (compiles)
        (theirs,) = session.run(None, {"x": x})
        max_diff = float(np.max(np.abs(ours - theirs)))
        t_axon, t_ort = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            jax.block_until_ready(predict_fn(state, xj))
            t_axon.append(time.perf_counter() - start)
            start = time.perf_counter()
            session.run(None, {"x": x})
            t_ort.append(time.perf_counter() - start)
        a, o = statistics.median(t_axon), statistics.median(t_ort)
        results["batches"][batch] = {"axon_s": a, "ort_s": o, "ratio": o / a, "max_abs_diff": max_diff}
        print(f"{batch:>5} {1000 * a:>9.1f} {1000 * o:>9.1f} {o / a:>9.2f}  (max |axon - ort| = {max_diff:.1e})")
    return results


if __name__ == "__main__":
    main()
