"""The GPU benchmark of issue 17, item 6, in one command with a wall-clock budget.

    python -m benchmarks.gpu [--budget-s 840] [--smoke] [--json out.json] [--batch B]

Stages (each starts only if the budget has time left for it; a skipped stage says so):

1. the device (``jax.devices()``, its kind) and the versions of Python, jax, jaxlib, flax,
   optax and torch;
2. the full comparison of :mod:`benchmarks.run` (not ``--quick``) for mlp, cnn, lstm,
   transformer and resnet18: axon (trainer, steps-per-execution, build) against
   hand-written JAX, Flax (Linen, NNX) and PyTorch. Each workload runs as its own
   ``python -m benchmarks.run`` subprocess with a share of the stage's budget as its
   timeout. PyTorch is included only when ``torch.cuda.is_available()``;
3. a bf16 GPT-style transformer at realistic size (12 layers, width 768, 12 heads,
   sequence 1024, MLP 4x, **causal**, vocabulary 50304, no position embedding, untied
   output head) built from public axon layers (``axon.embedding``, ``axon.layer_norm``,
   ``axon.multi_head_attention``, ``axon.dense``) under the mixed-precision policy
   params f32 / compute bf16 / output f32 (layer norms left in f32), trained with
   ``axon.loop.steps.train_step`` (the step ``axon.loop.trainer`` compiles) and adam;
   then the same model, hand-written in JAX with optax, for the ratio. Reports step time,
   tokens/s, achieved TFLOP/s and the model FLOPs utilization (MFU).

MFU: model FLOPs per step = ``(6 * N + 12 * n_layer * seq * d_model) * tokens`` where
``tokens = batch * seq`` and ``N`` counts the parameters that take part in matrix
multiplies or elementwise work: every parameter except the input embedding table (a
lookup, no FLOPs), the output head included (PaLM, appendix B; nanoGPT's ``estimate_mfu``).
The attention term counts the full ``seq x seq`` score and value products even though the
model is causal (the standard convention; the work actually needed is about half).
MFU = model FLOPs per second / the device's peak dense bf16 FLOP/s from ``PEAK_BF16``
(matched on ``device_kind``); an unknown device reports achieved TFLOP/s only.

Attention: ``axon.multi_head_attention(..., implementation="cudnn")`` when axon's
``multi_head_attention`` accepts ``implementation=`` and cuDNN attention runs on this
device (probed with :func:`jax.nn.dot_product_attention`); otherwise ``"xla"`` (or axon's
default formulation when the option does not exist), said in the output.

``--smoke`` runs everything at tiny sizes (CPU is fine) in about two minutes, to check
the script without a GPU.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import inspect
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: peak dense bf16 FLOP/s by device kind substring (first match wins; lower-case)
PEAK_BF16: list[tuple[str, float]] = [
    ("h100 pcie", 756e12),
    ("h100 nvl", 835e12),
    ("h100", 989e12),  # SXM (e.g. "NVIDIA H100 80GB HBM3")
    ("h200", 989e12),  # the H100 SXM's compute, more memory
    ("gh200", 989e12),
    ("a100", 312e12),
    ("l4", 121e12),
]

WORKLOADS = ["mlp", "cnn", "lstm", "transformer", "resnet18"]
STAGE2_SHARE = 0.55  # of the whole budget, for the benchmarks.run comparison
MFU_TARGET = 0.45
RATIO_TARGET = 0.97


def peak_bf16(kind: str) -> float | None:
    """The peak dense bf16 FLOP/s of a device kind, or ``None`` when unknown."""
    k = kind.lower()
    for key, flops in PEAK_BF16:
        if key in k:
            return flops
    return None


class Budget:
    """Wall-clock budget: what is left, and whether a stage may start."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def allows(self, stage: str, need: float) -> bool:
        if self.left() >= need:
            return True
        print(f"\n[budget] skipping {stage}: {self.left():.0f} s left of {self.seconds:.0f} s, "
              f"it needs about {need:.0f} s", flush=True)
        return False


