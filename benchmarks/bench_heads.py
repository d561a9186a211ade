"""Benchmark the shipped EAGLE / EAGLE-3 / MTP heads on the default model (greedy, k = 3).

    .venv/bin/python benchmarks/bench_heads.py                   # held-out bundled prompts
    .venv/bin/python benchmarks/bench_heads.py --all --max-new-tokens 64
    .venv/bin/python benchmarks/bench_heads.py --heads /tmp/heads          # heads of your own (eagle/ eagle3/ mtp/)

Prints, side by side from one run:
- mean acceptance length (committed tokens / decode steps) of eagle3, eagle and mtp over the bundled
  workloads (by default only the prompts the heads were NOT trained on: TRAINING.json's
  held_out_prompts), per workload and overall;
- per-draft-position acceptance: P(draft j accepted | j proposed), and conditional on j - 1 accepted;
- batch-1 throughput of eagle (and the others) vs --method none on the chat workload, as a ratio.
Goals from the issue: acc_len eagle3 >= eagle >= 1.8; eagle speedup at batch 1 on chat >= 1.3x.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import torch

METHODS = ("eagle3", "eagle", "mtp")


def per_position(seqs, k: int):
    """[(P(j accepted | j proposed), P(j accepted | j - 1 accepted and j proposed))] for j = 1..k."""
    out = []
    for j in range(1, k + 1):
        proposed = accepted = prev = 0
        for s in seqs:
            for p, a in zip(s.proposed, s.accepted):
                if p >= j:
                    proposed += 1
                    accepted += a >= j
                    prev += a >= j - 1
        out.append((accepted / proposed if proposed else float("nan"), accepted / prev if prev else float("nan")))
    return out


def acc_len(seqs) -> float:
    steps = sum(len(s.accepted) for s in seqs)
    return (steps + sum(sum(s.accepted) for s in seqs)) / steps if steps else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--all", action="store_true", help="all bundled prompts, not only the held-out ones")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=8, help="batch for the acceptance runs (greedy: no effect on acc_len)")
    ap.add_argument("--speed-prompts", type=int, default=4, help="chat prompts for the batch-1 speed comparison")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--methods", default=",".join(METHODS), help="heads to measure (comma-separated)")
    ap.add_argument("--no-speed", action="store_true", help="skip the batch-1 speed comparison")
    ap.add_argument("--no-acceptance", action="store_true", help="only the batch-1 speed comparison")
    ap.add_argument("--heads", default=None, help="folder with eagle/, eagle3/, mtp/ heads to measure (default: the shipped ones)")
    ap.add_argument("--quant", default="auto", help="auto (GGUF blocks, CPU kernels) or none (float32 weights)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())

    from specscope.engine.engine import Engine
    from specscope.engine.heads.checkpoint import bundled_head
    from specscope.engine.loading import load_model
    from specscope.engine.proposers import build_proposer
    from specscope.settings import RunSettings
    from specscope.study.engine_backend import build_requests, stop_token_ids
    from specscope.workloads import WORKLOADS, load_prompts

    target, tokenizer = load_model(None, quant=args.quant)
    stops = stop_token_ids(target, tokenizer)
    head_dir = (lambda m: f"{args.heads}/{m}") if args.heads else (lambda m: None)
    training = json.loads((bundled_head("eagle", target.config) / "TRAINING.json").read_text())
    held = set(training.get("held_out_prompts", []))
    prompts = [p for w in WORKLOADS for p in load_prompts(w) if args.all or p.id in held]
    requests = build_requests(prompts, tokenizer, None, args.max_new_tokens)
    workload_of = {p.id: p.workload if hasattr(p, "workload") else p.id.split(":")[0] for p in prompts}

    def generate(method, reqs, batch_size):
        settings = RunSettings.build(method=method, k=args.k, head=head_dir(method) if method in METHODS else None,
                                     batch_size=batch_size, max_new_tokens=args.max_new_tokens)
        proposer = build_proposer(method, settings, target=target, tokenizer=tokenizer)
        engine = Engine(target, proposer, settings, stops)
        start = time.perf_counter()
        seqs = [s for s in engine.generate(reqs) if not s.error]
        return seqs, time.perf_counter() - start

    print(f"default model, k={args.k}, greedy, {len(requests)} {'bundled' if args.all else 'held-out'} prompts, "
          f"max_new_tokens={args.max_new_tokens}, torch threads={torch.get_num_threads()}")
    results = {}
    for method in () if args.no_acceptance else methods:
        seqs, seconds = generate(method, requests, args.batch_size)
        by_wl = defaultdict(list)
        for s in seqs:
            by_wl[workload_of[s.request.id]].append(s)
        results[method] = {"acc_len": acc_len(seqs), "by_workload": {w: acc_len(v) for w, v in sorted(by_wl.items())},
                           "per_position": per_position(seqs, args.k), "seconds": seconds}
    workloads = sorted({w for r in results.values() for w in r["by_workload"]})
    shown = [m for m in methods if m in results]
    if shown:
        print(f"\nmean acceptance length (committed tokens per step)\n{'workload':<12}" + "".join(f"{m:>9}" for m in shown))
        for w in workloads:
            print(f"{w:<12}" + "".join(f"{results[m]['by_workload'].get(w, float('nan')):>9.3f}" for m in shown))
        print(f"{'ALL':<12}" + "".join(f"{results[m]['acc_len']:>9.3f}" for m in shown))
        print("\nper-position acceptance P(j accepted | proposed)  [conditional on j-1 accepted]")
    for m in shown:
        print(f"{m:<8}" + "  ".join(f"j={j + 1}: {a:.3f} [{c:.3f}]" for j, (a, c) in enumerate(results[m]["per_position"])))

    speed = {}
    if not args.no_speed:
        chat = [r for r, p in zip(requests, prompts) if workload_of[p.id] == "chat"][: args.speed_prompts]
        print(f"\nbatch-1 speed on chat ({len(chat)} prompts, {args.max_new_tokens} new tokens max, "
              "methods interleaved per prompt, total tokens / total time)")
        generate("none", chat[:1], 1)  # warm-up
        tokens, seconds = defaultdict(int), defaultdict(float)
        for request in chat:  # interleave so machine noise hits every method alike
            for method in ("none",) + methods:
                seqs, secs = generate(method, [request], 1)
                tokens[method] += sum(len(s.output) for s in seqs)
                seconds[method] += secs
        speed = {m: tokens[m] / seconds[m] for m in ("none",) + methods}
        for method in ("none",) + methods:
            print(f"{method:<8}{speed[method]:>8.1f} tok/s   x{speed[method] / speed['none']:.2f}")
    print(json.dumps({"acc_len": {m: round(results[m]["acc_len"], 4) for m in shown},
                      "per_position": {m: [round(a, 4) for a, _ in results[m]["per_position"]] for m in shown},
                      "speedup_b1_chat": {m: round(speed[m] / speed["none"], 3) for m in methods if speed}}))


if __name__ == "__main__":
    main()
