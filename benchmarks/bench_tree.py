"""Tree vs chain benchmark: a static draft tree DxB against a chain of k drafts, at batch 1 and 16.

Usage:  .venv/bin/python benchmarks/bench_tree.py [--threads 2] [--tree 3x2] [--k 3] [--quick]

Default model (SmolLM2-135M-Instruct, GGUF blocks on the CPU kernels), greedy, `--method draft
--draft-model self:L`, bundled workload prompts. One process, one model load; the three configurations
(plain decoding, chain k, tree DxB) run interleaved, repeat by repeat, so machine noise hits them
alike; medians over repeats. For each batch size it prints throughput (generated tokens / wall time),
mean acceptance length, speedup over plain decoding at the same batch size, the draft/verify shares
of step time, and whether the greedy outputs equal plain decoding's. The last line is JSON.

What to expect (the study): a tree helps a little at batch size 1, where the verification pass is
memory-bound and extra tree tokens are nearly free, and hurts at large batch sizes, where every
extra token scored costs compute. `DxB` counts the root in D (tree.py): 3x2 = 6 draft tokens whose
longest path accepts 2, against k = 3 for the chain.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch


def run_config(target, stop, requests, batch_size, max_new, method, k, tree, draft_model):
    from specscope.engine.engine import Engine
    from specscope.engine.proposers import build_proposer
    from specscope.settings import RunSettings

    settings = RunSettings.build(method=method, k=k, draft_model=draft_model, tree=tree.label if tree else None,
                                 batch_size=batch_size, max_new_tokens=max_new)
    engine = Engine(target, build_proposer(method, settings, target=target), settings, stop)
    start = time.perf_counter()
    seqs = {s.request.id: s for s in engine.generate(requests)}
    wall = time.perf_counter() - start
    tokens = sum(s.num_output for s in seqs.values())
    steps = sum(len(s.accepted) for s in seqs.values())
    accepted = sum(sum(s.accepted) for s in seqs.values())
    phase = {p: sum(getattr(r, p) for r in engine.steps) for p in ("draft", "verify", "sample", "overhead")}
    total = sum(phase.values()) or 1.0
    return {
        "tok_s": tokens / wall,
        "mean_acc_len": (steps + accepted) / steps if steps else None,
        "draft_share": phase["draft"] / total,
        "verify_share": phase["verify"] / total,
        "outputs": {r: s.output.tolist() for r, s in seqs.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workload", default="chat")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-sizes", type=lambda s: [int(v) for v in s.split(",")], default=[1, 16])
    parser.add_argument("--prompts-batch-1", type=int, default=4)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--tree", default="3x2")
    parser.add_argument("--draft-model", default="self:24")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="1 repeat, 32 new tokens, 2 prompts at batch 1, batch 16 on 16")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.max_new_tokens, args.prompts_batch_1 = 1, 32, 2
    torch.set_num_threads(args.threads)

    from specscope.engine.loading import load_model
    from specscope.engine.tree import parse_tree
    from specscope.settings import RunSettings
    from specscope.study.engine_backend import build_requests, stop_token_ids
    from specscope.study.prompts import run_prompts

    tree = parse_tree(args.tree)
    target, tokenizer = load_model(None, device=torch.device("cpu"))
    stop = stop_token_ids(target, tokenizer)
    configs = {
        "none": ("none", 0, None),
        f"chain k={args.k}": ("draft", args.k, None),
        f"tree {tree.label}": ("draft", args.k, tree),
    }
    result = {"benchmark": "tree", "threads": args.threads, "workload": args.workload, "draft_model": args.draft_model,
              "max_new_tokens": args.max_new_tokens, "tree": tree.label, "tree_draft_tokens": tree.num_nodes,
              "k": args.k, "weight_format": getattr(target, "weight_format", "dense"),
              "load_avg_start": os.getloadavg()[0], "rows": []}
    print(f"# {args.workload}, greedy, draft {args.draft_model}, {args.max_new_tokens} new tokens, "
          f"weights {result['weight_format']}, median of {args.repeats}")
    print(f"{'B':>3} {'config':<12} {'tok/s':>8} {'speedup':>8} {'acc_len':>8} {'draft':>6} {'verify':>7} {'= plain':>8}")
    for batch_size in args.batch_sizes:
        n = args.prompts_batch_1 if batch_size == 1 else batch_size
        prompts = run_prompts(RunSettings(workload=args.workload, num_prompts=n, seed=args.seed))
        requests = build_requests(prompts, tokenizer, None, args.max_new_tokens)
        run_config(target, stop, requests[:1], batch_size, 8, *configs[f"tree {tree.label}"], args.draft_model)  # warm-up
        runs = {name: [] for name in configs}
        for _ in range(args.repeats):
            for name, (method, k, t) in configs.items():
                runs[name].append(run_config(target, stop, requests, batch_size, args.max_new_tokens, method, k, t,
                                             args.draft_model))
        base_tps = statistics.median(r["tok_s"] for r in runs["none"])
        plain = runs["none"][0]["outputs"]
        for name, rs in runs.items():
            tps = statistics.median(r["tok_s"] for r in rs)
            row = {
                "batch_size": batch_size, "config": name, "prompts": n, "tok_s": tps, "speedup": tps / base_tps,
                "mean_acc_len": rs[0]["mean_acc_len"], "draft_share": statistics.median(r["draft_share"] for r in rs),
                "verify_share": statistics.median(r["verify_share"] for r in rs),
                "equals_plain": all(r["outputs"] == plain for r in rs),
            }
            result["rows"].append(row)
            acc = "-" if row["mean_acc_len"] is None else f"{row['mean_acc_len']:.2f}"
            print(f"{batch_size:>3} {name:<12} {tps:8.1f} {row['speedup']:7.2f}x {acc:>8} {row['draft_share']:6.0%} "
                  f"{row['verify_share']:7.0%} {str(row['equals_plain']):>8}", flush=True)
        by = {r["config"]: r for r in result["rows"] if r["batch_size"] == batch_size}
        ratio = by[f"tree {tree.label}"]["tok_s"] / by[f"chain k={args.k}"]["tok_s"]
        result[f"tree_vs_chain_bs{batch_size}"] = ratio
        print(f"    tree {tree.label} / chain k={args.k} at batch {batch_size}: {ratio:.2f}x", flush=True)
    result["load_avg_end"] = os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
