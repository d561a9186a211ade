"""Target step time by tokens in the step, batch 1: T(n) and T(n) / T(1), small-batch kernel path vs the previous one.

Usage:  .venv/bin/python benchmarks/bench_step.py [--threads 2] [--context 128] [--rounds 40] [--kernels]

One target forward of one sequence with n tokens (n = 1 is a plain decode step, n = k + 1 a
verification step with k drafts) at a context of 128 tokens, on the embedded default model
(SmolLM2-135M-Instruct, GGUF Q4_1/Q8_0 blocks, CPU kernels), 2 threads. Two kernel paths:

  new   calls of 2-4 rows use ggml_linear's small-batch path (each weight block read and dequantised
        once for all rows); GGMLLinear.small_batch_rows = 4, the default
  old   every call of 2+ rows uses the tiled GEMM (dequantise 3 weight rows to a float scratch, then
        a register-tiled matmul): the path before the small-batch one; small_batch_rows = 0

Every (n, path) pair is timed once per round, in a freshly shuffled order, for --rounds rounds, so
machine noise (the machine may be shared) hits all of them alike. Printed per pair: median, 25-75%
range and minimum of the forward time; T(n)/T(1) and old/new as medians of the per-round ratios
(both forwards of a ratio come from the same round), with their 25-75% range. Goal (issue 25,
item 7): T(2)/T(1) <= 1.45 on the new path, and T(4), T(8), T(16) no slower than the old path.
It also checks that both paths give bit-identical logits.

--kernels adds the same comparison for each linear layer shape of the model alone (one
ggml_linear call, 1-16 rows), which is where the difference comes from.
The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time

import numpy as np
import torch

PATHS = {"new": 4, "old": 0}  # GGMLLinear.small_batch_rows


def quantiles(values: list[float]) -> tuple[float, float, float]:
    """(25%, median, 75%) of values."""
    q = np.percentile(values, [25, 50, 75])
    return float(q[0]), float(q[1]), float(q[2])


def time_once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_rounds(calls: dict, rounds: int, seed: int) -> dict:
    """{key: [seconds per round]} timing every call once per round in a shuffled order (after one warm-up each)."""
    for fn in calls.values():
        fn()
    rng, keys = random.Random(seed), list(calls)
    seconds = {key: [] for key in keys}
    for _ in range(rounds):
        rng.shuffle(keys)
        for key in keys:
            seconds[key].append(time_once(calls[key]))
    return seconds


def set_path(path: str) -> None:
    from specscope.engine.kernels.ggml import GGMLLinear

    GGMLLinear.small_batch_rows = PATHS[path]


def step_calls(model, tokens: list[int], context: int) -> dict:
    """{(n, path): one target forward of n tokens at `context`} for batch 1."""
    cache = model.new_cache(1, context + max(tokens))
    cache.set_length(0, context)
    rng = np.random.default_rng(0)
    chunks = {n: rng.integers(3, model.config.vocab_size, size=n) for n in tokens}

    def call(n, path):
        def fn():
            set_path(path)
            return model.forward_chunks(cache, [0], [chunks[n]])
        return fn

    return {(n, path): call(n, path) for n in tokens for path in PATHS}


def check_identical(calls: dict, tokens: list[int]) -> bool:
    same = True
    for n in tokens:
        new, old = calls[(n, "new")]().logits[0], calls[(n, "old")]().logits[0]
        same &= torch.equal(new, old)
    set_path("new")
    return bool(same)


def ratio_stats(num: list[float], den: list[float]) -> tuple[float, float, float]:
    return quantiles([a / b for a, b in zip(num, den)])


def report_steps(seconds: dict, tokens: list[int]) -> dict:
    print(f"{'n':>3} {'path':<4} {'median ms':>10} {'25-75% ms':>15} {'min ms':>8}   {'T(n)/T(1)':>9} {'25-75%':>11}"
          f"   {'old/new':>7} {'25-75%':>11}")
    table = {}
    for n in tokens:
        for path in PATHS:
            s = seconds[(n, path)]
            lo, med, hi = quantiles(s)
            rlo, rmed, rhi = ratio_stats(s, seconds[(1, path)])
            row = {"median_ms": 1e3 * med, "p25_ms": 1e3 * lo, "p75_ms": 1e3 * hi, "min_ms": 1e3 * min(s),
                   "ratio_to_1": rmed, "ratio_to_1_p25": rlo, "ratio_to_1_p75": rhi}
            line = (f"{n:>3} {path:<4} {1e3 * med:10.2f} {1e3 * lo:7.2f}-{1e3 * hi:<7.2f} {1e3 * min(s):8.2f}   "
                    f"{rmed:9.2f} {rlo:5.2f}-{rhi:<5.2f}")
            if path == "new":
                slo, smed, shi = ratio_stats(seconds[(n, "old")], s)
                row.update(old_over_new=smed, old_over_new_p25=slo, old_over_new_p75=shi)
                line += f"   {smed:7.2f} {slo:5.2f}-{shi:<5.2f}"
            table[f"{n}:{path}"] = row
            print(line)
    return table


def kernel_calls(model, rows: list[int]) -> tuple[dict, list[str]]:
    """{(layer, m, path): one ggml_linear call of m rows} for each distinct linear layer shape of the model."""
    from specscope.engine.kernels.build import cpu_ops

    ops, layers = cpu_ops(), {"qkv": model.layers[0].qkv, "o": model.layers[0].o,
                              "gate_up": model.layers[0].gate_up, "down": model.layers[0].down, "lm_head": model.lm_head}
    gen = torch.Generator().manual_seed(0)
    calls = {}
    for name, lin in layers.items():
        for m in rows:
            x = torch.randn(m, lin.in_features, generator=gen)
            for path, small in PATHS.items():
                calls[(name, m, path)] = (lambda x=x, lin=lin, small=small:
                                          ops.ggml_linear(x, lin.blocks, lin.qtype, lin.out_features, small))
    return calls, list(layers)


def report_kernels(seconds: dict, names: list[str], rows: list[int]) -> dict:
    print(f"{'layer':<8} {'rows':>4} {'new us':>9} {'old us':>9} {'old/new':>7} {'25-75%':>11}   "
          f"{'new T(m)/T(1)':>13} {'old T(m)/T(1)':>13}")
    table = {}
    for name in names:
        for m in rows:
            new, old = seconds[(name, m, "new")], seconds[(name, m, "old")]
            slo, smed, shi = ratio_stats(old, new)
            rn = ratio_stats(new, seconds[(name, 1, "new")])[1]
            ro = ratio_stats(old, seconds[(name, 1, "old")])[1]
            table[f"{name}:{m}"] = {"new_us": 1e6 * statistics.median(new), "old_us": 1e6 * statistics.median(old),
                                    "old_over_new": smed, "new_ratio_to_1": rn, "old_ratio_to_1": ro}
            print(f"{name:<8} {m:>4} {1e6 * statistics.median(new):9.1f} {1e6 * statistics.median(old):9.1f} "
                  f"{smed:7.2f} {slo:5.2f}-{shi:<5.2f}   {rn:13.2f} {ro:13.2f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--tokens", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2, 3, 4, 8, 16])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kernels", action="store_true", help="also time each linear layer shape alone")
    args = parser.parse_args()
    if 1 not in args.tokens:
        args.tokens = [1] + args.tokens
    torch.set_num_threads(args.threads)

    from specscope.engine.loading import load_model

    model, _ = load_model(None, quant="gguf", tokenizer=False)
    load_start = os.getloadavg()[0]
    print(f"# {model.config.name}, {model.weight_format}, batch 1, context {args.context}, {args.threads} threads, "
          f"{args.rounds} rounds (interleaved, shuffled), load average {load_start:.1f}", file=sys.stderr)
    result = {"benchmark": "step", "threads": args.threads, "context": args.context, "rounds": args.rounds}

    calls = step_calls(model, args.tokens, args.context)
    result["identical_logits"] = check_identical(calls, args.tokens)
    print("# target forward, batch 1")
    result["steps"] = report_steps(run_rounds(calls, args.rounds, args.seed), args.tokens)
    print(f"bit-identical logits, new vs old path: {result['identical_logits']}")

    if args.kernels:
        rows = sorted(set([1, 2, 3, 4, 8, 16]))
        kcalls, names = kernel_calls(model, rows)
        print("# ggml_linear alone, per layer shape")
        result["kernels"] = report_kernels(run_rounds(kcalls, args.rounds, args.seed), names, rows)
    set_path("new")
    result["load_avg"] = [load_start, os.getloadavg()[0]]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
