"""Peak memory while ``axon.pretrained.load_weights`` loads a safetensors checkpoint.

A checkpoint of ``layers`` torch-style ``Linear`` weights (``(width, width)`` float32, plus
biases) is written to disk one tensor at a time, then loaded in a fresh Python process into
an axon model of ``layers`` dense layers (each weight transposed by its rule). The child
reads its resident memory from ``/proc/self/status`` just before loading and its peak
(``VmHWM``, reset first through ``/proc/self/clear_refs``) after; the figure reported is
the peak increase over the checkpoint's size.

Run (about 1 GB on disk and up to ~2 GB of memory)::

    PYTHONPATH=src python -m benchmarks.pretrained_load_memory --size-mb 1024

tests/pretrained/test_load_memory.py runs the same measurement with a ~200 MB checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_CHILD = r"""
import json, sys
import numpy as np
import jax, jax.numpy as jnp
import axon

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)

path, layers, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
x = axon.input("x", shape=(None, width))
for i in range(layers):
    x = axon.dense(x, width, name=f"layers_{i}")
rules = [(r"layers\.(\d+)\.weight", r"layers_\1.kernel", "transpose"), (r"layers\.(\d+)\.bias", r"layers_\1.bias")]
template = axon.pretrained.abstract_state(x)  # warm up tracing and jax before measuring
axon.pretrained.load_weights(axon.input("y", shape=(None, 2)).pipe(axon.dense, 2, name="layers_0"),
                             {"layers.0.weight": np.ones((2, 2), np.float32), "layers.0.bias": np.ones(2, np.float32)},
                             mapping=rules)
before = status("VmRSS")
reset = True
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    reset = False
state = axon.pretrained.load_weights(x, path, mapping=rules)
jax.block_until_ready(state.data)
peak = status("VmHWM")
ok = float(state["layers_0"]["bias"][0]) == 0.0 and state["layers_0"]["kernel"].shape == (width, width)
print(json.dumps({"before": before, "peak": peak, "after": status("VmRSS"), "hwm_reset": reset, "ok": ok}))
"""


def write_checkpoint(path: Path, layers: int, width: int, seed: int = 0) -> int:
    """Writes a safetensors file of ``layers`` ``(width, width)`` float32 weights (random)
    and zero biases, one tensor at a time (never the whole checkpoint in memory).

    Returns:
        The file's size in bytes.
    """
    header, offset = {}, 0
    for i in range(layers):
        for name, shape in ((f"layers.{i}.weight", [width, width]), (f"layers.{i}.bias", [width])):
            nbytes = int(np.prod(shape)) * 4
            header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for _ in range(layers):
            f.write(rng.standard_normal((width, width), dtype=np.float32).tobytes())
            f.write(np.zeros(width, np.float32).tobytes())
    return os.path.getsize(path)


def measure(size_mb: float, workdir: str | os.PathLike, width: int = 2048) -> dict:
    """Writes a checkpoint of about ``size_mb`` megabytes under ``workdir`` and measures,
    in a child process, the peak memory ``load_weights`` takes to load it.

    Returns:
        ``{"file_bytes", "peak_increase_bytes", "ratio", "hwm_reset", "ok"}``: ``ratio`` is
        the peak increase over the file size.
    """
    layers = max(1, round(size_mb * 2**20 / (4 * width * (width + 1))))
    path = Path(workdir) / "checkpoint.safetensors"
    size = write_checkpoint(path, layers, width)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(layers), str(width)], env=env,
                         capture_output=True, text=True, check=True, timeout=600)
    child = json.loads(out.stdout.strip().splitlines()[-1])
    increase = child["peak"] - child["before"]
    return {"file_bytes": size, "peak_increase_bytes": increase, "ratio": increase / size,
            "hwm_reset": child["hwm_reset"], "ok": child["ok"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=1024.0)
    parser.add_argument("--width", type=int, default=4096)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        r = measure(args.size_mb, tmp, width=args.width)
    print(f"checkpoint {r['file_bytes'] / 2**20:.0f} MB: peak memory increase while loading "
          f"{r['peak_increase_bytes'] / 2**20:.0f} MB = {r['ratio']:.2f}x its size (loaded correctly: {r['ok']})")


if __name__ == "__main__":
    main()