def say(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------------
# stage 1


def environment() -> dict[str, Any]:
    """The device and the versions."""
    import jax

    devices = jax.devices()
    env: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind,
        "peak_bf16_tflops": (p / 1e12) if (p := peak_bf16(devices[0].device_kind)) else None,
    }
    for mod in ("jax", "jaxlib", "flax", "optax", "torch"):
        if importlib.util.find_spec(mod) is None:
            env[mod] = None
            continue
        env[mod] = getattr(importlib.import_module(mod), "__version__", "?")
    import axon

    env["axon"] = str(Path(axon.__file__).parent)
    return env


def torch_cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


# --------------------------------------------------------------------------------------
# stage 2


def run_comparison(budget: Budget, smoke: bool, out_dir: Path) -> dict[str, Any]:
    """``benchmarks.run`` per workload, each in a subprocess with a share of the budget."""
    from benchmarks.workloads import WORKLOADS as KNOWN

    names = [n for n in WORKLOADS if n in KNOWN]
    frameworks = ["axon", "jax", "flax"]
    notes = []
    if torch_cuda():
        frameworks.append("torch")
        notes.append("torch included on CUDA (torch.cuda is available; TF32 matmuls as JAX's default, "
                     "cudnn.benchmark on)")
    else:
        notes.append("torch skipped: torch.cuda is not available (or torch is not installed)")
    extra: list[str] = []
    if smoke:
        names = ["mlp"]
        frameworks = ["jax", "axon_trainer", "flax_linen"]
        extra = ["--quick", "--windows", "1"]
    for n in notes:
        say(f"  {n}")
    stage_end = budget.elapsed() + (budget.seconds * STAGE2_SHARE if not smoke else budget.left() * 0.5)
    results: dict[str, Any] = {"notes": notes, "workloads": {}}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for i, name in enumerate(names):
        share = (stage_end - budget.elapsed()) / (len(names) - i)
        if share < 20:
            say(f"[budget] skipping workload {name}: {share:.0f} s left for it")
            results["workloads"][name] = {"skip": "out of budget"}
            continue
        js = out_dir / f"run-{name}.json"
        cmd = [sys.executable, "-m", "benchmarks.run", "--workloads", name, "--frameworks", ",".join(frameworks),
               "--json", str(js), "--log-dir", str(out_dir / "logs"), *extra]
        say(f"\n$ {' '.join(cmd[1:])}   (timeout {share:.0f} s)")
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, timeout=share, capture_output=True, text=True)
        except subprocess.TimeoutExpired:
            say(f"  {name}: timed out after {share:.0f} s (budget); skipped")
            results["workloads"][name] = {"skip": f"timed out after {share:.0f} s"}
            continue
        say(proc.stdout.strip())
        if proc.returncode != 0:
            say(proc.stderr[-3000:])
            results["workloads"][name] = {"error": proc.returncode}
            continue
        payload = json.loads(js.read_text())
        results["workloads"][name] = {"wall_s": round(time.perf_counter() - t0, 1),
                                      "summary": payload["workloads"][name]["summary"],
                                      "targets": payload["targets"]}
    return results


# --------------------------------------------------------------------------------------
# stage 3: the bf16 transformer


def gpt_config(smoke: bool, batch: int | None) -> dict[str, int]:
    if smoke:
        cfg = {"layers": 2, "width": 64, "heads": 4, "seq": 64, "vocab": 256, "batch": 2, "steps": 3, "warmup": 1}
    else:
        cfg = {"layers": 12, "width": 768, "heads": 12, "seq": 1024, "vocab": 50304, "batch": 16, "steps": 20,
               "warmup": 3}
    if batch:
        cfg["batch"] = batch
    return cfg


def model_params(cfg: dict[str, int]) -> int:
    """Parameters that count in the MFU formula (all but the input embedding table)."""
    d, L, v = cfg["width"], cfg["layers"], cfg["vocab"]
    attention = 4 * d * d + 4 * d  # q, k, v, output kernels and biases
    mlp = 8 * d * d + 5 * d  # d -> 4d -> d, with biases
    norms = 4 * d  # two layer norms
    return L * (attention + mlp + norms) + 2 * d + d * v + v  # final norm, output head


def flops_per_step(cfg: dict[str, int]) -> float:
    tokens = cfg["batch"] * cfg["seq"]
    return (6 * model_params(cfg) + 12 * cfg["layers"] * cfg["seq"] * cfg["width"]) * tokens


