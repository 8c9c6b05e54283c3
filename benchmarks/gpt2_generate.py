"""GPT-2 greedy generation, tokens/s: axon (with and without the key/value cache, the compiled
``lax.fori_loop`` and the per-token Python loop) against Hugging Face ``transformers`` in PyTorch
eager mode (with and without its cache), batch 1, on whatever device JAX and torch use (CPU here).

Both run the same weights (a randomly initialised ``GPT2LMHeadModel`` loaded into
``axon.models.gpt2`` with ``axon.pretrained.load_weights``) and the generated tokens are
checked to be equal. Each implementation runs ``--rounds`` times, interleaved; the table gives
the median tokens/s over rounds by wall clock and by the process's CPU time (steadier on a
shared machine), the ratio to ``transformers`` with its cache, and axon's first call
(tracing + compilation + one run). Not a test: nothing is asserted.

    python -m benchmarks.gpt2_generate                      # n_embd 128, 4 layers, 16 + 64 tokens
    python -m benchmarks.gpt2_generate --quick              # smaller and fewer rounds
    python -m benchmarks.gpt2_generate --torch-threads 1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

import axon
import axon.models
import axon.pretrained


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller model, fewer tokens and rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--new-tokens", type=int, default=None)
    parser.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--json", default=None, help="write the figures to this file")
    args = parser.parse_args(argv)

    import torch
    import transformers

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    size = dict(vocab_size=512, n_positions=128, n_embd=64, n_layer=2, n_head=4) if args.quick else \
        dict(vocab_size=1024, n_positions=256, n_embd=128, n_layer=4, n_head=4)
    prompt_len, new = 16, args.new_tokens or (32 if args.quick else 64)
    rounds = args.rounds or (3 if args.quick else 5)

    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**size, bos_token_id=None, eos_token_id=None)).eval()
    config = axon.models.GPT2Config(**size)
    model = axon.models.gpt2(config)
    state = axon.pretrained.load_weights(model, {k: v.numpy() for k, v in hf.state_dict().items()},
                                         mapping=axon.models.gpt2_weight_map(),
                                         template={"input_ids": axon.template((1, prompt_len), "int32")})
    prompt = np.random.default_rng(0).integers(0, size["vocab_size"], (1, prompt_len))
    torch_prompt = torch.tensor(prompt)
    mask = torch.ones_like(torch_prompt)

    def torch_run(use_cache: bool) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            with torch.inference_mode():
                return hf.generate(torch_prompt, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                                   do_sample=False, use_cache=use_cache, pad_token_id=0).numpy()
        return run

    def axon_run(**opts: Any) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            return np.asarray(jax.block_until_ready(axon.models.generate(model, state, prompt, new, **opts)))
        return run

    impls: dict[str, Callable[[], np.ndarray]] = {
        "transformers (cache)": torch_run(True),
        "transformers (no cache)": torch_run(False),
        "axon (cache, fori_loop)": axon_run(),
        "axon (cache, python loop)": axon_run(loop="python"),
        "axon (no cache)": axon_run(use_cache=False),
    }
    first: dict[str, float] = {}
    outputs: dict[str, np.ndarray] = {}
    for name, run in impls.items():  # warm-up: compiles axon's functions, warms torch's allocator
        first[name], _, outputs[name] = _timed(run)
    reference = outputs["transformers (cache)"]
    agree = {name: bool(np.array_equal(out, reference)) for name, out in outputs.items()}
    walls: dict[str, list[float]] = {name: [] for name in impls}
    cpus: dict[str, list[float]] = {name: [] for name in impls}
    for _ in range(rounds):
        for name, run in impls.items():
            wall, cpu, _ = _timed(run)
            walls[name].append(new / wall)
            cpus[name].append(new / cpu)
    median = {name: statistics.median(v) for name, v in walls.items()}
    median_cpu = {name: statistics.median(v) for name, v in cpus.items()}
    base, base_cpu = median["transformers (cache)"], median_cpu["transformers (cache)"]

    print(f"GPT-2 {size}, batch 1, prompt {prompt_len} + {new} new tokens, greedy; {rounds} rounds; "
          f"jax {jax.__version__} on {jax.devices()[0].platform}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), transformers {transformers.__version__}")
    print("| implementation | tokens/s | × transformers (cache) | tokens/CPU-s | × (CPU) | first call s | same tokens |")
    print("|---|---|---|---|---|---|---|")
    for name in impls:
        print(f"| {name} | {median[name]:.0f} | {median[name] / base:.2f} | {median_cpu[name]:.0f} | "
              f"{median_cpu[name] / base_cpu:.2f} | {first[name]:.2f} | {agree[name]} |")
    result = {"config": size, "prompt": prompt_len, "new_tokens": new, "rounds": rounds,
              "tokens_per_s": walls, "tokens_per_cpu_s": cpus, "median": median, "median_cpu": median_cpu,
              "first_call_s": first, "same_tokens": agree}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
