#!/usr/bin/env python
"""Benchmark: the full published simulation sweep must take <= 30 s wall on a 2-core machine.

    .venv/bin/python benchmarks/bench_simulator.py [--requests 300] [--reference-requests 12]

What it measures, side by side in one run:
1. It writes 4 SYNTHETIC trace files with the published traces' shape (300 requests each, prompts
   100-850 tokens, outputs 150-750 tokens, acc_len 1-21; `specscope.simulator.synthetic`) in the
   SpecDecode-Bench format, named like the published ones (combined_<dataset>.jsonl, so the published
   n-gram match probabilities apply).
2. It runs the published sweep — 4 files x (eagle and ngram each x fixed-1, fixed-3, fixed-5, oracle;
   plus ngram+eagle oracle combine) x batch sizes 1, 8, 16, 32, 64, 128 = 216 configurations — in
   paper mode and in serve mode, timing each from reading the files to the last row.
3. It times the plain per-copy implementation (`specscope.simulator.reference`, written like the
   published Python simulator) on a sample of those configurations over a few requests, checks it
   agrees with the fast path there, and extrapolates its time to the whole sweep by copy-steps
   (B x decode steps, summed), the unit its loop runs over. The ratio is printed.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from specscope.costs.presets import load_cost_model
from specscope.policy.registry import make_policy
from specscope.simulator.reference import reference_speedup
from specscope.simulator.replay_trace import ReplayTrace
from specscope.simulator.grid import PAPER, SERVE, ngram_match_prob, run_grid
from specscope.simulator.synthetic import synthetic_trace
from specscope.simulator.trajectory import run_trajectory
from specscope.formats.trace import Trace, read_trace

DATASETS = ("sharegpt", "cnn", "gsm8k", "instructcoder")
PROPOSER_SETS_AND_POLICIES = [
    (("eagle",), ["fixed-1", "fixed-3", "fixed-5", "oracle"]),
    (("ngram",), ["fixed-1", "fixed-3", "fixed-5", "oracle"]),
    (("ngram", "eagle"), ["oracle"]),
]
BATCH_SIZES = [1, 8, 16, 32, 64, 128]
BOUND_S = 30.0
COST_MODEL = "llama3.1-8b-h100"


def write_specdecode_bench(path: Path, trace: Trace) -> None:
    with open(path, "w") as fh:
        for req in trace.requests:
            fh.write(json.dumps({
                "id": req.id,
                "prompt_token_ids": req.prompt_token_ids,
                "generated_token_ids": req.output_token_ids,
                **{f"acc_{p}": {"acc_len": req.acc_len[p].tolist()} for p in trace.proposers},
            }) + "\n")


def sweep(paths: list[Path], mode: str, costs) -> tuple[float, int]:
    start = time.perf_counter()
    traces = [read_trace(p) for p in paths]
    rows = 0
    for pset, policies in PROPOSER_SETS_AND_POLICIES:
        rows += len(run_grid(traces, [pset], policies, BATCH_SIZES, costs, mode=mode, seed=42))
    return time.perf_counter() - start, rows


def copy_steps(trace: Trace, pset, policy: str, sizes) -> float:
    """Work of the per-copy loop: B x (SD decode steps + plain decode steps), summed over requests."""
    rt = ReplayTrace.from_trace(trace, pset)
    match = np.ones(len(pset))
    sd = run_trajectory(rt, make_policy(policy, pset), match).steps.sum()
    plain = (rt.gen_len - 1).sum()
    return float(sum(sizes) * (sd + plain))


def main() -> None:
    parser = argparse.ArgumentParser(description="Time the published 216-configuration simulation sweep.")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--reference-requests", type=int, default=12)
    args = parser.parse_args()
    costs = load_cost_model(COST_MODEL)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, name in enumerate(DATASETS):
            path = Path(tmp) / f"combined_{name}.jsonl"
            write_specdecode_bench(path, synthetic_trace(args.requests, seed=100 + i))
            paths.append(path)
        paper_s, rows = sweep(paths, PAPER, costs)
        serve_s, _ = sweep(paths, SERVE, costs)

        # the per-copy reference on a sample, extrapolated by copy-steps
        full = [read_trace(p) for p in paths]
        sample = Trace(requests=full[0].requests[: args.reference_requests], proposers=full[0].proposers,
                       path=full[0].path)
        checks, ref_s, ref_work = [], 0.0, 0.0
        for pset, policy, b in [(("eagle",), "fixed-3", 8), (("ngram",), "oracle", 16), (("ngram", "eagle"), "oracle", 32),
                                (("eagle",), "oracle", 1)]:
            t = time.perf_counter()
            ref = reference_speedup(sample, pset, policy, b, costs, {"ngram": ngram_match_prob(sample, None)})
            ref_s += time.perf_counter() - t
            ref_work += copy_steps(sample, pset, policy, [b])
            fast = run_grid([sample], [pset], [policy], [b], costs, mode=PAPER)[0]["speedup"]
            checks.append(abs(fast / ref["speedup"] - 1))
        total_work = sum(copy_steps(trace, pset, policy, BATCH_SIZES)
                         for trace in full for pset, policies in PROPOSER_SETS_AND_POLICIES for policy in policies)
        reference_s = ref_s / ref_work * total_work

    print(f"cores available: {len(os.sched_getaffinity(0))}")
    print(f"configurations: {rows} (4 traces x 9 proposer/policy pairs x 6 batch sizes), {args.requests} requests each")
    print(f"paper mode sweep:  {paper_s:7.2f} s   (bound {BOUND_S:.0f} s: {'OK' if paper_s <= BOUND_S else 'OVER'})")
    print(f"serve mode sweep:  {serve_s:7.2f} s   (bound {BOUND_S:.0f} s: {'OK' if serve_s <= BOUND_S else 'OVER'})")
    print(f"per-copy reference: {reference_s:7.1f} s (extrapolated from {ref_s:.1f} s on 4 sampled configurations)")
    print(f"speedup of the vectorised paper mode over the per-copy loop: {reference_s / paper_s:.0f}x")
    print(f"max relative difference vs the reference on the sample: {max(checks):.1e}")
    print(json.dumps({
        "bench": "simulator",
        "configs": rows,
        "requests_per_trace": args.requests,
        "paper_s": round(paper_s, 3),
        "serve_s": round(serve_s, 3),
        "bound_s": BOUND_S,
        "within_bound": paper_s <= BOUND_S and serve_s <= BOUND_S,
        "reference_extrapolated_s": round(reference_s, 1),
        "ratio_reference_over_paper": round(reference_s / paper_s, 1),
        "max_rel_diff_vs_reference": max(checks),
    }))


if __name__ == "__main__":
    main()