def attention_implementation() -> tuple[str | None, str]:
    """The implementation to ask for, and why."""
    import axon

    if "implementation" not in inspect.signature(axon.multi_head_attention).parameters:
        return None, ("axon.multi_head_attention has no implementation= option in this axon; "
                      "using its default formulation (einsum/softmax/einsum)")
    import jax
    import jax.numpy as jnp

    try:
        q = jnp.ones((1, 128, 2, 64), jnp.bfloat16)
        jax.block_until_ready(jax.nn.dot_product_attention(q, q, q, is_causal=True, implementation="cudnn"))
        return "cudnn", "cuDNN attention (probed with jax.nn.dot_product_attention)"
    except Exception as e:
        return "xla", f"cuDNN attention unavailable here ({type(e).__name__}: {str(e).splitlines()[0][:120]}); using 'xla'"


def axon_gpt(cfg: dict[str, int], implementation: str | None) -> Any:
    import axon
    from axon import mixed_precision as mp

    kw = {} if implementation is None else {"implementation": implementation}
    d = cfg["width"]
    h = axon.input("tokens", shape=(None, cfg["seq"])).pipe(axon.embedding, cfg["vocab"], d)
    for _ in range(cfg["layers"]):
        y = axon.layer_norm(h)
        h = axon.add(h, axon.multi_head_attention(y, num_heads=cfg["heads"], causal=True, **kw))
        y = axon.layer_norm(h).pipe(axon.dense, 4 * d, activation="gelu").pipe(axon.dense, d)
        h = axon.add(h, y)
    model = axon.layer_norm(h).pipe(axon.dense, cfg["vocab"])
    policy = mp.create_policy(params="f32", compute="bf16", output="f32")
    return mp.apply_policy(model, policy, except_=["layer_norm"])


def token_loss(y_true: Any, logits: Any) -> Any:
    import axon

    return axon.losses.categorical_cross_entropy(y_true, logits, from_logits=True, sparse=True, reduction="mean")


def time_steps(step: Any, state: Any, batch: Any, warmup: int, steps: int) -> tuple[Any, float, float]:
    """Run ``warmup`` then ``steps`` steps; return the state, first-step and per-step seconds."""
    import jax

    t0 = time.perf_counter()
    state = step(state, batch)
    jax.block_until_ready(state)
    first = time.perf_counter() - t0
    for _ in range(warmup - 1):
        state = step(state, batch)
    jax.block_until_ready(state)
    t0 = time.perf_counter()
    for _ in range(steps):
        state = step(state, batch)
    jax.block_until_ready(state)
    return state, first, (time.perf_counter() - t0) / steps


def bench_axon(cfg: dict[str, int], implementation: str | None, batch: Any) -> dict[str, Any]:
    import jax

    import axon
    from axon.loop.steps import train_step

    init_fn, step_fn = train_step(axon_gpt(cfg, implementation), token_loss, axon.optimizers.adam(3e-4))
    state = init_fn(batch)
    step = jax.jit(step_fn, donate_argnums=0)
    state, first, per_step = time_steps(step, state, batch, cfg["warmup"], cfg["steps"])
    return {"first_step_s": first, "step_s": per_step, "loss": float(state["loss"]) if "loss" in state else None}


