"""The quick CNN workload's convolutions, piece by piece and as whole training steps (issue 17).

    python -m benchmarks.cnn_formulations [--rounds 9] [--calls 10] [--torch] [--steps] [--json PATH]

The quick CNN (``benchmarks/workloads.py``: batch 32, 28x28x1 -> conv 3x3x32 -> conv 3x3x64 ->
2x2 max pool -> dense 9216->128 -> dense 10) spends most of its step in its second convolution.
This script times, in one process, interleaved round by round (CPU time, median of ``--rounds``
rounds of ``--calls`` calls, milliseconds per call):

* each convolution piece as axon lowers it (``axon.layers.conv``: ``lax.conv_general_dilated``
  and autodiff; XLA:CPU runs the forward and kernel gradient through YNNPACK, single-threaded,
  and the input gradient through Eigen on the thread pool): conv1 forward and kernel gradient
  (the first layer needs no input gradient), conv2 forward, kernel and input gradient, and the
  dense layer's three matmuls;
* the alternative formulations tried for those pieces (all equal to the reference to float
  rounding, checked before timing):
  ``im2col`` (a patches array concatenated on the channel axis, then one matmul),
  ``taps`` (one matmul per kernel tap on shifted slices, summed),
  ``winograd`` (Winograd F(2x2, 3x3): 16 batched (tiles, Cin) @ (Cin, Cout) matmuls instead of
  9 taps' worth, plus the input and output transforms),
  ``patches_cm`` (the kernel gradient as one matmul of channel-major patches stacked on a
  leading axis, ``(kh·kw·Cin, N) @ (N, Cout)``),
  ``taps_pad`` (the input gradient as 9 ``dy @ k[i, j]ᵀ`` matmuls, zero-padded and summed);
* with ``--torch``, the same pieces in PyTorch (oneDNN, one thread, ``NCHW``);
* with ``--steps``, whole training steps (forward, loss, gradients, Adam) of a hand-written
  JAX version of the workload with the reference convolutions against the same step with one
  piece replaced (through ``jax.custom_jvp`` / ``jax.custom_vjp``): conv1's kernel gradient
  from patches, conv2's forward by Winograd, conv2's input gradient by ``taps_pad``.

None of the alternatives is faster in the whole step on this machine (benchmarks/README.md,
"CPU kernels and per-call overhead"), so axon keeps ``lax.conv_general_dilated`` everywhere.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.custom_derivatives import SymbolicZero

from axon.layers import conv as axon_conv
from axon.layers import max_pool

BATCH = 32
CONV1 = ((BATCH, 28, 28, 1), (3, 3, 1, 32))
CONV2 = ((BATCH, 26, 26, 32), (3, 3, 32, 64))
DN = ("NHWC", "HWIO", "NHWC")


def reference(x: jax.Array, k: jax.Array) -> jax.Array:
    """A stride-1 ``VALID`` convolution as axon computes it."""
    return axon_conv(x, k)


def _lax(x: jax.Array, k: jax.Array) -> jax.Array:
    return lax.conv_general_dilated(x, k, (1, 1), "VALID", dimension_numbers=DN)


def _shifted(x: jax.Array, kh: int, kw: int, h: int, w: int) -> list[jax.Array]:
    return [x[:, i:i + h, j:j + w, :] for i in range(kh) for j in range(kw)]


def im2col(x: jax.Array, k: jax.Array) -> jax.Array:
    kh, kw, ci, co = k.shape
    h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    return jnp.concatenate(_shifted(x, kh, kw, h, w), -1) @ k.reshape(kh * kw * ci, co)


def taps(x: jax.Array, k: jax.Array) -> jax.Array:
    kh, kw, _, _ = k.shape
    h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    parts = [s @ k[i // kw, i % kw] for i, s in enumerate(_shifted(x, kh, kw, h, w))]
    return functools.reduce(jnp.add, parts)


def _winograd_rows(s: jax.Array, axis: int, n: int) -> list[jax.Array]:
    d = [lax.slice_in_dim(s, o, o + 2 * (n - 1) + 1, 2, axis) for o in range(4)]
    return [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]


def winograd(x: jax.Array, k: jax.Array) -> jax.Array:
    """Winograd F(2x2, 3x3) for a 3x3 stride-1 ``VALID`` convolution with even output sizes."""
    b, h, w, c = x.shape
    o = k.shape[-1]
    th, tw = (h - 2) // 2, (w - 2) // 2
    v = jnp.stack([t for r in _winograd_rows(x, 1, th) for t in _winograd_rows(r, 2, tw)])
    g = jnp.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], k.dtype)
    u = jnp.einsum("ai,ijco,bj->abco", g, k, g).reshape(16, c, o)
    m = jnp.einsum("tnc,tco->tno", v.reshape(16, b * th * tw, c), u).reshape(4, 4, b, th, tw, o)
    rows = (m[0] + m[1] + m[2], m[1] - m[2] - m[3])
    y = jnp.stack([jnp.stack([r[0] + r[1] + r[2], r[1] - r[2] - r[3]], axis=3) for r in rows], axis=2)
    return y.reshape(b, 2 * th, 2 * tw, o)


def kernel_grad_reference(x: jax.Array, dy: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return jax.vjp(lambda k: reference(x, k), jnp.zeros(shape, x.dtype))[1](dy)[0]


def kernel_grad_patches_cm(x: jax.Array, dy: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    kh, kw, ci, co = shape
    xt = jnp.moveaxis(x, -1, 0)  # (C, B, H, W): each patch row is a contiguous copy
    h, w = dy.shape[1], dy.shape[2]
    p = jnp.stack([xt[:, :, i:i + h, j:j + w] for i in range(kh) for j in range(kw)])
    return (p.reshape(kh * kw * ci, -1) @ dy.reshape(-1, co)).reshape(shape)


def kernel_grad_taps(x: jax.Array, dy: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    kh, kw, _, _ = shape
    h, w = dy.shape[1], dy.shape[2]
    parts = [jnp.einsum("bhwc,bhwo->co", s, dy) for s in _shifted(x, kh, kw, h, w)]
    return jnp.stack(parts).reshape(shape)


def input_grad_reference(k: jax.Array, dy: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return jax.vjp(lambda x: reference(x, k), jnp.zeros(shape, dy.dtype))[1](dy)[0]


def input_grad_taps_pad(k: jax.Array, dy: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    kh, kw, _, _ = k.shape
    parts = [jnp.pad(dy @ k[i, j].T, ((0, 0), (i, kh - 1 - i), (j, kw - 1 - j), (0, 0)))
             for i in range(kh) for j in range(kw)]
    return functools.reduce(jnp.add, parts)


def _interleave(fns: dict[str, Callable[[], Any]], rounds: int, calls: int) -> dict[str, float]:
    for f in fns.values():
        jax.block_until_ready(f())
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            t = time.process_time()
            for _ in range(calls):
                out = f()
            jax.block_until_ready(out)
            times[name].append((time.process_time() - t) / calls * 1e3)
    return {name: float(np.median(v)) for name, v in times.items()}


def _check(got: jax.Array, want: jax.Array, what: str) -> None:
    scale = float(jnp.abs(want).max())
    err = float(jnp.abs(got - want).max())
    if err > 1e-5 * max(scale, 1.0) * 10:
        raise AssertionError(f"{what}: max error {err} at scale {scale}")


def _torch_pieces(arrays: dict[str, np.ndarray]) -> dict[str, Callable[[], Any]]:
    torch = __import__("torch")
    torch.set_num_threads(1)
    f = torch.nn.functional

    def nchw(a: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))

    def oihw(a: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(a.transpose(3, 2, 0, 1)))

    def backward(dy: Any, x: Any, k: Any, mask: list[bool]) -> Callable[[], Any]:
        return lambda: torch.ops.aten.convolution_backward(
            dy, x, k, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask)

    x1, k1, dy1 = nchw(arrays["x1"]), oihw(arrays["k1"]), nchw(arrays["dy1"])
    x2, k2, dy2 = nchw(arrays["x2"]), oihw(arrays["k2"]), nchw(arrays["dy2"])
    h, w, dh = (torch.from_numpy(arrays[n]) for n in ("h", "w", "dh"))
    return {
        "conv1 forward": lambda: f.conv2d(x1, k1),
        "conv1 kernel grad": backward(dy1, x1, k1, [False, True, False]),
        "conv2 forward": lambda: f.conv2d(x2, k2),
        "conv2 kernel grad": backward(dy2, x2, k2, [False, True, False]),
        "conv2 input grad": backward(dy2, x2, k2, [True, False, False]),
        "dense forward": lambda: h @ w,
        "dense kernel grad": lambda: h.T @ dh,
        "dense input grad": lambda: dh @ w.T,
    }


def pieces(rounds: int, calls: int, with_torch: bool) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(0)

    def normal(shape: tuple[int, ...]) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    a = {"x1": normal(CONV1[0]), "k1": normal(CONV1[1]) * 0.3, "dy1": normal((BATCH, 26, 26, 32)),
         "x2": normal(CONV2[0]), "k2": normal(CONV2[1]) * 0.06, "dy2": normal((BATCH, 24, 24, 64)),
         "h": normal((BATCH, 9216)), "w": normal((9216, 128)) * 0.01, "dh": normal((BATCH, 128))}
    j = {n: jnp.asarray(v) for n, v in a.items()}
    s1, s2 = CONV1[1], CONV2[1]
    candidates: dict[str, dict[str, Callable[[], Any]]] = {
        "conv1 forward": {
            "xla": functools.partial(jax.jit(reference), j["x1"], j["k1"]),
            "im2col": functools.partial(jax.jit(im2col), j["x1"], j["k1"]),
            "taps": functools.partial(jax.jit(taps), j["x1"], j["k1"]),
        },
        "conv1 kernel grad": {
            "xla": functools.partial(jax.jit(kernel_grad_reference, static_argnums=2), j["x1"], j["dy1"], s1),
            "patches_cm": functools.partial(jax.jit(kernel_grad_patches_cm, static_argnums=2), j["x1"], j["dy1"], s1),
        },
        "conv2 forward": {
            "xla": functools.partial(jax.jit(reference), j["x2"], j["k2"]),
            "im2col": functools.partial(jax.jit(im2col), j["x2"], j["k2"]),
            "taps": functools.partial(jax.jit(taps), j["x2"], j["k2"]),
            "winograd": functools.partial(jax.jit(winograd), j["x2"], j["k2"]),
        },
        "conv2 kernel grad": {
            "xla": functools.partial(jax.jit(kernel_grad_reference, static_argnums=2), j["x2"], j["dy2"], s2),
            "patches_cm": functools.partial(jax.jit(kernel_grad_patches_cm, static_argnums=2), j["x2"], j["dy2"], s2),
            "taps": functools.partial(jax.jit(kernel_grad_taps, static_argnums=2), j["x2"], j["dy2"], s2),
        },
        "conv2 input grad": {
            "xla": functools.partial(jax.jit(input_grad_reference, static_argnums=2), j["k2"], j["dy2"], CONV2[0]),
            "taps_pad": functools.partial(jax.jit(input_grad_taps_pad, static_argnums=2), j["k2"], j["dy2"], CONV2[0]),
        },
        "dense forward": {"xla": functools.partial(jax.jit(jnp.matmul), j["h"], j["w"])},
        "dense kernel grad": {"xla": functools.partial(jax.jit(lambda h, d: h.T @ d), j["h"], j["dh"])},
        "dense input grad": {"xla": functools.partial(jax.jit(lambda w, d: d @ w.T), j["w"], j["dh"])},
    }
    for piece, fns in candidates.items():
        want = fns["xla"]()
        for name, f in fns.items():
            _check(f(), want, f"{piece} {name}")
    if with_torch:
        for piece, f in _torch_pieces(a).items():
            candidates[piece]["torch"] = f
    print(f"pieces: CPU ms per call, median of {rounds} interleaved rounds x {calls} calls")
    results = {}
    for piece, fns in candidates.items():
        results[piece] = result = _interleave(fns, rounds, calls)
        print(f"  {piece:18s} " + "  ".join(f"{n} {v:6.2f}" for n, v in result.items()))
    return results


# --- whole training steps --------------------------------------------------------------------


def _jvp_with(primal: Callable, tangent_x: Callable, tangent_k: Callable) -> Callable:
    """A convolution whose primal and whose tangents (linear in dx / dk) are given separately,
    so reverse mode transposes the tangent formulations."""

    @jax.custom_jvp
    def f(x, k):
        return primal(x, k)

    def rule(primals, tangents):
        x, k = primals
        dx, dk = tangents
        parts = []
        if not isinstance(dx, SymbolicZero):
            parts.append(tangent_x(dx, k))
        if not isinstance(dk, SymbolicZero):
            parts.append(tangent_k(x, dk))
        return primal(x, k), functools.reduce(jnp.add, parts)

    f.defjvp(rule, symbolic_zeros=True)
    return f


def _patches_tangent(x: jax.Array, dk: jax.Array) -> jax.Array:
    # conv(x, dk) as (N, kh·kw·Cin) patches @ dk: transposed, it is patchesᵀ @ dy
    kh, kw, ci, co = dk.shape
    h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    xt = jnp.moveaxis(x, -1, 0)
    p = jnp.stack([xt[:, :, i:i + h, j:j + w] for i in range(kh) for j in range(kw)]).reshape(kh * kw * ci, -1)
    return jnp.einsum("pn,po->no", p, dk.reshape(kh * kw * ci, co)).reshape(x.shape[0], h, w, co)


def _input_grad_taps_conv() -> Callable:
    @jax.custom_vjp
    def f(x, k):
        return _lax(x, k)

    def fwd(x, k):
        return _lax(x, k), (x, k)

    def bwd(res, dy):
        x, k = res
        return input_grad_taps_pad(k, dy, x.shape), jax.vjp(lambda k: _lax(x, k), k)[1](dy)[0]

    f.defvjp(fwd, bwd)
    return f


def _step(conv1: Callable, conv2: Callable) -> Callable:
    tx = optax.adam(1e-3)

    def apply(p, x):
        h = jax.nn.relu(conv1(x, p["k1"]) + p["b1"])
        h = jax.nn.relu(conv2(h, p["k2"]) + p["b2"])
        h = max_pool(h, kernel_size=2).reshape(x.shape[0], -1)
        h = jax.nn.relu(h @ p["w3"] + p["b3"])
        return h @ p["w4"] + p["b4"]

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(p, opt, x, y):
        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(apply(p, x), y).mean()

        value, grads = jax.value_and_grad(loss)(p)
        updates, opt = tx.update(grads, opt, p)
        return optax.apply_updates(p, updates), opt, value

    return step, tx


def steps(rounds: int, calls: int) -> dict[str, float]:
    rng = np.random.default_rng(1)

    def normal(shape: tuple[int, ...], scale: float) -> jax.Array:
        return jnp.asarray(rng.standard_normal(shape, dtype=np.float32) * scale)

    params = {"k1": normal((3, 3, 1, 32), 0.3), "b1": jnp.zeros(32), "k2": normal((3, 3, 32, 64), 0.06),
              "b2": jnp.zeros(64), "w3": normal((9216, 128), 0.01), "b3": jnp.zeros(128),
              "w4": normal((128, 10), 0.1), "b4": jnp.zeros(10)}
    x = normal((BATCH, 28, 28, 1), 1.0)
    y = jnp.asarray(rng.integers(0, 10, BATCH))
    variants = {
        "xla": _step(_lax, _lax),
        "conv1_kgrad_patches": _step(_jvp_with(_lax, _lax, _patches_tangent), _lax),
        "conv2_winograd_forward": _step(_lax, _jvp_with(winograd, _lax, _lax)),
        "conv2_igrad_taps_pad": _step(_lax, _input_grad_taps_conv()),
    }
    state: dict[str, tuple[Any, Any]] = {}
    losses = {}
    for name, (step, tx) in variants.items():
        p = jax.tree.map(jnp.copy, params)
        p, opt, value = step(p, tx.init(p), x, y)
        state[name] = (p, opt)
        losses[name] = float(value)
    ref = losses["xla"]
    for name, v in losses.items():
        if abs(v - ref) > 1e-5 * max(abs(ref), 1.0):
            raise AssertionError(f"{name}: first loss {v} != {ref}")

    def runner(name: str) -> Callable[[], Any]:
        step = variants[name][0]

        def run():
            p, opt = state[name]
            p, opt, value = step(p, opt, x, y)
            state[name] = (p, opt)
            return value

        return run

    result = _interleave({n: runner(n) for n in variants}, rounds, calls)
    print(f"training steps: CPU ms per step, median of {rounds} interleaved rounds x {calls} steps")
    for name, v in result.items():
        print(f"  {name:24s} {v:6.2f}  ({v / result['xla']:.3f}x the xla step)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--torch", action="store_true", help="also time the pieces in PyTorch (one thread)")
    parser.add_argument("--steps", action="store_true", help="also time whole training steps")
    parser.add_argument("--json", type=Path, help="also write the medians (CPU ms) to this file")
    args = parser.parse_args()
    out: dict[str, Any] = {"rounds": args.rounds, "calls": args.calls, "jax": jax.__version__,
                           "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
    out["pieces_cpu_ms"] = pieces(args.rounds, args.calls, args.torch)
    if args.steps:
        out["steps_cpu_ms"] = steps(args.rounds, args.calls)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
