"""EAGLE-3 draft trees vs its k = 3 chain on the default model, batch 1 (issue 29's goal).

    .venv/bin/python benchmarks/bench_trees.py                       # chat and code-edit, held-out prompts
    .venv/bin/python benchmarks/bench_trees.py --trees dynamic:21,6,21 --max-new-tokens 64 --all

Default model (SmolLM2-135M-Instruct, GGUF), the shipped EAGLE-3 head, greedy, batch 1, the bundled
chat and code-edit prompts (by default only those the head was NOT trained on: TRAINING.json's
held_out_prompts). One process, one model load; per prompt the variants run interleaved (plain
decoding, the k = 3 chain, each tree), so machine noise hits them alike.

Prints per workload and overall:
- mean acceptance length: committed tokens per decode step (accepted drafts + the bonus token),
  over all steps of the workload's prompts; and each tree's ratio to the chain's
  (goal: dynamic:21 >= 1.25x the chain on chat and on code-edit);
- whether every variant's greedy output equals plain decoding's (lossless);
- throughput: the median over prompts of each variant's tokens/s ratio to plain decoding on the same
  prompt, with the spread (min - max). Timings are noisy on a shared machine; acceptance is exact.
The last line is JSON.

Measured (issue 29; 2-core CPU shared with other jobs, load ~6; `--trees dynamic:21,6,21`, defaults otherwise):
mean acceptance length, chain k=3 -> dynamic:21 / 6 / 21: chat 1.568 -> 1.969 (1.26x) / 1.710 (1.09x) /
1.862 (1.19x); code-edit 1.336 -> 1.731 (1.30x) / 1.514 (1.13x) / 1.685 (1.26x); every output equal to
plain decoding. The speed ratios of that run are noise (per-prompt spread 0.06x - 6x under the load).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict

import torch

WORKLOADS = ("chat", "code-edit")
CHAIN = "chain k=3"


def acc_len(seqs) -> float:
    steps = sum(len(s.accepted) for s in seqs)
    return (steps + sum(sum(s.accepted) for s in seqs)) / steps if steps else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trees", default="dynamic:21,6", help="tree shapes to compare with the chain (comma-separated)")
    ap.add_argument("--k", type=int, default=3, help="the chain's k")
    ap.add_argument("--method", default="eagle3", help="eagle3, eagle or mtp")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--num-prompts", type=int, default=None, help="at most this many prompts per workload")
    ap.add_argument("--all", action="store_true", help="all bundled prompts, not only the held-out ones")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from specscope.engine.engine import Engine
    from specscope.engine.heads.checkpoint import bundled_head
    from specscope.engine.loading import load_model
    from specscope.engine.proposers import build_proposer
    from specscope.settings import RunSettings
    from specscope.study.engine_backend import build_requests, stop_token_ids
    from specscope.tree_spec import parse_tree
    from specscope.workloads import load_prompts

    trees = [t.strip() for t in args.trees.split(",") if t.strip()]
    labels = {t: f"tree {t}" for t in trees}
    shapes = ", ".join(f"{t} = {parse_tree(t).label} ({parse_tree(t).num_nodes} drafts)" for t in trees)
    target, tokenizer = load_model(None)
    stops = stop_token_ids(target, tokenizer)
    training = json.loads((bundled_head(args.method, target.config) / "TRAINING.json").read_text())
    held = set(training.get("held_out_prompts", []))
    prompts = {}
    for w in WORKLOADS:
        chosen = [p for p in load_prompts(w) if args.all or p.id in held]
        prompts[w] = chosen[: args.num_prompts] if args.num_prompts else chosen

    variants = {"none": dict(method="none", k=0), CHAIN: dict(method=args.method, k=args.k)}
    variants.update({labels[t]: dict(method=args.method, k=args.k, tree=t) for t in trees})

    def generate(variant, request):
        settings = RunSettings.build(batch_size=1, max_new_tokens=args.max_new_tokens, **variants[variant])
        engine = Engine(target, build_proposer(settings.proposer.method, settings, target=target, tokenizer=tokenizer),
                        settings, stops)
        start = time.perf_counter()
        seqs = list(engine.generate([request]))
        return seqs[0], time.perf_counter() - start

    print(f"default model, {args.method}, batch 1, greedy, max_new_tokens={args.max_new_tokens}, "
          f"{'all bundled' if args.all else 'held-out'} prompts: "
          + ", ".join(f"{w} {len(p)}" for w, p in prompts.items()) + f", torch threads={torch.get_num_threads()}\ntrees: {shapes}")
    generate("none", build_requests(prompts[WORKLOADS[0]][:1], tokenizer, None, 8)[0])  # warm-up
    seqs = defaultdict(lambda: defaultdict(list))  # workload -> variant -> sequences
    ratios = defaultdict(list)  # variant -> per-prompt tok/s ratio to plain decoding
    lossless = defaultdict(lambda: True)
    for w in WORKLOADS:
        for request in build_requests(prompts[w], tokenizer, None, args.max_new_tokens):
            speed = {}
            for variant in variants:  # interleaved per prompt
                seq, seconds = generate(variant, request)
                if seq.error:
                    raise SystemExit(f"{request.id}: {seq.error}")
                seqs[w][variant].append(seq)
                speed[variant] = len(seq.output) / seconds
                lossless[variant] &= seq.output.tolist() == seqs[w]["none"][-1].output.tolist()
            for variant in variants:
                ratios[variant].append(speed[variant] / speed["none"])
            print(f"  {w} {request.id}: " + ", ".join(f"{v} {len(seqs[w][v][-1].accepted)} steps" for v in variants),
                  file=sys.stderr, flush=True)

    sd = [v for v in variants if v != "none"]
    table = {w: {v: acc_len(seqs[w][v]) for v in sd} for w in WORKLOADS}
    table["ALL"] = {v: acc_len([s for w in WORKLOADS for s in seqs[w][v]]) for v in sd}
    print("\nmean acceptance length (committed tokens per decode step), and each tree's ratio to the chain")
    print(f"{'workload':<11}" + "".join(f"{v:>22}" for v in sd))
    for w, row in table.items():
        cells = [f"{row[v]:.3f}" + ("" if v == CHAIN else f" ({row[v] / row[CHAIN]:.2f}x)") for v in sd]
        print(f"{w:<11}" + "".join(f"{c:>22}" for c in cells))
    print("\ngreedy output equals plain decoding: " + ", ".join(f"{v} {'yes' if lossless[v] else 'NO'}" for v in sd))
    print("\nbatch-1 tok/s vs plain decoding, per prompt: median [min - max]")
    for v in sd:
        r = ratios[v]
        print(f"{v:<18} x{statistics.median(r):.2f} [{min(r):.2f} - {max(r):.2f}]")
    print(json.dumps({
        "acc_len": {w: {v: round(x, 4) for v, x in row.items()} for w, row in table.items()},
        "tree_over_chain": {w: {v: round(row[v] / row[CHAIN], 4) for v in sd if v != CHAIN} for w, row in table.items()},
        "lossless": {v: lossless[v] for v in sd},
        "speedup_b1_median": {v: round(statistics.median(ratios[v]), 3) for v in sd},
        "prompts": {w: len(p) for w, p in prompts.items()}, "max_new_tokens": args.max_new_tokens,
    }))


if __name__ == "__main__":
    main()