def jax_gpt_step(cfg: dict[str, int], implementation: str | None) -> tuple[Any, Any]:
    """``(params, opt_state), step`` of the same model written by hand in JAX + optax."""
    import jax
    import jax.numpy as jnp
    import optax

    d, hds, v, L = cfg["width"], cfg["heads"], cfg["vocab"], cfg["layers"]
    bf = jnp.bfloat16
    keys = iter(jax.random.split(jax.random.key(0), 4 + 8 * L))

    def glorot(shape: tuple[int, ...], fan_in: int, fan_out: int) -> Any:
        lim = math.sqrt(6.0 / (fan_in + fan_out))
        return jax.random.uniform(next(keys), shape, jnp.float32, -lim, lim)

    def ln_params() -> dict[str, Any]:
        return {"g": jnp.ones((d,)), "b": jnp.zeros((d,))}

    params = {
        "embed": jax.random.uniform(next(keys), (v, d), jnp.float32, -0.05, 0.05),
        "blocks": [{
            "ln1": ln_params(), "ln2": ln_params(),
            "qkv": glorot((d, 3, hds, d // hds), d, d), "qkv_b": jnp.zeros((3, hds, d // hds)),
            "o": glorot((hds, d // hds, d), d, d), "o_b": jnp.zeros((d,)),
            "w1": glorot((d, 4 * d), d, 4 * d), "b1": jnp.zeros((4 * d,)),
            "w2": glorot((4 * d, d), 4 * d, d), "b2": jnp.zeros((d,)),
        } for _ in range(L)],
        "ln_f": ln_params(),
        "head": glorot((d, v), d, v), "head_b": jnp.zeros((v,)),
    }

    def layer_norm(x: Any, p: dict[str, Any]) -> Any:
        x = x.astype(jnp.float32)
        mu = jnp.mean(x, -1, keepdims=True)
        var = jnp.mean(jnp.square(x - mu), -1, keepdims=True)
        return (x - mu) * jax.lax.rsqrt(var + 1e-5) * p["g"] + p["b"]

    def forward(params: dict[str, Any], tokens: Any) -> Any:
        h = params["embed"][tokens]
        for p in params["blocks"]:
            y = layer_norm(h, p["ln1"]).astype(bf)
            qkv = jnp.einsum("btd,dkhe->kbthe", y, p["qkv"].astype(bf)) + p["qkv_b"].astype(bf)[:, None, None]
            att = jax.nn.dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=True,
                                               implementation=implementation)
            h = h + (jnp.einsum("bthe,hed->btd", att, p["o"].astype(bf)) + p["o_b"].astype(bf)).astype(jnp.float32)
            y = layer_norm(h, p["ln2"]).astype(bf)
            y = jax.nn.gelu(y @ p["w1"].astype(bf) + p["b1"].astype(bf))
            h = h + (y @ p["w2"].astype(bf) + p["b2"].astype(bf)).astype(jnp.float32)
        y = layer_norm(h, params["ln_f"]).astype(bf)
        return (y @ params["head"].astype(bf) + params["head_b"].astype(bf)).astype(jnp.float32)

    opt = optax.adam(3e-4)

    def loss(params: dict[str, Any], tokens: Any, labels: Any) -> Any:
        return optax.softmax_cross_entropy_with_integer_labels(forward(params, tokens), labels).mean()

    @functools.partial(jax.jit, donate_argnums=0)
    def step(state: tuple[Any, Any, Any], batch: tuple[Any, Any]) -> tuple[Any, Any, Any]:
        params, opt_state, _ = state
        value, grads = jax.value_and_grad(loss)(params, *batch)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return (params, opt.init(params), jnp.zeros(())), step


def bench_jax(cfg: dict[str, int], implementation: str | None, batch: Any) -> dict[str, Any]:
    # axon without the option computes attention as XLA does: compare like with like
    state, step = jax_gpt_step(cfg, implementation or "xla")
    state, first, per_step = time_steps(step, state, batch, cfg["warmup"], cfg["steps"])
    return {"first_step_s": first, "step_s": per_step, "loss": float(state[2])}


def _oom(e: Exception) -> bool:
    return "RESOURCE_EXHAUSTED" in str(e) or "out of memory" in str(e).lower()


def run_transformer(budget: Budget, smoke: bool, batch_override: int | None, env: dict[str, Any]) -> dict[str, Any]:
    import jax.numpy as jnp
    import numpy as np

    cfg = gpt_config(smoke, batch_override)
    implementation, why = attention_implementation()
    say(f"  attention: {why}")
    say(f"  model: {cfg['layers']} layers, width {cfg['width']}, {cfg['heads']} heads, seq {cfg['seq']}, "
        f"vocab {cfg['vocab']}, causal, MLP 4x; N = {model_params(cfg) / 1e6:.1f} M (without the input embedding)")
    peak = peak_bf16(env["device_kind"])
    out: dict[str, Any] = {"config": cfg, "attention": implementation, "attention_note": why,
                           "params_counted": model_params(cfg)}
    rng = np.random.default_rng(0)

    def make_batch() -> tuple[Any, Any]:
        toks = rng.integers(0, cfg["vocab"], size=(cfg["batch"], cfg["seq"] + 1), dtype=np.int32)
        return jnp.asarray(toks[:, :-1]), jnp.asarray(toks[:, 1:])

    def report(name: str, r: dict[str, Any]) -> None:
        flops = flops_per_step(cfg)
        r["tokens_per_s"] = cfg["batch"] * cfg["seq"] / r["step_s"]
        r["tflops"] = flops / r["step_s"] / 1e12
        r["mfu"] = (flops / r["step_s"]) / peak if peak else None
        mfu = f", MFU {100 * r['mfu']:.1f}%" if r["mfu"] is not None else ", MFU — (unknown device peak)"
        say(f"  {name:5s} batch {cfg['batch']}: step {1000 * r['step_s']:.1f} ms, {r['tokens_per_s']:.0f} tokens/s, "
            f"{r['tflops']:.1f} TFLOP/s{mfu}; first step {r['first_step_s']:.1f} s; loss {r['loss']}")

    while True:  # halve the batch until it fits
        batch = make_batch()
        try:
            out["axon"] = bench_axon(cfg, implementation, batch)
            break
        except Exception as e:
            if not _oom(e) or cfg["batch"] == 1:
                raise
            say(f"  batch {cfg['batch']} does not fit; halving")
            cfg["batch"] //= 2
    report("axon", out["axon"])
    need = 1.5 * out["axon"]["first_step_s"] + (cfg["warmup"] + cfg["steps"]) * out["axon"]["step_s"] + 10
    if budget.allows("the hand-written JAX transformer", need):
        try:
            out["jax"] = bench_jax(cfg, implementation, batch)
            report("jax", out["jax"])
            out["axon_vs_jax"] = out["jax"]["step_s"] / out["axon"]["step_s"]
            say(f"  axon / jax throughput: {out['axon_vs_jax']:.3f} (target ≥ {RATIO_TARGET})")
        except Exception as e:
            out["jax"] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
            say(f"  jax reference failed: {out['jax']['error']}")
    if out["axon"].get("mfu") is not None:
        say(f"  MFU target ≥ {100 * MFU_TARGET:.0f}% on an H100: "
            f"{'holds' if out['axon']['mfu'] >= MFU_TARGET else 'does not hold'}")
    return out


# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-s", type=float, default=840.0, help="wall-clock budget in seconds (default 840)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script on a CPU")
    parser.add_argument("--json", type=Path, help="write every measurement to this file")
    parser.add_argument("--batch", type=int, default=None, help="the bf16 transformer's batch (default 16; halved on OOM)")
    args = parser.parse_args(argv)
    budget = Budget(args.budget_s)
    out_dir = Path(tempfile.mkdtemp(prefix="axon-gpu-bench-"))
    result: dict[str, Any] = {"smoke": args.smoke, "budget_s": args.budget_s}

    say("== 1. device and versions")
    result["environment"] = env = environment()
    for k, v in env.items():
        say(f"  {k}: {v}")
    if env["backend"] != "gpu" and not args.smoke:
        say("  note: no GPU backend; the figures below are not GPU figures")

    say("\n== 2. benchmarks.run comparison" + (" (smoke: mlp, --quick, 1 window)" if args.smoke else ""))
    # the bf16 transformer needs about 45% of the budget; the comparison may use the rest
    if budget.allows("the benchmarks.run comparison", 60 if not args.smoke else 10):
        result["comparison"] = run_comparison(budget, args.smoke, out_dir)
    else:
        result["comparison"] = {"skip": "out of budget"}

    say("\n== 3. bf16 transformer (axon vs hand-written JAX)")
    if budget.allows("the bf16 transformer", 90 if not args.smoke else 5):
        try:
            result["transformer"] = run_transformer(budget, args.smoke, args.batch, env)
        except Exception as e:
            result["transformer"] = {"error": f"{type(e).__name__}: {str(e)[:500]}"}
            say(f"  failed: {result['transformer']['error']}")
    else:
        result["transformer"] = {"skip": "out of budget"}

    result["wall_s"] = round(budget.elapsed(), 1)
    say(f"\ndone in {result['wall_s']} s of {args.budget_s:.0f} s; worker logs under {out_dir}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
